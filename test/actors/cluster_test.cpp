// Cluster mode (section 8 of the API contract) with real processes on loopback: one core and
// edges on the embedded store. Fan-out through edges (each event crosses to an edge once,
// however many clients it has), REST through an edge equal to the core, kill -9 of the core
// and of an edge, the cluster secret, garbage on the cluster port, and 503 while the core is
// down, and TLS links refusing strangers before the cluster protocol.
#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "test/test_support.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <memory>
#include <mutex>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(cluster_test)

namespace {

const std::string& secret = cluster_secret();
using cluster = test_cluster;

std::string host_port(std::uint16_t port) {
  return loopback(port);
}

std::unique_ptr<rheo_process> start_edge(std::uint16_t cluster_port, const std::string& name,
                                         const std::string& with_secret = secret) {
  return start_cluster_edge(cluster_port, name, with_secret);
}

std::string seq_doc(std::int64_t seq) {
  return "{\"seq\":" + std::to_string(seq) + "}";
}

void post_seq(std::uint16_t port, std::int64_t seq) {
  auto r = http(port, "POST", "/messages", seq_doc(seq));
  BOOST_REQUIRE_MESSAGE(r.status == 201, "POST seq " << seq << ": " << r.status << " " << r.body);
}

/// A WebSocket client of /messages/_streams/all that records fullDocument.seq of each event.
class listener {
public:
  explicit listener(std::uint16_t port, const std::string& query = "")
      : ws_(port, "/messages/_streams/all" + query) {
    BOOST_REQUIRE_MESSAGE(ws_.upgrade_status() == 101, ws_.error_body());
  }

  /// Reads events until one has seq >= `last`, the connection closes or `deadline` passes.
  bool wait_for(std::int64_t last, std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (seqs_.empty() || seqs_.back() < last) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || closed_) return false;
      auto f = ws_.next(left);
      if (f.opcode == -1) return false;
      if (f.opcode == -2 || f.opcode == 8) {
        closed_ = true;
        close_code_ = f.opcode == 8 ? f.close_code() : 0;
        return false;
      }
      value v = parse_json(f.payload, "event");
      const value* seq = v.is_object() ? find_path(v.as_object(), "fullDocument.seq") : nullptr;
      const value* token = v.is_object() ? find_path(v.as_object(), "_id._data") : nullptr;
      BOOST_REQUIRE_MESSAGE(seq && seq->is_number(), "event without seq: " + f.payload);
      BOOST_CHECK_MESSAGE(token && token->is_string() && token->as_string().size() == 16,
                          "event without a resume token: " + f.payload);
      seqs_.push_back(seq->as_int64());
      tokens_.push_back(token && token->is_string() ? token->as_string() : "");
    }
    return true;
  }

  const std::vector<std::int64_t>& seqs() const { return seqs_; }
  const std::vector<std::string>& tokens() const { return tokens_; }
  bool closed() const { return closed_; }
  std::uint16_t close_code() const { return close_code_; }

private:
  ws_client ws_;
  std::vector<std::int64_t> seqs_;
  std::vector<std::string> tokens_;
  bool closed_ = false;
  std::uint16_t close_code_ = 0;
};

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to_inclusive) {
  std::vector<std::int64_t> v;
  for (auto i = from; i <= to_inclusive; ++i)
    v.push_back(i);
  return v;
}

object cluster_status(std::uint16_t port) {
  auto r = http(port, "GET", "/_cluster");
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  value v = parse_json(r.body, "/_cluster");
  BOOST_REQUIRE_MESSAGE(v.is_object(), r.body);
  return v.as_object();
}

/// The entry of `/_cluster`'s nodes whose `key` is `want` (an empty object when absent).
object node_entry(const object& status, const std::string& want, const std::string& key = "name") {
  const value* nodes = find_field(status, "nodes");
  if (!nodes || !nodes->is_array()) return {};
  for (auto& n : nodes->as_array()) {
    if (!n.is_object()) continue;
    const value* v = find_field(n.as_object(), key);
    if (v && v->is_string() && v->as_string() == want) return n.as_object();
  }
  return {};
}

