// The WATCHER actor: one per upstream change feed, i.e. per watched collection. It owns the
// feed (the embedded change log, or a MongoDB change stream): it starts it with a sink
// (watcher_sink) that sends what the store pushes (event batches, metadata changes, positions,
// the end of the feed) straight to the attached listeners — the subscriptions and, on a
// cluster's core, edge relays — in commit order, from the store's thread. The actor is not on
// the events' path: it attaches and detaches listeners (each first told the position from
// which it receives events), tells the broker when the feed ends, and cancels the feed
// (joining any thread the feed runs) when it terminates.
//
// Thread-safety: the actor's state is touched only by its behavior. watcher_sink is called
// on a store thread and by the actor; a mutex guards its listeners and position, and every
// message to a listener is enqueued under it (see watcher_sink).
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>
#include <string>

namespace rheo {

class change_feed;
class watcher_sink;
struct metrics;

struct watcher_state {
  static inline const char* name = "watcher";

  /// The feed's sink, which holds the listeners.
  std::shared_ptr<watcher_sink> sink;
};

/// @param broker told when the feed ends (retire).
/// @param feed the collection's change feed, already positioned (opened by the broker
///        before any session is told it has joined); started here, cancelled when the
///        actor terminates.
/// @param stats counts the events received (rheo_events_received_total); must outlive the
///        feed.
watcher_actor::behavior_type watcher(watcher_actor::stateful_pointer<watcher_state> self,
                                     broker_actor broker, std::shared_ptr<change_feed> feed,
                                     std::string coll, metrics* stats);

} // namespace rheo
