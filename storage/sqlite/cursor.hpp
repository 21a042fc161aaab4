// Walks the documents a query plan (planner.hpp) yields, one at a time and in plan order:
// the documents table in a range of _id keys, or a secondary index's entries and the
// documents they name (each once, also from a multikey index), or passes over documents
// without reading them (the pages before the one asked for). Internal to storage/sqlite.
//
// Thread-safety: used by one thread, on a connection it has for the cursor's lifetime.
#pragma once

#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/planner.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace rheo::sqlite {

class plan_cursor {
public:
  plan_cursor(connection& c, std::string db, std::string coll, const plan& p);
  ~plan_cursor();
  plan_cursor(const plan_cursor&) = delete;
  plan_cursor& operator=(const plan_cursor&) = delete;

  /// The next document with its id_key, or nullopt at the end.
  std::optional<std::pair<std::string, object>> next();
  /// next() without decoding: the next document's BSON, valid until the next call.
  std::optional<std::string_view> next_encoded();
  /// Passes over up to `n` documents without reading them (their entries only, each
  /// document once); returns how many it passed, fewer than `n` at the end.
  std::uint64_t skip(std::uint64_t n);
  /// Index entries (or documents) read so far.
  std::uint64_t examined() const { return examined_; }

private:
  bool open_next_range();

  connection& c_;
  std::string db_;
  std::string coll_;
  const plan& plan_;
  std::size_t next_range_ = 0;
  std::unique_ptr<query> current_;
  std::set<std::string> seen_; // id keys, for a multikey index
  std::string encoded_;        // next_encoded()'s document read through an index
  std::uint64_t examined_ = 0;
};

} // namespace rheo::sqlite
