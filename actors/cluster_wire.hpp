// The typed interfaces of a cluster's link (see actors/cluster.hpp): the only actors and
// messages that cross the network. Every argument is a built-in type, an actor handle of
// these interfaces, event_batch, metadata_change, feed_end or store_request, all serialized
// through inspect (an enum as its underlying integer, checked when loaded).
//
// Thread-safety: actor handles are thread-safe values.
#pragma once

#include "actors/actors.hpp"
#include "storage/remote/remote_store.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace rheo {

using hello_atom = caf::atom_constant<caf::atom("hello")>;
using prove_atom = caf::atom_constant<caf::atom("prove")>;
using store_atom = caf::atom_constant<caf::atom("store")>;
using report_atom = caf::atom_constant<caf::atom("report")>;
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
using more_atom = caf::atom_constant<caf::atom("more")>;

/// One store call (storage/remote): the method and its BSON arguments.
struct store_request {
  store_method method = store_method::collection_names;
  std::string args;
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, store_request& x) {
  auto raw = static_cast<std::uint8_t>(x.method);
  return f(caf::meta::type_name("rheo.store_request"), raw, x.args,
           caf::meta::load_callback([&] { return load_enum(raw, last_store_method, x.method); }));
}

/// An edge's end of one feed from the core (its RECEIVER): what the core's relay sends, in
/// commit order.
using feed_receiver_actor =
    caf::typed_actor<caf::reacts_to<event_batch>, caf::reacts_to<position_atom, std::string>,
                     caf::reacts_to<metadata_change>,
                     // A part of the catch-up after the edge's token: the relay reads the next
                     // once the receiver sends its sender `more_atom` (when the edge's consumer
                     // has room: a resuming session's connection has drained).
                     caf::reacts_to<replay_atom, event_batch>,
                     // The feed ended (history lost, invalidated, the core's store closed).
                     caf::reacts_to<closed_atom, feed_end>>;

/// A core's relay as its edge's receiver sees it (the sender of a catch-up part): asked for
/// the next part.
using relay_credit_actor = caf::typed_actor<caf::reacts_to<more_atom>>;

/// An edge's PRESENCE UPLINK as the core sees it (actors/presence_link.hpp): what the other
/// nodes' sessions of a presence or broadcast stream did, once per edge. `key` is the
/// stream's presence_directory::key.
using edge_presence_actor = caf::typed_actor<
    // key, the other nodes' member changes: {"joined":[entry...],"left":[id...]}, with
    // "sync": true when it is the whole list (the edge replaces what it knew).
    caf::reacts_to<peers_atom, std::string, std::string>,
    // key, a broadcast of another node's session: the frame its sessions receive.
    caf::reacts_to<relay_atom, std::string, std::string>>;

/// An edge as the core sees it: the core monitors it to know when the edge is gone.
using edge_node_actor = caf::typed_actor<caf::reacts_to<closed_atom>>;

/// What an edge may ask once it has proved the secret (one CORE PEER per edge). Only
/// messages from the node that proved it are answered.
using core_peer_actor = caf::typed_actor<
    // A store call; the BSON reply.
    caf::replies_to<store_atom, store_request>::with<std::string>,
    // Feed db.coll after a token (empty: from now) to the receiver; replies the feed's
    // position (the token, or the core's position now).
    caf::replies_to<watch_atom, std::string, std::string, std::string,
                    feed_receiver_actor>::with<std::string>,
    // The edge's sessions and subscriptions, every second.
    caf::reacts_to<report_atom, std::int64_t, std::int64_t>,
    // The cluster's nodes and upstream feeds as the core sees them (JSON).
    caf::replies_to<nodes_atom>::with<std::string>,
    // Presence (actors/presence_link.hpp), by stream key: the edge has sessions on the
    // stream (the others' changes and broadcasts go to the uplink), or no longer has any.
    caf::reacts_to<join_atom, std::string, edge_presence_actor>,
    caf::reacts_to<closed_atom, std::string>,
    // The edge's member changes (as edge_presence_actor's), and its sessions' broadcasts.
    caf::reacts_to<presence_atom, std::string, std::string>,
    caf::reacts_to<broadcast_atom, std::string, std::string>,
    // The stream's members on every node, as GET .../_presence answers them (JSON).
    caf::replies_to<presence_atom, std::string>::with<std::string>>;

/// The only actor a node learns before it proves the secret (published by the core).
using gatekeeper_actor = caf::typed_actor<
    // An edge's name and fingerprint; replies the core's nonce.
    caf::replies_to<hello_atom, std::string, std::string>::with<std::string>,
    // The edge's proof over both nonces, its nonce, and the edge; replies the core's proof
    // and the edge's core peer.
    caf::replies_to<prove_atom, std::string, std::string, edge_node_actor>::with<std::string,
                                                                                 core_peer_actor>>;

} // namespace rheo
