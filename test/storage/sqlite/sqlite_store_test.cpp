#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "test/storage/sqlite/store_test_support.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace rheo {
std::ostream& operator<<(std::ostream& os, const object_id& id) {
  return os << id.hex();
}
} // namespace rheo

using namespace rheo;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(sqlite_store_test)

namespace {} // namespace

// ---- bson codec ----

BOOST_AUTO_TEST_CASE(bson_round_trip_preserves_every_value_type) {
  object_id oid = object_id::generate();
  object doc{
      {"null", value(null_t{})},
      {"true", value(true)},
      {"false", value(false)},
      {"int32", value(std::int32_t{-7})},
      {"int64", value(std::numeric_limits<std::int64_t>::max())},
      {"double", value(2.5)},
      {"nan", value(std::nan(""))},
      {"string", value(std::string("nul\0inside", 10))},
      {"empty", value("")},
      {"object", value(object{{"a", value(1)}, {"b", value(object{{"c", value("d")}})}})},
      {"array", value(array{value(1), value("two"), value(array{}), value(object{})})},
      {"oid", value(oid)},
      {"date", value(date_time{-1234567})},
      {"regex", value(regex_value{"^a.*b$", "im"})},
      {"binary", value(binary_value{4, std::string("\0\1\2\xff", 4)})},
      {"timestamp", value(timestamp_value{1700000000, 42})},
      {"min", value(min_key{})},
      {"max", value(max_key{})},
      {"", value("empty key")},
  };
  object back = decode_bson(encode_bson(doc));
  BOOST_TEST(identical(value(back), value(doc)));
  BOOST_TEST(keys_of(back) == keys_of(doc));
}

BOOST_AUTO_TEST_CASE(decode_bson_rejects_corrupt_input) {
  std::string bytes = encode_bson(J("{a:'hello',b:{c:[1,2,3]}}"));
  BOOST_CHECK_THROW(decode_bson(bytes.substr(0, bytes.size() - 3)), std::runtime_error);
  BOOST_CHECK_THROW(decode_bson(""), std::runtime_error);
  std::string broken = bytes;
  broken[4] = '\x42'; // the first element's type code: no such BSON type
  BOOST_CHECK_THROW(decode_bson(broken), std::runtime_error);
}

// ---- change events ----

BOOST_AUTO_TEST_CASE(change_events_have_exactly_the_documented_shape) {
  change_event ins;
  ins.seq = 5;
  ins.token = token_from_seq(5);
  ins.operation = operation_type::insert;
  ins.document_key = value(1);
  ins.full_document = J("{_id:1,a:2}");
  object o = ins.to_object();
  BOOST_TEST(keys_of(o) ==
                 (std::vector<std::string>{"_id", "operationType", "fullDocument", "documentKey"}),
             boost::test_tools::per_element());
  BOOST_TEST(identical(value(o), value(J("{_id:{_data:'0000000000000005'},operationType:'insert',"
                                         "fullDocument:{_id:1,a:2},documentKey:{_id:1}}"))));

  change_event upd = ins;
  upd.operation = operation_type::update;
  upd.update = update_description{J("{a:3,'b.c':4}"), {"x", "y.z"}};
  BOOST_TEST(identical(value(upd.to_object()),
                       value(J("{_id:{_data:'0000000000000005'},operationType:'update',"
                               "fullDocument:{_id:1,a:2},documentKey:{_id:1},"
                               "updateDescription:{updatedFields:{a:3,'b.c':4},"
                               "removedFields:['x','y.z']}}"))));

  change_event drop;
  drop.token = token_from_seq(255);
  drop.operation = operation_type::drop;
  BOOST_TEST(identical(value(drop.to_object()),
                       value(J("{_id:{_data:'00000000000000ff'},operationType:'drop'}"))));
}

BOOST_AUTO_TEST_CASE(resume_tokens_round_trip_and_reject_malformed_input) {
  for (std::uint64_t seq : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0xabcdef},
                            std::numeric_limits<std::uint64_t>::max()}) {
    BOOST_TEST(token_from_seq(seq).size() == 16u);
    BOOST_TEST(seq_from_token(token_from_seq(seq)).value() == seq);
  }
  BOOST_TEST(token_from_seq(26) == "000000000000001a");
  BOOST_TEST(!seq_from_token("").has_value());
  BOOST_TEST(!seq_from_token("00000000000000001").has_value());
  BOOST_TEST(!seq_from_token("000000000000000g").has_value());
}

// ---- opening ----

