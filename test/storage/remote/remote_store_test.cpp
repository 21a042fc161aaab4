#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"
#include "storage/remote/remote_store.hpp"
#include "test/storage/sqlite/store_test_support.hpp"

#include <limits>
#include <stdexcept>

using namespace rheo;
using namespace rheo::test;

namespace rheo {
std::ostream& operator<<(std::ostream& os, const object_id& id) {
  return os << id.hex();
}
} // namespace rheo

BOOST_AUTO_TEST_SUITE(remote_store_test)

namespace {

/// The core's SQLite store, and an edge store whose transport serves every call on it
/// (through a copy of the bytes, as a link would carry them). `calls` counts what crossed.
struct edge_fixture : store_fixture {
  int calls = 0;
  remote_store edge{[this](store_method op, const std::string& args) {
                      ++calls;
                      const std::string sent(args.begin(), args.end());
                      std::string reply = serve_store_call(*db, op, sent);
                      return std::string(reply.begin(), reply.end());
                    },
                    [this](const std::string& d, const std::string& c,
                           const std::optional<std::string>& resume_after) {
                      return db->watch(d, c, resume_after);
                    }};
};

/// A query as the REST layer builds it: compiled, with its sources.
find_query rest_query(std::string_view filter = "{}", std::string_view sort = "{}",
                      std::string_view keys = "{}", std::int64_t skip = 0,
                      std::int64_t limit = 100) {
  find_query q = query_of(filter, sort, keys, skip, limit);
  q.filter_doc = J(filter);
  q.sort_doc = J(sort);
  q.keys_doc = J(keys);
  return q;
}

/// The api_error `fn` throws, as "<status> <message>"; "" when it throws none.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const api_error& e) {
    return std::to_string(e.status()) + " " + e.what();
  }
  return "";
}

bool same_documents(const std::vector<object>& a, const std::vector<object>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!identical(value(a[i]), value(b[i]))) return false;
  return true;
}

std::string json_of(const std::vector<object>& docs) {
  array a(docs.begin(), docs.end());
  return to_json(value(std::move(a)));
}

void insert_people(store& s) {
  for (int i = 0; i < 6; ++i)
    s.insert("rheo", "people",
             object{{"_id", value(i)},
                    {"name", value("p" + std::to_string(i))},
                    {"team", value(i % 2 ? "odd" : "even")},
                    {"score", value(10 * i)},
                    {"tags", value(array{value("t" + std::to_string(i % 3))})}});
}

aggregation compile_aggr(std::string_view stages, const object& avars = {},
                         const server_vars& sv = {}, aggregation_paging paging = {}) {
  object def{{"uri", value("a")}, {"stages", parse_json(stages)}};
  return aggregation::compile(def, avars, sv, paging);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_value_of_each_bson_type_survives_the_round_trip) {
  edge_fixture f;
  object_id oid = object_id::generate();
  object doc{
      {"_id", value(oid)},
      {"null", value(null_t{})},
      {"bool", value(true)},
      {"int32", value(std::int32_t{-7})},
      {"int64", value(std::numeric_limits<std::int64_t>::max())},
      {"double", value(2.5)},
      {"date", value(date_time{-1234567})},
      {"oid", value(oid)},
      {"string", value(std::string("nul\0inside", 10))},
      {"nested", value(array{value(array{value(1), value(std::int64_t{2})}),
                             value(object{{"a", value(object{{"b", value(array{})}})}})})},
      {"regex", value(regex_value{"^a", "i"})},
      {"binary", value(binary_value{4, std::string("\x01\x00\x02", 3)})},
      {"timestamp", value(timestamp_value{5, 6})},
  };
  auto w = f.edge.insert("rheo", "types", doc);
  BOOST_TEST(w.created);
  BOOST_TEST(identical(w.id, value(oid)));
  std::string position;
  auto through_edge = f.edge.find_by_id("rheo", "types", value(oid), &position);
  auto direct = f.db->find_by_id("rheo", "types", value(oid));
  BOOST_REQUIRE(through_edge && direct);
  BOOST_TEST(identical(value(*through_edge), value(*direct)));
  object expected = doc;
  expected.emplace_back("_etag", value(w.etag));
  BOOST_TEST(identical(value(*through_edge), value(expected)), to_json(value(*through_edge)));
  BOOST_TEST(!position.empty());
  // A value as an _id: find_by_id sends it as it is (int64 and int32 differ in type only).
  f.edge.insert("rheo", "types", object{{"_id", value(std::int64_t{42})}});
  BOOST_TEST(f.edge.find_by_id("rheo", "types", value(std::int64_t{42}), nullptr).has_value());
}

