#include "storage/mongo/migration.hpp"

#include "storage/mongo/client.hpp"

#include <mongoc/mongoc.h>

#include <stdexcept>

namespace rheo {

using namespace mongo;

namespace {

constexpr std::size_t max_batch_bytes = 8 << 20;

[[noreturn]] void fail(const std::string& what, const bson_error_t& e) {
  throw std::runtime_error(what + ": " + e.message);
}

} // namespace

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
  db_ = db;
  coll_ = coll;
  written_ = 0;
  queued_ = queued_bytes_ = 0;
  if (d_->coll) mongoc_collection_destroy(d_->coll);
  d_->coll = mongoc_client_get_collection(d_->client, db.c_str(), coll.c_str());
  const std::string name = db + "." + coll;
  bson_error_t error;
  {
    object props{{"_id", value(properties_id(coll))}};
    for (auto& kv : info.metadata)
      if (kv.first != "_id" && kv.first != "_etag") props.push_back(kv);
    props.emplace_back("_etag",
                       value(info.etag == object_id{} ? object_id::generate() : info.etag));
    mongoc_collection_t* p =
        mongoc_client_get_collection(d_->client, db.c_str(), properties_coll.c_str());
    reply_doc reply;
    const bool ok = mongoc_collection_replace_one(
        p, to_bson(object{{"_id", value(properties_id(coll))}}).get(), to_bson(props).get(),
        to_bson(object{{"upsert", value(true)}}).get(), &reply.b, &error);
    mongoc_collection_destroy(p);
    if (!ok) fail("writing the metadata of " + name, error);
  }
  if (!indexes.empty()) {
    array specs;
    for (auto& ix : indexes) {
      object spec{{"key", value(ix.key)}, {"name", value(ix.name)}};
      for (auto& kv : ix.options)
        spec.push_back(kv);
      specs.push_back(value(std::move(spec)));
    }
    mongoc_database_t* database = mongoc_client_get_database(d_->client, db.c_str());
    reply_doc reply;
    const bool ok = mongoc_database_write_command_with_opts(
        database,
        to_bson(object{{"createIndexes", value(coll)}, {"indexes", value(std::move(specs))}}).get(),
        nullptr, &reply.b, &error);
    mongoc_database_destroy(database);
    if (!ok) fail("creating the indexes of " + name, error);
  }
}

void mongo_copy::document(std::string_view bytes) {
  bson_t doc;
  if (!bson_init_static(&doc, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))
    throw std::runtime_error("a document of " + db_ + "." + coll_ + " is not BSON");
  bson_iter_t id;
  if (!bson_iter_init_find(&id, &doc, "_id"))
    throw std::runtime_error("a document of " + db_ + "." + coll_ + " has no _id");
  bson_t selector = BSON_INITIALIZER;
  bson_append_iter(&selector, "_id", 3, &id);
  if (!d_->bulk) {
    bson_ptr opts = to_bson(object{{"ordered", value(false)}});
    d_->bulk = mongoc_collection_create_bulk_operation_with_opts(d_->coll, opts.get());
  }
  static const bson_ptr replace_opts =
      to_bson(object{{"upsert", value(true)}, {"validate", value(false)}});
  bson_error_t error;
  const bool ok = mongoc_bulk_operation_replace_one_with_opts(d_->bulk, &selector, &doc,
                                                              replace_opts.get(), &error);
  bson_destroy(&selector);
  if (!ok) fail("a document of " + db_ + "." + coll_, error);
  ++queued_;
  queued_bytes_ += bytes.size();
  if (queued_ >= batch_documents_ || queued_bytes_ >= max_batch_bytes) flush();
}

void mongo_copy::flush() {
  if (!d_->bulk) return;
  reply_doc reply;
  bson_error_t error;
  const bool ok = mongoc_bulk_operation_execute(d_->bulk, &reply.b, &error) != 0;
  mongoc_bulk_operation_destroy(d_->bulk);
  d_->bulk = nullptr;
  if (!ok) fail("writing documents of " + db_ + "." + coll_, error);
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

} // namespace rheo
