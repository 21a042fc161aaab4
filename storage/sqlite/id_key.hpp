// The key of a document in the documents table: the index-key encoding of its _id
// (storage/document/index_key.hpp), so the primary key lists documents in _id order and
// 1, 1L and 1.0 are one _id. Internal to storage/sqlite; the encoding is on disk (schema
// version 2, see schema.hpp).
//
// Thread-safety: a pure function; safe from any thread.
#pragma once

#include "storage/document/index_key.hpp"

#include <string>

namespace rheo::sqlite {

/// The key of `id`; throws api_error(400) for values MongoDB refuses as _id (arrays).
inline std::string id_key(const value& id) {
  if (id.is_array()) throw_bad_request("_id cannot be an array");
  return encode_key(id);
}

} // namespace rheo::sqlite
