// The HTTP vocabulary shared by the transport and the handlers: methods, the request and
// response as the handlers see them (no Beast types), request-target parsing and percent
// coding, status reasons, the contract's JSON error body, small response builders and the
// CORS headers.
//
// Thread-safety: plain values and free functions without shared state; safe from any
// thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rheo {

enum class http_method { get, head, post, put, patch, delete_, options, other };

/// The method named by `text` (case-sensitive, as HTTP says); `other` for any other.
http_method parse_http_method(std::string_view text);
/// "GET", "HEAD", ...; "" for `other` (its text is only in http_request::method_text).
std::string_view to_string(http_method m);

using http_headers = std::vector<std::pair<std::string, std::string>>;

struct http_request {
  http_method method = http_method::get;
  std::string method_text; // the method as received, for messages and the ACL
  std::string target;      // path and query, as received
  std::string body;
  std::string if_match;
  std::string origin;
  std::string host; // the Host header, for telling same-origin requests
  std::string accept;
  std::string access_control_request_headers;
  std::string authorization;
  std::string cookie;
  std::string remote_address; // the client's: the peer's, or a trusted proxy's word for it
  std::string scheme;         // "https" over TLS or as a trusted proxy says, else "http"
  std::string last_event_id;  // SSE reconnection: the last event id the client received
  bool websocket_upgrade = false;
  bool event_stream = false; // a GET that accepts text/event-stream (SSE)
};

struct http_response {
  int status = 200;
  std::string content_type; // empty when there is no body
  std::string body;
  http_headers headers;
  bool close = false; // close the connection after this response
  std::string user;   // the authenticated user's id, for the access log (never sent)
};

/// A parsed request target: the decoded path segments and the query parameters in order.
struct parsed_target {
  std::string path;
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;

  /// All values of parameter `name`, in order.
  std::vector<std::string> all(std::string_view name) const;
  /// The last value of `name`, if any.
  std::optional<std::string> last(std::string_view name) const;
};

/// Splits and percent-decodes a request target; nullopt when it is malformed.
std::optional<parsed_target> parse_target(std::string_view target);

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`, for query strings);
/// nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);
/// Encodes everything but unreserved characters, for one path segment.
std::string percent_encode(std::string_view s);

/// "Bad Request" for 400 and so on.
const char* status_reason(int status);

/// A response with a JSON body.
http_response json_response(int status, std::string body);
/// A response without a body.
http_response empty_response(int status);
/// The JSON error body of the contract.
http_response error_response(int status, std::string_view message);

/// The answer to a CORS preflight (OPTIONS) request, before add_cors_headers().
http_response preflight_response(const http_request& req);
/// Whether `origin` (scheme://host[:port]) may make credentialed cross-origin calls: it is
/// in `allowed` (config cors_allowed_origins, compared case-insensitively) or `allowed`
/// has "*".
bool origin_gets_credentials(std::string_view origin, const std::vector<std::string>& allowed);
/// Whether the request's Origin names the server it was sent to: its host[:port] equals
/// the Host header (a scheme's default port may be left out on either side).
bool same_origin(const http_request& req);
/// Adds the CORS headers: always Vary: Origin; with an Origin, Access-Control-Allow-Origin
/// reflecting it and the exposed headers, and Access-Control-Allow-Credentials only when
/// origin_gets_credentials(origin, allowed).
void add_cors_headers(const http_request& req, const std::vector<std::string>& allowed,
                      http_response& res);

} // namespace rheo
