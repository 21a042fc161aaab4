// One HTTP/1.1 connection, plain or TLS (when the server has a certificate): does the TLS
// handshake, reads requests one at a time (pipelined requests wait in the read buffer),
// answers each in order, hands WebSocket upgrades of stream URLs to the websocket_hub.
//
// Thread-safety: all members run on the connection's I/O thread; other threads reach the
// session only through shut_down(), which posts to that thread.
#pragma once

#include "net/connection_registry.hpp"
#include "net/connection_stream.hpp"
#include "net/server_state.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace rheo {

struct http_response;

/// The request as the handlers see it, made of what Beast parsed: the method, target and
/// the headers the handlers read (the body is moved in later, when the request is served).
http_request
to_http_request(const boost::beast::http::request<boost::beast::http::string_body>& req,
                std::string remote_address);

class http_session final : public client_connection,
                           public std::enable_shared_from_this<http_session> {
public:
  http_session(boost::asio::ip::tcp::socket&& socket, io_shard& shard, server_state& srv);

  /// Takes the connection's place in the limits (or notes the refusal), then reads.
  void run();
  /// Closes the connection when it is idle, or after the response in flight.
  void shut_down() override;

private:
  /// TLS: the handshake, then do_read(); a client that fails it is closed.
  void handshake();
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void process(boost::beast::http::request<boost::beast::http::string_body> req);
  /// A WebSocket or SSE request, resolved: upgrades it, answers the error, or (not a
  /// stream) serves it as any request.
  void open_stream(http_request r, boost::beast::http::request<boost::beast::http::string_body> req,
                   std::variant<stream_target, http_response, not_a_stream> resolved,
                   bool keep_alive, std::chrono::steady_clock::time_point start);
  /// Serves a request that is not a stream (on the workers when it may block).
  void respond(http_request r, boost::beast::http::request<boost::beast::http::string_body> req,
               bool keep_alive, std::chrono::steady_clock::time_point start);
  void send(http_response res, bool keep_alive, unsigned version, bool head,
            std::chrono::steady_clock::time_point start);
  void on_write(bool close, boost::beast::error_code ec, std::size_t bytes);
  /// The access line of the request being answered (only called when the access log is on).
  void log_access(int status, std::uint64_t bytes, std::chrono::steady_clock::time_point start,
                  const std::string& user) const;
  void close();

  connection_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  io_shard& shard_;
  server_state& srv_;
  std::shared_ptr<void> response_; // keeps the response alive during async_write
  std::string peer_;               // the peer's IP address
  bool trusted_peer_ = false;      // a trusted proxy: its requests name their clients
  std::string scheme_;             // the current request's scheme as a trusted proxy says
  std::string address_;            // the current request's client address (else the peer's)
  // The request being answered, for the access log (only filled when it is on): its method
  // and its path without the query string (which may hold user data).
  std::string log_method_, log_path_;
  client_limits::slot slot_; // this connection's place in the connection limits
  // Past a connection limit: the answer to the first request, after which it closes.
  std::optional<http_response> refusal_;
  bool busy_ = false;
  bool stopping_ = false;
};

} // namespace rheo
