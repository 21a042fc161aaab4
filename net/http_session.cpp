#include "net/http_session.hpp"

#include "config/log.hpp"
#include "net/metrics.hpp"
#include "net/tls.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace rheo {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {
constexpr auto read_timeout = std::chrono::seconds(60);
// A connection refused by a limit waits this long for its request to answer, then closes.
constexpr auto refused_read_timeout = std::chrono::seconds(5);
// A TLS client has this long to complete its handshake.
constexpr auto handshake_timeout = std::chrono::seconds(10);
} // namespace

http_session::http_session(net::ip::tcp::socket&& socket, io_shard& shard, server_state& srv)
    : stream_(srv.tls ? connection_stream(std::move(socket), srv.tls->current())
                      : connection_stream(std::move(socket))),
      shard_(shard), srv_(srv) {
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) peer_ = normalize_address(ep.address().to_string());
  address_ = peer_;
  trusted_peer_ = srv_.proxies.trusts(peer_);
}

void http_session::run() {
  // The refusal is an answer, not a dropped connection: it waits for the first request
  // (closing with the request unread would reset the connection and lose the answer).
  http_response refusal;
  slot_ = srv_.limits.admit_connection(trusted_peer_ ? std::string() : peer_, refusal);
  if (!slot_) refusal_ = std::move(refusal);
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (self->stream_.tls())
      self->handshake();
    else
      self->do_read();
  });
}

void http_session::handshake() {
  stream_.tcp().expires_after(handshake_timeout);
  stream_.tls()->async_handshake(
      net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (!ec) return self->do_read();
        // Plain HTTP sent to the TLS port: OpenSSL recognises the request line. Say so in
        // plain text, as the client cannot read anything else.
        if (ec.category() == net::error::get_ssl_category() &&
            ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
          const std::string body = "this port speaks TLS: use https:// or wss://\n";
          const std::string answer = "HTTP/1.1 400 Bad Request\r\nServer: rheo\r\n"
                                     "Content-Type: text/plain\r\nConnection: close\r\n"
                                     "Content-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body;
          beast::error_code ignored;
          self->stream_.socket().non_blocking(true, ignored);
          self->stream_.socket().write_some(net::buffer(answer), ignored);
        }
        log::debug("TLS handshake with " + self->address_ + " failed: " + ec.message());
        self->shard_.metrics().tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
        self->close();
      });
}

void http_session::shut_down() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    self->stopping_ = true;
    if (!self->busy_) self->close();
  });
}

void http_session::close() {
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  stream_.tcp().close();
}

void http_session::do_read() {
  if (stopping_) return close();
  parser_.emplace();
  parser_->body_limit(srv_.config.max_body_bytes);
  parser_->header_limit(64 * 1024);
  stream_.tcp().expires_after(refusal_ ? refused_read_timeout : read_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  auto start = std::chrono::steady_clock::now();
  if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
      ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::eof)
    return close();
  if ((refusal_ || ec) && log::access_log_enabled()) {
    // Answered without process(): a malformed request's method and path are not known.
    log_method_ = log_path_ = "-";
    if (!ec) {
      std::string_view target = parser_->get().target();
      log_method_ = std::string(parser_->get().method_string());
      log_path_ = std::string(target.substr(0, target.find('?')));
    }
  }
  if (refusal_) {
    busy_ = true;
    return send(std::move(*refusal_), false, ec ? 11 : parser_->get().version(), false, start);
  }
  if (ec) {
    busy_ = true;
    if (ec == http::error::body_limit) {
      send(error_response(413, "request body exceeds the limit of " +
                                   std::to_string(srv_.config.max_body_bytes) + " bytes"),
           false, 11, false, start);
    } else if (ec == http::error::header_limit) {
      send(error_response(400, "request headers too large"), false, 11, false, start);
    } else {
      send(error_response(400, "malformed HTTP request: " + ec.message()), false, 11, false, start);
    }
    return;
  }
  busy_ = true;
  process(parser_->release());
}

