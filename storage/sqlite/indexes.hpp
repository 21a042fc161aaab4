// Secondary indexes of the embedded store: their definitions (the catalog, table indexes)
// and their entries (table index_entries), maintained in the writer's transaction together
// with the document and its change-log entry. Internal to storage/sqlite.
//
// An entry's key is the document's index key (index_key.hpp: the fields' encodings, a
// descending field inverted) followed by the document's id_key, inverted when the last
// field is descending. So entries of equal index keys are in _id order matching the last
// field's direction, and a scan of {timestamp:-1} gives {timestamp:-1, _id:-1}, the order
// the REST API asks for (it adds _id to a sort in the direction of the sort's last key).
//
// States: an index is `building` while create_index() fills it in chunks (each chunk one
// write batch, so other writes wait at most for one chunk), then `ready`; only ready
// indexes answer queries, but writes maintain both.
//
// Thread-safety: free functions over a connection used by one thread; index_def is a value.
#pragma once

#include "storage/document/index_key.hpp"
#include "storage/document/query.hpp"
#include "storage/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rheo::sqlite {

class connection;

struct index_def {
  std::int64_t id = 0; // the catalog row; 0 for the built-in _id_ index
  std::string name;
  object key;          // the key pattern as given
  index_key_spec spec; // fields and sparse
  bool unique = false;
  std::optional<object> partial; // partialFilterExpression
  matcher partial_filter;        // compiled `partial` (matches all when absent)
  std::optional<std::int64_t> expire_after_seconds;
  bool ready = true;
  bool multikey = false; // some document had an array on an indexed path

  bool is_id() const { return id == 0; }
  index_info info() const;
};

/// The built-in index on _id (its entries are the documents table itself).
const index_def& id_index();

/// Checks a key pattern and options as the index API receives them; throws api_error(400).
/// A field's direction is the sign of its number, any but 0 as in MongoDB ({a: 2, b: -0.5}
/// is {a: 1, b: -1}); MongoDB's special index types ("text", "hashed", ...) are 400 naming
/// the type. `key` is kept as given.
index_def parse_index(const std::string& name, const object& key, const object& options);

/// The indexes of db.coll in the catalog, in creation order (without _id_).
std::vector<index_def> load_indexes(connection& c, const std::string& db, const std::string& coll);
/// Every TTL index of every collection, with its db and coll.
struct ttl_index {
  std::string db;
  std::string coll;
  index_def def;
};
std::vector<ttl_index> load_ttl_indexes(connection& c);

/// Adds `def` to the catalog in state building; returns its id. 409 when the name exists.
std::int64_t insert_index(connection& c, const std::string& db, const std::string& coll,
                          const index_def& def);
void set_index_ready(connection& c, std::int64_t id);
/// Removes an index and its entries.
void delete_index(connection& c, std::int64_t id);
/// Removes every index of db.coll and their entries.
void delete_collection_indexes(connection& c, const std::string& db, const std::string& coll);

/// Maintains the entries of `indexes` for one document write: `before` is the stored
/// document (nullptr for an insert), `after` the new one (nullptr for a delete). Throws
/// api_error(409) naming the index when a unique index would hold a key twice, and
/// api_error(400) for keys MongoDB cannot index (parallel arrays). True when it marked an
/// index multikey in the catalog (a cached copy of `indexes` is then out of date).
bool update_entries(connection& c, const std::vector<index_def>& indexes, const std::string& id_key,
                    const object* before, const object* after);

/// Fills a building index with the documents after `after_id_key` (all when empty), at most
/// `limit` of them; returns the last id_key done, nullopt when no document was left.
std::optional<std::string> build_index_chunk(connection& c, const std::string& db,
                                             const std::string& coll, const index_def& def,
                                             const std::string& after_id_key, std::size_t limit);

/// The bytes of `key` inverted (a descending field's encoding).
std::string invert_bytes(std::string key);
/// The smallest string greater than every string starting with `prefix` (empty when there
/// is none: `prefix` is all 0xFF bytes).
std::string prefix_successor(std::string prefix);

/// The entry key of a document whose index key is `key` and id key `id_key`.
std::string entry_key(const index_def& def, const std::string& key, const std::string& id_key);

} // namespace rheo::sqlite
