#include "storage/document/pipeline.hpp"

#include "storage/document/json.hpp"
#include "storage/document/query.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

namespace rheo {

namespace {

bool is_code_operator(std::string_view op) {
  return op == "$where" || op == "$function" || op == "$accumulator";
}

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

// ---- expressions ----

enum class op {
  literal,
  path,
  root,
  object_literal,
  array_literal,
  eq,
  ne,
  gt,
  gte,
  lt,
  lte,
  cmp,
  and_,
  or_,
  not_,
  cond,
  if_null,
  concat,
  to_string,
  add,
  subtract,
  multiply,
  divide,
  in,
  size
};

struct operator_info {
  std::string_view name;
  op kind;
  std::size_t min_args;
  std::size_t max_args;
};

constexpr std::size_t any_count = std::numeric_limits<std::size_t>::max();

constexpr operator_info expression_operators[] = {
    {"$eq", op::eq, 2, 2},
    {"$ne", op::ne, 2, 2},
    {"$gt", op::gt, 2, 2},
    {"$gte", op::gte, 2, 2},
    {"$lt", op::lt, 2, 2},
    {"$lte", op::lte, 2, 2},
    {"$cmp", op::cmp, 2, 2},
    {"$and", op::and_, 0, any_count},
    {"$or", op::or_, 0, any_count},
    {"$not", op::not_, 1, 1},
    {"$cond", op::cond, 3, 3},
    {"$ifNull", op::if_null, 2, any_count},
    {"$concat", op::concat, 0, any_count},
    {"$toString", op::to_string, 1, 1},
    {"$add", op::add, 0, any_count},
    {"$subtract", op::subtract, 2, 2},
    {"$multiply", op::multiply, 0, any_count},
    {"$divide", op::divide, 2, 2},
    {"$in", op::in, 2, 2},
    {"$size", op::size, 1, 1},
};

const operator_info* find_expression_operator(std::string_view name) {
  for (auto& info : expression_operators)
    if (info.name == name) return &info;
  return nullptr;
}

[[noreturn]] void reject_expression_operator(std::string_view name) {
  if (is_code_operator(name))
    throw_bad_request("operator " + std::string(name) + " is not allowed");
  throw_bad_request("unknown expression operator " + std::string(name));
}

/// A compiled expression: a literal, a field path, or an operator over sub-expressions.
struct expr {
  op kind = op::literal;
  value literal;                  // op::literal
  std::vector<std::string> names; // op::path: the segments; op::object_literal: field names
  std::vector<expr> args;         // operands, object_literal values, array_literal elements
};

std::vector<std::string> split_path(std::string_view path, std::string_view context) {
  const std::string invalid = "invalid field path in " + std::string(context);
  return split_field_path(path, invalid, invalid);
}

expr compile_expr(const value& v);

expr compile_field_path(const std::string& s) {
  expr e;
  std::string_view path(s);
  if (path.starts_with("$$")) {
    auto dot = path.find('.');
    auto variable = path.substr(0, dot);
    if (variable != "$$ROOT" && variable != "$$CURRENT")
      throw_bad_request("unknown variable " + std::string(variable));
    if (dot == std::string_view::npos) {
      e.kind = op::root;
      return e;
    }
    path = path.substr(dot + 1);
  } else {
    path.remove_prefix(1);
  }
  e.kind = op::path;
  e.names = split_path(path, "'" + s + "'");
  return e;
}

expr compile_operator(std::string_view name, const value& arg) {
  expr e;
  if (name == "$literal") {
    e.literal = arg;
    return e;
  }
  auto* info = find_expression_operator(name);
  if (!info) reject_expression_operator(name);
  e.kind = info->kind;
  if (info->kind == op::cond && arg.is_object()) {
    auto& o = arg.as_object();
    for (auto* field : {"if", "then", "else"}) {
      auto* branch = find_field(o, field);
      if (!branch) throw_bad_request(std::string("$cond needs '") + field + "'");
      e.args.push_back(compile_expr(*branch));
    }
    if (o.size() != 3) throw_bad_request("$cond takes only 'if', 'then' and 'else'");
    return e;
  }
  if (auto* a = arg.get_if<array>()) {
    for (auto& item : *a)
      e.args.push_back(compile_expr(item));
  } else {
    e.args.push_back(compile_expr(arg));
  }
  auto n = e.args.size();
  if (n < info->min_args || n > info->max_args) {
    std::string expected = info->min_args == info->max_args
                               ? "exactly " + std::to_string(info->min_args)
                               : "at least " + std::to_string(info->min_args);
    throw_bad_request(std::string(name) + " takes " + expected + " argument" +
                      (info->min_args == 1 && info->max_args == 1 ? "" : "s") + ", got " +
                      std::to_string(n));
  }
  return e;
}

expr compile_expr(const value& v) {
  if (auto* s = v.get_if<std::string>(); s && starts_with_dollar(*s)) return compile_field_path(*s);
  if (auto* a = v.get_if<array>()) {
    expr e;
    e.kind = op::array_literal;
    for (auto& item : *a)
      e.args.push_back(compile_expr(item));
    return e;
  }
  auto* o = v.get_if<object>();
  if (!o) {
    expr e;
    e.literal = v;
    return e;
  }
  if (!o->empty() && starts_with_dollar(o->front().first)) {
    if (o->size() != 1)
      throw_bad_request("an expression object must have exactly one operator, found " +
                        o->front().first + " among other fields");
    return compile_operator(o->front().first, o->front().second);
  }
  expr e;
  e.kind = op::object_literal;
  for (auto& [k, item] : *o) {
    if (starts_with_dollar(k))
      throw_bad_request("field name " + k + " in an expression object cannot start with $");
    e.names.push_back(k);
    e.args.push_back(compile_expr(item));
  }
  return e;
}

// ---- evaluation ----

const value null_value;

/// The result of evaluating an expression: missing, borrowed from the event or the
/// pipeline (no copy), or owned.
class operand {
public:
  static operand missing() { return operand(); }
  static operand borrowed(const value& v) {
    operand r;
    r.ref_ = &v;
    return r;
  }
  static operand owned(value v) {
    operand r;
    r.own_ = std::move(v);
    r.present_ = true;
    return r;
  }

