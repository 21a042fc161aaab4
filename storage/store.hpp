// The storage interface both backends implement (embedded SQLite, MongoDB): documents
// in, change events out, plus collections' metadata and secondary indexes. Methods report
// client-visible failures as api_error with the HTTP status of the API contract (404
// unknown collection/document, 409 duplicate _id, 412 If-Match mismatch, 400 bad input).
//
// Thread-safety: every method of a store may be called concurrently from any thread.
// Change feeds push to a feed_sink; see change_feed and feed_sink for their threads.
#pragma once

#include "storage/document/aggregation.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/query.hpp"
#include "storage/document/update.hpp"
#include "storage/document/value.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

// The client-visible failures both stores raise, with the contract's statuses.
[[noreturn]] inline void throw_no_collection(const std::string& coll) {
  throw api_error(404, "collection '" + coll + "' does not exist");
}
[[noreturn]] inline void throw_no_document() {
  throw api_error(404, "document not found");
}
[[noreturn]] inline void throw_duplicate_id() {
  throw api_error(409, "duplicate _id: a document with this _id already exists");
}

/// 412: If-Match names another version than the stored one. `current()` is the stored
/// version's etag, which the answer carries as its ETag header so that the client can
/// retry with it; none when there is no stored version (an upsert with If-Match of a
/// document that does not exist) or it has no etag (a document another MongoDB client
/// wrote).
class etag_mismatch : public api_error {
public:
  etag_mismatch(std::string message, std::optional<object_id> current)
      : api_error(412, std::move(message)), current_(current) {}
  const std::optional<object_id>& current() const { return current_; }

private:
  std::optional<object_id> current_;
};

[[noreturn]] inline void throw_etag_mismatch(std::optional<object_id> current) {
  throw etag_mismatch("the document ETag does not match If-Match", current);
}
[[noreturn]] inline void throw_collection_etag_mismatch(std::optional<object_id> current) {
  throw etag_mismatch("the collection ETag does not match If-Match", current);
}

/// A stored document's etag: its `_etag` when that is an ObjectId (documents written by
/// another MongoDB client may have none).
inline std::optional<object_id> document_etag(const object& doc) {
  const value* etag = find_field(doc, "_etag");
  if (!etag || !etag->is<object_id>()) return std::nullopt;
  return etag->get<object_id>();
}

struct collection_info {
  object metadata; // user metadata, e.g. {"streams":[...]}, without _id/_etag
  object_id etag;
};

/// How a find was answered (find_query::explain): GET /<coll>?explain=true answers it, and
/// the debug log shows it.
struct query_plan {
  std::string index;          // the index scanned ("_id_" for the documents themselves)
  std::uint64_t examined = 0; // index entries (or documents) read
  std::string bounds;         // what was scanned, for people: "timestamp: all, backward"
  bool in_memory_sort = false;
};

/// A page of documents a store wrote as JSON (find_query::page_json).
struct json_page {
  std::string json;      // the documents, each as append_json writes it, comma-separated
  std::size_t count = 0; // how many
  bool written = false;  // false: the store returned the documents instead
};

struct find_query {
  matcher filter;
  sort_spec sort;  // empty: newest first ({_id:-1})
  projection keys; // empty: whole documents
  std::int64_t skip = 0;
  std::int64_t limit = 100;
  // The request's own filter/sort/keys objects, for backends that evaluate queries
  // server-side (MongoDB). Empty when not given; backends that get an empty filter_doc
  // with a non-trivial `filter` fall back to filtering with the matcher.
  object filter_doc;
  object sort_doc;
  object keys_doc;
  /// When set, receives how the query was answered.
  query_plan* explain = nullptr;
  /// With `explain`: only if knowing it costs nothing (the embedded store plans the query
  /// itself; MongoDB would need one more command, and is then not asked). For logging.
  bool explain_if_free = false;
  /// When set, receives the change-feed position the result reflects, as a resume token
  /// (the Resume-Token header): a feed watched from it delivers exactly the changes the
  /// result does not show.
  std::string* position = nullptr;
  /// When set, a store that can writes the page here, each document's JSON made straight
  /// from its stored form, and returns no documents (the embedded store does without a
  /// projection in `keys` and with a sort an index gives). Otherwise it returns them.
  json_page* page_json = nullptr;
};

