// rheo export and rheo import against real processes: a document holding every BSON type
// rheo stores comes back byte-equal through canonical Extended JSON, with its collection's
// metadata and indexes; mongoexport's files (relaxed mode, legacy forms, no _id) import; bad
// input is refused with its file and line and nothing imported; an import is refused while
// a server runs; kill -9 of an import leaves the store as it was; the output says one line
// per collection.
#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/document/ejson.hpp"
#include "storage/document/json.hpp"
#include "storage/sqlite/connection.hpp"
#include "test/test_support.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

using namespace rheo;
using namespace rheo::test;
namespace fs = std::filesystem;

namespace {

/// Every BSON type rheo's documents hold (value.hpp), some in several forms.
const std::string every_type = R"({"_id":"all",
  "null":null, "t":true, "f":false,
  "i32":7, "i32min":{"$numberInt":"-2147483648"}, "i64":{"$numberLong":"9007199254740993"},
  "i64small":{"$numberLong":"5"}, "d":1.5, "dneg":-0.0, "dint":{"$numberDouble":"3.0"},
  "dbig":1e300, "dtiny":5e-324, "inf":{"$numberDouble":"Infinity"},
  "nan":{"$numberDouble":"NaN"},
  "s":"text", "unicode":"h\u00e9llo \u4e16\u754c \ud83d\ude00", "escapes":"a\"b\\c\nd\te",
  "empty":"", "obj":{"a":{"b":{"c":[1,{"d":2}]}}}, "arr":[1,"two",[3],{"four":4},null],
  "emptyobj":{}, "emptyarr":[],
  "oid":{"$oid":"65a1b2c3d4e5f60718293a4b"},
  "date":{"$date":1700000000123}, "before1970":{"$date":{"$numberLong":"-86400000"}},
  "re":{"$regularExpression":{"pattern":"^a.*b$","options":"imsx"}},
  "bin":{"$binary":{"base64":"AAEC/w==","subType":"00"}},
  "uuid":{"$binary":{"base64":"c//SZESzTGmQ6OfR38A11A==","subType":"04"}},
  "user":{"$binary":{"base64":"","subType":"80"}},
  "ts":{"$timestamp":{"t":1700000000,"i":3}},
  "min":{"$minKey":1}, "max":{"$maxKey":1}})";

/// (key, body) of every document of the store file `path`, in key order.
std::vector<std::pair<std::string, std::string>> stored(const std::string& path) {
  sqlite::connection c(path, SQLITE_OPEN_READONLY);
  static constexpr const char* sql =
      "SELECT db || '.' || coll || ':' || hex(id_key), body FROM documents ORDER BY db, coll, "
      "id_key";
  sqlite::query q(c, sql);
  std::vector<std::pair<std::string, std::string>> out;
  while (q.step())
    out.emplace_back(std::string(q.column_text(0)), std::string(q.column_blob(1)));
  return out;
}

std::string scalar_text(const std::string& path, const char* sql) {
  sqlite::connection c(path, SQLITE_OPEN_READONLY);
  sqlite::query q(c, sql);
  return q.step() ? std::string(q.column_text(0)) : std::string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string get_ok(std::uint16_t port, const std::string& target) {
  auto r = http(port, "GET", target);
  BOOST_TEST_REQUIRE(r.status == 200, target << ": " << r.status << " " << r.body);
  return r.body;
}

/// A store with `notes` (metadata, indexes, the every-type document and 50 more) and
/// `other`, written through a server that is stopped again.
void make_store(const std::string& dir) {
  rheo_process p({}, dir);
  BOOST_TEST_REQUIRE(http(p.port(), "PUT", "/notes",
                          R"({"streams":[{"uri":"all","stages":[{"$match":{"n":{"$gte":1}}}]}],)"
                          R"("aggrs":[{"uri":"count","stages":[{"$count":"n"}]}],"note":"kept"})")
                         .status == 201);
  const std::vector<std::pair<std::string, std::string>> indexes = {
      {"by_n", R"({"keys":{"n":-1},"ops":{"unique":true}})"},
      {"by_tag", R"({"keys":{"tag":1,"n":1},"ops":{"sparse":true}})"},
      {"by_at", R"({"keys":{"at":1},"ops":{"expireAfterSeconds":3600}})"},
      {"partial", R"({"keys":{"s":1},"ops":{"partialFilterExpression":{"n":{"$gt":10}}}})"}};
  for (auto& [name, body] : indexes)
    BOOST_TEST_REQUIRE(http(p.port(), "PUT", "/notes/_indexes/" + name, body).status == 201, name);
  BOOST_TEST_REQUIRE(http(p.port(), "POST", "/notes", every_type).status == 201);
  std::string bulk = "[";
  for (int i = 0; i < 50; ++i)
    bulk += (i ? "," : "") + std::string(R"({"n":)") + std::to_string(i) + R"(,"tag":"t)" +
            std::to_string(i % 3) + R"(","at":{"$date":4000000000000}})";
  BOOST_TEST_REQUIRE(http(p.port(), "POST", "/notes", bulk + "]").status == 200);
  BOOST_TEST_REQUIRE(
      http(p.port(), "POST", "/other", R"({"_id":{"$oid":"65a1b2c3d4e5f60718293a4c"}})").status ==
      201);
}

} // namespace