std::string field_string(const object& o, const std::string& name) {
  const value* v = find_field(o, name);
  return v && v->is_string() ? v->as_string() : "";
}

std::int64_t field_int(const object& o, const std::string& name) {
  const value* v = find_field(o, name);
  return v && v->is_number() ? v->as_int64() : -1;
}

/// The value of `/_metrics`' sample `metric{...peer="peer"...}`, or -1 when absent.
std::int64_t metric(std::uint16_t port, const std::string& name, const std::string& peer) {
  auto r = http(port, "GET", "/_metrics");
  BOOST_REQUIRE_EQUAL(r.status, 200);
  std::size_t pos = 0;
  while (pos < r.body.size()) {
    std::size_t eol = r.body.find('\n', pos);
    if (eol == std::string::npos) eol = r.body.size();
    std::string line = r.body.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind(name + "{", 0) != 0) continue;
    if (line.find("peer=\"" + peer + "\"") == std::string::npos) continue;
    return std::stoll(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

bool strictly_increasing(const std::vector<std::int64_t>& v) {
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] <= v[i - 1]) return false;
  return true;
}

} // namespace

BOOST_AUTO_TEST_CASE(every_client_on_every_node_gets_each_write_once_in_order) {
  cluster c({"edge-a", "edge-b"});
  listener on_core(c.core->port());
  listener on_a(c.edge_port(0));
  std::vector<std::unique_ptr<listener>> on_b;
  for (int i = 0; i < 20; ++i)
    on_b.push_back(std::make_unique<listener>(c.edge_port(1)));
  const std::int64_t bytes_a0 = metric(c.core->port(), "rheo_cluster_bytes_sent_total", "edge-a");
  const std::int64_t bytes_b0 = metric(c.core->port(), "rheo_cluster_bytes_sent_total", "edge-b");
  BOOST_REQUIRE_GE(bytes_a0, 0);
  BOOST_REQUIRE_GE(bytes_b0, 0);

  constexpr int n = 50;
  for (int i = 1; i <= n; ++i)
    post_seq(c.edge_port(0), i);
  // A last write through the other edge: any repeat of the first n would come before it.
  post_seq(c.edge_port(1), n + 1);
  const auto expected = range(1, n + 1);
  std::vector<listener*> all = {&on_core, &on_a};
  for (auto& l : on_b)
    all.push_back(l.get());
  for (auto* l : all) {
    BOOST_CHECK(l->wait_for(n + 1));
    BOOST_CHECK_EQUAL_COLLECTIONS(l->seqs().begin(), l->seqs().end(), expected.begin(),
                                  expected.end());
  }

  // The same event has the same token on every node, so a client may resume on another
  // node (checked last).
  for (auto* l : all)
    BOOST_CHECK(l->tokens() == on_a.tokens());
  // Every node lists the three nodes up, and the cluster has one upstream feed.
  for (auto port : {c.core->port(), c.edge_port(0), c.edge_port(1)}) {
    object s = cluster_status(port);
    for (const char* name : {"core", "edge-a", "edge-b"})
      BOOST_CHECK_MESSAGE(field_string(node_entry(s, name), "state") == "up",
                          "node " << name << " not up as seen by port " << port << ": "
                                  << to_json(value(s)));
    BOOST_CHECK_EQUAL(field_int(s, "upstream_feeds"), 1);
  }
  // Edges report their counts to the core (every second).
  BOOST_CHECK(eventually(
      [&] {
        object b = node_entry(cluster_status(c.core->port()), "edge-b");
        return field_int(b, "sessions") == 20 && field_int(b, "subscriptions") == 1;
      },
      std::chrono::seconds(5)));

  // One copy per event per edge, whatever the edge's number of clients.
  const std::int64_t sent_a =
      metric(c.core->port(), "rheo_cluster_bytes_sent_total", "edge-a") - bytes_a0;
  const std::int64_t sent_b =
      metric(c.core->port(), "rheo_cluster_bytes_sent_total", "edge-b") - bytes_b0;
  BOOST_TEST_MESSAGE("bytes sent for " << n + 1 << " events: edge-a " << sent_a << ", edge-b "
                                       << sent_b);
  BOOST_CHECK_GT(sent_a, n * 10);
  BOOST_CHECK_GT(sent_b, n * 10);
  BOOST_CHECK_LT(sent_b, 2 * sent_a);
  BOOST_CHECK_LT(sent_a, 2 * sent_b);

  // From event 25's token, seen on edge A, edge B replays 26 on. (Last: the replay adds to
  // edge B's bytes and counts.)
  listener resumed(c.edge_port(1), "?resumeAfter=" + on_a.tokens().at(24));
  BOOST_CHECK(resumed.wait_for(n + 1));
  const auto rest = range(26, n + 1);
  BOOST_CHECK_EQUAL_COLLECTIONS(resumed.seqs().begin(), resumed.seqs().end(), rest.begin(),
                                rest.end());
}

