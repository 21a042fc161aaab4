// The SUBSCRIPTION actor: one per (database, collection, stream, resolved variables).
// Runs the stream's stages on each change event once, serializes each passing event once
// per transport its sessions use (a WebSocket frame, an SSE event), and hands the batch's
// bytes, in one shared buffer per transport, to each I/O thread that hosts its sessions (one
// post per thread per batch, see net/fanout.hpp).
//
// Resuming sessions (a resume token at connect) do not join the fan-out at once. Each
// gets a replay feed of its own from its token (opened on the replay pool), whose events
// the subscription runs through its stages and sends to that session alone, while it holds
// the live batches that arrive meanwhile. The replay is paced: the feed reads the missed
// history a part at a time (about a quarter of the connection's queue limit) and reads the
// next once the connection has drained, so a resuming session costs about its queue limit
// however much it missed. Once the replay has reached the live position
// (the subscription's position when the session joined, or the first held event), the
// replay feed is cancelled, the held events after the replay's last go out, and the session
// joins the fan-out: no event is skipped or repeated across the handover (actors/handover.hpp
// decides). A token older than the history: WebSocket close 4410; SSE a `history-lost`
// event, then live.
//
// Thread-safety: an actor; its state (sessions, fan-out groups, pending resumes) is touched
// only by its behavior, on a CAF scheduler thread. It reaches the connections only through
// fanout_group's posting members and post_to_connection(), which post to their I/O threads;
// the buffers it hands over are immutable and shared. Replay feeds reach it by messages.
#pragma once

#include "actors/actors.hpp"
#include "actors/audience.hpp"
#include "actors/handover.hpp"
#include "storage/document/pipeline.hpp"

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace rheo {

enum class push_transport : std::uint8_t; // net/push_connection.hpp
class replay_service;
struct metrics;

struct subscription_state {
  static inline const char* name = "subscription";
  ~subscription_state();

  struct member {
    session_actor handle;
    unsigned shard = 0;
    push_transport transport{};  // websocket
    std::uint64_t replay_id = 0; // while resuming: its key in `resuming`
  };
  /// A session catching up from its resume token.
  struct resume {
    session_actor handle;
    std::shared_ptr<push_connection> conn;
    /// The live batches held since the join, and where the replay is.
    handover progress;
    std::shared_ptr<change_feed> feed; // once opened
    /// The replay is paced by the connection's drain (push_connection::when_drained): asked
    /// after each part, and the credit that came before the feed was known.
    bool drain_asked = false;
    bool more_wanted = false;
    /// SSE: the history was lost before the stream's position was known (the watcher had not
    /// told it yet): the `history-lost` event, which carries it, waits for it.
    std::optional<std::string> lost_reason = std::nullopt;
  };

  pipeline stages;
  std::string db;
  std::string coll;
  std::string stream; // the stream's uri
  object definition;  // as stored, to notice redefinitions
  std::unordered_map<caf::actor_addr, member> sessions;
  std::unordered_map<std::uint64_t, resume> resuming;
  std::uint64_t next_replay_id = 1;
  /// The sessions that receive every batch (all but the resuming ones).
  audience listeners;
  /// Every change up to this token has been received from the watcher.
  std::optional<std::string> position;
  replay_service* replays = nullptr;
  bool closed = false;
};

/// @param broker told when the stream definition changed (retire).
/// @param spec the compiled stream definition and variables.
/// @param stats counts the events a stage failed on (rheo_stage_errors_total); must outlive
///        the actor.
/// @param replays where resuming sessions' replay feeds are opened; null: resume tokens
///        are ignored (sessions join live). Must outlive the actor.
subscription_actor::behavior_type
subscription(subscription_actor::stateful_pointer<subscription_state> self, broker_actor broker,
             subscription_spec spec, metrics* stats, replay_service* replays);

} // namespace rheo
