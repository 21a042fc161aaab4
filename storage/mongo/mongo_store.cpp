#include "storage/mongo/mongo_store.hpp"

#include "config/log.hpp"
#include "storage/document/json.hpp"
#include "storage/mongo/client.hpp"
#include "storage/mongo/feed.hpp"
#include "storage/mongo/metadata_cache.hpp"
#include "storage/mongo/migration.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>

namespace rheo {

namespace {

using namespace mongo;

std::once_flag mongoc_init_once;

// ---- snapshot positions ----

/// The causally consistent session one read runs in when its position is wanted: the
/// server's operationTime for the read, kept by the session, becomes a snapshot token (see
/// mongo_store.hpp). Without sessions (none wanted, or a deployment without them) the read
/// runs outside one and has no position. Thread-safety: used by the thread that holds the
/// pooled client it belongs to; destroyed after the read's cursor and before that client
/// returns to the pool.
class read_session {
public:
  read_session(pooled_client& c, bool wanted) {
    if (!wanted) return;
    mongoc_session_opt_t* opts = mongoc_session_opts_new();
    mongoc_session_opts_set_causal_consistency(opts, true);
    bson_error_t error;
    session_ = mongoc_client_start_session(c.get(), opts, &error);
    mongoc_session_opts_destroy(opts);
    if (session_) return;
    // Only "the deployment has no sessions" is answered without a position; an unreachable
    // server fails the read here rather than once more in the read itself.
    if (error.domain != MONGOC_ERROR_CLIENT || error.code != MONGOC_ERROR_CLIENT_SESSION_FAILURE)
      throw_mongo(error, "starting a session");
    log::debug(std::string("read without a position: ") + error.message);
  }
  ~read_session() {
    if (session_) mongoc_client_session_destroy(session_);
  }
  read_session(const read_session&) = delete;
  read_session& operator=(const read_session&) = delete;

  /// The read's options as BSON, with the session's id when there is a session.
  bson_ptr options(const object& opts) const {
    bson_ptr b = to_bson(opts);
    bson_error_t error;
    if (session_ && !mongoc_client_session_append(session_, b.get(), &error))
      throw_mongo(error, "joining a session");
    return b;
  }

