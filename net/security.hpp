// Declarative security: users and roles from the configuration, authentication (HTTP
// Basic with passwords or issued tokens, a token cookie for browsers, JWT bearer tokens),
// login throttling, and the ordered ACL whose rules grant access by role and request
// predicate, with per-rule readFilter, mergeRequest and projectResponse.
//
// Thread-safety: authenticate() and authorize() may be called concurrently from any
// thread (the token table and throttling counters are guarded by a mutex); the rest is
// immutable after construction.
#pragma once

#include "config/config.hpp"
#include "storage/document/value.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rheo {

/// An authenticated user as @user sees it: {_id, roles, ...JWT claims}.
struct principal {
  std::string id;
  std::vector<std::string> roles;
  object document;
};

/// One ACL rule (see README "Security").
struct acl_rule {
  std::vector<std::string> roles; // "$unauthenticated", "$authenticated" or role names
  std::string predicate_text;
  std::shared_ptr<const struct acl_predicate> predicate;
  std::optional<object> read_filter;
  std::optional<object> merge_request;
  std::optional<object> project_response;
};

/// Predicate over method and path: path-prefix('/p'), path('/a/{var}/b'), method(GET),
/// and, or, not, parentheses. Throws config_error on a syntax error.
std::shared_ptr<const acl_predicate> parse_acl_predicate(const std::string& text);
bool evaluate_acl_predicate(const acl_predicate& p, std::string_view method, std::string_view path);

/// Creates an argon2id hash string for `password` (libsodium, interactive limits).
std::string hash_password(const std::string& password);

class security {
public:
  /// Reads users, acl, jwt and token settings from `config`; throws config_error.
  explicit security(const server_config& config);
  ~security();

  struct auth_result {
    std::optional<principal> user;
    int status = 0;      // 0 ok; 401 bad credentials; 429 throttled
    std::string message; // for errors
    std::vector<std::pair<std::string, std::string>> headers; // Auth-Token..., Set-Cookie
  };
  /// Authenticates from the Authorization and Cookie headers. No credentials: ok and no user.
  auth_result authenticate(const std::string& authorization, const std::string& cookie,
                           const std::string& remote_address);

  /// The first rule granting `method` on `path` to `user`; nullptr when none does.
  const acl_rule* authorize(std::string_view method, std::string_view path,
                            const std::optional<principal>& user) const;

  /// Resolves @now, @user, @user.<field> in a readFilter/mergeRequest value, recursively.
  static value resolve_variables(const value& v, const std::optional<principal>& user);

  bool enabled() const { return !acl_.empty(); }
  const std::vector<acl_rule>& acl() const { return acl_; }

private:
  struct impl;
  std::vector<acl_rule> acl_;
  std::unique_ptr<impl> impl_;
};

/// The ACL rules a server uses when its configuration names none: anonymous users may
/// read and subscribe under /messages and POST messages (timestamp stamped by the
/// server); everything else needs a user.
const char* default_acl_json();

} // namespace rheo
