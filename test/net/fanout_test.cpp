// Fan-out groups (net/fanout.cpp): the connections of one subscription on one I/O thread.
// Every member gets each batch posted after it joined, once and in order; a member that
// finishes leaves (also while a batch is being handed out); release() lets the members go
// after the batches posted before it; a connection is in at most one group. Members without
// a peer keep what they get queued, so their queued_bytes() tell what reached them.
#include <boost/test/unit_test.hpp>

#include "net/fanout.hpp"
#include "test/net/probe_connection.hpp"

#include <memory>
#include <string>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(fanout_test)

BOOST_AUTO_TEST_CASE(every_member_gets_each_batch_once_and_in_order) {
  shard_fixture f;
  probe_client client;
  auto open = connect_probe(f, client);
  open->accept();
  auto a = f.unconnected(), b = f.unconnected();
  auto group = std::make_shared<fanout_group>(f.shard);
  for (auto& c : {open, a, b})
    group->post_add(c);
  group->post_deliver(shared_bytes("ab|"), 1);
  group->post_deliver(shared_bytes("cde|"), 2);
  f.run();
  BOOST_TEST(a->queued_bytes() == 7);
  BOOST_TEST(b->queued_bytes() == 7);
  BOOST_TEST(f.stats.bytes_queued.load() == 14); // the open one's are written already
  BOOST_TEST(pump_until(f, client, [&] { return client.received.size() >= 12; }));
  BOOST_TEST(client.received == "open\nab|cde|");
  BOOST_TEST(f.stats.frames_sent.load() == 3u);
}

BOOST_AUTO_TEST_CASE(a_member_gets_only_the_batches_posted_after_it_joined) {
  shard_fixture f;
  auto early = f.unconnected(), late = f.unconnected();
  auto group = std::make_shared<fanout_group>(f.shard);
  // All posted before the shard runs: the order of the posts decides.
  group->post_add(early);
  group->post_deliver(shared_bytes("12345"), 1);
  group->post_add(late);
  group->post_deliver(shared_bytes("67"), 1);
  f.run();
  BOOST_TEST(early->queued_bytes() == 7);
  BOOST_TEST(late->queued_bytes() == 2);
}

BOOST_AUTO_TEST_CASE(post_to_connection_keeps_its_order_with_the_group_posts) {
  shard_fixture f;
  probe_client client;
  auto conn = connect_probe(f, client);
  conn->accept();
  auto group = std::make_shared<fanout_group>(f.shard);
  group->post_add(conn);
  group->post_deliver(shared_bytes("1"), 1);
  post_to_connection(conn, shared_bytes("2"), 1); // e.g. a replayed event for this one only
  group->post_deliver(shared_bytes("3"), 1);
  BOOST_TEST(pump_until(f, client, [&] { return client.received.size() >= 8; }));
  BOOST_TEST(client.received == "open\n123");
}

BOOST_AUTO_TEST_CASE(a_connection_joins_no_group_once_finished_and_each_group_once) {
  shard_fixture f;
  auto finished = f.unconnected();
  finished->close(1000, "bye"); // never accepted: finishes at once
  f.run();
  BOOST_REQUIRE(finished->finished());
  auto member = f.unconnected();
  auto first = std::make_shared<fanout_group>(f.shard);
  auto second = std::make_shared<fanout_group>(f.shard);
  first->post_add(member);
  first->post_add(finished);
  first->post_add(member); // already in `first`: ignored
  second->post_add(member); // another group: it is in both
  second->post_deliver(shared_bytes("xx"), 1);
  first->post_deliver(shared_bytes("y"), 1);
  f.run();
  BOOST_TEST(member->queued_bytes() == 3);
  BOOST_TEST(f.stats.bytes_queued.load() == 3);
  // The group does not keep the finished connection alive.
  std::weak_ptr<probe_connection> gone = finished;
  finished.reset();
  BOOST_TEST(gone.expired());
}

