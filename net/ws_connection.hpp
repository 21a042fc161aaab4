// One WebSocket connection after its HTTP upgrade request was accepted for a stream:
// the handshake, a reader of client frames (ignored, bounded, control frames handled),
// a corking writer, server pings with a pong timeout, the close handshake, and the
// connection's backpressure: one count of queued bytes, its limit and the overflow action
// (close 1013, "slow consumer").
//
// Writing: enqueue() only appends the shared frame buffers to the queue and asks the shard
// to flush the connection at the end of this turn of its event loop; flush() then writes
// everything queued with one gather write (sendmsg) on the non-blocking socket, and when
// the socket is full, waits until it is writable and writes everything queued by then in
// one go again. A burst of frames to a busy socket is one syscall, not one per frame.
//
// Thread-safety: the connection lives on one I/O thread (its shard). accept(), reject(),
// close() and shut_down() may be called from any thread (they post to the shard);
// everything else only on the shard's thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/connection_registry.hpp"
#include "net/ws_frame.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rheo {

class io_shard;
class fanout_group;

class ws_connection : public client_connection, public std::enable_shared_from_this<ws_connection> {
public:
  struct options {
    std::size_t max_client_message_bytes = 64 * 1024;
    /// Outbound bytes queued (not yet written) before the connection closes with 1013.
    std::int64_t queue_limit_bytes = 1024 * 1024;
    std::chrono::milliseconds ping_interval{30000};
    std::chrono::milliseconds pong_timeout{30000};
  };

  /// `socket` must belong to `shard`'s context.
  ws_connection(io_shard& shard, boost::asio::ip::tcp::socket socket,
                boost::beast::http::request<boost::beast::http::string_body> req,
                boost::beast::flat_buffer leftover, options opts);
  ~ws_connection();

  /// Called once, on the shard's thread, when the connection has closed (for any reason).
  /// Set on the shard's thread, before accept(), reject() or close() can run there.
  std::function<void()> on_closed;

  /// Completes the WebSocket handshake; frames queued before it completes wait for it.
  void accept();
  /// Answers the upgrade request with an HTTP error instead, then closes.
  void reject(int status, std::string json_body);
  /// Sends a close frame and closes. `drop_queued` discards frames not yet written;
  /// otherwise they go out first.
  void close(std::uint16_t code, std::string reason, bool drop_queued = false);
  /// Closes with 1001 "server shutting down" (frames queued before go out first).
  void shut_down() override;

  io_shard& shard() const { return shard_; }

  // -- on the shard's thread --------------------------------------------------

  /// Queues `frames` pre-built data frames (shared with other connections). Returns the
  /// bytes added to the queue: 0 when the connection is closing, or when they would take
  /// the queue over its limit, in which case the connection closes with 1013.
  std::int64_t enqueue(const std::shared_ptr<const std::string>& bytes, std::uint32_t frames);
  /// Writes what is queued (called by the shard once per turn after enqueue()).
  void flush();
  bool finished() const { return finished_; }
  std::int64_t queued_bytes() const { return queued_; }

private:
  friend class fanout_group;

  struct item {
    std::shared_ptr<const std::string> bytes;
    std::uint32_t frames = 0; // data frames in `bytes` (0 for control frames)
    bool close = false;       // a close frame: nothing is written after it
  };
  struct handshake {
    boost::beast::http::request<boost::beast::http::string_body> req;
    boost::beast::flat_buffer leftover;
  };

  void do_read();
  void read_ready(boost::system::error_code ec);
  void handle_bytes(std::string_view data);
  void queue_control(std::string frame, bool close = false);
  void schedule_flush();
  void do_write();
  void written(std::size_t n);
  void start_close(std::uint16_t code, std::string_view reason, bool drop_queued);
  void drop_queued_data();
  void schedule_ping();
  void finish(); // closes the socket, leaves the fan-out group, reports on_closed once

  io_shard& shard_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<handshake> handshake_; // until the handshake completes
  options opts_;
  // Pings while open; after our close frame, the wait for the client's close.
  boost::asio::steady_timer timer_;
  ws::frame_parser parser_;
  std::vector<item> queue_; // [head_, end) not yet fully written
  std::size_t head_ = 0;
  std::size_t head_offset_ = 0; // bytes of queue_[head_] already written
  std::int64_t queued_ = 0;     // data bytes in the queue
  fanout_group* group_ = nullptr;
  std::size_t group_slot_ = 0;
  std::chrono::steady_clock::time_point ping_sent_;
  bool accepting_ = false; // handshake under way (or done)
  bool open_ = false;      // handshake done
  bool flush_scheduled_ = false;
  bool write_blocked_ = false; // waiting for the socket to become writable
  bool closing_ = false;       // close frame queued; no more data frames
  bool close_sent_ = false;    // close frame written
  bool finished_ = false;
  bool awaiting_pong_ = false;
};

} // namespace rheo
