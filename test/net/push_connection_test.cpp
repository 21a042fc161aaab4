// push_connection (net/push_connection.cpp), the base of WebSocket and SSE sessions, through
// a connection of no protocol (test/net/probe_connection.hpp) over real loopback sockets:
// what waits for the handshake, corking (what is queued within one turn leaves in one gather
// write of at most 64 buffers), the count of queued bytes (the connection's and the
// metric), the close after the queue or instead of it, and the end when the peer goes away.
// The test runs the shard's event loop itself, so it counts writes, not time.
// (ws_connection_test checks the same writer with WebSocket frames: 1013 closes.)
#include <boost/test/unit_test.hpp>

#include "test/net/probe_connection.hpp"

#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <memory>
#include <string>

using namespace rheo;
using namespace rheo::test;
namespace net = boost::asio;

BOOST_AUTO_TEST_SUITE(push_connection_test)

namespace {

/// Queues `bytes` on `conn` from a handler of its shard, as a fan-out group does (which
/// counts what enqueue() added in the shard's metrics; the connection uncounts it when
/// written or dropped).
void post_enqueue(shard_fixture& f, const std::shared_ptr<probe_connection>& conn,
                  std::shared_ptr<const std::string> bytes, std::int64_t* added = nullptr) {
  net::post(f.shard.context(), [&f, conn, bytes, added] {
    auto n = conn->enqueue(bytes, 1);
    f.stats.bytes_queued.fetch_add(n);
    if (added) *added = n;
  });
}

/// Fills the socket (the client reads nothing): enqueues `item` turn after turn until it
/// stays queued. Returns how many were enqueued.
int fill_socket(shard_fixture& f, const std::shared_ptr<probe_connection>& conn,
                const std::shared_ptr<const std::string>& item) {
  int n = 0;
  for (; n < 1000 && conn->queued_bytes() == 0; ++n) {
    post_enqueue(f, conn, item);
    f.run();
  }
  BOOST_REQUIRE(conn->queued_bytes() > 0);
  return n;
}

} // namespace

BOOST_AUTO_TEST_CASE(what_is_queued_before_the_handshake_waits_and_follows_its_response) {
  shard_fixture f;
  probe_client client;
  auto conn = connect_probe(f, client);
  post_enqueue(f, conn, shared_bytes("early|"));
  f.run();
  BOOST_TEST(conn->queued_bytes() == 6);
  BOOST_TEST(f.stats.push_writes.load() == 0u);
  BOOST_TEST(!client.read_some()); // nothing written yet
  conn->accept();
  BOOST_TEST(pump_until(f, client, [&] { return client.received.size() >= 11; }));
  BOOST_TEST(client.received == "open\nearly|"); // the response first, then the data
  BOOST_TEST(conn->queued_bytes() == 0);
  BOOST_TEST(conn->bytes_sent() == 11u);
  BOOST_TEST(f.stats.frames_sent.load() == 1u);
}

BOOST_AUTO_TEST_CASE(what_is_queued_in_one_turn_leaves_in_gather_writes_of_64_buffers) {
  shard_fixture f;
  probe_client client;
  auto conn = connect_probe(f, client);
  conn->accept();
  f.run();
  auto item = shared_bytes("0123456789");
  auto writes = f.stats.push_writes.load();
  for (int i = 0; i < 50; ++i)
    post_enqueue(f, conn, item);
  f.run();
  BOOST_TEST(f.stats.push_writes.load() - writes == 1u); // corked: one syscall for 50
  writes = f.stats.push_writes.load();
  for (int i = 0; i < 200; ++i)
    post_enqueue(f, conn, item);
  f.run();
  BOOST_TEST(f.stats.push_writes.load() - writes == 4u); // 64 + 64 + 64 + 8 buffers
  BOOST_TEST(pump_until(f, client, [&] { return client.received.size() >= 5 + 250 * 10; }));
  BOOST_TEST(client.received.size() == 5u + 250 * 10);
  BOOST_TEST(f.stats.frames_sent.load() == 250u);
  // Each turn with something queued is a write of its own.
  writes = f.stats.push_writes.load();
  for (int i = 0; i < 3; ++i) {
    post_enqueue(f, conn, item);
    f.run();
  }
  BOOST_TEST(f.stats.push_writes.load() - writes == 3u);
}

BOOST_AUTO_TEST_CASE(queued_bytes_count_until_written_in_the_connection_and_the_metric) {
  shard_fixture f;
  probe_client client;
  auto conn = connect_probe(f, client, {.queue_limit_bytes = 16 * 1024 * 1024}, 8192, 4096);
  conn->accept();
  f.run();
  auto item = shared_bytes(std::string(4096, 'q'));
  int sent = fill_socket(f, conn, item);
  std::int64_t added = -1;
  post_enqueue(f, conn, item, &added);
  f.run();
  BOOST_TEST(added == 4096); // enqueue() says what it added
  BOOST_TEST(conn->queued_bytes() > 4096);
  BOOST_TEST(f.stats.bytes_queued.load() == conn->queued_bytes()); // the only connection
  const auto total = 5u + static_cast<std::size_t>(sent + 1) * 4096;
  BOOST_TEST(pump_until(f, client, [&] { return client.received.size() >= total; }));
  BOOST_TEST(client.received.size() == total);
  BOOST_TEST(conn->queued_bytes() == 0);
  BOOST_TEST(f.stats.bytes_queued.load() == 0);
  BOOST_TEST(conn->bytes_sent() == total);
}

