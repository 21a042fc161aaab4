// Conversion between rheo's value tree and BSON bytes (libbson), used by the embedded
// store for documents and change-log entries and by the MongoDB backend.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <string>
#include <string_view>

namespace rheo {

/// Encodes a document as BSON bytes.
std::string encode_bson(const object& doc);
/// Decodes BSON bytes; throws std::runtime_error on corrupt input.
object decode_bson(std::string_view bytes);

} // namespace rheo
