// Fuzzes the HTTP request path up to the handlers: the bytes a client sends are read with
// Beast's parser under the limits http_session sets (body_limit, header_limit), in reads of
// arbitrary sizes and pipelined, turned into an http_request by to_http_request() (what the
// session does) and answered by the real rest_api over an embedded SQLite store (a
// temporary directory, created once per process, seeded with a collection, documents, a
// stream and an aggregation; anonymous clients may do everything, under /notes with an ACL
// readFilter, mergeRequest and projectResponse). WebSocket and SSE requests go through
// resolve_stream(), whose compiled pipeline runs on a sample event. Input: byte 0 picks the read
// size (1..256), the rest is the connection's bytes. A response must have a valid status and never
// be the 500 "internal error" that rest_api makes of an exception other than api_error.
#include "fuzz_support.hpp"
#include "net/http_session.hpp"
#include "net/metrics.hpp"
#include "net/rest/rest_api.hpp"
#include "net/security/security.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/sqlite/sqlite_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#ifndef RHEO_SOURCE_DIR
#define RHEO_SOURCE_DIR "."
#endif

using namespace rheo;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

/// The server's parts, once per process; the data directory is removed at exit.
struct server_under_test {
  std::filesystem::path dir;
  server_config config;
  std::unique_ptr<store> db;
  std::unique_ptr<security> sec;
  metrics stats;
  std::unique_ptr<rest_api> api;

  server_under_test() {
    std::string templ = (std::filesystem::temp_directory_path() / "rheo-fuzz-XXXXXX").string();
    if (!mkdtemp(templ.data())) fuzz::fail("mkdtemp failed");
    dir = templ;
    config.data_dir = dir.string();
    config.static_dir = RHEO_SOURCE_DIR "/web";
    config.durability = "normal";
    config.max_body_bytes = 64 * 1024;
    // Anonymous clients may do everything; under /notes with the ACL's filters applied.
    config.acl_json = R"acl([
      {"roles": ["$unauthenticated"], "predicate": "path-prefix('/notes')",
       "readFilter": {"owner": {"$ne": "eve"}}, "mergeRequest": {"owner": "anon", "at": "@now"},
       "projectResponse": {"secret": 0}},
      {"roles": ["$unauthenticated"], "predicate": "path-prefix('/')"}])acl";
    sqlite_store_options opts;
    opts.data_dir = config.data_dir;
    opts.durability = durability::normal;
    opts.changelog_retention = 1000;
    db = open_sqlite_store(opts);
    sec = std::make_unique<security>(config);
    api = std::make_unique<rest_api>(config, *db, *sec, stats);
    seed(
        "PUT", "/messages",
        R"({"streams":[{"uri":"all","stages":[{"_$match":{"_$or":[{"operationType":"insert"}]}}]},)"
        R"({"uri":"mine","stages":[{"_$match":{"fullDocument::from":{"_$var":"from"}}},)"
        R"({"_$project":{"fullDocument::text":1}}]}],)"
        R"("aggrs":[{"uri":"by_from","stages":[{"_$match":{}},{"_$group":{"_id":"$from",)"
        R"("n":{"_$sum":1}}},{"_$sort":{"n":-1}},{"_$limit":"@pagesize"}]}]})");
    seed("PUT", "/messages/_indexes/by_ts", R"({"keys":{"timestamp":-1}})");
    seed("POST", "/messages",
         R"([{"_id":1,"from":"ada","text":"hi","timestamp":{"$date":1600000000000}},)"
         R"({"_id":"b","from":"bob","text":"yo","tags":["x"],"timestamp":2},)"
         R"({"from":"ada","n":{"$numberLong":"5"},"a":{"b":[1,{"c":2}]}}])");
    seed("POST", "/notes", R"({"_id":"n1","text":"note","secret":"s"})");
  }
  ~server_under_test() {
    api.reset();
    if (db) db->close();
    db.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  void seed(const char* method, const char* target, const char* body) {
    http_request r;
    r.method_text = method;
    r.method = parse_http_method(method);
    r.target = target;
    r.body = body;
    r.remote_address = "127.0.0.1";
    auto res = api->handle(r);
    if (res.status >= 300) fuzz::fail("seeding failed:", res.body);
  }
};

server_under_test& the_server() {
  static server_under_test s;
  return s;
}

void check_response(const http_response& res) {
  if (res.status < 100 || res.status > 599) fuzz::fail("bad status", std::to_string(res.status));
  if (res.status == 500 && res.body.find("internal error") != std::string::npos)
    fuzz::fail("an exception escaped the handlers:", res.body);
}

const object& sample_event() {
  static const object event = [] {
    change_event e;
    e.seq = 9;
    e.token = token_from_seq(9);
    e.db = "rheo";
    e.coll = "messages";
    e.operation = operation_type::insert;
    e.document_key = value(std::int32_t(9));
    e.full_document = parse_json(R"({"_id":9,"from":"ada","text":"hello"})", "event").as_object();
    return e.to_object();
  }();
  return event;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto& srv = the_server();
  boost::asio::io_context ioc;
  beast::test::stream conn(ioc, fuzz::as_text(data + 1, size - 1));
  conn.read_size(std::size_t(data[0]) + 1);
  conn.close_remote(); // the client sent everything: eof after it
  beast::flat_buffer buffer;
  for (int i = 0; i < 8; ++i) { // pipelined requests, one at a time as the session reads them
    http::request_parser<http::string_body> parser;
    parser.body_limit(srv.config.max_body_bytes);
    parser.header_limit(64 * 1024);
    beast::error_code ec;
    http::read(conn, buffer, parser, ec);
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof) break;
    if (ec) {
      // The session answers 413/400 and closes: nothing else to check.
      (void)error_response(400, "malformed HTTP request: " + ec.message());
      break;
    }
    auto req = parser.release();
    http_request r = to_http_request(req, "127.0.0.1");
    if (r.websocket_upgrade || r.event_stream) {
      auto resolved = srv.api->resolve_stream(r);
      if (auto* res = std::get_if<http_response>(&resolved)) {
        check_response(*res);
        break; // the session closes after a refused upgrade
      }
      if (auto* target = std::get_if<stream_target>(&resolved)) {
        try {
          object scratch;
          (void)target->stages.run(sample_event(), scratch);
        } catch (const pipeline_error&) {
          // the subscription skips the event
        }
        break; // the connection is the stream's now
      }
    }
    r.body = std::move(req.body());
    check_response(srv.api->handle(r));
    if (!req.keep_alive()) break;
  }
  return 0;
}
