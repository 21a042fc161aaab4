#include "net/io_pool.hpp"

#include "config/log.hpp"
#include "net/metrics.hpp"
#include "net/push_connection.hpp"

#include <boost/asio/post.hpp>

namespace rheo {

namespace {
constexpr std::size_t read_buffer_bytes = 64 * 1024;
} // namespace

io_shard::io_shard(unsigned index, rheo::metrics& stats)
    : index_(index), metrics_(stats), read_buffer_(read_buffer_bytes) {}

void io_shard::defer_flush(std::shared_ptr<push_connection> conn) {
  dirty_.push_back(std::move(conn));
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(ctx_, [this] { flush(); });
}

void io_shard::flush() {
  flush_posted_ = false;
  // Connections deferred while flushing (e.g. a close frame queued by a failed write's
  // cleanup) wait for the next turn.
  flushing_.swap(dirty_);
  for (auto& c : flushing_)
    c->flush();
  flushing_.clear();
}

io_pool::io_pool(unsigned threads, metrics& stats) {
  threads = std::min<unsigned>(threads, metrics::max_io_threads);
  stats.io_threads.store(threads, std::memory_order_relaxed);
  shards_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i)
    shards_.push_back(std::make_unique<io_shard>(i, stats));
}

io_pool::~io_pool() {
  stop();
  join();
}

io_shard& io_pool::next() {
  return *shards_[next_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
}

void io_pool::start() {
  {
    std::lock_guard lock(guards_mutex_);
    for (auto& s : shards_)
      guards_.push_back(boost::asio::make_work_guard(s->context()));
  }
  for (auto& s : shards_)
    threads_.emplace_back([&ctx = s->context()] {
      for (;;) {
        try {
          ctx.run();
          return;
        } catch (const std::exception& e) {
          log::error(std::string("I/O thread: unexpected exception: ") + e.what());
        }
      }
    });
}

void io_pool::release() {
  std::lock_guard lock(guards_mutex_);
  guards_.clear();
}

void io_pool::stop() {
  release();
  for (auto& s : shards_)
    s->context().stop();
}

void io_pool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

} // namespace rheo
