#include "net/security/acl.hpp"

#include "config/config.hpp"
#include "net/security/config_json.hpp"
#include "storage/document/query.hpp"

#include <cctype>

namespace rheo {

struct acl_predicate {
  enum class kind { path_prefix, path, method, and_, or_, not_ } k;
  std::string arg;
  std::vector<std::string> template_segments; // for path
  std::shared_ptr<const acl_predicate> a, b;
};

namespace {

std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/')
      ++i;
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.emplace_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

class predicate_parser {
public:
  explicit predicate_parser(const std::string& text) : s_(text) {}

  std::shared_ptr<const acl_predicate> parse() {
    auto p = parse_or();
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return p;
  }

private:
  [[noreturn]] void fail(const std::string& what) {
    throw config_error("acl predicate '" + s_ + "': " + what + " at offset " +
                       std::to_string(pos_));
  }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
  }
  bool keyword(std::string_view kw) {
    skip_ws();
    if (s_.compare(pos_, kw.size(), kw) != 0) return false;
    std::size_t end = pos_ + kw.size();
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '-'))
      return false;
    pos_ = end;
    return true;
  }
  using operand_parser = std::shared_ptr<const acl_predicate> (predicate_parser::*)();
  /// A left-associative chain of operands joined by keyword `op`.
  std::shared_ptr<const acl_predicate> parse_chain(std::string_view op, acl_predicate::kind k,
                                                   operand_parser operand) {
    auto left = (this->*operand)();
    while (keyword(op)) {
      auto n = std::make_shared<acl_predicate>();
      n->k = k;
      n->a = left;
      n->b = (this->*operand)();
      left = n;
    }
    return left;
  }
  std::shared_ptr<const acl_predicate> parse_or() {
    return parse_chain("or", acl_predicate::kind::or_, &predicate_parser::parse_and);
  }
  std::shared_ptr<const acl_predicate> parse_and() {
    return parse_chain("and", acl_predicate::kind::and_, &predicate_parser::parse_unary);
  }
  std::shared_ptr<const acl_predicate> parse_unary() {
    skip_ws();
    if (keyword("not")) {
      auto n = std::make_shared<acl_predicate>();
      n->k = acl_predicate::kind::not_;
      n->a = parse_unary();
      return n;
    }
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      auto inner = parse_or();
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ')') fail("expected ')'");
      ++pos_;
      return inner;
    }
    std::size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-'))
      ++pos_;
    std::string name = s_.substr(start, pos_ - start);
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != '(') fail("expected '(' after '" + name + "'");
    ++pos_;
    skip_ws();
    std::string arg;
    if (pos_ < s_.size() && (s_[pos_] == '\'' || s_[pos_] == '"')) {
      char q = s_[pos_++];
      std::size_t end = s_.find(q, pos_);
      if (end == std::string::npos) fail("unterminated string");
      arg = s_.substr(pos_, end - pos_);
      pos_ = end + 1;
    } else {
      std::size_t a = pos_;
      while (pos_ < s_.size() && s_[pos_] != ')')
        ++pos_;
      arg = s_.substr(a, pos_ - a);
      while (!arg.empty() && std::isspace(static_cast<unsigned char>(arg.back())))
        arg.pop_back();
    }
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != ')') fail("expected ')'");
    ++pos_;
    auto n = std::make_shared<acl_predicate>();
    n->arg = arg;
    if (name == "path-prefix") {
      n->k = acl_predicate::kind::path_prefix;
      n->template_segments = split_path(arg);
    } else if (name == "path" || name == "path-template") {
      n->k = acl_predicate::kind::path;
      n->template_segments = split_path(arg);
    } else if (name == "method") {
      n->k = acl_predicate::kind::method;
      for (auto& c : n->arg)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else {
      fail("unknown predicate '" + name + "' (use path-prefix, path, method, and, or, not)");
    }
    return n;
  }

  std::string s_;
  std::size_t pos_ = 0;
};

bool segment_matches(const std::string& tmpl, const std::string& seg) {
  return (tmpl.size() >= 2 && tmpl.front() == '{' && tmpl.back() == '}') || tmpl == seg;
}

} // namespace

std::shared_ptr<const acl_predicate> parse_acl_predicate(const std::string& text) {
  return predicate_parser(text).parse();
}

