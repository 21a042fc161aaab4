// Conversion between rheo's value tree and BSON bytes (libbson), used by the embedded
// store for documents and change-log entries and by the MongoDB backend.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <string>
#include <string_view>

namespace rheo {

/// Encodes a document as BSON bytes. Throws std::runtime_error for a value BSON cannot hold
/// and for nesting deeper than max_bson_depth (value.hpp), which decode_bson would refuse.
std::string encode_bson(const object& doc);
/// Decodes BSON bytes; throws std::runtime_error on corrupt input, and api_error(400)
/// "BSON document nested deeper than 200 levels" (max_bson_depth; the document itself is
/// one level) rather than recurse further.
object decode_bson(std::string_view bytes);

} // namespace rheo
