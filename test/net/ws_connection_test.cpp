// The WebSocket connection's writer, in process over real loopback sockets: corking
// (frames queued within one turn of the I/O thread leave in one gather write), frames
// that arrive while the socket is full, and the queue limit (1013). The test runs the
// shard's event loop itself, on its own thread, so it counts writes, not time.
#include <boost/test/unit_test.hpp>

#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/ws_connection.hpp"

#include "net/ws_frame.hpp"
#include <functional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

using namespace rheo;
namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

BOOST_AUTO_TEST_SUITE(ws_connection_test)

namespace {

/// One server-side connection (handshaken), the raw client socket of its peer, and the
/// metrics the connection counts on.
struct peer {
  metrics stats;
  io_shard shard{0, stats};
  std::shared_ptr<ws_connection> conn;
  int client = -1;
  std::string received; // client bytes after the 101 response
  bool closed_reported = false;

  /// `before_accept` runs on the shard's thread before the handshake starts.
  explicit peer(ws_connection::options opts, int server_sndbuf = 0, int client_rcvbuf = 0,
                const std::function<void(ws_connection&)>& before_accept = {}) {
    tcp::acceptor acceptor(shard.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (client_rcvbuf)
      ::setsockopt(client, SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(acceptor.local_endpoint().port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
    tcp::socket s(shard.context());
    acceptor.accept(s);
    if (server_sndbuf) s.set_option(net::socket_base::send_buffer_size(server_sndbuf));
    http::request<http::string_body> req{http::verb::get, "/c/_streams/all", 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    conn = std::make_shared<ws_connection>(shard, std::move(s), std::move(req),
                                           boost::beast::flat_buffer{}, opts);
    conn->on_closed = [this] { closed_reported = true; };
    if (before_accept) before_accept(*conn);
    conn->accept();
    // Until the client has the whole 101 response.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::size_t end = std::string::npos;
    while ((end = received.find("\r\n\r\n")) == std::string::npos &&
           std::chrono::steady_clock::now() < until) {
      run();
      read_some();
    }
    BOOST_REQUIRE_MESSAGE(end != std::string::npos, "no handshake response");
    BOOST_REQUIRE(received.rfind("HTTP/1.1 101", 0) == 0);
    received.erase(0, end + 4);
  }
  ~peer() {
    conn->close(1000, "");
    run();
    ::close(client);
    run();
  }

  /// Runs every handler that is ready (including those they post), then returns.
  void run() {
    shard.context().restart();
    shard.context().poll();
  }
  /// Gather writes to the connection's socket so far.
  std::uint64_t writes() const { return stats.push_writes.load(); }
  /// Reads what the client socket has; false when nothing was there.
  bool read_some() {
    char buf[65536];
    ssize_t n = ::recv(client, buf, sizeof buf, 0);
    if (n <= 0) return false;
    received.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  /// Alternates reading and running until `bytes` have arrived (or the deadline).
  void drain_until(std::size_t bytes) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (received.size() < bytes && std::chrono::steady_clock::now() < until) {
      read_some();
      run();
    }
  }
};

std::shared_ptr<const std::string> text_frame(std::size_t payload_bytes, char fill = 'x') {
  auto f = std::make_shared<std::string>();
  ws::append_frame(*f, ws::opcode::text, std::string(payload_bytes, fill));
  return f;
}

/// Server frames in `bytes`: how many data frames, and the close code if a close came.
struct frames_seen {
  int data = 0;
  int close_code = -1;
};
frames_seen parse_frames(const std::string& bytes) {
  frames_seen out;
  std::size_t pos = 0;
  while (pos + 2 <= bytes.size()) {
    auto b0 = static_cast<unsigned char>(bytes[pos]);
    std::uint64_t len = static_cast<unsigned char>(bytes[pos + 1]) & 0x7F;
    std::size_t head = 2;
    if (len == 126) {
      len = (std::uint64_t(static_cast<unsigned char>(bytes[pos + 2])) << 8) |
            static_cast<unsigned char>(bytes[pos + 3]);
      head = 4;
    } else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | static_cast<unsigned char>(bytes[pos + 2 + i]);
      head = 10;
    }
    if (pos + head + len > bytes.size()) break;
    if ((b0 & 0x0F) == 0x1) ++out.data;
    if ((b0 & 0x0F) == 0x8 && len >= 2)
      out.close_code = (static_cast<unsigned char>(bytes[pos + head]) << 8) |
                       static_cast<unsigned char>(bytes[pos + head + 1]);
    pos += head + len;
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(frames_queued_in_one_turn_leave_in_one_write) {
  peer p({});
  auto frame = text_frame(100);
  constexpr int n = 50;
  // 50 batches reach the connection within one turn (as 50 subscriptions' batches would).
  for (int i = 0; i < n; ++i)
    net::post(p.shard.context(), [&p, frame] { p.conn->enqueue(frame, 1); });
  auto before = p.writes();
  p.run();
  BOOST_TEST(p.writes() - before == 1u);
  p.drain_until(n * frame->size());
  BOOST_TEST(parse_frames(p.received).data == n);
  BOOST_TEST(p.conn->queued_bytes() == 0);
}

BOOST_AUTO_TEST_CASE(frames_that_arrive_while_the_socket_is_full_leave_together) {
  // A small server send buffer and a client that does not read yet: the socket fills.
  peer p({.queue_limit_bytes = 16 * 1024 * 1024}, 8192, 4096);
  auto big = text_frame(16 * 1024, 'b');
  int big_frames = 0;
  // Fill the socket: write until frames stay queued.
  for (; big_frames < 200 && p.conn->queued_bytes() == 0; ++big_frames) {
    net::post(p.shard.context(), [&p, big] { p.conn->enqueue(big, 1); });
    p.run();
  }
  BOOST_REQUIRE(p.conn->queued_bytes() > 0);
  // Now a burst of small frames, each in a turn of its own.
  constexpr int n = 500;
  auto small = text_frame(100, 's');
  auto before = p.writes();
  for (int i = 0; i < n; ++i) {
    net::post(p.shard.context(), [&p, small] { p.conn->enqueue(small, 1); });
    p.run();
  }
  BOOST_TEST(p.writes() - before == 0u); // nothing written while the socket is full
  p.drain_until(big_frames * big->size() + n * small->size());
  auto seen = parse_frames(p.received);
  BOOST_TEST(seen.data == big_frames + n);
  auto burst_writes = p.writes() - before;
  BOOST_TEST_MESSAGE(n << " small frames after " << big_frames << " big ones: " << burst_writes
                       << " writes");
  BOOST_TEST(burst_writes < static_cast<std::uint64_t>(n / 10));
  BOOST_TEST(p.conn->queued_bytes() == 0);
}

BOOST_AUTO_TEST_CASE(a_queue_over_its_limit_closes_the_connection_with_1013) {
  peer p({.queue_limit_bytes = 64 * 1024}, 8192, 4096);
  auto closes = p.stats.slow_consumer_closes.load();
  auto frame = text_frame(4096);
  int accepted = 0;
  std::int64_t last = 1;
  for (int i = 0; i < 1000 && last > 0; ++i) {
    net::post(p.shard.context(), [&] { last = p.conn->enqueue(frame, 1); });
    p.run();
    if (last > 0) ++accepted;
  }
  BOOST_REQUIRE(last == 0); // refused: over the limit
  BOOST_TEST(p.stats.slow_consumer_closes.load() == closes + 1);
  // What was queued is dropped, except the frame the socket has taken part of.
  BOOST_TEST(p.conn->queued_bytes() <= static_cast<std::int64_t>(frame->size()));
  // Once the client reads: the frames already in the socket, then the close frame.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (parse_frames(p.received).close_code < 0 && std::chrono::steady_clock::now() < until) {
    p.read_some();
    p.run();
  }
  auto seen = parse_frames(p.received);
  BOOST_TEST(seen.close_code == 1013);
  BOOST_TEST(seen.data < accepted);
  // Later frames are refused without queueing anything.
  net::post(p.shard.context(), [&] { last = p.conn->enqueue(frame, 1); });
  p.run();
  BOOST_TEST(last == 0);
}

BOOST_AUTO_TEST_CASE(a_queue_over_its_limit_before_the_handshake_closes_with_1013_after_it) {
  // A resuming client's replay can fill the queue before the 101 is written: the client
  // still gets the 101, then the close with the reason, instead of a dropped connection.
  auto frame = text_frame(600);
  std::int64_t third = -1;
  peer p({.queue_limit_bytes = 1000}, 0, 0, [&](ws_connection& c) {
    c.enqueue(frame, 1);
    third = c.enqueue(frame, 1); // over the limit
  });
  BOOST_TEST(third == 0);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (parse_frames(p.received).close_code < 0 && std::chrono::steady_clock::now() < until) {
    p.read_some();
    p.run();
  }
  auto seen = parse_frames(p.received);
  BOOST_TEST(seen.close_code == 1013);
  BOOST_TEST(seen.data == 0); // what was queued was dropped
  BOOST_TEST(p.stats.slow_consumer_closes.load() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
