#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "storage/sqlite/id_key.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "test/storage/sqlite/store_test_support.hpp"

#include <sqlite3.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(sqlite_index_test)

namespace {

/// A find as the REST API makes it: the filter object too, and _id breaking sort ties in
/// the direction of the sort's last key.
find_query request(std::string_view filter, std::string_view sort = "{}", std::int64_t skip = 0,
                   std::int64_t limit = 100) {
  find_query q = query_of(filter, sort, "{}", skip, limit);
  q.filter_doc = J(filter);
  object s = J(sort);
  if (!s.empty() && !find_field(s, "_id")) s.emplace_back("_id", value(s.back().second));
  q.sort = sort_spec::parse(s);
  return q;
}

std::vector<std::string> ids(const std::vector<object>& docs) {
  std::vector<std::string> out;
  for (auto& d : docs)
    out.push_back(to_json(*find_field(d, "_id")));
  return out;
}

/// Documents of every shape the query engine distinguishes: numbers of three types, strings,
/// null and missing fields, arrays (multikey), nested documents, dates.
std::vector<object> varied_documents() {
  std::vector<object> docs;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    object d{{"_id", std::int32_t(i)}};
    switch (i % 7) {
    case 0:
      d.emplace_back("a", std::int32_t(i % 10));
      break;
    case 1:
      d.emplace_back("a", double(i % 10) + 0.5);
      break;
    case 2:
      d.emplace_back("a", std::int64_t(i % 10));
      break;
    case 3:
      d.emplace_back("a", "s" + std::to_string(i % 5));
      break;
    case 4:
      d.emplace_back("a", null_t{});
      break;
    case 5:
      break; // a missing
    case 6:
      d.emplace_back("a", array{std::int32_t(i % 10), std::int32_t(i % 3)});
      break;
    }
    d.emplace_back("b", std::int32_t(rng() % 4));
    if (i % 3) d.emplace_back("n", object{{"x", std::int32_t(i % 6)}});
    if (i % 4 == 0) d.emplace_back("tags", array{"red", i % 8 ? "blue" : "green"});
    d.emplace_back("t", date_time{1700000000000 + (i * 7919 % 300) * 1000});
    if (i % 5 == 0) d.emplace_back("s", std::int32_t(i % 2));
    docs.push_back(std::move(d));
  }
  return docs;
}

