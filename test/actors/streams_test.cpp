// Change streams over WebSocket against a real rheo process: delivery guarantees,
// variables, handshake errors, event shapes (also of bulk writes), slow consumers, close
// codes, metrics.
#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "test/test_support.hpp"

#include <algorithm>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <poll.h>
#include <set>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(streams_test)

namespace {

struct raise_fd_limit {
  raise_fd_limit() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(raise_fd_limit);

rheo_process& server() {
  static std::unique_ptr<rheo_process> p =
      std::make_unique<rheo_process>(std::vector<std::string>{"--durability", "normal"});
  return *p;
}

http_result req(const std::string& method, const std::string& target, const std::string& body = "",
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return http(server().port(), method, target, body, headers);
}

void define_streams(std::uint16_t port, const std::string& coll, const std::string& streams) {
  auto r = http(port, "PUT", "/" + coll, "{\"streams\":" + streams + "}");
  BOOST_REQUIRE_MESSAGE(r.status == 201 || r.status == 200, r.body);
}

void post(std::uint16_t port, const std::string& coll, const std::string& body) {
  auto r = http(port, "POST", "/" + coll, body);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
}

object event_of(const ws_client::frame& f) {
  BOOST_REQUIRE_MESSAGE(f.opcode == 1, "expected a text frame, got opcode " << f.opcode);
  value v = parse_json(f.payload, "frame");
  BOOST_REQUIRE(v.is_object());
  return v.as_object();
}

std::string str_at(const object& o, const char* path) {
  const value* v = find_path(o, path);
  return v && v->is_string() ? v->as_string() : "<missing>";
}

/// The value of a gauge or counter on /_metrics.
double metric(std::uint16_t port, const std::string& name) {
  auto body = http(port, "GET", "/_metrics").body;
  auto pos = body.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(body.substr(pos + name.size() + 2));
}

/// What read_in_order() saw.
struct in_order_result {
  std::vector<int> received; // events per client
  int done = 0;              // clients that received all of them
  bool ordered = true;       // no gap, duplicate or unexpected frame anywhere
};

/// Reads every client until each has received `count` events whose field `path` counts
/// 0, 1, 2, ... (or 180 s passed). `progress` sees the per-client counts after each round.
template <class Clients>
in_order_result read_in_order(Clients& cs, const char* path, int count,
                              const std::function<void(const std::vector<int>&)>& progress = {}) {
  in_order_result r;
  r.received.assign(cs.size(), 0);
  std::vector<pollfd> fds(cs.size());
  for (std::size_t i = 0; i < cs.size(); ++i)
    fds[i] = {cs[i]->fd(), POLLIN, 0};
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  std::vector<ws_client::frame> frames;
  while (r.done < static_cast<int>(cs.size()) && std::chrono::steady_clock::now() < until) {
    if (::poll(fds.data(), fds.size(), 1000) > 0)
      for (std::size_t i = 0; i < cs.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        frames.clear();
        cs[i]->poll_frames(frames);
        for (auto& f : frames) {
          if (f.opcode != 1) {
            r.ordered = false;
            continue;
          }
          value event = parse_json(f.payload, "frame");
          const value* n = find_path(event.as_object(), path);
          if (!n || n->as_int64() != r.received[i]) r.ordered = false;
          if (++r.received[i] == count) ++r.done;
        }
      }
    if (progress) progress(r.received);
  }
  return r;
}

std::unique_ptr<ws_client> subscribe(std::uint16_t port, const std::string& target) {
  auto c = std::make_unique<ws_client>(port, target);
  BOOST_REQUIRE_MESSAGE(c->upgrade_status() == 101,
                        target << " -> " << c->upgrade_status() << " " << c->error_body());
  return c;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_thousand_clients_each_receive_a_thousand_inserts_in_order_once) {
  const std::uint16_t port = server().port();
  define_streams(port, "fanout", R"([{"uri":"all","stages":[]}])");
#ifdef RHEO_SANITIZED
  // The sanitizer run checks memory safety, not scale (ASan makes each delivery ~10x dearer).
  constexpr int clients = 200, inserts = 200;
#else
  constexpr int clients = 1000, inserts = 1000;
#endif
  std::vector<std::unique_ptr<ws_client>> cs;
  for (int i = 0; i < clients; ++i)
    cs.push_back(subscribe(port, "/fanout/_streams/all"));
  BOOST_TEST(metric(port, "rheo_subscriptions") == 1);
  BOOST_TEST(metric(port, "rheo_upstream_feeds") == 1);
  for (int i = 0; i < inserts; ++i)
    post(port, "fanout", "{\"n\":" + std::to_string(i) + "}");

  auto got = read_in_order(cs, "fullDocument.n", inserts);
  const auto& next_n = got.received;
  const int done = got.done;
  const bool ordered = got.ordered;
  BOOST_TEST(done == clients);
  BOOST_TEST(ordered);
  for (int i = 0; i < clients; ++i)
    if (next_n[i] != inserts) {
      BOOST_ERROR("client " << i << " received " << next_n[i]);
      break;
    }
  // No duplicates arrive after the last expected event either.
  std::vector<ws_client::frame> extra;
  cs[0]->poll_frames(extra);
  BOOST_TEST(extra.empty());
  cs.clear();
  BOOST_TEST(eventually([&] { return metric(port, "rheo_sessions_open") == 0; }));
}

BOOST_AUTO_TEST_CASE(sessions_on_every_io_thread_get_every_event_once_in_order_while_others_churn) {
  // Three I/O threads; steady clients spread over all of them; meanwhile other clients join
  // and leave, and a client that never reads is closed as a slow consumer.
  // Pings far apart: the slow consumer reads its close frame only at the end.
  rheo_process p({"--io-threads", "3", "--durability", "normal", "--ws-queue-limit-bytes", "524288",
                  "--ws-ping-interval-ms", "600000", "--ws-pong-timeout-ms", "600000"});
  const std::uint16_t port = p.port();
  define_streams(port, "spread", R"([{"uri":"all","stages":[]}])");
#ifdef RHEO_SANITIZED
  constexpr int steady = 12;
#else
  constexpr int steady = 60;
#endif
  // 700 events of 8 KB: past a never-reading client's socket buffers and its 512 KiB queue
  // limit (steady clients, read by this one thread, get that much slack).
  constexpr int events = 700;
  const std::string pad(8000, 'x');
  ws_client stuck(port, "/spread/_streams/all", {}, 4096);
  BOOST_REQUIRE(stuck.upgrade_status() == 101);
  std::vector<std::unique_ptr<ws_client>> cs;
  for (int i = 0; i < steady; ++i)
    cs.push_back(subscribe(port, "/spread/_streams/all"));
  for (int t = 0; t < 3; ++t)
    BOOST_TEST(metric(port, "rheo_ws_connections{io_thread=\"" + std::to_string(t) + "\"}") >=
               steady / 6);

  std::atomic<bool> writing{true};
  std::atomic<int> write_errors{0}, churn_cycles{0}, churn_frames{0}, churn_violations{0};
  // The fewest events any steady client has read: the writer stays at most 16 events
  // (128 KB) ahead of it, well inside the queue limit, however slowly this test reads.
  std::atomic<int> slowest{0};
  std::thread writer([&] {
    for (int i = 0; i < events; ++i) {
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (i - slowest.load() > 16 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (http(port, "POST", "/spread", "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + pad + "\"}")
              .status != 201)
        ++write_errors;
    }
    writing = false;
  });
  std::thread churn([&] {
    while (writing) {
      ws_client c(port, "/spread/_streams/all");
      if (c.upgrade_status() != 101) {
        ++churn_violations;
        continue;
      }
      // Whatever a short-lived session receives is consecutive: no gap, no duplicate.
      std::int64_t last = -1;
      for (int k = 0; k < 3 && writing; ++k) {
        auto f = c.next(std::chrono::milliseconds(2000));
        if (f.opcode == -1) break;
        if (f.opcode != 1) {
          ++churn_violations;
          break;
        }
        value ev = parse_json(f.payload, "frame");
        const value* n = find_path(ev.as_object(), "fullDocument.i");
        if (!n || (last >= 0 && n->as_int64() != last + 1)) ++churn_violations;
        if (n) last = n->as_int64();
        ++churn_frames;
      }
      ++churn_cycles;
    }
  });

  auto got = read_in_order(cs, "fullDocument.i", events, [&](const std::vector<int>& received) {
    slowest = *std::min_element(received.begin(), received.end());
  });
  const int done = got.done;
  const bool ordered = got.ordered;
  writer.join();
  churn.join();
  BOOST_TEST(write_errors == 0);
  BOOST_TEST(done == steady);
  BOOST_TEST(ordered);
  BOOST_TEST(churn_cycles > 0);
  BOOST_TEST(churn_frames > 0);
  BOOST_TEST(churn_violations == 0);
  for (auto& c : cs) {
    std::vector<ws_client::frame> extra;
    c->poll_frames(extra);
    BOOST_TEST(extra.empty()); // nothing after the last event: no duplicates
  }
  BOOST_TEST(eventually([&] { return metric(port, "rheo_slow_consumer_closes_total") == 1; }));
  BOOST_TEST_MESSAGE("slow consumer closes: " << metric(port, "rheo_slow_consumer_closes_total"));
  ws_client::frame f;
  int stuck_frames = 0;
  do {
    f = stuck.next();
    stuck_frames += f.opcode == 1;
  } while (f.opcode == 1);
  BOOST_TEST_MESSAGE("the slow consumer read " << stuck_frames << " frames, then opcode "
                                               << f.opcode);
  BOOST_TEST(f.opcode == 8);
  BOOST_TEST(f.close_code() == 1013);
  cs.clear();
  BOOST_TEST(eventually([&] {
    return metric(port, "rheo_sessions_open") == 0 && metric(port, "rheo_subscriptions") == 0 &&
           metric(port, "rheo_bytes_queued") == 0;
  }));
}

BOOST_AUTO_TEST_CASE(a_ttl_index_deletion_reaches_the_stream_as_a_delete_event) {
  rheo_process p({"--durability", "normal", "--ttl-monitor-interval-ms", "50"});
  const std::uint16_t port = p.port();
  define_streams(port, "presence", R"([{"uri":"all","stages":[]}])");
  auto r = http(port, "PUT", "/presence/_indexes/seen",
                R"({"keys":{"seen":1},"ops":{"expireAfterSeconds":30}})");
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  auto c = subscribe(port, "/presence/_streams/all");
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  post(port, "presence", R"({"_id":"old","seen":{"$date":)" + std::to_string(now - 60000) + "}}");
  post(port, "presence", R"({"_id":"fresh","seen":{"$date":)" + std::to_string(now) + "}}");
  // Within a few monitor rounds (the deadline is next()'s 10 s): both inserts, and the delete
  // of "old" after its insert (the monitor runs every 50 ms: it may delete "old" before
  // "fresh" is inserted).
  std::vector<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    auto e = event_of(c->next());
    seen.push_back(str_at(e, "operationType") + " " + str_at(e, "documentKey._id"));
  }
  BOOST_TEST(seen[0] == "insert old");
  std::sort(seen.begin() + 1, seen.end());
  BOOST_TEST(seen[1] == "delete old");
  BOOST_TEST(seen[2] == "insert fresh");
  BOOST_TEST(http(port, "GET", "/presence/fresh").status == 200);
  BOOST_TEST(http(port, "GET", "/presence/old").status == 404);
}

BOOST_AUTO_TEST_CASE(avars_filter_events_and_equal_avars_share_a_subscription) {
  const std::uint16_t port = server().port();
  define_streams(port, "byuser",
                 R"([{"uri":"mine","stages":[{"_$match":{"fullDocument::from":{"_$var":"n"}}}]}])");
  double subs_before = metric(port, "rheo_subscriptions");
  auto ann = subscribe(port, "/byuser/_streams/mine?avars={'n':'ann'}");
  auto ann2 = subscribe(port, "/byuser/_streams/mine?avars=%7B%22n%22%3A%22ann%22%7D");
  auto bob = subscribe(port, "/byuser/_streams/mine?avars={n:'bob'}");
  BOOST_TEST(metric(port, "rheo_subscriptions") == subs_before + 2);
  post(port, "byuser", R"({"from":"bob","i":1})");
  post(port, "byuser", R"({"from":"ann","i":2})");
  post(port, "byuser", R"({"from":"carl","i":3})");
  post(port, "byuser", R"({"from":"bob","i":4})");
  for (auto* c : {ann.get(), ann2.get()}) {
    auto e = event_of(c->next());
    BOOST_TEST(str_at(e, "fullDocument.from") == "ann");
    BOOST_TEST(c->next(std::chrono::milliseconds(300)).opcode == -1);
  }
  BOOST_TEST(find_path(event_of(bob->next()), "fullDocument.i")->as_int64() == 1);
  BOOST_TEST(find_path(event_of(bob->next()), "fullDocument.i")->as_int64() == 4);
}

BOOST_AUTO_TEST_CASE(ifvar_drops_the_stage_when_unbound_and_var_defaults_apply) {
  const std::uint16_t port = server().port();
  define_streams(port, "opt", R"([
    {"uri":"maybe","stages":[{"_$ifvar":["n",{"_$match":{"fullDocument::from":{"_$var":"n"}}}]}]},
    {"uri":"dflt","stages":[{"_$match":{"fullDocument::from":{"_$var":["n","ann"]}}}]},
    {"uri":"either","stages":[{"_$ifvar":["n",{"_$match":{"fullDocument::from":{"_$var":"n"}}},
                                              {"_$match":{"fullDocument::from":"zed"}}]}]}])");
  auto all = subscribe(port, "/opt/_streams/maybe");
  auto bob = subscribe(port, "/opt/_streams/maybe?avars={n:'bob'}");
  auto dflt = subscribe(port, "/opt/_streams/dflt");
  auto dflt_bob = subscribe(port, "/opt/_streams/dflt?avars={n:'bob'}");
  auto other = subscribe(port, "/opt/_streams/either");
  post(port, "opt", R"({"from":"ann"})");
  post(port, "opt", R"({"from":"bob"})");
  post(port, "opt", R"({"from":"zed"})");
  BOOST_TEST(str_at(event_of(all->next()), "fullDocument.from") == "ann");
  BOOST_TEST(str_at(event_of(all->next()), "fullDocument.from") == "bob");
  BOOST_TEST(str_at(event_of(all->next()), "fullDocument.from") == "zed");
  BOOST_TEST(str_at(event_of(bob->next()), "fullDocument.from") == "bob");
  BOOST_TEST(str_at(event_of(dflt->next()), "fullDocument.from") == "ann");
  BOOST_TEST(str_at(event_of(dflt_bob->next()), "fullDocument.from") == "bob");
  BOOST_TEST(str_at(event_of(other->next()), "fullDocument.from") == "zed");
  for (auto* c : {bob.get(), dflt.get(), dflt_bob.get(), other.get()})
    BOOST_TEST(c->next(std::chrono::milliseconds(300)).opcode == -1);
}

BOOST_AUTO_TEST_CASE(handshake_errors_answer_before_the_upgrade) {
  const std::uint16_t port = server().port();
  define_streams(port, "hs",
                 R"([{"uri":"v","stages":[{"_$match":{"fullDocument::a":{"_$var":"n"}}}]}])");
  auto check = [&](const std::string& target, int status, const std::string& fragment) {
    ws_client c(port, target);
    BOOST_TEST(c.upgrade_status() == status, target << " -> " << c.upgrade_status());
    BOOST_TEST(c.error_body().find(fragment) != std::string::npos, c.error_body());
  };
  check("/hs/_streams/nope", 404, "nope");
  check("/nocoll/_streams/v", 404, "nocoll");
  check("/hs/_streams/v", 400, "variable n not bound");
  check("/hs/_streams/v?avars={'$n':1}", 400, "$n");
  check("/hs/_streams/v?avars=[1]", 400, "avars");
  check("/hs/_streams/v?avars={n:", 400, "avars");
  auto plain = req("GET", "/hs/_streams/v");
  BOOST_TEST(plain.status == 400);
  BOOST_TEST(plain.body.find("Change Stream requires WebSocket") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(insert_update_replace_and_delete_events_have_the_documented_shape) {
  const std::uint16_t port = server().port();
  define_streams(port, "shapes", R"([{"uri":"all","stages":[]}])");
  auto c = subscribe(port, "/shapes/_streams/all");
  post(port, "shapes", R"({"_id":"d","a":1,"b":2})");
  BOOST_TEST(req("PATCH", "/shapes/d", R"({"$set":{"a":5},"$unset":{"b":""}})").status == 200);
  BOOST_TEST(req("PUT", "/shapes/d", R"({"z":9})").status == 200);
  BOOST_TEST(req("DELETE", "/shapes/d").status == 204);

  auto ins = event_of(c->next());
  BOOST_TEST(str_at(ins, "operationType") == "insert");
  BOOST_TEST(str_at(ins, "documentKey._id") == "d");
  BOOST_TEST(find_path(ins, "fullDocument.a")->as_int64() == 1);
  BOOST_TEST(find_field(ins, "updateDescription") == nullptr);
  std::string t1 = str_at(ins, "_id._data");
  BOOST_TEST(t1 != "<missing>");

  auto upd = event_of(c->next());
  BOOST_TEST(str_at(upd, "operationType") == "update");
  BOOST_TEST(find_path(upd, "updateDescription.updatedFields.a")->as_int64() == 5);
  const value* removed = find_path(upd, "updateDescription.removedFields");
  BOOST_REQUIRE(removed && removed->is_array());
  BOOST_TEST(removed->as_array().size() == 1);
  BOOST_TEST(removed->as_array()[0].as_string() == "b");
  BOOST_TEST(find_path(upd, "fullDocument.a")->as_int64() == 5); // updateLookup
  BOOST_TEST(find_path(upd, "fullDocument.b") == nullptr);
  std::string t2 = str_at(upd, "_id._data");
  BOOST_TEST(t2 > t1);

  auto rep = event_of(c->next());
  BOOST_TEST(str_at(rep, "operationType") == "replace");
  BOOST_TEST(find_path(rep, "fullDocument.z")->as_int64() == 9);
  BOOST_TEST(find_path(rep, "fullDocument.a") == nullptr);

  auto del = event_of(c->next());
  BOOST_TEST(str_at(del, "operationType") == "delete");
  BOOST_TEST(str_at(del, "documentKey._id") == "d");
  BOOST_TEST(find_field(del, "fullDocument") == nullptr);
}

BOOST_AUTO_TEST_CASE(bulk_writes_give_one_event_per_document_and_failed_ones_none) {
  const std::uint16_t port = server().port();
  define_streams(port, "bulkev", R"([{"uri":"all","stages":[]}])");
  auto c = subscribe(port, "/bulkev/_streams/all");
  auto bulk = [&](const std::string& method, const std::string& target, const std::string& body) {
    auto r = req(method, target, body);
    BOOST_REQUIRE_MESSAGE(r.status == 200, method << " " << target << " -> " << r.body);
    return parse_json(r.body, "response").as_object();
  };
  auto count = [](const object& o, const char* name) { return find_field(o, name)->as_int64(); };
  auto key_of = [](const object& ev) { return find_path(ev, "documentKey._id")->as_int64(); };

  // A bulk POST: one insert event per document, in the array's order.
  auto posted = bulk("POST", "/bulkev", R"([{"_id":1,"n":0},{"_id":2,"n":1},{"_id":3,"n":2}])");
  BOOST_TEST(count(posted, "inserted") == 3);
  for (std::int64_t i = 0; i < 3; ++i) {
    auto ev = event_of(c->next());
    BOOST_TEST(str_at(ev, "operationType") == "insert");
    BOOST_TEST(key_of(ev) == i + 1);
    BOOST_TEST(find_path(ev, "fullDocument.n")->as_int64() == i);
  }
  // PATCH /*: one update event per changed document (not for a match left unchanged).
  auto patched = bulk("PATCH", "/bulkev/*?filter={n:{$gte:1}}", R"({"$inc":{"n":10}})");
  BOOST_TEST(count(patched, "modified") == 2);
  std::set<std::int64_t> updated;
  for (int i = 0; i < 2; ++i) {
    auto ev = event_of(c->next());
    BOOST_TEST(str_at(ev, "operationType") == "update");
    BOOST_TEST(find_path(ev, "updateDescription.updatedFields.n")->as_int64() ==
               find_path(ev, "fullDocument.n")->as_int64());
    updated.insert(key_of(ev));
  }
  BOOST_TEST((updated == std::set<std::int64_t>{2, 3}));
  auto same = bulk("PATCH", "/bulkev/*?filter={_id:1}", R"({"$set":{"n":0}})");
  BOOST_TEST((count(same, "matched") == 1 && count(same, "modified") == 0));
  // DELETE /*: one delete event per document.
  auto deleted = bulk("DELETE", "/bulkev/*?filter={n:{$gte:10}}", "");
  BOOST_TEST(count(deleted, "deleted") == 2);
  std::set<std::int64_t> removed;
  for (int i = 0; i < 2; ++i) {
    auto ev = event_of(c->next());
    BOOST_TEST(str_at(ev, "operationType") == "delete");
    removed.insert(key_of(ev));
  }
  BOOST_TEST((removed == std::set<std::int64_t>{2, 3}));
  // A bulk POST refused (a duplicate _id in the array) commits nothing, so sends nothing:
  // the next event is the single insert after it.
  BOOST_TEST(req("POST", "/bulkev", R"([{"_id":4},{"_id":5},{"_id":4}])").status == 409);
  BOOST_TEST(req("POST", "/bulkev", R"([{"_id":6},7])").status == 400);
  post(port, "bulkev", R"({"_id":8})");
  auto next = event_of(c->next());
  BOOST_TEST(str_at(next, "operationType") == "insert");
  BOOST_TEST(key_of(next) == 8);
}

BOOST_AUTO_TEST_CASE(stages_reshape_messages_and_failing_events_are_skipped) {
  const std::uint16_t port = server().port();
  define_streams(port, "reshape", R"([{"uri":"p","stages":[
    {"_$match":{"operationType":"insert"}},
    {"_$project":{"_id":0,"who":"$fullDocument.from","half":{"_$divide":["$fullDocument.n",2]}}}]}])");
  auto c = subscribe(port, "/reshape/_streams/p");
  double errors_before = metric(port, "rheo_stage_errors_total");
  post(port, "reshape", R"({"from":"ann","n":"not a number"})");
  post(port, "reshape", R"({"from":"bob","n":8})");
  auto e = event_of(c->next());
  BOOST_TEST(str_at(e, "who") == "bob");
  BOOST_TEST(find_field(e, "half")->as_double() == 4.0);
  BOOST_TEST(find_field(e, "_id") == nullptr);
  BOOST_TEST(e.size() == 2u);
  BOOST_TEST(metric(port, "rheo_stage_errors_total") >= errors_before + 1);
}

