#include "storage/sqlite/backup.hpp"

#include "storage/document/change_event.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/core.hpp"
#include "storage/sqlite/embedded_store.hpp"
#include "storage/sqlite/schema.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace rheo {

namespace fs = std::filesystem;

namespace {

using sqlite::connection;
using sqlite::query;

// Pages copied per backup step (4 MiB of 4 KiB pages): the unit of progress.
constexpr int pages_per_step = 1024;
// How far past every seq the old history used a restored log starts (2^40 writes, years at
// any write rate rheo reaches): a token of a server that went on after the backup never
// names an entry of the restored history.
constexpr std::uint64_t restore_seq_gap = std::uint64_t(1) << 40;
constexpr const char* backup_format = "rheo-backup 1";

std::string utc_text(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

[[noreturn]] void fail(const std::string& what, const std::string& why) {
  throw std::runtime_error(what + ": " + why);
}

/// fsync of a file or, with O_DIRECTORY, a folder (so that a rename in it is durable).
void sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) fail(path, std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(path, std::strerror(err));
}

std::string parent_dir(const std::string& file) {
  fs::path p = fs::absolute(file).parent_path();
  return p.empty() ? std::string(".") : p.string();
}

int user_version(connection& c) {
  query q(c, "PRAGMA user_version");
  return q.step() ? static_cast<int>(q.column_int64(0)) : 0;
}

/// The first problems PRAGMA integrity_check reports, or "" when the file is sound.
std::string integrity_problems(connection& c) {
  query q(c, "PRAGMA integrity_check(5)");
  std::string problems;
  while (q.step()) {
    const std::string line(q.column_text(0));
    if (line == "ok") continue;
    problems += (problems.empty() ? "" : "; ") + line;
  }
  return problems;
}

/// Checks that `c` is a rheo store this build can open, and reads what the backup says of
/// itself (a plain copy of rheo.db, which has no backup_info, is described from its log).
backup_summary inspect(connection& c, const std::string& file) {
  const std::string what = "backup " + file;
  std::set<std::string> tables;
  try {
    query q(c, sqlite::sql_table_names);
    while (q.step())
      tables.insert(std::string(q.column_text(0)));
  } catch (const std::exception& e) {
    // SQLite's "file is not a database" and its kin.
    fail(what, std::string("not a rheo backup (") + e.what() + ")");
  }
  if (const std::string problems = integrity_problems(c); !problems.empty())
    fail(what, "failed its integrity check: " + problems);
  for (const char* table : {"collections", "documents", "changes", "indexes", "index_entries"})
    if (!tables.count(table))
      fail(what, std::string("not a rheo backup (no table '") + table + "')");
  backup_summary s;
  s.file = file;
  s.schema_version = user_version(c);
  if (s.schema_version > sqlite::schema_version)
    fail(what, "written by a newer rheo (schema version " + std::to_string(s.schema_version) +
                   ", this build knows " + std::to_string(sqlite::schema_version) + ")");
  std::map<std::string, std::string> info;
  if (tables.count("backup_info")) {
    query q(c, sqlite::sql_backup_info_all);
    while (q.step())
      info.emplace(std::string(q.column_text(0)), std::string(q.column_text(1)));
    if (info["format"] != backup_format)
      fail(what, "unknown backup format '" + info["format"] + "' (this build reads '" +
                     backup_format + "')");
  }
  s.position = info.count("position") ? info["position"] : sqlite::log_position(c);
  s.taken_at = info["taken_at"];
  std::error_code ec;
  s.bytes = fs::file_size(file, ec);
  return s;
}

/// Copies `from` to `to` (created or truncated) and syncs it.
void copy_file(const std::string& from, const std::string& to, const copy_progress& progress) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail("backup " + from, std::strerror(errno));
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    fail(to, std::strerror(err));
  }
  std::error_code ec;
  const std::uint64_t total = fs::file_size(from, ec);
  std::uint64_t done = 0;
  std::string buf(1 << 20, '\0');
  std::string error;
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "backup " + from + ": " + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(out, buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        error = to + ": " + std::strerror(errno);
        break;
      }
      off += w;
    }
    if (!error.empty()) break;
    done += static_cast<std::uint64_t>(n);
    if (progress) progress(done, total);
  }
  if (error.empty() && ::fsync(out) != 0) error = to + ": " + std::strerror(errno);
  ::close(in);
  ::close(out);
  if (!error.empty()) throw std::runtime_error(error);
}

