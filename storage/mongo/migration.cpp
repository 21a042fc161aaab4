#include "storage/mongo/migration.hpp"

#include "storage/document/index_key.hpp"
#include "storage/mongo/client.hpp"
#include "storage/mongo/metadata_cache.hpp"

#include <mongoc/mongoc.h>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace rheo {

using namespace mongo;

namespace {

constexpr std::size_t max_batch_bytes = 8 << 20;
// _ids per `_id $in` filter (checking an import's _ids, deleting what migrate --delete finds).
constexpr std::size_t id_batch = 1000;

[[noreturn]] void fail(const std::string& what, const bson_error_t& e) {
  throw std::runtime_error(what + ": " + e.message);
}

} // namespace

std::string staging_name(const std::string& coll) {
  std::random_device random;
  std::uniform_int_distribution<std::uint32_t> byte(0, 255);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = coll + std::string(staging_marker);
  for (int i = 0; i < 8; ++i) {
    const std::uint32_t b = byte(random);
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

index_info index_of_spec(const object& spec) {
  index_info info;
  for (auto& [k, v] : spec) {
    if (k == "name" && v.is_string())
      info.name = v.as_string();
    else if (k == "key" && v.is_object())
      info.key = v.as_object();
    else if (k != "v" && k != "ns" && k != "name" && k != "key")
      info.options.emplace_back(k, v);
  }
  return info;
}

struct mongo_copy::driver {
  mongoc_client_t* client = nullptr;
  mongoc_collection_t* coll = nullptr;
  mongoc_bulk_operation_t* bulk = nullptr;

  ~driver() {
    if (bulk) mongoc_bulk_operation_destroy(bulk);
    if (coll) mongoc_collection_destroy(coll);
    if (client) mongoc_client_destroy(client);
  }
};

mongo_copy::mongo_copy(const std::string& uri_string, std::size_t batch_documents)
    : d_(std::make_unique<driver>()), batch_documents_(std::max<std::size_t>(batch_documents, 1)) {
  mongoc_init(); // once per process (the driver guards it)
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(uri_string.c_str(), &error);
  if (!uri) throw std::runtime_error(std::string("invalid MongoDB URI: ") + error.message);
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(uri); h; h = h->next)
    hosts_ += (hosts_.empty() ? "" : ",") + std::string(h->host_and_port);
  if (!mongoc_uri_get_appname(uri)) mongoc_uri_set_appname(uri, "rheo-migrate");
  d_->client = mongoc_client_new_from_uri_with_error(uri, &error);
  mongoc_uri_destroy(uri);
  if (!d_->client) throw std::runtime_error(std::string("invalid MongoDB URI: ") + error.message);
  mongoc_client_set_error_api(d_->client, MONGOC_ERROR_API_VERSION_2);
  mongoc_write_concern_t* wc = mongoc_write_concern_new();
  mongoc_write_concern_set_wmajority(wc, 0);
  mongoc_client_set_write_concern(d_->client, wc);
  mongoc_write_concern_destroy(wc);

  reply_doc reply;
  if (!mongoc_client_command_simple(d_->client, "admin", to_bson(object{{"hello", value(1)}}).get(),
                                    nullptr, &reply.b, &error))
    throw std::runtime_error("cannot connect to MongoDB at " + hosts_ + ": " + error.message);
  const object hello = reply.get();
  const value* set_name = find_field(hello, "setName");
  const value* msg = find_field(hello, "msg");
  if (!(set_name && set_name->is_string()) &&
      !(msg && msg->is_string() && msg->as_string() == "isdbgrid"))
    throw std::runtime_error("MongoDB at " + hosts_ +
                             " is a standalone server: rheo serves a replica set or a sharded "
                             "cluster (change streams need one)");
}

mongo_copy::~mongo_copy() = default;

void mongo_copy::begin(const std::string& db, const std::string& coll, const collection_info& info,
                       const std::vector<index_info>& indexes) {
  start(db, coll, writes::upsert);
  write_properties(db, coll, info);
  create_indexes(db, coll, indexes);
}

void mongo_copy::start(const std::string& db, const std::string& coll, writes how) {
  send(); // nothing should be queued; what is goes where it belongs
  db_ = db;
  coll_ = coll;
  how_ = how;
  written_ = 0;
  queued_ = queued_bytes_ = 0;
  if (d_->coll) mongoc_collection_destroy(d_->coll);
  d_->coll = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
}

void mongo_copy::write_properties(const std::string& db, const std::string& coll,
                                  const collection_info& info) {
  object props{{"_id", value(properties_id(coll))}};
  for (auto& kv : info.metadata)
    if (kv.first != "_id" && kv.first != "_etag") props.push_back(kv);
  props.emplace_back("_etag", value(info.etag == object_id{} ? object_id::generate() : info.etag));
  mongoc_collection_t* p =
      mongoc_client_get_collection(d_->client, db.c_str(), properties_coll.c_str());
  reply_doc reply;
  bson_error_t error;
  const bool ok = mongoc_collection_replace_one(
      p, to_bson(object{{"_id", value(properties_id(coll))}}).get(), to_bson(props).get(),
      to_bson(object{{"upsert", value(true)}}).get(), &reply.b, &error);
  mongoc_collection_destroy(p);
  if (!ok) fail("writing the metadata of " + db + "." + coll, error);
}

void mongo_copy::create_indexes(const std::string& db, const std::string& coll,
                                const std::vector<index_info>& indexes) {
  if (indexes.empty()) return;
  array specs;
  for (auto& ix : indexes) {
    object spec{{"key", value(ix.key)}, {"name", value(ix.name)}};
    for (auto& kv : ix.options)
      spec.push_back(kv);
    specs.push_back(value(std::move(spec)));
  }
  write_command(db, object{{"createIndexes", value(coll)}, {"indexes", value(std::move(specs))}},
                "creating the indexes of " + db + "." + coll);
}

void mongo_copy::write_command(const std::string& db, const object& command,
                               const std::string& what) {
  mongoc_database_t* database = mongoc_client_get_database(d_->client, db.c_str());
  reply_doc reply;
  bson_error_t error;
  const bool ok = mongoc_database_write_command_with_opts(database, to_bson(command).get(), nullptr,
                                                          &reply.b, &error);
  mongoc_database_destroy(database);
  if (!ok) fail(what, error);
}

void mongo_copy::document(std::string_view bytes) {
  bson_t doc;
  if (!bson_init_static(&doc, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))
    throw std::runtime_error("a document of " + db_ + "." + coll_ + " is not BSON");
  if (!d_->bulk) {
    bson_ptr opts = to_bson(object{{"ordered", value(how_ != writes::upsert)}});
    d_->bulk = mongoc_collection_create_bulk_operation_with_opts(d_->coll, opts.get());
  }
  bson_error_t error;
  bool ok;
  if (how_ == writes::insert) {
    static const bson_ptr insert_opts = to_bson(object{{"validate", value(false)}});
    ok = mongoc_bulk_operation_insert_with_opts(d_->bulk, &doc, insert_opts.get(), &error);
  } else {
    bson_iter_t id;
    if (!bson_iter_init_find(&id, &doc, "_id"))
      throw std::runtime_error("a document of " + db_ + "." + coll_ + " has no _id");
    bson_t selector = BSON_INITIALIZER;
    bson_append_iter(&selector, "_id", 3, &id);
    static const bson_ptr replace_opts =
        to_bson(object{{"upsert", value(true)}, {"validate", value(false)}});
    ok = mongoc_bulk_operation_replace_one_with_opts(d_->bulk, &selector, &doc, replace_opts.get(),
                                                     &error);
    bson_destroy(&selector);
  }
  if (!ok) fail("a document of " + db_ + "." + coll_, error);
  ++queued_;
  queued_bytes_ += bytes.size();
  if (queued_ >= batch_documents_ || queued_bytes_ >= max_batch_bytes) flush();
}

void mongo_copy::send() {
  flush();
}

void mongo_copy::flush() {
  if (!d_->bulk) return;
  reply_doc reply;
  bson_error_t error;
  const bool ok = mongoc_bulk_operation_execute(d_->bulk, &reply.b, &error) != 0;
  mongoc_bulk_operation_destroy(d_->bulk);
  d_->bulk = nullptr;
  if (!ok) {
    // An ordered batch stops at its first failure: what it wrote before that is known.
    if (how_ != writes::upsert) {
      const object r = reply.get();
      written_ += static_cast<std::uint64_t>(int_field(r, "nInserted") + int_field(r, "nMatched") +
                                             int_field(r, "nUpserted"));
    }
    queued_ = queued_bytes_ = 0;
    fail("writing documents of " + db_ + "." + coll_, error);
  }
  written_ += queued_;
  queued_ = queued_bytes_ = 0;
}

std::uint64_t mongo_copy::end() {
  flush();
  bson_t filter = BSON_INITIALIZER;
  reply_doc reply;
  bson_error_t error;
  const std::int64_t n =
      mongoc_collection_count_documents(d_->coll, &filter, nullptr, nullptr, &reply.b, &error);
  bson_destroy(&filter);
  if (n < 0) fail("counting the documents of " + db_ + "." + coll_, error);
  return static_cast<std::uint64_t>(n);
}

mongo_copy::presence mongo_copy::probe(const std::string& db, const std::string& coll) {
  presence p;
  p.exists = !list_collections(d_->client, db, coll).empty();
  if (!p.exists) return p;
  mongoc_collection_t* c = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
  cursor_ptr cursor(mongoc_collection_find_with_opts(
      c, to_bson(object{}).get(),
      to_bson(object{{"projection", value(object{{"_id", value(1)}})},
                     {"limit", value(std::int64_t{1})}})
          .get(),
      nullptr));
  mongoc_collection_destroy(c);
  p.holds_documents = !drain(cursor.get(), "reading " + db + "." + coll).empty();
  return p;
}

std::vector<std::size_t> mongo_copy::present(const std::string& db, const std::string& coll,
                                             std::size_t count,
                                             const std::function<value(std::size_t)>& id) {
  mongoc_collection_t* c = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
  const bson_ptr opts = to_bson(object{{"projection", value(object{{"_id", value(1)}})}});
  std::vector<std::size_t> out;
  try {
    for (std::size_t from = 0; from < count; from += id_batch) {
      std::unordered_map<std::string, std::size_t> position;
      array batch;
      for (std::size_t i = from; i < std::min(count, from + id_batch); ++i) {
        batch.push_back(id(i));
        position.emplace(encode_key(batch.back()), i);
      }
      const object filter{{"_id", value(object{{"$in", value(std::move(batch))}})}};
      cursor_ptr cursor(
          mongoc_collection_find_with_opts(c, to_bson(filter).get(), opts.get(), nullptr));
      for (auto& doc : drain(cursor.get(), "reading the _ids of " + db + "." + coll))
        if (const value* found = find_field(doc, "_id"))
          if (auto it = position.find(encode_key(*found)); it != position.end())
            out.push_back(it->second);
    }
  } catch (...) {
    mongoc_collection_destroy(c);
    throw;
  }
  mongoc_collection_destroy(c);
  std::sort(out.begin(), out.end());
  return out;
}

void mongo_copy::rename(const std::string& db, const std::string& from, const std::string& to,
                        bool drop_target) {
  write_command("admin",
                object{{"renameCollection", value(db + "." + from)},
                       {"to", value(db + "." + to)},
                       {"dropTarget", value(drop_target)}},
                "renaming " + db + "." + from + " to " + to);
}

std::string mongo_copy::drop(const std::string& db, const std::string& coll) noexcept {
  mongoc_collection_t* c = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
  bson_error_t error;
  const bool ok = mongoc_collection_drop_with_opts(c, nullptr, &error);
  mongoc_collection_destroy(c);
  if (ok || error.code == err_namespace_not_found) return "";
  return error.message;
}

std::uint64_t mongo_copy::delete_others(const std::function<bool(const value& id)>& held) {
  std::vector<value> others;
  {
    cursor_ptr cursor(mongoc_collection_find_with_opts(
        d_->coll, to_bson(object{}).get(),
        to_bson(object{{"projection", value(object{{"_id", value(1)}})}}).get(), nullptr));
    for (auto& doc : drain(cursor.get(), "reading the _ids of " + db_ + "." + coll_))
      if (const value* id = find_field(doc, "_id"); id && !held(*id)) others.push_back(*id);
  }
  std::uint64_t deleted = 0;
  for (std::size_t from = 0; from < others.size(); from += id_batch) {
    array batch(others.begin() + static_cast<std::ptrdiff_t>(from),
                others.begin() +
                    static_cast<std::ptrdiff_t>(std::min(others.size(), from + id_batch)));
    const object filter{{"_id", value(object{{"$in", value(std::move(batch))}})}};
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_delete_many(d_->coll, to_bson(filter).get(), nullptr, &reply.b, &error))
      fail("deleting documents of " + db_ + "." + coll_, error);
    deleted += static_cast<std::uint64_t>(reply_count(reply.get(), "deletedCount"));
  }
  return deleted;
}