BOOST_AUTO_TEST_CASE(find_with_filter_sort_keys_and_paging_answers_as_the_core) {
  edge_fixture f;
  insert_people(f.edge);
  auto q = rest_query("{team:'even'}", "{score:-1}", "{name:1}", 1, 2);
  auto through_edge = f.edge.find("rheo", "people", q);
  BOOST_TEST(json_of(through_edge) == R"([{"_id":2,"name":"p2"},{"_id":0,"name":"p0"}])");
  BOOST_TEST(same_documents(through_edge, f.db->find("rheo", "people", q)));
  // Operators of several kinds, an exclusion projection, no limit.
  auto q2 = rest_query("{$or:[{score:{$gte:40}},{tags:{$in:['t1']}}],name:{$regex:'^p'}}",
                       "{name:1}", "{tags:0,team:0,_etag:0}", 0, -1);
  auto r2 = f.edge.find("rheo", "people", q2);
  BOOST_TEST(json_of(r2) == R"([{"_id":1,"name":"p1","score":10},{"_id":4,"name":"p4","score":40},)"
                            R"({"_id":5,"name":"p5","score":50}])");
  BOOST_TEST(same_documents(r2, f.db->find("rheo", "people", q2)));
}

BOOST_AUTO_TEST_CASE(find_fills_the_position_and_the_plan_the_caller_asks_for) {
  edge_fixture f;
  insert_people(f.edge);
  f.edge.create_index("rheo", "people", "score_1", J("{score:1}"), {});
  auto q = rest_query("{score:{$gt:15}}", "{score:1}");
  query_plan plan, direct_plan;
  std::string position, direct_position;
  q.explain = &plan;
  q.position = &position;
  auto docs = f.edge.find("rheo", "people", q);
  q.explain = &direct_plan;
  q.position = &direct_position;
  BOOST_TEST(same_documents(docs, f.db->find("rheo", "people", q)));
  BOOST_TEST(plan.index == "score_1");
  BOOST_TEST(plan.index == direct_plan.index);
  BOOST_TEST(plan.examined == direct_plan.examined);
  BOOST_TEST(plan.bounds == direct_plan.bounds);
  BOOST_TEST(plan.in_memory_sort == direct_plan.in_memory_sort);
  BOOST_TEST(!position.empty());
  BOOST_TEST(position == direct_position);
  f.db->check_resume_token(position);

  // A feed opened from that position sees exactly the later changes.
  auto feed = f.edge.watch("rheo", "people", position);
  auto sink = start(*feed);
  f.edge.insert("rheo", "people", object{{"_id", value(99)}});
  auto events = sink->wait_events(1);
  BOOST_REQUIRE(events.size() == 1u);
  BOOST_TEST(identical(events[0].document_key.value_or(value()), value(99)));
  feed->cancel();

  std::string by_id_position;
  auto doc = f.edge.find_by_id("rheo", "people", value(99), &by_id_position);
  BOOST_TEST(doc.has_value());
  std::string direct_by_id;
  f.db->find_by_id("rheo", "people", value(99), &direct_by_id);
  BOOST_TEST(by_id_position == direct_by_id);
  BOOST_TEST(by_id_position != position);
  BOOST_TEST(!f.edge.find_by_id("rheo", "people", value(100), &by_id_position).has_value());
}

BOOST_AUTO_TEST_CASE(count_query_counts_with_the_filter_document) {
  edge_fixture f;
  insert_people(f.edge);
  BOOST_TEST(f.edge.count_query("rheo", "people", rest_query("{team:'odd'}")) == 3);
  BOOST_TEST(f.edge.count_query("rheo", "people", rest_query()) == 6);
  BOOST_TEST(f.edge.count_query("rheo", "people", query_of()) == 6);
}

