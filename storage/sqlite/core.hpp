// The embedded store's engine under the store interface: the database file and its lock,
// the writer thread with group commit, the pool of reader connections and the registry of
// change feeds. Internal to storage/sqlite.
//
// Writes: submit() queues a function that the writer thread runs inside its next
// transaction, each in its own savepoint (a failing one rolls back alone); submit() returns
// once the batch committed and its events reached the feeds (see sqlite_store.hpp).
//
// Thread-safety: every public member may be called from any thread. The writer thread owns
// the writer connection and the seq counters; readers borrow pooled connections (pool_mu_);
// the feed registry is guarded by feeds_mu_.
#pragma once

#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/feed.hpp"
#include "storage/sqlite/indexes.hpp"
#include "storage/sqlite/sqlite_store.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace rheo::sqlite {

/// Reads of one row, on any connection.
std::optional<collection_info> read_collection(connection& c, const std::string& db,
                                               const std::string& coll);
bool collection_exists(connection& c, const std::string& db, const std::string& coll);
std::optional<object> read_document(connection& c, const std::string& db, const std::string& coll,
                                    const std::string& key);

/// The writer's copy of the index catalog: each collection's decoded index definitions,
/// read from the catalog once and kept until a write changes it, so that a document write
/// neither reads nor decodes them. Whoever changes the catalog (create, ready, drop,
/// multikey) forgets the collection; a rollback forgets everything.
///
/// Thread-safety: the writer thread's alone.
class index_cache {
public:
  using indexes = std::shared_ptr<const std::vector<index_def>>;

  /// The indexes of db.coll (read on `c` when not cached).
  indexes of(connection& c, const std::string& db, const std::string& coll);
  void forget(const std::string& db, const std::string& coll) { by_coll_.erase({db, coll}); }
  void clear() { by_coll_.clear(); }

private:
  std::map<std::pair<std::string, std::string>, indexes> by_coll_;
};

/// What a write request sees inside the writer's transaction.
class core;

class write_txn {
public:
  write_txn(connection& c, std::uint64_t& next_seq, index_cache& indexes, core& owner)
      : c_(c), next_seq_(next_seq), indexes_(indexes), owner_(owner) {}

  connection& conn() { return c_; }

  /// The indexes of db.coll, as this transaction sees the catalog.
  index_cache::indexes indexes(const std::string& db, const std::string& coll) {
    return indexes_.of(c_, db, coll);
  }
  /// Says that this transaction changed the index catalog of db.coll.
  void indexes_changed(const std::string& db, const std::string& coll) {
    indexes_.forget(db, coll);
  }

  /// Appends `ev` to the change log (assigning its seq) and queues it for delivery when a
  /// feed of its collection is open (see heard()).
  void log(change_event ev);
  /// log() of an insert into db.coll of `doc` (BSON) with `_id` `id`: the event is made only
  /// when it will be delivered; otherwise the log entry is written from the BSON as it is.
  void log_insert(const std::string& db, const std::string& coll, const value& id,
                  std::string_view doc);
  /// Whether this transaction's events of db.coll are kept for delivery: a feed of db.coll
  /// was open when it first logged one. Those of collections nobody watched are only
  /// written to the log (a bulk write's events need not all be in memory); a feed opened
  /// meanwhile reads them back from the log at delivery (core::deliver).
  bool heard(const std::string& db, const std::string& coll);
  /// The collections whose events this transaction logged without keeping them.
  std::vector<std::pair<std::string, std::string>> unheard() const;

  std::optional<collection_info> get_collection(const std::string& db, const std::string& coll) {
    return read_collection(c_, db, coll);
  }
  /// Creates db.coll with empty metadata unless it exists.
  void ensure_collection(const std::string& db, const std::string& coll);