BOOST_AUTO_TEST_CASE(client_frames_are_ignored_and_broken_frames_close_with_1002) {
  const std::uint16_t port = server().port();
  define_streams(port, "chatty", R"([{"uri":"all","stages":[]}])");
  auto c = subscribe(port, "/chatty/_streams/all");
  // The WebChat's keep-alive, and a fragmented message.
  c->send_frame(1, R"({"from":"","message":"","timestamp":{"$date":123}})");
  c->send_frame(1, "part one ", false);
  c->send_frame(0, "part two");
  post(port, "chatty", R"({"x":1})");
  BOOST_TEST(find_path(event_of(c->next()), "fullDocument.x")->as_int64() == 1);

  auto bad = subscribe(port, "/chatty/_streams/all");
  bad->send_raw(std::string("\x81\x02hi", 4)); // unmasked client frame
  auto f = bad->next();
  BOOST_TEST(f.opcode == 8);
  BOOST_TEST(f.close_code() == 1002);

  auto big = subscribe(port, "/chatty/_streams/all");
  big->send_frame(1, std::string(200 * 1024, 'x')); // over the 64 KiB client frame limit
  auto g = big->next();
  BOOST_TEST(g.opcode == 8);
  BOOST_TEST(g.close_code() == 1009);

  auto polite = subscribe(port, "/chatty/_streams/all");
  polite->close(1000);
  auto h = polite->next();
  BOOST_TEST(h.opcode == 8);
  BOOST_TEST(h.close_code() == 1000);
  BOOST_TEST(req("GET", "/_ping").status == 200);
}

