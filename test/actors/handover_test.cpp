// The hand-over from a replay to the live feed (actors/handover.hpp), as a plain class:
// where the replay ends against the boundary, live batches held before the replay speaks,
// duplicates dropped by token order, history lost, tokens the store orders differently.
#include <boost/test/unit_test.hpp>

#include "actors/handover.hpp"
#include "storage/document/change_event.hpp"

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(handover_test)

namespace {

std::string tok(std::uint64_t seq) {
  return token_from_seq(seq);
}

/// An insert with the embedded store's token for `seq`, in the shape stages see.
object event(std::uint64_t seq) {
  change_event e;
  e.seq = seq;
  e.token = tok(seq);
  e.operation = operation_type::insert;
  e.document_key = value(static_cast<std::int64_t>(seq));
  return e.to_object();
}

std::vector<object> events(std::initializer_list<std::uint64_t> seqs) {
  std::vector<object> out;
  for (auto s : seqs)
    out.push_back(event(s));
  return out;
}

handover::batch live(std::initializer_list<std::uint64_t> seqs) {
  return std::make_shared<const std::vector<object>>(events(seqs));
}

/// The seqs of `evs`, to compare.
std::vector<std::uint64_t> seqs(const std::vector<const object*>& evs) {
  std::vector<std::uint64_t> out;
  for (const object* e : evs)
    out.push_back(*seq_from_token(*event_token(*e)));
  return out;
}

using list = std::vector<std::uint64_t>;

} // namespace

BOOST_AUTO_TEST_CASE(a_replay_that_ends_before_the_boundary_hands_over_at_its_position) {
  handover h(tok(2), tok(5));
  auto replayed = events({3, 4});
  auto step = h.replayed(replayed);
  BOOST_TEST(seqs(step.send) == (list{3, 4}));
  BOOST_TEST(!step.ready);
  BOOST_TEST(!h.ready());
  // Nothing more of this collection up to 5: the replay says where it is.
  BOOST_TEST(h.replay_position(tok(5)));
  BOOST_TEST(h.rest().empty());
}

BOOST_AUTO_TEST_CASE(a_replay_that_reads_past_the_boundary_sends_up_to_it_only) {
  handover h(tok(2), tok(5));
  auto replayed = events({3, 4, 5, 6, 7});
  auto step = h.replayed(replayed);
  BOOST_TEST(seqs(step.send) == (list{3, 4, 5})); // 6 and 7 come live
  BOOST_TEST(step.ready);
  BOOST_TEST(*h.last() == tok(5));
}

BOOST_AUTO_TEST_CASE(a_replay_that_ends_at_the_boundary_is_ready) {
  handover h(tok(2), tok(5));
  auto replayed = events({3, 4, 5});
  auto step = h.replayed(replayed);
  BOOST_TEST(seqs(step.send) == (list{3, 4, 5}));
  BOOST_TEST(step.ready);
  BOOST_TEST(h.ready());
}

BOOST_AUTO_TEST_CASE(live_batches_before_the_replay_speaks_are_held_and_given_after_its_last) {
  handover h(tok(2), tok(5));
  // Not ready, however far the live events are: the store may yet refuse the token.
  BOOST_TEST(!h.hold(live({6})));
  BOOST_TEST(!h.hold(live({7, 8})));
  BOOST_TEST(h.held_events() == 3u);
  // The replay reads on into the held events: it stops at the first held one.
  auto replayed = events({3, 4, 5, 6, 7});
  auto step = h.replayed(replayed);
  BOOST_TEST(seqs(step.send) == (list{3, 4, 5}));
  BOOST_TEST(step.ready);
  BOOST_TEST(seqs(h.rest()) == (list{6, 7, 8}));
}

