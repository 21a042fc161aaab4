#include "net/rest/access.hpp"

#include <string>

namespace rheo::rest {

std::optional<object> access::read_filter() const {
  if (!rule || !rule->read_filter) return std::nullopt;
  return security::resolve_variables(value(*rule->read_filter), user).as_object();
}

void access::merge_into(object& body) const {
  if (!rule || !rule->merge_request) return;
  for (auto& [k, v] : *rule->merge_request)
    set_field(body, k, security::resolve_variables(v, user));
}

std::optional<projection> access::response_projection() const {
  if (!rule || !rule->project_response) return std::nullopt;
  return projection::compile(*rule->project_response);
}

std::string_view acl_method(const http_request& req) {
  if (req.method == http_method::head) return to_string(http_method::get);
  return req.method_text;
}

http_response auth_error_response(security::auth_result& auth) {
  http_response r = error_response(auth.status, auth.message);
  if (auth.status == 401) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"rheo\"");
  for (auto& h : auth.headers)
    r.headers.push_back(std::move(h));
  return r;
}

std::optional<http_response> check_access(security& sec, const http_request& req,
                                          std::string_view method, std::string_view path,
                                          access& who, http_headers& extra_headers) {
  auto auth = sec.authenticate(req.authorization, req.cookie, req.remote_address);
  if (auth.status) return auth_error_response(auth);
  extra_headers = std::move(auth.headers);
  who.user = std::move(auth.user);
  who.by_cookie = auth.from_cookie;
  who.rule = sec.authorize(method, path, who.user);
  if (!who.rule) {
    if (!who.user) {
      http_response r = error_response(401, "authentication required");
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"rheo\"");
      return r;
    }
    return error_response(403, "user '" + who.user->id + "' may not " + std::string(method) + " " +
                                   std::string(path));
  }
  return std::nullopt;
}

} // namespace rheo::rest
