// rheo backup and rheo restore against real processes: a backup while 8 writers write holds
// every write acknowledged before it started and passes its integrity check; kill -9 of the
// server (and of the backup) during a backup; a restore round trip; a restore refused while
// a server runs and for bad files, leaving the data dir as it was; resume tokens from
// before a restore are history lost (4410, SSE history-lost), also once the restored
// server has written past them; POST /_backup.
#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/sqlite/backup.hpp"
#include "storage/sqlite/connection.hpp"
#include "test/test_support.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace rheo;
using namespace rheo::test;
namespace fs = std::filesystem;

namespace {

const std::string pad(900, 'p');

/// Loads `n` documents of about 1 KB into `coll` with bulk POSTs of 1000.
void preload(std::uint16_t port, const std::string& coll, int n) {
  for (int first = 0; first < n; first += 1000) {
    std::string body = "[";
    for (int i = first; i < std::min(n, first + 1000); ++i)
      body += (i == first ? "" : ",") + std::string(R"({"_id":"pre)") + std::to_string(i) +
              R"(","pad":")" + pad + "\"}";
    body += "]";
    auto r = http(port, "POST", "/" + coll, body);
    BOOST_REQUIRE_MESSAGE(r.status == 200 || r.status == 201, r.status << " " << r.body);
  }
}

/// Writers that POST single documents with known ids until stopped, each keeping the ids
/// the server acknowledged (201), in order.
class writers {
public:
  writers(std::uint16_t port, const std::string& coll, int count) {
    acked_.resize(static_cast<std::size_t>(count));
    for (int w = 0; w < count; ++w)
      threads_.emplace_back([this, port, coll, w] {
        for (int n = 0; !stop_; ++n) {
          const std::string id = "w" + std::to_string(w) + "-" + std::to_string(n);
          const auto t0 = std::chrono::steady_clock::now();
          http_result r;
          try {
            r = http(port, "POST", "/" + coll,
                     R"({"_id":")" + id + R"(","n":)" + std::to_string(n) + "}");
          } catch (const std::exception&) {
            return; // the server is gone (kill -9)
          }
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
          if (r.status != 201) return;
          std::lock_guard lk(mu_);
          acked_[static_cast<std::size_t>(w)].push_back(id);
          longest_ms_ = std::max<std::int64_t>(longest_ms_, ms);
        }
      });
  }
  ~writers() { stop(); }

  /// Every id acknowledged so far.
  std::set<std::string> acked() {
    std::lock_guard lk(mu_);
    std::set<std::string> out;
    for (auto& ids : acked_)
      out.insert(ids.begin(), ids.end());
    return out;
  }
  std::size_t acked_count() {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    for (auto& ids : acked_)
      n += ids.size();
    return n;
  }
  std::int64_t longest_ms() {
    std::lock_guard lk(mu_);
    return longest_ms_;
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::vector<std::string>> acked_;
  std::int64_t longest_ms_ = 0;
  std::vector<std::thread> threads_;
};

/// The `_id`s of db.coll's documents in the store file `path` (a backup or a rheo.db).
std::set<std::string> ids_in(const std::string& path, const std::string& coll,
                             const std::string& db = "rheo") {
  sqlite::connection c(path, SQLITE_OPEN_READONLY);
  static constexpr const char* sql = "SELECT body FROM documents WHERE db = ?1 AND coll = ?2";
  sqlite::query q(c, sql);
  q.text(1, db).text(2, coll);
  std::set<std::string> out;
  while (q.step()) {
    const object doc = decode_bson(q.column_blob(0));
    for (auto& [k, v] : doc)
      if (k == "_id" && v.is_string()) out.insert(v.as_string());
  }
  return out;
}

std::int64_t scalar(const std::string& path, const char* sql) {
  sqlite::connection c(path, SQLITE_OPEN_READONLY);
  sqlite::query q(c, sql);
  return q.step() ? q.column_int64(0) : -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A missing element of `expected` in `actual`, or "".
std::string first_missing(const std::set<std::string>& expected,
                          const std::set<std::string>& actual) {
  for (auto& id : expected)
    if (!actual.count(id)) return id;
  return "";
}

/// The body of GET `target`, which must answer 200.
std::string get_ok(std::uint16_t port, const std::string& target) {
  auto r = http(port, "GET", target);
  BOOST_TEST_REQUIRE(r.status == 200, target << ": " << r.status << " " << r.body);
  return r.body;
}

} // namespace

BOOST_AUTO_TEST_SUITE(backup_commands_test)

BOOST_AUTO_TEST_CASE(a_backup_while_8_writers_write_holds_every_write_acknowledged_before_it) {
  rheo_process p;
  preload(p.port(), "w", 20000);
  writers w(p.port(), "w", 8);
  BOOST_REQUIRE(eventually([&] { return w.acked_count() >= 200; }));
  const std::set<std::string> before = w.acked();
  temp_dir out;
  const std::string file = out.path() + "/w.backup";
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_rheo({"backup", "--data-dir", p.data_dir(), "--out", file});
  const auto backup_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  const std::size_t acked_by_end = w.acked_count();
  // Writes went on meanwhile: the writers are acknowledged after the backup too.
  BOOST_TEST(eventually([&] { return w.acked_count() > acked_by_end + 50; }));
  w.stop();
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("backup " + file + ": ") != std::string::npos, r.output);
  BOOST_TEST_MESSAGE("backup of 20,000 + " << before.size() << " documents: " << backup_ms
                                           << " ms; " << acked_by_end - before.size()
                                           << " writes acknowledged during it; longest write "
                                           << w.longest_ms() << " ms");

