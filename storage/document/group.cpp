#include "storage/document/group.hpp"

#include "storage/document/expression.hpp"
#include "storage/document/index_key.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace rheo {

namespace {

enum class accumulator_kind { sum, avg, min, max, first, last, push, add_to_set };

struct accumulator_info {
  std::string_view name;
  accumulator_kind kind;
};

// $count is compiled as {$sum: 1}, so it has no kind of its own.
constexpr accumulator_info accumulators[] = {
    {"$sum", accumulator_kind::sum},     {"$avg", accumulator_kind::avg},
    {"$min", accumulator_kind::min},     {"$max", accumulator_kind::max},
    {"$first", accumulator_kind::first}, {"$last", accumulator_kind::last},
    {"$push", accumulator_kind::push},   {"$addToSet", accumulator_kind::add_to_set},
    {"$count", accumulator_kind::sum},
};

const accumulator_info* find_accumulator(std::string_view name) {
  for (auto& info : accumulators)
    if (info.name == name) return &info;
  return nullptr;
}

/// One output field: its name, what accumulates it and over which expression.
struct accumulated_field {
  std::string name;
  accumulator_kind kind;
  expression argument;
};

accumulated_field compile_field(const std::string& name, const value& spec) {
  if (name.empty() || starts_with_dollar(name))
    throw_bad_request("$group: invalid field name '" + name + "'");
  if (name.find('.') != std::string::npos)
    throw_bad_request("$group: field '" + name + "' must not contain '.'");
  auto* o = spec.get_if<object>();
  if (!o || o->size() != 1 || !starts_with_dollar(o->front().first))
    throw_bad_request("$group: field '" + name + "' must be {<accumulator>: <expression>}");
  auto& [op, argument] = o->front();
  auto* info = find_accumulator(op);
  if (!info) {
    if (is_code_operator(op)) throw_bad_request("operator " + op + " is not allowed");
    throw_bad_request("$group: unknown accumulator " + op);
  }
  if (op == "$count") {
    if (!argument.is_object() || !argument.as_object().empty())
      throw_bad_request("$group: $count takes no argument, write {\"$count\": {}}");
    return {name, info->kind, expression::compile(value(std::int32_t(1)))};
  }
  if (argument.is_array())
    throw_bad_request("$group: " + op + " takes one expression, not an array");
  return {name, info->kind, expression::compile(argument)};
}

} // namespace

bool is_accumulator(std::string_view name) {
  return find_accumulator(name) != nullptr;
}

struct group_stage::compiled {
  expression id;
  std::vector<accumulated_field> fields;
};

group_stage group_stage::compile(const value& argument) {
  auto* spec = argument.get_if<object>();
  if (!spec) throw_bad_request("$group needs an object with an _id");
  std::optional<expression> id;
  std::vector<accumulated_field> fields;
  std::vector<std::string_view> names;
  for (auto& [name, v] : *spec) {
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw_bad_request("$group: duplicate field '" + name + "'");
    names.push_back(name);
    if (name == "_id")
      id = expression::compile(v);
    else
      fields.push_back(compile_field(name, v));
  }
  if (!id) throw_bad_request("$group needs an _id");
  return group_stage(std::make_shared<const compiled>(compiled{*id, std::move(fields)}));
}

// ---- one run ----

