// The embedded store: SQLite in WAL mode holding BSON documents, with an atomic change
// log (every write commits its document change and one change-log entry in the same
// transaction).
#pragma once

#include "storage/store.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace rheo {

enum class durability {
  full,   // synchronous=FULL: an acknowledged write survives kill -9 and power loss
  normal, // synchronous=NORMAL: survives kill -9 (process crash), may lose the last
          // transactions on power loss
};

struct sqlite_store_options {
  std::string data_dir = "./data";           // created when missing
  rheo::durability durability = durability::full;
  std::uint64_t changelog_retention = 100000; // change-log entries kept (>= 1)
};

/// Opens (creating when missing) the store in options.data_dir/rheo.db. Throws
/// std::runtime_error with one clear line when the directory or file is unusable.
std::unique_ptr<store> open_sqlite_store(const sqlite_store_options& options);

} // namespace rheo
