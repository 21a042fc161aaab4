// The actors of rheo's realtime core and their typed interfaces, atoms and message
// types, all in one place. See docs/architecture.md for who creates and stops whom.
//
// Thread-safety: actor handles are thread-safe values; message types are immutable
// once sent (their shared payloads are const). Only event_batch, metadata_change and
// feed_end may cross the network; subscription_spec, client_handle, replay_feed,
// presence_join and store_read hold node-local objects.
#pragma once

#include "storage/document/pipeline.hpp"
#include "storage/document/value.hpp"
#include "storage/store.hpp"

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/none.hpp>
#include <caf/replies_to.hpp>
#include <caf/sec.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rheo {

class change_feed;
class push_connection;
class store;
struct live_query_spec; // storage/document/live_window.hpp

// -- atoms (at most 10 characters each) ---------------------------------------

using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using detach_atom = caf::atom_constant<caf::atom("detach")>;
using retire_atom = caf::atom_constant<caf::atom("retire")>;
using close_atom = caf::atom_constant<caf::atom("close")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using position_atom = caf::atom_constant<caf::atom("position")>;
using replay_atom = caf::atom_constant<caf::atom("replay")>;
using replay_end_atom = caf::atom_constant<caf::atom("replayend")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using broadcast_atom = caf::atom_constant<caf::atom("broadcast")>;
using hub_atom = caf::atom_constant<caf::atom("hub")>;
using presence_atom = caf::atom_constant<caf::atom("presence")>;
using peers_atom = caf::atom_constant<caf::atom("peers")>;
using relay_atom = caf::atom_constant<caf::atom("relay")>;

// -- message types ------------------------------------------------------------

/// A session's place in its stream's presence and broadcasts (section 11 of the contract):
/// its connection id (unique in the cluster), the authenticated user, the client's `presence`
/// object (set: it is a member), whether it receives presence events and broadcasts. Never
/// leaves the node.
struct presence_join {
  std::string id;
  std::optional<std::string> user;
  std::optional<object> info;
  bool events = false;
  /// On a stream with "broadcast": true, every session receives the others' broadcasts.
  bool broadcasts = false;
};

/// What a session asks the broker for: the stream, compiled at the handshake, and the key
/// under which sessions share one subscription (database, collection, stream, resolved
/// variables). Never leaves the node.
struct subscription_spec {
  std::string db;
  std::string coll;
  std::string stream;
  std::string key;
  object definition; // the stored stream definition, to notice redefinitions
  pipeline stages;   // compiled against the client's avars, @user and readFilter
  /// Set for a live query (GET /<coll>/_live): the broker starts a live_query actor for it
  /// instead of a subscription; `stream`, `definition` and `stages` are then unused.
  std::shared_ptr<const live_query_spec> live;
  /// Set on a stream with presence or broadcast when the client joins it, listens to its
  /// events or receives broadcasts.
  std::optional<presence_join> presence;
};

/// A session's connection (WebSocket or SSE), for the subscription to hand to its I/O
/// thread's fan-out group, and the resume token it connected with. Never leaves the node.
struct client_handle {
  std::shared_ptr<push_connection> conn;
  std::optional<std::string> resume_after;
};

/// What a read of the store gave (replay_service::read, for a live query): the documents,
/// and the change-feed position they reflect; or why it failed. Never leaves the node.
struct store_read {
  std::vector<object> docs;
  std::string position;
  std::optional<std::string> error;
};

/// A replay feed (a resuming session's own change feed from its token), handed to the
/// subscription that merges it, which cancels it at the handover. Never leaves the node.
struct replay_feed {
  std::shared_ptr<change_feed> feed;
};

/// Change events in commit order, each in the shape stages see
/// ({_id:{_data}, operationType, fullDocument, documentKey, updateDescription}): made once
/// from what the store committed (to_batch, actors/sink_support.hpp) and read-only after
/// that, shared (not copied) by the listeners of a feed; encoded as BSON, once per batch,
/// when it crosses the network.
struct event_batch {
  /// The events as BSON, made once however many nodes the batch is sent to.
  struct wire_form {
    std::once_flag once;
    std::vector<std::string> bson;
    std::size_t bytes = 0;
  };

  std::shared_ptr<const std::vector<object>> events;
  mutable std::shared_ptr<wire_form> wire = nullptr; // shared by the copies of a batch
  /// The last event is "invalidate" (the collection is gone; nothing follows it).
  bool invalidates = false;