struct twin_collections : store_fixture {
  twin_collections() {
    for (auto& d : varied_documents()) {
      db->insert("rheo", "plain", d);
      db->insert("rheo", "indexed", d);
    }
    db->create_index("rheo", "indexed", "a_1", J("{a:1}"), {});
    db->create_index("rheo", "indexed", "b_1_a_-1", J("{b:1,a:-1}"), {});
    db->create_index("rheo", "indexed", "b_1_t_-1", J("{b:1,t:-1}"), {});
    db->create_index("rheo", "indexed", "nx_-1", J("{'n.x':-1}"), {});
    db->create_index("rheo", "indexed", "tags_1", J("{tags:1}"), {});
    db->create_index("rheo", "indexed", "t_-1", J("{t:-1}"), {});
    db->create_index("rheo", "indexed", "s_1", J("{s:1}"), J("{sparse:true}"));
    db->create_index("rheo", "indexed", "b_p", J("{b:-1}"),
                     J("{partialFilterExpression:{b:{$gt:1}}}"));
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(every_query_shape_answers_the_same_with_and_without_indexes,
                        twin_collections) {
  struct shape {
    const char* filter;
    const char* sort;
    std::int64_t skip, limit;
  };
  const shape shapes[] = {
      {"{a:3}", "{}", 0, 100},
      {"{a:{$eq:3}}", "{a:1}", 0, 100},
      {"{a:3.0}", "{_id:1}", 0, 100},
      {"{a:null}", "{}", 0, 100},
      {"{a:'s2'}", "{}", 0, 100},
      {"{a:{$gt:4}}", "{a:1}", 0, 100},
      {"{a:{$gte:2,$lt:7}}", "{a:-1}", 3, 20},
      {"{a:{$lt:'s3'}}", "{}", 0, 100},
      {"{a:{$in:[1,'s1',null]}}", "{}", 0, 100},
      {"{a:{$in:[2,3]}}", "{a:1}", 0, 100},
      {"{b:2}", "{a:-1}", 0, 10},
      {"{b:2}", "{t:-1}", 4, 10},
      {"{b:{$gte:2}}", "{b:1,t:-1}", 0, 30},
      {"{b:2,a:{$gt:3}}", "{}", 0, 100},
      {"{b:{$in:[1,3]},a:5}", "{}", 0, 100},
      {"{$and:[{b:1},{a:{$lte:6}}]}", "{a:-1}", 2, 5},
      {"{'n.x':{$gte:3}}", "{'n.x':-1}", 0, 100},
      {"{'n.x':4}", "{}", 0, 100},
      {"{tags:'green'}", "{}", 0, 100},
      {"{tags:{$in:['red','green']}}", "{tags:1}", 0, 100},
      {"{tags:['red','green']}", "{}", 0, 100},
      {"{}", "{t:-1}", 0, 15},
      {"{}", "{t:-1}", 45, 15},
      {"{}", "{t:1}", 0, 15},
      {"{t:{$gt:{$date:1700000100000}}}", "{t:-1}", 0, 100},
      {"{s:1}", "{}", 0, 100},
      {"{s:null}", "{}", 0, 100},
      {"{}", "{s:1}", 0, 100},
      {"{b:{$gt:1}}", "{b:-1}", 0, 100},
      {"{b:3}", "{}", 0, 100},
      {"{a:{$ne:3}}", "{a:1}", 0, 100},
      {"{$or:[{a:1},{b:3}]}", "{}", 0, 100},
      {"{_id:{$gte:10,$lt:20}}", "{_id:-1}", 0, 100},
      {"{_id:17}", "{}", 0, 100},
  };
  for (auto& s : shapes) {
    query_plan plain_plan, indexed_plan;
    auto q = request(s.filter, s.sort, s.skip, s.limit);
    q.explain = &plain_plan;
    auto expected = ids(db->find("rheo", "plain", q));
    q.explain = &indexed_plan;
    auto got = ids(db->find("rheo", "indexed", q));
    BOOST_TEST_CONTEXT(s.filter << " sorted " << s.sort << " skip " << s.skip << " limit "
                                << s.limit << " via " << indexed_plan.bounds) {
      BOOST_TEST(got == expected, boost::test_tools::per_element());
      BOOST_TEST(indexed_plan.examined <= plain_plan.examined);
      BOOST_TEST(db->count_query("rheo", "indexed", q) == db->count_query("rheo", "plain", q));
    }
  }
}

BOOST_FIXTURE_TEST_CASE(an_index_that_fits_is_used_and_reads_no_more_than_it_returns,
                        twin_collections) {
  auto plan_of = [&](std::string_view filter, std::string_view sort, std::int64_t skip = 0,
                     std::int64_t limit = 15) {
    query_plan p;
    auto q = request(filter, sort, skip, limit);
    q.explain = &p;
    db->find("rheo", "indexed", q);
    return p;
  };
  // The chat's history call: newest first by timestamp, one page.
  auto history = plan_of("{}", "{t:-1}");
  BOOST_TEST(history.index == "t_-1");
  BOOST_TEST(history.examined == 15u);
  BOOST_TEST(!history.in_memory_sort);
  BOOST_TEST(plan_of("{}", "{t:-1}", 30).examined == 45u);
  BOOST_TEST(plan_of("{}", "{t:1}").index == "t_-1"); // scanned backward
  // Equality on a prefix, the sort on the next field.
  auto prefix = plan_of("{b:2}", "{t:-1}", 0, 5);
  BOOST_TEST(prefix.index == "b_1_t_-1");
  BOOST_TEST(prefix.examined == 5u);
  // {b:1, a:-1} is multikey (a holds arrays): it filters but does not sort.
  auto multikey = plan_of("{b:2,a:5}", "{a:-1}", 0, 5);
  BOOST_TEST(multikey.index == "b_1_a_-1");
  BOOST_TEST(multikey.in_memory_sort);
  // Equality alone: the matching entries only.
  auto eq = plan_of("{'n.x':4}", "{}", 0, 100);
  BOOST_TEST(eq.index == "nx_-1");
  BOOST_TEST(eq.examined == db->count_query("rheo", "plain", request("{'n.x':4}")));
  BOOST_TEST(plan_of("{_id:17}", "{}").examined == 1u);
  // Not usable: a sparse index for null, a partial index the filter does not imply.
  BOOST_TEST(plan_of("{s:null}", "{}").index != "s_1");
  BOOST_TEST(plan_of("{b:1}", "{b:-1}").index != "b_p");
  BOOST_TEST(plan_of("{b:{$gt:1}}", "{b:-1}").index == "b_p");
  // A multikey index answers equality but not a sort.
  BOOST_TEST(plan_of("{tags:'green'}", "{}").index == "tags_1");
  BOOST_TEST(plan_of("{}", "{tags:1}").index != "tags_1");
}

BOOST_AUTO_TEST_CASE(a_later_page_without_a_filter_does_not_read_the_documents_before_it) {
  store_fixture s;
  for (int i = 0; i < 50; ++i)
    s.db->insert("rheo", "h", object{{"_id", std::int32_t(i)}, {"t", date_time{1000 + i}}});
  s.db->create_index("rheo", "h", "t_-1", J("{t:-1}"), {});
  // The 30 newest documents made unreadable underneath the store: whatever reads one of
  // them fails to decode it.
  {
    sqlite3* raw = nullptr;
    BOOST_REQUIRE(sqlite3_open((s.dir.path / "data" / "rheo.db").c_str(), &raw) == SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
    sqlite3_stmt* st = nullptr;
    BOOST_REQUIRE(sqlite3_prepare_v2(raw,
                                     "UPDATE documents SET body = x'00' WHERE db = 'rheo' AND "
                                     "coll = 'h' AND id_key = ?1",
                                     -1, &st, nullptr) == SQLITE_OK);
    for (int i = 20; i < 50; ++i) {
      const std::string key = sqlite::id_key(value(std::int32_t(i)));
      sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
      BOOST_REQUIRE(sqlite3_step(st) == SQLITE_DONE);
      BOOST_REQUIRE(sqlite3_changes(raw) == 1);
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(raw);
  }
  BOOST_CHECK_THROW(s.db->find("rheo", "h", request("{}", "{t:-1}", 0, 1)), std::exception);
  const std::vector<std::string> fourth_page{"19", "18", "17", "16", "15",
                                             "14", "13", "12", "11", "10"};
  // Page 4 of 10, newest first: the history call through t_-1, then in _id order.
  for (const char* sort : {"{t:-1}", "{}"}) {
    query_plan p;
    auto q = request("{}", sort, 30, 10);
    q.explain = &p;
    BOOST_TEST_CONTEXT("sorted " << sort) {
      BOOST_TEST(ids(s.db->find("rheo", "h", q)) == fourth_page, boost::test_tools::per_element());
      BOOST_TEST(p.index == (std::string_view(sort) == "{}" ? "_id_" : "t_-1"));
      BOOST_TEST(p.examined == 40u);
      BOOST_TEST(!p.in_memory_sort);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_unique_index_refuses_a_second_key_and_the_write_leaves_no_trace) {
  store_fixture s;
  s.db->insert("rheo", "u", J("{_id:1,email:'a@x'}"));
  s.db->create_index("rheo", "u", "email", J("{email:1}"), J("{unique:true}"));
  auto feed = s.db->watch("rheo", "u", std::nullopt);
  auto sink = start(*feed);
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "u", J("{_id:2,email:'a@x'}")); }) == 409);
  BOOST_TEST(!s.db->find_by_id("rheo", "u", value(2)).has_value());
  s.db->insert("rheo", "u", J("{_id:3,email:'b@x'}"));
  BOOST_TEST(status_of([&] {
               s.db->update("rheo", "u", value(3), update_spec::parse(J("{$set:{email:'a@x'}}")),
                            write_mode::update, std::nullopt);
             }) == 409);
  BOOST_TEST(to_json(*find_field(*s.db->find_by_id("rheo", "u", value(3)), "email")) == "\"b@x\"");
  // Only the insert of 3 reached the feed.
  BOOST_TEST(sink->received().size() == 1u);
  // A key freed by a delete may be taken again; missing fields are one null key.
  s.db->remove("rheo", "u", value(1), std::nullopt);
  s.db->insert("rheo", "u", J("{_id:4,email:'a@x'}"));
  s.db->insert("rheo", "u", J("{_id:5}"));
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "u", J("{_id:6}")); }) == 409);
}

