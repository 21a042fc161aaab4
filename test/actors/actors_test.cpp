// Unit tests of the realtime core's actors (broker, watcher, subscription) on CAF's
// deterministic test scheduler (caf/test/dsl.hpp): no sockets, no sleeps, no threads.
//
// The store is a fake whose watch() hands out fake change feeds; the test pushes events,
// metadata changes and the end of a feed through the sink a watcher gave its feed, on the
// test thread. Sessions (and, for the watcher, subscriptions and the broker) are stubs with
// the real typed interfaces, so every message the actors under test send stays in a stub's
// mailbox for `expect` to check. The connections a subscription fans out to are real
// ws_connections over unopened sockets on io_shards whose event loops only the test runs
// (poll() on the test thread): a connection that has not completed its handshake only queues
// what it is given, so queued_bytes() shows what the subscription delivered.
//
// This file uses CAF's own test runner (caf/test/unit_test_impl.hpp): the DSL's checks
// report to CAF's test engine, which Boost.Test cannot host. A failed CAF_CHECK makes the
// executable exit with 1; a failed CAF_REQUIRE or expect() aborts it.
#define CAF_SUITE actors

// GCC 12 at -O1 (the sanitizer build) reports std::regex's std::function members, which CAF's
// test runner instantiates, as maybe-uninitialized: a false positive inside libstdc++.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "actors/actors.hpp"
#include "actors/broker.hpp"
#include "actors/live_query.hpp"
#include "actors/presence.hpp"
#include "actors/presence_link.hpp"
#include "actors/replay.hpp"
#include "actors/sink_support.hpp"
#include "actors/subscription.hpp"
#include "actors/watcher.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/presence_directory.hpp"
#include "net/sse_connection.hpp"
#include "net/ws_connection.hpp"
#include "net/ws_frame.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/document/live_window.hpp"
#include "storage/document/pipeline.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>
#include <caf/test/dsl.hpp>
#include <caf/test/unit_test_impl.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rheo {

// Value comparisons for expect(...).with(...): the contents, not the shared pointers.
bool operator==(const event_batch& x, const event_batch& y) {
  if (!x.events || !y.events) return x.events == y.events;
  return *x.events == *y.events;
}

bool operator==(const metadata_change& x, const metadata_change& y) {
  if (!x.metadata || !y.metadata) return x.metadata == y.metadata;
  return value(*x.metadata) == value(*y.metadata);
}

} // namespace rheo

using namespace rheo;

namespace {

// -- fakes --------------------------------------------------------------------

/// What happened to one fake feed; shared by the feed, the store and the test.
struct feed_record {
  std::string db;
  std::string coll;
  int starts = 0;
  int cancels = 0;
  bool destroyed = false;
  std::shared_ptr<feed_sink> sink; // what start() was given; the test pushes through it
  std::string position;            // what position() answers
};

class fake_feed final : public change_feed {
public:
  explicit fake_feed(std::shared_ptr<feed_record> rec) : rec_(std::move(rec)) {}
  ~fake_feed() override { rec_->destroyed = true; }

  void start(std::shared_ptr<feed_sink> sink) override {
    ++rec_->starts;
    rec_->sink = std::move(sink);
  }
  void cancel() override { ++rec_->cancels; }
  std::string position() const override { return rec_->position; }

private:
  std::shared_ptr<feed_record> rec_;
};

[[noreturn]] void not_here() {
  throw std::logic_error("fake_store: only watch() is implemented");
}

/// A store of which only watch() works: it records each call and hands out fake feeds.
/// A collection named "unwatchable" makes watch() throw.
class fake_store final : public store {
public:
  std::vector<std::shared_ptr<feed_record>> feeds; // one per watch() call, in call order

  std::unique_ptr<change_feed> watch(const std::string& db, const std::string& coll,
                                     const std::optional<std::string>&) override {
    if (coll == "unwatchable") throw std::runtime_error("no such collection");
    auto rec = std::make_shared<feed_record>();
    rec->db = db;
    rec->coll = coll;
    feeds.push_back(rec);
    return std::make_unique<fake_feed>(std::move(rec));
  }

  std::vector<std::string> collection_names(const std::string&) override { not_here(); }
  std::optional<collection_info> collection(const std::string&, const std::string&) override {
    not_here();
  }
  bool put_collection(const std::string&, const std::string&, object,
                      const std::optional<std::string>&) override {
    not_here();
  }
  void patch_collection(const std::string&, const std::string&, object,
                        const std::optional<std::string>&) override {
    not_here();
  }
  void drop_collection(const std::string&, const std::string&, const std::string&) override {
    not_here();
  }
  std::vector<object> find(const std::string&, const std::string&, const find_query&) override {
    not_here();
  }
  std::int64_t count_query(const std::string&, const std::string&, const find_query&) override {
    not_here();
  }
  std::optional<object> find_by_id(const std::string&, const std::string&, const value&,
                                   std::string*) override {
    not_here();
  }
  void check_resume_token(const std::string&) const override {}
  write_result insert(const std::string&, const std::string&, object) override { not_here(); }
  write_result replace(const std::string&, const std::string&, const value&, object, write_mode,
                       const std::optional<std::string>&) override {
    not_here();
  }
  write_result update(const std::string&, const std::string&, const value&, const update_spec&,
                      write_mode, const std::optional<std::string>&) override {
    not_here();
  }
  void remove(const std::string&, const std::string&, const value&,
              const std::optional<std::string>&) override {
    not_here();
  }
  bulk_result insert_many(const std::string&, const std::string&, std::vector<object>) override {
    not_here();
  }
  bulk_result update_many(const std::string&, const std::string&, const find_query&,
                          const update_spec&) override {
    not_here();
  }
  bulk_result delete_many(const std::string&, const std::string&, const find_query&) override {
    not_here();
  }
  std::vector<object> aggregate(const std::string&, const std::string&, const aggregation&,
                                const aggregation_limits&) override {
    not_here();
  }
  std::vector<index_info> list_indexes(const std::string&, const std::string&) override {
    not_here();
  }
  void create_index(const std::string&, const std::string&, const std::string&, const object&,
                    const object&) override {
    not_here();
  }
  void drop_index(const std::string&, const std::string&, const std::string&) override {
    not_here();
  }
  void close() override {}
};

// -- stub actors (the real interfaces; messages stay in their mailboxes for expect) ---------
//
// Each takes an argument it does not need: CAF 0.17 spawns a function-based actor without
// arguments through a null argument tuple that it dereferences (UBSan reports it).

struct stub_tag {};

/// A session that ignores close requests and quits on `closed`, as the real one does when
/// its connection has closed.
session_actor::behavior_type stub_session(session_actor::pointer self, stub_tag) {
  return {
      [](close_atom, std::uint16_t, std::string&) {},
      [](hub_atom, caf::actor&) {},
      [](broadcast_atom, std::string&) {},
      [self](closed_atom) { self->quit(); },
  };
}

/// A stub subscription that keeps the event batches it gets in `got` (when not null).
subscription_actor::behavior_type
recording_subscription(std::shared_ptr<std::vector<event_batch>> got) {
  return {
      [](join_atom, session_actor&, client_handle&) {},
      [](closed_atom, const session_actor&) {},
      [got](event_batch& b) {
        if (got) got->push_back(b);
      },
      [](position_atom, std::string&) {},
      [](replay_atom, std::uint64_t, event_batch&) {},
      [](replay_atom, std::uint64_t, std::string&) {},
      [](replay_atom, std::uint64_t, replay_feed&) {},
      [](replay_end_atom, std::uint64_t, feed_end&) {},
      [](replay_atom, std::uint64_t) {},
      [](metadata_change&) {},
      [](close_atom, close_reason&) {},
  };
}

subscription_actor::behavior_type stub_subscription(stub_tag) {
  return recording_subscription(nullptr);
}

broker_actor::behavior_type stub_broker(stub_tag) {
  return {
      [](subscribe_atom, session_actor&, client_handle&,
         subscription_spec&) -> caf::result<subscription_actor> {
        return caf::make_error(caf::sec::runtime_error, "stub broker");
      },
      [](watch_atom, const std::string&, const std::string&,
         const feed_listener_actor&) -> caf::result<watcher_actor> { return watcher_actor{}; },
      [](retire_atom, const subscription_actor&) {},
      [](retire_atom, const watcher_actor&) {},
  };
}

// -- values -------------------------------------------------------------------

object obj(std::string_view json) {
  return parse_json(json, "test").as_object();
}

/// A change event of collection db.c for document `id`.
change_event make_event(std::uint64_t seq, std::string op, int id) {
  change_event e;
  e.seq = seq;
  e.token = token_from_seq(seq);
  e.db = "db";
  e.coll = "c";
  e.operation = *operation_from_string(op);
  if (e.operation != operation_type::invalidate) {
    e.document_key = value(id);
    if (e.operation != operation_type::delete_)
      e.full_document = object{{"_id", value(id)}, {"n", value(id)}};
  }
  return e;
}

/// What the watcher makes of `events`: the batch a subscription should receive.
event_batch batch_of(std::vector<change_event> events) {
  return to_batch(std::move(events));
}

metadata_change metadata_of(std::string_view json) {
  return metadata_change{std::make_shared<const object>(obj(json))};
}

/// The WebSocket text frame a subscription builds for one event that passed its stages
/// unchanged.
std::string frame_of(const change_event& e) {
  std::string json;
  append_json(json, e.to_object());
  std::string frame;
  ws::append_frame(frame, ws::opcode::text, json);
  return frame;
}

/// A replay service that only records: the test plays the replay feed through the sink it
/// was given, and hands the subscription its feed with `opened`.
struct fake_replays final : replay_service {
  struct request {
    std::string token;
    std::shared_ptr<feed_sink> sink;
    std::function<void(std::shared_ptr<change_feed>)> opened;
  };
  std::vector<request> opens;
  std::vector<std::shared_ptr<change_feed>> cancelled;

