// The document model shared by the REST API, the query engine, the stores and the
// stream stages: a BSON-typed value tree with ordered object fields; and api_error, the
// client-visible error with its HTTP status that every layer throws.
//
// Thread-safety: a value is a plain value type; distinct objects may be used from
// different threads, one object must not be mutated while another thread reads it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace rheo {

class value;

/// Object fields in insertion order (BSON keeps order; so do we).
using object = std::vector<std::pair<std::string, value>>;
using array = std::vector<value>;

struct null_t {
  friend bool operator==(null_t, null_t) { return true; }
};
struct min_key {
  friend bool operator==(min_key, min_key) { return true; }
};
struct max_key {
  friend bool operator==(max_key, max_key) { return true; }
};

struct object_id {
  std::array<std::uint8_t, 12> bytes{};
  /// A fresh id: 4-byte seconds, 5-byte process-random, 3-byte counter (as MongoDB).
  static object_id generate();
  /// Parses exactly 24 hex digits.
  static std::optional<object_id> from_hex(std::string_view hex);
  std::string hex() const;
  friend bool operator==(const object_id&, const object_id&) = default;
  friend auto operator<=>(const object_id&, const object_id&) = default;
};

/// The ObjectId an If-Match value names ("..." and W/"..." accepted); "*" is any etag
/// (`any` set, no etag); an unparsable value names none and so matches nothing.
struct if_match_etag {
  bool any = false;
  std::optional<object_id> etag;
};
if_match_etag parse_if_match(std::string_view if_match);
/// Whether `if_match` names `etag` (or is "*").
bool etag_matches(std::string_view if_match, const object_id& etag);

/// Milliseconds since the Unix epoch (BSON UTC datetime).
struct date_time {
  std::int64_t millis = 0;
  friend bool operator==(const date_time&, const date_time&) = default;
  /// The system clock, to the millisecond.
  static date_time now();
};

struct regex_value {
  std::string pattern;
  std::string options;
  friend bool operator==(const regex_value&, const regex_value&) = default;
};

struct binary_value {
  std::uint8_t subtype = 0;
  std::string data;
  friend bool operator==(const binary_value&, const binary_value&) = default;
};

struct timestamp_value {
  std::uint32_t t = 0;
  std::uint32_t i = 0;
  friend bool operator==(const timestamp_value&, const timestamp_value&) = default;
};

/// BSON type codes, used by `$type` and by the cross-type sort order.
enum class bson_type : int {
  double_ = 1,
  string = 2,
  object = 3,
  array = 4,
  binary = 5,
  object_id = 7,
  boolean = 8,
  date = 9,
  null = 10,
  regex = 11,
  int32 = 16,
  timestamp = 17,
  int64 = 18,
  min_key = -1,
  max_key = 127,
};

class value {
public:
  using variant_type = std::variant<null_t, bool, std::int32_t, std::int64_t, double, std::string,
                                    object, array, object_id, date_time, regex_value, binary_value,
                                    timestamp_value, min_key, max_key>;

  value() = default;
  value(null_t) {}
  value(bool b) : v_(b) {}
  value(std::int32_t i) : v_(i) {}
  value(std::int64_t i) : v_(i) {}
  value(double d) : v_(d) {}
  value(std::string s) : v_(std::move(s)) {}
  value(std::string_view s) : v_(std::string(s)) {}
  value(const char* s) : v_(std::string(s)) {}
  value(object o) : v_(std::move(o)) {}
  value(array a) : v_(std::move(a)) {}
  value(object_id o) : v_(o) {}
  value(date_time d) : v_(d) {}
  value(regex_value r) : v_(std::move(r)) {}
  value(binary_value b) : v_(std::move(b)) {}
  value(timestamp_value t) : v_(t) {}
  value(min_key k) : v_(k) {}
  value(max_key k) : v_(k) {}

