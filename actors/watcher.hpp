// The WATCHER actor: one per upstream change feed, i.e. per watched collection. A feed
// thread blocks on the store's change feed (the embedded change log, or a MongoDB change
// stream) and hands each batch to the actor, which forwards it, in commit order, to the
// attached subscriptions.
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>

#include <atomic>
#include <memory>
#include <vector>

namespace rheo {

class change_feed;

struct watcher_state {
  static inline const char* name = "watcher";
  watcher_state();
  ~watcher_state(); // cancels the feed; its thread then ends by itself

  std::shared_ptr<change_feed> feed;
  std::shared_ptr<std::atomic<bool>> stop; // tells the feed thread to end
  std::vector<subscription_actor> subscriptions;
};

/// Blocks until every feed thread has ended (call after all actors are done, before
/// closing the store).
void wait_for_feed_threads();

/// @param broker told when the feed ends (retire).
/// @param feed the collection's change feed, already positioned (opened by the broker
///        before any session is told it has joined).
watcher_actor::behavior_type watcher(watcher_actor::stateful_pointer<watcher_state> self,
                                     broker_actor broker, std::shared_ptr<change_feed> feed,
                                     std::string coll);

} // namespace rheo