  void open(std::string, std::string, std::string token, std::shared_ptr<feed_sink> sink,
            std::function<void(std::shared_ptr<change_feed>)> opened) override {
    opens.push_back({std::move(token), std::move(sink), std::move(opened)});
  }
  void cancel(std::shared_ptr<change_feed> feed) override { cancelled.push_back(std::move(feed)); }
  std::vector<std::shared_ptr<change_feed>> credits; // more() calls, in order
  void more(std::shared_ptr<change_feed> feed) override { credits.push_back(std::move(feed)); }

  struct read_request {
    find_query query;
    std::function<void(store_read)> done;
  };
  std::vector<read_request> reads;
  void read(std::string, std::string, find_query q, std::function<void(store_read)> done) override {
    reads.push_back({std::move(q), std::move(done)});
  }
};

std::int64_t frames_size(std::initializer_list<change_event> events) {
  std::int64_t n = 0;
  for (auto& e : events)
    n += static_cast<std::int64_t>(frame_of(e).size());
  return n;
}

// The stream of the subscription tests: only inserts pass.
constexpr std::string_view inserts_only =
    R"({"uri":"s","stages":[{"$match":{"operationType":"insert"}}]})";

subscription_spec make_spec(std::string coll, std::string key,
                            std::string_view definition = inserts_only) {
  subscription_spec spec;
  spec.db = "db";
  spec.coll = std::move(coll);
  spec.stream = "s";
  spec.key = std::move(key);
  spec.definition = obj(definition);
  spec.stages = pipeline::compile(spec.definition, object{}, server_vars{});
  return spec;
}

// -- fixture ------------------------------------------------------------------

struct test_config : caf::actor_system_config {
  test_config() { register_message_types(*this); }
};

/// The test's metrics, and two I/O shards whose event loops only the test runs. A base of
/// the fixture, so that it outlives the actor system: a subscription's state releases its
/// fan-out groups by posting to their shards, and the actors count on the metrics until
/// they terminate.
struct io_shards {
  metrics stats;
  io_shard shard0{0, stats};
  io_shard shard1{1, stats};

  ~io_shards() {
    drain(shard0);
    drain(shard1);
  }

  /// Runs what has been posted to `shard` so far, on this thread; returns how many handlers.
  static std::size_t drain(io_shard& shard) {
    shard.context().restart();
    return shard.context().poll();
  }
};

struct fixture : io_shards, test_coordinator_fixture<test_config> {
  fake_store db;
  std::vector<caf::actor> to_stop; // actors the test spawned, stopped at the end

