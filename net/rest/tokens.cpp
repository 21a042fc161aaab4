// /tokens/<user>, the Auth-Token-Location of a login, as in RESTHeart: GET tells whether
// the caller's token is valid (a revoked or expired one no longer authenticates: 401) and
// until when; DELETE logs out, revoking the token and expiring the cookie (204). Only the
// user itself may use its location; the ACL is not consulted.
#include "net/rest/routes.hpp"

#include "net/security/security.hpp"
#include "storage/document/json.hpp"

namespace rheo::rest {

namespace {

/// The authenticated user named by the location, or the error response.
std::variant<std::string, http_response> token_owner(const request_context& c,
                                                     security::auth_result& auth) {
  auth = c.sec.authenticate(c.req.authorization, c.req.cookie, c.req.remote_address);
  if (auth.status) return auth_error_response(auth);
  if (!auth.user) {
    http_response r = error_response(401, "authentication required");
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"rheo\"");
    return r;
  }
  if (auth.user->id != c.res.name)
    return error_response(403, "user '" + auth.user->id + "' may not use the token of '" +
                                   c.res.name + "'");
  return auth.user->id;
}

} // namespace

http_response get_token(const request_context& c) {
  security::auth_result auth;
  auto owner = token_owner(c, auth);
  if (auto* denied = std::get_if<http_response>(&owner)) return std::move(*denied);
  auto token = c.sec.token_of(std::get<std::string>(owner));
  // A JWT bearer authenticates without a token of ours.
  if (!token) return error_response(404, "no token was issued to '" + c.res.name + "'");
  c.extra_headers = std::move(auth.headers);
  http_response r = json_response(
      200, "{\"auth_token\":" + to_json(value(token->token)) +
               ",\"auth_token_valid_until\":" + to_json(value(token->valid_until)) + "}");
  r.user = std::get<std::string>(owner);
  return r;
}

http_response delete_token(const request_context& c) {
  security::auth_result auth;
  auto owner = token_owner(c, auth);
  if (auto* denied = std::get_if<http_response>(&owner)) return std::move(*denied);
  c.sec.revoke_token(std::get<std::string>(owner));
  http_response r = empty_response(204);
  r.headers.emplace_back("Set-Cookie", credentials::expired_cookie());
  r.user = std::get<std::string>(owner);
  return r;
}

} // namespace rheo::rest
