#include "storage/document/pipeline.hpp"

#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "storage/document/stages.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

namespace rheo {

namespace {

void compile_stream_stage(const value& v) {
  stage::compile(v);
}

argument_operators stream_argument_check(std::string_view name) {
  if (!stage::is_allowed(name)) throw_bad_request("stage " + std::string(name) + " is not allowed");
  return name == "$match" ? argument_operators::query : argument_operators::expression;
}

/// "presence" and "broadcast" (section 11 of the contract), when given, are booleans.
void check_stream_fields(const object& definition) {
  for (const char* flag : {"presence", "broadcast"})
    if (const value* v = find_field(definition, flag); v && !v->is_bool())
      throw_bad_request(std::string(flag) + " must be true or false");
}

const definition_rules stream_rules{"streams", "stream", compile_stream_stage,
                                    stream_argument_check, check_stream_fields};

} // namespace

const object* find_stream(const object& metadata, std::string_view uri) {
  return find_definition(metadata, "streams", uri);
}

bool stream_flag(const object& definition, std::string_view flag) {
  const value* v = find_field(definition, flag);
  return v && v->is_bool() && v->as_bool();
}

void validate_streams(const object& metadata) {
  validate_definitions(metadata, stream_rules);
}

struct pipeline::state {
  std::vector<stage> stages;
  std::string key;
  bool passes_everything = true;
};

pipeline::pipeline() {
  static const auto empty = [] {
    auto s = std::make_shared<state>();
    s->key = "[]";
    return s;
  }();
  state_ = empty;
}

namespace {
/// Rewrites a document filter to apply to change events: field paths get `prefix`.
object prefix_filter_paths(const object& filter, const std::string& prefix) {
  object out;
  for (auto& [k, v] : filter) {
    if (k == "$and" || k == "$or" || k == "$nor") {
      array items;
      if (v.is_array())
        for (auto& e : v.as_array())
          items.push_back(e.is_object() ? value(prefix_filter_paths(e.as_object(), prefix)) : e);
      out.emplace_back(k, value(std::move(items)));
    } else if (!k.empty() && k[0] == '$') {
      out.emplace_back(k, v);
    } else {
      out.emplace_back(prefix + k, v);
    }
  }
  return out;
}
} // namespace

pipeline pipeline::compile(const object& definition, const object& avars, const server_vars& sv) {
  auto unescaped = unescape_stream_keys(definition);
  variable_resolver r(avars, sv, sv.now.value_or(date_time::now()));
  array resolved;
  if (sv.read_filter)
    resolved.emplace_back(
        object{{"$match", value(prefix_filter_paths(*sv.read_filter, "fullDocument."))}});
  for (auto& v : r.resolve_stages(unescaped))
    resolved.push_back(std::move(v));
  auto s = std::make_shared<state>();
  for (auto& v : resolved) {
    s->stages.push_back(stage::compile(v));
    auto* filter = s->stages.back().filter();
    s->passes_everything = s->passes_everything && filter && filter->matches_all();
  }
  s->key = to_json(value(std::move(resolved)));
  return pipeline(std::move(s));
}

const object* pipeline::run(const object& event, object& scratch) const {
  const object* cur = &event;
  for (auto& s : state_->stages) {
    if (auto* filter = s.filter()) {
      if (!filter->matches(*cur)) return nullptr;
      continue;
    }
    object next = s.apply(*cur);
    scratch = std::move(next);
    cur = &scratch;
  }
  return cur;
}

std::optional<object> pipeline::run(const object& event) const {
  object scratch;
  const object* out = run(event, scratch);
  if (!out) return std::nullopt;
  if (out == &scratch) return scratch;
  return *out;
}

const std::string& pipeline::key() const {
  return state_->key;
}

bool pipeline::passes_everything() const {
  return state_->passes_everything;
}

} // namespace rheo
