// The HTTP API without the transport: routing by mount (section 1 of the API
// contract), the REST data API (section 3) with its indexes and explain (section 9),
// /_ping, /_metrics, static files and CORS.
// The server (net/server.hpp) hands it every request as an http_handler. Inside, each
// request is located to a resource and answered by the handler the route table
// (net/rest/routes.hpp) names for that resource and method.
//
// Thread-safety: handle() and resolve_stream() may be called concurrently from any
// thread; the object is immutable after construction.
#pragma once

#include "config/config.hpp"
#include "net/cluster_view.hpp"
#include "net/http_handler.hpp"

#include <atomic>
#include <variant>

namespace rheo {

class presence_directory;

class store;
class security;
struct metrics;

class rest_api : public http_handler {
public:
  /// Serves `db`'s data under `config`'s mounts as `sec` allows; GET /_metrics renders
  /// `stats`, and counts on it the refusals of the limits it checks. Every argument must outlive
  /// the API.
  rest_api(const server_config& config, store& db, security& sec, metrics& stats);

  http_response handle(const http_request& req) const override;

  /// For a WebSocket handshake: resolves `/<coll>/_streams/<uri>` (404 unknown collection
  /// or stream, 400 bad avars, 400 without upgrade headers), or returns the error response.
  std::variant<stream_target, http_response, not_a_stream>
  resolve_stream(const http_request& req) const override;

  /// True when handling `req` may block (run it off the I/O threads): every method but GET,
  /// HEAD and OPTIONS, so document and collection writes and the creation (which builds the
  /// index) and dropping of indexes; aggregations; any request whose Basic password must be
  /// checked with argon2id (not cached, not a token); and, on a cluster edge whose store
  /// calls go to the core, every request but OPTIONS (/_cluster on any node of a cluster).
  bool is_blocking(const http_request& req) const override;

  /// The cluster this node is in (null: none), for /_cluster and /_metrics; set before
  /// the server starts.
  void set_cluster(const cluster_view* cluster);
  /// Who is present on this node's streams, for GET .../_presence (null: none); set before
  /// the server starts.
  void set_presence(const presence_directory* presence);

private:
  std::atomic<const cluster_view*> cluster_{nullptr};
  std::atomic<const presence_directory*> presence_{nullptr};
  const server_config& config_;
  store& store_;
  security& security_;
  metrics& metrics_; // renders /_metrics; counts the limits' refusals
};

} // namespace rheo