  // One file, sound, saying what it holds.
  BOOST_TEST(!fs::exists(file + "-wal"));
  BOOST_TEST(!fs::exists(file + ".partial"));
  const backup_summary s = check_backup(file);
  BOOST_TEST(s.schema_version == 3);
  BOOST_TEST(s.position == token_from_seq(static_cast<std::uint64_t>(
                               scalar(file, "SELECT max(seq) FROM changes"))));
  BOOST_TEST(read_file(file)[18] == 1); // a rollback journal: readable without a -wal

  const std::set<std::string> in_backup = ids_in(file, "w");
  BOOST_TEST(first_missing(before, in_backup) == "");
  BOOST_TEST(in_backup.size() >= 20000 + before.size());
  // One snapshot: as many documents as insert entries in its change log (writers only insert),
  // and nothing the writers did not write.
  BOOST_TEST(static_cast<std::int64_t>(in_backup.size()) ==
             scalar(file, "SELECT count(*) FROM changes WHERE coll = 'w'"));
  BOOST_TEST(in_backup.size() <= 20000 + w.acked_count() + 8);
}

BOOST_AUTO_TEST_CASE(kill_9_of_the_server_during_a_backup_leaves_both_whole) {
  temp_dir data;
  const std::string dir = data.path() + "/data";
  auto p = std::make_unique<rheo_process>(std::vector<std::string>{}, dir);
  preload(p->port(), "w", 40000);
  std::set<std::string> before, all;
  temp_dir out;
  const std::string file = out.path() + "/k.backup";
  {
    writers w(p->port(), "w", 4);
    BOOST_REQUIRE(eventually([&] { return w.acked_count() >= 100; }));
    before = w.acked();
    auto backup = std::async(std::launch::async, [&] {
      return run_rheo({"backup", "--data-dir", dir, "--out", file});
    });
    // Killed while the backup copies (its .partial file exists) or, at the latest, right
    // after it finished.
    BOOST_TEST(eventually([&] { return fs::exists(file + ".partial") || fs::exists(file); }));
    const bool during = fs::exists(file + ".partial");
    BOOST_TEST(p->stop(SIGKILL) != -1);
    w.stop();
    all = w.acked();
    auto r = backup.get();
    BOOST_TEST_MESSAGE("server killed " << (during ? "during" : "after") << " the backup");
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  }
  BOOST_TEST(check_backup(file).schema_version == 3);
  BOOST_TEST(first_missing(before, ids_in(file, "w")) == "");
  BOOST_TEST(!fs::exists(file + ".partial"));

  // The server comes back on its data dir with every acknowledged write (and perhaps a
  // write it committed but could not answer before it died).
  p = std::make_unique<rheo_process>(std::vector<std::string>{}, dir);
  BOOST_TEST(get_ok(p->port(), "/w/pre39999") != "");
  p.reset();
  const std::set<std::string> kept = ids_in(dir + "/rheo.db", "w");
  BOOST_TEST(first_missing(all, kept) == "");
  BOOST_TEST(kept.size() <= 40000 + all.size() + 4);
  // And the backup restores.
  temp_dir again;
  auto r = run_rheo({"restore", file, "--data-dir", again.path()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  rheo_process q({}, again.path());
  BOOST_TEST(get_ok(q.port(), "/w/pre39999") != "");
}

BOOST_AUTO_TEST_CASE(kill_9_of_a_backup_leaves_no_file_and_the_server_serving) {
  rheo_process p;
  preload(p.port(), "w", 40000);
  temp_dir out;
  const std::string file = out.path() + "/k.backup";
  const pid_t pid =
      spawn_rheo({"backup", "--data-dir", p.data_dir(), "--out", file}, out.path() + "/backup.log");
  BOOST_TEST(eventually([&] { return fs::exists(file + ".partial") || fs::exists(file); }));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // Killed during the copy: no backup file, only the .partial, which the next one replaces.
  if (!fs::exists(file)) BOOST_TEST_MESSAGE("killed during the copy");
  BOOST_TEST(http(p.port(), "POST", "/w", R"({"_id":"after"})").status == 201);
  auto r = run_rheo({"backup", "--data-dir", p.data_dir(), "--out", file});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(!fs::exists(file + ".partial"));
  BOOST_TEST(ids_in(file, "w").count("after") == 1u);
}

BOOST_AUTO_TEST_CASE(a_restore_brings_back_exactly_what_the_backup_held) {
  temp_dir data;
  const std::string dir = data.path() + "/data";
  temp_dir out;
  const std::string file = out.path() + "/r.backup";
  std::map<std::string, std::string> expected;
  const std::vector<std::string> reads = {"/notes?pagesize=100&sort={_id:1}", "/notes/_meta",
                                          "/notes/_indexes", "/", "/other?pagesize=100"};
  {
    rheo_process p({}, dir);
    BOOST_TEST_REQUIRE(http(p.port(), "PUT", "/notes",
                            R"({"streams":[{"uri":"all","stages":[]}],"aggrs":[{"uri":"n",)"
                            R"("stages":[{"$match":{"n":{"$gte":1}}}]}]})")
                           .status == 201);
    BOOST_TEST_REQUIRE(
        http(p.port(), "PUT", "/notes/_indexes/by_n", R"({"keys":{"n":-1},"ops":{"unique":true}})")
            .status == 201);
    for (int i = 0; i < 30; ++i)
      BOOST_TEST_REQUIRE(
          http(p.port(), "POST", "/notes",
               R"({"_id":"n)" + std::to_string(i) + R"(","n":)" + std::to_string(i) +
                   R"(,"at":{"$date":1700000000000},"oid":{"$oid":"65a1b2c3d4e5f60718293a4b"},)"
                   R"("big":{"$numberLong":"9007199254740993"},"d":1.5,"tags":["a","b"]})")
              .status == 201);
    BOOST_TEST_REQUIRE(http(p.port(), "POST", "/other", R"({"_id":1})").status == 201);
    for (auto& t : reads)
      expected[t] = get_ok(p.port(), t);
    auto r = run_rheo({"backup", "--data-dir", dir, "--out", file});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    // Changes after the backup, which the restore must undo.
    BOOST_TEST(http(p.port(), "DELETE", "/notes/n3").status == 204);
    BOOST_TEST(http(p.port(), "PATCH", "/notes/n4", R"({"n":400})").status == 200);
    BOOST_TEST(http(p.port(), "POST", "/notes", R"({"_id":"late","n":1000})").status == 201);
    BOOST_TEST(http(p.port(), "DELETE", "/notes/_indexes/by_n").status == 204);
    BOOST_TEST(http(p.port(), "POST", "/third", R"({"_id":1})").status == 201);
  }
  auto r = run_rheo({"restore", file, "--data-dir", dir});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("restored " + file) != std::string::npos, r.output);
  BOOST_TEST(fs::exists(dir + "/rheo.db.before-restore"));
  BOOST_TEST(!fs::exists(dir + "/rheo.db.restoring"));
  rheo_process p({}, dir);
  for (auto& t : reads)
    BOOST_TEST(get_ok(p.port(), t) == expected[t], t);
  // The unique index is back in force.
  BOOST_TEST(http(p.port(), "POST", "/notes", R"({"n":7})").status == 409);
  // The replaced store is kept whole: it opens, with the changes made after the backup.
  BOOST_TEST(ids_in(dir + "/rheo.db.before-restore", "notes").count("late") == 1u);
}

BOOST_AUTO_TEST_CASE(a_restore_is_refused_while_a_server_runs_on_the_data_dir) {
  rheo_process p;
  BOOST_TEST(http(p.port(), "POST", "/c", R"({"_id":"kept"})").status == 201);
  temp_dir out;
  const std::string file = out.path() + "/c.backup";
  BOOST_TEST_REQUIRE(run_rheo({"backup", "--data-dir", p.data_dir(), "--out", file}).exit_code ==
                     0);
  BOOST_TEST(http(p.port(), "POST", "/c", R"({"_id":"later"})").status == 201);
  auto r = run_rheo({"restore", file, "--data-dir", p.data_dir()});
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(r.output.find("in use by a running server") != std::string::npos, r.output);
  BOOST_TEST(!fs::exists(p.data_dir() + "/rheo.db.restoring"));
  BOOST_TEST(!fs::exists(p.data_dir() + "/rheo.db.before-restore"));
  BOOST_TEST(http(p.port(), "GET", "/c/later").status == 200);
  BOOST_TEST(http(p.port(), "POST", "/c", R"({"_id":"still"})").status == 201);
}

BOOST_AUTO_TEST_CASE(a_bad_backup_file_is_refused_and_the_data_dir_left_as_it_was) {
  temp_dir data;
  const std::string dir = data.path() + "/data";
  temp_dir out;
  const std::string good = out.path() + "/good.backup";
  {
    rheo_process p({}, dir);
    preload(p.port(), "w", 3000);
    BOOST_TEST_REQUIRE(run_rheo({"backup", "--data-dir", dir, "--out", good}).exit_code == 0);
  }
  const std::string db_before = read_file(dir + "/rheo.db");
  auto refused = [&](const std::string& file, const std::string& why) {
    auto r = run_rheo({"restore", file, "--data-dir", dir});
    BOOST_TEST(r.exit_code == 1, r.output);
    BOOST_TEST(r.output.find(why) != std::string::npos, r.output);
    BOOST_TEST(!fs::exists(dir + "/rheo.db.restoring"));
    BOOST_TEST(!fs::exists(dir + "/rheo.db.before-restore"));
    BOOST_TEST((read_file(dir + "/rheo.db") == db_before), file);
  };
  // Not a database.
  const std::string text = out.path() + "/text.backup";
  std::ofstream(text) << "hello, this is not a backup\n";
  refused(text, "not a rheo backup");
  // A SQLite file of something else.
  const std::string other = out.path() + "/other.db";
  {
    sqlite::connection c(other, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    c.exec("CREATE TABLE t(x)");
  }
  refused(other, "not a rheo backup (no table 'collections')");
  // Damaged pages in the middle of the documents.
  const std::string damaged = out.path() + "/damaged.backup";
  std::string bytes = read_file(good);
  const std::size_t at = (bytes.size() / 2) / 4096 * 4096;
  for (std::size_t i = at + 100; i < at + 4000; ++i)
    bytes[i] = static_cast<char>(i * 7);
  std::ofstream(damaged, std::ios::binary) << bytes;
  refused(damaged, "failed its integrity check");
  // Written by a newer rheo.
  const std::string newer = out.path() + "/newer.backup";
  fs::copy_file(good, newer);
  {
    sqlite::connection c(newer, SQLITE_OPEN_READWRITE);
    c.exec("PRAGMA user_version=99");
  }
  refused(newer, "written by a newer rheo (schema version 99");
  // A missing file, and bad arguments.
  refused(out.path() + "/none.backup", "no such file");
  BOOST_TEST(run_rheo({"restore", "--data-dir", dir}).exit_code == 2);
  BOOST_TEST(run_rheo({"backup", "--data-dir", dir}).exit_code == 2);
  // The good one restores.
  BOOST_TEST(run_rheo({"restore", good, "--data-dir", dir}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(resume_tokens_from_before_a_restore_are_history_lost) {
  temp_dir data;
  const std::string dir = data.path() + "/data";
  temp_dir out;
  const std::string file = out.path() + "/h.backup";
  std::string older, newer;
  {
    rheo_process p({}, dir);
    BOOST_TEST_REQUIRE(
        http(p.port(), "PUT", "/h", R"({"streams":[{"uri":"all","stages":[]}]})").status == 201);
    for (int i = 0; i < 3; ++i)
      BOOST_TEST(http(p.port(), "POST", "/h", R"({"n":)" + std::to_string(i) + "}").status == 201);
    older = http(p.port(), "GET", "/h").header("resume-token");
    BOOST_TEST(http(p.port(), "POST", "/h", R"({"n":3})").status == 201);
    BOOST_TEST_REQUIRE(run_rheo({"backup", "--data-dir", dir, "--out", file}).exit_code == 0);
    for (int i = 4; i < 7; ++i)
      BOOST_TEST(http(p.port(), "POST", "/h", R"({"n":)" + std::to_string(i) + "}").status == 201);
    newer = http(p.port(), "GET", "/h").header("resume-token");
  }
  BOOST_TEST_REQUIRE(check_backup(file).position > older);
  BOOST_TEST_REQUIRE(check_backup(file).position < newer);
  BOOST_TEST_REQUIRE(run_rheo({"restore", file, "--data-dir", dir}).exit_code == 0);
  rheo_process p({}, dir);
  // The restored server writes more than the old one did after the backup: without a fresh
  // range of seqs, `newer` would name one of these writes.
  for (int i = 100; i < 120; ++i)
    BOOST_TEST(http(p.port(), "POST", "/h", R"({"n":)" + std::to_string(i) + "}").status == 201);
  for (const auto& token : {newer, older}) {
    ws_client ws(p.port(), "/h/_streams/all?resumeAfter=" + token);
    BOOST_TEST_REQUIRE(ws.upgrade_status() == 101);
    auto f = ws.next();
    BOOST_TEST(f.opcode == 8);
    BOOST_TEST(f.close_code() == 4410, token);
    BOOST_TEST(f.close_reason() == "history lost");
    sse_client sse(p.port(), "/h/_streams/all", {{"Last-Event-ID", token}});
    BOOST_TEST_REQUIRE(sse.status() == 200);
    auto e = sse.next();
    BOOST_TEST(e.type == "history-lost", token);
  }
  // Tokens of the restored history resume as usual.
  const std::string fresh = http(p.port(), "GET", "/h").header("resume-token");
  BOOST_TEST(fresh > newer);
  BOOST_TEST(http(p.port(), "POST", "/h", R"({"n":500})").status == 201);
  ws_client ws(p.port(), "/h/_streams/all?resumeAfter=" + fresh);
  BOOST_TEST_REQUIRE(ws.upgrade_status() == 101);
  auto f = ws.next();
  BOOST_TEST_REQUIRE(f.opcode == 1);
  BOOST_TEST(f.payload.find(R"("n":500)") != std::string::npos, f.payload);
}

BOOST_AUTO_TEST_CASE(post_backup_writes_a_backup_into_backup_dir_for_those_the_acl_allows) {
  auto hashed = run_rheo({"hash-password", "pw"});
  BOOST_TEST_REQUIRE(hashed.exit_code == 0);
  std::string hash = hashed.output.substr(0, hashed.output.find('\n'));
  temp_dir backups;
  const std::string backup_dir = backups.path() + "/made/here";
  rheo_process p({"--backup-dir", backup_dir, "--users",
                  R"([{"userid":"admin","password":")" + hash + R"(","roles":["admin"]}])", "--acl",
                  R"acl([{"roles":["$unauthenticated"],"predicate":"path-prefix('/c')"},)acl"
                  R"acl({"roles":["admin"],"predicate":"path-prefix('/')"}])acl"});
  const std::vector<std::pair<std::string, std::string>> admin = {
      {"Authorization", "Basic " + base64("admin:pw")}};
  BOOST_TEST(http(p.port(), "POST", "/c", R"({"_id":"one"})").status == 201);
  BOOST_TEST(http(p.port(), "POST", "/_backup").status == 401);
  const std::string position = http(p.port(), "GET", "/c").header("resume-token");

  auto r = http(p.port(), "POST", "/_backup", "", admin);
  BOOST_TEST_REQUIRE(r.status == 201, r.body);
  const object answer = parse_json(r.body).as_object();
  const std::string file = find_field(answer, "file")->as_string();
  BOOST_TEST(fs::path(file).parent_path() == fs::path(backup_dir));
  BOOST_TEST(find_field(answer, "position")->as_string() == position);
  BOOST_TEST(find_field(answer, "name")->as_string().rfind("rheo-", 0) == 0u);
  BOOST_TEST(check_backup(file).position == position);
  BOOST_TEST(ids_in(file, "c").count("one") == 1u);

  // A name of the client's choosing, once; never a path.
  BOOST_TEST(http(p.port(), "POST", "/_backup?name=mine.backup", "", admin).status == 201);
  BOOST_TEST(fs::exists(backup_dir + "/mine.backup"));
  BOOST_TEST(http(p.port(), "POST", "/_backup?name=mine.backup", "", admin).status == 409);
  for (const char* bad : {"../up.backup", ".hidden", "a%2Fb", ""})
    BOOST_TEST(http(p.port(), "POST", std::string("/_backup?name=") + bad, "", admin).status == 400,
               bad);
  BOOST_TEST(http(p.port(), "GET", "/_backup", "", admin).status == 405);

  // It restores like any backup.
  temp_dir restored;
  BOOST_TEST_REQUIRE(run_rheo({"restore", file, "--data-dir", restored.path()}).exit_code == 0);
  rheo_process q({}, restored.path());
  BOOST_TEST(http(q.port(), "GET", "/c/one").status == 200);
  // Off without backup_dir.
  BOOST_TEST(http(q.port(), "POST", "/_backup").status == 404);
}

BOOST_AUTO_TEST_SUITE_END()