BOOST_AUTO_TEST_CASE(text_frames_that_are_not_utf8_close_with_1007) {
  const std::uint16_t port = server().port();
  define_streams(port, "utf8", R"([{"uri":"all","stages":[]}])");
  // Valid UTF-8, also split inside a code point between fragments: the session stays open.
  auto good = subscribe(port, "/utf8/_streams/all");
  good->send_frame(1, "caf\xC3\xA9 \xF0\x9F\x98\x80");
  good->send_frame(1, "a\xF0\x9F", false);
  good->send_frame(0, "\x98", false);
  good->send_frame(0, "\x80z");
  post(port, "utf8", R"({"x":1})");
  BOOST_TEST(find_path(event_of(good->next()), "fullDocument.x")->as_int64() == 1);

  auto bad = subscribe(port, "/utf8/_streams/all");
  bad->send_frame(1, "caf\xC3"); // truncated sequence
  auto f = bad->next();
  BOOST_TEST(f.opcode == 8);
  BOOST_TEST(f.close_code() == 1007);

  auto surrogate = subscribe(port, "/utf8/_streams/all");
  surrogate->send_frame(1, "ok ", false);
  surrogate->send_frame(0, "\xED\xA0\x80"); // U+D800
  auto g = surrogate->next();
  BOOST_TEST(g.opcode == 8);
  BOOST_TEST(g.close_code() == 1007);

  auto bad_reason = subscribe(port, "/utf8/_streams/all");
  bad_reason->send_frame(8, std::string("\x03\xE8", 2) + "bye \xE2\x9C");
  auto h = bad_reason->next();
  BOOST_TEST(h.opcode == 8);
  BOOST_TEST(h.close_code() == 1007);

  // The good session still receives.
  post(port, "utf8", R"({"x":2})");
  BOOST_TEST(find_path(event_of(good->next()), "fullDocument.x")->as_int64() == 2);
}