BOOST_AUTO_TEST_CASE(a_replay_on_an_edge_is_paced_across_the_link_by_the_clients_reading) {
  // A small queue: the history below is six times as long.
  cluster c({"edge-a"}, {"--ws-queue-limit-bytes", "262144"});
  const std::string token = http(c.edge_port(0), "GET", "/messages").header("resume-token");
  BOOST_REQUIRE(!token.empty());
  const std::string pad(4000, 'x');
  for (int i = 1; i <= 400; ++i) {
    auto r = http(c.core->port(), "POST", "/messages",
                  "{\"seq\":" + std::to_string(i) + ",\"pad\":\"" + pad + "\"}");
    BOOST_REQUIRE_EQUAL(r.status, 201);
  }
  // A client of the edge that reads through a small receive buffer: the core's relay reads
  // the next part only when the edge asks, and the edge asks when the client's connection has
  // drained, so it gets the whole history on one connection (no 1013), then live events.
  ws_client ws(c.edge_port(0), "/messages/_streams/all?resumeAfter=" + token, {}, 4096);
  BOOST_REQUIRE_EQUAL(ws.upgrade_status(), 101);
  auto read_up_to = [&](std::int64_t last) {
    std::vector<std::int64_t> got;
    while (got.empty() || got.back() < last) {
      auto f = ws.next(std::chrono::seconds(20));
      if (f.opcode != 1) {
        BOOST_TEST_MESSAGE("ended with opcode " << f.opcode << " close " << f.close_code());
        break;
      }
      value v = parse_json(f.payload, "event");
      const value* seq = v.is_object() ? find_path(v.as_object(), "fullDocument.seq") : nullptr;
      got.push_back(seq && seq->is_number() ? seq->as_int64() : -1);
    }
    return got;
  };
  BOOST_TEST(read_up_to(400) == range(1, 400));
  post_seq(c.core->port(), 401);
  BOOST_TEST(read_up_to(401) == std::vector<std::int64_t>{401});
}

