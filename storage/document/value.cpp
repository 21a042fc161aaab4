#include "storage/document/value.hpp"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

namespace rheo {

namespace {

std::array<std::uint8_t, 5> process_random() {
  std::random_device rd;
  std::array<std::uint8_t, 5> r{};
  for (auto& b : r)
    b = static_cast<std::uint8_t>(rd());
  return r;
}

template <class T> int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// 2^63 as a double (exact); int64 spans [-2^63, 2^63).
constexpr double two_pow_63 = 9223372036854775808.0;

// Exact: converting the integer to double would round above 2^53 (2^53 + 1 == 2^53).
int compare_int_double(std::int64_t i, double d) {
  if (d >= two_pow_63) return -1;
  if (d < -two_pow_63) return 1;
  double t = std::trunc(d);
  auto ti = static_cast<std::int64_t>(t);
  if (i != ti) return three_way(i, ti);
  return three_way(0.0, d - t);
}

int compare_numbers(const value& a, const value& b) {
  // Exact comparison when both are integers; NaN sorts lowest and equals NaN.
  bool ad = a.is<double>(), bd = b.is<double>();
  if (!ad && !bd) return three_way(a.as_int64(), b.as_int64());
  double x = a.as_double(), y = b.as_double();
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) ? (std::isnan(y) ? 0 : -1) : 1;
  if (!ad) return compare_int_double(a.as_int64(), y);
  if (!bd) return -compare_int_double(b.as_int64(), x);
  return three_way(x, y);
}

int compare_objects(const object& a, const object& b) {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    // MongoDB compares field by field: type rank, then name, then value.
    int r =
        three_way(canonical_type_rank(a[i].second.type()), canonical_type_rank(b[i].second.type()));
    if (r) return r;
    r = a[i].first.compare(b[i].first);
    if (r) return r < 0 ? -1 : 1;
    r = compare_values(a[i].second, b[i].second);
    if (r) return r;
  }
  return three_way(a.size(), b.size());
}

int compare_arrays(const array& a, const array& b) {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (int r = compare_values(a[i], b[i])) return r;
  return three_way(a.size(), b.size());
}

} // namespace

bool nested_deeper_than(const object& o, std::size_t limit) {
  if (limit == 0) return true;
  for (auto& [k, v] : o)
    if (nested_deeper_than(v, limit - 1)) return true;
  return false;
}

bool nested_deeper_than(const value& v, std::size_t limit) {
  if (auto* o = v.get_if<object>()) return nested_deeper_than(*o, limit);
  auto* a = v.get_if<array>();
  if (!a) return false;
  if (limit == 0) return true;
  for (auto& e : *a)
    if (nested_deeper_than(e, limit - 1)) return true;
  return false;
}

std::string nested_too_deep(std::string_view what, std::size_t limit) {
  return std::string(what) + " nested deeper than " + std::to_string(limit) + " levels";
}

void check_nesting_depth(const object& doc, std::string_view what, std::size_t limit) {
  if (nested_deeper_than(doc, limit)) throw_bad_request(nested_too_deep(what, limit));
}

std::vector<std::string> split_field_path(std::string_view path, std::string_view empty_segment,
                                          std::string_view dollar_segment) {
  std::vector<std::string> segments;
  while (true) {
    auto dot = path.find('.');
    auto segment = path.substr(0, dot);
    if (segment.empty()) throw_bad_request(std::string(empty_segment));
    if (starts_with_dollar(segment)) throw_bad_request(std::string(dollar_segment));
    if (segments.size() == max_nesting_depth)
      throw_bad_request(nested_too_deep("field path '" + std::string(segments.front()) + "." +
                                        segments[1] + "...'"));
    segments.emplace_back(segment);
    if (dot == std::string_view::npos) return segments;
    path.remove_prefix(dot + 1);
  }
}

if_match_etag parse_if_match(std::string_view v) {
  if (v.starts_with("W/")) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v == "*") return {true, std::nullopt};
  return {false, object_id::from_hex(v)};
}

bool etag_matches(std::string_view if_match, const object_id& etag) {
  auto m = parse_if_match(if_match);
  return m.any || (m.etag && *m.etag == etag);
}

date_time date_time::now() {
  return {std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count()};
}

