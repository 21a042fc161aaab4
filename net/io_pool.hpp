// The I/O threads: one io_context per thread (a "shard"). Every connection is pinned to
// one shard for its life, so its handlers never run concurrently and need no strand, and
// per-thread state (the connections to flush at the end of this turn, a read buffer)
// needs no lock.
//
// The connections on a shard count on its metrics() (the server's, see net/metrics.hpp).
//
// Thread-safety: an io_pool is built, started and joined by its owner; release(), stop()
// and next() may be called from any thread. An io_shard's context() and metrics() may be
// used from any thread (to post to it; metrics are atomic); defer_flush() and read_buffer()
// only on the shard's own thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace rheo {

struct metrics;
class push_connection;

class io_shard {
public:
  /// `stats` must outlive the shard and its connections.
  io_shard(unsigned index, rheo::metrics& stats);
  io_shard(const io_shard&) = delete;
  io_shard& operator=(const io_shard&) = delete;

  boost::asio::io_context& context() { return ctx_; }
  unsigned index() const { return index_; }
  /// What the shard's connections count on.
  rheo::metrics& metrics() const { return metrics_; }

  /// On this shard's thread: `conn` has frames queued. Every connection deferred during
  /// one turn of the event loop is flushed once, after the handlers already queued (so the
  /// frames of every batch that arrived in that turn leave in one gather write).
  void defer_flush(std::shared_ptr<push_connection> conn);

  /// On this shard's thread: scratch space for socket reads, shared by its connections
  /// (they read only when readable, and parse what they read at once).
  std::vector<char>& read_buffer() { return read_buffer_; }

private:
  void flush();

  boost::asio::io_context ctx_{1};
  unsigned index_;
  rheo::metrics& metrics_;
  std::vector<std::shared_ptr<push_connection>> dirty_;
  std::vector<std::shared_ptr<push_connection>> flushing_;
  bool flush_posted_ = false;
  std::vector<char> read_buffer_;
};

class io_pool {
public:
  /// `threads` shards (at least 1), counting on `stats` (which must outlive the pool).
  io_pool(unsigned threads, metrics& stats);
  ~io_pool();
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  unsigned size() const { return static_cast<unsigned>(shards_.size()); }
  io_shard& shard(unsigned i) { return *shards_[i]; }
  /// The shard for a new connection (round robin).
  io_shard& next();

  /// Runs one thread per shard, until release() and the shard's last handler, or stop().
  void start();
  /// Lets each thread end once its shard has no more work (a graceful shutdown).
  void release();
  /// Stops every shard's event loop at once; pending handlers are abandoned.
  void stop();
  /// Joins the threads.
  void join();

private:
  std::vector<std::unique_ptr<io_shard>> shards_;
  std::mutex guards_mutex_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<unsigned> next_{0};
};

} // namespace rheo
