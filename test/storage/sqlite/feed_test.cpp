// The embedded store's change feeds (storage/sqlite/feed.cpp): a sqlite_feed_state's delivery
// (dropping what was delivered already by seq, metadata entries, the end after an
// invalidate), the start of an sqlite_feed (what was held while buffering, an end decided
// before the start, a cancel before it), and, on a real store, the catch-up of a resume token
// while the writer holds live events that the catch-up also reads from the log.
#include <boost/test/unit_test.hpp>

#include "storage/document/change_event.hpp"
#include "storage/sqlite/feed.hpp"
#include "test/storage/sqlite/store_test_support.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace rheo;
using namespace rheo::sqlite;
using rheo::test::J;

BOOST_AUTO_TEST_SUITE(feed_test)

namespace {

/// Every call a feed makes, in order: 'e' events (their seqs), 'm' metadata, 'p' position,
/// 'l' lost. Store threads may call it while the test reads it.
class recording_sink final : public feed_sink {
public:
  struct call {
    char kind;
    std::vector<std::uint64_t> seqs; // 'e'
    object metadata;                 // 'm'
    std::string text;                // 'p': the token; 'l': the reason
  };
  void events(std::vector<change_event> batch) override {
    call c{'e', {}, {}, {}};
    for (auto& e : batch)
      c.seqs.push_back(e.seq);
    add(std::move(c));
  }
  void metadata(object m) override { add({'m', {}, std::move(m), {}}); }
  void position(std::string token) override { add({'p', {}, {}, std::move(token)}); }
  void lost(feed_end why) override { add({'l', {}, {}, std::move(why.reason)}); }

  std::vector<call> calls() {
    std::lock_guard lk(mu_);
    return calls_;
  }
  /// The seqs of every event delivered, in order.
  std::vector<std::uint64_t> seqs() {
    std::vector<std::uint64_t> out;
    for (auto& c : calls())
      out.insert(out.end(), c.seqs.begin(), c.seqs.end());
    return out;
  }
  /// The kinds of the calls, in order ("eml").
  std::string kinds() {
    std::string out;
    for (auto& c : calls())
      out += c.kind;
    return out;
  }

private:
  void add(call c) {
    std::lock_guard lk(mu_);
    calls_.push_back(std::move(c));
  }
  std::mutex mu_;
  std::vector<call> calls_;
};

/// A recording_sink that paces its catch-up: `bytes` per part (1: one event per part).
class paced_sink final : public feed_sink {
public:
  explicit paced_sink(std::size_t bytes) : bytes_(bytes) {}
  std::size_t catch_up_bytes() const override { return bytes_; }
  void events(std::vector<change_event> batch) override { log.events(std::move(batch)); }
  void metadata(object m) override { log.metadata(std::move(m)); }
  void position(std::string token) override { log.position(std::move(token)); }
  void lost(feed_end why) override { log.lost(std::move(why)); }
  recording_sink log;

private:
  std::size_t bytes_;
};

change_event ev(std::uint64_t seq, const char* operation = "insert") {
  change_event e;
  e.seq = seq;
  e.token = token_from_seq(seq);
  e.db = "rheo";
  e.coll = "c";
  e.operation = *operation_from_string(operation);
  e.document_key = value(static_cast<std::int64_t>(seq));
  return e;
}

std::vector<change_event> evs(std::initializer_list<std::uint64_t> seqs) {
  std::vector<change_event> out;
  for (auto s : seqs)
    out.push_back(ev(s));
  return out;
}

/// A feed state of rheo.c, started (delivering) to `sink`, as the writer sees it.
std::shared_ptr<sqlite_feed_state> delivering_to(std::shared_ptr<recording_sink> sink) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->db = "rheo";
  st->coll = "c";
  st->buffering = false;
  st->sink = std::move(sink);
  return st;
}

using seq_list = std::vector<std::uint64_t>;

} // namespace

