#include "net/ws_connection.hpp"

#include "net/metrics.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>
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

ws_connection::ws_connection(tcp::socket socket, http::request<http::string_body> req,
                             beast::flat_buffer leftover, options opts)
    : socket_(std::move(socket)), req_(std::move(req)), leftover_(std::move(leftover)), opts_(opts),
      ping_timer_(socket_.get_executor()), close_timer_(socket_.get_executor()),
      // Clients send little (keep-alives, pongs): a small read buffer keeps idle
      // connections cheap; larger frames are read in several pieces.
      parser_(opts.max_client_message_bytes), read_buf_(1024) {}

ws_connection::~ws_connection() {
  global_metrics().bytes_queued.fetch_sub(queued_bytes_.load(), std::memory_order_relaxed);
}

void ws_connection::accept() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    auto ws = std::make_shared<beast::websocket::stream<tcp::socket&>>(self->socket_);
    ws->set_option(beast::websocket::stream_base::decorator(
        [](beast::websocket::response_type& res) { res.set(http::field::server, "rheo"); }));
    ws->async_accept(self->req_, [self, ws](beast::error_code ec) {
      self->req_ = {};
      if (ec || self->finished_) return self->finish();
      self->open_ = true;
      auto data = self->leftover_.data();
      std::string early(static_cast<const char*>(data.data()), data.size());
      self->leftover_.consume(data.size());
      if (!early.empty()) self->handle_bytes(early);
      if (self->finished_) return;
      self->do_read();
      self->schedule_ping();
      self->do_write();
    });
  });
}

void ws_connection::reject(int status, std::string json_body) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), status, body = std::move(json_body)] {
              auto res = std::make_shared<http::response<http::string_body>>(
                  static_cast<http::status>(status), self->req_.version());
              res->set(http::field::server, "rheo");
              res->set(http::field::content_type, "application/json");
              res->keep_alive(false);
              res->body() = body;
              res->prepare_payload();
              http::async_write(self->socket_, *res,
                                [self, res](beast::error_code, std::size_t) { self->finish(); });
            });
}

void ws_connection::send(std::shared_ptr<const std::string> bytes, std::uint32_t frames) {
  global_metrics().bytes_queued.fetch_add(static_cast<std::int64_t>(bytes->size()),
                                          std::memory_order_relaxed);
  net::post(socket_.get_executor(), [self = shared_from_this(), bytes = std::move(bytes), frames] {
    if (self->closing_ || self->finished_) {
      auto n = static_cast<std::int64_t>(bytes->size());
      self->queued_bytes_.fetch_sub(n, std::memory_order_relaxed);
      global_metrics().bytes_queued.fetch_sub(n, std::memory_order_relaxed);
      return;
    }
    self->pending_.push_back({bytes, frames});
    self->do_write();
  });
}

void ws_connection::close(std::uint16_t code, std::string reason, bool drop_queued) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), code, reason = std::move(reason), drop_queued] {
              self->start_close(code, reason, drop_queued);
            });
}

void ws_connection::start_close(std::uint16_t code, std::string_view reason, bool drop_queued) {
  if (closing_ || finished_) return;
  closing_ = true;
  if (drop_queued) {
    std::int64_t dropped = 0;
    for (auto& it : pending_)
      if (it.frames) dropped += static_cast<std::int64_t>(it.bytes->size());
    std::erase_if(pending_, [](const item& it) { return it.frames != 0; });
    queued_bytes_.fetch_sub(dropped, std::memory_order_relaxed);
    global_metrics().bytes_queued.fetch_sub(dropped, std::memory_order_relaxed);
  }
  if (!open_) {
    // Handshake still pending: nothing can be sent as a frame.
    return finish();
  }
  pending_.push_back({std::make_shared<const std::string>(ws::close_frame(code, reason)), 0});
  // A client that does not read may never let the close frame out: bound the wait.
  close_timer_.expires_after(opts_.pong_timeout + close_grace);
  close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->finish();
  });
  do_write();
}

void ws_connection::do_read() {
  socket_.async_read_some(
      net::buffer(read_buf_),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void ws_connection::on_read(beast::error_code ec, std::size_t n) {
  if (finished_) return;
  if (ec) return finish(); // EOF after our close, reset, or cancelled
  handle_bytes(std::string_view(read_buf_.data(), n));
  if (!finished_) do_read();
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
      if (close_sent_) return finish(); // the client answered our close
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
    default:
      break; // text, binary, continuation: clients' frames are ignored
    }
  }
}

void ws_connection::queue_control(std::string frame) {
  if (closing_) return;
  pending_.push_back({std::make_shared<const std::string>(std::move(frame)), 0});
  do_write();
}

void ws_connection::do_write() {
  if (!open_ || writing_ || pending_.empty() || finished_) return;
  writing_ = true;
  in_flight_.clear();
  std::vector<net::const_buffer> buffers;
  buffers.reserve(pending_.size());
  // Everything queued leaves in one gather write: one syscall, few TCP segments.
  while (!pending_.empty()) {
    in_flight_.push_back(std::move(pending_.front()));
    pending_.pop_front();
    buffers.emplace_back(in_flight_.back().bytes->data(), in_flight_.back().bytes->size());
  }
  net::async_write(socket_, buffers,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->writing_ = false;
                     std::int64_t data_bytes = 0;
                     std::uint64_t frames = 0;
                     bool wrote_close = false;
                     for (auto& it : self->in_flight_) {
                       if (it.frames) {
                         data_bytes += static_cast<std::int64_t>(it.bytes->size());
                         frames += it.frames;
                       } else if (it.bytes->size() >= 1 &&
                                  (static_cast<std::uint8_t>((*it.bytes)[0]) & 0x0F) == 0x8) {
                         wrote_close = true;
                       }
                     }
                     self->in_flight_.clear();
                     self->queued_bytes_.fetch_sub(data_bytes, std::memory_order_relaxed);
                     auto& m = global_metrics();
                     m.bytes_queued.fetch_sub(data_bytes, std::memory_order_relaxed);
                     if (ec) return self->finish();
                     m.frames_sent.fetch_add(frames, std::memory_order_relaxed);
                     if (wrote_close) {
                       self->close_sent_ = true;
                       // Half-close: the client sees our close and answers; its close (or EOF) ends
                       // it.
                       beast::error_code ignored;
                       self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                       self->close_timer_.expires_after(close_grace);
                       self->close_timer_.async_wait([self](beast::error_code e) {
                         if (!e) self->finish();
                       });
                       self->pending_.clear();
                       return;
                     }
                     self->do_write();
                   });
}

void ws_connection::schedule_ping() {
  ping_timer_.expires_after(awaiting_pong_ ? opts_.pong_timeout : opts_.ping_interval);
  ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
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

void ws_connection::finish() {
  if (finished_) return;
  finished_ = true;
  beast::error_code ignored;
  ping_timer_.cancel();
  close_timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  std::int64_t dropped = 0;
  for (auto& it : pending_)
    if (it.frames) dropped += static_cast<std::int64_t>(it.bytes->size());
  pending_.clear();
  queued_bytes_.fetch_sub(dropped, std::memory_order_relaxed);
  global_metrics().bytes_queued.fetch_sub(dropped, std::memory_order_relaxed);
  if (on_closed) {
    auto cb = std::move(on_closed);
    on_closed = nullptr;
    cb();
  }
}

} // namespace rheo
