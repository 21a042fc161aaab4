#include "storage/document/aggregation.hpp"

#include "storage/document/expression.hpp"
#include "storage/document/group.hpp"
#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "storage/document/stages.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <variant>

namespace rheo {

namespace {

// ---- the stages only aggregations run ----

struct sort_stage {
  sort_spec spec;
  object definition;
  /// With a $limit after it: how many of the first sorted documents can reach its output.
  std::optional<std::size_t> keep;
};

struct skip_stage {
  std::int64_t n;
};

struct limit_stage {
  std::int64_t n;
};

struct count_stage {
  std::string field;
};

struct unwind_stage {
  std::vector<std::string> path;
  std::vector<std::string> index_field; // empty: no includeArrayIndex
  bool preserve = false;
};

using any_stage = std::variant<stage, sort_stage, skip_stage, limit_stage, count_stage,
                               unwind_stage, group_stage>;

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<std::int64_t>::max() : r;
}

/// An int32, int64 or integral double as int64.
std::optional<std::int64_t> whole_number(const value& v) {
  if (v.is<std::int32_t>() || v.is<std::int64_t>()) return v.as_int64();
  if (auto* d = v.get_if<double>(); d && std::trunc(*d) == *d && std::fabs(*d) < 9e18)
    return std::int64_t(*d);
  return std::nullopt;
}

std::int64_t count_argument(const value& arg, std::string_view name, std::int64_t least) {
  auto n = whole_number(arg);
  if (!n || *n < least)
    throw_bad_request(std::string(name) + " needs a " + (least > 0 ? "positive" : "non-negative") +
                      " integer, got " + to_json(arg));
  return *n;
}

sort_stage compile_sort(const value& arg) {
  if (!arg.is_object() || arg.as_object().empty())
    throw_bad_request("$sort needs an object with at least one field");
  return sort_stage{sort_spec::parse(arg.as_object()), arg.as_object(), std::nullopt};
}

count_stage compile_count(const value& arg) {
  auto* name = arg.get_if<std::string>();
  if (!name || name->empty() || starts_with_dollar(*name) || name->find('.') != std::string::npos)
    throw_bad_request(
        "$count needs a field name that is not empty, does not start with '$' and has no '.'");
  return count_stage{*name};
}

unwind_stage compile_unwind(const value& arg) {
  unwind_stage s;
  const value* path = &arg;
  if (auto* o = arg.get_if<object>()) {
    path = find_field(*o, "path");
    for (auto& [k, v] : *o) {
      if (k == "includeArrayIndex") {
        auto* name = v.get_if<std::string>();
        if (!name || name->empty() || starts_with_dollar(*name))
          throw_bad_request("$unwind: includeArrayIndex needs a field name not starting with '$'");
        s.index_field =
            split_field_path(*name, "$unwind: invalid includeArrayIndex '" + *name + "'",
                             "$unwind: invalid includeArrayIndex '" + *name + "'");
      } else if (k == "preserveNullAndEmptyArrays") {
        if (!v.is_bool()) throw_bad_request("$unwind: preserveNullAndEmptyArrays needs a boolean");
        s.preserve = v.as_bool();
      } else if (k != "path") {
        throw_bad_request("$unwind: unknown option '" + k + "'");
      }
    }
  }
  auto* text = path ? path->get_if<std::string>() : nullptr;
  if (!text || !starts_with_dollar(*text) || text->starts_with("$$"))
    throw_bad_request("$unwind needs a field path starting with '$'");
  auto invalid = "$unwind: invalid path '" + *text + "'";
  s.path = split_field_path(std::string_view(*text).substr(1), invalid, invalid);
  return s;
}

/// Compiles one resolved stage.
any_stage compile_any_stage(const value& v) {
  auto* o = v.get_if<object>();
  // stage::compile reports a malformed stage, and names a stage no aggregation runs.
  if (!o || o->size() != 1) return stage::compile(v);
  auto& [name, arg] = o->front();
  if (name == "$sort") return compile_sort(arg);
  if (name == "$limit") return limit_stage{count_argument(arg, "$limit", 1)};
  if (name == "$skip") return skip_stage{count_argument(arg, "$skip", 0)};
  if (name == "$count") return compile_count(arg);
  if (name == "$unwind") return compile_unwind(arg);
  if (name == "$group") return group_stage::compile(arg);
  return stage::compile(v);
}

/// Lets each $sort that a $limit follows keep only what can reach the limit's output.
void bound_sorts(std::vector<any_stage>& stages) {
  for (std::size_t i = 0; i < stages.size(); ++i) {
    auto* sort = std::get_if<sort_stage>(&stages[i]);
    if (!sort) continue;
    std::int64_t skipped = 0;
    for (std::size_t j = i + 1; j < stages.size(); ++j) {
      if (auto* skip = std::get_if<skip_stage>(&stages[j])) {
        skipped = saturating_add(skipped, skip->n);
        continue;
      }
      if (auto* limit = std::get_if<limit_stage>(&stages[j]))
        sort->keep = std::size_t(saturating_add(skipped, limit->n));
      break;
    }
  }
}

// ---- declaration ----

constexpr std::string_view aggregation_only_stages[] = {"$sort",  "$limit",  "$skip",
                                                        "$count", "$unwind", "$group"};

void validate_stage(const value& v) {
  compile_any_stage(v);
}

argument_operators aggregation_argument_check(std::string_view name) {
  if (name == "$match") return argument_operators::query;
  if (name == "$group") return argument_operators::accumulators;
  if (std::find(std::begin(aggregation_only_stages), std::end(aggregation_only_stages), name) !=
      std::end(aggregation_only_stages))
    return argument_operators::none;
  if (stage::is_allowed(name)) return argument_operators::expression;
  throw_bad_request("stage " + std::string(name) + " is not allowed");
}

void check_aggregation_fields(const object& definition) {
  auto* type = find_field(definition, "type");
  if (type && !(type->is_string() && type->as_string() == "pipeline"))
    throw_bad_request("type must be \"pipeline\" (map-reduce is not supported)");
}

/// An integer as int32 when it fits (as JSON clients and RESTHeart write small numbers).
value integer(std::int64_t n) {
  if (n >= std::numeric_limits<std::int32_t>::min() &&
      n <= std::numeric_limits<std::int32_t>::max())
    return std::int32_t(n);
  return n;
}

object paging_variables(const aggregation_paging& p) {
  std::int64_t skip;
  if (__builtin_mul_overflow(p.page - 1, p.pagesize, &skip))
    skip = std::numeric_limits<std::int64_t>::max();
  return object{{"@page", integer(p.page)},
                {"@pagesize", integer(p.pagesize)},
                {"@skip", integer(skip)},
                {"@limit", integer(p.pagesize)}};
}

/// The paging variables of a request without paging, bound while validating.
const object& default_paging_variables() {
  static const object vars = paging_variables({});
  return vars;
}

// ---- running ----

[[noreturn]] void exceeded(std::string_view stage, const aggregation_limits& limits) {
  throw_bad_request(std::string(stage) + " exceeded the limit of " +
                    std::to_string(limits.max_documents) +
                    " documents (aggregation_max_documents)");
}

/// The documents one $sort run buffers: all of them, or with `keep` a max-heap of the
/// `keep` first ones. Each carries its arrival number, so that equal keys stay in input order.
class sorter {
  using entry = std::pair<std::size_t, object>;

public:
  sorter(const sort_stage& s, const aggregation_limits& limits) : stage_(s), limits_(limits) {}