  /// The snapshot token of what the read returned, or "" when the server gave no
  /// operationTime (or there is no session).
  std::string position() const {
    if (!session_) return {};
    std::uint32_t t = 0, i = 0;
    mongoc_client_session_get_operation_time(session_, &t, &i);
    if (t == 0 && i == 0) return {};
    return snapshot_token(t, i);
  }

private:
  mongoc_client_session_t* session_ = nullptr;
};

// ---- snapshot reads and explain ----

/// Whether the primary takes snapshot reads outside transactions (MongoDB 5.0 and later:
/// wire version 13).
bool takes_snapshot_reads(pooled_client& c) {
  bson_error_t error;
  mongoc_server_description_t* sd = mongoc_client_select_server(c.get(), false, nullptr, &error);
  if (!sd) return false;
  std::int32_t wire = 0;
  bson_iter_t it;
  if (bson_iter_init_find(&it, mongoc_server_description_hello_response(sd), "maxWireVersion") &&
      BSON_ITER_HOLDS_INT32(&it))
    wire = bson_iter_int32(&it);
  mongoc_server_description_destroy(sd);
  return wire >= 13;
}

/// The find command of `filter` with `opts` (sort, projection, skip, limit).
object find_command(const std::string& coll, const object& filter, const object& opts) {
  object cmd{{"find", value(coll)}, {"filter", value(filter)}};
  for (auto& [k, v] : opts)
    cmd.emplace_back(k, v);
  return cmd;
}

/// Runs `cmd` (a read command) on `target`; throws on failure. The reply is `reply`'s.
void read_command(mongoc_collection_t* target, const object& cmd, bson_t* reply,
                  const std::string& what) {
  bson_error_t error;
  if (!mongoc_collection_read_command_with_opts(target, to_bson(cmd).get(), nullptr, nullptr, reply,
                                                &error))
    throw_mongo(error, what);
}

/// A find at one snapshot (read concern "snapshot"); `position` receives the snapshot's
/// token (the reply's atClusterTime): every write up to it is in the answer, none after.
std::vector<object> snapshot_find(pooled_client& c, mongoc_collection_t* target,
                                  const std::string& coll, const object& filter, const object& opts,
                                  std::string& position) {
  object cmd = find_command(coll, filter, opts);
  cmd.emplace_back("readConcern", value(object{{"level", value("snapshot")}}));
  bson_t* reply = bson_new();
  try {
    read_command(target, cmd, reply, "find in " + coll);
  } catch (...) {
    bson_destroy(reply);
    throw;
  }
  const object answer = from_bson(reply);
  if (const value* cur = find_field(answer, "cursor"); cur && cur->is_object())
    if (const value* at = find_field(cur->as_object(), "atClusterTime");
        at && at->is<timestamp_value>())
      position = snapshot_token(at->get<timestamp_value>().t, at->get<timestamp_value>().i);
  // The cursor takes the reply (and destroys it): its later batches come from the snapshot.
  cursor_ptr cursor(mongoc_cursor_new_from_command_reply_with_opts(c.get(), reply, nullptr));
  return drain(cursor.get(), "find in " + coll);
}

/// Walks a MongoDB plan stage and those under it into `plan`.
void read_plan_stage(const object& stage, query_plan& plan) {
  const value* name = find_field(stage, "stage");
  const std::string kind = name && name->is_string() ? name->as_string() : std::string();
  if (kind == "IXSCAN") {
    const value* index = find_field(stage, "indexName");
    plan.index = index && index->is_string() ? index->as_string() : "?";
    std::string bounds;
    if (const value* b = find_field(stage, "indexBounds")) bounds = to_json(*b);
    const value* dir = find_field(stage, "direction");
    plan.bounds = plan.index + ": " + (bounds.empty() ? "all" : bounds) +
                  (dir && dir->is_string() && dir->as_string() == "backward" ? ", backward" : "");
  } else if (kind == "COLLSCAN" && plan.index.empty()) {
    plan.index = "COLLSCAN";
    plan.bounds = "collection scan";
  } else if (kind == "SORT") {
    plan.in_memory_sort = true;
  }
  if (const value* in = find_field(stage, "inputStage"); in && in->is_object())
    read_plan_stage(in->as_object(), plan);
  if (const value* ins = find_field(stage, "inputStages"); ins && ins->is_array())
    for (auto& in : ins->as_array())
      if (in.is_object()) read_plan_stage(in.as_object(), plan);
}

/// How MongoDB runs the find: its `explain` command (verbosity executionStats) read into a
/// query_plan: the index scanned ("COLLSCAN" for none), what was examined (index keys or
/// documents, whichever is more), the bounds, and whether a SORT stage sorts in memory.
void explain_find(mongoc_collection_t* target, const std::string& coll, const object& filter,
                  const object& opts, query_plan& plan) {
  object cmd{{"explain", value(find_command(coll, filter, opts))},
             {"verbosity", value("executionStats")}};
  reply_doc reply;
  read_command(target, cmd, &reply.b, "explaining a find in " + coll);
  const object answer = reply.get();
  plan = query_plan{};
  if (const value* qp = find_field(answer, "queryPlanner"); qp && qp->is_object()) {
    const value* winning = find_field(qp->as_object(), "winningPlan");
    if (winning && winning->is_object()) {
      // Slot-based plans (MongoDB 6+) put the classic tree under queryPlan.
      const value* tree = find_field(winning->as_object(), "queryPlan");
      read_plan_stage(tree && tree->is_object() ? tree->as_object() : winning->as_object(), plan);
    }
  }
  if (plan.index.empty()) plan.index = "?";
  if (const value* st = find_field(answer, "executionStats"); st && st->is_object()) {
    auto number = [&](const char* field) -> std::uint64_t {
      const value* v = find_field(st->as_object(), field);
      return v && v->is_number() ? static_cast<std::uint64_t>(v->as_double()) : 0;
    };
    plan.examined = std::max(number("totalKeysExamined"), number("totalDocsExamined"));
  }
}

// ---- the store ----

/// Thread-safety: all methods may be called concurrently from any thread (each call pops
/// its own pooled client).
class mongo_store final : public store {
public:
  mongo_store(std::shared_ptr<mongo_core> core, bool metadata_cache)
      : core_(std::move(core)), cache_(core_, metadata_cache) {}
  ~mongo_store() override { close(); }