BOOST_AUTO_TEST_SUITE(transfer_commands_test)

BOOST_AUTO_TEST_CASE(export_then_import_gives_back_every_document_byte_for_byte) {
  temp_dir src, out, dst;
  make_store(src.path());
  auto e = run_rheo({"export", "--data-dir", src.path(), "--out", out.path()});
  BOOST_TEST_REQUIRE(e.exit_code == 0, e.output);
  // One line per collection, then the summary.
  BOOST_TEST(e.output.find("rheo.notes: 51 documents, 4 indexes -> " + out.path() +
                           "/rheo/notes.json") != std::string::npos,
             e.output);
  BOOST_TEST(e.output.find("rheo.other: 1 document, 0 indexes") != std::string::npos, e.output);
  BOOST_TEST(e.output.find("exported 3 collections, 52 documents") != std::string::npos, e.output);
  // One document per line, canonical: every number typed.
  const std::string notes = read_file(out.path() + "/rheo/notes.json");
  BOOST_TEST(std::count(notes.begin(), notes.end(), '\n') == 51);
  BOOST_TEST(notes.find(R"("i32" : { "$numberInt" : "7" })") != std::string::npos);
  BOOST_TEST(notes.find(R"("d" : { "$numberDouble" : "1.5" })") != std::string::npos);
  const std::string meta = read_file(out.path() + "/rheo/notes.metadata.json");
  BOOST_TEST(meta.find(R"("collectionName" : "notes")") != std::string::npos, meta);
  BOOST_TEST(meta.find(R"("name" : "_id_")") != std::string::npos, meta);

  auto i = run_rheo({"import", out.path(), "--data-dir", dst.path()});
  BOOST_TEST_REQUIRE(i.exit_code == 0, i.output);
  BOOST_TEST(i.output.find("rheo.notes: 51 documents, 4 indexes <- ") != std::string::npos,
             i.output);
  BOOST_TEST(i.output.find("imported 3 collections, 52 documents") != std::string::npos, i.output);

  const auto before = stored(src.path() + "/rheo.db");
  const auto after = stored(dst.path() + "/rheo.db");
  BOOST_TEST_REQUIRE(before.size() == 52u);
  BOOST_TEST_REQUIRE(after.size() == before.size());
  for (std::size_t k = 0; k < before.size(); ++k) {
    BOOST_TEST(after[k].first == before[k].first);
    BOOST_TEST((after[k].second == before[k].second), before[k].first);
  }
  // The every-type document decodes to what was posted.
  bool found = false;
  for (auto& [key, body] : after)
    if (decode_bson(body).front().second == value("all")) {
      found = true;
      const object doc = decode_bson(body);
      BOOST_TEST(find_field(doc, "i64")->is<std::int64_t>());
      BOOST_TEST(find_field(doc, "i64small")->is<std::int64_t>());
      BOOST_TEST(find_field(doc, "i32")->is<std::int32_t>());
      BOOST_TEST(find_field(doc, "dint")->is<double>());
      BOOST_TEST(find_field(doc, "ts")->is<timestamp_value>());
      BOOST_TEST(find_field(doc, "min")->is<min_key>());
      BOOST_TEST(find_field(doc, "uuid")->get<binary_value>().subtype == 4);
    }
  BOOST_TEST(found);
  // Metadata and indexes as they were; a server on the import serves them.
  for (const char* sql : {"SELECT hex(metadata) FROM collections WHERE coll = 'notes'",
                          "SELECT group_concat(name || hex(spec), ',') FROM (SELECT name, spec "
                          "FROM indexes ORDER BY name)"})
    BOOST_TEST(scalar_text(src.path() + "/rheo.db", sql) ==
               scalar_text(dst.path() + "/rheo.db", sql));
  rheo_process p({}, dst.path());
  BOOST_TEST(get_ok(p.port(), "/notes/_indexes").find(R"("_id":"by_at")") != std::string::npos);
  BOOST_TEST(get_ok(p.port(), "/notes/_meta").find(R"("note":"kept")") != std::string::npos);
  BOOST_TEST(http(p.port(), "POST", "/notes", R"({"n":7})").status == 409); // unique by_n
  BOOST_TEST(get_ok(p.port(), "/notes/_aggrs/count") == R"([{"n":51}])");
  ws_client ws(p.port(), "/notes/_streams/all");
  BOOST_TEST_REQUIRE(ws.upgrade_status() == 101);
}

