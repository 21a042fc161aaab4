#include "net/security/security.hpp"

namespace rheo {

security::security(const server_config& config)
    : credentials_(config), policy_(read_policy(config)) {}

std::shared_ptr<const security::policy> security::read_policy(const server_config& config) {
  auto p = std::make_shared<policy>();
  p->acl = parse_acl(config.acl_json.empty() ? default_acl_json() : config.acl_json);
  if (!config.jwt_json.empty()) p->jwt.emplace(config.jwt_json);
  return p;
}

security::reload_outcome security::reload(const server_config& config) {
  // Everything is read and checked before anything is installed.
  auto users = credentials::read_users(config);
  auto next = read_policy(config);
  reload_outcome out;
  out.users = users->users.size();
  out.acl_rules = next->acl.size();
  out.jwt = next->jwt.has_value();
  out.revoked_tokens = credentials_.install_users(std::move(users));
  policy_.store(std::move(next));
  return out;
}

security::auth_result security::authenticate(const std::string& authorization,
                                             const std::string& cookie,
                                             const std::string& remote_address) {
  if (authorization.rfind("Bearer ", 0) != 0)
    return credentials_.authenticate(authorization, cookie, remote_address);
  auth_result res;
  std::string error;
  auto p = policy_.load();
  if (p->jwt)
    res.user = p->jwt->verify(authorization.substr(7), error);
  else
    error = "bearer tokens are not configured";
  if (!res.user) {
    res.status = 401;
    res.message = error;
  }
  return res;
}

std::shared_ptr<const acl_rule> security::authorize(std::string_view method, std::string_view path,
                                                    const std::optional<principal>& user) const {
  auto p = policy_.load();
  const acl_rule* rule = first_granting_rule(p->acl, method, path, user);
  if (!rule) return nullptr;
  return std::shared_ptr<const acl_rule>(std::move(p), rule);
}

value security::resolve_variables(const value& v, const std::optional<principal>& user) {
  return resolve_acl_variables(v, user);
}

} // namespace rheo
