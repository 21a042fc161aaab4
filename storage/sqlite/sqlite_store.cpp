#include "storage/sqlite/sqlite_store.hpp"

#include "storage/document/bson_codec.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <sys/file.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace rheo {

namespace {

// Requests the writer takes per transaction; bounds the latency of one batch.
constexpr std::size_t max_batch = 1024;
// Idle reader connections kept in the pool.
constexpr std::size_t max_idle_readers = 32;

// ---- SQL ----

constexpr const char* sql_schema = R"(
CREATE TABLE IF NOT EXISTS collections(db TEXT NOT NULL, coll TEXT NOT NULL,
  metadata BLOB NOT NULL, etag BLOB NOT NULL, PRIMARY KEY(db, coll)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents(db TEXT NOT NULL, coll TEXT NOT NULL,
  id_key BLOB NOT NULL, body BLOB NOT NULL, PRIMARY KEY(db, coll, id_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY, db TEXT NOT NULL,
  coll TEXT NOT NULL, event BLOB NOT NULL);
)";
constexpr const char* sql_coll_get =
    "SELECT metadata, etag FROM collections WHERE db = ?1 AND coll = ?2";
constexpr const char* sql_coll_names = "SELECT coll FROM collections WHERE db = ?1 ORDER BY coll";
constexpr const char* sql_coll_insert =
    "INSERT INTO collections(db, coll, metadata, etag) VALUES(?1, ?2, ?3, ?4)";
constexpr const char* sql_coll_update =
    "UPDATE collections SET metadata = ?3, etag = ?4 WHERE db = ?1 AND coll = ?2";
constexpr const char* sql_coll_delete = "DELETE FROM collections WHERE db = ?1 AND coll = ?2";
constexpr const char* sql_docs_delete = "DELETE FROM documents WHERE db = ?1 AND coll = ?2";
constexpr const char* sql_doc_get =
    "SELECT body FROM documents WHERE db = ?1 AND coll = ?2 AND id_key = ?3";
constexpr const char* sql_doc_insert =
    "INSERT INTO documents(db, coll, id_key, body) VALUES(?1, ?2, ?3, ?4)";
constexpr const char* sql_doc_update =
    "UPDATE documents SET body = ?4 WHERE db = ?1 AND coll = ?2 AND id_key = ?3";
constexpr const char* sql_doc_delete =
    "DELETE FROM documents WHERE db = ?1 AND coll = ?2 AND id_key = ?3";
constexpr const char* sql_docs_desc =
    "SELECT body FROM documents WHERE db = ?1 AND coll = ?2 ORDER BY id_key DESC";
constexpr const char* sql_docs_asc =
    "SELECT body FROM documents WHERE db = ?1 AND coll = ?2 ORDER BY id_key ASC";
constexpr const char* sql_docs_count = "SELECT count(*) FROM documents WHERE db = ?1 AND coll = ?2";
constexpr const char* sql_change_insert =
    "INSERT INTO changes(seq, db, coll, event) VALUES(?1, ?2, ?3, ?4)";
constexpr const char* sql_changes_trim = "DELETE FROM changes WHERE seq < ?1";
constexpr const char* sql_changes_bounds = "SELECT min(seq), max(seq) FROM changes";
constexpr const char* sql_changes_after =
    "SELECT seq, event FROM changes WHERE seq > ?1 AND db = ?2 AND coll = ?3 ORDER BY seq";

// ---- SQLite wrappers ----

[[noreturn]] void throw_sqlite(sqlite3* db, const char* what) {
  throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
}

/// One SQLite connection with its prepared statements, used by one thread at a time.
class connection {
public:
  connection(const std::string& path, int flags) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close_v2(db_);
      throw std::runtime_error("database " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
    sqlite3_extended_result_codes(db_, 1);
  }
  ~connection() {
    for (auto& [sql, stmt] : stmts_)
      sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  sqlite3* handle() const { return db_; }

  /// The cached statement for `sql` (keyed by the constant's address).
  sqlite3_stmt* prepare(const char* sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
      throw_sqlite(db_, "prepare");
    stmts_.emplace(sql, stmt);
    return stmt;
  }

  /// Runs a parameterless statement through the statement cache (no re-parsing).
  void run(const char* sql) {
    sqlite3_stmt* stmt = prepare(sql);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) throw_sqlite(db_, sql);
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw std::runtime_error(std::string("sqlite: ") + msg + " (" + sql + ")");
    }
  }

private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

/// A use of a cached statement; resets it when done.
class query {
public:
  query(connection& c, const char* sql) : db_(c.handle()), stmt_(c.prepare(sql)) {}
  ~query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  query(const query&) = delete;
  query& operator=(const query&) = delete;

  // Bound data must outive the query (SQLITE_STATIC avoids copies).
  query& text(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    return *this;
  }
  query& blob(int i, std::string_view s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    return *this;
  }
  query& int64(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  /// True when a row is available; throws on errors.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(db_, "step");
  }
  /// Steps a statement that may violate a uniqueness constraint: false on violation.
  bool step_unique() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return true;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return false;
    throw_sqlite(db_, "step");
  }
  std::string_view column_blob(int i) {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return {p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))};
  }
  std::string_view column_text(int i) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return {p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))};
  }
  std::int64_t column_int64(int i) { return sqlite3_column_int64(stmt_, i); }
  bool column_null(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// ---- id keys ----

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> shift)));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> shift)));
}

