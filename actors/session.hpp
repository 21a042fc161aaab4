// The SESSION actor: one per WebSocket connection. Joins its subscription through the
// broker before the handshake completes (so no event committed after the client saw
// the 101 is missed), accounts the connection's outbound queue, and closes slow
// consumers with 1013.
#pragma once

#include "actors/actors.hpp"

#include <caf/stateful_actor.hpp>

#include <memory>

namespace rheo {

struct session_state {
  static inline const char* name = "session";
  session_state();
  ~session_state();

  std::shared_ptr<ws_connection> conn;
  std::int64_t queue_limit = 0;
  bool closing = false;
};

/// @param conn the connection, not yet handshaken.
/// @param broker where to subscribe.
/// @param spec the stream and variables the client asked for.
/// @param queue_limit outbound bytes allowed in the queue before closing with 1013.
session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::shared_ptr<ws_connection> conn, broker_actor broker,
                                     subscription_spec spec, std::int64_t queue_limit);

} // namespace rheo
