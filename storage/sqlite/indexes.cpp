#include "storage/sqlite/indexes.hpp"

#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/schema.hpp"

#include <algorithm>
#include <set>

namespace rheo::sqlite {

namespace {

/// The direction of a key pattern's field as MongoDB reads it: any number but 0 (and NaN),
/// its sign deciding. The special index types MongoDB names with a string are not
/// supported here.
int direction_of(const std::string& path, const value& v) {
  if (v.is_number()) {
    const double d = v.as_double();
    if (d > 0) return 1;
    if (d < 0) return -1;
  }
  if (v.is_string()) {
    static constexpr std::string_view types[] = {"text", "hashed", "2d", "2dsphere", "geoHaystack"};
    for (auto type : types)
      if (v.as_string() == type)
        throw_bad_request("index key '" + path + "': index type \"" + std::string(type) +
                          "\" is not supported by the embedded store");
  }
  throw_bad_request("index key '" + path +
                    "' must be a number other than 0 (positive: ascending, negative: "
                    "descending)");
}

bool bool_option(const value& v, const std::string& name) {
  if (!v.is_bool()) throw_bad_request("index option " + name + " must be true or false");
  return v.as_bool();
}

/// Whether a path of `spec` meets an array in `doc` (the index becomes multikey).
bool touches_array(const value& v, const std::vector<std::string>& segments, std::size_t i) {
  if (v.is_array()) return true;
  if (i == segments.size()) return false;
  auto* o = v.get_if<object>();
  if (!o) return false;
  auto* next = find_field(*o, segments[i]);
  return next && touches_array(*next, segments, i + 1);
}

bool touches_array(const object& doc, const index_key_spec& spec) {
  for (auto& f : spec.fields) {
    auto segments = split_field_path(f.path, "empty segment", "$ segment");
    auto* first = find_field(doc, segments.front());
    if (first && touches_array(*first, segments, 1)) return true;
  }
  return false;
}

std::vector<std::string> keys_of(const index_def& def, const object* doc) {
  if (!doc || !def.partial_filter.matches(*doc)) return {};
  return index_keys(*doc, def.spec);
}

void insert_entry(connection& c, const index_def& def, const std::string& key,
                  const std::string& id_key) {
  if (def.unique) {
    const std::string end = prefix_successor(key);
    query q(c, sql_entry_conflict);
    q.int64(1, def.id).blob(2, key).blob(3, end).blob(4, id_key);
    if (q.step()) throw api_error(409, "duplicate key in unique index '" + def.name + "'");
  }
  const std::string entry = entry_key(def, key, id_key);
  query q(c, sql_entry_insert);
  q.int64(1, def.id).blob(2, entry).blob(3, id_key);
  q.step();
}

object stored_spec(const index_def& def) {
  object spec{{"key", value(def.key)}};
  for (auto& [k, v] : def.info().options)
    spec.emplace_back(k, v);
  return spec;
}

index_def decode_index(std::int64_t id, std::string_view name, std::string_view blob, bool ready,
                       bool multikey) {
  object spec = decode_bson(blob);
  object key;
  object options;
  for (auto& [k, v] : spec) {
    if (k == "key" && v.is_object())
      key = v.as_object();
    else
      options.emplace_back(k, v);
  }
  index_def def = parse_index(std::string(name), key, options);
  def.id = id;
  def.ready = ready;
  def.multikey = multikey;
  return def;
}

} // namespace

index_info index_def::info() const {
  index_info out{name, key, {}};
  if (unique) out.options.emplace_back("unique", true);
  if (spec.sparse) out.options.emplace_back("sparse", true);
  if (partial) out.options.emplace_back("partialFilterExpression", value(*partial));
  if (expire_after_seconds) out.options.emplace_back("expireAfterSeconds", *expire_after_seconds);
  return out;
}

const index_def& id_index() {
  static const index_def def = [] {
    index_def d;
    d.name = "_id_";
    d.key = object{{"_id", std::int32_t(1)}};
    d.spec.fields.push_back({"_id", 1});
    d.unique = true;
    return d;
  }();
  return def;
}

index_def parse_index(const std::string& name, const object& key, const object& options) {
  if (name.empty()) throw_bad_request("an index needs a name");
  if (name.front() == '_') throw_bad_request("index names starting with '_' are reserved");
  if (name.size() > 128) throw_bad_request("index name longer than 128 characters");
  if (key.empty()) throw_bad_request("an index needs keys: {\"keys\":{\"field\":1}}");
  index_def def;
  def.name = name;
  def.key = key;
  for (auto& [path, direction] : key) {
    const int dir = direction_of(path, direction);
    for (auto& f : def.spec.fields)
      if (f.path == path) throw_bad_request("index key '" + path + "' given twice");
    def.spec.fields.push_back({path, dir});
  }
  for (auto& [k, v] : options) {
    if (k == "unique") {
      def.unique = bool_option(v, k);
    } else if (k == "sparse") {
      def.spec.sparse = bool_option(v, k);
    } else if (k == "partialFilterExpression") {
      if (!v.is_object()) throw_bad_request("partialFilterExpression must be an object");
      def.partial = v.as_object();
      def.partial_filter = matcher::compile(v.as_object());
    } else if (k == "expireAfterSeconds") {
      if (!v.is_number() || v.as_double() < 0 || v.as_double() != double(v.as_int64()))
        throw_bad_request("expireAfterSeconds must be a non-negative integer");
      def.expire_after_seconds = v.as_int64();
    } else if (k != "name" && k != "background" && k != "v") {
      throw_bad_request("unsupported index option '" + k + "'");
    }
  }
  if (def.partial && def.spec.sparse)
    throw_bad_request("an index cannot be both sparse and partial");
  if (def.expire_after_seconds && def.spec.fields.size() != 1)
    throw_bad_request("expireAfterSeconds needs an index on a single field");
  index_keys(object{}, def.spec); // rejects bad paths
  return def;
}

std::vector<index_def> load_indexes(connection& c, const std::string& db, const std::string& coll) {
  std::vector<index_def> out;
  query q(c, sql_indexes_of);
  q.text(1, db).text(2, coll);
  while (q.step())
    out.push_back(decode_index(q.column_int64(0), q.column_text(1), q.column_blob(2),
                               q.column_int64(3) != 0, q.column_int64(4) != 0));
  return out;
}

std::vector<ttl_index> load_ttl_indexes(connection& c) {
  std::vector<ttl_index> out;
  query q(c, sql_indexes_all);
  while (q.step()) {
    auto def = decode_index(q.column_int64(2), q.column_text(3), q.column_blob(4),
                            q.column_int64(5) != 0, q.column_int64(6) != 0);
    if (def.expire_after_seconds && def.ready)
      out.push_back({std::string(q.column_text(0)), std::string(q.column_text(1)), std::move(def)});
  }
  return out;
}

std::int64_t insert_index(connection& c, const std::string& db, const std::string& coll,
                          const index_def& def) {
  const std::string blob = encode_bson(stored_spec(def));
  query q(c, sql_index_insert);
  q.text(1, db).text(2, coll).text(3, def.name).blob(4, blob);
  if (!q.step_unique()) throw api_error(409, "index '" + def.name + "' already exists");
  return sqlite3_last_insert_rowid(c.handle());
}

void set_index_ready(connection& c, std::int64_t id) {
  query q(c, sql_index_ready);
  q.int64(1, id);
  q.step();
}

void delete_index(connection& c, std::int64_t id) {
  {
    query q(c, sql_index_entries_delete_all);
    q.int64(1, id);
    q.step();
  }
  query q(c, sql_index_delete);
  q.int64(1, id);
  q.step();
}

void delete_collection_indexes(connection& c, const std::string& db, const std::string& coll) {
  for (auto& def : load_indexes(c, db, coll))
    delete_index(c, def.id);
}

bool update_entries(connection& c, const std::vector<index_def>& indexes, const std::string& id_key,
                    const object* before, const object* after) {
  bool catalog_changed = false;
  for (auto& def : indexes) {
    const auto old_keys = keys_of(def, before);
    const auto new_keys = keys_of(def, after);
    // Both are sorted and without duplicates.
    std::vector<std::string> removed, added;
    std::set_difference(old_keys.begin(), old_keys.end(), new_keys.begin(), new_keys.end(),
                        std::back_inserter(removed));
    std::set_difference(new_keys.begin(), new_keys.end(), old_keys.begin(), old_keys.end(),
                        std::back_inserter(added));
    for (auto& k : removed) {
      const std::string entry = entry_key(def, k, id_key);
      query q(c, sql_entry_delete);
      q.int64(1, def.id).blob(2, entry);
      q.step();
    }
    for (auto& k : added)
      insert_entry(c, def, k, id_key);
    if (!def.multikey && after && !new_keys.empty() && touches_array(*after, def.spec)) {
      query q(c, sql_index_multikey);
      q.int64(1, def.id);
      q.step();
      catalog_changed = true;
    }
  }
  return catalog_changed;
}

std::optional<std::string> build_index_chunk(connection& c, const std::string& db,
                                             const std::string& coll, const index_def& def,
                                             const std::string& after_id_key, std::size_t limit) {
  std::optional<std::string> last;
  query q(c, sql_docs_chunk);
  q.text(1, db).text(2, coll).blob(3, after_id_key).int64(4, static_cast<std::int64_t>(limit));
  const std::vector<index_def> one{def};
  while (q.step()) {
    std::string id_key(q.column_blob(0));
    const object doc = decode_bson(q.column_blob(1));
    // Entries a concurrent write made already are replaced by the same ones.
    update_entries(c, one, id_key, nullptr, &doc);
    last = std::move(id_key);
  }
  return last;
}

std::string invert_bytes(std::string key) {
  for (auto& b : key)
    b = static_cast<char>(~static_cast<unsigned char>(b));
  return key;
}

std::string prefix_successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF)
    prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::string entry_key(const index_def& def, const std::string& key, const std::string& id_key) {
  return key + (def.spec.fields.back().direction < 0 ? invert_bytes(id_key) : id_key);
}

} // namespace rheo::sqlite