BOOST_AUTO_TEST_CASE(an_unusable_data_dir_fails_with_one_clear_line) {
  temp_dir dir;
  fs::path file = dir.path / "plain_file";
  std::FILE* f = std::fopen(file.c_str(), "w");
  std::fclose(f);
  sqlite_store_options opt;
  opt.data_dir = (file / "sub").string();
  try {
    open_sqlite_store(opt);
    BOOST_FAIL("opening under a regular file succeeded");
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    BOOST_TEST_MESSAGE("error: " << msg);
    BOOST_TEST(msg.starts_with("data dir " + opt.data_dir + ": "));
    BOOST_TEST(msg.find('\n') == std::string::npos);
  }
  // A database file that is not a database.
  fs::create_directories(dir.path / "bad");
  f = std::fopen((dir.path / "bad" / "rheo.db").c_str(), "w");
  std::fputs("this is not an sqlite database, not at all, really not one", f);
  std::fclose(f);
  opt.data_dir = (dir.path / "bad").string();
  try {
    open_sqlite_store(opt);
    BOOST_FAIL("opening a corrupt database succeeded");
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    BOOST_TEST_MESSAGE("error: " << msg);
    BOOST_TEST(msg.find("rheo.db") != std::string::npos);
    BOOST_TEST(msg.find('\n') == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_second_store_on_the_same_data_dir_is_refused) {
  store_fixture s;
  sqlite_store_options opt;
  opt.data_dir = (s.dir.path / "data").string();
  BOOST_CHECK_THROW(open_sqlite_store(opt), std::runtime_error);
}

// ---- documents ----

BOOST_AUTO_TEST_CASE(inserted_documents_are_found_by_id_and_the_newest_comes_first) {
  store_fixture s;
  std::vector<value> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = s.db->insert("rheo", "messages", J("{text:'hello'}"));
    BOOST_TEST(r.created);
    BOOST_TEST(r.id.is<object_id>());
    ids.push_back(r.id);
    auto doc = s.db->find_by_id("rheo", "messages", r.id);
    BOOST_REQUIRE(doc.has_value());
    BOOST_TEST(doc->front().first == "_id");
    BOOST_TEST(find_field(*doc, "_etag")->get<object_id>() == r.etag);
    BOOST_TEST(find_field(*doc, "text")->as_string() == "hello");
  }
  auto docs = s.db->find("rheo", "messages", find_query{});
  BOOST_REQUIRE(docs.size() == 5u);
  for (std::size_t i = 0; i < 5; ++i)
    BOOST_TEST(identical(*find_field(docs[i], "_id"), ids[4 - i]));
  BOOST_TEST(s.db->collection_names("rheo") == std::vector<std::string>{"messages"});
  BOOST_TEST(s.db->collection("rheo", "messages")->metadata.empty());
  BOOST_TEST(s.db->collection_names("other").empty());
}

BOOST_AUTO_TEST_CASE(ids_of_several_types_come_back_in_mongodb_descending_order) {
  store_fixture s;
  std::vector<value> ids{value(5),
                         value(2.5),
                         value(std::int64_t{1} << 60),
                         value((std::int64_t{1} << 60) + 1),
                         value(-3),
                         value("b"),
                         value("a"),
                         value(std::string("a\0b", 3)),
                         value("ab"),
                         value(object_id::generate()),
                         value(true),
                         value(false),
                         value(date_time{1000}),
                         value(date_time{-1000}),
                         value(null_t{}),
                         value(J("{a:1}")),
                         value(J("{a:1,b:2}")),
                         value(J("{a:'x'}")),
                         value(min_key{}),
                         value(max_key{})};
  for (auto& id : ids) {
    object doc{{"_id", id}};
    BOOST_TEST(s.db->insert("rheo", "ids", doc).created);
  }
  auto docs = s.db->find("rheo", "ids", query_of("{}", "{}", "{}", 0, 1000));
  BOOST_REQUIRE(docs.size() == ids.size());
  auto expected = ids;
  std::sort(expected.begin(), expected.end(),
            [](const value& a, const value& b) { return compare_values(a, b) > 0; });
  for (std::size_t i = 0; i < docs.size(); ++i)
    BOOST_TEST(identical(*find_field(docs[i], "_id"), expected[i]), "position " << i);
  // Ascending _id order uses the same index.
  auto asc = s.db->find("rheo", "ids", query_of("{}", "{_id:1}", "{}", 0, 3));
  BOOST_REQUIRE(asc.size() == 3u);
  BOOST_TEST(identical(*find_field(asc[0], "_id"), value(min_key{})));
  BOOST_TEST(identical(*find_field(asc[1], "_id"), value(null_t{})));
  // 5, 5L and 5.0 are one _id in MongoDB.
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "ids", object{{"_id", value(5.0)}}); }) == 409);
  BOOST_TEST(status_of([&] {
               s.db->insert("rheo", "ids", object{{"_id", value(std::int64_t{5})}});
             }) == 409);
  BOOST_TEST(s.db->find_by_id("rheo", "ids", value(5.0)).has_value());
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "ids", J("{_id:[1,2]}")); }) == 400);
}

