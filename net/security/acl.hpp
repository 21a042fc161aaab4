// The access control list: ordered rules that grant access by role and by a predicate over
// the request's method and path, each with an optional readFilter, mergeRequest and
// projectResponse (see README "Security"); the predicate language; the variables (@user,
// @now) those values may use; the rules used when the configuration names none.
//
// Thread-safety: rules and predicates are immutable once parsed; the functions keep no
// state and are safe from any thread.
#pragma once

#include "net/security/principal.hpp"
#include "storage/document/value.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

struct acl_predicate;

/// One ACL rule.
struct acl_rule {
  std::vector<std::string> roles; // "$unauthenticated", "$authenticated" or role names
  std::string predicate_text;
  std::shared_ptr<const acl_predicate> predicate;
  std::optional<object> read_filter;
  std::optional<object> merge_request;
  std::optional<object> project_response;
};

/// Predicate over method and path: path-prefix('/p'), path('/a/{var}/b'), method(GET),
/// and, or, not, parentheses. Throws config_error on a syntax error.
std::shared_ptr<const acl_predicate> parse_acl_predicate(const std::string& text);
bool evaluate_acl_predicate(const acl_predicate& p, std::string_view method, std::string_view path);

/// The rules of the JSON array `text` (config key 'acl'); throws config_error.
std::vector<acl_rule> parse_acl(const std::string& text);

/// The first rule of `acl` granting `method` on `path` to `user`; nullptr when none does.
const acl_rule* first_granting_rule(const std::vector<acl_rule>& acl, std::string_view method,
                                    std::string_view path, const std::optional<principal>& user);

/// Resolves @now, @user, @user.<field> in a readFilter/mergeRequest value, recursively.
value resolve_acl_variables(const value& v, const std::optional<principal>& user);

/// The ACL rules a server uses when its configuration names none: anonymous users may
/// read and subscribe under /messages and POST messages (timestamp stamped by the
/// server); everything else needs a user.
const char* default_acl_json();

} // namespace rheo