BOOST_AUTO_TEST_CASE(a_compiled_filter_without_its_source_is_refused_not_ignored) {
  edge_fixture f;
  insert_people(f.edge);
  const int before = f.calls;
  BOOST_CHECK_THROW(f.edge.find("rheo", "people", query_of("{team:'odd'}")), std::logic_error);
  BOOST_CHECK_THROW(f.edge.count_query("rheo", "people", query_of("{team:'odd'}")),
                    std::logic_error);
  BOOST_CHECK_THROW(f.edge.delete_many("rheo", "people", query_of("{team:'odd'}")),
                    std::logic_error);
  BOOST_CHECK_THROW(f.edge.find("rheo", "people", query_of("{}", "{score:1}")), std::logic_error);
  BOOST_TEST(f.calls == before);
  BOOST_TEST(f.db->count_query("rheo", "people", query_of()) == 6);
}

BOOST_AUTO_TEST_CASE(replace_update_and_remove_keep_etags_and_statuses) {
  edge_fixture f;
  auto w = f.edge.insert("rheo", "docs", J("{_id:'a',n:1,list:[1,2],old:true}"));
  BOOST_TEST(w.created);
  BOOST_TEST(identical(w.id, value("a")));
  auto direct = f.db->find_by_id("rheo", "docs", value("a"));
  BOOST_REQUIRE(direct);
  BOOST_TEST(identical(*find_field(*direct, "_etag"), value(w.etag)));

  auto spec = update_spec::parse(
      J("{$inc:{n:2},$push:{list:{$each:[3,4],$slice:-3}},$unset:{old:''},$set:{'x.y':'z'},"
        "plain:5,$rename:{plain2:'renamed'}}"));
  auto u = f.edge.update("rheo", "docs", value("a"), spec, write_mode::update,
                         "\"" + w.etag.hex() + "\"");
  BOOST_TEST(!u.created);
  BOOST_TEST(u.etag != w.etag);
  auto after = f.db->find_by_id("rheo", "docs", value("a"));
  BOOST_REQUIRE(after);
  erase_field(*after, "_etag");
  BOOST_TEST(to_json(value(*after)) ==
             R"({"_id":"a","n":3,"list":[2,3,4],"x":{"y":"z"},"plain":5})");

  // A stale If-Match: 412 with the core's message and the current etag.
  BOOST_TEST(error_of([&] {
               f.edge.update("rheo", "docs", value("a"), spec, write_mode::update,
                             "\"" + w.etag.hex() + "\"");
             }) == "412 the document ETag does not match If-Match");
  BOOST_TEST((current_etag_of([&] {
                f.edge.update("rheo", "docs", value("a"), spec, write_mode::update,
                              "\"" + w.etag.hex() + "\"");
              }) == u.etag));
  // No document, no etag: an upsert with If-Match.
  BOOST_TEST(!current_etag_of([&] {
                f.edge.update("rheo", "docs", value("none"), spec, write_mode::upsert,
                              "\"" + w.etag.hex() + "\"");
              }).has_value());
  // An update the core's store rejects while applying it: its 400 and message.
  auto bad = update_spec::parse(J("{$inc:{'x':1}}"));
  BOOST_TEST(error_of([&] {
               f.edge.update("rheo", "docs", value("a"), bad, write_mode::update, std::nullopt);
             }) == error_of([&] {
               f.db->update("rheo", "docs", value("a"), bad, write_mode::update, std::nullopt);
             }));
  BOOST_TEST(error_of([&] {
               f.edge.update("rheo", "docs", value("a"), bad, write_mode::update, std::nullopt);
             }).starts_with("400 "));

  auto up = f.edge.update("rheo", "docs", value("b"), update_spec::parse(J("{$set:{k:1}}")),
                          write_mode::upsert, std::nullopt);
  BOOST_TEST(up.created);

  auto r = f.edge.replace("rheo", "docs", value("a"), J("{v:'new'}"), write_mode::update,
                          "\"" + u.etag.hex() + "\"");
  BOOST_TEST(!r.created);
  auto replaced = f.db->find_by_id("rheo", "docs", value("a"));
  BOOST_TEST(to_json(*find_field(*replaced, "v")) == "\"new\"");
  BOOST_TEST(!find_field(*replaced, "n"));
  BOOST_TEST(error_of([&] {
               f.edge.replace("rheo", "docs", value("zz"), J("{v:1}"), write_mode::update,
                              std::nullopt);
             }) == "404 document not found");
  BOOST_TEST(error_of([&] {
               f.edge.replace("rheo", "docs", value("a"), J("{v:1}"), write_mode::insert,
                              std::nullopt);
             }) == "409 duplicate _id: a document with this _id already exists");

  BOOST_TEST(error_of([&] {
               f.edge.remove("rheo", "docs", value("a"), "\"" + u.etag.hex() + "\"");
             }) == "412 the document ETag does not match If-Match");
  f.edge.remove("rheo", "docs", value("a"), "\"" + r.etag.hex() + "\"");
  BOOST_TEST(!f.db->find_by_id("rheo", "docs", value("a")));
  BOOST_TEST(error_of([&] { f.edge.remove("rheo", "docs", value("a"), std::nullopt); }) ==
             "404 document not found");
}