/// A secondary index as the index API shows it.
struct index_info {
  std::string name;
  object key;     // the key pattern as given: {field: 1 | -1, ...} (any non-zero number)
  object options; // those set of: unique, sparse, partialFilterExpression, expireAfterSeconds
};

enum class write_mode { insert, update, upsert };

/// What a bulk write did (section 9 of the API contract).
struct bulk_result {
  std::int64_t inserted = 0;
  std::int64_t deleted = 0;
  std::int64_t modified = 0;
  std::int64_t matched = 0;
  std::vector<value> ids; // of the inserted documents, in order
};

/// The documents of a bulk insert, handed over one at a time: a store that can takes each
/// as it comes and keeps only its encoded form, so that a large body's documents never all
/// exist as values at once. Thread-safety: used by one thread at a time.
class insert_source {
public:
  virtual ~insert_source() = default;
  /// The next document, or nullopt after the last. May throw (api_error(400) for a bad
  /// element): the store then inserts nothing.
  virtual std::optional<object> next() = 0;
};

/// An insert_source over documents already in memory.
class vector_source final : public insert_source {
public:
  explicit vector_source(std::vector<object> docs) : docs_(std::move(docs)) {}
  std::optional<object> next() override {
    if (next_ == docs_.size()) return std::nullopt;
    return std::move(docs_[next_++]);
  }

private:
  std::vector<object> docs_;
  std::size_t next_ = 0;
};

struct write_result {
  value id;
  object_id etag;
  bool created = false; // a new document (201) rather than an update (200)
};

/// Why a change feed ended (feed_sink::lost).
enum class feed_end_cause : std::uint8_t {
  history_lost, // the resume token is older than the history the store holds, or unknown to it
  invalidated,  // the collection was dropped or renamed (after the "invalidate" event)
  failed,       // anything else: the store closed, an upstream error
};
inline constexpr feed_end_cause last_feed_end_cause = feed_end_cause::failed;

/// The end of a change feed: its cause, and the reason in words (logged; a history_lost
/// reason starts with history_lost_reason and is shown to SSE clients).
struct feed_end {
  feed_end_cause cause = feed_end_cause::failed;
  std::string reason;

  friend bool operator==(const feed_end&, const feed_end&) = default;
};

/// A backup the store wrote (store::backup): the file, the change-log position the copy
/// reflects (a resume token), its size and how long it took.
struct backup_result {
  std::string file;
  std::string position;
  std::uint64_t bytes = 0;
  std::int64_t millis = 0;
};

/// Receives a feed's output, in commit order: events, metadata changes and, last, the end
/// of the feed. Implemented by the consumer (the watcher actor).
///
/// Thread-safety: called from a store thread (the embedded store's writer thread, or the
/// feed's own thread; catch-up of a resume token may run on the thread calling start()),
/// never concurrently for one feed. A call must not block and must not call back into the
/// store or the feed.
class feed_sink {
public:
  virtual ~feed_sink() = default;
  /// Committed changes, in commit order (never empty).
  virtual void events(std::vector<change_event> batch) = 0;
  /// Committed changes already in the shape stages see (change_event::to_object()), shared
  /// read-only: what a cluster edge's feed receives from its core. By default turned back
  /// into change_events (without seq, db, coll and wall time) for events(); the actors'
  /// sinks pass the batch on as it is.
  virtual void shaped_events(std::shared_ptr<const std::vector<object>> batch) {
    std::vector<change_event> events;
    events.reserve(batch->size());
    for (auto& ev : *batch)
      events.push_back(change_event::from_object(ev, {}, {}));
    this->events(std::move(events));
  }
  /// The collection's metadata after a change made through this store (stream
  /// definitions added, changed or removed), in order with the events.
  virtual void metadata(object metadata) = 0;
  /// The feed has delivered every change up to `token` (a resume token): none at or before
  /// it follows. Called when the feed learns a position no event carries (after catching
  /// up a resume token; after an empty upstream batch). Optional for consumers.
  virtual void position(std::string token) { (void)token; }
  /// Pacing of a resume token's catch-up: 0 (the default), the feed delivers the missed
  /// events as fast as it reads them; otherwise it delivers about this many bytes of them
  /// (at least one event), then waits for change_feed::more() before the next part. A
  /// paced sink must call more() after each events() call, once it has room for more.
  virtual std::size_t catch_up_bytes() const { return 0; }
  /// The feed ended: history lost, invalidated (after the "invalidate" event was
  /// delivered), or failed (the store closed, ...). The last call the sink gets.
  virtual void lost(feed_end end) = 0;
};

