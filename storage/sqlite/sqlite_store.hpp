// The embedded store: SQLite in WAL mode holding BSON documents, with an atomic change
// log (every write commits its document change and one change-log entry in the same
// transaction).
//
// Layout: <data_dir>/rheo.db (tables collections, documents keyed by an order-preserving
// encoding of _id so that "newest first" is an index scan, changes keyed by seq, indexes
// and index_entries for secondary indexes; schema version and migration in schema.hpp)
// and <data_dir>/rheo.lock (flock: one process per data dir).
//
// Writes go through one writer thread that commits queued requests in batches (group
// commit: one transaction and one fsync per batch, each request in its own savepoint so a
// failing one rolls back alone). A call returns once its batch committed. Reads use pooled
// connections and never block on the writer (WAL). Secondary indexes (indexes.hpp) are
// maintained in the same transactions and chosen by the planner (planner.hpp); a TTL
// thread of the store submits the deletes of expired documents to the writer.
//
// Change log and feeds:
// - insert/replace/update/delete as MongoDB (update carries the full document after the
//   update). An insert that creates its collection logs only the insert.
// - Collection create, metadata replace (PUT) and merge (PATCH) log one rheo-internal entry
//   holding the new metadata; feeds deliver it through feed_sink::metadata(), in order with
//   the events (it never reaches feed_sink::events()).
// - Dropping a collection logs "drop" then "invalidate" (two entries, one transaction).
//   A feed delivers both, then calls lost() (as a MongoDB change stream ends on drop);
//   watch again once the collection is recreated.
// - Push: right after a commit, the writer thread hands the committed events of each
//   watched collection to its feeds' sinks (no queue, no SQLite access), before the
//   writes' callers are released: when insert() returns, the sink already has the event.
//   A slow consumer is the sink's business (the watcher's mailbox).
// - start() catches a resume token up on the calling thread (one read of the log) while
//   the writer holds the feed's live events; they follow the caught-up ones, deduplicated
//   by seq.
// - The log keeps the newest `changelog_retention` entries (trimmed in chunks of about 1/8
//   of it); resuming from an older, malformed or future token ends the feed with
//   lost("history lost: ...") when started.
//
// find_query: skip < 0 is 0; limit 0 returns nothing, limit < 0 means no limit.
//
// Thread-safety: the store is safe to use from any number of threads (store.hpp); it owns
// two threads, the writer and the TTL thread. Feeds as in store.hpp (their sinks are called
// on the writer thread, or on start()'s thread during catch-up; cancel() waits for a sink
// call in progress). close() stops the TTL thread, waits for queued writes, then fails
// later calls with std::runtime_error("store closed") and ends feeds with
// lost("store closed").
#pragma once

#include "storage/store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace rheo {

enum class durability {
  full,   // synchronous=FULL: an acknowledged write survives kill -9 and power loss
  normal, // synchronous=NORMAL: survives kill -9 (process crash), may lose the last
          // transactions on power loss
};

struct sqlite_store_options {
  std::string data_dir = "./data"; // created when missing
  rheo::durability durability = durability::full;
  std::uint64_t changelog_retention = 100000; // change-log entries kept (>= 1)
  /// How often TTL indexes are checked for expired documents (as MongoDB: every minute).
  std::chrono::milliseconds ttl_interval{60000};
};

/// Opens (creating when missing) the store in options.data_dir/rheo.db. Throws
/// std::runtime_error with one clear line when the directory or file is unusable.
std::unique_ptr<store> open_sqlite_store(const sqlite_store_options& options);

} // namespace rheo
