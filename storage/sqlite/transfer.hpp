// Export and import of the embedded store's collections (rheo export, rheo import): the
// store side, which reads and writes BSON documents; the files (Extended JSON) are the
// caller's (tools/).
//
// Export reads the store in one read transaction (a server may be running on it: under WAL
// that blocks nobody), so every collection is exported as of one commit; each collection's
// documents come in _id order, as stored (the bytes of its BSON).
//
// Import writes in one write transaction, on a store no server holds (it takes the data
// dir's lock): every collection's metadata, indexes and documents commit together, or,
// on any error (a bad line, a duplicate _id, a unique index violated, a disk full, a kill),
// nothing does. Documents are stored as given (no new _etag), each with its insert in the
// change log, so that a client resuming from before the import sees them (or, past the
// log's retention, gets history lost).
//
// Thread-safety: free functions; the visitor and the source are called on one thread at a
// time (the import's source on the store's writer thread).
#pragma once

#include "storage/document/value.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

/// A collection as export and import see it.
struct collection_dump {
  std::string db;
  std::string coll;
  object metadata;                 // as stored (streams, aggrs, ...); {} when none
  object_id etag;                  // export: the collection's etag (import makes a new one)
  bool metadata_given = true;      // import: false keeps an existing collection's metadata
  std::vector<index_info> indexes; // the secondary ones (not _id_)
  std::uint64_t documents = 0;     // export: how many it holds; import: how many were added
};

/// Receives an export.
class export_visitor {
public:
  virtual ~export_visitor() = default;
  /// A collection begins (`c.documents` is its count).
  virtual void begin(const collection_dump& c) = 0;
  /// One of its documents (BSON), in _id order.
  virtual void document(std::string_view bson) = 0;
  virtual void end(const collection_dump& c) = 0;
};

/// Exports the store in `data_dir` (not created: a missing store is an error): every
/// collection, those of database `db` when it is not empty, or the one collection db.coll
/// when `coll` is not empty too (404 api_error when it does not exist). Returns the
/// change-log position of the snapshot read. Throws std::runtime_error.
std::string export_data_dir(const std::string& data_dir, const std::string& db,
                            const std::string& coll, export_visitor& visitor);

/// A document to import: its BSON, with `_id` first, and the same decoded.
struct import_document {
  std::string bson;
  object doc;
};

/// What an import reads, collection by collection.
class import_source {
public:
  virtual ~import_source() = default;
  /// The next collection: its name, metadata (unless `metadata_given` is false: an existing
  /// collection keeps its own, a new one gets {}) and indexes (`documents` unused); nullopt
  /// after the last.
  virtual std::optional<collection_dump> next_collection() = 0;
  /// The next document of the current collection; nullopt after its last. Throws
  /// std::runtime_error naming the file and line of bad input.
  virtual std::optional<import_document> next_document() = 0;
  /// Where the last document came from ("<file>, line <n>"), for the errors the store finds.
  virtual std::string where() const = 0;
  /// Progress: `done` documents of the current collection written.
  virtual void written(std::uint64_t done) { (void)done; }
};

/// Imports everything `source` yields into the store `options.data_dir` (created when
/// missing) in one transaction; returns what each collection received. An existing
/// collection keeps its documents (an imported _id it holds is an error) and gets the
/// imported metadata and the indexes it lacks (one of the same name and another key or
/// options is an error). Throws std::runtime_error (api_error for what the store refuses),
/// having imported nothing; "data dir ...: in use by another process" while a server runs.
std::vector<collection_dump> import_into_data_dir(const sqlite_store_options& options,
                                                  import_source& source);

} // namespace rheo
