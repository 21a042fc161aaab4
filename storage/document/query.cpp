#include "storage/document/query.hpp"

#include <algorithm>
#include <optional>
// GCC 12 reports false -Wmaybe-uninitialized inside <regex> when sanitizers are on (clang
// has no such warning).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace rheo {

/// A document predicate; the compiled filter is a tree of these.
struct matcher::node {
  virtual ~node() = default;
  virtual bool matches(const object& doc) const = 0;
};

namespace {

const value null_value{};

// ---- path traversal ----
//
// MongoDB's path semantics: arrays met before the last segment are traversed element-wise
// (or indexed when the segment is numeric). `f(const value*)` is called once per branch with
// the leaf value, or with nullptr where the path does not exist on that branch; it returns
// true to stop the walk. Leaf arrays are passed whole; callers expand them as they need.

template <class F> bool walk_object(const object& o, std::string_view path, F& f);

template <class F> bool walk_value(const value& v, std::string_view rest, F& f) {
  if (auto* o = v.get_if<object>()) return walk_object(*o, rest, f);
  auto* a = v.get_if<array>();
  if (!a) return f(nullptr);
  auto dot = rest.find('.');
  auto seg = rest.substr(0, dot);
  if (auto idx = array_index(seg)) {
    if (*idx >= a->size()) return f(nullptr);
    const value& e = (*a)[*idx];
    if (dot == std::string_view::npos) return f(&e);
    return walk_value(e, rest.substr(dot + 1), f);
  }
  if (a->empty()) return f(nullptr);
  for (const value& e : *a) {
    if (auto* eo = e.get_if<object>()) {
      if (walk_object(*eo, rest, f)) return true;
    } else if (f(nullptr)) {
      return true;
    }
  }
  return false;
}

template <class F> bool walk_object(const object& o, std::string_view path, F& f) {
  auto dot = path.find('.');
  const value* v = find_field(o, path.substr(0, dot));
  if (!v) return f(nullptr);
  if (dot == std::string_view::npos) return f(v);
  return walk_value(*v, path.substr(dot + 1), f);
}

// ---- regular expressions ----

/// Rewrites PCRE-only option semantics into an ECMAScript pattern: `s` (dot matches
/// newline) and `x` (ignore whitespace and #-comments outside classes).
std::string rewrite_pattern(std::string_view pattern, bool dotall, bool extended) {
  std::string out;
  out.reserve(pattern.size());
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      out += c;
      out += pattern[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (extended && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'))
      continue;
    if (extended && c == '#') {
      while (i + 1 < pattern.size() && pattern[i + 1] != '\n')
        ++i;
      continue;
    }
    if (dotall && c == '.') {
      out += "[\\s\\S]";
      continue;
    }
    out += c;
  }
  return out;
}

bool has_regex_metachar(std::string_view s) {
  return s.find_first_of("\\^$.|?*+()[]{}") != std::string_view::npos;
}

/// A `$regex` compiled once. Plain literals (the common "contains" and "starts with"
/// searches) skip std::regex entirely.
class compiled_regex {
public:
  explicit compiled_regex(regex_value source) : source_(std::move(source)) {
    std::string_view pattern = source_.pattern;
    std::string options = source_.options;
    // Leading inline flags, e.g. "(?i)abc", are PCRE syntax; fold them into the options.
    if (pattern.size() > 3 && pattern.substr(0, 2) == "(?") {
      auto close = pattern.find(')');
      auto flags = pattern.substr(2, close == std::string_view::npos ? 0 : close - 2);
      if (close != std::string_view::npos && !flags.empty() &&
          flags.find_first_not_of("imsx") == std::string_view::npos) {
        options += flags;
        pattern.remove_prefix(close + 1);
      }
    }
    bool icase = false, multiline = false, dotall = false, extended = false;
    for (char c : options) {
      switch (c) {
      case 'i':
        icase = true;
        break;
      case 'm':
        multiline = true;
        break;
      case 's':
        dotall = true;
        break;
      case 'x':
        extended = true;
        break;
      case 'u':
        break; // UTF-8 is the only encoding we have
      default:
        throw_bad_request(std::string("invalid flag in regex options: ") + c);
      }
    }
    if (!icase && !extended) {
      if (!has_regex_metachar(pattern)) {
        mode_ = mode::contains;
        literal_ = pattern;
        return;
      }
      if (!multiline && pattern.front() == '^' && !has_regex_metachar(pattern.substr(1))) {
        mode_ = mode::prefix;
        literal_ = pattern.substr(1);
        return;
      }
    }
    auto flags = std::regex::ECMAScript | std::regex::nosubs | std::regex::optimize;
    if (icase) flags |= std::regex::icase;
    if (multiline) flags |= std::regex::multiline;
    try {
      regex_.emplace(rewrite_pattern(pattern, dotall, extended), flags);
    } catch (const std::regex_error& e) {
      throw_bad_request("invalid regular expression /" + source_.pattern + "/: " + e.what());
    }
  }

  bool search(std::string_view s) const {
    switch (mode_) {
    case mode::contains:
      return s.find(literal_) != std::string_view::npos;
    case mode::prefix:
      return s.substr(0, literal_.size()) == literal_;
    case mode::regex:
      return std::regex_search(s.begin(), s.end(), *regex_);
    }
    return false;
  }

  /// A string matches by search; a stored regex matches when it is the same regex.
  bool matches(const value& v) const {
    if (auto* s = v.get_if<std::string>()) return search(*s);
    if (auto* r = v.get_if<regex_value>()) return *r == source_;
    return false;
  }

private:
  enum class mode { contains, prefix, regex };
  regex_value source_;
  mode mode_ = mode::regex;
  std::string literal_;
  std::optional<std::regex> regex_;
};

// ---- value predicates: tests on one value (nullptr = missing) ----

struct value_pred {
  virtual ~value_pred() = default;
  virtual bool test(const value* v) const = 0;
  /// Whether a path predicate also tries each element of a leaf array (most operators
  /// do; $size, $elemMatch and $exists look at the array itself).
  virtual bool expands() const { return true; }
};

using pred_ptr = std::unique_ptr<value_pred>;

struct eq_pred final : value_pred {
  value operand;
  explicit eq_pred(value v) : operand(std::move(v)) {}
  bool test(const value* v) const override { return v ? *v == operand : operand.is_null(); }
};

enum class cmp_op { gt, gte, lt, lte };

struct cmp_pred final : value_pred {
  value operand;
  cmp_op op;
  bool any_type; // MinKey/MaxKey operands compare across types
  cmp_pred(value v, cmp_op o)
      : operand(std::move(v)), op(o), any_type(operand.is<min_key>() || operand.is<max_key>()) {}
  bool test(const value* v) const override {
    const value& x = v ? *v : null_value;
    if (!any_type && canonical_type_rank(x.type()) != canonical_type_rank(operand.type()))
      return false;
    int r = compare_values(x, operand);
    switch (op) {
    case cmp_op::gt:
      return r > 0;
    case cmp_op::gte:
      return r >= 0;
    case cmp_op::lt:
      return r < 0;
    case cmp_op::lte:
      return r <= 0;
    }
    return false;
  }
};

struct regex_pred final : value_pred {
  compiled_regex re;
  explicit regex_pred(regex_value r) : re(std::move(r)) {}
  bool test(const value* v) const override { return v && re.matches(*v); }
};

struct in_pred final : value_pred {
  std::vector<value> values;
  std::vector<compiled_regex> regexes;
  bool test(const value* v) const override {
    for (auto& x : values)
      if (v ? *v == x : x.is_null()) return true;
    if (v)
      for (auto& re : regexes)
        if (re.matches(*v)) return true;
    return false;
  }
};

struct type_pred final : value_pred {
  std::vector<int> codes;
  bool number = false;
  bool test(const value* v) const override {
    if (!v) return false;
    if (number && v->is_number()) return true;
    int code = static_cast<int>(v->type());
    return std::find(codes.begin(), codes.end(), code) != codes.end();
  }
};

struct size_pred final : value_pred {
  std::size_t n;
  explicit size_pred(std::size_t size) : n(size) {}
  bool test(const value* v) const override {
    return v && v->is_array() && v->as_array().size() == n;
  }
  bool expands() const override { return false; }
};

struct exists_pred final : value_pred {
  bool test(const value* v) const override { return v != nullptr; }
  bool expands() const override { return false; }
};

/// `$all: []` matches no document.
struct never_pred final : value_pred {
  bool test(const value*) const override { return false; }
  bool expands() const override { return false; }
};

struct mod_pred final : value_pred {
  std::int64_t divisor, remainder;
  mod_pred(std::int64_t d, std::int64_t r) : divisor(d), remainder(r) {}
  bool test(const value* v) const override {
    return v && v->is_number() && v->as_int64() % divisor == remainder;
  }
};

/// Conjunction of single-value tests (inside $elemMatch and $not there).
struct all_of_pred final : value_pred {
  std::vector<pred_ptr> preds;
  bool test(const value* v) const override {
    for (auto& p : preds)
      if (!p->test(v)) return false;
    return true;
  }
};

struct not_pred final : value_pred {
  pred_ptr inner;
  explicit not_pred(pred_ptr p) : inner(std::move(p)) {}
  bool test(const value* v) const override { return !inner->test(v); }
};

/// $elemMatch with operators: some element satisfies all of them.
struct elem_match_value_pred final : value_pred {
  pred_ptr cond;
  explicit elem_match_value_pred(pred_ptr c) : cond(std::move(c)) {}
  bool test(const value* v) const override {
    if (!v || !v->is_array()) return false;
    for (auto& e : v->as_array())
      if (cond->test(&e)) return true;
    return false;
  }
  bool expands() const override { return false; }
};

/// $elemMatch with a query: some element is a document matching it.
struct elem_match_query_pred final : value_pred {
  std::unique_ptr<matcher::node> query;
  explicit elem_match_query_pred(std::unique_ptr<matcher::node> q) : query(std::move(q)) {}
  bool test(const value* v) const override;
  bool expands() const override { return false; }
};

} // namespace

namespace {

using node_ptr = std::unique_ptr<matcher::node>;

bool elem_match_query_pred::test(const value* v) const {
  if (!v || !v->is_array()) return false;
  for (auto& e : v->as_array())
    if (auto* o = e.get_if<object>(); o && query->matches(*o)) return true;
  return false;
}

struct constant_node final : matcher::node {
  bool result;
  explicit constant_node(bool r) : result(r) {}
  bool matches(const object&) const override { return result; }
};

struct path_node final : matcher::node {
  std::string path;
  pred_ptr pred;
  path_node(std::string p, pred_ptr pr) : path(std::move(p)), pred(std::move(pr)) {}
  bool matches(const object& doc) const override {
    const value_pred& p = *pred;
    bool expand = p.expands();
    auto leaf = [&p, expand](const value* v) {
      if (p.test(v)) return true;
      if (expand && v && v->is_array())
        for (auto& e : v->as_array())
          if (p.test(&e)) return true;
      return false;
    };
    return walk_object(doc, path, leaf);
  }
};

struct and_node final : matcher::node {
  std::vector<node_ptr> kids;
  bool matches(const object& doc) const override {
    for (auto& k : kids)
      if (!k->matches(doc)) return false;
    return true;
  }
};

struct or_node final : matcher::node {
  std::vector<node_ptr> kids;
  bool matches(const object& doc) const override {
    for (auto& k : kids)
      if (k->matches(doc)) return true;
    return false;
  }
};

struct not_node final : matcher::node {
  node_ptr inner;
  explicit not_node(node_ptr n) : inner(std::move(n)) {}
  bool matches(const object& doc) const override { return !inner->matches(doc); }
};

node_ptr make_and(std::vector<node_ptr> kids) {
  if (kids.size() == 1) return std::move(kids.front());
  auto n = std::make_unique<and_node>();
  n->kids = std::move(kids);
  return n;
}

// ---- compilation ----
//
// Operators on a field compile to a small condition tree first, which is then lowered
// either to document predicates on a path (where every operator looks at all branches of
// the path independently) or to single-value predicates (inside $elemMatch).

struct condition {
  enum class kind { leaf, negate, conjunction } k = kind::leaf;
  pred_ptr pred;
  std::vector<condition> kids;
};

condition leaf(pred_ptr p) {
  condition c;
  c.pred = std::move(p);
  return c;
}

condition negate(condition inner) {
  condition c;
  c.k = condition::kind::negate;
  c.kids.push_back(std::move(inner));
  return c;
}

condition conjunction(std::vector<condition> kids) {
  if (kids.size() == 1) return std::move(kids.front());
  condition c;
  c.k = condition::kind::conjunction;
  c.kids = std::move(kids);
  return c;
}

node_ptr lower_to_path(condition c, const std::string& path) {
  switch (c.k) {
  case condition::kind::leaf:
    return std::make_unique<path_node>(path, std::move(c.pred));
  case condition::kind::negate:
    return std::make_unique<not_node>(lower_to_path(std::move(c.kids.front()), path));
  case condition::kind::conjunction: {
    std::vector<node_ptr> kids;
    for (auto& k : c.kids)
      kids.push_back(lower_to_path(std::move(k), path));
    return make_and(std::move(kids));
  }
  }
  return nullptr;
}

pred_ptr lower_to_value(condition c) {
  switch (c.k) {
  case condition::kind::leaf:
    return std::move(c.pred);
  case condition::kind::negate:
    return std::make_unique<not_pred>(lower_to_value(std::move(c.kids.front())));
  case condition::kind::conjunction: {
    auto all = std::make_unique<all_of_pred>();
    for (auto& k : c.kids)
      all->preds.push_back(lower_to_value(std::move(k)));
    return all;
  }
  }
  return nullptr;
}

[[noreturn]] void reject_operator(std::string_view op) {
  if (op == "$where" || op == "$function" || op == "$accumulator")
    throw_bad_request("operator " + std::string(op) + " is not allowed");
  throw_bad_request("unknown operator " + std::string(op));
}

node_ptr compile_query(const object& filter);

/// Whether `o` is an operator object ({$gt: 1, ...}) rather than a literal document.
/// Throws when only some keys are operators.
bool is_operator_object(const object& o, std::string_view field) {
  if (o.empty()) return false;
  std::size_t ops = 0;
  for (auto& [k, v] : o)
    ops += starts_with_dollar(k) ? 1 : 0;
  if (ops == 0) return false;
  if (ops != o.size()) {
    for (auto& [k, v] : o)
      if (starts_with_dollar(k) && (k == "$where" || k == "$function" || k == "$accumulator"))
        reject_operator(k);
    throw_bad_request("field '" + std::string(field) +
                      "' mixes operators and plain fields in one object");
  }
  return true;
}

std::optional<int> type_code(const value& v, bool& number) {
  static const std::pair<std::string_view, int> aliases[] = {
      {"double", 1},      {"string", 2},     {"object", 3},
      {"array", 4},       {"binData", 5},    {"undefined", 6},
      {"objectId", 7},    {"bool", 8},       {"date", 9},
      {"null", 10},       {"regex", 11},     {"dbPointer", 12},
      {"javascript", 13}, {"symbol", 14},    {"javascriptWithScope", 15},
      {"int", 16},        {"timestamp", 17}, {"long", 18},
      {"decimal", 19},    {"minKey", -1},    {"maxKey", 127}};
  if (auto* s = v.get_if<std::string>()) {
    if (*s == "number") {
      number = true;
      return 0;
    }
    for (auto& [name, code] : aliases)
      if (*s == name) return code;
    return std::nullopt;
  }
  if (v.is_number()) {
    double d = v.as_double();
    for (auto& [name, code] : aliases)
      if (d == code) return code;
  }
  return std::nullopt;
}

pred_ptr compile_type(const value& arg) {
  auto p = std::make_unique<type_pred>();
  auto add = [&](const value& v) {
    auto code = type_code(v, p->number);
    if (!code) throw_bad_request("$type: unknown type " + (v.is_string() ? v.as_string() : "code"));
    if (*code) p->codes.push_back(*code);
  };
  if (auto* a = arg.get_if<array>()) {
    if (a->empty()) throw_bad_request("$type must name at least one type");
    for (auto& v : *a)
      add(v);
  } else {
    add(arg);
  }
  return p;
}

std::optional<std::int64_t> whole_number(const value& v) {
  if (!v.is_number()) return std::nullopt;
  if (v.is<double>()) {
    double d = v.as_double();
    if (d != static_cast<double>(static_cast<std::int64_t>(d))) return std::nullopt;
  }
  return v.as_int64();
}

const array& array_argument(const value& arg, std::string_view op) {
  if (!arg.is_array()) throw_bad_request(std::string(op) + " needs an array");
  return arg.as_array();
}

std::unique_ptr<in_pred> compile_in(const value& arg, std::string_view op) {
  auto p = std::make_unique<in_pred>();
  for (auto& v : array_argument(arg, op)) {
    if (auto* r = v.get_if<regex_value>())
      p->regexes.emplace_back(*r);
    else
      p->values.push_back(v);
  }
  return p;
}

bool is_logical_operator(std::string_view k) {
  return k == "$and" || k == "$or" || k == "$nor";
}

condition compile_operators(const object& ops, std::string_view field);

/// The value form of $elemMatch when every key is a field operator; otherwise a query on
/// the elements (which rejects stray operators itself).
pred_ptr compile_elem_match(const value& arg, std::string_view field) {
  if (!arg.is_object()) throw_bad_request("$elemMatch needs an object");
  const object& o = arg.as_object();
  bool value_form = !o.empty() && std::all_of(o.begin(), o.end(), [](auto& kv) {
    return starts_with_dollar(kv.first) && !is_logical_operator(kv.first) && kv.first != "$where" &&
           kv.first != "$expr" && kv.first != "$function" && kv.first != "$accumulator" &&
           kv.first != "$comment";
  });
  if (value_form)
    return std::make_unique<elem_match_value_pred>(lower_to_value(compile_operators(o, field)));
  return std::make_unique<elem_match_query_pred>(compile_query(o));
}

condition compile_operators(const object& ops, std::string_view field) {
  std::vector<condition> conds;
  const value* options = find_field(ops, "$options");
  if (options && !options->is_string()) throw_bad_request("$options needs a string");
  for (auto& [op, arg] : ops) {
    if (op == "$eq") {
      conds.push_back(leaf(std::make_unique<eq_pred>(arg)));
    } else if (op == "$ne") {
      conds.push_back(negate(leaf(std::make_unique<eq_pred>(arg))));
    } else if (op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
      cmp_op c = op == "$gt"    ? cmp_op::gt
                 : op == "$gte" ? cmp_op::gte
                 : op == "$lt"  ? cmp_op::lt
                                : cmp_op::lte;
      conds.push_back(leaf(std::make_unique<cmp_pred>(arg, c)));
    } else if (op == "$in") {
      conds.push_back(leaf(compile_in(arg, op)));
    } else if (op == "$nin") {
      conds.push_back(negate(leaf(compile_in(arg, op))));
    } else if (op == "$exists") {
      condition c = leaf(std::make_unique<exists_pred>());
      conds.push_back(arg.truthy() ? std::move(c) : negate(std::move(c)));
    } else if (op == "$type") {
      conds.push_back(leaf(compile_type(arg)));
    } else if (op == "$size") {
      auto n = whole_number(arg);
      if (!n || *n < 0) throw_bad_request("$size needs a non-negative whole number");
      conds.push_back(leaf(std::make_unique<size_pred>(static_cast<std::size_t>(*n))));
    } else if (op == "$mod") {
      auto& a = array_argument(arg, op);
      std::optional<std::int64_t> d, r;
      if (a.size() == 2) d = whole_number(a[0]), r = whole_number(a[1]);
      if (!d || !r || *d == 0) throw_bad_request("$mod needs [divisor, remainder], divisor not 0");
      conds.push_back(leaf(std::make_unique<mod_pred>(*d, *r)));
    } else if (op == "$regex") {
      regex_value re;
      if (auto* r = arg.get_if<regex_value>())
        re = *r;
      else if (arg.is_string())
        re.pattern = arg.as_string();
      else
        throw_bad_request("$regex needs a string or a regular expression");
      if (options) re.options = options->as_string();
      conds.push_back(leaf(std::make_unique<regex_pred>(std::move(re))));
    } else if (op == "$options") {
      if (!find_field(ops, "$regex")) throw_bad_request("$options needs a $regex");
    } else if (op == "$all") {
      auto& items = array_argument(arg, op);
      if (items.empty()) {
        conds.push_back(leaf(std::make_unique<never_pred>()));
        continue;
      }
      for (auto& item : items) {
        const object* io = item.get_if<object>();
        if (io && !io->empty() && io->front().first == "$elemMatch") {
          if (io->size() != 1) throw_bad_request("$all with $elemMatch takes one operator");
          conds.push_back(leaf(compile_elem_match(io->front().second, field)));
        } else if (auto* r = item.get_if<regex_value>()) {
          conds.push_back(leaf(std::make_unique<regex_pred>(*r)));
        } else {
          if (io && is_operator_object(*io, field))
            throw_bad_request("$all items must be values or $elemMatch");
          conds.push_back(leaf(std::make_unique<eq_pred>(item)));
        }
      }
    } else if (op == "$elemMatch") {
      conds.push_back(leaf(compile_elem_match(arg, field)));
    } else if (op == "$not") {
      if (auto* r = arg.get_if<regex_value>()) {
        conds.push_back(negate(leaf(std::make_unique<regex_pred>(*r))));
      } else if (arg.is_object() && is_operator_object(arg.as_object(), field)) {
        conds.push_back(negate(compile_operators(arg.as_object(), field)));
      } else {
        throw_bad_request("$not needs a regular expression or an operator object");
      }
    } else {
      reject_operator(op);
    }
  }
  return conjunction(std::move(conds));
}

node_ptr compile_field(const std::string& path, const value& v) {
  if (auto* r = v.get_if<regex_value>())
    return std::make_unique<path_node>(path, std::make_unique<regex_pred>(*r));
  if (auto* o = v.get_if<object>(); o && is_operator_object(*o, path))
    return lower_to_path(compile_operators(*o, path), path);
  return std::make_unique<path_node>(path, std::make_unique<eq_pred>(v));
}

node_ptr compile_logical(const std::string& op, const value& arg) {
  if (!arg.is_array() || arg.as_array().empty())
    throw_bad_request(op + " must be a non-empty array");
  std::vector<node_ptr> kids;
  for (auto& item : arg.as_array()) {
    if (!item.is_object()) throw_bad_request(op + " entries must be objects");
    kids.push_back(compile_query(item.as_object()));
  }
  if (op == "$and") return make_and(std::move(kids));
  auto any = std::make_unique<or_node>();
  any->kids = std::move(kids);
  if (op == "$or") return any;
  return std::make_unique<not_node>(std::move(any));
}

node_ptr compile_query(const object& filter) {
  std::vector<node_ptr> kids;
  for (auto& [k, v] : filter) {
    if (starts_with_dollar(k)) {
      if (is_logical_operator(k))
        kids.push_back(compile_logical(k, v));
      else if (k != "$comment")
        reject_operator(k);
    } else {
      kids.push_back(compile_field(k, v));
    }
  }
  if (kids.empty()) return std::make_unique<constant_node>(true);
  return make_and(std::move(kids));
}

} // namespace

// ---- matcher ----

matcher::matcher() = default;

matcher matcher::compile(const object& filter) {
  matcher m;
  if (filter.empty()) return m;
  m.root_ = compile_query(filter);
  if (filter.size() == 1 && filter.front().first == "_id") {
    const value& v = filter.front().second;
    const value* literal = &v;
    if (auto* o = v.get_if<object>(); o && !o->empty() && starts_with_dollar(o->front().first))
      literal = o->size() == 1 && o->front().first == "$eq" ? &o->front().second : nullptr;
    // Regexes and arrays match more than one stored _id; leave those to the scan.
    if (literal && !literal->is<regex_value>() && !literal->is_array())
      m.id_eq_ = std::make_shared<const value>(*literal);
  }
  return m;
}

bool matcher::matches(const object& doc) const {
  return !root_ || root_->matches(doc);
}

bool matcher::matches_all() const {
  return !root_;
}

const value* matcher::id_equality() const {
  return id_eq_.get();
}

// ---- sort ----

sort_spec sort_spec::parse(const object& spec) {
  sort_spec s;
  for (auto& [field, dir] : spec) {
    if (field.empty()) throw_bad_request("sort: empty field name");
    int d = 0;
    if (dir.is_number()) {
      double x = dir.as_double();
      d = x == 1 ? 1 : x == -1 ? -1 : 0;
    }
    if (!d) throw_bad_request("sort: direction for field '" + field + "' must be 1 or -1");
    s.keys_.emplace_back(field, d);
  }
  return s;
}

namespace {

/// The value a document sorts by for one key. An empty array sorts below null.
struct sort_key {
  const value* v = &null_value;
  bool empty_array = false;
};

int compare_sort_keys(const sort_key& a, const sort_key& b) {
  if (a.empty_array || b.empty_array) {
    if (a.empty_array && b.empty_array) return 0;
    // Only MinKey sorts below [].
    if (a.empty_array) return b.v->is<min_key>() ? 1 : -1;
    return a.v->is<min_key>() ? -1 : 1;
  }
  return compare_values(*a.v, *b.v);
}

sort_key extract_sort_key(const object& doc, std::string_view path, int dir) {
  sort_key best;
  bool first = true;
  auto consider = [&](const sort_key& k) {
    if (first || compare_sort_keys(k, best) * dir < 0) best = k;
    first = false;
  };
  auto visit = [&](const value* v) {
    if (!v) {
      consider(sort_key{});
    } else if (auto* a = v->get_if<array>()) {
      if (a->empty()) consider(sort_key{&null_value, true});
      for (auto& e : *a)
        consider(sort_key{&e, false});
    } else {
      consider(sort_key{v, false});
    }
    return false;
  };
  walk_object(doc, path, visit);
  return best;
}

} // namespace

int sort_spec::compare(const object& a, const object& b) const {
  for (auto& [path, dir] : keys_) {
    int r = compare_sort_keys(extract_sort_key(a, path, dir), extract_sort_key(b, path, dir));
    if (r) return r * dir;
  }
  return 0;
}

// ---- projection ----

projection projection::compile(const object& spec) {
  projection p;
  std::optional<bool> inclusion;
  for (auto& [field, v] : spec) {
    if (field.empty() || starts_with_dollar(field))
      throw_bad_request("projection: invalid field '" + field + "'");
    bool include;
    if (auto* b = v.get_if<bool>())
      include = *b;
    else if (v.is_number() && (v.as_double() == 0 || v.as_double() == 1))
      include = v.as_double() == 1;
    else
      throw_bad_request("projection: value for field '" + field + "' must be 0, 1, true or false");
    if (field == "_id") {
      p.exclude_id_ = !include;
      if (include) p.fields_.push_back(field); // keeps {_id:1} from reading as "everything"
      continue;
    }
    if (inclusion && *inclusion != include)
      throw_bad_request("projection: cannot mix inclusion and exclusion (field '" + field + "')");
    inclusion = include;
    p.fields_.push_back(field);
  }
  p.inclusion_ = inclusion.value_or(!p.fields_.empty());
  if (!p.inclusion_) std::erase(p.fields_, std::string("_id"));
  // MongoDB rejects a path that is a prefix of another ("a" with "a.b").
  for (auto& x : p.fields_)
    for (auto& y : p.fields_)
      if (y.size() > x.size() && y.compare(0, x.size(), x) == 0 && y[x.size()] == '.')
        throw_bad_request("projection: path collision at '" + y + "'");
  return p;
}

namespace {

/// Applies the (relative) paths `paths` below one level; `keep` selects inclusion.
object project_object(const object& o, const std::vector<std::string_view>& paths, bool keep);

value project_value(const value& v, const std::vector<std::string_view>& paths, bool keep) {
  if (auto* o = v.get_if<object>()) return project_object(*o, paths, keep);
  auto* a = v.get_if<array>();
  array out;
  for (auto& e : *a) {
    if (e.is_object() || e.is_array())
      out.push_back(project_value(e, paths, keep));
    else if (!keep)
      out.push_back(e);
  }
  return out;
}

object project_object(const object& o, const std::vector<std::string_view>& paths, bool keep) {
  object out;
  std::vector<std::string_view> sub;
  for (auto& [k, v] : o) {
    bool whole = false;
    sub.clear();
    for (auto p : paths) {
      if (p == k) {
        whole = true;
      } else if (p.size() > k.size() && p.substr(0, k.size()) == k && p[k.size()] == '.') {
        sub.push_back(p.substr(k.size() + 1));
      }
    }
    if (whole) {
      if (keep) out.emplace_back(k, v);
    } else if (!sub.empty() && (v.is_object() || v.is_array())) {
      out.emplace_back(k, project_value(v, sub, keep));
    } else if (!keep) {
      out.emplace_back(k, v);
    }
  }
  return out;
}

} // namespace

object projection::apply(const object& doc) const {
  if (empty()) return doc;
  std::vector<std::string_view> paths(fields_.begin(), fields_.end());
  if (inclusion_ && !exclude_id_) paths.push_back("_id"); // kept by default
  object out = project_object(doc, paths, inclusion_);
  if (!inclusion_ && exclude_id_) erase_field(out, "_id");
  return out;
}

} // namespace rheo
