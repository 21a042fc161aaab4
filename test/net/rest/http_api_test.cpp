// HTTP tests against a real rheo process: every row of section 3 of the API contract,
// JSON rules, errors, CORS, static files and bad input; from section 9, the index API,
// explain, the chat's index on `messages`, bulk writes and aggregations.
#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "test/test_support.hpp"

#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <sys/wait.h>
#include <thread>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(http_api_test)

namespace {

/// RHEO_TEST_EDGE=1: the shared server is an edge of a core.
bool edge_mode() {
  const char* edge = std::getenv("RHEO_TEST_EDGE");
  return edge && std::string(edge) == "1";
}

/// The shared server: a standalone node, or with RHEO_TEST_EDGE=1 an edge of a core (the
/// same suite then checks that an edge answers every call as a node would).
rheo_process& server() {
  static std::unique_ptr<rheo_process> core;
  static std::unique_ptr<rheo_process> p = [] {
    if (!edge_mode()) return std::make_unique<rheo_process>();
    const std::string listen = "127.0.0.1:" + std::to_string(free_port());
    core = std::make_unique<rheo_process>(std::vector<std::string>{
        "--cluster-listen", listen, "--cluster-secret", "edge-test", "--node-name", "core"});
    return std::make_unique<rheo_process>(std::vector<std::string>{
        "--cluster-join", listen, "--cluster-secret", "edge-test", "--node-name", "edge"});
  }();
  return *p;
}

http_result req(const std::string& method, const std::string& target, const std::string& body = "",
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return http(server().port(), method, target, body, headers);
}

value json(const http_result& r) {
  return parse_json(r.body, "response");
}

array json_array(const http_result& r) {
  value v = json(r);
  BOOST_REQUIRE_MESSAGE(v.is_array(), "expected an array: " + r.body);
  return v.as_array();
}

object json_object(const http_result& r) {
  value v = json(r);
  BOOST_REQUIRE_MESSAGE(v.is_object(), "expected an object: " + r.body);
  return v.as_object();
}

std::string message_of(const http_result& r) {
  auto o = json_object(r);
  const value* m = find_field(o, "message");
  BOOST_REQUIRE(m && m->is_string());
  return m->as_string();
}

void expect_error(const http_result& r, int status, const std::string& fragment) {
  BOOST_TEST(r.status == status, "status " << r.status << " body " << r.body);
  auto o = json_object(r);
  const value* code = find_field(o, "http status code");
  BOOST_TEST((code && code->is_number() && code->as_int64() == status));
  BOOST_TEST(find_field(o, "http status description") != nullptr);
  BOOST_TEST(message_of(r).find(fragment) != std::string::npos,
             "message '" << message_of(r) << "' lacks '" << fragment << "'");
}

std::string field_string(const object& o, const char* name) {
  const value* v = find_path(o, name);
  return v && v->is_string() ? v->as_string() : std::string("<missing>");
}

/// Inserts and returns the Location path.
std::string post(const std::string& coll, const std::string& body) {
  auto r = req("POST", "/" + coll, body);
  BOOST_REQUIRE_MESSAGE(r.status == 201,
                        "POST " + body + " -> " + std::to_string(r.status) + " " + r.body);
  return r.header("location");
}

} // namespace

BOOST_AUTO_TEST_CASE(ping_answers_ok) {
  auto r = req("GET", "/_ping");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == R"({"status":"ok"})");
  BOOST_TEST(r.header("content-type") == "application/json");
}

BOOST_AUTO_TEST_CASE(post_inserts_with_generated_object_id_location_and_etag) {
  auto r = req("POST", "/posts", R"({"message":"hi","from":"ann"})");
  BOOST_TEST(r.status == 201);
  BOOST_TEST(r.body.empty());
  std::string loc = r.header("location");
  BOOST_TEST(loc.rfind("/posts/", 0) == 0);
  std::string id = loc.substr(7);
  BOOST_TEST(object_id::from_hex(id).has_value(), "id " << id);
  BOOST_TEST(object_id::from_hex(r.header("etag")).has_value());
  auto got = req("GET", loc);
  BOOST_TEST(got.status == 200);
  auto doc = json_object(got);
  BOOST_TEST(field_string(doc, "message") == "hi");
  BOOST_TEST(field_string(doc, "_id.$oid") == "<missing>"); // parsed back as an ObjectId value
  BOOST_TEST(find_field(doc, "_id")->is<object_id>());
  BOOST_TEST(find_field(doc, "_id")->get<object_id>().hex() == id);
  BOOST_TEST(got.body.find("{\"$oid\":\"" + id + "\"}") != std::string::npos);
  BOOST_TEST(find_field(doc, "_etag")->is<object_id>());
  BOOST_TEST(got.header("etag") == find_field(doc, "_etag")->get<object_id>().hex());
}

BOOST_AUTO_TEST_CASE(post_requires_a_json_object) {
  // An array is a bulk insert (section 9): each element must be an object.
  expect_error(req("POST", "/posts", "[1,2]"), 400, "element 0 of the array is not an object");
  expect_error(req("POST", "/posts", "42"), 400, "data must be a json object");
  expect_error(req("POST", "/posts", ""), 400, "data must be a json object");
  expect_error(req("POST", "/posts", "{\"a\":"), 400, "body");
  expect_error(req("POST", "/posts", "{\"a\":1} trailing"), 400, "body");
}

