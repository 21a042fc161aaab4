// The server's shared state, seen by the listener and the HTTP sessions.
//
// Thread-safety: `stopped` is guarded by `mutex`; `stopping` is atomic; `pool` and
// `connections` and `limits` are thread-safe as io_pool, connection_registry and
// client_limits say; `watchdog` is set
// once by stop() before it releases the pool, and read by wait() only after joining the
// pool's threads; `tls` is thread-safe as tls_context says; the rest is immutable after
// start().
#pragma once

#include "config/config.hpp"
#include "config/trusted_proxies.hpp"
#include "net/client_limits.hpp"
#include "net/connection_registry.hpp"
#include "net/http_handler.hpp"
#include "net/io_pool.hpp"
#include "net/server.hpp"
#include "net/websocket_hub.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace rheo {

class tls_context;

struct server_state {
  server_state(const server_config& c, http_handler& h, websocket_hub* w, metrics& m);

  void do_accept();

  const server_config& config;
  http_handler& handler;
  websocket_hub* hub;
  io_pool pool;
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::thread_pool workers;
  std::atomic<bool> stopping{false};
  // Every open HTTP session and WebSocket, shut down by stop().
  connection_registry connections;
  // What each client address may open and send.
  client_limits limits;
  trusted_proxies proxies;          // from config.trusted_proxies
  std::shared_ptr<tls_context> tls; // set by start() when tls_cert is configured
  std::mutex mutex;
  std::condition_variable stopped_cv;
  bool stopped = false;
  std::thread watchdog;
};

} // namespace rheo
