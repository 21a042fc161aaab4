#include "storage/mongo/mongo_store.hpp"

#include "config/log.hpp"
#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"

#include <mongoc/mongoc.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace rheo {

namespace {

// MongoDB server error codes rheo reacts to.
constexpr std::uint32_t err_duplicate_key = 11000;
constexpr std::uint32_t err_namespace_not_found = 26;
constexpr std::uint32_t err_namespace_exists = 48;
constexpr std::uint32_t err_command_not_found = 59;
constexpr std::uint32_t err_capped_position_lost = 136;
constexpr std::uint32_t err_invalid_resume_token = 260;
constexpr std::uint32_t err_change_stream_fatal = 280;
constexpr std::uint32_t err_change_stream_history_lost = 286;

// Server errors caused by the request (a bad filter, sort, projection or update, an
// aggregation holding more than MongoDB allows), not by the deployment: reported as 400
// with the server's message.
constexpr std::uint32_t client_errors[] = {
    2,     // BadValue
    4,     // NoSuchKey
    9,     // FailedToParse
    14,    // TypeMismatch
    16,    // InvalidLength
    17,    // ProtocolError
    28,    // PathNotViable
    40,    // ConflictingUpdateOperators
    51,    // DollarPrefixedFieldName (old)
    52,    // DollarPrefixedFieldName
    53,    // InvalidIdField
    54,    // NotSingleValueField
    55,    // InvalidDBRef
    56,    // EmptyFieldName
    57,    // DottedFieldName
    66,    // ImmutableField
    72,    // InvalidOptions
    292,   // QueryExceededMemoryLimitNoDiskUseAllowed (an aggregation's $group or $sort)
    2010,  // BadRegex (some versions)
    16819, // $sort exceeded its memory limit (before 4.4)
    16945, // $group exceeded its memory limit (before 4.4)
    17276, // legacy projection errors
    31253, // projection mix of inclusion and exclusion
    31254, // projection mix of inclusion and exclusion
    51091, // invalid regular expression
};

const std::string properties_coll = "_properties";

std::once_flag mongoc_init_once;

// ---- BSON ----

/// An owned heap bson_t (unique_ptr<bson_t> would drop bson_t's alignment attribute).
class bson_ptr {
public:
  bson_ptr() = default;
  explicit bson_ptr(bson_t* b) : b_(b) {}
  bson_ptr(bson_ptr&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  bson_ptr& operator=(bson_ptr&& o) noexcept {
    reset(std::exchange(o.b_, nullptr));
    return *this;
  }
  ~bson_ptr() { reset(); }
  bson_t* get() const { return b_; }
  void reset(bson_t* b = nullptr) {
    if (b_) bson_destroy(b_);
    b_ = b;
  }
  explicit operator bool() const { return b_ != nullptr; }

private:
  bson_t* b_ = nullptr;
};

bson_ptr to_bson(const object& o) {
  const std::string bytes = encode_bson(o);
  bson_t* b = bson_new_from_data(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!b) throw std::runtime_error("cannot encode a document as BSON");
  return bson_ptr(b);
}

object from_bson(const bson_t* b) {
  return decode_bson({reinterpret_cast<const char*>(bson_get_data(b)), b->len});
}

/// A reply document some mongoc calls initialise (always, even on failure).
struct reply_doc {
  bson_t b;
  reply_doc() { bson_init(&b); }
  ~reply_doc() { bson_destroy(&b); }
  reply_doc(const reply_doc&) = delete;
  reply_doc& operator=(const reply_doc&) = delete;
  object get() const { return from_bson(&b); }
};

std::int64_t int_field(const object& o, std::string_view key) {
  const value* v = find_field(o, key);
  return v && v->is_number() ? v->as_int64() : 0;
}

// ---- errors ----

bool is_history_lost(const bson_error_t& e) {
  if (e.domain != MONGOC_ERROR_SERVER && e.domain != MONGOC_ERROR_QUERY) return false;
  return e.code == err_change_stream_history_lost || e.code == err_change_stream_fatal ||
         e.code == err_capped_position_lost || e.code == err_invalid_resume_token;
}

/// Raises the api_error a failed MongoDB call maps to.
[[noreturn]] void throw_mongo(const bson_error_t& e, std::string_view what) {
  std::string msg = std::string(what) + ": " + e.message;
  if (e.domain == MONGOC_ERROR_SERVER_SELECTION || e.domain == MONGOC_ERROR_STREAM)
    throw api_error(503, "MongoDB unavailable: " + msg);
  if (e.code == err_duplicate_key) throw_duplicate_id();
  if (e.domain == MONGOC_ERROR_SERVER || e.domain == MONGOC_ERROR_COLLECTION ||
      e.domain == MONGOC_ERROR_QUERY || e.domain == MONGOC_ERROR_WRITE_CONCERN)
    if (std::find(std::begin(client_errors), std::end(client_errors), e.code) !=
        std::end(client_errors))
      throw api_error(400, e.message);
  throw api_error(500, "MongoDB error: " + msg);
}

std::string properties_id(const std::string& coll) {
  return properties_coll + "." + coll;
}

bool hidden_collection(std::string_view name) {
  return name.empty() || name.front() == '_' || name.starts_with("system.");
}

// ---- the shared core: pool and live feeds ----

/// Metadata changes made through this process, pushed into a feed for its thread to
/// deliver, and the feed's cancellation flag. Thread-safety: all members under `mu`.
struct feed_inbox {
  std::string key; // db '\0' coll
  std::mutex mu;
  std::condition_variable cv;
  std::deque<object> metadata;
  bool cancelled = false;
};

/// Owns the client pool; shared by the store and its feeds so that a feed outliving the
/// store keeps its pool. Thread-safety: the pool is thread-safe; `feeds` under `feeds_mu`.
struct mongo_core {
  mongoc_uri_t* uri = nullptr;
  mongoc_client_pool_t* pool = nullptr;
  mongo_store_options options;
  std::string hosts; // for messages, without credentials
  std::mutex feeds_mu;
  std::multimap<std::string, feed_inbox*> feeds;

