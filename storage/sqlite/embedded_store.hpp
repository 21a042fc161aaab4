// The store interface over the engine in core.hpp. Its methods live in the file of their
// concern: collections.cpp (collections and their metadata), documents.cpp (documents:
// queries and writes), indexing.cpp (the index API and TTL expiry), sqlite_store.cpp (feeds,
// close, opening), backup.cpp (backup). Internal to storage/sqlite; users call
// open_sqlite_store() (sqlite_store.hpp).
//
// Thread-safety: all methods may be called concurrently from any thread. The store owns the
// TTL thread (ttl_loop, every ttl_interval), which only submits writes to the core's writer
// thread; close() stops and joins it before closing the core.
#pragma once

#include "storage/sqlite/core.hpp"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace rheo::sqlite {

class embedded_store final : public store {
public:
  explicit embedded_store(const sqlite_store_options& options);
  ~embedded_store() override;

  // Collections (collections.cpp).
  std::vector<std::string> collection_names(const std::string& db) override;
  std::optional<collection_info> collection(const std::string& db,
                                            const std::string& coll) override;
  bool put_collection(const std::string& db, const std::string& coll, object metadata,
                      const std::optional<std::string>& if_match) override;
  void patch_collection(const std::string& db, const std::string& coll, object metadata,
                        const std::optional<std::string>& if_match) override;
  void drop_collection(const std::string& db, const std::string& coll,
                       const std::string& etag) override;

  // Documents (documents.cpp).
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
  bulk_result insert_from(const std::string& db, const std::string& coll,
                          insert_source& docs) override;
  bulk_result update_many(const std::string& db, const std::string& coll, const find_query& q,
                          const update_spec& spec) override;
  bulk_result delete_many(const std::string& db, const std::string& coll,
                          const find_query& q) override;
  std::vector<object> aggregate(const std::string& db, const std::string& coll,
                                const aggregation& a, const aggregation_limits& limits) override;

  // Indexes (indexing.cpp).
  std::vector<index_info> list_indexes(const std::string& db, const std::string& coll) override;
  void create_index(const std::string& db, const std::string& coll, const std::string& name,
                    const object& key, const object& options) override;
  void drop_index(const std::string& db, const std::string& coll, const std::string& name) override;

  // Feeds and lifetime (sqlite_store.cpp).
  void check_resume_token(const std::string& token) const override;
  std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                     const std::optional<std::string>& resume_after) override;
  void close() override;

  // Backup (backup.cpp): a page copy in one read transaction of a pooled reader.
  backup_result backup(const std::string& path) override;

  /// Deletes documents that TTL indexes expired, at most one batch, each with a delete
  /// event; returns how many. Runs every options.ttl_interval on the store's TTL thread.
  std::size_t expire_documents();

private:
  void ttl_loop(std::chrono::milliseconds interval);
  bool ttl_stopping();

  std::shared_ptr<core> core_;
  std::string data_dir_;
  std::mutex backup_mu_; // one backup at a time
  std::mutex ttl_mu_;
  std::condition_variable ttl_cv_;
  bool ttl_stop_ = false;
  std::thread ttl_thread_;
};

} // namespace rheo::sqlite