BOOST_AUTO_TEST_CASE(redefining_a_stream_or_dropping_the_collection_closes_its_sessions) {
  const std::uint16_t port = server().port();
  define_streams(port, "redef", R"([{"uri":"a","stages":[]},{"uri":"b","stages":[]}])");
  auto a = subscribe(port, "/redef/_streams/a");
  auto b = subscribe(port, "/redef/_streams/b");
  // Change only stream a.
  define_streams(
      port, "redef",
      R"([{"uri":"a","stages":[{"_$match":{"operationType":"insert"}}]},{"uri":"b","stages":[]}])");
  auto fa = a->next();
  BOOST_TEST(fa.opcode == 8);
  BOOST_TEST(fa.close_code() == 1000);
  BOOST_TEST(fa.close_reason() == "stream definition changed");
  post(port, "redef", R"({"still":"here"})");
  BOOST_TEST(str_at(event_of(b->next()), "fullDocument.still") == "here");
  // The new definition serves new sessions.
  auto a2 = subscribe(port, "/redef/_streams/a");
  post(port, "redef", R"({"again":1})");
  BOOST_TEST(find_path(event_of(a2->next()), "fullDocument.again")->as_int64() == 1);
  BOOST_TEST(find_path(event_of(b->next()), "fullDocument.again")->as_int64() == 1);

  std::string etag = req("GET", "/redef/_meta").header("etag");
  BOOST_TEST(req("DELETE", "/redef", "", {{"If-Match", etag}}).status == 204);
  for (auto* c : {a2.get(), b.get()}) {
    ws_client::frame f;
    do {
      f = c->next();
    } while (f.opcode == 1); // drop/invalidate events may come first
    BOOST_TEST(f.opcode == 8);
    BOOST_TEST(f.close_code() == 1000);
    BOOST_TEST(f.close_reason() == "collection dropped");
  }
}