  ~mongo_core() {
    if (pool) mongoc_client_pool_destroy(pool);
    if (uri) mongoc_uri_destroy(uri);
  }

  void add_feed(feed_inbox* in) {
    std::lock_guard lk(feeds_mu);
    feeds.emplace(in->key, in);
  }
  void remove_feed(feed_inbox* in) {
    std::lock_guard lk(feeds_mu);
    auto [b, e] = feeds.equal_range(in->key);
    for (auto it = b; it != e; ++it)
      if (it->second == in) {
        feeds.erase(it);
        return;
      }
  }
  /// Pushes a metadata change into every live feed of the collection.
  void publish_metadata(const std::string& db, const std::string& coll, const object& metadata) {
    std::lock_guard lk(feeds_mu);
    auto [b, e] = feeds.equal_range(db + '\0' + coll);
    for (auto it = b; it != e; ++it) {
      std::lock_guard ilk(it->second->mu);
      it->second->metadata.push_back(metadata);
      it->second->cv.notify_all();
    }
  }
};

/// A client popped from the pool for the duration of one call (or one change stream).
/// Thread-safety: used by one thread at a time (a mongoc_client_t is not thread-safe).
class pooled_client {
public:
  explicit pooled_client(mongo_core& core)
      : pool_(core.pool), client_(mongoc_client_pool_pop(core.pool)) {}
  ~pooled_client() {
    if (client_) mongoc_client_pool_push(pool_, client_);
  }
  pooled_client(pooled_client&& other) noexcept
      : pool_(other.pool_), client_(std::exchange(other.client_, nullptr)) {}
  pooled_client(const pooled_client&) = delete;
  pooled_client& operator=(const pooled_client&) = delete;
  pooled_client& operator=(pooled_client&&) = delete;
  mongoc_client_t* get() const { return client_; }

private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_;
};

/// The MongoDB update document of `spec`: {op: {path: arg}} in body order, with the new
/// `etag` set (the store owns _etag).
object update_document_of(const update_spec& spec, const object_id& etag) {
  object update;
  for (auto& op : spec.ops()) {
    if (op.path == "_etag" || op.path.starts_with("_etag.")) continue;
    value* fields = find_field(update, op.name);
    if (!fields) {
      update.emplace_back(op.name, value(object{}));
      fields = &update.back().second;
    }
    set_field(fields->as_object(), op.path, op.arg);
  }
  value* set = find_field(update, "$set");
  if (!set) {
    update.emplace_back("$set", value(object{}));
    set = &update.back().second;
  }
  set_field(set->as_object(), "_etag", etag);
  return update;
}

/// A count from a write reply ("matchedCount", "deletedCount", ...), 0 when absent.
std::int64_t reply_count(const object& reply, std::string_view field) {
  const value* v = find_field(reply, field);
  return v && v->is_number() ? v->as_int64() : 0;
}

/// Runs a write command (createIndexes, dropIndexes) on `db`.
void run_command(pooled_client& c, const std::string& db, const object& command,
                 const std::string& what) {
  bson_error_t error;
  reply_doc reply;
  if (!mongoc_client_write_command_with_opts(c.get(), db.c_str(), to_bson(command).get(), nullptr,
                                             &reply.b, &error))
    throw_mongo(error, what);
}

struct collection_deleter {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};
using collection_ptr = std::unique_ptr<mongoc_collection_t, collection_deleter>;

collection_ptr collection_of(const pooled_client& c, const std::string& db,
                             const std::string& coll) {
  return collection_ptr(mongoc_client_get_collection(c.get(), db.c_str(), coll.c_str()));
}

struct cursor_deleter {
  void operator()(mongoc_cursor_t* c) const { mongoc_cursor_destroy(c); }
};
using cursor_ptr = std::unique_ptr<mongoc_cursor_t, cursor_deleter>;

/// Drains a cursor; throws on a cursor error.
std::vector<object> drain(mongoc_cursor_t* cursor, std::string_view what) {
  std::vector<object> out;
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc))
    out.push_back(from_bson(doc));
  bson_error_t error;
  if (mongoc_cursor_error(cursor, &error)) throw_mongo(error, what);
  return out;
}

// ---- change events ----

/// A MongoDB change document as rheo's change_event.
change_event event_from_change(const object& doc, const std::string& db, const std::string& coll) {
  change_event ev;
  ev.db = db;
  ev.coll = coll;
  ev.wall_time = date_time::now();
  bool wall_time_seen = false;
  for (auto& [k, v] : doc) {
    if (k == "_id") {
      const value* data = v.is_object() ? find_field(v.as_object(), "_data") : nullptr;
      ev.token = data && data->is_string() ? data->as_string() : to_json(v);
    } else if (k == "operationType" && v.is_string()) {
      ev.operation = v.as_string();
    } else if (k == "fullDocument" && v.is_object()) {
      ev.full_document = v.as_object();
    } else if (k == "documentKey" && v.is_object()) {
      if (const value* id = find_field(v.as_object(), "_id")) ev.document_key = *id;
    } else if (k == "updateDescription" && v.is_object()) {
      update_description desc;
      if (const value* f = find_field(v.as_object(), "updatedFields"); f && f->is_object())
        desc.updated_fields = f->as_object();
      if (const value* r = find_field(v.as_object(), "removedFields"); r && r->is_array())
        for (auto& path : r->as_array())
          if (path.is_string()) desc.removed_fields.push_back(path.as_string());
      ev.update = std::move(desc);
    } else if (k == "wallTime" && v.is<date_time>()) {
      ev.wall_time = v.get<date_time>();
      wall_time_seen = true;
    } else if (k == "clusterTime" && v.is<timestamp_value>() && !wall_time_seen) {
      ev.wall_time = date_time{static_cast<std::int64_t>(v.get<timestamp_value>().t) * 1000};
    }
  }
  return ev;
}

