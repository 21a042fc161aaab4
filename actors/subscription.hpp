// The SUBSCRIPTION actor: one per (database, collection, stream, resolved variables).
// Runs the stream's stages on each change event once, serializes each passing event
// once into a WebSocket frame, and fans the same buffer out to all its sessions.
#pragma once

#include "actors/actors.hpp"
#include "storage/pipeline.hpp"

#include <caf/stateful_actor.hpp>

#include <vector>

namespace rheo {

struct subscription_state {
  static inline const char* name = "subscription";
  subscription_state();
  ~subscription_state();

  pipeline stages;
  std::string stream;          // the stream's uri
  std::string definition_json; // as stored, to notice redefinitions
  std::vector<session_actor> sessions;
  bool closed = false;
};

/// @param broker told when the stream definition changed (retire).
/// @param spec the stream definition and variables; compiled once here.
subscription_actor::behavior_type
subscription(subscription_actor::stateful_pointer<subscription_state> self, broker_actor broker,
             subscription_spec spec);

} // namespace rheo
