#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "storage/document/query.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(query_test)

namespace {

using O = object;
using A = array;

value re(std::string pattern, std::string options = "") {
  return regex_value{std::move(pattern), std::move(options)};
}

struct match_case {
  O doc;
  O filter;
  bool expected;
};

/// Runs a table of (document, filter, expected) cases, naming the failing row.
void check_table(const std::vector<match_case>& cases) {
  for (std::size_t i = 0; i < cases.size(); ++i) {
    BOOST_TEST_CONTEXT("row " << i) {
      auto m = matcher::compile(cases[i].filter);
      BOOST_TEST(m.matches(cases[i].doc) == cases[i].expected);
    }
  }
}

/// The message of the api_error(400) that compiling `filter` raises, or "" when none.
std::string compile_error(const O& filter) {
  try {
    matcher::compile(filter);
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

// ---- equality ----

BOOST_AUTO_TEST_CASE(empty_filter_matches_everything) {
  matcher m = matcher::compile(O{});
  BOOST_TEST(m.matches_all());
  BOOST_TEST(m.matches(O{{"a", 1}}));
  BOOST_TEST(matcher().matches(O{}));
  BOOST_TEST(!matcher::compile(O{{"a", 1}}).matches_all());
}

BOOST_AUTO_TEST_CASE(implicit_equality_compares_scalars_with_number_semantics) {
  check_table({
      {O{{"a", 1}}, O{{"a", 1}}, true},
      {O{{"a", 1}}, O{{"a", 1.0}}, true},
      {O{{"a", std::int64_t{1}}}, O{{"a", 1}}, true},
      {O{{"a", 2}}, O{{"a", 1}}, false},
      {O{{"a", "1"}}, O{{"a", 1}}, false},
      {O{{"a", "x"}}, O{{"a", "x"}}, true},
      {O{{"a", true}}, O{{"a", 1}}, false},
      {O{{"b", 1}}, O{{"a", 1}}, false},
      {O{{"a", 1}, {"b", 2}}, O{{"a", 1}, {"b", 2}}, true},
      {O{{"a", 1}, {"b", 3}}, O{{"a", 1}, {"b", 2}}, false},
  });
}

BOOST_AUTO_TEST_CASE(equality_matches_array_elements) {
  check_table({
      {O{{"a", A{1, 2}}}, O{{"a", 1}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", 2}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", 3}}, false},
      {O{{"a", A{}}}, O{{"a", 1}}, false},
      {O{{"a", A{"x", A{1, 2}}}}, O{{"a", A{1, 2}}}, true}, // nested array element
      {O{{"a", A{A{1}}}}, O{{"a", 1}}, false},              // only one level is expanded
  });
}

BOOST_AUTO_TEST_CASE(equality_with_an_array_compares_the_whole_array) {
  check_table({
      {O{{"a", A{1, 2}}}, O{{"a", A{1, 2}}}, true},
      {O{{"a", A{2, 1}}}, O{{"a", A{1, 2}}}, false},
      {O{{"a", A{1, 2, 3}}}, O{{"a", A{1, 2}}}, false},
      {O{{"a", A{}}}, O{{"a", A{}}}, true},
      {O{{"a", 1}}, O{{"a", A{1}}}, false},
  });
}

BOOST_AUTO_TEST_CASE(equality_with_a_document_is_exact_and_ordered) {
  check_table({
      {O{{"a", O{{"b", 1}, {"c", 2}}}}, O{{"a", O{{"b", 1}, {"c", 2}}}}, true},
      {O{{"a", O{{"b", 1}, {"c", 2}}}}, O{{"a", O{{"c", 2}, {"b", 1}}}}, false},
      {O{{"a", O{{"b", 1}, {"c", 2}}}}, O{{"a", O{{"b", 1}}}}, false},
      {O{{"a", O{}}}, O{{"a", O{}}}, true},
      {O{{"a", A{O{{"b", 1}}, O{{"b", 2}}}}}, O{{"a", O{{"b", 2}}}}, true},
  });
}

BOOST_AUTO_TEST_CASE(null_equality_matches_missing_fields) {
  check_table({
      {O{{"a", value{}}}, O{{"a", value{}}}, true},
      {O{{"b", 1}}, O{{"a", value{}}}, true},
      {O{{"a", 0}}, O{{"a", value{}}}, false},
      {O{{"a", A{1, value{}}}}, O{{"a", value{}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", value{}}}, false},
      {O{{"a", O{{"c", 1}}}}, O{{"a.b", value{}}}, true},
      {O{{"a", 5}}, O{{"a.b", value{}}}, true},
      {O{{"a", A{O{{"b", 1}}, O{{"c", 2}}}}}, O{{"a.b", value{}}}, true},
      {O{{"a", A{O{{"b", 1}}, O{{"b", 2}}}}}, O{{"a.b", value{}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$eq", value{}}}}}, false},
      {O{{"b", 1}}, O{{"a", O{{"$eq", value{}}}}}, true},
  });
}

BOOST_AUTO_TEST_CASE(dotted_paths_traverse_documents_and_arrays) {
  O nested{{"a", O{{"b", O{{"c", 5}}}}}};
  O docs{{"a", A{O{{"b", 1}}, O{{"b", A{2, 3}}}}}};
  check_table({
      {nested, O{{"a.b.c", 5}}, true},
      {nested, O{{"a.b.c", 6}}, false},
      {nested, O{{"a.b", O{{"c", 5}}}}, true},
      {nested, O{{"a.x.c", 5}}, false},
      {docs, O{{"a.b", 1}}, true},
      {docs, O{{"a.b", 3}}, true},
      {docs, O{{"a.b", 4}}, false},
      {docs, O{{"a.b", A{2, 3}}}, true},
      {O{{"a", A{1, 2, 3}}}, O{{"a.1", 2}}, true},
      {O{{"a", A{1, 2, 3}}}, O{{"a.1", 1}}, false},
      {O{{"a", A{1, 2, 3}}}, O{{"a.5", value{}}}, true},
      {docs, O{{"a.1.b", 2}}, true},
      {docs, O{{"a.0.b", 2}}, false},
      {O{{"a", A{A{1, 2}}}}, O{{"a.0.1", 2}}, true},
      {O{{"a", O{{"0", "x"}}}}, O{{"a.0", "x"}}, true},
      {O{{"a", 5}}, O{{"a.b", 5}}, false},
  });
}

// ---- comparison ----

BOOST_AUTO_TEST_CASE(eq_and_ne_negate_each_other_over_all_elements) {
  check_table({
      {O{{"a", 5}}, O{{"a", O{{"$eq", 5}}}}, true},
      {O{{"a", A{4, 5}}}, O{{"a", O{{"$eq", 5}}}}, true},
      {O{{"a", A{4, 5}}}, O{{"a", O{{"$eq", A{4, 5}}}}}, true},
      {O{{"a", 5}}, O{{"a", O{{"$ne", 5}}}}, false},
      {O{{"a", 4}}, O{{"a", O{{"$ne", 5}}}}, true},
      {O{{"a", A{4, 5}}}, O{{"a", O{{"$ne", 5}}}}, false},
      {O{{"a", A{4, 6}}}, O{{"a", O{{"$ne", 5}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$ne", 5}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$ne", value{}}}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$ne", value{}}}}}, true},
      {O{{"a", A{O{{"b", 1}}, O{{"b", 2}}}}}, O{{"a.b", O{{"$ne", 2}}}}, false},
      {O{{"a", re("x")}}, O{{"a", O{{"$eq", re("x")}}}}, true}, // $eq compares regexes
      {O{{"a", "x"}}, O{{"a", O{{"$eq", re("x")}}}}, false},
  });
}

BOOST_AUTO_TEST_CASE(comparisons_stay_within_one_type_bracket) {
  check_table({
      {O{{"a", 5}}, O{{"a", O{{"$gt", 4}}}}, true},
      {O{{"a", 5}}, O{{"a", O{{"$gt", 5}}}}, false},
      {O{{"a", 5}}, O{{"a", O{{"$gte", 5}}}}, true},
      {O{{"a", 5}}, O{{"a", O{{"$lt", 5.5}}}}, true},
      {O{{"a", 5}}, O{{"a", O{{"$lte", std::int64_t{4}}}}}, false},
      {O{{"a", "x"}}, O{{"a", O{{"$gt", 1}}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$lt", "x"}}}}, false},
      {O{{"a", "b"}}, O{{"a", O{{"$gt", "a"}}}}, true},
      {O{{"a", "B"}}, O{{"a", O{{"$gt", "a"}}}}, false},
      {O{{"a", value{}}}, O{{"a", O{{"$gt", 0}}}}, false},
      {O{{"b", 1}}, O{{"a", O{{"$lt", 10}}}}, false},
      {O{{"a", true}}, O{{"a", O{{"$gt", 0}}}}, false},
      {O{{"a", date_time{1000}}}, O{{"a", O{{"$gt", date_time{999}}}}}, true},
      {O{{"a", date_time{1000}}}, O{{"a", O{{"$gt", 999}}}}, false},
      {O{{"a", A{1, 10}}}, O{{"a", O{{"$gt", 5}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$gt", 5}}}}, false},
      {O{{"a", A{1, 10}}}, O{{"a", O{{"$gt", 2}, {"$lt", 5}}}}, true}, // each op separately
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$gt", A{1}}}}}, true},           // array vs array
      {O{{"a", O{{"b", 2}}}}, O{{"a", O{{"$gt", O{{"b", 1}}}}}}, true},
  });
}

BOOST_AUTO_TEST_CASE(comparisons_with_null_treat_missing_as_null) {
  check_table({
      {O{{"b", 1}}, O{{"a", O{{"$gte", value{}}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$lte", value{}}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$gt", value{}}}}}, false},
      {O{{"a", value{}}}, O{{"a", O{{"$lt", value{}}}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$gte", value{}}}}}, false},
  });
}

BOOST_AUTO_TEST_CASE(min_key_and_max_key_compare_across_types) {
  check_table({
      {O{{"a", "x"}}, O{{"a", O{{"$gt", min_key{}}}}}, true},
      {O{{"a", 5}}, O{{"a", O{{"$lt", max_key{}}}}}, true},
      {O{{"a", max_key{}}}, O{{"a", O{{"$lt", max_key{}}}}}, false},
  });
}

BOOST_AUTO_TEST_CASE(in_and_nin_test_membership_over_all_elements) {
  check_table({
      {O{{"a", 2}}, O{{"a", O{{"$in", A{1, 2}}}}}, true},
      {O{{"a", 3}}, O{{"a", O{{"$in", A{1, 2}}}}}, false},
      {O{{"a", A{3, 2}}}, O{{"a", O{{"$in", A{1, 2}}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$in", A{A{1, 2}}}}}}, true},
      {O{{"a", 1}}, O{{"a", O{{"$in", A{}}}}}, false},
      {O{{"b", 1}}, O{{"a", O{{"$in", A{value{}, 5}}}}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$in", A{re("^a"), 5}}}}}, true},
      {O{{"a", "xbc"}}, O{{"a", O{{"$in", A{re("^a"), 5}}}}}, false},
      {O{{"a", 3}}, O{{"a", O{{"$nin", A{1, 2}}}}}, true},
      {O{{"a", 2}}, O{{"a", O{{"$nin", A{1, 2}}}}}, false},
      {O{{"a", A{3, 2}}}, O{{"a", O{{"$nin", A{1, 2}}}}}, false},
      {O{{"b", 1}}, O{{"a", O{{"$nin", A{1, 2}}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$nin", A{value{}}}}}}, false},
      {O{{"a", "abc"}}, O{{"a", O{{"$nin", A{re("b")}}}}}, false},
  });
}

// ---- logical ----

BOOST_AUTO_TEST_CASE(and_or_nor_combine_subqueries) {
  O d{{"a", 1}, {"b", 2}};
  check_table({
      {d, O{{"$and", A{O{{"a", 1}}, O{{"b", 2}}}}}, true},
      {d, O{{"$and", A{O{{"a", 1}}, O{{"b", 3}}}}}, false},
      {d, O{{"$or", A{O{{"a", 5}}, O{{"b", 2}}}}}, true},
      {d, O{{"$or", A{O{{"a", 5}}, O{{"b", 5}}}}}, false},
      {d, O{{"$nor", A{O{{"a", 5}}, O{{"b", 5}}}}}, true},
      {d, O{{"$nor", A{O{{"a", 1}}, O{{"b", 5}}}}}, false},
      {d, O{{"a", 1}, {"$or", A{O{{"b", 5}}, O{{"c", value{}}}}}}, true},
      {d, O{{"$and", A{O{}}}}, true},
      {d, O{{"$or", A{O{{"$and", A{O{{"a", 1}}, O{{"b", 2}}}}}}}}, true},
      {d, O{{"$comment", "ignored"}, {"a", 1}}, true},
  });
}

BOOST_AUTO_TEST_CASE(logical_operators_need_non_empty_arrays_of_objects) {
  BOOST_TEST(contains(compile_error(O{{"$and", A{}}}), "$and"));
  BOOST_TEST(contains(compile_error(O{{"$or", O{{"a", 1}}}}), "$or"));
  BOOST_TEST(contains(compile_error(O{{"$nor", A{1}}}), "$nor"));
  BOOST_TEST(contains(compile_error(O{{"$or", 5}}), "$or"));
}

BOOST_AUTO_TEST_CASE(not_negates_operator_objects_and_regexes) {
  check_table({
      {O{{"a", 5}}, O{{"a", O{{"$not", O{{"$gt", 3}}}}}}, false},
      {O{{"a", 2}}, O{{"a", O{{"$not", O{{"$gt", 3}}}}}}, true},
      {O{{"a", "x"}}, O{{"a", O{{"$not", O{{"$gt", 3}}}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$not", O{{"$gt", 3}}}}}}, true},
      {O{{"a", A{1, 5}}}, O{{"a", O{{"$not", O{{"$gt", 3}}}}}}, false},
      {O{{"a", 4}}, O{{"a", O{{"$not", O{{"$gt", 3}, {"$lt", 5}}}}}}, false},
      {O{{"a", 6}}, O{{"a", O{{"$not", O{{"$gt", 3}, {"$lt", 5}}}}}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$not", re("^a")}}}}, false},
      {O{{"a", "xbc"}}, O{{"a", O{{"$not", re("^a")}}}}, true},
      {O{{"a", 1}}, O{{"a", O{{"$not", O{{"$ne", 1}}}}}}, true},
  });
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$not", 5}}}}), "$not"));
}

// ---- element ----

BOOST_AUTO_TEST_CASE(exists_tests_presence_on_any_branch) {
  check_table({
      {O{{"a", value{}}}, O{{"a", O{{"$exists", true}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$exists", true}}}}, false},
      {O{{"b", 1}}, O{{"a", O{{"$exists", false}}}}, true},
      {O{{"a", 0}}, O{{"a", O{{"$exists", false}}}}, false},
      {O{{"a", 0}}, O{{"a", O{{"$exists", 1}}}}, true},
      {O{{"a", 0}}, O{{"a", O{{"$exists", 0}}}}, false},
      {O{{"a", A{O{{"b", 1}}, O{{"c", 1}}}}}, O{{"a.b", O{{"$exists", true}}}}, true},
      {O{{"a", A{O{{"b", 1}}, O{{"c", 1}}}}}, O{{"a.b", O{{"$exists", false}}}}, false},
      {O{{"a", A{O{{"c", 1}}}}}, O{{"a.b", O{{"$exists", false}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a.1", O{{"$exists", true}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a.2", O{{"$exists", true}}}}, false},
      {O{{"a", A{}}}, O{{"a", O{{"$exists", true}}}}, true},
  });
}

BOOST_AUTO_TEST_CASE(type_matches_codes_aliases_and_lists) {
  check_table({
      {O{{"a", 1.5}}, O{{"a", O{{"$type", "double"}}}}, true},
      {O{{"a", 1.5}}, O{{"a", O{{"$type", 1}}}}, true},
      {O{{"a", 1}}, O{{"a", O{{"$type", "double"}}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$type", "int"}}}}, true},
      {O{{"a", 1}}, O{{"a", O{{"$type", 16}}}}, true},
      {O{{"a", std::int64_t{1}}}, O{{"a", O{{"$type", "long"}}}}, true},
      {O{{"a", std::int64_t{1}}}, O{{"a", O{{"$type", 18.0}}}}, true},
      {O{{"a", std::int64_t{1}}}, O{{"a", O{{"$type", "number"}}}}, true},
      {O{{"a", "1"}}, O{{"a", O{{"$type", "number"}}}}, false},
      {O{{"a", "s"}}, O{{"a", O{{"$type", "string"}}}}, true},
      {O{{"a", O{}}}, O{{"a", O{{"$type", "object"}}}}, true},
      {O{{"a", A{}}}, O{{"a", O{{"$type", "array"}}}}, true},
      {O{{"a", A{1}}}, O{{"a", O{{"$type", 4}}}}, true},
      {O{{"a", A{1, "x"}}}, O{{"a", O{{"$type", "string"}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$type", "string"}}}}, false},
      {O{{"a", binary_value{0, "xy"}}}, O{{"a", O{{"$type", "binData"}}}}, true},
      {O{{"a", object_id{}}}, O{{"a", O{{"$type", "objectId"}}}}, true},
      {O{{"a", false}}, O{{"a", O{{"$type", "bool"}}}}, true},
      {O{{"a", date_time{0}}}, O{{"a", O{{"$type", "date"}}}}, true},
      {O{{"a", value{}}}, O{{"a", O{{"$type", "null"}}}}, true},
      {O{{"b", 1}}, O{{"a", O{{"$type", "null"}}}}, false},
      {O{{"a", re("x")}}, O{{"a", O{{"$type", "regex"}}}}, true},
      {O{{"a", timestamp_value{1, 1}}}, O{{"a", O{{"$type", "timestamp"}}}}, true},
      {O{{"a", min_key{}}}, O{{"a", O{{"$type", "minKey"}}}}, true},
      {O{{"a", max_key{}}}, O{{"a", O{{"$type", 127}}}}, true},
      {O{{"a", "s"}}, O{{"a", O{{"$type", A{"int", "string"}}}}}, true},
      {O{{"a", true}}, O{{"a", O{{"$type", A{"int", "string"}}}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$type", "decimal"}}}}, false},
  });
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$type", "nosuch"}}}}), "nosuch"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$type", 99}}}}), "$type"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$type", A{}}}}}), "$type"));
}

// ---- evaluation ----

BOOST_AUTO_TEST_CASE(regex_matches_strings_with_options) {
  check_table({
      {O{{"a", "hello world"}}, O{{"a", re("wor")}}, true},
      {O{{"a", "hello world"}}, O{{"a", re("^wor")}}, false},
      {O{{"a", "hello world"}}, O{{"a", re("^hel")}}, true},
      {O{{"a", "hello world"}}, O{{"a", re("l+o\\s")}}, true},
      {O{{"a", "Hello"}}, O{{"a", re("^hello")}}, false},
      {O{{"a", "Hello"}}, O{{"a", re("^hello", "i")}}, true},
      {O{{"a", "x\nline"}}, O{{"a", re("^line")}}, false},
      {O{{"a", "x\nline"}}, O{{"a", re("^line", "m")}}, true},
      {O{{"a", "a\nb"}}, O{{"a", re("a.b")}}, false},
      {O{{"a", "a\nb"}}, O{{"a", re("a.b", "s")}}, true},
      {O{{"a", "abc"}}, O{{"a", re("a b c # letters", "x")}}, true},
      {O{{"a", "ABC"}}, O{{"a", re("(?i)abc")}}, true},
      {O{{"a", 5}}, O{{"a", re("5")}}, false},
      {O{{"a", A{"x", "abc"}}}, O{{"a", re("^ab")}}, true},
      {O{{"a", re("ab", "i")}}, O{{"a", re("ab", "i")}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$regex", "^AB"}, {"$options", "i"}}}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$options", "i"}, {"$regex", "^AB"}}}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$regex", re("^AB", "i")}}}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$regex", "^AB"}}}}, false},
      {O{{"a", "a.c"}}, O{{"a", O{{"$regex", "a\\.c"}}}}, true},
      {O{{"a", "abc"}}, O{{"a", O{{"$regex", "a\\.c"}}}}, false},
      {O{{"b", "abc"}}, O{{"a", O{{"$regex", "^"}}}}, false},
  });
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$regex", "("}}}}), "regular expression"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$options", "i"}}}}), "$options"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$regex", "a"}, {"$options", "q"}}}}), "q"));
}

BOOST_AUTO_TEST_CASE(mod_matches_remainders) {
  check_table({
      {O{{"a", 10}}, O{{"a", O{{"$mod", A{4, 2}}}}}, true},
      {O{{"a", 11}}, O{{"a", O{{"$mod", A{4, 2}}}}}, false},
      {O{{"a", "10"}}, O{{"a", O{{"$mod", A{4, 2}}}}}, false},
  });
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$mod", A{0, 1}}}}}), "$mod"));
}

// ---- array ----

BOOST_AUTO_TEST_CASE(size_matches_array_length_only) {
  check_table({
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$size", 2}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$size", 1}}}}, false},
      {O{{"a", A{}}}, O{{"a", O{{"$size", 0}}}}, true},
      {O{{"a", "ab"}}, O{{"a", O{{"$size", 2}}}}, false},
      {O{{"b", 1}}, O{{"a", O{{"$size", 0}}}}, false},
      {O{{"a", A{A{1, 2}}}}, O{{"a", O{{"$size", 2}}}}, false},
      {O{{"a", A{O{{"b", A{1, 2}}}}}}, O{{"a.b", O{{"$size", 2}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$size", 2.0}}}}, true},
  });
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$size", -1}}}}), "$size"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$size", 1.5}}}}), "$size"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$size", "1"}}}}), "$size"));
}

BOOST_AUTO_TEST_CASE(all_requires_every_value) {
  check_table({
      {O{{"a", A{1, 2, 3}}}, O{{"a", O{{"$all", A{1, 3}}}}}, true},
      {O{{"a", A{1, 2, 3}}}, O{{"a", O{{"$all", A{1, 4}}}}}, false},
      {O{{"a", 1}}, O{{"a", O{{"$all", A{1}}}}}, true},
      {O{{"a", A{1}}}, O{{"a", O{{"$all", A{}}}}}, false},
      {O{{"a", A{A{1, 2}, 3}}}, O{{"a", O{{"$all", A{A{1, 2}}}}}}, true},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$all", A{A{1, 2}}}}}}, true},
      {O{{"a", A{"abc", "xyz"}}}, O{{"a", O{{"$all", A{re("^a"), re("z$")}}}}}, true},
      {O{{"a", A{O{{"b", 1}}, O{{"b", 2}}}}}, O{{"a.b", O{{"$all", A{1, 2}}}}}, true},
      {O{{"a", A{O{{"b", 1}, {"c", 5}}, O{{"b", 2}, {"c", 1}}}}},
       O{{"a", O{{"$all", A{O{{"$elemMatch", O{{"b", 1}, {"c", O{{"$gt", 4}}}}}},
                            O{{"$elemMatch", O{{"b", 2}}}}}}}}},
       true},
      {O{{"a", A{O{{"b", 1}, {"c", 1}}, O{{"b", 2}, {"c", 1}}}}},
       O{{"a", O{{"$all", A{O{{"$elemMatch", O{{"b", 1}, {"c", O{{"$gt", 4}}}}}},
                            O{{"$elemMatch", O{{"b", 2}}}}}}}}},
       false},
  });
}

BOOST_AUTO_TEST_CASE(elem_match_with_operators_needs_one_element_to_satisfy_all) {
  check_table({
      {O{{"a", A{1, 5}}}, O{{"a", O{{"$elemMatch", O{{"$gt", 2}, {"$lt", 4}}}}}}, false},
      {O{{"a", A{1, 3}}}, O{{"a", O{{"$elemMatch", O{{"$gt", 2}, {"$lt", 4}}}}}}, true},
      {O{{"a", 3}}, O{{"a", O{{"$elemMatch", O{{"$gt", 2}}}}}}, false},
      {O{{"a", A{}}}, O{{"a", O{{"$elemMatch", O{{"$gt", 2}}}}}}, false},
      {O{{"a", A{1, 2}}}, O{{"a", O{{"$elemMatch", O{{"$ne", 1}}}}}}, true},
      {O{{"a", A{1, 1}}}, O{{"a", O{{"$elemMatch", O{{"$ne", 1}}}}}}, false},
      {O{{"a", A{"ab", "x"}}}, O{{"a", O{{"$elemMatch", O{{"$regex", "^a"}}}}}}, true},
      {O{{"a", A{A{1, 2}, A{3}}}}, O{{"a", O{{"$elemMatch", O{{"$size", 1}}}}}}, true},
      {O{{"a", A{1, 5}}}, O{{"a", O{{"$elemMatch", O{{"$not", O{{"$gt", 2}}}}}}}}, true},
      {O{{"a", A{5, 6}}}, O{{"a", O{{"$elemMatch", O{{"$not", O{{"$gt", 2}}}}}}}}, false},
      {O{{"a", A{1, "x"}}}, O{{"a", O{{"$elemMatch", O{{"$in", A{"x"}}}}}}}, true},
  });
}

BOOST_AUTO_TEST_CASE(elem_match_with_a_query_matches_one_document_element) {
  O d{{"results", A{O{{"product", "abc"}, {"score", 10}}, O{{"product", "xyz"}, {"score", 5}}}}};
  check_table({
      {d, O{{"results", O{{"$elemMatch", O{{"product", "xyz"}, {"score", O{{"$gte", 8}}}}}}}},
       false},
      {d, O{{"results", O{{"$elemMatch", O{{"product", "abc"}, {"score", O{{"$gte", 8}}}}}}}},
       true},
      {d, O{{"results.product", "xyz"}, {"results.score", O{{"$gte", 8}}}}, true},
      {d, O{{"results", O{{"$elemMatch", O{{"$or", A{O{{"score", 5}}, O{{"score", 6}}}}}}}}}, true},
      {O{{"results", A{1, 2}}}, O{{"results", O{{"$elemMatch", O{{"score", 1}}}}}}, false},
      {O{{"a", A{O{{"b", A{O{{"c", 1}}}}}}}},
       O{{"a", O{{"$elemMatch", O{{"b", O{{"$elemMatch", O{{"c", 1}}}}}}}}}}, true},
  });
}

// ---- errors ----

BOOST_AUTO_TEST_CASE(unknown_operators_are_rejected_by_name) {
  BOOST_TEST(compile_error(O{{"a", O{{"$foo", 1}}}}) == "unknown operator $foo");
  BOOST_TEST(compile_error(O{{"$expr", O{{"$eq", A{"$a", 1}}}}}) == "unknown operator $expr");
  BOOST_TEST(compile_error(O{{"$not", O{{"a", 1}}}}) == "unknown operator $not");
  BOOST_TEST(compile_error(O{{"$text", O{{"$search", "x"}}}}) == "unknown operator $text");
  BOOST_TEST(compile_error(O{{"a", O{{"$elemMatch", O{{"b", O{{"$bar", 1}}}}}}}}) ==
             "unknown operator $bar");
  BOOST_TEST(compile_error(O{{"$or", A{O{{"a", O{{"$gt", 1}, {"$baz", 2}}}}}}}) ==
             "unknown operator $baz");
}

BOOST_AUTO_TEST_CASE(code_executing_operators_are_not_allowed) {
  BOOST_TEST(compile_error(O{{"$where", "this.a == 1"}}) == "operator $where is not allowed");
  BOOST_TEST(compile_error(O{{"$and", A{O{{"$where", "1"}}}}}) == "operator $where is not allowed");
  BOOST_TEST(compile_error(O{{"a", O{{"$function", O{}}}}}) == "operator $function is not allowed");
  BOOST_TEST(compile_error(O{{"$accumulator", O{}}}) == "operator $accumulator is not allowed");
  BOOST_TEST(compile_error(O{{"a", O{{"$elemMatch", O{{"$where", "1"}}}}}}) ==
             "operator $where is not allowed");
}

BOOST_AUTO_TEST_CASE(operator_objects_cannot_mix_in_plain_fields) {
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$gt", 1}, {"b", 2}}}}), "'a'"));
  // No $ key at all: a literal document.
  BOOST_TEST(compile_error(O{{"a", O{{"b", 1}, {"c", 2}}}}) == "");
}

BOOST_AUTO_TEST_CASE(operators_check_their_arguments) {
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$in", 1}}}}), "$in"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$nin", "x"}}}}), "$nin"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$all", 1}}}}), "$all"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$elemMatch", 1}}}}), "$elemMatch"));
  BOOST_TEST(contains(compile_error(O{{"a", O{{"$regex", 1}}}}), "$regex"));
}

// ---- id fast path ----

BOOST_AUTO_TEST_CASE(id_equality_is_reported_only_for_plain_id_filters) {
  auto id = object_id::generate();
  auto eq = matcher::compile(O{{"_id", id}});
  BOOST_REQUIRE(eq.id_equality());
  BOOST_TEST((*eq.id_equality() == value(id)));
  auto op = matcher::compile(O{{"_id", O{{"$eq", "x"}}}});
  BOOST_REQUIRE(op.id_equality());
  BOOST_TEST(op.id_equality()->as_string() == "x");
  auto doc = matcher::compile(O{{"_id", O{{"k", 1}}}});
  BOOST_TEST(doc.id_equality());
  BOOST_TEST(!matcher::compile(O{{"_id", re("x")}}).id_equality());
  BOOST_TEST(!matcher::compile(O{{"_id", O{{"$gt", 1}}}}).id_equality());
  BOOST_TEST(!matcher::compile(O{{"_id", O{{"$eq", 1}, {"$ne", 2}}}}).id_equality());
  BOOST_TEST(!matcher::compile(O{{"_id", 1}, {"a", 1}}).id_equality());
  BOOST_TEST(!matcher::compile(O{{"a", 1}}).id_equality());
  BOOST_TEST(!matcher::compile(O{}).id_equality());
}

// ---- sort ----

namespace {

/// Sorts `docs` by `spec` and returns the "n" field of each, in order.
std::vector<int> sorted_ids(std::vector<O> docs, const O& spec) {
  auto s = sort_spec::parse(spec);
  std::stable_sort(docs.begin(), docs.end(),
                   [&s](const O& a, const O& b) { return s.compare(a, b) < 0; });
  std::vector<int> out;
  for (auto& d : docs)
    out.push_back(find_field(d, "n")->get<std::int32_t>());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(sort_orders_across_types_in_bson_order) {
  std::vector<O> docs{
      O{{"n", 1}, {"a", "b"}},  O{{"n", 2}, {"a", 2.5}},         O{{"n", 3}},
      O{{"n", 4}, {"a", true}}, O{{"n", 5}, {"a", value{}}},     O{{"n", 6}, {"a", O{}}},
      O{{"n", 7}, {"a", 1}},    O{{"n", 8}, {"a", date_time{}}}, O{{"n", 9}, {"a", min_key{}}},
  };
  // MinKey, null and missing (stable), numbers, string, object, bool, date.
  BOOST_TEST(sorted_ids(docs, O{{"a", 1}}) == (std::vector<int>{9, 3, 5, 7, 2, 1, 6, 4, 8}),
             boost::test_tools::per_element());
  BOOST_TEST(sorted_ids(docs, O{{"a", -1}}) == (std::vector<int>{8, 4, 6, 1, 2, 7, 3, 5, 9}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sort_uses_array_min_ascending_and_max_descending) {
  std::vector<O> docs{
      O{{"n", 1}, {"a", A{1, 10}}},
      O{{"n", 2}, {"a", A{5}}},
      O{{"n", 3}, {"a", 3}},
      O{{"n", 4}, {"a", A{}}},
      O{{"n", 5}},
  };
  BOOST_TEST(sorted_ids(docs, O{{"a", 1}}) == (std::vector<int>{4, 5, 1, 3, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(sorted_ids(docs, O{{"a", -1}}) == (std::vector<int>{1, 2, 3, 5, 4}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sort_follows_dotted_paths_and_breaks_ties_with_later_keys) {
  std::vector<O> docs{
      O{{"n", 1}, {"a", O{{"b", 2}}}, {"c", 1}},
      O{{"n", 2}, {"a", O{{"b", 1}}}, {"c", 1}},
      O{{"n", 3}, {"a", O{{"b", 2}}}, {"c", 0}},
      O{{"n", 4}, {"a", A{O{{"b", 7}}, O{{"b", 0}}}}, {"c", 9}},
  };
  BOOST_TEST(sorted_ids(docs, O{{"a.b", 1}, {"c", -1}}) == (std::vector<int>{4, 2, 1, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(sorted_ids(docs, O{{"a.b", -1}, {"c", 1}}) == (std::vector<int>{4, 3, 1, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(sort_spec::parse(O{{"a", 1}}).compare(O{{"a", 1}}, O{{"a", 1.0}}) == 0);
}

BOOST_AUTO_TEST_CASE(sort_spec_accepts_only_one_and_minus_one) {
  auto s = sort_spec::parse(O{{"a", 1.0}, {"b", std::int64_t{-1}}});
  BOOST_TEST(s.keys().size() == 2u);
  BOOST_TEST(s.keys()[1].second == -1);
  BOOST_TEST(sort_spec::parse(O{}).empty());
  for (const value& bad : {value(2), value("asc"), value(0), value(O{{"$meta", "textScore"}})}) {
    try {
      sort_spec::parse(O{{"field", bad}});
      BOOST_FAIL("expected a 400");
    } catch (const api_error& e) {
      BOOST_TEST(e.status() == 400);
      BOOST_TEST(contains(e.what(), "field"));
    }
  }
}

// ---- projection ----

namespace {

O sample() {
  return O{{"_id", 7},
           {"a", O{{"b", 1}, {"c", 2}}},
           {"d", A{O{{"b", 3}, {"c", 4}}, 5, O{{"c", 6}}}},
           {"e", "x"}};
}

std::string projection_error(const O& spec) {
  try {
    projection::compile(spec);
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return e.what();
  }
  return "";
}

} // namespace

BOOST_AUTO_TEST_CASE(inclusion_projection_keeps_listed_fields_and_id) {
  auto p = projection::compile(O{{"e", 1}});
  BOOST_TEST((value(p.apply(sample())) == value(O{{"_id", 7}, {"e", "x"}})));
  auto no_id = projection::compile(O{{"e", true}, {"_id", 0}});
  BOOST_TEST((value(no_id.apply(sample())) == value(O{{"e", "x"}})));
  auto only_id = projection::compile(O{{"_id", 1}});
  BOOST_TEST(!only_id.empty());
  BOOST_TEST((value(only_id.apply(sample())) == value(O{{"_id", 7}})));
  auto missing = projection::compile(O{{"zz", 1}});
  BOOST_TEST((value(missing.apply(sample())) == value(O{{"_id", 7}})));
}

BOOST_AUTO_TEST_CASE(inclusion_projection_follows_dotted_paths_through_arrays) {
  auto p = projection::compile(O{{"a.b", 1}, {"d.c", 1}, {"_id", false}});
  O expected{{"a", O{{"b", 1}}}, {"d", A{O{{"c", 4}}, O{{"c", 6}}}}};
  BOOST_TEST((value(p.apply(sample())) == value(expected)));
  auto scalar = projection::compile(O{{"e.f", 1}});
  BOOST_TEST((value(scalar.apply(sample())) == value(O{{"_id", 7}})));
}

BOOST_AUTO_TEST_CASE(exclusion_projection_drops_listed_fields) {
  auto p = projection::compile(O{{"a.b", 0}, {"d.c", 0}, {"e", false}});
  O expected{{"_id", 7}, {"a", O{{"c", 2}}}, {"d", A{O{{"b", 3}}, 5, O{}}}};
  BOOST_TEST((value(p.apply(sample())) == value(expected)));
  auto id_only = projection::compile(O{{"_id", 0}});
  BOOST_TEST(!id_only.empty());
  O without_id = sample();
  without_id.erase(without_id.begin());
  BOOST_TEST((value(id_only.apply(sample())) == value(without_id)));
  BOOST_TEST(projection::compile(O{}).empty());
  BOOST_TEST((value(projection().apply(sample())) == value(sample())));
}

BOOST_AUTO_TEST_CASE(projection_rejects_mixing_and_bad_values) {
  BOOST_TEST(contains(projection_error(O{{"a", 1}, {"b", 0}}), "'b'"));
  BOOST_TEST(projection_error(O{{"a", 1}, {"_id", 0}}) == "");
  BOOST_TEST(projection_error(O{{"a", 0}, {"_id", 1}}) == "");
  BOOST_TEST(contains(projection_error(O{{"a", 2}}), "'a'"));
  BOOST_TEST(contains(projection_error(O{{"a", "yes"}}), "'a'"));
  BOOST_TEST(contains(projection_error(O{{"a", O{{"$slice", 1}}}}), "'a'"));
  BOOST_TEST(contains(projection_error(O{{"a", 1}, {"a.b", 1}}), "a.b"));
}

// ---- nesting depth ----

BOOST_AUTO_TEST_CASE(filters_at_the_depth_limit_compile_and_deeper_ones_are_a_400) {
  // Each $and adds two levels (its array and the object in it): 49 of them around
  // {a:{$eq:1}} (two levels) make 100.
  auto nested_and = [](int n, const std::string& leaf) {
    std::string s;
    for (int i = 0; i < n; ++i)
      s += "{$and:[";
    s += leaf;
    for (int i = 0; i < n; ++i)
      s += "]}";
    return s;
  };
  value at_limit = parse_json(nested_and(49, "{a:{$eq:1}}"), "filter");
  BOOST_TEST(!nested_deeper_than(at_limit, 100));
  BOOST_TEST(nested_deeper_than(at_limit, 99));
  matcher m = matcher::compile(at_limit.as_object());
  BOOST_TEST(m.matches(O{{"a", 1}}));
  BOOST_TEST(!m.matches(O{{"a", 2}}));
  auto parse_error = [](const std::string& text) {
    try {
      parse_json(text, "filter");
    } catch (const api_error& e) {
      BOOST_TEST(e.status() == 400);
      return std::string(e.what());
    }
    return std::string();
  };
  BOOST_TEST(
      contains(parse_error(nested_and(49, "{a:{$eq:[1]}}")), "nested deeper than 100 levels"));
  BOOST_TEST(contains(parse_error(nested_and(5000, "{a:1}")), "nested deeper than 100 levels"));
  BOOST_TEST(contains(parse_error(std::string(10000, '[')), "nested deeper than 100 levels"));
  // Equality with a value 99 levels deep under a top-level field compares the whole value.
  std::string deep_value = "1";
  for (int i = 0; i < 99; ++i)
    deep_value = "{b:" + deep_value + "}";
  value eq = parse_json("{a:" + deep_value + "}", "filter");
  BOOST_TEST(matcher::compile(eq.as_object()).matches(eq.as_object()));
}

BOOST_AUTO_TEST_CASE(paths_longer_than_any_document_match_nothing_without_deep_recursion) {
  std::string path = "a";
  for (int i = 0; i < 10000; ++i)
    path += ".a";
  matcher m = matcher::compile(O{{path, 1}});
  BOOST_TEST(!m.matches(O{{"a", O{{"a", 1}}}}));
  BOOST_TEST(matcher::compile(O{{path, O{{"$exists", false}}}}).matches(O{{"a", 1}}));
}

BOOST_AUTO_TEST_SUITE_END()
