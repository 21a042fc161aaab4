// TLS for the HTTP/WebSocket/SSE port: the server's certificate and key (PEM files), TLS
// 1.2 and 1.3 only, read at startup and again on reload. A connection keeps the context it
// was accepted with, so a reload affects only connections accepted afterwards.
//
// Thread-safety: current() and load() may be called concurrently from any thread; the
// context is swapped atomically and is itself used read-only once published.
#pragma once

#include <atomic>
#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace rheo {

class tls_context {
public:
  /// Reads `cert_file` (the certificate chain) and `key_file`; throws std::runtime_error
  /// with one line naming the file and OpenSSL's reason.
  tls_context(std::string cert_file, std::string key_file);
  ~tls_context();

  /// Reads the files again and, when they are good, uses them for connections accepted
  /// from now on; throws (and keeps the old ones) when they are not.
  void reload();
  /// The context for a new connection.
  std::shared_ptr<boost::asio::ssl::context> current() const { return context_.load(); }

private:
  std::shared_ptr<boost::asio::ssl::context> read() const;

  const std::string cert_file_, key_file_;
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> context_;
};

} // namespace rheo
