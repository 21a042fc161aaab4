// Copying collections into MongoDB as rheo's MongoDB store keeps them (rheo migrate): the
// documents in the MongoDB collection of the same name, the metadata in the database's
// `_properties` collection (RESTHeart's layout, mongo_store.hpp), the indexes created with
// createIndexes. Every write can be repeated: a document is replaced by its _id (an upsert),
// the metadata document too, an index that exists with the same key and options is left;
// so a copy interrupted anywhere is finished by copying again, and nothing is duplicated.
// Writes use write concern "majority".
//
// Thread-safety: one thread uses a mongo_copy (it owns one mongoc client).
#pragma once

#include "storage/store.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

class mongo_copy {
public:
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
  /// The documents of the current collection sent so far (acknowledged).
  std::uint64_t written() const { return written_; }
  /// The hosts of the URI, for messages (no credentials).
  const std::string& hosts() const { return hosts_; }

private:
  struct driver;
  void flush();

  std::unique_ptr<driver> d_;
  std::size_t batch_documents_;
  std::size_t queued_ = 0, queued_bytes_ = 0;
  std::uint64_t written_ = 0;
  std::string db_, coll_, hosts_;
};

} // namespace rheo
