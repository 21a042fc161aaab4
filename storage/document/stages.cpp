#include "storage/document/stages.hpp"

#include "storage/document/expression.hpp"
#include "storage/document/query.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace rheo {

namespace {

// ---- paths in documents ----

void set_path(object& o, std::string_view path, value v);

/// Sets `rest` below `target`: into each element of an array, replacing non-objects.
void set_below(value& target, std::string_view rest, const value& v) {
  if (auto* a = target.get_if<array>()) {
    for (auto& element : *a)
      set_below(element, rest, v);
    return;
  }
  if (!target.is_object()) target = object{};
  set_path(target.as_object(), rest, v);
}

void set_path(object& o, std::string_view path, value v) {
  auto dot = path.find('.');
  if (dot == std::string_view::npos) {
    set_field(o, path, std::move(v));
    return;
  }
  auto head = path.substr(0, dot);
  value* child = find_field(o, head);
  if (!child) {
    o.emplace_back(std::string(head), object{});
    child = &o.back().second;
  }
  set_below(*child, path.substr(dot + 1), v);
}

void erase_path(object& o, std::string_view path) {
  auto dot = path.find('.');
  if (dot == std::string_view::npos) {
    erase_field(o, path);
    return;
  }
  value* child = find_field(o, path.substr(0, dot));
  if (child && child->is_object()) erase_path(child->as_object(), path.substr(dot + 1));
}

/// Rejects a path given twice or one that is a prefix of another ("a" with "a.b").
void check_path_collisions(const std::vector<std::string>& paths, std::string_view stage) {
  for (auto& x : paths)
    for (auto& y : paths)
      if (&x != &y && y.starts_with(x) && (y.size() == x.size() || y[x.size()] == '.'))
        throw_bad_request(std::string(stage) + ": path collision at '" + y + "'");
}

/// Flattens {a: {b: <spec>}} into ("a.b", <spec>); objects whose first key is an operator
/// (and empty objects) are leaves.
void flatten_spec(const object& spec, const std::string& prefix,
                  std::vector<std::pair<std::string, const value*>>& out, std::string_view stage) {
  for (auto& [k, v] : spec) {
    if (k.empty() || starts_with_dollar(k) || k.front() == '.' || k.back() == '.' ||
        k.find("..") != std::string::npos)
      throw_bad_request(std::string(stage) + ": invalid field name '" + k + "'");
    auto path = prefix + k;
    if (std::count(path.begin(), path.end(), '.') >= static_cast<long>(max_nesting_depth))
      throw_bad_request(std::string(stage) + ": " + nested_too_deep("field path"));
    auto* o = v.get_if<object>();
    if (o && !o->empty() && !starts_with_dollar(o->front().first))
      flatten_spec(*o, path + ".", out, stage);
    else
      out.emplace_back(std::move(path), &v);
  }
}

// ---- stages ----

struct match_stage {
  matcher filter;
};

/// $project: included paths (through `base`) then computed fields.
struct project_stage {
  std::optional<projection> base; // absent: start from {} (plus _id when kept)
  bool keep_id = true;
  std::vector<std::pair<std::string, expression>> computed;
};

/// $addFields / $set.
struct set_stage {
  std::vector<std::pair<std::string, expression>> fields;
};

struct unset_stage {
  projection exclusion;
};

/// $replaceRoot / $replaceWith.
struct replace_stage {
  expression new_root;
  std::string_view name;
};

using stage_variant =
    std::variant<match_stage, project_stage, set_stage, unset_stage, replace_stage>;

constexpr std::string_view stage_names[] = {"$match", "$project",     "$addFields",  "$set",
                                            "$unset", "$replaceRoot", "$replaceWith"};

/// Finds $expr at the top level of a query or below its logical operators.
void reject_expr(const object& query) {
  for (auto& [k, v] : query) {
    if (k == "$expr") throw_bad_request("$match: $expr is not supported");
    if ((k == "$and" || k == "$or" || k == "$nor") && v.is_array())
      for (auto& item : v.as_array())
        if (item.is_object()) reject_expr(item.as_object());
  }
}

stage_variant compile_match(const value& arg) {
  if (!arg.is_object()) throw_bad_request("$match needs an object");
  reject_expr(arg.as_object());
  return match_stage{matcher::compile(arg.as_object())};
}

stage_variant compile_project(const value& arg) {
  if (!arg.is_object() || arg.as_object().empty())
    throw_bad_request("$project needs an object with at least one field");
  std::vector<std::pair<std::string, const value*>> leaves;
  flatten_spec(arg.as_object(), "", leaves, "$project");
  project_stage s;
  object included, excluded;
  std::vector<std::string> paths;
  for (auto& [path, v] : leaves) {
    paths.push_back(path);
    bool flag = v->is_bool() || v->is_number();
    if (!flag) {
      if (path == "_id") s.keep_id = false;
      s.computed.emplace_back(path, expression::compile(*v));
    } else if (path == "_id") {
      s.keep_id = v->truthy();
    } else {
      (v->truthy() ? included : excluded).emplace_back(path, std::int32_t(v->truthy()));
    }
  }
  check_path_collisions(paths, "$project");
  if (!excluded.empty()) {
    if (!included.empty() || !s.computed.empty())
      throw_bad_request("$project: cannot mix exclusion with inclusion or computed fields");
    if (!s.keep_id) excluded.emplace_back("_id", std::int32_t(0));
    s.base = projection::compile(excluded);
  } else if (!included.empty()) {
    included.emplace_back("_id", std::int32_t(s.keep_id));
    s.base = projection::compile(included);
  } else if (s.computed.empty()) {
    s.base = projection::compile(object{{"_id", std::int32_t(s.keep_id)}}); // {_id: 0|1} alone
  }
  return s;
}

stage_variant compile_set(const value& arg, std::string_view name) {
  if (!arg.is_object() || arg.as_object().empty())
    throw_bad_request(std::string(name) + " needs an object with at least one field");
  std::vector<std::pair<std::string, const value*>> leaves;
  flatten_spec(arg.as_object(), "", leaves, name);
  set_stage s;
  std::vector<std::string> paths;
  for (auto& [path, v] : leaves) {
    paths.push_back(path);
    s.fields.emplace_back(path, expression::compile(*v));
  }
  check_path_collisions(paths, name);
  return s;
}

stage_variant compile_unset(const value& arg) {
  object spec;
  auto add = [&spec](const value& p) {
    if (!p.is_string() || p.as_string().empty() || starts_with_dollar(p.as_string()))
      throw_bad_request("$unset needs a field path or an array of field paths");
    spec.emplace_back(p.as_string(), std::int32_t(0));
  };
  if (auto* a = arg.get_if<array>()) {
    if (a->empty()) throw_bad_request("$unset needs at least one field path");
    for (auto& p : *a)
      add(p);
  } else {
    add(arg);
  }
  return unset_stage{projection::compile(spec)};
}

stage_variant compile_stage(const value& v) {
  if (!v.is_object() || v.as_object().size() != 1)
    throw_bad_request("a stage must be an object with exactly one field, the stage name");
  auto& [name, arg] = v.as_object().front();
  if (name == "$match") return compile_match(arg);
  if (name == "$project") return compile_project(arg);
  if (name == "$addFields" || name == "$set") return compile_set(arg, name);
  if (name == "$unset") return compile_unset(arg);
  if (name == "$replaceWith") return replace_stage{expression::compile(arg), "$replaceWith"};
  if (name == "$replaceRoot") {
    auto* o = arg.get_if<object>();
    if (!o || o->size() != 1 || o->front().first != "newRoot")
      throw_bad_request("$replaceRoot needs {newRoot: <expression>}");
    return replace_stage{expression::compile(o->front().second), "$replaceRoot"};
  }
  throw_bad_request("stage " + name + " is not allowed");
}

/// Applies a reshaping stage to `in`, returning the new document.
struct reshape {
  const object& in;

