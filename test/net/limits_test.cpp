// The limits on what clients hold and send (net/client_limits.hpp, the avars, streams and
// stages limits of the REST API), against real rheo processes with small limits: each
// refusal's status, JSON body, headers and metric, and that below the limit all works.
#include <boost/test/unit_test.hpp>

#include "test/test_support.hpp"

#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(limits_test)

namespace {

/// rheo_limit_refusals_total{limit="<name>"} of the server on `port` (-1 when absent, or
/// when /_metrics did not answer 200).
long refusals(std::uint16_t port, const std::string& name) {
  auto r = http(port, "GET", "/_metrics");
  if (r.status != 200) return -1;
  const std::string key = "rheo_limit_refusals_total{limit=\"" + name + "\"} ";
  auto at = r.body.find(key);
  if (at == std::string::npos) return -1;
  return std::stol(r.body.substr(at + key.size()));
}

/// An error body as rheo sends them, with `status`.
bool json_error(const std::string& body, int status) {
  return body.find("\"http status code\":" + std::to_string(status)) != std::string::npos &&
         body.find("\"message\":") != std::string::npos;
}

/// Open connections that have sent nothing; closed when destroyed.
struct idle_connections {
  std::vector<int> fds;
  idle_connections(std::uint16_t port, int n) {
    for (int i = 0; i < n; ++i)
      fds.push_back(connect_to(port));
  }
  void close_all() {
    for (int fd : fds)
      ::close(fd);
    fds.clear();
  }
  ~idle_connections() { close_all(); }
};

/// The server is answering from this address again (the connections closed have left).
bool answers(std::uint16_t port) {
  return eventually([&] {
    try {
      return http(port, "GET", "/_ping").status == 200;
    } catch (const std::exception&) {
      return false;
    }
  });
}

} // namespace

BOOST_AUTO_TEST_CASE(connections_past_the_total_limit_get_503_and_close) {
  rheo_process p({"--max-connections", "3"});
  {
    idle_connections held(p.port(), 2);
    BOOST_TEST(http(p.port(), "GET", "/_ping").status == 200); // the third: within the limit
    idle_connections third(p.port(), 1);
    auto r = http(p.port(), "GET", "/_ping");
    BOOST_TEST(r.status == 503);
    BOOST_TEST(json_error(r.body, 503));
    BOOST_TEST(r.body.find("max_connections") != std::string::npos);
    BOOST_TEST(r.header("connection") == "close");
    // A WebSocket handshake is answered before any upgrade.
    ws_client ws(p.port(), "/messages/_streams/all");
    BOOST_TEST(ws.upgrade_status() == 503);
    BOOST_TEST(json_error(ws.error_body(), 503));
  }
  BOOST_TEST(answers(p.port()));
  // At least: the server may notice the first 200's connection closing only after `third`.
  BOOST_TEST(refusals(p.port(), "connections") >= 2);
}

BOOST_AUTO_TEST_CASE(connections_past_the_per_client_limit_get_429_and_close) {
  rheo_process p({"--max-connections-per-client", "3"});
  {
    idle_connections held(p.port(), 2);
    BOOST_TEST(http(p.port(), "GET", "/_ping").status == 200);
    idle_connections third(p.port(), 1);
    auto r = http(p.port(), "GET", "/_ping");
    BOOST_TEST(r.status == 429);
    BOOST_TEST(json_error(r.body, 429));
    BOOST_TEST(r.body.find("max_connections_per_client") != std::string::npos);
    BOOST_TEST(r.header("connection") == "close");
  }
  BOOST_TEST(answers(p.port()));
  BOOST_TEST(refusals(p.port(), "connections_per_client") >= 1);
  BOOST_TEST(refusals(p.port(), "connections") == 0);
}

BOOST_AUTO_TEST_CASE(a_websocket_holds_its_connection_place_until_it_closes) {
  rheo_process p({"--max-connections-per-client", "2"});
  auto ws = std::make_unique<ws_client>(p.port(), "/messages/_streams/all");
  BOOST_REQUIRE(ws->upgrade_status() == 101);
  idle_connections held(p.port(), 1);
  BOOST_TEST(http(p.port(), "GET", "/_ping").status == 429);
  ws.reset();
  held.close_all();
  BOOST_TEST(answers(p.port()));
}

BOOST_AUTO_TEST_CASE(sessions_past_the_per_client_limit_get_429_at_the_handshake) {
  rheo_process p({"--max-sessions-per-client", "2"});
  auto a = std::make_unique<ws_client>(p.port(), "/messages/_streams/all");
  sse_client b(p.port(), "/messages/_streams/all");
  BOOST_REQUIRE(a->upgrade_status() == 101);
  BOOST_REQUIRE(b.status() == 200);
  ws_client c(p.port(), "/messages/_streams/all");
  BOOST_TEST(c.upgrade_status() == 429);
  BOOST_TEST(json_error(c.error_body(), 429));
  BOOST_TEST(c.error_body().find("max_sessions_per_client") != std::string::npos);
  sse_client d(p.port(), "/messages/_streams/all");
  BOOST_TEST(d.status() == 429);
  BOOST_TEST(json_error(d.error_body(), 429));
  // Plain requests are not sessions.
  BOOST_TEST(http(p.port(), "GET", "/messages").status == 200);
  BOOST_TEST(refusals(p.port(), "sessions_per_client") == 2);
  // A session that ends frees its place.
  a->close();
  a.reset();
  BOOST_TEST(eventually([&] {
    ws_client e(p.port(), "/messages/_streams/all");
    return e.upgrade_status() == 101;
  }));
}

