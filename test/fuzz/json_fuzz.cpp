// Fuzzes the relaxed JSON parser (storage/document/json.hpp) as the REST API uses it on
// bodies and query parameters: malformed input must be an api_error(400), and what parses
// must survive the writer and BSON: to_json() reads back to an equal value, and an
// object encodes to BSON that decodes to the identical document.
#include "fuzz_support.hpp"
#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"

#include <string>

using namespace rheo;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  value v;
  try {
    v = parse_json(fuzz::as_text(data, size), "body");
  } catch (const api_error& e) {
    if (e.status() != 400) fuzz::fail("parse_json error is not a 400:", e.what());
    return 0;
  }
  if (nested_deeper_than(v, max_nesting_depth)) fuzz::fail("parsed beyond the depth limit");
  const std::string text = to_json(v);
  value back;
  try {
    back = parse_json(text, "body");
  } catch (const api_error& e) {
    fuzz::fail("to_json output does not parse:", std::string(e.what()) + " in " + text);
  }
  if (compare_values(v, back) != 0) fuzz::fail("to_json does not read back equal:", text);
  if (v.is_object()) {
    std::string bson;
    try {
      bson = encode_bson(v.as_object());
    } catch (const std::runtime_error&) {
      return 0; // a value BSON cannot hold (e.g. a key with a NUL byte): the store refuses it
    }
    if (!identical(value(decode_bson(bson)), v)) fuzz::fail("BSON round trip differs:", text);
  }
  return 0;
}