  std::vector<std::string> collection_names(const std::string& db) override {
    pooled_client c = client();
    std::set<std::string> names;
    for (auto& info : list_collections(c, db, std::nullopt)) {
      const value* name = find_field(info, "name");
      if (name && name->is_string() && !hidden_collection(name->as_string()))
        names.insert(name->as_string());
    }
    auto props = collection_of(c, db, properties_coll);
    bson_t filter;
    bson_init(&filter);
    cursor_ptr cursor(mongoc_collection_find_with_opts(
        props.get(), &filter, to_bson(object{{"projection", value(object{{"_id", 1}})}}).get(),
        nullptr));
    bson_destroy(&filter);
    const std::string prefix = properties_coll + ".";
    for (auto& doc : drain(cursor.get(), "reading _properties")) {
      const value* id = find_field(doc, "_id");
      if (id && id->is_string() && id->as_string().starts_with(prefix)) {
        std::string name = id->as_string().substr(prefix.size());
        if (!hidden_collection(name)) names.insert(std::move(name));
      }
    }
    return {names.begin(), names.end()};
  }

  std::optional<collection_info> collection(const std::string& db,
                                            const std::string& coll) override {
    pooled_client c = client();
    return read_collection(c, db, coll);
  }

  bool put_collection(const std::string& db, const std::string& coll, object metadata,
                      const std::optional<std::string>& if_match) override {
    erase_field(metadata, "_id");
    erase_field(metadata, "_etag");
    pooled_client c = client();
    auto existing = read_collection(c, db, coll);
    if (if_match && !existing) throw_collection_etag_mismatch(std::nullopt);
    if (if_match && !etag_matches(*if_match, existing->etag))
      throw_collection_etag_mismatch(existing->etag);
    if (!existing) create_collection(c, db, coll);
    write_properties(c, db, coll, metadata, existing);
    publish_meta(db, coll, metadata);
    return !existing;
  }

  void patch_collection(const std::string& db, const std::string& coll, object metadata,
                        const std::optional<std::string>& if_match) override {
    erase_field(metadata, "_id");
    erase_field(metadata, "_etag");
    pooled_client c = client();
    auto existing = read_collection(c, db, coll);
    if (!existing) throw_no_collection(coll);
    if (if_match && !etag_matches(*if_match, existing->etag))
      throw_collection_etag_mismatch(existing->etag);
    object merged = existing->metadata;
    for (auto& [k, v] : metadata)
      set_field(merged, k, v);
    write_properties(c, db, coll, merged, existing);
    publish_meta(db, coll, merged);
  }

  void drop_collection(const std::string& db, const std::string& coll,
                       const std::string& etag) override {
    pooled_client c = client();
    auto existing = read_collection(c, db, coll);
    if (!existing) throw_no_collection(coll);
    if (!etag_matches(etag, existing->etag)) throw_collection_etag_mismatch(existing->etag);
    bson_error_t error;
    auto target = collection_of(c, db, coll);
    if (!mongoc_collection_drop_with_opts(target.get(), nullptr, &error) &&
        error.code != err_namespace_not_found)
      throw_mongo(error, "dropping " + coll);
    auto props = collection_of(c, db, properties_coll);
    reply_doc reply;
    cache_.writing(db, coll, "");
    if (!mongoc_collection_delete_one(props.get(),
                                      to_bson(object{{"_id", value(properties_id(coll))}}).get(),
                                      nullptr, &reply.b, &error)) {
      cache_.forget(db, coll);
      throw_mongo(error, "deleting the metadata of " + coll);
    }
    cache_.written(db, coll, "", std::nullopt);
  }

  std::vector<object> find(const std::string& db, const std::string& coll,
                           const find_query& q) override {
    pooled_client c = client();
    // A caller that gave only the compiled matcher: filter, skip and limit in rheo.
    const bool local_filter = q.filter_doc.empty() && !q.filter.matches_all();
    // A position: at one snapshot where the server can (5.0+), else the operation time of
    // a causally consistent session's read (which can miss a write committing during it).
    const bool snapshot =
        q.position != nullptr && q.limit != 0 && !local_filter && takes_snapshot_reads(c);
    read_session session(c, q.position != nullptr && q.limit != 0 && !snapshot);
    std::vector<object> out;
    std::string snapshot_position;
    if (q.limit != 0) {
      object sort = q.sort_doc;
      if (sort.empty())
        for (auto& [path, dir] : q.sort.keys())
          sort.emplace_back(path, value(dir));
      if (sort.empty()) sort.emplace_back("_id", value(-1));
      object opts{{"sort", value(std::move(sort))}};
      if (!q.keys_doc.empty() && !local_filter) opts.emplace_back("projection", value(q.keys_doc));
      if (!local_filter) {
        if (q.skip > 0) opts.emplace_back("skip", value(q.skip));
        if (q.limit > 0) opts.emplace_back("limit", value(q.limit));
      }
      auto target = collection_of(c, db, coll);
      const object& filter = local_filter ? object{} : q.filter_doc;
      if (snapshot) {
        out = snapshot_find(c, target.get(), coll, filter, opts, snapshot_position);
      } else {
        cursor_ptr cursor(mongoc_collection_find_with_opts(target.get(), to_bson(filter).get(),
                                                           session.options(opts).get(), nullptr));
        out = drain(cursor.get(), "find in " + coll);
      }
      if (q.explain && !q.explain_if_free)
        explain_find(target.get(), coll, filter, opts, *q.explain);
      if (local_filter) {
        std::vector<object> kept;
        std::int64_t skipped = 0;
        for (auto& doc : out) {
          if (!q.filter.matches(doc)) continue;
          if (skipped < q.skip) {
            ++skipped;
            continue;
          }
          kept.push_back(std::move(doc));
          if (q.limit > 0 && static_cast<std::int64_t>(kept.size()) >= q.limit) break;
        }
        out = std::move(kept);
      }
      if (q.keys_doc.empty() || local_filter)
        if (!q.keys.empty())
          for (auto& doc : out)
            doc = q.keys.apply(doc);
    }
    if (out.empty() && !exists(c, db, coll)) throw_no_collection(coll);
    if (q.position) *q.position = snapshot ? snapshot_position : session.position();
    return out;
  }

