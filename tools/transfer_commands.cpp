// rheo export and rheo import: collections as MongoDB Extended JSON files, one document per
// line as mongoexport writes them, each beside a metadata file as mongodump writes it
// (storage/sqlite/transfer.hpp reads and writes the store).
//
// With --mongo-uri the same files come from and go into MongoDB (storage/mongo/migration.hpp):
// export reads each collection with its own cursor; import parses every file before its
// first write, writes a new collection into a staging collection renamed into place, and
// checks the _ids of a collection that holds documents before inserting into it.
//
// Layout of an export folder: <out>/<db>/<coll>.json (the documents) and
// <out>/<db>/<coll>.metadata.json ({"collectionName", "db", "type", "metadata": rheo's
// collection metadata (streams, aggrs, ...), "indexes": [{"v", "key", "name", options...}]},
// the _id_ index first as in mongodump's).
#include "storage/document/aggregation.hpp"
#include "storage/document/bson_codec.hpp"
#include "storage/document/ejson.hpp"
#include "storage/document/index_key.hpp"
#include "storage/document/json.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/mongo/migration.hpp"
#include "storage/sqlite/transfer.hpp"
#include "tools/tool.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_map>

namespace rheo::tools {

namespace {

namespace fs = std::filesystem;

constexpr const char* export_usage =
    "usage: rheo export --data-dir DIR --out PATH [--db DB] [--coll NAME] [--relaxed]\n"
    "       rheo export --mongo-uri URI --out PATH [--db DB] [--coll NAME] [--relaxed]\n"
    "  Writes the collections of the embedded store in DIR (a server may be running on it;\n"
    "  read as of one commit), or of MongoDB at URI (the databases the mounts name; each\n"
    "  collection read as of its own cursor: mongodump for a point-in-time copy), as MongoDB\n"
    "  Extended JSON, one document per line as mongoexport writes them: the folder\n"
    "  PATH/<db>/ gets <coll>.json and <coll>.metadata.json (streams, aggregations, indexes)\n"
    "  for each collection, or for database DB, or for the one collection NAME (of DB, by\n"
    "  default the first mount's). Canonical mode (every BSON type kept) unless --relaxed.\n"
    "  Exit status: 0 done, 1 failed, 2 bad arguments.\n";

constexpr const char* import_usage =
    "usage: rheo import PATH --data-dir DIR [--db DB] [--coll NAME]\n"
    "       rheo import PATH --mongo-uri URI [--db DB] [--coll NAME] [--upsert]\n"
    "  Imports a folder rheo export wrote (PATH/<db>/<coll>.json and .metadata.json files,\n"
    "  or <coll>.json files of database DB), or one mongoexport file with --coll NAME, in\n"
    "  Extended JSON (canonical or relaxed mode, one document per line). Into the embedded\n"
    "  store in DIR (created when missing; no server may run on it): all of it or, on any\n"
    "  error (reported with its file and line), nothing. Into MongoDB at URI: every file is\n"
    "  read and checked before the first write (bad input writes nothing); a new (or empty)\n"
    "  collection is written into a staging collection renamed into place, whole or not at\n"
    "  all; one that holds documents is checked for the file's _ids first (any there: nothing\n"
    "  written), then inserted into in order: a failure then says how many were written, and\n"
    "  the same command with --upsert (every document replaces by _id) finishes it. Exit\n"
    "  status: 0 done, 1 failed, 2 bad arguments.\n";

constexpr const char* data_suffix = ".json";
constexpr const char* metadata_suffix = ".metadata.json";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The database a --coll without --db names: the first mount's, as the server's.
std::string default_db(const arguments& a) {
  if (auto it = a.flags.find("--db"); it != a.flags.end()) return it->second;
  const std::string& first = a.config.mounts.front().db;
  return first == "*" ? std::string("rheo") : first;
}

/// Writes `text` to `path` through `path`.partial and a rename.
void write_file(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error(partial + ": cannot write");
  }
  fs::rename(partial, path);
}

// ---- export ----

/// The metadata file's document for `c`.
object metadata_document(const collection_dump& c) {
  array indexes;
  indexes.push_back(value(object{{"v", value(std::int32_t(2))},
                                 {"key", value(object{{"_id", value(std::int32_t(1))}})},
                                 {"name", value("_id_")}}));
  for (auto& ix : c.indexes) {
    object o{{"v", value(std::int32_t(2))}, {"key", value(ix.key)}, {"name", value(ix.name)}};
    for (auto& [k, v] : ix.options)
      o.emplace_back(k, v);
    indexes.push_back(value(std::move(o)));
  }
  return object{{"collectionName", value(c.coll)},
                {"db", value(c.db)},
                {"type", value("collection")},
                {"metadata", value(c.metadata)},
                {"indexes", value(std::move(indexes))}};
}

class folder_writer final : public export_visitor {
public:
  folder_writer(std::string out, ejson_mode mode) : out_(std::move(out)), mode_(mode) {}

