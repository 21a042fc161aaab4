// A rheo cluster (section 8 of the API contract) over CAF's io middleman: one core, which
// owns the store and the upstream change feeds, and edges, which serve HTTP and WebSocket
// clients like any node and take from the core what they need.
//
// Joining. The core publishes a GATEKEEPER, the only actor a connecting node learns. The
// edge says hello (its name, its build's fingerprint, a nonce), the core answers with a
// nonce of its own and a proof that it knows the secret (an HMAC-SHA256 keyed with it over
// both nonces), the edge checks that proof and sends its own over the same nonces. Only then
// does the core hand it a CORE PEER: the actor the edge asks for store calls and feeds. The
// secret never crosses the wire; a nonce is used once. A fingerprint (rheo's version and the
// names of its message types) other than the core's is refused, with a log line on both
// sides.
//
// Feeds. An edge's watchers follow feeds from the core: a feed asks the core peer to watch
// db.coll after a token; the core spawns a RELAY that listens to the core's own watcher of
// db.coll (one upstream feed per collection for the whole cluster) and sends each batch to
// the edge's RECEIVER, once per edge however many sessions the edge has. A relay asked to
// start after a token replays the change log from it (on the replay pool), holding the live
// batches meanwhile, and hands over to live without gap or repeat. When the link drops, the
// edge keeps its clients, reconnects with backoff, and asks again from the last token each
// feed delivered.
//
// Store calls. An edge without a database of its own forwards every store call to the core
// as a typed request (storage/remote), run there by a pool of blocking workers.
//
// Presence. Each edge's presence uplink talks to the core's presence exchange through its core
// peer (actors/presence_link.hpp): members and broadcasts cross the link once per edge, and an
// edge whose core peer ends (the link dropped or timed out) takes its members with it.
//
// Thread-safety: cluster_core and cluster_edge are created, started and stopped by main's
// thread; their status_json() and metrics_text() may be called from any thread; the
// transport and opener that cluster_edge hands out may be called from any thread.
#pragma once

#include "actors/actors.hpp"
#include "net/cluster_view.hpp"

#include <caf/fwd.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace rheo {

class change_feed;
class replay_service;
class store;
struct metrics;
struct server_config;

/// Sets up `cfg` for a node of a cluster: loads the middleman (and the OpenSSL manager for
/// TLS links), sets the heartbeat and connection timeout, and the application identifier.
/// Does nothing unless `config` names a cluster. Before the actor system is created.
void configure_cluster(caf::actor_system_config& cfg, const server_config& config);

/// A rheo build's cluster fingerprint: its version and the names of the message types it
/// registers. Nodes of a cluster must have the same.
std::string cluster_fingerprint();

/// The core's side of a cluster: publishes the gatekeeper on cluster_listen.
class cluster_core final : public cluster_view {
public:
  /// Every argument must outlive this object and the actors it spawns. `broker` is the
  /// core's broker (realtime::broker()), `replays` its replay pool, `presence` its presence
  /// exchange (realtime::presence_link(), actors/presence_link.hpp).
  cluster_core(caf::actor_system& system, const server_config& config, store& storage,
               broker_actor broker, replay_service& replays, caf::actor presence, metrics& stats);
  ~cluster_core() override;

  /// Publishes the gatekeeper; returns the port. Throws std::runtime_error.
  std::uint16_t start(std::string node_name);
  /// Stops accepting nodes and stops the actors. Idempotent.
  void stop();

  std::string status_json(std::int64_t sessions, std::int64_t subscriptions) const override;
  std::string metrics_text() const override;
  const std::string& node_name() const override;
  bool forwards_store_calls() const override { return false; }

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

/// The edge's side of a cluster: its link to the core, kept up by a thread of its own.
class cluster_edge final : public cluster_view {
public:
  /// `local`: the edge's own store (MongoDB), which takes the store calls itself; null
  /// (embedded store) forwards them to the core. Arguments must outlive this object.
  cluster_edge(caf::actor_system& system, const server_config& config, metrics& stats,
               store* local);
  ~cluster_edge() override;

  /// The store this edge serves: its calls go to the core (or to `local`), its feeds come
  /// from the core.
  store& storage();
  /// Starts the link thread, and waits up to `first_link` for the first link to be up
  /// (logging when it is not; the thread keeps trying). `presence` is the edge's presence
  /// uplink (realtime::presence_link(), actors/presence_link.hpp), told when the link is up
  /// and when it is down.
  void start(std::string node_name, std::chrono::milliseconds first_link, caf::actor presence);
  /// Stops the link thread. Idempotent.
  void stop();

  std::string status_json(std::int64_t sessions, std::int64_t subscriptions) const override;
  std::string metrics_text() const override;
  const std::string& node_name() const override;
  bool forwards_store_calls() const override { return forwards_; }
  std::shared_ptr<const std::string> presence_list(const std::string& key) const override;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
  std::unique_ptr<store> storage_;
  bool forwards_;
};

} // namespace rheo
