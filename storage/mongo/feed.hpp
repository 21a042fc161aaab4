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

// snapshot_token() and snapshot_time(): storage/document/change_event.hpp.

/// A feed_sink that is also told when the stream goes down (a failure rheo re-opens after,
/// with backoff; errors the driver resumes are not told) and comes back up: events missed
/// meanwhile follow stream_up(), in order. Called on the feed's thread, like the sink.
class health_sink : public feed_sink {
public:
  virtual void stream_up() = 0;
  virtual void stream_down() = 0;
};

/// Opens the change stream of db.coll from now, on the calling thread when it can (`open`
/// tells whether it did); otherwise the feed thread opens it once started, retrying with
/// backoff. Never throws for an unreachable server: for a consumer that falls back while
/// the stream is down (the metadata cache).
std::unique_ptr<change_feed> open_feed_or_retry(std::shared_ptr<mongo_core> core,
                                                const std::string& db, const std::string& coll,
                                                bool& open);

/// Opens the change stream of db.coll after `resume_after` (an event token or a snapshot
/// token), or from now when absent, on the calling thread, so that the position is fixed on
/// return. A token of neither form leaves the feed lost ("history lost: ...", once started).
std::unique_ptr<change_feed> open_feed(std::shared_ptr<mongo_core> core, const std::string& db,
                                       const std::string& coll,
                                       const std::optional<std::string>& resume_after);

} // namespace rheo::mongo