bool evaluate_acl_predicate(const acl_predicate& p, std::string_view method,
                            std::string_view path) {
  switch (p.k) {
  case acl_predicate::kind::and_:
    return evaluate_acl_predicate(*p.a, method, path) && evaluate_acl_predicate(*p.b, method, path);
  case acl_predicate::kind::or_:
    return evaluate_acl_predicate(*p.a, method, path) || evaluate_acl_predicate(*p.b, method, path);
  case acl_predicate::kind::not_:
    return !evaluate_acl_predicate(*p.a, method, path);
  case acl_predicate::kind::method:
    return method == p.arg;
  case acl_predicate::kind::path_prefix:
  case acl_predicate::kind::path: {
    auto segs = split_path(path);
    auto& t = p.template_segments;
    if (segs.size() < t.size()) return false;
    if (p.k == acl_predicate::kind::path && segs.size() != t.size()) return false;
    for (std::size_t i = 0; i < t.size(); ++i)
      if (!segment_matches(t[i], segs[i])) return false;
    return true;
  }
  }
  return false;
}

std::vector<acl_rule> parse_acl(const std::string& text) {
  std::vector<acl_rule> acl;
  auto rules = parse_config_array(text, "acl");
  for (std::size_t i = 0; i < rules.size(); ++i) {
    std::string where = "config key 'acl'[" + std::to_string(i) + "]";
    if (!rules[i].is_object()) throw config_error(where + " must be an object");
    auto& r = rules[i].as_object();
    acl_rule rule;
    rule.roles = string_list(r, "roles", where);
    if (rule.roles.empty()) throw config_error(where + ": \"roles\" must name at least one role");
    rule.predicate_text = string_field(r, "predicate", where);
    rule.predicate = parse_acl_predicate(rule.predicate_text);
    for (auto& [k, v] : r) {
      if (k == "roles" || k == "predicate" || k == "priority") continue;
      if (k != "readFilter" && k != "mergeRequest" && k != "projectResponse")
        throw config_error(where + ": unknown option \"" + k + "\"");
      if (!v.is_object()) throw config_error(where + ": \"" + k + "\" must be an object");
      try {
        if (k == "readFilter") {
          matcher::compile(v.as_object()); // checked now, resolved per request
          rule.read_filter = v.as_object();
        } else if (k == "mergeRequest") {
          rule.merge_request = v.as_object();
        } else {
          projection::compile(v.as_object());
          rule.project_response = v.as_object();
        }
      } catch (const api_error& e) {
        throw config_error(where + ": \"" + k + "\": " + e.what());
      }
    }
    acl.push_back(std::move(rule));
  }
  return acl;
}

const acl_rule* first_granting_rule(const std::vector<acl_rule>& acl, std::string_view method,
                                    std::string_view path, const std::optional<principal>& user) {
  for (auto& rule : acl) {
    bool role_ok = false;
    for (auto& r : rule.roles) {
      if (r == "$unauthenticated" && !user)
        role_ok = true;
      else if (r == "$authenticated" && user)
        role_ok = true;
      else if (user)
        for (auto& ur : user->roles)
          if (ur == r) role_ok = true;
      if (role_ok) break;
    }
    if (role_ok && evaluate_acl_predicate(*rule.predicate, method, path)) return &rule;
  }
  return nullptr;
}

value resolve_acl_variables(const value& v, const std::optional<principal>& user) {
  if (auto* s = v.get_if<std::string>()) {
    if (*s == "@now") return date_time::now();
    if (*s == "@user") return user ? value(user->id) : value();
    if (s->rfind("@user.", 0) == 0) {
      if (!user) return value();
      const value* f = find_path(user->document, s->substr(6));
      return f ? *f : value();
    }
    return v;
  }
  if (auto* o = v.get_if<object>()) {
    object out;
    out.reserve(o->size());
    for (auto& [k, e] : *o)
      out.emplace_back(k, resolve_acl_variables(e, user));
    return out;
  }
  if (auto* a = v.get_if<array>()) {
    array out;
    out.reserve(a->size());
    for (auto& e : *a)
      out.push_back(resolve_acl_variables(e, user));
    return out;
  }
  return v;
}

const char* default_acl_json() {
  return R"acl([
  {"roles": ["$unauthenticated", "$authenticated"],
   "predicate": "path-prefix('/messages') and (method(GET) or method(OPTIONS))"},
  {"roles": ["$unauthenticated", "$authenticated"],
   "predicate": "path('/messages') and method(POST)",
   "mergeRequest": {"timestamp": "@now"}},
  {"roles": ["admin"], "predicate": "path-prefix('/')"}
])acl";
}

} // namespace rheo
