#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/embedded_store.hpp"
#include "storage/sqlite/indexes.hpp"
#include "storage/sqlite/schema.hpp"

#include <set>

namespace rheo::sqlite {

namespace {

// Documents indexed per write batch while an index is built: the longest a concurrent
// write waits for the build.
constexpr std::size_t build_chunk_documents = 500;
// Expired documents deleted per write batch.
constexpr std::size_t expiry_batch = 1000;

/// Whether the TTL field of `doc` holds a date before `cutoff` (for an array, its earliest).
bool expired(const object& doc, const std::string& path, std::int64_t cutoff) {
  const value* v = find_path(doc, path);
  if (!v) return false;
  if (auto* d = v->get_if<date_time>()) return d->millis < cutoff;
  if (auto* a = v->get_if<array>())
    for (auto& e : *a)
      if (auto* d = e.get_if<date_time>(); d && d->millis < cutoff) return true;
  return false;
}

} // namespace

std::vector<index_info> embedded_store::list_indexes(const std::string& db,
                                                     const std::string& coll) {
  core::reader r(*core_);
  connection& c = *r;
  read_transaction snapshot(c);
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  std::vector<index_info> out{id_index().info()};
  for (auto& def : load_indexes(c, db, coll))
    out.push_back(def.info());
  return out;
}

void embedded_store::create_index(const std::string& db, const std::string& coll,
                                  const std::string& name, const object& key,
                                  const object& options) {
  index_def def = parse_index(name, key, options);
  core_->submit([&](write_txn& t) {
    if (!collection_exists(t.conn(), db, coll)) throw_no_collection(coll);
    def.id = insert_index(t.conn(), db, coll, def);
    t.indexes_changed(db, coll); // writes maintain a building index too
  });
  // Built in chunks, each one write batch: writes go on meanwhile and keep the entries of
  // the documents they touch up to date; queries use the index once it is ready.
  try {
    std::string after;
    for (;;) {
      std::optional<std::string> last;
      core_->submit([&](write_txn& t) {
        last = build_index_chunk(t.conn(), db, coll, def, after, build_chunk_documents);
        t.indexes_changed(db, coll); // the chunk may have made it multikey
      });
      if (!last) break;
      after = std::move(*last);
    }
    core_->submit([&](write_txn& t) {
      set_index_ready(t.conn(), def.id);
      t.indexes_changed(db, coll);
    });
  } catch (const api_error& e) {
    core_->submit([&](write_txn& t) {
      delete_index(t.conn(), def.id);
      t.indexes_changed(db, coll);
    });
    if (e.status() == 409)
      throw api_error(400, "cannot create unique index '" + name +
                               "': the collection holds duplicate keys");
    throw;
  }
}

void embedded_store::drop_index(const std::string& db, const std::string& coll,
                                const std::string& name) {
  if (name.empty() || name.front() == '_')
    throw_bad_request("index '" + name + "' cannot be dropped");
  core_->submit([&](write_txn& t) {
    if (!collection_exists(t.conn(), db, coll)) throw_no_collection(coll);
    const auto indexes = t.indexes(db, coll);
    for (auto& def : *indexes)
      if (def.name == name) {
        delete_index(t.conn(), def.id);
        t.indexes_changed(db, coll);
        return;
      }
    throw api_error(404, "index '" + name + "' does not exist");
  });
}

std::size_t embedded_store::expire_documents() {
  std::size_t deleted = 0;
  core_->submit([&](write_txn& t) {
    const std::int64_t now = date_time::now().millis;
    for (auto& ttl : load_ttl_indexes(t.conn())) {
      const auto& field = ttl.def.spec.fields.front();
      const std::int64_t cutoff = now - *ttl.def.expire_after_seconds * 1000;
      // Entries of dates before the cutoff (other types never expire).
      const std::string start = encode_key(date_time{0}).substr(0, 1);
      const std::string limit = encode_key(date_time{cutoff});
      std::string lo = start, hi = limit;
      if (field.direction < 0) {
        lo = prefix_successor(invert_bytes(limit));
        hi = prefix_successor(invert_bytes(start));
      }
      std::set<std::string> candidates;
      {
        query q(t.conn(), sql_entries_asc);
        q.int64(1, ttl.def.id).blob(2, lo).blob(3, hi);
        while (candidates.size() + deleted < expiry_batch && q.step())
          candidates.emplace(q.column_blob(0));
      }
      for (auto& key : candidates) {
        auto doc = read_document(t.conn(), ttl.db, ttl.coll, key);
        if (!doc || !expired(*doc, field.path, cutoff)) continue;
        t.delete_document(ttl.db, ttl.coll, key, *doc);
        change_event ev = make_event(ttl.db, ttl.coll, operation_type::delete_);
        if (auto* id = find_field(*doc, "_id")) ev.document_key = *id;
        t.log(std::move(ev));
        ++deleted;
      }
    }
  });
  return deleted;
}

} // namespace rheo::sqlite