  void begin(const collection_dump& c) override {
    const fs::path dir = fs::path(out_) / c.db;
    fs::create_directories(dir);
    data_path_ = (dir / (c.coll + data_suffix)).string();
    file_.open(data_path_ + ".partial", std::ios::binary | std::ios::trunc);
    if (!file_) throw std::runtime_error(data_path_ + ".partial: cannot write");
    done_ = 0;
    meter_ = std::make_unique<progress_meter>(c.db + "." + c.coll, "documents");
    total_ = c.documents;
    started_ = std::chrono::steady_clock::now();
  }

  void document(std::string_view bson) override {
    line_ = ejson_from_bson(bson, mode_);
    line_ += '\n';
    file_ << line_;
    ++done_;
    if (done_ % 1000 == 0) meter_->update(done_, total_);
  }

  void end(const collection_dump& c) override {
    file_.close();
    if (!file_) throw std::runtime_error(data_path_ + ": cannot write");
    fs::rename(data_path_ + ".partial", data_path_);
    const std::string meta_path = (fs::path(out_) / c.db / (c.coll + metadata_suffix)).string();
    write_file(meta_path, ejson_from_bson(encode_bson(metadata_document(c)), mode_) + "\n");
    meter_.reset();
    ++collections_;
    documents_ += done_;
    std::cout << c.db << "." << c.coll << ": " << plural(done_, "document") << ", "
              << plural(c.indexes.size(), "index", "indexes") << " -> " << data_path_ << " in "
              << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started_))
              << "\n"
              << std::flush;
  }

  std::uint64_t collections_ = 0, documents_ = 0;

private:
  std::string out_;
  ejson_mode mode_;
  std::ofstream file_;
  std::string data_path_, line_;
  std::uint64_t done_ = 0, total_ = 0;
  std::unique_ptr<progress_meter> meter_;
  std::chrono::steady_clock::time_point started_;
};

// ---- import ----

/// The line saying a collection was imported (and how many documents changed type).
void report_imported(const std::string& db, const std::string& coll, std::uint64_t documents,
                     std::size_t indexes, const std::string& file, const std::string& to,
                     std::chrono::steady_clock::time_point started, std::uint64_t changed) {
  std::cout << db << "." << coll << ": " << plural(documents, "document") << ", "
            << plural(indexes, "index", "indexes") << " <- " << file << to << " in "
            << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started))
            << "\n";
  if (changed)
    std::cout << "  note: " << plural(changed, "document")
              << " held values rheo keeps as another type (Decimal128 as a double, Symbol "
                 "and JavaScript code as strings, undefined as null)\n";
  std::cout << std::flush;
}

/// One collection's files.
struct collection_files {
  std::string db, coll;
  std::string data;     // empty: none (a metadata file alone)
  std::string metadata; // empty: none
};

/// The collections in a folder of an export's layout: <coll>.json and .metadata.json
/// files, in `dir` itself (of database `db`) and in its subfolders (named after theirs).
std::vector<collection_files> folder_collections(const std::string& dir, const std::string& db,
                                                 const std::string& only) {
  std::map<std::pair<std::string, std::string>, collection_files> found;
  auto scan = [&](const fs::path& folder, const std::string& in_db) {
    for (auto& entry : fs::directory_iterator(folder)) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().filename().string();
      const bool meta = ends_with(name, metadata_suffix);
      if (!meta && !ends_with(name, data_suffix)) continue;
      const std::string coll =
          name.substr(0, name.size() - std::string(meta ? metadata_suffix : data_suffix).size());
      if (!only.empty() && coll != only) continue;
      auto& c = found[{in_db, coll}];
      c.db = in_db;
      c.coll = coll;
      (meta ? c.metadata : c.data) = entry.path().string();
    }
  };
  scan(dir, db);
  for (auto& entry : fs::directory_iterator(dir))
    if (entry.is_directory()) scan(entry.path(), entry.path().filename().string());
  std::vector<collection_files> out;
  for (auto& [key, c] : found)
    out.push_back(std::move(c));
  return out;
}

