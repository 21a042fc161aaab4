// JSON on the wire (section 2 of the API contract): a parser that accepts strict JSON,
// MongoDB extended JSON ($oid, $date, $numberLong, ...) and the relaxed shell syntax
// RESTHeart accepts (unquoted keys, single-quoted strings); and a writer that emits
// relaxed extended JSON with rheo's fixed choices ({"$oid":...}, {"$date":<millis>}).
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rheo {

struct json_limits {
  std::size_t max_depth = max_nesting_depth;
};

/// Parses `text` into a value. On malformed input throws api_error(400) whose message
/// names `what` (e.g. "body", "filter") and the position, e.g.
/// "invalid JSON in filter at offset 7: expected ':'".
/// Extended JSON wrappers are decoded: {"$oid":hex}, {"$numberLong":s}, {"$numberInt":s},
/// {"$date":millis|ISO-8601|{"$numberLong":s}}, {"$numberDouble":s},
/// {"$regularExpression":{pattern,options}}, {"$binary":{"base64":s,"subType":hex}},
/// {"$timestamp":{"t":n,"i":n}}, {"$minKey":1}, {"$maxKey":1}.
/// $regularExpression options are BSON's flags "ilmsux" (kept sorted, duplicates dropped) and
/// its pattern has no NUL byte: anything else is a 400, as BSON could not hold it.
/// An object is a wrapper only when its key set is exactly the wrapper's; a wrapper with a
/// bad payload ({"$date":"garbage"}) is a 400. {"$regex":s,"$options":s} is NOT decoded: it is
/// also the query operator, so it stays a plain object and the query engine interprets it.
/// Integers that fit int32 become int32, else int64, beyond int64 double; numbers with '.' or
/// 'e' become double (too large for a double: 400; too small: 0.0).
/// Duplicate keys: the last value wins, in the first one's position.
/// Nesting deeper than `limits.max_depth` containers is a 400 "... nested deeper than 100
/// levels" (recursion stops there).
/// Invalid UTF-8 passes through unchecked; \u escapes must be well-formed UTF-16.
value parse_json(std::string_view text, std::string_view what = "body",
                 const json_limits& limits = {});

/// Reads a JSON array one element at a time, so that its elements need not all exist as
/// values at once (a bulk body's documents). The syntax, limits and errors are parse_json's;
/// the text after the array is checked before next() first returns nullopt.
class json_array_reader {
public:
  /// Throws api_error(400) unless `text` starts (after white space) with '['.
  explicit json_array_reader(std::string_view text, std::string_view what = "body",
                             const json_limits& limits = {});
  ~json_array_reader();
  json_array_reader(const json_array_reader&) = delete;
  json_array_reader& operator=(const json_array_reader&) = delete;

  /// The next element, or nullopt after the last; throws api_error(400) on malformed input.
  std::optional<value> next();

private:
  struct impl;
  std::unique_ptr<impl> p_;
};

/// Serializes as relaxed extended JSON (see header comment). Non-finite doubles are
/// written as {"$numberDouble":"NaN"|"Infinity"|"-Infinity"}.
std::string to_json(const value& v);
void append_json(std::string& out, const value& v);
void append_json(std::string& out, const object& o);
/// Appends `s` as a JSON string (quoted and escaped as append_json writes strings).
void append_json_string(std::string& out, std::string_view s);

} // namespace rheo
