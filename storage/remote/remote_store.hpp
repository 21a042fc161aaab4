// The store of an edge node in cluster mode: every call is sent to the core node, which runs
// it on its own store (serve_store_call) and replies. A call and its reply are BSON
// documents, {a: [arguments...]} and {ok: true, r: result, out: [...]} or {ok: false,
// status, message[, etag]}: an api_error on the core reaches the edge's caller with the same
// status and message (an etag_mismatch with its current etag). The transport (a CAF link)
// and the change feeds are the caller's.
//
// What crosses the network is each argument's source, recompiled on the core: a find_query's
// filter_doc, sort_doc and keys_doc (so a compiled matcher, sort or projection without its
// source document cannot be forwarded: std::logic_error), an update_spec's ops(), an
// aggregation's resolved stages().
#pragma once

#include "storage/store.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rheo {

/// The store methods that cross the link (watch() and close() do not), one per call; each
/// is named after its method of `store`.
enum class store_method : std::uint8_t {
  collection_names,
  collection,
  put_collection,
  patch_collection,
  drop_collection,
  find,
  count_query,
  find_by_id,
  insert,
  replace,
  update,
  remove,
  insert_many,
  update_many,
  delete_many,
  aggregate,
  list_indexes,
  create_index,
  drop_index,
  check_resume_token,
};
inline constexpr store_method last_store_method = store_method::check_resume_token;

/// The name of `method`'s store method ("find", "insert_many", ...).
std::string_view to_string(store_method method);

/// Sends one store call to the core and returns its reply (both BSON documents as bytes).
/// Throws api_error(503, "...") when the core cannot be reached or does not answer in time.
using store_transport = std::function<std::string(store_method method, const std::string& args)>;
/// Opens a change feed on the core (watch() is forwarded here unchanged).
using feed_opener =
    std::function<std::unique_ptr<change_feed>(const std::string& db, const std::string& coll,
                                               const std::optional<std::string>& resume_after)>;

/// Runs one forwarded call on `db` (the core's own store) and returns the reply. Never
/// throws: api_error keeps its status and message (etag_mismatch its current etag too); any
/// other exception is status 500 with its what().
///
/// Thread-safety: as `db`'s methods (a store's may be called from any thread at once).
std::string serve_store_call(store& db, store_method method, const std::string& args);
/// The same for a call named by its method's name: an unknown name is a 400 error reply.
std::string serve_store_call(store& db, std::string_view name, const std::string& args);

/// A store whose calls run on another node. `local`, when given (a MongoDB edge: every node
/// talks to MongoDB itself), takes every call except watch(); otherwise every call goes
/// through `transport`. watch() always goes to `opener`.
///
/// Thread-safety: every method may be called concurrently from any thread, as store says;
/// `transport` and `opener` are then called concurrently too and must allow it.
class remote_store final : public store {
public:
  remote_store(store_transport transport, feed_opener opener,
               std::shared_ptr<store> local = nullptr);

  std::vector<std::string> collection_names(const std::string& db) override;
  std::optional<collection_info> collection(const std::string& db,
                                            const std::string& coll) override;
  bool put_collection(const std::string& db, const std::string& coll, object metadata,
                      const std::optional<std::string>& if_match) override;
  void patch_collection(const std::string& db, const std::string& coll, object metadata,
                        const std::optional<std::string>& if_match) override;
  void drop_collection(const std::string& db, const std::string& coll,
                       const std::string& etag) override;

  std::vector<object> find(const std::string& db, const std::string& coll,
                           const find_query& q) override;
  std::int64_t count_query(const std::string& db, const std::string& coll,
                           const find_query& q) override;
  std::optional<object> find_by_id(const std::string& db, const std::string& coll, const value& id,
                                   std::string* position) override;
  write_result insert(const std::string& db, const std::string& coll, object doc) override;
  write_result replace(const std::string& db, const std::string& coll, const value& id, object doc,
                       write_mode mode, const std::optional<std::string>& if_match) override;
  write_result update(const std::string& db, const std::string& coll, const value& id,
                      const update_spec& spec, write_mode mode,
                      const std::optional<std::string>& if_match) override;
  void remove(const std::string& db, const std::string& coll, const value& id,
              const std::optional<std::string>& if_match) override;

  bulk_result insert_many(const std::string& db, const std::string& coll,
                          std::vector<object> docs) override;
  bulk_result update_many(const std::string& db, const std::string& coll, const find_query& q,
                          const update_spec& spec) override;
  bulk_result delete_many(const std::string& db, const std::string& coll,
                          const find_query& q) override;

  std::vector<object> aggregate(const std::string& db, const std::string& coll,
                                const aggregation& a, const aggregation_limits& limits) override;

  std::vector<index_info> list_indexes(const std::string& db, const std::string& coll) override;
  void create_index(const std::string& db, const std::string& coll, const std::string& name,
                    const object& key, const object& options) override;
  void drop_index(const std::string& db, const std::string& coll, const std::string& name) override;

  void check_resume_token(const std::string& token) const override;
  std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                     const std::optional<std::string>& resume_after) override;

  /// Closes `local` when given; the core's store is the core's to close.
  void close() override;

private:
  /// Runs store method M locally or on the core.
  template <auto M, class... A> auto call(A&&... args) const;

  store_transport transport_;
  feed_opener opener_;
  std::shared_ptr<store> local_;
};

} // namespace rheo
