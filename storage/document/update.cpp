#include "storage/document/update.hpp"

#include "storage/document/query.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>

namespace rheo {

namespace {

constexpr std::string_view update_operators[] = {
    "$set",  "$unset",    "$inc",  "$mul", "$min",         "$max",    "$rename",
    "$push", "$addToSet", "$pull", "$pop", "$currentDate", "$pullAll"};

std::vector<std::string> split_path(const std::string& path) {
  return split_field_path(path, "empty field name in path '" + path + "'",
                          "positional and $-prefixed path segments are not supported: '" + path +
                              "'");
}

/// The value at `segs` in `doc`, or nullptr. Numeric segments index arrays.
value* find_slot(object& doc, const std::vector<std::string>& segs) {
  object* obj = &doc;
  value* slot = nullptr;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (i > 0) {
      if (slot->is_object()) {
        obj = &slot->as_object();
      } else if (slot->is_array()) {
        auto idx = array_index(segs[i]);
        auto& a = slot->as_array();
        if (!idx || *idx >= a.size()) return nullptr;
        slot = &a[*idx];
        continue;
      } else {
        return nullptr;
      }
    }
    slot = find_field(*obj, segs[i]);
    if (!slot) return nullptr;
  }
  return slot;
}

/// The slot at `segs`, creating missing intermediate objects (and padding arrays with
/// nulls up to a numeric segment, as MongoDB does). A new leaf is null.
value& make_slot(object& doc, const std::vector<std::string>& segs, const std::string& path) {
  object* obj = &doc;
  value* slot = nullptr;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& seg = segs[i];
    if (i > 0) {
      if (slot->is_object()) {
        obj = &slot->as_object();
      } else if (slot->is_array()) {
        auto idx = array_index(seg);
        if (!idx)
          throw_bad_request("Cannot create field '" + seg + "' in the array at '" + path + "'");
        auto& a = slot->as_array();
        if (*idx >= a.size()) a.resize(*idx + 1);
        slot = &a[*idx];
        continue;
      } else {
        throw_bad_request("Cannot create field '" + seg + "' in element of type " +
                          bson_type_name(slot->type()) + " at '" + path + "'");
      }
    }
    slot = find_field(*obj, seg);
    if (!slot) {
      obj->emplace_back(seg, i + 1 < segs.size() ? value(object{}) : value());
      slot = &obj->back().second;
    }
  }
  return *slot;
}

/// Removes the value at `segs` (array elements become null, as MongoDB's $unset does).
std::optional<value> remove_slot(object& doc, const std::vector<std::string>& segs) {
  value* parent = nullptr;
  object* obj = &doc;
  if (segs.size() > 1) {
    parent = find_slot(doc, std::vector<std::string>(segs.begin(), segs.end() - 1));
    if (!parent) return std::nullopt;
    if (auto* a = parent->get_if<array>()) {
      auto idx = array_index(segs.back());
      if (!idx || *idx >= a->size()) return std::nullopt;
      value old = std::exchange((*a)[*idx], value());
      return old;
    }
    obj = parent->get_if<object>();
    if (!obj) return std::nullopt;
  }
  for (auto it = obj->begin(); it != obj->end(); ++it)
    if (it->first == segs.back()) {
      value old = std::move(it->second);
      obj->erase(it);
      return old;
    }
  return std::nullopt;
}

bool passes_through_array(object& doc, const std::vector<std::string>& segs) {
  for (std::size_t n = 1; n < segs.size(); ++n) {
    value* v = find_slot(doc, std::vector<std::string>(segs.begin(), segs.begin() + n));
    if (!v) return false;
    if (v->is_array()) return true;
  }
  return false;
}

