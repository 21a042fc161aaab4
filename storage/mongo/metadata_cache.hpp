// The MongoDB backend's cache of `_properties` documents (collection metadata), kept current
// by one change stream on each database's `_properties` collection (see mongo_store.hpp for
// the design). Internal to storage/mongo.
//
// Thread-safety: every method may be called from any thread (one mutex guards the state);
// the change streams' sinks run on their feeds' threads and take the same mutex, never
// while talking to MongoDB.
#pragma once

#include "storage/mongo/client.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace rheo::mongo {

class metadata_cache {
public:
  /// Not `enabled`: no change streams; every lookup reads MongoDB.
  metadata_cache(std::shared_ptr<mongo_core> core, bool enabled);
  ~metadata_cache();
  metadata_cache(const metadata_cache&) = delete;
  metadata_cache& operator=(const metadata_cache&) = delete;

  /// The `_properties` document of db.coll (nullopt: it has none): from the cache while
  /// the database's `_properties` stream is up, otherwise read with `c` (and cached when
  /// the stream is up and nothing changed during the read). The first call for a database
  /// opens its stream.
  std::optional<object> properties(pooled_client& c, const std::string& db,
                                   const std::string& coll);

  /// Before this process writes the `_properties` document of db.coll with `etag` (its hex
  /// digits; "" for a delete): stream events older than that write are ignored until the
  /// write's own event arrives, so the cache never goes back to an earlier state.
  void writing(const std::string& db, const std::string& coll, const std::string& etag);
  /// After that write succeeded: the document now stored (nullopt: deleted).
  void written(const std::string& db, const std::string& coll, const std::string& etag,
               std::optional<object> doc);
  /// After that write failed (its outcome unknown): the next read asks MongoDB.
  void forget(const std::string& db, const std::string& coll);

  /// Stops the change streams (joining their threads); later calls read MongoDB. Idempotent.
  void close();

  /// The metadata of a `_properties` document (without _id and _etag).
  static object metadata_of(const object& properties);

private:
  class sink;

  /// One `_properties` document, as the stream last showed it or a read found it.
  struct entry {
    std::optional<object> doc;
    bool known = false;                 // doc holds the current state
    std::optional<std::string> pending; // the etag of this process's write in flight
  };

  /// One database's stream and cache. `live` while the stream is up: entries are valid
  /// only then. `generation` counts changes, so that a read that raced one is not cached.
  struct database {
    std::unique_ptr<change_feed> feed;
    std::unique_ptr<change_feed> ended; // a lost feed, destroyed by the next open
    bool started = false;
    bool live = false;
    std::uint64_t generation = 0;
    std::map<std::string, entry> entries;
    /// The stream came up or went down: nothing cached before holds, and reads that began
    /// before are not cached.
    void reset(bool now_live) {
      live = now_live;
      entries.clear();
      ++generation;
    }
  };

  void open(const std::string& db);
  void up(const std::string& db);
  void down(const std::string& db, bool lost);
  void apply(const std::string& db, const change_event& ev);

  std::shared_ptr<mongo_core> core_;
  std::mutex mu_;
  bool closed_ = false;
  std::map<std::string, database> databases_;
};

} // namespace rheo::mongo