BOOST_AUTO_TEST_CASE(a_client_that_never_reads_is_closed_with_1013_while_others_keep_receiving) {
  rheo_process p({"--ws-queue-limit-bytes", "262144", "--durability", "normal"});
  define_streams(p.port(), "slow", R"([{"uri":"all","stages":[]}])");
  ws_client stuck(p.port(), "/slow/_streams/all", {}, 4096);
  BOOST_REQUIRE(stuck.upgrade_status() == 101);
  auto healthy = subscribe(p.port(), "/slow/_streams/all");
  std::string pad(8000, 'x');
  // ~6.4 MB: past the client's 4 KiB receive window, the server's socket send buffer
  // (at most 4 MiB here) and the 256 KiB queue limit.
  constexpr int n = 800;
  int received = 0;
  for (int i = 0; i < n; ++i) {
    post(p.port(), "slow", "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + pad + "\"}");
    std::vector<ws_client::frame> frames;
    healthy->poll_frames(frames);
    for (auto& f : frames)
      if (f.opcode == 1) ++received;
  }
  while (received < n) {
    auto f = healthy->next(std::chrono::seconds(60));
    BOOST_REQUIRE_MESSAGE(f.opcode == 1,
                          "healthy client got opcode " << f.opcode << " code " << f.close_code());
    ++received;
  }
  BOOST_TEST(received == n);
  BOOST_TEST(eventually([&] { return metric(p.port(), "rheo_slow_consumer_closes_total") == 1; }));
  // Now read the stuck client: some events, then the close frame.
  ws_client::frame f;
  int before_close = 0;
  do {
    f = stuck.next();
    if (f.opcode == 1) ++before_close;
  } while (f.opcode == 1);
  BOOST_TEST(f.opcode == 8);
  BOOST_TEST(f.close_code() == 1013);
  BOOST_TEST(f.close_reason().find("slow consumer") != std::string::npos);
  BOOST_TEST(before_close < n);
}