  bool is_missing() const { return !ref_ && !present_; }
  /// null when missing.
  const value& get() const { return ref_ ? *ref_ : own_; }
  bool nullish() const { return is_missing() || get().is_null(); }
  value take() && { return ref_ ? *ref_ : std::move(own_); }

private:
  const value* ref_ = nullptr;
  value own_;
  bool present_ = false;
};

std::string_view type_name(const operand& v) {
  return v.is_missing() ? "missing" : bson_type_name(v.get().type());
}

[[noreturn]] void fail(std::string_view op_name, std::string_view what, const operand& v) {
  throw pipeline_error(std::string(op_name) + " " + std::string(what) + ", got " +
                       std::string(type_name(v)));
}

/// "$a.b" through arrays: each element's value, skipping elements where it is missing.
value traverse_array(const array& a, std::span<const std::string> segments);

operand lookup_path(const value& start, std::span<const std::string> segments) {
  const value* cur = &start;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (auto* a = cur->get_if<array>())
      return operand::owned(traverse_array(*a, segments.subspan(i)));
    auto* o = cur->get_if<object>();
    cur = o ? find_field(*o, segments[i]) : nullptr;
    if (!cur) return operand::missing();
  }
  return operand::borrowed(*cur);
}

value traverse_array(const array& a, std::span<const std::string> segments) {
  array out;
  for (auto& element : a) {
    if (element.is_array()) {
      out.push_back(traverse_array(element.as_array(), segments));
    } else if (element.is_object()) {
      auto r = lookup_path(element, segments);
      if (!r.is_missing()) out.push_back(std::move(r).take());
    }
  }
  return out;
}

operand eval(const expr& e, const object& root);

int compare_operands(const operand& a, const operand& b) {
  // As in MongoDB aggregation, missing sorts before null and equals only missing.
  if (a.is_missing() || b.is_missing()) return int(b.is_missing()) - int(a.is_missing());
  return compare_values(a.get(), b.get());
}

bool truthy(const operand& v) {
  return !v.is_missing() && v.get().truthy();
}

/// int32 op int32 stays int32 when it fits, integers overflow into double, doubles win.
value arithmetic(char op, const value& a, const value& b) {
  if (a.is<double>() || b.is<double>()) {
    double x = a.as_double(), y = b.as_double();
    return op == '+' ? x + y : op == '-' ? x - y : x * y;
  }
  std::int64_t x = a.as_int64(), y = b.as_int64(), r;
  bool overflow = op == '+'   ? __builtin_add_overflow(x, y, &r)
                  : op == '-' ? __builtin_sub_overflow(x, y, &r)
                              : __builtin_mul_overflow(x, y, &r);
  if (overflow) return arithmetic(op, value(double(x)), value(double(y)));
  if (a.is<std::int32_t>() && b.is<std::int32_t>() &&
      r >= std::numeric_limits<std::int32_t>::min() &&
      r <= std::numeric_limits<std::int32_t>::max())
    return std::int32_t(r);
  return r;
}

std::int64_t to_millis(const value& number) {
  return number.is<double>() ? std::llround(number.as_double()) : number.as_int64();
}

operand eval_add_or_multiply(const expr& e, const object& root) {
  bool add = e.kind == op::add;
  std::string_view name = add ? "$add" : "$multiply";
  value acc = std::int32_t(add ? 0 : 1);
  std::optional<date_time> date;
  bool null_seen = false;
  for (auto& arg : e.args) {
    auto v = eval(arg, root);
    if (v.nullish()) {
      null_seen = true;
    } else if (v.get().is_number()) {
      acc = arithmetic(add ? '+' : '*', acc, v.get());
    } else if (add && v.get().is<date_time>() && !date) {
      date = v.get().get<date_time>();
    } else {
      fail(name, add ? "needs numbers and at most one date" : "needs numbers", v);
    }
  }
  if (null_seen) return operand::owned(value());
  if (date) return operand::owned(date_time{date->millis + to_millis(acc)});
  return operand::owned(std::move(acc));
}

operand eval_subtract(const operand& a, const operand& b) {
  if (a.nullish() || b.nullish()) return operand::owned(value());
  auto& x = a.get();
  auto& y = b.get();
  if (x.is_number() && y.is_number()) return operand::owned(arithmetic('-', x, y));
  if (auto* d = x.get_if<date_time>()) {
    if (auto* d2 = y.get_if<date_time>()) return operand::owned(d->millis - d2->millis);
    if (y.is_number()) return operand::owned(date_time{d->millis - to_millis(y)});
  }
  fail("$subtract", "needs two numbers, two dates, or a date and a number", x.is_number() ? b : a);
}

operand eval_divide(const operand& a, const operand& b) {
  if (a.nullish() || b.nullish()) return operand::owned(value());
  if (!a.get().is_number()) fail("$divide", "needs numbers", a);
  if (!b.get().is_number()) fail("$divide", "needs numbers", b);
  double divisor = b.get().as_double();
  if (divisor == 0) throw pipeline_error("$divide by zero");
  return operand::owned(a.get().as_double() / divisor);
}

operand eval_concat(const expr& e, const object& root) {
  std::string out;
  for (auto& arg : e.args) {
    auto v = eval(arg, root);
    if (v.nullish()) return operand::owned(value());
    if (!v.get().is_string()) fail("$concat", "needs strings", v);
    out += v.get().as_string();
  }
  return operand::owned(std::move(out));
}

std::string format_double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, end);
}

