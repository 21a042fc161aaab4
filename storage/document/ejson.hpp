// MongoDB Extended JSON (v2) for export and import: one document per line, as mongoexport
// writes and mongoimport reads. Through libbson, which implements the whole specification:
// canonical mode (every number typed: {"$numberInt":"1"}, {"$numberDouble":"1.5"},
// {"$date":{"$numberLong":"..."}}) and relaxed mode (plain JSON numbers, ISO-8601 dates), and
// reads either, plus the legacy forms older mongoexports wrote ({"$binary":s,"$type":t},
// {"$regex":s,"$options":o}, {"$date":<millis>}).
//
// Unlike parse_json (json.hpp, for request bodies, where {"$regex":..} is a query operator),
// these keep every BSON type as it is: a value model conversion (decode_bson) is the
// caller's choice.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace rheo {

enum class ejson_mode { canonical, relaxed };

/// BSON document `bson` as one line of Extended JSON (no newline: strings escape theirs).
/// Throws std::runtime_error when `bson` is not a valid BSON document.
std::string ejson_from_bson(std::string_view bson, ejson_mode mode = ejson_mode::canonical);

/// The BSON of the Extended JSON document `json`: one JSON object, in either mode, with
/// nothing but white space after it. Throws std::runtime_error saying what is wrong and
/// where ("offset 12: Missing a comma or '}' after an object member."; "Invalid input
/// string "x"" for a bad wrapper).
std::string bson_from_ejson(std::string_view json);

} // namespace rheo
