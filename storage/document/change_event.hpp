// A committed change as both stores emit it: a store moves its events into its feeds'
// sinks (feed_sink::events, storage/store.hpp), and the actors' sinks move each into the
// object stages see (to_object(), in to_batch, actors/messages.cpp); that immutable, shared
// batch of objects, not the change_event, is what the actors pass on.
//
// Thread-safety: a plain value type, owned by one thread at a time.
#pragma once

#include "storage/document/update.hpp"
#include "storage/document/value.hpp"

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace rheo {

/// What a change did. Its name (to_string) is MongoDB's operationType: what clients see and
/// what the embedded change log stores.
enum class operation_type : std::uint8_t {
  insert,
  update,
  replace,
  delete_, // "delete"
  drop,
  rename,
  drop_database, // "dropDatabase": MongoDB, database-wide streams only
  invalidate,
  meta, // the embedded store's internal log entry: a collection's metadata (never delivered)
};

/// MongoDB's name of `op` ("insert", "delete", "dropDatabase", ...).
std::string_view to_string(operation_type op);
/// The operation named `name`, or nullopt when rheo knows no such operation.
std::optional<operation_type> operation_from_string(std::string_view name);
std::ostream& operator<<(std::ostream& out, operation_type op);

struct change_event {
  /// Position in the store's change log; strictly increasing per store (embedded) or 0.
  std::uint64_t seq = 0;
  /// The resume token sent to clients as {"_id":{"_data":token}}. On the embedded store:
  /// the seq as 16 hex digits; on MongoDB: the server's _data string.
  std::string token;
  std::string db;
  std::string coll;
  operation_type operation = operation_type::insert;
  std::optional<value> document_key; // the _id
  std::optional<object> full_document;
  std::optional<update_description> update;
  date_time wall_time;

  /// The event as MongoDB shapes it for change streams:
  /// {_id:{_data}, operationType, fullDocument?, documentKey?:{_id}, updateDescription?}.
  object to_object() const&;
  /// The same, moving the document and the update description out of this event.
  object to_object() &&;
  /// The inverse of to_object() (seq 0, wall_time unset), for an event that crossed the
  /// network in that shape. Fields of other types, and an unknown operationType (the
  /// operation stays insert), are ignored.
  static change_event from_object(const object& event, std::string db, std::string coll);
};

/// The resume token of an event in the shape stages see (its `_id._data`), or null.
const std::string* event_token(const object& event);

/// Whether `token` is an event's token (hex digits, as both backends' are), which
/// token_before() can order, rather than a snapshot token of a backend whose snapshot tokens
/// are of another kind (MongoDB's start with a letter that is not a hex digit).
inline bool is_event_token(std::string_view token) {
  return !token.empty() && token.find_first_not_of("0123456789abcdefABCDEF") == token.npos;
}

/// Whether resume token `a` is before `b` in their collection's change order. Tokens of
/// both backends are ordered as strings: the embedded store's are fixed-width hex
/// sequence numbers, MongoDB's `_data` is hex-encoded KeyString, which MongoDB documents
/// as sortable. (MongoDB snapshot tokens, see mongo_store.hpp, are not event tokens and
/// are never compared.)
inline bool token_before(std::string_view a, std::string_view b) {
  return a < b;
}

/// MongoDB snapshot tokens (the Resume-Token of a read, see storage/mongo/mongo_store.hpp):
/// the token of a read whose operationTime is Timestamp(t, i) is "T" and 16 hex digits;
/// snapshot_time() is the time a token holds, or nullopt when it is not a snapshot token.
std::string snapshot_token(std::uint32_t t, std::uint32_t i);
std::optional<timestamp_value> snapshot_time(std::string_view token);

/// Whether a read of the store at `position` (the position find_query::position gave)
/// already reflects the change event whose token is `event`: an event token reflects the
/// events up to it (token_before); a MongoDB snapshot token those whose cluster time is at
/// or before its operation time (MongoDB's event tokens begin with their cluster time,
/// KeyString-encoded: "82", then t and i as 8 hex digits each). False when neither tells
/// (an empty position, or an event token of another form).
bool reflects(std::string_view position, std::string_view event);

/// Embedded-store resume tokens: seq <-> 16 lowercase hex digits.
std::string token_from_seq(std::uint64_t seq);
std::optional<std::uint64_t> seq_from_token(std::string_view token);

} // namespace rheo
