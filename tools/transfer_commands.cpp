// rheo export and rheo import: collections as MongoDB Extended JSON files, one document per
// line as mongoexport writes them, each beside a metadata file as mongodump writes it
// (storage/sqlite/transfer.hpp reads and writes the store).
//
// With --mongo-uri the same files come from and go into MongoDB (storage/mongo/migration.hpp):
// export reads each collection with its own cursor; import reads and converts every file
// before its first write (keeping only each file's _ids, their lines and its count), then
// reads each file again to write it a batch at a time (so its memory is one batch and the
// _ids, whatever the size of the files; a file whose size, modification time, lines or _ids
// changed in between is an error), writes a new collection into a staging collection
// renamed into place, and checks the _ids of a collection that holds documents before
// inserting into it.
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
    "  read and checked before the first write (bad input writes nothing), then read again\n"
    "  to write it (the files must not change meanwhile); a new (or empty) collection is\n"
    "  written into a staging collection renamed into place, whole or not at all; one that\n"
    "  holds documents is checked for the file's _ids first (any there: nothing written),\n"
    "  then inserted into in order: a failure then says how many were written, and the same\n"
    "  command with --upsert (every document replaces by _id) finishes it. Exit status: 0\n"
    "  done, 1 failed, 2 bad arguments.\n";

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
/// rheo stores it. `changed` is set when rheo's types changed a value (Decimal128, ...),
/// `generated` when the line had no _id.
import_document document_of_line(const std::string& line, bool& changed, bool& generated) {
  const std::string bson = bson_from_ejson(line);
  import_document d;
  d.doc = decode_bson(bson);
  d.bson = encode_bson(d.doc);
  changed = d.bson != bson;
  const auto id =
      std::find_if(d.doc.begin(), d.doc.end(), [](auto& f) { return f.first == "_id"; });
  generated = id == d.doc.end();
  if (id != d.doc.end() && id == d.doc.begin()) return d;
  if (generated)
    d.doc.insert(d.doc.begin(), {"_id", value(object_id::generate())});
  else
    std::rotate(d.doc.begin(), id, id + 1);
  d.bson = encode_bson(d.doc);
  return d;
}

/// A file's size and modification time: what says it is the file read before.
struct file_stamp {
  std::uintmax_t size = 0;
  fs::file_time_type modified;
  friend bool operator==(const file_stamp&, const file_stamp&) = default;
};

file_stamp stamp_of(const std::string& path) {
  std::error_code ec;
  file_stamp s{fs::file_size(path, ec), fs::last_write_time(path, ec)};
  return ec ? file_stamp{} : s;
}

/// The documents of one data file, a line at a time (blank lines skipped), converted by
/// document_of_line(): one line in memory at a time. Errors name the file and line.
class document_reader {
public:
  explicit document_reader(std::string path)
      : path_(std::move(path)), stamp_(stamp_of(path_)), in_(path_, std::ios::binary) {
    if (!in_) throw std::runtime_error(path_ + ": cannot read");
  }

  std::optional<import_document> next() {
    while (std::getline(in_, line_)) {
      ++line_no_;
      read_bytes_ += line_.size() + 1;
      if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        bool changed = false;
        import_document d = document_of_line(line_, changed, generated_);
        changed_ += changed;
        return d;
      } catch (const std::exception& e) {
        throw std::runtime_error(where() + ": " + e.what());
      }
    }
    if (in_.bad()) throw std::runtime_error(path_ + ": cannot read");
    return std::nullopt;
  }

  std::string where() const { return path_ + ", line " + std::to_string(line_no_); }
  const std::string& path() const { return path_; }
  /// The file's size and modification time when it was opened.
  const file_stamp& stamp() const { return stamp_; }
  std::uint64_t line() const { return line_no_; }
  /// Whether the last document's _id was generated (its line had none).
  bool generated() const { return generated_; }
  /// Documents so far whose values rheo keeps as another type.
  std::uint64_t changed() const { return changed_; }
  std::uint64_t read_bytes() const { return read_bytes_; }