BOOST_AUTO_TEST_CASE(post_with_an_existing_id_is_a_conflict) {
  BOOST_TEST(req("POST", "/dups", R"({"_id":"x","n":1})").status == 201);
  auto r = req("POST", "/dups", R"({"_id":"x","n":2})");
  BOOST_TEST(r.status == 409);
  auto doc = json_object(req("GET", "/dups/x"));
  BOOST_TEST(find_field(doc, "n")->as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(post_creates_the_collection_and_expands_dotted_keys) {
  auto loc = post("dotted", R"({"a.b":1,"a.c":"x"})");
  auto doc = json_object(req("GET", loc));
  BOOST_TEST(find_path(doc, "a.b")->as_int64() == 1);
  BOOST_TEST(field_string(doc, "a.c") == "x");
  expect_error(req("POST", "/dotted", R"({"$set":{"a":1}})"), 400, "$set");
  // $currentDate is allowed in a body and stamps a date.
  auto loc2 = post("dotted", R"({"$currentDate":{"at":true},"k":1})");
  auto doc2 = json_object(req("GET", loc2));
  BOOST_TEST(find_field(doc2, "at")->is<date_time>());
}

BOOST_AUTO_TEST_CASE(extended_json_round_trips_through_the_api) {
  auto loc =
      post("ext",
           R"({"_id":{"$oid":"5f1a2b3c4d5e6f7a8b9c0d1e"},"d":{"$date":1700000000123},)"
           R"("iso":{"$date":"2024-01-02T03:04:05.006Z"},"l":{"$numberLong":"9007199254740993"}})");
  BOOST_TEST(loc == "/ext/5f1a2b3c4d5e6f7a8b9c0d1e");
  auto r = req("GET", loc);
  BOOST_TEST(r.body.find(R"("d":{"$date":1700000000123})") != std::string::npos, r.body);
  BOOST_TEST(r.body.find(R"("iso":{"$date":1704164645006})") != std::string::npos, r.body);
  BOOST_TEST(r.body.find(R"("l":9007199254740993)") != std::string::npos, r.body);
}

BOOST_AUTO_TEST_CASE(get_collection_lists_newest_first_with_paging) {
  for (int i = 0; i < 25; ++i)
    post("paging", "{\"n\":" + std::to_string(i) + "}");
  auto all = json_array(req("GET", "/paging?pagesize=100"));
  BOOST_REQUIRE(all.size() == 25);
  BOOST_TEST(find_field(all[0].as_object(), "n")->as_int64() == 24);
  BOOST_TEST(find_field(all[24].as_object(), "n")->as_int64() == 0);
  auto p2 = json_array(req("GET", "/paging?page=2&pagesize=10"));
  BOOST_REQUIRE(p2.size() == 10);
  BOOST_TEST(find_field(p2[0].as_object(), "n")->as_int64() == 14);
  auto p3 = json_array(req("GET", "/paging?page=3&pagesize=10"));
  BOOST_TEST(p3.size() == 5);
  BOOST_TEST(json_array(req("GET", "/paging?pagesize=0")).empty());
  BOOST_TEST(json_array(req("GET", "/paging")).size() == 25); // default pagesize 100
}

BOOST_AUTO_TEST_CASE(bad_page_and_pagesize_are_rejected_naming_the_parameter) {
  post("badpage", "{}");
  expect_error(req("GET", "/badpage?page=0"), 400, "page");
  expect_error(req("GET", "/badpage?page=abc"), 400, "page");
  expect_error(req("GET", "/badpage?pagesize=1001"), 400, "pagesize");
  expect_error(req("GET", "/badpage?pagesize=-1"), 400, "pagesize");
  expect_error(req("GET", "/badpage?pagesize=1x"), 400, "pagesize");
}

BOOST_AUTO_TEST_CASE(filter_sort_and_keys_accept_relaxed_shell_syntax) {
  const char* docs[] = {R"({"from":"ann","timestamp":{"$date":3000},"v":1})",
                        R"({"from":"bob","timestamp":{"$date":1000},"v":2})",
                        R"({"from":"ann","timestamp":{"$date":2000},"v":3})"};
  for (auto* d : docs)
    post("chat", d);
  // The WebChat's exact call.
  auto r = req("GET", "/chat?page=1&pagesize=15&sort={timestamp:-1}");
  BOOST_TEST(r.status == 200, r.body);
  auto a = json_array(r);
  BOOST_REQUIRE(a.size() == 3);
  BOOST_TEST(find_field(a[0].as_object(), "v")->as_int64() == 1);
  BOOST_TEST(find_field(a[2].as_object(), "v")->as_int64() == 2);
  // sort=field and -field forms.
  auto asc = json_array(req("GET", "/chat?sort=timestamp"));
  BOOST_TEST(find_field(asc[0].as_object(), "v")->as_int64() == 2);
  auto desc = json_array(req("GET", "/chat?sort=-v"));
  BOOST_TEST(find_field(desc[0].as_object(), "v")->as_int64() == 3);
  // filter with single quotes and an operator; repeated filters are ANDed.
  auto f = json_array(req("GET", "/chat?filter=%7Bfrom:'ann'%7D&sort=%7Bv:1%7D"));
  BOOST_REQUIRE(f.size() == 2);
  BOOST_TEST(find_field(f[0].as_object(), "v")->as_int64() == 1);
  auto f2 = json_array(req("GET", "/chat?filter={from:'ann'}&filter={v:{$gt:1}}"));
  BOOST_REQUIRE(f2.size() == 1);
  BOOST_TEST(find_field(f2[0].as_object(), "v")->as_int64() == 3);
  BOOST_TEST(json_array(req("GET", "/chat?filter={}")).size() == 3);
  // keys projection.
  auto k = json_array(req("GET", "/chat?keys={from:1}&sort={v:1}"));
  BOOST_REQUIRE(k.size() == 3);
  BOOST_TEST(find_field(k[0].as_object(), "from") != nullptr);
  BOOST_TEST(find_field(k[0].as_object(), "_id") != nullptr);
  BOOST_TEST(find_field(k[0].as_object(), "v") == nullptr);
  auto k0 = json_array(req("GET", "/chat?keys={v:0,_id:0}"));
  BOOST_TEST(find_field(k0[0].as_object(), "v") == nullptr);
  BOOST_TEST(find_field(k0[0].as_object(), "_id") == nullptr);
  BOOST_TEST(find_field(k0[0].as_object(), "from") != nullptr);
}

BOOST_AUTO_TEST_CASE(bad_filters_are_rejected_naming_what_is_wrong) {
  post("badfilter", R"({"a":1})");
  expect_error(req("GET", "/badfilter?filter={a:"), 400, "filter");
  expect_error(req("GET", "/badfilter?filter=[1]"), 400, "filter");
  expect_error(req("GET", "/badfilter?filter={a:{$foo:1}}"), 400, "$foo");
  expect_error(req("GET", "/badfilter?filter={$where:'1'}"), 400, "$where");
  expect_error(req("GET", "/badfilter?filter={$function:{}}"), 400, "$function");
  expect_error(req("GET", "/badfilter?sort={a:'up'}"), 400, "a");
  expect_error(req("GET", "/badfilter?keys={a:1,b:0}"), 400, "");
  expect_error(req("GET", "/badfilter?sort=%7Ba"), 400, "sort");
}

BOOST_AUTO_TEST_CASE(unknown_collection_is_404) {
  expect_error(req("GET", "/nosuchcoll"), 404, "nosuchcoll");
  expect_error(req("GET", "/nosuchcoll/_size"), 404, "nosuchcoll");
  expect_error(req("GET", "/nosuchcoll/_meta"), 404, "nosuchcoll");
  expect_error(req("GET", "/nosuchcoll/abc"), 404, "");
}

BOOST_AUTO_TEST_CASE(invalid_collection_names_are_400) {
  expect_error(req("GET", "/_hidden"), 400, "_hidden");
  expect_error(req("GET", "/system.users"), 400, "system.users");
  expect_error(req("GET", "/bad%24name"), 400, "bad$name");
  expect_error(req("POST", "/a%20b", "{}"), 400, "a b");
}

BOOST_AUTO_TEST_CASE(size_counts_with_filter) {
  for (int i = 0; i < 7; ++i)
    post("sized", "{\"even\":" + std::string(i % 2 ? "false" : "true") + "}");
  BOOST_TEST(req("GET", "/sized/_size").body == R"({"_size":7})");
  BOOST_TEST(req("GET", "/sized/_size?filter={even:true}").body == R"({"_size":4})");
  expect_error(req("GET", "/sized/_size?filter={even:{$bad:1}}"), 400, "$bad");
}

BOOST_AUTO_TEST_CASE(collection_metadata_put_get_patch_and_etag) {
  auto r = req("PUT", "/metacoll", R"({"streams":[{"uri":"all","stages":[]}],"x":1})");
  BOOST_TEST(r.status == 201, r.body);
  std::string etag1 = r.header("etag");
  BOOST_TEST(object_id::from_hex(etag1).has_value());
  auto meta = json_object(req("GET", "/metacoll/_meta"));
  BOOST_TEST(find_field(meta, "streams")->is_array());
  BOOST_TEST(find_field(meta, "x")->as_int64() == 1);
  BOOST_TEST(find_field(meta, "_etag")->get<object_id>().hex() == etag1);
  // Replace: 200, x gone.
  auto r2 = req("PUT", "/metacoll", R"({"y":2})");
  BOOST_TEST(r2.status == 200);
  BOOST_TEST(r2.header("etag") != etag1);
  meta = json_object(req("GET", "/metacoll/_meta"));
  BOOST_TEST(find_field(meta, "x") == nullptr);
  BOOST_TEST(find_field(meta, "y")->as_int64() == 2);
  // Patch merges.
  BOOST_TEST(req("PATCH", "/metacoll", R"({"z":3})").status == 200);
  meta = json_object(req("GET", "/metacoll/_meta"));
  BOOST_TEST(find_field(meta, "y")->as_int64() == 2);
  BOOST_TEST(find_field(meta, "z")->as_int64() == 3);
  expect_error(req("PATCH", "/nosuchmeta", R"({"z":3})"), 404, "");
  // PUT with no body creates.
  BOOST_TEST(req("PUT", "/emptymeta").status == 201);
  BOOST_TEST(json_array(req("GET", "/emptymeta")).empty());
  // Metadata keys cannot start with $.
  expect_error(req("PUT", "/metacoll", R"({"$bad":1})"), 400, "$bad");
  // If-Match on PUT of a collection.
  auto stale = req("PUT", "/metacoll", R"({"w":1})", {{"If-Match", etag1}});
  BOOST_TEST(stale.status == 412);
}

BOOST_AUTO_TEST_CASE(drop_requires_the_collection_etag) {
  auto r = req("PUT", "/todrop", "{}");
  std::string etag = r.header("etag");
  post("todrop", R"({"a":1})");
  expect_error(req("DELETE", "/todrop"), 409, "If-Match");
  BOOST_TEST(req("DELETE", "/todrop", "", {{"If-Match", "5f1a2b3c4d5e6f7a8b9c0d1e"}}).status ==
             412);
  BOOST_TEST(req("DELETE", "/todrop", "", {{"If-Match", etag}}).status == 204);
  expect_error(req("GET", "/todrop"), 404, "");
  expect_error(req("DELETE", "/todrop", "", {{"If-Match", etag}}), 404, "");
}

BOOST_AUTO_TEST_CASE(get_document_by_id_types) {
  post("ids", R"({"_id":"abc","t":"string"})");
  post("ids", R"({"_id":42,"t":"number"})");
  post("ids", R"({"_id":"5f1a2b3c4d5e6f7a8b9c0d1e","t":"hexstring"})");
  post("ids", R"({"_id":{"$oid":"5f1a2b3c4d5e6f7a8b9c0d1e"},"t":"oid"})");
  BOOST_TEST(field_string(json_object(req("GET", "/ids/abc")), "t") == "string");
  BOOST_TEST(field_string(json_object(req("GET", "/ids/42?id_type=NUMBER")), "t") == "number");
  expect_error(req("GET", "/ids/42"), 404, ""); // a string "42" does not exist
  BOOST_TEST(field_string(json_object(req("GET", "/ids/5f1a2b3c4d5e6f7a8b9c0d1e")), "t") == "oid");
  BOOST_TEST(field_string(json_object(req("GET", "/ids/5f1a2b3c4d5e6f7a8b9c0d1e?id_type=STRING")),
                          "t") == "hexstring");
  expect_error(req("GET", "/ids/xyz?id_type=OID"), 400, "xyz");
  expect_error(req("GET", "/ids/abc?id_type=NUMBER"), 400, "abc");
  expect_error(req("GET", "/ids/abc?id_type=BOGUS"), 400, "id_type");
  expect_error(req("GET", "/ids/nope"), 404, "nope");
  // keys on a single document.
  auto k = json_object(req("GET", "/ids/abc?keys={t:0}"));
  BOOST_TEST(find_field(k, "t") == nullptr);
}

BOOST_AUTO_TEST_CASE(put_document_replaces_and_upserts) {
  post("repl", R"({"_id":"d1","a":1,"b":2})");
  auto r = req("PUT", "/repl/d1", R"({"a":10})");
  BOOST_TEST(r.status == 200, r.body);
  auto doc = json_object(req("GET", "/repl/d1"));
  BOOST_TEST(find_field(doc, "a")->as_int64() == 10);
  BOOST_TEST(find_field(doc, "b") == nullptr);
  expect_error(req("PUT", "/repl/d2", R"({"a":1})"), 404, "");
  auto up = req("PUT", "/repl/d2?wm=upsert", R"({"a":1})");
  BOOST_TEST(up.status == 201);
  BOOST_TEST(find_field(json_object(req("GET", "/repl/d2")), "a")->as_int64() == 1);
  expect_error(req("PUT", "/repl/d1", R"({"_id":"other","a":1})"), 400, "_id");
  expect_error(req("PUT", "/repl/d1", R"({"$inc":{"a":1}})"), 400, "$inc");
  expect_error(req("PUT", "/repl/d1?wm=sideways", R"({"a":1})"), 400, "wm");
}

BOOST_AUTO_TEST_CASE(patch_document_applies_operators_and_plain_fields) {
  post("upd", R"({"_id":"p","n":1,"tags":["a"],"gone":true,"nested":{"x":1}})");
  BOOST_TEST(req("PATCH", "/upd/p", R"({"$inc":{"n":2},"$push":{"tags":"b"}})").status == 200);
  BOOST_TEST(req("PATCH", "/upd/p", R"({"plain":"set","$unset":{"gone":""}})").status == 200);
  BOOST_TEST(req("PATCH", "/upd/p", R"({"nested.y":2})").status == 200);
  auto doc = json_object(req("GET", "/upd/p"));
  BOOST_TEST(find_field(doc, "n")->as_int64() == 3);
  BOOST_TEST(find_field(doc, "tags")->as_array().size() == 2);
  BOOST_TEST(field_string(doc, "plain") == "set");
  BOOST_TEST(find_field(doc, "gone") == nullptr);
  BOOST_TEST(find_path(doc, "nested.x")->as_int64() == 1);
  BOOST_TEST(find_path(doc, "nested.y")->as_int64() == 2);
  expect_error(req("PATCH", "/upd/missing", R"({"a":1})"), 404, "");
  BOOST_TEST(req("PATCH", "/upd/missing?wm=upsert", R"({"a":1})").status == 201);
  BOOST_TEST(find_field(json_object(req("GET", "/upd/missing")), "a")->as_int64() == 1);
  expect_error(req("PATCH", "/upd/p", R"({"$bogus":{"a":1}})"), 400, "$bogus");
  expect_error(req("PATCH", "/upd/p", R"({"$inc":{"plain":1}})"), 400, "plain");
  expect_error(req("PATCH", "/upd/p", "[]"), 400, "json object");
}

BOOST_AUTO_TEST_CASE(delete_document) {
  post("del", R"({"_id":"x"})");
  BOOST_TEST(req("DELETE", "/del/x").status == 204);
  expect_error(req("GET", "/del/x"), 404, "");
  expect_error(req("DELETE", "/del/x"), 404, "");
}

BOOST_AUTO_TEST_CASE(if_match_guards_document_writes) {
  auto r = req("POST", "/ifm", R"({"_id":"d","v":1})");
  std::string etag = r.header("etag");
  BOOST_TEST(
      req("PATCH", "/ifm/d", R"({"v":2})", {{"If-Match", "5f1a2b3c4d5e6f7a8b9c0d1e"}}).status ==
      412);
  BOOST_TEST(find_field(json_object(req("GET", "/ifm/d")), "v")->as_int64() == 1);
  auto ok = req("PATCH", "/ifm/d", R"({"v":2})", {{"If-Match", etag}});
  BOOST_TEST(ok.status == 200);
  BOOST_TEST(ok.header("etag") != etag);
  BOOST_TEST(req("PUT", "/ifm/d", R"({"v":3})", {{"If-Match", etag}}).status == 412);
  BOOST_TEST(req("DELETE", "/ifm/d", "", {{"If-Match", etag}}).status == 412);
  BOOST_TEST(req("DELETE", "/ifm/d", "", {{"If-Match", ok.header("etag")}}).status == 204);
}

BOOST_AUTO_TEST_CASE(a_412_answers_the_current_etag_and_a_retry_with_it_succeeds) {
  const std::string stale = "5f1a2b3c4d5e6f7a8b9c0d1e";
  post("retry412", R"({"_id":"d","v":1})");
  auto current = [] {
    auto got = req("GET", "/retry412/d");
    BOOST_REQUIRE(got.status == 200);
    return got.header("etag");
  };
  auto put = req("PUT", "/retry412/d", R"({"v":2})", {{"If-Match", stale}});
  BOOST_TEST(put.status == 412, put.body);
  BOOST_TEST(put.header("etag") == current());
  auto replaced = req("PUT", "/retry412/d", R"({"v":2})", {{"If-Match", put.header("etag")}});
  BOOST_TEST(replaced.status == 200, replaced.body);
  // The etag the PUT replaced is stale now: the 412 names the PUT's.
  auto patch = req("PATCH", "/retry412/d", R"({"v":3})", {{"If-Match", put.header("etag")}});
  BOOST_TEST(patch.status == 412, patch.body);
  BOOST_TEST(patch.header("etag") == replaced.header("etag"));
  BOOST_TEST(patch.header("etag") == current());
  BOOST_TEST(
      req("PATCH", "/retry412/d", R"({"v":3})", {{"If-Match", patch.header("etag")}}).status ==
      200);
  auto del = req("DELETE", "/retry412/d", "", {{"If-Match", stale}});
  BOOST_TEST(del.status == 412, del.body);
  BOOST_TEST(del.header("etag") == current());
  BOOST_TEST(req("DELETE", "/retry412/d", "", {{"If-Match", del.header("etag")}}).status == 204);
  // No document, no etag to give: an upsert with If-Match is 412 without one, an update 404.
  auto upsert = req("PUT", "/retry412/d?wm=upsert", R"({"v":1})", {{"If-Match", stale}});
  BOOST_TEST(upsert.status == 412, upsert.body);
  BOOST_TEST(upsert.header("etag").empty());
  expect_error(req("PATCH", "/retry412/d", R"({"v":1})", {{"If-Match", stale}}), 404, "");

  // A collection's metadata.
  BOOST_TEST(req("PUT", "/retry412meta", R"({"x":1})").status == 201);
  auto meta_etag = [] {
    auto got = req("GET", "/retry412meta/_meta");
    BOOST_REQUIRE(got.status == 200);
    return got.header("etag");
  };
  auto mput = req("PUT", "/retry412meta", R"({"x":2})", {{"If-Match", stale}});
  BOOST_TEST(mput.status == 412, mput.body);
  BOOST_TEST(mput.header("etag") == meta_etag());
  BOOST_TEST(
      req("PUT", "/retry412meta", R"({"x":2})", {{"If-Match", mput.header("etag")}}).status == 200);
  auto mpatch = req("PATCH", "/retry412meta", R"({"y":1})", {{"If-Match", mput.header("etag")}});
  BOOST_TEST(mpatch.status == 412, mpatch.body);
  BOOST_TEST(mpatch.header("etag") == meta_etag());
  BOOST_TEST(
      req("PATCH", "/retry412meta", R"({"y":1})", {{"If-Match", mpatch.header("etag")}}).status ==
      200);
  auto mdel = req("DELETE", "/retry412meta", "", {{"If-Match", stale}});
  BOOST_TEST(mdel.status == 412, mdel.body);
  BOOST_TEST(mdel.header("etag") == meta_etag());
  BOOST_TEST(req("DELETE", "/retry412meta", "", {{"If-Match", mdel.header("etag")}}).status == 204);
  auto absent = req("PUT", "/retry412meta", "{}", {{"If-Match", stale}});
  BOOST_TEST(absent.status == 412, absent.body);
  BOOST_TEST(absent.header("etag").empty());
}

BOOST_AUTO_TEST_CASE(root_lists_collections_or_redirects_browsers) {
  post("listed", "{}");
  auto names = json_array(req("GET", "/"));
  bool found = false;
  for (auto& n : names)
    found = found || (n.is_string() && n.as_string() == "listed");
  BOOST_TEST(found);
  auto html = req("GET", "/", "", {{"Accept", "text/html,application/xhtml+xml"}});
  BOOST_TEST(html.status == 302);
  BOOST_TEST(html.header("location") == "/chat/");
}

BOOST_AUTO_TEST_CASE(cors_echoes_origin_and_answers_preflight) {
  auto r = req("GET", "/_ping", "", {{"Origin", "http://example.test"}});
  BOOST_TEST(r.header("access-control-allow-origin") == "http://example.test");
  // No origin is listed in cors_allowed_origins: calls are allowed without credentials.
  BOOST_TEST(r.header("access-control-allow-credentials").empty());
  BOOST_TEST(r.header("vary") == "Origin");
  BOOST_TEST(r.header("access-control-expose-headers").find("Location") != std::string::npos);
  BOOST_TEST(r.header("access-control-expose-headers").find("ETag") != std::string::npos);
  auto pre = req("OPTIONS", "/messages", "",
                 {{"Origin", "http://example.test"},
                  {"Access-Control-Request-Method", "POST"},
                  {"Access-Control-Request-Headers", "content-type"}});
  BOOST_TEST(pre.status == 200);
  BOOST_TEST(pre.header("access-control-allow-methods").find("POST") != std::string::npos);
  BOOST_TEST(pre.header("access-control-allow-headers") == "content-type");
  BOOST_TEST(pre.header("access-control-allow-origin") == "http://example.test");
  BOOST_TEST(pre.header("access-control-allow-credentials").empty());
}

BOOST_AUTO_TEST_CASE(oversized_body_is_413) {
  std::string big = "{\"x\":\"" + std::string(17 * 1024 * 1024, 'a') + "\"}";
  std::string raw = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: " +
                    std::to_string(big.size()) + "\r\n\r\n" + big;
  auto responses = parse_responses(raw_exchange(server().port(), raw));
  BOOST_REQUIRE(!responses.empty());
  BOOST_TEST(responses[0].status == 413);
  BOOST_TEST(responses[0].body.find("limit") != std::string::npos);
  // The server is fine afterwards.
  BOOST_TEST(req("GET", "/_ping").status == 200);
}

namespace {
/// {"a":{"a":...<leaf>...}} with `levels` objects.
std::string nested_objects(int levels, const std::string& leaf = "1") {
  std::string s;
  for (int i = 0; i < levels; ++i)
    s += "{\"a\":";
  return s + leaf + std::string(levels, '}');
}
/// "a.a.a...": a dotted path of `segments` segments.
std::string dotted_path(int segments) {
  std::string s = "a";
  for (int i = 1; i < segments; ++i)
    s += ".a";
  return s;
}
} // namespace

BOOST_AUTO_TEST_CASE(json_nested_deeper_than_100_levels_is_400_and_the_server_keeps_serving) {
  const std::string too_deep = "nested deeper than 100 levels";
  // Bodies: 10,000 levels of arrays or objects, and just over the limit.
  expect_error(req("POST", "/deep", std::string(10000, '[') + std::string(10000, ']')), 400,
               too_deep);
  expect_error(req("POST", "/deep", nested_objects(10000)), 400, too_deep);
  expect_error(req("POST", "/deep", nested_objects(101)), 400, too_deep);
  // 100 levels are stored, read back and listed.
  auto at_limit = post("deep", nested_objects(100));
  auto got = req("GET", at_limit);
  BOOST_TEST(got.status == 200, got.body);
  BOOST_TEST(got.body.find(nested_objects(99)) != std::string::npos);
  BOOST_TEST(req("GET", "/deep").status == 200); // a list of them is 101 levels: still sent
  // Dotted keys nest as deep as their segments: refused before the document is built.
  expect_error(req("POST", "/deep", "{\"" + dotted_path(10000) + "\":1}"), 400, too_deep);
  expect_error(req("POST", "/deep", "{\"" + dotted_path(60) + "\":" + nested_objects(60) + "}"),
               400, too_deep);
  // An update whose path and value each fit but whose result does not; the document stays.
  auto id = post("deep", R"({"n":1})");
  expect_error(
      req("PATCH", id, "{\"$set\":{\"" + dotted_path(60) + "\":" + nested_objects(60) + "}}"), 400,
      too_deep);
  expect_error(req("PATCH", id, "{\"$set\":{\"" + dotted_path(10000) + "\":1}}"), 400, too_deep);
  auto unchanged = json_object(req("GET", id));
  BOOST_TEST(find_field(unchanged, "a") == nullptr);
  BOOST_TEST(find_field(unchanged, "n")->as_int64() == 1);
  // Query parameters (relaxed syntax).
  std::string deep_param;
  for (int i = 0; i < 2000; ++i)
    deep_param += "{a:";
  expect_error(req("GET", "/deep?filter=" + deep_param), 400, too_deep);
  expect_error(req("GET", "/deep?sort=" + deep_param), 400, too_deep);
  expect_error(req("GET", "/deep?keys=" + deep_param), 400, too_deep);
  // Stream and aggregation definitions in collection metadata, and avars.
  expect_error(req("PUT", "/deepmeta", "{\"streams\":" + std::string(10000, '[') + "}"), 400,
               too_deep);
  expect_error(
      req("PUT", "/deepmeta",
          R"({"aggrs":[{"uri":"x","stages":[{"$match":)" + nested_objects(10000) + "}]}]}"),
      400, too_deep);
  auto defined = req("PUT", "/deepmeta", R"({"streams":[{"uri":"all","stages":[]}]})");
  BOOST_REQUIRE_MESSAGE(defined.status == 201 || defined.status == 200, defined.body);
  ws_client c(server().port(), "/deepmeta/_streams/all?avars=" + deep_param);
  BOOST_TEST(c.upgrade_status() == 400);
  BOOST_TEST(c.error_body().find(too_deep) != std::string::npos, c.error_body());
  BOOST_TEST(req("GET", "/_ping").status == 200);
}

BOOST_AUTO_TEST_CASE(malformed_http_gets_400_and_the_server_survives) {
  auto garbage = raw_exchange(server().port(), "THIS IS NOT HTTP\r\n\r\n");
  BOOST_TEST(garbage.find("400") != std::string::npos);
  auto bad_target =
      parse_responses(raw_exchange(server().port(), "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"));
  BOOST_REQUIRE(!bad_target.empty());
  BOOST_TEST(bad_target[0].status == 400);
  BOOST_TEST(req("GET", "/_ping").status == 200);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
  post("pipe", R"({"_id":"a","v":1})");
  std::string raw;
  for (int i = 0; i < 5; ++i)
    raw += "GET /pipe/a HTTP/1.1\r\nHost: x\r\n\r\nGET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
  raw += "POST /pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"_id\":\"b\"}  ";
  raw += "GET /pipe/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto responses = parse_responses(raw_exchange(server().port(), raw));
  BOOST_REQUIRE(responses.size() == 12);
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(responses[2 * i].body.find("\"v\":1") != std::string::npos);
    BOOST_TEST(responses[2 * i + 1].body == R"({"status":"ok"})");
  }
  BOOST_TEST(responses[10].status == 201);
  BOOST_TEST(responses[11].status == 200); // the write finished before the next read
}

BOOST_AUTO_TEST_CASE(static_files_are_served_with_types_and_no_traversal) {
  auto index = req("GET", "/chat/");
  BOOST_TEST(index.status == 200);
  BOOST_TEST(index.header("content-type").find("text/html") != std::string::npos);
  auto redirect = req("GET", "/chat", "", {{"Accept", "text/html"}});
  BOOST_TEST(redirect.status == 302);
  BOOST_TEST(redirect.header("location") == "/chat/");
  BOOST_TEST(req("GET", "/chat/../CMakeLists.txt").status == 404);
  BOOST_TEST(req("GET", "/chat/%2e%2e/CMakeLists.txt").status == 404);
  BOOST_TEST(req("GET", "/chat/..%2fCMakeLists.txt").status == 404);
  BOOST_TEST(req("GET", "/chat/%2e%2e%2f%2e%2e%2fetc/passwd").status == 404);
  BOOST_TEST(req("GET", "/chat/nope.js").status == 404);
  BOOST_TEST(req("POST", "/chat/", "{}").status == 405);
}

BOOST_AUTO_TEST_CASE(stream_url_without_upgrade_is_400) {
  req("PUT", "/streamy", R"({"streams":[{"uri":"all","stages":[]}]})");
  expect_error(req("GET", "/streamy/_streams/all"), 400, "Change Stream requires WebSocket");
}

/// The indexes GET /<coll>/_indexes lists, by name.
std::map<std::string, object> indexes_of(const std::string& coll) {
  auto r = req("GET", "/" + coll + "/_indexes");
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  std::map<std::string, object> out;
  for (auto& index : json_array(r))
    out[field_string(index.as_object(), "_id")] = index.as_object();
  return out;
}

BOOST_AUTO_TEST_CASE(index_api_lists_creates_and_drops_indexes) {
  post("indexed", R"({"a":1,"b":{"c":2}})");
  auto list = json_array(req("GET", "/indexed/_indexes"));
  BOOST_REQUIRE(!list.empty());
  BOOST_TEST(field_string(list[0].as_object(), "_id") == "_id_");
  BOOST_TEST(to_json(*find_field(list[0].as_object(), "key")) == R"({"_id":1})");

  auto created = req("PUT", "/indexed/_indexes/ab",
                     R"({"keys":{"a":1,"b.c":-1},"ops":{"sparse":true,"name":"ignored"}})");
  BOOST_TEST(created.status == 201, created.body);
  auto indexes = indexes_of("indexed");
  BOOST_REQUIRE(indexes.count("ab") == 1);
  BOOST_TEST(indexes.count("ignored") == 0);
  BOOST_TEST(to_json(*find_field(indexes["ab"], "key")) == R"({"a":1,"b.c":-1})");
  BOOST_TEST(find_field(indexes["ab"], "sparse")->as_bool());
  BOOST_TEST(
      req("PUT", "/indexed/_indexes/ttl", R"({"keys":{"at":1},"ops":{"expireAfterSeconds":60}})")
          .status == 201);
  BOOST_TEST(find_field(indexes_of("indexed")["ttl"], "expireAfterSeconds")->as_int64() == 60);

  expect_error(req("PUT", "/indexed/_indexes/ab", R"({"keys":{"a":1}})"), 409, "ab");
  expect_error(req("PUT", "/indexed/_indexes/k", R"({"key":{"a":1}})"), 400, "keys");
  expect_error(req("PUT", "/indexed/_indexes/k", R"({"keys":[1]})"), 400, "keys");
  expect_error(req("PUT", "/indexed/_indexes/k", R"({"keys":{"a":1},"ops":1})"), 400, "ops");
  expect_error(req("PUT", "/indexed/_indexes/k", ""), 400, "json object");
  expect_error(req("PUT", "/indexed/_indexes/k", R"({"keys":{}})"), 400, "keys");
  expect_error(req("PUT", "/indexed/_indexes/k", R"({"keys":{"a":"text"}})"), 400, "'a'");
  expect_error(req("PUT", "/indexed/_indexes/k", R"({"keys":{"a":1},"ops":{"bogus":1}})"), 400,
               "bogus");
  expect_error(req("PUT", "/indexed/_indexes/_x", R"({"keys":{"a":1}})"), 400, "_");
  BOOST_TEST(indexes_of("indexed").size() == 3); // _id_, ab, ttl: nothing else was created

  BOOST_TEST(req("DELETE", "/indexed/_indexes/ab").status == 204);
  BOOST_TEST(indexes_of("indexed").count("ab") == 0);
  expect_error(req("DELETE", "/indexed/_indexes/ab"), 404, "ab");
  expect_error(req("DELETE", "/indexed/_indexes/_id_"), 400, "_id_");
  expect_error(req("DELETE", "/indexed/_indexes/_other"), 400, "_other");
  // Queries answer the same with and without an index.
  BOOST_TEST(json_array(req("GET", "/indexed?filter={a:1}")).size() == 1);
}

BOOST_AUTO_TEST_CASE(index_keys_take_any_non_zero_number_as_mongodb_does) {
  for (int i = 0; i < 10; ++i)
    post("numkeys", R"({"_id":)" + std::to_string(i) + R"(,"a":)" + std::to_string(i % 5) +
                        R"(,"b":)" + std::to_string(i % 2) + R"(,"c":)" + std::to_string(i) + "}");
  auto ab = req("PUT", "/numkeys/_indexes/ab", R"({"keys":{"a":1,"b":2}})");
  BOOST_TEST(ab.status == 201, ab.body);
  auto c = req("PUT", "/numkeys/_indexes/c", R"({"keys":{"c":-2}})");
  BOOST_TEST(c.status == 201, c.body);
  auto halves = req("PUT", "/numkeys/_indexes/halves", R"({"keys":{"b":0.5,"c":-1.5}})");
  BOOST_TEST(halves.status == 201, halves.body);
  // Listed as given, as MongoDB keeps a key pattern.
  auto indexes = indexes_of("numkeys");
  BOOST_REQUIRE(indexes.size() == 4u); // _id_, ab, c, halves
  BOOST_TEST(to_json(*find_field(indexes["ab"], "key")) == R"({"a":1,"b":2})");
  BOOST_TEST(to_json(*find_field(indexes["c"], "key")) == R"({"c":-2})");
  BOOST_TEST(to_json(*find_field(indexes["halves"], "key")) == R"({"b":0.5,"c":-1.5})");
  // The planner uses them: {a:1,b:2} for a filter on a; {c:-2} is descending, so a sort
  // {c:-1} reads it forward.
  auto on_a = json_object(req("GET", "/numkeys?filter={a:3}&explain=true"));
  BOOST_TEST(field_string(on_a, "index") == "ab");
  BOOST_TEST(find_field(on_a, "returned")->as_int64() == 2);
  auto newest = json_object(req("GET", "/numkeys?sort={c:-1}&pagesize=3&explain=true"));
  BOOST_TEST(field_string(newest, "index") == "c");
  BOOST_TEST(!find_field(newest, "inMemorySort")->as_bool());
  BOOST_TEST(field_string(newest, "bounds").find("backward") == std::string::npos,
             field_string(newest, "bounds"));
  auto oldest = json_object(req("GET", "/numkeys?sort={c:1}&pagesize=3&explain=true"));
  BOOST_TEST(field_string(oldest, "bounds").find("backward") != std::string::npos,
             field_string(oldest, "bounds"));
  auto page = json_array(req("GET", "/numkeys?sort={c:-1}&pagesize=3"));
  BOOST_REQUIRE(page.size() == 3u);
  BOOST_TEST(find_field(page[0].as_object(), "c")->as_int64() == 9);
  BOOST_TEST(find_field(page[2].as_object(), "c")->as_int64() == 7);
  auto mixed = json_object(req("GET", "/numkeys?filter={b:1}&sort={c:-1}&explain=true"));
  BOOST_TEST(field_string(mixed, "index") == "halves");
  BOOST_TEST(!find_field(mixed, "inMemorySort")->as_bool());

  // 0, NaN and what is not a number: 400; MongoDB's special index types: 400 naming them.
  for (const char* key : {R"({"a":0})", R"({"a":-0.0})", R"({"a":{"$numberDouble":"NaN"}})",
                          R"({"a":"x"})", R"({"a":true})", R"({"a":null})"})
    expect_error(req("PUT", "/numkeys/_indexes/bad", std::string(R"({"keys":)") + key + "}"), 400,
                 "index key 'a' must be a number other than 0");
  for (const char* type : {"text", "hashed", "2d", "2dsphere", "geoHaystack"})
    expect_error(
        req("PUT", "/numkeys/_indexes/bad", std::string(R"({"keys":{"a":")") + type + R"("}})"),
        400, std::string("index type \"") + type + "\" is not supported by the embedded store");
  BOOST_TEST(indexes_of("numkeys").size() == 4u); // _id_, ab, c, halves
}

BOOST_AUTO_TEST_CASE(index_api_answers_404_for_unknown_collections_and_405_for_other_methods) {
  expect_error(req("GET", "/noindexes/_indexes"), 404, "noindexes");
  expect_error(req("PUT", "/noindexes/_indexes/a", R"({"keys":{"a":1}})"), 404, "noindexes");
  expect_error(req("DELETE", "/noindexes/_indexes/a"), 404, "noindexes");
  post("indexmethods", "{}");
  expect_error(req("POST", "/indexmethods/_indexes", "{}"), 405, "_indexes");
  expect_error(req("PUT", "/indexmethods/_indexes", "{}"), 405, "_indexes");
  expect_error(req("GET", "/indexmethods/_indexes/_id_"), 405, "index");
  expect_error(req("PATCH", "/indexmethods/_indexes/a", "{}"), 405, "index");
  expect_error(req("GET", "/indexmethods/_indexes/a/b"), 404, "");
}

BOOST_AUTO_TEST_CASE(unique_indexes_refuse_duplicates_when_built_and_when_written) {
  post("uniq", R"({"_id":1,"email":"a@x"})");
  post("uniq", R"({"_id":2,"email":"a@x"})");
  const std::string unique = R"({"keys":{"email":1},"ops":{"unique":true}})";
  expect_error(req("PUT", "/uniq/_indexes/email", unique), 400, "duplicate");
  BOOST_TEST(indexes_of("uniq").count("email") == 0);
  BOOST_TEST(req("DELETE", "/uniq/2?id_type=NUMBER").status == 204);
  BOOST_TEST(req("PUT", "/uniq/_indexes/email", unique).status == 201);
  BOOST_TEST(find_field(indexes_of("uniq")["email"], "unique")->as_bool());
  // Writes that would duplicate a key: 409, and nothing is stored.
  expect_error(req("POST", "/uniq", R"({"_id":3,"email":"a@x"})"), 409, "email");
  expect_error(req("GET", "/uniq/3?id_type=NUMBER"), 404, "");
  post("uniq", R"({"_id":4,"email":"b@x"})");
  expect_error(req("PATCH", "/uniq/4?id_type=NUMBER", R"({"email":"a@x"})"), 409, "email");
  BOOST_TEST(field_string(json_object(req("GET", "/uniq/4?id_type=NUMBER")), "email") == "b@x");
  BOOST_TEST(req("GET", "/uniq/_size").body == R"({"_size":2})");
}

BOOST_AUTO_TEST_CASE(explain_names_the_index_of_the_chat_history_query) {
  // `messages` is created at startup with the index {timestamp:-1}.
  auto indexes = indexes_of("messages");
  BOOST_REQUIRE(indexes.count("timestamp_-1") == 1);
  BOOST_TEST(to_json(*find_field(indexes["timestamp_-1"], "key")) == R"({"timestamp":-1})");
  for (int i = 0; i < 100; ++i)
    post("messages", R"({"from":"ann","message":"m)" + std::to_string(i) +
                         R"(","timestamp":{"$date":)" + std::to_string(1000 + i) + "}}");
  const std::string history = "/messages?sort={timestamp:-1}&pagesize=15";
  auto page = json_array(req("GET", history));
  BOOST_REQUIRE(page.size() == 15);
  BOOST_TEST(find_field(page[0].as_object(), "timestamp")->get<date_time>().millis == 1099);
  BOOST_TEST(find_field(page[14].as_object(), "timestamp")->get<date_time>().millis == 1085);
  auto r = req("GET", history + "&explain=true");
  BOOST_TEST(r.status == 200, r.body);
  auto plan = json_object(r);
  BOOST_TEST(field_string(plan, "index") == "timestamp_-1");
  BOOST_TEST(find_field(plan, "examined")->as_int64() == 15);
  BOOST_TEST(find_field(plan, "returned")->as_int64() == 15);
  BOOST_TEST(!find_field(plan, "inMemorySort")->as_bool());
  BOOST_TEST(find_field(plan, "bounds")->is_string());
  // Without an index that fits: the documents themselves, sorted in memory.
  auto scan = json_object(req("GET", "/messages?sort={message:1}&pagesize=15&explain=true"));
  BOOST_TEST(field_string(scan, "index") == "_id_");
  BOOST_TEST(find_field(scan, "examined")->as_int64() >= 100);
  BOOST_TEST(find_field(scan, "inMemorySort")->as_bool());
  expect_error(req("GET", "/messages?explain=yes"), 400, "explain");
  expect_error(req("GET", "/noexplain?explain=true"), 404, "noexplain");
}