  bson_type type() const;
  bool is_null() const { return std::holds_alternative<null_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_number() const {
    return std::holds_alternative<std::int32_t>(v_) || std::holds_alternative<std::int64_t>(v_) ||
           std::holds_alternative<double>(v_);
  }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_object() const { return std::holds_alternative<object>(v_); }
  bool is_array() const { return std::holds_alternative<array>(v_); }

  template <class T> bool is() const { return std::holds_alternative<T>(v_); }
  template <class T> T& get() { return std::get<T>(v_); }
  template <class T> const T& get() const { return std::get<T>(v_); }
  template <class T> T* get_if() { return std::get_if<T>(&v_); }
  template <class T> const T* get_if() const { return std::get_if<T>(&v_); }

  const std::string& as_string() const { return std::get<std::string>(v_); }
  const object& as_object() const { return std::get<object>(v_); }
  object& as_object() { return std::get<object>(v_); }
  const array& as_array() const { return std::get<array>(v_); }
  array& as_array() { return std::get<array>(v_); }
  bool as_bool() const { return std::get<bool>(v_); }
  /// Any numeric type as double. Precondition: is_number().
  double as_double() const;
  /// Any numeric type as int64 (doubles truncated). Precondition: is_number().
  std::int64_t as_int64() const;

  /// MongoDB truthiness for expressions: false, null, 0 and missing are false.
  bool truthy() const;

  const variant_type& variant() const { return v_; }
  variant_type& variant() { return v_; }

  /// Structural equality with MongoDB number semantics (1 == 1.0 == 1L).
  friend bool operator==(const value& a, const value& b);

private:
  variant_type v_;
};

/// Same value and same types all the way down, fields in the same order: 1, 1L and 1.0
/// differ, NaN is identical to NaN. What counts as a change (update descriptions) and what
/// "the same document" means in tests; operator== is MongoDB's equality instead.
bool identical(const value& a, const value& b);

/// Total order over values following MongoDB's BSON comparison order:
/// MinKey < null < numbers < string < object < array < binData < ObjectId < bool < date
/// < timestamp < regex < MaxKey. Returns <0, 0, >0.
int compare_values(const value& a, const value& b);

/// Rank of a type in that order (numbers share one rank).
int canonical_type_rank(bson_type t);

// ---- object helpers ----

/// The field named `key` in `o`, or nullptr.
const value* find_field(const object& o, std::string_view key);
value* find_field(object& o, std::string_view key);
/// Sets (replacing in place, or appending) the field `key`.
void set_field(object& o, std::string_view key, value v);
/// Removes the field `key`; returns whether it existed.
bool erase_field(object& o, std::string_view key);

/// Resolves a dotted path through objects only (no array traversal); nullptr if absent.
/// Numeric segments index arrays ("a.0.b").
const value* find_path(const object& o, std::string_view dotted);

/// The $type alias of a BSON type ("double", "string", "objectId", "int", "long", ...).
const char* bson_type_name(bson_type t);

/// True when `s` starts with '$' (an operator name).
inline bool starts_with_dollar(std::string_view s) {
  return !s.empty() && s.front() == '$';
}

/// Nesting limits, so that no recursive walk over a value (parser, matcher, update,
/// expressions, JSON and BSON writers, destructors) can be driven into a stack overflow.
/// What clients send (bodies, filter/sort/keys, avars, stream and aggregation definitions)
/// and the documents made of it are at most `max_nesting_depth` objects/arrays deep, as
/// MongoDB documents for BSON. BSON read back (stored documents, change-log entries, replies
/// of a peer or of MongoDB) and stage outputs may be `max_bson_depth` deep: room for the
/// envelopes around a document (MongoDB's own maxBSONDepth is 200 as well).
constexpr std::size_t max_nesting_depth = 100;
constexpr std::size_t max_bson_depth = 200;

/// Whether `v` holds more than `limit` levels of objects and arrays (a scalar is 0 levels,
/// {} and {"a":1} are 1, {"a":[]} is 2). Recurses at most `limit` + 1 levels.
bool nested_deeper_than(const value& v, std::size_t limit);
bool nested_deeper_than(const object& o, std::size_t limit);
/// Throws api_error(400) "<what> nested deeper than <limit> levels" when `doc` is.
void check_nesting_depth(const object& doc, std::string_view what,
                         std::size_t limit = max_nesting_depth);
/// "<what> nested deeper than <limit> levels", the message of every depth refusal.
std::string nested_too_deep(std::string_view what, std::size_t limit = max_nesting_depth);

/// The segments of the dotted field path `path` ("a.b.0" -> a, b, 0). Throws api_error(400)
/// with `empty_segment` when a segment is empty and with `dollar_segment` when one starts
/// with '$', and when it has more than max_nesting_depth segments (no document that deep
/// exists, and setting such a path would make one).
std::vector<std::string> split_field_path(std::string_view path, std::string_view empty_segment,
                                          std::string_view dollar_segment);

/// The value of a hexadecimal digit (either case), or -1.
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The array index named by a dotted-path segment when it is all digits (at most 9), else
/// nullopt.
std::optional<std::size_t> array_index(std::string_view segment);

/// An error that maps to an HTTP status and a message for the client.
class api_error : public std::runtime_error {
public:
  api_error(int status, std::string message)
      : std::runtime_error(std::move(message)), status_(status) {}
  int status() const { return status_; }

private:
  int status_;
};

/// Shorthand for 400 Bad Request.
[[noreturn]] void throw_bad_request(std::string message);

} // namespace rheo
