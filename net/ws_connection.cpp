#include "net/ws_connection.hpp"

#include "net/fanout.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <array>
#include <span>

namespace rheo {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
// After our close frame went out, how long we wait for the client's close before
// dropping the connection.
constexpr auto close_grace = std::chrono::seconds(5);
// Buffers per gather write (asio passes at most 64 to one sendmsg).
constexpr std::size_t max_gather = 64;
} // namespace

ws_connection::ws_connection(io_shard& shard, tcp::socket socket,
                             http::request<http::string_body> req, beast::flat_buffer leftover,
                             options opts)
    : shard_(shard), socket_(std::move(socket)),
      handshake_(std::make_unique<handshake>(handshake{std::move(req), std::move(leftover)})),
      opts_(opts), timer_(socket_.get_executor()), parser_(opts.max_client_message_bytes) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
  shard_.metrics().ws_connections_by_io_thread[shard_.index()].fetch_add(1,
                                                                         std::memory_order_relaxed);
}

ws_connection::~ws_connection() {
  auto& m = shard_.metrics();
  m.bytes_queued.fetch_sub(queued_, std::memory_order_relaxed);
  m.ws_connections_by_io_thread[shard_.index()].fetch_sub(1, std::memory_order_relaxed);
}

void ws_connection::accept() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->finished_) return;
    self->accepting_ = true;
    auto ws = std::make_shared<beast::websocket::stream<tcp::socket&>>(self->socket_);
    ws->set_option(beast::websocket::stream_base::decorator(
        [](beast::websocket::response_type& res) { res.set(http::field::server, "rheo"); }));
    ws->async_accept(self->handshake_->req, [self, ws](beast::error_code ec) {
      if (ec || self->finished_) return self->finish();
      self->open_ = true;
      auto hs = std::move(self->handshake_);
      auto data = hs->leftover.data();
      std::string early(static_cast<const char*>(data.data()), data.size());
      hs.reset();
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
              if (self->finished_) return;
              auto res = std::make_shared<http::response<http::string_body>>(
                  static_cast<http::status>(status), self->handshake_->req.version());
              res->set(http::field::server, "rheo");
              res->set(http::field::content_type, "application/json");
              res->keep_alive(false);
              res->body() = body;
              res->prepare_payload();
              http::async_write(self->socket_, *res,
                                [self, res](beast::error_code, std::size_t) { self->finish(); });
            });
}

void ws_connection::close(std::uint16_t code, std::string reason, bool drop_queued) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), code, reason = std::move(reason), drop_queued] {
              self->start_close(code, reason, drop_queued);
            });
}

void ws_connection::shut_down() {
  close(ws::close_code::going_away, "server shutting down");
}

std::int64_t ws_connection::enqueue(const std::shared_ptr<const std::string>& bytes,
                                    std::uint32_t frames) {
  if (closing_ || finished_) return 0;
  auto n = static_cast<std::int64_t>(bytes->size());
  if (queued_ + n > opts_.queue_limit_bytes) {
    shard_.metrics().slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    start_close(ws::close_code::try_again_later,
                "slow consumer: outbound queue over " + std::to_string(opts_.queue_limit_bytes) +
                    " bytes",
                true);
    return 0;
  }
  queued_ += n;
  queue_.push_back({bytes, frames, false});
  schedule_flush();
  return n;
}

void ws_connection::schedule_flush() {
  if (flush_scheduled_ || write_blocked_ || !open_ || finished_) return;
  flush_scheduled_ = true;
  shard_.defer_flush(shared_from_this());
}

void ws_connection::flush() {
  flush_scheduled_ = false;
  do_write();
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
  timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->finish();
  });
  queue_control(ws::close_frame(code, reason), true);
}

void ws_connection::drop_queued_data() {
  // The item being written (partly) stays; the rest of the data frames go.
  std::int64_t dropped = 0;
  std::size_t keep = head_ + (head_offset_ ? 1 : 0);
  auto it = std::remove_if(queue_.begin() + static_cast<std::ptrdiff_t>(keep), queue_.end(),
                           [&](const item& x) {
                             if (!x.frames) return false;
                             dropped += static_cast<std::int64_t>(x.bytes->size());
                             return true;
                           });
  queue_.erase(it, queue_.end());
  queued_ -= dropped;
  shard_.metrics().bytes_queued.fetch_sub(dropped, std::memory_order_relaxed);
}