BOOST_AUTO_TEST_CASE(messages_gets_its_timestamp_index_back_at_startup) {
  temp_dir dir;
  std::string data = dir.path() + "/d";
  {
    rheo_process p({}, data);
    BOOST_TEST(http(p.port(), "DELETE", "/messages/_indexes/timestamp_-1").status == 204);
    BOOST_TEST(p.stop() == 0);
  }
  rheo_process p({}, data);
  auto r = http(p.port(), "GET", "/messages/_indexes");
  BOOST_TEST(r.body.find(R"({"_id":"timestamp_-1","key":{"timestamp":-1}})") != std::string::npos,
             r.body);
}

BOOST_AUTO_TEST_CASE(aggregations_in_metadata_are_validated_when_written) {
  expect_error(req("PUT", "/aggmeta", R"({"aggrs":[{"uri":"joined","stages":[{"$lookup":{}}]}]})"),
               400, "aggregation 'joined': stage $lookup");
  expect_error(req("GET", "/aggmeta/_meta"), 404, "aggmeta"); // nothing was created
  BOOST_TEST(req("PUT", "/aggmeta", R"({"aggrs":[{"uri":"top","stages":[{"_$limit":"@limit"}]}]})")
                 .status == 201);
  expect_error(req("PATCH", "/aggmeta", R"({"aggrs":[{"uri":"none","stages":[{"$limit":0}]}]})"),
               400, "aggregation 'none': $limit");
  expect_error(req("PATCH", "/aggmeta", R"({"aggrs":{"uri":"x"}})"), 400, "aggrs");
  auto meta = json_object(req("GET", "/aggmeta/_meta"));
  BOOST_TEST(to_json(*find_field(meta, "aggrs")) ==
             R"([{"uri":"top","stages":[{"_$limit":"@limit"}]}])");
}