BOOST_AUTO_TEST_CASE(push_delivers_in_order_and_drops_what_was_delivered_already) {
  auto sink = std::make_shared<recording_sink>();
  auto st = delivering_to(sink);
  st->last_seq = 3; // the resume position, or the last event delivered
  std::lock_guard lk(st->mu);
  auto first = evs({2, 3, 4, 5});
  st->push(first);
  auto again = evs({5, 6});
  st->push(again);
  auto calls = sink->calls();
  BOOST_REQUIRE(calls.size() == 2u); // one batch per push
  BOOST_TEST(calls[0].seqs == (seq_list{4, 5}), boost::test_tools::per_element());
  BOOST_TEST(calls[1].seqs == (seq_list{6}), boost::test_tools::per_element());
  BOOST_TEST(st->last_seq == 6u);
  auto stale = evs({1, 6});
  st->push(stale); // nothing new: no call at all (a batch is never empty)
  BOOST_TEST(sink->calls().size() == 2u);
}

BOOST_AUTO_TEST_CASE(metadata_entries_are_metadata_calls_in_order_with_the_events) {
  auto sink = std::make_shared<recording_sink>();
  auto st = delivering_to(sink);
  std::vector<change_event> batch = evs({1, 2});
  batch.push_back(ev(3, "meta"));
  batch.back().full_document = J(R"({"streams": []})");
  batch.push_back(ev(4));
  std::lock_guard lk(st->mu);
  st->push(batch);
  auto calls = sink->calls();
  BOOST_TEST(sink->kinds() == "eme");
  BOOST_TEST(calls[0].seqs == (seq_list{1, 2}), boost::test_tools::per_element());
  BOOST_TEST(identical(value(calls[1].metadata), value(J(R"({"streams": []})"))));
  BOOST_TEST(calls[2].seqs == (seq_list{4}), boost::test_tools::per_element());
  BOOST_TEST(st->last_seq == 4u);
}

BOOST_AUTO_TEST_CASE(an_invalidate_is_delivered_then_ends_the_feed) {
  auto sink = std::make_shared<recording_sink>();
  auto st = delivering_to(sink);
  std::vector<change_event> batch{ev(7, "drop"), ev(8, "invalidate"), ev(9)};
  std::lock_guard lk(st->mu);
  st->push(batch);
  auto calls = sink->calls();
  BOOST_REQUIRE(sink->kinds() == "el");
  BOOST_TEST(calls[0].seqs == (seq_list{7, 8}), boost::test_tools::per_element());
  BOOST_TEST(calls[1].text == "collection c dropped (invalidated)");
  BOOST_TEST(st->ended);
  BOOST_TEST(!st->sink); // released: the writer has nobody to call any more
  st->end({feed_end_cause::failed, "store closed"}); // an end after the end changes nothing
  BOOST_TEST(sink->kinds() == "el");
}

BOOST_AUTO_TEST_CASE(start_delivers_what_was_held_while_buffering_then_the_live_events) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->db = "rheo";
  st->coll = "c";
  st->held = evs({11, 12}); // committed after watch(), before start()
  sqlite_feed feed(st, std::weak_ptr<core>{});
  auto sink = std::make_shared<recording_sink>();
  feed.start(sink);
  BOOST_TEST(sink->seqs() == (seq_list{11, 12}), boost::test_tools::per_element());
  BOOST_TEST(sink->kinds() == "e"); // no resume: no position to report
  {
    std::lock_guard lk(st->mu);
    BOOST_TEST(!st->buffering);
    BOOST_TEST(st->held.empty());
    auto live = evs({12, 13}); // the writer's next batch
    st->push(live);
  }
  BOOST_TEST(sink->seqs() == (seq_list{11, 12, 13}), boost::test_tools::per_element());
  feed.start(std::make_shared<recording_sink>()); // a second start is ignored
  BOOST_TEST(st->sink == sink);
}

BOOST_AUTO_TEST_CASE(an_end_decided_before_the_start_is_its_only_call) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->coll = "c";
  st->held = evs({1});
  {
    std::lock_guard lk(st->mu);
    st->end(
        {feed_end_cause::failed, "store closed"}); // the store closed between watch() and start()
  }
  BOOST_TEST(!st->ended); // nobody to tell yet
  sqlite_feed feed(st, std::weak_ptr<core>{});
  auto sink = std::make_shared<recording_sink>();
  feed.start(sink);
  auto calls = sink->calls();
  BOOST_REQUIRE(sink->kinds() == "l");
  BOOST_TEST(calls[0].text == "store closed");
  BOOST_TEST(st->ended);
}

