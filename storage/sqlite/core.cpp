#include "storage/sqlite/core.hpp"

#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/indexes.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>
#include <unordered_map>

namespace rheo::sqlite {

namespace {

// Requests the writer takes per transaction; bounds the latency of one batch.
constexpr std::size_t max_batch = 1024;
// Idle reader connections kept in the pool.
constexpr std::size_t max_idle_readers = 32;

} // namespace

object_id etag_from_blob(std::string_view blob) {
  object_id id;
  if (blob.size() == id.bytes.size()) std::memcpy(id.bytes.data(), blob.data(), blob.size());
  return id;
}

std::string_view blob_of(const object_id& id) {
  return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
}

std::optional<collection_info> read_collection(connection& c, const std::string& db,
                                               const std::string& coll) {
  query q(c, sql_coll_get);
  q.text(1, db).text(2, coll);
  if (!q.step()) return std::nullopt;
  return collection_info{decode_bson(q.column_blob(0)), etag_from_blob(q.column_blob(1))};
}

bool collection_exists(connection& c, const std::string& db, const std::string& coll) {
  query q(c, sql_coll_get);
  q.text(1, db).text(2, coll);
  return q.step();
}

std::optional<object> read_document(connection& c, const std::string& db, const std::string& coll,
                                    const std::string& key) {
  query q(c, sql_doc_get);
  q.text(1, db).text(2, coll).blob(3, key);
  if (!q.step()) return std::nullopt;
  return decode_bson(q.column_blob(0));
}

// ---- index_cache ----

index_cache::indexes index_cache::of(connection& c, const std::string& db,
                                     const std::string& coll) {
  // Bounded: a writer touching ever more collections reloads rather than grows.
  constexpr std::size_t max_collections = 4096;
  auto it = by_coll_.find({db, coll});
  if (it != by_coll_.end()) return it->second;
  if (by_coll_.size() >= max_collections) by_coll_.clear();
  auto loaded = std::make_shared<const std::vector<index_def>>(load_indexes(c, db, coll));
  by_coll_.emplace(std::pair{db, coll}, loaded);
  return loaded;
}

// ---- write_txn ----

void write_txn::log(change_event ev) {
  ev.seq = next_seq_++;
  ev.token = token_from_seq(ev.seq);
  append_change(c_, ev);
  if (heard(ev.db, ev.coll)) events.push_back(std::move(ev));
}

void write_txn::log_insert(const std::string& db, const std::string& coll, const value& id,
                           std::string_view doc) {
  if (heard(db, coll)) {
    change_event ev = make_event(db, coll, operation_type::insert);
    ev.document_key = id;
    ev.full_document = decode_bson(doc);
    log(std::move(ev));
    return;
  }
  const std::uint64_t seq = next_seq_++;
  append_insert_change(c_, seq, db, coll, id, doc, date_time::now());
}

bool write_txn::heard(const std::string& db, const std::string& coll) {
  // Decided once per collection and transaction: a feed opened after the decision finds
  // what it missed in the log (core::deliver).
  auto key = std::pair(db, coll);
  auto it = heard_.find(key);
  if (it == heard_.end()) it = heard_.emplace(std::move(key), owner_.has_feed(db, coll)).first;
  return it->second;
}

std::vector<std::pair<std::string, std::string>> write_txn::unheard() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [coll, heard] : heard_)
    if (!heard) out.push_back(coll);
  return out;
}

void write_txn::ensure_collection(const std::string& db, const std::string& coll) {
  if (collection_exists(c_, db, coll)) return;
  static const std::string empty = encode_bson({});
  object_id etag = object_id::generate();
  query q(c_, sql_coll_insert);
  q.text(1, db).text(2, coll).blob(3, empty).blob(4, blob_of(etag));
  q.step();
}

