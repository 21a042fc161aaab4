#include "actors/realtime.hpp"

#include "actors/broker.hpp"
#include "actors/cluster_support.hpp"
#include "actors/presence_link.hpp"
#include "actors/replay.hpp"
#include "actors/session.hpp"
#include "net/connection_registry.hpp"
#include "net/metrics.hpp"
#include "net/sse_connection.hpp"
#include "net/ws_connection.hpp"
#include "storage/document/json.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

namespace rheo {

realtime::realtime(caf::actor_system& system, store& storage, const server_config& config,
                   metrics& stats)
    : system_(system), config_(config), stats_(stats),
      replays_(std::make_unique<replay_pool>(storage, 2)) {
  // Connection ids are unique in the cluster, and across restarts of a node (whose old ids
  // another node may still list for a moment): the node's name, a random tag, a number.
  connection_prefix_ = (config.node_name.empty() ? std::string("rheo") : config.node_name) + "-" +
                       make_nonce().substr(0, 6) + "-";
  const auto interval = std::chrono::milliseconds(config.presence_interval_ms);
  caf::actor link =
      config.cluster_join.empty()
          ? caf::actor_cast<caf::actor>(spawn_presence_exchange(system, &presence_, interval))
          : caf::actor_cast<caf::actor>(spawn_presence_uplink(system, config.node_name));
  presence_link_ = caf::actor_cast<caf::strong_actor_ptr>(link);
  broker_ = caf::actor_cast<caf::strong_actor_ptr>(
      system.spawn(rheo::broker, &storage, &stats, static_cast<replay_service*>(replays_.get()),
                   broker_options{config.max_live_queries_per_collection, link, interval}));
}

std::function<void(std::string_view)> realtime::broadcast_filter(session_actor session,
                                                                 bool allowed) {
  // {"broadcast":<JSON>} of at most 4 KiB, from a client that may POST to the collection, at
  // most broadcast_per_second (a bucket of as many, refilled continuously); anything else
  // is dropped and counted, and the connection stays open. Other JSON is ignored.
  const double rate = config_.broadcast_per_second;
  return [session = std::move(session), allowed, rate, stats = &stats_, tokens = rate,
          at = std::chrono::steady_clock::now()](std::string_view text) mutable {
    auto drop = [&](broadcast_drop why) {
      stats->broadcasts_dropped[static_cast<std::size_t>(why)].fetch_add(1,
                                                                         std::memory_order_relaxed);
    };
    if (text.size() > 4096) return drop(broadcast_drop::size);
    value v;
    try {
      v = parse_json(text, "broadcast");
    } catch (const std::exception&) {
      return drop(broadcast_drop::not_json);
    }
    const value* b = v.is_object() ? find_field(v.as_object(), "broadcast") : nullptr;
    if (!b) return;
    if (!allowed) return drop(broadcast_drop::forbidden);
    const auto now = std::chrono::steady_clock::now();
    tokens = std::min(rate, tokens + std::chrono::duration<double>(now - at).count() * rate);
    at = now;
    if (tokens < 1) return drop(broadcast_drop::rate);
    tokens -= 1;
    std::string json;
    append_json(json, *b);
    caf::anon_send(session, broadcast_atom::value, std::move(json));
  };
}

realtime::~realtime() {
  stop();
}

void realtime::accept(io_shard& shard, connection_stream stream,
                      boost::beast::http::request<boost::beast::http::string_body> req,
                      boost::beast::flat_buffer buffer, stream_target target,
                      connection_registry& connections) {
  push_connection::options opts;
  opts.max_client_message_bytes = config_.ws_max_client_frame_bytes;
  opts.queue_limit_bytes = static_cast<std::int64_t>(config_.ws_queue_limit_bytes);
  opts.ping_interval = std::chrono::milliseconds(config_.ws_ping_interval_ms);
  opts.pong_timeout = std::chrono::milliseconds(config_.ws_pong_timeout_ms);
  std::shared_ptr<push_connection> conn;
  if (target.sse)
    conn = std::make_shared<sse_connection>(shard, std::move(stream), req.version(),
                                            std::move(target.response_headers), opts);
  else
    conn = std::make_shared<ws_connection>(shard, std::move(stream), std::move(req),
                                           std::move(buffer), opts);
  for (auto& h : target.held)
    conn->hold(std::move(h));
  if (!connections.add(conn)) {
    conn->reject(503, error_response(503, "server shutting down").body);
    return;
  }
  // Set past the refusal: a session refused at shutdown gets no access line (it would say 101).
  conn->on_finished = std::move(target.on_finished);
  subscription_spec spec;
  spec.db = target.db;
  spec.coll = target.coll;
  spec.stream = target.stream;
  spec.key = target.key;
  spec.definition = std::move(target.definition);
  spec.stages = std::move(target.stages);
  spec.live = std::move(target.live);
  const bool broadcast = target.broadcast;
  const bool may_broadcast = target.may_broadcast;
  if (target.presence_info || target.presence_events || target.broadcast) {
    presence_join join;
    join.id = connection_prefix_ +
              std::to_string(next_connection_.fetch_add(1, std::memory_order_relaxed));
    join.user = std::move(target.presence_user);
    join.info = std::move(target.presence_info);
    join.events = target.presence_events;
    join.broadcasts = target.broadcast;
    spec.presence = std::move(join);
  }
  auto hdl = counted(system_.spawn(session, conn, caf::actor_cast<broker_actor>(broker_),
                                   std::move(spec), std::move(target.resume_after)),
                     stats_.sessions_open);
  // Set here, on the connection's own thread (this is called from its HTTP session), so
  // that it is in place before any close() posted to that thread can finish it. The
  // session then quits, and the broker (which monitors it) removes it from its subscription.
  conn->on_closed = [hdl] { caf::anon_send(hdl, closed_atom::value); };
  if (broadcast && !target.sse) conn->on_text = broadcast_filter(hdl, may_broadcast);
}

broker_actor realtime::broker() const {
  return caf::actor_cast<broker_actor>(broker_);
}

replay_service& realtime::replays() {
  return *replays_;
}

caf::actor realtime::presence_link() const {
  return caf::actor_cast<caf::actor>(presence_link_);
}

void realtime::stop() {
  if (broker_) {
    caf::anon_send_exit(caf::actor_cast<caf::actor>(broker_), caf::exit_reason::user_shutdown);
    broker_ = nullptr;
  }
  if (presence_link_) {
    caf::anon_send_exit(caf::actor_cast<caf::actor>(presence_link_),
                        caf::exit_reason::user_shutdown);
    presence_link_ = nullptr;
  }
}

} // namespace rheo
