// The PRESENCE actor: one per stream with "presence": true or "broadcast": true that has
// sessions on this node (section 11 of the contract). On a broadcast stream it relays each
// session's broadcasts to every other session of the stream, built once and posted once per I/O
// thread. It holds the stream's members (a connection id, the authenticated user, the client's
// `presence` object and when it joined): its own sessions', and those of the other nodes of a
// cluster, which its node's presence link (actors/presence_link.hpp) tells it of. It tells the
// sessions that asked for presence events who joined and who left, coalesced: changes wait up to
// `presence_interval_ms` and go out as one frame, built once and posted once per I/O thread
// (actors/audience.hpp), so N joins cost about one frame per interval per listener, not N. A
// listener that joins first gets the members known so far as one "joined" frame.
//
// It shares its own sessions' joins and leaves and broadcasts with its link, batched: what
// arrives together goes as one message. The link publishes the list GET .../_presence answers
// and carries it to the other nodes.
//
// The broker joins sessions to it and tells it when they have gone (it monitors them), so a
// connection that closes or stops answering pings leaves with its session.
//
// Thread-safety: an actor; its state is touched only by its behavior, on a CAF scheduler
// thread. It reaches connections only by posting to their I/O threads.
#pragma once

#include "actors/actors.hpp"
#include "actors/audience.hpp"

#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace rheo {

struct metrics;

using flush_atom = caf::atom_constant<caf::atom("flush")>;
using share_atom = caf::atom_constant<caf::atom("share")>;

/// The PRESENCE actor interface.
using presence_actor = caf::typed_actor<
    // A session of the stream joins: as a member (join.info set), as a listener of presence
    // events (join.events, with its connection in the handle), or both (from the broker).
    caf::reacts_to<join_atom, session_actor, presence_join, client_handle>,
    // The session has gone (from the broker).
    caf::reacts_to<closed_atom, session_actor>,
    // A broadcast of the session's client (from its session): the JSON of its value.
    caf::reacts_to<broadcast_atom, session_actor, std::string>,
    // From the link: the other nodes' member changes, {"joined":[entry...],"left":[id...]}
    // ("sync": true: the whole list of them).
    caf::reacts_to<peers_atom, std::string>,
    // From the link: a broadcast of another node's session, the frame as sessions get it.
    caf::reacts_to<relay_atom, std::string>,
    // Internal: the coalescing interval has passed; the changes so far go to the link.
    caf::reacts_to<flush_atom>, caf::reacts_to<share_atom>>;

/// Where a node's presence actors share their members and broadcasts (actors/presence_link.hpp):
/// the core's EXCHANGE (also on a node without a cluster, where it publishes the lists alone) or
/// an edge's UPLINK to it. `key` is the stream's presence_directory::key.
using presence_link_actor = caf::typed_actor<
    // The presence actor of stream `key` on this node starts (the link monitors it).
    caf::reacts_to<join_atom, std::string, presence_actor>,
    // Its own sessions' member changes: {"joined":[entry...],"left":[id...]}.
    caf::reacts_to<presence_atom, std::string, std::string>,
    // A broadcast of one of its sessions: the frame the others receive.
    caf::reacts_to<broadcast_atom, std::string, std::string>>;

/// Member changes as presence actors and links exchange them.
struct presence_changes {
  std::vector<object> joined;    // entries {"id","user","info","since"}
  std::vector<std::string> left; // ids
  bool sync = false;             // the whole list: members not in `joined` left

  bool empty() const { return joined.empty() && left.empty(); }
  /// {"joined":[...],"left":[...]}, with "sync": true when it is.
  std::string json() const;
  /// Parses json(); nothing (and a logged warning) when it is malformed.
  static std::optional<presence_changes> parse(const std::string& json);
  /// Applies them to `members` (by id); returns what changed there (never a sync).
  presence_changes apply_to(std::map<std::string, object>& members) const;
};

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
  presence_link_actor link;
  metrics* stats = nullptr;
  std::chrono::milliseconds interval{250};
  std::unordered_map<caf::actor_addr, member> members; // this node's
  std::map<std::string, object> peers;                 // the other nodes', by id
  std::unordered_map<caf::actor_addr, listener> listeners;
  audience audience_;                                  // presence events
  std::unordered_map<caf::actor_addr, sender> senders; // broadcast streams: every session
  audience receivers;                                  // broadcasts
  /// What the listeners have been told: the members as of the last frame, by id; and, built
  /// once for every listener that joins until the next frame, that list as a frame.
  std::map<std::string, object> published;
  std::optional<std::string> published_frame;
  caf::actor_clock::time_point last_frame{}; // when the last frame went out
  presence_changes pending;                  // since the last frame
  bool flush_due = false;
  presence_changes unshared; // this node's changes the link has not been told yet
  bool share_due = false;
};

/// Sends `self` a flush_atom at most once per `interval`: at once (behind what is in its
/// mailbox now) when the last flush was an interval ago or more, else when the interval has
/// passed. Nothing when one is due already (`due`, which the flush clears).
template <class Self>
void schedule_flush(Self self, bool& due, caf::actor_clock::time_point last,
                    std::chrono::milliseconds interval) {
  if (due) return;
  due = true;
  const auto now = self->clock().now();
  if (last + interval <= now)
    self->send(self, flush_atom::value);
  else
    self->delayed_send(self, last + interval - now, flush_atom::value);
}

/// @param key the stream's presence_directory key.
/// @param link the node's presence link, told of the actor at its start.
/// @param stats counts this node's members (rheo_presence_members); must outlive the actor.
/// @param interval how long changes wait to go out together (presence_interval_ms).
presence_actor::behavior_type presence(presence_actor::stateful_pointer<presence_state> self,
                                       std::string key, presence_link_actor link, metrics* stats,
                                       std::chrono::milliseconds interval);

} // namespace rheo
