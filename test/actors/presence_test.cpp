// Presence (section 11 of the contract) against a real rheo process: members listed by
// GET .../_presence, presence events coalesced per interval, leaving on close and on a
// missed ping, errors before the upgrade.
#include <boost/test/unit_test.hpp>

#include "net/http.hpp"
#include "storage/document/json.hpp"
#include "test/test_support.hpp"

#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(presence_test)

namespace {

const std::string room_streams =
    R"({"streams":[{"uri":"all","stages":[],"presence":true},{"uri":"plain","stages":[]}]})";

std::string joining(const std::string& info, bool events = false) {
  return "/room/_streams/all?presence=" + percent_encode(info) +
         (events ? "&presenceEvents=true" : "");
}

/// What presence frames told a listener: the members it knows, and how many frames.
struct presence_view {
  std::set<std::string> ids;
  int frames = 0;

  /// Applies the presence frames among `frames` (others are change events).
  void take(const std::vector<ws_client::frame>& frames_in) {
    for (auto& f : frames_in) {
      if (f.opcode != 1) continue;
      value v = parse_json(f.payload, "frame");
      const value* p = find_field(v.as_object(), "presence");
      if (!p) continue;
      ++frames;
      for (auto& j : find_field(p->as_object(), "joined")->as_array())
        ids.insert(find_field(j.as_object(), "id")->as_string());
      for (auto& l : find_field(p->as_object(), "left")->as_array())
        ids.erase(l.as_string());
    }
  }
};

/// The members GET .../_presence lists: id -> info's nick.
std::map<std::string, std::string> listed(std::uint16_t port) {
  auto r = http(port, "GET", "/room/_streams/all/_presence");
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  std::map<std::string, std::string> out;
  const value list = parse_json(r.body, "list");
  for (auto& m : list.as_array()) {
    const object& o = m.as_object();
    BOOST_REQUIRE(find_field(o, "since"));
    BOOST_REQUIRE(find_field(o, "user") && find_field(o, "user")->is_null());
    out[find_field(o, "id")->as_string()] =
        find_field(find_field(o, "info")->as_object(), "nick")->as_string();
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(members_are_listed_and_listeners_hear_of_joins_and_leaves_coalesced) {
  rheo_process p({"--presence-interval-ms", "1000"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/room", room_streams).status, 201);
  ws_client listener(p.port(), joining(R"({"nick":"lis"})", true));
  BOOST_REQUIRE_EQUAL(listener.upgrade_status(), 101);
  presence_view seen;
  // The first frame: the members known so far (none yet).
  auto first = listener.next();
  seen.take({first});
  BOOST_REQUIRE_EQUAL(seen.frames, 1);
  BOOST_TEST(seen.ids.empty());

  // 20 joins within the interval: a few frames, not 20.
  std::vector<std::unique_ptr<ws_client>> members;
  for (int i = 0; i < 20; ++i) {
    members.push_back(std::make_unique<ws_client>(
        p.port(), joining(R"({"nick":"u)" + std::to_string(i) + "\"}")));
    BOOST_REQUIRE_EQUAL(members.back()->upgrade_status(), 101);
  }
  BOOST_TEST(eventually([&] {
    std::vector<ws_client::frame> got;
    listener.poll_frames(got);
    seen.take(got);
    return seen.ids.size() == 21;
  }));
  BOOST_TEST(seen.frames <= 4, seen.frames << " frames for 21 joins");
  auto list = listed(p.port());
  BOOST_TEST(list.size() == 21u);
  BOOST_TEST(std::set<std::string>(seen.ids) == [&] {
    std::set<std::string> ids;
    for (auto& [id, nick] : list)
      ids.insert(id);
    return ids;
  }());

  // 5 leave: their ids come as "left", and the list loses them.
  for (int i = 0; i < 5; ++i)
    members[static_cast<std::size_t>(i)]->close();
  BOOST_TEST(eventually([&] {
    std::vector<ws_client::frame> got;
    listener.poll_frames(got);
    seen.take(got);
    return seen.ids.size() == 16;
  }));
  BOOST_TEST(eventually([&] { return listed(p.port()).size() == 16; }));
  for (auto& [id, nick] : listed(p.port()))
    BOOST_TEST((nick == "lis" || std::stoi(nick.substr(1)) >= 5), nick);
  BOOST_TEST(eventually([&] {
    return http(p.port(), "GET", "/_metrics").body.find("rheo_presence_members 16\n") !=
           std::string::npos;
  }));
}

BOOST_AUTO_TEST_CASE(a_member_that_stops_answering_pings_leaves_within_the_pong_timeout) {
  rheo_process p({"--presence-interval-ms", "50", "--ws-ping-interval-ms", "100",
                  "--ws-pong-timeout-ms", "300"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/room", room_streams).status, 201);
  ws_client silent(p.port(), joining(R"({"nick":"silent"})")); // never reads: no pongs
  BOOST_REQUIRE_EQUAL(silent.upgrade_status(), 101);
  BOOST_TEST(eventually([&] { return listed(p.port()).size() == 1; }));
  BOOST_TEST(eventually([&] { return listed(p.port()).empty(); }));
}

BOOST_AUTO_TEST_CASE(presence_errors_are_answered_before_the_upgrade) {
  rheo_process p;
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/room", room_streams).status, 201);
  struct refused {
    std::string target;
    std::string says;
  };
  const std::vector<refused> cases = {
      {"/room/_streams/plain?presence=" + percent_encode(R"({"nick":"a"})"), "has no presence"},
      {"/room/_streams/plain?presenceEvents=true", "has no presence"},
      {"/room/_streams/all?presence=5", "JSON object"},
      {"/room/_streams/all?presence=" +
           percent_encode("{\"nick\":\"" + std::string(1100, 'x') + "\"}"),
       "1024"},
      {"/room/_streams/all?presenceEvents=maybe", "true or false"},
  };
  for (auto& c : cases) {
    ws_client ws(p.port(), c.target);
    BOOST_TEST(ws.upgrade_status() == 400, c.target);
    BOOST_TEST(ws.error_body().find(c.says) != std::string::npos, ws.error_body());
  }
  auto plain = http(p.port(), "GET", "/room/_streams/plain/_presence");
  BOOST_TEST(plain.status == 400);
  BOOST_TEST(http(p.port(), "GET", "/room/_streams/nope/_presence").status == 404);
  BOOST_TEST(http(p.port(), "GET", "/room/_streams/all/_presence").body == "[]");
  // A definition's flags are booleans.
  auto bad =
      http(p.port(), "PUT", "/other", R"({"streams":[{"uri":"s","stages":[],"presence":1}]})");
  BOOST_TEST(bad.status == 400);
  BOOST_TEST(bad.body.find("presence must be true or false") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sse_listeners_get_presence_events) {
  rheo_process p({"--presence-interval-ms", "50"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/room", room_streams).status, 201);
  sse_client sse(p.port(), joining(R"({"nick":"s"})", true));
  BOOST_REQUIRE_EQUAL(sse.status(), 200);
  auto e = sse.next();
  BOOST_TEST(e.type == "presence");
  BOOST_TEST(e.data == R"({"presence":{"joined":[],"left":[]}})");
  e = sse.next();
  BOOST_TEST(e.type == "presence");
  BOOST_TEST(e.data.find(R"("info":{"nick":"s"})") != std::string::npos, e.data);
}

namespace {

const std::string chat_streams =
    R"({"streams":[{"uri":"all","stages":[],"presence":true,"broadcast":true},)"
    R"({"uri":"quiet","stages":[]}]})";

/// The value of a counter line `name` ("name{labels}") of /_metrics, or -1.
long counter(std::uint16_t port, const std::string& name) {
  const std::string text = http(port, "GET", "/_metrics").body;
  auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stol(text.substr(at + name.size() + 2));
}

/// The next text frame's payload (pings answered), or "" when none came.
std::string next_text(ws_client& ws, int ms = 10000) {
  auto f = ws.next(std::chrono::milliseconds(ms));
  return f.opcode == 1 ? f.payload : std::string();
}

} // namespace

BOOST_AUTO_TEST_CASE(a_broadcast_reaches_every_other_session_of_the_stream_with_its_sender) {
  rheo_process p;
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/chat", chat_streams).status, 201);
  ws_client ann(p.port(), "/chat/_streams/all?presence=" + percent_encode(R"({"nick":"ann"})"));
  ws_client bob(p.port(), "/chat/_streams/all");
  sse_client cid(p.port(), "/chat/_streams/all");
  BOOST_REQUIRE_EQUAL(ann.upgrade_status(), 101);
  BOOST_REQUIRE_EQUAL(bob.upgrade_status(), 101);
  BOOST_REQUIRE_EQUAL(cid.status(), 200);
  ann.send_frame(1, R"({"broadcast":{"typing":true}})");
  const std::string got = next_text(bob);
  BOOST_TEST(got.find(R"({"broadcast":{"typing":true},"from":{"id":")") == 0u, got);
  BOOST_TEST(got.find(R"("user":null,"info":{"nick":"ann"}})") != std::string::npos, got);
  auto e = cid.next();
  BOOST_TEST(e.type == "broadcast");
  BOOST_TEST(e.data == got);
  // Not to its sender: ann's next frame is bob's broadcast, relayed after hers.
  bob.send_frame(1, R"({"broadcast":"hi"})");
  const std::string to_ann = next_text(ann);
  BOOST_TEST(to_ann.find(R"({"broadcast":"hi","from":{)") == 0u, to_ann);
  BOOST_TEST(to_ann.find(R"("info":null)") != std::string::npos, to_ann); // bob did not join
  BOOST_TEST(counter(p.port(), "rheo_broadcasts_total") == 2);
  // Nothing stored: the collection is empty.
  BOOST_TEST(http(p.port(), "GET", "/chat").body == "[]");
}

BOOST_AUTO_TEST_CASE(broadcasts_past_the_limits_are_dropped_and_counted_and_the_connection_stays) {
  rheo_process p({"--broadcast-per-second", "5"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/chat", chat_streams).status, 201);
  ws_client sender(p.port(), "/chat/_streams/all");
  ws_client receiver(p.port(), "/chat/_streams/all");
  BOOST_REQUIRE_EQUAL(sender.upgrade_status(), 101);
  BOOST_REQUIRE_EQUAL(receiver.upgrade_status(), 101);
  sender.send_frame(1, R"({"broadcast":")" + std::string(5000, 'x') + "\"}"); // over 4 KiB
  sender.send_frame(1, "not json");
  sender.send_frame(1, R"({"ping":1})"); // JSON, not a broadcast: ignored
  for (int i = 0; i < 30; ++i)
    sender.send_frame(1, R"({"broadcast":)" + std::to_string(i) + "}");
  // At most the bucket (5) goes through at once; the rest is dropped.
  BOOST_TEST(eventually([&] {
    return counter(p.port(), R"(rheo_broadcasts_dropped_total{reason="rate"})") +
               counter(p.port(), "rheo_broadcasts_total") ==
           30;
  }));
  const long relayed = counter(p.port(), "rheo_broadcasts_total");
  BOOST_TEST(relayed >= 5);
  BOOST_TEST(relayed <= 7);
  BOOST_TEST(counter(p.port(), R"(rheo_broadcasts_dropped_total{reason="size"})") == 1);
  BOOST_TEST(counter(p.port(), R"(rheo_broadcasts_dropped_total{reason="not_json"})") == 1);
  int received = 0;
  for (std::string f = next_text(receiver, 1000); !f.empty(); f = next_text(receiver, 300))
    ++received;
  BOOST_TEST(received == relayed);
  // The connection is still open: once the bucket has refilled, a broadcast goes through.
  BOOST_TEST(eventually([&] {
    sender.send_frame(1, R"({"broadcast":"later"})");
    std::string f = next_text(receiver, 200);
    return f.find(R"("later")") != std::string::npos;
  }));
}

BOOST_AUTO_TEST_CASE(only_clients_that_may_post_to_the_collection_broadcast) {
  // Anyone may read the chat; nobody may write it.
  rheo_process p(
      {"--acl",
       R"acl([{"roles":["$unauthenticated"],"predicate":"method(GET)"},)acl"
       R"acl({"roles":["$unauthenticated"],"predicate":"path('/chat') and method(PUT)"}])acl"});
  BOOST_REQUIRE_EQUAL(http(p.port(), "PUT", "/chat", chat_streams).status, 201);
  ws_client a(p.port(), "/chat/_streams/all");
  ws_client b(p.port(), "/chat/_streams/all");
  BOOST_REQUIRE_EQUAL(a.upgrade_status(), 101);
  BOOST_REQUIRE_EQUAL(b.upgrade_status(), 101);
  a.send_frame(1, R"({"broadcast":"x"})");
  BOOST_TEST(eventually([&] {
    return counter(p.port(), R"(rheo_broadcasts_dropped_total{reason="forbidden"})") == 1;
  }));
  BOOST_TEST(next_text(b, 300).empty());
  // A stream without broadcast ignores client frames, as streams always did.
  ws_client q(p.port(), "/chat/_streams/quiet");
  BOOST_REQUIRE_EQUAL(q.upgrade_status(), 101);
  q.send_frame(1, R"({"broadcast":"x"})");
  q.send_frame(1, "not json");
  BOOST_TEST(http(p.port(), "GET", "/_ping").status == 200);
  BOOST_TEST(counter(p.port(), R"(rheo_broadcasts_dropped_total{reason="not_json"})") == 0);
}

// -- in a cluster ---------------------------------------------------------------------

namespace {

/// The nicks GET /talk/_streams/all/_presence lists on the node at `port` ("" on an error),
/// each once; a repeated id shows as "dup".
std::multiset<std::string> nicks_at(std::uint16_t port) {
  auto r = http(port, "GET", "/talk/_streams/all/_presence");
  if (r.status != 200) return {"status " + std::to_string(r.status)};
  std::multiset<std::string> out;
  std::set<std::string> ids;
  const value list = parse_json(r.body, "list");
  for (auto& m : list.as_array()) {
    const object& o = m.as_object();
    if (!ids.insert(find_field(o, "id")->as_string()).second) out.insert("dup");
    out.insert(find_field(find_field(o, "info")->as_object(), "nick")->as_string());
  }
  return out;
}

std::string chat_joining(const std::string& nick, bool events = false) {
  return "/talk/_streams/all?presence=" + percent_encode(R"({"nick":")" + nick + "\"}") +
         (events ? "&presenceEvents=true" : "");
}

/// A listener's view of the members, by nick, from its presence frames.
struct nick_view {
  std::map<std::string, std::string> by_id; // id -> nick

  void take(ws_client& ws) {
    std::vector<ws_client::frame> got;
    ws.poll_frames(got);
    for (auto& f : got) {
      if (f.opcode != 1) continue;
      value v = parse_json(f.payload, "frame");
      const value* p = find_field(v.as_object(), "presence");
      if (!p) continue;
      for (auto& j : find_field(p->as_object(), "joined")->as_array())
        by_id[find_field(j.as_object(), "id")->as_string()] =
            find_field(find_field(j.as_object(), "info")->as_object(), "nick")->as_string();
      for (auto& l : find_field(p->as_object(), "left")->as_array())
        by_id.erase(l.as_string());
    }
  }
  std::multiset<std::string> nicks() const {
    std::multiset<std::string> out;
    for (auto& [id, nick] : by_id)
      out.insert(nick);
    return out;
  }
};

using nicks = std::multiset<std::string>;

} // namespace

BOOST_AUTO_TEST_CASE(members_and_broadcasts_cross_the_cluster_and_a_killed_edge_takes_its_members) {
  test_cluster c({"edge-a", "edge-b"}, {"--presence-interval-ms", "50"});
  BOOST_REQUIRE_EQUAL(http(c.core->port(), "PUT", "/talk", chat_streams).status, 201);
  ws_client bea(c.edge_port(1), chat_joining("bea", true));
  ws_client ann(c.edge_port(0), chat_joining("ann"));
  ws_client cor(c.core->port(), chat_joining("cor"));
  ws_client rx_b(c.edge_port(1), "/talk/_streams/all");
  ws_client rx_core(c.core->port(), "/talk/_streams/all");
  for (auto* w : {&bea, &ann, &cor, &rx_b, &rx_core})
    BOOST_REQUIRE_EQUAL(w->upgrade_status(), 101);
  // Every node lists every member once; the listener on edge-b hears of all three.
  const nicks all{"ann", "bea", "cor"};
  for (auto port : {c.core->port(), c.edge_port(0), c.edge_port(1)})
    BOOST_TEST(eventually([&] { return nicks_at(port) == all; }), "on port " << port);
  nick_view seen;
  BOOST_TEST(eventually([&] {
    seen.take(bea);
    return seen.nicks() == all;
  }));
  // ann's broadcast (on edge-a) reaches edge-b's and the core's sessions, once each.
  ann.send_frame(1, R"({"broadcast":"hello"})");
  for (auto* rx : {&rx_b, &rx_core}) {
    const std::string got = next_text(*rx);
    BOOST_TEST(got.find(R"({"broadcast":"hello","from":{)") == 0u, got);
    BOOST_TEST(got.find(R"("info":{"nick":"ann"})") != std::string::npos, got);
    BOOST_TEST(next_text(*rx, 300).empty());
  }
  // And the core's reaches the edges'.
  cor.send_frame(1, R"({"broadcast":"from the core"})");
  BOOST_TEST(next_text(rx_b).find(R"("from the core")") != std::string::npos);
  BOOST_TEST(next_text(ann).find(R"("from the core")") != std::string::npos);
  // edge-a dies: ann leaves every list, and the listener hears of it.
  c.edges[0]->stop(SIGKILL);
  const nicks rest{"bea", "cor"};
  for (auto port : {c.core->port(), c.edge_port(1)})
    BOOST_TEST(eventually([&] { return nicks_at(port) == rest; }), "on port " << port);
  BOOST_TEST(eventually([&] {
    seen.take(bea);
    return seen.nicks() == rest;
  }));
  // An edge of the same name comes back: its old members do not.
  c.edges[0] = start_cluster_edge(c.cluster_port, "edge-a", cluster_secret(),
                                  {"--presence-interval-ms", "50"});
  ws_client dan(c.edge_port(0), chat_joining("dan"));
  BOOST_REQUIRE_EQUAL(dan.upgrade_status(), 101);
  const nicks later{"bea", "cor", "dan"};
  for (auto port : {c.core->port(), c.edge_port(0), c.edge_port(1)})
    BOOST_TEST(eventually([&] { return nicks_at(port) == later; }), "on port " << port);
}

BOOST_AUTO_TEST_CASE(after_the_core_comes_back_every_node_lists_who_is_there_without_ghosts) {
  test_cluster c({"edge-a", "edge-b"}, {"--presence-interval-ms", "50"});
  BOOST_REQUIRE_EQUAL(http(c.core->port(), "PUT", "/talk", chat_streams).status, 201);
  ws_client ann(c.edge_port(0), chat_joining("ann", true));
  auto bea = std::make_unique<ws_client>(c.edge_port(1), chat_joining("bea"));
  ws_client bob(c.edge_port(1), chat_joining("bob"));
  for (auto* w : {&ann, bea.get(), &bob})
    BOOST_REQUIRE_EQUAL(w->upgrade_status(), 101);
  nick_view seen;
  BOOST_TEST(eventually([&] {
    seen.take(ann);
    return seen.nicks() == nicks{"ann", "bea", "bob"};
  }));
  // The core dies: each edge keeps its own members, and drops the others'.
  c.core->stop(SIGKILL);
  BOOST_TEST(eventually([&] {
    seen.take(ann);
    return seen.nicks() == nicks{"ann"};
  }));
  // bea leaves while the core is down; the core comes back: no ghost, no duplicate.
  bea->close();
  bea.reset();
  c.restart_core();
  const nicks now{"ann", "bob"};
  for (auto port : {c.core->port(), c.edge_port(0), c.edge_port(1)})
    BOOST_TEST(eventually([&] { return nicks_at(port) == now; }, std::chrono::seconds(20)),
               "on port " << port);
  BOOST_TEST(eventually([&] {
    seen.take(ann);
    return seen.nicks() == now;
  }));
}

BOOST_AUTO_TEST_SUITE_END()