// Strings: 0x00 escaped as 00 FF, terminated by 00 00, so that byte order equals
// string order and a string followed by more key bytes still compares correctly.
void put_string(std::string& out, std::string_view s) {
  for (char c : s) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\0');
}

// Numbers of all types: a sortable double, then the exact remainder of int64 values that a
// double cannot hold, so that 1, 1L and 1.0 share one key (MongoDB treats them as one _id).
void put_number(std::string& out, const value& v) {
  double d = v.as_double();
  __int128 remainder = 0;
  if (auto* i = v.get_if<std::int64_t>())
    remainder = static_cast<__int128>(*i) - static_cast<__int128>(d);
  if (std::isnan(d)) {
    out.append(16, '\0'); // below every other number, as compare_values orders NaN
    return;
  }
  if (d == 0) d = 0.0; // -0 == 0
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  bits = (bits >> 63) ? ~bits : bits | (std::uint64_t{1} << 63);
  put_u64(out, bits);
  put_u64(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(remainder)) ^
                   (std::uint64_t{1} << 63));
}

void put_key_payload(std::string& out, const value& v);

void put_key_value(std::string& out, const value& v) {
  out.push_back(static_cast<char>(canonical_type_rank(v.type())));
  put_key_payload(out, v);
}

void put_key_payload(std::string& out, const value& v) {
  switch (v.type()) {
  case bson_type::min_key:
  case bson_type::max_key:
  case bson_type::null:
    break;
  case bson_type::double_:
  case bson_type::int32:
  case bson_type::int64:
    put_number(out, v);
    break;
  case bson_type::string:
    put_string(out, v.as_string());
    break;
  case bson_type::object:
    // Field by field: type rank, name, value (as compare_values); 0x00 ends (ranks are >= 1).
    for (auto& [name, field] : v.as_object()) {
      out.push_back(static_cast<char>(canonical_type_rank(field.type())));
      put_string(out, name);
      put_key_payload(out, field);
    }
    out.push_back('\0');
    break;
  case bson_type::array:
    for (auto& element : v.as_array())
      put_key_value(out, element);
    out.push_back('\0');
    break;
  case bson_type::binary: {
    auto& b = v.get<binary_value>();
    put_u32(out, static_cast<std::uint32_t>(b.data.size()));
    out.push_back(static_cast<char>(b.subtype));
    out.append(b.data);
    break;
  }
  case bson_type::object_id: {
    auto& id = v.get<object_id>();
    out.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
    break;
  }
  case bson_type::boolean:
    out.push_back(v.as_bool() ? '\1' : '\0');
    break;
  case bson_type::date:
    put_u64(out, static_cast<std::uint64_t>(v.get<date_time>().millis) ^ (std::uint64_t{1} << 63));
    break;
  case bson_type::timestamp:
    put_u32(out, v.get<timestamp_value>().t);
    put_u32(out, v.get<timestamp_value>().i);
    break;
  case bson_type::regex:
    put_string(out, v.get<regex_value>().pattern);
    put_string(out, v.get<regex_value>().options);
    break;
  }
}

/// The order-preserving key of an _id value; 400 for values MongoDB refuses as _id.
std::string id_key(const value& id) {
  if (id.is_array()) throw_bad_request("_id cannot be an array");
  std::string out;
  put_key_value(out, id);
  return out;
}

// ---- helpers ----

[[noreturn]] void throw_no_collection(const std::string& coll) {
  throw api_error(404, "collection '" + coll + "' does not exist");
}

[[noreturn]] void throw_no_document() {
  throw api_error(404, "document not found");
}

bool document_etag_matches(const std::string& if_match, const object& doc) {
  auto* etag = find_field(doc, "_etag");
  return etag && etag->is<object_id>() && etag_matches(if_match, etag->get<object_id>());
}

object_id etag_from_blob(std::string_view blob) {
  object_id id;
  if (blob.size() == id.bytes.size()) std::memcpy(id.bytes.data(), blob.data(), blob.size());
  return id;
}

std::string_view blob_of(const object_id& id) {
  return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
}

// Change-log entries: the event without seq/db/coll (those are columns), as BSON.
std::string encode_event(const change_event& ev) {
  object o;
  o.emplace_back("op", value(ev.operation));
  if (ev.document_key) o.emplace_back("key", *ev.document_key);
  if (ev.full_document) o.emplace_back("doc", value(*ev.full_document));
  if (ev.update) {
    array removed(ev.update->removed_fields.begin(), ev.update->removed_fields.end());
    o.emplace_back("updated", value(ev.update->updated_fields));
    o.emplace_back("removed", value(std::move(removed)));
  }
  o.emplace_back("wall", value(ev.wall_time));
  return encode_bson(o);
}

change_event decode_event(std::uint64_t seq, std::string db, std::string coll,
                          std::string_view blob) {
  change_event ev;
  ev.seq = seq;
  ev.token = token_from_seq(seq);
  ev.db = std::move(db);
  ev.coll = std::move(coll);
  object o = decode_bson(blob);
  for (auto& [k, v] : o) {
    if (k == "op" && v.is_string())
      ev.operation = v.as_string();
    else if (k == "key")
      ev.document_key = std::move(v);
    else if (k == "doc" && v.is_object())
      ev.full_document = std::move(v.as_object());
    else if (k == "updated" && v.is_object()) {
      if (!ev.update) ev.update.emplace();
      ev.update->updated_fields = std::move(v.as_object());
    } else if (k == "removed" && v.is_array()) {
      if (!ev.update) ev.update.emplace();
      for (auto& path : v.as_array())
        if (path.is_string()) ev.update->removed_fields.push_back(path.as_string());
    } else if (k == "wall" && v.is<date_time>())
      ev.wall_time = v.get<date_time>();
  }
  return ev;
}

