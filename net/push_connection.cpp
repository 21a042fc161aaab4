#include "net/push_connection.hpp"

#include "net/fanout.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <span>

namespace rheo {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
// Buffers per gather write (asio passes at most 64 to one sendmsg).
constexpr std::size_t max_gather = 64;
} // namespace

push_connection::push_connection(io_shard& shard, connection_stream stream, unsigned http_version,
                                 options opts)
    : shard_(shard), stream_(std::move(stream)), socket_(stream_.socket()),
      http_version_(http_version), opts_(opts), timer_(socket_.get_executor()) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
  shard_.metrics().push_connections_by_io_thread[shard_.index()].fetch_add(
      1, std::memory_order_relaxed);
}

push_connection::~push_connection() {
  auto& m = shard_.metrics();
  m.bytes_queued.fetch_sub(queued_, std::memory_order_relaxed);
  m.push_connections_by_io_thread[shard_.index()].fetch_sub(1, std::memory_order_relaxed);
}

void push_connection::reject(int status, std::string json_body) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), status, body = std::move(json_body)] {
              if (self->finished_) return;
              auto res = std::make_shared<http::response<http::string_body>>(
                  static_cast<http::status>(status), self->http_version_);
              res->set(http::field::server, "rheo");
              res->set(http::field::content_type, "application/json");
              res->keep_alive(false);
              res->body() = body;
              res->prepare_payload();
              http::async_write(self->stream_, *res,
                                [self, res](beast::error_code, std::size_t) { self->finish(); });
            });
}

void push_connection::close(std::uint16_t code, std::string reason, bool drop_queued) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), code, reason = std::move(reason), drop_queued] {
              self->start_close(code, reason, drop_queued);
            });
}

void push_connection::shut_down() {
  close(1001, "server shutting down");
}

std::int64_t push_connection::enqueue(const std::shared_ptr<const std::string>& bytes,
                                      std::uint32_t frames) {
  if (closing_ || finished_) return 0;
  auto n = static_cast<std::int64_t>(bytes->size());
  // The limit bounds what waits: a message alone in the queue goes out whatever its size (a
  // live query's init frame of a large window may be bigger than the limit).
  if (queued_ > 0 && queued_ + n > opts_.queue_limit_bytes) {
    shard_.metrics().slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    std::string reason =
        "slow consumer: outbound queue over " + std::to_string(opts_.queue_limit_bytes) + " bytes";
    if (!open_ && !accepting_) {
      // Before the handshake (a long replay): close right after it.
      drop_queued_data();
      closing_ = true;
      close_after_handshake_.emplace(1013, std::move(reason));
      return 0;
    }
    start_close(1013, reason, true);
    return 0;
  }
  queued_ += n;
  queue_.push_back({bytes, frames, false});
  schedule_flush();
  return n;
}

void push_connection::when_drained(std::function<void()> fn) {
  if (finished_) return;
  if (queued_ <= opts_.queue_limit_bytes / 4) return fn();
  on_drained_ = std::move(fn);
}

void push_connection::schedule_flush() {
  if (flush_scheduled_ || write_blocked_ || !open_ || finished_) return;
  flush_scheduled_ = true;
  shard_.defer_flush(shared_from_this());
}

void push_connection::flush() {
  flush_scheduled_ = false;
  do_write();
}

void push_connection::open_for_writing() {
  open_ = true;
  if (close_after_handshake_) {
    auto [code, reason] = std::move(*close_after_handshake_);
    close_after_handshake_.reset();
    closing_ = false;
    start_close(code, reason, true);
  }
  do_write();
}

void push_connection::queue_control(std::string bytes, bool last) {
  if (closing_ && !last) return;
  queue_.push_back({std::make_shared<const std::string>(std::move(bytes)), 0, last});
  schedule_flush();
}

void push_connection::queue_first(std::string bytes) {
  queue_.insert(queue_.begin() + static_cast<std::ptrdiff_t>(head_),
                item{std::make_shared<const std::string>(std::move(bytes)), 0, false});
}