BOOST_AUTO_TEST_CASE(rest_through_an_edge_answers_as_the_core) {
  cluster c({"edge-a"});
  const std::uint16_t core = c.core->port();
  const std::uint16_t edge = c.edge_port(0);
  auto same = [](const http_result& a, const http_result& b, const std::string& what) {
    BOOST_CHECK_MESSAGE(a.status == b.status,
                        what << ": status " << a.status << " (core) vs " << b.status << " (edge)");
    BOOST_CHECK_MESSAGE(a.body == b.body,
                        what << ": body '" << a.body << "' (core) vs '" << b.body << "' (edge)");
    BOOST_CHECK_MESSAGE(a.header("content-type") == b.header("content-type"),
                        what << ": content-type " << a.header("content-type") << " vs "
                             << b.header("content-type"));
  };
  // Writes: the same call on twin collections, one through each node.
  const std::string meta =
      R"({"aggrs":[{"uri":"by_k","stages":[{"_$group":{"_id":"_$k","total":{"_$sum":"_$n"}}},{"_$sort":{"_id":1}}]}]})";
  same(http(core, "PUT", "/twin_c", meta), http(edge, "PUT", "/twin_e", meta), "PUT collection");
  for (int i = 1; i <= 6; ++i) {
    const std::string doc = "{\"_id\":\"d" + std::to_string(i) + "\",\"n\":" + std::to_string(i) +
                            ",\"k\":\"" + (i % 2 ? "odd" : "even") + "\"}";
    same(http(core, "POST", "/twin_c", doc), http(edge, "POST", "/twin_e", doc), "POST " + doc);
  }
  same(http(core, "POST", "/twin_c", R"({"_id":"d1"})"),
       http(edge, "POST", "/twin_e", R"({"_id":"d1"})"), "POST duplicate _id");
  same(http(core, "POST", "/twin_c", "{not json"), http(edge, "POST", "/twin_e", "{not json"),
       "POST malformed JSON");

  // Reads of one collection through both nodes.
  for (const std::string target :
       {"/twin_c?filter=%7B%22n%22%3A%7B%22%24gte%22%3A3%7D%7D&sort=%7B%22n%22%3A-1%7D",
        "/twin_c?filter=%7B%22k%22%3A%22odd%22%7D&keys=%7B%22n%22%3A1%7D&pagesize=2&page=2",
        "/twin_c/d2", "/twin_c/missing", "/no_such_collection", "/twin_c/_size",
        "/twin_c/_size?filter=%7B%22k%22%3A%22even%22%7D", "/twin_c/_aggrs/by_k",
        "/twin_c/_aggrs/undeclared", "/twin_c?filter=%7B%22%24bogus%22%3A1%7D"})
    same(http(core, "GET", target), http(edge, "GET", target), "GET " + target);

  // A stale If-Match: 412 through both.
  const std::vector<std::pair<std::string, std::string>> stale = {{"If-Match", "\"stale\""}};
  same(http(core, "PATCH", "/twin_c/d3", R"({"$set":{"x":1}})", stale),
       http(edge, "PATCH", "/twin_c/d3", R"({"$set":{"x":1}})", stale), "PATCH If-Match stale");
  // A PATCH with the right etag through the edge, then both read the same document.
  const std::string etag = http(core, "GET", "/twin_c/d3").header("etag");
  BOOST_REQUIRE(!etag.empty());
  auto patched = http(edge, "PATCH", "/twin_c/d3", R"({"$set":{"x":1}})", {{"If-Match", etag}});
  BOOST_CHECK_MESSAGE(patched.status == 200, patched.status << " " << patched.body);
  same(http(core, "GET", "/twin_c/d3"), http(edge, "GET", "/twin_c/d3"), "GET after PATCH");

  // DELETE: first through one node, then again through the other.
  same(http(core, "DELETE", "/twin_c/d5"), http(edge, "DELETE", "/twin_c/d6"), "DELETE");
  same(http(core, "DELETE", "/twin_c/d6"), http(edge, "DELETE", "/twin_c/d5"), "DELETE again");
  same(http(core, "GET", "/twin_c/_size"), http(edge, "GET", "/twin_c/_size"), "_size after");
}