namespace {

/// The running state of one accumulator in one group.
struct accumulator {
  value v;                              // sum; min/max/first/last: the value; push: array
  bool present = false;                 // min/max/first: v holds a value already
  std::int64_t numbers = 0;             // avg: how many numbers v adds up
  std::unordered_set<std::string> keys; // addToSet: the encodings of the values in v
};

struct group {
  value id;
  std::vector<accumulator> accumulators;
};

accumulator initial(accumulator_kind kind) {
  accumulator a;
  if (kind == accumulator_kind::sum || kind == accumulator_kind::avg) a.v = std::int32_t(0);
  if (kind == accumulator_kind::push || kind == accumulator_kind::add_to_set) a.v = array{};
  return a;
}

/// Folds `v` (nullopt: missing) into `a`; returns how many values `a` newly holds.
std::size_t accumulate(accumulator& a, accumulator_kind kind, std::optional<value> v) {
  switch (kind) {
  case accumulator_kind::avg:
    if (v && v->is_number()) ++a.numbers;
    [[fallthrough]];
  case accumulator_kind::sum:
    if (v && v->is_number()) a.v = add_numbers(a.v, *v);
    return 0;
  case accumulator_kind::min:
  case accumulator_kind::max: {
    if (!v || v->is_null()) return 0;
    int sign = kind == accumulator_kind::min ? -1 : 1;
    if (!a.present || compare_values(*v, a.v) * sign > 0) a.v = std::move(*v);
    a.present = true;
    return 0;
  }
  case accumulator_kind::first:
    if (!a.present) a.v = v ? std::move(*v) : value();
    a.present = true;
    return 0;
  case accumulator_kind::last:
    a.v = v ? std::move(*v) : value();
    return 0;
  case accumulator_kind::add_to_set:
    if (!v || !a.keys.insert(encode_key(*v)).second) return 0;
    [[fallthrough]];
  case accumulator_kind::push:
    if (!v) return 0;
    a.v.as_array().push_back(std::move(*v));
    return 1;
  }
  return 0;
}

value result(accumulator& a, accumulator_kind kind) {
  switch (kind) {
  case accumulator_kind::avg:
    return a.numbers ? value(a.v.as_double() / double(a.numbers)) : value();
  case accumulator_kind::min:
  case accumulator_kind::max:
    return a.present ? std::move(a.v) : value();
  default:
    return std::move(a.v);
  }
}

} // namespace

struct group_table::state {
  std::shared_ptr<const group_stage::compiled> stage;
  std::unordered_map<std::string, std::size_t> index; // encoded _id -> position in groups
  std::vector<group> groups;
  std::size_t collected = 0; // values held by $push/$addToSet
};

group_table::group_table(const group_stage& stage) : state_(std::make_unique<state>()) {
  state_->stage = stage.compiled_;
}

group_table::~group_table() = default;
group_table::group_table(group_table&&) noexcept = default;
group_table& group_table::operator=(group_table&&) noexcept = default;

void group_table::add(const object& doc) {
  auto& s = *state_;
  auto& fields = s.stage->fields;
  value id = s.stage->id.evaluate(doc).value_or(value());
  auto [it, inserted] = s.index.try_emplace(encode_key(id), s.groups.size());
  if (inserted) {
    group g{std::move(id), {}};
    g.accumulators.reserve(fields.size());
    for (auto& f : fields)
      g.accumulators.push_back(initial(f.kind));
    s.groups.push_back(std::move(g));
  }
  auto& g = s.groups[it->second];
  for (std::size_t i = 0; i < fields.size(); ++i)
    s.collected += accumulate(g.accumulators[i], fields[i].kind, fields[i].argument.evaluate(doc));
}

std::size_t group_table::held() const {
  return state_->groups.size() + state_->collected;
}

std::vector<object> group_table::take() {
  auto& s = *state_;
  std::vector<object> out;
  out.reserve(s.groups.size());
  for (auto& g : s.groups) {
    object doc;
    doc.reserve(g.accumulators.size() + 1);
    doc.emplace_back("_id", std::move(g.id));
    for (std::size_t i = 0; i < g.accumulators.size(); ++i)
      doc.emplace_back(s.stage->fields[i].name, result(g.accumulators[i], s.stage->fields[i].kind));
    if (nested_deeper_than(doc, max_bson_depth))
      throw pipeline_error(nested_too_deep("$group output", max_bson_depth));
    out.push_back(std::move(doc));
  }
  s.groups.clear();
  s.index.clear();
  s.collected = 0;
  return out;
}

} // namespace rheo