BOOST_AUTO_TEST_CASE(sparse_and_partial_unique_indexes_only_constrain_the_documents_they_hold) {
  store_fixture s;
  s.db->insert("rheo", "p", J("{_id:0}"));
  s.db->create_index("rheo", "p", "nick", J("{nick:1}"), J("{unique:true,sparse:true}"));
  s.db->create_index("rheo", "p", "code", J("{code:1}"),
                     J("{unique:true,partialFilterExpression:{active:true}}"));
  s.db->insert("rheo", "p", J("{_id:1}"));
  s.db->insert("rheo", "p", J("{_id:2}")); // no nick twice: fine in a sparse index
  s.db->insert("rheo", "p", J("{_id:3,nick:'x'}"));
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "p", J("{_id:4,nick:'x'}")); }) == 409);
  s.db->insert("rheo", "p", J("{_id:5,code:7,active:false}"));
  s.db->insert("rheo", "p", J("{_id:6,code:7,active:true}"));
  s.db->insert("rheo", "p", J("{_id:7,code:7,active:false}"));
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "p", J("{_id:8,code:7,active:true}")); }) == 409);
}

BOOST_AUTO_TEST_CASE(a_unique_index_over_duplicates_is_refused_and_not_left_behind) {
  store_fixture s;
  s.db->insert("rheo", "d", J("{_id:1,k:1}"));
  s.db->insert("rheo", "d", J("{_id:2,k:1.0}")); // the same key as 1
  BOOST_TEST(status_of([&] {
               s.db->create_index("rheo", "d", "k", J("{k:1}"), J("{unique:true}"));
             }) == 400);
  BOOST_TEST(s.db->list_indexes("rheo", "d").size() == 1u); // _id_ only
  s.db->insert("rheo", "d", J("{_id:3,k:1}"));              // no index refuses it
}