bool write_txn::insert_document(const std::string& db, const std::string& coll,
                                std::string_view key, std::string_view body, const object* doc) {
  {
    query q(c_, sql_doc_insert);
    q.text(1, db).text(2, coll).blob(3, key).blob(4, body);
    if (!q.step_unique()) return false;
  }
  const auto defs = indexes(db, coll);
  if (defs->empty()) return true;
  std::optional<object> decoded;
  if (!doc) doc = &decoded.emplace(decode_bson(body));
  if (update_entries(c_, *defs, std::string(key), nullptr, doc)) indexes_changed(db, coll);
  return true;
}

void write_txn::update_document(const std::string& db, const std::string& coll,
                                const std::string& key, const object& before, const object& after,
                                const std::string& body) {
  {
    query q(c_, sql_doc_update);
    q.text(1, db).text(2, coll).blob(3, key).blob(4, body);
    q.step();
  }
  if (update_entries(c_, *indexes(db, coll), key, &before, &after)) indexes_changed(db, coll);
}

void write_txn::delete_document(const std::string& db, const std::string& coll,
                                const std::string& key, const object& before) {
  {
    query q(c_, sql_doc_delete);
    q.text(1, db).text(2, coll).blob(3, key);
    q.step();
  }
  if (update_entries(c_, *indexes(db, coll), key, &before, nullptr)) indexes_changed(db, coll);
}

// ---- core ----

int lock_data_dir(const std::string& dir) {
  const std::string lock_path = (std::filesystem::path(dir) / "rheo.lock").string();
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("data dir " + dir + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw std::runtime_error("data dir " + dir + ": in use by another process");
  }
  return fd;
}

core::core(const sqlite_store_options& options) : options_(options) {
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
  lock_fd_ = lock_data_dir(dir.string());
  path_ = (dir / "rheo.db").string();
  try {
    writer_ = std::make_unique<connection>(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    set_journal_wal();
    writer_->exec(options_.durability == durability::full ? "PRAGMA synchronous=FULL"
                                                          : "PRAGMA synchronous=NORMAL");
    create_or_migrate(*writer_);
    if (auto bounds = change_log_bounds(*writer_)) {
      oldest_seq_ = bounds->first;
      next_seq_ = bounds->second + 1;
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

core::~core() {
  close();
}

void core::start() {
  writer_thread_ = std::thread([this] { writer_loop(); });
}

void core::close() {
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
          st->end({feed_end_cause::failed, "store closed"});
        }
    feeds_.clear();
    feeds_closed_ = true;
  }
  ::close(lock_fd_);
}

void core::submit(std::function<void(write_txn&)> fn) {
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

std::shared_ptr<sqlite_feed_state> core::register_feed(const std::string& db,
                                                       const std::string& coll) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->db = db;
  st->coll = coll;
  std::lock_guard lk(feeds_mu_);
  if (feeds_closed_) st->lost = feed_end{feed_end_cause::failed, "store closed"};
  st->last_seq = delivered_seq_;
  st->start_seq = delivered_seq_;
  feeds_[{db, coll}].push_back(st);
  return st;
}

void core::unregister_feed(const sqlite_feed_state* st) {
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

void core::set_journal_wal() {
  query q(*writer_, "PRAGMA journal_mode=WAL");
  if (!q.step() || q.column_text(0) != "wal")
    throw std::runtime_error("database " + path_ + ": cannot enable WAL journal mode");
}

std::unique_ptr<connection> core::acquire() {
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
  // Reads map the file rather than copy its pages into each connection's cache: as much of
  // it as SQLite allows (2 GiB here), so that a store that has grown past a few hundred MiB
  // is read as fast at its end (newer collections, newer documents) as at its start.
  c->exec("PRAGMA mmap_size=2147418112");
  return c;
}

void core::release(std::unique_ptr<connection> c) {
  std::lock_guard lk(pool_mu_);
  if (!pool_closed_ && idle_.size() < max_idle_readers) idle_.push_back(std::move(c));
}

void core::writer_loop() {
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

void core::run_batch(const std::vector<write_request*>& batch) {
  connection& c = *writer_;
  const std::uint64_t seq_at_begin = next_seq_;
  const std::uint64_t oldest_at_begin = oldest_seq_;
  write_txn txn(c, next_seq_, indexes_, *this);
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
        indexes_.clear(); // the request may have changed the catalog
        txn.events.resize(events_mark);
        next_seq_ = seq_mark;
      }
    }
    if (auto oldest = trim_change_log(c, options_.changelog_retention, oldest_seq_, next_seq_))
      oldest_seq_ = *oldest;
    c.run("COMMIT");
  } catch (...) {
    // The transaction itself failed (I/O error, disk full): nothing was committed.
    auto error = std::current_exception();
    if (!sqlite3_get_autocommit(c.handle())) sqlite3_exec(c.handle(), "ROLLBACK", 0, 0, 0);
    indexes_.clear();
    next_seq_ = seq_at_begin;
    oldest_seq_ = oldest_at_begin;
    for (auto* req : batch)
      req->done.set_exception(error);
    return;
  }
  deliver(txn.events, txn.unheard(), seq_at_begin);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (errors[i])
      batch[i]->done.set_exception(errors[i]);
    else
      batch[i]->done.set_value();
  }
}