/// How the reason given to feed_sink::lost() starts when the feed's resume token is older
/// than the history the store still holds (or unknown to it).
inline constexpr std::string_view history_lost_reason = "history lost";

/// One upstream change feed for one collection. Its position is fixed when watch()
/// returns: every change committed after that reaches the sink given to start().
///
/// Thread-safety: start() once, from any thread; cancel() from any thread except from
/// inside a call to the feed's sink. Destroying the feed cancels it.
class change_feed {
public:
  virtual ~change_feed() = default;
  /// Begins delivery to `sink`. A resume token given to watch() is caught up first: the
  /// events missed since it reach the sink before any live one, without gap or duplicate.
  virtual void start(std::shared_ptr<feed_sink> sink) = 0;
  /// The position watch() fixed, as a resume token: the feed delivers exactly the changes
  /// after it (the resume token itself when one was given). Empty when the backend cannot
  /// tell (a MongoDB server that sends no post-batch resume token).
  virtual std::string position() const = 0;
  /// Stops delivery: once it returns, the sink is never called again, and any thread the
  /// feed owns has been joined (this may take as long as a blocked upstream read, see the
  /// backend). Idempotent.
  virtual void cancel() = 0;
  /// For a feed whose sink paces its catch-up (feed_sink::catch_up_bytes): the sink has room
  /// for the next part. May block (it may read the next part on the calling thread); never
  /// call it from inside a call to the sink. A call while a part is under way lets the next
  /// one follow at once. Ignored by unpaced and finished feeds.
  virtual void more() {}
};

class store {
public:
  virtual ~store() = default;

  // ---- collections ----
  virtual std::vector<std::string> collection_names(const std::string& db) = 0;
  virtual std::optional<collection_info> collection(const std::string& db,
                                                    const std::string& coll) = 0;
  /// Creates (returns true) or replaces the metadata of (returns false) a collection.
  virtual bool put_collection(const std::string& db, const std::string& coll, object metadata,
                              const std::optional<std::string>& if_match) = 0;
  /// Merges `metadata` into the existing metadata (top-level keys); 404 if missing.
  virtual void patch_collection(const std::string& db, const std::string& coll, object metadata,
                                const std::optional<std::string>& if_match) = 0;
  /// Drops the collection and its documents. `etag` must match (412), 404 if missing.
  virtual void drop_collection(const std::string& db, const std::string& coll,
                               const std::string& etag) = 0;

  // ---- documents ----
  /// 404 when the collection does not exist.
  virtual std::vector<object> find(const std::string& db, const std::string& coll,
                                   const find_query& q) = 0;
  /// The number of documents matching `q` (q.filter, and q.filter_doc for backends that
  /// count server-side; the rest of `q` is ignored). 404 when the collection does not exist.
  virtual std::int64_t count_query(const std::string& db, const std::string& coll,
                                   const find_query& q) = 0;
  /// `position`, when set, receives the change-feed position the answer reflects (as
  /// find_query::position).
  virtual std::optional<object> find_by_id(const std::string& db, const std::string& coll,
                                           const value& id, std::string* position = nullptr) = 0;
  /// Inserts (creating the collection when missing). Generates _id (ObjectId) when absent;
  /// sets a fresh `_etag`. 409 when the _id exists.
  virtual write_result insert(const std::string& db, const std::string& coll, object doc) = 0;
  /// Replaces the document `id` (the body's own _id, if any, must equal `id`).
  /// mode update: 404 if absent; upsert: inserts; insert: 409 if present.
  virtual write_result replace(const std::string& db, const std::string& coll, const value& id,
                               object doc, write_mode mode,
                               const std::optional<std::string>& if_match) = 0;
  virtual write_result update(const std::string& db, const std::string& coll, const value& id,
                              const update_spec& spec, write_mode mode,
                              const std::optional<std::string>& if_match) = 0;
  /// 404 when absent.
  virtual void remove(const std::string& db, const std::string& coll, const value& id,
                      const std::optional<std::string>& if_match) = 0;