  ~fixture() override {
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  template <class Handle> Handle keep(Handle h) {
    to_stop.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Subscriptions and watchers alive now (those the test's brokers spawned).
  std::int64_t live_subscriptions() const { return stats.subscriptions.load(); }
  std::int64_t live_watchers() const { return stats.upstream_feeds.load(); }

  /// A connection on `shard` that never completes a handshake: it only queues.
  std::shared_ptr<ws_connection> connection(io_shard& shard) {
    boost::asio::ip::tcp::socket socket(shard.context());
    return std::make_shared<ws_connection>(
        shard, std::move(socket), boost::beast::http::request<boost::beast::http::string_body>{},
        boost::beast::flat_buffer{}, ws_connection::options{});
  }

  session_actor session() { return keep(sys.spawn(stub_session, stub_tag{})); }

  /// A subscription (make_spec("c", "k"), a stub broker) whose resuming sessions' replays
  /// go to `replays`.
  subscription_actor resumable_subscription(fake_replays& replays) {
    auto bs = keep(sys.spawn(stub_broker, stub_tag{}));
    return keep(sys.spawn(subscription, bs, make_spec("c", "k"), &stats,
                          static_cast<replay_service*>(&replays)));
  }

  /// A subscription (make_spec("c", "k")) with a stub broker, and two sessions that have
  /// joined it, with connections on `shard_a` and `shard_b`; the joins are processed.
  struct joined_pair {
    broker_actor broker;
    subscription_actor sub;
    session_actor sa, sb;
    std::shared_ptr<ws_connection> ca, cb;
  };
  joined_pair subscription_with_two_sessions(io_shard& shard_a, io_shard& shard_b) {
    joined_pair j;
    j.broker = keep(sys.spawn(stub_broker, stub_tag{}));
    j.sub = keep(sys.spawn(subscription, j.broker, make_spec("c", "k"), &stats,
                           static_cast<replay_service*>(nullptr)));
    j.sa = session();
    j.sb = session();
    j.ca = connection(shard_a);
    j.cb = connection(shard_b);
    self->send(j.sub, join_atom::value, j.sa, client_handle{j.ca, std::nullopt});
    self->send(j.sub, join_atom::value, j.sb, client_handle{j.cb, std::nullopt});
    run();
    return j;
  }

  broker_actor spawn_broker() {
    return keep(sys.spawn(broker, static_cast<store*>(&db), &stats,
                          static_cast<replay_service*>(nullptr), broker_options{10, nullptr, {}}));
  }

  /// An exchange publishing to `directory`, and a presence actor of stream `key` linked to
  /// it, both with the default interval (250 ms).
  std::pair<presence_exchange_actor, presence_actor>
  presence_with_exchange(presence_directory& directory, const std::string& key) {
    const auto interval = std::chrono::milliseconds(250);
    auto x = keep(spawn_presence_exchange(sys, &directory, interval));
    auto p =
        keep(sys.spawn(presence, key, caf::actor_cast<presence_link_actor>(x), &stats, interval));
    return {x, p};
  }

  broker_state& state_of(const broker_actor& b) {
    return deref<broker_actor::stateful_base<broker_state>>(b).state;
  }

  /// Sends a subscribe request from `self` and lets the broker handle it (only that).
  void subscribe(const broker_actor& b, const session_actor& s, io_shard& shard,
                 subscription_spec spec) {
    self->request(b, caf::infinite, subscribe_atom::value, s,
                  client_handle{connection(shard), std::nullopt}, std::move(spec));
    expect((subscribe_atom, session_actor, client_handle, subscription_spec),
           from(self).to(b).with(_, s, _, _));
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(actors_tests, fixture)

// -- 1. broker: one feed per collection, one subscription per key ----------------------------

CAF_TEST(broker_opens_one_feed_per_collection_and_one_subscription_per_key) {
  auto b = spawn_broker();
  run();
  auto& st = state_of(b);

  // First subscribe for key k1: one feed, one watcher, one subscription; the session joins.
  auto s1 = session();
  subscribe(b, s1, shard0, make_spec("c", "k1"));
  CAF_REQUIRE_EQUAL(db.feeds.size(), 1u);
  CAF_CHECK_EQUAL(db.feeds[0]->db, "db");
  CAF_CHECK_EQUAL(db.feeds[0]->coll, "c");
  CAF_REQUIRE_EQUAL(st.watchers.size(), 1u);
  CAF_REQUIRE_EQUAL(st.subscriptions.size(), 1u);
  CAF_CHECK_EQUAL(live_watchers(), 1);
  CAF_CHECK_EQUAL(live_subscriptions(), 1);
  auto w = st.watchers.begin()->second.handle;
  auto sub = st.subscriptions.begin()->second.handle;
  expect((subscription_actor), from(b).to(self).with(sub));
  expect((attach_atom, feed_listener_actor), from(b).to(w).with(_, feed_listener_actor{sub}));
  CAF_CHECK_EQUAL(db.feeds[0]->starts, 1); // started by the watcher when it ran first
  expect((join_atom, session_actor, client_handle), from(b).to(sub).with(_, s1, _));
  // The watcher tells every new listener where it starts (here: unknown).
  expect((position_atom, std::string), from(_).to(sub));

  // Same key: the same subscription and watcher, no new feed.
  auto s2 = session();
  subscribe(b, s2, shard0, make_spec("c", "k1"));
  expect((subscription_actor), from(b).to(self).with(sub));
  expect((join_atom, session_actor, client_handle), from(b).to(sub).with(_, s2, _));
  disallow((attach_atom, feed_listener_actor), from(b).to(w));
  CAF_CHECK_EQUAL(db.feeds.size(), 1u);
  CAF_CHECK_EQUAL(st.watchers.size(), 1u);
  CAF_CHECK_EQUAL(st.subscriptions.size(), 1u);
  CAF_CHECK_EQUAL(live_subscriptions(), 1);

  // Another key on the same collection: a new subscription on the same watcher (one feed).
  auto s3 = session();
  subscribe(b, s3, shard1, make_spec("c", "k2"));
  CAF_CHECK_EQUAL(db.feeds.size(), 1u);
  CAF_CHECK_EQUAL(st.watchers.size(), 1u);
  CAF_REQUIRE_EQUAL(st.subscriptions.size(), 2u);
  CAF_REQUIRE_EQUAL(st.subscriptions_by_key.count("k2"), 1u);
  auto sub2 = st.subscriptions_by_key.at("k2");
  CAF_CHECK_NOT_EQUAL(sub2, sub);
  expect((subscription_actor), from(b).to(self).with(sub2));
  expect((attach_atom, feed_listener_actor), from(b).to(w).with(_, feed_listener_actor{sub2}));
  expect((join_atom, session_actor, client_handle), from(b).to(sub2).with(_, s3, _));
  expect((position_atom, std::string), from(_).to(sub2));
  CAF_CHECK_EQUAL(live_watchers(), 1);
  CAF_CHECK_EQUAL(live_subscriptions(), 2);

  // Another collection: a second feed and watcher.
  auto s4 = session();
  subscribe(b, s4, shard0, make_spec("d", "k3"));
  CAF_REQUIRE_EQUAL(db.feeds.size(), 2u);
  CAF_CHECK_EQUAL(db.feeds[1]->coll, "d");
  CAF_CHECK_EQUAL(st.watchers.size(), 2u);
  auto w2 = st.watchers_by_key.at(std::string("db") + '\0' + "d");
  CAF_CHECK_NOT_EQUAL(w2, w);
  auto sub3 = st.subscriptions_by_key.at("k3");
  expect((subscription_actor), from(b).to(self).with(sub3));
  expect((attach_atom, feed_listener_actor), from(b).to(w2).with(_, feed_listener_actor{sub3}));
  expect((join_atom, session_actor, client_handle), from(b).to(sub3).with(_, s4, _));
  expect((position_atom, std::string), from(_).to(sub3));
  CAF_CHECK_EQUAL(live_watchers(), 2);
  CAF_CHECK_EQUAL(live_subscriptions(), 3);
  CAF_CHECK_EQUAL(db.feeds[0]->cancels, 0);
  CAF_CHECK_EQUAL(db.feeds[1]->cancels, 0);
}

CAF_TEST(broker_answers_an_error_when_the_feed_cannot_be_opened) {
  auto b = spawn_broker();
  run();
  auto s = session();
  subscribe(b, s, shard0, make_spec("unwatchable", "k"));
  expect((caf::error), from(b).to(self));
  CAF_CHECK_EQUAL(state_of(b).watchers.size(), 0u);
  CAF_CHECK_EQUAL(state_of(b).subscriptions.size(), 0u);
  CAF_CHECK_EQUAL(live_watchers(), 0);
  CAF_CHECK_EQUAL(live_subscriptions(), 0);

  // The broker is still there for the next one.
  auto s2 = session();
  subscribe(b, s2, shard0, make_spec("c", "k"));
  CAF_REQUIRE_EQUAL(state_of(b).subscriptions.size(), 1u);
  expect((subscription_actor),
         from(b).to(self).with(state_of(b).subscriptions.begin()->second.handle));
}

// -- 2. broker: teardown when the last session is gone ---------------------------------------

CAF_TEST(
    broker_stops_a_subscription_after_its_last_session_and_a_watcher_after_its_last_subscription) {
  auto b = spawn_broker();
  run();
  auto& st = state_of(b);
  auto s1 = session();
  auto s2 = session();
  auto s3 = session();
  for (auto& [s, key] : {std::pair{s1, "k1"}, std::pair{s2, "k1"}, std::pair{s3, "k2"}}) {
    subscribe(b, s, shard0, make_spec("c", key));
    expect((subscription_actor), from(b).to(self));
  }
  run();
  CAF_REQUIRE_EQUAL(db.feeds.size(), 1u);
  auto feed = db.feeds[0];
  CAF_REQUIRE_EQUAL(st.watchers.size(), 1u);
  auto w = st.watchers.begin()->second.handle;
  auto sub1 = st.subscriptions_by_key.at("k1");
  auto sub2 = st.subscriptions_by_key.at("k2");
  self->monitor(sub1);
  self->monitor(sub2);
  self->monitor(w);

  // s1 quits (its connection closed): sub1 still has s2.
  self->send(s1, closed_atom::value);
  expect((closed_atom), from(self).to(s1));
  expect((caf::down_msg),
         from(_).to(b).with(caf::down_msg{s1.address(), caf::exit_reason::normal}));
  expect((closed_atom, session_actor), from(b).to(sub1).with(_, s1));
  disallow((caf::exit_msg), from(b).to(sub1));
  disallow((detach_atom, feed_listener_actor), from(b).to(w));
  CAF_CHECK_EQUAL(st.subscriptions.size(), 2u);
  CAF_CHECK_EQUAL(live_subscriptions(), 2);

  // s2 is killed: sub1's last session. sub1 is told, detached from its watcher, and stopped;
  // the watcher still has sub2.
  caf::anon_send_exit(s2, caf::exit_reason::user_shutdown);
  expect((caf::exit_msg), from(_).to(s2));
  expect((caf::down_msg),
         from(_).to(b).with(caf::down_msg{s2.address(), caf::exit_reason::user_shutdown}));
  expect((closed_atom, session_actor), from(b).to(sub1).with(_, s2));
  expect((caf::exit_msg), from(b).to(sub1));
  expect((caf::down_msg),
         from(_).to(self).with(caf::down_msg{sub1.address(), caf::exit_reason::user_shutdown}));
  expect((detach_atom, feed_listener_actor), from(b).to(w).with(_, feed_listener_actor{sub1}));
  disallow((caf::exit_msg), from(b).to(w));
  CAF_CHECK_EQUAL(st.subscriptions.size(), 1u);
  CAF_CHECK_EQUAL(st.subscriptions_by_key.count("k1"), 0u);
  CAF_CHECK_EQUAL(st.watchers.size(), 1u);
  CAF_CHECK_EQUAL(live_subscriptions(), 1);
  CAF_CHECK_EQUAL(feed->cancels, 0);

  // s3 quits: sub2's last session, and the watcher's last subscription: both stop, and the
  // watcher cancels its feed.
  self->send(s3, closed_atom::value);
  expect((closed_atom), from(self).to(s3));
  expect((caf::down_msg),
         from(_).to(b).with(caf::down_msg{s3.address(), caf::exit_reason::normal}));
  expect((closed_atom, session_actor), from(b).to(sub2).with(_, s3));
  expect((caf::exit_msg), from(b).to(sub2));
  expect((caf::down_msg),
         from(_).to(self).with(caf::down_msg{sub2.address(), caf::exit_reason::user_shutdown}));
  expect((detach_atom, feed_listener_actor), from(b).to(w).with(_, feed_listener_actor{sub2}));
  CAF_CHECK_EQUAL(feed->cancels, 0);
  expect((caf::exit_msg), from(b).to(w));
  expect((caf::down_msg),
         from(_).to(self).with(caf::down_msg{w.address(), caf::exit_reason::user_shutdown}));
  CAF_CHECK_EQUAL(feed->cancels, 1);
  CAF_CHECK(st.subscriptions.empty());
  CAF_CHECK(st.subscriptions_by_key.empty());
  CAF_CHECK(st.watchers.empty());
  CAF_CHECK(st.watchers_by_key.empty());
  CAF_CHECK(st.session_to_subscription.empty());
  run();
  CAF_CHECK_EQUAL(live_subscriptions(), 0);
  CAF_CHECK_EQUAL(live_watchers(), 0);

  // A new session for k1 gets a new feed, watcher and subscription.
  auto s4 = session();
  subscribe(b, s4, shard0, make_spec("c", "k1"));
  CAF_CHECK_EQUAL(db.feeds.size(), 2u);
  auto sub3 = st.subscriptions_by_key.at("k1");
  CAF_CHECK_NOT_EQUAL(sub3, sub1);
  expect((subscription_actor), from(b).to(self).with(sub3));
  run();
  CAF_CHECK_EQUAL(live_subscriptions(), 1);
  CAF_CHECK_EQUAL(live_watchers(), 1);
}

// -- 3. watcher ---------------------------------------------------------------------------

CAF_TEST(watcher_feed_sends_events_and_metadata_to_its_listeners_in_order_and_reports_a_lost_feed) {
  auto bs = keep(sys.spawn(stub_broker, stub_tag{}));
  auto rec = std::make_shared<feed_record>();
  auto w =
      keep(sys.spawn(watcher, bs, std::shared_ptr<change_feed>(std::make_unique<fake_feed>(rec)),
                     std::string("c"), &stats));
  auto sa = keep(sys.spawn(stub_subscription, stub_tag{}));
  auto sb = keep(sys.spawn(stub_subscription, stub_tag{}));
  self->send(w, attach_atom::value, feed_listener_actor{sa});
  self->send(w, attach_atom::value, feed_listener_actor{sb});
  run();
  CAF_CHECK_EQUAL(rec->starts, 1);
  CAF_REQUIRE(rec->sink != nullptr);

  // What the store pushes, as the writer thread would: two batches, a metadata change
  // between them. They go from the feed's sink to each listener (no relay through the
  // watcher), in order, each batch made once and shared by both.
  std::vector<change_event> first{make_event(1, "insert", 1), make_event(2, "update", 1)};
  std::vector<change_event> second{make_event(3, "delete", 1)};
  auto meta = metadata_of(R"({"streams":[{"uri":"s","stages":[]}]})");
  rec->sink->events(first);
  rec->sink->metadata(obj(R"({"streams":[{"uri":"s","stages":[]}]})"));
  rec->sink->events(second);
  disallow((closed_atom, feed_end), from(_).to(w));
  for (auto& s : {sa, sb}) {
    expect((event_batch), from(_).to(s).with(batch_of(first)));
    expect((metadata_change), from(_).to(s).with(meta));
    expect((event_batch), from(_).to(s).with(batch_of(second)));
    disallow((event_batch), from(_).to(s));
  }
  CAF_CHECK_EQUAL(stats.events_received.load(), 3u);

  // Detached: sb gets nothing more.
  self->send(w, detach_atom::value, feed_listener_actor{sb});
  expect((detach_atom, feed_listener_actor), from(self).to(w).with(_, feed_listener_actor{sb}));
  std::vector<change_event> third{make_event(4, "insert", 2)};
  rec->sink->events(third);
  expect((event_batch), from(_).to(sa).with(batch_of(third)));
  disallow((event_batch), from(_).to(sb));

  // A position the feed tells (no event carries it) is sent on, in order; one before the
  // last event's token is not.
  rec->sink->position("00000000000000ff");
  rec->sink->position("0000000000000001");
  expect((position_atom, std::string), from(_).to(sa).with(_, std::string("00000000000000ff")));
  disallow((position_atom, std::string), from(_).to(sa));

  // A listener attached now starts there.
  auto sc = keep(sys.spawn(stub_subscription, stub_tag{}));
  self->send(w, attach_atom::value, feed_listener_actor{sc});
  expect((attach_atom, feed_listener_actor), from(self).to(w));
  expect((position_atom, std::string), from(_).to(sc).with(_, std::string("00000000000000ff")));

  // The feed ends with its history lost: the attached subscriptions close with 4410 (the
  // clients must reload), the broker retires the watcher (which stays until the broker
  // stops it: the feed is not cancelled yet).
  rec->sink->lost({feed_end_cause::history_lost, "history lost: token 42"});
  const close_reason lost{close_cause::history_lost, {}};
  expect((close_atom, close_reason), from(_).to(sa).with(_, lost));
  expect((close_atom, close_reason), from(_).to(sc).with(_, lost));
  CAF_CHECK_EQUAL(lost.code(), 4410);
  CAF_CHECK_EQUAL(lost.text(), "history lost");
  disallow((close_atom, close_reason), from(_).to(sb));
  expect((closed_atom, feed_end),
         from(_).to(w).with(_, feed_end{feed_end_cause::history_lost, "history lost: token 42"}));
  expect((retire_atom, watcher_actor), from(w).to(bs).with(_, w));
  CAF_CHECK_EQUAL(rec->cancels, 0);

  // A listener that attaches after the end (the broker had not retired the watcher yet) is
  // closed at once instead of waiting for events that never come.
  auto sd = keep(sys.spawn(stub_subscription, stub_tag{}));
  self->send(w, attach_atom::value, feed_listener_actor{sd});
  expect((attach_atom, feed_listener_actor), from(self).to(w));
  expect((close_atom, close_reason), from(_).to(sd).with(_, lost));

  // Stopped: the feed is cancelled on the way out, once.
  self->monitor(w);
  caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  expect((caf::exit_msg), from(_).to(w));
  expect((caf::down_msg),
         from(_).to(self).with(caf::down_msg{w.address(), caf::exit_reason::user_shutdown}));
  CAF_CHECK_EQUAL(rec->cancels, 1);
  run();
  CAF_CHECK_EQUAL(rec->cancels, 1);
}

CAF_TEST(watcher_feed_shares_one_batch_between_listeners_and_moves_the_documents_into_it) {
  auto bs = keep(sys.spawn(stub_broker, stub_tag{}));
  auto rec = std::make_shared<feed_record>();
  auto w =
      keep(sys.spawn(watcher, bs, std::shared_ptr<change_feed>(std::make_unique<fake_feed>(rec)),
                     std::string("c"), &stats));
  auto got_a = std::make_shared<std::vector<event_batch>>();
  auto got_b = std::make_shared<std::vector<event_batch>>();
  auto sa = keep(sys.spawn(recording_subscription, got_a));
  auto sb = keep(sys.spawn(recording_subscription, got_b));
  self->send(w, attach_atom::value, feed_listener_actor{sa});
  self->send(w, attach_atom::value, feed_listener_actor{sb});
  run();
  CAF_REQUIRE(rec->sink != nullptr);

  // A document's string buffer, which the batch must take over rather than copy.
  std::vector<change_event> batch{make_event(1, "insert", 1)};
  std::string big(4096, 'x');
  batch[0].full_document->emplace_back("big", value(std::move(big)));
  const char* buffer = batch[0].full_document->back().second.as_string().data();
  rec->sink->events(std::move(batch));

  expect((event_batch), from(_).to(sa).with(_));
  expect((event_batch), from(_).to(sb).with(_));
  CAF_REQUIRE_EQUAL(got_a->size(), 1u);
  CAF_REQUIRE_EQUAL(got_b->size(), 1u);
  auto events = got_a->front().events;
  CAF_REQUIRE(events != nullptr);
  CAF_CHECK_EQUAL(events.get(), got_b->front().events.get());
  const value* doc = find_field(events->front(), "fullDocument");
  CAF_REQUIRE(doc != nullptr);
  CAF_CHECK_EQUAL(static_cast<const void*>(find_field(doc->as_object(), "big")->as_string().data()),
                  static_cast<const void*>(buffer));
}

// -- 4. subscription ----------------------------------------------------------------------

CAF_TEST(subscription_fans_out_to_each_shard_and_ignores_an_unchanged_definition) {
  auto [bs, sub, sa, sb, ca, cb] = subscription_with_two_sessions(shard0, shard1);
  CAF_CHECK_EQUAL(drain(shard0), 1u); // the connection joins its shard's group
  CAF_CHECK_EQUAL(drain(shard1), 1u);

  // One batch: the insert passes the stream's $match, the update does not; one post per
  // shard, the same frame queued on each connection.
  auto ins1 = make_event(1, "insert", 1);
  self->send(sub, batch_of({ins1, make_event(2, "update", 1)}));
  run();
  CAF_CHECK_EQUAL(drain(shard0), 1u);
  CAF_CHECK_EQUAL(drain(shard1), 1u);
  auto bytes1 = static_cast<std::int64_t>(frame_of(ins1).size());
  CAF_CHECK_EQUAL(ca->queued_bytes(), bytes1);
  CAF_CHECK_EQUAL(cb->queued_bytes(), bytes1);

  // A batch nothing passes: no post at all.
  self->send(sub, batch_of({make_event(3, "delete", 1)}));
  run();
  CAF_CHECK_EQUAL(drain(shard0), 0u);
  CAF_CHECK_EQUAL(drain(shard1), 0u);

  // A metadata change that leaves this stream's definition as it was: ignored.
  self->send(sub, metadata_of(R"({"streams":[{"uri":"other","stages":[]},)" +
                              std::string(inserts_only) + "]}"));
  expect((metadata_change), from(self).to(sub));
  disallow((close_atom, std::uint16_t, std::string), from(sub).to(sa));
  disallow((close_atom, std::uint16_t, std::string), from(sub).to(sb));
  disallow((retire_atom, subscription_actor), from(sub).to(bs));

  // ... and the subscription still delivers.
  auto ins4 = make_event(4, "insert", 2);
  self->send(sub, batch_of({ins4}));
  run();
  CAF_CHECK_EQUAL(drain(shard0), 1u);
  CAF_CHECK_EQUAL(drain(shard1), 1u);
  auto bytes4 = static_cast<std::int64_t>(frame_of(ins4).size());
  CAF_CHECK_EQUAL(ca->queued_bytes(), bytes1 + bytes4);
  CAF_CHECK_EQUAL(cb->queued_bytes(), bytes1 + bytes4);

  // sa leaves: no more posts to shard 0, where it was the only session.
  self->send(sub, closed_atom::value, sa);
  run();
  self->send(sub, batch_of({make_event(5, "insert", 3)}));
  run();
  CAF_CHECK_EQUAL(drain(shard0), 0u);
  CAF_CHECK_EQUAL(drain(shard1), 1u);
  CAF_CHECK_EQUAL(ca->queued_bytes(), bytes1 + bytes4);
  CAF_CHECK_GREATER(cb->queued_bytes(), bytes1 + bytes4);
}

CAF_TEST(subscription_closes_its_sessions_and_retires_when_its_definition_changed) {
  auto [bs, sub, sa, sb, ca, cb] = subscription_with_two_sessions(shard0, shard0);
  drain(shard0);

  self->send(sub, metadata_of(R"({"streams":[{"uri":"s","stages":[{"$match":{"x":1}}]}]})"));
  expect((metadata_change), from(self).to(sub));
  for (auto& s : {sa, sb})
    expect((close_atom, std::uint16_t, std::string),
           from(sub).to(s).with(_, std::uint16_t{1000}, std::string("stream definition changed")));
  expect((retire_atom, subscription_actor), from(sub).to(bs).with(_, sub));

  // Closed: later events are not delivered, later definitions not looked at...
  self->send(sub, batch_of({make_event(1, "insert", 1)}));
  self->send(sub, metadata_of(R"({"streams":[]})"));
  run();
  CAF_CHECK_EQUAL(drain(shard0), 0u);
  CAF_CHECK_EQUAL(ca->queued_bytes(), 0);

  // ... and a session that joins now is told to close at once, and not added.
  auto sc = session();
  self->send(sub, join_atom::value, sc, client_handle{connection(shard0), std::nullopt});
  expect((join_atom, session_actor, client_handle), from(self).to(sub).with(_, sc, _));
  expect((close_atom, std::uint16_t, std::string),
         from(sub).to(sc).with(_, std::uint16_t{1000}, std::string("stream definition changed")));
  CAF_CHECK_EQUAL(drain(shard0), 0u);
}

CAF_TEST(subscription_closes_its_sessions_and_retires_when_its_definition_was_removed) {
  auto bs = keep(sys.spawn(stub_broker, stub_tag{}));
  auto sub = keep(sys.spawn(subscription, bs, make_spec("c", "k"), &stats,
                            static_cast<replay_service*>(nullptr)));
  auto sa = session();
  self->send(sub, join_atom::value, sa, client_handle{connection(shard0), std::nullopt});
  run();
  self->send(sub, metadata_of(R"({"streams":[{"uri":"other","stages":[]}]})"));
  expect((metadata_change), from(self).to(sub));
  expect((close_atom, std::uint16_t, std::string),
         from(sub).to(sa).with(_, std::uint16_t{1000}, std::string("stream definition changed")));
  expect((retire_atom, subscription_actor), from(sub).to(bs).with(_, sub));
}

CAF_TEST(subscription_closes_its_sessions_and_retires_when_the_collection_was_dropped) {
  auto [bs, sub, sa, sb, ca, cb] = subscription_with_two_sessions(shard0, shard1);
  drain(shard0);
  drain(shard1);

  // The events before the invalidate still go out; then every session closes with 1000.
  auto ins = make_event(1, "insert", 1);
  self->send(sub, batch_of({ins, make_event(2, "invalidate", 0)}));
  expect((event_batch), from(self).to(sub));
  for (auto& s : {sa, sb})
    expect((close_atom, std::uint16_t, std::string),
           from(sub).to(s).with(_, std::uint16_t{1000}, std::string("collection dropped")));
  expect((retire_atom, subscription_actor), from(sub).to(bs).with(_, sub));
  CAF_CHECK_EQUAL(drain(shard0), 1u);
  CAF_CHECK_EQUAL(drain(shard1), 1u);
  auto bytes = static_cast<std::int64_t>(frame_of(ins).size());
  CAF_CHECK_EQUAL(ca->queued_bytes(), bytes);
  CAF_CHECK_EQUAL(cb->queued_bytes(), bytes);

  // Nothing after it.
  self->send(sub, batch_of({make_event(3, "insert", 2)}));
  run();
  CAF_CHECK_EQUAL(drain(shard0), 0u);
  CAF_CHECK_EQUAL(ca->queued_bytes(), bytes);
}

CAF_TEST(subscription_passes_a_close_from_its_watcher_to_every_session) {
  auto [bs, sub, sa, sb, ca, cb] = subscription_with_two_sessions(shard0, shard1);
  self->send(sub, close_atom::value, close_reason{close_cause::feed_ended, "x"});
  expect((close_atom, close_reason), from(self).to(sub));
  for (auto& s : {sa, sb})
    expect((close_atom, std::uint16_t, std::string),
           from(sub).to(s).with(_, std::uint16_t{1011}, std::string("change feed ended: x")));
  disallow((retire_atom, subscription_actor), from(sub).to(bs));
}

CAF_TEST(a_resuming_session_gets_the_replay_to_the_boundary_then_the_held_events_then_live_once) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  // The watcher tells where the subscription's events start.
  self->send(sub, position_atom::value, token_from_seq(5));
  auto s = session();
  auto c = connection(shard0);
  self->send(sub, join_atom::value, s, client_handle{c, token_from_seq(2)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  CAF_CHECK_EQUAL(replays.opens[0].token, token_from_seq(2));

  // A live event while the replay runs is held, not sent.
  auto e3 = make_event(3, "insert", 3), e4 = make_event(4, "insert", 4),
       e5 = make_event(5, "insert", 5), e6 = make_event(6, "insert", 6),
       e7 = make_event(7, "insert", 7), e8 = make_event(8, "insert", 8);
  self->send(sub, batch_of({e6}));
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), 0);

  // The replay feed reads on past the boundary (5): it sends 3, 4, 5; 6 (held) and 7 (still
  // on its way live) are not sent from the replay. Then the held 6 goes out and the
  // session is live.
  replays.opens[0].sink->events({e3, e4, e5, e6, e7});
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), frames_size({e3, e4, e5, e6}));
  // The replay feed, opened after the handover, is cancelled at once.
  CAF_CHECK_EQUAL(replays.cancelled.size(), 0u);
  replays.opens[0].opened(nullptr);
  run();
  CAF_CHECK_EQUAL(replays.cancelled.size(), 1u);

  // 7 and 8 arrive live, once each.
  self->send(sub, batch_of({e7}));
  self->send(sub, batch_of({e8}));
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), frames_size({e3, e4, e5, e6, e7, e8}));
}

CAF_TEST(a_replay_ahead_of_the_live_events_sends_nothing_past_the_boundary) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  self->send(sub, position_atom::value, token_from_seq(5));
  auto c = connection(shard0);
  self->send(sub, join_atom::value, session(), client_handle{c, token_from_seq(2)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  // The replay has read 6 and 7 before they reached the subscription live: it sends up
  // to the boundary only, and 6 and 7 come live, once each.
  auto e3 = make_event(3, "insert", 3), e4 = make_event(4, "insert", 4),
       e5 = make_event(5, "insert", 5), e6 = make_event(6, "insert", 6),
       e7 = make_event(7, "insert", 7);
  replays.opens[0].sink->events({e3, e4, e5, e6, e7});
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), frames_size({e3, e4, e5}));
  self->send(sub, batch_of({e6, e7}));
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), frames_size({e3, e4, e5, e6, e7}));
}