BOOST_AUTO_TEST_CASE(the_index_api_lists_creates_and_drops_with_the_contract_s_errors) {
  store_fixture s;
  BOOST_TEST(status_of([&] { s.db->list_indexes("rheo", "none"); }) == 404);
  BOOST_TEST(status_of([&] { s.db->create_index("rheo", "none", "a", J("{a:1}"), {}); }) == 404);
  s.db->insert("rheo", "c", J("{_id:1}"));
  BOOST_TEST(status_of([&] { s.db->create_index("rheo", "c", "_a", J("{a:1}"), {}); }) == 400);
  BOOST_TEST(status_of([&] { s.db->create_index("rheo", "c", "a", J("{}"), {}); }) == 400);
  BOOST_TEST(status_of([&] { s.db->create_index("rheo", "c", "a", J("{a:'text'}"), {}); }) == 400);
  BOOST_TEST(status_of([&] { s.db->create_index("rheo", "c", "a", J("{a:1}"), J("{bogus:1}")); }) ==
             400);
  BOOST_TEST(status_of([&] {
               s.db->create_index("rheo", "c", "a", J("{a:1,b:1}"), J("{expireAfterSeconds:5}"));
             }) == 400);
  s.db->create_index("rheo", "c", "a", J("{a:1,'b.c':-1}"), J("{unique:true}"));
  BOOST_TEST(status_of([&] { s.db->create_index("rheo", "c", "a", J("{z:1}"), {}); }) == 409);
  auto list = s.db->list_indexes("rheo", "c");
  BOOST_REQUIRE(list.size() == 2u);
  BOOST_TEST(list[0].name == "_id_");
  BOOST_TEST(to_json(value(list[1].key)) == to_json(value(J("{a:1,'b.c':-1}"))));
  BOOST_TEST(to_json(value(list[1].options)) == "{\"unique\":true}");
  BOOST_TEST(status_of([&] { s.db->drop_index("rheo", "c", "_id_"); }) == 400);
  BOOST_TEST(status_of([&] { s.db->drop_index("rheo", "c", "nope"); }) == 404);
  s.db->drop_index("rheo", "c", "a");
  BOOST_TEST(s.db->list_indexes("rheo", "c").size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_key_s_direction_is_the_sign_of_any_non_zero_number_as_in_mongodb) {
  store_fixture s;
  for (int i = 0; i < 20; ++i)
    s.db->insert("rheo", "n",
                 object{{"_id", std::int32_t(i)},
                        {"a", std::int32_t(i % 5)},
                        {"b", std::int32_t(i % 3)},
                        {"c", double(i) / 2}});
  s.db->create_index("rheo", "n", "a_b", J("{a:1,b:2}"), {});
  s.db->create_index("rheo", "n", "c_desc", J("{c:-2}"), {});
  s.db->create_index("rheo", "n", "halves", J("{b:0.5,c:-1.5}"), {});
  auto plan_of = [&](std::string_view filter, std::string_view sort) {
    query_plan p;
    auto q = request(filter, sort);
    q.explain = &p;
    s.db->find("rheo", "n", q);
    return p;
  };
  for (int round = 0; round < 2; ++round) {
    BOOST_TEST_CONTEXT((round ? "after reopening" : "as created")) {
      // Listed as given, as MongoDB keeps a key pattern.
      auto list = s.db->list_indexes("rheo", "n");
      BOOST_REQUIRE(list.size() == 4u);
      BOOST_TEST(to_json(value(list[1].key)) == R"({"a":1,"b":2})");
      BOOST_TEST(to_json(value(list[2].key)) == R"({"c":-2})");
      BOOST_TEST(to_json(value(list[3].key)) == R"({"b":0.5,"c":-1.5})");
      // {a:1, b:2} answers a filter on a.
      auto eq = plan_of("{a:3}", "{}");
      BOOST_TEST(eq.index == "a_b");
      BOOST_TEST(eq.examined == 4u);
      // {c:-2} is descending: {c:-1} is its forward order, {c:1} its backward one.
      auto desc = plan_of("{}", "{c:-1}");
      BOOST_TEST(desc.index == "c_desc");
      BOOST_TEST(!desc.in_memory_sort);
      BOOST_TEST(desc.bounds.find("backward") == std::string::npos, desc.bounds);
      auto asc = plan_of("{}", "{c:1}");
      BOOST_TEST(asc.index == "c_desc");
      BOOST_TEST(asc.bounds.find("backward") != std::string::npos, asc.bounds);
      BOOST_TEST(ids(s.db->find("rheo", "n", request("{}", "{c:-1}", 0, 3))) ==
                     (std::vector<std::string>{"19", "18", "17"}),
                 boost::test_tools::per_element());
      // {b:0.5, c:-1.5}: b ascending, c descending.
      auto mixed = plan_of("{b:1}", "{c:-1}");
      BOOST_TEST(mixed.index == "halves");
      BOOST_TEST(!mixed.in_memory_sort);
      BOOST_TEST(mixed.bounds.find("backward") == std::string::npos, mixed.bounds);
      BOOST_TEST(ids(s.db->find("rheo", "n", request("{b:1}", "{c:-1}", 0, 3))) ==
                     (std::vector<std::string>{"19", "16", "13"}),
                 boost::test_tools::per_element());
    }
    s.db.reset();
    s.open();
  }
}

BOOST_AUTO_TEST_CASE(a_key_of_0_or_not_a_number_or_of_a_special_index_type_is_400) {
  store_fixture s;
  s.db->insert("rheo", "c", J("{_id:1}"));
  auto message_of = [&](std::string_view key) {
    try {
      s.db->create_index("rheo", "c", "k", J(key), {});
    } catch (const api_error& e) {
      BOOST_TEST(e.status() == 400);
      return std::string(e.what());
    }
    return std::string("<created>");
  };
  for (const char* key : {"{a:0}", "{a:0.0}", "{a:-0.0}", "{a:{$numberDouble:'NaN'}}", "{a:'x'}",
                          "{a:true}", "{a:null}", "{a:[1]}", "{a:{}}", "{b:1,a:'1'}"})
    BOOST_TEST(message_of(key) == "index key 'a' must be a number other than 0 (positive: "
                                  "ascending, negative: descending)",
               key);
  for (const char* type : {"text", "hashed", "2d", "2dsphere", "geoHaystack"})
    BOOST_TEST(message_of("{a:'" + std::string(type) + "'}") ==
                   "index key 'a': index type \"" + std::string(type) +
                       "\" is not supported by the embedded store",
               type);
  BOOST_TEST(s.db->list_indexes("rheo", "c").size() == 1u); // _id_ only
}

BOOST_AUTO_TEST_CASE(a_ttl_index_deletes_expired_documents_each_with_a_delete_event) {
  store_fixture s;
  s.db.reset();
  s.ttl_interval = 20ms;
  s.open();
  const std::int64_t now = date_time::now().millis;
  s.db->insert("rheo", "sessions", object{{"_id", 1}, {"at", date_time{now - 3600 * 1000}}});
  s.db->insert("rheo", "sessions", object{{"_id", 2}, {"at", date_time{now + 3600 * 1000}}});
  s.db->insert("rheo", "sessions", object{{"_id", 3}, {"at", "not a date"}});
  s.db->insert(
      "rheo", "sessions",
      object{{"_id", 4}, {"at", array{date_time{now + 3600000}, date_time{now - 7200000}}}});
  auto feed = s.db->watch("rheo", "sessions", std::nullopt);
  auto sink = start(*feed);
  s.db->create_index("rheo", "sessions", "at", J("{at:-1}"), J("{expireAfterSeconds:60}"));
  auto events = sink->wait_events(2);
  BOOST_REQUIRE(events.size() == 2u);
  std::set<std::string> deleted;
  for (auto& ev : events) {
    BOOST_TEST(ev.operation == operation_type::delete_);
    deleted.insert(to_json(*ev.document_key));
  }
  BOOST_TEST(deleted == (std::set<std::string>{"1", "4"}));
  BOOST_TEST(s.db->count_query("rheo", "sessions", query_of()) == 2);
}

BOOST_AUTO_TEST_CASE(an_index_built_while_writes_go_on_holds_every_document) {
  store_fixture s;
  for (int i = 0; i < 3000; ++i)
    s.db->insert("rheo", "w", object{{"_id", i}, {"k", i % 50}});
  std::atomic<bool> done{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 3000; !done.load() || i < 3200; ++i) {
      s.db->insert("rheo", "w", object{{"_id", i}, {"k", i % 50}});
      s.db->update("rheo", "w", value(i - 3000), update_spec::parse(J("{$set:{k:49}}")),
                   write_mode::update, std::nullopt);
      written.store(i);
    }
  });
  s.db->create_index("rheo", "w", "k", J("{k:1}"), {});
  done.store(true);
  writer.join();
  BOOST_TEST(written.load() >= 3199);
  for (int k : {0, 7, 49}) {
    query_plan p;
    auto q = request("{k:" + std::to_string(k) + "}", "{}", 0, -1);
    q.explain = &p;
    auto via_index = s.db->find("rheo", "w", q);
    BOOST_TEST(p.index == "k");
    find_query scan = query_of("{k:" + std::to_string(k) + "}", "{}", "{}", 0, -1);
    BOOST_TEST(ids(via_index) == ids(s.db->find("rheo", "w", scan)),
               boost::test_tools::per_element());
  }
}

