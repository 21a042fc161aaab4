#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/embedded_store.hpp"
#include "storage/sqlite/indexes.hpp"
#include "storage/sqlite/schema.hpp"

namespace rheo::sqlite {

std::vector<std::string> embedded_store::collection_names(const std::string& db) {
  core::reader r(*core_);
  query q(*r, sql_coll_names);
  q.text(1, db);
  std::vector<std::string> names;
  while (q.step())
    names.emplace_back(q.column_text(0));
  return names;
}

std::optional<collection_info> embedded_store::collection(const std::string& db,
                                                          const std::string& coll) {
  core::reader r(*core_);
  return read_collection(*r, db, coll);
}

bool embedded_store::put_collection(const std::string& db, const std::string& coll, object metadata,
                                    const std::optional<std::string>& if_match) {
  erase_field(metadata, "_id");
  erase_field(metadata, "_etag");
  const std::string blob = encode_bson(metadata);
  bool created = false;
  core_->submit([&](write_txn& t) {
    auto existing = t.get_collection(db, coll);
    if (if_match && !existing) throw_collection_etag_mismatch(std::nullopt);
    if (if_match && !etag_matches(*if_match, existing->etag))
      throw_collection_etag_mismatch(existing->etag);
    const object_id etag = object_id::generate();
    query q(t.conn(), existing ? sql_coll_update : sql_coll_insert);
    q.text(1, db).text(2, coll).blob(3, blob).blob(4, blob_of(etag));
    q.step();
    created = !existing;
    t.log(meta_event(db, coll, metadata));
  });
  return created;
}

void embedded_store::patch_collection(const std::string& db, const std::string& coll,
                                      object metadata, const std::optional<std::string>& if_match) {
  erase_field(metadata, "_id");
  erase_field(metadata, "_etag");
  core_->submit([&](write_txn& t) {
    auto existing = t.get_collection(db, coll);
    if (!existing) throw_no_collection(coll);
    if (if_match && !etag_matches(*if_match, existing->etag))
      throw_collection_etag_mismatch(existing->etag);
    object merged = existing->metadata;
    for (auto& [k, v] : metadata)
      set_field(merged, k, v);
    const std::string blob = encode_bson(merged);
    const object_id etag = object_id::generate();
    query q(t.conn(), sql_coll_update);
    q.text(1, db).text(2, coll).blob(3, blob).blob(4, blob_of(etag));
    q.step();
    t.log(meta_event(db, coll, std::move(merged)));
  });
}

void embedded_store::drop_collection(const std::string& db, const std::string& coll,
                                     const std::string& etag) {
  core_->submit([&](write_txn& t) {
    auto existing = t.get_collection(db, coll);
    if (!existing) throw_no_collection(coll);
    if (!etag_matches(etag, existing->etag)) throw_collection_etag_mismatch(existing->etag);
    {
      query q(t.conn(), sql_docs_delete);
      q.text(1, db).text(2, coll);
      q.step();
    }
    delete_collection_indexes(t.conn(), db, coll);
    t.indexes_changed(db, coll);
    {
      query q(t.conn(), sql_coll_delete);
      q.text(1, db).text(2, coll);
      q.step();
    }
    t.log(make_event(db, coll, operation_type::drop));
    t.log(make_event(db, coll, operation_type::invalidate));
  });
}

} // namespace rheo::sqlite
