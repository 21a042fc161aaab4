// Conversion between rheo's value tree and BSON bytes (libbson), used by the embedded
// store for documents and change-log entries and by the MongoDB backend.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace rheo {

/// The regex flags BSON holds ("ilmsux"), sorted and without duplicates as BSON stores them;
/// nullopt when `options` has another character (libbson would drop it when encoding). The
/// JSON parser refuses such options and a pattern with a NUL byte (a BSON cstring), so that a
/// regex survives the store unchanged.
std::optional<std::string> canonical_regex_options(std::string_view options);

/// Encodes a document as BSON bytes. Throws std::runtime_error for a value BSON cannot hold
/// and for nesting deeper than max_bson_depth (value.hpp), which decode_bson would refuse.
std::string encode_bson(const object& doc);
/// Decodes BSON bytes; throws std::runtime_error on corrupt input, and api_error(400)
/// "BSON document nested deeper than 200 levels" (max_bson_depth; the document itself is
/// one level) rather than recurse further.
object decode_bson(std::string_view bytes);
/// Appends BSON document `bytes` as JSON: exactly what append_json(out, decode_bson(bytes))
/// appends (json.hpp), without making the document's value tree. Throws as decode_bson;
/// `out` may then hold part of the document.
void append_json_from_bson(std::string& out, std::string_view bytes);

} // namespace rheo