  std::int64_t count_query(const std::string& db, const std::string& coll,
                           const find_query& q) override {
    if (q.filter_doc.empty() && !q.filter.matches_all()) {
      // Only a compiled matcher: count in rheo.
      find_query all;
      all.filter = q.filter;
      all.limit = -1;
      return static_cast<std::int64_t>(find(db, coll, all).size());
    }
    pooled_client c = client();
    std::int64_t n = 0;
    auto target = collection_of(c, db, coll);
    bson_error_t error;
    reply_doc reply;
    n = mongoc_collection_count_documents(target.get(), to_bson(q.filter_doc).get(), nullptr,
                                          nullptr, &reply.b, &error);
    if (n < 0) throw_mongo(error, "counting in " + coll);
    if (n == 0 && !exists(c, db, coll)) throw_no_collection(coll);
    return n;
  }

  std::optional<object> find_by_id(const std::string& db, const std::string& coll, const value& id,
                                   std::string* position) override {
    pooled_client c = client();
    return lookup(c, db, coll, id, position);
  }

  write_result insert(const std::string& db, const std::string& coll, object doc) override {
    value id = object_id::generate();
    if (auto* given = find_field(doc, "_id")) {
      id = std::move(*given);
      erase_field(doc, "_id");
    }
    if (id.is_array()) throw_bad_request("_id cannot be an array");
    const object_id etag = object_id::generate();
    set_field(doc, "_etag", etag);
    doc.insert(doc.begin(), {"_id", id});
    pooled_client c = client();
    insert_document(c, db, coll, doc);
    return write_result{std::move(id), etag, true};
  }

  write_result replace(const std::string& db, const std::string& coll, const value& id, object doc,
                       write_mode mode, const std::optional<std::string>& if_match) override {
    strip_matching_id(doc, id);
    if (id.is_array()) throw_bad_request("_id cannot be an array");
    const object_id etag = object_id::generate();
    set_field(doc, "_etag", etag);
    doc.insert(doc.begin(), {"_id", id});
    pooled_client c = client();
    if (mode == write_mode::insert) {
      if (if_match) throw_etag_mismatch(std::nullopt);
      insert_document(c, db, coll, doc);
      return write_result{id, etag, true};
    }
    return write_one(c, db, coll, id, etag, mode, if_match, doc, mongoc_collection_replace_one,
                     "replacing in ");
  }

  write_result update(const std::string& db, const std::string& coll, const value& id,
                      const update_spec& spec, write_mode mode,
                      const std::optional<std::string>& if_match) override {
    if (id.is_array()) throw_bad_request("_id cannot be an array");
    const object_id etag = object_id::generate();
    pooled_client c = client();
    if (mode == write_mode::insert) {
      // Must not exist: build the document in rheo and insert it (409 when it exists).
      if (if_match) throw_etag_mismatch(std::nullopt);
      object doc{{"_id", id}};
      spec.apply(doc);
      set_field(doc, "_etag", etag);
      insert_document(c, db, coll, doc);
      return write_result{id, etag, true};
    }
    return write_one(c, db, coll, id, etag, mode, if_match, update_document_of(spec, etag),
                     mongoc_collection_update_one, "updating in ");
  }

  using one_write = bool (*)(mongoc_collection_t*, const bson_t*, const bson_t*, const bson_t*,
                             bson_t*, bson_error_t*);

