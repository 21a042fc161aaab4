#include "net/tls.hpp"

#include <boost/asio/ssl/context.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace rheo {

namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  std::string reason;
  while (e) { // the last error is the most specific
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;
    e = ERR_get_error();
  }
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

} // namespace

tls_context::tls_context(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), context_(read()) {}

tls_context::~tls_context() = default;

void tls_context::reload() {
  context_.store(read());
}

std::shared_ptr<ssl::context> tls_context::read() const {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_RENEGOTIATION);
  // Sessions are not resumed across connections: no cache to bound, no ticket key to rotate.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  if (SSL_CTX_use_certificate_chain_file(native, cert_file_.c_str()) != 1)
    throw std::runtime_error("tls_cert " + cert_file_ + ": " + openssl_reason());
  if (SSL_CTX_use_PrivateKey_file(native, key_file_.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("tls_key " + key_file_ + ": " + openssl_reason());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("tls_key " + key_file_ + " does not match tls_cert " + cert_file_);
  return ctx;
}

} // namespace rheo
