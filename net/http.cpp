#include "net/http.hpp"

#include "storage/document/json.hpp"
#include "storage/document/value.hpp"

#include <cctype>

namespace rheo {

namespace {

constexpr std::pair<http_method, std::string_view> method_names[] = {
    {http_method::get, "GET"},         {http_method::head, "HEAD"},
    {http_method::post, "POST"},       {http_method::put, "PUT"},
    {http_method::patch, "PATCH"},     {http_method::delete_, "DELETE"},
    {http_method::options, "OPTIONS"},
};

} // namespace

http_method parse_http_method(std::string_view text) {
  for (auto& [m, name] : method_names)
    if (name == text) return m;
  return http_method::other;
}

std::string_view to_string(http_method m) {
  for (auto& [known, name] : method_names)
    if (known == m) return name;
  return {};
}

// ---- targets and percent coding ----

std::vector<std::string> parsed_target::all(std::string_view name) const {
  std::vector<std::string> out;
  for (auto& [k, v] : query)
    if (k == name) out.push_back(v);
  return out;
}

std::optional<std::string> parsed_target::last(std::string_view name) const {
  std::optional<std::string> out;
  for (auto& [k, v] : query)
    if (k == name) out = v;
  return out;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::optional<parsed_target> parse_target(std::string_view target) {
  if (target.empty() || target[0] != '/') return std::nullopt;
  parsed_target t;
  auto q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  auto path = percent_decode(raw_path, false);
  if (!path || path->find('\0') != std::string::npos) return std::nullopt;
  t.path = *path;
  // Segments are split on the raw path so that %2F stays inside a segment.
  std::size_t pos = 1;
  while (pos <= raw_path.size()) {
    auto slash = raw_path.find('/', pos);
    auto seg = raw_path.substr(pos, slash == std::string_view::npos ? std::string_view::npos
                                                                    : slash - pos);
    if (!seg.empty()) {
      auto dec = percent_decode(seg, false);
      if (!dec) return std::nullopt;
      t.segments.push_back(std::move(*dec));
    }
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (q != std::string_view::npos) {
    std::string_view qs = target.substr(q + 1);
    while (!qs.empty()) {
      auto amp = qs.find('&');
      auto part = qs.substr(0, amp);
      if (!part.empty()) {
        auto eq = part.find('=');
        auto k = percent_decode(part.substr(0, eq), true);
        auto v = percent_decode(
            eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1), true);
        if (!k || !v) return std::nullopt;
        t.query.emplace_back(std::move(*k), std::move(*v));
      }
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  return t;
}

// ---- responses ----

const char* status_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 204:
    return "No Content";
  case 302:
    return "Found";
  case 304:
    return "Not Modified";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 409:
    return "Conflict";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Payload Too Large";
  case 415:
    return "Unsupported Media Type";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  default:
    return "Unknown";
  }
}

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

http_response empty_response(int status) {
  http_response r;
  r.status = status;
  return r;
}

http_response error_response(int status, std::string_view message) {
  std::string body =
      "{\"http status code\":" + std::to_string(status) + ",\"http status description\":";
  append_json(body, value(std::string(status_reason(status))));
  body += ",\"message\":";
  append_json(body, value(std::string(message)));
  body += '}';
  return json_response(status, std::move(body));
}

// ---- CORS ----

http_response preflight_response(const http_request& req) {
  http_response res = empty_response(200);
  res.headers.emplace_back("Access-Control-Allow-Methods",
                           "GET, PUT, POST, PATCH, DELETE, OPTIONS");
  res.headers.emplace_back("Access-Control-Allow-Headers",
                           req.access_control_request_headers.empty()
                               ? "Authorization, Content-Type, If-Match, If-None-Match, "
                                 "X-Requested-With, No-Auth-Challenge"
                               : req.access_control_request_headers);
  res.headers.emplace_back("Access-Control-Max-Age", "86400");
  return res;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

/// `authority` with the default port of `scheme` added when it has none.
std::string with_port(std::string_view authority, std::string_view scheme) {
  std::string out(authority);
  // An IPv6 literal ends with ']' and has colons of its own.
  auto colon = out.rfind(':');
  auto bracket = out.rfind(']');
  const bool has_port =
      colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) {
    if (iequals(scheme, "https") || iequals(scheme, "wss"))
      out += ":443";
    else if (iequals(scheme, "http") || iequals(scheme, "ws"))
      out += ":80";
  }
  return out;
}

} // namespace

bool origin_gets_credentials(std::string_view origin, const std::vector<std::string>& allowed) {
  for (auto& a : allowed)
    if (a == "*" || iequals(a, origin)) return true;
  return false;
}

bool same_origin(const http_request& req) {
  std::string_view origin = req.origin;
  auto sep = origin.find("://");
  if (sep == std::string_view::npos || req.host.empty()) return false; // e.g. "null"
  std::string_view scheme = origin.substr(0, sep), authority = origin.substr(sep + 3);
  if (authority.empty() || authority.find('/') != std::string_view::npos) return false;
  return iequals(with_port(authority, scheme), with_port(req.host, scheme));
}

void add_cors_headers(const http_request& req, const std::vector<std::string>& allowed,
                      http_response& res) {
  // The answer depends on Origin even when there is none (a cache must not reuse it).
  res.headers.emplace_back("Vary", "Origin");
  if (req.origin.empty()) return;
  res.headers.emplace_back("Access-Control-Allow-Origin", req.origin);
  // Only origins the configuration names may read answers to credentialed calls.
  if (origin_gets_credentials(req.origin, allowed))
    res.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  res.headers.emplace_back(
      "Access-Control-Expose-Headers",
      "Location, ETag, Resume-Token, Auth-Token, Auth-Token-Valid-Until, Auth-Token-Location");
}

} // namespace rheo