value arithmetic(const value& cur, const value& arg, bool multiply, const std::string& path) {
  bool ints = !cur.is<double>() && !arg.is<double>();
  if (!ints)
    return multiply ? cur.as_double() * arg.as_double() : cur.as_double() + arg.as_double();
  std::int64_t r;
  bool overflow = multiply ? __builtin_mul_overflow(cur.as_int64(), arg.as_int64(), &r)
                           : __builtin_add_overflow(cur.as_int64(), arg.as_int64(), &r);
  if (overflow)
    throw_bad_request(std::string(multiply ? "$mul" : "$inc") + " on field '" + path +
                      "' overflows a 64-bit integer");
  if (cur.is<std::int32_t>() && arg.is<std::int32_t>() && r >= INT32_MIN && r <= INT32_MAX)
    return static_cast<std::int32_t>(r);
  return r;
}

/// A zero of the multiplier's type: what $mul leaves in a missing field.
value zero_like(const value& v) {
  if (v.is<double>()) return 0.0;
  if (v.is<std::int64_t>()) return std::int64_t{0};
  return std::int32_t{0};
}

value current_date(const value& spec) {
  static std::atomic<std::uint32_t> increment{0};
  const date_time now = date_time::now();
  if (auto* o = spec.get_if<object>()) {
    const value* t = find_field(*o, "$type");
    if (t && t->is_string() && t->as_string() == "timestamp")
      return timestamp_value{static_cast<std::uint32_t>(now.millis / 1000),
                             increment.fetch_add(1, std::memory_order_relaxed) + 1};
  }
  return now;
}

void validate_current_date(const value& spec, const std::string& path) {
  if (spec.is_bool()) return;
  if (auto* o = spec.get_if<object>(); o && o->size() == 1 && o->front().first == "$type") {
    const value& t = o->front().second;
    if (t.is_string() && (t.as_string() == "date" || t.as_string() == "timestamp")) return;
  }
  throw_bad_request("$currentDate for field '" + path +
                    "' must be true or {$type: \"date\"|\"timestamp\"}");
}

std::optional<std::int64_t> whole_number(const value& v) {
  if (!v.is_number()) return std::nullopt;
  if (v.is<double>() && v.as_double() != static_cast<double>(v.as_int64())) return std::nullopt;
  return v.as_int64();
}

/// The elements a $push or $addToSet adds, and the $push modifiers.
struct push_args {
  array each;
  std::optional<std::int64_t> position;
  std::optional<std::int64_t> slice;
  std::optional<value> sort;
};

bool has_each(const value& arg) {
  auto* o = arg.get_if<object>();
  return o && find_field(*o, "$each");
}

push_args parse_push(const std::string& op, const std::string& path, const value& arg) {
  push_args p;
  if (!has_each(arg)) {
    p.each.push_back(arg);
    return p;
  }
  for (auto& [k, v] : arg.as_object()) {
    if (k == "$each") {
      if (!v.is_array()) throw_bad_request(op + ": $each for field '" + path + "' needs an array");
      p.each = v.as_array();
    } else if (op == "$push" && (k == "$position" || k == "$slice")) {
      auto n = whole_number(v);
      if (!n) throw_bad_request("$push: " + k + " for field '" + path + "' needs an integer");
      (k == "$position" ? p.position : p.slice) = n;
    } else if (op == "$push" && k == "$sort") {
      bool ok = v.is_number() && (v.as_double() == 1 || v.as_double() == -1);
      if (auto* o = v.get_if<object>(); o && !o->empty()) {
        sort_spec::parse(*o); // validates
        ok = true;
      }
      if (!ok)
        throw_bad_request("$push: $sort for field '" + path + "' needs 1, -1 or a sort object");
      p.sort = v;
    } else {
      throw_bad_request(op + ": unknown modifier " + k + " for field '" + path + "'");
    }
  }
  return p;
}

/// The test $pull applies to each element: equality for plain values, a query for
/// documents, operator conditions for operator objects.
class pull_condition {
public:
  explicit pull_condition(const value& arg) : literal_(arg) {
    if (arg.is<regex_value>()) {
      wrapped_ = true;
      matcher_ = matcher::compile(object{{"v", arg}});
    } else if (auto* o = arg.get_if<object>()) {
      bool operators = !o->empty() && std::all_of(o->begin(), o->end(), [](auto& kv) {
        return starts_with_dollar(kv.first) && kv.first != "$and" && kv.first != "$or" &&
               kv.first != "$nor";
      });
      wrapped_ = operators;
      matcher_ = matcher::compile(operators ? object{{"v", arg}} : *o);
      query_ = !operators;
    }
  }
  bool matches(const value& e) const {
    if (wrapped_) return matcher_.matches(object{{"v", e}});
    if (query_) return e.is_object() && matcher_.matches(e.as_object());
    return e == literal_;
  }

private:
  value literal_;
  matcher matcher_;
  bool wrapped_ = false;
  bool query_ = false;
};

