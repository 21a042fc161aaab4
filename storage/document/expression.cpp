#include "storage/document/expression.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace rheo {

bool is_code_operator(std::string_view op) {
  return op == "$where" || op == "$function" || op == "$accumulator";
}

namespace {

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

} // namespace

struct expression::node {
  expr tree;
};

expression expression::compile(const value& v) {
  return expression(std::make_shared<const node>(node{compile_expr(v)}));
}

std::optional<value> expression::evaluate(const object& root) const {
  auto r = eval(node_->tree, root);
  if (r.is_missing()) return std::nullopt;
  return std::move(r).take();
}

value add_numbers(const value& a, const value& b) {
  return arithmetic('+', a, b);
}

bool is_expression_operator(std::string_view name) {
  return find_expression_operator(name) != nullptr;
}

void reject_expression_operator(std::string_view name) {
  if (is_code_operator(name))
    throw_bad_request("operator " + std::string(name) + " is not allowed");
  throw_bad_request("unknown expression operator " + std::string(name));
}

} // namespace rheo