  /// A replace or update of document `id` (an upsert when `mode` says so and no If-Match).
  write_result write_one(pooled_client& c, const std::string& db, const std::string& coll,
                         const value& id, const object_id& etag, write_mode mode,
                         const std::optional<std::string>& if_match, const object& body,
                         one_write write, const char* what) {
    auto target = collection_of(c, db, coll);
    const bool upsert = mode == write_mode::upsert && !if_match;
    reply_doc reply;
    bson_error_t error;
    if (!write(target.get(), to_bson(selector(id, if_match)).get(), to_bson(body).get(),
               to_bson(object{{"upsert", value(upsert)}}).get(), &reply.b, &error))
      throw_mongo(error, what + coll);
    return write_outcome(reply.get(), c, db, coll, id, etag, mode, if_match);
  }

  void remove(const std::string& db, const std::string& coll, const value& id,
              const std::optional<std::string>& if_match) override {
    pooled_client c = client();
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_delete_one(target.get(), to_bson(selector(id, if_match)).get(), nullptr,
                                      &reply.b, &error))
      throw_mongo(error, "deleting in " + coll);
    if (int_field(reply.get(), "deletedCount") == 0)
      no_match(c, db, coll, id, write_mode::update, if_match);
  }

  // ---- bulk writes and aggregations ----

  bulk_result insert_many(const std::string& db, const std::string& coll,
                          std::vector<object> docs) override {
    bulk_result r;
    for (auto& doc : docs) {
      if (!find_field(doc, "_id")) doc.insert(doc.begin(), {"_id", object_id::generate()});
      set_field(doc, "_etag", object_id::generate());
      r.ids.push_back(*find_field(doc, "_id"));
    }
    pooled_client c = client();
    if (docs.empty()) {
      // Nothing to insert (mongoc refuses an empty insert): the collection is created, as
      // by any POST.
      create_collection(c, db, coll);
      return r;
    }
    // One transaction: all documents or none (a replica set is required anyway).
    bson_error_t error;
    mongoc_client_session_t* session = mongoc_client_start_session(c.get(), nullptr, &error);
    if (!session) throw_mongo(error, "starting a session");
    std::unique_ptr<mongoc_client_session_t, decltype(&mongoc_client_session_destroy)> guard(
        session, mongoc_client_session_destroy);
    if (!mongoc_client_session_start_transaction(session, nullptr, &error))
      throw_mongo(error, "starting a transaction");
    bson_ptr opts = to_bson(object{});
    if (!mongoc_client_session_append(session, opts.get(), &error))
      throw_mongo(error, "joining the transaction");
    std::vector<bson_ptr> owned;
    std::vector<const void*> pointers; // const bson_t* (bson_t's alignment attribute
                                       // cannot be a template argument)
    for (auto& doc : docs) {
      owned.push_back(to_bson(doc));
      pointers.push_back(owned.back().get());
    }
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    if (!mongoc_collection_insert_many(target.get(),
                                       reinterpret_cast<const bson_t**>(pointers.data()),
                                       pointers.size(), opts.get(), &reply.b, &error)) {
      mongoc_client_session_abort_transaction(session, nullptr);
      throw_mongo(error, "inserting into " + coll);
    }
    reply_doc commit;
    if (!mongoc_client_session_commit_transaction(session, &commit.b, &error))
      throw_mongo(error, "committing the inserts into " + coll);
    r.inserted = static_cast<std::int64_t>(docs.size());
    return r;
  }

  bulk_result update_many(const std::string& db, const std::string& coll, const find_query& q,
                          const update_spec& spec) override {
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_update_many(
            target.get(), to_bson(q.filter_doc).get(),
            to_bson(update_document_of(spec, object_id::generate())).get(), nullptr, &reply.b,
            &error))
      throw_mongo(error, "updating in " + coll);
    const object out = reply.get();
    bulk_result r;
    r.matched = reply_count(out, "matchedCount");
    r.modified = reply_count(out, "modifiedCount");
    return r;
  }

