// The realtime service: owns the broker actor and the replay pool, and turns accepted
// WebSocket upgrades and SSE requests into session actors with their connections. Counts
// the sessions (rheo_sessions_open) on the metrics it was given and hands the metrics to
// the broker.
//
// Thread-safety: accept() is called on the I/O thread of the connection it is given;
// stop() once, after the HTTP server has stopped.
#pragma once

#include "actors/actors.hpp"
#include "config/config.hpp"
#include "net/presence_directory.hpp"
#include "net/websocket_hub.hpp"

#include <caf/fwd.hpp>
#include <caf/intrusive_ptr.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

namespace rheo {

class replay_pool;
class replay_service;
class store;
struct metrics;

class realtime : public websocket_hub {
public:
  /// Every argument must outlive the actors (the broker, and all it spawns). The
  /// destructor must run after the actor system's actors are done (it joins the replay
  /// pool they use).
  realtime(caf::actor_system& system, store& storage, const server_config& config, metrics& stats);
  ~realtime() override;

  void accept(io_shard& shard, connection_stream stream,
              boost::beast::http::request<boost::beast::http::string_body> req,
              boost::beast::flat_buffer buffer, stream_target target,
              connection_registry& connections) override;
  /// Stops the broker (and with it every watcher and subscription).
  void stop();

  /// The broker and the replay pool, for a cluster's core to serve its edges from.
  broker_actor broker() const;
  replay_service& replays();
  /// Who is present on which stream (GET .../_presence reads it): on a core, or a node
  /// without a cluster, everyone in the cluster; on an edge, nobody (it asks the core).
  const presence_directory& presence() const { return presence_; }
  /// The node's presence link (actors/presence_link.hpp): an edge's uplink, else the
  /// exchange, for the node's cluster link to connect.
  caf::actor presence_link() const;

private:
  /// What a broadcast stream's WebSocket does with the client's text messages.
  std::function<void(std::string_view)> broadcast_filter(session_actor session, bool allowed);

  caf::actor_system& system_;
  const server_config& config_;
  metrics& stats_;
  presence_directory presence_;   // published to by the presence exchange
  std::string connection_prefix_; // of connection ids: the node's name and a random tag
  std::atomic<std::uint64_t> next_connection_{1};
  std::unique_ptr<replay_pool> replays_; // joined by the destructor, after the actors
  caf::strong_actor_ptr broker_;         // the BROKER (actors/broker.hpp); null once stopped
  caf::strong_actor_ptr presence_link_;  // the exchange or the uplink; null once stopped
};

} // namespace rheo
