// The SESSION actor: one per WebSocket connection. Owns the session's lifecycle: joins
// its subscription through the broker before the handshake completes (so no event
// committed after the client saw the 101 is missed), closes the connection with the codes
// the subscription asks for, and ends when the connection has closed. Data frames do not
// pass through it: the subscription hands them to the connection's I/O thread, and the
// connection itself enforces its queue limit (1013).
//
// Thread-safety: an actor; its state is touched only by its behavior, on a CAF scheduler
// thread. It reaches its connection only through the ws_connection members that post to the
// connection's I/O thread (accept, reject, close); the connection tells it it has closed with
// a message (closed_atom) sent from that thread.
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>

namespace rheo {

struct session_state {
  static inline const char* name = "session";

  std::shared_ptr<ws_connection> conn;
};

/// @param conn the connection, not yet handshaken.
/// @param broker where to subscribe.
/// @param spec the stream (compiled) and variables the client asked for.
session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::shared_ptr<ws_connection> conn, broker_actor broker,
                                     subscription_spec spec);

} // namespace rheo