http_request to_http_request(const http::request<http::string_body>& req,
                             std::string remote_address) {
  http_request r;
  r.method_text = std::string(req.method_string());
  r.method = parse_http_method(r.method_text);
  r.target = std::string(req.target());
  r.if_match = std::string(req[http::field::if_match]);
  r.origin = std::string(req[http::field::origin]);
  r.host = std::string(req[http::field::host]);
  r.accept = std::string(req[http::field::accept]);
  r.access_control_request_headers = std::string(req[http::field::access_control_request_headers]);
  r.authorization = std::string(req[http::field::authorization]);
  r.cookie = std::string(req[http::field::cookie]);
  r.remote_address = std::move(remote_address);
  r.websocket_upgrade = beast::websocket::is_upgrade(req);
  r.event_stream = !r.websocket_upgrade && req.method() == http::verb::get &&
                   r.accept.find("text/event-stream") != std::string::npos;
  if (r.event_stream) r.last_event_id = std::string(req["Last-Event-ID"]);
  return r;
}

void http_session::process(http::request<http::string_body> req) {
  auto start = std::chrono::steady_clock::now();
  if (trusted_peer_) {
    auto client = srv_.proxies.client_of(peer_, req[http::field::forwarded], req["X-Forwarded-For"],
                                         req["X-Forwarded-Proto"]);
    address_ = std::move(client.address);
    scheme_ = client.scheme;
  }
  http_request r = to_http_request(req, address_);
  r.scheme = !scheme_.empty() ? scheme_ : stream_.tls() ? "https" : "http";
  if (log::access_log_enabled()) {
    log_method_ = r.method_text;
    std::string_view target = req.target();
    log_path_ = std::string(target.substr(0, target.find('?')));
  }
  const bool keep_alive = req.keep_alive() && !srv_.stopping.load();

  if (r.websocket_upgrade || r.event_stream) {
    if (srv_.handler.is_blocking(r)) {
      // Resolving may wait (a password check; on a cluster's edge, the core): on the workers.
      auto guard = net::make_work_guard(shard_.context());
      net::post(srv_.workers, [self = shared_from_this(), r = std::move(r), req = std::move(req),
                               keep_alive, start, guard = std::move(guard)]() mutable {
        auto resolved = self->srv_.handler.resolve_stream(r);
        net::post(self->stream_.get_executor(), [self, r = std::move(r), req = std::move(req),
                                                 resolved = std::move(resolved), keep_alive,
                                                 start]() mutable {
          self->open_stream(std::move(r), std::move(req), std::move(resolved), keep_alive, start);
        });
      });
      return;
    }
    auto resolved = srv_.handler.resolve_stream(r);
    return open_stream(std::move(r), std::move(req), std::move(resolved), keep_alive, start);
  }
  respond(std::move(r), std::move(req), keep_alive, start);
}

void http_session::open_stream(http_request r, http::request<http::string_body> req,
                               std::variant<stream_target, http_response, not_a_stream> resolved,
                               bool keep_alive, std::chrono::steady_clock::time_point start) {
  const unsigned version = req.version();
  if (auto* res = std::get_if<http_response>(&resolved))
    return send(std::move(*res), false, version, false, start);
  if (auto* target = std::get_if<stream_target>(&resolved)) {
    if (!srv_.hub || srv_.stopping.load())
      return send(error_response(503, "change streams are not available"), false, version, false,
                  start);
    http_response refused;
    auto session_slot = srv_.limits.admit_session(address_, refused);
    if (!session_slot) return send(std::move(refused), false, version, false, start);
    // The socket goes on as the session's: so do its places in the limits.
    target->held.push_back(std::move(session_slot));
    target->held.push_back(std::move(slot_));
    if (log::access_log_enabled())
      target->on_finished = [remote = address_, method = log_method_, path = log_path_,
                             user = target->user_id, sse = target->sse,
                             start](std::uint64_t bytes) {
        log::access({{"remote", remote},
                     {"method", method},
                     {"path", path},
                     {"status", sse ? 200 : 101},
                     {"bytes", bytes},
                     {"duration_ms", std::chrono::duration<double, std::milli>(
                                         std::chrono::steady_clock::now() - start)
                                         .count()},
                     {"user", user},
                     {"session", sse ? "sse" : "websocket"}});
      };
    shard_.metrics().record_request(
        target->sse ? 200 : 101,
        static_cast<std::uint64_t>((std::chrono::steady_clock::now() - start).count()));
    stream_.tcp().expires_never();
    srv_.hub->accept(shard_, std::move(stream_), std::move(req), std::move(buffer_),
                     std::move(*target), srv_.connections);
    return;
  }
  // not_a_stream: an SSE-accepting GET of something else.
  respond(std::move(r), std::move(req), keep_alive, start);
}

