// A client connection that the server pushes change events to: the base of WebSocket
// sessions (net/ws_connection.hpp) and Server-Sent Events sessions (net/sse_connection.hpp).
// It owns what both share: the socket on its I/O thread, the queue of shared pre-built
// buffers, the corking writer, the backpressure (one count of queued bytes, its limit and
// the overflow action: a close as "slow consumer") and the end of the connection.
//
// Writing: enqueue() only appends the shared buffers to the queue and asks the shard to
// flush the connection at the end of this turn of its event loop; flush() then writes
// everything queued with one gather write (sendmsg) on the non-blocking socket, and when
// the socket is full, waits until it is writable and writes everything queued by then in
// one go again. A burst of frames to a busy socket is one syscall, not one per frame. Over
// TLS the queued bytes are copied into one buffer (up to 64 KiB) and written as one
// asynchronous TLS write, so a burst is still a few records and syscalls.
//
// Thread-safety: the connection lives on one I/O thread (its shard). accept(), reject(),
// close() and shut_down() may be called from any thread (they post to the shard);
// everything else only on the shard's thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/connection_registry.hpp"
#include "net/connection_stream.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

class io_shard;
class fanout_group;

/// How a session's events reach its client.
enum class push_transport : std::uint8_t { websocket, sse };

class push_connection : public client_connection,
                        public std::enable_shared_from_this<push_connection> {
public:
  struct options {
    std::size_t max_client_message_bytes = 64 * 1024;
    /// Outbound bytes queued (not yet written) before the connection closes as a slow
    /// consumer (WebSocket 1013; SSE: the response ends).
    std::int64_t queue_limit_bytes = 1024 * 1024;
    /// WebSocket pings; SSE keep-alive comments.
    std::chrono::milliseconds ping_interval{30000};
    std::chrono::milliseconds pong_timeout{30000};
  };

  virtual ~push_connection();
  push_connection(const push_connection&) = delete;
  push_connection& operator=(const push_connection&) = delete;

  virtual push_transport transport() const = 0;

  /// Called once, on the shard's thread, when the connection has closed (for any reason).
  /// Set on the shard's thread, before accept(), reject() or close() can run there.
  std::function<void()> on_closed;
  /// WebSocket only: called on the shard's thread with each complete text message the client
  /// sends (fragments joined), or not at all when unset (the messages are ignored).
  std::function<void(std::string_view text)> on_text;
  /// Called once, on the shard's thread, after on_closed's moment, with the bytes written to
  /// the client (the access log's line); may be empty.
  std::function<void(std::uint64_t bytes_sent)> on_finished;

  /// Completes the handshake (WebSocket 101; SSE: the 200 response's head); what was
  /// queued before waits for it.
  virtual void accept() = 0;
  /// Answers the request with an HTTP error instead, then closes.
  void reject(int status, std::string json_body);
  /// Ends the session: a WebSocket close frame with `code` and `reason`; SSE ends the
  /// response (the code is not sent). `drop_queued` discards what is not yet written;
  /// otherwise it goes out first.
  void close(std::uint16_t code, std::string reason, bool drop_queued = false);
  /// Closes with 1001 "server shutting down" (what was queued before goes out first).
  void shut_down() override;

  io_shard& shard() const { return shard_; }
  /// Keeps `h` (a place in the server's limits) until the connection has closed.
  void hold(std::shared_ptr<void> h) { held_.push_back(std::move(h)); }

  // -- on the shard's thread --------------------------------------------------

  /// Queues `frames` pre-built data frames (shared with other connections). Returns the
  /// bytes added to the queue: 0 when the connection is closing, or when they would take
  /// the queue over its limit, in which case the connection closes as a slow consumer.
  std::int64_t enqueue(const std::shared_ptr<const std::string>& bytes, std::uint32_t frames);
  /// Writes what is queued (called by the shard once per turn after enqueue()).
  void flush();
  /// Calls `fn` once at most a quarter of the queue limit waits: now when that is so, else
  /// after the write that brings the queue there. Replaces the `fn` of an earlier call that
  /// has not run; dropped when the connection finishes. (A paced replay's next part.)
  void when_drained(std::function<void()> fn);
  bool finished() const { return finished_; }
  std::int64_t queued_bytes() const { return queued_; }
  std::int64_t queue_limit() const { return opts_.queue_limit_bytes; }
  /// Bytes written to the socket so far (handshake, frames, control bytes).
  std::uint64_t bytes_sent() const { return bytes_sent_; }

protected:
  /// `stream` must belong to `shard`'s context; `http_version` is the request's (11: 1.1).
  push_connection(io_shard& shard, connection_stream stream, unsigned http_version, options opts);

  /// Begins the end of the connection (see close()). On the shard's thread.
  virtual void start_close(std::uint16_t code, std::string_view reason, bool drop_queued) = 0;
  /// The item queued with queue_control(..., true) has been written. On the shard's thread.
  virtual void last_item_written() = 0;

  /// Queues bytes that are not data frames (a control frame, a comment, the response's
  /// head); `last`: nothing is written after it. Ignored once closing, unless `last`.
  void queue_control(std::string bytes, bool last = false);
  /// Puts `bytes` before everything queued (nothing may have been written yet).
  void queue_first(std::string bytes);
  /// Makes the connection writable (the handshake is done) and writes what is queued, or
  /// begins the close decided before the handshake.
  void open_for_writing();
  void schedule_flush();
  void drop_queued_data();
  void finish(); // closes the socket, leaves the fan-out group, reports on_closed once
  /// TLS only: reads what the client sends, passing it to received(), until the
  /// connection ends (finish() on EOF or error).
  void read_tls();
  /// Bytes the client sent (TLS connections; plain ones read the socket themselves).
  virtual void received(std::string_view) {}
  bool tls() { return stream_.tls() != nullptr; }

  io_shard& shard_;
  connection_stream stream_;
  boost::asio::ip::tcp::socket& socket_; // the stream's TCP socket
  unsigned http_version_;
  options opts_;
  // Pings/keep-alives while open; the bound on the close afterwards.
  boost::asio::steady_timer timer_;
  bool accepting_ = false; // handshake under way (or done)
  bool open_ = false;      // handshake done: the queue is written
  bool closing_ = false;   // the last item is queued; no more data frames
  bool last_sent_ = false; // the last item has been written
  bool finished_ = false;
  /// Over the queue limit before the handshake: the close (code, reason) to begin once the
  /// handshake is done (the client learns why, instead of losing the connection unanswered).
  std::optional<std::pair<std::uint16_t, std::string>> close_after_handshake_;

private:
  friend class fanout_group;

  struct item {
    std::shared_ptr<const std::string> bytes;
    std::uint32_t frames = 0; // data frames in `bytes` (0 for control bytes)
    bool last = false;        // nothing is written after it
  };

  void do_write();
  void write_tls();
  void written(std::size_t n);
  /// TLS: sends close_notify, then closes the socket (at the latest after a short wait).
  void say_goodbye();

  std::vector<item> queue_; // [head_, end) not yet fully written
  std::size_t head_ = 0;
  std::size_t head_offset_ = 0; // bytes of queue_[head_] already written
  std::int64_t queued_ = 0;     // data bytes in the queue
  std::uint64_t bytes_sent_ = 0;
  // The fan-out groups it is a member of (its subscription's, and its stream's presence
  // listeners'), each with its place in the group's members.
  struct membership {
    fanout_group* group;
    std::size_t slot;
  };
  std::vector<membership> groups_;
  /// Its place in `group`, or null when not a member.
  std::size_t* slot_in(const fanout_group* group) {
    for (auto& m : groups_)
      if (m.group == group) return &m.slot;
    return nullptr;
  }
  void leave_group(const fanout_group* group) {
    std::erase_if(groups_, [&](const membership& m) { return m.group == group; });
  }
  bool flush_scheduled_ = false;
  bool write_blocked_ = false; // waiting for the socket to become writable
  bool reading_tls_ = false;   // a TLS read is in flight
  bool goodbye_ = false;       // finished cleanly over TLS: close_notify once the read is done
  // TLS: the bytes of the write in flight, and how many queue items (from head_) they hold.
  std::string tls_out_;
  std::size_t tls_items_ = 0;
  std::unique_ptr<char[]> tls_in_; // TLS: the connection's own read buffer
  std::vector<std::shared_ptr<void>> held_;
  std::function<void()> on_drained_; // when_drained()'s, until it runs
};

} // namespace rheo