  /// The events as BSON (encoded on the first call, by any thread). A batch that does not
  /// come from to_batch() must not be encoded by two threads at once.
  const std::vector<std::string>& encoded() const;
  std::size_t encoded_bytes() const;
  void decode(const std::vector<std::string>& encoded);
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, event_batch& x) {
  if constexpr (Inspector::reads_state) {
    // Saving only reads the strings.
    return f(caf::meta::type_name("rheo.event_batch"),
             const_cast<std::vector<std::string>&>(x.encoded()));
  } else {
    std::vector<std::string> encoded;
    return f(caf::meta::type_name("rheo.event_batch"), encoded,
             caf::meta::load_callback([&]() -> caf::error {
               x.decode(encoded);
               return caf::none;
             }));
  }
}

/// A collection's metadata after a change (stream definitions added, changed, removed).
/// Shared, not copied; BSON when it crosses the network.
struct metadata_change {
  std::shared_ptr<const object> metadata;

  std::string encode() const;
  void decode(const std::string& encoded);
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metadata_change& x) {
  std::string encoded;
  if constexpr (Inspector::reads_state) encoded = x.encode();
  return f(caf::meta::type_name("rheo.metadata_change"), encoded,
           caf::meta::load_callback([&]() -> caf::error {
             x.decode(encoded);
             return caf::none;
           }));
}

/// Loads an enum sent as its underlying integer: an error unless it is at most `last`.
template <class Enum> caf::error load_enum(std::underlying_type_t<Enum> raw, Enum last, Enum& x) {
  if (raw > static_cast<std::underlying_type_t<Enum>>(last))
    return caf::make_error(caf::sec::invalid_argument, "enum value out of range");
  x = static_cast<Enum>(raw);
  return caf::none;
}

/// The end of a change feed (storage/store.hpp); crosses the network from a core's relay
/// to an edge's receiver.
template <class Inspector> typename Inspector::result_type inspect(Inspector& f, feed_end& x) {
  auto raw = static_cast<std::uint8_t>(x.cause);
  return f(caf::meta::type_name("rheo.feed_end"), raw, x.reason,
           caf::meta::load_callback([&] { return load_enum(raw, last_feed_end_cause, x.cause); }));
}

/// Why sessions are closed. The WebSocket close code and reason a client sees follow from
/// it in close_reason::code() and text(), and nowhere else.
enum class close_cause : std::uint8_t {
  collection_dropped, // 1000 "collection dropped": the invalidate event
  stream_redefined,   // 1000 "stream definition changed"
  history_lost,       // 4410 "history lost": events may have been missed; reload
  feed_ended,         // 1011 "change feed ended: <detail>"
  feed_invalidated,   // 1011 "change feed ended: <detail>", after the invalidate event
  slow_consumer,      // 1013 "slow consumer: <detail>"
  cannot_resume,      // 1011 "cannot resume: <detail>"
};
inline constexpr close_cause last_close_cause = close_cause::cannot_resume;

/// A close request: the cause, and the detail the client's reason shows for some causes.
struct close_reason {
  close_cause cause = close_cause::feed_ended;
  std::string detail;

  /// The WebSocket close code (RFC 6455 and rheo's 4410).
  std::uint16_t code() const;
  /// The close reason sent to the client.
  std::string text() const;
  /// The cause of a feed's end as a close: history lost, or the feed ended (`end.reason`).
  static close_reason of(const feed_end& end);
  /// The inverse of of(): what a relay tells its edge when the feed it follows ends.
  feed_end as_feed_end() const;

  friend bool operator==(const close_reason&, const close_reason&) = default;
};

template <class Inspector> typename Inspector::result_type inspect(Inspector& f, close_reason& x) {
  auto raw = static_cast<std::uint8_t>(x.cause);
  return f(caf::meta::type_name("rheo.close_reason"), raw, x.detail,
           caf::meta::load_callback([&] { return load_enum(raw, last_close_cause, x.cause); }));
}

// -- actor interfaces ---------------------------------------------------------

/// The SESSION actor interface: one per WebSocket or SSE connection. Data frames do not
/// pass through it: the subscription hands them to the connection's I/O thread.
using session_actor = caf::typed_actor<
    // Close the connection with a WebSocket close code and reason.
    caf::reacts_to<close_atom, std::uint16_t, std::string>,
    // From the broker: the stream's presence actor (actors/presence.hpp), for broadcasts.
    caf::reacts_to<hub_atom, caf::actor>,
    // From the connection's I/O thread: a broadcast the client sent (the JSON of its value),
    // already checked against the limits.
    caf::reacts_to<broadcast_atom, std::string>,
    // Internal: the connection has closed.
    caf::reacts_to<closed_atom>>;

