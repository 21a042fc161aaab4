#include "storage/document/json.hpp"

#include "storage/document/bson_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

namespace rheo {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Unquoted keys: identifiers plus dots ("fullDocument.from"), '$' and any non-ASCII byte.
bool is_key_char(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c == '.' || c >= 0x80;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

void append_base64(std::string& out, std::string_view data) {
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t n = static_cast<std::uint8_t>(data[i]) << 16 |
                      static_cast<std::uint8_t>(data[i + 1]) << 8 |
                      static_cast<std::uint8_t>(data[i + 2]);
    out += base64_alphabet[n >> 18];
    out += base64_alphabet[(n >> 12) & 63];
    out += base64_alphabet[(n >> 6) & 63];
    out += base64_alphabet[n & 63];
  }
  std::size_t rest = data.size() - i;
  if (rest == 0) return;
  std::uint32_t n = static_cast<std::uint8_t>(data[i]) << 16;
  if (rest == 2) n |= static_cast<std::uint8_t>(data[i + 1]) << 8;
  out += base64_alphabet[n >> 18];
  out += base64_alphabet[(n >> 12) & 63];
  out += rest == 2 ? base64_alphabet[(n >> 6) & 63] : '=';
  out += '=';
}

// Standard alphabet; padding optional, but a partial quantum of one character is invalid.
std::optional<std::string> decode_base64(std::string_view in) {
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = base64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// Days since 1970-01-01 of a proleptic Gregorian date (era-based civil calendar arithmetic).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned days_in_month(int y, int m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|+HHMM|+HH), fraction truncated to milliseconds.
std::optional<std::int64_t> parse_iso_date(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&](int n, int& out) {
    if (i + n > s.size()) return false;
    out = 0;
    for (int k = 0; k < n; ++k, ++i) {
      if (!is_digit(s[i])) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  auto literal = [&](char a, char b) {
    if (i < s.size() && (s[i] == a || s[i] == b)) return ++i, true;
    return false;
  };
  int year, month, day, hour, minute, second;
  if (!digits(4, year) || !literal('-', '-') || !digits(2, month) || !literal('-', '-') ||
      !digits(2, day) || !literal('T', 't') || !digits(2, hour) || !literal(':', ':') ||
      !digits(2, minute) || !literal(':', ':') || !digits(2, second))
    return std::nullopt;
  int millis = 0;
  if (literal('.', '.')) {
    int n = 0;
    for (; i < s.size() && is_digit(s[i]); ++i, ++n)
      if (n < 3) millis = millis * 10 + (s[i] - '0');
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n)
      millis *= 10;
  }
  int offset_minutes = 0;
  if (!literal('Z', 'z')) {
    if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return std::nullopt;
    int sign = s[i++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!digits(2, oh)) return std::nullopt;
    if (literal(':', ':')) {
      if (!digits(2, om)) return std::nullopt;
    } else if (i < s.size() && !digits(2, om)) {
      return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
  }
  if (i != s.size()) return std::nullopt;
  if (month < 1 || month > 12 || day < 1 ||
      static_cast<unsigned>(day) > days_in_month(year, month) || hour > 23 || minute > 59 ||
      second > 59)
    return std::nullopt;
  std::int64_t secs =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return secs * 1000 + millis;
}

template <class Int> std::optional<Int> parse_integer(std::string_view s) {
  Int v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Integral numbers (not doubles) in [lo, hi].
std::optional<std::int64_t> integral_in(const value& v, std::int64_t lo, std::int64_t hi) {
  if (!v.is<std::int32_t>() && !v.is<std::int64_t>()) return std::nullopt;
  std::int64_t n = v.as_int64();
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

// The fields `a` and `b` of `v` when `v` is an object with exactly those two keys.
std::optional<std::pair<const value*, const value*>>
exact_fields(const value& v, std::string_view a, std::string_view b) {
  auto* o = v.get_if<object>();
  if (!o || o->size() != 2) return std::nullopt;
  const value* x = find_field(*o, a);
  const value* y = find_field(*o, b);
  if (!x || !y) return std::nullopt;
  return std::pair{x, y};
}

// Duplicate keys: the last value wins, kept at the position of the first occurrence.
void remove_duplicate_keys(object& o) {
  const std::size_t n = o.size();
  if (n < 2) return;
  if (n <= 16) {
    bool any = false;
    for (std::size_t i = 1; i < n && !any; ++i)
      for (std::size_t j = 0; j < i && !any; ++j)
        any = o[i].first == o[j].first;
    if (!any) return;
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return o[a].first < o[b].first; });
  std::vector<bool> dropped(n, false);
  bool any = false;
  for (std::size_t g = 0; g < n;) {
    std::size_t e = g + 1;
    while (e < n && o[order[e]].first == o[order[g]].first)
      ++e;
    if (e - g > 1) {
      any = true;
      o[order[g]].second = std::move(o[order[e - 1]].second);
      for (std::size_t k = g + 1; k < e; ++k)
        dropped[order[k]] = true;
    }
    g = e;
  }
  if (!any) return;
  std::size_t w = 0;
  for (std::size_t r = 0; r < n; ++r) {
    if (dropped[r]) continue;
    if (w != r) o[w] = std::move(o[r]);
    ++w;
  }
  o.erase(o.begin() + static_cast<std::ptrdiff_t>(w), o.end());
}

class parser {
public:
  parser(std::string_view text, std::string_view what, const json_limits& limits)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), what_(what),
        max_depth_(limits.max_depth) {}

  value parse_document() {
    value v = parse_value(0);
    finish();
    return v;
  }

  /// An array read one element at a time: begin_array() takes its '[', each next_element()
  /// one element, nullopt after the ']' (once the rest of the text has been checked).
  void begin_array() {
    skip_ws();
    if (p_ == end_ || *p_ != '[') fail_unexpected(p_);
    check_depth(1);
    ++p_;
  }
  std::optional<value> next_element() {
    if (array_done_) return std::nullopt;
    skip_ws();
    const bool first = std::exchange(array_first_, false);
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      finish();
      array_done_ = true;
      return std::nullopt;
    }
    if (!first) {
      if (p_ == end_ || *p_ != ',') fail(p_, "expected ',' or ']'");
      ++p_;
    }
    return parse_value(1);
  }

private:
  void finish() {
    skip_ws();
    if (p_ != end_) fail(p_, "unexpected trailing " + describe(p_));
  }

  [[noreturn]] void fail(const char* at, std::string_view msg) const {
    std::string m = "invalid JSON in ";
    m += what_;
    m += " at offset ";
    m += std::to_string(at - begin_);
    m += ": ";
    m += msg;
    throw api_error(400, std::move(m));
  }

  // "character 'x'" for printable ASCII, "byte 0x01" otherwise (keeps error bodies readable).
  static std::string describe(const char* at) {
    auto c = static_cast<unsigned char>(*at);
    if (c >= 0x20 && c < 0x7F) return std::string("character '") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  [[noreturn]] void fail_unexpected(const char* at) const {
    if (at == end_) fail(at, "unexpected end of input");
    fail(at, "unexpected " + describe(at));
  }

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }

  value parse_value(std::size_t depth) {
    skip_ws();
    if (p_ == end_) fail_unexpected(p_);
    switch (*p_) {
    case '{':
      return parse_object(depth + 1);
    case '[':
      return parse_array(depth + 1);
    case '"':
    case '\'':
      return value(parse_string());
    case 't':
      expect_literal("true");
      return value(true);
    case 'f':
      expect_literal("false");
      return value(false);
    case 'n':
      expect_literal("null");
      return value();
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
      return parse_number();
    default:
      fail_unexpected(p_);
    }
  }

  void expect_literal(std::string_view lit) {
    if (static_cast<std::size_t>(end_ - p_) < lit.size() || std::string_view(p_, lit.size()) != lit)
      fail_unexpected(p_);
    p_ += lit.size();
  }

  void check_depth(std::size_t depth) const {
    if (depth > max_depth_)
      fail(p_, "nested deeper than " + std::to_string(max_depth_) + " levels");
  }

  value parse_object(std::size_t depth) {
    check_depth(depth);
    const char* start = p_++;
    object o;
    skip_ws();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return value(std::move(o));
    }
    for (;;) {
      skip_ws();
      std::string key = parse_key();
      skip_ws();
      if (p_ == end_ || *p_ != ':') fail(p_, "expected ':'");
      ++p_;
      value v = parse_value(depth);
      o.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (p_ != end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ != end_ && *p_ == '}') {
        ++p_;
        break;
      }
      fail(p_, "expected ',' or '}'");
    }
    remove_duplicate_keys(o);
    if (o.size() == 1 && o.front().first.starts_with('$')) return decode_extended(o, start);
    return value(std::move(o));
  }

  value parse_array(std::size_t depth) {
    check_depth(depth);
    ++p_;
    array a;
    skip_ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return value(std::move(a));
    }
    for (;;) {
      a.push_back(parse_value(depth));
      skip_ws();
      if (p_ != end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ != end_ && *p_ == ']') {
        ++p_;
        break;
      }
      fail(p_, "expected ',' or ']'");
    }
    return value(std::move(a));
  }

