#include "actors/realtime.hpp"

#include "actors/broker.hpp"
#include "actors/session.hpp"
#include "net/connection_registry.hpp"
#include "net/metrics.hpp"
#include "net/ws_connection.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

namespace rheo {

struct realtime::impl {
  impl(caf::actor_system& s, const server_config& c, metrics& m) : system(s), config(c), stats(m) {}
  caf::actor_system& system;
  const server_config& config;
  metrics& stats;
  broker_actor broker;
};

realtime::realtime(caf::actor_system& system, store& db, const server_config& config,
                   metrics& stats)
    : impl_(std::make_unique<impl>(system, config, stats)) {
  impl_->broker = system.spawn(broker, &db, &stats);
}

realtime::~realtime() {
  stop();
}

void realtime::accept(io_shard& shard, boost::asio::ip::tcp::socket socket,
                      boost::beast::http::request<boost::beast::http::string_body> req,
                      boost::beast::flat_buffer buffer, stream_target target,
                      connection_registry& connections) {
  auto& im = *impl_;
  ws_connection::options opts;
  opts.max_client_message_bytes = im.config.ws_max_client_frame_bytes;
  opts.queue_limit_bytes = static_cast<std::int64_t>(im.config.ws_queue_limit_bytes);
  opts.ping_interval = std::chrono::milliseconds(im.config.ws_ping_interval_ms);
  opts.pong_timeout = std::chrono::milliseconds(im.config.ws_pong_timeout_ms);
  auto conn = std::make_shared<ws_connection>(shard, std::move(socket), std::move(req),
                                              std::move(buffer), opts);
  if (!connections.add(conn)) {
    conn->reject(503, error_response(503, "server shutting down").body);
    return;
  }
  subscription_spec spec;
  spec.db = target.db;
  spec.coll = target.coll;
  spec.stream = target.stream;
  spec.key = target.key;
  spec.definition = std::move(target.definition);
  spec.stages = std::move(target.stages);
  auto hdl =
      counted(im.system.spawn(session, conn, im.broker, std::move(spec)), im.stats.sessions_open);
  // Set here, on the connection's own thread (this is called from its HTTP session), so
  // that it is in place before any close() posted to that thread can finish it. The
  // session then quits, and the broker (which monitors it) removes it from its subscription.
  conn->on_closed = [hdl] { caf::anon_send(hdl, closed_atom::value); };
}

void realtime::stop() {
  if (impl_->broker) {
    caf::anon_send_exit(impl_->broker, caf::exit_reason::user_shutdown);
    impl_->broker = nullptr;
  }
}

} // namespace rheo
