// Fuzzes the query engine (storage/document/query.hpp) as GET /<coll>?filter=&sort=&keys=
// drives it. Input: line 1 the filter, line 2 the sort, line 3 the projection (keys), each
// relaxed JSON (an empty line: none); further lines are documents to query besides a fixed
// sample. A bad specification must be an api_error(400); a compiled one must match, sort
// (with std::sort, as the embedded store sorts in memory: the comparison must be a strict
// weak order) and project every document.
#include "fuzz_support.hpp"
#include "storage/document/json.hpp"
#include "storage/document/query.hpp"

#include <algorithm>
#include <optional>
#include <string>

using namespace rheo;

namespace {

const std::vector<object>& sample_documents() {
  static const std::vector<object> docs = [] {
    std::vector<object> out;
    for (
        const char* text : {
            R"({"_id":1,"name":"ada","age":36,"tags":["math","code"],"address":{"city":"London"}})",
            R"({"_id":{"$oid":"5f1d7e3a9b1e8a0012345678"},"name":"bob","age":{"$numberLong":"40"},)"
            R"("scores":[{"k":"a","v":1.5},{"k":"b","v":-2}],"at":{"$date":1600000000000}})",
            R"({"_id":"c","name":null,"age":25.5,"tags":[],"nested":{"a":{"b":[1,[2,3],{"c":4}]}}})",
            R"({"_id":4,"bin":{"$binary":{"base64":"AAEC","subType":"00"}},"re":{"$regularExpression":)"
            R"({"pattern":"^a","options":"i"}},"ts":{"$timestamp":{"t":1,"i":2}},"min":{"$minKey":1}})",
            R"({"_id":5,"n":{"$numberDouble":"NaN"},"inf":{"$numberDouble":"-Infinity"},"z":-0.0})",
            R"({})",
        })
      out.push_back(parse_json(text, "sample").as_object());
    return out;
  }();
  return docs;
}

/// The object a line holds; nullopt for an empty line. Throws api_error(400) as the REST
/// API does for a parameter that is not a JSON object.
std::optional<object> object_line(std::string_view line, const char* what) {
  if (line.empty()) return std::nullopt;
  value v = parse_json(line, what);
  if (!v.is_object()) throw_bad_request(std::string(what) + " must be a JSON object");
  return std::move(v.as_object());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto lines = fuzz::split_lines(fuzz::as_text(data, size), 16);
  lines.resize(std::max<std::size_t>(lines.size(), 3));
  matcher filter;
  sort_spec sort;
  projection keys;
  std::vector<object> docs = sample_documents();
  try {
    if (auto f = object_line(lines[0], "filter")) filter = matcher::compile(*f);
    if (auto s = object_line(lines[1], "sort")) sort = sort_spec::parse(*s);
    if (auto k = object_line(lines[2], "keys")) keys = projection::compile(*k);
    for (std::size_t i = 3; i < lines.size(); ++i)
      if (auto d = object_line(lines[i], "document")) docs.push_back(std::move(*d));
  } catch (const api_error& e) {
    if (e.status() != 400) fuzz::fail("not a 400:", e.what());
    return 0;
  }
  std::vector<object> found;
  for (const auto& d : docs)
    if (filter.matches(d)) found.push_back(d);
  if (filter.matches_all() && found.size() != docs.size())
    fuzz::fail("empty filter drops documents");
  if (const value* id = filter.id_equality())
    for (const auto& d : found) {
      const value* did = find_field(d, "_id");
      if (did && did->is_array()) continue; // matched element-wise (not a stored _id)
      if (!did || compare_values(*did, *id) != 0)
        fuzz::fail("id_equality() disagrees with matches()");
    }
  std::sort(found.begin(), found.end(),
            [&](const object& a, const object& b) { return sort.compare(a, b) < 0; });
  for (std::size_t i = 1; i < found.size(); ++i)
    if (sort.compare(found[i - 1], found[i]) > 0) fuzz::fail("sort order is not consistent");
  std::string out;
  for (const auto& d : found)
    append_json(out, keys.apply(d));
  return 0;
}
