#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"
#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/cursor.hpp"
#include "storage/sqlite/embedded_store.hpp"
#include "storage/sqlite/id_key.hpp"
#include "storage/sqlite/planner.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>
#include <set>

namespace rheo::sqlite {

namespace {

void check_if_match(const std::optional<std::string>& if_match, const object& doc) {
  if (!if_match) return;
  const auto etag = document_etag(doc);
  if (!etag || !etag_matches(*if_match, *etag)) throw_etag_mismatch(etag);
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

using order_keys = std::vector<std::pair<std::string, int>>;

/// The complete order of a query: its sort, then _id in `tie` direction when the sort does
/// not name it. With tie -1 it is also the order of a collection scan sorted stably by the
/// sort alone (find's results); with tie 1, natural order for equal keys (aggregations).
order_keys complete_order(const sort_spec& sort, int tie) {
  auto keys = sort.keys();
  if (std::none_of(keys.begin(), keys.end(), [](auto& k) { return k.first == "_id"; }))
    keys.emplace_back("_id", tie);
  return keys;
}

/// `keys` as a sort_spec, for sorting in memory.
sort_spec sort_of(const order_keys& keys) {
  object spec;
  for (auto& [path, dir] : keys)
    spec.emplace_back(path, std::int32_t(dir));
  return sort_spec::parse(spec);
}

/// Adds `doc` to the documents kept for the first `keep` in `less` order: a heap whose top
/// is the last of them (every document when `keep` is UINT64_MAX).
template <class Less>
void keep_first(std::vector<object>& kept, std::uint64_t keep, object doc, const Less& less) {
  if (keep == UINT64_MAX) {
    kept.push_back(std::move(doc));
  } else if (kept.size() < keep) {
    kept.push_back(std::move(doc));
    std::push_heap(kept.begin(), kept.end(), less);
  } else if (keep > 0 && less(doc, kept.front())) {
    std::pop_heap(kept.begin(), kept.end(), less);
    kept.back() = std::move(doc);
    std::push_heap(kept.begin(), kept.end(), less);
  }
}

/// Calls `visit` with each document the plan yields, in plan order, until it returns false;
/// returns the entries examined.
template <class Visit>
std::uint64_t scan(connection& c, const std::string& db, const std::string& coll, const plan& p,
                   Visit&& visit) {
  plan_cursor cursor(c, db, coll, p);
  while (auto row = cursor.next())
    if (!visit(std::move(row->second))) break;
  return cursor.examined();
}

/// What a bulk write needs of each document it changes.
enum class keep { document, id_unless_indexed };

/// The id keys and documents matching `q`, read on the writer's connection (in its
/// transaction), collected before any of them is changed. With id_unless_indexed, a
/// collection without secondary indexes keeps only each document's _id (a delete needs no
/// more), so a bulk delete holds ids, not documents.
std::vector<std::pair<std::string, object>> matching(write_txn& t, const std::string& db,
                                                     const std::string& coll, const find_query& q,
                                                     keep what = keep::document) {
  if (!collection_exists(t.conn(), db, coll)) throw_no_collection(coll);
  const auto indexes = t.indexes(db, coll);
  const plan p = choose_plan(planning_filter(q), {{"_id", 1}}, *indexes);
  const bool ids_only = what == keep::id_unless_indexed && indexes->empty();
  plan_cursor cursor(t.conn(), db, coll, p);
  std::vector<std::pair<std::string, object>> out;
  while (auto row = cursor.next()) {
    if (!q.filter.matches(row->second)) continue;
    if (ids_only) {
      value* id = find_field(row->second, "_id");
      row->second = object{{"_id", id ? std::move(*id) : value()}};
    }
    out.push_back(std::move(*row));
  }
  return out;
}

/// A new document as insert() stores it: _id first (generated when absent), a fresh _etag.
struct prepared_insert {
  value id;
  std::string key;
  std::string body;
  object doc;
};

prepared_insert prepare_insert(object doc) {
  value id = object_id::generate();
  if (auto* given = find_field(doc, "_id")) {
    id = std::move(*given);
    erase_field(doc, "_id");
  }
  prepared_insert out;
  out.key = id_key(id);
  doc.reserve(doc.size() + 2); // _id and _etag: one allocation
  set_field(doc, "_etag", object_id::generate());
  doc.insert(doc.begin(), {"_id", id});
  out.body = encode_bson(doc);
  out.id = std::move(id);
  out.doc = std::move(doc);
  return out;
}

} // namespace

std::vector<object> embedded_store::find(const std::string& db, const std::string& coll,
                                         const find_query& q) {
  core::reader r(*core_);
  connection& c = *r;
  read_transaction snapshot(c);
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  if (q.position) *q.position = log_position(c);
  const auto order = complete_order(q.sort, -1);
  const auto indexes = load_indexes(c, db, coll);
  const plan p = choose_plan(planning_filter(q), order, indexes);
  const auto skip = static_cast<std::uint64_t>(std::max<std::int64_t>(q.skip, 0));
  const std::uint64_t page = q.limit < 0 ? UINT64_MAX : static_cast<std::uint64_t>(q.limit);
  const std::uint64_t wanted = page == UINT64_MAX ? UINT64_MAX : skip + page;
  std::vector<object> out;
  std::uint64_t examined = 0;
  if (page > 0 && p.provides_sort) {
    // In plan order: the matches before the page are counted, not kept. When every document
    // matches (no filter, and the index holds every document), they are not even read.
    // Without a projection the page may be written as JSON from the stored BSON
    // (page_json): then no document becomes a value unless the filter needs to look at it.
    json_page* json = q.keys.empty() ? q.page_json : nullptr;
    plan_cursor cursor(c, db, coll, p);
    const bool filtered = !q.filter.matches_all();
    const bool all_match = !filtered && !p.index->spec.sparse && !p.index->partial;
    std::uint64_t skipped = all_match ? cursor.skip(skip) : 0;
    std::uint64_t kept = 0;
    while (kept < page) {
      auto bson = cursor.next_encoded();
      if (!bson) break;
      std::optional<object> doc;
      if (filtered || !json) doc = decode_bson(*bson);
      if (filtered && !q.filter.matches(*doc)) continue;
      if (skipped < skip) {
        ++skipped;
        continue;
      }
      ++kept;
      if (!json) {
        out.push_back(std::move(*doc));
        continue;
      }
      // A document the filter decoded is written from its value, the others from their BSON.
      if (json->count++) json->json += ',';
      if (doc)
        append_json(json->json, *doc);
      else
        append_json_from_bson(json->json, *bson);
    }
    if (json) json->written = true;
    examined = cursor.examined();
  } else if (page > 0) {
    // A sort no index gives: only the documents that can reach the page are kept, in a
    // heap whose top is the last of them (memory of the page, not of the collection).
    const sort_spec complete = sort_of(order);
    auto less = [&](const object& a, const object& b) { return complete.compare(a, b) < 0; };
    examined = scan(c, db, coll, p, [&](object doc) {
      if (q.filter.matches(doc)) keep_first(out, wanted, std::move(doc), less);
      return true;
    });
    std::sort(out.begin(), out.end(), less);
    out.erase(out.begin(),
              out.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(skip, out.size())));
  }
  if (q.limit >= 0 && out.size() > static_cast<std::size_t>(q.limit))
    out.resize(static_cast<std::size_t>(q.limit));
  if (!q.keys.empty())
    for (auto& doc : out)
      doc = q.keys.apply(doc);
  if (q.explain) *q.explain = query_plan{p.index->name, examined, p.bounds, !p.provides_sort};
  return out;
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
                                                 const value& id, std::string* position) {
  core::reader r(*core_);
  if (!position) return point_lookup(*r, db, coll, id);
  read_transaction snapshot(*r);
  *position = log_position(*r);
  return point_lookup(*r, db, coll, id);
}

write_result embedded_store::insert(const std::string& db, const std::string& coll, object doc) {
  // Prepared on the caller's thread so that the writer only executes SQL.
  prepared_insert p = prepare_insert(std::move(doc));
  const object_id etag = find_field(p.doc, "_etag")->get<object_id>();
  change_event ev = make_event(db, coll, operation_type::insert);
  ev.document_key = p.id;
  ev.full_document = std::move(p.doc);
  core_->submit([&](write_txn& t) {
    t.ensure_collection(db, coll);
    if (!t.insert_document(db, coll, p.key, p.body, &*ev.full_document)) throw_duplicate_id();
    t.log(std::move(ev));
  });
  return write_result{std::move(p.id), etag, true};
}

bulk_result embedded_store::insert_many(const std::string& db, const std::string& coll,
                                        std::vector<object> docs) {
  vector_source source(std::move(docs));
  return insert_from(db, coll, source);
}

bulk_result embedded_store::insert_from(const std::string& db, const std::string& coll,
                                        insert_source& docs) {
  // Each document is prepared as it comes and only its encoded form kept: its id key and
  // BSON side by side in one buffer, so that a bulk write holds about its body's size in
  // BSON, not a value per document. The events are made in the writer, and only for a
  // collection someone watches (write_txn::log_insert).
  struct entry {
    std::uint32_t chunk;
    std::uint32_t at;
    std::uint32_t key_size;
    std::uint32_t body_size;
  };
  constexpr std::size_t chunk_bytes = 1 << 20; // filled, never grown: no copy on growth
  std::vector<std::string> chunks;
  std::vector<entry> entries;
  bulk_result r;
  while (auto doc = docs.next()) {
    prepared_insert p = prepare_insert(std::move(*doc));
    const std::size_t size = p.key.size() + p.body.size();
    if (size > UINT32_MAX) throw_bad_request("a document is too large");
    if (chunks.empty() || chunks.back().size() + size > chunks.back().capacity()) {
      chunks.emplace_back();
      chunks.back().reserve(std::max(chunk_bytes, size));
    }
    std::string& chunk = chunks.back();
    entries.push_back(
        {static_cast<std::uint32_t>(chunks.size() - 1), static_cast<std::uint32_t>(chunk.size()),
         static_cast<std::uint32_t>(p.key.size()), static_cast<std::uint32_t>(p.body.size())});
    chunk += p.key;
    chunk += p.body;
    r.ids.push_back(std::move(p.id));
  }
  core_->submit([&](write_txn& t) {
    t.ensure_collection(db, coll);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const entry& e = entries[i];
      const char* at = chunks[e.chunk].data() + e.at;
      const std::string_view key(at, e.key_size);
      const std::string_view body(at + e.key_size, e.body_size);
      if (!t.insert_document(db, coll, key, body, nullptr)) throw_duplicate_id();
      t.log_insert(db, coll, r.ids[i], body);
    }
  });
  r.inserted = static_cast<std::int64_t>(entries.size());
  return r;
}

