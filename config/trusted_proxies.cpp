#include "config/trusted_proxies.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace rheo {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// `text` as 16 bytes (IPv4 mapped into IPv6), when it is an IP address.
std::optional<std::array<std::uint8_t, 16>> to_bytes(std::string_view text) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  if (a.is_v4())
    return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4()).to_bytes();
  return a.to_v6().to_bytes();
}

/// The elements of a comma-separated header, trimmed, empty ones skipped.
std::vector<std::string_view> elements(std::string_view header) {
  std::vector<std::string_view> out;
  while (!header.empty()) {
    const auto comma = header.find(',');
    const std::string_view e = trim(header.substr(0, comma));
    if (!e.empty()) out.push_back(e);
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return out;
}

/// The value of parameter `name` in one element of a Forwarded header ("for=...;proto=..."),
/// unquoted; empty when absent.
std::string param(std::string_view element, std::string_view name) {
  while (!element.empty()) {
    const auto semi = element.find(';');
    std::string_view pair = trim(element.substr(0, semi));
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = trim(pair.substr(0, eq));
      std::string_view value = trim(pair.substr(eq + 1));
      if (key.size() == name.size() &&
          std::equal(key.begin(), key.end(), name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
          value = value.substr(1, value.size() - 2);
        return std::string(value);
      }
    }
    if (semi == std::string_view::npos) break;
    element.remove_prefix(semi + 1);
  }
  return {};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

} // namespace

std::string normalize_address(std::string_view address) {
  address = trim(address);
  std::string_view host = address;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close != std::string_view::npos) host = host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':')); // IPv4 with a port
  }
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) return std::string(address);
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

trusted_proxies::trusted_proxies(const std::vector<std::string>& specs) {
  for (const auto& spec : specs) {
    const auto slash = spec.find('/');
    const std::string base = spec.substr(0, slash);
    auto bytes = to_bytes(base);
    if (!bytes) throw std::invalid_argument("'" + spec + "' is not an IP address or a CIDR range");
    const bool v4 = base.find(':') == std::string::npos;
    unsigned prefix = 128;
    if (slash != std::string::npos) {
      const std::string bits = spec.substr(slash + 1);
      const unsigned max = v4 ? 32 : 128;
      if (bits.empty() || bits.size() > 3 ||
          bits.find_first_not_of("0123456789") != std::string::npos ||
          static_cast<unsigned>(std::stoul(bits)) > max)
        throw std::invalid_argument("'" + spec + "': the prefix length must be 0 to " +
                                    std::to_string(max));
      prefix = static_cast<unsigned>(std::stoul(bits)) + (v4 ? 96 : 0);
    }
    ranges_.push_back({*bytes, prefix});
  }
}

bool trusted_proxies::trusts(std::string_view address) const {
  if (ranges_.empty()) return false;
  const auto bytes = to_bytes(normalize_address(address));
  if (!bytes) return false;
  for (const auto& r : ranges_) {
    unsigned bits = r.prefix;
    std::size_t i = 0;
    for (; bits >= 8; bits -= 8, ++i)
      if ((*bytes)[i] != r.bytes[i]) break;
    if (bits >= 8) continue; // a whole byte differed
    if (bits == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
    if (((*bytes)[i] & mask) == (r.bytes[i] & mask)) return true;
  }
  return false;
}

trusted_proxies::client trusted_proxies::client_of(const std::string& peer,
                                                   std::string_view forwarded,
                                                   std::string_view x_forwarded_for,
                                                   std::string_view x_forwarded_proto) const {
  client out{normalize_address(peer), {}};
  if (!trusts(peer)) return out;
  // The hops as the proxies appended them, with each hop's scheme when Forwarded says.
  std::vector<std::pair<std::string, std::string>> hops;
  if (!forwarded.empty()) {
    for (auto e : elements(forwarded))
      hops.emplace_back(normalize_address(param(e, "for")), lower(param(e, "proto")));
  } else {
    for (auto e : elements(x_forwarded_for))
      hops.emplace_back(normalize_address(e), std::string());
    const auto protos = elements(x_forwarded_proto);
    if (!protos.empty() && !hops.empty()) hops.back().second = lower(protos.back());
    if (!protos.empty() && hops.empty()) out.scheme = lower(protos.back());
  }
  // Right to left: the first hop that is not a trusted proxy is the client. Its scheme is the
  // one its hop names (Forwarded), else the one the nearest proxy reports.
  std::string scheme;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it)
    if (!it->second.empty()) {
      scheme = it->second;
      break;
    }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (it->first.empty()) break; // a hop that named nobody: believe nothing further left
    out.address = it->first;
    if (!it->second.empty()) scheme = it->second;
    if (!trusts(it->first)) break;
  }
  if (scheme == "http" || scheme == "https") out.scheme = scheme;
  return out;
}

} // namespace rheo