  void add(const object& doc) {
    if (stage_.keep && entries_.size() == *stage_.keep) {
      ++arrivals_;
      // The newcomer arrived last, so it displaces the largest only with a smaller key.
      if (stage_.spec.compare(doc, entries_.front().second) >= 0) return;
      std::pop_heap(entries_.begin(), entries_.end(), before());
      entries_.back() = {arrivals_, doc};
      std::push_heap(entries_.begin(), entries_.end(), before());
      return;
    }
    if (entries_.size() >= limits_.max_documents) exceeded("$sort", limits_);
    entries_.emplace_back(++arrivals_, doc);
    if (stage_.keep) std::push_heap(entries_.begin(), entries_.end(), before());
  }

  std::vector<object> take() {
    if (stage_.keep)
      std::sort_heap(entries_.begin(), entries_.end(), before());
    else
      std::sort(entries_.begin(), entries_.end(), before());
    std::vector<object> out;
    out.reserve(entries_.size());
    for (auto& e : entries_)
      out.push_back(std::move(e.second));
    entries_.clear();
    return out;
  }

private:
  /// Sort order, then arrival order.
  struct earlier {
    const sort_spec& spec;
    bool operator()(const entry& a, const entry& b) const {
      int c = spec.compare(a.second, b.second);
      return c < 0 || (c == 0 && a.first < b.first);
    }
  };
  earlier before() const { return earlier{stage_.spec}; }