BOOST_AUTO_TEST_CASE(crud_reports_404_409_and_412) {
  store_fixture s;
  BOOST_TEST(status_of([&] { s.db->find("rheo", "c", find_query{}); }) == 404);
  BOOST_TEST(status_of([&] { s.db->count_query("rheo", "c", query_of()); }) == 404);
  BOOST_TEST(!s.db->find_by_id("rheo", "c", value(1)).has_value());
  BOOST_TEST(status_of([&] { s.db->remove("rheo", "c", value(1), std::nullopt); }) == 404);
  BOOST_TEST(status_of([&] {
               s.db->replace("rheo", "c", value(1), J("{a:1}"), write_mode::update, std::nullopt);
             }) == 404);

  auto first = s.db->insert("rheo", "c", J("{_id:1,a:1}"));
  BOOST_TEST(status_of([&] { s.db->insert("rheo", "c", J("{_id:1,a:2}")); }) == 409);
  BOOST_TEST(status_of([&] {
               s.db->replace("rheo", "c", value(1), J("{a:1}"), write_mode::insert, std::nullopt);
             }) == 409);
  BOOST_TEST(status_of([&] {
               s.db->replace("rheo", "c", value(2), J("{a:1}"), write_mode::update, std::nullopt);
             }) == 404);
  BOOST_TEST(status_of([&] {
               s.db->replace("rheo", "c", value(1), J("{_id:2,a:1}"), write_mode::update,
                             std::nullopt);
             }) == 400);
  const std::string wrong = object_id::generate().hex();
  BOOST_TEST(status_of([&] {
               s.db->replace("rheo", "c", value(1), J("{a:9}"), write_mode::update, wrong);
             }) == 412);
  BOOST_TEST(status_of([&] { s.db->remove("rheo", "c", value(1), wrong); }) == 412);
  BOOST_TEST(s.db->find_by_id("rheo", "c", value(1))->at(1).second.as_int64() == 1);

  // The right ETag (quoted, as HTTP sends it) works and yields a fresh one.
  auto second = s.db->replace("rheo", "c", value(1), J("{a:2}"), write_mode::update,
                              "\"" + first.etag.hex() + "\"");
  BOOST_TEST(!second.created);
  BOOST_TEST(!(second.etag == first.etag));
  BOOST_TEST(status_of([&] { s.db->remove("rheo", "c", value(1), first.etag.hex()); }) == 412);
  auto up = s.db->replace("rheo", "c", value(3), J("{a:3}"), write_mode::upsert, std::nullopt);
  BOOST_TEST(up.created);
  BOOST_TEST(s.db->count_query("rheo", "c", query_of()) == 2);
  s.db->remove("rheo", "c", value(1), second.etag.hex());
  BOOST_TEST(!s.db->find_by_id("rheo", "c", value(1)).has_value());
  BOOST_TEST(status_of([&] { s.db->remove("rheo", "c", value(1), std::nullopt); }) == 404);

  // Collections.
  BOOST_TEST(status_of([&] { s.db->patch_collection("rheo", "m", J("{a:1}"), std::nullopt); }) ==
             404);
  BOOST_TEST(s.db->put_collection("rheo", "m", J("{streams:[]}"), std::nullopt));
  auto info = s.db->collection("rheo", "m");
  BOOST_REQUIRE(info.has_value());
  BOOST_TEST(status_of([&] { s.db->put_collection("rheo", "m", J("{}"), wrong); }) == 412);
  BOOST_TEST(!s.db->put_collection("rheo", "m", J("{x:1,_id:5}"), info->etag.hex()));
  info = s.db->collection("rheo", "m");
  BOOST_TEST(identical(value(info->metadata), value(J("{x:1}"))));
  s.db->patch_collection("rheo", "m", J("{y:2,x:3}"), std::nullopt);
  BOOST_TEST(identical(value(s.db->collection("rheo", "m")->metadata), value(J("{x:3,y:2}"))));
  BOOST_TEST(status_of([&] { s.db->patch_collection("rheo", "m", J("{}"), wrong); }) == 412);
  BOOST_TEST(status_of([&] { s.db->drop_collection("rheo", "m", wrong); }) == 412);
  BOOST_TEST(status_of([&] { s.db->drop_collection("rheo", "nope", wrong); }) == 404);
  s.db->drop_collection("rheo", "m", s.db->collection("rheo", "m")->etag.hex());
  BOOST_TEST(!s.db->collection("rheo", "m").has_value());
}

BOOST_AUTO_TEST_CASE(a_412_carries_the_current_etag_and_a_retry_with_it_succeeds) {
  store_fixture s;
  const std::string wrong = object_id::generate().hex();
  auto first = s.db->insert("rheo", "c", J("{_id:1,a:1}"));
  const auto inc = update_spec::parse(J("{$inc:{a:1}}"));
  BOOST_TEST((current_etag_of([&] {
                s.db->replace("rheo", "c", value(1), J("{a:9}"), write_mode::update, wrong);
              }) == first.etag));
  BOOST_TEST((current_etag_of([&] {
                s.db->update("rheo", "c", value(1), inc, write_mode::upsert, wrong);
              }) == first.etag));
  BOOST_TEST((current_etag_of([&] { s.db->remove("rheo", "c", value(1), wrong); }) == first.etag));
  auto second =
      s.db->update("rheo", "c", value(1), inc, write_mode::update, "\"" + first.etag.hex() + "\"");
  // A stale etag: the 412 names the one the last write gave.
  BOOST_TEST((current_etag_of([&] {
                s.db->replace("rheo", "c", value(1), J("{a:9}"), write_mode::update,
                              first.etag.hex());
              }) == second.etag));
  s.db->remove("rheo", "c", value(1), second.etag.hex());
  // No document to take the etag of: a 412 without one (an upsert with If-Match).
  BOOST_TEST(!current_etag_of([&] {
                s.db->replace("rheo", "c", value(2), J("{a:1}"), write_mode::upsert, wrong);
              }).has_value());

  BOOST_TEST(
      !current_etag_of([&] { s.db->put_collection("rheo", "m", J("{}"), wrong); }).has_value());
  s.db->put_collection("rheo", "m", J("{x:1}"), std::nullopt);
  const object_id meta = s.db->collection("rheo", "m")->etag;
  BOOST_TEST((current_etag_of([&] { s.db->put_collection("rheo", "m", J("{}"), wrong); }) == meta));
  BOOST_TEST(
      (current_etag_of([&] { s.db->patch_collection("rheo", "m", J("{}"), wrong); }) == meta));
  BOOST_TEST((current_etag_of([&] { s.db->drop_collection("rheo", "m", wrong); }) == meta));
  s.db->patch_collection("rheo", "m", J("{y:2}"), meta.hex());
  s.db->drop_collection("rheo", "m", s.db->collection("rheo", "m")->etag.hex());
}

