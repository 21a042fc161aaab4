// The server's limits on what clients hold and send, each refusal a clear HTTP answer
// counted in /_metrics (rheo_limit_refusals_total):
//   - open connections in all (503) and per client address (429), taken when a connection
//     is accepted and answered at its first request (no upgrade happens);
//   - WebSocket and SSE sessions per client address (429 at the handshake);
//   - REST requests per second per client address (429 with Retry-After), a token bucket
//     per address.
// A connection or session holds a `slot` for as long as it is open; the count drops when
// the last copy of the slot goes (a WebSocket carries its HTTP session's connection slot
// and its session slot until it closes). Slots may outlive the client_limits.
//
// Costs: admitting a connection or a session takes one mutex over a map of the addresses
// that hold any (entries leave at zero, so its size is bounded by the open connections).
// The request buckets, checked on every REST request when a rate is configured, are split
// into shards by a hash of the address, each under its own mutex, so that I/O threads
// serving different clients rarely meet; shards are per address (not per I/O thread) so that
// a client's connections on several I/O threads share one budget. Without a rate nothing is
// locked. Memory is bounded: past `rate_limited_clients` addresses, idle ones (whose bucket
// has refilled, so forgetting them changes nothing) are evicted, then the least recently seen.
//
// Thread-safety: every member may be called from any thread at once.
#pragma once

#include "config/config.hpp"
#include "net/http.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace rheo {

struct metrics;

class client_limits {
public:
  /// Held while a connection or session is open; null when refused.
  using slot = std::shared_ptr<void>;

  /// `config` and `stats` must outlive this object (slots need not).
  client_limits(const server_config& config, metrics& stats);

  /// A slot for a connection from `address`, or null with `refusal` set: 503 past
  /// max_connections, 429 past max_connections_per_client. An empty address (a trusted
  /// proxy's connection, which carries many clients' requests) counts in the total only.
  slot admit_connection(const std::string& address, http_response& refusal);
  /// A slot for a WebSocket or SSE session from `address`, or null with `refusal` set
  /// (429 past max_sessions_per_client).
  slot admit_session(const std::string& address, http_response& refusal);
  /// The 429 (with Retry-After) for a REST request from `address` that its bucket has no
  /// token for; nullopt when it may go on.
  std::optional<http_response>
  check_request(const std::string& address,
                std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  struct counts; // open connections or sessions, in all and by address

private:
  struct bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last;
  };
  struct bucket_shard {
    std::mutex mutex;
    std::unordered_map<std::string, bucket> buckets;
  };
  static constexpr std::size_t bucket_shards = 32;

  void evict(bucket_shard& s, std::chrono::steady_clock::time_point now);

  const server_config& config_;
  metrics& stats_;
  std::shared_ptr<counts> connections_;
  std::shared_ptr<counts> sessions_;
  double rate_ = 0;  // tokens per second; 0: no rate limit
  double burst_ = 0; // bucket size
  std::size_t shard_capacity_ = 0;
  std::array<bucket_shard, bucket_shards> shards_;
};

} // namespace rheo