change_event make_event(const std::string& db, const std::string& coll, std::string op) {
  change_event ev;
  ev.db = db;
  ev.coll = coll;
  ev.operation = std::move(op);
  ev.wall_time = date_time::now();
  return ev;
}

// ---- feeds ----

/// The shared state of one change feed, between the writer thread (which delivers committed
/// events), the thread that starts the feed (which catches up a resume token) and the one
/// that cancels it. Thread-safety: every member under `mu`, which is also held during every
/// call to the sink (so sink calls never overlap, and cancel() waits for a running one).
struct feed_state {
  std::string db;
  std::string coll;
  std::mutex mu;
  std::shared_ptr<feed_sink> sink;     // set by start(), released when the feed ends
  bool buffering = true;               // not started, or catching up: live events are held
  bool ended = false;                  // cancelled or lost: nothing more is delivered
  std::vector<change_event> held;      // live events committed while buffering
  std::uint64_t last_seq = 0;          // highest seq delivered (or the resume position)
  std::optional<std::uint64_t> resume; // catch-up pending from this seq
  std::optional<std::string> lost;     // the feed ends with this reason once delivered up to here

  /// Delivers `events` (in commit order) to the sink, dropping those at or before last_seq,
  /// turning "meta" log entries into metadata() calls and ending the feed after an
  /// invalidate. Requires `mu` held, !buffering and a sink.
  void push(std::vector<change_event>& events);
  /// Ends the feed with `reason` now, or once buffering is over. Requires `mu` held.
  void end(std::string reason);
};

void feed_state::push(std::vector<change_event>& events) {
  std::vector<change_event> batch;
  auto flush = [&] {
    if (!batch.empty()) sink->events(std::exchange(batch, {}));
  };
  for (auto& ev : events) {
    if (ended) return;
    if (ev.seq <= last_seq) continue;
    last_seq = ev.seq;
    if (ev.operation == "meta") {
      flush();
      sink->metadata(ev.full_document ? std::move(*ev.full_document) : object{});
      continue;
    }
    const bool invalidate = ev.operation == "invalidate";
    batch.push_back(std::move(ev));
    if (invalidate) {
      // As MongoDB: a dropped collection ends its change streams.
      flush();
      end("collection " + coll + " dropped (invalidated)");
      return;
    }
  }
  flush();
}

void feed_state::end(std::string reason) {
  if (ended) return;
  if (buffering || !sink) {
    if (!lost) lost = std::move(reason);
    return;
  }
  ended = true;
  held.clear();
  auto s = std::move(sink);
  s->lost(std::move(reason));
}

class sqlite_core;

/// Thread-safety: as change_feed (store.hpp).
class sqlite_feed final : public change_feed {
public:
  sqlite_feed(std::shared_ptr<feed_state> state, std::weak_ptr<sqlite_core> core)
      : state_(std::move(state)), core_(std::move(core)) {}
  ~sqlite_feed() override { cancel(); }
  void start(std::shared_ptr<feed_sink> sink) override;
  void cancel() override;

private:
  /// The events after `after` from the log, or the reason the feed is lost.
  std::vector<change_event> read_log(sqlite_core& core, std::uint64_t after,
                                     std::optional<std::string>& lost);

  std::shared_ptr<feed_state> state_;
  std::weak_ptr<sqlite_core> core_;
};

// ---- the writer's transaction context ----

class sqlite_core;

/// What a write request sees inside the writer's transaction.
class write_txn {
public:
  write_txn(connection& c, std::uint64_t& next_seq) : c_(c), next_seq_(next_seq) {}

  connection& conn() { return c_; }

  /// Appends `ev` to the change log (assigning its seq) and queues it for delivery.
  void log(change_event ev) {
    ev.seq = next_seq_++;
    ev.token = token_from_seq(ev.seq);
    std::string blob = encode_event(ev);
    query q(c_, sql_change_insert);
    q.int64(1, static_cast<std::int64_t>(ev.seq)).text(2, ev.db).text(3, ev.coll).blob(4, blob);
    q.step();
    events.push_back(std::move(ev));
  }

  std::optional<collection_info> get_collection(const std::string& db, const std::string& coll) {
    query q(c_, sql_coll_get);
    q.text(1, db).text(2, coll);
    if (!q.step()) return std::nullopt;
    return collection_info{decode_bson(q.column_blob(0)), etag_from_blob(q.column_blob(1))};
  }

  void ensure_collection(const std::string& db, const std::string& coll) {
    {
      query q(c_, sql_coll_get);
      q.text(1, db).text(2, coll);
      if (q.step()) return;
    }
    static const std::string empty = encode_bson({});
    object_id etag = object_id::generate();
    query q(c_, sql_coll_insert);
    q.text(1, db).text(2, coll).blob(3, empty).blob(4, blob_of(etag));
    q.step();
  }

  std::optional<object> get_document(const std::string& db, const std::string& coll,
                                     const std::string& key) {
    query q(c_, sql_doc_get);
    q.text(1, db).text(2, coll).blob(3, key);
    if (!q.step()) return std::nullopt;
    return decode_bson(q.column_blob(0));
  }

