// The server's shared state, seen by the listener and the HTTP sessions.
//
// Thread-safety: `sessions` and `stopped` are guarded by `mutex`; `stopping` is atomic;
// `pool` is thread-safe as io_pool says; `watchdog` is set once by stop() before it releases
// the pool, and read by wait() only after joining the pool's threads; the rest is immutable
// after start().
#pragma once

#include "config/config.hpp"
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
#include <unordered_map>
#include <vector>

namespace rheo {

class http_session;

struct server::impl {
  impl(const server_config& c, http_handler& h, websocket_hub* w, metrics& m);

  void do_accept();
  void register_session(const std::shared_ptr<http_session>& s);
  void unregister_session(const http_session* s);

  const server_config& config;
  http_handler& handler;
  websocket_hub* hub;
  io_pool pool;
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::thread_pool workers;
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::unordered_map<const http_session*, std::weak_ptr<http_session>> sessions;
  std::condition_variable stopped_cv;
  bool stopped = false;
  std::thread watchdog;
};

} // namespace rheo
