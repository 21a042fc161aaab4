#include "net/server.hpp"

#include "config/log.hpp"
#include "net/http_session.hpp"
#include "net/server_state.hpp"
#include "net/tls.hpp"

#include <boost/asio/post.hpp>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace rheo {

namespace net = boost::asio;
using tcp = net::ip::tcp;

server_state::server_state(const server_config& c, http_handler& h, websocket_hub* w, metrics& m)
    : config(c), handler(h), hub(w), pool(threads_or_one_per_core(c.io_threads), m),
      acceptor(pool.shard(0).context()), workers(c.worker_threads), limits(c, m),
      proxies(c.trusted_proxies) {}

void server_state::do_accept() {
  // Each connection is pinned to one I/O thread, round robin.
  io_shard& shard = pool.next();
  acceptor.async_accept(
      shard.context(), [this, &shard](boost::system::error_code ec, tcp::socket socket) {
        if (ec) {
          if (ec == net::error::operation_aborted || stopping.load()) return;
          // EMFILE and friends: log and keep accepting; the connection is refused
          // by the kernel.
          log::warn("accept failed: " + ec.message());
        } else {
          boost::system::error_code ignored;
          socket.set_option(tcp::no_delay(true), ignored);
          auto session = std::make_shared<http_session>(std::move(socket), shard, *this);
          // Refused once stop() has begun: closed at once, as stop() closes idle sessions.
          if (connections.add(session)) session->run();
        }
        if (!stopping.load()) do_accept();
      });
}

server::server(const server_config& config, http_handler& handler, websocket_hub* hub,
               metrics& stats)
    : state_(std::make_unique<server_state>(config, handler, hub, stats)) {}

server::~server() {
  stop();
  wait();
}

std::uint16_t server::start() {
  auto& s = *state_;
  if (!s.config.tls_cert.empty())
    s.tls = std::make_shared<tls_context>(s.config.tls_cert, s.config.tls_key);
  boost::system::error_code ec;
  auto address = net::ip::make_address(s.config.bind, ec);
  if (ec) throw std::runtime_error("bind address '" + s.config.bind + "' is not an IP address");
  tcp::endpoint ep(address, s.config.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + s.config.bind + ":" +
                             std::to_string(s.config.port) + ": " + ec.message());
  auto port = s.acceptor.local_endpoint().port();
  s.do_accept();
  s.pool.start();
  return port;
}

void server::reload_tls() {
  if (state_->tls) state_->tls->reload();
}

bool server::tls() const {
  return !state_->config.tls_cert.empty();
}

void server::stop() {
  auto& s = *state_;
  if (s.stopping.exchange(true)) return;
  net::post(s.acceptor.get_executor(), [&s] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
  });
  // Idle HTTP sessions close now, busy ones after their response; WebSockets with 1001; and
  // WebSocket upgrades from now on get a 503.
  s.connections.shut_down_all();
  // In-flight requests finish on their own; the watchdog bounds how long that may take.
  // Started before the I/O threads are released: wait() gets past pool.join() only after
  // release(), so it sees the watchdog assigned (and joins it) even when stop() runs on
  // another thread.
  s.watchdog = std::thread([&s] {
    std::unique_lock lock(s.mutex);
    if (!s.stopped_cv.wait_for(lock, std::chrono::milliseconds(s.config.shutdown_timeout_ms),
                               [&s] { return s.stopped; })) {
      log::warn("shutdown timeout: closing remaining connections");
      s.pool.stop();
    }
  });
  // Each I/O thread ends once its last connection is done.
  s.pool.release();
}

void server::wait() {
  auto& s = *state_;
  s.pool.join();
  s.workers.join();
  {
    std::lock_guard lock(s.mutex);
    s.stopped = true;
  }
  s.stopped_cv.notify_all();
  if (s.watchdog.joinable()) s.watchdog.join();
}

bool server::responsive(std::chrono::milliseconds deadline) {
  auto& s = *state_;
  if (s.stopping.load()) return false;
  // Shared with the posted tasks: those that run after the deadline find it still alive.
  struct probe {
    std::mutex mutex;
    std::condition_variable done;
    unsigned pending = 0;
  };
  auto p = std::make_shared<probe>();
  p->pending = s.pool.size();
  for (unsigned i = 0; i < s.pool.size(); ++i)
    net::post(s.pool.shard(i).context(), [p] {
      std::lock_guard lock(p->mutex);
      if (--p->pending == 0) p->done.notify_all();
    });
  std::unique_lock lock(p->mutex);
  return p->done.wait_for(lock, deadline, [&] { return p->pending == 0; });
}

} // namespace rheo
