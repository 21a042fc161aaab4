// rheo migrate: the embedded store's collections into MongoDB, where rheo's MongoDB store
// (--mongo-uri) serves them (storage/mongo/migration.hpp writes them).
#include "storage/document/bson_codec.hpp"
#include "storage/document/index_key.hpp"
#include "storage/mongo/migration.hpp"
#include "storage/sqlite/transfer.hpp"
#include "tools/tool.hpp"

#include <iostream>
#include <unordered_set>

namespace rheo::tools {

namespace {

constexpr const char* migrate_usage =
    "usage: rheo migrate --data-dir DIR --to MONGODB_URI [--db DB] [--coll NAME] [--batch N]\n"
    "                    [--delete]\n"
    "  Copies the collections of the embedded store in DIR (a server may be running on it:\n"
    "  they are read as of one commit) into the MongoDB replica set at MONGODB_URI, as\n"
    "  rheo --mongo-uri serves them: documents in batches of N (1000), indexes, metadata in\n"
    "  each database's _properties (RESTHeart's layout); then compares the counts. Every\n"
    "  write replaces by _id: run it again after an interruption, or to bring over what\n"
    "  changed since. --delete: after copying a collection, deletes from MongoDB the\n"
    "  documents whose _id the store no longer holds (deleted since an earlier run), so that\n"
    "  the counts agree. Exit status: 0 done and counts equal, 1 failed or counts differ, 2\n"
    "  bad arguments.\n";

/// Copies what an export reads into MongoDB, a line per collection.
class migration final : public export_visitor {
public:
  /// `delete_others`: MongoDB's documents the store does not hold are deleted.
  migration(mongo_copy& to, bool delete_others) : to_(to), delete_(delete_others) {}

  void begin(const collection_dump& c) override {
    to_.begin(c.db, c.coll, collection_info{c.metadata, c.etag}, c.indexes);
    total_ = c.documents;
    meter_ = std::make_unique<progress_meter>(c.db + "." + c.coll, "documents");
    started_ = std::chrono::steady_clock::now();
    sent_ = 0;
    held_.clear();
  }

  void document(std::string_view bson) override {
    // The store's _ids, read in the same snapshot as the documents.
    if (delete_) {
      const object doc = decode_bson(bson);
      if (const value* id = find_field(doc, "_id")) held_.insert(encode_key(*id));
    }
    to_.document(bson);
    if (++sent_ % 1000 == 0) meter_->update(to_.written(), total_);
  }

  void end(const collection_dump& c) override {
    std::uint64_t deleted = 0;
    if (delete_) {
      to_.send();
      deleted = to_.delete_others([&](const value& id) { return held_.count(encode_key(id)) > 0; });
      held_.clear();
    }
    const std::uint64_t in_mongo = to_.end();
    meter_.reset();
    ++collections_;
    documents_ += c.documents;
    std::cout << c.db << "." << c.coll << ": " << plural(c.documents, "document") << ", "
              << plural(c.indexes.size(), "index", "indexes") << " -> MongoDB " << c.db << "."
              << c.coll << " in "
              << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started_));
    if (delete_) std::cout << ", " << deleted << " deleted";
    if (in_mongo == c.documents) {
      std::cout << ", counts equal\n";
    } else {
      std::cout << "; MongoDB holds " << in_mongo << "\n";
      mismatches_ += (mismatches_.empty() ? "" : ", ") + c.db + "." + c.coll + " (" +
                     std::to_string(c.documents) + " here, " + std::to_string(in_mongo) +
                     " in MongoDB)";
    }
    std::cout << std::flush;
  }

  std::uint64_t collections_ = 0, documents_ = 0;
  std::string mismatches_;

private:
  mongo_copy& to_;
  bool delete_;
  std::unordered_set<std::string> held_;
  std::unique_ptr<progress_meter> meter_;
  std::chrono::steady_clock::time_point started_;
  std::uint64_t sent_ = 0, total_ = 0;
};

} // namespace

int migrate_command(const std::vector<std::string>& args) {
  return guarded("migrate", migrate_usage, [&] {
    const arguments a = parse_arguments(args, {"--to", "--db", "--coll", "--batch"}, {"--delete"});
    if (a.help) {
      std::cout << migrate_usage;
      return 0;
    }
    if (!a.positional.empty()) throw usage_error("unexpected argument '" + a.positional[0] + "'");
    if (!a.flags.count("--to")) throw usage_error("--to MONGODB_URI is required");
    std::size_t batch = 1000;
    if (a.flags.count("--batch")) {
      try {
        batch = std::stoul(a.flags.at("--batch"));
      } catch (const std::exception&) {
        batch = 0;
      }
      if (batch == 0 || batch > 100000) throw usage_error("--batch must be 1 to 100000");
    }
    const std::string coll = a.flags.count("--coll") ? a.flags.at("--coll") : "";
    std::string db;
    if (a.flags.count("--db"))
      db = a.flags.at("--db");
    else if (!coll.empty())
      db = a.config.mounts.front().db == "*" ? std::string("rheo") : a.config.mounts.front().db;
    const auto started = std::chrono::steady_clock::now();
    mongo_copy to(a.flags.at("--to"), batch);
    const bool delete_others = a.switches.count("--delete") > 0;
    migration m(to, delete_others);
    std::string position;
    try {
      position = export_data_dir(a.config.data_dir, db, coll, m);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) +
                               "; what was copied stays: run the same command again, it "
                               "replaces what it copied by _id and goes on");
    }
    std::cout << "migrated " << plural(m.collections_, "collection") << ", "
              << plural(m.documents_, "document") << " of " << a.config.data_dir
              << " (change-log position " << position << ") to MongoDB at " << to.hosts() << " in "
              << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started))
              << "\n";
    if (!m.mismatches_.empty()) {
      std::cerr << "rheo migrate: the counts differ: " << m.mismatches_
                << (delete_others
                        ? " (documents were written into MongoDB meanwhile)\n"
                        : " (documents that exist only in MongoDB were written there, or deleted "
                          "here since an earlier run: --delete removes them)\n");
      return 1;
    }
    return 0;
  });
}

} // namespace rheo::tools