  object operator()(const match_stage&) const { return in; } // not reached: run() filters

  object operator()(const project_stage& s) const {
    object out;
    if (s.base) {
      out = s.base->apply(in);
    } else if (s.keep_id) {
      if (auto* id = find_field(in, "_id")) out.emplace_back("_id", *id);
    }
    for (auto& [path, e] : s.computed) {
      auto v = e.evaluate(in);
      if (!v) continue;
      if (path == "_id") {
        out.emplace(out.begin(), "_id", std::move(*v));
      } else {
        set_path(out, path, std::move(*v));
      }
    }
    return out;
  }

  object operator()(const set_stage& s) const {
    // Every expression sees the input document, so evaluate all before writing any.
    std::vector<std::optional<value>> results;
    results.reserve(s.fields.size());
    for (auto& [path, e] : s.fields)
      results.push_back(e.evaluate(in));
    object out = in;
    for (std::size_t i = 0; i < results.size(); ++i) {
      auto& path = s.fields[i].first;
      if (!results[i])
        erase_path(out, path);
      else
        set_path(out, path, std::move(*results[i]));
    }
    return out;
  }

  object operator()(const unset_stage& s) const { return s.exclusion.apply(in); }

  object operator()(const replace_stage& s) const {
    auto v = s.new_root.evaluate(in);
    if (!v || !v->is_object())
      throw pipeline_error(std::string(s.name) +
                           " needs an expression that evaluates to an object, got " +
                           (v ? bson_type_name(v->type()) : "missing"));
    return std::move(v->as_object());
  }
};

} // namespace

struct stage::compiled {
  stage_variant v;
};

stage stage::compile(const value& definition) {
  return stage(std::make_shared<const compiled>(compiled{compile_stage(definition)}));
}

bool stage::is_allowed(std::string_view name) {
  return std::find(std::begin(stage_names), std::end(stage_names), name) != std::end(stage_names);
}

const matcher* stage::filter() const {
  auto* m = std::get_if<match_stage>(&compiled_->v);
  return m ? &m->filter : nullptr;
}

object stage::apply(const object& in) const {
  object out = std::visit(reshape{in}, compiled_->v);
  // Each stage may nest its input in new levels: bound what the next stage, the JSON and
  // BSON writers and the destructors recurse through.
  if (nested_deeper_than(out, max_bson_depth))
    throw pipeline_error(nested_too_deep("stage output", max_bson_depth));
  return out;
}

} // namespace rheo