  // ---- bulk writes ----
  /// Inserts every document of `docs` (creating the collection when missing), each with
  /// its change event. The embedded store does it in one transaction: a duplicate _id or
  /// unique key is 409 and nothing is inserted.
  virtual bulk_result insert_many(const std::string& db, const std::string& coll,
                                  std::vector<object> docs) = 0;
  /// insert_many() of the documents `docs` hands over, all taken before anything is written
  /// (an error from `docs` inserts nothing). By default they are collected and passed to
  /// insert_many(); the embedded store keeps each one encoded only.
  virtual bulk_result insert_from(const std::string& db, const std::string& coll,
                                  insert_source& docs) {
    std::vector<object> all;
    while (auto doc = docs.next())
      all.push_back(std::move(*doc));
    return insert_many(db, coll, std::move(all));
  }
  /// Applies `spec` to every document matching `q` (q.filter, q.filter_doc), one update
  /// event per changed document; matched counts the matches, modified those that changed.
  /// 404 when the collection does not exist.
  virtual bulk_result update_many(const std::string& db, const std::string& coll,
                                  const find_query& q, const update_spec& spec) = 0;
  /// Deletes every document matching `q`, one delete event each.
  virtual bulk_result delete_many(const std::string& db, const std::string& coll,
                                  const find_query& q) = 0;

  // ---- aggregations ----
  /// Runs `a` over the collection's documents in _id order (natural order); 404 when the
  /// collection does not exist, 400 as aggregation::run() says.
  virtual std::vector<object> aggregate(const std::string& db, const std::string& coll,
                                        const aggregation& a, const aggregation_limits& limits) = 0;

  // ---- indexes ----
  /// The collection's indexes, the built-in "_id_" first; 404 when the collection does not
  /// exist.
  virtual std::vector<index_info> list_indexes(const std::string& db, const std::string& coll) = 0;
  /// Creates index `name` over `key` ({field: direction}: as in MongoDB, any number other
  /// than 0, its sign the direction) with `options` (unique, sparse,
  /// partialFilterExpression, expireAfterSeconds). 404 unknown collection; 400 a bad key or
  /// option (the embedded store: a special index type such as "text"), a name starting with
  /// '_', or (unique) data that already holds duplicates; 409 when an index of that name
  /// exists.
  virtual void create_index(const std::string& db, const std::string& coll, const std::string& name,
                            const object& key, const object& options) = 0;
  /// 400 for "_id_" (or any name starting with '_'); 404 when there is no such index.
  virtual void drop_index(const std::string& db, const std::string& coll,
                          const std::string& name) = 0;

  // ---- change feeds ----
  /// 400 (api_error) unless `token` has the form of a resume token this store issues (an
  /// event's `_id._data`, or a Resume-Token header). Says nothing about whether the store
  /// still holds the history after it: watch() tells that.
  virtual void check_resume_token(const std::string& token) const = 0;
  /// Opens a feed of the collection's changes after `resume_after` (a token previously
  /// delivered), or from now when absent. A token that is unknown or past retention
  /// ends the feed once started: its sink's lost() is called ("history lost: ...").
  virtual std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                             const std::optional<std::string>& resume_after) = 0;

  // ---- backup ----
  /// Writes a consistent copy of the whole store, as of one commit, to the file `path`
  /// (replaced when it exists) while reads and writes go on; the embedded store's format
  /// (storage/sqlite/backup.hpp), which `rheo restore` reads. 409 while another backup of
  /// this store runs; 500 when the file cannot be written; 501 by default: a store that
  /// cannot (MongoDB has mongodump; a cluster edge's store is the core's).
  virtual backup_result backup(const std::string& path) {
    (void)path;
    throw api_error(501, "this store cannot write a backup (only the embedded store can; on "
                         "a cluster, back up the core)");
  }

  /// Closes the store cleanly (checkpoints, releases files). Idempotent.
  virtual void close() = 0;
};

} // namespace rheo
