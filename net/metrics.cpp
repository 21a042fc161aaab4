#include "net/metrics.hpp"

#include <cstdio>

namespace rheo {

const char* limit_name(limit l) {
  switch (l) {
  case limit::connections:
    return "connections";
  case limit::connections_per_client:
    return "connections_per_client";
  case limit::sessions_per_client:
    return "sessions_per_client";
  case limit::requests_per_second:
    return "requests_per_second";
  case limit::avars_bytes:
    return "avars_bytes";
  case limit::streams_per_collection:
    return "streams_per_collection";
  case limit::stages_per_stream:
    return "stages_per_stream";
  case limit::live_queries_per_collection:
    return "live_queries_per_collection";
  case limit::live_window:
    return "live_window";
  }
  return "unknown";
}

const char* broadcast_drop_name(broadcast_drop d) {
  switch (d) {
  case broadcast_drop::size:
    return "size";
  case broadcast_drop::rate:
    return "rate";
  case broadcast_drop::not_json:
    return "not_json";
  case broadcast_drop::forbidden:
    break;
  }
  return "forbidden";
}

void metrics::record_request(int status, std::uint64_t ns) {
  int cls = status / 100;
  if (cls < 1 || cls > 5) cls = 0;
  http_responses[cls].fetch_add(1, std::memory_order_relaxed);
  double seconds = static_cast<double>(ns) / 1e9;
  std::size_t i = 0;
  while (i < latency_bounds_seconds.size() && seconds > latency_bounds_seconds[i])
    ++i;
  latency_buckets[i].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns.fetch_add(ns, std::memory_order_relaxed);
  latency_count.fetch_add(1, std::memory_order_relaxed);
}

namespace {

void line(std::string& out, const char* name, const char* type, const char* help, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += buf;
  out += '\n';
}

} // namespace

std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string metrics::render() const {
  std::string out;
  auto r = std::memory_order_relaxed;
  line(out, "rheo_sessions_open", "gauge", "Open WebSocket and SSE sessions.",
       sessions_open.load(r));
  line(out, "rheo_subscriptions", "gauge", "Live stream subscriptions.", subscriptions.load(r));
  line(out, "rheo_live_queries", "gauge",
       "Distinct live queries being evaluated (clients with the same query share one).",
       live_queries.load(r));
  line(out, "rheo_presence_members", "gauge", "Connections joined to the presence of a stream.",
       presence_members.load(r));
  line(out, "rheo_broadcasts_total", "counter",
       "Client broadcasts relayed to the other sessions of their stream.", broadcasts.load(r));
  out += "# HELP rheo_broadcasts_dropped_total Client broadcasts dropped, by reason.\n"
         "# TYPE rheo_broadcasts_dropped_total counter\n";
  for (std::size_t i = 0; i < broadcasts_dropped.size(); ++i)
    out += std::string("rheo_broadcasts_dropped_total{reason=\"") +
           broadcast_drop_name(static_cast<broadcast_drop>(i)) + "\"} " +
           std::to_string(broadcasts_dropped[i].load(r)) + "\n";
  line(out, "rheo_live_refills_total", "counter",
       "Reads of the store that refilled a live query's window after documents left it.",
       live_refills.load(r));
  line(out, "rheo_live_frames_total", "counter",
       "Live query frames (init and diff) built, each once for all the query's clients.",
       live_frames.load(r));
  line(out, "rheo_upstream_feeds", "gauge",
       "Open upstream change feeds (one per watched collection).", upstream_feeds.load(r));
  line(out, "rheo_events_received_total", "counter", "Change events received from upstream feeds.",
       events_received.load(r));
  line(out, "rheo_events_replayed_total", "counter",
       "Change events read by the replay feeds of sessions resuming from a token.",
       events_replayed.load(r));
  line(out, "rheo_frames_sent_total", "counter",
       "WebSocket data frames and SSE events written to clients.", frames_sent.load(r));
  line(out, "rheo_ws_writes_total", "counter",
       "Writes (syscalls) to WebSocket and SSE sockets; each carries every frame queued by "
       "then.",
       push_writes.load(r));
  line(out, "rheo_bytes_queued", "gauge", "Bytes queued for WebSocket clients, not yet written.",
       bytes_queued.load(r));
  line(out, "rheo_slow_consumer_closes_total", "counter",
       "Sessions closed with 1013 because their outbound queue passed its limit.",
       slow_consumer_closes.load(r));
  line(out, "rheo_tls_handshake_failures_total", "counter",
       "Connections to the TLS port closed because their TLS handshake failed (plain HTTP, "
       "an old protocol version, a timeout).",
       tls_handshake_failures.load(r));
  line(out, "rheo_stage_errors_total", "counter",
       "Change events skipped for a subscription because a stage failed to evaluate.",
       stage_errors.load(r));
  out += "# HELP rheo_ws_connections WebSocket and SSE connections by the I/O thread hosting "
         "them.\n"
         "# TYPE rheo_ws_connections gauge\n";
  for (unsigned i = 0; i < io_threads.load(r) && i < max_io_threads; ++i)
    out += "rheo_ws_connections{io_thread=\"" + std::to_string(i) + "\"} " +
           std::to_string(push_connections_by_io_thread[i].load(r)) + "\n";
  out += "# HELP rheo_http_responses_total HTTP responses by status class.\n"
         "# TYPE rheo_http_responses_total counter\n";
  for (int c = 1; c <= 5; ++c)
    out += "rheo_http_responses_total{class=\"" + std::to_string(c) + "xx\"} " +
           std::to_string(http_responses[c].load(r)) + "\n";
  out += "# HELP rheo_limit_refusals_total Requests, connections and sessions refused by a "
         "configured limit.\n"
         "# TYPE rheo_limit_refusals_total counter\n";
  for (std::size_t i = 0; i < limit_count; ++i)
    out += std::string("rheo_limit_refusals_total{limit=\"") + limit_name(static_cast<limit>(i)) +
           "\"} " + std::to_string(limit_refusals[i].load(r)) + "\n";
  out += "# HELP rheo_http_request_duration_seconds HTTP request latency.\n"
         "# TYPE rheo_http_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  char buf[64];
  for (std::size_t i = 0; i < latency_bounds_seconds.size(); ++i) {
    cumulative += latency_buckets[i].load(r);
    std::snprintf(buf, sizeof buf, "%g", latency_bounds_seconds[i]);
    out += "rheo_http_request_duration_seconds_bucket{le=\"" + std::string(buf) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  cumulative += latency_buckets.back().load(r);
  out +=
      "rheo_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  std::snprintf(buf, sizeof buf, "%.9f", static_cast<double>(latency_sum_ns.load(r)) / 1e9);
  out += "rheo_http_request_duration_seconds_sum " + std::string(buf) + "\n";
  out += "rheo_http_request_duration_seconds_count " + std::to_string(latency_count.load(r)) + "\n";
  return out;
}

} // namespace rheo