private:
  std::string path_;
  file_stamp stamp_;
  std::ifstream in_;
  std::string line_;
  std::uint64_t line_no_ = 0, read_bytes_ = 0, changed_ = 0;
  bool generated_ = false;
};

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
    reader_.reset();
    file_bytes_ = 0;
    if (!current_.data.empty()) {
      reader_.emplace(current_.data);
      file_bytes_ = reader_->stamp().size;
    }
    if (report_) meter_ = std::make_unique<progress_meter>(c.db + "." + c.coll, "documents");
    started_ = std::chrono::steady_clock::now();
    indexes_ = c.indexes.size();
    return c;
  }

  std::optional<import_document> next_document() override {
    if (!reader_) return std::nullopt;
    return reader_->next();
  }

  std::string where() const override {
    return reader_ ? reader_->where() : current_.metadata + ", line 0";
  }

  /// The current collection's file (its metadata file when it has no documents).
  const std::string& file() const {
    return current_.data.empty() ? current_.metadata : current_.data;
  }
  /// The current collection's data file being read (none: a metadata file alone).
  const document_reader* reader() const { return reader_ ? &*reader_ : nullptr; }
  /// Documents of the current collection whose values rheo keeps as another type.
  std::uint64_t changed() const { return reader_ ? reader_->changed() : 0; }

  void written(std::uint64_t done) override {
    done_ = done;
    if (!meter_) return;
    // Time left from the bytes read: the total of documents is not known beforehand.
    const std::uint64_t read = reader_ ? reader_->read_bytes() : 0;
    const std::uint64_t total = read ? static_cast<std::uint64_t>(static_cast<double>(done) *
                                                                  static_cast<double>(file_bytes_) /
                                                                  static_cast<double>(read))
                                     : 0;
    meter_->update(done, std::max(total, done), true);
  }

  /// Ends the last collection's line (called once more after the last).
  void finish_collection() {
    if (!meter_) return;
    meter_.reset();
    report_imported(current_.db, current_.coll, done_, indexes_, file(), "", started_, changed());
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
  std::optional<document_reader> reader_;
  std::uint64_t file_bytes_ = 0, done_ = 0;
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

/// The _ids a file gives, each with its line, in file order: each kept as the BSON document
/// {_id: id} (tens of bytes), not as a value. Generated _ids (a line without one) are left
/// out: no other document holds them.
class file_ids {
public:
  void add(const value& id, std::uint64_t line) {
    bytes_ += encode_bson(object{{"_id", id}});
    ends_.push_back(bytes_.size());
    lines_.push_back(line);
  }
  std::size_t size() const { return lines_.size(); }
  value id(std::size_t i) const { return decode_bson(bson(i)).front().second; }
  std::uint64_t line(std::size_t i) const { return lines_[i]; }
  /// Whether the i-th _id is `id`, on `line`.
  bool same(std::size_t i, const value& id, std::uint64_t line) const {
    return i < size() && lines_[i] == line && bson(i) == encode_bson(object{{"_id", id}});
  }

private:
  std::string_view bson(std::size_t i) const {
    const std::size_t from = i ? ends_[i - 1] : 0;
    return std::string_view(bytes_).substr(from, ends_[i] - from);
  }

  std::string bytes_;
  std::vector<std::size_t> ends_;
  std::vector<std::uint64_t> lines_;
};

/// The _ids of a file_ids by their index-key encoding (1, 1L and 1.0 are one _id), to find
/// an _id twice in a file: an open-addressing table of positions, with each _id's hash
/// (24 to 40 bytes an _id, half of a hash map's node and key).
class id_index {
public:
  explicit id_index(const file_ids& ids) : ids_(ids) {}

  /// The position of an earlier _id whose encoding is `key`, or none (the last _id added to
  /// the file_ids, whose encoding `key` is, is then added).
  std::optional<std::size_t> find_or_add(const std::string& key) {
    const std::uint64_t hash = std::hash<std::string>{}(key);
    if (2 * (hashes_.size() + 1) > slots_.size()) grow();
    std::size_t s = hash & (slots_.size() - 1);
    for (; slots_[s]; s = (s + 1) & (slots_.size() - 1)) {
      const std::size_t at = slots_[s] - 1;
      if (hashes_[at] == hash && encode_key(ids_.id(at)) == key) return at;
    }
    slots_[s] = hashes_.size() + 1;
    hashes_.push_back(hash);
    return std::nullopt;
  }

private:
  void grow() {
    slots_.assign(std::max<std::size_t>(64, slots_.size() * 2), 0);
    for (std::size_t at = 0; at < hashes_.size(); ++at) {
      std::size_t s = hashes_[at] & (slots_.size() - 1);
      while (slots_[s])
        s = (s + 1) & (slots_.size() - 1);
      slots_[s] = at + 1;
    }
  }

  const file_ids& ids_;
  std::vector<std::uint64_t> hashes_; // of each position's key
  std::vector<std::size_t> slots_;    // a position + 1, or 0: empty
};

/// One collection of an import into MongoDB as the first pass read and checked it: what
/// the writes and the _id check need, not its documents (the second pass reads them again).
struct checked_collection {
  collection_dump dump; // name, metadata and indexes
  std::string file;     // its data file, or its metadata file when it has none
  std::string data;     // its data file ("": none)
  file_stamp stamp;     // the data file's when the first pass opened it
  file_ids ids;
  std::uint64_t documents = 0, changed = 0;
};

/// The first pass: every collection `source` yields, every document converted and none
/// kept; throws naming the file and line of the first bad one (an _id twice in a file too).
std::vector<checked_collection> check_all(file_source& source) {
  std::vector<checked_collection> out;
  while (auto c = source.next_collection()) {
    checked_collection p;
    p.dump = std::move(*c);
    p.file = source.file();
    if (const document_reader* reader = source.reader()) {
      p.data = reader->path();
      p.stamp = reader->stamp();
    }
    id_index seen(p.ids);
    while (auto d = source.next_document()) {
      ++p.documents;
      const document_reader& reader = *source.reader();
      if (reader.generated()) continue;
      const value& id = d->doc.front().second;
      if (id.is_array()) throw std::runtime_error(source.where() + ": _id cannot be an array");
      p.ids.add(id, reader.line());
      if (const auto at = seen.find_or_add(encode_key(id)))
        throw std::runtime_error(source.where() + ": _id " + to_json(id) + " is also on line " +
                                 std::to_string(p.ids.line(*at)));
    }
    p.changed = source.changed();
    out.push_back(std::move(p));
  }
  return out;
}

/// What an import into MongoDB found of each collection before writing.
struct import_plan {
  checked_collection input;
  mongo_copy::presence there;
};

/// Checks in MongoDB whether each collection holds documents and, if so (without --upsert),
/// that it holds none of the file's _ids.
std::vector<import_plan> plan_import(std::vector<checked_collection> input, mongo_copy& to,
                                     bool upsert) {
  std::vector<import_plan> plans;
  for (auto& p : input)
    plans.push_back({std::move(p), {}});
  for (auto& plan : plans) {
    const checked_collection& in = plan.input;
    plan.there = to.probe(in.dump.db, in.dump.coll);
    if (!plan.there.holds_documents || upsert || in.ids.size() == 0) continue;
    const auto held = to.present(in.dump.db, in.dump.coll, in.ids.size(),
                                 [&](std::size_t i) { return in.ids.id(i); });
    if (held.empty()) continue;
    const std::size_t first = held.front();
    throw std::runtime_error(
        in.file + ", line " + std::to_string(in.ids.line(first)) + ": _id " +
        to_json(in.ids.id(first)) + " is already in " + in.dump.db + "." + in.dump.coll +
        (held.size() > 1 ? " (and " + std::to_string(held.size() - 1) + " more of the file's)"
                         : std::string()) +
        " (--upsert replaces them)");
  }
  return plans;
}

/// The error of a file that is no longer what the first pass read.
std::runtime_error changed_file(const std::string& file, const std::string& how) {
  return std::runtime_error(file + " changed while it was imported (" + how +
                            "): it was read once to check it and is read again to write it");
}

/// Throws unless `in`'s data file has the size and modification time the first pass saw.
void check_unchanged(const checked_collection& in) {
  if (!in.data.empty() && stamp_of(in.data) != in.stamp)
    throw changed_file(in.data, "its size or modification time differ");
}

/// The second pass: reads `in`'s file again and sends its documents into the collection `to`
/// writes into, one batch in memory at a time, with progress; throws if the file is no
/// longer what the first pass checked (its stamp, a line, an _id or the count differ).
void send_documents(const checked_collection& in, mongo_copy& to) {
  if (in.data.empty()) return;
  check_unchanged(in);
  document_reader reader(in.data);
  progress_meter meter(in.dump.db + "." + in.dump.coll, "documents");
  std::uint64_t n = 0;
  std::size_t ids = 0;
  while (true) {
    std::optional<import_document> d;
    try {
      d = reader.next();
    } catch (const std::exception& e) {
      // "<file>, line <n>: why" -> "line <n> no longer converts: why"
      std::string why = e.what();
      if (why.starts_with(in.data + ", ")) why.erase(0, in.data.size() + 2);
      if (const auto colon = why.find(": "); why.starts_with("line ") && colon != why.npos)
        why.insert(colon, " no longer converts");
      throw changed_file(in.data, why);
    }
    if (!d) break;
    if (++n > in.documents)
      throw changed_file(in.data, "line " + std::to_string(reader.line()) + " is new");
    if (!reader.generated() && !in.ids.same(ids++, d->doc.front().second, reader.line()))
      throw changed_file(in.data, "line " + std::to_string(reader.line()) + " differs");
    to.document(d->bson);
    if (n % 1000 == 0) meter.update(to.written(), in.documents);
  }
  if (n != in.documents || ids != in.ids.size())
    throw changed_file(in.data,
                       plural(n, "document") + " instead of " + std::to_string(in.documents));
  check_unchanged(in);
  to.send();
}

/// Writes one planned collection; throws saying what was written.
void write_collection(const import_plan& plan, mongo_copy& to, bool upsert) {
  const checked_collection& in = plan.input;
  const std::string& db = in.dump.db;
  const std::string& coll = in.dump.coll;
  const collection_info info{in.dump.metadata, object_id{}};
  const bool metadata = in.dump.metadata_given || !plan.there.exists;
  if (!plan.there.holds_documents) {
    // New or empty: whole or not at all, through a staging collection.
    if (in.documents || !in.dump.indexes.empty()) {
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
  try {
    check_unchanged(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; nothing of " + db + "." + coll +
                             " was written");
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
  std::vector<checked_collection> input;
  try {
    input = check_all(source);
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
    const checked_collection& in = plan.input;
    report_imported(in.dump.db, in.dump.coll, in.documents, in.dump.indexes.size(), in.file,
                    " -> MongoDB " + in.dump.db + "." + in.dump.coll, started, in.changed);
    done += (done.empty() ? "" : ", ") + in.dump.db + "." + in.dump.coll;
    documents += in.documents;
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