BOOST_AUTO_TEST_CASE(a_close_sends_what_is_queued_first_then_finishes_once) {
  shard_fixture f;
  probe_client client;
  auto conn = connect_probe(f, client, {.queue_limit_bytes = 16 * 1024 * 1024}, 8192, 4096);
  int closed = 0, finished = 0;
  std::uint64_t reported = 0;
  conn->on_closed = [&] { ++closed; };
  conn->on_finished = [&](std::uint64_t bytes) {
    ++finished;
    reported = bytes;
  };
  auto held = std::make_shared<int>(1);
  std::weak_ptr<int> held_ref = held;
  conn->hold(std::move(held));
  conn->accept();
  f.run();
  auto item = shared_bytes(std::string(4096, 'c'));
  int sent = fill_socket(f, conn, item);
  conn->close(1000, "bye");
  f.run();
  BOOST_REQUIRE(conn->closes.size() == 1u);
  BOOST_TEST(conn->closes[0].first == 1000);
  BOOST_TEST(conn->closes[0].second == "bye");
  // Closing: nothing more is queued.
  std::int64_t added = -1;
  post_enqueue(f, conn, item, &added);
  f.run();
  BOOST_TEST(added == 0);
  BOOST_TEST(closed == 0); // the queue is still going out
  BOOST_TEST(pump_until(f, client, [&] { return conn->finished(); }));
  const std::string expected_end = "close 1000\n";
  BOOST_TEST(pump_until(f, client, [&] {
    return client.received.size() >= 5u + sent * 4096u + expected_end.size();
  }));
  BOOST_TEST(client.received.size() == 5u + sent * 4096u + expected_end.size());
  BOOST_TEST(client.received.ends_with(expected_end));
  BOOST_TEST(closed == 1);
  BOOST_TEST(finished == 1);
  BOOST_TEST(reported == client.received.size());
  BOOST_TEST(held_ref.expired()); // what it held is released at the end
  BOOST_TEST(f.stats.bytes_queued.load() == 0);
  conn->close(1001, "again"); // closed already: nothing happens
  f.run();
  BOOST_TEST(conn->closes.size() == 1u);
  BOOST_TEST(closed == 1);
}

BOOST_AUTO_TEST_CASE(a_close_dropping_the_queue_still_completes_the_item_being_written) {
  shard_fixture f;
  probe_client client;
  auto conn = connect_probe(f, client, {.queue_limit_bytes = 16 * 1024 * 1024}, 8192, 4096);
  conn->accept();
  f.run();
  const std::size_t size = 4096;
  auto item = shared_bytes(std::string(size, 'd'));
  int sent = fill_socket(f, conn, item);
  for (int i = 0; i < 20; ++i) // queued behind the full socket
    post_enqueue(f, conn, item);
  f.run();
  const auto queued = conn->queued_bytes();
  BOOST_REQUIRE(queued > static_cast<std::int64_t>(20 * size));
  conn->close(1013, "slow", true);
  f.run();
  // Only what the socket has taken part of is left.
  BOOST_TEST(conn->queued_bytes() <= static_cast<std::int64_t>(size));
  BOOST_TEST(f.stats.bytes_queued.load() == conn->queued_bytes());
  BOOST_TEST(pump_until(f, client, [&] { return conn->finished() && client.closed_by_peer(); }));
  const std::string end = "close 1013\n";
  BOOST_REQUIRE(client.received.ends_with(end));
  // Whole items only (the one cut by the full socket was completed), fewer than queued.
  const auto data = client.received.size() - 5 - end.size();
  BOOST_TEST(data % size == 0u);
  BOOST_TEST(data / size < static_cast<std::size_t>(sent + 20));
  BOOST_TEST(client.received.find_first_not_of('d', 5) == client.received.size() - end.size());
  BOOST_TEST(f.stats.bytes_queued.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_peer_that_goes_away_ends_the_connection_and_its_counts) {
  shard_fixture f;
  int closed = 0;
  {
    probe_client client;
    auto conn = connect_probe(f, client, {.queue_limit_bytes = 16 * 1024 * 1024}, 8192, 4096);
    conn->on_closed = [&] { ++closed; };
    conn->accept();
    f.run();
    BOOST_TEST(f.stats.push_connections_by_io_thread[0].load() == 1);
    fill_socket(f, conn, shared_bytes(std::string(4096, 'g')));
    // The client resets the connection with data unread.
    linger reset{1, 0};
    ::setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(client.fd);
    client.fd = -1;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!conn->finished() && std::chrono::steady_clock::now() < until) {
      post_enqueue(f, conn, shared_bytes("more")); // a write reports the reset
      f.run();
    }
    BOOST_TEST(conn->finished());
    BOOST_TEST(closed == 1);
    BOOST_TEST(conn->queued_bytes() == 0);
    BOOST_TEST(f.stats.bytes_queued.load() == 0); // what was queued is no longer counted
  }
  f.run();
  BOOST_TEST(f.stats.push_connections_by_io_thread[0].load() == 0); // the connection is gone
}

BOOST_AUTO_TEST_SUITE_END()
