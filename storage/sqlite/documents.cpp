#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/embedded_store.hpp"
#include "storage/sqlite/id_key.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>

namespace rheo::sqlite {

namespace {

[[noreturn]] void throw_no_document() {
  throw api_error(404, "document not found");
}

[[noreturn]] void throw_duplicate() {
  throw api_error(409, "duplicate _id: a document with this _id already exists");
}

[[noreturn]] void throw_etag_mismatch() {
  throw api_error(412, "the document ETag does not match If-Match");
}

bool document_etag_matches(const std::string& if_match, const object& doc) {
  auto* etag = find_field(doc, "_etag");
  return etag && etag->is<object_id>() && etag_matches(if_match, etag->get<object_id>());
}

void check_if_match(const std::optional<std::string>& if_match, const object& doc) {
  if (if_match && !document_etag_matches(*if_match, doc)) throw_etag_mismatch();
}

std::optional<object> point_lookup(connection& c, const std::string& db, const std::string& coll,
                                   const value& id) {
  if (id.is_array()) return std::nullopt;
  return read_document(c, db, coll, id_key(id));
}

} // namespace

std::vector<object> embedded_store::find(const std::string& db, const std::string& coll,
                                         const find_query& q) {
  core::reader r(*core_);
  connection& c = *r;
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  std::vector<object> out;
  if (q.limit == 0) return out;
  const std::uint64_t wanted = q.limit < 0
                                   ? UINT64_MAX
                                   : static_cast<std::uint64_t>(std::max<std::int64_t>(q.skip, 0)) +
                                         static_cast<std::uint64_t>(q.limit);
  std::uint64_t skipped = 0;
  auto take = [&](object doc) {
    if (skipped < static_cast<std::uint64_t>(std::max<std::int64_t>(q.skip, 0))) {
      ++skipped;
      return;
    }
    out.push_back(std::move(doc));
  };
  if (const value* id = q.filter.id_equality()) {
    if (auto doc = point_lookup(c, db, coll, *id); doc && q.filter.matches(*doc))
      take(std::move(*doc));
  } else if (q.sort.empty() || (q.sort.keys().size() == 1 && q.sort.keys()[0].first == "_id")) {
    // Index order: stop as soon as skip + limit documents matched.
    const bool asc = !q.sort.empty() && q.sort.keys()[0].second > 0;
    query s(c, asc ? sql_docs_asc : sql_docs_desc);
    s.text(1, db).text(2, coll);
    std::uint64_t matched = 0;
    while (matched < wanted && s.step()) {
      object doc = decode_bson(s.column_blob(0));
      if (!q.filter.matches(doc)) continue;
      ++matched;
      take(std::move(doc));
    }
  } else {
    std::vector<object> all;
    query s(c, sql_docs_desc);
    s.text(1, db).text(2, coll);
    while (s.step()) {
      object doc = decode_bson(s.column_blob(0));
      if (q.filter.matches(doc)) all.push_back(std::move(doc));
    }
    auto less = [&](const object& a, const object& b) { return q.sort.compare(a, b) < 0; };
    if (wanted < all.size()) {
      std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(wanted), all.end(),
                        less);
      all.resize(wanted);
    } else {
      std::stable_sort(all.begin(), all.end(), less);
    }
    for (auto& doc : all)
      take(std::move(doc));
  }
  if (q.limit > 0 && out.size() > static_cast<std::size_t>(q.limit))
    out.resize(static_cast<std::size_t>(q.limit));
  if (!q.keys.empty())
    for (auto& doc : out)
      doc = q.keys.apply(doc);
  return out;
}

std::int64_t embedded_store::count(const std::string& db, const std::string& coll,
                                   const matcher& filter) {
  core::reader r(*core_);
  connection& c = *r;
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  if (filter.matches_all()) {
    query q(c, sql_docs_count);
    q.text(1, db).text(2, coll);
    q.step();
    return q.column_int64(0);
  }
  if (const value* id = filter.id_equality()) {
    auto doc = point_lookup(c, db, coll, *id);
    return doc && filter.matches(*doc) ? 1 : 0;
  }
  std::int64_t n = 0;
  query s(c, sql_docs_desc);
  s.text(1, db).text(2, coll);
  while (s.step())
    if (filter.matches(decode_bson(s.column_blob(0)))) ++n;
  return n;
}

std::optional<object> embedded_store::find_by_id(const std::string& db, const std::string& coll,
                                                 const value& id) {
  core::reader r(*core_);
  return point_lookup(*r, db, coll, id);
}