BOOST_AUTO_TEST_CASE(requests_past_the_per_client_rate_get_429_with_retry_after) {
  rheo_process p({"--max-requests-per-second-per-client", "5"});
  int ok = 0, limited = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = http(p.port(), "GET", "/messages");
    if (r.status == 200) {
      ++ok;
    } else {
      BOOST_TEST(r.status == 429);
      BOOST_TEST(json_error(r.body, 429));
      BOOST_TEST(r.body.find("max_requests_per_second_per_client") != std::string::npos);
      auto retry = r.header("retry-after");
      BOOST_TEST((!retry.empty() && std::stoi(retry) >= 1 && std::stoi(retry) <= 1));
      ++limited;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The burst (5) goes through, then about 5 per second.
  BOOST_TEST(ok >= 5);
  BOOST_TEST(ok <= 5 + static_cast<int>(seconds * 5) + 1);
  BOOST_TEST(limited == 20 - ok);
  BOOST_TEST(limited > 0);
  // Handshakes are not counted as REST requests: they have the session limit.
  ws_client ws(p.port(), "/messages/_streams/all");
  BOOST_TEST(ws.upgrade_status() == 101);
  long counted = -1;
  BOOST_TEST(
      eventually([&] { return (counted = refusals(p.port(), "requests_per_second")) >= 0; }));
  BOOST_TEST(counted >= limited);
}

BOOST_AUTO_TEST_CASE(avars_past_the_size_limit_get_400) {
  rheo_process p({"--max-avars-bytes", "32"});
  auto put =
      http(p.port(), "PUT", "/byuser",
           R"({"streams":[{"uri":"mine","stages":[{"_$match":{"fullDocument::n":{"_$var":"n"}}}]}],
                      "aggrs":[{"uri":"count","stages":[{"_$match":{"n":{"_$var":"n"}}}]}]})");
  BOOST_REQUIRE(put.status == 201);
  ws_client small(p.port(), "/byuser/_streams/mine?avars={'n':'ann'}");
  BOOST_TEST(small.upgrade_status() == 101);
  const std::string big = "{'n':'" + std::string(40, 'x') + "'}";
  ws_client ws(p.port(), "/byuser/_streams/mine?avars=" + big);
  BOOST_TEST(ws.upgrade_status() == 400);
  BOOST_TEST(json_error(ws.error_body(), 400));
  BOOST_TEST(ws.error_body().find("max_avars_bytes") != std::string::npos);
  BOOST_TEST(http(p.port(), "GET", "/byuser/_aggrs/count?avars={'n':'ann'}").status == 200);
  auto aggr = http(p.port(), "GET", "/byuser/_aggrs/count?avars=" + big);
  BOOST_TEST(aggr.status == 400);
  BOOST_TEST(json_error(aggr.body, 400));
  BOOST_TEST(refusals(p.port(), "avars_bytes") == 2);
}

BOOST_AUTO_TEST_CASE(streams_and_stages_past_their_limits_get_400) {
  rheo_process p({"--max-streams-per-collection", "2", "--max-stages-per-stream", "2"});
  const std::string stage = R"({"_$match":{"operationType":"insert"}})";
  auto stream = [&](const std::string& uri, int stages) {
    std::string s = R"({"uri":")" + uri + R"(","stages":[)";
    for (int i = 0; i < stages; ++i)
      s += (i ? "," : "") + stage;
    return s + "]}";
  };
  BOOST_TEST(
      http(p.port(), "PUT", "/c", R"({"streams":[)" + stream("a", 2) + "," + stream("b", 1) + "]}")
          .status == 201);
  auto three =
      http(p.port(), "PUT", "/c",
           R"({"streams":[)" + stream("a", 1) + "," + stream("b", 1) + "," + stream("c", 1) + "]}");
  BOOST_TEST(three.status == 400);
  BOOST_TEST(json_error(three.body, 400));
  BOOST_TEST(three.body.find("max_streams_per_collection") != std::string::npos);
  auto long_stream = http(p.port(), "PATCH", "/c", R"({"streams":[)" + stream("a", 3) + "]}");
  BOOST_TEST(long_stream.status == 400);
  BOOST_TEST(json_error(long_stream.body, 400));
  BOOST_TEST(long_stream.body.find("max_stages_per_stream") != std::string::npos);
  auto new_coll = http(p.port(), "PUT", "/d", R"({"streams":[)" + stream("a", 3) + "]}");
  BOOST_TEST(new_coll.status == 400);
  BOOST_TEST(http(p.port(), "PATCH", "/c", R"({"streams":[)" + stream("z", 2) + "]}").status ==
             200);
  BOOST_TEST(refusals(p.port(), "streams_per_collection") == 1);
  BOOST_TEST(refusals(p.port(), "stages_per_stream") == 2);
}

BOOST_AUTO_TEST_SUITE_END()