/// ISO-8601 in UTC with milliseconds, as MongoDB's $toString writes dates.
std::string format_date(date_time d) {
  using namespace std::chrono;
  sys_time<milliseconds> t{milliseconds(d.millis)};
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()),
                int(hms.subseconds().count()));
  return buf;
}

operand eval_to_string(const operand& v) {
  if (v.nullish()) return operand::owned(value());
  auto& x = v.get();
  if (x.is_string()) return v;
  if (auto* i = x.get_if<std::int32_t>()) return operand::owned(std::to_string(*i));
  if (auto* l = x.get_if<std::int64_t>()) return operand::owned(std::to_string(*l));
  if (auto* d = x.get_if<double>()) return operand::owned(format_double(*d));
  if (auto* b = x.get_if<bool>()) return operand::owned(*b ? "true" : "false");
  if (auto* id = x.get_if<object_id>()) return operand::owned(id->hex());
  if (auto* date = x.get_if<date_time>()) return operand::owned(format_date(*date));
  fail("$toString", "cannot convert this type", v);
}

operand eval(const expr& e, const object& root) {
  switch (e.kind) {
  case op::literal:
    return operand::borrowed(e.literal);
  case op::path: {
    auto* first = find_field(root, e.names.front());
    if (!first) return operand::missing();
    return lookup_path(*first, std::span(e.names).subspan(1));
  }
  case op::root:
    return operand::owned(root);
  case op::object_literal: {
    object out;
    out.reserve(e.names.size());
    for (std::size_t i = 0; i < e.names.size(); ++i) {
      auto v = eval(e.args[i], root);
      if (!v.is_missing()) out.emplace_back(e.names[i], std::move(v).take());
    }
    return operand::owned(std::move(out));
  }
  case op::array_literal: {
    array out;
    out.reserve(e.args.size());
    for (auto& arg : e.args)
      out.push_back(eval(arg, root).take()); // missing becomes null, as in MongoDB
    return operand::owned(std::move(out));
  }
  case op::eq:
  case op::ne:
  case op::gt:
  case op::gte:
  case op::lt:
  case op::lte:
  case op::cmp: {
    int c = compare_operands(eval(e.args[0], root), eval(e.args[1], root));
    switch (e.kind) {
    case op::eq:
      return operand::owned(c == 0);
    case op::ne:
      return operand::owned(c != 0);
    case op::gt:
      return operand::owned(c > 0);
    case op::gte:
      return operand::owned(c >= 0);
    case op::lt:
      return operand::owned(c < 0);
    case op::lte:
      return operand::owned(c <= 0);
    default:
      return operand::owned(std::int32_t(c < 0 ? -1 : c > 0 ? 1 : 0));
    }
  }
  case op::and_:
    for (auto& arg : e.args)
      if (!truthy(eval(arg, root))) return operand::owned(false);
    return operand::owned(true);
  case op::or_:
    for (auto& arg : e.args)
      if (truthy(eval(arg, root))) return operand::owned(true);
    return operand::owned(false);
  case op::not_:
    return operand::owned(!truthy(eval(e.args[0], root)));
  case op::cond:
    return eval(e.args[truthy(eval(e.args[0], root)) ? 1 : 2], root);
  case op::if_null:
    for (std::size_t i = 0; i + 1 < e.args.size(); ++i)
      if (auto v = eval(e.args[i], root); !v.nullish()) return v;
    return eval(e.args.back(), root);
  case op::concat:
    return eval_concat(e, root);
  case op::to_string:
    return eval_to_string(eval(e.args[0], root));
  case op::add:
  case op::multiply:
    return eval_add_or_multiply(e, root);
  case op::subtract:
    return eval_subtract(eval(e.args[0], root), eval(e.args[1], root));
  case op::divide:
    return eval_divide(eval(e.args[0], root), eval(e.args[1], root));
  case op::in: {
    auto needle = eval(e.args[0], root);
    auto haystack = eval(e.args[1], root);
    if (haystack.is_missing() || !haystack.get().is_array())
      fail("$in", "needs an array as its second argument", haystack);
    auto& a = haystack.get().as_array();
    bool found = !needle.is_missing() && std::find(a.begin(), a.end(), needle.get()) != a.end();
    return operand::owned(found);
  }
  case op::size: {
    auto v = eval(e.args[0], root);
    if (v.is_missing() || !v.get().is_array()) fail("$size", "needs an array", v);
    return operand::owned(std::int32_t(v.get().as_array().size()));
  }
  }
  return operand::missing();
}

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
  std::vector<std::pair<std::string, expr>> computed;
};