BOOST_AUTO_TEST_CASE(paging_sort_projection_and_filter_pass_through) {
  store_fixture s;
  for (int i = 0; i < 20; ++i)
    s.db->insert(
        "rheo", "p",
        object{{"_id", value(i)}, {"n", value(i % 5)}, {"s", value(std::string(1, 'a' + i))}});
  auto ids = [](const std::vector<object>& docs) {
    std::vector<std::int64_t> out;
    for (auto& d : docs)
      out.push_back(find_field(d, "_id")->as_int64());
    return out;
  };
  BOOST_TEST(ids(s.db->find("rheo", "p", query_of("{n:2}"))) ==
             (std::vector<std::int64_t>{17, 12, 7, 2}));
  BOOST_TEST(ids(s.db->find("rheo", "p", query_of("{n:2}", "{}", "{}", 1, 2))) ==
             (std::vector<std::int64_t>{12, 7}));
  BOOST_TEST(ids(s.db->find("rheo", "p", query_of("{}", "{}", "{}", 15, 100))) ==
             (std::vector<std::int64_t>{4, 3, 2, 1, 0}));
  BOOST_TEST(ids(s.db->find("rheo", "p", query_of("{_id:{$lt:10}}", "{n:1,_id:-1}", "{}", 0, 4))) ==
             (std::vector<std::int64_t>{5, 0, 6, 1}));
  BOOST_TEST(ids(s.db->find("rheo", "p", query_of("{}", "{s:-1}", "{}", 2, 3))) ==
             (std::vector<std::int64_t>{17, 16, 15}));
  BOOST_TEST(s.db->find("rheo", "p", query_of("{}", "{}", "{}", 0, 0)).empty());
  BOOST_TEST(ids(s.db->find("rheo", "p", query_of("{_id:7}"))) == (std::vector<std::int64_t>{7}));
  BOOST_TEST(s.db->find("rheo", "p", query_of("{_id:7}", "{}", "{}", 1, 10)).empty());
  BOOST_TEST(s.db->find("rheo", "p", query_of("{_id:7,n:1}")).empty());
  auto projected = s.db->find("rheo", "p", query_of("{_id:3}", "{}", "{n:1}"));
  BOOST_REQUIRE(projected.size() == 1u);
  BOOST_TEST(identical(value(projected[0]), value(J("{_id:3,n:3}"))));
  BOOST_TEST(s.db->count_query("rheo", "p", query_of("{n:{$gte:3}}")) == 8);
  BOOST_TEST(s.db->count_query("rheo", "p", query_of("{_id:3}")) == 1);
  BOOST_TEST(s.db->count_query("rheo", "p", query_of()) == 20);
}

BOOST_AUTO_TEST_CASE(updates_apply_operators_and_keep_the_id) {
  store_fixture s;
  auto feed = s.db->watch("rheo", "u", std::nullopt);
  auto sink = start(*feed);
  auto ins = s.db->insert("rheo", "u", J("{_id:'x',a:1,b:2}"));
  auto r =
      s.db->update("rheo", "u", value("x"), update_spec::parse(J("{$inc:{a:5},$unset:{b:''}}")),
                   write_mode::update, ins.etag.hex());
  BOOST_TEST(!r.created);
  auto doc = s.db->find_by_id("rheo", "u", value("x"));
  BOOST_TEST(find_field(*doc, "a")->as_int64() == 6);
  BOOST_TEST(!find_field(*doc, "b"));
  BOOST_TEST(find_field(*doc, "_etag")->get<object_id>() == r.etag);
  BOOST_TEST(status_of([&] {
               s.db->update("rheo", "u", value("x"), update_spec::parse(J("{$set:{a:1}}")),
                            write_mode::update, ins.etag.hex());
             }) == 412);
  BOOST_TEST(status_of([&] {
               s.db->update("rheo", "u", value("y"), update_spec::parse(J("{$set:{a:1}}")),
                            write_mode::update, std::nullopt);
             }) == 404);
  BOOST_TEST(status_of([&] {
               s.db->update("rheo", "u", value("x"), update_spec::parse(J("{$inc:{missing:'s'}}")),
                            write_mode::update, std::nullopt);
             }) == 400);
  auto up = s.db->update("rheo", "u", value("y"), update_spec::parse(J("{$set:{a:1}}")),
                         write_mode::upsert, std::nullopt);
  BOOST_TEST(up.created);
  BOOST_TEST(identical(value(*s.db->find_by_id("rheo", "u", value("y"))),
                       value(object{{"_id", value("y")}, {"a", value(1)}, {"_etag", up.etag}})));

  auto events = sink->received(); // every write returned: its event is there already
  BOOST_REQUIRE(events.size() == 3u);
  BOOST_TEST(events[0].operation == operation_type::insert);
  BOOST_TEST(events[1].operation == operation_type::update);
  BOOST_TEST(identical(value(*events[1].full_document), value(*doc)));
  BOOST_REQUIRE(events[1].update.has_value());
  BOOST_TEST(find_field(events[1].update->updated_fields, "a")->as_int64() == 6);
  BOOST_TEST(find_field(events[1].update->updated_fields, "_etag") != nullptr);
  BOOST_TEST(events[1].update->removed_fields == std::vector<std::string>{"b"});
  BOOST_TEST(events[2].operation == operation_type::insert);
  BOOST_TEST(events[1].seq == events[0].seq + 1); // the failed writes left no entry
  BOOST_TEST(events[2].seq == events[1].seq + 1);
}

