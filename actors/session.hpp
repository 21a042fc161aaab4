// The SESSION actor: one per WebSocket or SSE connection. Owns the session's lifecycle:
// joins its subscription through the broker before the handshake completes (so no event
// committed after the client saw the 101 or the 200 is missed), closes the connection with
// the codes the subscription asks for (once the handshake is under way: a close that
// arrives before the broker's answer waits for it), and ends when the connection has
// closed. Data does not pass through it: the subscription hands it to the connection's
// I/O thread, and the connection itself enforces its queue limit (slow consumer).
//
// Thread-safety: an actor; its state is touched only by its behavior, on a CAF scheduler
// thread. It reaches its connection only through the push_connection members that post to
// the connection's I/O thread (accept, reject, close); the connection tells it it has
// closed with a message (closed_atom) sent from that thread.
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace rheo {

struct session_state {
  static inline const char* name = "session";

  std::shared_ptr<push_connection> conn;
  bool accepted = false;
  std::optional<std::pair<std::uint16_t, std::string>> pending_close;
  caf::actor hub; // the stream's presence actor, on a stream with broadcast
};

/// @param conn the connection, not yet handshaken.
/// @param broker where to subscribe.
/// @param spec the stream (compiled) and variables the client asked for.
/// @param resume_after the resume token the client connected with, if any.
session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::shared_ptr<push_connection> conn, broker_actor broker,
                                     subscription_spec spec,
                                     std::optional<std::string> resume_after);

} // namespace rheo