/// The document of one Extended JSON line, `_id` first (an ObjectId when it has none), as
/// rheo stores it. `changed` is set when rheo's types changed a value (Decimal128, ...).
import_document document_of_line(const std::string& line, bool& changed) {
  const std::string bson = bson_from_ejson(line);
  import_document d;
  d.doc = decode_bson(bson);
  d.bson = encode_bson(d.doc);
  changed = d.bson != bson;
  const auto id =
      std::find_if(d.doc.begin(), d.doc.end(), [](auto& f) { return f.first == "_id"; });
  if (id != d.doc.end() && id == d.doc.begin()) return d;
  if (id == d.doc.end())
    d.doc.insert(d.doc.begin(), {"_id", value(object_id::generate())});
  else
    std::rotate(d.doc.begin(), id, id + 1);
  d.bson = encode_bson(d.doc);
  return d;
}

class file_source final : public import_source {
public:
  /// `report`: a progress meter and a line per collection (false: the caller reports).
  explicit file_source(std::vector<collection_files> files, bool report = true)
      : files_(std::move(files)), report_(report) {}

  std::optional<collection_dump> next_collection() override {
    finish_collection();
    if (next_ >= files_.size()) return std::nullopt;
    current_ = files_[next_++];
    collection_dump c;
    c.db = current_.db;
    c.coll = current_.coll;
    c.metadata_given = !current_.metadata.empty();
    if (c.metadata_given) read_metadata(current_.metadata, c);
    in_.close();
    in_.clear();
    line_no_ = 0;
    read_bytes_ = 0;
    file_bytes_ = 0;
    changed_ = 0;
    if (!current_.data.empty()) {
      in_.open(current_.data, std::ios::binary);
      if (!in_) throw std::runtime_error(current_.data + ": cannot read");
      std::error_code ec;
      file_bytes_ = fs::file_size(current_.data, ec);
    }
    if (report_) meter_ = std::make_unique<progress_meter>(c.db + "." + c.coll, "documents");
    started_ = std::chrono::steady_clock::now();
    indexes_ = c.indexes.size();
    return c;
  }

  std::optional<import_document> next_document() override {
    if (!in_.is_open()) return std::nullopt;
    std::string line;
    while (std::getline(in_, line)) {
      ++line_no_;
      read_bytes_ += line.size() + 1;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        bool changed = false;
        import_document d = document_of_line(line, changed);
        changed_ += changed;
        return d;
      } catch (const std::exception& e) {
        throw std::runtime_error(where() + ": " + e.what());
      }
    }
    if (in_.bad()) throw std::runtime_error(current_.data + ": cannot read");
    return std::nullopt;
  }

  std::string where() const override {
    return (current_.data.empty() ? current_.metadata : current_.data) + ", line " +
           std::to_string(line_no_);
  }

  /// The current collection's file (its metadata file when it has no documents) and line.
  const std::string& file() const {
    return current_.data.empty() ? current_.metadata : current_.data;
  }
  std::uint64_t line() const { return line_no_; }
  /// Documents of the current collection whose values rheo keeps as another type.
  std::uint64_t changed() const { return changed_; }

  void written(std::uint64_t done) override {
    done_ = done;
    if (!meter_) return;
    // Time left from the bytes read: the total of documents is not known beforehand.
    const std::uint64_t total = read_bytes_
                                    ? static_cast<std::uint64_t>(static_cast<double>(done) *
                                                                 static_cast<double>(file_bytes_) /
                                                                 static_cast<double>(read_bytes_))
                                    : 0;
    meter_->update(done, std::max(total, done), true);
  }

  /// Ends the last collection's line (called once more after the last).
  void finish_collection() {
    if (!meter_) return;
    meter_.reset();
    report_imported(current_.db, current_.coll, done_, indexes_, file(), "", started_, changed_);
    done_ = 0;
  }