void http_session::respond(http_request r, http::request<http::string_body> req, bool keep_alive,
                           std::chrono::steady_clock::time_point start) {
  const unsigned version = req.version();
  const bool head = req.method() == http::verb::head;
  if (auto limited = srv_.limits.check_request(address_))
    return send(std::move(*limited), keep_alive, version, head, start);
  r.body = std::move(req.body());

  if (srv_.handler.is_blocking(r)) {
    // Store writes may wait for a group commit: run them on the worker pool and keep the
    // I/O context alive until the response has been posted back.
    auto guard = net::make_work_guard(shard_.context());
    net::post(srv_.workers, [self = shared_from_this(), r = std::move(r), keep_alive, version, head,
                             start, guard = std::move(guard)]() mutable {
      http_response res = self->srv_.handler.handle(r);
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res), keep_alive, version, head, start]() mutable {
                  self->send(std::move(res), keep_alive, version, head, start);
                });
    });
    return;
  }
  send(srv_.handler.handle(r), keep_alive, version, head, start);
}

void http_session::send(http_response res, bool keep_alive, unsigned version, bool head,
                        std::chrono::steady_clock::time_point start) {
  auto msg = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(res.status), version);
  msg->set(http::field::server, "rheo");
  if (!res.content_type.empty()) msg->set(http::field::content_type, res.content_type);
  for (auto& [k, v] : res.headers)
    msg->insert(k, v);
  const bool close = !keep_alive || res.close || stopping_;
  msg->keep_alive(!close);
  msg->body() = std::move(res.body);
  msg->prepare_payload();
  if (head) msg->body().clear();
  if (log::access_log_enabled()) log_access(res.status, msg->body().size(), start, res.user);
  shard_.metrics().record_request(
      res.status, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count()));
  response_ = msg;
  stream_.tcp().expires_after(read_timeout);
  if (head) {
    auto sr = std::make_shared<http::response_serializer<http::string_body>>(*msg);
    response_ = std::make_shared<std::pair<decltype(msg), decltype(sr)>>(msg, sr);
    http::async_write_header(
        stream_, *sr, [self = shared_from_this(), close](beast::error_code ec, std::size_t n) {
          self->on_write(close, ec, n);
        });
    return;
  }
  http::async_write(stream_, *msg,
                    beast::bind_front_handler(&http_session::on_write, shared_from_this(), close));
}

void http_session::log_access(int status, std::uint64_t bytes,
                              std::chrono::steady_clock::time_point start,
                              const std::string& user) const {
  log::access({{"remote", address_},
               {"method", log_method_},
               {"path", log_path_},
               {"status", status},
               {"bytes", bytes},
               {"duration_ms",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count()},
               {"user", user}});
}

void http_session::on_write(bool close_after, beast::error_code ec, std::size_t) {
  response_.reset();
  busy_ = false;
  if (ec) return close();
  if (!close_after) return do_read();
  if (!stream_.tls()) return close();
  // Over TLS the answer ends with close_notify, so that the client knows it is whole (no
  // read is in flight here); a client that answers nothing is closed after a short wait.
  stream_.tcp().expires_after(std::chrono::seconds(2));
  stream_.tls()->async_shutdown([self = shared_from_this()](beast::error_code) { self->close(); });
}

} // namespace rheo
