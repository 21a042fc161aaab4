#include "storage/sqlite/transfer.hpp"

#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/core.hpp"
#include "storage/sqlite/id_key.hpp"
#include "storage/sqlite/indexes.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace rheo {

namespace fs = std::filesystem;

namespace {

using sqlite::connection;
using sqlite::query;

// Documents read per statement of an export, and indexed per chunk of an index build.
constexpr std::int64_t export_chunk = 1000;
constexpr std::size_t build_chunk = 10000;
// Documents imported between two trims of the change log.
constexpr std::uint64_t trim_every = 10000;

std::string name_of(const std::string& db, const std::string& coll) {
  return db + "." + coll;
}

/// The collections an export covers, in (db, coll) order.
std::vector<std::pair<std::string, std::string>>
exported_collections(connection& c, const std::string& db, const std::string& coll) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!coll.empty()) {
    if (!sqlite::collection_exists(c, db, coll))
      throw api_error(404, "collection " + name_of(db, coll) + " does not exist");
    out.emplace_back(db, coll);
    return out;
  }
  query q(c, sqlite::sql_colls_all);
  while (q.step()) {
    std::string d(q.column_text(0));
    if (db.empty() || d == db) out.emplace_back(std::move(d), std::string(q.column_text(1)));
  }
  return out;
}

/// Writes `metadata` as db.coll's (creating it), with a new etag and its "meta" entry.
void write_metadata(sqlite::write_txn& t, const std::string& db, const std::string& coll,
                    bool exists, const object& metadata) {
  const std::string blob = encode_bson(metadata);
  const object_id etag = object_id::generate();
  query q(t.conn(), exists ? sqlite::sql_coll_update : sqlite::sql_coll_insert);
  q.text(1, db).text(2, coll).blob(3, blob).blob(4, sqlite::blob_of(etag));
  q.step();
  t.log(sqlite::meta_event(db, coll, metadata));
}

/// Creates the indexes of `c` that db.coll lacks, built over the documents it holds.
void create_indexes(sqlite::write_txn& t, const collection_dump& c) {
  const std::string where = "collection " + name_of(c.db, c.coll);
  for (auto& info : c.indexes) {
    sqlite::index_def def;
    try {
      def = sqlite::parse_index(info.name, info.key, info.options);
    } catch (const api_error& e) {
      throw api_error(e.status(), where + ", index '" + info.name + "': " + e.what());
    }
    const auto current = t.indexes(c.db, c.coll);
    bool present = false;
    for (auto& have : *current) {
      if (have.name != info.name) continue;
      const index_info mine = def.info(), theirs = have.info();
      if (mine.key != theirs.key || mine.options != theirs.options)
        throw api_error(409, where + " has an index '" + info.name +
                                 "' with another key or options: " + to_json(value(theirs.key)));
      present = true;
    }
    if (present) continue;
    def.id = sqlite::insert_index(t.conn(), c.db, c.coll, def);
    try {
      std::string after;
      while (auto last = sqlite::build_index_chunk(t.conn(), c.db, c.coll, def, after, build_chunk))
        after = std::move(*last);
    } catch (const api_error& e) {
      throw api_error(e.status(), where + ", index '" + info.name + "': " + e.what());
    }
    sqlite::set_index_ready(t.conn(), def.id);
    t.indexes_changed(c.db, c.coll);
  }
}

/// Trims the change log to `retention` entries inside the import's transaction, so that the
/// pages of entries the commit would trim anyway are reused by the next ones rather than
/// left free in the file (an import of a million documents otherwise doubled its size).
void trim_log(sqlite::write_txn& t, std::uint64_t retention) {
  std::uint64_t newest = 0;
  {
    query q(t.conn(), sqlite::sql_changes_newest);
    if (q.step() && !q.column_null(0)) newest = static_cast<std::uint64_t>(q.column_int64(0));
  }
  if (newest <= retention) return;
  query q(t.conn(), sqlite::sql_changes_trim);
  q.int64(1, static_cast<std::int64_t>(newest - retention + 1));
  q.step();
}

void import_collection(sqlite::write_txn& t, collection_dump& c, import_source& source,
                       std::uint64_t retention) {
  const auto existing = t.get_collection(c.db, c.coll);
  if (!existing || (c.metadata_given && c.metadata != existing->metadata))
    write_metadata(t, c.db, c.coll, existing.has_value(), c.metadata);
  create_indexes(t, c);
  std::uint64_t n = 0;
  while (auto d = source.next_document()) {
    if (d->doc.empty() || d->doc.front().first != "_id")
      throw std::logic_error("import_source: a document without _id first");
    const value& id = d->doc.front().second;
    try {
      if (!t.insert_document(c.db, c.coll, sqlite::id_key(id), d->bson, &d->doc))
        throw api_error(409, "_id " + to_json(id) + " is already in " + name_of(c.db, c.coll));
    } catch (const api_error& e) {
      throw api_error(e.status(), source.where() + ": " + e.what());
    }
    t.log_insert(c.db, c.coll, id, d->bson);
    if (++n % 1000 == 0) source.written(n);
    if (n % trim_every == 0) trim_log(t, retention);
  }
  c.documents = n;
  source.written(n);
}

} // namespace

std::string export_data_dir(const std::string& data_dir, const std::string& db,
                            const std::string& coll, export_visitor& visitor) {
  const std::string db_path = (fs::path(data_dir) / "rheo.db").string();
  std::error_code ec;
  if (!fs::is_regular_file(db_path, ec))
    throw std::runtime_error("data dir " + data_dir + ": no store here (no rheo.db)");
  // Read-write for WAL's shared memory; this process writes nothing.
  connection c(db_path, SQLITE_OPEN_READWRITE);
  c.exec("PRAGMA query_only=1");
  sqlite::read_transaction snapshot(c);
  const std::string position = sqlite::log_position(c);
  for (auto& [d, name] : exported_collections(c, db, coll)) {
    collection_dump dump;
    dump.db = d;
    dump.coll = name;
    if (auto info = sqlite::read_collection(c, d, name)) {
      dump.metadata = info->metadata;
      dump.etag = info->etag;
    }
    for (auto& def : sqlite::load_indexes(c, d, name))
      dump.indexes.push_back(def.info());
    {
      query q(c, sqlite::sql_docs_count);
      q.text(1, d).text(2, name);
      if (q.step()) dump.documents = static_cast<std::uint64_t>(q.column_int64(0));
    }
    visitor.begin(dump);
    std::string after;
    for (bool more = true; more;) {
      query q(c, sqlite::sql_docs_chunk);
      q.text(1, d).text(2, name).blob(3, after).int64(4, export_chunk);
      std::int64_t rows = 0;
      std::string last; // `after` stays bound (not copied) while the statement runs
      while (q.step()) {
        ++rows;
        visitor.document(q.column_blob(1));
        last = std::string(q.column_blob(0));
      }
      more = rows == export_chunk;
      after = std::move(last);
    }
    visitor.end(dump);
  }
  return position;
}

std::vector<collection_dump> import_into_data_dir(const sqlite_store_options& options,
                                                  import_source& source) {
  auto store = std::make_shared<sqlite::core>(options);
  store->start();
  std::vector<collection_dump> done;
  try {
    store->submit([&](sqlite::write_txn& t) {
      while (auto c = source.next_collection()) {
        import_collection(t, *c, source, std::max<std::uint64_t>(options.changelog_retention, 1));
        done.push_back(std::move(*c));
      }
    });
  } catch (...) {
    store->close();
    throw;
  }
  store->close();
  return done;
}

} // namespace rheo