// ---- feeds ----

/// One MongoDB change stream, read by the feed's own thread (started by start(), joined by
/// cancel()), which calls the sink. Thread-safety: as change_feed (store.hpp); the stream,
/// its pooled client and the position belong to the caller of open_now() until start(),
/// then to the feed thread until it is joined.
class mongo_feed final : public change_feed {
public:
  mongo_feed(std::shared_ptr<mongo_core> core, std::string db, std::string coll,
             bson_ptr resume_after)
      : core_(std::move(core)), db_(std::move(db)), coll_(std::move(coll)),
        token_(std::move(resume_after)), backoff_(core_->options.backoff_min) {
    inbox_.key = db_ + '\0' + coll_;
    core_->add_feed(&inbox_);
  }

  ~mongo_feed() override {
    cancel();
    close_stream();
    core_->remove_feed(&inbox_);
  }

  /// Opens the stream now (the caller's position is fixed when this returns). A resume
  /// token the server no longer knows leaves the feed lost (lost() once started); other
  /// failures throw std::runtime_error.
  void open_now() {
    bson_error_t error;
    if (open(error)) return;
    if (is_history_lost(error)) {
      lost_ = std::string("history lost: ") + error.message;
      return;
    }
    throw std::runtime_error(std::string("cannot open the change stream: ") + error.message);
  }

  void start(std::shared_ptr<feed_sink> sink) override {
    std::lock_guard lk(inbox_.mu);
    if (inbox_.cancelled || thread_.joinable()) return;
    sink_ = std::move(sink);
    thread_ = std::thread([this] { run(); });
  }

  /// Returns once the feed thread has ended: at once when it waits (backoff, no stream),
  /// after the getMore in flight otherwise (at most max_await when the server answers; while
  /// no server is reachable, up to the driver's server selection or socket timeout).
  void cancel() override {
    std::thread feed_thread;
    {
      std::lock_guard lk(inbox_.mu);
      inbox_.cancelled = true;
      feed_thread = std::move(thread_);
    }
    inbox_.cv.notify_all();
    if (!feed_thread.joinable()) return;
    if (feed_thread.get_id() == std::this_thread::get_id())
      feed_thread.detach(); // misuse (cancel from a sink call): do not self-join
    else
      feed_thread.join();
  }

private:
  bool cancelled() {
    std::lock_guard lk(inbox_.mu);
    return inbox_.cancelled;
  }

  /// The feed thread: reads the stream and calls the sink until cancelled or lost.
  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      log::error("change feed of " + db_ + "." + coll_ + " failed: " + e.what());
      if (!cancelled()) sink_->lost(e.what());
    }
    close_stream(); // the stream's client is returned by the thread that used it
    sink_.reset();
  }

  void loop() {
    for (;;) {
      std::deque<object> metadata;
      {
        std::unique_lock lk(inbox_.mu);
        // Back off before re-opening; cancel() and metadata changes cut the wait short.
        if (!stream_ && !lost_)
          inbox_.cv.wait_until(lk, retry_at_,
                               [&] { return inbox_.cancelled || !inbox_.metadata.empty(); });
        if (inbox_.cancelled) return;
        metadata.swap(inbox_.metadata);
      }
      for (auto& m : metadata) {
        if (cancelled()) return;
        sink_->metadata(std::move(m));
      }
      if (lost_) {
        close_stream(); // after delivering the invalidate: may talk to the server
        if (!cancelled()) sink_->lost(*lost_);
        return;
      }
      if (!stream_) {
        if (std::chrono::steady_clock::now() < retry_at_) continue; // woken by metadata
        bson_error_t error;
        if (!open(error)) {
          failed(error, "cannot re-open the change stream");
          continue;
        }
        log::info("change stream of " + db_ + "." + coll_ + " re-opened" +
                  (token_ ? " after the last delivered event" : ""));
      }
      const bson_t* doc = nullptr;
      if (mongoc_change_stream_next(stream_, &doc)) {
        change_event ev = event_from_change(from_bson(doc), db_, coll_);
        remember_position();
        backoff_ = core_->options.backoff_min;
        if (ev.operation == "invalidate")
          lost_ = "invalidated: the collection was dropped or renamed";
        if (cancelled()) return;
        std::vector<change_event> batch;
        batch.push_back(std::move(ev));
        sink_->events(std::move(batch));
        continue;
      }
      bson_error_t error;
      const bson_t* reply = nullptr;
      if (mongoc_change_stream_error_document(stream_, &error, &reply)) {
        failed(error, "change stream failed");
        continue;
      }
      // An empty batch: the server's position advanced (postBatchResumeToken) or not.
      remember_position();
      backoff_ = core_->options.backoff_min;
    }
  }