private:
  static void read_metadata(const std::string& path, collection_dump& c) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw std::runtime_error(path + ": cannot read");
    try {
      const object file = decode_bson(bson_from_ejson(text.str()));
      if (const value* m = find_field(file, "metadata")) {
        if (!m->is_object()) throw std::runtime_error("\"metadata\" must be an object");
        c.metadata = m->as_object();
        validate_streams(c.metadata);
        validate_aggrs(c.metadata);
      }
      if (const value* ixs = find_field(file, "indexes")) {
        if (!ixs->is_array()) throw std::runtime_error("\"indexes\" must be an array");
        for (auto& ix : ixs->as_array()) {
          if (!ix.is_object()) throw std::runtime_error("an index must be an object");
          index_info info = index_of_spec(ix.as_object());
          if (info.name.empty() || info.key.empty())
            throw std::runtime_error("an index needs a \"name\" and a \"key\"");
          if (info.name != "_id_") c.indexes.push_back(std::move(info));
        }
      }
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }

  std::vector<collection_files> files_;
  bool report_;
  std::size_t next_ = 0;
  collection_files current_;
  std::ifstream in_;
  std::uint64_t line_no_ = 0, read_bytes_ = 0, file_bytes_ = 0, done_ = 0, changed_ = 0;
  std::size_t indexes_ = 0;
  std::unique_ptr<progress_meter> meter_;
  std::chrono::steady_clock::time_point started_;
};

// ---- MongoDB ----

/// The databases an export of MongoDB covers: `db`, or those the mounts name (every one
/// but admin, local and config for a "*" mount).
std::vector<std::string> exported_databases(const arguments& a, const std::string& db,
                                            mongo_copy& from) {
  if (!db.empty()) return {db};
  std::vector<std::string> out;
  for (auto& m : a.config.mounts) {
    if (m.db == "*") return from.database_names();
    if (std::find(out.begin(), out.end(), m.db) == out.end()) out.push_back(m.db);
  }
  return out;
}

/// rheo export --mongo-uri: each collection read with its own cursor, in _id order.
void export_mongo(const arguments& a, const std::string& db, const std::string& coll,
                  export_visitor& writer, mongo_copy& from) {
  for (auto& d : exported_databases(a, db, from)) {
    auto colls = from.collections(d);
    if (!coll.empty()) {
      std::erase_if(colls, [&](auto& c) { return c.name != coll; });
      if (colls.empty())
        throw std::runtime_error("collection " + d + "." + coll + " does not exist");
    }
    for (auto& c : colls) {
      collection_dump dump;
      dump.db = d;
      dump.coll = c.name;
      if (c.properties) {
        dump.metadata = c.properties->metadata;
        dump.etag = c.properties->etag;
      }
      dump.indexes = from.indexes(d, c.name);
      writer.begin(dump);
      from.each_document(d, c.name, [&](std::string_view bson) { writer.document(bson); });
      writer.end(dump);
    }
  }
}

/// One collection of an import into MongoDB, read and converted whole before any write.
struct parsed_collection {
  collection_dump dump;
  std::string file;
  std::vector<std::string> bson;
  std::vector<value> ids;
  std::vector<std::uint64_t> lines;
  std::uint64_t changed = 0;
};

/// Every collection `source` yields, every document converted; throws naming the file and
/// line of the first bad one (an _id twice in a file too).
std::vector<parsed_collection> parse_all(file_source& source) {
  std::vector<parsed_collection> out;
  while (auto c = source.next_collection()) {
    parsed_collection p;
    p.dump = std::move(*c);
    p.file = source.file();
    std::unordered_map<std::string, std::uint64_t> seen;
    while (auto d = source.next_document()) {
      const value& id = d->doc.front().second;
      if (id.is_array()) throw std::runtime_error(source.where() + ": _id cannot be an array");
      if (auto [at, fresh] = seen.emplace(encode_key(id), source.line()); !fresh)
        throw std::runtime_error(source.where() + ": _id " + to_json(id) + " is also on line " +
                                 std::to_string(at->second));
      p.ids.push_back(id);
      p.lines.push_back(source.line());
      p.bson.push_back(std::move(d->bson));
    }
    p.changed = source.changed();
    out.push_back(std::move(p));
  }
  return out;
}

/// What an import into MongoDB found of each collection before writing.
struct import_plan {
  parsed_collection input;
  mongo_copy::presence there;
};