  bulk_result delete_many(const std::string& db, const std::string& coll,
                          const find_query& q) override {
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_delete_many(target.get(), to_bson(q.filter_doc).get(), nullptr, &reply.b,
                                       &error))
      throw_mongo(error, "deleting in " + coll);
    bulk_result r;
    r.deleted = reply_count(reply.get(), "deletedCount");
    return r;
  }

  std::vector<object> aggregate(const std::string& db, const std::string& coll,
                                const aggregation& a, const aggregation_limits&) override {
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    auto target = collection_of(c, db, coll);
    cursor_ptr cursor(mongoc_collection_aggregate(
        target.get(), MONGOC_QUERY_NONE, to_bson(object{{"pipeline", value(a.stages())}}).get(),
        nullptr, nullptr));
    return drain(cursor.get(), "aggregating " + coll);
  }

  // ---- indexes: MongoDB's own listIndexes, createIndexes and dropIndexes ----

  std::vector<index_info> list_indexes(const std::string& db, const std::string& coll) override {
    pooled_client c = client();
    auto target = collection_of(c, db, coll);
    cursor_ptr cursor(mongoc_collection_find_indexes_with_opts(target.get(), nullptr));
    std::vector<index_info> out;
    try {
      for (auto& spec : drain(cursor.get(), "listing the indexes of " + coll)) {
        index_info info = index_of_spec(spec);
        // The options rheo's index API speaks of (not MongoDB's others: collation, ...).
        std::erase_if(info.options, [](auto& o) {
          return o.first != "unique" && o.first != "sparse" &&
                 o.first != "partialFilterExpression" && o.first != "expireAfterSeconds";
        });
        out.push_back(std::move(info));
      }
    } catch (const api_error& e) {
      if (e.status() == 500 && !exists(c, db, coll)) throw_no_collection(coll);
      throw;
    }
    if (out.empty() && !exists(c, db, coll)) throw_no_collection(coll);
    return out;
  }

  void create_index(const std::string& db, const std::string& coll, const std::string& name,
                    const object& key, const object& options) override {
    if (name.empty() || name.front() == '_')
      throw_bad_request("index names starting with '_' are reserved");
    if (key.empty()) throw_bad_request("an index needs keys: {\"keys\":{\"field\":1}}");
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    for (auto& existing : list_indexes(db, coll))
      if (existing.name == name) throw api_error(409, "index '" + name + "' already exists");
    object spec{{"key", value(key)}, {"name", value(name)}};
    for (auto& [k, v] : options)
      if (k != "name") spec.emplace_back(k, v);
    try {
      run_command(c, db,
                  object{{"createIndexes", value(coll)}, {"indexes", value(array{value(spec)})}},
                  "creating index " + name);
    } catch (const api_error& e) {
      if (e.status() != 409) throw;
      throw api_error(400, "cannot create unique index '" + name +
                               "': the collection holds duplicate keys");
    }
  }

  void drop_index(const std::string& db, const std::string& coll,
                  const std::string& name) override {
    if (name.empty() || name.front() == '_')
      throw_bad_request("index '" + name + "' cannot be dropped");
    pooled_client c = client();
    if (!exists(c, db, coll)) throw_no_collection(coll);
    bool found = false;
    for (auto& existing : list_indexes(db, coll))
      found = found || existing.name == name;
    if (!found) throw api_error(404, "index '" + name + "' does not exist");
    run_command(c, db, object{{"dropIndexes", value(coll)}, {"index", value(name)}},
                "dropping index " + name);
  }

  void check_resume_token(const std::string& token) const override {
    if (is_event_data(token) || snapshot_time(token)) return;
    throw api_error(400, "malformed resume token '" + token +
                             "': expected a change event's _id._data (an even number of hex "
                             "digits) or a Resume-Token header (T and 16 hex digits)");
  }

  std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                     const std::optional<std::string>& resume_after) override {
    return open_feed(core_, db, coll, resume_after);
  }

  void close() override {
    closed_.store(true);
    cache_.close();
  }