CAF_TEST(a_resuming_session_hands_over_at_a_position_the_replay_reports) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  self->send(sub, position_atom::value, token_from_seq(9));
  auto s = session();
  auto c = connection(shard0);
  self->send(sub, join_atom::value, s, client_handle{c, token_from_seq(4)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  // Nothing of this collection after 4 up to 9 (other collections moved the log): the
  // replay says where it is, and the session is live without another event.
  replays.opens[0].sink->position(token_from_seq(9));
  run();
  auto e10 = make_event(10, "insert", 10);
  self->send(sub, batch_of({e10}));
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), frames_size({e10}));
}

CAF_TEST(a_resuming_session_at_the_subscriptions_position_needs_no_replay) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  self->send(sub, position_atom::value, token_from_seq(5));
  auto c = connection(shard0);
  self->send(sub, join_atom::value, session(), client_handle{c, token_from_seq(5)});
  run();
  CAF_CHECK_EQUAL(replays.opens.size(), 0u);
  auto e6 = make_event(6, "insert", 6);
  self->send(sub, batch_of({e6}));
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), frames_size({e6}));
}

CAF_TEST(a_resume_token_older_than_the_history_closes_the_websocket_with_4410) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  self->send(sub, position_atom::value, token_from_seq(50));
  auto s = session();
  auto c = connection(shard0);
  self->send(sub, join_atom::value, s, client_handle{c, token_from_seq(1)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  // Live events held meanwhile are not sent to it.
  self->send(sub, batch_of({make_event(51, "insert", 51)}));
  replays.opens[0].sink->lost(
      {feed_end_cause::history_lost, "history lost: older than the retained change log"});
  expect((event_batch), from(self).to(sub));
  expect((replay_end_atom, std::uint64_t, feed_end), from(_).to(sub));
  expect((close_atom, std::uint16_t, std::string),
         from(sub).to(s).with(_, std::uint16_t{4410}, std::string("history lost")));
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), 0);
}