BOOST_AUTO_TEST_CASE(edges_keep_their_clients_across_a_core_kill_and_miss_nothing) {
  cluster c({"edge-a", "edge-b"});
  std::vector<std::unique_ptr<listener>> clients;
  for (std::size_t e = 0; e < 2; ++e)
    for (int i = 0; i < 2; ++i)
      clients.push_back(std::make_unique<listener>(c.edge_port(e)));

  std::atomic<std::uint16_t> core_port{c.core->port()};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<std::int64_t> acked; // seqs the core answered 201 to, in order
  std::thread writer([&] {
    for (std::int64_t seq = 1; !stop.load(); ++seq) {
      bool ok = false;
      try {
        ok = http(core_port.load(), "POST", "/messages", seq_doc(seq)).status == 201;
      } catch (const std::exception&) {
        // The core is down: this write may or may not have been committed.
      }
      if (ok) {
        std::lock_guard lock(mutex);
        acked.push_back(seq);
      }
      // Pacing, not synchronisation: keep the number of events reasonable.
      struct timespec ts {
        0, (ok ? 3 : 20) * 1000 * 1000
      };
      nanosleep(&ts, nullptr);
    }
  });
  auto acked_count = [&] {
    std::lock_guard lock(mutex);
    return acked.size();
  };
  BOOST_CHECK(eventually([&] { return acked_count() >= 40; }, std::chrono::seconds(15)));
  c.core->stop(SIGKILL);
  const std::size_t before_restart = acked_count();
  // Both edges notice the loss (and so must reconnect and resume) before the core is back.
  for (std::size_t e = 0; e < 2; ++e)
    BOOST_CHECK(eventually(
        [&] {
          return field_string(node_entry(cluster_status(c.edge_port(e)), "core", "role"),
                              "state") == "down";
        },
        std::chrono::seconds(10)));
  c.restart_core();
  core_port = c.core->port();
  BOOST_CHECK(
      eventually([&] { return acked_count() >= before_restart + 40; }, std::chrono::seconds(15)));
  stop = true;
  writer.join();
  BOOST_REQUIRE(!acked.empty());
  // A last write: any repeat of an earlier event would come before it.
  const std::int64_t sentinel = acked.back() + 1000;
  post_seq(c.core->port(), sentinel);
  acked.push_back(sentinel);
  BOOST_TEST_MESSAGE("acknowledged " << acked.size() << " writes, " << before_restart
                                     << " before the kill; last seq " << acked.back());

  for (std::size_t i = 0; i < clients.size(); ++i) {
    auto& l = *clients[i];
    BOOST_CHECK_MESSAGE(l.wait_for(acked.back()),
                        "client " << i << " stopped at "
                                  << (l.seqs().empty() ? -1 : l.seqs().back()) << " closed "
                                  << l.closed() << " code " << l.close_code());
    BOOST_CHECK_MESSAGE(!l.closed(), "client " << i << " was closed, code " << l.close_code());
    BOOST_CHECK_MESSAGE(strictly_increasing(l.seqs()), "client " << i << " got a repeat or "
                                                                 << "an event out of order");
    std::size_t missing = 0;
    for (auto seq : acked)
      if (!std::binary_search(l.seqs().begin(), l.seqs().end(), seq)) ++missing;
    BOOST_CHECK_MESSAGE(missing == 0,
                        "client " << i << " missed " << missing << " acknowledged events");
  }
  // The restarted core knows both edges again, with one upstream feed; each edge joined
  // once more.
  object s = cluster_status(c.core->port());
  for (const char* name : {"edge-a", "edge-b"})
    BOOST_CHECK_EQUAL(field_string(node_entry(s, name), "state"), "up");
  BOOST_CHECK_EQUAL(field_int(s, "upstream_feeds"), 1);
  for (std::size_t e = 0; e < 2; ++e)
    BOOST_CHECK_EQUAL(
        metric(c.edge_port(e), "rheo_cluster_reconnects_total", host_port(c.cluster_port)), 1);
}

BOOST_AUTO_TEST_CASE(an_edge_that_dies_takes_only_its_own_clients) {
  cluster c({"edge-a", "edge-b"});
  listener on_a(c.edge_port(0));
  listener on_b1(c.edge_port(1));
  listener on_b2(c.edge_port(1));
  for (int i = 1; i <= 10; ++i)
    post_seq(c.core->port(), i);
  BOOST_CHECK(on_a.wait_for(10));
  c.edges[0]->stop(SIGKILL);
  for (int i = 11; i <= 20; ++i)
    post_seq(c.core->port(), i);
  const auto expected = range(1, 20);
  for (auto* l : {&on_b1, &on_b2}) {
    BOOST_CHECK(l->wait_for(20));
    BOOST_CHECK_EQUAL_COLLECTIONS(l->seqs().begin(), l->seqs().end(), expected.begin(),
                                  expected.end());
  }
  BOOST_CHECK(eventually(
      [&] {
        return field_string(node_entry(cluster_status(c.core->port()), "edge-a"), "state") ==
               "down";
      },
      std::chrono::seconds(10)));
  object s = cluster_status(c.core->port());
  BOOST_CHECK_EQUAL(field_string(node_entry(s, "edge-b"), "state"), "up");

  // When the last edge that followed the collection dies too, the core stops its feed (the
  // core itself has no client).
  BOOST_CHECK_EQUAL(field_int(s, "upstream_feeds"), 1);
  c.edges[1]->stop(SIGKILL);
  BOOST_CHECK(
      eventually([&] { return field_int(cluster_status(c.core->port()), "upstream_feeds") == 0; },
                 std::chrono::seconds(10)));
}

