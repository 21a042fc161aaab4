// The embedded store in its steady state: what a request costs must not grow with what the
// store has accumulated (the change log at its retention, other collections, indexes
// elsewhere), only with its own answer. Costs are counted, never timed: SQLite's
// virtual-machine steps (sqlite::vm_steps()) and the query plans SQLite chooses.
#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/core.hpp"
#include "storage/sqlite/feed.hpp"
#include "storage/sqlite/schema.hpp"
#include "test/storage/sqlite/store_test_support.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(sqlite_steady_state_test)

namespace {

/// The SQLite steps that `fn` ran, in this process (the store's threads included).
template <class Fn> std::uint64_t steps_of(Fn&& fn) {
  const std::uint64_t before = sqlite::vm_steps();
  fn();
  return sqlite::vm_steps() - before;
}

/// A GET as the REST API runs it: a page of a query with the snapshot's position, the same
/// with a filter, a document by id with its position, and a count.
std::uint64_t get_cost(store& db, const std::string& coll, const value& some_id) {
  return steps_of([&] {
    std::string position;
    auto q = query_of("{}", "{\"_id\":-1}", "{}", 0, 10);
    q.position = &position;
    BOOST_TEST(db.find("db", coll, q).size() == 10u);
    BOOST_TEST(!position.empty());
    auto filtered = query_of("{\"n\":{\"$gte\":3}}", "{}", "{}", 0, 10);
    filtered.position = &position;
    BOOST_TEST(db.find("db", coll, filtered).size() == 7u);
    BOOST_TEST(db.find_by_id("db", coll, some_id, &position).has_value());
    BOOST_TEST(db.count_query("db", coll, query_of()) == 10);
  });
}

/// Inserts `n` documents into db.coll in bulk requests of 1,000: n change-log entries.
void age(store& db, const std::string& coll, int n) {
  for (int done = 0; done < n;) {
    std::vector<object> docs;
    for (int i = 0; i < 1000 && done < n; ++i, ++done)
      docs.push_back(object{{"from", value("u" + std::to_string(done % 50))},
                            {"message", value("message " + std::to_string(done))}});
    db.insert_many("db", coll, std::move(docs));
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(a_get_costs_the_same_whatever_the_change_log_and_other_collections_hold) {
  store_fixture f;
  std::vector<object> docs;
  for (int i = 0; i < 10; ++i)
    docs.push_back(object{{"n", value(i)}});
  const value first_id = f.db->insert_many("db", "small", std::move(docs)).ids.front();
  const std::uint64_t fresh = get_cost(*f.db, "small", first_id);
  BOOST_TEST_MESSAGE("steps of a GET on a fresh store: " << fresh);
  BOOST_TEST(fresh > 0u);
  // A stream resumed from the first of its collection's 10 events: 9 to catch up.
  std::string token;
  {
    auto feed = f.db->watch("db", "resumed", std::nullopt);
    auto sink = start(*feed);
    for (int i = 0; i < 10; ++i)
      f.db->insert("db", "resumed", object{{"n", value(i)}});
    token = sink->wait_events(10).at(0).token;
    feed->cancel();
  }
  auto resume_cost = [&] {
    std::size_t caught = 0;
    const std::uint64_t steps = steps_of([&] {
      auto feed = f.db->watch("db", "resumed", token);
      caught = caught_up(*feed).size();
      feed->cancel();
    });
    BOOST_TEST(caught == 9u);
    return steps;
  };
  const std::uint64_t fresh_resume = resume_cost();

  // The change log grows to 40,000 entries; 200 other collections appear.
  age(*f.db, "big", 40000);
  for (int i = 0; i < 200; ++i)
    f.db->insert("db", "other" + std::to_string(i), object{{"i", value(i)}});
  const std::uint64_t aged = get_cost(*f.db, "small", first_id);
  BOOST_TEST_MESSAGE("steps of the same GET on the aged store: " << aged);
  // The same rows are read; reading the log's newest position is one b-tree descent.
  BOOST_TEST(aged <= fresh + 8);
  // The resume reads its collection's 9 entries, not the 40,200 others logged since.
  const std::uint64_t aged_resume = resume_cost();
  BOOST_TEST_MESSAGE("steps of the resume: " << fresh_resume << " fresh, " << aged_resume
                                             << " aged");
  BOOST_TEST(aged_resume <= fresh_resume + 8);
}

BOOST_AUTO_TEST_CASE(a_write_neither_reads_nor_decodes_the_index_catalog_again) {
  store_fixture f;
  f.db->insert("db", "plain", object{{"a", value(1)}});
  f.db->insert("db", "indexed", object{{"a", value(1)}});
  // 20 indexes on fields the documents do not have (sparse: no entries to maintain), so
  // what they can cost a write is reading and decoding the catalog.
  for (int i = 0; i < 20; ++i)
    f.db->create_index("db", "indexed", "ix" + std::to_string(i),
                       object{{"absent" + std::to_string(i), value(1)}},
                       object{{"sparse", value(true)}});
  auto insert_cost = [&](const std::string& coll, int i) {
    return steps_of([&] { f.db->insert("db", coll, object{{"a", value(i)}}); });
  };
  insert_cost("indexed", 2); // the writer reads the new catalog once
  const std::uint64_t plain = insert_cost("plain", 3);
  const std::uint64_t indexed = insert_cost("indexed", 3);
  BOOST_TEST_MESSAGE("steps of an insert: " << plain << " without indexes, " << indexed
                                            << " with 20 sparse indexes");
  BOOST_TEST(indexed <= plain + 4);

  // The cache follows the catalog: a dropped unique index no longer refuses a duplicate, a
  // new one does, and an index that became multikey is planned as one.
  f.db->create_index("db", "indexed", "u", object{{"a", value(1)}},
                     object{{"unique", value(true)}});
  BOOST_TEST(status_of([&] { f.db->insert("db", "indexed", object{{"a", value(3)}}); }) == 409);
  f.db->drop_index("db", "indexed", "u");
  BOOST_TEST(status_of([&] { f.db->insert("db", "indexed", object{{"a", value(3)}}); }) == 0);
  f.db->create_index("db", "indexed", "tags", object{{"tags", value(1)}}, object{});
  f.db->insert("db", "indexed", object{{"tags", value(array{value(5), value(1)})}});
  f.db->insert("db", "indexed", object{{"tags", value(3)}});
  // On a multikey index {$gt: 4, $lt: 2} may be met by two elements: the planner drops the
  // upper bound. Planned with a stale copy of the catalog, the range would be empty.
  const char* both = R"({"tags":{"$gt":4,"$lt":2}})";
  BOOST_TEST(f.db->find("db", "indexed", query_of(both)).size() == 1u);
  // Updates and deletes plan through the writer's copy.
  BOOST_TEST(f.db->delete_many("db", "indexed", query_of(both)).deleted == 1);
}

// ---- events nobody watches ----

BOOST_AUTO_TEST_CASE(a_bulk_insert_nobody_watches_is_logged_whole_and_read_back_on_resume) {
  store_fixture f;
  f.db->put_collection("db", "b", object{}, std::nullopt);
  f.db->create_index("db", "b", "by_tag", object{{"tag", value(1)}}, object{});
  const std::string before = f.db->watch("db", "b", std::nullopt)->position();
  // No feed of db.b is open: the events are written to the log from the documents' BSON.
  const auto r = f.db->insert_many(
      "db", "b",
      {J("{tag:'x',n:1,nested:{a:[1,{b:2}]}}"), J("{_id:'given',tag:'y'}"), J("{tag:'x'}")});
  BOOST_TEST_REQUIRE(r.ids.size() == 3u);
  // The index was kept from the BSON too.
  BOOST_TEST(f.db->find("db", "b", query_of("{tag:'x'}")).size() == 2u);

  auto feed = f.db->watch("db", "b", before);
  auto sink = std::make_shared<test_sink>();
  feed->start(sink);
  const auto events = sink->wait_events(3);
  BOOST_TEST_REQUIRE(events.size() == 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(events[i].operation == operation_type::insert);
    BOOST_TEST_REQUIRE(events[i].document_key.has_value());
    BOOST_TEST(identical(*events[i].document_key, r.ids[i]));
    const auto stored = f.db->find_by_id("db", "b", r.ids[i]);
    BOOST_TEST_REQUIRE(stored.has_value());
    BOOST_TEST_REQUIRE(events[i].full_document.has_value());
    BOOST_TEST(identical(value(*events[i].full_document), value(*stored)));
    BOOST_TEST(events[i].wall_time.millis > 0);
  }
  BOOST_TEST(sink->misuse() == 0);
}

BOOST_AUTO_TEST_CASE(a_feed_opened_during_a_write_that_kept_no_events_gets_them_from_the_log) {
  temp_dir dir;
  sqlite_store_options opt;
  opt.data_dir = (dir.path / "data").string();
  auto core = std::make_shared<sqlite::core>(opt);
  core->start();
  std::shared_ptr<sqlite::sqlite_feed_state> late;
  core->submit([&](sqlite::write_txn& t) {
    t.ensure_collection("db", "c");
    // Nobody watches db.c yet: this transaction decides not to keep its events...
    t.log_insert("db", "c", value(1), encode_bson(J("{_id:1,a:'one'}")));
    BOOST_TEST(!t.heard("db", "c"));
    // ...and a feed opens before it commits: its position is before this transaction.
    late = core->register_feed("db", "c");
    t.log_insert("db", "c", value(2), encode_bson(J("{_id:2}")));
  });
  auto sink = std::make_shared<test_sink>();
  sqlite::sqlite_feed feed(late, core);
  feed.start(sink);
  const auto events = sink->wait_events(2);
  BOOST_TEST_REQUIRE(events.size() == 2u);
  BOOST_TEST(identical(*events[0].document_key, value(1)));
  BOOST_TEST(identical(value(*events[0].full_document), value(J("{_id:1,a:'one'}"))));
  BOOST_TEST(identical(*events[1].document_key, value(2)));
  // A feed opened after the commit starts after it.
  auto after = core->register_feed("db", "c");
  BOOST_TEST(sqlite::sqlite_feed(after, core).position() == events[1].token);
  feed.cancel();
  core->close();
}

// ---- the query plans of every SQL statement ----

namespace {

/// The string literals of C++ source `text` (adjacent literals joined, raw strings
/// included), skipping comments and character literals.
std::vector<std::string> string_literals(const std::string& text) {
  std::vector<std::string> out;
  bool joinable = false; // the previous token was a literal
  std::size_t i = 0;
  auto add = [&](std::string s) {
    if (joinable)
      out.back() += s;
    else
      out.push_back(std::move(s));
    joinable = true;
  };
  while (i < text.size()) {
    const char ch = text[i];
    if (text.compare(i, 2, "//") == 0) {
      i = text.find('\n', i);
      if (i == std::string::npos) break;
    } else if (text.compare(i, 2, "/*") == 0) {
      i = text.find("*/", i + 2);
      if (i == std::string::npos) break;
      i += 2;
    } else if (text.compare(i, 2, "R\"") == 0) {
      const std::size_t open = text.find('(', i);
      const std::string close = ")" + text.substr(i + 2, open - i - 2) + "\"";
      const std::size_t end = text.find(close, open);
      add(text.substr(open + 1, end - open - 1));
      i = end + close.size();
    } else if (ch == '"' || ch == '\'') {
      std::string s;
      for (++i; i < text.size() && text[i] != ch; ++i) {
        if (text[i] == '\\') ++i;
        s += text[i];
      }
      ++i;
      if (ch == '"')
        add(std::move(s));
      else
        joinable = false;
    } else {
      if (!std::isspace(static_cast<unsigned char>(ch))) joinable = false;
      ++i;
    }
  }
  return out;
}

/// The SQL statements (split at ';') among the string literals of storage/sqlite.
std::vector<std::string> embedded_store_statements() {
  std::vector<std::string> out;
  for (auto& entry : fs::directory_iterator(fs::path(RHEO_SOURCE_DIR) / "storage" / "sqlite")) {
    const auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".hpp") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    for (auto& literal : string_literals(text.str())) {
      std::stringstream parts(literal);
      std::string statement;
      while (std::getline(parts, statement, ';')) {
        const auto first = statement.find_first_not_of(" \t\n");
        if (first == std::string::npos) continue;
        statement = statement.substr(first);
        std::string verb = statement.substr(0, statement.find_first_of(" \t\n("));
        for (auto& c : verb)
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        const bool sql_verb = verb == "SELECT" || verb == "INSERT" || verb == "UPDATE" ||
                              verb == "DELETE" || verb == "WITH" || verb == "REPLACE";
        // A verb alone ("delete") is an operation's name, not a statement.
        if (sql_verb && statement.size() > verb.size()) out.push_back(statement);
      }
    }
  }
  return out;
}

/// Statements that may scan a table, each with the reason it may.
const std::map<std::string, std::string>& allowed_scans() {
  static const std::map<std::string, std::string> allowed{
      {"SELECT db, coll, id, name, spec, ready, multikey FROM indexes",
       "the TTL pass (once a minute, its own thread) reads the whole index catalog: one row "
       "per index in the store"},
      {"SELECT db, coll, body FROM documents",
       "schema migration to version 2: rewrites every document once, at startup"},
      {"INSERT INTO documents SELECT * FROM rekeyed", "schema migration to version 2"},
      {"SELECT key, value FROM backup_info", "a backup file's own table: a handful of rows"},
      {"SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
       "checking a backup file: the schema's few rows"},
      {"SELECT db, coll FROM collections ORDER BY db, coll",
       "an export lists every collection once (rheo export, offline tool)"},
      {"UPDATE changes SET seq = seq + ?1",
       "a restore moves the whole change log once, offline, before a server opens it"},
  };
  return allowed;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_literal_scanner_finds_joined_raw_and_plain_statements) {
  const auto found = string_literals("// \"not this\"\nconst char* a = \"SELECT 1 \"\n"
                                     "  \"FROM t\"; /* \"nor this\" */ char c = '\"';\n"
                                     "auto b = R\"x(DELETE FROM \"u\")x\";");
  BOOST_TEST_REQUIRE(found.size() == 2u);
  BOOST_TEST(found[0] == "SELECT 1 FROM t");
  BOOST_TEST(found[1] == "DELETE FROM \"u\"");
}

BOOST_AUTO_TEST_CASE(no_statement_of_the_embedded_store_scans_a_table_unless_allowed) {
  temp_dir dir;
  sqlite::connection c((dir.path / "plans.db").string(),
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite::create_or_migrate(c);
  c.exec("CREATE TEMP TABLE rekeyed(db TEXT NOT NULL, coll TEXT NOT NULL, id_key BLOB NOT NULL,"
         " body BLOB NOT NULL)");
  c.exec(sqlite::sql_backup_info_create); // a backup file's table (backup.hpp)
  const auto statements = embedded_store_statements();
  // The guard sees the statements it guards (the schema's constants among them).
  BOOST_TEST(statements.size() >= 30u);
  BOOST_TEST(std::count(statements.begin(), statements.end(),
                        std::string(sqlite::sql_changes_bounds)) == 1);
  std::set<std::string> allowed_used;
  for (auto& sql : statements) {
    const std::string explain = "EXPLAIN QUERY PLAN " + sql;
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(c.handle(), explain.c_str(), -1, &stmt, nullptr);
    BOOST_TEST_REQUIRE(rc == SQLITE_OK, sql << ": " << sqlite3_errmsg(c.handle()));
    std::string plan;
    bool scans = false;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const std::string detail = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      plan += detail + "; ";
      if (detail.rfind("SCAN ", 0) == 0 && detail != "SCAN CONSTANT ROW") scans = true;
    }
    sqlite3_finalize(stmt);
    if (!scans) continue;
    const bool allowed = allowed_scans().count(sql) == 1;
    BOOST_TEST(allowed, "a SCAN, and no reason it may: " << sql << " -> " << plan);
    if (allowed) allowed_used.insert(sql);
  }
  // Every allowed scan still exists (a stale entry would hide a new statement of that text).
  for (auto& [sql, reason] : allowed_scans())
    BOOST_TEST(allowed_used.count(sql) == 1u, "allowed but no longer scanning: " << sql);
}

BOOST_AUTO_TEST_SUITE_END()