CAF_TEST(an_sse_history_lost_before_the_stream_knows_its_position_waits_for_it) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  boost::asio::ip::tcp::socket socket(shard0.context());
  auto c = std::make_shared<sse_connection>(shard0, connection_stream(std::move(socket)), 11,
                                            std::vector<std::pair<std::string, std::string>>{},
                                            push_connection::options{});
  // The session joins before the watcher has told the subscription where the stream is.
  self->send(sub, join_atom::value, session(), client_handle{c, token_from_seq(1)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  const std::string why = "history lost: older than the retained change log";
  replays.opens[0].sink->lost({feed_end_cause::history_lost, why});
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), 0); // an id-less history-lost would tell the client nothing
  // The position comes: the event carries it.
  self->send(sub, position_atom::value, token_from_seq(50));
  run();
  drain(shard0);
  std::string event = "id: " + token_from_seq(50) + "\nevent: history-lost\ndata: ";
  append_json(event, value(object{{"message", value(why)}}));
  event += "\n\n";
  CAF_CHECK_EQUAL(c->queued_bytes(), static_cast<std::int64_t>(event.size()));
  // Then it is live.
  auto e51 = make_event(51, "insert", 51);
  self->send(sub, batch_of({e51}));
  run();
  drain(shard0);
  CAF_CHECK_GREATER(c->queued_bytes(), static_cast<std::int64_t>(event.size()));
}