bool core::has_feed(const std::string& db, const std::string& coll) {
  std::lock_guard lk(feeds_mu_);
  return feeds_.count({db, coll}) != 0;
}

void core::deliver(std::vector<change_event>& events,
                   const std::vector<std::pair<std::string, std::string>>& unheard,
                   std::uint64_t before_seq) {
  std::vector<std::pair<std::shared_ptr<sqlite_feed_state>, std::vector<change_event>>> targets;
  // Feeds opened while this transaction ran, of collections whose events it did not keep.
  std::vector<std::shared_ptr<sqlite_feed_state>> late;
  {
    std::lock_guard lk(feeds_mu_);
    // Every seq this transaction took is delivered from here on (logged or not).
    if (next_seq_ > before_seq) delivered_seq_ = next_seq_ - 1;
    if (feeds_.empty()) return;
    for (auto& [db, coll] : unheard)
      if (auto it = feeds_.find({db, coll}); it != feeds_.end())
        for (auto& weak : it->second)
          if (auto st = weak.lock()) late.push_back(std::move(st));
    std::vector<std::shared_ptr<sqlite_feed_state>> live;
    std::unordered_map<const sqlite_feed_state*, std::size_t> target_of;
    for (auto& ev : events) {
      auto it = feeds_.find({ev.db, ev.coll});
      if (it == feeds_.end()) continue;
      live.clear();
      for (auto& weak : it->second)
        if (auto st = weak.lock()) live.push_back(std::move(st));
      for (std::size_t i = 0; i < live.size(); ++i) {
        // By feed, not by a search of targets: a reconnect storm opens a replay feed per
        // resuming session on the same collection.
        auto [at, added] = target_of.try_emplace(live[i].get(), targets.size());
        if (added) targets.emplace_back(live[i], std::vector<change_event>{});
        auto& list = targets[at->second].second;
        // The events are the writer's to give away: the last feed of each takes it.
        if (i + 1 == live.size())
          list.push_back(std::move(ev));
        else
          list.push_back(ev);
      }
    }
  }
  // What the late feeds missed is in the log (read on the writer's connection, after the
  // commit).
  for (auto& st : late) {
    std::optional<feed_end> lost;
    std::vector<change_event> missed;
    try {
      missed = read_changes_after(*writer_, st->db, st->coll, before_seq - 1, lost).events;
    } catch (const std::exception& e) {
      lost = feed_end{feed_end_cause::failed, e.what()};
    }
    if (lost) {
      std::lock_guard flk(st->mu);
      st->end(*lost);
    } else if (!missed.empty()) {
      targets.emplace_back(std::move(st), std::move(missed));
    }
  }
  // Outside feeds_mu_: a sink call never delays watch() or cancel() of other feeds.
  for (auto& [st, list] : targets) {
    std::lock_guard flk(st->mu);
    if (st->ended) continue;
    if (st->buffering) {
      if (st->holding)
        st->held.insert(st->held.end(), std::make_move_iterator(list.begin()),
                        std::make_move_iterator(list.end()));
    } else
      st->push(list);
  }
}

} // namespace rheo::sqlite
