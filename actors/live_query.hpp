// The LIVE QUERY actor: one per distinct live query (database, collection, and the query's
// compiled spec: filter with the readFilter, sort, window, projections; see
// storage/document/live_window.hpp). It follows the collection's feed as a subscription
// does (the broker attaches it to the collection's watcher and joins sessions to it), keeps
// the query's result with a live_result, and sends each change of the result as one diff
// frame, built once and posted once per I/O thread to all its sessions (actors/audience.hpp).
//
// Reads: once the watcher has told it its position (so that every commit after the read is
// sure to arrive by the feed), it reads the query's first documents from the store (on the
// replay pool), and again whenever documents left the window and no spare one is known (a
// refill). While a read runs, the feed's batches are held; after it, those the read already
// reflects are skipped (token order) and the rest apply on top, so no commit is missed or
// counted twice. A session that joins gets an init frame with the result and its token,
// posted to it alone before it joins the fan-out; one that joins during a read waits for it.
//
// Thread-safety: an actor; its state is touched only by its behavior, on a CAF scheduler
// thread. Reads run on the replay pool and come back as messages; it reaches connections
// only by posting to their I/O threads.
#pragma once

#include "actors/actors.hpp"
#include "actors/audience.hpp"
#include "storage/document/live_window.hpp"

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace rheo {

struct metrics;
class replay_service;

using read_atom = caf::atom_constant<caf::atom("read")>;

/// The LIVE QUERY actor interface: a subscription's (the broker handles both alike), and the
/// answers of its reads of the store (internal, from the replay pool: the read's number).
using live_query_actor =
    subscription_actor::extend<caf::reacts_to<read_atom, std::uint64_t, store_read>>;

struct live_query_state {
  static inline const char* name = "live_query";

  struct member {
    session_actor handle;
    unsigned shard = 0;
    push_transport transport{};
    std::shared_ptr<push_connection> waiting; // until the result is ready: then joined
  };

  std::string db;
  std::string coll;
  std::shared_ptr<const live_query_spec> spec;
  std::optional<live_evaluation> eval;
  std::unordered_map<caf::actor_addr, member> sessions;
  audience listeners;
  std::uint64_t read_id = 0; // of the read under way
  std::optional<close_reason> closed;
  replay_service* replays = nullptr;
  metrics* stats = nullptr;
};

/// @param broker told when the query's feed ended (retire).
/// @param spec the database, collection and compiled query (spec.live).
/// @param stats counts refills and frames; must outlive the actor.
/// @param replays where the reads run; must outlive the actor.
live_query_actor::behavior_type
live_query(live_query_actor::stateful_pointer<live_query_state> self, broker_actor broker,
           subscription_spec spec, metrics* stats, replay_service* replays);

} // namespace rheo