BOOST_AUTO_TEST_CASE(clients_that_stop_answering_pings_are_disconnected) {
  rheo_process p({"--ws-ping-interval-ms", "100", "--ws-pong-timeout-ms", "300"});
  define_streams(p.port(), "pings", R"([{"uri":"all","stages":[]}])");
  auto answering = subscribe(p.port(), "/pings/_streams/all");
  ws_client silent(p.port(), "/pings/_streams/all");
  BOOST_REQUIRE(silent.upgrade_status() == 101);
  // The answering client keeps reading (and so ponging) while the silent one does not.
  BOOST_TEST(eventually(
      [&] {
        answering->next(std::chrono::milliseconds(50));
        return metric(p.port(), "rheo_sessions_open") == 1;
      },
      std::chrono::milliseconds(15000)));
  post(p.port(), "pings", R"({"alive":true})");
  ws_client::frame f;
  do {
    f = answering->next();
  } while (f.opcode != 1 && f.opcode > 0);
  BOOST_TEST(find_path(event_of(f), "fullDocument.alive")->as_bool());
}

BOOST_AUTO_TEST_CASE(shutdown_closes_sessions_with_1001) {
  rheo_process p;
  define_streams(p.port(), "bye", R"([{"uri":"all","stages":[]}])");
  auto c = subscribe(p.port(), "/bye/_streams/all");
  ::kill(p.pid(), SIGTERM);
  auto f = c->next();
  BOOST_TEST(f.opcode == 8);
  BOOST_TEST(f.close_code() == 1001);
  int status = p.stop(SIGTERM);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

BOOST_AUTO_TEST_CASE(after_every_client_leaves_nothing_is_left_running) {
  const std::uint16_t port = server().port();
  define_streams(
      port, "leave",
      R"([{"uri":"all","stages":[]},{"uri":"ins","stages":[{"_$match":{"operationType":"insert"}}]}])");
  {
    std::vector<std::unique_ptr<ws_client>> cs;
    for (int i = 0; i < 20; ++i)
      cs.push_back(subscribe(port, i % 2 ? "/leave/_streams/all" : "/leave/_streams/ins"));
    BOOST_TEST(metric(port, "rheo_sessions_open") >= 20);
    for (int i = 0; i < 10; ++i)
      cs[i]->close();
  }
  BOOST_TEST(eventually([&] {
    return metric(port, "rheo_sessions_open") == 0 && metric(port, "rheo_subscriptions") == 0 &&
           metric(port, "rheo_upstream_feeds") == 0 && metric(port, "rheo_bytes_queued") == 0;
  }));
}

BOOST_AUTO_TEST_CASE(stream_definitions_with_disallowed_stages_are_rejected_when_written) {
  auto r = req("PUT", "/badstreams", R"({"streams":[{"uri":"x","stages":[{"_$lookup":{}}]}]})");
  BOOST_TEST(r.status == 400);
  BOOST_TEST(r.body.find("$lookup") != std::string::npos, r.body);
  auto r2 = req("PUT", "/badstreams",
                R"({"streams":[{"uri":"x","stages":[{"$match":{"a":{"$where":"1"}}}]}]})");
  BOOST_TEST(r2.status == 400);
  req("PUT", "/goodstreams", R"({"streams":[]})");
  auto r3 = req("PATCH", "/goodstreams", R"({"streams":[{"uri":"x","stages":[{"_$group":{}}]}]})");
  BOOST_TEST(r3.status == 400);
  BOOST_TEST(r3.body.find("$group") != std::string::npos, r3.body);
}

BOOST_AUTO_TEST_SUITE_END()