BOOST_AUTO_TEST_CASE(without_a_known_boundary_the_first_held_event_is_the_live_position) {
  handover h(tok(2), std::nullopt);
  BOOST_TEST(!h.hold(live({6, 7})));
  // A position told after live events arrived does not move the live position.
  BOOST_TEST(!h.live_position(tok(9)));
  BOOST_TEST(!h.boundary());
  auto first = events({3, 4, 5});
  auto step = h.replayed(first);
  BOOST_TEST(seqs(step.send) == (list{3, 4, 5}));
  BOOST_TEST(!step.ready); // 5 is before 6: more may come
  auto second = events({6});
  step = h.replayed(second);
  BOOST_TEST(step.send.empty());
  BOOST_TEST(step.ready);
  BOOST_TEST(seqs(h.rest()) == (list{6, 7}));
}

BOOST_AUTO_TEST_CASE(a_live_position_told_before_any_live_event_is_the_boundary) {
  handover h(tok(2), std::nullopt);
  auto replayed = events({3, 4});
  BOOST_TEST(!h.replayed(replayed).ready);
  BOOST_TEST(h.live_position(tok(4))); // the replay has reached it already
  BOOST_TEST(*h.boundary() == tok(4));
}

BOOST_AUTO_TEST_CASE(duplicates_and_older_events_are_dropped_by_token_order) {
  handover h(tok(2), tok(5));
  auto first = events({1, 2, 3}); // at or before the client's token
  BOOST_TEST(seqs(h.replayed(first).send) == (list{3}));
  auto again = events({3, 4}); // 3 a second time
  BOOST_TEST(seqs(h.replayed(again).send) == (list{4}));
  BOOST_TEST(!h.replay_position(tok(1))); // an older position does not move it back
  BOOST_TEST(*h.last() == tok(4));
  BOOST_TEST(!h.hold(live({5, 6})));
  auto at_boundary = events({5});
  auto step = h.replayed(at_boundary);
  BOOST_TEST(step.send.empty()); // 5 is the first held: it comes from the held batch
  BOOST_TEST(step.ready);
  BOOST_TEST(seqs(h.rest()) == (list{5, 6}));
}

BOOST_AUTO_TEST_CASE(held_events_the_replay_sent_are_not_given_twice) {
  handover h(tok(2), std::nullopt);
  // The replay runs ahead of the live feed: 3 and 4 are sent from it before they arrive.
  auto replayed = events({3, 4});
  BOOST_TEST(seqs(h.replayed(replayed).send) == (list{3, 4}));
  BOOST_TEST(h.hold(live({3, 4, 5}))); // the replay has reached the first held event
  BOOST_TEST(seqs(h.rest()) == (list{5}));
}

BOOST_AUTO_TEST_CASE(history_lost_skips_to_the_live_position_and_gives_every_held_event) {
  handover h(tok(1), tok(50));
  BOOST_TEST(!h.hold(live({51, 52})));
  // The replay never speaks (the store refused the token): never ready by itself.
  BOOST_TEST(!h.ready());
  h.skip_to_live();
  BOOST_TEST(!h.last());
  BOOST_TEST(seqs(h.rest()) == (list{51, 52}));
}

BOOST_AUTO_TEST_CASE(a_snapshot_token_waits_for_the_replay_to_say_where_it_starts) {
  // Not an event token: the replay's events or position tell where the consumer is.
  handover h("S1600000000:1", tok(5));
  BOOST_TEST(!h.last());
  BOOST_TEST(!h.replay_position(""));
  BOOST_TEST(h.replay_position(tok(5)));
}

BOOST_AUTO_TEST_CASE(events_without_a_token_are_not_replayed_but_are_given_live) {
  handover h(tok(2), tok(5));
  std::vector<object> replayed{object{{"operationType", value("insert")}}};
  auto step = h.replayed(replayed);
  BOOST_TEST(step.send.empty());
  auto held = std::make_shared<const std::vector<object>>(
      std::vector<object>{object{{"operationType", value("insert")}}, event(6)});
  h.hold(held);
  BOOST_TEST(h.rest().size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