void sort_elements(array& a, const value& spec) {
  if (spec.is_number()) {
    int dir = spec.as_double() < 0 ? -1 : 1;
    std::stable_sort(a.begin(), a.end(), [dir](const value& x, const value& y) {
      return compare_values(x, y) * dir < 0;
    });
    return;
  }
  sort_spec s = sort_spec::parse(spec.as_object());
  static const object empty;
  std::stable_sort(a.begin(), a.end(), [&s](const value& x, const value& y) {
    const object& xo = x.is_object() ? x.as_object() : empty;
    const object& yo = y.is_object() ? y.as_object() : empty;
    return s.compare(xo, yo) < 0;
  });
}

[[noreturn]] void path_conflict(const std::string& path, const std::string& at) {
  throw_bad_request("Updating the path '" + path + "' would create a conflict at '" + at + "'");
}

/// Equal paths, or one a prefix of the other at a segment boundary.
const std::string* conflict_between(const std::string& a, const std::string& b) {
  const std::string& shorter = a.size() <= b.size() ? a : b;
  const std::string& longer = a.size() <= b.size() ? b : a;
  if (longer.compare(0, shorter.size(), shorter) != 0) return nullptr;
  if (longer.size() == shorter.size() || longer[shorter.size()] == '.') return &shorter;
  return nullptr;
}

void check_conflicts(const std::vector<std::string>& paths) {
  for (std::size_t j = 1; j < paths.size(); ++j)
    for (std::size_t i = 0; i < j; ++i)
      if (auto* at = conflict_between(paths[i], paths[j])) path_conflict(paths[j], *at);
}

/// Applies one operator to `doc`, recording changes in `desc`.
class op_applier {
public:
  op_applier(object& doc, update_description& desc) : doc_(doc), desc_(desc) {}

  void apply(const update_spec::op& o) {
    auto segs = split_path(o.path);
    const std::string& n = o.name;
    if (n == "$set") return set(segs, o.path, o.arg);
    if (n == "$unset") return unset(segs, o.path);
    if (n == "$currentDate") return set(segs, o.path, current_date(o.arg));
    value* cur = find_slot(doc_, segs);
    if (n == "$inc" || n == "$mul") {
      bool mul = n == "$mul";
      if (!cur) return set(segs, o.path, mul ? zero_like(o.arg) : o.arg);
      if (!cur->is_number())
        throw_bad_request("Cannot apply " + n + " to a value of non-numeric type: field '" +
                          o.path + "' has type " + bson_type_name(cur->type()));
      return set(segs, o.path, arithmetic(*cur, o.arg, mul, o.path));
    }
    if (n == "$min" || n == "$max") {
      int want = n == "$min" ? -1 : 1;
      if (!cur || compare_values(o.arg, *cur) * want > 0) set(segs, o.path, o.arg);
      return;
    }
    if (n == "$rename") return rename(segs, o.path, o.arg.as_string());
    if (cur && !cur->is_array())
      throw_bad_request("Cannot apply " + n + " to field '" + o.path +
                        "': it must be an array but is of type " + bson_type_name(cur->type()));
    if (n == "$push" || n == "$addToSet") {
      array a = cur ? cur->as_array() : array{};
      push_args p = parse_push(n, o.path, o.arg);
      if (n == "$addToSet") {
        for (auto& v : p.each)
          if (std::find(a.begin(), a.end(), v) == a.end()) a.push_back(v);
      } else {
        push(a, std::move(p));
      }
      if (cur) return replace_array(*cur, o.path, std::move(a));
      return set(segs, o.path, std::move(a));
    }
    if (!cur) return; // $pull, $pullAll, $pop on a missing field
    array a = cur->as_array();
    if (n == "$pull") {
      pull_condition cond(o.arg);
      std::erase_if(a, [&cond](const value& e) { return cond.matches(e); });
    } else if (n == "$pullAll") {
      auto& drop = o.arg.as_array();
      std::erase_if(a, [&drop](const value& e) {
        return std::find(drop.begin(), drop.end(), e) != drop.end();
      });
    } else if (n == "$pop" && !a.empty()) {
      a.erase(o.arg.as_double() < 0 ? a.begin() : a.end() - 1);
    }
    replace_array(*cur, o.path, std::move(a));
  }

private:
  void set(const std::vector<std::string>& segs, const std::string& path, value v) {
    if (value* cur = find_slot(doc_, segs); cur && identical(*cur, v)) return;
    make_slot(doc_, segs, path) = v;
    set_field(desc_.updated_fields, path, std::move(v));
  }