// ---- bulk writes ----

BOOST_AUTO_TEST_CASE(a_bulk_insert_is_one_transaction_with_one_event_per_document) {
  store_fixture s;
  s.db->insert("rheo", "b", J("{_id:0,email:'z'}"));
  s.db->create_index("rheo", "b", "email", J("{email:1}"), J("{unique:true}"));
  auto feed = s.db->watch("rheo", "b", std::nullopt);
  auto sink = start(*feed);
  auto r = s.db->insert_many("rheo", "b", {J("{_id:1,email:'a'}"), J("{email:'b'}"), J("{_id:3}")});
  BOOST_TEST(r.inserted == 3);
  BOOST_REQUIRE(r.ids.size() == 3u);
  BOOST_TEST(to_json(r.ids[0]) == "1");
  BOOST_TEST(r.ids[1].is<object_id>());
  auto events = sink->received();
  BOOST_REQUIRE(events.size() == 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(events[i].operation == operation_type::insert);
    BOOST_TEST(to_json(*events[i].document_key) == to_json(r.ids[i]));
  }
  // A duplicate _id inside the bulk, or a taken unique key: 409 and nothing of it.
  BOOST_TEST(status_of([&] {
               s.db->insert_many("rheo", "b", {J("{_id:10}"), J("{_id:11}"), J("{_id:10}")});
             }) == 409);
  BOOST_TEST(status_of([&] {
               s.db->insert_many("rheo", "b", {J("{_id:12,email:'c'}"), J("{_id:13,email:'z'}")});
             }) == 409);
  BOOST_TEST(s.db->count_query("rheo", "b", query_of()) == 4);
  BOOST_TEST(sink->received().size() == 3u);
}

