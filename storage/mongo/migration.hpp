// Copying collections into and out of MongoDB as rheo's MongoDB store keeps them (rheo
// migrate, rheo export and import with --mongo-uri): the documents in the MongoDB collection
// of the same name, the metadata in the database's `_properties` collection (RESTHeart's
// layout, mongo_store.hpp), the indexes created with createIndexes.
//
// migrate's writes can be repeated: a document is replaced by its _id (an upsert), the
// metadata document too, an index that exists with the same key and options is left; so a
// copy interrupted anywhere is finished by copying again, and nothing is duplicated. An
// import inserts instead (ordered, so a failure leaves a known prefix written), into a
// staging collection renamed into place when the collection is new. Writes use write
// concern "majority".
//
// Thread-safety: one thread uses a mongo_copy (it owns one mongoc client).
#pragma once

#include "storage/store.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

/// What names an import's staging collection: `<coll>.rheo_import_<random hex>`.
inline constexpr std::string_view staging_marker = ".rheo_import_";
/// A new staging collection name for `coll`.
std::string staging_name(const std::string& coll);

/// An index as listIndexes and mongodump's metadata files describe it ({"v", "key", "name",
/// options...}): its name, its key, and every other field but "v" and "ns" as an option.
index_info index_of_spec(const object& spec);

class mongo_copy {
public:
  /// How document() writes: `upsert` replaces by _id in unordered batches (migrate's);
  /// `insert` inserts in ordered batches; `ordered_upsert` replaces by _id, ordered.
  enum class writes { upsert, insert, ordered_upsert };

  /// A collection as rheo's MongoDB store serves it.
  struct source_collection {
    std::string name;
    std::optional<collection_info> properties; // its _properties document, if any
  };

  /// Connects to `uri`, which must reach a replica set or a mongos (as the MongoDB store
  /// needs); documents go in batches of `batch_documents` (and at most 8 MiB). Throws
  /// std::runtime_error saying why it cannot.
  explicit mongo_copy(const std::string& uri, std::size_t batch_documents = 1000);
  ~mongo_copy();
  mongo_copy(const mongo_copy&) = delete;
  mongo_copy& operator=(const mongo_copy&) = delete;

  /// Starts db.coll: writes its `_properties` document (its metadata and etag) and creates
  /// `indexes`. Throws std::runtime_error (an index of the same name and another key or
  /// options: MongoDB's message).
  void begin(const std::string& db, const std::string& coll, const collection_info& info,
             const std::vector<index_info>& indexes);
  /// Queues one document (BSON with an _id) of the current collection; sends a full batch.
  void document(std::string_view bson);
  /// Sends what is queued; returns how many documents MongoDB's collection now holds.
  std::uint64_t end();
  /// The documents of the current collection sent so far (acknowledged; after a failed
  /// ordered batch, those of it MongoDB wrote too).
  std::uint64_t written() const { return written_; }

  // ---- the steps of begin(), and the rest of an import ----

  /// Replaces db.coll's `_properties` document by `info` (upsert; a new etag when none).
  void write_properties(const std::string& db, const std::string& coll,
                        const collection_info& info);
  /// createIndexes of `indexes` on db.coll (none: nothing sent).
  void create_indexes(const std::string& db, const std::string& coll,
                      const std::vector<index_info>& indexes);
  /// Makes db.coll the collection document() writes into, `how`.
  void start(const std::string& db, const std::string& coll, writes how);
  /// Sends what is queued (throws as end() would).
  void send();
  /// Whether db.coll exists (listCollections) and, if so, whether it holds a document.
  struct presence {
    bool exists = false;
    bool holds_documents = false;
  };
  presence probe(const std::string& db, const std::string& coll);
  /// Which of the `count` _ids to insert (`id(i)` the i-th) db.coll holds, read in batches
  /// of `_id $in` (projection _id; one batch of _ids in memory at a time); returns their
  /// positions, ascending.
  std::vector<std::size_t> present(const std::string& db, const std::string& coll,
                                   std::size_t count, const std::function<value(std::size_t)>& id);
  /// renameCollection db.from -> db.to; `drop_target` replaces an (empty) db.to.
  void rename(const std::string& db, const std::string& from, const std::string& to,
              bool drop_target);
  /// Drops db.coll; returns "" or why it could not.
  std::string drop(const std::string& db, const std::string& coll) noexcept;
  /// After end(): deletes from the current collection the documents whose _id `held` says
  /// the source no longer holds (MongoDB's _ids read with projection, deleteMany in batches
  /// of `_id $in`); returns how many were deleted.
  std::uint64_t delete_others(const std::function<bool(const value& id)>& held);

  // ---- reading (rheo export --mongo-uri) ----

  /// The databases of the server but admin, local and config.
  std::vector<std::string> database_names();
  /// The collections of `db` as rheo serves them: MongoDB's (not `_properties`, system.*
  /// or import staging ones) and those known only by their `_properties` document, by name.
  std::vector<source_collection> collections(const std::string& db);
  /// db.coll's secondary indexes (listIndexes, without _id_), as MongoDB describes them.
  std::vector<index_info> indexes(const std::string& db, const std::string& coll);
  /// Each document of db.coll (its BSON) in _id order, read with one cursor.
  void each_document(const std::string& db, const std::string& coll,
                     const std::function<void(std::string_view bson)>& fn);
  /// The hosts of the URI, for messages (no credentials).
  const std::string& hosts() const { return hosts_; }

private:
  struct driver;
  void flush();
  void write_command(const std::string& db, const object& command, const std::string& what);

  std::unique_ptr<driver> d_;
  std::size_t batch_documents_;
  writes how_ = writes::upsert;
  std::size_t queued_ = 0, queued_bytes_ = 0;
  std::uint64_t written_ = 0;
  std::string db_, coll_, hosts_;
};

} // namespace rheo