  /// MongoDB reports elements appended to an existing array as "path.index"; any other
  /// change to an array reports the whole array.
  void replace_array(value& slot, const std::string& path, array a) {
    const array& old = slot.as_array();
    if (a.size() == old.size() && std::equal(old.begin(), old.end(), a.begin(), identical)) return;
    if (a.size() > old.size() && std::equal(old.begin(), old.end(), a.begin(), identical)) {
      for (std::size_t i = old.size(); i < a.size(); ++i)
        set_field(desc_.updated_fields, path + "." + std::to_string(i), a[i]);
    } else {
      set_field(desc_.updated_fields, path, a);
    }
    slot = std::move(a);
  }

  void unset(const std::vector<std::string>& segs, const std::string& path) {
    if (remove_slot(doc_, segs)) desc_.removed_fields.push_back(path);
  }

  void rename(const std::vector<std::string>& from, const std::string& from_path,
              const std::string& to_path) {
    auto to = split_path(to_path);
    if (passes_through_array(doc_, from))
      throw_bad_request("$rename: the source field '" + from_path + "' cannot be inside an array");
    if (passes_through_array(doc_, to))
      throw_bad_request("$rename: the target field '" + to_path + "' cannot be inside an array");
    auto old = remove_slot(doc_, from);
    if (!old) return;
    desc_.removed_fields.push_back(from_path);
    make_slot(doc_, to, to_path) = *old;
    set_field(desc_.updated_fields, to_path, std::move(*old));
  }

  static void push(array& a, push_args p) {
    std::size_t pos = a.size();
    if (p.position) {
      std::int64_t size = static_cast<std::int64_t>(a.size());
      std::int64_t at = *p.position < 0 ? std::max<std::int64_t>(0, size + *p.position)
                                        : std::min(*p.position, size);
      pos = static_cast<std::size_t>(at);
    }
    a.insert(a.begin() + static_cast<std::ptrdiff_t>(pos), p.each.begin(), p.each.end());
    if (p.sort) sort_elements(a, *p.sort);
    if (p.slice) {
      auto keep = static_cast<std::size_t>(*p.slice < 0 ? -*p.slice : *p.slice);
      if (keep < a.size()) {
        if (*p.slice < 0)
          a.erase(a.begin(), a.end() - static_cast<std::ptrdiff_t>(keep));
        else
          a.resize(keep);
      }
    }
  }

  object& doc_;
  update_description& desc_;
};

void check_operator(const std::string& name) {
  if (std::find(std::begin(update_operators), std::end(update_operators), name) ==
      std::end(update_operators))
    throw_bad_request("unknown update operator " + name);
}