bulk_result embedded_store::update_many(const std::string& db, const std::string& coll,
                                        const find_query& q, const update_spec& spec) {
  bulk_result r;
  core_->submit([&](write_txn& t) {
    r = bulk_result{};
    for (auto& [key, before] : matching(t, db, coll, q)) {
      ++r.matched;
      object doc = before;
      update_description desc;
      spec.apply(doc, &desc);
      const value* old_id = find_field(before, "_id");
      const value* new_id = find_field(doc, "_id");
      if (!new_id || !old_id || compare_values(*new_id, *old_id) != 0)
        throw_bad_request("_id cannot be changed");
      if (identical(value(doc), value(before))) continue; // nothing changed
      const object_id etag = object_id::generate();
      set_field(doc, "_etag", etag);
      t.update_document(db, coll, key, before, doc, encode_bson(doc));
      ++r.modified;
      change_event ev = make_event(db, coll, operation_type::update);
      ev.document_key = *old_id;
      set_field(desc.updated_fields, "_etag", etag);
      ev.update = std::move(desc);
      ev.full_document = std::move(doc);
      t.log(std::move(ev));
    }
  });
  return r;
}

bulk_result embedded_store::delete_many(const std::string& db, const std::string& coll,
                                        const find_query& q) {
  bulk_result r;
  core_->submit([&](write_txn& t) {
    r = bulk_result{};
    for (auto& [key, before] : matching(t, db, coll, q, keep::id_unless_indexed)) {
      t.delete_document(db, coll, key, before);
      ++r.deleted;
      change_event ev = make_event(db, coll, operation_type::delete_);
      ev.document_key = *find_field(before, "_id");
      t.log(std::move(ev));
    }
  });
  return r;
}

