// The SUBSCRIPTION actor: one per (database, collection, stream, resolved variables).
// Runs the stream's stages on each change event once, serializes each passing event
// once into a WebSocket frame, and hands the batch's frames, in one shared buffer, to each
// I/O thread that hosts its sessions (one post per thread per batch, see net/fanout.hpp).
//
// Thread-safety: an actor; its state (sessions, fan-out groups, counts per I/O thread) is
// touched only by its behavior, on a CAF scheduler thread. It reaches the connections only
// through fanout_group::post_add/post_deliver/release, which post to their I/O threads; the
// frame buffer it hands over is immutable and shared.
#pragma once

#include "actors/actors.hpp"
#include "storage/document/pipeline.hpp"

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>

#include <memory>
#include <unordered_map>
#include <vector>

namespace rheo {

class fanout_group;
struct metrics;

struct subscription_state {
  static inline const char* name = "subscription";
  ~subscription_state();

  struct member {
    session_actor handle;
    unsigned shard = 0;
  };

  pipeline stages;
  std::string stream; // the stream's uri
  object definition;  // as stored, to notice redefinitions
  std::unordered_map<caf::actor_addr, member> sessions;
  // By I/O thread index: the group of our sessions on that thread, and how many they are.
  std::vector<std::shared_ptr<fanout_group>> groups;
  std::vector<std::uint32_t> sessions_per_shard;
  bool closed = false;
};

/// @param broker told when the stream definition changed (retire).
/// @param spec the compiled stream definition and variables.
/// @param stats counts the events a stage failed on (rheo_stage_errors_total); must outlive
///        the actor.
subscription_actor::behavior_type
subscription(subscription_actor::stateful_pointer<subscription_state> self, broker_actor broker,
             subscription_spec spec, metrics* stats);

} // namespace rheo