write_result embedded_store::insert(const std::string& db, const std::string& coll, object doc) {
  // Prepared on the caller's thread so that the writer only executes SQL.
  value id = object_id::generate();
  if (auto* given = find_field(doc, "_id")) {
    id = std::move(*given);
    erase_field(doc, "_id");
  }
  const std::string key = id_key(id);
  const object_id etag = object_id::generate();
  set_field(doc, "_etag", etag);
  doc.insert(doc.begin(), {"_id", id});
  const std::string body = encode_bson(doc);
  change_event ev = make_event(db, coll, "insert");
  ev.document_key = id;
  ev.full_document = std::move(doc);
  core_->submit([&](write_txn& t) {
    t.ensure_collection(db, coll);
    if (!t.insert_document(db, coll, key, body)) throw_duplicate();
    t.log(std::move(ev));
  });
  return write_result{std::move(id), etag, true};
}

write_result embedded_store::replace(const std::string& db, const std::string& coll,
                                     const value& id, object doc, write_mode mode,
                                     const std::optional<std::string>& if_match) {
  strip_matching_id(doc, id);
  const std::string key = id_key(id);
  const object_id etag = object_id::generate();
  set_field(doc, "_etag", etag);
  doc.insert(doc.begin(), {"_id", id});
  const std::string body = encode_bson(doc);
  bool created = false;
  core_->submit([&](write_txn& t) {
    auto existing = t.get_document(db, coll, key);
    if (existing) {
      if (mode == write_mode::insert) throw_duplicate();
      check_if_match(if_match, *existing);
      t.update_document(db, coll, key, body);
    } else {
      if (mode == write_mode::update) {
        if (!t.get_collection(db, coll)) throw_no_collection(coll);
        throw_no_document();
      }
      if (if_match) throw_etag_mismatch();
      t.ensure_collection(db, coll);
      t.insert_document(db, coll, key, body);
    }
    created = !existing;
    change_event ev = make_event(db, coll, existing ? "replace" : "insert");
    ev.document_key = id;
    ev.full_document = doc;
    t.log(std::move(ev));
  });
  return write_result{id, etag, created};
}

write_result embedded_store::update(const std::string& db, const std::string& coll, const value& id,
                                    const update_spec& spec, write_mode mode,
                                    const std::optional<std::string>& if_match) {
  const std::string key = id_key(id);
  const object_id etag = object_id::generate();
  bool created = false;
  core_->submit([&](write_txn& t) {
    auto existing = t.get_document(db, coll, key);
    object doc;
    update_description desc;
    if (existing) {
      if (mode == write_mode::insert) throw_duplicate();
      check_if_match(if_match, *existing);
      doc = std::move(*existing);
    } else {
      if (mode == write_mode::update) {
        if (!t.get_collection(db, coll)) throw_no_collection(coll);
        throw_no_document();
      }
      if (if_match) throw_etag_mismatch();
      doc.emplace_back("_id", id);
    }
    spec.apply(doc, &desc);
    const value* new_id = find_field(doc, "_id");
    if (!new_id || compare_values(*new_id, id) != 0) throw_bad_request("_id cannot be changed");
    set_field(doc, "_etag", etag);
    const std::string body = encode_bson(doc);
    if (existing) {
      t.update_document(db, coll, key, body);
    } else {
      t.ensure_collection(db, coll);
      t.insert_document(db, coll, key, body);
    }
    created = !existing;
    change_event ev = make_event(db, coll, existing ? "update" : "insert");
    ev.document_key = id;
    if (existing) {
      set_field(desc.updated_fields, "_etag", etag);
      ev.update = std::move(desc);
    }
    ev.full_document = std::move(doc);
    t.log(std::move(ev));
  });
  return write_result{id, etag, created};
}

void embedded_store::remove(const std::string& db, const std::string& coll, const value& id,
                            const std::optional<std::string>& if_match) {
  const std::string key = id_key(id);
  core_->submit([&](write_txn& t) {
    auto existing = t.get_document(db, coll, key);
    if (!existing) {
      if (!t.get_collection(db, coll)) throw_no_collection(coll);
      throw_no_document();
    }
    check_if_match(if_match, *existing);
    query q(t.conn(), sql_doc_delete);
    q.text(1, db).text(2, coll).blob(3, key);
    q.step();
    change_event ev = make_event(db, coll, "delete");
    ev.document_key = id;
    t.log(std::move(ev));
  });
}

} // namespace rheo::sqlite