BOOST_AUTO_TEST_CASE(mongoexport_files_import_in_relaxed_and_legacy_forms) {
  temp_dir dir, files;
  const std::string file = files.path() + "/people.json";
  // mongoexport's default (relaxed v2), its canonical mode, and the legacy forms of older
  // versions; no _id (one is made), _id not first (moved first), a Decimal128 (a double).
  write_file(file,
             R"({"_id":{"$oid":"65a1b2c3d4e5f60718293a01"},"name":"ann","age":41,)"
             R"("born":{"$date":"1983-04-05T06:07:08.009Z"},"score":2.5,)"
             R"("big":{"$numberLong":"9007199254740993"},"tags":["a","b"]})"
             "\n"
             R"({"_id":{"$oid":"65a1b2c3d4e5f60718293a02"},"name":"bob",)"
             R"("age":{"$numberInt":"37"},"born":{"$date":{"$numberLong":"0"}}})"
             "\n\n"
             R"({"name":"cy","seen":{"$date":1700000000000},"re":{"$regex":"^c","$options":"i"},)"
             R"("bin":{"$binary":"AQI=","$type":"00"}})"
             "\n"
             R"({"name":"dee","_id":"dee","price":{"$numberDecimal":"1.25"}})"
             "\n{}\n");
  auto r = run_rheo({"import", file, "--coll", "people", "--data-dir", dir.path()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("rheo.people: 5 documents, 0 indexes <- " + file) != std::string::npos,
             r.output);
  BOOST_TEST(r.output.find("note: 1 document held values rheo keeps as another type") !=
                 std::string::npos,
             r.output);
  rheo_process p({}, dir.path());
  const object ann = parse_json(get_ok(p.port(), "/people/65a1b2c3d4e5f60718293a01")).as_object();
  BOOST_TEST(find_field(ann, "born")->get<date_time>().millis == 418370828009);
  BOOST_TEST(find_field(ann, "big")->get<std::int64_t>() == 9007199254740993);
  BOOST_TEST(find_field(ann, "age")->get<std::int32_t>() == 41);
  const std::string dee = get_ok(p.port(), "/people/dee");
  BOOST_TEST(dee.rfind(R"({"_id":"dee","name":"dee","price":1.25)", 0) == 0u, dee);
  const object cy =
      parse_json(get_ok(p.port(), "/people?filter={\"name\":\"cy\"}")).as_array()[0].as_object();
  BOOST_TEST(cy.front().first == "_id");
  BOOST_TEST(cy.front().second.is<object_id>());
  BOOST_TEST(find_field(cy, "re")->get<regex_value>().options == "i");
  BOOST_TEST(find_field(cy, "bin")->get<binary_value>().data == std::string("\x01\x02", 2));
  BOOST_TEST(get_ok(p.port(), "/people/_size") == R"({"_size":5})");
}

BOOST_AUTO_TEST_CASE(bad_input_names_its_file_and_line_and_imports_nothing) {
  temp_dir dir, files;
  // A store that holds something already.
  {
    rheo_process p({}, dir.path());
    BOOST_TEST_REQUIRE(http(p.port(), "POST", "/c", R"({"_id":"there","k":1})").status == 201);
    BOOST_TEST_REQUIRE(
        http(p.port(), "PUT", "/c/_indexes/by_k", R"({"keys":{"k":1},"ops":{"unique":true}})")
            .status == 201);
  }
  const auto before = stored(dir.path() + "/rheo.db");
  const std::string changes_before =
      scalar_text(dir.path() + "/rheo.db", "SELECT count(*) || '/' || max(seq) FROM changes");
  // A folder whose first collection is fine and whose second has the fault at line 3.
  const std::string folder = files.path() + "/in";
  fs::create_directories(folder + "/rheo");
  write_file(folder + "/rheo/a.json", "{\"_id\":1}\n{\"_id\":2}\n");
  const std::vector<std::pair<std::string, std::string>> faults = {
      {"{\"x\": }", "line 3: offset 6: Invalid value."},
      {"[1,2]", "line 3: not a JSON object"},
      {"{\"x\":1} {\"y\":2}", "line 3: offset 8: The document root must not be followed"},
      {"{\"x\":{\"$numberLong\":\"ten\"}}", "line 3: "},
      {"{\"_id\":\"dup\"}", "line 3: _id \"dup\" is already in rheo.b"},
      {"{\"_id\":[1]}", "line 3: _id cannot be an array"},
  };
  for (auto& [line, why] : faults) {
    write_file(folder + "/rheo/b.json", "{\"_id\":\"dup\"}\n\n" + line + "\n{\"_id\":\"last\"}\n");
    auto r = run_rheo({"import", folder, "--data-dir", dir.path()});
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(r.output.find(folder + "/rheo/b.json, " + why) != std::string::npos,
               line << " -> " << r.output);
    BOOST_TEST(r.output.find("nothing was imported") != std::string::npos, r.output);
  }
  // The store's own constraints: an _id it holds, a unique index.
  write_file(folder + "/rheo/b.json", "{\"_id\":\"fine\"}\n");
  write_file(folder + "/rheo/c.json", "{\"_id\":\"new\",\"k\":2}\n{\"_id\":\"there\"}\n");
  auto r = run_rheo({"import", folder, "--data-dir", dir.path()});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("c.json, line 2: _id \"there\" is already in rheo.c") !=
                 std::string::npos,
             r.output);
  write_file(folder + "/rheo/c.json", "{\"_id\":\"new\",\"k\":2}\n{\"_id\":\"k1\",\"k\":1}\n");
  r = run_rheo({"import", folder, "--data-dir", dir.path()});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("c.json, line 2: ") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("by_k") != std::string::npos, r.output);
  // A bad metadata file.
  fs::remove(folder + "/rheo/c.json");
  write_file(folder + "/rheo/b.metadata.json",
             R"({"metadata":{"streams":[{"uri":"s","stages":[{"$nosuchstage":1}]}]}})");
  r = run_rheo({"import", folder, "--data-dir", dir.path()});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("b.metadata.json: ") != std::string::npos, r.output);
  // Nothing of any of them is in the store, not even in its change log.
  BOOST_TEST((stored(dir.path() + "/rheo.db") == before));
  BOOST_TEST(scalar_text(dir.path() + "/rheo.db",
                         "SELECT count(*) || '/' || max(seq) FROM changes") == changes_before);
  BOOST_TEST(scalar_text(dir.path() + "/rheo.db", "SELECT group_concat(coll) FROM collections") ==
             "c,messages");
  // Bad arguments.
  BOOST_TEST(run_rheo({"import", folder + "/rheo/a.json", "--data-dir", dir.path()}).exit_code ==
             2);
  BOOST_TEST(run_rheo({"import", "--data-dir", dir.path()}).exit_code == 2);
  BOOST_TEST(run_rheo({"export", "--data-dir", dir.path()}).exit_code == 2);
  BOOST_TEST(run_rheo({"import", files.path() + "/none", "--data-dir", dir.path()}).exit_code == 1);
}

