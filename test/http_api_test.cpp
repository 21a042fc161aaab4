// HTTP tests against a real rheo process: every row of section 3 of the API contract,
// JSON rules, errors, CORS, static files and bad input; from section 9, the index API,
// explain, the chat's index on `messages` and aggregations validated when declared.
#define BOOST_TEST_MODULE http_api
#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "test/test_support.hpp"

#include <csignal>
#include <map>
#include <memory>
#include <sys/wait.h>
#include <thread>

using namespace rheo;
using namespace rheo::test;

namespace {

rheo_process& server() {
  static std::unique_ptr<rheo_process> p = std::make_unique<rheo_process>();
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
  BOOST_TEST(r.header("access-control-allow-credentials") == "true");
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

BOOST_AUTO_TEST_CASE(metrics_are_prometheus_text) {
  auto r = req("GET", "/_metrics");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("content-type").find("text/plain") != std::string::npos);
  BOOST_TEST(r.body.find("rheo_http_responses_total{class=\"2xx\"}") != std::string::npos);
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