private:
  pooled_client client() {
    if (closed_.load()) throw std::runtime_error("store closed");
    pooled_client c(*core_);
    if (!c.get()) throw api_error(503, "MongoDB unavailable: no client available");
    return c;
  }

  /// {_id: id} plus {_etag: <If-Match>} when a specific etag is required.
  static object selector(const value& id, const std::optional<std::string>& if_match) {
    object s{{"_id", id}};
    if (if_match) {
      auto m = parse_if_match(*if_match);
      if (!m.any) {
        // An unparsable If-Match matches no document: compare with a value no etag has.
        s.emplace_back("_etag", m.etag ? value(*m.etag) : value(std::string(*if_match)));
      }
    }
    return s;
  }

  /// The result of a replace_one/update_one; 404 or 412 when nothing matched.
  write_result write_outcome(const object& reply, pooled_client& c, const std::string& db,
                             const std::string& coll, const value& id, const object_id& etag,
                             write_mode mode, const std::optional<std::string>& if_match) {
    if (int_field(reply, "matchedCount") == 0 && !upserted(reply))
      no_match(c, db, coll, id, mode, if_match);
    return write_result{id, etag, upserted(reply)};
  }

  static bool upserted(const object& reply) {
    return find_field(reply, "upsertedId") != nullptr || int_field(reply, "upsertedCount") > 0;
  }

  /// A write matched nothing: 412 with the document's etag when it exists (its etag
  /// differs), 404 otherwise (or 412 for an upsert with If-Match, as the embedded store
  /// answers).
  [[noreturn]] void no_match(pooled_client& c, const std::string& db, const std::string& coll,
                             const value& id, write_mode mode,
                             const std::optional<std::string>& if_match) {
    if (if_match) {
      if (auto doc = lookup(c, db, coll, id)) throw_etag_mismatch(document_etag(*doc));
      if (mode != write_mode::update) throw_etag_mismatch(std::nullopt);
    }
    if (!exists(c, db, coll)) throw_no_collection(coll);
    throw_no_document();
  }

  /// Document `id`; `position`, when set, receives the read's snapshot token.
  std::optional<object> lookup(pooled_client& c, const std::string& db, const std::string& coll,
                               const value& id, std::string* position = nullptr) {
    if (id.is_array()) return std::nullopt;
    read_session session(c, position != nullptr);
    auto target = collection_of(c, db, coll);
    std::vector<object> docs;
    {
      cursor_ptr cursor(mongoc_collection_find_with_opts(
          target.get(), to_bson(object{{"_id", id}}).get(),
          session.options(object{{"limit", value(std::int64_t{1})}}).get(), nullptr));
      docs = drain(cursor.get(), "find in " + coll);
    }
    if (position) *position = session.position();
    if (docs.empty()) return std::nullopt;
    return std::move(docs.front());
  }

  void insert_document(pooled_client& c, const std::string& db, const std::string& coll,
                       const object& doc) {
    auto target = collection_of(c, db, coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_insert_one(target.get(), to_bson(doc).get(), nullptr, &reply.b, &error))
      throw_mongo(error, "inserting into " + coll);
  }

  static std::vector<object> list_collections(pooled_client& c, const std::string& db,
                                              const std::optional<std::string>& name) {
    return mongo::list_collections(c.get(), db, name);
  }

  bool exists(pooled_client& c, const std::string& db, const std::string& coll) {
    return cache_.properties(c, db, coll) || !list_collections(c, db, coll).empty();
  }

  std::optional<collection_info> read_collection(pooled_client& c, const std::string& db,
                                                 const std::string& coll) {
    if (auto props = cache_.properties(c, db, coll)) {
      collection_info info;
      info.metadata = metadata_cache::metadata_of(*props);
      if (const value* etag = find_field(*props, "_etag"); etag && etag->is<object_id>())
        info.etag = etag->get<object_id>();
      return info;
    }
    if (!list_collections(c, db, coll).empty()) return collection_info{};
    return std::nullopt;
  }

  static void create_collection(pooled_client& c, const std::string& db, const std::string& coll) {
    mongoc_database_t* database = mongoc_client_get_database(c.get(), db.c_str());
    bson_error_t error;
    mongoc_collection_t* created =
        mongoc_database_create_collection(database, coll.c_str(), nullptr, &error);
    mongoc_database_destroy(database);
    if (created) {
      mongoc_collection_destroy(created);
      return;
    }
    if (error.code != err_namespace_exists) throw_mongo(error, "creating " + coll);
  }

  /// Writes the `_properties` document with a fresh etag. When the previous document had
  /// an etag, the write is conditional on it (a concurrent metadata write gives 412, with
  /// the etag that write left, read again).
  /// The cache learns the write before it is sent (see metadata_cache::writing()).
  void write_properties(pooled_client& c, const std::string& db, const std::string& coll,
                        const object& metadata, const std::optional<collection_info>& existing) {
    object doc{{"_id", value(properties_id(coll))}};
    for (auto& kv : metadata)
      doc.push_back(kv);
    const object_id etag = object_id::generate();
    doc.emplace_back("_etag", value(etag));
    cache_.writing(db, coll, etag.hex());
    try {
      replace_properties(c, db, coll, doc, existing);
    } catch (const etag_mismatch&) {
      cache_.forget(db, coll);
      throw_collection_etag_mismatch(current_etag(c, db, coll));
    } catch (...) {
      cache_.forget(db, coll);
      throw;
    }
    cache_.written(db, coll, etag.hex(), std::move(doc));
  }

  static void replace_properties(pooled_client& c, const std::string& db, const std::string& coll,
                                 const object& doc,
                                 const std::optional<collection_info>& existing) {
    object filter{{"_id", value(properties_id(coll))}};
    const bool had_etag = existing && existing->etag != object_id{};
    if (had_etag) filter.emplace_back("_etag", value(existing->etag));
    auto props = collection_of(c, db, properties_coll);
    reply_doc reply;
    bson_error_t error;
    if (!mongoc_collection_replace_one(props.get(), to_bson(filter).get(), to_bson(doc).get(),
                                       to_bson(object{{"upsert", value(!had_etag)}}).get(),
                                       &reply.b, &error)) {
      if (error.code == err_duplicate_key) throw_collection_etag_mismatch(std::nullopt);
      throw_mongo(error, "writing the metadata of " + coll);
    }
    const object r = reply.get();
    if (int_field(r, "matchedCount") == 0 && !upserted(r))
      throw_collection_etag_mismatch(std::nullopt);
  }

  /// The collection's etag as MongoDB holds it now, after another writer's metadata won a
  /// race (none when it cannot be read: the 412 then goes without it).
  std::optional<object_id> current_etag(pooled_client& c, const std::string& db,
                                        const std::string& coll) {
    try {
      if (auto info = read_collection(c, db, coll)) return info->etag;
    } catch (const std::exception&) {
    }
    return std::nullopt;
  }

  void publish_meta(const std::string& db, const std::string& coll, const object& metadata) {
    core_->publish_metadata(db, coll, metadata);
  }

  std::shared_ptr<mongo_core> core_;
  metadata_cache cache_;
  std::atomic<bool> closed_{false};
};