BOOST_AUTO_TEST_CASE(a_member_that_finishes_leaves_the_group) {
  shard_fixture f;
  auto a = f.unconnected(), b = f.unconnected(), c = f.unconnected();
  auto group = std::make_shared<fanout_group>(f.shard);
  for (auto& m : {a, b, c})
    group->post_add(m);
  f.run();
  std::weak_ptr<probe_connection> b_ref = b, c_ref = c;
  b->close(1000, "");
  b.reset();
  f.run();
  BOOST_TEST(b_ref.expired()); // the group let it go
  group->post_deliver(shared_bytes("abc"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 3);
  BOOST_TEST(c->queued_bytes() == 3);
  // c took b's place: leaving from there works as well.
  c->close(1000, "");
  c.reset();
  f.run();
  BOOST_TEST(c_ref.expired());
  group->post_deliver(shared_bytes("d"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 4);
}

BOOST_AUTO_TEST_CASE(a_member_that_finishes_during_a_delivery_leaves_after_it) {
  shard_fixture f;
  auto a = f.unconnected();
  // Over its queue limit at the first batch: it closes (a slow consumer) and finishes inside
  // the delivery.
  auto slow = f.unconnected({.queue_limit_bytes = 1});
  slow->handshake_under_way();
  slow->finish_on_close = true;
  // A message alone in the queue is taken whatever its size; the batch then waits behind it.
  BOOST_TEST(slow->enqueue(shared_bytes("qq"), 1) == 2);
  auto c = f.unconnected(), d = f.unconnected();
  auto group = std::make_shared<fanout_group>(f.shard);
  for (auto& m : {a, slow, c, d})
    group->post_add(m);
  group->post_deliver(shared_bytes("xy"), 1);
  f.run();
  BOOST_TEST(slow->finished());
  BOOST_REQUIRE(slow->closes.size() == 1u);
  BOOST_TEST(slow->closes[0].first == 1013);
  BOOST_TEST(f.stats.slow_consumer_closes.load() == 1u);
  // The members after it still got the batch.
  BOOST_TEST(a->queued_bytes() == 2);
  BOOST_TEST(c->queued_bytes() == 2);
  BOOST_TEST(d->queued_bytes() == 2);
  std::weak_ptr<probe_connection> slow_ref = slow, c_ref = c;
  slow.reset();
  BOOST_TEST(slow_ref.expired()); // released once the delivery was over
  group->post_deliver(shared_bytes("z"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 3);
  BOOST_TEST(d->queued_bytes() == 3);
  // The places were renumbered: the members after the hole still leave cleanly.
  c->close(1000, "");
  c.reset();
  f.run();
  BOOST_TEST(c_ref.expired());
  group->post_deliver(shared_bytes("w"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 4);
  BOOST_TEST(d->queued_bytes() == 4);
}

BOOST_AUTO_TEST_CASE(release_lets_the_members_go_after_the_batches_posted_before) {
  shard_fixture f;
  auto a = f.unconnected();
  auto group = std::make_shared<fanout_group>(f.shard);
  std::weak_ptr<fanout_group> group_ref = group;
  group->post_add(a);
  group->post_deliver(shared_bytes("before"), 1);
  fanout_group::release(std::move(group));
  f.run();
  BOOST_TEST(a->queued_bytes() == 6);
  BOOST_TEST(group_ref.expired()); // nothing holds the group any more
  // Free again: it can join another group (a subscription's next one).
  auto next = std::make_shared<fanout_group>(f.shard);
  next->post_add(a);
  next->post_deliver(shared_bytes("after"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 11);
}

BOOST_AUTO_TEST_CASE(a_connection_in_two_groups_gets_both_and_leaves_both_when_it_finishes) {
  shard_fixture f;
  auto a = f.unconnected(), b = f.unconnected();
  // A subscription's group and a presence's group, each with its own members.
  auto events = std::make_shared<fanout_group>(f.shard);
  auto presence = std::make_shared<fanout_group>(f.shard);
  events->post_add(a);
  events->post_add(b);
  presence->post_add(b);
  presence->post_add(a);
  presence->post_add(a); // once only
  events->post_deliver(shared_bytes("e"), 1);
  presence->post_deliver(shared_bytes("pp"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 3);
  BOOST_TEST(b->queued_bytes() == 3);
  // b finishes: it leaves both groups; a keeps its places (renumbered in each).
  std::weak_ptr<probe_connection> b_ref = b;
  b->close(1000, "");
  b.reset();
  f.run();
  BOOST_TEST(b_ref.expired());
  events->post_deliver(shared_bytes("e"), 1);
  presence->post_deliver(shared_bytes("pp"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 6);
  // Released by one owner, it stays in the other's.
  fanout_group::release(std::move(events));
  presence->post_deliver(shared_bytes("pp"), 1);
  f.run();
  BOOST_TEST(a->queued_bytes() == 8);
}

BOOST_AUTO_TEST_SUITE_END()
