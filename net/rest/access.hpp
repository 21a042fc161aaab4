// Who is asking and what the ACL lets them do, for the REST API's handlers: authentication
// and authorization of one request, and the matching rule's readFilter, mergeRequest and
// projectResponse applied for that user. Private to rheo_rest.
//
// Thread-safety: an access is a value owned by one request; check_access() may be called
// concurrently from any thread (security says so).
#pragma once

#include "net/http.hpp"
#include "net/security/security.hpp"
#include "storage/document/query.hpp"
#include "storage/document/value.hpp"

#include <memory>
#include <optional>
#include <string_view>

namespace rheo::rest {

/// Who is asking and which ACL rule let them in.
struct access {
  std::optional<principal> user;
  std::shared_ptr<const acl_rule> rule; // holds the ACL it is from across a reload
  bool by_cookie = false; // authenticated by the token cookie, which browsers send anywhere

  /// The rule's readFilter with @user/@now resolved, if any.
  std::optional<object> read_filter() const;
  /// Applies the rule's mergeRequest to a document body.
  void merge_into(object& body) const;
  /// The rule's projectResponse, if any.
  std::optional<projection> response_projection() const;
};

/// The method name the ACL sees for `req`: its own, with HEAD as GET.
std::string_view acl_method(const http_request& req);

/// The answer to a failed authentication (401 with WWW-Authenticate, 429, 503 with
/// Retry-After).
http_response auth_error_response(security::auth_result& auth);

/// Authenticates `req` and authorizes `method` on `path`, filling `who` and
/// `extra_headers` (tokens issued at login); the error response (401, 403, 429) when not
/// allowed.
std::optional<http_response> check_access(security& sec, const http_request& req,
                                          std::string_view method, std::string_view path,
                                          access& who, http_headers& extra_headers);

} // namespace rheo::rest
