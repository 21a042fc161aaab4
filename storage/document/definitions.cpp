#include "storage/document/definitions.hpp"

#include "storage/document/expression.hpp"
#include "storage/document/group.hpp"

#include <algorithm>
#include <string>
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

void check_operator_name(const std::string& k, argument_operators mode) {
  switch (mode) {
  case argument_operators::query:
    if (k == "$expr") throw_bad_request("$match: $expr is not supported");
    if (is_code_operator(k)) throw_bad_request("operator " + k + " is not allowed");
    if (!is_query_operator(k)) throw_bad_request("unknown operator " + k);
    return;
  case argument_operators::accumulators:
    if (is_accumulator(k)) return;
    [[fallthrough]];
  case argument_operators::expression:
    if (k != "$literal" && !is_expression_operator(k)) reject_expression_operator(k);
    return;
  case argument_operators::none:
    return;
  }
}

/// Checks the operator names in a stage argument that holds variables, whose structure
/// is only known once the variables are bound.
void check_operator_names(const value& v, argument_operators mode) {
  if (auto* a = v.get_if<array>()) {
    for (auto& item : *a)
      check_operator_names(item, mode);
    return;
  }
  auto* o = v.get_if<object>();
  if (!o) return;
  for (auto& [k, item] : *o) {
    if (k == "$var") {
      check_var_argument(item);
      if (item.is_array()) check_operator_names(item.as_array()[1], mode);
      continue;
    }
    if (k == "$ifvar") {
      check_ifvar_argument(item);
      auto& a = item.as_array();
      for (std::size_t i = 1; i < a.size(); ++i)
        check_operator_names(a[i], mode);
      continue;
    }
    if (starts_with_dollar(k)) {
      check_operator_name(k, mode);
      if (k == "$literal") continue;
    }
    check_operator_names(item, mode);
  }
}

void validate_stage(const value& v, const definition_rules& rules) {
  if (sole_key(v) == "$ifvar") {
    auto& arg = v.as_object().front().second;
    check_ifvar_argument(arg);
    auto& a = arg.as_array();
    for (std::size_t i = 1; i < a.size(); ++i)
      validate_stage(a[i], rules);
    return;
  }
  if (!contains_variables(v)) {
    // Server variables resolve to values of any type; their mere presence cannot fail.
    object no_avars;
    server_vars no_user;
    variable_resolver r(no_avars, no_user, date_time{}, rules.named_variables);
    if (auto resolved = r.resolve(v)) rules.compile_stage(*resolved);
    return;
  }
  auto key = sole_key(v);
  if (key == "$var") {
    check_var_argument(v.as_object().front().second);
    return;
  }
  if (key.empty())
    throw_bad_request("a stage must be an object with exactly one field, the stage name");
  check_operator_names(v.as_object().front().second, rules.argument_check(key));
}

} // namespace

// ---- escaping ----

object unescape_stream_keys(const object& o) {
  object out;
  out.reserve(o.size());
  for (auto& [k, v] : o)
    out.emplace_back(unescape_key(k), unescape_value(v));
  return out;
}

// ---- variables ----

std::optional<value> variable_resolver::resolve(const value& v) const {
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

array variable_resolver::resolve_stages(const object& definition) const {
  array out;
  for (auto& v : definition_stages(definition))
    if (auto stage_value = resolve(v)) out.push_back(std::move(*stage_value));
  return out;
}

const value* variable_resolver::lookup(std::string_view name) const {
  if (auto* v = find_field(avars_, name)) return v;
  return name.find('.') != std::string_view::npos ? find_path(avars_, name) : nullptr;
}

value variable_resolver::resolve_var(const value& arg) const {
  check_var_argument(arg);
  if (arg.is_string()) {
    if (auto* v = lookup(arg.as_string())) return *v;
    throw_bad_request("variable " + arg.as_string() + " not bound");
  }
  auto& a = arg.as_array();
  if (auto* v = lookup(a[0].as_string())) return *v;
  return resolve(a[1]).value_or(value());
}

std::optional<value> variable_resolver::resolve_ifvar(const value& arg) const {
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

value variable_resolver::resolve_server_variable(const std::string& s,
                                                 const value& original) const {
  if (s.empty() || s.front() != '@') return original;
  if (s == "@now") return now_;
  if (s == "@user") return sv_.user ? value(*sv_.user) : value();
  if (s.starts_with("@user.")) {
    const value* v = sv_.user ? find_path(*sv_.user, std::string_view(s).substr(6)) : nullptr;
    return v ? *v : value();
  }
  if (named_)
    if (auto* v = find_field(*named_, s)) return *v;
  return original;
}

// ---- definitions ----

const array& definition_stages(const object& definition) {
  auto* stages = find_field(definition, "stages");
  if (!stages || !stages->is_array()) throw_bad_request("stages must be an array");
  return stages->as_array();
}

const object* find_definition(const object& metadata, std::string_view list, std::string_view uri) {
  const value* definitions = find_field(metadata, list);
  if (!definitions || !definitions->is_array()) return nullptr;
  for (auto& d : definitions->as_array()) {
    if (!d.is_object()) continue;
    const value* u = find_field(d.as_object(), "uri");
    if (u && u->is_string() && u->as_string() == uri) return &d.as_object();
  }
  return nullptr;
}

void validate_definitions(const object& metadata, const definition_rules& rules) {
  auto* definitions = find_field(metadata, rules.list);
  if (!definitions) return;
  const std::string list(rules.list), noun(rules.noun);
  if (!definitions->is_array()) throw_bad_request(list + " must be an array");
  std::vector<std::string_view> uris;
  auto& items = definitions->as_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    auto where = list + "[" + std::to_string(i) + "]";
    if (!item.is_object()) throw_bad_request(where + " must be an object");
    auto* uri = find_field(item.as_object(), "uri");
    if (!uri || !uri->is_string() || uri->as_string().empty())
      throw_bad_request(where + ": uri must be a non-empty string");
    auto& name = uri->as_string();
    if (std::find(uris.begin(), uris.end(), name) != uris.end())
      throw_bad_request("duplicate " + noun + " uri '" + name + "'");
    uris.push_back(name);
    try {
      auto definition = unescape_stream_keys(item.as_object());
      if (rules.check_fields) rules.check_fields(definition);
      for (auto& s : definition_stages(definition))
        validate_stage(s, rules);
    } catch (const api_error& e) {
      throw api_error(e.status(), noun + " '" + name + "': " + e.what());
    }
  }
}

} // namespace rheo
