// RAII wrappers over the SQLite C API: a connection with its cache of prepared statements,
// and one use of a cached statement. Internal to storage/sqlite.
//
// Thread-safety: a connection (and every query on it) is used by one thread at a time; the
// writer thread owns one, readers borrow pooled ones (core.hpp). vm_steps() is safe from any
// thread.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rheo::sqlite {

/// Throws std::runtime_error("sqlite <what>: <SQLite's message>").
[[noreturn]] void throw_sqlite(sqlite3* db, const char* what);

/// One SQLite connection with its prepared statements.
class connection {
public:
  /// Opens `path` with `flags` (SQLITE_OPEN_*); throws std::runtime_error naming the file.
  connection(const std::string& path, int flags);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  sqlite3* handle() const { return db_; }

  /// The cached statement for `sql` (keyed by the constant's address: see schema.hpp).
  sqlite3_stmt* prepare(const char* sql);
  /// Runs a parameterless cached statement (no re-parsing).
  void run(const char* sql);
  /// Runs `sql` (any number of statements) without caching.
  void exec(const char* sql);

private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

namespace detail {
inline std::atomic<std::uint64_t> vm_steps{0};
} // namespace detail

/// The SQLite virtual-machine steps that the queries of every connection of this process
/// have run (SQLITE_STMTSTATUS_VM_STEP, added as each query ends): the work of a store call
/// counted rather than timed, so a test can compare it across store sizes.
inline std::uint64_t vm_steps() {
  return detail::vm_steps.load(std::memory_order_relaxed);
}

/// A use of a cached statement; resets it and clears its bindings when done.
class query {
public:
  query(connection& c, const char* sql) : db_(c.handle()), stmt_(c.prepare(sql)) {}
  ~query() {
    detail::vm_steps.fetch_add(
        static_cast<std::uint64_t>(sqlite3_stmt_status(stmt_, SQLITE_STMTSTATUS_VM_STEP, 1)),
        std::memory_order_relaxed);
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  query(const query&) = delete;
  query& operator=(const query&) = delete;

  // Bound data must outlive the query (SQLITE_STATIC avoids copies).
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
  bool step();
  /// Steps a statement that may violate a uniqueness constraint: false on violation.
  bool step_unique();
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

/// One read transaction (a consistent snapshot) on `c` for the scope; rolled back when
/// the scope is left by an exception, committed otherwise.
class read_transaction {
public:
  explicit read_transaction(connection& c) : c_(c) { c_.run(begin); }
  ~read_transaction() {
    // The cached statement: sqlite3_exec would parse "COMMIT" on every read.
    try {
      c_.run(commit);
    } catch (const std::exception&) {
      sqlite3_exec(c_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  read_transaction(const read_transaction&) = delete;
  read_transaction& operator=(const read_transaction&) = delete;

private:
  static constexpr const char* begin = "BEGIN";
  static constexpr const char* commit = "COMMIT";
  connection& c_;
};

} // namespace rheo::sqlite