CAF_TEST(a_session_that_leaves_mid_replay_gets_nothing_more_and_its_replay_is_cancelled) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  self->send(sub, position_atom::value, token_from_seq(5));
  auto s = session();
  auto c = connection(shard0);
  self->send(sub, join_atom::value, s, client_handle{c, token_from_seq(2)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  auto e3 = make_event(3, "insert", 3), e6 = make_event(6, "insert", 6);
  self->send(sub, batch_of({e6}));
  self->send(sub, closed_atom::value, s);
  run();
  // The replay's events and its end reach a subscription that no longer knows the session,
  // and the replay feed, opened late, is cancelled at once.
  replays.opens[0].sink->events({e3});
  replays.opens[0].sink->position(token_from_seq(5));
  replays.opens[0].opened(nullptr);
  run();
  drain(shard0);
  CAF_CHECK_EQUAL(c->queued_bytes(), 0);
  CAF_CHECK_EQUAL(replays.cancelled.size(), 1u);
  disallow((close_atom, std::uint16_t, std::string), from(sub).to(s));
}

namespace {

/// A change feed that does nothing (what the fake replay service hands a subscription).
struct idle_feed final : change_feed {
  void start(std::shared_ptr<feed_sink>) override {}
  std::string position() const override { return {}; }
  void cancel() override {}
};

} // namespace

CAF_TEST(a_paced_replay_goes_on_only_once_the_connection_has_drained) {
  fake_replays replays;
  auto sub = resumable_subscription(replays);
  self->send(sub, position_atom::value, token_from_seq(1000000));
  auto c = connection(shard0);
  auto s = session();
  self->send(sub, join_atom::value, s, client_handle{c, token_from_seq(1)});
  run();
  CAF_REQUIRE_EQUAL(replays.opens.size(), 1u);
  auto& open = replays.opens[0];
  // Parts of a sixteenth of the connection's queue limit.
  CAF_CHECK_EQUAL(open.sink->catch_up_bytes(), static_cast<std::size_t>(c->queue_limit() / 16));
  // A small part, before the subscription knows its feed: the queue is below a quarter of
  // its limit, so the next part is asked for as soon as the feed is known.
  open.sink->events({make_event(2, "insert", 2)});
  run();
  drain(shard0);
  run();
  CAF_CHECK_EQUAL(replays.credits.size(), 0u);
  auto feed = std::make_shared<idle_feed>();
  open.opened(feed);
  run();
  CAF_REQUIRE_EQUAL(replays.credits.size(), 1u);
  CAF_CHECK(replays.credits[0] == feed);
  // Another small part: asked for at once.
  open.sink->events({make_event(3, "insert", 3)});
  run();
  drain(shard0);
  run();
  CAF_CHECK_EQUAL(replays.credits.size(), 2u);
  // A part that leaves the queue over a quarter of its limit (the client does not read): no
  // more is asked for, and the connection is not closed as a slow consumer.
  std::vector<change_event> part;
  const auto one = frames_size({make_event(4, "insert", 4)});
  for (std::uint64_t seq = 4; static_cast<std::int64_t>(part.size()) * one < c->queue_limit() / 2;
       ++seq)
    part.push_back(make_event(seq, "insert", static_cast<int>(seq)));
  open.sink->events(std::move(part));
  run();
  drain(shard0);
  run();
  CAF_CHECK_GREATER(c->queued_bytes(), c->queue_limit() / 4);
  CAF_CHECK(!c->finished());
  CAF_CHECK_EQUAL(replays.credits.size(), 2u);
  // The session leaves: its feed is cancelled.
  self->send(sub, closed_atom::value, s);
  run();
  CAF_REQUIRE_EQUAL(replays.cancelled.size(), 1u);
  CAF_CHECK(replays.cancelled[0] == feed);
}

// -- live queries -------------------------------------------------------------------------

namespace {

/// A live query of db.c: documents sorted by `n`, a window of `size`.
subscription_spec live_spec(std::size_t size) {
  auto q = std::make_shared<live_query_spec>();
  q->sort_doc = object{{"n", value(1)}, {"_id", value(1)}};
  q->order = sort_spec::parse(q->sort_doc);
  q->size = size;
  subscription_spec spec;
  spec.db = "db";
  spec.coll = "c";
  spec.key = q->key();
  spec.live = std::move(q);
  return spec;
}

/// `json` as one WebSocket text frame: its size on a connection's queue.
std::int64_t text_frame_size(const std::string& json) {
  std::string frame;
  ws::append_frame(frame, ws::opcode::text, json);
  return static_cast<std::int64_t>(frame.size());
}

} // namespace

CAF_TEST(a_live_query_reads_once_its_feed_has_started_and_applies_what_came_meanwhile_on_top) {
  fake_replays replays;
  auto b = keep(sys.spawn(broker, static_cast<store*>(&db), &stats,
                          static_cast<replay_service*>(&replays), broker_options{1, nullptr, {}}));
  run();
  auto s = session();
  auto c = connection(shard0);
  self->request(b, caf::infinite, subscribe_atom::value, s, client_handle{c, std::nullopt},
                live_spec(2));
  expect((subscribe_atom, session_actor, client_handle, subscription_spec),
         from(self).to(b).with(_, s, _, _));
  auto& st = state_of(b);
  CAF_REQUIRE_EQUAL(st.subscriptions.size(), 1u);
  auto lq = st.subscriptions.begin()->second.handle;
  auto w = st.watchers.begin()->second.handle;
  CAF_CHECK_EQUAL(stats.live_queries.load(), 1);
  CAF_CHECK_EQUAL(live_subscriptions(), 0);
  expect((subscription_actor), from(b).to(self).with(lq));
  expect((attach_atom, feed_listener_actor), from(b).to(w).with(_, feed_listener_actor{lq}));
  expect((join_atom, session_actor, client_handle), from(b).to(lq).with(_, s, _));
  // No read before the feed has said where it starts: a commit between the read and the
  // feed's start would be in neither.
  CAF_CHECK_EQUAL(replays.reads.size(), 0u);
  expect((position_atom, std::string), from(_).to(lq));
  CAF_REQUIRE_EQUAL(replays.reads.size(), 1u);
  CAF_CHECK_EQUAL(replays.reads[0].query.limit, 2 + 4); // the window and the spare ones
  CAF_CHECK(value(replays.reads[0].query.sort_doc) ==
            value(object{{"n", value(1)}, {"_id", value(1)}}));

  // Commits 3 and 4 arrive while the read runs: held; the client waits for its init, and so
  // does a second one that joins meanwhile (on another I/O thread).
  auto s_b = session();
  auto c_b = connection(shard1);
  self->send(lq, join_atom::value, s_b, client_handle{c_b, std::nullopt});
  self->send(lq, batch_of({make_event(3, "insert", 3), make_event(4, "insert", 4)}));
  run();
  drain(shard0);
  drain(shard1);
  CAF_CHECK_EQUAL(c->queued_bytes(), 0);
  CAF_CHECK_EQUAL(c_b->queued_bytes(), 0);
  // The read saw commit 3, not 4: 4 applies on top (the window of 2 keeps 1 and 3), and the
  // init says so.
  replays.reads[0].done(store_read{
      {obj(R"({"_id":1,"n":1})"), obj(R"({"_id":3,"n":3})")}, token_from_seq(3), std::nullopt});
  run();
  drain(shard0);
  const std::string init =
      R"({"init":[{"_id":1,"n":1},{"_id":3,"n":3}],"token":")" + token_from_seq(4) + "\"}";
  drain(shard1);
  CAF_CHECK_EQUAL(c->queued_bytes(), text_frame_size(init));
  CAF_CHECK_EQUAL(c_b->queued_bytes(), text_frame_size(init));
  CAF_CHECK_EQUAL(stats.live_frames.load(), 1u); // built once for both

  // A commit that moves the window: one diff frame (a second session on the same query gets
  // the init at 5 and then shares the frames).
  self->send(lq, batch_of({make_event(5, "insert", 0)}));
  run();
  drain(shard0);
  const std::string diff =
      R"({"diff":[{"op":"remove","at":1},{"op":"add","at":0,"doc":{"_id":0,"n":0}}],"token":")" +
      token_from_seq(5) + "\"}";
  drain(shard1);
  CAF_CHECK_EQUAL(c->queued_bytes(), text_frame_size(init) + text_frame_size(diff));
  CAF_CHECK_EQUAL(c_b->queued_bytes(), text_frame_size(init) + text_frame_size(diff));
  CAF_CHECK_EQUAL(stats.live_frames.load(), 2u);

  // A second, different live query of the collection is past the limit (1): an error naming
  // the option, and nothing spawned.
  auto s2 = session();
  self->request(b, caf::infinite, subscribe_atom::value, s2,
                client_handle{connection(shard0), std::nullopt}, live_spec(3));
  expect((subscribe_atom, session_actor, client_handle, subscription_spec),
         from(self).to(b).with(_, s2, _, _));
  expect((caf::error), from(b).to(self));
  CAF_CHECK_EQUAL(stats.live_queries.load(), 1);
  CAF_CHECK_EQUAL(
      stats.limit_refusals[static_cast<std::size_t>(limit::live_queries_per_collection)].load(),
      1u);
}

