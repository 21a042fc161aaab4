// The MongoDB backend's change feeds: one MongoDB change stream per feed, read by the feed's
// own thread (see mongo_store.hpp for resuming, back-off and how a feed ends). Internal to
// storage/mongo.
//
// Thread-safety: open_feed() on any thread; the feed as change_feed (storage/store.hpp).
#pragma once

#include "storage/mongo/client.hpp"
#include "storage/store.hpp"

#include <memory>
#include <string>

namespace rheo::mongo {

/// Opens the change stream of db.coll (after `resume_after`, a {_data: token} document,
/// or from now when empty) on the calling thread, so that the position is fixed on return.
std::unique_ptr<change_feed> open_feed(std::shared_ptr<mongo_core> core, const std::string& db,
                                       const std::string& coll, bson_ptr resume_after);

} // namespace rheo::mongo
