// The BROKER actor: creates and finds watchers and subscriptions, attaches sessions to
// subscriptions, and tears down subscriptions without sessions and watchers without
// subscriptions (and listeners, see watch_atom). Every membership change goes through it, so a
// session never joins a subscription that is being torn down. It counts the watchers and
// subscriptions it spawns on the metrics it was given (rheo_upstream_feeds, rheo_subscriptions) and
// hands the metrics to them.
//
// Thread-safety: an actor; its state is touched only by its behavior, one message at a
// time, on a CAF scheduler thread. Other threads reach it only through messages. It opens
// each watcher's change feed (store::watch) on that thread, synchronously.
#pragma once

#include "actors/actors.hpp"

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>

#include <string>
#include <unordered_map>

namespace rheo {

struct metrics;
class replay_service;

struct broker_state {
  static inline const char* name = "broker";

  struct watcher_entry {
    watcher_actor handle;
    std::size_t users = 0; // subscriptions and listeners (watch_atom) attached to it
  };
  struct subscription_entry {
    subscription_actor handle;
    std::string key;
    watcher_actor watcher;
    std::size_t sessions = 0;
  };

  store* storage = nullptr;
  metrics* stats = nullptr;
  replay_service* replays = nullptr;
  std::unordered_map<std::string, watcher_actor> watchers_by_key; // live watchers
  std::unordered_map<caf::actor_addr, watcher_entry> watchers;
  std::unordered_map<std::string, subscription_actor> subscriptions_by_key; // joinable
  std::unordered_map<caf::actor_addr, subscription_entry> subscriptions;
  std::unordered_map<caf::actor_addr, caf::actor_addr> session_to_subscription;
  /// Listeners attached with watch_atom (edge relays): their watcher.
  std::unordered_map<caf::actor_addr, watcher_actor> listeners;
};

/// @param storage the store whose change feeds the watchers follow.
/// @param stats what the broker, its watchers and subscriptions count on; must outlive them.
/// @param replays where subscriptions open resuming sessions' replay feeds (null: resume
///        tokens are ignored); must outlive them.
broker_actor::behavior_type broker(broker_actor::stateful_pointer<broker_state> self,
                                   store* storage, metrics* stats, replay_service* replays);

} // namespace rheo
