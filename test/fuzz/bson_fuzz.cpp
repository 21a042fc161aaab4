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

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  object doc;
  try {
    doc = decode_bson(fuzz::as_text(data, size));
  } catch (const api_error& e) {
    if (e.status() != 400) fuzz::fail("decode_bson error is not a 400:", e.what());
    return 0;
  } catch (const std::runtime_error&) {
    return 0; // corrupt BSON
  }
  if (nested_deeper_than(doc, max_bson_depth)) fuzz::fail("decoded beyond max_bson_depth");
  std::string json;
  append_json(json, doc);
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
