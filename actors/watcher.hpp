// The WATCHER actor: one per upstream change feed, i.e. per watched collection. It starts
// the store's change feed (the embedded change log, or a MongoDB change stream) with a sink
// that sends what the store pushes (events, metadata changes, the end of the feed) to the
// actor, which forwards it, in commit order, to the attached subscriptions (and, on a
// cluster's core, edge relays), and tells each, when it is attached, the position from
// which it receives events. The actor owns
// the feed: it cancels it (joining any thread the feed runs) when it terminates.
//
// Thread-safety: the sink is called on a store thread; it only counts the events on the
// (atomic) metrics and sends messages to the actor through a weak reference; everything
// else runs on the actor.
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>
#include <vector>

namespace rheo {

class change_feed;
struct metrics;

struct watcher_state {
  static inline const char* name = "watcher";

  std::vector<feed_listener_actor> listeners; // subscriptions and (on a core) edge relays
  /// What has been forwarded so far, as a resume token: the feed's start, then the last
  /// event's token or the last position the feed told. Empty when unknown.
  std::string position;
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