namespace {

/// The body of a bulk write's 200: {"inserted","links","deleted","modified","matched"}.
struct bulk_answer {
  std::int64_t inserted = -1, deleted = -1, modified = -1, matched = -1;
  std::vector<std::string> links;
};

bulk_answer bulk(const std::string& method, const std::string& target, const std::string& body) {
  auto r = req(method, target, body);
  BOOST_REQUIRE_MESSAGE(r.status == 200,
                        method + " " + target + " -> " + std::to_string(r.status) + " " + r.body);
  BOOST_TEST(r.header("content-type") == "application/json");
  auto o = json_object(r);
  std::vector<std::string> keys;
  for (auto& [k, v] : o)
    keys.push_back(k);
  BOOST_TEST(
      (keys == std::vector<std::string>{"inserted", "links", "deleted", "modified", "matched"}),
      r.body);
  bulk_answer a;
  a.inserted = find_field(o, "inserted")->as_int64();
  a.deleted = find_field(o, "deleted")->as_int64();
  a.modified = find_field(o, "modified")->as_int64();
  a.matched = find_field(o, "matched")->as_int64();
  for (auto& l : find_field(o, "links")->as_array())
    a.links.push_back(l.as_string());
  return a;
}

std::string size_of(const std::string& coll) {
  return req("GET", "/" + coll + "/_size").body;
}

} // namespace