BOOST_AUTO_TEST_CASE(a_resume_without_its_store_ends_the_feed) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->coll = "c";
  st->resume = 5;
  sqlite_feed feed(st, std::weak_ptr<core>{}); // the store is gone
  auto sink = std::make_shared<recording_sink>();
  feed.start(sink);
  BOOST_REQUIRE(sink->kinds() == "l");
  BOOST_TEST(sink->calls()[0].text == "store closed");
}

BOOST_AUTO_TEST_CASE(a_feed_cancelled_before_its_start_delivers_nothing) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->coll = "c";
  st->held = evs({1, 2});
  sqlite_feed feed(st, std::weak_ptr<core>{});
  feed.cancel();
  BOOST_TEST(st->ended);
  BOOST_TEST(st->held.empty());
  auto sink = std::make_shared<recording_sink>();
  feed.start(sink);
  BOOST_TEST(sink->calls().empty());
  BOOST_TEST(!st->sink);
}

BOOST_AUTO_TEST_CASE(position_is_the_token_of_the_registration) {
  auto st = std::make_shared<sqlite_feed_state>();
  st->start_seq = 42;
  sqlite_feed feed(st, std::weak_ptr<core>{});
  BOOST_TEST(feed.position() == token_from_seq(42));
  auto seq = seq_from_token(feed.position());
  BOOST_REQUIRE(seq.has_value());
  BOOST_TEST(*seq == 42u);
}

// ---- on a store: the catch-up of a resume token ----

BOOST_AUTO_TEST_CASE(a_resume_reads_the_log_and_drops_the_held_events_it_read_too) {
  rheo::test::store_fixture s;
  // The seqs of the store's events: a feed of c and one of another collection.
  auto c_feed = s.db->watch("rheo", "c", std::nullopt);
  auto c_sink = std::make_shared<recording_sink>();
  c_feed->start(c_sink);
  auto other_feed = s.db->watch("rheo", "other", std::nullopt);
  auto other_sink = std::make_shared<recording_sink>();
  other_feed->start(other_sink);
  for (int i = 1; i <= 5; ++i)
    s.db->insert("rheo", "c", object{{"_id", value(i)}});
  auto written = c_sink->seqs();
  BOOST_REQUIRE(written.size() == 5u);

  // Resume after the second event; two more writes commit before the start: the writer
  // holds them for the feed, and the catch-up reads them from the log as well.
  auto resumed = s.db->watch("rheo", "c", token_from_seq(written[1]));
  BOOST_TEST(resumed->position() == token_from_seq(written[1]));
  s.db->insert("rheo", "c", J("{_id: 6}"));
  s.db->insert("rheo", "other", J("{_id: 1}")); // the newest entry of the log
  s.db->insert("rheo", "c", J("{_id: 7}"));
  s.db->insert("rheo", "other", J("{_id: 2}"));
  written = c_sink->seqs();
  BOOST_REQUIRE(written.size() == 7u);
  const auto newest = other_sink->seqs().back();

  auto sink = std::make_shared<recording_sink>();
  resumed->start(sink);
  // Once each, in order, then the position: everything up to the log's newest entry.
  BOOST_TEST(sink->seqs() == seq_list(written.begin() + 2, written.end()),
             boost::test_tools::per_element());
  auto calls = sink->calls();
  BOOST_REQUIRE(!calls.empty());
  BOOST_TEST(calls.back().kind == 'p');
  BOOST_TEST(calls.back().text == token_from_seq(newest));
  // Live from here on, without a gap.
  s.db->insert("rheo", "c", J("{_id: 8}"));
  BOOST_TEST(sink->seqs().back() == c_sink->seqs().back());
  BOOST_TEST(sink->seqs().size() == 6u);
}