BOOST_AUTO_TEST_CASE(replace_and_delete_emit_their_events) {
  store_fixture s;
  auto feed = s.db->watch("rheo", "r", std::nullopt);
  auto sink = start(*feed);
  s.db->insert("rheo", "r", J("{_id:1,a:1}"));
  s.db->replace("rheo", "r", value(1), J("{b:2}"), write_mode::update, std::nullopt);
  s.db->remove("rheo", "r", value(1), std::nullopt);
  s.db->insert("rheo", "other", J("{_id:1}")); // another collection: not on this feed
  auto events = sink->received();
  BOOST_REQUIRE(events.size() == 3u);
  BOOST_TEST(events[0].operation == operation_type::insert);
  BOOST_TEST(events[1].operation == operation_type::replace);
  BOOST_TEST(find_field(*events[1].full_document, "b")->as_int64() == 2);
  BOOST_TEST(!find_field(*events[1].full_document, "a"));
  BOOST_TEST(events[2].operation == operation_type::delete_);
  BOOST_TEST(identical(*events[2].document_key, value(1)));
  BOOST_TEST(!events[2].full_document.has_value());
  BOOST_TEST(sink->call_count() == 3u); // nothing from the other collection
  BOOST_TEST(sink->misuse() == 0);
}

// ---- concurrency ----

BOOST_AUTO_TEST_CASE(concurrent_writers_commit_every_write_with_one_log_entry_in_commit_order) {
  store_fixture s;
  auto live = s.db->watch("rheo", "w", std::nullopt);
  auto live_sink = start(*live);
  constexpr int threads = 8, per_thread = 400;
  std::atomic<int> failures{0}, reader_404s{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        try {
          s.db->insert("rheo", "w",
                       object{{"_id", value("t" + std::to_string(t) + "-" + std::to_string(i))},
                              {"t", value(t)},
                              {"i", value(i)}});
        } catch (...) {
          ++failures;
        }
      }
    });
  // Readers run meanwhile and must not block or fail.
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i)
      try {
        s.db->find("rheo", "w", query_of("{t:1}", "{}", "{}", 0, 10));
      } catch (const api_error&) {
        ++reader_404s; // before the first insert created the collection
      }
  });
  for (auto& w : writers)
    w.join();
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  reader.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST_MESSAGE("measured: " << threads * per_thread << " durable inserts from " << threads
                                  << " threads in " << elapsed
                                  << " s = " << threads * per_thread / elapsed << " inserts/s");
  std::printf("measured: %d durable inserts from %d threads: %.0f inserts/s\n",
              threads * per_thread, threads, threads * per_thread / elapsed);
  BOOST_TEST(s.db->count_query("rheo", "w", query_of()) == threads * per_thread);

  auto events = live_sink->received(); // all writes returned: all delivered
  BOOST_TEST(live_sink->misuse() == 0);
  BOOST_REQUIRE(events.size() == std::size_t{threads * per_thread});
  std::set<std::string> seen;
  std::vector<int> last_i(threads, -1);
  for (std::size_t k = 0; k < events.size(); ++k) {
    if (k > 0) BOOST_TEST(events[k].seq == events[k - 1].seq + 1);
    BOOST_TEST(events[k].token == token_from_seq(events[k].seq));
    seen.insert(events[k].document_key->as_string());
    // Each thread's writes are sequential, so commit order keeps their order.
    int t = static_cast<int>(find_field(*events[k].full_document, "t")->as_int64());
    int i = static_cast<int>(find_field(*events[k].full_document, "i")->as_int64());
    BOOST_TEST(i == last_i[t] + 1);
    last_i[t] = i;
  }
  BOOST_TEST(seen.size() == std::size_t{threads * per_thread});

  // The log holds the same events in the same order.
  auto replay = s.db->watch("rheo", "w", token_from_seq(0));
  auto logged = caught_up(*replay);
  BOOST_REQUIRE(logged.size() == events.size());
  for (std::size_t k = 0; k < events.size(); ++k) {
    BOOST_TEST(logged[k].seq == events[k].seq);
    BOOST_TEST(identical(value(*logged[k].full_document), value(*events[k].full_document)));
  }
}