BOOST_AUTO_TEST_CASE(import_appends_to_an_existing_collection_and_is_refused_while_a_server_runs) {
  temp_dir files;
  rheo_process p;
  BOOST_TEST(http(p.port(), "POST", "/c", R"({"_id":"old"})").status == 201);
  const std::string file = files.path() + "/c.json";
  write_file(file, "{\"_id\":\"new\"}\n");
  auto r = run_rheo({"import", file, "--coll", "c", "--data-dir", p.data_dir()});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("in use by another process (stop the server first") != std::string::npos,
             r.output);
  const std::string dir = p.data_dir();
  // Export works while it runs; one collection of one database.
  auto e = run_rheo({"export", "--data-dir", dir, "--coll", "c", "--out", files.path() + "/x"});
  BOOST_TEST_REQUIRE(e.exit_code == 0, e.output);
  BOOST_TEST(read_file(files.path() + "/x/rheo/c.json")
                 .rfind(R"({ "_id" : "old", "_etag" : { "$oid" : ")", 0) == 0u);
  BOOST_TEST(!fs::exists(files.path() + "/x/rheo/messages.json"));
  BOOST_TEST(run_rheo({"export", "--data-dir", dir, "--coll", "nope", "--out", files.path() + "/y"})
                 .output.find("collection rheo.nope does not exist") != std::string::npos);
  p.stop();
  r = run_rheo({"import", file, "--coll", "c", "--data-dir", dir});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  rheo_process q({}, dir);
  BOOST_TEST(get_ok(q.port(), "/c/_size") == R"({"_size":2})");
  BOOST_TEST(http(q.port(), "GET", "/c/new").status == 200);
}

