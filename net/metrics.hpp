// The server's counters, exported at GET /_metrics in Prometheus text format. main.cpp
// creates one and passes it by reference to what counts: the I/O threads (io_pool, for
// their WebSocket connections, fan-out and HTTP sessions), the REST API (which renders
// it) and the realtime actors. It must outlive all of them.
//
// Thread-safety: every member is an atomic updated with relaxed ordering; any thread
// may update or render at any time (a render is not a consistent snapshot).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace rheo {

/// The limits whose refusals /_metrics counts (rheo_limit_refusals_total{limit="..."}).
enum class limit : std::uint8_t {
  connections,                 ///< max_connections: 503 at the first request
  connections_per_client,      ///< max_connections_per_client: 429 at the first request
  sessions_per_client,         ///< max_sessions_per_client: 429 at the handshake
  requests_per_second,         ///< max_requests_per_second_per_client: 429 with Retry-After
  avars_bytes,                 ///< max_avars_bytes: 400
  streams_per_collection,      ///< max_streams_per_collection: 400
  stages_per_stream,           ///< max_stages_per_stream: 400
  live_queries_per_collection, ///< max_live_queries_per_collection: 503 at the handshake
  live_window,                 ///< live_query_max_window: 400 at the handshake
};
inline constexpr std::size_t limit_count = 9;
/// The `limit` label of `l`.
const char* limit_name(limit l);

/// Why a client's broadcast was dropped (rheo_broadcasts_dropped_total{reason="..."}).
enum class broadcast_drop : std::uint8_t {
  size,      ///< over 4 KiB
  rate,      ///< over broadcast_per_second
  not_json,  ///< not a JSON text
  forbidden, ///< the client may not POST to the collection
};
const char* broadcast_drop_name(broadcast_drop d);

/// `v` as a Prometheus label value, between its quotes: `\`, `"` and line feeds escaped as
/// the exposition format says (a node or peer name may hold any of them).
std::string label_value(std::string_view v);

struct metrics {
  // Realtime.
  std::atomic<std::int64_t> sessions_open{0};
  std::atomic<std::int64_t> subscriptions{0};
  // Live queries (distinct ones: clients asking the same share one), the reads of the store
  // that refilled a window after a document left it, and the frames they built (each once,
  // for all their clients).
  std::atomic<std::int64_t> live_queries{0};
  // Connections joined to a stream's presence (section 11).
  std::atomic<std::int64_t> presence_members{0};
  // Broadcasts relayed, and those dropped by reason (broadcast_drop).
  std::atomic<std::uint64_t> broadcasts{0};
  std::array<std::atomic<std::uint64_t>, 4> broadcasts_dropped{};
  std::atomic<std::uint64_t> live_refills{0};
  std::atomic<std::uint64_t> live_frames{0};
  std::atomic<std::int64_t> upstream_feeds{0};
  std::atomic<std::uint64_t> events_received{0};
  std::atomic<std::uint64_t> events_replayed{0}; // read by resuming sessions' replay feeds
  std::atomic<std::uint64_t> frames_sent{0};
  // Gather writes (syscalls) to WebSocket and SSE sockets. Exported as rheo_ws_writes_total
  // (and the next as rheo_ws_connections): names kept from before SSE, as dashboards use them.
  std::atomic<std::uint64_t> push_writes{0};
  // WebSocket and SSE connections by the I/O thread that hosts them (the first io_threads
  // count).
  static constexpr std::size_t max_io_threads = 256;
  std::atomic<unsigned> io_threads{0};
  std::array<std::atomic<std::int64_t>, max_io_threads> push_connections_by_io_thread{};
  std::atomic<std::int64_t> bytes_queued{0};
  std::atomic<std::uint64_t> slow_consumer_closes{0};
  std::atomic<std::uint64_t> stage_errors{0};
  // HTTP.
  std::atomic<std::uint64_t> tls_handshake_failures{0};
  std::array<std::atomic<std::uint64_t>, 6> http_responses{}; // index: status / 100
  static constexpr std::array<double, 12> latency_bounds_seconds{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};
  std::array<std::atomic<std::uint64_t>, latency_bounds_seconds.size() + 1> latency_buckets{};
  std::atomic<std::uint64_t> latency_sum_ns{0};
  std::atomic<std::uint64_t> latency_count{0};

  // Limits.
  std::array<std::atomic<std::uint64_t>, limit_count> limit_refusals{};

  void count_refusal(limit l) {
    limit_refusals[static_cast<std::size_t>(l)].fetch_add(1, std::memory_order_relaxed);
  }
  void record_request(int status, std::uint64_t nanoseconds);
  std::string render() const;
};

} // namespace rheo