  const sort_stage& stage_;
  const aggregation_limits& limits_;
  std::vector<entry> entries_;
  std::size_t arrivals_ = 0;
};

/// The field at `path`, through objects only (as MongoDB's $unwind reads it), or nullptr.
template <class Object> auto* field_at(Object& o, const std::vector<std::string>& path) {
  Object* level = &o;
  for (std::size_t i = 0;; ++i) {
    auto* v = find_field(*level, path[i]);
    if (!v || i + 1 == path.size()) return v;
    level = v->template get_if<object>();
    if (!level) return decltype(v)(nullptr);
  }
}

/// Sets `path` in `o`, making objects of missing or non-object intermediates.
void set_at(object& o, const std::vector<std::string>& path, value v) {
  object* level = &o;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    value* next = find_field(*level, path[i]);
    if (!next) {
      level->emplace_back(path[i], object{});
      next = &level->back().second;
    } else if (!next->is_object()) {
      *next = object{};
    }
    level = &next->as_object();
  }
  set_field(*level, path.back(), std::move(v));
}

/// One run: the stages from `first` on, with their counters and buffers.
class run_state {
public:
  run_state(const std::vector<any_stage>& stages, std::size_t first,
            const aggregation_limits& limits)
      : stages_(stages), first_(first), limits_(limits) {
    slots_.resize(stages.size());
    for (std::size_t i = first; i < stages.size(); ++i) {
      auto& s = stages[i];
      auto& slot = slots_[i];
      if (auto* skip = std::get_if<skip_stage>(&s)) slot.counter = skip->n;
      if (auto* limit = std::get_if<limit_stage>(&s)) slot.counter = limit->n;
      if (auto* sort = std::get_if<sort_stage>(&s)) slot.sort.emplace(*sort, limits);
      if (auto* group = std::get_if<group_stage>(&s)) slot.groups.emplace(*group);
    }
  }

  /// Feeds the input's next document in; false when no further input can change the output.
  bool push(const object& doc) { return push(first_, doc); }

  /// Flushes the stages that wait for all their input ($sort, $group, $count), in order.
  std::vector<object> finish() {
    for (std::size_t i = first_; i < stages_.size(); ++i) {
      auto& slot = slots_[i];
      std::vector<object> held;
      if (slot.sort) held = slot.sort->take();
      if (slot.groups) held = slot.groups->take();
      if (auto* count = std::get_if<count_stage>(&stages_[i]); count && slot.counter > 0)
        held.push_back(object{{count->field, integer(slot.counter)}});
      for (auto& doc : held)
        if (!push(i + 1, doc)) break;
    }
    return std::move(out_);
  }

private:
  struct slot {
    std::int64_t counter = 0; // $skip and $limit: what remains; $count: documents seen
    std::optional<sorter> sort;
    std::optional<group_table> groups;
  };

  /// Feeds `in` into stage `i`; false when no further document can change the output.
  bool push(std::size_t i, const object& in) {
    const object* doc = &in;
    object scratch;
    for (; i < stages_.size(); ++i) {
      auto& s = stages_[i];
      auto& slot = slots_[i];
      if (auto* st = std::get_if<stage>(&s)) {
        if (auto* filter = st->filter()) {
          if (!filter->matches(*doc)) return true;
        } else {
          scratch = st->apply(*doc);
          doc = &scratch;
        }
      } else if (std::holds_alternative<skip_stage>(s)) {
        if (slot.counter == 0) continue;
        --slot.counter;
        return true;
      } else if (std::holds_alternative<limit_stage>(s)) {
        if (slot.counter == 0) return false;
        bool more = --slot.counter > 0;
        return push(i + 1, *doc) && more;
      } else if (auto* unwind = std::get_if<unwind_stage>(&s)) {
        return push_unwound(i, *unwind, *doc);
      } else if (slot.sort) {
        slot.sort->add(*doc);
        return true;
      } else if (slot.groups) {
        slot.groups->add(*doc);
        if (slot.groups->held() > limits_.max_documents) exceeded("$group", limits_);
        return true;
      } else {
        ++slot.counter; // $count, the only stage left
        return true;
      }
    }
    out_.push_back(*doc);
    return true;
  }

  bool push_unwound(std::size_t i, const unwind_stage& u, const object& doc) {
    const value* v = field_at(doc, u.path);
    auto* elements = v ? v->get_if<array>() : nullptr;
    if (elements && !elements->empty()) {
      object base = doc;
      array items = std::move(field_at(base, u.path)->as_array());
      for (std::size_t k = 0; k < items.size(); ++k) {
        object out = base;
        *field_at(out, u.path) = std::move(items[k]);
        if (!u.index_field.empty()) set_at(out, u.index_field, std::int64_t(k));
        if (!push(i + 1, out)) return false;
      }
      return true;
    }
    bool nothing = !v || v->is_null() || elements;
    if (nothing && !u.preserve) return true;
    if (!elements && u.index_field.empty()) return push(i + 1, doc);
    object out = doc;
    if (elements) { // an empty array: a preserved document loses the field
      auto parent = u.path;
      parent.pop_back();
      auto* holder = parent.empty() ? &out : &field_at(out, parent)->as_object();
      erase_field(*holder, u.path.back());
    }
    if (!u.index_field.empty()) set_at(out, u.index_field, value());
    return push(i + 1, out);
  }