// Beyond the change log's retention an edge cannot resume: its clients get 4410 (history
// lost) and reload, as a single node's do.
BOOST_AUTO_TEST_CASE(an_edge_cut_off_beyond_the_retention_closes_its_clients_with_4410) {
  const std::uint16_t cport = free_port();
  rheo_process core({"--cluster-listen", host_port(cport), "--cluster-secret", secret,
                     "--node-name", "core", "--changelog-retention", "10", "--cluster-heartbeat-ms",
                     "200", "--cluster-timeout-ms", "1000"});
  rheo_process edge({"--cluster-join", host_port(cport), "--cluster-secret", secret, "--node-name",
                     "edge-r", "--cluster-heartbeat-ms", "200", "--cluster-timeout-ms", "1000",
                     "--cluster-reconnect-max-ms", "300"});
  listener on_edge(edge.port());
  post_seq(core.port(), 1);
  BOOST_REQUIRE(on_edge.wait_for(1));
  // The edge freezes (its link falls silent): the core drops it, then writes on.
  ::kill(edge.pid(), SIGSTOP);
  const bool dropped = eventually(
      [&] {
        return field_string(node_entry(cluster_status(core.port()), "edge-r"), "state") == "down";
      },
      std::chrono::seconds(10));
  for (int i = 2; i <= 30; ++i)
    post_seq(core.port(), i);
  ::kill(edge.pid(), SIGCONT);
  BOOST_REQUIRE(dropped);
  BOOST_CHECK(!on_edge.wait_for(30));
  BOOST_CHECK(on_edge.closed());
  BOOST_CHECK_EQUAL(on_edge.close_code(), 4410);
  BOOST_CHECK_EQUAL(on_edge.seqs().size(), 1u); // nothing of what it could not resume
}