private:
  bool open(bson_error_t& error) {
    close_stream();
    client_.emplace(*core_);
    object opts{
        {"fullDocument", value("updateLookup")},
        {"maxAwaitTimeMS", value(static_cast<std::int64_t>(core_->options.max_await.count()))}};
    if (token_) opts.emplace_back("resumeAfter", value(from_bson(token_.get())));
    auto coll = collection_of(*client_, db_, coll_);
    bson_t pipeline;
    bson_init(&pipeline);
    stream_ = mongoc_collection_watch(coll.get(), &pipeline, to_bson(opts).get());
    bson_destroy(&pipeline);
    const bson_t* reply = nullptr;
    if (mongoc_change_stream_error_document(stream_, &error, &reply)) {
      close_stream();
      return false;
    }
    remember_position();
    return true;
  }

  void close_stream() {
    if (stream_) mongoc_change_stream_destroy(stream_);
    stream_ = nullptr;
    client_.reset();
  }

  /// Keeps the driver's resume token: the last delivered event's _id, or the server's
  /// postBatchResumeToken once a batch is exhausted (never ahead of a delivered event).
  void remember_position() {
    if (const bson_t* t = mongoc_change_stream_get_resume_token(stream_))
      token_.reset(bson_copy(t));
  }

  /// After a failed stream: lost for good, or re-opened later with backoff.
  void failed(const bson_error_t& error, std::string_view what) {
    close_stream();
    if (is_history_lost(error)) {
      lost_ = std::string("history lost: ") + error.message;
      return;
    }
    log::warn("change stream of " + db_ + "." + coll_ + ": " + std::string(what) + ": " +
              error.message + "; retrying in " + std::to_string(backoff_.count()) + " ms");
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, core_->options.backoff_max);
  }

  std::shared_ptr<mongo_core> core_;
  std::string db_;
  std::string coll_;
  feed_inbox inbox_;
  std::thread thread_; // under inbox_.mu; joined by cancel()
  // Used by the feed thread only once started (see the class comment).
  std::shared_ptr<feed_sink> sink_;
  std::optional<pooled_client> client_;
  mongoc_change_stream_t* stream_ = nullptr;
  bson_ptr token_;
  std::optional<std::string> lost_;
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point retry_at_{};
};

// ---- the store ----

/// Thread-safety: all methods may be called concurrently from any thread (each call pops
/// its own pooled client).
class mongo_store final : public store {
public:
  explicit mongo_store(std::shared_ptr<mongo_core> core) : core_(std::move(core)) {}
  ~mongo_store() override { close(); }

  std::vector<std::string> collection_names(const std::string& db) override {
    pooled_client c = client();
    std::set<std::string> names;
    for (auto& info : list_collections(c, db, std::nullopt)) {
      const value* name = find_field(info, "name");
      if (name && name->is_string() && !hidden_collection(name->as_string()))
        names.insert(name->as_string());
    }
    auto props = collection_of(c, db, properties_coll);
    bson_t filter;
    bson_init(&filter);
    cursor_ptr cursor(mongoc_collection_find_with_opts(
        props.get(), &filter, to_bson(object{{"projection", value(object{{"_id", 1}})}}).get(),
        nullptr));
    bson_destroy(&filter);
    const std::string prefix = properties_coll + ".";
    for (auto& doc : drain(cursor.get(), "reading _properties")) {
      const value* id = find_field(doc, "_id");
      if (id && id->is_string() && id->as_string().starts_with(prefix)) {
        std::string name = id->as_string().substr(prefix.size());
        if (!hidden_collection(name)) names.insert(std::move(name));
      }
    }
    return {names.begin(), names.end()};
  }

  std::optional<collection_info> collection(const std::string& db,
                                            const std::string& coll) override {
    pooled_client c = client();
    return read_collection(c, db, coll);
  }

  bool put_collection(const std::string& db, const std::string& coll, object metadata,
                      const std::optional<std::string>& if_match) override {
    erase_field(metadata, "_id");
    erase_field(metadata, "_etag");
    pooled_client c = client();
    auto existing = read_collection(c, db, coll);
    if (if_match && (!existing || !etag_matches(*if_match, existing->etag)))
      throw_collection_etag_mismatch();
    if (!existing) create_collection(c, db, coll);
    write_properties(c, db, coll, metadata, existing);
    publish_meta(db, coll, metadata);
    return !existing;
  }

  void patch_collection(const std::string& db, const std::string& coll, object metadata,
                        const std::optional<std::string>& if_match) override {
    erase_field(metadata, "_id");
    erase_field(metadata, "_etag");
    pooled_client c = client();
    auto existing = read_collection(c, db, coll);
    if (!existing) throw_no_collection(coll);
    if (if_match && !etag_matches(*if_match, existing->etag)) throw_collection_etag_mismatch();
    object merged = existing->metadata;
    for (auto& [k, v] : metadata)
      set_field(merged, k, v);
    write_properties(c, db, coll, merged, existing);
    publish_meta(db, coll, merged);
  }

  void drop_collection(const std::string& db, const std::string& coll,
                       const std::string& etag) override {
    pooled_client c = client();
    auto existing = read_collection(c, db, coll);
    if (!existing) throw_no_collection(coll);
    if (!etag_matches(etag, existing->etag)) throw_collection_etag_mismatch();
    bson_error_t error;
    auto target = collection_of(c, db, coll);
    if (!mongoc_collection_drop_with_opts(target.get(), nullptr, &error) &&
        error.code != err_namespace_not_found)
      throw_mongo(error, "dropping " + coll);
    auto props = collection_of(c, db, properties_coll);
    reply_doc reply;
    if (!mongoc_collection_delete_one(props.get(),
                                      to_bson(object{{"_id", value(properties_id(coll))}}).get(),
                                      nullptr, &reply.b, &error))
      throw_mongo(error, "deleting the metadata of " + coll);
  }

