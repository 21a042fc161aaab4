#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/embedded_store.hpp"
#include "storage/sqlite/id_key.hpp"
#include "storage/sqlite/planner.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>
#include <set>

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

namespace {

/// The filter the planner sees: the request's own, or {_id: v} for a bare id lookup.
object planning_filter(const find_query& q) {
  if (!q.filter_doc.empty()) return q.filter_doc;
  if (const value* id = q.filter.id_equality()) return object{{"_id", *id}};
  return {};
}

/// The complete order of a query: its sort, then _id (descending when not given), which
/// is also the order of a collection scan sorted stably by the sort alone.
std::vector<std::pair<std::string, int>> complete_order(const sort_spec& sort) {
  auto keys = sort.keys();
  if (std::none_of(keys.begin(), keys.end(), [](auto& k) { return k.first == "_id"; }))
    keys.emplace_back("_id", -1);
  return keys;
}

/// Calls `visit` with each document the plan yields, in plan order, until it returns false.
template <class Visit>
std::uint64_t scan(connection& c, const std::string& db, const std::string& coll, const plan& p,
                   Visit&& visit) {
  std::uint64_t examined = 0;
  const bool dedup = !p.index->is_id() && p.index->multikey;
  std::set<std::string> seen;
  auto run = [&](const key_range& range) {
    if (p.index->is_id()) {
      query s(c, p.backward ? sql_docs_range_desc : sql_docs_range_asc);
      s.text(1, db).text(2, coll).blob(3, range.lo).blob(4, range.hi);
      while (s.step()) {
        ++examined;
        if (!visit(decode_bson(s.column_blob(1)))) return false;
      }
      return true;
    }
    query s(c, p.backward ? sql_entries_desc : sql_entries_asc);
    s.int64(1, p.index->id).blob(2, range.lo).blob(3, range.hi);
    while (s.step()) {
      ++examined;
      std::string key(s.column_blob(0));
      if (dedup && !seen.insert(key).second) continue;
      auto doc = read_document(c, db, coll, key);
      if (doc && !visit(std::move(*doc))) return false;
    }
    return true;
  };
  if (p.backward) {
    for (auto it = p.ranges.rbegin(); it != p.ranges.rend(); ++it)
      if (!run(*it)) break;
  } else {
    for (auto& range : p.ranges)
      if (!run(range)) break;
  }
  return examined;
}

} // namespace

std::vector<object> embedded_store::find(const std::string& db, const std::string& coll,
                                         const find_query& q) {
  core::reader r(*core_);
  connection& c = *r;
  read_transaction snapshot(c);
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  const auto order_keys = complete_order(q.sort);
  const auto indexes = load_indexes(c, db, coll);
  const plan p = choose_plan(planning_filter(q), order_keys, indexes);
  const auto skip = static_cast<std::uint64_t>(std::max<std::int64_t>(q.skip, 0));
  const std::uint64_t wanted =
      q.limit < 0 ? UINT64_MAX : skip + static_cast<std::uint64_t>(q.limit);
  std::vector<object> out;
  std::uint64_t examined = 0;
  if (wanted > skip) {
    examined = scan(c, db, coll, p, [&](object doc) {
      if (!q.filter.matches(doc)) return true;
      out.push_back(std::move(doc));
      return !p.provides_sort || out.size() < wanted;
    });
  }
  if (!p.provides_sort) {
    object spec;
    for (auto& [path, dir] : order_keys)
      spec.emplace_back(path, std::int32_t(dir));
    const sort_spec order = sort_spec::parse(spec);
    auto less = [&](const object& a, const object& b) { return order.compare(a, b) < 0; };
    if (wanted < out.size()) {
      std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(wanted), out.end(),
                        less);
      out.resize(wanted);
    } else {
      std::sort(out.begin(), out.end(), less);
    }
  }
  out.erase(out.begin(),
            out.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(skip, out.size())));
  if (q.limit >= 0 && out.size() > static_cast<std::size_t>(q.limit))
    out.resize(static_cast<std::size_t>(q.limit));
  if (!q.keys.empty())
    for (auto& doc : out)
      doc = q.keys.apply(doc);
  if (q.explain) *q.explain = query_plan{p.index->name, examined, p.bounds, !p.provides_sort};
  return out;
}

std::int64_t embedded_store::count(const std::string& db, const std::string& coll,
                                   const matcher& filter) {
  find_query q;
  q.filter = filter;
  return count_query(db, coll, q);
}

std::int64_t embedded_store::count_query(const std::string& db, const std::string& coll,
                                         const find_query& q) {
  core::reader r(*core_);
  connection& c = *r;
  read_transaction snapshot(c);
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  if (q.filter.matches_all()) {
    query s(c, sql_docs_count);
    s.text(1, db).text(2, coll);
    s.step();
    return s.column_int64(0);
  }
  const auto indexes = load_indexes(c, db, coll);
  const plan p = choose_plan(planning_filter(q), {{"_id", -1}}, indexes);
  std::int64_t n = 0;
  scan(c, db, coll, p, [&](const object& doc) {
    if (q.filter.matches(doc)) ++n;
    return true;
  });
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
    if (!t.insert_document(db, coll, key, *ev.full_document, body)) throw_duplicate();
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
      t.update_document(db, coll, key, *existing, doc, body);
    } else {
      if (mode == write_mode::update) {
        if (!t.get_collection(db, coll)) throw_no_collection(coll);
        throw_no_document();
      }
      if (if_match) throw_etag_mismatch();
      t.ensure_collection(db, coll);
      t.insert_document(db, coll, key, doc, body);
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
      doc = *existing;
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
      t.update_document(db, coll, key, *existing, doc, body);
    } else {
      t.ensure_collection(db, coll);
      t.insert_document(db, coll, key, doc, body);
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
    t.delete_document(db, coll, key, *existing);
    change_event ev = make_event(db, coll, "delete");
    ev.document_key = id;
    t.log(std::move(ev));
  });
}

} // namespace rheo::sqlite
