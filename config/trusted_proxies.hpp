// Trusted reverse proxies (the trusted_proxies setting): the peers whose word on who the
// client is counts. From such a peer a request's client address comes from its `Forwarded`
// header (RFC 7239), else `X-Forwarded-For`: the right-most address that is not itself a
// trusted proxy (each proxy appends the address it was called from, so everything left of
// the first untrusted hop is the client's own say and may be forged). Its scheme comes from
// `Forwarded: proto=` or `X-Forwarded-Proto`. From any other peer these headers are ignored.
//
// Thread-safety: immutable after construction; every member may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

class trusted_proxies {
public:
  trusted_proxies() = default;
  /// Each of `specs` is an IP address or a CIDR range ("10.0.0.0/8", "::1", "fd00::/8");
  /// throws std::invalid_argument naming a malformed one.
  explicit trusted_proxies(const std::vector<std::string>& specs);

  bool empty() const { return ranges_.empty(); }
  /// Whether `address` (IPv4, IPv6 or IPv4-mapped IPv6, as text) is a trusted proxy.
  bool trusts(std::string_view address) const;

  /// Who sent a request, as far as the server can tell.
  struct client {
    std::string address; // the client's IP address (or the proxy's identifier for it)
    std::string scheme;  // "http" or "https" as the proxy says; empty: the connection's own
  };
  /// The client of a request that came from `peer` with these headers (empty when absent).
  client client_of(const std::string& peer, std::string_view forwarded,
                   std::string_view x_forwarded_for, std::string_view x_forwarded_proto) const;

private:
  struct range {
    std::array<std::uint8_t, 16> bytes{}; // IPv4 as IPv4-mapped IPv6
    unsigned prefix = 0;                  // bits, of the 128
  };
  std::vector<range> ranges_;
};

/// `address` without brackets, port or IPv4-mapping ("[::ffff:10.0.0.1]:80" -> "10.0.0.1"),
/// when it is an IP address; otherwise as given.
std::string normalize_address(std::string_view address);

} // namespace rheo