  std::vector<object> find(const std::string& db, const std::string& coll,
                           const find_query& q) override {
    pooled_client c = client();
    std::vector<object> out;
    // A caller that gave only the compiled matcher: filter, skip and limit in rheo.
    const bool local_filter = q.filter_doc.empty() && !q.filter.matches_all();
    if (q.limit != 0) {
      object sort = q.sort_doc;
      if (sort.empty())
        for (auto& [path, dir] : q.sort.keys())
          sort.emplace_back(path, value(dir));
      if (sort.empty()) sort.emplace_back("_id", value(-1));
      object opts{{"sort", value(std::move(sort))}};
      if (!q.keys_doc.empty() && !local_filter) opts.emplace_back("projection", value(q.keys_doc));
      if (!local_filter) {
        if (q.skip > 0) opts.emplace_back("skip", value(q.skip));
        if (q.limit > 0) opts.emplace_back("limit", value(q.limit));
      }
      auto target = collection_of(c, db, coll);
      cursor_ptr cursor(mongoc_collection_find_with_opts(
          target.get(), to_bson(local_filter ? object{} : q.filter_doc).get(), to_bson(opts).get(),
          nullptr));
      out = drain(cursor.get(), "find in " + coll);
      if (local_filter) {
        std::vector<object> kept;
        std::int64_t skipped = 0;
        for (auto& doc : out) {
          if (!q.filter.matches(doc)) continue;
          if (skipped < q.skip) {
            ++skipped;
            continue;
          }
          kept.push_back(std::move(doc));
          if (q.limit > 0 && static_cast<std::int64_t>(kept.size()) >= q.limit) break;
        }
        out = std::move(kept);
      }
      if (q.keys_doc.empty() || local_filter)
        if (!q.keys.empty())
          for (auto& doc : out)
            doc = q.keys.apply(doc);
    }
    if (out.empty() && !exists(c, db, coll)) throw_no_collection(coll);
    return out;
  }

  std::int64_t count(const std::string& db, const std::string& coll,
                     const matcher& filter) override {
    find_query q;
    q.filter = filter;
    return count_query(db, coll, q);
  }

  std::int64_t count_query(const std::string& db, const std::string& coll,
                           const find_query& q) override {
    if (q.filter_doc.empty() && !q.filter.matches_all()) {
      // Only a compiled matcher: count in rheo.
      find_query all;
      all.filter = q.filter;
      all.limit = -1;
      return static_cast<std::int64_t>(find(db, coll, all).size());
    }
    pooled_client c = client();
    std::int64_t n = 0;
    auto target = collection_of(c, db, coll);
    bson_error_t error;
    reply_doc reply;
    n = mongoc_collection_count_documents(target.get(), to_bson(q.filter_doc).get(), nullptr,
                                          nullptr, &reply.b, &error);
    if (n < 0) throw_mongo(error, "counting in " + coll);
    if (n == 0 && !exists(c, db, coll)) throw_no_collection(coll);
    return n;
  }

  std::optional<object> find_by_id(const std::string& db, const std::string& coll,
                                   const value& id) override {
    pooled_client c = client();
    return lookup(c, db, coll, id);
  }

  write_result insert(const std::string& db, const std::string& coll, object doc) override {
    value id = object_id::generate();
    if (auto* given = find_field(doc, "_id")) {
      id = std::move(*given);
      erase_field(doc, "_id");
    }
    if (id.is_array()) throw_bad_request("_id cannot be an array");
    const object_id etag = object_id::generate();
    set_field(doc, "_etag", etag);
    doc.insert(doc.begin(), {"_id", id});
    pooled_client c = client();
    insert_document(c, db, coll, doc);
    return write_result{std::move(id), etag, true};
  }

  write_result replace(const std::string& db, const std::string& coll, const value& id, object doc,
                       write_mode mode, const std::optional<std::string>& if_match) override {
    strip_matching_id(doc, id);
    if (id.is_array()) throw_bad_request("_id cannot be an array");
    const object_id etag = object_id::generate();
    set_field(doc, "_etag", etag);
    doc.insert(doc.begin(), {"_id", id});
    pooled_client c = client();
    if (mode == write_mode::insert) {
      if (if_match) throw_etag_mismatch();
      insert_document(c, db, coll, doc);
      return write_result{id, etag, true};
    }
    return write_one(c, db, coll, id, etag, mode, if_match, doc, mongoc_collection_replace_one,
                     "replacing in ");
  }

  write_result update(const std::string& db, const std::string& coll, const value& id,
                      const update_spec& spec, write_mode mode,
                      const std::optional<std::string>& if_match) override {
    if (id.is_array()) throw_bad_request("_id cannot be an array");
    const object_id etag = object_id::generate();
    pooled_client c = client();
    if (mode == write_mode::insert) {
      // Must not exist: build the document in rheo and insert it (409 when it exists).
      if (if_match) throw_etag_mismatch();
      object doc{{"_id", id}};
      spec.apply(doc);
      set_field(doc, "_etag", etag);
      insert_document(c, db, coll, doc);
      return write_result{id, etag, true};
    }
    return write_one(c, db, coll, id, etag, mode, if_match, update_document_of(spec, etag),
                     mongoc_collection_update_one, "updating in ");
  }

  using one_write = bool (*)(mongoc_collection_t*, const bson_t*, const bson_t*, const bson_t*,
                             bson_t*, bson_error_t*);