std::vector<std::string> mongo_copy::database_names() {
  bson_error_t error;
  char** names = mongoc_client_get_database_names_with_opts(d_->client, nullptr, &error);
  if (!names) fail("listing the databases", error);
  std::vector<std::string> out;
  for (char** n = names; *n; ++n) {
    const std::string name = *n;
    if (name != "admin" && name != "local" && name != "config") out.push_back(name);
  }
  bson_strfreev(names);
  return out;
}

std::vector<mongo_copy::source_collection> mongo_copy::collections(const std::string& db) {
  std::map<std::string, std::optional<collection_info>> found;
  for (auto& info : list_collections(d_->client, db, std::nullopt)) {
    const value* name = find_field(info, "name");
    const value* type = find_field(info, "type");
    if (!name || !name->is_string() || (type && type->is_string() && type->as_string() == "view"))
      continue;
    const std::string& n = name->as_string();
    if (!hidden_collection(n) && n.find(staging_marker) == std::string::npos) found[n];
  }
  mongoc_collection_t* props =
      mongoc_client_get_collection(d_->client, db.c_str(), properties_coll.c_str());
  cursor_ptr cursor(
      mongoc_collection_find_with_opts(props, to_bson(object{}).get(), nullptr, nullptr));
  mongoc_collection_destroy(props);
  const std::string prefix = properties_coll + ".";
  for (auto& doc : drain(cursor.get(), "reading " + db + "." + properties_coll)) {
    const value* id = find_field(doc, "_id");
    if (!id || !id->is_string() || !id->as_string().starts_with(prefix)) continue;
    const std::string name = id->as_string().substr(prefix.size());
    if (hidden_collection(name)) continue;
    collection_info info;
    info.metadata = metadata_cache::metadata_of(doc);
    if (const value* etag = find_field(doc, "_etag"); etag && etag->is<object_id>())
      info.etag = etag->get<object_id>();
    found[name] = std::move(info);
  }
  std::vector<source_collection> out;
  for (auto& [name, info] : found)
    out.push_back({name, std::move(info)});
  return out;
}

std::vector<index_info> mongo_copy::indexes(const std::string& db, const std::string& coll) {
  mongoc_collection_t* c = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
  cursor_ptr cursor(mongoc_collection_find_indexes_with_opts(c, nullptr));
  mongoc_collection_destroy(c);
  std::vector<index_info> out;
  for (auto& spec : drain(cursor.get(), "listing the indexes of " + db + "." + coll))
    if (index_info info = index_of_spec(spec); info.name != "_id_") out.push_back(std::move(info));
  return out;
}

void mongo_copy::each_document(const std::string& db, const std::string& coll,
                               const std::function<void(std::string_view bson)>& fn) {
  mongoc_collection_t* c = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
  cursor_ptr cursor(mongoc_collection_find_with_opts(
      c, to_bson(object{}).get(), to_bson(object{{"sort", value(object{{"_id", value(1)}})}}).get(),
      nullptr));
  mongoc_collection_destroy(c);
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor.get(), &doc))
    fn(std::string_view(reinterpret_cast<const char*>(bson_get_data(doc)), doc->len));
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error))
    fail("reading the documents of " + db + "." + coll, error);
}

} // namespace rheo
