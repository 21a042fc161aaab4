#include "storage/sqlite/connection.hpp"

#include <stdexcept>

namespace rheo::sqlite {

void throw_sqlite(sqlite3* db, const char* what) {
  throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
}

connection::connection(const std::string& path, int flags) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    throw std::runtime_error("database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  sqlite3_extended_result_codes(db_, 1);
}

connection::~connection() {
  for (auto& [sql, stmt] : stmts_)
    sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

sqlite3_stmt* connection::prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
    throw_sqlite(db_, "prepare");
  stmts_.emplace(sql, stmt);
  return stmt;
}

void connection::run(const char* sql) {
  sqlite3_stmt* stmt = prepare(sql);
  int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) throw_sqlite(db_, sql);
}

void connection::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw std::runtime_error(std::string("sqlite: ") + msg + " (" + sql + ")");
  }
}

bool query::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_sqlite(db_, "step");
}

bool query::step_unique() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return true;
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return false;
  throw_sqlite(db_, "step");
}

} // namespace rheo::sqlite