  /// A replace or update of document `id` (an upsert when `mode` says so and no If-Match).
  write_result write_one(pooled_client& c, const std::string& db, const std::string& coll,
                         const value& id, const object_id& etag, write_mode mode,
                         const std::optional<std::string>& if_match, const object& body,
                         one_write write, const char* what) {
    auto target = collection_of(c, db, coll);
    const bool upsert = mode == write_mode::upsert && !if_match;
    reply_doc reply;
    bson_error_t error;
    if (!write(target.get(), to_bson(selector(id, if_match)).get(), to_bson(body).get(),
               to_bson(object{{"upsert", value(upsert)}}).get(), &reply.b, &error))
      throw_mongo(error, what + coll);
    return write_outcome(reply.get(), c, db, coll, id, etag, mode, if_match);
  }

  void remove(const std::string& db, const std::string& coll, const value& id,
              const std::optional<std::string>& if_match) override {
    pooled_client c = client();
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_delete_one(target.get(), to_bson(selector(id, if_match)).get(), nullptr,
                                      &reply.b, &error))
      throw_mongo(error, "deleting in " + coll);
    if (int_field(reply.get(), "deletedCount") == 0)
      no_match(c, db, coll, id, write_mode::update, if_match);
  }

  // ---- bulk writes and aggregations ----

  bulk_result insert_many(const std::string& db, const std::string& coll,
                          std::vector<object> docs) override {
    bulk_result r;
    for (auto& doc : docs) {
      if (!find_field(doc, "_id")) doc.insert(doc.begin(), {"_id", object_id::generate()});
      set_field(doc, "_etag", object_id::generate());
      r.ids.push_back(*find_field(doc, "_id"));
    }
    pooled_client c = client();
    if (docs.empty()) {
      // Nothing to insert (mongoc refuses an empty insert): the collection is created, as
      // by any POST.
      create_collection(c, db, coll);
      return r;
    }
    // One transaction: all documents or none (a replica set is required anyway).
    bson_error_t error;
    mongoc_client_session_t* session = mongoc_client_start_session(c.get(), nullptr, &error);
    if (!session) throw_mongo(error, "starting a session");
    std::unique_ptr<mongoc_client_session_t, decltype(&mongoc_client_session_destroy)> guard(
        session, mongoc_client_session_destroy);
    if (!mongoc_client_session_start_transaction(session, nullptr, &error))
      throw_mongo(error, "starting a transaction");
    bson_ptr opts = to_bson(object{});
    if (!mongoc_client_session_append(session, opts.get(), &error))
      throw_mongo(error, "joining the transaction");
    std::vector<bson_ptr> owned;
    std::vector<const void*> pointers; // const bson_t* (bson_t's alignment attribute
                                       // cannot be a template argument)
    for (auto& doc : docs) {
      owned.push_back(to_bson(doc));
      pointers.push_back(owned.back().get());
    }
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    if (!mongoc_collection_insert_many(target.get(),
                                       reinterpret_cast<const bson_t**>(pointers.data()),
                                       pointers.size(), opts.get(), &reply.b, &error)) {
      mongoc_client_session_abort_transaction(session, nullptr);
      throw_mongo(error, "inserting into " + coll);
    }
    reply_doc commit;
    if (!mongoc_client_session_commit_transaction(session, &commit.b, &error))
      throw_mongo(error, "committing the inserts into " + coll);
    r.inserted = static_cast<std::int64_t>(docs.size());
    return r;
  }

  bulk_result update_many(const std::string& db, const std::string& coll, const find_query& q,
                          const update_spec& spec) override {
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_update_many(
            target.get(), to_bson(q.filter_doc).get(),
            to_bson(update_document_of(spec, object_id::generate())).get(), nullptr, &reply.b,
            &error))
      throw_mongo(error, "updating in " + coll);
    const object out = reply.get();
    bulk_result r;
    r.matched = reply_count(out, "matchedCount");
    r.modified = reply_count(out, "modifiedCount");
    return r;
  }

  bulk_result delete_many(const std::string& db, const std::string& coll,
                          const find_query& q) override {
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_delete_many(target.get(), to_bson(q.filter_doc).get(), nullptr, &reply.b,
                                       &error))
      throw_mongo(error, "deleting in " + coll);
    bulk_result r;
    r.deleted = reply_count(reply.get(), "deletedCount");
    return r;
  }

  std::vector<object> aggregate(const std::string& db, const std::string& coll,
                                const aggregation& a, const aggregation_limits&) override {
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    auto target = collection_of(c, db, coll);
    cursor_ptr cursor(mongoc_collection_aggregate(
        target.get(), MONGOC_QUERY_NONE, to_bson(object{{"pipeline", value(a.stages())}}).get(),
        nullptr, nullptr));
    return drain(cursor.get(), "aggregating " + coll);
  }

  // ---- indexes: MongoDB's own listIndexes, createIndexes and dropIndexes ----

  std::vector<index_info> list_indexes(const std::string& db, const std::string& coll) override {
    pooled_client c = client();
    auto target = collection_of(c, db, coll);
    cursor_ptr cursor(mongoc_collection_find_indexes_with_opts(target.get(), nullptr));
    std::vector<index_info> out;
    try {
      for (auto& spec : drain(cursor.get(), "listing the indexes of " + coll)) {
        index_info info;
        for (auto& [k, v] : spec) {
          if (k == "name" && v.is_string())
            info.name = v.as_string();
          else if (k == "key" && v.is_object())
            info.key = v.as_object();
          else if (k == "unique" || k == "sparse" || k == "partialFilterExpression" ||
                   k == "expireAfterSeconds")
            info.options.emplace_back(k, v);
        }
        out.push_back(std::move(info));
      }
    } catch (const api_error& e) {
      if (e.status() == 500 && !exists(c, db, coll)) throw_no_collection(coll);
      throw;
    }
    if (out.empty() && !exists(c, db, coll)) throw_no_collection(coll);
    return out;
  }

  void create_index(const std::string& db, const std::string& coll, const std::string& name,
                    const object& key, const object& options) override {
    if (name.empty() || name.front() == '_')
      throw_bad_request("index names starting with '_' are reserved");
    if (key.empty()) throw_bad_request("an index needs keys: {\"keys\":{\"field\":1}}");
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    for (auto& existing : list_indexes(db, coll))
      if (existing.name == name) throw api_error(409, "index '" + name + "' already exists");
    object spec{{"key", value(key)}, {"name", value(name)}};
    for (auto& [k, v] : options)
      if (k != "name") spec.emplace_back(k, v);
    try {
      run_command(c, db,
                  object{{"createIndexes", value(coll)}, {"indexes", value(array{value(spec)})}},
                  "creating index " + name);
    } catch (const api_error& e) {
      if (e.status() != 409) throw;
      throw api_error(400, "cannot create unique index '" + name +
                               "': the collection holds duplicate keys");
    }
  }

  void drop_index(const std::string& db, const std::string& coll,
                  const std::string& name) override {
    if (name.empty() || name.front() == '_')
      throw_bad_request("index '" + name + "' cannot be dropped");
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    bool found = false;
    for (auto& existing : list_indexes(db, coll))
      found = found || existing.name == name;
    if (!found) throw api_error(404, "index '" + name + "' does not exist");
    run_command(c, db, object{{"dropIndexes", value(coll)}, {"index", value(name)}},
                "dropping index " + name);
  }

  std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                     const std::optional<std::string>& resume_after) override {
    bson_ptr token;
    if (resume_after) token = to_bson(object{{"_data", value(*resume_after)}});
    auto feed = std::make_unique<mongo_feed>(core_, db, coll, std::move(token));
    feed->open_now();
    return feed;
  }

  void close() override { closed_.store(true); }

