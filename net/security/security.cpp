#include "net/security/security.hpp"

namespace rheo {

security::security(const server_config& config)
    : credentials_(config),
      acl_(parse_acl(config.acl_json.empty() ? default_acl_json() : config.acl_json)) {
  if (!config.jwt_json.empty()) jwt_.emplace(config.jwt_json);
}

security::auth_result security::authenticate(const std::string& authorization,
                                             const std::string& cookie,
                                             const std::string& remote_address) {
  if (authorization.rfind("Bearer ", 0) != 0)
    return credentials_.authenticate(authorization, cookie, remote_address);
  auth_result res;
  std::string error;
  if (jwt_)
    res.user = jwt_->verify(authorization.substr(7), error);
  else
    error = "bearer tokens are not configured";
  if (!res.user) {
    res.status = 401;
    res.message = error;
  }
  return res;
}

const acl_rule* security::authorize(std::string_view method, std::string_view path,
                                    const std::optional<principal>& user) const {
  return first_granting_rule(acl_, method, path, user);
}

value security::resolve_variables(const value& v, const std::optional<principal>& user) {
  return resolve_acl_variables(v, user);
}

} // namespace rheo
