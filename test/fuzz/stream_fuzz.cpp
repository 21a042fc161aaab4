// Fuzzes stream definitions and the stage evaluator (storage/document/definitions.hpp,
// stages.hpp, pipeline.hpp) as a collection's metadata write and a subscription use them.
// Input: line 1 a stream definition {uri, stages} (relaxed JSON, keys escaped or literal),
// line 2 the client's avars (empty: {}). validate_streams() and pipeline::compile() must
// refuse a bad definition with api_error(400); a compiled pipeline runs on sample change
// events (insert, update, replace, delete, drop) failing only with pipeline_error, its
// output written as JSON as a subscription sends it.
#include "fuzz_support.hpp"
#include "storage/document/change_event.hpp"
#include "storage/document/json.hpp"
#include "storage/document/pipeline.hpp"

#include <string>

using namespace rheo;

namespace {

object obj(std::string_view json) {
  return parse_json(json, "sample").as_object();
}

const std::vector<object>& sample_events() {
  static const std::vector<object> events = [] {
    std::vector<object> out;
    auto add = [&](std::uint64_t seq, const char* op, std::optional<object> doc,
                   std::optional<update_description> upd) {
      change_event e;
      e.seq = seq;
      e.token = token_from_seq(seq);
      e.db = "rheo";
      e.coll = "messages";
      e.operation = *operation_from_string(op);
      if (doc) e.document_key = *find_field(*doc, "_id");
      e.full_document = std::move(doc);
      e.update = std::move(upd);
      e.wall_time = date_time{1600000000000};
      out.push_back(e.to_object());
    };
    add(1, "insert",
        obj(R"({"_id":{"$oid":"5f1d7e3a9b1e8a0012345678"},"from":"ada","text":"hi",)"
            R"("n":3,"tags":["a","b"],"at":{"$date":1600000000000},"meta":{"x":{"y":[1,2]}}})"),
        std::nullopt);
    add(2, "update", obj(R"({"_id":2,"from":"bob","n":4.5,"tags":[]})"),
        update_description{obj(R"({"n":4.5,"tags.0":"z"})"), {"old"}});
    add(3, "replace", obj(R"({"_id":"c","text":null})"), std::nullopt);
    change_event del;
    del.seq = 4;
    del.token = token_from_seq(4);
    del.operation = operation_type::delete_;
    del.document_key = value(std::int32_t(7));
    out.push_back(del.to_object());
    change_event drop;
    drop.seq = 5;
    drop.token = token_from_seq(5);
    drop.operation = operation_type::drop;
    out.push_back(drop.to_object());
    return out;
  }();
  return events;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto lines = fuzz::split_lines(fuzz::as_text(data, size), 2);
  lines.resize(2);
  pipeline p;
  try {
    value def = parse_json(lines[0], "stream definition");
    if (!def.is_object()) return 0;
    object avars;
    if (!lines[1].empty()) {
      value a = parse_json(lines[1], "avars");
      if (!a.is_object()) return 0;
      avars = std::move(a.as_object());
    }
    validate_streams(object{{"streams", array{def}}});
    server_vars sv;
    sv.user = obj(R"({"_id":"ada","roles":["user","admin"],"team":{"name":"x"}})");
    sv.now = date_time{1700000000000};
    if (avars.size() % 2) sv.read_filter = obj(R"({"from":"ada"})");
    p = pipeline::compile(def.as_object(), avars, sv);
  } catch (const api_error& e) {
    if (e.status() != 400) fuzz::fail("not a 400:", e.what());
    return 0;
  }
  (void)p.key();
  const bool passes = p.passes_everything();
  for (const auto& event : sample_events()) {
    try {
      object scratch;
      const object* out = p.run(event, scratch);
      if (passes && out != &event) fuzz::fail("passes_everything() but the event changed");
      if (!out) continue;
      if (nested_deeper_than(*out, max_bson_depth))
        fuzz::fail("stage output beyond max_bson_depth");
      std::string json;
      append_json(json, *out);
      auto copy = p.run(event);
      if (!copy || !identical(value(*copy), value(*out))) fuzz::fail("run() differs:", json);
    } catch (const pipeline_error&) {
      // the subscription skips the event
    }
  }
  return 0;
}