BOOST_AUTO_TEST_CASE(a_node_must_prove_the_secret_and_garbage_does_not_disturb_the_cluster) {
  cluster c({"edge-b"});
  listener on_b(c.edge_port(0));

  // A wrong secret: the edge never joins, the core says why.
  auto bad = start_edge(c.cluster_port, "edge-bad", "not-the-secret");
  BOOST_CHECK(
      eventually([&] { return c.core->log().find("wrong cluster secret") != std::string::npos; },
                 std::chrono::seconds(5)));
  object s = cluster_status(bad->port());
  // The edge never learnt the core's name: find it by role.
  BOOST_CHECK_MESSAGE(field_string(node_entry(s, "core", "role"), "state") == "down",
                      to_json(value(s)));
  auto w = http(bad->port(), "POST", "/messages", seq_doc(1000));
  BOOST_CHECK_EQUAL(w.status, 503);
  BOOST_CHECK(parse_json(w.body, "503 body").is_object());
  BOOST_CHECK(node_entry(cluster_status(c.core->port()), "edge-bad").empty());

  // Another rheo build (here: a fingerprint a test sets): refused, both sides say why.
  ::setenv("RHEO_TEST_CLUSTER_FINGERPRINT", "rheo 0.0.1; rheo.other_types", 1);
  auto other = start_edge(c.cluster_port, "edge-old");
  ::unsetenv("RHEO_TEST_CLUSTER_FINGERPRINT");
  BOOST_CHECK(eventually([&] { return c.core->log().find("edge-old from") != std::string::npos; },
                         std::chrono::seconds(5)));
  BOOST_CHECK_MESSAGE(c.core->log().find("it runs another rheo build") != std::string::npos,
                      c.core->log());
  BOOST_CHECK(
      eventually([&] { return other->log().find("incompatible node") != std::string::npos; },
                 std::chrono::seconds(5)));
  BOOST_CHECK(node_entry(cluster_status(c.core->port()), "edge-old").empty());

  // No secret at all: refused at startup.
  temp_dir d;
  auto no_secret = run_rheo({"--port", "0", "--data-dir", d.path() + "/data", "--cluster-join",
                             host_port(c.cluster_port), "--node-name", "edge-x"});
  BOOST_CHECK_EQUAL(no_secret.exit_code, 2);
  BOOST_CHECK_MESSAGE(no_secret.output.find("cluster_secret") != std::string::npos,
                      no_secret.output);

  // Garbage on the cluster port, then a write still reaches the edge's client.
  raw_exchange(c.cluster_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", std::chrono::milliseconds(500));
  raw_exchange(c.cluster_port, std::string(4096, '\xff'), std::chrono::milliseconds(500));
  std::string noise;
  for (int i = 0; i < 4096; ++i)
    noise += static_cast<char>((i * 7919 + 13) & 0xff);
  raw_exchange(c.cluster_port, noise, std::chrono::milliseconds(500));
  post_seq(c.core->port(), 1);
  BOOST_CHECK(on_b.wait_for(1));
  BOOST_CHECK_EQUAL(on_b.seqs().size(), 1u);
  BOOST_CHECK_EQUAL(field_string(node_entry(cluster_status(c.core->port()), "edge-b"), "state"),
                    "up");
}

BOOST_AUTO_TEST_CASE(writes_on_an_edge_get_503_while_the_core_is_down_then_succeed) {
  cluster c({"edge-a"});
  post_seq(c.edge_port(0), 1);
  c.core->stop(SIGKILL);
  http_result down;
  BOOST_CHECK(eventually(
      [&] {
        down = http(c.edge_port(0), "POST", "/messages", seq_doc(2));
        return down.status != 201;
      },
      std::chrono::seconds(10)));
  BOOST_CHECK_EQUAL(down.status, 503);
  BOOST_CHECK_NE(down.header("content-type").find("application/json"), std::string::npos);
  value body = parse_json(down.body, "503 body");
  BOOST_CHECK_MESSAGE(body.is_object() && !body.as_object().empty(), down.body);

  c.restart_core();
  http_result up;
  BOOST_CHECK(eventually(
      [&] {
        up = http(c.edge_port(0), "POST", "/messages", seq_doc(3));
        return up.status == 201;
      },
      std::chrono::seconds(10)));
  BOOST_CHECK_EQUAL(up.status, 201);
  auto size = http(c.edge_port(0), "GET", "/messages/_size");
  BOOST_CHECK_EQUAL(size.status, 200);
  BOOST_CHECK_EQUAL(size.body, http(c.core->port(), "GET", "/messages/_size").body);
}

/// A CA and one node certificate signed by it, made with the openssl command line tool.
struct test_pki {
  test_pki() {
    const std::string d = dir.path();
    const std::string cmd =
        "cd " + d +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=rheo-test-ca"
        " && openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr -subj /CN=node"
        " && openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out node.pem -days 2";
    BOOST_REQUIRE_MESSAGE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0,
                          "openssl could not make the test certificates");
  }
  std::vector<std::string> flags() const {
    return {"--cluster-cert",         dir.path() + "/node.pem", "--cluster-key",
            dir.path() + "/node.key", "--cluster-ca",           dir.path() + "/ca.pem"};
  }
  temp_dir dir;
};

