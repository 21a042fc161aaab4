// How the presence actors of a cluster's nodes (actors/presence.hpp) share members and
// broadcasts: through the core, in a star, once per edge.
//
// The EXCHANGE runs on the core, and on a node without a cluster. It holds every stream's
// members by node: its own node's, from its presence actors, and each edge's, from the edge's
// core peer. It passes each node's changes and broadcasts on to the core's presence actor of the
// stream and to every other edge with sessions on it (once per edge, however many sessions it
// has), and publishes each stream's whole list to the node's presence_directory, at most once
// per interval: GET .../_presence reads it there on the core, and asks the core for it on an
// edge. An edge that is gone (its core peer ends when the link to it drops or times out) takes
// its members with it. An edge that joins again comes with a new core peer: what the old one
// said is dropped, so a partition heals without ghosts or duplicates.
//
// The UPLINK runs on an edge. It forwards its presence actors' changes and broadcasts to the
// core while the link is up, and the core's (the other nodes') to the presence actor of their
// stream. It keeps its own node's members by stream: when the link comes back it tells the
// core the whole list (and the core answers with the others'); when the link drops, its
// presence actors drop the other nodes' members, which they can no longer vouch for.
//
// Thread-safety: actors; their state is touched only by their behaviors, on CAF scheduler
// threads. The exchange writes the directory under the directory's mutex.
#pragma once

#include "actors/cluster_wire.hpp"
#include "actors/presence.hpp"

#include <caf/fwd.hpp>

#include <chrono>
#include <string>

namespace rheo {

class presence_directory;

/// The EXCHANGE: a presence link, and the core's side of its edges (from their core peers,
/// each message naming the edge; a message from an edge's older core peer is ignored).
using presence_exchange_actor = presence_link_actor::extend<
    // The edge follows stream `key` (to its uplink), or no longer does.
    caf::reacts_to<join_atom, std::string, std::string, edge_presence_actor>,
    caf::reacts_to<closed_atom, std::string, std::string>,
    // The edge's member changes, and its sessions' broadcasts, on stream `key`.
    caf::reacts_to<presence_atom, std::string, std::string, std::string>,
    caf::reacts_to<broadcast_atom, std::string, std::string, std::string>,
    // The edge is gone (its core peer's last word).
    caf::reacts_to<closed_atom, std::string>,
    // Stream `key`'s members on every node, as GET .../_presence answers them.
    caf::replies_to<presence_atom, std::string>::with<std::string>,
    // Internal: the interval has passed; changed lists are published.
    caf::reacts_to<flush_atom>>;

/// The UPLINK: a presence link, and the edge's end of the link to the core.
using presence_uplink_actor = presence_link_actor::extend<
    // From the core: edge_presence_actor's messages.
    caf::reacts_to<peers_atom, std::string, std::string>,
    caf::reacts_to<relay_atom, std::string, std::string>,
    // The link to the core is up (the core peer to talk to), or down.
    caf::reacts_to<attach_atom, core_peer_actor>, caf::reacts_to<detach_atom>>;

/// Spawns an exchange, publishing to `directory` (which must outlive it) at most once per
/// `interval`.
presence_exchange_actor spawn_presence_exchange(caf::actor_system& system,
                                                presence_directory* directory,
                                                std::chrono::milliseconds interval);

/// Spawns the uplink of edge `node` (not linked until it is told of a core peer).
presence_uplink_actor spawn_presence_uplink(caf::actor_system& system, std::string node);

} // namespace rheo