BOOST_AUTO_TEST_CASE(bulk_updates_and_deletes_touch_every_match_with_one_event_each) {
  store_fixture s;
  for (int i = 0; i < 10; ++i)
    s.db->insert("rheo", "m", object{{"_id", i}, {"k", i % 3}, {"v", 0}});
  s.db->create_index("rheo", "m", "k", J("{k:1}"), {});
  auto feed = s.db->watch("rheo", "m", std::nullopt);
  auto sink = start(*feed);
  auto r = s.db->update_many("rheo", "m", request("{k:1}"), update_spec::parse(J("{$set:{v:1}}")));
  BOOST_TEST(r.matched == 3);
  BOOST_TEST(r.modified == 3);
  auto again =
      s.db->update_many("rheo", "m", request("{k:1}"), update_spec::parse(J("{$set:{v:1}}")));
  BOOST_TEST(again.matched == 3);
  BOOST_TEST(again.modified == 0); // nothing changed, no event
  BOOST_TEST(s.db->count_query("rheo", "m", request("{v:1}")) == 3);
  auto d = s.db->delete_many("rheo", "m", request("{k:{$in:[0,1]}}"));
  BOOST_TEST(d.deleted == 7);
  BOOST_TEST(s.db->count_query("rheo", "m", query_of()) == 3);
  auto events = sink->received();
  BOOST_REQUIRE(events.size() == 10u);
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(events[i].operation == operation_type::update);
    BOOST_TEST(events[i].update.has_value());
  }
  for (std::size_t i = 3; i < 10; ++i)
    BOOST_TEST(events[i].operation == operation_type::delete_);
  BOOST_TEST(status_of([&] {
               s.db->update_many("rheo", "m", request("{k:2}"),
                                 update_spec::parse(J("{$set:{_id:99}}")));
             }) == 400);
  BOOST_TEST(status_of([&] { s.db->delete_many("rheo", "none", request("{k:1}")); }) == 404);
}