BOOST_AUTO_TEST_CASE(a_paced_resume_delivers_a_part_per_credit_and_loses_no_live_event) {
  rheo::test::store_fixture s;
  auto feed = s.db->watch("rheo", "c", std::nullopt);
  auto live = std::make_shared<recording_sink>();
  feed->start(live);
  for (int i = 1; i <= 4; ++i)
    s.db->insert("rheo", "c", object{{"_id", value(i)}});
  const auto first = live->seqs();
  BOOST_REQUIRE(first.size() == 4u);

  // One event per part: the start delivers the first part only, then waits for more().
  auto resumed = s.db->watch("rheo", "c", token_from_seq(first[0] - 1));
  auto sink = std::make_shared<paced_sink>(1);
  resumed->start(sink);
  BOOST_TEST(sink->log.seqs() == seq_list{first[0]});
  // Live writes while the catch-up waits: they are in the log, and come in order after it.
  s.db->insert("rheo", "c", J("{_id: 5}"));
  s.db->insert("rheo", "other", J("{_id: 1}"));
  s.db->insert("rheo", "c", J("{_id: 6}"));
  BOOST_TEST(sink->log.seqs() == seq_list{first[0]}); // nothing without a credit
  const auto all = live->seqs();
  BOOST_REQUIRE(all.size() == 6u);
  for (std::size_t n = 2; n <= all.size(); ++n) {
    resumed->more();
    BOOST_TEST(sink->log.seqs() == seq_list(all.begin(), all.begin() + n),
               boost::test_tools::per_element());
  }
  // Caught up: the last part reached the end of the log, so the feed told its position and
  // is live (a further credit changes nothing; live events need none).
  resumed->more();
  auto calls = sink->log.calls();
  BOOST_REQUIRE(!calls.empty());
  BOOST_TEST(calls.back().kind == 'p');
  s.db->insert("rheo", "c", J("{_id: 7}"));
  s.db->insert("rheo", "c", J("{_id: 8}"));
  BOOST_TEST(sink->log.seqs() == live->seqs(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_credit_before_the_start_or_after_a_cancel_delivers_nothing) {
  rheo::test::store_fixture s;
  for (int i = 1; i <= 3; ++i)
    s.db->insert("rheo", "c", object{{"_id", value(i)}});
  auto resumed = s.db->watch("rheo", "c", token_from_seq(0));
  auto sink = std::make_shared<paced_sink>(1);
  resumed->more(); // not started
  resumed->start(sink);
  BOOST_TEST(sink->log.seqs().size() == 1u);
  resumed->cancel();
  resumed->more(); // cancelled
  BOOST_TEST(sink->log.seqs().size() == 1u);
  BOOST_TEST(sink->log.kinds() == "e");
}

BOOST_AUTO_TEST_CASE(a_resume_that_reaches_an_invalidate_ends_after_it) {
  rheo::test::store_fixture s;
  auto feed = s.db->watch("rheo", "c", std::nullopt);
  auto live = std::make_shared<recording_sink>();
  feed->start(live);
  s.db->insert("rheo", "c", J("{_id: 1}"));
  s.db->insert("rheo", "c", J("{_id: 2}"));
  s.db->drop_collection("rheo", "c", s.db->collection("rheo", "c")->etag.hex());
  auto seqs = live->seqs(); // two inserts, the drop, the invalidate
  BOOST_REQUIRE(seqs.size() == 4u);
  BOOST_TEST(live->kinds().back() == 'l');

  auto resumed = s.db->watch("rheo", "c", token_from_seq(seqs[0]));
  auto sink = std::make_shared<recording_sink>();
  resumed->start(sink);
  BOOST_TEST(sink->seqs() == seq_list(seqs.begin() + 1, seqs.end()),
             boost::test_tools::per_element());
  auto calls = sink->calls();
  BOOST_REQUIRE(!calls.empty());
  BOOST_TEST(calls.back().kind == 'l'); // the last call: no position after the end
  BOOST_TEST(calls.back().text.find("dropped") != std::string::npos);
  s.db->insert("rheo", "c", J("{_id: 3}")); // the collection again: not for this feed
  BOOST_TEST(sink->calls().size() == calls.size());
}

BOOST_AUTO_TEST_SUITE_END()