  /// False when the key exists.
  bool insert_document(const std::string& db, const std::string& coll, const std::string& key,
                       const std::string& body) {
    query q(c_, sql_doc_insert);
    q.text(1, db).text(2, coll).blob(3, key).blob(4, body);
    return q.step_unique();
  }

  void update_document(const std::string& db, const std::string& coll, const std::string& key,
                       const std::string& body) {
    query q(c_, sql_doc_update);
    q.text(1, db).text(2, coll).blob(3, key).blob(4, body);
    q.step();
  }

  std::vector<change_event> events;

private:
  connection& c_;
  std::uint64_t& next_seq_;
};

struct write_request {
  std::function<void(write_txn&)> run;
  std::promise<void> done;
};

// ---- the store's shared core ----

/// Thread-safety: all public members may be called from any thread. The writer thread owns
/// `writer_`; readers borrow pooled connections; the feed registry is guarded by feeds_mu_.
class sqlite_core : public std::enable_shared_from_this<sqlite_core> {
public:
  explicit sqlite_core(const sqlite_store_options& options) : options_(options) {
    if (options_.changelog_retention < 1) options_.changelog_retention = 1;
    namespace fs = std::filesystem;
    fs::path dir = options_.data_dir.empty() ? fs::path(".") : fs::path(options_.data_dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("data dir " + dir.string() + ": " + ec.message());
    if (!fs::is_directory(dir, ec))
      throw std::runtime_error("data dir " + dir.string() + ": Not a directory");
    if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0)
      throw std::runtime_error("data dir " + dir.string() + ": " + std::strerror(errno));
    // One process per data dir: the in-memory seq counter and the feeds rely on it.
    std::string lock_path = (dir / "rheo.lock").string();
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0)
      throw std::runtime_error("data dir " + dir.string() + ": " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(lock_fd_);
      throw std::runtime_error("data dir " + dir.string() + ": in use by another process");
    }
    path_ = (dir / "rheo.db").string();
    try {
      writer_ = std::make_unique<connection>(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
      set_journal_wal();
      writer_->exec(options_.durability == durability::full ? "PRAGMA synchronous=FULL"
                                                            : "PRAGMA synchronous=NORMAL");
      writer_->exec(sql_schema);
      query q(*writer_, sql_changes_bounds);
      if (q.step() && !q.column_null(1)) {
        next_seq_ = static_cast<std::uint64_t>(q.column_int64(1)) + 1;
        oldest_seq_ = static_cast<std::uint64_t>(q.column_int64(0));
      } else {
        next_seq_ = 1;
        oldest_seq_ = 1;
      }
    } catch (const std::runtime_error& e) {
      // One line naming the file: SQLite's own message when it has one.
      std::string msg = e.what();
      if (writer_ && sqlite3_errcode(writer_->handle()) != SQLITE_OK)
        msg = "database " + path_ + ": " + sqlite3_errmsg(writer_->handle());
      writer_.reset();
      ::close(lock_fd_);
      throw std::runtime_error(msg);
    }
    delivered_seq_ = next_seq_ - 1;
  }

  ~sqlite_core() { close(); }

  void start() {
    writer_thread_ = std::thread([this] { writer_loop(); });
  }

