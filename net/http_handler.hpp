// The seam between the HTTP server and what answers its requests: the server hands every
// request to an http_handler (the REST API implements it, see net/rest/rest_api.hpp) and
// WebSocket handshakes to handler.resolve_stream(), whose stream_target it then gives to
// the websocket_hub.
//
// Thread-safety: implementations must allow every member to be called concurrently from
// any thread (I/O threads and the worker pool).
#pragma once

#include "net/http.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/document/value.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace rheo {

struct live_query_spec; // storage/document/live_window.hpp

/// The target of a WebSocket handshake or SSE request once it has been authorized and
/// resolved.
struct stream_target {
  std::string db;
  std::string coll;
  std::string stream;                // the stream's uri
  object definition;                 // the stream definition {"uri":..., "stages":[...]} as stored
  object avars;                      // the client's variable bindings
  std::string key;                   // sessions with equal keys share one subscription
  std::optional<object> user;        // @user of the authenticated client
  std::string user_id;               // its id, for the access log
  std::optional<object> read_filter; // the ACL readFilter, resolved
  pipeline stages;                   // the definition compiled for this client
  std::shared_ptr<const live_query_spec> live; // a live query (/<coll>/_live) instead
  // Presence (a stream with "presence": true): the client's `presence` object (set: it
  // joins), its user's id, and whether it asked for presence events.
  std::optional<object> presence_info;
  std::optional<std::string> presence_user;
  bool presence_events = false;
  // A stream with "broadcast": true: the session receives broadcasts; it may send them when
  // the client may POST to the collection.
  bool broadcast = false;
  bool may_broadcast = false;
  std::optional<std::string> resume_after; // resumeAfter / Last-Event-ID, a well-formed token
  bool sse = false;                        // Server-Sent Events rather than a WebSocket
  http_headers response_headers;           // for the SSE response's head (CORS)
  // Set by the server: what the session holds until it closes (its places in the limits),
  // and (access log on) what it calls once it has closed, with the bytes sent to the client.
  std::vector<std::shared_ptr<void>> held;
  std::function<void(std::uint64_t bytes_sent)> on_finished;
};

/// What resolve_stream() answers for a request that is not for a stream URL after all (an
/// SSE-accepting GET elsewhere): handle it as a plain request.
struct not_a_stream {};

class http_handler {
public:
  virtual ~http_handler() = default;

  /// Answers a plain (non-upgrade) request; never throws.
  virtual http_response handle(const http_request& req) const = 0;

  /// For a WebSocket handshake or an SSE request (req.event_stream): the stream it
  /// subscribes to, or the error response to send instead; not_a_stream for an SSE request
  /// whose target is no stream URL. Never throws.
  virtual std::variant<stream_target, http_response, not_a_stream>
  resolve_stream(const http_request& req) const = 0;

  /// True when handling `req` may block (a store write): the server then runs it off the
  /// I/O threads.
  virtual bool is_blocking(const http_request& req) const = 0;
};

} // namespace rheo