BOOST_AUTO_TEST_CASE(bulk_post_inserts_every_document_and_links_them_in_order) {
  auto a =
      bulk("POST", "/bulkins", R"([{"_id":"s","n":1},{"n":2},{"_id":7,"n":3},{"a.b":4,"n":4}])");
  BOOST_TEST(a.inserted == 4);
  BOOST_TEST((a.deleted == 0 && a.modified == 0 && a.matched == 0));
  BOOST_REQUIRE(a.links.size() == 4u);
  BOOST_TEST(a.links[0] == "/bulkins/s");
  BOOST_TEST(a.links[1].rfind("/bulkins/", 0) == 0);
  BOOST_TEST(object_id::from_hex(a.links[1].substr(9)).has_value(), a.links[1]);
  BOOST_TEST(a.links[2] == "/bulkins/7?id_type=NUMBER");
  for (std::int64_t i = 0; i < 4; ++i) {
    auto doc = json_object(req("GET", a.links[i]));
    BOOST_TEST(find_field(doc, "n")->as_int64() == i + 1, a.links[i]);
    BOOST_TEST(find_field(doc, "_etag")->is<object_id>());
  }
  BOOST_TEST(find_path(json_object(req("GET", a.links[3])), "a.b")->as_int64() == 4);
  BOOST_TEST(size_of("bulkins") == R"({"_size":4})");
  // An empty array inserts nothing (and creates the collection, as any POST).
  auto none = bulk("POST", "/bulkempty", "[]");
  BOOST_TEST(none.inserted == 0);
  BOOST_TEST(none.links.empty());
  BOOST_TEST(size_of("bulkempty") == R"({"_size":0})");
}

