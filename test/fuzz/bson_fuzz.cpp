// Fuzzes the decoding of stored documents (storage/document/bson_codec.hpp): bytes read back
// from the embedded store's file, a peer or MongoDB. Corrupt input must be a
// std::runtime_error (api_error(400) beyond max_bson_depth); a decoded document must be
// writable as JSON and re-encode to BSON that decodes to the identical document.
#include "fuzz_support.hpp"
#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"

#include <stdexcept>
#include <string>

using namespace rheo;

namespace {

/// append_json_from_bson()'s output, or its error as "error: ..." (400s as "400: ...").
std::string json_from_bson(std::string_view bytes) {
  std::string out;
  try {
    append_json_from_bson(out, bytes);
  } catch (const api_error& e) {
    return std::string("400: ") + e.what();
  } catch (const std::runtime_error& e) {
    return std::string("error: ") + e.what();
  }
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  object doc;
  const std::string_view bytes = fuzz::as_text(data, size);
  // Written as JSON straight from the bytes: the same text as through the value, and the
  // same failure.
  const std::string direct = json_from_bson(bytes);
  try {
    doc = decode_bson(bytes);
  } catch (const api_error& e) {
    if (e.status() != 400) fuzz::fail("decode_bson error is not a 400:", e.what());
    if (direct != std::string("400: ") + e.what())
      fuzz::fail("append_json_from_bson fails otherwise:", direct);
    return 0;
  } catch (const std::runtime_error& e) {
    if (direct != std::string("error: ") + e.what())
      fuzz::fail("append_json_from_bson fails otherwise:", direct);
    return 0; // corrupt BSON
  }
  if (nested_deeper_than(doc, max_bson_depth)) fuzz::fail("decoded beyond max_bson_depth");
  std::string json;
  append_json(json, doc);
  if (direct != json) fuzz::fail("append_json_from_bson differs:", direct);
  std::string again;
  try {
    again = encode_bson(doc);
  } catch (const std::runtime_error& e) {
    fuzz::fail("a decoded document does not encode:", e.what());
  }
  if (!identical(value(decode_bson(again)), value(doc)))
    fuzz::fail("BSON round trip differs:", json);
  return 0;
}