void log_from_mongoc(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  std::string line = std::string("mongoc ") + domain + ": " + message;
  if (level <= MONGOC_LOG_LEVEL_CRITICAL)
    log::error(line);
  else if (level <= MONGOC_LOG_LEVEL_WARNING)
    log::warn(line);
  else
    log::debug(line);
}

} // namespace

std::unique_ptr<store> open_mongo_store(const std::string& uri_string,
                                        const mongo_store_options& options) {
  std::call_once(mongoc_init_once, [] {
    mongoc_init();
    mongoc_log_set_handler(log_from_mongoc, nullptr);
  });
  auto core = std::make_shared<mongo_core>();
  core->options = options;
  bson_error_t error;
  core->uri = mongoc_uri_new_with_error(uri_string.c_str(), &error);
  if (!core->uri) throw std::runtime_error(std::string("invalid --mongo-uri: ") + error.message);
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(core->uri); h; h = h->next)
    core->hosts += (core->hosts.empty() ? "" : ",") + std::string(h->host_and_port);
  if (core->hosts.empty()) core->hosts = "the configured hosts";
  if (!mongoc_uri_has_option(core->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(
        core->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
        static_cast<std::int32_t>(options.server_selection_timeout.count()));
  if (!mongoc_uri_get_appname(core->uri)) mongoc_uri_set_appname(core->uri, "rheo");
  core->pool = mongoc_client_pool_new_with_error(core->uri, &error);
  if (!core->pool) throw std::runtime_error(std::string("invalid --mongo-uri: ") + error.message);
  mongoc_client_pool_set_error_api(core->pool, MONGOC_ERROR_API_VERSION_2);

  object hello;
  {
    pooled_client c(*core);
    auto run = [&](const char* command) {
      reply_doc reply;
      bool ok = mongoc_client_command_simple(
          c.get(), "admin", to_bson(object{{command, value(1)}}).get(), nullptr, &reply.b, &error);
      if (ok) hello = reply.get();
      return ok;
    };
    if (!run("hello") && (error.code != err_command_not_found || !run("isMaster")))
      throw std::runtime_error("cannot connect to MongoDB at " + core->hosts + ": " +
                               error.message);
  }
  const value* set_name = find_field(hello, "setName");
  const value* msg = find_field(hello, "msg");
  const bool replica_set = set_name && set_name->is_string();
  const bool mongos = msg && msg->is_string() && msg->as_string() == "isdbgrid";
  if (!replica_set && !mongos)
    throw std::runtime_error("MongoDB at " + core->hosts +
                             " is a standalone server: rheo needs a replica set or a sharded "
                             "cluster for change streams (start mongod with --replSet rs0 and "
                             "run rs.initiate())");
  log::info("MongoDB store: " + core->hosts +
            (replica_set ? " (replica set " + set_name->as_string() + ")" : " (mongos)"));
  return std::make_unique<mongo_store>(std::move(core), options.metadata_cache);
}

} // namespace rheo
