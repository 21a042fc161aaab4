// Declarative security, as the REST API sees it: authentication (HTTP Basic with
// passwords or issued tokens, a token cookie for browsers, JWT bearer tokens; see
// credentials.hpp and jwt.hpp) and authorization by the ordered ACL (see acl.hpp), built
// from the configuration.
//
// Thread-safety: every member may be called concurrently from any thread. Users, ACL and
// JWT settings are immutable snapshots that reload() swaps atomically: a request sees one
// snapshot of each, and a rule it holds (authorize()) stays valid after a reload.
#pragma once

#include "config/config.hpp"
#include "net/security/acl.hpp"
#include "net/security/credentials.hpp"
#include "net/security/jwt.hpp"
#include "net/security/principal.hpp"
#include "storage/document/value.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

class security {
public:
  /// Reads users, acl, jwt and token settings from `config`; throws config_error.
  explicit security(const server_config& config);

  /// What reload() changed.
  struct reload_outcome {
    std::size_t users = 0;          // users in the new configuration
    std::size_t acl_rules = 0;      // rules of the new ACL
    bool jwt = false;               // bearer tokens configured
    std::size_t revoked_tokens = 0; // of users removed or with a changed password
  };
  /// Replaces users, ACL and JWT settings with those of `config`; requests and handshakes
  /// that start afterwards use them. Verified passwords are forgotten. Throws config_error
  /// and changes nothing when any of the three is invalid.
  reload_outcome reload(const server_config& config);

  using auth_result = rheo::auth_result;
  /// Authenticates from the Authorization and Cookie headers. No credentials: ok and no user.
  auth_result authenticate(const std::string& authorization, const std::string& cookie,
                           const std::string& remote_address);

  /// Whether authenticating `authorization` would run argon2id (a Basic password neither
  /// cached nor a token): the server then handles the request off its I/O threads.
  bool needs_password_check(const std::string& authorization) {
    return credentials_.needs_password_check(authorization);
  }
  /// The unexpired token issued to `user` at login, if any.
  std::optional<token_info> token_of(const std::string& user) {
    return credentials_.token_of(user);
  }
  /// Logout: revokes the token of `user`.
  void revoke_token(const std::string& user) { credentials_.revoke_token(user); }
  /// Whether users are configured, so that /tokens/<user> is a token's location.
  bool issues_tokens() const { return credentials_.has_users(); }

  /// The first rule granting `method` on `path` to `user`; null when none does. The rule
  /// shares ownership of the ACL it comes from.
  std::shared_ptr<const acl_rule> authorize(std::string_view method, std::string_view path,
                                            const std::optional<principal>& user) const;

  /// Resolves @now, @user, @user.<field> in a readFilter/mergeRequest value, recursively.
  static value resolve_variables(const value& v, const std::optional<principal>& user);

private:
  // The ACL and the JWT settings, replaced together by a reload.
  struct policy {
    std::vector<acl_rule> acl;
    std::optional<jwt_verifier> jwt;
  };
  static std::shared_ptr<const policy> read_policy(const server_config& config);

  credentials credentials_;
  std::atomic<std::shared_ptr<const policy>> policy_;
};

} // namespace rheo