/// Checks in MongoDB whether each collection holds documents and, if so (without --upsert),
/// that it holds none of the file's _ids.
std::vector<import_plan> plan_import(std::vector<parsed_collection> input, mongo_copy& to,
                                     bool upsert) {
  std::vector<import_plan> plans;
  for (auto& p : input)
    plans.push_back({std::move(p), {}});
  for (auto& plan : plans) {
    const parsed_collection& in = plan.input;
    plan.there = to.probe(in.dump.db, in.dump.coll);
    if (!plan.there.holds_documents || upsert || in.ids.empty()) continue;
    const auto held = to.present(in.dump.db, in.dump.coll, in.ids);
    if (held.empty()) continue;
    const std::size_t first = held.front();
    throw std::runtime_error(
        in.file + ", line " + std::to_string(in.lines[first]) + ": _id " + to_json(in.ids[first]) +
        " is already in " + in.dump.db + "." + in.dump.coll +
        (held.size() > 1 ? " (and " + std::to_string(held.size() - 1) + " more of the file's)"
                         : std::string()) +
        " (--upsert replaces them)");
  }
  return plans;
}

/// Sends `in`'s documents into the collection `to` writes into, with progress.
void send_documents(const parsed_collection& in, mongo_copy& to) {
  progress_meter meter(in.dump.db + "." + in.dump.coll, "documents");
  std::uint64_t n = 0;
  for (auto& bson : in.bson) {
    to.document(bson);
    if (++n % 1000 == 0) meter.update(to.written(), in.bson.size());
  }
  to.send();
}

/// Writes one planned collection; throws saying what was written.
void write_collection(const import_plan& plan, mongo_copy& to, bool upsert) {
  const parsed_collection& in = plan.input;
  const std::string& db = in.dump.db;
  const std::string& coll = in.dump.coll;
  const collection_info info{in.dump.metadata, object_id{}};
  const bool metadata = in.dump.metadata_given || !plan.there.exists;
  if (!plan.there.holds_documents) {
    // New or empty: whole or not at all, through a staging collection.
    if (!in.bson.empty() || !in.dump.indexes.empty()) {
      const std::string staging = staging_name(coll);
      try {
        to.start(db, staging, mongo_copy::writes::insert);
        send_documents(in, to);
        to.create_indexes(db, staging, in.dump.indexes);
        to.rename(db, staging, coll, plan.there.exists);
      } catch (const std::exception& e) {
        const std::string dropped = to.drop(db, staging);
        throw std::runtime_error(
            std::string(e.what()) + "; nothing of " + db + "." + coll + " was written (" +
            (dropped.empty() ? "the staging collection " + staging + " was dropped"
                             : "drop the staging collection " + staging + ": " + dropped) +
            ")");
      }
    }
    if (metadata) to.write_properties(db, coll, info);
    return;
  }
  if (in.dump.metadata_given) to.write_properties(db, coll, info);
  to.create_indexes(db, coll, in.dump.indexes);
  to.start(db, coll, upsert ? mongo_copy::writes::ordered_upsert : mongo_copy::writes::insert);
  try {
    send_documents(in, to);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; " + plural(to.written(), "document") +
                             " of " + in.file + " were written into " + db + "." + coll +
                             ": the same command with --upsert finishes it");
  }
}

/// rheo import --mongo-uri: returns the collections and documents written.
std::pair<std::uint64_t, std::uint64_t>
import_mongo(const arguments& a, std::vector<collection_files> files, bool upsert) {
  file_source source(std::move(files), false);
  std::vector<parsed_collection> input;
  try {
    input = parse_all(source);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; nothing was imported");
  }
  mongo_copy to(a.config.mongo_uri);
  std::vector<import_plan> plans;
  try {
    plans = plan_import(std::move(input), to, upsert);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; nothing was imported");
  }
  std::string done;
  std::uint64_t documents = 0;
  for (auto& plan : plans) {
    const auto started = std::chrono::steady_clock::now();
    try {
      write_collection(plan, to, upsert);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) +
                               (done.empty() ? std::string() : "; imported before it: " + done));
    }
    const parsed_collection& in = plan.input;
    report_imported(in.dump.db, in.dump.coll, in.bson.size(), in.dump.indexes.size(), in.file,
                    " -> MongoDB " + in.dump.db + "." + in.dump.coll, started, in.changed);
    done += (done.empty() ? "" : ", ") + in.dump.db + "." + in.dump.coll;
    documents += in.bson.size();
  }
  return {plans.size(), documents};
}

} // namespace

