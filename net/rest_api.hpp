// The HTTP API without the transport: routing by mount (section 1 of the API
// contract), the REST data API (section 3), /_ping, /_metrics, static files and CORS.
// The transport (http_session) turns Beast requests into http_request and writes
// the http_response back.
//
// Thread-safety: handle() and resolve_stream() may be called concurrently from any
// thread; the object is immutable after construction.
#pragma once

#include "config/config.hpp"
#include "net/http_handler.hpp"

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

class rest_api : public http_handler {
public:
  rest_api(const server_config& config, store& db, security& sec);

  http_response handle(const http_request& req) const override;

  /// For a WebSocket handshake: resolves `/<coll>/_streams/<uri>` (404 unknown collection
  /// or stream, 400 bad avars, 400 without upgrade headers), or returns the error response.
  std::variant<stream_target, http_response> resolve_stream(const http_request& req) const override;

  /// True when handling `req` may block on a store write (run it off the I/O threads).
  bool is_blocking(const http_request& req) const override;

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

  const server_config& config_;
  store& store_;
  security& security_;
};

} // namespace rheo