// ---- change feeds ----

BOOST_AUTO_TEST_CASE(a_committed_event_is_in_the_sink_when_the_write_returns) {
  store_fixture s;
  auto feed = s.db->watch("rheo", "p", std::nullopt);
  // Committed after watch() but before start(): held, then delivered by start().
  s.db->insert("rheo", "p", J("{_id:1}"));
  auto sink = start(*feed);
  BOOST_TEST(sink->received().size() == 1u);
  for (int i = 2; i <= 20; ++i) {
    s.db->insert("rheo", "p", object{{"_id", value(i)}});
    // No waiting: a polling consumer could not have it yet.
    auto got = sink->received();
    BOOST_REQUIRE(got.size() == static_cast<std::size_t>(i));
    BOOST_TEST(got.back().document_key->as_int64() == i);
  }
  s.db->remove("rheo", "p", value(1), std::nullopt);
  BOOST_TEST(sink->received().back().operation == operation_type::delete_);
  BOOST_TEST(sink->misuse() == 0);
}

BOOST_AUTO_TEST_CASE(a_resumed_feed_catches_up_without_gaps_or_duplicates) {
  store_fixture s;
  auto first = s.db->watch("rheo", "f", std::nullopt);
  auto first_sink = start(*first);
  for (int i = 0; i < 10; ++i)
    s.db->insert("rheo", "f", object{{"_id", value(i)}});
  auto early = first_sink->received();
  BOOST_REQUIRE(early.size() == 10u);
  const std::string token = early[4].token; // resume after the 5th event

  // Writes continue while the resumed feed catches up.
  std::atomic<bool> stop{false};
  std::atomic<int> written{10};
  std::thread writer([&] {
    for (int i = 10; i < 400 && !stop; ++i) {
      s.db->insert("rheo", "f", object{{"_id", value(i)}});
      s.db->insert("rheo", "noise", object{{"_id", value(i)}});
      written = i + 1;
    }
  });
  // Let some live writes happen before and during the catch-up.
  while (written < 50)
    std::this_thread::yield();
  auto resumed = s.db->watch("rheo", "f", token);
  auto sink = start(*resumed);
  sink->wait_events(395, 20s);
  stop = true;
  writer.join();
  auto got = sink->received(); // the writer's writes all returned: all delivered
  std::vector<std::int64_t> ids;
  for (auto& ev : got)
    ids.push_back(ev.document_key->as_int64());
  std::vector<std::int64_t> expected;
  for (int i = 5; i < written; ++i)
    expected.push_back(i);
  BOOST_TEST(ids == expected, boost::test_tools::per_element());
  for (std::size_t k = 1; k < got.size(); ++k)
    BOOST_TEST(got[k].seq > got[k - 1].seq);
  BOOST_TEST(sink->misuse() == 0);
}

BOOST_AUTO_TEST_CASE(history_is_lost_once_retention_trims_the_resume_position) {
  store_fixture s(8);
  auto feed = s.db->watch("rheo", "h", std::nullopt);
  auto sink = start(*feed);
  for (int i = 0; i < 50; ++i)
    s.db->insert("rheo", "h", object{{"_id", value(i)}});
  auto events = sink->received();
  BOOST_REQUIRE(events.size() == 50u);

  // The end of the feed is known when start() returns.
  auto history_lost = [&](const std::string& token) {
    auto f = s.db->watch("rheo", "h", token);
    auto sk = start(*f);
    auto reason = sk->lost_reason();
    return sk->call_count() == 1 && reason && reason->starts_with("history lost");
  };
  BOOST_TEST(history_lost(events[0].token));                         // trimmed
  BOOST_TEST(history_lost("not-a-token"));                           // malformed
  BOOST_TEST(history_lost(token_from_seq(events.back().seq + 100))); // in the future

  // Within retention: the last 3 events.
  auto recent = s.db->watch("rheo", "h", events[46].token);
  auto tail = caught_up(*recent);
  BOOST_REQUIRE(tail.size() == 3u);
  BOOST_TEST(tail[0].seq == events[47].seq);
  BOOST_TEST(tail[2].seq == events[49].seq);
  // The newest position is always resumable.
  auto newest = s.db->watch("rheo", "h", events.back().token);
  auto newest_sink = start(*newest);
  BOOST_TEST(newest_sink->call_count() == 0u);
  s.db->insert("rheo", "h", object{{"_id", value(50)}});
  auto more = newest_sink->received();
  BOOST_REQUIRE(more.size() == 1u);
  BOOST_TEST(more[0].seq == events.back().seq + 1);
}