BOOST_AUTO_TEST_CASE(bulk_post_with_a_duplicate_id_is_409_and_inserts_nothing) {
  bulk("POST", "/bulkdup", R"([{"_id":"a"},{"_id":"b"}])");
  // Inside the array.
  expect_error(req("POST", "/bulkdup", R"([{"_id":"c"},{"_id":"d"},{"_id":"c"}])"), 409,
               "duplicate _id");
  // Against a stored document.
  expect_error(req("POST", "/bulkdup", R"([{"_id":"e"},{"_id":"a","n":2}])"), 409, "duplicate _id");
  BOOST_TEST(size_of("bulkdup") == R"({"_size":2})");
  expect_error(req("GET", "/bulkdup/c"), 404, "");
  expect_error(req("GET", "/bulkdup/e"), 404, "");
  BOOST_TEST(find_field(json_object(req("GET", "/bulkdup/a")), "n") == nullptr);
}

BOOST_AUTO_TEST_CASE(bulk_post_with_an_element_that_is_not_an_object_is_400_and_inserts_nothing) {
  bulk("POST", "/bulkbad", R"([{"_id":"a"}])");
  expect_error(req("POST", "/bulkbad", R"([{"_id":"b"},2,{"_id":"c"}])"), 400,
               "element 1 of the array is not an object");
  expect_error(req("POST", "/bulkbad", R"([{"_id":"b"},[{"_id":"c"}]])"), 400, "element 1");
  expect_error(req("POST", "/bulkbad", R"([{"_id":"b"},{"$inc":{"n":1}}])"), 400, "$inc");
  expect_error(req("POST", "/bulkbad", R"([{"_id":"b"},)"), 400, "body");
  BOOST_TEST(size_of("bulkbad") == R"({"_size":1})");
  expect_error(req("GET", "/bulkbad/b"), 404, "");
  // Nor does a bad bulk POST create a missing collection.
  expect_error(req("POST", "/bulkbadnew", R"([{"_id":"b"},null])"), 400, "element 1");
  expect_error(req("GET", "/bulkbadnew"), 404, "bulkbadnew");
}

BOOST_AUTO_TEST_CASE(bulk_post_violating_a_unique_index_is_409_and_inserts_nothing) {
  bulk("POST", "/bulkuniq", R"([{"_id":1,"email":"a@x"}])");
  BOOST_REQUIRE(
      req("PUT", "/bulkuniq/_indexes/email", R"({"keys":{"email":1},"ops":{"unique":true}})")
          .status == 201);
  // Against a stored document, and between two documents of the array.
  expect_error(req("POST", "/bulkuniq", R"([{"_id":2,"email":"b@x"},{"_id":3,"email":"a@x"}])"),
               409, "email");
  expect_error(req("POST", "/bulkuniq", R"([{"_id":2,"email":"c@x"},{"_id":3,"email":"c@x"}])"),
               409, "email");
  BOOST_TEST(size_of("bulkuniq") == R"({"_size":1})");
  expect_error(req("GET", "/bulkuniq/2?id_type=NUMBER"), 404, "");
  BOOST_TEST(json_array(req("GET", "/bulkuniq?filter={email:'c@x'}")).empty());
  BOOST_TEST(
      bulk("POST", "/bulkuniq", R"([{"_id":2,"email":"b@x"},{"_id":3,"email":"c@x"}])").inserted ==
      2);
}

BOOST_AUTO_TEST_CASE(bulk_patch_updates_every_match_and_counts_matched_and_modified) {
  bulk("POST", "/bulkpatch",
       R"([{"_id":1,"g":"a","n":1},{"_id":2,"g":"a","n":5},{"_id":3,"g":"a","n":5},)"
       R"({"_id":4,"g":"b","n":1}])");
  auto etag_of = [](int id) {
    auto doc = json_object(req("GET", "/bulkpatch/" + std::to_string(id) + "?id_type=NUMBER"));
    return find_field(doc, "_etag")->get<object_id>().hex();
  };
  const std::string etag1 = etag_of(1), etag2 = etag_of(2);
  // Two of the three matches already have n:5: matched 3, modified 1; the unchanged
  // documents keep their _etag.
  auto a = bulk("PATCH", "/bulkpatch/*?filter={g:'a'}", R"({"$set":{"n":5}})");
  BOOST_TEST(a.matched == 3);
  BOOST_TEST(a.modified == 1);
  BOOST_TEST((a.inserted == 0 && a.deleted == 0 && a.links.empty()));
  BOOST_TEST(etag_of(1) != etag1);
  BOOST_TEST(etag_of(2) == etag2);
  // Repeated filters are ANDed; plain fields mix with operators as in a PATCH of one document.
  auto b = bulk("PATCH", "/bulkpatch/*?filter={g:'a'}&filter={_id:{$gt:1}}",
                R"({"$inc":{"n":10},"tag":"x"})");
  BOOST_TEST(b.matched == 2);
  BOOST_TEST(b.modified == 2);
  BOOST_TEST(etag_of(2) != etag2);
  auto docs = json_array(req("GET", "/bulkpatch?sort={_id:1}"));
  BOOST_REQUIRE(docs.size() == 4u);
  const std::int64_t n[] = {5, 15, 15, 1};
  const char* tag[] = {"<missing>", "x", "x", "<missing>"};
  for (std::size_t i = 0; i < 4; ++i) {
    BOOST_TEST(find_field(docs[i].as_object(), "n")->as_int64() == n[i], i);
    BOOST_TEST(field_string(docs[i].as_object(), "tag") == tag[i], i);
  }
  // No match: 200 with zeros.
  auto none = bulk("PATCH", "/bulkpatch/*?filter={g:'z'}", R"({"$set":{"n":0}})");
  BOOST_TEST((none.matched == 0 && none.modified == 0));
  // Bad update bodies: 400, nothing changed.
  expect_error(req("PATCH", "/bulkpatch/*?filter={g:'a'}", R"({"$bogus":{"n":1}})"), 400, "$bogus");
  expect_error(req("PATCH", "/bulkpatch/*?filter={g:'a'}", "[]"), 400, "json object");
  expect_error(req("PATCH", "/bulkpatch/*?filter={g:'a'}", R"({"$set":{"_id":9}})"), 400, "_id");
  BOOST_TEST(json_array(req("GET", "/bulkpatch?filter={n:15}")).size() == 2u);
}