/// The SUBSCRIPTION actor interface: one per (database, collection, stream, variables).
using subscription_actor = caf::typed_actor<
    // Add a session and its connection (from the broker).
    caf::reacts_to<join_atom, session_actor, client_handle>,
    // Remove a session (from the broker).
    caf::reacts_to<closed_atom, session_actor>,
    // Change events from the watcher's feed (its sink, on a store thread), in commit order.
    caf::reacts_to<event_batch>,
    // From the watcher's feed, in order with the events: every change up to this resume token has
    // been sent (when attached, and when the feed tells a position no event carries).
    caf::reacts_to<position_atom, std::string>,
    // Internal, from the replay feed of resuming session `id` (a store or worker thread):
    // its events, a position it reached, the feed itself once opened, and its end (reason).
    caf::reacts_to<replay_atom, std::uint64_t, event_batch>,
    caf::reacts_to<replay_atom, std::uint64_t, std::string>,
    caf::reacts_to<replay_atom, std::uint64_t, replay_feed>,
    caf::reacts_to<replay_end_atom, std::uint64_t, feed_end>,
    // Internal, from the I/O thread of resuming session `id`: its connection has drained, its
    // paced replay may go on.
    caf::reacts_to<replay_atom, std::uint64_t>,
    // The collection's metadata changed (from the watcher's feed, in order with the events).
    caf::reacts_to<metadata_change>,
    // Close every session (feed lost).
    caf::reacts_to<close_atom, close_reason>>;

/// What a watcher's feed sends to, from the store's thread (actors/watcher.hpp): its
/// subscriptions, and (on a cluster's core) the relays of the edges that follow the
/// collection (actors/cluster.hpp). A subset of subscription_actor.
using feed_listener_actor =
    caf::typed_actor<caf::reacts_to<event_batch>, caf::reacts_to<position_atom, std::string>,
                     caf::reacts_to<metadata_change>, caf::reacts_to<close_atom, close_reason>>;

/// The WATCHER actor interface: one per upstream change feed (watched collection).
using watcher_actor = caf::typed_actor<
    // Start/stop sending the feed's output to a listener (from the broker). Once attached, the
    // listener is first told the position (possibly empty: unknown) after which it
    // receives every event.
    caf::reacts_to<attach_atom, feed_listener_actor>,
    caf::reacts_to<detach_atom, feed_listener_actor>,
    // Internal, from the feed's sink (a store thread), after it told the listeners: the feed
    // ended (history lost, invalidated, store closed).
    caf::reacts_to<closed_atom, feed_end>>;

/// The BROKER actor interface: creates and finds watchers and subscriptions, attaches
/// sessions, tears down what nobody uses any more.
using broker_actor = caf::typed_actor<
    // Attach a session to the subscription for `spec`, creating it (and its watcher)
    // when needed; replies once the session will receive every later event.
    caf::replies_to<subscribe_atom, session_actor, client_handle,
                    subscription_spec>::with<subscription_actor>,
    // Attach a listener that is not a subscription (an edge's relay, on a cluster's core)
    // to db.coll's watcher, creating it when needed; the broker monitors the listener and
    // detaches it when it terminates.
    caf::replies_to<watch_atom, std::string, std::string, feed_listener_actor>::with<watcher_actor>,
    // A subscription whose stream definition changed: new sessions get a new one.
    caf::reacts_to<retire_atom, subscription_actor>,
    // A watcher whose feed ended: new subscriptions get a new watcher.
    caf::reacts_to<retire_atom, watcher_actor>>;

/// Registers rheo's message types with a CAF configuration.
void register_message_types(caf::actor_system_config& cfg);

/// Counts the actor `h` on `gauge` (one of net/metrics.hpp's) from now until it terminates;
/// the spawner calls it, so that the actor counts from its spawn on, before it first runs.
/// `gauge` must outlive the actor. Thread-safe. Returns `h`.
template <class Handle> Handle counted(Handle h, std::atomic<std::int64_t>& gauge) {
  gauge.fetch_add(1, std::memory_order_relaxed);
  caf::actor_cast<caf::abstract_actor*>(h)->attach_functor(
      [&gauge] { gauge.fetch_sub(1, std::memory_order_relaxed); });
  return h;
}

} // namespace rheo

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rheo::subscription_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rheo::client_handle)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rheo::replay_feed)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rheo::presence_join)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rheo::store_read)