// -- presence -----------------------------------------------------------------------------

CAF_TEST(presence_tells_its_listeners_of_joins_and_leaves_once_per_interval) {
  presence_directory directory;
  const std::string key = presence_directory::key("db", "c", "s");
  auto [x, p] = presence_with_exchange(directory, key);
  auto join = [&](const session_actor& s, std::string id, std::optional<std::string> nick,
                  std::shared_ptr<ws_connection> conn) {
    presence_join j;
    j.id = std::move(id);
    if (nick) j.info = object{{"nick", value(*nick)}};
    j.events = conn != nullptr;
    self->send(p, join_atom::value, s, std::move(j), client_handle{std::move(conn), {}});
  };
  // (sched.run() handles messages only; sched.trigger_timeouts() ends an interval.)
  // A listener (not a member) gets the members known so far: none.
  auto l = session();
  auto lc = connection(shard0);
  join(l, "n-1", std::nullopt, lc);
  sched.run();
  drain(shard0);
  const std::string empty = R"({"presence":{"joined":[],"left":[]}})";
  CAF_CHECK_EQUAL(lc->queued_bytes(), text_frame_size(empty));
  // Three members join and one leaves, all before the actor runs: no frame went out in the
  // last interval, so one goes at once, with the two that stayed.
  auto a = session(), b = session(), c = session();
  join(a, "n-2", "ann", nullptr);
  join(b, "n-3", "bob", nullptr);
  join(c, "n-4", "cid", nullptr);
  self->send(p, closed_atom::value, b);
  sched.run();
  drain(shard0);
  const auto& published = deref<presence_actor::stateful_base<presence_state>>(p).state.published;
  CAF_REQUIRE_EQUAL(published.size(), 2u);
  std::string frame = R"({"presence":{"joined":[)";
  append_json(frame, value(published.at("n-2")));
  frame += ',';
  append_json(frame, value(published.at("n-4")));
  frame += R"(],"left":[]}})";
  CAF_CHECK_EQUAL(lc->queued_bytes(), text_frame_size(empty) + text_frame_size(frame));
  CAF_CHECK_EQUAL(stats.presence_members.load(), 2);
  // The exchange publishes the list as the actor sent its frame: at once after a quiet interval.
  CAF_REQUIRE(directory.list(key) != nullptr);
  CAF_CHECK_EQUAL(parse_json(*directory.list(key), "list").as_array().size(), 2u);
  // Within the interval after a frame, changes wait for it: dan joins and leaves (nobody
  // hears of him), ann leaves. One frame when the interval has passed: "left".
  auto d = session();
  join(d, "n-5", "dan", nullptr);
  self->send(p, closed_atom::value, d);
  self->send(p, closed_atom::value, a);
  sched.run();
  drain(shard0);
  CAF_CHECK_EQUAL(lc->queued_bytes(), text_frame_size(empty) + text_frame_size(frame));
  sched.trigger_timeouts();
  sched.run();
  drain(shard0);
  const std::string left = R"({"presence":{"joined":[],"left":["n-2"]}})";
  CAF_CHECK_EQUAL(lc->queued_bytes(),
                  text_frame_size(empty) + text_frame_size(frame) + text_frame_size(left));
  CAF_CHECK_EQUAL(stats.presence_members.load(), 1);
  auto list = directory.list(key);
  CAF_REQUIRE(list != nullptr);
  const value members = parse_json(*list, "list");
  CAF_REQUIRE_EQUAL(members.as_array().size(), 1u);
  CAF_CHECK_EQUAL(find_field(members.as_array()[0].as_object(), "id")->as_string(), "n-4");
  // Stopped (its last session gone): its list is withdrawn, its members uncounted.
  self->send_exit(p, caf::exit_reason::user_shutdown);
  sched.run();
  sched.trigger_timeouts();
  sched.run();
  CAF_CHECK(directory.list(key) == nullptr);
  CAF_CHECK_EQUAL(stats.presence_members.load(), 0);
}