BOOST_AUTO_TEST_CASE(bulk_delete_removes_every_match) {
  bulk("POST", "/bulkdel",
       R"([{"_id":1,"g":"a"},{"_id":2,"g":"a"},{"_id":3,"g":"b"},{"_id":4,"g":"a"}])");
  auto a = bulk("DELETE", "/bulkdel/*?filter={g:'a'}&filter={_id:{$lt:4}}", "");
  BOOST_TEST(a.deleted == 2);
  BOOST_TEST((a.inserted == 0 && a.modified == 0 && a.matched == 0 && a.links.empty()));
  auto left = json_array(req("GET", "/bulkdel?sort={_id:1}"));
  BOOST_REQUIRE(left.size() == 2u);
  BOOST_TEST(find_field(left[0].as_object(), "_id")->as_int64() == 3);
  BOOST_TEST(find_field(left[1].as_object(), "_id")->as_int64() == 4);
  BOOST_TEST(bulk("DELETE", "/bulkdel/*?filter={g:'a'}", "").deleted == 1);
  BOOST_TEST(bulk("DELETE", "/bulkdel/*?filter={g:'a'}", "").deleted == 0);
  BOOST_TEST(size_of("bulkdel") == R"({"_size":1})");
}

BOOST_AUTO_TEST_CASE(bulk_patch_and_delete_need_a_filter_that_is_not_empty) {
  bulk("POST", "/bulkfilter", R"([{"_id":1,"n":1},{"_id":2,"n":2}])");
  for (const char* method : {"PATCH", "DELETE"}) {
    const std::string body = std::string(method) == "PATCH" ? R"({"$set":{"n":0}})" : "";
    expect_error(req(method, "/bulkfilter/*", body), 400, "needs a filter");
    expect_error(req(method, "/bulkfilter/*?filter={}", body), 400, "not empty");
    expect_error(req(method, "/bulkfilter/*?filter={n:1}&filter={}", body), 400, "not empty");
    expect_error(req(method, "/bulkfilter/*?filter={n:", body), 400, "filter");
    expect_error(req(method, "/bulkfilter/*?filter={n:{$bad:1}}", body), 400, "$bad");
    expect_error(req(method, "/bulkfilter/*?filter={$where:'1'}", body), 400, "$where");
  }
  auto docs = json_array(req("GET", "/bulkfilter?sort={_id:1}"));
  BOOST_REQUIRE(docs.size() == 2u);
  BOOST_TEST(find_field(docs[0].as_object(), "n")->as_int64() == 1);
  BOOST_TEST(find_field(docs[1].as_object(), "n")->as_int64() == 2);
}

BOOST_AUTO_TEST_CASE(bulk_writes_on_unknown_collections_are_404_and_other_methods_405) {
  expect_error(req("PATCH", "/nobulk/*?filter={n:1}", R"({"$set":{"n":0}})"), 404, "nobulk");
  expect_error(req("DELETE", "/nobulk/*?filter={n:1}"), 404, "nobulk");
  expect_error(req("GET", "/nobulk"), 404, "nobulk"); // not created by the attempt
  bulk("POST", "/bulkmethods", R"([{"n":1}])");
  expect_error(req("GET", "/bulkmethods/*?filter={n:1}"), 405, "use PATCH or DELETE");
  expect_error(req("POST", "/bulkmethods/*?filter={n:1}", R"({"n":2})"), 405,
               "use PATCH or DELETE");
  expect_error(req("PUT", "/bulkmethods/*?filter={n:1}", R"({"n":2})"), 405, "use PATCH or DELETE");
  BOOST_TEST(size_of("bulkmethods") == R"({"_size":1})");
}

namespace {

/// The MongoDB manual's `sales` collection ($group examples), prices as plain numbers.
void insert_sales(const std::string& coll) {
  bulk("POST", "/" + coll,
       R"([{"_id":1,"item":"abc","price":10,"quantity":2},)"
       R"({"_id":2,"item":"jkl","price":20,"quantity":1},)"
       R"({"_id":3,"item":"xyz","price":5,"quantity":10},)"
       R"({"_id":4,"item":"xyz","price":5,"quantity":20},)"
       R"({"_id":5,"item":"abc","price":10,"quantity":10},)"
       R"({"_id":6,"item":"def","price":7.5,"quantity":5},)"
       R"({"_id":7,"item":"def","price":7.5,"quantity":10},)"
       R"({"_id":8,"item":"abc","price":10,"quantity":5}])");
}

} // namespace

BOOST_AUTO_TEST_CASE(aggregations_declared_with_escaped_or_literal_keys_answer_as_mongodb) {
  // Escaped keys, as RESTHeart clients write metadata; the same pipeline with literal keys.
  const std::string escaped =
      R"({"uri":"having","stages":[)"
      R"({"_$group":{"_id":"$item","totalSaleAmount":{"_$sum":{"_$multiply":["$price","$quantity"]}}}},)"
      R"({"_$match":{"totalSaleAmount":{"_$gte":100}}},{"_$sort":{"_id":1}}]})";
  const std::string literal =
      R"({"uri":"having_literal","type":"pipeline","stages":[)"
      R"({"$group":{"_id":"$item","totalSaleAmount":{"$sum":{"$multiply":["$price","$quantity"]}}}},)"
      R"({"$match":{"totalSaleAmount":{"$gte":100}}},{"$sort":{"_id":1}}]})";
  const std::string totals = R"({"uri":"totals","stages":[{"_$group":{"_id":null,)"
                             R"("totalSaleAmount":{"_$sum":{"_$multiply":["$price","$quantity"]}},)"
                             R"("averageQuantity":{"_$avg":"$quantity"},"count":{"_$sum":1}}}]})";
  const std::string dotted = R"({"uri":"dotted","stages":[{"_$match":{"a::b":{"_$exists":true}}},)"
                             R"({"_$project":{"_id":0,"b":"$a.b"}}]})";
  auto put = req("PUT", "/sales",
                 "{\"aggrs\":[" + escaped + "," + literal + "," + totals + "," + dotted + "]}");
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.body);
  insert_sales("sales");
  post("sales", R"({"_id":9,"a":{"b":"nested"}})");
  const std::string expected =
      R"([{"_id":"abc","totalSaleAmount":170},{"_id":"def","totalSaleAmount":112.5},)"
      R"({"_id":"xyz","totalSaleAmount":150}])";
  auto r = req("GET", "/sales/_aggrs/having");
  BOOST_TEST(r.status == 200, r.body);
  BOOST_TEST(r.header("content-type") == "application/json");
  BOOST_TEST(to_json(json(r)) == expected);
  BOOST_TEST(to_json(json(req("GET", "/sales/_aggrs/having_literal"))) == expected);
  // _id 9 has no price: $multiply of missing values is null, which $sum ignores; $avg too.
  BOOST_TEST(to_json(json(req("GET", "/sales/_aggrs/totals"))) ==
             R"([{"_id":null,"totalSaleAmount":452.5,"averageQuantity":7.875,"count":9}])");
  BOOST_TEST(to_json(json(req("GET", "/sales/_aggrs/dotted"))) == R"([{"b":"nested"}])");
  // The metadata keeps the declarations as written.
  auto meta = json_object(req("GET", "/sales/_meta"));
  BOOST_TEST(to_json(find_field(meta, "aggrs")->as_array()[0]) ==
             to_json(parse_json(escaped, "x")));
}