// ---- aggregations ----

BOOST_FIXTURE_TEST_CASE(aggregations_give_what_running_every_stage_over_all_documents_gives,
                        twin_collections) {
  const char* pipelines[] = {
      "{uri:'g',stages:[{$group:{_id:'$b',n:{$sum:1},ts:{$max:'$t'}}},{$sort:{_id:1}}]}",
      "{uri:'m',stages:[{$match:{b:2}},{$sort:{t:-1}},{$skip:3},{$limit:5},{$project:{t:1}}]}",
      "{uri:'s',stages:[{$sort:{t:1}},{$limit:7}]}",
      "{uri:'a',stages:[{$match:{a:{$gte:3}}},{$sort:{a:-1}},{$limit:9}]}",
      "{uri:'u',stages:[{$match:{tags:'red'}},{$unwind:'$tags'},{$count:'n'}]}",
  };
  // The two collections' documents differ only in _etag: leave it out.
  auto text_of = [](std::vector<object> docs) {
    array out;
    for (auto& d : docs) {
      erase_field(d, "_etag");
      out.push_back(std::move(d));
    }
    return to_json(value(std::move(out)));
  };
  const auto natural = db->find("rheo", "plain", query_of("{}", "{_id:1}", "{}", 0, -1));
  for (auto text : pipelines) {
    auto a = aggregation::compile(J(text), {}, {});
    const auto expected = text_of(a.run(natural));
    BOOST_TEST_CONTEXT(text) {
      BOOST_TEST(text_of(db->aggregate("rheo", "indexed", a, {})) == expected);
      BOOST_TEST(text_of(db->aggregate("rheo", "plain", a, {})) == expected);
    }
  }
  auto big = aggregation::compile(J("{uri:'x',stages:[{$sort:{b:1}}]}"), {}, {});
  BOOST_TEST(status_of([&] { db->aggregate("rheo", "plain", big, aggregation_limits{50}); }) ==
             400);
  BOOST_TEST(status_of([&] { db->aggregate("rheo", "none", big, {}); }) == 404);
  // A $sort under a $limit (no index gives the order) holds only what can reach the limit.
  auto top =
      aggregation::compile(J("{uri:'t',stages:[{$sort:{b:1}},{$skip:5},{$limit:10}]}"), {}, {});
  BOOST_TEST(text_of(db->aggregate("rheo", "plain", top, aggregation_limits{15})) ==
             text_of(top.run(natural)));
  BOOST_TEST(status_of([&] { db->aggregate("rheo", "plain", top, aggregation_limits{14}); }) ==
             400);
}

BOOST_AUTO_TEST_SUITE_END()
