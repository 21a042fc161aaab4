// The PRESENCE actor: one per stream with "presence": true or "broadcast": true that has
// sessions (section 11 of the contract). On a broadcast stream it relays each session's
// broadcasts to every other session of the stream, built once and posted once per I/O thread. It
// holds the stream's members (a connection id, the authenticated user, the client's `presence`
// object and when it joined), and tells the sessions that asked for presence events who joined and
// who left, coalesced: changes wait up to `presence_interval_ms` and go out as one frame, built
// once and posted once per I/O thread (actors/audience.hpp), so N joins cost about one frame per
// interval per listener, not N. A listener that joins first gets the members known so far as one
// "joined" frame. The list GET /<coll>/_streams/<uri>/_presence answers is published to the node's
// presence_directory at each of those frames.
//
// The broker joins sessions to it and tells it when they have gone (it monitors them), so a
// connection that closes or stops answering pings leaves with its session.
//
// Thread-safety: an actor; its state is touched only by its behavior, on a CAF scheduler
// thread. It reaches connections only by posting to their I/O threads and the directory
// under its mutex.
#pragma once

#include "actors/actors.hpp"
#include "actors/audience.hpp"

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace rheo {

struct metrics;
class presence_directory;

using flush_atom = caf::atom_constant<caf::atom("flush")>;

/// The PRESENCE actor interface.
using presence_actor = caf::typed_actor<
    // A session of the stream joins: as a member (join.info set), as a listener of presence
    // events (join.events, with its connection in the handle), or both (from the broker).
    caf::reacts_to<join_atom, session_actor, presence_join, client_handle>,
    // The session has gone (from the broker).
    caf::reacts_to<closed_atom, session_actor>,
    // A broadcast of the session's client (from its session): the JSON of its value.
    caf::reacts_to<broadcast_atom, session_actor, std::string>,
    // Internal: the coalescing interval has passed.
    caf::reacts_to<flush_atom>>;

struct presence_state {
  static inline const char* name = "presence";
  ~presence_state();

  struct member {
    std::string id;
    object entry; // {"id","user","info","since"}
  };
  struct listener {
    push_transport transport{};
    unsigned shard = 0;
  };
  /// A session of the stream, as its broadcasts name it, and its connection (compared only).
  struct sender {
    object from; // {"id","user","info"}
    const push_connection* conn = nullptr;
    push_transport transport{};
    unsigned shard = 0;
  };

  std::string key; // presence_directory::key of the stream
  std::uint64_t owner = 0;
  presence_directory* directory = nullptr;
  metrics* stats = nullptr;
  std::chrono::milliseconds interval{250};
  std::unordered_map<caf::actor_addr, member> members;
  std::unordered_map<caf::actor_addr, listener> listeners;
  audience audience_;                                  // presence events
  std::unordered_map<caf::actor_addr, sender> senders; // broadcast streams: every session
  audience receivers;                                  // broadcasts
  /// What the listeners have been told: the members as of the last frame, by id.
  std::vector<std::pair<std::string, object>> published;
  std::vector<object> joined;    // since the last frame
  std::vector<std::string> left; // since the last frame
  bool flush_due = false;
};

/// @param key the stream's presence_directory key.
/// @param directory where the list is published; must outlive the actor.
/// @param stats counts the members (rheo_presence_members); must outlive the actor.
/// @param interval how long changes wait to go out together (presence_interval_ms).
presence_actor::behavior_type presence(presence_actor::stateful_pointer<presence_state> self,
                                       std::string key, presence_directory* directory,
                                       metrics* stats, std::chrono::milliseconds interval);

} // namespace rheo