// Plain links are for trusted networks: CAF 0.17's BASP broker sizes its read buffer from a
// peer's header before any handshake (32 bytes announcing 2 GiB make the core allocate it),
// and it has no setting that bounds it. Over TLS, a peer without a certificate of the
// cluster's CA is refused in the TLS handshake, before BASP reads a byte: the core does not
// allocate what a stranger announces, and the cluster keeps working.
// A plain link's peer can make a node allocate what a BASP header asks for before it proves
// the secret: plain links stay on loopback unless the operator says the network is closed.
BOOST_AUTO_TEST_CASE(a_plain_link_binds_or_joins_only_loopback_unless_declared_insecure) {
  temp_dir d;
  const std::string any = "0.0.0.0:" + std::to_string(free_port());
  for (auto& [flag, where] :
       std::vector<std::pair<std::string, std::string>>{{"--cluster-listen", any},
                                                        {"--cluster-join", "10.213.9.1:7400"},
                                                        {"--cluster-join", "core.example:7400"}}) {
    auto r = run_rheo(
        {"--port", "0", "--data-dir", d.path() + "/data", flag, where, "--cluster-secret", secret});
    BOOST_CHECK_EQUAL(r.exit_code, 2);
    BOOST_CHECK_MESSAGE(r.output.find("not a loopback address") != std::string::npos &&
                            r.output.find("cluster_insecure") != std::string::npos,
                        r.output);
  }
  // Declared insecure, the core listens there; on loopback no declaration is needed.
  rheo_process open(
      {"--cluster-listen", any, "--cluster-secret", secret, "--cluster-insecure", "true"});
  BOOST_CHECK(open.log().find("listening for nodes on 0.0.0.0") != std::string::npos);
  rheo_process local(
      {"--cluster-listen", "localhost:" + std::to_string(free_port()), "--cluster-secret", secret});
  BOOST_CHECK(http(local.port(), "GET", "/_cluster").status == 200);
}

BOOST_AUTO_TEST_CASE(tls_links_refuse_strangers_before_the_cluster_protocol) {
  test_pki pki;
  const std::uint16_t cport = free_port();
  auto core_args = std::vector<std::string>{
      "--cluster-listen", host_port(cport), "--cluster-secret", secret, "--node-name", "core"};
  auto edge_args = std::vector<std::string>{"--cluster-join", host_port(cport), "--cluster-secret",
                                            secret,           "--node-name",    "edge-t"};
  for (auto& f : pki.flags()) {
    core_args.push_back(f);
    edge_args.push_back(f);
  }
  rheo_process core(core_args);
  rheo_process edge(edge_args);
  BOOST_REQUIRE(eventually(
      [&] {
        return http(core.port(), "GET", "/_cluster").body.find("edge-t") != std::string::npos;
      },
      std::chrono::seconds(10)));
  listener on_edge(edge.port());
  post_seq(core.port(), 1);
  BOOST_CHECK(on_edge.wait_for(1)); // the TLS link carries events

  const std::int64_t before = proc_status_kib(core.pid(), "VmRSS");
  // The oversized header from a TLS client without a certificate, and as plain TCP.
  const std::string stranger = "printf '\\001\\000\\000\\000\\177\\377\\377\\377"
                               "%024d' 0 | timeout 5 openssl s_client -quiet -connect " +
                               host_port(cport) + " >/dev/null 2>&1";
  std::system(stranger.c_str());
  int fd = connect_to(cport);
  std::string plain(32, '\0');
  plain[0] = '\x01';
  plain[4] = '\x7f';
  plain[5] = plain[6] = plain[7] = '\xff';
  ::send(fd, plain.data(), plain.size(), MSG_NOSIGNAL);
  const bool grew =
      eventually([&] { return proc_status_kib(core.pid(), "VmRSS") > before + 256 * 1024; },
                 std::chrono::seconds(1));
  BOOST_CHECK_MESSAGE(!grew, "the core's RSS grew from " << before << " KiB to "
                                                         << proc_status_kib(core.pid(), "VmRSS")
                                                         << " KiB");
  ::close(fd);
  post_seq(core.port(), 2);
  BOOST_CHECK(on_edge.wait_for(2));
}

BOOST_AUTO_TEST_SUITE_END()
