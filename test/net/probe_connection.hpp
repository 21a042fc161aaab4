// Test support of net/: a push_connection of no protocol (probe_connection), which writes
// what it is given as it is, so that tests see push_connection's queue and writer (and the
// fan-out groups) without WebSocket or SSE framing; and a loopback client for it. The tests
// run the shard's event loop themselves (poll), on their own thread.
//
// probe_connection's protocol: accept() puts "open\n" before everything queued; a close
// queues "close <code>\n" as the last item (and finishes at once when not accepted, as an
// SSE connection does, or when `finish_on_close` says so); the connection finishes once the
// last item is written.
//
// Thread-safety: as push_connection; the helpers are used by the test's thread, which also
// runs the shard.
#pragma once

#include <boost/test/unit_test.hpp>

#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/push_connection.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rheo::test {

class probe_connection final : public push_connection {
public:
  probe_connection(io_shard& shard, boost::asio::ip::tcp::socket socket, options opts = {})
      : push_connection(shard, connection_stream(std::move(socket)), 11, opts) {}

  push_transport transport() const override { return push_transport::sse; }

  void accept() override {
    boost::asio::post(socket_.get_executor(), [self = self()] {
      if (self->finished_ || self->accepting_) return;
      self->accepting_ = true;
      self->queue_first("open\n");
      self->open_for_writing();
    });
  }

  /// On the shard's thread: as if a handshake had begun (accept() without the writing).
  void handshake_under_way() { accepting_ = true; }

  /// The closes begun (code, reason), in order (at most one: a connection closes once).
  std::vector<std::pair<std::uint16_t, std::string>> closes;
  /// A close finishes the connection at once, nothing more written.
  bool finish_on_close = false;

protected:
  void start_close(std::uint16_t code, std::string_view reason, bool drop_queued) override {
    if (closing_ || finished_) return;
    closing_ = true;
    closes.emplace_back(code, std::string(reason));
    if (drop_queued) drop_queued_data();
    if (!accepting_ || finish_on_close) return finish(); // nothing begun: nothing to end
    queue_control("close " + std::to_string(code) + "\n", true);
  }
  void last_item_written() override { finish(); }

private:
  std::shared_ptr<probe_connection> self() {
    return std::static_pointer_cast<probe_connection>(shared_from_this());
  }
};

inline std::shared_ptr<const std::string> shared_bytes(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

/// A shard of the test's own and its metrics.
struct shard_fixture {
  metrics stats;
  io_shard shard{0, stats};

  /// Runs every handler that is ready (including those they post), then returns.
  void run() {
    shard.context().restart();
    shard.context().poll();
  }
  /// A connection without a peer (never accepted: what it is given stays queued).
  std::shared_ptr<probe_connection> unconnected(push_connection::options opts = {}) {
    return std::make_shared<probe_connection>(shard, boost::asio::ip::tcp::socket(shard.context()),
                                              opts);
  }
};

/// The client end of a probe connection over loopback: a raw non-blocking socket.
struct probe_client {
  int fd = -1;
  std::string received;

  probe_client() = default;
  probe_client(const probe_client&) = delete;
  probe_client& operator=(const probe_client&) = delete;
  ~probe_client() {
    if (fd >= 0) ::close(fd);
  }
  /// Reads what the socket has; false when nothing was there (or the peer closed).
  bool read_some() {
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    received.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  /// Whether the server closed its end (a read returns 0).
  bool closed_by_peer() {
    char c;
    return ::recv(fd, &c, 1, MSG_PEEK) == 0;
  }
};

/// A probe connection on `f`'s shard over loopback, and its client. Non-zero buffer sizes
/// fix SO_SNDBUF of the server end and SO_RCVBUF of the client (to fill the socket soon).
inline std::shared_ptr<probe_connection> connect_probe(shard_fixture& f, probe_client& client,
                                                       push_connection::options opts = {},
                                                       int server_sndbuf = 0,
                                                       int client_rcvbuf = 0) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  tcp::acceptor acceptor(f.shard.context(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  client.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (client_rcvbuf)
    ::setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(acceptor.local_endpoint().port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::fcntl(client.fd, F_SETFL, ::fcntl(client.fd, F_GETFL) | O_NONBLOCK);
  tcp::socket s(f.shard.context());
  acceptor.accept(s);
  if (server_sndbuf) s.set_option(net::socket_base::send_buffer_size(server_sndbuf));
  return std::make_shared<probe_connection>(f.shard, std::move(s), opts);
}

/// Alternates reading and running until `done()` (or a deadline of 20 s); returns done().
template <class F> bool pump_until(shard_fixture& f, probe_client& client, F&& done) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done() && std::chrono::steady_clock::now() < until) {
    f.run();
    client.read_some();
  }
  return done();
}

} // namespace rheo::test
