// The MongoDB backend's plumbing, internal to storage/mongo: owned BSON, error mapping, the
// shared core (client pool and the registry of live feeds), pooled clients, collection and
// cursor handles, and RESTHeart's layout of collection metadata (`_properties`).
//
// Thread-safety: mongo_core's pool is thread-safe and its feed registry is guarded by
// feeds_mu; feed_inbox by its mu; a pooled_client (like the mongoc_client_t it holds) and
// the handles are used by one thread at a time; the functions are safe from any thread.
#pragma once

#include "storage/mongo/mongo_store.hpp"

#include <mongoc/mongoc.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rheo::mongo {

// MongoDB server error codes rheo reacts to.
inline constexpr std::uint32_t err_duplicate_key = 11000;
inline constexpr std::uint32_t err_namespace_not_found = 26;
inline constexpr std::uint32_t err_namespace_exists = 48;
inline constexpr std::uint32_t err_command_not_found = 59;
inline constexpr std::uint32_t err_capped_position_lost = 136;
inline constexpr std::uint32_t err_invalid_resume_token = 260;
inline constexpr std::uint32_t err_change_stream_fatal = 280;
inline constexpr std::uint32_t err_change_stream_history_lost = 286;

/// The database collection holding collection metadata, as RESTHeart keeps it.
inline const std::string properties_coll = "_properties";

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

bson_ptr to_bson(const object& o);

object from_bson(const bson_t* b);

/// A reply document some mongoc calls initialise (always, even on failure).
struct reply_doc {
  bson_t b;
  reply_doc() { bson_init(&b); }
  ~reply_doc() { bson_destroy(&b); }
  reply_doc(const reply_doc&) = delete;
  reply_doc& operator=(const reply_doc&) = delete;
  object get() const { return from_bson(&b); }
};

std::int64_t int_field(const object& o, std::string_view key);

// ---- errors ----

bool is_history_lost(const bson_error_t& e);

/// Raises the api_error a failed MongoDB call maps to.
[[noreturn]] void throw_mongo(const bson_error_t& e, std::string_view what);

std::string properties_id(const std::string& coll);

bool hidden_collection(std::string_view name);

// ---- the shared core: pool and live feeds ----

/// Metadata changes (made through this process, or seen by the metadata cache's stream),
/// pushed into a feed for its thread to deliver, and the feed's cancellation flag. Thread-safety:
/// all members under `mu`.
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
object update_document_of(const update_spec& spec, const object_id& etag);

/// A count from a write reply ("matchedCount", "deletedCount", ...), 0 when absent.
std::int64_t reply_count(const object& reply, std::string_view field);

/// Runs a write command (createIndexes, dropIndexes) on `db`.
void run_command(pooled_client& c, const std::string& db, const object& command,
                 const std::string& what);

struct collection_deleter {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};

using collection_ptr = std::unique_ptr<mongoc_collection_t, collection_deleter>;

collection_ptr collection_of(const pooled_client& c, const std::string& db,
                             const std::string& coll);

struct cursor_deleter {
  void operator()(mongoc_cursor_t* c) const { mongoc_cursor_destroy(c); }
};

using cursor_ptr = std::unique_ptr<mongoc_cursor_t, cursor_deleter>;

/// Drains a cursor; throws on a cursor error.
std::vector<object> drain(mongoc_cursor_t* cursor, std::string_view what);

/// listCollections of `db` (nameOnly), of the one collection `name` when given.
std::vector<object> list_collections(mongoc_client_t* c, const std::string& db,
                                     const std::optional<std::string>& name);

} // namespace rheo::mongo
