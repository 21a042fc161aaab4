// The HTTP API without the transport: routing by mount (section 1 of the API
// contract), the REST data API (section 3), /_ping, /_metrics, static files and CORS.
// The transport (http_session) turns Beast requests into http_request and writes
// the http_response back.
//
// Thread-safety: handle() and resolve_stream() may be called concurrently from any
// thread; the object is immutable after construction.
#pragma once

#include "config/config.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/document/value.hpp"

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace rheo {

class store;
class security;
struct acl_rule;
struct principal;

struct http_request {
  std::string method; // "GET", "POST", ...
  std::string target; // path and query, as received
  std::string body;
  std::string if_match;
  std::string origin;
  std::string accept;
  std::string access_control_request_headers;
  std::string authorization;
  std::string cookie;
  std::string remote_address;
  bool websocket_upgrade = false;
};

struct http_response {
  int status = 200;
  std::string content_type; // empty when there is no body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false; // close the connection after this response
};

/// The target of a WebSocket handshake once it has been authorized and resolved.
struct stream_target {
  std::string db;
  std::string coll;
  std::string stream;                // the stream's uri
  object definition;                 // the stream definition {"uri":..., "stages":[...]} as stored
  object avars;                      // the client's variable bindings
  std::string key;                   // sessions with equal keys share one subscription
  std::optional<object> user;        // @user of the authenticated client
  std::optional<object> read_filter; // the ACL readFilter, resolved
  pipeline stages;                   // the definition compiled for this client
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

/// The JSON error body of the contract.
http_response error_response(int status, std::string_view message);
/// "Bad Request" for 400 and so on.
const char* status_reason(int status);

class rest_api {
public:
  rest_api(const server_config& config, store& db, security& sec);

  http_response handle(const http_request& req) const;

  /// For a WebSocket handshake: resolves `/<coll>/_streams/<uri>` (404 unknown collection
  /// or stream, 400 bad avars, 400 without upgrade headers), or returns the error response.
  std::variant<stream_target, http_response> resolve_stream(const http_request& req) const;

  /// True when handling `req` may block on a store write (run it off the I/O threads).
  static bool is_blocking(const http_request& req);

private:
  struct route;
  struct access; // who is asking and which ACL rule let them in
  std::optional<route> match_mount(const parsed_target& t) const;
  http_response dispatch(const http_request& req, const parsed_target& t,
                         std::vector<std::pair<std::string, std::string>>& extra_headers) const;
  http_response handle_data(const http_request& req, const parsed_target& t, const route& r,
                            const access& who) const;
  /// Authenticates and authorizes; returns an error response when not allowed.
  std::optional<http_response>
  check_access(const http_request& req, std::string_view method, std::string_view path, access& who,
               std::vector<std::pair<std::string, std::string>>& extra_headers) const;
  void add_cors(const http_request& req, http_response& res) const;

  const server_config& config_;
  store& store_;
  security& security_;
};

} // namespace rheo
