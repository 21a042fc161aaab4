#include "storage/document/pipeline.hpp"

#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "storage/document/stages.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

namespace rheo {

namespace {

// ---- escaping ----

std::string unescape_key(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  if (key.starts_with("_$")) {
    out += '$';
    key.remove_prefix(2);
  }
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == ':' && i + 1 < key.size() && key[i + 1] == ':') {
      out += '.';
      ++i;
    } else {
      out += key[i];
    }
  }
  return out;
}

value unescape_value(const value& v) {
  if (auto* o = v.get_if<object>()) return unescape_stream_keys(*o);
  if (auto* a = v.get_if<array>()) {
    array out;
    out.reserve(a->size());
    for (auto& e : *a)
      out.push_back(unescape_value(e));
    return out;
  }
  return v;
}

// ---- variables ----

/// The single key of a one-field object, or "".
std::string_view sole_key(const value& v) {
  auto* o = v.get_if<object>();
  return o && o->size() == 1 ? std::string_view(o->front().first) : std::string_view();
}

/// Checks the shape of a $var argument: "name" or ["name", default].
void check_var_argument(const value& arg) {
  if (arg.is_string() && !arg.as_string().empty()) return;
  if (auto* a = arg.get_if<array>(); a && a->size() == 2 && (*a)[0].is_string()) return;
  throw_bad_request("$var needs \"name\" or [\"name\", default]");
}

/// Checks the shape of an $ifvar argument: [name or [names], stage, else stage?].
void check_ifvar_argument(const value& arg) {
  auto* a = arg.get_if<array>();
  bool names_ok = false;
  if (a && (a->size() == 2 || a->size() == 3)) {
    auto& names = (*a)[0];
    if (names.is_string()) {
      names_ok = true;
    } else if (auto* list = names.get_if<array>()) {
      names_ok = !list->empty() &&
                 std::all_of(list->begin(), list->end(), [](auto& n) { return n.is_string(); });
    }
  }
  if (!names_ok)
    throw_bad_request("$ifvar needs [\"name\" or [\"names\"], stage, optional else stage]");
}

/// Substitutes client and server variables in a (key-unescaped) stream definition.
class resolver {
public:
  resolver(const object& avars, const server_vars& sv, date_time now)
      : avars_(avars), sv_(sv), now_(now) {}

  /// The value with variables substituted; nullopt when it is an $ifvar whose names are
  /// unbound and that has no else branch (the enclosing array element or field is dropped).
  std::optional<value> resolve(const value& v) const {
    if (auto* s = v.get_if<std::string>()) return resolve_server_variable(*s, v);
    if (auto* a = v.get_if<array>()) {
      array out;
      out.reserve(a->size());
      for (auto& e : *a)
        if (auto r = resolve(e)) out.push_back(std::move(*r));
      return out;
    }
    auto* o = v.get_if<object>();
    if (!o) return v;
    auto key = sole_key(v);
    if (key == "$var") return resolve_var(o->front().second);
    if (key == "$ifvar") return resolve_ifvar(o->front().second);
    object out;
    out.reserve(o->size());
    for (auto& [k, e] : *o)
      if (auto r = resolve(e)) out.emplace_back(k, std::move(*r));
    return out;
  }

private:
  const value* lookup(std::string_view name) const {
    if (auto* v = find_field(avars_, name)) return v;
    return name.find('.') != std::string_view::npos ? find_path(avars_, name) : nullptr;
  }

  value resolve_var(const value& arg) const {
    check_var_argument(arg);
    if (arg.is_string()) {
      if (auto* v = lookup(arg.as_string())) return *v;
      throw_bad_request("variable " + arg.as_string() + " not bound");
    }
    auto& a = arg.as_array();
    if (auto* v = lookup(a[0].as_string())) return *v;
    return resolve(a[1]).value_or(value());
  }

  std::optional<value> resolve_ifvar(const value& arg) const {
    check_ifvar_argument(arg);
    auto& a = arg.as_array();
    bool bound;
    if (a[0].is_string()) {
      bound = lookup(a[0].as_string()) != nullptr;
    } else {
      auto& names = a[0].as_array();
      bound = std::all_of(names.begin(), names.end(),
                          [this](auto& n) { return lookup(n.as_string()) != nullptr; });
    }
    if (bound) return resolve(a[1]);
    if (a.size() == 3) return resolve(a[2]);
    return std::nullopt;
  }

  value resolve_server_variable(const std::string& s, const value& original) const {
    if (s.empty() || s.front() != '@') return original;
    if (s == "@now") return now_;
    if (s == "@user") return sv_.user ? value(*sv_.user) : value();
    if (s.starts_with("@user.")) {
      const value* v = sv_.user ? find_path(*sv_.user, std::string_view(s).substr(6)) : nullptr;
      return v ? *v : value();
    }
    return original;
  }

  const object& avars_;
  const server_vars& sv_;
  date_time now_;
};

// ---- validation of stages with variables ----

constexpr std::string_view query_operators[] = {
    "$eq",   "$ne",  "$gt",  "$gte",   "$lt",      "$lte",       "$in",
    "$nin",  "$and", "$or",  "$nor",   "$not",     "$exists",    "$type",
    "$size", "$mod", "$all", "$regex", "$options", "$elemMatch", "$comment"};