  std::string parse_key() {
    if (p_ != end_ && (*p_ == '"' || *p_ == '\'')) return parse_string();
    const char* start = p_;
    while (p_ != end_ && is_key_char(*p_))
      ++p_;
    if (p_ == start) fail(p_, "expected key");
    return std::string(start, p_);
  }

  // Precondition: *p_ is the opening quote (" or ').
  std::string parse_string() {
    const char quote = *p_;
    const char* open = p_++;
    std::string out;
    const char* run = p_;
    for (;;) {
      while (p_ != end_ && *p_ != quote && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20)
        ++p_;
      if (p_ == end_) fail(open, "unterminated string");
      if (*p_ == quote) {
        out.append(run, p_);
        ++p_;
        return out;
      }
      if (*p_ != '\\') fail(p_, "control character in string (" + describe(p_) + ")");
      out.append(run, p_);
      const char* esc = p_++;
      if (p_ == end_) fail(open, "unterminated string");
      switch (*p_++) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case '\'':
        if (quote != '\'') fail(esc, "invalid escape");
        out += '\'';
        break;
      case 'u':
        parse_unicode_escape(out, esc);
        break;
      default:
        fail(esc, "invalid escape");
      }
      run = p_;
    }
  }

  // p_ is just past "\u"; `esc` is the backslash.
  void parse_unicode_escape(std::string& out, const char* esc) {
    std::uint32_t cp = read_hex4(esc);
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail(esc, "unpaired UTF-16 surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') fail(esc, "unpaired UTF-16 surrogate");
      const char* low_esc = p_;
      p_ += 2;
      std::uint32_t low = read_hex4(low_esc);
      if (low < 0xDC00 || low > 0xDFFF) fail(esc, "unpaired UTF-16 surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
  }

  std::uint32_t read_hex4(const char* esc) {
    if (end_ - p_ < 4) fail(esc, "invalid \\u escape");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex_digit(p_[i]);
      if (h < 0) fail(esc, "invalid \\u escape");
      v = v * 16 + static_cast<std::uint32_t>(h);
    }
    p_ += 4;
    return v;
  }

  value parse_number() {
    const char* start = p_;
    auto digits = [&] {
      if (p_ == end_ || !is_digit(*p_)) fail(start, "invalid number");
      while (p_ != end_ && is_digit(*p_))
        ++p_;
    };
    if (*p_ == '-') ++p_;
    if (p_ != end_ && *p_ == '0')
      ++p_;
    else
      digits();
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      integral = false;
      ++p_;
      digits();
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      digits();
    }
    if (integral) {
      std::int64_t i = 0;
      if (std::from_chars(start, p_, i).ec == std::errc{}) {
        if (i >= std::numeric_limits<std::int32_t>::min() &&
            i <= std::numeric_limits<std::int32_t>::max())
          return value(static_cast<std::int32_t>(i));
        return value(i);
      }
      // Beyond int64: fall back to double, as MongoDB's JSON parsers do.
    }
    double d = 0;
    if (std::from_chars(start, p_, d).ec == std::errc{}) return value(d);
    if (!overflows(std::string_view(start, static_cast<std::size_t>(p_ - start))))
      return value(*start == '-' ? -0.0 : 0.0); // underflow, e.g. 1e-400: round to zero
    fail(start, "number out of range");
  }

  // For a JSON number that from_chars found out of range: whether it is too large (rather
  // than too small), judged by the decimal magnitude of its first significant digit.
  static bool overflows(std::string_view num) {
    std::size_t i = num.starts_with('-') ? 1 : 0;
    long magnitude = 0;
    bool seen_point = false, found = false;
    for (; i < num.size() && num[i] != 'e' && num[i] != 'E'; ++i) {
      if (num[i] == '.') {
        seen_point = true;
      } else if (!found && num[i] != '0') {
        found = true;
      } else if (found != seen_point) {
        magnitude += found ? 1 : -1; // integer digits after the first, or leading fraction zeros
      }
    }
    long exponent = 0;
    if (i < num.size()) {
      auto digits = num.substr(i + 1);
      bool negative = digits.starts_with('-');
      if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
      for (char c : digits)
        exponent = std::min(exponent * 10 + (c - '0'), 100000L);
      if (negative) exponent = -exponent;
    }
    return magnitude + exponent > 0;
  }

  // `o` has exactly one field whose key starts with '$'. Returns the decoded wrapper, or the
  // object itself when the key is not an extended-JSON type.
  value decode_extended(object& o, const char* at) {
    const std::string& key = o.front().first;
    const value& v = o.front().second;
    auto invalid = [&](std::string_view expected) {
      fail(at, "invalid " + key + ": expected " + std::string(expected));
    };
    if (key == "$oid") {
      if (auto* s = v.get_if<std::string>())
        if (auto id = object_id::from_hex(*s)) return value(*id);
      invalid("a string of 24 hex digits");
    } else if (key == "$date") {
      if (v.is<std::int32_t>() || v.is<std::int64_t>()) return value(date_time{v.as_int64()});
      if (auto* d = v.get_if<double>()) {
        // Integral doubles within int64 range (2^63 is exactly representable).
        if (std::trunc(*d) == *d && std::abs(*d) < 9223372036854775808.0)
          return value(date_time{static_cast<std::int64_t>(*d)});
      } else if (auto* s = v.get_if<std::string>()) {
        if (auto ms = parse_iso_date(*s)) return value(date_time{*ms});
      }
      invalid("epoch milliseconds, an ISO-8601 date-time or {\"$numberLong\":...}");
    } else if (key == "$numberLong") {
      if (auto* s = v.get_if<std::string>())
        if (auto n = parse_integer<std::int64_t>(*s)) return value(*n);
      invalid("a string holding a 64-bit integer");
    } else if (key == "$numberInt") {
      if (auto* s = v.get_if<std::string>())
        if (auto n = parse_integer<std::int32_t>(*s)) return value(*n);
      invalid("a string holding a 32-bit integer");
    } else if (key == "$numberDouble") {
      if (auto* s = v.get_if<std::string>()) {
        if (*s == "NaN") return value(std::numeric_limits<double>::quiet_NaN());
        if (*s == "Infinity") return value(std::numeric_limits<double>::infinity());
        if (*s == "-Infinity") return value(-std::numeric_limits<double>::infinity());
        // from_chars would also take "inf"/"nan"; only JSON-style numerals are accepted here.
        std::string_view digits = *s;
        if (digits.starts_with('-')) digits.remove_prefix(1);
        if (!digits.empty() && is_digit(digits.front()))
          if (auto d = parse_integer<double>(*s)) return value(*d);
      }
      invalid("a string holding a double, \"NaN\", \"Infinity\" or \"-Infinity\"");
    } else if (key == "$regularExpression") {
      if (auto f = exact_fields(v, "pattern", "options"))
        if (f->first->is_string() && f->second->is_string() &&
            f->first->as_string().find('\0') == std::string::npos)
          if (auto options = canonical_regex_options(f->second->as_string()))
            return value(regex_value{f->first->as_string(), std::move(*options)});
      invalid("{\"pattern\":string without NUL,\"options\":string of the flags \"ilmsux\"}");
    } else if (key == "$binary") {
      if (auto f = exact_fields(v, "base64", "subType")) {
        auto* b64 = f->first->get_if<std::string>();
        auto* sub = f->second->get_if<std::string>();
        if (b64 && sub && !sub->empty() && sub->size() <= 2) {
          int hi = sub->size() == 2 ? hex_digit((*sub)[0]) : 0;
          int lo = hex_digit(sub->back());
          auto data = decode_base64(*b64);
          if (hi >= 0 && lo >= 0 && data)
            return value(binary_value{static_cast<std::uint8_t>(hi * 16 + lo), std::move(*data)});
        }
      }
      invalid("{\"base64\":string,\"subType\":hex string}");
    } else if (key == "$timestamp") {
      if (auto f = exact_fields(v, "t", "i")) {
        auto t = integral_in(*f->first, 0, 0xFFFFFFFF);
        auto i = integral_in(*f->second, 0, 0xFFFFFFFF);
        if (t && i)
          return value(
              timestamp_value{static_cast<std::uint32_t>(*t), static_cast<std::uint32_t>(*i)});
      }
      invalid("{\"t\":uint32,\"i\":uint32}");
    } else if (key == "$minKey" || key == "$maxKey") {
      if (v.is_number() && v.as_double() == 1.0)
        return key == "$minKey" ? value(min_key{}) : value(max_key{});
      invalid("1");
    }
    return value(std::move(o));
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::string_view what_;
  std::size_t max_depth_;
  bool array_first_ = true;
  bool array_done_ = false;
};