BOOST_AUTO_TEST_CASE(dropping_a_collection_emits_drop_and_invalidate_and_ends_the_feed) {
  store_fixture s;
  s.db->insert("rheo", "d", J("{_id:1}"));
  auto feed = s.db->watch("rheo", "d", std::nullopt);
  auto sink = start(*feed);
  s.db->drop_collection("rheo", "d", s.db->collection("rheo", "d")->etag.hex());
  auto calls = sink->calls();
  BOOST_REQUIRE(calls.size() == 3u);
  BOOST_REQUIRE(calls[0].kind == 'e');
  BOOST_REQUIRE(calls[1].kind == 'e');
  auto& drop = *calls[0].event;
  auto& invalidate = *calls[1].event;
  BOOST_TEST(drop.operation == operation_type::drop);
  BOOST_TEST(invalidate.operation == operation_type::invalidate);
  BOOST_TEST(invalidate.seq == drop.seq + 1);
  BOOST_TEST(identical(value(drop.to_object()),
                       value(object{{"_id", value(object{{"_data", value(drop.token)}})},
                                    {"operationType", value("drop")}})));
  // Then the feed ends: lost() after the invalidate, and nothing more.
  BOOST_TEST(calls[2].kind == 'l');
  BOOST_TEST(calls[2].reason.find("dropped") != std::string::npos);
  BOOST_TEST(status_of([&] { s.db->find("rheo", "d", find_query{}); }) == 404);
  BOOST_TEST(!s.db->find_by_id("rheo", "d", value(1)).has_value());
  s.db->insert("rheo", "d", J("{_id:2}")); // recreated: not on the ended feed
  BOOST_TEST(sink->call_count() == 3u);
  BOOST_TEST(sink->misuse() == 0);
}

BOOST_AUTO_TEST_CASE(metadata_changes_arrive_through_metadata_in_order_with_events) {
  store_fixture s;
  auto feed = s.db->watch("rheo", "m", std::nullopt);
  auto sink = start(*feed);
  s.db->put_collection("rheo", "m", J("{streams:[{uri:'all',stages:[]}]}"), std::nullopt);
  s.db->insert("rheo", "m", J("{_id:1}"));
  s.db->patch_collection("rheo", "m", J("{other:1}"), std::nullopt);
  s.db->insert("rheo", "m", J("{_id:2}"));
  auto calls = sink->calls();
  BOOST_REQUIRE(calls.size() == 4u);
  BOOST_TEST(calls[0].kind == 'm');
  BOOST_TEST(identical(value(calls[0].metadata), value(J("{streams:[{uri:'all',stages:[]}]}"))));
  BOOST_TEST(calls[1].kind == 'e');
  BOOST_TEST(calls[2].kind == 'm');
  BOOST_TEST(find_field(calls[2].metadata, "streams") != nullptr);
  BOOST_TEST(find_field(calls[2].metadata, "other") != nullptr);
  BOOST_TEST(calls[3].kind == 'e');
  BOOST_TEST(sink->misuse() == 0); // never a "meta" event

  // A resumed feed replays metadata changes the same way, in order.
  auto resumed = s.db->watch("rheo", "m", token_from_seq(0));
  auto replay = start(*resumed)->calls();
  BOOST_REQUIRE(replay.size() == 4u);
  for (std::size_t k = 0; k < replay.size(); ++k)
    BOOST_TEST(replay[k].kind == calls[k].kind);
}

BOOST_AUTO_TEST_CASE(cancel_stops_delivery_before_it_returns) {
  store_fixture s;
  auto feed = s.db->watch("rheo", "c", std::nullopt);
  auto sink = start(*feed);
  s.db->insert("rheo", "c", J("{_id:0}"));
  BOOST_TEST(sink->received().size() == 1u);
  // Writers keep committing while another thread cancels.
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t)
    writers.emplace_back([&, t] {
      for (int i = 1; !stop; ++i)
        s.db->insert("rheo", "c", object{{"_id", value(t * 1000000 + i)}});
    });
  sink->wait_events(50);
  std::size_t at_cancel = 0;
  std::thread canceller([&] {
    feed->cancel();
    at_cancel = sink->call_count();
  });
  canceller.join();
  // More commits after cancel() returned reach nobody.
  const auto more = s.db->count_query("rheo", "c", query_of()) + 50;
  while (s.db->count_query("rheo", "c", query_of()) < more)
    std::this_thread::yield();
  stop = true;
  for (auto& w : writers)
    w.join();
  BOOST_TEST(at_cancel >= 50u);
  BOOST_TEST(sink->call_count() == at_cancel);
  feed->cancel(); // idempotent
  s.db->close();  // no lost() after cancel either
  BOOST_TEST(sink->call_count() == at_cancel);
  BOOST_TEST(sink->misuse() == 0);
  // Cancelled before start: start() delivers nothing.
  store_fixture t;
  auto unstarted = t.db->watch("rheo", "c", std::nullopt);
  unstarted->cancel();
  auto quiet = start(*unstarted);
  t.db->insert("rheo", "c", J("{_id:1}"));
  BOOST_TEST(quiet->call_count() == 0u);
}

