#include "storage/mongo/client.hpp"

#include "storage/document/bson_codec.hpp"

#include <algorithm>

namespace rheo::mongo {

namespace {

// Server errors caused by the request (a bad filter, sort, projection or update, an
// aggregation holding more than MongoDB allows), not by the deployment: reported as 400
// with the server's message.
constexpr std::uint32_t client_errors[] = {
    2,     // BadValue
    4,     // NoSuchKey
    9,     // FailedToParse
    14,    // TypeMismatch
    16,    // InvalidLength
    17,    // ProtocolError
    28,    // PathNotViable
    40,    // ConflictingUpdateOperators
    51,    // DollarPrefixedFieldName (old)
    52,    // DollarPrefixedFieldName
    53,    // InvalidIdField
    54,    // NotSingleValueField
    55,    // InvalidDBRef
    56,    // EmptyFieldName
    57,    // DottedFieldName
    66,    // ImmutableField
    72,    // InvalidOptions
    292,   // QueryExceededMemoryLimitNoDiskUseAllowed (an aggregation's $group or $sort)
    2010,  // BadRegex (some versions)
    16819, // $sort exceeded its memory limit (before 4.4)
    16945, // $group exceeded its memory limit (before 4.4)
    17276, // legacy projection errors
    31253, // projection mix of inclusion and exclusion
    31254, // projection mix of inclusion and exclusion
    51091, // invalid regular expression
};

} // namespace

bson_ptr to_bson(const object& o) {
  const std::string bytes = encode_bson(o);
  bson_t* b = bson_new_from_data(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (!b) throw std::runtime_error("cannot encode a document as BSON");
  return bson_ptr(b);
}

object from_bson(const bson_t* b) {
  return decode_bson({reinterpret_cast<const char*>(bson_get_data(b)), b->len});
}

std::int64_t int_field(const object& o, std::string_view key) {
  const value* v = find_field(o, key);
  return v && v->is_number() ? v->as_int64() : 0;
}

bool is_history_lost(const bson_error_t& e) {
  if (e.domain != MONGOC_ERROR_SERVER && e.domain != MONGOC_ERROR_QUERY) return false;
  return e.code == err_change_stream_history_lost || e.code == err_change_stream_fatal ||
         e.code == err_capped_position_lost || e.code == err_invalid_resume_token;
}

[[noreturn]] void throw_mongo(const bson_error_t& e, std::string_view what) {
  std::string msg = std::string(what) + ": " + e.message;
  if (e.domain == MONGOC_ERROR_SERVER_SELECTION || e.domain == MONGOC_ERROR_STREAM)
    throw api_error(503, "MongoDB unavailable: " + msg);
  if (e.code == err_duplicate_key) throw_duplicate_id();
  if (e.domain == MONGOC_ERROR_SERVER || e.domain == MONGOC_ERROR_COLLECTION ||
      e.domain == MONGOC_ERROR_QUERY || e.domain == MONGOC_ERROR_WRITE_CONCERN)
    if (std::find(std::begin(client_errors), std::end(client_errors), e.code) !=
        std::end(client_errors))
      throw api_error(400, e.message);
  throw api_error(500, "MongoDB error: " + msg);
}

std::string properties_id(const std::string& coll) {
  return properties_coll + "." + coll;
}

bool hidden_collection(std::string_view name) {
  return name.empty() || name.front() == '_' || name.starts_with("system.");
}

object update_document_of(const update_spec& spec, const object_id& etag) {
  object update;
  for (auto& op : spec.ops()) {
    if (op.path == "_etag" || op.path.starts_with("_etag.")) continue;
    value* fields = find_field(update, op.name);
    if (!fields) {
      update.emplace_back(op.name, value(object{}));
      fields = &update.back().second;
    }
    set_field(fields->as_object(), op.path, op.arg);
  }
  value* set = find_field(update, "$set");
  if (!set) {
    update.emplace_back("$set", value(object{}));
    set = &update.back().second;
  }
  set_field(set->as_object(), "_etag", etag);
  return update;
}

std::int64_t reply_count(const object& reply, std::string_view field) {
  const value* v = find_field(reply, field);
  return v && v->is_number() ? v->as_int64() : 0;
}

void run_command(pooled_client& c, const std::string& db, const object& command,
                 const std::string& what) {
  bson_error_t error;
  reply_doc reply;
  if (!mongoc_client_write_command_with_opts(c.get(), db.c_str(), to_bson(command).get(), nullptr,
                                             &reply.b, &error))
    throw_mongo(error, what);
}

collection_ptr collection_of(const pooled_client& c, const std::string& db,
                             const std::string& coll) {
  return collection_ptr(mongoc_client_get_collection(c.get(), db.c_str(), coll.c_str()));
}

std::vector<object> drain(mongoc_cursor_t* cursor, std::string_view what) {
  std::vector<object> out;
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc))
    out.push_back(from_bson(doc));
  bson_error_t error;
  if (mongoc_cursor_error(cursor, &error)) throw_mongo(error, what);
  return out;
}

std::vector<object> list_collections(mongoc_client_t* c, const std::string& db,
                                     const std::optional<std::string>& name) {
  mongoc_database_t* database = mongoc_client_get_database(c, db.c_str());
  object opts{{"nameOnly", value(true)}};
  if (name) opts.emplace_back("filter", value(object{{"name", value(*name)}}));
  cursor_ptr cursor(mongoc_database_find_collections_with_opts(database, to_bson(opts).get()));
  mongoc_database_destroy(database);
  return drain(cursor.get(), "listing the collections of " + db);
}

} // namespace rheo::mongo