void append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  const char* run = s.data();
  const char* end = s.data() + s.size();
  for (const char* q = run; q != end; ++q) {
    auto c = static_cast<unsigned char>(*q);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(run, q);
    run = q + 1;
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  out.append(run, end);
  out += '"';
}

template <class Int> void append_integer(std::string& out, Int i) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, i);
  out.append(buf, r.ptr);
}

void append_double(std::string& out, double d) {
  if (std::isnan(d)) {
    out += R"({"$numberDouble":"NaN"})";
    return;
  }
  if (std::isinf(d)) {
    out += d > 0 ? R"({"$numberDouble":"Infinity"})" : R"({"$numberDouble":"-Infinity"})";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out += text;
  // Keep integral doubles doubles on the way back in: 3.0, not 3.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

struct json_writer {
  std::string& out;

  void operator()(null_t) { out += "null"; }
  void operator()(bool b) { out += b ? "true" : "false"; }
  void operator()(std::int32_t i) { append_integer(out, i); }
  void operator()(std::int64_t i) { append_integer(out, i); }
  void operator()(double d) { append_double(out, d); }
  void operator()(const std::string& s) { append_string(out, s); }
  void operator()(const object& o) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : o) {
      if (!first) out += ',';
      first = false;
      append_string(out, k);
      out += ':';
      std::visit(*this, v.variant());
    }
    out += '}';
  }
  void operator()(const array& a) {
    out += '[';
    bool first = true;
    for (const auto& v : a) {
      if (!first) out += ',';
      first = false;
      std::visit(*this, v.variant());
    }
    out += ']';
  }
  void operator()(const object_id& id) {
    static constexpr char digits[] = "0123456789abcdef";
    char text[] = R"({"$oid":"000000000000000000000000"})";
    char* hex = text + 9;
    for (std::size_t i = 0; i < 12; ++i) {
      hex[2 * i] = digits[id.bytes[i] >> 4];
      hex[2 * i + 1] = digits[id.bytes[i] & 15];
    }
    out.append(text, sizeof text - 1);
  }
  void operator()(const date_time& d) {
    out += R"({"$date":)";
    append_integer(out, d.millis);
    out += '}';
  }
  void operator()(const regex_value& r) {
    out += R"({"$regularExpression":{"pattern":)";
    append_string(out, r.pattern);
    out += R"(,"options":)";
    append_string(out, r.options);
    out += "}}";
  }
  void operator()(const binary_value& b) {
    static constexpr char hex[] = "0123456789abcdef";
    out += R"({"$binary":{"base64":")";
    append_base64(out, b.data);
    out += R"(","subType":")";
    out += hex[b.subtype >> 4];
    out += hex[b.subtype & 15];
    out += "\"}}";
  }
  void operator()(const timestamp_value& t) {
    out += R"({"$timestamp":{"t":)";
    append_integer(out, t.t);
    out += R"(,"i":)";
    append_integer(out, t.i);
    out += "}}";
  }
  void operator()(min_key) { out += R"({"$minKey":1})"; }
  void operator()(max_key) { out += R"({"$maxKey":1})"; }
};

} // namespace

value parse_json(std::string_view text, std::string_view what, const json_limits& limits) {
  return parser(text, what, limits).parse_document();
}

struct json_array_reader::impl : parser {
  using parser::parser;
};

json_array_reader::json_array_reader(std::string_view text, std::string_view what,
                                     const json_limits& limits)
    : p_(std::make_unique<impl>(text, what, limits)) {
  p_->begin_array();
}

json_array_reader::~json_array_reader() = default;

std::optional<value> json_array_reader::next() {
  return p_->next_element();
}

std::string to_json(const value& v) {
  std::string out;
  append_json(out, v);
  return out;
}

void append_json(std::string& out, const value& v) {
  std::visit(json_writer{out}, v.variant());
}

void append_json(std::string& out, const object& o) {
  json_writer{out}(o);
}

void append_json_string(std::string& out, std::string_view s) {
  append_string(out, s);
}

} // namespace rheo