  std::optional<object> get_document(const std::string& db, const std::string& coll,
                                     const std::string& key) {
    return read_document(c_, db, coll, key);
  }
  /// Writes keep the collection's secondary indexes (indexes.hpp) up to date; they throw
  /// api_error(409) when a unique index would hold a key twice.
  /// False when the key exists.
  /// `doc` is `body` decoded, or null: it is then decoded only when the collection has
  /// secondary indexes.
  bool insert_document(const std::string& db, const std::string& coll, std::string_view key,
                       std::string_view body, const object* doc);
  void update_document(const std::string& db, const std::string& coll, const std::string& key,
                       const object& before, const object& after, const std::string& body);
  void delete_document(const std::string& db, const std::string& coll, const std::string& key,
                       const object& before);

  /// The events logged so far in this transaction, in order.
  std::vector<change_event> events;

private:
  connection& c_;
  std::uint64_t& next_seq_;
  index_cache& indexes_;
  core& owner_;
  std::map<std::pair<std::string, std::string>, bool> heard_;
};

class core : public std::enable_shared_from_this<core> {
public:
  /// Opens (creating) the database in options.data_dir and takes its lock; throws
  /// std::runtime_error with one line naming the directory or file.
  explicit core(const sqlite_store_options& options);
  ~core();

  /// Starts the writer thread.
  void start();
  /// Drains queued writes, stops the writer, ends every feed with "store closed".
  void close();

  /// Runs `fn` in the writer's next batch and waits for its outcome (rethrowing its error).
  void submit(std::function<void(write_txn&)> fn);

  /// A pooled reader connection, returned on destruction.
  class reader {
  public:
    explicit reader(core& c) : core_(c), conn_(c.acquire()) {}
    ~reader() { core_.release(std::move(conn_)); }
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;
    connection& operator*() { return *conn_; }

  private:
    core& core_;
    std::unique_ptr<connection> conn_;
  };

  /// A new feed of db.coll that receives every event committed from now on.
  std::shared_ptr<sqlite_feed_state> register_feed(const std::string& db, const std::string& coll);
  void unregister_feed(const sqlite_feed_state* st);

private:
  struct write_request {
    std::function<void(write_txn&)> run;
    std::promise<void> done;
  };

  void set_journal_wal();
  std::unique_ptr<connection> acquire();
  void release(std::unique_ptr<connection> c);
  void writer_loop();
  void run_batch(const std::vector<write_request*>& batch);
  /// Hands committed events to the sinks of live feeds (writer thread); `events` is
  /// consumed (moved into the feeds' batches). The events of `unheard` collections (logged,
  /// not kept) are read back from the log after `before_seq` for feeds opened meanwhile.
  void deliver(std::vector<change_event>& events,
               const std::vector<std::pair<std::string, std::string>>& unheard,
               std::uint64_t before_seq);
  /// Whether a feed of db.coll is registered.
  bool has_feed(const std::string& db, const std::string& coll);
  friend class write_txn;

  sqlite_store_options options_;
  std::string path_;
  int lock_fd_ = -1;

  std::mutex close_mu_;
  bool closed_ = false;

  // Writer: the connection and seq counters belong to the writer thread once started.
  std::unique_ptr<connection> writer_;
  std::thread writer_thread_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t oldest_seq_ = 1;
  index_cache indexes_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<write_request*> queue_;
  bool stopping_ = false;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<connection>> idle_;
  bool pool_closed_ = false;

  std::mutex feeds_mu_;
  std::uint64_t delivered_seq_ = 0;
  bool feeds_closed_ = false;
  std::map<std::pair<std::string, std::string>, std::vector<std::weak_ptr<sqlite_feed_state>>>
      feeds_;
};

/// Takes the lock of data dir `dir` (flock of <dir>/rheo.lock, created when missing) that
/// one process at a time holds; returns its descriptor (closing it releases the lock).
/// Throws std::runtime_error "data dir <dir>: in use by another process" when it is held.
int lock_data_dir(const std::string& dir);

/// The ObjectId stored in an etag column (all zero when malformed).
object_id etag_from_blob(std::string_view blob);
/// The bytes of `id` for an etag column.
std::string_view blob_of(const object_id& id);

} // namespace rheo::sqlite
