// The MongoDB backend's change feeds: one MongoDB change stream per feed, read by the feed's
// own thread (see mongo_store.hpp for resuming, back-off, how a feed ends and the two kinds
// of resume token). Internal to storage/mongo.
//
// Thread-safety: open_feed() and the token functions on any thread; the feed as change_feed
// (storage/store.hpp).
#pragma once

#include "storage/mongo/client.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rheo::mongo {

/// Whether `token` has the form of a change event's `_id._data`: an event token
/// (is_event_token, store.hpp) of whole bytes (an even number of hex digits).
bool is_event_data(std::string_view token);

/// The snapshot token of a read whose operationTime is Timestamp(t, i): "T" and 16 hex
/// digits (see mongo_store.hpp).
std::string snapshot_token(std::uint32_t t, std::uint32_t i);

/// The operation time a snapshot token holds, or nullopt when `token` is not one.
std::optional<timestamp_value> snapshot_time(std::string_view token);

/// Opens the change stream of db.coll after `resume_after` (an event token or a snapshot
/// token), or from now when absent, on the calling thread, so that the position is fixed on
/// return. A token of neither form leaves the feed lost ("history lost: ...", once started).
std::unique_ptr<change_feed> open_feed(std::shared_ptr<mongo_core> core, const std::string& db,
                                       const std::string& coll,
                                       const std::optional<std::string>& resume_after);

} // namespace rheo::mongo