BOOST_AUTO_TEST_CASE(kill_9_during_an_import_leaves_the_store_as_it_was_and_a_second_import_works) {
  temp_dir dir, files;
  {
    rheo_process p({}, dir.path());
    BOOST_TEST_REQUIRE(http(p.port(), "POST", "/c", R"({"_id":"there"})").status == 201);
  }
  const auto before = stored(dir.path() + "/rheo.db");
  // 200,000 lines: rheo.a (20,000) is reported done, inside the import's one transaction,
  // while rheo.b (180,000) is still being written.
  const std::string folder = files.path() + "/in";
  fs::create_directories(folder + "/rheo");
  for (auto [coll, count] : {std::pair<std::string, int>{"a", 20000}, {"b", 180000}}) {
    std::ofstream out(folder + "/rheo/" + coll + ".json", std::ios::binary);
    for (int i = 0; i < count; ++i)
      out << R"({"_id":)" << i << R"(,"n":)" << i << R"(,"s":"some text to import"})" << '\n';
  }
  const std::string log = files.path() + "/import.log";
  const pid_t pid = spawn_rheo({"import", folder, "--data-dir", dir.path()}, log);
  const bool reported = eventually(
      [&] { return read_file(log).find("rheo.a: 20000 documents") != std::string::npos; },
      std::chrono::seconds(120));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST_REQUIRE(reported, read_file(log));
  // Killed, not finished (b was still being written).
  BOOST_TEST_REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL), read_file(log));
  BOOST_TEST(read_file(log).find("imported 2 collections") == std::string::npos, read_file(log));

  // A server on the data dir serves what it held before: nothing of the import.
  {
    rheo_process p({}, dir.path());
    BOOST_TEST(get_ok(p.port(), "/c/_size") == R"({"_size":1})");
    BOOST_TEST(http(p.port(), "GET", "/a/_size").status == 404);
    BOOST_TEST(http(p.port(), "GET", "/b/_size").status == 404);
  }
  BOOST_TEST((stored(dir.path() + "/rheo.db") == before));

  // The same import again, whole.
  // (200,000 documents: well over the default 30 s under the sanitizers on a loaded machine.)
  auto r = run_rheo({"import", folder, "--data-dir", dir.path()}, {}, std::chrono::seconds(300));
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("imported 2 collections, 200000 documents") != std::string::npos,
             r.output);
  rheo_process q({}, dir.path());
  BOOST_TEST(get_ok(q.port(), "/a/_size") == R"({"_size":20000})");
  BOOST_TEST(get_ok(q.port(), "/b/_size") == R"({"_size":180000})");
  BOOST_TEST(get_ok(q.port(), "/c/_size") == R"({"_size":1})");
}

BOOST_AUTO_TEST_SUITE_END()