bool is_query_operator(std::string_view k) {
  return std::find(std::begin(query_operators), std::end(query_operators), k) !=
         std::end(query_operators);
}

bool contains_variables(const value& v) {
  if (auto* a = v.get_if<array>()) return std::any_of(a->begin(), a->end(), contains_variables);
  if (auto* o = v.get_if<object>())
    return std::any_of(o->begin(), o->end(), [](auto& kv) {
      return kv.first == "$var" || kv.first == "$ifvar" || contains_variables(kv.second);
    });
  return false;
}

/// Checks the operator names in a stage argument that holds variables, whose structure
/// is only known once the variables are bound.
void check_operator_names(const value& v, bool query) {
  if (auto* a = v.get_if<array>()) {
    for (auto& item : *a)
      check_operator_names(item, query);
    return;
  }
  auto* o = v.get_if<object>();
  if (!o) return;
  for (auto& [k, item] : *o) {
    if (k == "$var") {
      check_var_argument(item);
      if (item.is_array()) check_operator_names(item.as_array()[1], query);
      continue;
    }
    if (k == "$ifvar") {
      check_ifvar_argument(item);
      auto& a = item.as_array();
      for (std::size_t i = 1; i < a.size(); ++i)
        check_operator_names(a[i], query);
      continue;
    }
    if (starts_with_dollar(k)) {
      if (query) {
        if (k == "$expr") throw_bad_request("$match: $expr is not supported");
        if (is_code_operator(k)) throw_bad_request("operator " + k + " is not allowed");
        if (!is_query_operator(k)) throw_bad_request("unknown operator " + k);
      } else {
        if (k == "$literal") continue;
        if (!is_expression_operator(k)) reject_expression_operator(k);
      }
    }
    check_operator_names(item, query);
  }
}

void validate_stage(const value& v) {
  if (sole_key(v) == "$ifvar") {
    auto& arg = v.as_object().front().second;
    check_ifvar_argument(arg);
    auto& a = arg.as_array();
    for (std::size_t i = 1; i < a.size(); ++i)
      validate_stage(a[i]);
    return;
  }
  if (!contains_variables(v)) {
    // Server variables resolve to values of any type; their mere presence cannot fail.
    object no_avars;
    server_vars no_user;
    if (auto resolved = resolver(no_avars, no_user, date_time{}).resolve(v))
      stage::compile(*resolved);
    return;
  }
  auto key = sole_key(v);
  if (key == "$var") {
    check_var_argument(v.as_object().front().second);
    return;
  }
  if (key.empty())
    throw_bad_request("a stage must be an object with exactly one field, the stage name");
  if (!stage::is_allowed(key)) throw_bad_request("stage " + std::string(key) + " is not allowed");
  check_operator_names(v.as_object().front().second, key == "$match");
}

const array& stages_of(const object& definition) {
  auto* stages = find_field(definition, "stages");
  if (!stages || !stages->is_array()) throw_bad_request("stages must be an array");
  return stages->as_array();
}

} // namespace

// ---- public API ----

object unescape_stream_keys(const object& o) {
  object out;
  out.reserve(o.size());
  for (auto& [k, v] : o)
    out.emplace_back(unescape_key(k), unescape_value(v));
  return out;
}

const object* find_stream(const object& metadata, std::string_view uri) {
  const value* streams = find_field(metadata, "streams");
  if (!streams || !streams->is_array()) return nullptr;
  for (auto& s : streams->as_array()) {
    if (!s.is_object()) continue;
    const value* u = find_field(s.as_object(), "uri");
    if (u && u->is_string() && u->as_string() == uri) return &s.as_object();
  }
  return nullptr;
}

void validate_streams(const object& metadata) {
  auto* streams = find_field(metadata, "streams");
  if (!streams) return;
  if (!streams->is_array()) throw_bad_request("streams must be an array");
  std::vector<std::string_view> uris;
  auto& list = streams->as_array();
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto& item = list[i];
    auto where = "streams[" + std::to_string(i) + "]";
    if (!item.is_object()) throw_bad_request(where + " must be an object");
    auto* uri = find_field(item.as_object(), "uri");
    if (!uri || !uri->is_string() || uri->as_string().empty())
      throw_bad_request(where + ": uri must be a non-empty string");
    auto& name = uri->as_string();
    if (std::find(uris.begin(), uris.end(), name) != uris.end())
      throw_bad_request("duplicate stream uri '" + name + "'");
    uris.push_back(name);
    try {
      auto definition = unescape_stream_keys(item.as_object());
      auto& stages = stages_of(definition);
      for (auto& s : stages)
        validate_stage(s);
    } catch (const api_error& e) {
      throw api_error(e.status(), "stream '" + name + "': " + e.what());
    }
  }
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
  auto& stages = stages_of(unescaped);
  resolver r(avars, sv, sv.now.value_or(date_time::now()));
  array resolved;
  if (sv.read_filter)
    resolved.emplace_back(
        object{{"$match", value(prefix_filter_paths(*sv.read_filter, "fullDocument."))}});
  for (auto& v : stages)
    if (auto stage_value = r.resolve(v)) resolved.push_back(std::move(*stage_value));
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