object_id object_id::generate() {
  static const auto rnd = process_random();
  static std::atomic<std::uint32_t> counter{std::random_device{}()};
  object_id id;
  auto secs = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  std::uint32_t c = counter.fetch_add(1, std::memory_order_relaxed);
  id.bytes[0] = static_cast<std::uint8_t>(secs >> 24);
  id.bytes[1] = static_cast<std::uint8_t>(secs >> 16);
  id.bytes[2] = static_cast<std::uint8_t>(secs >> 8);
  id.bytes[3] = static_cast<std::uint8_t>(secs);
  for (int i = 0; i < 5; ++i)
    id.bytes[4 + i] = rnd[i];
  id.bytes[9] = static_cast<std::uint8_t>(c >> 16);
  id.bytes[10] = static_cast<std::uint8_t>(c >> 8);
  id.bytes[11] = static_cast<std::uint8_t>(c);
  return id;
}

std::optional<object_id> object_id::from_hex(std::string_view hex) {
  if (hex.size() != 24) return std::nullopt;
  object_id id;
  for (std::size_t i = 0; i < 12; ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return id;
}

std::string object_id::hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(24, '0');
  for (std::size_t i = 0; i < 12; ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

bson_type value::type() const {
  switch (v_.index()) {
  case 0:
    return bson_type::null;
  case 1:
    return bson_type::boolean;
  case 2:
    return bson_type::int32;
  case 3:
    return bson_type::int64;
  case 4:
    return bson_type::double_;
  case 5:
    return bson_type::string;
  case 6:
    return bson_type::object;
  case 7:
    return bson_type::array;
  case 8:
    return bson_type::object_id;
  case 9:
    return bson_type::date;
  case 10:
    return bson_type::regex;
  case 11:
    return bson_type::binary;
  case 12:
    return bson_type::timestamp;
  case 13:
    return bson_type::min_key;
  default:
    return bson_type::max_key;
  }
}

double value::as_double() const {
  if (auto* d = get_if<double>()) return *d;
  if (auto* i = get_if<std::int32_t>()) return *i;
  return static_cast<double>(std::get<std::int64_t>(v_));
}

std::int64_t value::as_int64() const {
  if (auto* i = get_if<std::int32_t>()) return *i;
  if (auto* l = get_if<std::int64_t>()) return *l;
  // Casting NaN or an out-of-range double is undefined behaviour: saturate instead.
  double d = std::get<double>(v_);
  if (std::isnan(d)) return 0;
  if (d >= two_pow_63) return std::numeric_limits<std::int64_t>::max();
  if (d < -two_pow_63) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}

bool value::truthy() const {
  if (is_null()) return false;
  if (auto* b = get_if<bool>()) return *b;
  if (is_number()) return as_double() != 0.0;
  return true;
}

bool operator==(const value& a, const value& b) {
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.v_.index() != b.v_.index()) return false;
  return a.v_ == b.v_;
}

bool identical(const value& a, const value& b) {
  if (a.variant().index() != b.variant().index()) return false;
  if (auto* o = a.get_if<object>()) {
    auto& p = b.as_object();
    if (o->size() != p.size()) return false;
    for (std::size_t i = 0; i < o->size(); ++i)
      if ((*o)[i].first != p[i].first || !identical((*o)[i].second, p[i].second)) return false;
    return true;
  }
  if (auto* x = a.get_if<array>()) {
    auto& y = b.as_array();
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i)
      if (!identical((*x)[i], y[i])) return false;
    return true;
  }
  if (auto* d = a.get_if<double>(); d && std::isnan(*d)) return std::isnan(b.get<double>());
  return a == b;
}

int canonical_type_rank(bson_type t) {
  switch (t) {
  case bson_type::min_key:
    return 1;
  case bson_type::null:
    return 2;
  case bson_type::double_:
  case bson_type::int32:
  case bson_type::int64:
    return 3;
  case bson_type::string:
    return 4;
  case bson_type::object:
    return 5;
  case bson_type::array:
    return 6;
  case bson_type::binary:
    return 7;
  case bson_type::object_id:
    return 8;
  case bson_type::boolean:
    return 9;
  case bson_type::date:
    return 10;
  case bson_type::timestamp:
    return 11;
  case bson_type::regex:
    return 12;
  case bson_type::max_key:
    return 13;
  }
  return 0;
}