void push_connection::drop_queued_data() {
  // The item being written (partly) stays, and over TLS all those in the write in flight;
  // the rest of the data frames go.
  std::int64_t dropped = 0;
  std::size_t keep = std::max(head_ + (head_offset_ ? 1 : 0), head_ + tls_items_);
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

void push_connection::do_write() {
  if (!open_ || write_blocked_ || finished_) return;
  auto& m = shard_.metrics();
  if (stream_.tls() && head_ < queue_.size() && !last_sent_) return write_tls();
  while (head_ < queue_.size() && !last_sent_) {
    std::array<net::const_buffer, max_gather> bufs;
    std::size_t count = 0;
    for (std::size_t i = head_; i < queue_.size() && count < max_gather; ++i) {
      const std::string& b = *queue_[i].bytes;
      std::size_t skip = i == head_ ? head_offset_ : 0;
      bufs[count++] = net::const_buffer(b.data() + skip, b.size() - skip);
      if (queue_[i].last) break;
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
    m.push_writes.fetch_add(1, std::memory_order_relaxed);
    written(n);
    if (finished_) return;
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

void push_connection::write_tls() {
  constexpr std::size_t max_tls_write = 64 * 1024;
  tls_out_.clear();
  tls_items_ = 0;
  for (std::size_t i = head_; i < queue_.size() && tls_out_.size() < max_tls_write; ++i) {
    const std::string& b = *queue_[i].bytes;
    std::size_t skip = i == head_ ? head_offset_ : 0;
    tls_out_.append(b, skip, std::string::npos);
    ++tls_items_;
    if (queue_[i].last) break;
  }
  write_blocked_ = true;
  net::async_write(*stream_.tls(), net::buffer(tls_out_),
                   [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                     self->write_blocked_ = false;
                     self->tls_items_ = 0;
                     if (self->finished_) return;
                     if (ec) return self->finish();
                     self->shard_.metrics().push_writes.fetch_add(1, std::memory_order_relaxed);
                     self->written(n);
                     if (!self->finished_) self->do_write();
                   });
}

void push_connection::read_tls() {
  constexpr std::size_t size = 16 * 1024;
  if (!tls_in_) tls_in_ = std::make_unique<char[]>(size);
  reading_tls_ = true;
  stream_.tls()->async_read_some(
      net::buffer(tls_in_.get(), size),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->reading_tls_ = false;
        if (self->finished_) {
          if (self->goodbye_) self->say_goodbye();
          return;
        }
        if (ec) return self->finish(); // EOF after our close, reset, a TLS alert
        self->received(std::string_view(self->tls_in_.get(), n));
        if (!self->finished_) self->read_tls();
      });
}

void push_connection::written(std::size_t n) {
  bytes_sent_ += n;
  std::int64_t data_bytes = 0;
  std::uint64_t frames = 0;
  bool last_now = false;
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
    const bool was_last = it.last;
    it.bytes.reset();
    ++head_;
    if (was_last) {
      last_sent_ = last_now = true;
      break;
    }
  }
  queued_ -= data_bytes;
  auto& m = shard_.metrics();
  m.bytes_queued.fetch_sub(data_bytes, std::memory_order_relaxed);
  m.frames_sent.fetch_add(frames, std::memory_order_relaxed);
  if (on_drained_ && queued_ <= opts_.queue_limit_bytes / 4) std::exchange(on_drained_, {})();
  if (last_sent_) {
    // Nothing more is written after the last item.
    std::int64_t rest = 0;
    for (std::size_t i = head_; i < queue_.size(); ++i)
      if (queue_[i].frames) rest += static_cast<std::int64_t>(queue_[i].bytes->size());
    queue_.clear();
    head_ = 0;
    queued_ -= rest;
    m.bytes_queued.fetch_sub(rest, std::memory_order_relaxed);
  }
  if (last_now) last_item_written();
}

void push_connection::say_goodbye() {
  goodbye_ = false;
  auto close_now = [self = shared_from_this()] {
    beast::error_code ignored;
    self->timer_.cancel();
    self->socket_.close(ignored);
  };
  // The client's close_notify (or its EOF) ends it; one that answers nothing, the timer.
  timer_.expires_after(std::chrono::seconds(2));
  timer_.async_wait([close_now](beast::error_code e) {
    if (!e) close_now();
  });
  stream_.tls()->async_shutdown([close_now](beast::error_code) { close_now(); });
}

void push_connection::finish() {
  if (finished_) return;
  finished_ = true;
  beast::error_code ignored;
  timer_.cancel();
  if (tls() && last_sent_ && !write_blocked_) {
    // A clean end over TLS: close_notify, so that the client knows nothing was cut off. It
    // goes once no read is in flight (a TLS stream has one operation each way at a time):
    // the pending read is cancelled, and its handler sends it.
    goodbye_ = true;
    if (reading_tls_)
      socket_.cancel(ignored);
    else
      say_goodbye();
  } else {
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
  std::int64_t dropped = 0;
  for (std::size_t i = head_; i < queue_.size(); ++i)
    if (queue_[i].frames) dropped += static_cast<std::int64_t>(queue_[i].bytes->size());
  queue_.clear();
  head_ = 0;
  head_offset_ = 0;
  queued_ -= dropped;
  shard_.metrics().bytes_queued.fetch_sub(dropped, std::memory_order_relaxed);
  for (auto m : std::vector<membership>(groups_))
    m.group->remove(*this);
  held_.clear();
  on_drained_ = nullptr;
  if (on_closed) {
    auto cb = std::move(on_closed);
    on_closed = nullptr;
    cb();
  }
  if (on_finished) {
    auto cb = std::move(on_finished);
    on_finished = nullptr;
    cb(bytes_sent_);
  }
}

} // namespace rheo
