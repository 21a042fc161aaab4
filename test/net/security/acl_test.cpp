// The ACL (net/security/acl.cpp) on its own: the predicate language (path-prefix, path with
// {variables}, method, and/or/not with their precedence, parentheses) and its syntax errors;
// the rules (roles, first granting rule in order, options checked when read); the @user and
// @now variables; the rules a server uses when its configuration names none.
#include <boost/test/unit_test.hpp>

#include "config/config.hpp"
#include "net/security/acl.hpp"
#include "storage/document/json.hpp"

#include <string>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(acl_test)

namespace {

bool allows(const std::string& predicate, std::string_view method, std::string_view path) {
  return evaluate_acl_predicate(*parse_acl_predicate(predicate), method, path);
}

/// The message of the config_error that parsing `text` throws ("" when none).
std::string predicate_error(const std::string& text) {
  try {
    parse_acl_predicate(text);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

std::string acl_error(const std::string& json) {
  try {
    parse_acl(json);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

std::optional<principal> user(const std::string& id, std::vector<std::string> roles) {
  return make_principal(id, roles, parse_json(R"j({"team": "red", "level": 3})j").as_object());
}

/// The index of the rule granting `method path` to `who`, -1 when none does.
int granting(const std::vector<acl_rule>& acl, std::string_view method, std::string_view path,
             const std::optional<principal>& who) {
  const acl_rule* r = first_granting_rule(acl, method, path, who);
  return r ? static_cast<int>(r - acl.data()) : -1;
}

} // namespace

BOOST_AUTO_TEST_CASE(path_prefix_matches_whole_segments) {
  BOOST_TEST(allows("path-prefix('/messages')", "GET", "/messages"));
  BOOST_TEST(allows("path-prefix('/messages')", "GET", "/messages/"));
  BOOST_TEST(allows("path-prefix('/messages')", "GET", "/messages/abc/_streams/all"));
  BOOST_TEST(!allows("path-prefix('/messages')", "GET", "/messagesX"));
  BOOST_TEST(!allows("path-prefix('/messages')", "GET", "/"));
  BOOST_TEST(!allows("path-prefix('/a/b')", "GET", "/a"));
  BOOST_TEST(allows("path-prefix('/')", "DELETE", "/anything/at/all"));
  // Repeated slashes do not make other segments.
  BOOST_TEST(allows("path-prefix('/a/b')", "GET", "//a///b/c"));
}

BOOST_AUTO_TEST_CASE(path_matches_exactly_with_variables_for_one_segment) {
  BOOST_TEST(allows("path('/messages')", "POST", "/messages"));
  BOOST_TEST(!allows("path('/messages')", "POST", "/messages/1"));
  BOOST_TEST(allows("path('/users/{id}/posts')", "GET", "/users/ann/posts"));
  BOOST_TEST(!allows("path('/users/{id}/posts')", "GET", "/users/posts"));
  BOOST_TEST(!allows("path('/users/{id}/posts')", "GET", "/users/ann/bob/posts"));
  BOOST_TEST(!allows("path('/users/{id}/posts')", "GET", "/users/ann/comments"));
  BOOST_TEST(allows("path-template('/c/{doc}')", "GET", "/c/x")); // the long name
  // A variable in path-prefix matches one segment as well.
  BOOST_TEST(allows("path-prefix('/c/{doc}')", "GET", "/c/x/y"));
  BOOST_TEST(!allows("path-prefix('/c/{doc}')", "GET", "/c"));
}

BOOST_AUTO_TEST_CASE(method_is_case_insensitive_in_the_rule_exact_in_the_request) {
  BOOST_TEST(allows("method(GET)", "GET", "/"));
  BOOST_TEST(allows("method(get)", "GET", "/"));
  BOOST_TEST(allows("method('Post')", "POST", "/"));
  BOOST_TEST(!allows("method(GET)", "POST", "/"));
  BOOST_TEST(!allows("method(GET)", "HEAD", "/"));
}

BOOST_AUTO_TEST_CASE(and_binds_tighter_than_or_and_not_tighter_than_both) {
  // a or b and c == a or (b and c)
  const std::string p = "method(DELETE) or method(GET) and path-prefix('/x')";
  BOOST_TEST(allows(p, "DELETE", "/y"));
  BOOST_TEST(allows(p, "GET", "/x/1"));
  BOOST_TEST(!allows(p, "GET", "/y"));
  // Parentheses change it.
  const std::string q = "(method(DELETE) or method(GET)) and path-prefix('/x')";
  BOOST_TEST(!allows(q, "DELETE", "/y"));
  BOOST_TEST(allows(q, "DELETE", "/x"));
  // not a and b == (not a) and b
  const std::string n = "not method(GET) and path-prefix('/x')";
  BOOST_TEST(allows(n, "POST", "/x"));
  BOOST_TEST(!allows(n, "GET", "/x"));
  BOOST_TEST(!allows(n, "POST", "/y"));
  BOOST_TEST(allows("not not method(GET)", "GET", "/"));
  // Chains associate: a and b and c.
  BOOST_TEST(allows("path-prefix('/a') and path-prefix('/a/b') and method(PUT)", "PUT", "/a/b"));
  BOOST_TEST(!allows("path-prefix('/a') and path-prefix('/a/b') and method(PUT)", "PUT", "/a/c"));
}

BOOST_AUTO_TEST_CASE(keywords_need_a_word_boundary) {
  // "order" starts with "or", "android" with "and": not operators but unknown predicates.
  BOOST_TEST(predicate_error("method(GET) order(x)").find("unexpected") != std::string::npos);
  BOOST_TEST(predicate_error("notpath('/a')").find("unknown predicate 'notpath'") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(syntax_errors_name_the_problem_and_its_offset) {
  BOOST_TEST(predicate_error("path-prefix('/a'") == "acl predicate 'path-prefix('/a'': "
                                                    "expected ')' at offset 16");
  BOOST_TEST(predicate_error("path-prefix('/a").find("unterminated string") != std::string::npos);
  BOOST_TEST(predicate_error("path-prefix '/a'").find("expected '(' after 'path-prefix'") !=
             std::string::npos);
  BOOST_TEST(predicate_error("host('x')").find("unknown predicate 'host'") != std::string::npos);
  BOOST_TEST(predicate_error("(method(GET)").find("expected ')'") != std::string::npos);
  BOOST_TEST(predicate_error("method(GET) method(POST)").find("unexpected 'm'") !=
             std::string::npos);
  BOOST_TEST(predicate_error("method(GET) and").find("expected '(' after ''") != std::string::npos);
  BOOST_TEST(predicate_error("  method(GET)  ").empty()); // whitespace around is fine
}

BOOST_AUTO_TEST_CASE(the_first_rule_that_grants_decides_by_role_and_predicate) {
  auto acl = parse_acl(R"j([
    {"roles": ["$unauthenticated"], "predicate": "method(GET) and path-prefix('/pub')"},
    {"roles": ["$authenticated"], "predicate": "path-prefix('/pub')",
     "readFilter": {"owner": "@user"}},
    {"roles": ["editor", "admin"], "predicate": "path-prefix('/docs')"},
    {"roles": ["admin"], "predicate": "path-prefix('/')"}
  ])j");
  BOOST_REQUIRE(acl.size() == 4u);
  BOOST_TEST(acl[1].read_filter.has_value());
  BOOST_TEST(!acl[0].read_filter.has_value());
  const std::optional<principal> nobody;
  BOOST_TEST(granting(acl, "GET", "/pub/x", nobody) == 0);
  BOOST_TEST(granting(acl, "POST", "/pub/x", nobody) == -1);
  BOOST_TEST(granting(acl, "GET", "/docs", nobody) == -1);
  // A user is not $unauthenticated: rule 1 (with its readFilter), not rule 0.
  BOOST_TEST(granting(acl, "GET", "/pub/x", user("ann", {})) == 1);
  BOOST_TEST(granting(acl, "GET", "/docs/1", user("ann", {})) == -1);
  BOOST_TEST(granting(acl, "GET", "/docs/1", user("ed", {"editor"})) == 2);
  BOOST_TEST(granting(acl, "DELETE", "/other", user("ed", {"editor"})) == -1);
  BOOST_TEST(granting(acl, "DELETE", "/other", user("root", {"user", "admin"})) == 3);
  // Order decides, not how much a rule allows.
  BOOST_TEST(granting(acl, "GET", "/docs/1", user("root", {"admin"})) == 2);
}

BOOST_AUTO_TEST_CASE(rules_are_checked_when_read) {
  BOOST_TEST(acl_error(R"j({"roles": ["a"]})j").find("array") != std::string::npos);
  BOOST_TEST(acl_error(R"j([1])j") == "config key 'acl'[0] must be an object");
  BOOST_TEST(acl_error(R"j([{"roles": [], "predicate": "method(GET)"}])j")
                 .find("must name at least one role") != std::string::npos);
  BOOST_TEST(acl_error(R"j([{"roles": ["a"]}])j").find("predicate") != std::string::npos);
  BOOST_TEST(acl_error(R"j([{"roles": ["a"], "predicate": "method(GET"}])j").find("expected ')'") !=
             std::string::npos);
  BOOST_TEST(acl_error(R"j([{"roles": ["a"], "predicate": "method(GET)", "writeFilter": {}}])j") ==
             "config key 'acl'[0]: unknown option \"writeFilter\"");
  BOOST_TEST(acl_error(R"j([{"roles": ["a"], "predicate": "method(GET)", "readFilter": 1}])j")
                 .find("must be an object") != std::string::npos);
  // A readFilter is compiled (checked) now, though resolved per request.
  BOOST_TEST(acl_error(R"j([{"roles": ["a"], "predicate": "method(GET)",
                            "readFilter": {"a": {"$bogus": 1}}}])j")
                 .find("config key 'acl'[0]: \"readFilter\"") != std::string::npos);
  BOOST_TEST(acl_error(R"j([{"roles": ["a"], "predicate": "method(GET)",
                            "projectResponse": {"a": 1, "b": 0}}])j")
                 .find("\"projectResponse\"") != std::string::npos);
  // "priority" is accepted (and ignored: the order of the array decides).
  BOOST_TEST(
      acl_error(R"j([{"roles": ["a"], "predicate": "method(GET)", "priority": 5}])j").empty());
  // The second rule is named by its index.
  BOOST_TEST(acl_error(R"j([{"roles": ["a"], "predicate": "method(GET)"}, 2])j") ==
             "config key 'acl'[1] must be an object");
}

BOOST_AUTO_TEST_CASE(variables_resolve_to_the_user_and_the_time) {
  auto ann = user("ann", {"user"});
  value v = parse_json(R"j({"owner": "@user", "team": "@user.team", "n": "@user.level",
                           "none": "@user.missing", "roles": "@user.roles",
                           "at": "@now", "list": ["@user", "x"], "plain": "@users"})j");
  auto before = date_time::now();
  auto r = resolve_acl_variables(v, ann).as_object();
  auto after = date_time::now();
  BOOST_TEST(find_field(r, "owner")->as_string() == "ann");
  BOOST_TEST(find_field(r, "team")->as_string() == "red");
  BOOST_TEST(find_field(r, "n")->as_int64() == 3);
  BOOST_TEST(find_field(r, "none")->is_null());
  BOOST_TEST(find_field(r, "roles")->as_array().size() == 1u);
  BOOST_TEST(find_field(r, "list")->as_array()[0].as_string() == "ann");
  BOOST_TEST(find_field(r, "list")->as_array()[1].as_string() == "x");
  BOOST_TEST(find_field(r, "plain")->as_string() == "@users"); // not a variable
  auto at = find_field(r, "at")->get<date_time>();
  BOOST_TEST(at.millis >= before.millis);
  BOOST_TEST(at.millis <= after.millis);
  // Without a user, @user and its fields are null.
  auto anon = resolve_acl_variables(v, std::nullopt).as_object();
  BOOST_TEST(find_field(anon, "owner")->is_null());
  BOOST_TEST(find_field(anon, "team")->is_null());
}

BOOST_AUTO_TEST_CASE(the_default_rules_open_the_chat_and_nothing_else) {
  auto acl = parse_acl(default_acl_json());
  const std::optional<principal> nobody;
  BOOST_TEST(granting(acl, "GET", "/messages", nobody) >= 0);
  BOOST_TEST(granting(acl, "GET", "/messages/_streams/all", nobody) >= 0);
  BOOST_TEST(granting(acl, "OPTIONS", "/messages", nobody) >= 0);
  const int post = granting(acl, "POST", "/messages", nobody);
  BOOST_REQUIRE(post >= 0);
  // The server stamps the timestamp of a posted message.
  BOOST_REQUIRE(acl[post].merge_request.has_value());
  BOOST_TEST(find_field(*acl[post].merge_request, "timestamp")->as_string() == "@now");
  BOOST_TEST(granting(acl, "POST", "/messages/x", nobody) == -1);
  BOOST_TEST(granting(acl, "PUT", "/messages/1", nobody) == -1);
  BOOST_TEST(granting(acl, "DELETE", "/messages/1", user("ann", {"user"})) == -1);
  BOOST_TEST(granting(acl, "GET", "/other", nobody) == -1);
  BOOST_TEST(granting(acl, "DELETE", "/other", user("root", {"admin"})) >= 0);
}

BOOST_AUTO_TEST_SUITE_END()
