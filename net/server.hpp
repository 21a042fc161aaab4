// The HTTP/1.1 (and WebSocket upgrade) server: a listener on a pool of I/O threads (one
// io_context each, see net/io_pool.hpp), one http_session per connection pinned to one of
// them, blocking store writes offloaded to a worker pool so that I/O threads never wait on
// a commit. The server owns the registry of every open connection, HTTP session or
// WebSocket (net/connection_registry.hpp), which stop() shuts down.
//
// Thread-safety: start() and wait() are called from the owning thread; stop() may be
// called from any thread (e.g. a signal handler thread) and is idempotent.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace rheo {

struct server_state;

class http_handler;
class websocket_hub;
struct metrics;

class server {
public:
  /// `handler` answers the requests; `hub` (may be null) takes WebSocket upgrades of
  /// stream URLs. The I/O threads, their HTTP sessions and WebSockets count on `stats`.
  /// Every argument must outlive the server.
  server(const server_config& config, http_handler& handler, websocket_hub* hub, metrics& stats);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Reads the TLS certificate and key (when configured), binds and starts accepting;
  /// returns the bound port. Throws std::runtime_error with one clear line when the
  /// address cannot be bound or the certificate cannot be used.
  std::uint16_t start();
  /// Reads the TLS certificate and key files again, for connections accepted from now
  /// on; throws std::runtime_error (and keeps the old ones) when they cannot be used.
  /// Does nothing without TLS. Any thread.
  void reload_tls();
  bool tls() const;
  /// Stops accepting, lets in-flight requests finish (up to the configured timeout),
  /// closes idle connections and WebSockets (1001).
  void stop();
  /// Blocks until the server has stopped and every thread has been joined.
  void wait();
  /// True when a task posted to every I/O thread has run within `deadline` (a liveness
  /// check for the service manager's watchdog). Any thread.
  bool responsive(std::chrono::milliseconds deadline);

private:
  std::unique_ptr<server_state> state_; // net/server_state.hpp: shared with the HTTP sessions
};

} // namespace rheo