private:
  pooled_client client() {
    if (closed_.load()) throw std::runtime_error("store closed");
    pooled_client c(*core_);
    if (!c.get()) throw api_error(503, "MongoDB unavailable: no client available");
    return c;
  }

  /// {_id: id} plus {_etag: <If-Match>} when a specific etag is required.
  static object selector(const value& id, const std::optional<std::string>& if_match) {
    object s{{"_id", id}};
    if (if_match) {
      auto m = parse_if_match(*if_match);
      if (!m.any) {
        // An unparsable If-Match matches no document: compare with a value no etag has.
        s.emplace_back("_etag", m.etag ? value(*m.etag) : value(std::string(*if_match)));
      }
    }
    return s;
  }

  /// The result of a replace_one/update_one; 404 or 412 when nothing matched.
  write_result write_outcome(const object& reply, pooled_client& c, const std::string& db,
                             const std::string& coll, const value& id, const object_id& etag,
                             write_mode mode, const std::optional<std::string>& if_match) {
    if (int_field(reply, "matchedCount") == 0 && !upserted(reply))
      no_match(c, db, coll, id, mode, if_match);
    return write_result{id, etag, upserted(reply)};
  }

  static bool upserted(const object& reply) {
    return find_field(reply, "upsertedId") != nullptr || int_field(reply, "upsertedCount") > 0;
  }

  /// A write matched nothing: 412 when the document exists (its etag differs), 404
  /// otherwise (or 412 for an upsert with If-Match, as the embedded store answers).
  [[noreturn]] void no_match(pooled_client& c, const std::string& db, const std::string& coll,
                             const value& id, write_mode mode,
                             const std::optional<std::string>& if_match) {
    if (if_match) {
      if (lookup(c, db, coll, id) || mode != write_mode::update) throw_etag_mismatch();
    }
    if (!exists(c, db, coll)) throw_no_collection(coll);
    throw_no_document();
  }

  std::optional<object> lookup(pooled_client& c, const std::string& db, const std::string& coll,
                               const value& id) {
    if (id.is_array()) return std::nullopt;
    auto target = collection_of(c, db, coll);
    cursor_ptr cursor(mongoc_collection_find_with_opts(
        target.get(), to_bson(object{{"_id", id}}).get(),
        to_bson(object{{"limit", value(std::int64_t{1})}}).get(), nullptr));
    auto docs = drain(cursor.get(), "find in " + coll);
    if (docs.empty()) return std::nullopt;
    return std::move(docs.front());
  }

  void insert_document(pooled_client& c, const std::string& db, const std::string& coll,
                       const object& doc) {
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_insert_one(target.get(), to_bson(doc).get(), nullptr, &reply.b, &error))
      throw_mongo(error, "inserting into " + coll);
  }

  static std::vector<object> list_collections(pooled_client& c, const std::string& db,
                                              const std::optional<std::string>& name) {
    mongoc_database_t* database = mongoc_client_get_database(c.get(), db.c_str());
    object opts{{"nameOnly", value(true)}};
    if (name) opts.emplace_back("filter", value(object{{"name", value(*name)}}));
    cursor_ptr cursor(mongoc_database_find_collections_with_opts(database, to_bson(opts).get()));
    mongoc_database_destroy(database);
    return drain(cursor.get(), "listing the collections of " + db);
  }

  static bool exists(pooled_client& c, const std::string& db, const std::string& coll) {
    return read_properties(c, db, coll) || !list_collections(c, db, coll).empty();
  }

  static std::optional<object> read_properties(pooled_client& c, const std::string& db,
                                               const std::string& coll) {
    auto props = collection_of(c, db, properties_coll);
    cursor_ptr cursor(mongoc_collection_find_with_opts(
        props.get(), to_bson(object{{"_id", value(properties_id(coll))}}).get(),
        to_bson(object{{"limit", value(std::int64_t{1})}}).get(), nullptr));
    auto docs = drain(cursor.get(), "reading the metadata of " + coll);
    if (docs.empty()) return std::nullopt;
    return std::move(docs.front());
  }

  static std::optional<collection_info> read_collection(pooled_client& c, const std::string& db,
                                                        const std::string& coll) {
    if (auto props = read_properties(c, db, coll)) {
      collection_info info;
      for (auto& [k, v] : *props) {
        if (k == "_etag") {
          if (v.is<object_id>()) info.etag = v.get<object_id>();
        } else if (k != "_id") {
          info.metadata.emplace_back(k, v);
        }
      }
      return info;
    }
    if (!list_collections(c, db, coll).empty()) return collection_info{};
    return std::nullopt;
  }

  static void create_collection(pooled_client& c, const std::string& db, const std::string& coll) {
    mongoc_database_t* database = mongoc_client_get_database(c.get(), db.c_str());
    bson_error_t error;
    mongoc_collection_t* created =
        mongoc_database_create_collection(database, coll.c_str(), nullptr, &error);
    mongoc_database_destroy(database);
    if (created) {
      mongoc_collection_destroy(created);
      return;
    }
    if (error.code != err_namespace_exists) throw_mongo(error, "creating " + coll);
  }

  /// Writes the `_properties` document with a fresh etag. When the previous document had
  /// an etag, the write is conditional on it (a concurrent metadata write gives 412).
  static void write_properties(pooled_client& c, const std::string& db, const std::string& coll,
                               const object& metadata,
                               const std::optional<collection_info>& existing) {
    object doc{{"_id", value(properties_id(coll))}};
    for (auto& kv : metadata)
      doc.push_back(kv);
    doc.emplace_back("_etag", value(object_id::generate()));
    object filter{{"_id", value(properties_id(coll))}};
    const bool had_etag = existing && existing->etag != object_id{};
    if (had_etag) filter.emplace_back("_etag", value(existing->etag));
    auto props = collection_of(c, db, properties_coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_replace_one(props.get(), to_bson(filter).get(), to_bson(doc).get(),
                                       to_bson(object{{"upsert", value(!had_etag)}}).get(),
                                       &reply.b, &error)) {
      if (error.code == err_duplicate_key) throw_collection_etag_mismatch();
      throw_mongo(error, "writing the metadata of " + coll);
    }
    const object r = reply.get();
    if (int_field(r, "matchedCount") == 0 && !upserted(r)) throw_collection_etag_mismatch();
  }

  void publish_meta(const std::string& db, const std::string& coll, const object& metadata) {
    core_->publish_metadata(db, coll, metadata);
  }

  std::shared_ptr<mongo_core> core_;
  std::atomic<bool> closed_{false};
};