BOOST_AUTO_TEST_CASE(errors_of_the_core_reach_the_caller_with_status_and_message) {
  edge_fixture f;
  f.edge.insert("rheo", "docs", J("{_id:1}"));
  BOOST_TEST(error_of([&] { f.edge.insert("rheo", "docs", J("{_id:1}")); }) ==
             "409 duplicate _id: a document with this _id already exists");
  auto missing = [&](store& s) { return error_of([&] { s.find("rheo", "nope", rest_query()); }); };
  BOOST_TEST(missing(f.edge) == "404 collection 'nope' does not exist");
  BOOST_TEST(missing(f.edge) == missing(*f.db));
  // A filter the core does not compile: the core's 400.
  BOOST_TEST(error_of([&] {
               find_query q;
               q.filter_doc = J("{a:{$where:'x'}}");
               f.edge.find("rheo", "docs", q);
             }) == "400 operator $where is not allowed");
}

BOOST_AUTO_TEST_CASE(collections_are_put_patched_and_dropped_with_their_etags) {
  edge_fixture f;
  BOOST_TEST(f.edge.put_collection("rheo", "c", J("{desc:'one'}"), std::nullopt));
  auto info = f.edge.collection("rheo", "c");
  BOOST_REQUIRE(info);
  auto direct = f.db->collection("rheo", "c");
  BOOST_TEST(info->etag == direct->etag);
  BOOST_TEST(to_json(value(info->metadata)) == R"({"desc":"one"})");
  BOOST_TEST(!f.edge.collection("rheo", "none").has_value());
  BOOST_TEST(f.edge.collection_names("rheo") == f.db->collection_names("rheo"));
  BOOST_TEST(f.edge.collection_names("rheo").size() == 1u);

  BOOST_TEST(error_of([&] {
               f.edge.put_collection("rheo", "c", J("{}"),
                                     std::string("\"") + object_id::generate().hex() + "\"");
             }) == "412 the collection ETag does not match If-Match");
  BOOST_TEST(
      !f.edge.put_collection("rheo", "c", J("{desc:'two'}"), "\"" + info->etag.hex() + "\""));
  f.edge.patch_collection("rheo", "c", J("{more:1}"), std::nullopt);
  auto patched = f.db->collection("rheo", "c");
  BOOST_TEST(to_json(value(patched->metadata)) == R"({"desc":"two","more":1})");
  BOOST_TEST(error_of([&] { f.edge.patch_collection("rheo", "x", J("{a:1}"), std::nullopt); }) ==
             "404 collection 'x' does not exist");

  BOOST_TEST(
      error_of([&] { f.edge.drop_collection("rheo", "c", info->etag.hex()); }).starts_with("412 "));
  BOOST_TEST((current_etag_of([&] { f.edge.drop_collection("rheo", "c", info->etag.hex()); }) ==
              patched->etag));
  f.edge.drop_collection("rheo", "c", patched->etag.hex());
  BOOST_TEST(!f.db->collection("rheo", "c").has_value());
}

BOOST_AUTO_TEST_CASE(bulk_writes_report_what_they_did) {
  edge_fixture f;
  auto ins =
      f.edge.insert_many("rheo", "b", {J("{_id:1,k:'a'}"), J("{_id:2,k:'a'}"), J("{k:'b'}")});
  BOOST_TEST(ins.inserted == 3);
  BOOST_REQUIRE(ins.ids.size() == 3u);
  BOOST_TEST(identical(ins.ids[0], value(1)));
  BOOST_TEST(ins.ids[2].is<object_id>());
  BOOST_TEST(error_of([&] {
               f.edge.insert_many("rheo", "b", {J("{_id:9}"), J("{_id:1}")});
             }).starts_with("409 "));
  BOOST_TEST(f.db->count_query("rheo", "b", query_of()) == 3);

  auto upd = f.edge.update_many("rheo", "b", rest_query("{k:'a'}"),
                                update_spec::parse(J("{$set:{done:true}}")));
  BOOST_TEST(upd.matched == 2);
  BOOST_TEST(upd.modified == 2);
  BOOST_TEST(f.db->count_query("rheo", "b", query_of("{done:true}")) == 2);
  auto again = f.edge.update_many("rheo", "b", rest_query("{k:'a'}"),
                                  update_spec::parse(J("{$set:{done:true}}")));
  BOOST_TEST(again.matched == 2);
  BOOST_TEST(again.modified == 0);

  auto del = f.edge.delete_many("rheo", "b", rest_query("{done:true}"));
  BOOST_TEST(del.deleted == 2);
  BOOST_TEST(f.db->count_query("rheo", "b", query_of()) == 1);
  BOOST_TEST(error_of([&] { f.edge.delete_many("rheo", "none", rest_query("{a:1}")); }) ==
             "404 collection 'none' does not exist");
}

