// One WebSocket connection after its HTTP upgrade request was accepted for a stream: the
// handshake, a reader of client frames (checked and bounded, then ignored; control frames
// handled), server pings with a pong timeout and the close handshake. The queue, the writer
// and the backpressure are push_connection's (a slow consumer is closed with 1013).
//
// Thread-safety: as push_connection: accept(), reject(), close() and shut_down() from any
// thread; everything else on the shard's thread.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/push_connection.hpp"
#include "net/ws_frame.hpp"

#include <memory>

namespace rheo {

class ws_connection final : public push_connection {
public:
  /// `stream` must belong to `shard`'s context; `leftover` holds bytes read past `req`.
  ws_connection(io_shard& shard, connection_stream stream,
                boost::beast::http::request<boost::beast::http::string_body> req,
                boost::beast::flat_buffer leftover, options opts);

  push_transport transport() const override { return push_transport::websocket; }
  void accept() override;

private:
  struct handshake {
    boost::beast::http::request<boost::beast::http::string_body> req;
    boost::beast::flat_buffer leftover;
  };

  void start_close(std::uint16_t code, std::string_view reason, bool drop_queued) override;
  void last_item_written() override;
  void do_read();
  void read_ready(boost::system::error_code ec);
  void handle_bytes(std::string_view data);
  void received(std::string_view data) override { handle_bytes(data); }
  void schedule_ping();
  std::shared_ptr<ws_connection> self() {
    return std::static_pointer_cast<ws_connection>(shared_from_this());
  }

  std::unique_ptr<handshake> handshake_; // until the handshake completes
  ws::frame_parser parser_;
  std::string text_; // a fragmented text message under way (when on_text is set)
  bool in_text_ = false;
  std::chrono::steady_clock::time_point ping_sent_;
  bool awaiting_pong_ = false;
  bool peer_closed_ = false; // the client sent its close frame
};

} // namespace rheo
