#include "net/ws_connection.hpp"

#include "net/io_pool.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace rheo {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
// After our close frame went out, how long we wait for the client's close before
// dropping the connection.
constexpr auto close_grace = std::chrono::seconds(5);
} // namespace

ws_connection::ws_connection(io_shard& shard, connection_stream stream,
                             http::request<http::string_body> req, beast::flat_buffer leftover,
                             options opts)
    : push_connection(shard, std::move(stream), req.version(), opts),
      handshake_(std::make_unique<handshake>(handshake{std::move(req), std::move(leftover)})),
      parser_(opts.max_client_message_bytes) {}

void ws_connection::accept() {
  net::post(socket_.get_executor(), [self = self()] {
    if (self->finished_) return;
    self->accepting_ = true;
    auto ws = std::make_shared<beast::websocket::stream<connection_stream&>>(self->stream_);
    ws->set_option(beast::websocket::stream_base::decorator(
        [](beast::websocket::response_type& res) { res.set(http::field::server, "rheo"); }));
    ws->async_accept(self->handshake_->req, [self, ws](beast::error_code ec) {
      if (ec || self->finished_) return self->finish();
      auto hs = std::move(self->handshake_);
      auto data = hs->leftover.data();
      std::string early(static_cast<const char*>(data.data()), data.size());
      hs.reset();
      self->open_ = true;
      if (!early.empty()) self->handle_bytes(early);
      if (self->finished_) return;
      self->do_read();
      self->schedule_ping();
      self->open_for_writing();
    });
  });
}

void ws_connection::start_close(std::uint16_t code, std::string_view reason, bool drop_queued) {
  if (closing_ || finished_) return;
  closing_ = true;
  if (drop_queued) drop_queued_data();
  if (!open_ && !accepting_) {
    // No handshake under way: nothing can be sent as a frame. (During the handshake, the
    // close frame waits for it: the client may already have seen the 101.)
    return finish();
  }
  // A client that does not read may never let the close frame out: bound the wait.
  timer_.expires_after(opts_.pong_timeout + close_grace);
  timer_.async_wait([self = self()](beast::error_code ec) {
    if (!ec) self->finish();
  });
  queue_control(ws::close_frame(code, reason), true);
}

void ws_connection::last_item_written() {
  // The client closed first: the closing handshake is complete, the server ends the TCP
  // connection (RFC 6455 7.1.1).
  if (peer_closed_) return finish();
  // Half-close: the client sees our close and answers; its close (or EOF) ends it. (Over
  // TLS a TCP half-close would cut the TLS stream: the client's close frame ends it.)
  beast::error_code ignored;
  if (!tls()) socket_.shutdown(tcp::socket::shutdown_send, ignored);
  timer_.expires_after(close_grace);
  timer_.async_wait([self = self()](beast::error_code e) {
    if (!e) self->finish();
  });
}

void ws_connection::do_read() {
  if (tls()) return read_tls();
  socket_.async_wait(tcp::socket::wait_read,
                     [self = self()](beast::error_code ec) { self->read_ready(ec); });
}

void ws_connection::read_ready(beast::error_code ec) {
  if (finished_) return;
  if (ec) return finish();
  auto& buf = shard_.read_buffer();
  for (;;) {
    std::size_t n = socket_.read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block) break;
    if (ec) return finish(); // EOF after our close, reset
    handle_bytes(std::string_view(buf.data(), n));
    if (finished_) return;
    if (n < buf.size()) break;
  }
  do_read();
}

void ws_connection::handle_bytes(std::string_view data) {
  ws::frame_parser::frame f;
  while (!data.empty() && !finished_) {
    auto st = parser_.parse(data, f);
    if (st == ws::frame_parser::status::need_more) return;
    if (st == ws::frame_parser::status::error) {
      start_close(parser_.error_code(), parser_.error_reason(), false);
      return;
    }
    switch (f.op) {
    case ws::opcode::ping: {
      std::string pong;
      ws::append_frame(pong, ws::opcode::pong, f.payload);
      queue_control(std::move(pong));
      break;
    }
    case ws::opcode::pong:
      awaiting_pong_ = false;
      break;
    case ws::opcode::close:
      if (last_sent_) return finish(); // the client answered our close
      peer_closed_ = true;
      if (!closing_) {
        // Echo the client's code (RFC 6455 5.5.1), then close.
        std::uint16_t code = ws::close_code::normal;
        if (f.payload.size() >= 2)
          code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(f.payload[0]) << 8) |
                                            static_cast<std::uint8_t>(f.payload[1]));
        if (code < 1000 || code == 1004 || code == 1005 || code == 1006 || code == 1015 ||
            code >= 5000)
          code = ws::close_code::protocol_error;
        start_close(code, "", true);
      }
      break;
    case ws::opcode::text:
    case ws::opcode::continuation:
      // Checked by the parser (UTF-8, size); passed on whole when someone listens.
      if (!on_text || closing_) break;
      if (f.op == ws::opcode::text) {
        text_.clear();
        in_text_ = true;
      }
      if (!in_text_) break; // the continuation of a binary message
      text_ += f.payload;
      if (f.fin) {
        in_text_ = false;
        on_text(text_);
        text_.clear();
      }
      break;
    default:
      break; // binary: ignored
    }
  }
}

void ws_connection::schedule_ping() {
  if (closing_ || finished_) return;
  timer_.expires_after(awaiting_pong_ ? opts_.pong_timeout : opts_.ping_interval);
  timer_.async_wait([self = self()](beast::error_code ec) {
    if (ec || self->finished_ || self->closing_) return;
    auto now = std::chrono::steady_clock::now();
    if (self->awaiting_pong_ && now - self->ping_sent_ >= self->opts_.pong_timeout) {
      // The client stopped answering.
      return self->finish();
    }
    if (!self->awaiting_pong_) {
      std::string ping;
      ws::append_frame(ping, ws::opcode::ping, "");
      self->awaiting_pong_ = true;
      self->ping_sent_ = now;
      self->queue_control(std::move(ping));
    }
    self->schedule_ping();
  });
}

} // namespace rheo