  void close() {
    std::lock_guard close_lk(close_mu_);
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard lk(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    try {
      writer_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (const std::exception&) {
      // Readers still active; the next open checkpoints.
    }
    writer_.reset();
    {
      std::lock_guard lk(pool_mu_);
      pool_closed_ = true;
      idle_.clear();
    }
    {
      std::lock_guard lk(feeds_mu_);
      for (auto& [name, list] : feeds_)
        for (auto& weak : list)
          if (auto st = weak.lock()) {
            std::lock_guard flk(st->mu);
            st->end("store closed");
          }
      feeds_.clear();
      feeds_closed_ = true;
    }
    ::close(lock_fd_);
  }

  // ---- writes ----

  /// Runs `fn` in the writer's next batch and waits for its outcome (rethrowing its error).
  void submit(std::function<void(write_txn&)> fn) {
    write_request req;
    req.run = std::move(fn);
    auto done = req.done.get_future();
    {
      std::lock_guard lk(queue_mu_);
      if (stopping_) throw std::runtime_error("store closed");
      queue_.push_back(&req);
    }
    queue_cv_.notify_one();
    done.get();
  }

  // ---- reads ----

  /// A pooled reader connection, returned on destruction.
  class reader {
  public:
    explicit reader(sqlite_core& core) : core_(core), conn_(core.acquire()) {}
    ~reader() { core_.release(std::move(conn_)); }
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;
    connection& operator*() { return *conn_; }

  private:
    sqlite_core& core_;
    std::unique_ptr<connection> conn_;
  };

  // ---- feeds ----

  std::shared_ptr<feed_state> register_feed(const std::string& db, const std::string& coll) {
    auto st = std::make_shared<feed_state>();
    st->db = db;
    st->coll = coll;
    std::lock_guard lk(feeds_mu_);
    if (feeds_closed_) st->lost = "store closed";
    st->last_seq = delivered_seq_;
    feeds_[{db, coll}].push_back(st);
    return st;
  }

  void unregister_feed(const feed_state* st) {
    std::lock_guard lk(feeds_mu_);
    auto it = feeds_.find({st->db, st->coll});
    if (it == feeds_.end()) return;
    auto& list = it->second;
    std::erase_if(list, [&](auto& weak) {
      auto locked = weak.lock();
      return !locked || locked.get() == st;
    });
    if (list.empty()) feeds_.erase(it);
  }

private:
  void set_journal_wal() {
    query q(*writer_, "PRAGMA journal_mode=WAL");
    if (!q.step() || q.column_text(0) != "wal")
      throw std::runtime_error("database " + path_ + ": cannot enable WAL journal mode");
  }

  std::unique_ptr<connection> acquire() {
    {
      std::lock_guard lk(pool_mu_);
      if (pool_closed_) throw std::runtime_error("store closed");
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<connection>(path_, SQLITE_OPEN_READWRITE);
    c->exec("PRAGMA query_only=1");
    c->exec("PRAGMA mmap_size=268435456");
    return c;
  }

  void release(std::unique_ptr<connection> c) {
    std::lock_guard lk(pool_mu_);
    if (!pool_closed_ && idle_.size() < max_idle_readers) idle_.push_back(std::move(c));
  }

  void writer_loop() {
    std::vector<write_request*> batch;
    for (;;) {
      {
        std::unique_lock lk(queue_mu_);
        queue_cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return; // stopping and drained
        while (!queue_.empty() && batch.size() < max_batch) {
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      run_batch(batch);
      batch.clear();
    }
  }

  void run_batch(const std::vector<write_request*>& batch) {
    connection& c = *writer_;
    const std::uint64_t seq_at_begin = next_seq_;
    const std::uint64_t oldest_at_begin = oldest_seq_;
    write_txn txn(c, next_seq_);
    std::vector<std::exception_ptr> errors(batch.size());
    try {
      c.run("BEGIN IMMEDIATE");
      for (std::size_t i = 0; i < batch.size(); ++i) {
        // Each request in its own savepoint: a failing one rolls back alone.
        c.run("SAVEPOINT request");
        const std::size_t events_mark = txn.events.size();
        const std::uint64_t seq_mark = next_seq_;
        try {
          batch[i]->run(txn);
          c.run("RELEASE request");
        } catch (...) {
          errors[i] = std::current_exception();
          c.run("ROLLBACK TO request");
          c.run("RELEASE request");
          txn.events.resize(events_mark);
          next_seq_ = seq_mark;
        }
      }
      trim_changes(c);
      c.run("COMMIT");
    } catch (...) {
      // The transaction itself failed (I/O error, disk full): nothing was committed.
      auto error = std::current_exception();
      if (!sqlite3_get_autocommit(c.handle())) sqlite3_exec(c.handle(), "ROLLBACK", 0, 0, 0);
      next_seq_ = seq_at_begin;
      oldest_seq_ = oldest_at_begin;
      for (auto* req : batch)
        req->done.set_exception(error);
      return;
    }
    deliver(txn.events);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (errors[i])
        batch[i]->done.set_exception(errors[i]);
      else
        batch[i]->done.set_value();
    }
  }

  // Keeps the newest `changelog_retention` entries; deletes in chunks of about 1/8 of it.
  void trim_changes(connection& c) {
    const std::uint64_t retention = options_.changelog_retention;
    const std::uint64_t slack = std::min<std::uint64_t>(retention / 8, 4096);
    const std::uint64_t count = next_seq_ - oldest_seq_;
    if (count <= retention + slack) return;
    const std::uint64_t keep_from = next_seq_ - retention;
    query q(c, sql_changes_trim);
    q.int64(1, static_cast<std::int64_t>(keep_from));
    q.step();
    oldest_seq_ = keep_from;
  }

  // Hands committed events to the sinks of live feeds, in commit order, without touching
  // SQLite. Runs on the writer thread before the batch's callers are released, so a write
  // that returned has reached every feed of its collection.
  void deliver(std::vector<change_event>& events) {
    std::vector<std::pair<std::shared_ptr<feed_state>, std::vector<change_event>>> targets;
    {
      std::lock_guard lk(feeds_mu_);
      if (!events.empty()) delivered_seq_ = events.back().seq;
      if (feeds_.empty()) return;
      for (auto& ev : events) {
        auto it = feeds_.find({ev.db, ev.coll});
        if (it == feeds_.end()) continue;
        for (auto& weak : it->second) {
          auto st = weak.lock();
          if (!st) continue;
          auto t =
              std::find_if(targets.begin(), targets.end(), [&](auto& x) { return x.first == st; });
          if (t == targets.end()) t = targets.insert(targets.end(), {std::move(st), {}});
          t->second.push_back(ev);
        }
      }
    }
    // Outside feeds_mu_: a sink call never delays watch() or cancel() of other feeds.
    for (auto& [st, list] : targets) {
      std::lock_guard flk(st->mu);
      if (st->ended) continue;
      if (st->buffering)
        st->held.insert(st->held.end(), std::make_move_iterator(list.begin()),
                        std::make_move_iterator(list.end()));
      else
        st->push(list);
    }
  }

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
  std::map<std::pair<std::string, std::string>, std::vector<std::weak_ptr<feed_state>>> feeds_;

  friend class sqlite_feed;
};

void sqlite_feed::start(std::shared_ptr<feed_sink> sink) {
  auto& st = *state_;
  std::optional<std::uint64_t> resume;
  {
    std::lock_guard lk(st.mu);
    if (st.ended || st.sink) return; // cancelled, or started already
    st.sink = std::move(sink);
    if (st.lost) {
      // A malformed token, or the store closed before the start.
      st.buffering = false;
      st.end(*std::exchange(st.lost, std::nullopt));
      return;
    }
    resume = std::exchange(st.resume, std::nullopt);
  }
  // Catch-up: the log after the token, read while the writer keeps holding live events.
  std::vector<change_event> missed;
  std::optional<std::string> history_lost;
  if (resume) {
    if (auto core = core_.lock()) {
      try {
        missed = read_log(*core, *resume, history_lost);
      } catch (const std::exception& e) {
        history_lost = e.what(); // "store closed", an I/O error
      }
    } else {
      history_lost = "store closed";
    }
  }
  std::lock_guard lk(st.mu);
  if (st.ended) return; // cancelled meanwhile
  st.buffering = false;
  if (history_lost) {
    st.end(*history_lost);
    return;
  }
  if (resume) st.last_seq = *resume;
  // The caught-up events first, then the live ones held meanwhile; those also in the log
  // snapshot are dropped by seq.
  st.push(missed);
  auto held = std::exchange(st.held, {});
  st.push(held);
  if (st.lost) st.end(*std::exchange(st.lost, std::nullopt)); // the store closed meanwhile
}

void sqlite_feed::cancel() {
  {
    std::lock_guard lk(state_->mu);
    state_->ended = true;
    state_->held.clear();
    state_->sink.reset();
  }
  if (auto core = core_.lock()) core->unregister_feed(state_.get());
}

std::vector<change_event> sqlite_feed::read_log(sqlite_core& core, std::uint64_t after,
                                                std::optional<std::string>& lost) {
  std::vector<change_event> missed;
  sqlite_core::reader r(core);
  connection& c = *r;
  // One read transaction: the bounds and the rows come from the same snapshot.
  c.exec("BEGIN");
  try {
    std::uint64_t oldest = 1, newest = 0;
    {
      query q(c, sql_changes_bounds);
      if (q.step() && !q.column_null(1)) {
        oldest = static_cast<std::uint64_t>(q.column_int64(0));
        newest = static_cast<std::uint64_t>(q.column_int64(1));
      }
    }
    if (after > newest)
      lost = "history lost: resume token " + token_from_seq(after) + " is in the future";
    else if (after + 1 < oldest)
      lost = "history lost: resume token " + token_from_seq(after) +
             " is older than the retained change log";
    else {
      query q(c, sql_changes_after);
      q.int64(1, static_cast<std::int64_t>(after)).text(2, state_->db).text(3, state_->coll);
      while (q.step())
        missed.push_back(decode_event(static_cast<std::uint64_t>(q.column_int64(0)), state_->db,
                                      state_->coll, q.column_blob(1)));
    }
    c.run("COMMIT");
  } catch (...) {
    sqlite3_exec(c.handle(), "ROLLBACK", 0, 0, 0);
    throw;
  }
  return missed;
}

// ---- the store ----

/// Thread-safety: all methods may be called concurrently from any thread.
class sqlite_store final : public store {
public:
  explicit sqlite_store(const sqlite_store_options& options)
      : core_(std::make_shared<sqlite_core>(options)) {
    core_->start();
  }
  ~sqlite_store() override { close(); }

  std::vector<std::string> collection_names(const std::string& db) override {
    sqlite_core::reader r(*core_);
    query q(*r, sql_coll_names);
    q.text(1, db);
    std::vector<std::string> names;
    while (q.step())
      names.emplace_back(q.column_text(0));
    return names;
  }

  std::optional<collection_info> collection(const std::string& db,
                                            const std::string& coll) override {
    sqlite_core::reader r(*core_);
    return read_collection(*r, db, coll);
  }

  bool put_collection(const std::string& db, const std::string& coll, object metadata,
                      const std::optional<std::string>& if_match) override {
    erase_field(metadata, "_id");
    erase_field(metadata, "_etag");
    const std::string blob = encode_bson(metadata);
    bool created = false;
    core_->submit([&](write_txn& t) {
      auto existing = t.get_collection(db, coll);
      if (if_match && (!existing || !etag_matches(*if_match, existing->etag)))
        throw api_error(412, "the collection ETag does not match If-Match");
      const object_id etag = object_id::generate();
      query q(t.conn(), existing ? sql_coll_update : sql_coll_insert);
      q.text(1, db).text(2, coll).blob(3, blob).blob(4, blob_of(etag));
      q.step();
      created = !existing;
      t.log(meta_event(db, coll, metadata));
    });
    return created;
  }

  void patch_collection(const std::string& db, const std::string& coll, object metadata,
                        const std::optional<std::string>& if_match) override {
    erase_field(metadata, "_id");
    erase_field(metadata, "_etag");
    core_->submit([&](write_txn& t) {
      auto existing = t.get_collection(db, coll);
      if (!existing) throw_no_collection(coll);
      if (if_match && !etag_matches(*if_match, existing->etag))
        throw api_error(412, "the collection ETag does not match If-Match");
      object merged = existing->metadata;
      for (auto& [k, v] : metadata)
        set_field(merged, k, v);
      const std::string blob = encode_bson(merged);
      const object_id etag = object_id::generate();
      query q(t.conn(), sql_coll_update);
      q.text(1, db).text(2, coll).blob(3, blob).blob(4, blob_of(etag));
      q.step();
      t.log(meta_event(db, coll, std::move(merged)));
    });
  }

  void drop_collection(const std::string& db, const std::string& coll,
                       const std::string& etag) override {
    core_->submit([&](write_txn& t) {
      auto existing = t.get_collection(db, coll);
      if (!existing) throw_no_collection(coll);
      if (!etag_matches(etag, existing->etag))
        throw api_error(412, "the collection ETag does not match If-Match");
      {
        query q(t.conn(), sql_docs_delete);
        q.text(1, db).text(2, coll);
        q.step();
      }
      {
        query q(t.conn(), sql_coll_delete);
        q.text(1, db).text(2, coll);
        q.step();
      }
      t.log(make_event(db, coll, "drop"));
      t.log(make_event(db, coll, "invalidate"));
    });
  }

  std::vector<object> find(const std::string& db, const std::string& coll,
                           const find_query& q) override {
    sqlite_core::reader r(*core_);
    connection& c = *r;
    if (!collection_exists(c, db, coll)) throw_no_collection(coll);
    std::vector<object> out;
    if (q.limit == 0) return out;
    const std::uint64_t wanted =
        q.limit < 0 ? UINT64_MAX
                    : static_cast<std::uint64_t>(std::max<std::int64_t>(q.skip, 0)) +
                          static_cast<std::uint64_t>(q.limit);
    std::uint64_t skipped = 0;
    auto take = [&](object doc) {
      if (skipped < static_cast<std::uint64_t>(std::max<std::int64_t>(q.skip, 0))) {
        ++skipped;
        return;
      }
      out.push_back(std::move(doc));
    };
    if (const value* id = q.filter.id_equality()) {
      if (auto doc = point_lookup(c, db, coll, *id); doc && q.filter.matches(*doc))
        take(std::move(*doc));
    } else if (q.sort.empty() || (q.sort.keys().size() == 1 && q.sort.keys()[0].first == "_id")) {
      // Index order: stop as soon as skip + limit documents matched.
      const bool asc = !q.sort.empty() && q.sort.keys()[0].second > 0;
      query s(c, asc ? sql_docs_asc : sql_docs_desc);
      s.text(1, db).text(2, coll);
      std::uint64_t matched = 0;
      while (matched < wanted && s.step()) {
        object doc = decode_bson(s.column_blob(0));
        if (!q.filter.matches(doc)) continue;
        ++matched;
        take(std::move(doc));
      }
    } else {
      std::vector<object> all;
      query s(c, sql_docs_desc);
      s.text(1, db).text(2, coll);
      while (s.step()) {
        object doc = decode_bson(s.column_blob(0));
        if (q.filter.matches(doc)) all.push_back(std::move(doc));
      }
      auto less = [&](const object& a, const object& b) { return q.sort.compare(a, b) < 0; };
      if (wanted < all.size()) {
        std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(wanted), all.end(),
                          less);
        all.resize(wanted);
      } else {
        std::stable_sort(all.begin(), all.end(), less);
      }
      for (auto& doc : all)
        take(std::move(doc));
    }
    if (q.limit > 0 && out.size() > static_cast<std::size_t>(q.limit))
      out.resize(static_cast<std::size_t>(q.limit));
    if (!q.keys.empty())
      for (auto& doc : out)
        doc = q.keys.apply(doc);
    return out;
  }

  std::int64_t count(const std::string& db, const std::string& coll,
                     const matcher& filter) override {
    sqlite_core::reader r(*core_);
    connection& c = *r;
    if (!collection_exists(c, db, coll)) throw_no_collection(coll);
    if (filter.matches_all()) {
      query q(c, sql_docs_count);
      q.text(1, db).text(2, coll);
      q.step();
      return q.column_int64(0);
    }
    if (const value* id = filter.id_equality()) {
      auto doc = point_lookup(c, db, coll, *id);
      return doc && filter.matches(*doc) ? 1 : 0;
    }
    std::int64_t n = 0;
    query s(c, sql_docs_desc);
    s.text(1, db).text(2, coll);
    while (s.step())
      if (filter.matches(decode_bson(s.column_blob(0)))) ++n;
    return n;
  }

  std::optional<object> find_by_id(const std::string& db, const std::string& coll,
                                   const value& id) override {
    sqlite_core::reader r(*core_);
    return point_lookup(*r, db, coll, id);
  }

  write_result insert(const std::string& db, const std::string& coll, object doc) override {
    // Prepared on the caller's thread so that the writer only executes SQL.
    value id = object_id::generate();
    if (auto* given = find_field(doc, "_id")) {
      id = std::move(*given);
      erase_field(doc, "_id");
    }
    const std::string key = id_key(id);
    const object_id etag = object_id::generate();
    set_field(doc, "_etag", etag);
    doc.insert(doc.begin(), {"_id", id});
    const std::string body = encode_bson(doc);
    change_event ev = make_event(db, coll, "insert");
    ev.document_key = id;
    ev.full_document = std::move(doc);
    core_->submit([&](write_txn& t) {
      t.ensure_collection(db, coll);
      if (!t.insert_document(db, coll, key, body)) throw_duplicate();
      t.log(std::move(ev));
    });
    return write_result{std::move(id), etag, true};
  }

  write_result replace(const std::string& db, const std::string& coll, const value& id, object doc,
                       write_mode mode, const std::optional<std::string>& if_match) override {
    strip_matching_id(doc, id);
    const std::string key = id_key(id);
    const object_id etag = object_id::generate();
    set_field(doc, "_etag", etag);
    doc.insert(doc.begin(), {"_id", id});
    const std::string body = encode_bson(doc);
    bool created = false;
    core_->submit([&](write_txn& t) {
      auto existing = t.get_document(db, coll, key);
      if (existing) {
        if (mode == write_mode::insert) throw_duplicate();
        check_if_match(if_match, *existing);
        t.update_document(db, coll, key, body);
      } else {
        if (mode == write_mode::update) {
          if (!t.get_collection(db, coll)) throw_no_collection(coll);
          throw_no_document();
        }
        if (if_match) throw_etag_mismatch();
        t.ensure_collection(db, coll);
        t.insert_document(db, coll, key, body);
      }
      created = !existing;
      change_event ev = make_event(db, coll, existing ? "replace" : "insert");
      ev.document_key = id;
      ev.full_document = doc;
      t.log(std::move(ev));
    });
    return write_result{id, etag, created};
  }

  write_result update(const std::string& db, const std::string& coll, const value& id,
                      const update_spec& spec, write_mode mode,
                      const std::optional<std::string>& if_match) override {
    const std::string key = id_key(id);
    const object_id etag = object_id::generate();
    bool created = false;
    core_->submit([&](write_txn& t) {
      auto existing = t.get_document(db, coll, key);
      object doc;
      update_description desc;
      if (existing) {
        if (mode == write_mode::insert) throw_duplicate();
        check_if_match(if_match, *existing);
        doc = std::move(*existing);
      } else {
        if (mode == write_mode::update) {
          if (!t.get_collection(db, coll)) throw_no_collection(coll);
          throw_no_document();
        }
        if (if_match) throw_etag_mismatch();
        doc.emplace_back("_id", id);
      }
      spec.apply(doc, &desc);
      const value* new_id = find_field(doc, "_id");
      if (!new_id || compare_values(*new_id, id) != 0) throw_bad_request("_id cannot be changed");
      set_field(doc, "_etag", etag);
      const std::string body = encode_bson(doc);
      if (existing) {
        t.update_document(db, coll, key, body);
      } else {
        t.ensure_collection(db, coll);
        t.insert_document(db, coll, key, body);
      }
      created = !existing;
      change_event ev = make_event(db, coll, existing ? "update" : "insert");
      ev.document_key = id;
      if (existing) {
        set_field(desc.updated_fields, "_etag", etag);
        ev.update = std::move(desc);
      }
      ev.full_document = std::move(doc);
      t.log(std::move(ev));
    });
    return write_result{id, etag, created};
  }

  void remove(const std::string& db, const std::string& coll, const value& id,
              const std::optional<std::string>& if_match) override {
    const std::string key = id_key(id);
    core_->submit([&](write_txn& t) {
      auto existing = t.get_document(db, coll, key);
      if (!existing) {
        if (!t.get_collection(db, coll)) throw_no_collection(coll);
        throw_no_document();
      }
      check_if_match(if_match, *existing);
      query q(t.conn(), sql_doc_delete);
      q.text(1, db).text(2, coll).blob(3, key);
      q.step();
      change_event ev = make_event(db, coll, "delete");
      ev.document_key = id;
      t.log(std::move(ev));
    });
  }

  std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                     const std::optional<std::string>& resume_after) override {
    // Register first, then (in start()) read the log: no event falls in between.
    auto st = core_->register_feed(db, coll);
    if (resume_after) {
      std::lock_guard lk(st->mu);
      if (auto seq = seq_from_token(*resume_after))
        st->resume = *seq;
      else
        st->lost = "history lost: malformed resume token '" + *resume_after + "'";
    }
    return std::make_unique<sqlite_feed>(std::move(st), core_);
  }

  void close() override { core_->close(); }

private:
  [[noreturn]] static void throw_duplicate() {
    throw api_error(409, "duplicate _id: a document with this _id already exists");
  }
  [[noreturn]] static void throw_etag_mismatch() {
    throw api_error(412, "the document ETag does not match If-Match");
  }
  static void check_if_match(const std::optional<std::string>& if_match, const object& doc) {
    if (if_match && !document_etag_matches(*if_match, doc)) throw_etag_mismatch();
  }

  static change_event meta_event(const std::string& db, const std::string& coll, object metadata) {
    change_event ev = make_event(db, coll, "meta");
    ev.full_document = std::move(metadata);
    return ev;
  }

  static std::optional<collection_info> read_collection(connection& c, const std::string& db,
                                                        const std::string& coll) {
    query q(c, sql_coll_get);
    q.text(1, db).text(2, coll);
    if (!q.step()) return std::nullopt;
    return collection_info{decode_bson(q.column_blob(0)), etag_from_blob(q.column_blob(1))};
  }

  static bool collection_exists(connection& c, const std::string& db, const std::string& coll) {
    query q(c, sql_coll_get);
    q.text(1, db).text(2, coll);
    return q.step();
  }

  static std::optional<object> point_lookup(connection& c, const std::string& db,
                                            const std::string& coll, const value& id) {
    if (id.is_array()) return std::nullopt;
    const std::string key = id_key(id);
    query q(c, sql_doc_get);
    q.text(1, db).text(2, coll).blob(3, key);
    if (!q.step()) return std::nullopt;
    return decode_bson(q.column_blob(0));
  }

  std::shared_ptr<sqlite_core> core_;
};

} // namespace

std::unique_ptr<store> open_sqlite_store(const sqlite_store_options& options) {
  return std::make_unique<sqlite_store>(options);
}

} // namespace rheo