BOOST_AUTO_TEST_CASE(aggregation_variables_bind_avars_and_page_and_pagesize) {
  auto put =
      req("PUT", "/salesvars",
          R"({"aggrs":[{"uri":"by_item","stages":[{"_$match":{"item":{"_$var":"item"}}},)"
          R"({"_$sort":{"_id":1}},{"_$skip":"@skip"},{"_$limit":"@limit"},)"
          R"({"_$project":{"quantity":1}}]},)"
          R"({"uri":"min_qty","stages":[{"$match":{"quantity":{"$gte":{"$var":["min",10]}}}},)"
          R"({"$count":"n"}]},)"
          R"({"uri":"paging","stages":[{"$limit":1},{"$replaceWith":{"page":"@page",)"
          R"("pagesize":"@pagesize","skip":"@skip","limit":"@limit"}}]},)"
          R"({"uri":"picked","stages":[{"$ifvar":["item",{"$match":{"item":{"$var":"item"}}}]},)"
          R"({"$group":{"_id":"$item","n":{"$count":{}}}},{"$sort":{"_id":1}}]}]})");
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.body);
  insert_sales("salesvars");
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/by_item?avars={item:'abc'}"))) ==
             R"([{"_id":1,"quantity":2},{"_id":5,"quantity":10},{"_id":8,"quantity":5}])");
  // page and pagesize bind @skip ((page-1)*pagesize) and @limit (pagesize).
  BOOST_TEST(to_json(json(
                 req("GET", "/salesvars/_aggrs/by_item?avars={'item':'abc'}&page=2&pagesize=2"))) ==
             R"([{"_id":8,"quantity":5}])");
  BOOST_TEST(
      to_json(json(req("GET", "/salesvars/_aggrs/by_item?avars={item:'abc'}&page=1&pagesize=1"))) ==
      R"([{"_id":1,"quantity":2}])");
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/paging?page=3&pagesize=7"))) ==
             R"([{"page":3,"pagesize":7,"skip":14,"limit":7}])");
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/paging"))) ==
             R"([{"page":1,"pagesize":100,"skip":0,"limit":100}])");
  // A default, and the variable bound.
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/min_qty"))) == R"([{"n":4}])");
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/min_qty?avars={min:20}"))) ==
             R"([{"n":1}])");
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/min_qty?avars={min:21}"))) == "[]");
  // $ifvar: the stage only when bound.
  BOOST_TEST(to_json(json(req("GET", "/salesvars/_aggrs/picked?avars={item:'def'}"))) ==
             R"([{"_id":"def","n":2}])");
  BOOST_TEST(
      to_json(json(req("GET", "/salesvars/_aggrs/picked"))) ==
      R"([{"_id":"abc","n":3},{"_id":"def","n":2},{"_id":"jkl","n":1},{"_id":"xyz","n":2}])");
  // Bad variables and paging: 400 naming them.
  const std::pair<const char*, const char*> bad[] = {
      {"by_item", "variable item not bound"},
      {"by_item?avars=[1]", "avars"},
      {"by_item?avars={item:", "avars"},
      {"by_item?avars={$item:'abc'}", "$item"},
      {"paging?page=0", "page"},
      {"paging?pagesize=1001", "pagesize"},
  };
  for (auto& [target, fragment] : bad)
    expect_error(req("GET", std::string("/salesvars/_aggrs/") + target), 400, fragment);
}

BOOST_AUTO_TEST_CASE(undeclared_aggregations_and_unknown_collections_are_404) {
  BOOST_REQUIRE(
      req("PUT", "/aggr404", R"({"aggrs":[{"uri":"all","stages":[{"$project":{"_id":1}}]}]})")
          .status == 201);
  post("aggr404", R"({"_id":1})");
  BOOST_TEST(req("GET", "/aggr404/_aggrs/all").body == R"([{"_id":1}])");
  expect_error(req("GET", "/aggr404/_aggrs/none"), 404, "aggregation 'none' does not exist");
  expect_error(req("GET", "/noaggr/_aggrs/all"), 404, "collection 'noaggr' does not exist");
  BOOST_REQUIRE(req("PUT", "/aggrnone").status == 201); // no aggrs at all
  expect_error(req("GET", "/aggrnone/_aggrs/all"), 404, "aggregation 'all'");
  expect_error(req("GET", "/aggr404/_aggrs"), 404, "");
  expect_error(req("GET", "/aggr404/_aggrs/all/x"), 404, "");
  expect_error(req("POST", "/aggr404/_aggrs/all", "{}"), 405, "use GET");
  expect_error(req("DELETE", "/aggr404/_aggrs/all"), 405, "use GET");
}

BOOST_AUTO_TEST_CASE(bad_aggregation_declarations_are_400_and_change_nothing) {
  BOOST_REQUIRE(
      req("PUT", "/aggrbad", R"({"aggrs":[{"uri":"ok","stages":[{"_$count":"n"}]}]})").status ==
      201);
  const std::pair<const char*, const char*> bad[] = {
      {R"([{"uri":"o","stages":[{"_$out":"x"}]}])", "$out"},
      {R"([{"uri":"m","stages":[{"$merge":{"into":"x"}}]}])", "$merge"},
      {R"([{"uri":"f","stages":[{"$group":{"_id":null,"x":{"$accumulator":{}}}}]}])",
       "$accumulator"},
      {R"([{"uri":"w","stages":[{"$match":{"$where":"1"}}]}])", "$where"},
      {R"([{"uri":"s","stages":[{"$sort":{"a":"up"}}]}])", "aggregation 's'"},
      {R"([{"uri":"d","stages":[]},{"uri":"d","stages":[]}])", "d"},
      {R"([{"stages":[]}])", "uri"},
      {R"([{"uri":"n","stages":{}}])", "stages"},
      {R"([{"uri":"t","type":"mapReduce","stages":[]}])", "type"},
  };
  for (auto& [aggrs, fragment] : bad) {
    auto r = req("PATCH", "/aggrbad", std::string(R"({"aggrs":)") + aggrs + "}");
    BOOST_TEST(r.status == 400, aggrs << " -> " << r.status << " " << r.body);
    BOOST_TEST(r.body.find(fragment) != std::string::npos, aggrs << " -> " << r.body);
  }
  expect_error(req("PUT", "/aggrbadnew", R"({"aggrs":[{"uri":"x","stages":[{"_$out":"y"}]}]})"),
               400, "aggregation 'x'");
  expect_error(req("GET", "/aggrbadnew/_meta"), 404, "aggrbadnew");
  BOOST_TEST(to_json(*find_field(json_object(req("GET", "/aggrbad/_meta")), "aggrs")) ==
             R"([{"uri":"ok","stages":[{"_$count":"n"}]}])");
}

BOOST_AUTO_TEST_CASE(a_group_or_sort_over_more_than_aggregation_max_documents_is_400) {
  rheo_process small({"--aggregation-max-documents", "3"});
  auto at = [&](const std::string& method, const std::string& target,
                const std::string& body = "") { return http(small.port(), method, target, body); };
  BOOST_REQUIRE(
      at("PUT", "/capped",
         R"({"aggrs":[{"uri":"by_item","stages":[{"_$group":{"_id":"$item","n":{"_$sum":1}}}]},)"
         R"({"uri":"sorted","stages":[{"_$sort":{"price":1}}]},)"
         R"({"uri":"top","stages":[{"_$sort":{"price":1}},{"_$limit":2}]}]})")
          .status == 201);
  BOOST_REQUIRE(at("POST", "/capped",
                   R"([{"item":"a","price":3},{"item":"b","price":2},{"item":"c","price":1}])")
                    .status == 200);
  // Three groups, three documents to sort: within the limit.
  BOOST_TEST(at("GET", "/capped/_aggrs/by_item").status == 200);
  BOOST_TEST(at("GET", "/capped/_aggrs/sorted").status == 200);
  BOOST_REQUIRE(at("POST", "/capped", R"([{"item":"d","price":0}])").status == 200);
  auto group = at("GET", "/capped/_aggrs/by_item");
  expect_error(group, 400, "$group exceeded the limit of 3 documents (aggregation_max_documents)");
  expect_error(at("GET", "/capped/_aggrs/sorted"), 400, "aggregation_max_documents");
  // A $sort followed by a $limit keeps only the limit's documents.
  auto top = at("GET", "/capped/_aggrs/top");
  BOOST_TEST(top.status == 200, top.body);
  BOOST_TEST(top.body.find(R"("item":"d")") < top.body.find(R"("item":"c")"), top.body);
}

BOOST_AUTO_TEST_CASE(metrics_are_prometheus_text) {
  auto r = req("GET", "/_metrics");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("content-type").find("text/plain") != std::string::npos);
  // A node of a cluster labels every sample with its name first (section 8).
  const std::string node_label = edge_mode() ? "node=\"edge\"," : "";
  BOOST_TEST(r.body.find("rheo_http_responses_total{" + node_label + "class=\"2xx\"}") !=
                 std::string::npos,
             r.body);
  BOOST_TEST(r.body.find("rheo_sessions_open") != std::string::npos);
  BOOST_TEST(r.body.find("rheo_http_request_duration_seconds_bucket") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(concurrent_clients_all_get_their_writes) {
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i)
        if (http(server().port(), "POST", "/conc",
                 "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}")
                .status == 201)
          ++created;
    });
  for (auto& th : threads)
    th.join();
  BOOST_TEST(created.load() == 200);
  BOOST_TEST(req("GET", "/conc/_size").body == R"({"_size":200})");
}

BOOST_AUTO_TEST_CASE(sigterm_stops_cleanly_and_data_survives_restart) {
  temp_dir dir;
  std::string data = dir.path() + "/d";
  {
    rheo_process p({}, data);
    BOOST_TEST(http(p.port(), "POST", "/keep", R"({"_id":"k","v":7})").status == 201);
    int status = p.stop(SIGTERM);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
  }
  rheo_process p2({}, data);
  auto r = http(p2.port(), "GET", "/keep/k");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body.find("\"v\":7") != std::string::npos);
  int status = p2.stop(SIGINT);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

BOOST_AUTO_TEST_SUITE_END()