/// The newest seq of the store in `db_path` (0 when it has none or cannot be read), after
/// folding its WAL into the file (journal_mode=DELETE) so that the file holds the whole
/// store. A store too damaged for that is left as it is.
std::uint64_t fold_old_store(const std::string& db_path) {
  std::uint64_t head = 0;
  try {
    connection old(db_path, SQLITE_OPEN_READWRITE);
    try {
      if (auto bounds = sqlite::change_log_bounds(old)) head = bounds->second;
    } catch (const std::exception&) {
      // No change log (not a rheo store): no seq to stay clear of.
    }
    old.exec("PRAGMA journal_mode=DELETE");
  } catch (const std::exception&) {
  }
  return head;
}

/// Moves the change log of `c` past `clear_of` (by restore_seq_gap at least) and logs the
/// restore there; returns the marker's token.
std::string renumber_change_log(connection& c, std::uint64_t clear_of,
                                const backup_summary& backup) {
  c.exec("BEGIN IMMEDIATE");
  try {
    const auto bounds = sqlite::change_log_bounds(c);
    const std::uint64_t start = ((clear_of / restore_seq_gap) + 2) * restore_seq_gap;
    if (start >= (std::uint64_t(1) << 62))
      throw std::runtime_error("the change log's seqs are exhausted");
    std::uint64_t marker = start;
    if (bounds) {
      query q(c, sqlite::sql_changes_shift);
      q.int64(1, static_cast<std::int64_t>(start - bounds->first));
      q.step();
      marker = bounds->second + (start - bounds->first) + 1;
    }
    // Under no collection's name (db and coll empty): no feed ever reads it.
    change_event ev = sqlite::meta_event(
        "", "",
        object{{"restored_from", value(backup.position)},
               {"backup_taken_at", value(backup.taken_at)},
               {"restored_at", value(utc_text(std::chrono::system_clock::now()))}});
    ev.seq = marker;
    sqlite::append_change(c, ev);
    c.exec(sqlite::sql_backup_info_drop);
    c.exec("COMMIT");
    return token_from_seq(marker);
  } catch (...) {
    sqlite3_exec(c.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void remove_if_present(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) fail(path, ec.message());
}

} // namespace

namespace sqlite {

backup_summary backup_into(connection& src, const std::string& out, const std::string& source,
                           const copy_progress& progress) {
  const auto started = std::chrono::steady_clock::now();
  const std::string partial = out + ".partial";
  remove_if_present(partial); // left by an interrupted backup
  backup_summary s;
  s.file = out;
  s.taken_at = utc_text(std::chrono::system_clock::now());
  // One read transaction for the position and every page: the copy is the store as of one
  // commit, and the position is that commit's.
  src.exec("BEGIN");
  try {
    s.position = log_position(src);
    s.schema_version = user_version(src);
    std::uint64_t page_size = 4096;
    {
      query q(src, "PRAGMA page_size");
      if (q.step()) page_size = static_cast<std::uint64_t>(q.column_int64(0));
    }
    {
      connection dst(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
      sqlite3_backup* b = sqlite3_backup_init(dst.handle(), "main", src.handle(), "main");
      if (!b) throw_sqlite(dst.handle(), "backup");
      // Written back as it goes: a backup's hundreds of MiB left dirty until its final
      // fsync would sit in front of the server's own WAL fsyncs (ext4 commits ordered data
      // with its journal), stalling writers for the whole flush.
      const int writeback = ::open(partial.c_str(), O_RDONLY | O_CLOEXEC);
      int rc = SQLITE_OK;
      for (;;) {
        rc = sqlite3_backup_step(b, pages_per_step);
        if (writeback >= 0)
          ::sync_file_range(writeback, 0, 0,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER);
        if (progress) {
          const auto total = static_cast<std::uint64_t>(sqlite3_backup_pagecount(b));
          const auto left = static_cast<std::uint64_t>(sqlite3_backup_remaining(b));
          progress((total - left) * page_size, total * page_size);
        }
        if (rc == SQLITE_OK) continue;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
          // Not expected (the source's snapshot is held, the target is ours): back off.
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        break;
      }
      sqlite3_backup_finish(b);
      if (writeback >= 0) ::close(writeback);
      if (rc != SQLITE_DONE) throw_sqlite(dst.handle(), "backup");
      // One self-contained file: a rollback journal, no -wal beside it.
      dst.exec("PRAGMA journal_mode=DELETE");
      dst.exec("PRAGMA synchronous=FULL");
      dst.exec("BEGIN IMMEDIATE");
      dst.exec(sql_backup_info_create);
      const std::pair<const char*, std::string> info[] = {
          {"format", backup_format},
          {"position", s.position},
          {"taken_at", s.taken_at},
          {"schema_version", std::to_string(s.schema_version)},
          {"source", source}};
      for (auto& [key, text] : info) {
        query q(dst, sql_backup_info_put);
        q.text(1, key).text(2, text);
        q.step();
      }
      dst.exec("COMMIT");
    }
    src.exec("COMMIT");
  } catch (const std::exception& e) {
    sqlite3_exec(src.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    std::error_code ec;
    fs::remove(partial, ec);
    fail("backup to " + out, e.what());
  }
  sync_path(partial, false);
  std::error_code ec;
  fs::rename(partial, out, ec);
  if (ec) fail("backup to " + out, ec.message());
  sync_path(parent_dir(out), true);
  s.bytes = fs::file_size(out, ec);
  s.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return s;
}

backup_result embedded_store::backup(const std::string& path) {
  std::unique_lock lk(backup_mu_, std::try_to_lock);
  if (!lk) throw api_error(409, "a backup of this store is already running");
  backup_summary s;
  try {
    core::reader r(*core_);
    s = backup_into(*r, path, fs::absolute(data_dir_).lexically_normal().string());
  } catch (const api_error&) {
    throw;
  } catch (const std::exception& e) {
    throw api_error(500, e.what());
  }
  return backup_result{s.file, s.position, s.bytes, s.duration.count()};
}

} // namespace sqlite

backup_summary backup_data_dir(const std::string& data_dir, const std::string& out,
                               const copy_progress& progress) {
  const std::string db_path = (fs::path(data_dir) / "rheo.db").string();
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec)) fail("data dir " + data_dir, "no store here (no rheo.db)");
  // Read-write for WAL's shared memory; this process writes nothing.
  connection src(db_path, SQLITE_OPEN_READWRITE);
  src.exec("PRAGMA query_only=1");
  return sqlite::backup_into(src, out, fs::absolute(data_dir).lexically_normal().string(),
                             progress);
}

backup_summary check_backup(const std::string& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail("backup " + file, "no such file");
  connection c(file, SQLITE_OPEN_READONLY);
  return inspect(c, file);
}

restore_summary restore_data_dir(const std::string& file, const std::string& data_dir,
                                 const copy_progress& progress) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail("backup " + file, "no such file");
  fs::create_directories(data_dir, ec);
  if (ec) fail("data dir " + data_dir, ec.message());
  // Held to the end: no server starts on the directory meanwhile.
  int lock_fd = -1;
  try {
    lock_fd = sqlite::lock_data_dir(data_dir);
  } catch (const std::runtime_error&) {
    fail("data dir " + data_dir, "in use by a running server: stop it before restoring");
  }
  const fs::path dir(data_dir);
  const std::string db_path = (dir / "rheo.db").string();
  const std::string restoring = db_path + ".restoring";
  restore_summary r;
  r.data_dir = data_dir;
  try {
    copy_file(file, restoring, progress);
    {
      connection c(restoring, SQLITE_OPEN_READWRITE);
      r.backup = inspect(c, file);
      // A copy of a live rheo.db would be in WAL mode: the copy is one file.
      c.exec("PRAGMA journal_mode=DELETE");
      sqlite::create_or_migrate(c);
      // Only now is the old store touched: fold its WAL in and learn its newest seq.
      std::uint64_t clear_of = seq_from_token(r.backup.position).value_or(0);
      if (fs::exists(db_path, ec)) clear_of = std::max(clear_of, fold_old_store(db_path));
      r.first_position = renumber_change_log(c, clear_of, r.backup);
      // Folded, the old store left no -wal; one too damaged to fold may have: either way
      // none may be applied to the restored file.
      remove_if_present(db_path + "-wal");
      remove_if_present(db_path + "-shm");
    }
    sync_path(restoring, false);
    if (fs::exists(db_path, ec)) {
      r.previous = db_path + ".before-restore";
      remove_if_present(r.previous);
      fs::create_hard_link(db_path, r.previous, ec);
      if (ec) fail(r.previous, ec.message());
    }
    fs::rename(restoring, db_path, ec);
    if (ec) fail(db_path, ec.message());
    sync_path(dir.string(), true);
  } catch (...) {
    std::error_code ignored;
    fs::remove(restoring, ignored);
    ::close(lock_fd);
    throw;
  }
  ::close(lock_fd);
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return r;
}

} // namespace rheo