BOOST_AUTO_TEST_CASE(data_and_sequence_survive_close_and_reopen) {
  store_fixture s;
  s.db->insert("rheo", "k", J("{_id:1}"));
  auto feed = s.db->watch("rheo", "k", token_from_seq(0));
  auto sink = start(*feed);
  auto before = sink->received();
  BOOST_REQUIRE(before.size() == 1u);
  s.db->close();
  s.db->close(); // idempotent
  BOOST_CHECK_THROW(s.db->insert("rheo", "k", J("{_id:2}")), std::runtime_error);
  BOOST_TEST(sink->lost_reason().value_or("") == "store closed");
  BOOST_TEST(sink->call_count() == 2u);
  feed.reset();
  s.db.reset();
  s.open();
  BOOST_TEST(s.db->find_by_id("rheo", "k", value(1)).has_value());
  s.db->insert("rheo", "k", J("{_id:2}"));
  auto after = caught_up(*s.db->watch("rheo", "k", token_from_seq(0)));
  BOOST_REQUIRE(after.size() == 2u);
  BOOST_TEST(after[1].seq == before[0].seq + 1);
}

/// Runs `sql` on the store's file directly (the store closed).
void run_sql(const fs::path& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir / "rheo.db").c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  BOOST_REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

BOOST_AUTO_TEST_CASE(a_file_from_before_schema_versions_is_migrated_to_the_current_id_keys) {
  store_fixture s;
  for (auto id : {"{_id:3}", "{_id:{$numberLong:'1'}}", "{_id:2.5}", "{_id:'x'}"})
    s.db->insert("rheo", "m", J(id));
  s.db->close();
  s.db.reset();
  // As a file of an older rheo: no schema version, and id keys in another encoding (here
  // scrambled, so that only a migration from the stored _id can restore order and lookups).
  run_sql(s.dir.path / "data",
          "UPDATE documents SET id_key = randomblob(8); PRAGMA user_version = 0;");
  s.open();
  find_query by_id;
  by_id.sort = sort_spec::parse(J("{_id:1}"));
  auto docs = s.db->find("rheo", "m", by_id);
  std::vector<std::string> ids;
  for (auto& d : docs)
    ids.push_back(to_json(*find_field(d, "_id")));
  BOOST_TEST(ids == (std::vector<std::string>{"1", "2.5", "3", "\"x\""}),
             boost::test_tools::per_element());
  BOOST_TEST(s.db->find_by_id("rheo", "m", value(1.0)).has_value());
  BOOST_TEST(s.db->find_by_id("rheo", "m", value(std::int32_t(3))).has_value());
  s.db->insert("rheo", "m", J("{_id:4}"));
  BOOST_TEST(s.db->count_query("rheo", "m", query_of("{}")) == 5);
}

BOOST_AUTO_TEST_CASE(a_file_of_a_newer_schema_version_is_refused) {
  store_fixture s;
  s.db->close();
  s.db.reset();
  run_sql(s.dir.path / "data", "PRAGMA user_version = 99;");
  sqlite_store_options opt;
  opt.data_dir = (s.dir.path / "data").string();
  try {
    open_sqlite_store(opt);
    BOOST_FAIL("opened a file of schema version 99");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("schema version 99") != std::string::npos);
  }
}

// ---- durability ----

BOOST_AUTO_TEST_CASE(acknowledged_writes_survive_kill_9) {
  temp_dir dir;
  const std::string data = (dir.path / "data").string();
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  constexpr std::size_t record = 16;
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    sqlite_store_options opt;
    opt.data_dir = data;
    auto db = open_sqlite_store(opt);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 1000000; ++i) {
          char id[record + 1];
          std::snprintf(id, sizeof id, "w%d-%013d", t, i);
          db->insert("rheo", "crash", object{{"_id", value(std::string(id, record))}});
          if (::write(fds[1], id, record) != static_cast<ssize_t>(record)) ::_exit(3);
        }
      });
    for (auto& w : writers)
      w.join();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<std::string> acked;
  std::string pending;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (acked.size() < 400 && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    while (pending.size() >= record) {
      acked.push_back(pending.substr(0, record));
      pending.erase(0, record);
    }
  }
  ::kill(child, SIGKILL);
  // Everything written to the pipe before the kill was acknowledged.
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
    pending.append(buf, static_cast<std::size_t>(n));
    while (pending.size() >= record) {
      acked.push_back(pending.substr(0, record));
      pending.erase(0, record);
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_TEST(WIFSIGNALED(status));
  BOOST_TEST_MESSAGE("acknowledged before kill -9: " << acked.size());
  BOOST_REQUIRE(acked.size() >= 400u);

  sqlite_store_options opt;
  opt.data_dir = data;
  auto db = open_sqlite_store(opt);
  std::size_t missing = 0;
  for (auto& id : acked)
    if (!db->find_by_id("rheo", "crash", value(id))) ++missing;
  BOOST_TEST(missing == 0u);
  auto log = caught_up(*db->watch("rheo", "crash", token_from_seq(0)));
  std::set<std::string> logged;
  for (std::size_t k = 0; k < log.size(); ++k) {
    if (k > 0) BOOST_TEST(log[k].seq == log[k - 1].seq + 1);
    logged.insert(log[k].document_key->as_string());
  }
  std::size_t unlogged = 0;
  for (auto& id : acked)
    if (!logged.count(id)) ++unlogged;
  BOOST_TEST(unlogged == 0u);
  // Every committed document has exactly one entry (some may be committed but not yet acked).
  BOOST_TEST(static_cast<std::int64_t>(log.size()) == db->count_query("rheo", "crash", query_of()));
}

BOOST_AUTO_TEST_SUITE_END()