void validate_op(const update_spec::op& o) {
  const std::string& n = o.name;
  split_path(o.path);
  if ((n == "$inc" || n == "$mul") && !o.arg.is_number())
    throw_bad_request(n + ": the value for field '" + o.path + "' must be a number");
  if (n == "$rename") {
    if (!o.arg.is_string())
      throw_bad_request("$rename: the target for field '" + o.path + "' must be a string");
    split_path(o.arg.as_string());
    if (conflict_between(o.path, o.arg.as_string()))
      throw_bad_request("$rename: source '" + o.path + "' and target '" + o.arg.as_string() +
                        "' overlap");
  }
  if (n == "$pop" && !(o.arg.is_number() && (o.arg.as_double() == 1 || o.arg.as_double() == -1)))
    throw_bad_request("$pop: the value for field '" + o.path + "' must be 1 or -1");
  if (n == "$pullAll" && !o.arg.is_array())
    throw_bad_request("$pullAll: the value for field '" + o.path + "' must be an array");
  if (n == "$currentDate") validate_current_date(o.arg, o.path);
  if (n == "$push" || n == "$addToSet") parse_push(n, o.path, o.arg);
  if (n == "$pull") pull_condition{o.arg};
}

} // namespace

update_spec update_spec::parse(const object& body) {
  if (body.empty()) throw_bad_request("the update body is empty");
  update_spec spec;
  for (auto& [key, arg] : body) {
    if (!starts_with_dollar(key)) {
      spec.ops_.push_back(op{"$set", key, arg});
      continue;
    }
    check_operator(key);
    if (!arg.is_object())
      throw_bad_request("the argument of " + key + " must be an object of fields");
    for (auto& [path, v] : arg.as_object())
      spec.ops_.push_back(op{key, path, v});
  }
  return from_ops(std::move(spec.ops_));
}

update_spec update_spec::from_ops(std::vector<op> ops) {
  std::vector<std::string> touched;
  for (auto& o : ops) {
    check_operator(o.name);
    validate_op(o);
    touched.push_back(o.path);
    if (o.name == "$rename") touched.push_back(o.arg.as_string());
  }
  check_conflicts(touched);
  update_spec spec;
  spec.ops_ = std::move(ops);
  return spec;
}

void update_spec::apply(object& doc, update_description* desc) const {
  object work = doc;
  update_description changes;
  op_applier applier(work, changes);
  for (auto& o : ops_)
    applier.apply(o);
  if (const value* id = find_field(doc, "_id")) {
    const value* after = find_field(work, "_id");
    if (!after || !identical(*id, *after))
      throw_bad_request(
          "Performing an update on the path '_id' would modify the immutable field '_id'");
  }
  // Paths and values are each within the limit, but a deep value set at a deep path is not.
  check_nesting_depth(work, "the updated document");
  doc = std::move(work);
  if (desc) *desc = std::move(changes);
}

object normalize_document_body(object body) {
  std::vector<std::string> paths;
  const value* current_dates = nullptr;
  bool plain = true; // no operator, no dotted key: the body is the document
  for (auto& [key, v] : body) {
    if (starts_with_dollar(key)) {
      if (key != "$currentDate") throw_bad_request("update operators are not allowed here: " + key);
      if (!v.is_object())
        throw_bad_request("the argument of $currentDate must be an object of fields");
      current_dates = &v;
      plain = false;
      continue;
    }
    plain = plain && key.find('.') == std::string::npos;
    paths.push_back(key);
  }
  if (current_dates)
    for (auto& [path, spec] : current_dates->as_object()) {
      validate_current_date(spec, path);
      paths.push_back(path);
    }
  check_conflicts(paths);
  if (plain) {
    check_nesting_depth(body, "document");
    return body;
  }
  object out;
  for (auto& [key, v] : body) {
    if (starts_with_dollar(key)) continue;
    if (key.find('.') == std::string::npos)
      out.emplace_back(key, std::move(v));
    else
      make_slot(out, split_path(key), key) = std::move(v);
  }
  if (current_dates)
    for (auto& [path, spec] : current_dates->as_object())
      make_slot(out, split_path(path), path) = current_date(spec);
  // Dotted keys nest their values one level per segment.
  check_nesting_depth(out, "document");
  return out;
}

void strip_matching_id(object& doc, const value& id) {
  if (const value* given = find_field(doc, "_id")) {
    if (compare_values(*given, id) != 0) throw_bad_request("_id cannot be changed");
    erase_field(doc, "_id");
  }
}

} // namespace rheo
