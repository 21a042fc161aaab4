// One WebSocket connection after its HTTP upgrade request was accepted for a stream:
// the handshake, a reader of client frames (ignored, bounded, control frames handled),
// a writer that coalesces every queued frame into one gather write, server pings with
// a pong timeout, and the close handshake.
//
// Thread-safety: the socket, the queues and the timers live on the connection's strand
// and are touched only there. The public member functions may be called from any
// thread (they post to the strand); queued_bytes() is atomic.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/ws_frame.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rheo {

class ws_connection : public std::enable_shared_from_this<ws_connection> {
public:
  struct options {
    std::size_t max_client_message_bytes = 64 * 1024;
    std::chrono::milliseconds ping_interval{30000};
    std::chrono::milliseconds pong_timeout{30000};
  };

  ws_connection(boost::asio::ip::tcp::socket socket,
                boost::beast::http::request<boost::beast::http::string_body> req,
                boost::beast::flat_buffer leftover, options opts);
  ~ws_connection();

  /// Called once, on the strand, when the connection has closed (for any reason).
  /// Set before accept() or reject().
  std::function<void()> on_closed;

  /// Completes the WebSocket handshake; frames sent before it completes wait for it.
  void accept();
  /// Answers the upgrade request with an HTTP error instead, then closes.
  void reject(int status, std::string json_body);

  /// Queues pre-built frames. The caller has already added `bytes->size()` to
  /// queued_bytes(); the writer subtracts once they are written.
  void send(std::shared_ptr<const std::string> bytes, std::uint32_t frames);
  /// Sends a close frame and closes. `drop_queued` discards frames not yet written
  /// (slow consumers); otherwise they go out first.
  void close(std::uint16_t code, std::string reason, bool drop_queued = false);

  std::atomic<std::int64_t>& queued_bytes() { return queued_bytes_; }

private:
  struct item {
    std::shared_ptr<const std::string> bytes;
    std::uint32_t frames = 0; // data frames in `bytes` (0 for control frames)
  };

  void do_read();
  void on_read(boost::system::error_code ec, std::size_t n);
  void handle_bytes(std::string_view data);
  void queue_control(std::string frame);
  void do_write();
  void start_close(std::uint16_t code, std::string_view reason, bool drop_queued);
  void schedule_ping();
  void finish(); // closes the socket and reports on_closed once

  boost::asio::ip::tcp::socket socket_;
  boost::beast::http::request<boost::beast::http::string_body> req_;
  boost::beast::flat_buffer leftover_;
  options opts_;
  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer close_timer_;
  ws::frame_parser parser_;
  std::vector<char> read_buf_;
  std::deque<item> pending_;
  std::vector<item> in_flight_;
  std::atomic<std::int64_t> queued_bytes_{0};
  bool open_ = false; // handshake done
  bool writing_ = false;
  bool closing_ = false;    // close frame queued; no more data frames
  bool close_sent_ = false; // close frame written
  bool finished_ = false;
  bool awaiting_pong_ = false;
  std::chrono::steady_clock::time_point ping_sent_;
};

} // namespace rheo