void ws_connection::do_read() {
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](beast::error_code ec) { self->read_ready(ec); });
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

void ws_connection::queue_control(std::string frame, bool close) {
  if (closing_ && !close) return;
  queue_.push_back({std::make_shared<const std::string>(std::move(frame)), 0, close});
  schedule_flush();
}

void ws_connection::do_write() {
  if (!open_ || write_blocked_ || finished_) return;
  auto& m = shard_.metrics();
  while (head_ < queue_.size() && !close_sent_) {
    std::array<net::const_buffer, max_gather> bufs;
    std::size_t count = 0;
    for (std::size_t i = head_; i < queue_.size() && count < max_gather; ++i) {
      const std::string& b = *queue_[i].bytes;
      std::size_t skip = i == head_ ? head_offset_ : 0;
      bufs[count++] = net::const_buffer(b.data() + skip, b.size() - skip);
      if (queue_[i].close) break;
    }
    beast::error_code ec;
    std::size_t n = socket_.write_some(std::span<const net::const_buffer>(bufs.data(), count), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      write_blocked_ = true;
      socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](beast::error_code e) {
        self->write_blocked_ = false;
        if (e) return self->finish();
        self->do_write();
      });
      return;
    }
    if (ec) return finish();
    m.ws_writes.fetch_add(1, std::memory_order_relaxed);
    written(n);
  }
  if (head_ == queue_.size()) {
    queue_.clear();
    head_ = 0;
    head_offset_ = 0;
  } else if (head_ >= 64 && head_ * 2 >= queue_.size()) {
    // A socket that never drains completely: drop the written entries now and then.
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void ws_connection::written(std::size_t n) {
  std::int64_t data_bytes = 0;
  std::uint64_t frames = 0;
  while (n > 0 && head_ < queue_.size()) {
    item& it = queue_[head_];
    std::size_t left = it.bytes->size() - head_offset_;
    if (n < left) {
      head_offset_ += n;
      break;
    }
    n -= left;
    head_offset_ = 0;
    if (it.frames) {
      data_bytes += static_cast<std::int64_t>(it.bytes->size());
      frames += it.frames;
    }
    const bool was_close = it.close;
    it.bytes.reset();
    ++head_;
    if (was_close) {
      close_sent_ = true;
      // Half-close: the client sees our close and answers; its close (or EOF) ends it.
      beast::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      timer_.expires_after(close_grace);
      timer_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e) self->finish();
      });
      break;
    }
  }
  queued_ -= data_bytes;
  auto& m = shard_.metrics();
  m.bytes_queued.fetch_sub(data_bytes, std::memory_order_relaxed);
  m.frames_sent.fetch_add(frames, std::memory_order_relaxed);
  if (close_sent_) {
    // Nothing more is written after the close frame.
    std::int64_t rest = 0;
    for (std::size_t i = head_; i < queue_.size(); ++i)
      if (queue_[i].frames) rest += static_cast<std::int64_t>(queue_[i].bytes->size());
    queue_.clear();
    head_ = 0;
    queued_ -= rest;
    m.bytes_queued.fetch_sub(rest, std::memory_order_relaxed);
  }
}

void ws_connection::schedule_ping() {
  if (closing_ || finished_) return;
  timer_.expires_after(awaiting_pong_ ? opts_.pong_timeout : opts_.ping_interval);
  timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
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
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  std::int64_t dropped = 0;
  for (std::size_t i = head_; i < queue_.size(); ++i)
    if (queue_[i].frames) dropped += static_cast<std::int64_t>(queue_[i].bytes->size());
  queue_.clear();
  head_ = 0;
  head_offset_ = 0;
  queued_ -= dropped;
  shard_.metrics().bytes_queued.fetch_sub(dropped, std::memory_order_relaxed);
  if (group_) group_->remove(*this);
  if (on_closed) {
    auto cb = std::move(on_closed);
    on_closed = nullptr;
    cb();
  }
}

} // namespace rheo
