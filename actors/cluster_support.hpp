// What both sides of a cluster link use (actors/cluster_core.cpp, cluster_edge.cpp): the
// proofs of the secret, nonces, and the TLS-or-plain middleman.
//
// Thread-safety: free functions of immutable inputs; callable from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include <cstdint>

#include <string>
#include <string_view>
#include <vector>

namespace rheo {

struct server_config;

/// 32 random bytes as hex (OpenSSL's RAND_bytes).
std::string make_nonce();

/// The proof that `side` ("core" or "edge") knows `secret`: HMAC-SHA256 keyed with it over
/// the side, both nonces and the edge's name, as hex.
std::string prove_secret(const std::string& secret, std::string_view side,
                         const std::string& edge_nonce, const std::string& core_nonce,
                         const std::string& edge_name);

/// Equal strings, in time that depends only on their lengths.
bool same_proof(const std::string& a, const std::string& b);

/// A node as /_cluster lists it.
object node_status(const std::string& name, std::string_view role, std::string_view state,
                   std::int64_t sessions, std::int64_t subscriptions);

/// One cluster link as /_metrics shows it.
struct link_metrics {
  std::string peer;
  bool up = false;
  std::uint64_t reconnects = 0;
  std::uint64_t bytes_sent = 0; // change events (core) or store calls (edge)
};

/// The Prometheus lines of `links` (rheo_cluster_link_up, _reconnects_total,
/// _bytes_sent_total, each labelled with its peer), the same on core and edge.
std::string render_link_metrics(const std::vector<link_metrics>& links);

/// Whether cluster links run over TLS (cluster_cert, cluster_key and cluster_ca set).
bool cluster_tls(const server_config& config);

/// The middleman that makes this node's cluster connections: OpenSSL's or the plain one.
caf::io::middleman_actor cluster_middleman(caf::actor_system& system, const server_config& config);

} // namespace rheo