int export_command(const std::vector<std::string>& args) {
  return guarded("export", export_usage, [&] {
    const arguments a = parse_arguments(args, {"--out", "--db", "--coll"}, {"--relaxed"});
    if (a.help) {
      std::cout << export_usage;
      return 0;
    }
    if (!a.positional.empty()) throw usage_error("unexpected argument '" + a.positional[0] + "'");
    if (!a.flags.count("--out")) throw usage_error("--out PATH is required");
    const auto started = std::chrono::steady_clock::now();
    const std::string coll = a.flags.count("--coll") ? a.flags.at("--coll") : "";
    const std::string db = a.flags.count("--db") || !coll.empty() ? default_db(a) : std::string();
    folder_writer writer(a.flags.at("--out"), a.switches.count("--relaxed")
                                                  ? ejson_mode::relaxed
                                                  : ejson_mode::canonical);
    std::string of;
    if (a.config.mongo_uri.empty()) {
      of = a.config.data_dir + " (change-log position " +
           export_data_dir(a.config.data_dir, db, coll, writer) + ")";
    } else {
      mongo_copy from(a.config.mongo_uri);
      export_mongo(a, db, coll, writer, from);
      of = "MongoDB at " + from.hosts();
    }
    std::cout << "exported " << plural(writer.collections_, "collection") << ", "
              << plural(writer.documents_, "document") << " of " << of << " to "
              << a.flags.at("--out") << " in "
              << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started))
              << "\n";
    return 0;
  });
}

int import_command(const std::vector<std::string>& args) {
  return guarded("import", import_usage, [&] {
    const arguments a = parse_arguments(args, {"--db", "--coll"}, {"--upsert"});
    if (a.help) {
      std::cout << import_usage;
      return 0;
    }
    if (a.positional.size() != 1) throw usage_error("give one PATH (a folder or a file)");
    const bool upsert = a.switches.count("--upsert") > 0;
    if (upsert && a.config.mongo_uri.empty())
      throw usage_error("--upsert is for an import into MongoDB (--mongo-uri): an import into "
                        "--data-dir is all or nothing");
    const std::string& path = a.positional[0];
    const std::string coll = a.flags.count("--coll") ? a.flags.at("--coll") : "";
    std::vector<collection_files> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      files = folder_collections(path, default_db(a), coll);
      if (files.empty())
        throw std::runtime_error(path + ": no <collection>.json or .metadata.json files" +
                                 (coll.empty() ? std::string() : " of collection " + coll));
    } else if (fs::is_regular_file(path, ec)) {
      if (coll.empty()) throw usage_error("a single file needs --coll NAME");
      files.push_back({default_db(a), coll, path, ""});
    } else {
      throw std::runtime_error(path + ": no such file or folder");
    }
    const auto started = std::chrono::steady_clock::now();
    if (!a.config.mongo_uri.empty()) {
      const auto [collections, documents] = import_mongo(a, std::move(files), upsert);
      std::cout << "imported " << plural(collections, "collection") << ", "
                << plural(documents, "document") << " into MongoDB in "
                << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started))
                << "\n";
      return 0;
    }
    sqlite_store_options options;
    options.data_dir = a.config.data_dir;
    options.durability = a.config.durability == "normal" ? durability::normal : durability::full;
    options.changelog_retention = a.config.changelog_retention;
    file_source source(std::move(files));
    std::vector<collection_dump> done;
    try {
      done = import_into_data_dir(options, source);
    } catch (const std::exception& e) {
      std::string why = e.what();
      if (why.find("in use by another process") != std::string::npos)
        why += " (stop the server first, or POST the documents to it)";
      throw std::runtime_error(why + "; nothing was imported");
    }
    std::uint64_t documents = 0;
    for (auto& c : done)
      documents += c.documents;
    std::cout << "imported " << plural(done.size(), "collection") << ", "
              << plural(documents, "document") << " into " << a.config.data_dir << " in "
              << seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started))
              << "\n";
    return 0;
  });
}

} // namespace rheo::tools