/// What a stub edge uplink was told by the exchange, in order.
struct uplink_log {
  std::vector<std::pair<std::string, std::string>> peers;  // key, changes
  std::vector<std::pair<std::string, std::string>> relays; // key, frame
};

edge_presence_actor::behavior_type recording_uplink(edge_presence_actor::pointer,
                                                    std::shared_ptr<uplink_log> log) {
  return {
      [log](peers_atom, const std::string& key, const std::string& json) {
        log->peers.emplace_back(key, json);
      },
      [log](relay_atom, const std::string& key, const std::string& frame) {
        log->relays.emplace_back(key, frame);
      },
  };
}

/// An edge's second core peer (it joined again): passes what it is given on to the exchange.
caf::behavior forwarding_peer(caf::event_based_actor* self, caf::actor exchange) {
  return {
      [=](join_atom a, const std::string& edge, const std::string& key,
          const edge_presence_actor& uplink) { self->send(exchange, a, edge, key, uplink); },
      [=](presence_atom a, const std::string& edge, const std::string& key,
          const std::string& json) { self->send(exchange, a, edge, key, json); },
      [=](closed_atom a, const std::string& edge) { self->send(exchange, a, edge); },
  };
}

/// The ids in `changes` (presence_changes JSON): joined ones, then "-" and left ones.
std::string ids_of(const std::string& changes) {
  auto c = presence_changes::parse(changes);
  if (!c) return "malformed";
  std::string out = c->sync ? "sync:" : "";
  for (auto& j : c->joined)
    out += find_field(j, "id")->as_string() + " ";
  out += "-";
  for (auto& id : c->left)
    out += " " + id;
  return out;
}

std::string member_changes(const std::string& joined_id, const std::string& left_id, bool sync) {
  presence_changes c;
  if (!joined_id.empty())
    c.joined.push_back(object{{"id", value(joined_id)}, {"info", value(object{})}});
  if (!left_id.empty()) c.left.push_back(left_id);
  c.sync = sync;
  return c.json();
}

CAF_TEST(the_exchange_shares_members_and_broadcasts_with_edges_and_drops_what_a_gone_edge_said) {
  presence_directory directory;
  const std::string key = presence_directory::key("db", "c", "s");
  auto [x, p] = presence_with_exchange(directory, key);
  auto& members = deref<presence_actor::stateful_base<presence_state>>(p).state.peers;
  auto log = std::make_shared<uplink_log>();
  auto uplink = keep(sys.spawn(recording_uplink, log));
  auto listed = [&] {
    sched.trigger_timeouts();
    sched.run();
    auto list = directory.list(key);
    if (!list) return std::string("none");
    std::string ids;
    const value parsed = parse_json(*list, "list");
    for (auto& m : parsed.as_array())
      ids += find_field(m.as_object(), "id")->as_string() + " ";
    return ids;
  };
  // A member of the core's own.
  presence_join ann;
  ann.id = "core-1";
  ann.info = object{{"nick", value("ann")}};
  self->send(p, join_atom::value, session(), std::move(ann), client_handle{});
  sched.run();
  // Edge e1 (its core peer: `self`) follows the stream: it gets the whole list of the others.
  self->send(x, join_atom::value, std::string("e1"), key, uplink);
  sched.run();
  CAF_REQUIRE_EQUAL(log->peers.size(), 1u);
  CAF_CHECK_EQUAL(ids_of(log->peers[0].second), "sync:core-1 -");
  // e1's member: the core's presence actor knows it; the list has both; e1 is not told its own.
  self->send(x, presence_atom::value, std::string("e1"), key, member_changes("e1-1", "", false));
  sched.run();
  CAF_CHECK_EQUAL(members.size(), 1u);
  CAF_CHECK(members.count("e1-1") == 1);
  CAF_CHECK_EQUAL(log->peers.size(), 1u);
  CAF_CHECK_EQUAL(listed(), "core-1 e1-1 ");
  // The core's sessions' broadcasts go to the edge once; the edge's reach the core's actor.
  self->send(x, broadcast_atom::value, key, std::string("{\"broadcast\":1}"));
  sched.run();
  CAF_REQUIRE_EQUAL(log->relays.size(), 1u);
  CAF_CHECK_EQUAL(log->relays[0].second, "{\"broadcast\":1}");
  self->send(x, broadcast_atom::value, std::string("e1"), key, std::string("{\"broadcast\":2}"));
  expect((broadcast_atom, std::string, std::string, std::string), from(self).to(x));
  expect((relay_atom, std::string), from(x).to(p).with(_, "{\"broadcast\":2}"));
  CAF_CHECK_EQUAL(log->relays.size(), 1u);
  // e1 joins again (a partition healed) through a new core peer before the core noticed the
  // old one's end: what the old peer said is dropped, the new one's whole list replaces it.
  auto peer2 = keep(sys.spawn(forwarding_peer, caf::actor_cast<caf::actor>(x)));
  self->send(peer2, join_atom::value, std::string("e1"), key, uplink);
  self->send(peer2, presence_atom::value, std::string("e1"), key, member_changes("e1-2", "", true));
  sched.run();
  CAF_CHECK_EQUAL(members.size(), 1u);
  CAF_CHECK(members.count("e1-2") == 1);
  CAF_CHECK_EQUAL(ids_of(log->peers.back().second), "sync:core-1 -");
  // The old peer's late words, and its end, change nothing; the new one's end drops e1-2.
  self->send(x, presence_atom::value, std::string("e1"), key, member_changes("e1-3", "", false));
  self->send(x, closed_atom::value, std::string("e1"));
  sched.run();
  CAF_CHECK_EQUAL(members.size(), 1u);
  CAF_CHECK(members.count("e1-2") == 1);
  CAF_CHECK_EQUAL(listed(), "core-1 e1-2 ");
  self->send(peer2, closed_atom::value, std::string("e1"));
  sched.run();
  CAF_CHECK(members.empty());
  CAF_CHECK_EQUAL(listed(), "core-1 ");
  // Nothing goes to a gone edge.
  const auto told = log->peers.size();
  self->send(x, broadcast_atom::value, key, std::string("{\"broadcast\":3}"));
  sched.run();
  CAF_CHECK_EQUAL(log->relays.size(), 1u);
  CAF_CHECK_EQUAL(log->peers.size(), told);
}

CAF_TEST_FIXTURE_SCOPE_END()
