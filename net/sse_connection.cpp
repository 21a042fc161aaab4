#include "net/sse_connection.hpp"

#include "net/io_pool.hpp"

#include <boost/asio/post.hpp>

namespace rheo {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
// After the end of the response went out, how long we wait for the client's EOF.
constexpr auto close_grace = std::chrono::seconds(5);
} // namespace

sse_connection::sse_connection(io_shard& shard, connection_stream stream, unsigned http_version,
                               std::vector<std::pair<std::string, std::string>> headers,
                               options opts)
    : push_connection(shard, std::move(stream), http_version, opts), headers_(std::move(headers)) {}

void sse_connection::accept() {
  net::post(socket_.get_executor(), [self = self()] {
    if (self->finished_ || self->accepting_) return;
    self->accepting_ = true;
    // The response has no length: it ends when the connection closes.
    std::string head = self->http_version_ == 10 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n";
    head += "Server: rheo\r\n"
            "Content-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n"
            "X-Accel-Buffering: no\r\n"
            "Connection: close\r\n";
    for (auto& [k, v] : self->headers_)
      head += k + ": " + v + "\r\n";
    head += "\r\n";
    self->headers_.clear();
    self->queue_first(std::move(head));
    self->do_read();
    self->schedule_keep_alive();
    self->open_for_writing();
  });
}

void sse_connection::start_close(std::uint16_t, std::string_view reason, bool drop_queued) {
  if (closing_ || finished_) return;
  closing_ = true;
  if (drop_queued) drop_queued_data();
  if (!accepting_) return finish(); // no response begun: nothing to end
  timer_.expires_after(opts_.pong_timeout + close_grace);
  timer_.async_wait([self = self()](boost::system::error_code ec) {
    if (!ec) self->finish();
  });
  // A comment says why, for people reading the stream; EventSource ignores it.
  std::string last = ": end: ";
  for (char c : reason)
    last += c == '\n' || c == '\r' ? ' ' : c;
  last += "\n\n";
  queue_control(std::move(last), true);
}

void sse_connection::last_item_written() {
  // Over TLS a TCP half-close would cut the TLS stream: the response ends with the
  // connection.
  if (tls()) return finish();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  timer_.expires_after(close_grace);
  timer_.async_wait([self = self()](boost::system::error_code e) {
    if (!e) self->finish();
  });
}

void sse_connection::do_read() {
  if (tls()) return read_tls(); // what the client sends is ignored; its EOF ends the session
  socket_.async_wait(tcp::socket::wait_read, [self = self()](boost::system::error_code ec) {
    if (self->finished_) return;
    if (ec) return self->finish();
    auto& buf = self->shard_.read_buffer();
    for (;;) {
      std::size_t n = self->socket_.read_some(net::buffer(buf), ec);
      if (ec == net::error::would_block) break;
      if (ec) return self->finish(); // EOF: the client went away
      if (n < buf.size()) break;
    }
    self->do_read();
  });
}

void sse_connection::schedule_keep_alive() {
  if (closing_ || finished_) return;
  timer_.expires_after(opts_.ping_interval);
  timer_.async_wait([self = self()](boost::system::error_code ec) {
    if (ec || self->finished_ || self->closing_) return;
    self->queue_control(": keep-alive\n\n");
    self->schedule_keep_alive();
  });
}

} // namespace rheo