/// $addFields / $set.
struct set_stage {
  std::vector<std::pair<std::string, expr>> fields;
};

struct unset_stage {
  projection exclusion;
};

/// $replaceRoot / $replaceWith.
struct replace_stage {
  expr new_root;
  std::string_view name;
};

using stage = std::variant<match_stage, project_stage, set_stage, unset_stage, replace_stage>;

constexpr std::string_view allowed_stages[] = {"$match", "$project",     "$addFields",  "$set",
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

stage compile_match(const value& arg) {
  if (!arg.is_object()) throw_bad_request("$match needs an object");
  reject_expr(arg.as_object());
  return match_stage{matcher::compile(arg.as_object())};
}

stage compile_project(const value& arg) {
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
      s.computed.emplace_back(path, compile_expr(*v));
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

stage compile_set(const value& arg, std::string_view name) {
  if (!arg.is_object() || arg.as_object().empty())
    throw_bad_request(std::string(name) + " needs an object with at least one field");
  std::vector<std::pair<std::string, const value*>> leaves;
  flatten_spec(arg.as_object(), "", leaves, name);
  set_stage s;
  std::vector<std::string> paths;
  for (auto& [path, v] : leaves) {
    paths.push_back(path);
    s.fields.emplace_back(path, compile_expr(*v));
  }
  check_path_collisions(paths, name);
  return s;
}

stage compile_unset(const value& arg) {
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

stage compile_stage(const value& v) {
  if (!v.is_object() || v.as_object().size() != 1)
    throw_bad_request("a stage must be an object with exactly one field, the stage name");
  auto& [name, arg] = v.as_object().front();
  if (name == "$match") return compile_match(arg);
  if (name == "$project") return compile_project(arg);
  if (name == "$addFields" || name == "$set") return compile_set(arg, name);
  if (name == "$unset") return compile_unset(arg);
  if (name == "$replaceWith") return replace_stage{compile_expr(arg), "$replaceWith"};
  if (name == "$replaceRoot") {
    auto* o = arg.get_if<object>();
    if (!o || o->size() != 1 || o->front().first != "newRoot")
      throw_bad_request("$replaceRoot needs {newRoot: <expression>}");
    return replace_stage{compile_expr(o->front().second), "$replaceRoot"};
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
      auto v = eval(e, in);
      if (v.is_missing()) continue;
      if (path == "_id") {
        out.emplace(out.begin(), "_id", std::move(v).take());
      } else {
        set_path(out, path, std::move(v).take());
      }
    }
    return out;
  }

  object operator()(const set_stage& s) const {
    // Every expression sees the input document, so evaluate all before writing any.
    std::vector<operand> results;
    results.reserve(s.fields.size());
    for (auto& [path, e] : s.fields)
      results.push_back(eval(e, in));
    object out = in;
    for (std::size_t i = 0; i < results.size(); ++i) {
      auto& path = s.fields[i].first;
      if (results[i].is_missing())
        erase_path(out, path);
      else
        set_path(out, path, std::move(results[i]).take());
    }
    return out;
  }

  object operator()(const unset_stage& s) const { return s.exclusion.apply(in); }

  object operator()(const replace_stage& s) const {
    auto v = eval(s.new_root, in);
    if (v.is_missing() || !v.get().is_object())
      fail(s.name, "needs an expression that evaluates to an object", v);
    return std::move(v).take().as_object();
  }
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
        if (!find_expression_operator(k)) reject_expression_operator(k);
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
      compile_stage(*resolved);
    return;
  }
  auto key = sole_key(v);
  if (key == "$var") {
    check_var_argument(v.as_object().front().second);
    return;
  }
  if (key.empty())
    throw_bad_request("a stage must be an object with exactly one field, the stage name");
  if (std::find(std::begin(allowed_stages), std::end(allowed_stages), key) ==
      std::end(allowed_stages))
    throw_bad_request("stage " + std::string(key) + " is not allowed");
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
    s->stages.push_back(compile_stage(v));
    auto* m = std::get_if<match_stage>(&s->stages.back());
    s->passes_everything = s->passes_everything && m && m->filter.matches_all();
  }
  s->key = to_json(value(std::move(resolved)));
  return pipeline(std::move(s));
}

const object* pipeline::run(const object& event, object& scratch) const {
  const object* cur = &event;
  for (auto& s : state_->stages) {
    if (auto* m = std::get_if<match_stage>(&s)) {
      if (!m->filter.matches(*cur)) return nullptr;
      continue;
    }
    object next = std::visit(reshape{*cur}, s);
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