void log_from_mongoc(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  std::string line = std::string("mongoc ") + domain + ": " + message;
  if (level <= MONGOC_LOG_LEVEL_CRITICAL)
    log::error(line);
  else if (level <= MONGOC_LOG_LEVEL_WARNING)
    log::warn(line);
  else
    log::debug(line);
}

} // namespace

std::unique_ptr<store> open_mongo_store(const std::string& uri_string,
                                        const mongo_store_options& options) {
  std::call_once(mongoc_init_once, [] {
    mongoc_init();
    mongoc_log_set_handler(log_from_mongoc, nullptr);
  });
  auto core = std::make_shared<mongo_core>();
  core->options = options;
  bson_error_t error;
  core->uri = mongoc_uri_new_with_error(uri_string.c_str(), &error);
  if (!core->uri) throw std::runtime_error(std::string("invalid --mongo-uri: ") + error.message);
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(core->uri); h; h = h->next)
    core->hosts += (core->hosts.empty() ? "" : ",") + std::string(h->host_and_port);
  if (core->hosts.empty()) core->hosts = "the configured hosts";
  if (!mongoc_uri_has_option(core->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(
        core->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
        static_cast<std::int32_t>(options.server_selection_timeout.count()));
  if (!mongoc_uri_get_appname(core->uri)) mongoc_uri_set_appname(core->uri, "rheo");
  core->pool = mongoc_client_pool_new_with_error(core->uri, &error);
  if (!core->pool) throw std::runtime_error(std::string("invalid --mongo-uri: ") + error.message);
  mongoc_client_pool_set_error_api(core->pool, MONGOC_ERROR_API_VERSION_2);

  object hello;
  {
    pooled_client c(*core);
    auto run = [&](const char* command) {
      reply_doc reply;
      bool ok = mongoc_client_command_simple(
          c.get(), "admin", to_bson(object{{command, value(1)}}).get(), nullptr, &reply.b, &error);
      if (ok) hello = reply.get();
      return ok;
    };
    if (!run("hello") && (error.code != err_command_not_found || !run("isMaster")))
      throw std::runtime_error("cannot connect to MongoDB at " + core->hosts + ": " +
                               error.message);
  }
  const value* set_name = find_field(hello, "setName");
  const value* msg = find_field(hello, "msg");
  const bool replica_set = set_name && set_name->is_string();
  const bool mongos = msg && msg->is_string() && msg->as_string() == "isdbgrid";
  if (!replica_set && !mongos)
    throw std::runtime_error("MongoDB at " + core->hosts +
                             " is a standalone server: rheo needs a replica set or a sharded "
                             "cluster for change streams (start mongod with --replSet rs0 and "
                             "run rs.initiate())");
  log::info("MongoDB store: " + core->hosts +
            (replica_set ? " (replica set " + set_name->as_string() + ")" : " (mongos)"));
  return std::make_unique<mongo_store>(std::move(core));
}

} // namespace rheo
