// The byte stream under one client connection: plain TCP, or TLS over TCP. The HTTP
// session reads and writes through it (it is an asio AsyncStream), and hands it, after an
// upgrade, to the WebSocket or SSE connection, which writes frames to it.
//
// Thread-safety: none; a connection's stream is used on its I/O thread only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace boost::asio::ssl {
class context;
}

namespace rheo {

class connection_stream {
public:
  using tls_stream = boost::asio::ssl::stream<boost::beast::tcp_stream>;
  using executor_type = boost::beast::tcp_stream::executor_type;

  /// A plain TCP connection.
  connection_stream(boost::asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}
  /// A TLS connection using `context` (its handshake is still to be done).
  connection_stream(boost::asio::ip::tcp::socket socket,
                    std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)),
        tls_(std::make_unique<tls_stream>(std::move(socket), *context_)) {}
  connection_stream(connection_stream&&) = default;

  executor_type get_executor() { return tcp().get_executor(); }
  /// The TCP layer (timeouts, the socket).
  boost::beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }
  /// The TLS layer; null for a plain connection.
  tls_stream* tls() { return tls_.get(); }

  template <class Buffers, class Handler> void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_)
      tls_->async_read_some(b, std::forward<Handler>(h));
    else
      plain_->async_read_some(b, std::forward<Handler>(h));
  }
  template <class Buffers, class Handler> void async_write_some(const Buffers& b, Handler&& h) {
    if (tls_)
      tls_->async_write_some(b, std::forward<Handler>(h));
    else
      plain_->async_write_some(b, std::forward<Handler>(h));
  }

private:
  std::optional<boost::beast::tcp_stream> plain_;
  std::shared_ptr<boost::asio::ssl::context> context_; // outlives tls_
  std::unique_ptr<tls_stream> tls_;
};

/// Closes the socket, for Beast's timeouts (found by argument-dependent lookup).
inline void beast_close_socket(connection_stream& s) {
  boost::beast::error_code ignored;
  s.socket().close(ignored);
}

/// Ends the connection for Beast's WebSocket stream (which only calls it on a failed
/// handshake): the socket closes; TLS sends no close_notify.
inline void teardown(boost::beast::role_type, connection_stream& s, boost::beast::error_code& ec) {
  s.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  s.socket().close(ec);
}
template <class Handler>
void async_teardown(boost::beast::role_type role, connection_stream& s, Handler&& handler) {
  boost::beast::error_code ec;
  teardown(role, s, ec);
  boost::asio::post(s.get_executor(),
                    [h = std::forward<Handler>(handler), ec]() mutable { std::move(h)(ec); });
}

} // namespace rheo
