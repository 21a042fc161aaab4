// The seam between the HTTP server and the realtime layer: after a WebSocket handshake
// request has been resolved to a stream, the HTTP session hands its stream and request
// to the hub, which owns the connection from then on. The hub registers the connection in
// the server's connection_registry, which closes it (1001) when the server stops.
//
// Thread-safety: accept() may be called from any I/O thread.
#pragma once

#include "net/http_handler.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace rheo {

class connection_registry;
class connection_stream;
class io_shard;

class websocket_hub {
public:
  virtual ~websocket_hub() = default;
  /// Completes the handshake of `req` on `stream` and serves stream `target`.
  /// `buffer` holds any bytes read past the request.
  /// `stream` belongs to `shard`, the I/O thread the connection stays on; called on that
  /// thread. The connection is registered in `connections`; when that refuses it (the
  /// server is shutting down), the upgrade is answered with 503 instead. The connection
  /// keeps `target.held` (its places in the server's limits) until it has closed.
  virtual void accept(io_shard& shard, connection_stream stream,
                      boost::beast::http::request<boost::beast::http::string_body> req,
                      boost::beast::flat_buffer buffer, stream_target target,
                      connection_registry& connections) = 0;
};

} // namespace rheo