std::vector<object> embedded_store::aggregate(const std::string& db, const std::string& coll,
                                              const aggregation& a,
                                              const aggregation_limits& limits) {
  core::reader r(*core_);
  connection& c = *r;
  read_transaction snapshot(c);
  if (!collection_exists(c, db, coll)) throw_no_collection(coll);
  // The leading $match, $sort, $skip and $limit run here, with an index when one fits; the
  // rest reads the documents one at a time.
  auto& push = a.pushdown();
  find_query q;
  q.filter_doc = push.filter;
  q.filter = matcher::compile(push.filter);
  q.sort = sort_spec::parse(push.sort);
  // Natural order is _id order: equal sort keys stay in it.
  const auto order = complete_order(q.sort, 1);
  const auto indexes = load_indexes(c, db, coll);
  const plan p = choose_plan(q.filter_doc, order, indexes);
  const auto skip = static_cast<std::uint64_t>(std::max<std::int64_t>(push.skip, 0));
  const std::uint64_t take =
      push.limit ? static_cast<std::uint64_t>(std::max<std::int64_t>(*push.limit, 0)) : UINT64_MAX;
  if (p.provides_sort) {
    plan_cursor cursor(c, db, coll, p);
    std::uint64_t skipped = 0, taken = 0;
    object current;
    return a.run_after_pushdown(
        [&]() -> const object* {
          while (taken < take) {
            auto row = cursor.next();
            if (!row) return nullptr;
            if (!q.filter.matches(row->second)) continue;
            if (skipped < skip) {
              ++skipped;
              continue;
            }
            ++taken;
            current = std::move(row->second);
            return &current;
          }
          return nullptr;
        },
        limits);
  }
  // A sort no index gives: buffered, within the aggregation's bound. With a $limit after
  // it only the documents that can reach the limit are kept (as MongoDB coalesces $sort and
  // $limit): a heap whose top is the last of them.
  const sort_spec complete = sort_of(order);
  auto before = [&](const object& x, const object& y) { return complete.compare(x, y) < 0; };
  const std::uint64_t keep =
      take == UINT64_MAX || skip > UINT64_MAX - take ? UINT64_MAX : skip + take;
  std::vector<object> sorted;
  scan(c, db, coll, p, [&](object doc) {
    if (!q.filter.matches(doc)) return true;
    keep_first(sorted, keep, std::move(doc), before);
    if (sorted.size() > limits.max_documents)
      throw api_error(400, "$sort exceeded the limit of " + std::to_string(limits.max_documents) +
                               " documents (aggregation_max_documents)");
    return true;
  });
  std::sort(sorted.begin(), sorted.end(), before);
  std::size_t next = std::min<std::uint64_t>(skip, sorted.size());
  std::uint64_t taken = 0;
  return a.run_after_pushdown(
      [&]() -> const object* {
        if (next >= sorted.size() || taken >= take) return nullptr;
        ++taken;
        return &sorted[next++];
      },
      limits);
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
      if (mode == write_mode::insert) throw_duplicate_id();
      check_if_match(if_match, *existing);
      t.update_document(db, coll, key, *existing, doc, body);
    } else {
      if (mode == write_mode::update) {
        if (!t.get_collection(db, coll)) throw_no_collection(coll);
        throw_no_document();
      }
      if (if_match) throw_etag_mismatch(std::nullopt);
      t.ensure_collection(db, coll);
      t.insert_document(db, coll, key, body, &doc);
    }
    created = !existing;
    change_event ev =
        make_event(db, coll, existing ? operation_type::replace : operation_type::insert);
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
      if (mode == write_mode::insert) throw_duplicate_id();
      check_if_match(if_match, *existing);
      doc = *existing;
    } else {
      if (mode == write_mode::update) {
        if (!t.get_collection(db, coll)) throw_no_collection(coll);
        throw_no_document();
      }
      if (if_match) throw_etag_mismatch(std::nullopt);
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
      t.insert_document(db, coll, key, body, &doc);
    }
    created = !existing;
    change_event ev =
        make_event(db, coll, existing ? operation_type::update : operation_type::insert);
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
    change_event ev = make_event(db, coll, operation_type::delete_);
    ev.document_key = id;
    t.log(std::move(ev));
  });
}

} // namespace rheo::sqlite
