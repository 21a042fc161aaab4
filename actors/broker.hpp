// The BROKER actor: creates and finds watchers and subscriptions (and live queries, which
// it handles as subscriptions), attaches sessions to subscriptions, and tears down subscriptions
// without sessions and watchers without subscriptions (and listeners, see watch_atom). Every
// membership change goes through it, so a session never joins a subscription that is being torn
// down. It counts the watchers and subscriptions it spawns on the metrics it was given
// (rheo_upstream_feeds, rheo_subscriptions) and hands the metrics to them.
//
// Thread-safety: an actor; its state is touched only by its behavior, one message at a
// time, on a CAF scheduler thread. Other threads reach it only through messages. It opens
// each watcher's change feed (store::watch) on that thread, synchronously.
#pragma once

#include "actors/actors.hpp"

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <string>
#include <unordered_map>

namespace rheo {

struct metrics;
class replay_service;

/// What a broker is set up with besides its store, metrics and replay pool.
struct broker_options {
  /// Distinct live queries a collection may have at once; a client asking for one more
  /// gets an error (caf::sec::invalid_argument) naming max_live_queries_per_collection.
  std::size_t max_live_queries = 1000;
  /// The node's presence link (actors/presence_link.hpp), a presence_link_actor: where the
  /// presence actors share their members and broadcasts (null: presence is not served).
  caf::actor presence;
  /// How long presence changes wait to go out together (presence_interval_ms).
  std::chrono::milliseconds presence_interval{250};
};

struct broker_state {
  static inline const char* name = "broker";

  struct watcher_entry {
    watcher_actor handle;
    std::size_t users = 0; // subscriptions and listeners (watch_atom) attached to it
    std::string key;       // db + '\0' + coll
  };
  struct subscription_entry {
    subscription_actor handle;
    std::string key;
    watcher_actor watcher;
    std::size_t sessions = 0;
    std::string live_collection; // a live query's db + '\0' + coll (counted there), else ""
  };

  store* storage = nullptr;
  metrics* stats = nullptr;
  replay_service* replays = nullptr;
  broker_options options;
  std::unordered_map<std::string, watcher_actor> watchers_by_key; // live watchers
  std::unordered_map<caf::actor_addr, watcher_entry> watchers;
  std::unordered_map<std::string, subscription_actor> subscriptions_by_key; // joinable
  std::unordered_map<caf::actor_addr, subscription_entry> subscriptions;
  std::unordered_map<caf::actor_addr, caf::actor_addr> session_to_subscription;
  /// Live queries by collection (the watcher's key): how many run.
  std::unordered_map<std::string, std::size_t> live_queries;
  /// The presence actors of streams (by presence_directory::key), with their sessions.
  struct presence_entry {
    caf::actor handle; // a presence_actor
    std::size_t sessions = 0;
  };
  std::unordered_map<std::string, presence_entry> presences;
  std::unordered_map<caf::actor_addr, std::string> session_to_presence;
  /// Listeners attached with watch_atom (edge relays): their watcher.
  std::unordered_map<caf::actor_addr, watcher_actor> listeners;
};

/// @param storage the store whose change feeds the watchers follow.
/// @param stats what the broker, its watchers and subscriptions count on; must outlive them.
/// @param replays where subscriptions open resuming sessions' replay feeds (null: resume
///        tokens are ignored) and live queries read the store (null: no live queries); must
///        outlive them.
/// @param options limits, and where presence is published.
broker_actor::behavior_type broker(broker_actor::stateful_pointer<broker_state> self,
                                   store* storage, metrics* stats, replay_service* replays,
                                   broker_options options);

} // namespace rheo