BOOST_AUTO_TEST_CASE(aggregations_run_on_the_core_as_on_the_edge) {
  edge_fixture f;
  insert_people(f.edge);
  const std::string stages = R"([{"$match":{"score":{"$gte":10}}},
      {"$group":{"_id":"$team","total":{"$sum":"$score"},"n":{"$sum":1}}},
      {"$sort":{"_id":1}}])";
  auto a = compile_aggr(stages);
  auto docs = f.edge.aggregate("rheo", "people", a, {});
  BOOST_TEST(json_of(docs) ==
             R"([{"_id":"even","total":60,"n":2},{"_id":"odd","total":90,"n":3}])");
  BOOST_TEST(same_documents(docs, f.db->aggregate("rheo", "people", a, {})));

  // Paging variables, the readFilter's $match and a client variable holding strings that a
  // second resolution would change ("@skip", a "::" key): the core runs what the edge resolved.
  server_vars sv;
  sv.read_filter = J("{team:'odd'}");
  object avars{{"tag", value("@skip")}, {"extra", value(object{{"a::b", value(1)}})}};
  auto paged = compile_aggr(R"([{"$sort":{"score":-1}},{"$skip":"@skip"},{"$limit":"@limit"},
      {"$set":{"label":{"$var":"tag"},"extra":{"$var":"extra"}}},{"$project":{"tags":0,"_etag":0}}])",
                            avars, sv, aggregation_paging{2, 1});
  auto page = f.edge.aggregate("rheo", "people", paged, {});
  BOOST_TEST(
      json_of(page) ==
      R"([{"_id":3,"name":"p3","team":"odd","score":30,"label":"@skip","extra":{"a::b":1}}])");
  BOOST_TEST(same_documents(page, f.db->aggregate("rheo", "people", paged, {})));

  // A $sort over more documents than the limits allow: the core's 400.
  auto sorted = compile_aggr(R"([{"$sort":{"score":1}}])");
  BOOST_TEST(error_of([&] { f.edge.aggregate("rheo", "people", sorted, {3}); }) ==
             "400 $sort exceeded the limit of 3 documents (aggregation_max_documents)");
  BOOST_TEST(f.edge.aggregate("rheo", "people", sorted, {6}).size() == 6u);
  BOOST_TEST(error_of([&] { f.edge.aggregate("rheo", "none", sorted, {}); }) ==
             "404 collection 'none' does not exist");
}

BOOST_AUTO_TEST_CASE(indexes_are_listed_created_and_dropped) {
  edge_fixture f;
  f.edge.insert("rheo", "i", J("{_id:1,a:1,b:2}"));
  f.edge.create_index("rheo", "i", "a_b", J("{a:1,b:-1}"), J("{unique:true,sparse:true}"));
  auto through_edge = f.edge.list_indexes("rheo", "i");
  auto direct = f.db->list_indexes("rheo", "i");
  BOOST_REQUIRE(through_edge.size() == 2u);
  BOOST_REQUIRE(direct.size() == 2u);
  for (std::size_t i = 0; i < direct.size(); ++i) {
    BOOST_TEST(through_edge[i].name == direct[i].name);
    BOOST_TEST(identical(value(through_edge[i].key), value(direct[i].key)));
    BOOST_TEST(identical(value(through_edge[i].options), value(direct[i].options)));
  }
  BOOST_TEST(through_edge[0].name == "_id_");
  BOOST_TEST(to_json(value(through_edge[1].options)) == R"({"unique":true,"sparse":true})");
  BOOST_TEST(error_of([&] {
               f.edge.create_index("rheo", "i", "a_b", J("{a:1}"), {});
             }).starts_with("409 "));
  BOOST_TEST(error_of([&] {
               f.edge.create_index("rheo", "i", "_x", J("{a:1}"), {});
             }).starts_with("400 "));
  BOOST_TEST(error_of([&] { f.edge.drop_index("rheo", "i", "_id_"); }).starts_with("400 "));
  f.edge.drop_index("rheo", "i", "a_b");
  BOOST_TEST(f.db->list_indexes("rheo", "i").size() == 1u);
  BOOST_TEST(error_of([&] { f.edge.drop_index("rheo", "i", "a_b"); }).starts_with("404 "));
  BOOST_TEST(error_of([&] { f.edge.list_indexes("rheo", "none"); }) ==
             "404 collection 'none' does not exist");
}

