// Fuzzes the update operators and body normalisation (storage/document/update.hpp) as PATCH,
// PUT and POST use them. Input: line 1 the update or document body (relaxed JSON), line 2
// the stored document it applies to (empty: a sample). A bad body must be api_error(400) at
// parse(); apply() may refuse with api_error(400) and then leaves the document unchanged.
// An applied update keeps the document within max_nesting_depth and encodable as BSON, and
// the update rebuilt from its ops() (as another node receives it) changes a copy
// identically.
#include "fuzz_support.hpp"
#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"
#include "storage/document/update.hpp"

#include <string>

using namespace rheo;

namespace {

const object& sample_document() {
  static const object doc =
      parse_json(R"({"_id":1,"name":"ada","n":3,"d":2.5,"big":{"$numberLong":"9007199254740993"},)"
                 R"("tags":["a","b",{"k":1}],"nums":[3,1,2],"a":{"b":{"c":[{"d":1},{"d":2}]}},)"
                 R"("at":{"$date":1600000000000},"none":null})",
                 "sample")
          .as_object();
  return doc;
}

void check_400(const api_error& e) {
  if (e.status() != 400) fuzz::fail("not a 400:", e.what());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto lines = fuzz::split_lines(fuzz::as_text(data, size), 2);
  lines.resize(2);
  object body;
  object doc = sample_document();
  try {
    value b = parse_json(lines[0], "body");
    if (!b.is_object()) return 0;
    body = std::move(b.as_object());
    if (!lines[1].empty()) {
      value d = parse_json(lines[1], "document");
      if (!d.is_object()) return 0;
      doc = std::move(d.as_object());
    }
  } catch (const api_error& e) {
    check_400(e);
    return 0;
  }

  // POST/PUT: the body as a document.
  try {
    object normalized = normalize_document_body(body);
    if (nested_deeper_than(normalized, max_nesting_depth)) fuzz::fail("normalized too deep");
  } catch (const api_error& e) {
    check_400(e);
  }

  // PATCH: the body as update operators.
  update_spec spec;
  try {
    spec = update_spec::parse(body);
  } catch (const api_error& e) {
    check_400(e);
    return 0;
  }
  update_spec rebuilt;
  try {
    rebuilt = update_spec::from_ops(spec.ops());
  } catch (const api_error& e) {
    fuzz::fail("from_ops() refuses what parse() accepted:", e.what());
  }
  const object before = doc;
  object other = doc;
  update_description desc;
  try {
    spec.apply(doc, &desc);
  } catch (const api_error& e) {
    check_400(e);
    if (!identical(value(doc), value(before))) fuzz::fail("a refused update changed the document");
    return 0;
  }
  if (nested_deeper_than(doc, max_nesting_depth)) fuzz::fail("update result too deep");
  try {
    (void)encode_bson(doc); // as the store writes it
  } catch (const std::runtime_error&) {
    // a key BSON cannot hold (a NUL byte): the store refuses the write
  }
  try {
    rebuilt.apply(other);
  } catch (const api_error& e) {
    fuzz::fail("the rebuilt update refuses what the parsed one applied:", e.what());
  }
  // $currentDate reads the clock: the two results may differ in those dates only.
  bool dates = false;
  for (const auto& o : spec.ops())
    dates = dates || o.name == "$currentDate";
  if (!dates && !identical(value(doc), value(other)))
    fuzz::fail("the rebuilt update differs:", to_json(value(doc)) + " vs " + to_json(value(other)));
  std::string json;
  append_json(json, desc.updated_fields);
  return 0;
}
