// The order-preserving key of an _id: bytes whose memcmp order is compare_values() order
// (storage/document/value.hpp), so that the documents table's primary key lists documents
// in _id order and 1, 1L and 1.0 are one _id. Internal to storage/sqlite; the encoding is
// on disk, so it never changes without a migration.
//
// Thread-safety: a pure function; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <string>

namespace rheo::sqlite {

/// The key of `id`; throws api_error(400) for values MongoDB refuses as _id (arrays).
std::string id_key(const value& id);

} // namespace rheo::sqlite