BOOST_AUTO_TEST_CASE(resume_tokens_are_checked_by_the_core) {
  edge_fixture f;
  auto bad = [](const store& s) { return error_of([&] { s.check_resume_token("not-a-token"); }); };
  BOOST_TEST(bad(f.edge).starts_with("400 "));
  BOOST_TEST(bad(f.edge) == bad(*f.db));
  f.edge.insert("rheo", "t", J("{_id:1}"));
  std::string position;
  f.edge.find_by_id("rheo", "t", value(1), &position);
  const int before = f.calls;
  static_cast<const store&>(f.edge).check_resume_token(position);
  BOOST_TEST(f.calls == before + 1);
}

BOOST_AUTO_TEST_CASE(a_core_that_cannot_be_reached_is_503_for_the_caller) {
  remote_store edge(
      [](store_method, const std::string&) -> std::string {
        throw api_error(503, "the core node does not answer");
      },
      nullptr);
  BOOST_TEST(error_of([&] { edge.find("rheo", "c", rest_query()); }) ==
             "503 the core node does not answer");
  BOOST_TEST(error_of([&] { edge.insert("rheo", "c", J("{}")); }) ==
             "503 the core node does not answer");
  BOOST_TEST(error_of([&] { edge.check_resume_token("00"); }) ==
             "503 the core node does not answer");
  edge.close(); // nothing to close
}

BOOST_AUTO_TEST_CASE(a_local_store_takes_every_call_but_watch) {
  store_fixture core;
  int transported = 0;
  std::shared_ptr<store> local = std::move(core.db);
  remote_store edge(
      [&](store_method, const std::string&) -> std::string {
        ++transported;
        throw api_error(503, "unused");
      },
      [&](const std::string& d, const std::string& c, const std::optional<std::string>& r) {
        return local->watch(d, c, r);
      },
      local);
  edge.insert("rheo", "l", J("{_id:1}"));
  BOOST_TEST(edge.find("rheo", "l", query_of("{_id:1}")).size() == 1u); // compiled only: fine
  BOOST_TEST(edge.count_query("rheo", "l", query_of("{_id:1}")) == 1);
  edge.check_resume_token(std::string(16, '0'));
  BOOST_TEST(transported == 0);
  auto feed = edge.watch("rheo", "l", std::nullopt);
  BOOST_TEST(!feed->position().empty());
  feed->cancel();
  edge.close();
  BOOST_CHECK_THROW(local->insert("rheo", "l", J("{_id:2}")), std::runtime_error); // closed
}

BOOST_AUTO_TEST_CASE(serve_store_call_answers_a_bad_call_with_an_error_reply) {
  store_fixture core;
  auto reply_of = [&](const std::string& op, const std::string& args) {
    return to_json(value(decode_bson(serve_store_call(*core.db, op, args))));
  };
  BOOST_TEST(reply_of("drop_everything", encode_bson(J("{a:[]}"))) ==
             R"({"ok":false,"status":400,"message":"unknown store call 'drop_everything'"})");
  BOOST_TEST(reply_of("find", "garbage").starts_with(R"({"ok":false,"status":500,)"));
  BOOST_TEST(reply_of("collection_names", encode_bson(J("{a:[1,2]}"))) ==
             R"({"ok":false,"status":500,"message":"store call: malformed arguments"})");
  BOOST_TEST(reply_of("collection_names", encode_bson(J("{a:['rheo']}"))) ==
             R"({"ok":true,"r":[],"out":[null]})");
}

BOOST_AUTO_TEST_SUITE_END()