int compare_values(const value& a, const value& b) {
  int ra = canonical_type_rank(a.type()), rb = canonical_type_rank(b.type());
  if (ra != rb) return three_way(ra, rb);
  switch (a.type()) {
  case bson_type::min_key:
  case bson_type::max_key:
  case bson_type::null:
    return 0;
  case bson_type::double_:
  case bson_type::int32:
  case bson_type::int64:
    return compare_numbers(a, b);
  case bson_type::string: {
    int r = a.as_string().compare(b.as_string());
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
  }
  case bson_type::object:
    return compare_objects(a.as_object(), b.as_object());
  case bson_type::array:
    return compare_arrays(a.as_array(), b.as_array());
  case bson_type::binary: {
    auto& x = a.get<binary_value>();
    auto& y = b.get<binary_value>();
    if (x.data.size() != y.data.size()) return three_way(x.data.size(), y.data.size());
    if (x.subtype != y.subtype) return three_way(x.subtype, y.subtype);
    int r = x.data.compare(y.data);
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
  }
  case bson_type::object_id:
    return three_way(a.get<object_id>(), b.get<object_id>());
  case bson_type::boolean:
    return three_way(a.as_bool(), b.as_bool());
  case bson_type::date:
    return three_way(a.get<date_time>().millis, b.get<date_time>().millis);
  case bson_type::timestamp: {
    auto& x = a.get<timestamp_value>();
    auto& y = b.get<timestamp_value>();
    return x.t != y.t ? three_way(x.t, y.t) : three_way(x.i, y.i);
  }
  case bson_type::regex: {
    auto& x = a.get<regex_value>();
    auto& y = b.get<regex_value>();
    if (int r = x.pattern.compare(y.pattern)) return r < 0 ? -1 : 1;
    int r = x.options.compare(y.options);
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
  }
  }
  return 0;
}

const value* find_field(const object& o, std::string_view key) {
  for (auto& [k, v] : o)
    if (k == key) return &v;
  return nullptr;
}

value* find_field(object& o, std::string_view key) {
  for (auto& [k, v] : o)
    if (k == key) return &v;
  return nullptr;
}

void set_field(object& o, std::string_view key, value v) {
  if (auto* existing = find_field(o, key)) {
    *existing = std::move(v);
    return;
  }
  o.emplace_back(std::string(key), std::move(v));
}

bool erase_field(object& o, std::string_view key) {
  for (auto it = o.begin(); it != o.end(); ++it)
    if (it->first == key) {
      o.erase(it);
      return true;
    }
  return false;
}

const value* find_path(const object& o, std::string_view dotted) {
  const object* cur = &o;
  const value* found = nullptr;
  while (true) {
    auto dot = dotted.find('.');
    auto seg = dotted.substr(0, dot);
    found = find_field(*cur, seg);
    if (!found) return nullptr;
    if (dot == std::string_view::npos) return found;
    dotted.remove_prefix(dot + 1);
    while (found->is_array()) {
      auto next = dotted.find('.');
      auto idx = dotted.substr(0, next);
      // from_chars rejects signs and overflow (std::stoul threw on "99999999999999999999").
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), n);
      if (idx.empty() || ec != std::errc{} || end != idx.data() + idx.size()) return nullptr;
      if (n >= found->as_array().size()) return nullptr;
      found = &found->as_array()[n];
      if (next == std::string_view::npos) return found;
      dotted.remove_prefix(next + 1);
    }
    if (!found->is_object()) return nullptr;
    cur = &found->as_object();
  }
}

const char* bson_type_name(bson_type t) {
  switch (t) {
  case bson_type::double_:
    return "double";
  case bson_type::string:
    return "string";
  case bson_type::object:
    return "object";
  case bson_type::array:
    return "array";
  case bson_type::binary:
    return "binData";
  case bson_type::object_id:
    return "objectId";
  case bson_type::boolean:
    return "bool";
  case bson_type::date:
    return "date";
  case bson_type::null:
    return "null";
  case bson_type::regex:
    return "regex";
  case bson_type::int32:
    return "int";
  case bson_type::timestamp:
    return "timestamp";
  case bson_type::int64:
    return "long";
  case bson_type::min_key:
    return "minKey";
  case bson_type::max_key:
    return "maxKey";
  }
  return "unknown";
}

std::optional<std::size_t> array_index(std::string_view seg) {
  if (seg.empty() || seg.size() > 9) return std::nullopt;
  std::size_t n = 0;
  for (char c : seg) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  return n;
}

void throw_bad_request(std::string message) {
  throw api_error(400, std::move(message));
}

} // namespace rheo