  const std::vector<any_stage>& stages_;
  std::size_t first_;
  const aggregation_limits& limits_;
  std::vector<slot> slots_;
  std::vector<object> out_;
};

} // namespace

// ---- public API ----

void validate_aggrs(const object& metadata) {
  const definition_rules rules{"aggrs",
                               "aggregation",
                               validate_stage,
                               aggregation_argument_check,
                               check_aggregation_fields,
                               &default_paging_variables()};
  validate_definitions(metadata, rules);
}

const object* find_aggr(const object& metadata, std::string_view uri) {
  return find_definition(metadata, "aggrs", uri);
}

struct aggregation::state {
  array resolved;
  std::vector<any_stage> stages;
  aggregation_pushdown pushdown;
  std::size_t pushed_stages = 0; // stages[0, pushed_stages) are what pushdown describes
};

namespace {

/// Finds the leading stages a store may apply: $match stages, a $sort, $skip/$limit stages.
void plan_pushdown(aggregation::state& s, const array& resolved) {
  auto& p = s.pushdown;
  auto argument = [&](std::size_t i) -> const object& {
    return resolved[i].as_object().front().second.as_object();
  };
  std::size_t i = 0;
  array filters;
  for (; i < s.stages.size(); ++i) {
    auto* st = std::get_if<stage>(&s.stages[i]);
    if (!st || !st->filter()) break;
    if (!st->filter()->matches_all()) filters.push_back(argument(i));
  }
  if (filters.size() == 1)
    p.filter = std::move(filters.front().as_object());
  else if (!filters.empty())
    p.filter = object{{"$and", value(std::move(filters))}};
  if (i < s.stages.size() && std::holds_alternative<sort_stage>(s.stages[i]))
    p.sort = argument(i++);
  for (; i < s.stages.size(); ++i) {
    if (auto* skip = std::get_if<skip_stage>(&s.stages[i])) {
      if (p.limit) {
        if (*p.limit <= skip->n) break; // nothing would pass: left to run
        *p.limit -= skip->n;
      }
      p.skip = saturating_add(p.skip, skip->n);
    } else if (auto* limit = std::get_if<limit_stage>(&s.stages[i])) {
      p.limit = p.limit ? std::min(*p.limit, limit->n) : limit->n;
    } else {
      break;
    }
  }
  s.pushed_stages = i;
}

std::vector<object> execute(const std::vector<any_stage>& stages, std::size_t first,
                            const document_source& input, const aggregation_limits& limits) {
  try {
    run_state run(stages, first, limits);
    while (const object* doc = input())
      if (!run.push(*doc)) break;
    return run.finish();
  } catch (const pipeline_error& e) {
    throw api_error(400, e.what());
  }
}

} // namespace

aggregation aggregation::compile(const object& definition, const object& avars,
                                 const server_vars& sv, const aggregation_paging& paging) {
  auto unescaped = unescape_stream_keys(definition);
  auto named = paging_variables(paging);
  variable_resolver r(avars, sv, sv.now.value_or(date_time::now()), &named);
  array resolved;
  if (sv.read_filter) resolved.emplace_back(object{{"$match", value(*sv.read_filter)}});
  for (auto& v : r.resolve_stages(unescaped))
    resolved.push_back(std::move(v));
  return from_resolved(std::move(resolved));
}

aggregation aggregation::from_resolved(array resolved) {
  auto s = std::make_shared<state>();
  s->stages.reserve(resolved.size());
  for (auto& v : resolved)
    s->stages.push_back(compile_any_stage(v));
  bound_sorts(s->stages);
  plan_pushdown(*s, resolved);
  s->resolved = std::move(resolved);
  return aggregation(std::move(s));
}

std::vector<object> aggregation::run(const document_source& input,
                                     const aggregation_limits& limits) const {
  return execute(state_->stages, 0, input, limits);
}

std::vector<object> aggregation::run(const std::vector<object>& input,
                                     const aggregation_limits& limits) const {
  std::size_t next = 0;
  return run([&]() -> const object* { return next < input.size() ? &input[next++] : nullptr; },
             limits);
}

const array& aggregation::stages() const {
  return state_->resolved;
}

const aggregation_pushdown& aggregation::pushdown() const {
  return state_->pushdown;
}

std::vector<object> aggregation::run_after_pushdown(const document_source& input,
                                                    const aggregation_limits& limits) const {
  return execute(state_->stages, state_->pushed_stages, input, limits);
}

} // namespace rheo
