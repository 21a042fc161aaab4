#include <boost/test/unit_test.hpp>

#include "storage/document/update.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(update_test)

namespace {

using O = object;
using A = array;

/// Applies `body` to `doc` and returns the description.
update_description apply_update(O& doc, const O& body) {
  update_description d;
  update_spec::parse(body).apply(doc, &d);
  return d;
}

/// The 400 message `body` raises on parse or on apply to `doc`, or "" when none.
std::string update_error(const O& body, O doc = O{{"_id", 1}}) {
  try {
    update_spec::parse(body).apply(doc);
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct update_case {
  O doc;
  O body;
  O expected;
};

void check_table(const std::vector<update_case>& cases) {
  for (std::size_t i = 0; i < cases.size(); ++i) {
    BOOST_TEST_CONTEXT("row " << i) {
      O doc = cases[i].doc;
      update_spec::parse(cases[i].body).apply(doc);
      BOOST_TEST(identical(value(doc), value(cases[i].expected)));
    }
  }
}

} // namespace

// ---- $set / plain fields ----

BOOST_AUTO_TEST_CASE(set_replaces_and_adds_fields) {
  check_table({
      {O{{"_id", 1}, {"a", 1}}, O{{"$set", O{{"a", 2}}}}, O{{"_id", 1}, {"a", 2}}},
      {O{{"_id", 1}}, O{{"$set", O{{"b", "x"}}}}, O{{"_id", 1}, {"b", "x"}}},
      {O{{"a", 1}}, O{{"a", 5}}, O{{"a", 5}}}, // plain fields are $set
      {O{{"a", 1}}, O{{"$set", O{{"a", O{{"x", 1}}}}}}, O{{"a", O{{"x", 1}}}}},
      {O{{"_id", 1}}, O{{"$set", O{{"_id", 1}}}}, O{{"_id", 1}}}, // same _id is fine
  });
}

BOOST_AUTO_TEST_CASE(set_with_dotted_paths_creates_intermediate_documents) {
  check_table({
      {O{}, O{{"$set", O{{"a.b.c", 1}}}}, O{{"a", O{{"b", O{{"c", 1}}}}}}},
      {O{{"a", O{{"x", 1}}}}, O{{"a.y", 2}}, O{{"a", O{{"x", 1}, {"y", 2}}}}},
      {O{{"a", A{1, 2}}}, O{{"$set", O{{"a.1", 9}}}}, O{{"a", A{1, 9}}}},
      {O{{"a", A{1}}}, O{{"$set", O{{"a.3", 9}}}}, O{{"a", A{1, value{}, value{}, 9}}}},
      {O{{"a", A{O{{"b", 1}}}}}, O{{"$set", O{{"a.0.b", 2}}}}, O{{"a", A{O{{"b", 2}}}}}},
      {O{}, O{{"$set", O{{"a.0", 1}}}}, O{{"a", O{{"0", 1}}}}},
  });
  BOOST_TEST(contains(update_error(O{{"$set", O{{"a.b", 1}}}}, O{{"a", 5}}), "'b'"));
  BOOST_TEST(contains(update_error(O{{"$set", O{{"a.b", 1}}}}, O{{"a", A{1}}}), "'b'"));
  BOOST_TEST(contains(update_error(O{{"$set", O{{"a..b", 1}}}}), "a..b"));
  BOOST_TEST(contains(update_error(O{{"$set", O{{"a.$", 1}}}}), "a.$"));
}

BOOST_AUTO_TEST_CASE(set_reports_changed_paths_with_their_new_values) {
  O doc{{"_id", 1}, {"a", 1}, {"b", O{{"c", 1}}}};
  auto d = apply_update(doc, O{{"$set", O{{"a", 1}, {"b.c", 2}, {"n", A{1}}}}});
  // "a" did not change, so MongoDB does not report it.
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"b.c", 2}, {"n", A{1}}})));
  BOOST_TEST(d.removed_fields.empty());
  // 1 -> 1.0 is a change of type and is reported.
  d = apply_update(doc, O{{"a", 1.0}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"a", 1.0}})));
}

// ---- $unset ----

BOOST_AUTO_TEST_CASE(unset_removes_fields_and_nulls_array_elements) {
  check_table({
      {O{{"a", 1}, {"b", 2}}, O{{"$unset", O{{"a", ""}}}}, O{{"b", 2}}},
      {O{{"a", O{{"b", 1}, {"c", 2}}}}, O{{"$unset", O{{"a.b", 1}}}}, O{{"a", O{{"c", 2}}}}},
      {O{{"a", A{1, 2}}}, O{{"$unset", O{{"a.0", 1}}}}, O{{"a", A{value{}, 2}}}},
      {O{{"a", 1}}, O{{"$unset", O{{"zz", 1}, {"a.b", 1}}}}, O{{"a", 1}}},
  });
  O doc{{"a", 1}, {"b", 2}};
  auto d = apply_update(doc, O{{"$unset", O{{"a", ""}, {"missing", ""}}}});
  BOOST_TEST(d.removed_fields == (std::vector<std::string>{"a"}), boost::test_tools::per_element());
  BOOST_TEST(d.updated_fields.empty());
}

// ---- $inc / $mul ----

BOOST_AUTO_TEST_CASE(inc_adds_with_type_promotion) {
  check_table({
      {O{{"a", 1}}, O{{"$inc", O{{"a", 2}}}}, O{{"a", 3}}},
      {O{{"a", 1}}, O{{"$inc", O{{"a", -2}}}}, O{{"a", -1}}},
      {O{{"a", 1}}, O{{"$inc", O{{"a", 0.5}}}}, O{{"a", 1.5}}},
      {O{{"a", 1}}, O{{"$inc", O{{"a", std::int64_t{1}}}}}, O{{"a", std::int64_t{2}}}},
      {O{{"a", 2147483647}}, O{{"$inc", O{{"a", 1}}}}, O{{"a", std::int64_t{2147483648}}}},
      {O{}, O{{"$inc", O{{"a.b", 5}}}}, O{{"a", O{{"b", 5}}}}},
      {O{{"a", A{1, 2}}}, O{{"$inc", O{{"a.1", 1}}}}, O{{"a", A{1, 3}}}},
  });
  BOOST_TEST(contains(update_error(O{{"$inc", O{{"a", "x"}}}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$inc", O{{"a", 1}}}}, O{{"a", "s"}}), "'a'"));
  BOOST_TEST(contains(
      update_error(O{{"$inc", O{{"a", 1}}}}, O{{"a", std::int64_t{9223372036854775807}}}), "'a'"));
}

BOOST_AUTO_TEST_CASE(mul_multiplies_and_zeroes_missing_fields) {
  check_table({
      {O{{"a", 3}}, O{{"$mul", O{{"a", 2}}}}, O{{"a", 6}}},
      {O{{"a", 3}}, O{{"$mul", O{{"a", 0.5}}}}, O{{"a", 1.5}}},
      {O{}, O{{"$mul", O{{"a", 5}}}}, O{{"a", 0}}},
      {O{}, O{{"$mul", O{{"a", 5.0}}}}, O{{"a", 0.0}}},
  });
  BOOST_TEST(contains(update_error(O{{"$mul", O{{"a", true}}}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$mul", O{{"a", 2}}}}, O{{"a", A{}}}), "'a'"));
}

// ---- $min / $max ----

BOOST_AUTO_TEST_CASE(min_and_max_keep_the_extreme_in_bson_order) {
  check_table({
      {O{{"a", 5}}, O{{"$min", O{{"a", 3}}}}, O{{"a", 3}}},
      {O{{"a", 5}}, O{{"$min", O{{"a", 7}}}}, O{{"a", 5}}},
      {O{{"a", 5}}, O{{"$max", O{{"a", 7}}}}, O{{"a", 7}}},
      {O{{"a", 5}}, O{{"$max", O{{"a", 3}}}}, O{{"a", 5}}},
      {O{}, O{{"$min", O{{"a", 3}}}}, O{{"a", 3}}},
      {O{{"a", 5}}, O{{"$max", O{{"a", "x"}}}}, O{{"a", "x"}}}, // strings sort after numbers
      {O{{"a", 5}}, O{{"$min", O{{"a", value{}}}}}, O{{"a", value{}}}},
      {O{{"a", date_time{5}}}, O{{"$max", O{{"a", date_time{9}}}}}, O{{"a", date_time{9}}}},
  });
}

// ---- $rename ----

BOOST_AUTO_TEST_CASE(rename_moves_a_field_and_reports_both_paths) {
  check_table({
      {O{{"a", 1}, {"b", 2}}, O{{"$rename", O{{"a", "c"}}}}, O{{"b", 2}, {"c", 1}}},
      {O{{"a", O{{"x", 1}}}}, O{{"$rename", O{{"a.x", "b.y"}}}}, O{{"a", O{}}, {"b", O{{"y", 1}}}}},
      {O{{"a", 1}}, O{{"$rename", O{{"zz", "c"}}}}, O{{"a", 1}}},
      {O{{"a", 1}, {"c", 2}}, O{{"$rename", O{{"a", "c"}}}}, O{{"c", 1}}},
  });
  O doc{{"a", 1}};
  auto d = apply_update(doc, O{{"$rename", O{{"a", "b"}}}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"b", 1}})));
  BOOST_TEST(d.removed_fields == (std::vector<std::string>{"a"}), boost::test_tools::per_element());
  BOOST_TEST(contains(update_error(O{{"$rename", O{{"a", 1}}}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$rename", O{{"a", "a.b"}}}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$rename", O{{"a.0", "b"}}}}, O{{"a", A{1}}}), "a.0"));
}

// ---- $push ----

BOOST_AUTO_TEST_CASE(push_appends_and_creates_arrays) {
  check_table({
      {O{{"a", A{1}}}, O{{"$push", O{{"a", 2}}}}, O{{"a", A{1, 2}}}},
      {O{}, O{{"$push", O{{"a", 2}}}}, O{{"a", A{2}}}},
      {O{{"a", A{1}}}, O{{"$push", O{{"a", A{2, 3}}}}}, O{{"a", A{1, A{2, 3}}}}},
      {O{{"a", A{1}}}, O{{"$push", O{{"a", O{{"$each", A{2, 3}}}}}}}, O{{"a", A{1, 2, 3}}}},
      {O{{"a", O{{"b", A{}}}}}, O{{"$push", O{{"a.b", 1}}}}, O{{"a", O{{"b", A{1}}}}}},
  });
  BOOST_TEST(contains(update_error(O{{"$push", O{{"a", 1}}}}, O{{"a", 5}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$push", O{{"a", O{{"$each", 1}}}}}}), "'a'"));
  BOOST_TEST(
      contains(update_error(O{{"$push", O{{"a", O{{"$each", A{}}, {"$bogus", 1}}}}}}), "$bogus"));
}

BOOST_AUTO_TEST_CASE(push_modifiers_position_sort_and_slice) {
  check_table({
      {O{{"a", A{1, 4}}}, O{{"$push", O{{"a", O{{"$each", A{2, 3}}, {"$position", 1}}}}}},
       O{{"a", A{1, 2, 3, 4}}}},
      {O{{"a", A{1, 4}}}, O{{"$push", O{{"a", O{{"$each", A{9}}, {"$position", -1}}}}}},
       O{{"a", A{1, 9, 4}}}},
      {O{{"a", A{1, 4}}}, O{{"$push", O{{"a", O{{"$each", A{9}}, {"$position", 0}}}}}},
       O{{"a", A{9, 1, 4}}}},
      {O{{"a", A{3, 1}}}, O{{"$push", O{{"a", O{{"$each", A{2}}, {"$sort", 1}}}}}},
       O{{"a", A{1, 2, 3}}}},
      {O{{"a", A{3, 1}}}, O{{"$push", O{{"a", O{{"$each", A{2}}, {"$sort", -1}}}}}},
       O{{"a", A{3, 2, 1}}}},
      {O{{"a", A{1, 2, 3}}}, O{{"$push", O{{"a", O{{"$each", A{4}}, {"$slice", 2}}}}}},
       O{{"a", A{1, 2}}}},
      {O{{"a", A{1, 2, 3}}}, O{{"$push", O{{"a", O{{"$each", A{4}}, {"$slice", -2}}}}}},
       O{{"a", A{3, 4}}}},
      {O{{"a", A{1, 2, 3}}}, O{{"$push", O{{"a", O{{"$each", A{}}, {"$slice", 0}}}}}},
       O{{"a", A{}}}},
      {O{{"a", A{O{{"s", 5}}, O{{"s", 1}}}}},
       O{{"$push", O{{"a", O{{"$each", A{O{{"s", 3}}}}, {"$sort", O{{"s", -1}}}, {"$slice", 2}}}}}},
       O{{"a", A{O{{"s", 5}}, O{{"s", 3}}}}}},
  });
  BOOST_TEST(
      contains(update_error(O{{"$push", O{{"a", O{{"$each", A{1}}, {"$slice", "x"}}}}}}), "'a'"));
  BOOST_TEST(
      contains(update_error(O{{"$push", O{{"a", O{{"$each", A{1}}, {"$sort", 2}}}}}}), "'a'"));
}

BOOST_AUTO_TEST_CASE(push_reports_appended_elements_by_index_and_other_changes_whole) {
  O doc{{"a", A{1}}};
  auto d = apply_update(doc, O{{"$push", O{{"a", O{{"$each", A{2, 3}}}}}}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"a.1", 2}, {"a.2", 3}})));
  d = apply_update(doc, O{{"$push", O{{"a", O{{"$each", A{0}}, {"$position", 0}}}}}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"a", A{0, 1, 2, 3}}})));
  O fresh;
  d = apply_update(fresh, O{{"$push", O{{"n.m", 1}}}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"n.m", A{1}}})));
  d = apply_update(doc, O{{"$pop", O{{"a", 1}}}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"a", A{0, 1, 2}}})));
  d = apply_update(doc, O{{"$pull", O{{"a", 9}}}});
  BOOST_TEST(d.updated_fields.empty());
}

// ---- $addToSet ----

BOOST_AUTO_TEST_CASE(add_to_set_adds_only_missing_values) {
  check_table({
      {O{{"a", A{1, 2}}}, O{{"$addToSet", O{{"a", 2}}}}, O{{"a", A{1, 2}}}},
      {O{{"a", A{1, 2}}}, O{{"$addToSet", O{{"a", 3}}}}, O{{"a", A{1, 2, 3}}}},
      {O{{"a", A{1, 2}}}, O{{"$addToSet", O{{"a", 2.0}}}}, O{{"a", A{1, 2}}}},
      {O{}, O{{"$addToSet", O{{"a", 1}}}}, O{{"a", A{1}}}},
      {O{{"a", A{1}}}, O{{"$addToSet", O{{"a", O{{"$each", A{1, 2, 2, 3}}}}}}},
       O{{"a", A{1, 2, 3}}}},
      {O{{"a", A{A{1}}}}, O{{"$addToSet", O{{"a", A{1}}}}}, O{{"a", A{A{1}}}}},
      {O{{"a", A{O{{"x", 1}}}}}, O{{"$addToSet", O{{"a", O{{"x", 1}}}}}}, O{{"a", A{O{{"x", 1}}}}}},
  });
  BOOST_TEST(contains(update_error(O{{"$addToSet", O{{"a", 1}}}}, O{{"a", "s"}}), "'a'"));
  O doc{{"a", A{1}}};
  auto d = apply_update(doc, O{{"$addToSet", O{{"a", 1}}}});
  BOOST_TEST(d.updated_fields.empty());
}

// ---- $pull / $pullAll ----

BOOST_AUTO_TEST_CASE(pull_removes_values_and_matches) {
  check_table({
      {O{{"a", A{1, 2, 1, 3}}}, O{{"$pull", O{{"a", 1}}}}, O{{"a", A{2, 3}}}},
      {O{{"a", A{1, 2, 3, 4}}}, O{{"$pull", O{{"a", O{{"$gte", 3}}}}}}, O{{"a", A{1, 2}}}},
      {O{{"a", A{1, 2, 3}}}, O{{"$pull", O{{"a", O{{"$in", A{1, 3}}}}}}}, O{{"a", A{2}}}},
      {O{{"a", A{"apple", "kiwi"}}}, O{{"$pull", O{{"a", regex_value{"^a", ""}}}}},
       O{{"a", A{"kiwi"}}}},
      // A document is a query on the elements: extra fields do not prevent a match.
      {O{{"a", A{O{{"x", 1}, {"y", 2}}, O{{"x", 2}}}}}, O{{"$pull", O{{"a", O{{"x", 1}}}}}},
       O{{"a", A{O{{"x", 2}}}}}},
      {O{{"a", A{O{{"x", 1}}, O{{"x", 5}}}}}, O{{"$pull", O{{"a", O{{"x", O{{"$gt", 2}}}}}}}},
       O{{"a", A{O{{"x", 1}}}}}},
      {O{{"a", A{A{1, 2}, A{3}}}}, O{{"$pull", O{{"a", A{1, 2}}}}}, O{{"a", A{A{3}}}}},
      {O{}, O{{"$pull", O{{"a", 1}}}}, O{}},
      {O{{"a", A{1, 2, 1}}}, O{{"$pullAll", O{{"a", A{1, 5}}}}}, O{{"a", A{2}}}},
  });
  BOOST_TEST(contains(update_error(O{{"$pull", O{{"a", 1}}}}, O{{"a", 1}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$pull", O{{"a", O{{"$foo", 1}}}}}}), "$foo"));
  O doc{{"a", A{1, 2}}};
  auto d = apply_update(doc, O{{"$pull", O{{"a", 1}}}});
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"a", A{2}}})));
}

// ---- $pop ----

BOOST_AUTO_TEST_CASE(pop_removes_the_first_or_last_element) {
  check_table({
      {O{{"a", A{1, 2, 3}}}, O{{"$pop", O{{"a", 1}}}}, O{{"a", A{1, 2}}}},
      {O{{"a", A{1, 2, 3}}}, O{{"$pop", O{{"a", -1}}}}, O{{"a", A{2, 3}}}},
      {O{{"a", A{}}}, O{{"$pop", O{{"a", 1}}}}, O{{"a", A{}}}},
      {O{}, O{{"$pop", O{{"a", 1}}}}, O{}},
  });
  BOOST_TEST(contains(update_error(O{{"$pop", O{{"a", 2}}}}), "'a'"));
  BOOST_TEST(contains(update_error(O{{"$pop", O{{"a", 1}}}}, O{{"a", "s"}}), "'a'"));
}

// ---- $currentDate ----

BOOST_AUTO_TEST_CASE(current_date_sets_dates_and_timestamps) {
  O doc{{"_id", 1}};
  auto d = apply_update(
      doc, O{{"$currentDate",
              O{{"d", true}, {"e", O{{"$type", "date"}}}, {"t.s", O{{"$type", "timestamp"}}}}}});
  BOOST_REQUIRE(find_field(doc, "d"));
  BOOST_TEST(find_field(doc, "d")->is<date_time>());
  BOOST_TEST(find_field(doc, "d")->get<date_time>().millis > 1600000000000);
  BOOST_TEST(find_field(doc, "e")->is<date_time>());
  BOOST_REQUIRE(find_path(doc, "t.s"));
  BOOST_TEST(find_path(doc, "t.s")->is<timestamp_value>());
  BOOST_TEST(find_path(doc, "t.s")->get<timestamp_value>().t > 1600000000u);
  BOOST_TEST(d.updated_fields.size() == 3u);
  BOOST_TEST(find_field(d.updated_fields, "t.s"));
  BOOST_TEST(contains(update_error(O{{"$currentDate", O{{"d", O{{"$type", "x"}}}}}}), "'d'"));
  BOOST_TEST(contains(update_error(O{{"$currentDate", O{{"d", 1}}}}), "'d'"));
}

// ---- errors ----

BOOST_AUTO_TEST_CASE(malformed_updates_are_rejected) {
  BOOST_TEST(contains(update_error(O{}), "empty"));
  BOOST_TEST(contains(update_error(O{{"$foo", O{{"a", 1}}}}), "$foo"));
  BOOST_TEST(contains(update_error(O{{"$set", 1}}), "$set"));
  BOOST_TEST(contains(update_error(O{{"$unset", A{"a"}}}), "$unset"));
}

BOOST_AUTO_TEST_CASE(conflicting_paths_are_rejected) {
  BOOST_TEST(update_error(O{{"$set", O{{"a", 1}}}, {"$inc", O{{"a", 1}}}}) ==
             "Updating the path 'a' would create a conflict at 'a'");
  BOOST_TEST(update_error(O{{"$set", O{{"a.b", 1}}}, {"$unset", O{{"a", 1}}}}) ==
             "Updating the path 'a' would create a conflict at 'a'");
  BOOST_TEST(update_error(O{{"$set", O{{"a", 1}}}, {"$unset", O{{"a.b", 1}}}}) ==
             "Updating the path 'a.b' would create a conflict at 'a'");
  BOOST_TEST(update_error(O{{"x", 1}, {"$rename", O{{"y", "x"}}}}) ==
             "Updating the path 'x' would create a conflict at 'x'");
  BOOST_TEST(update_error(O{{"$set", O{{"ab", 1}, {"a", 1}, {"a.c", 1}}}}) ==
             "Updating the path 'a.c' would create a conflict at 'a'");
  BOOST_TEST(update_error(O{{"$set", O{{"ab", 1}, {"a", 1}}}}) == "");
}

BOOST_AUTO_TEST_CASE(changing_the_id_is_rejected_and_leaves_the_document_alone) {
  std::string immutable = "'_id'";
  BOOST_TEST(contains(update_error(O{{"$set", O{{"_id", 2}}}}), immutable));
  BOOST_TEST(contains(update_error(O{{"$unset", O{{"_id", 1}}}}), immutable));
  BOOST_TEST(contains(update_error(O{{"$inc", O{{"_id", 1}}}}), immutable));
  BOOST_TEST(contains(update_error(O{{"$rename", O{{"_id", "x"}}}}), immutable));
  BOOST_TEST(
      contains(update_error(O{{"$set", O{{"_id.k", 2}}}}, O{{"_id", O{{"k", 1}}}}), immutable));
  O doc{{"_id", 1}, {"a", 1}};
  BOOST_CHECK_THROW(update_spec::parse(O{{"$set", O{{"a", 2}, {"_id", 3}}}}).apply(doc), api_error);
  BOOST_TEST(identical(value(doc), value(O{{"_id", 1}, {"a", 1}})));
}

BOOST_AUTO_TEST_CASE(a_failing_operator_leaves_the_document_unchanged) {
  O doc{{"a", 1}, {"s", "x"}};
  BOOST_CHECK_THROW(update_spec::parse(O{{"$set", O{{"a", 2}}}, {"$inc", O{{"s", 1}}}}).apply(doc),
                    api_error);
  BOOST_TEST(identical(value(doc), value(O{{"a", 1}, {"s", "x"}})));
}

BOOST_AUTO_TEST_CASE(mixed_bodies_combine_plain_fields_and_operators) {
  O doc{{"_id", 1}, {"y", 1}, {"n", 1}};
  auto d = apply_update(doc, O{{"x", 1}, {"$unset", O{{"y", ""}}}, {"$inc", O{{"n", 2}}}});
  BOOST_TEST(identical(value(doc), value(O{{"_id", 1}, {"n", 3}, {"x", 1}})));
  BOOST_TEST(identical(value(d.updated_fields), value(O{{"x", 1}, {"n", 3}})));
  BOOST_TEST(d.removed_fields == (std::vector<std::string>{"y"}), boost::test_tools::per_element());
}

// ---- document bodies ----

BOOST_AUTO_TEST_CASE(document_bodies_nest_dotted_keys) {
  auto out = normalize_document_body(O{{"a.b", 1}, {"a.c", 2}, {"d", 3}, {"e.f.g", 4}});
  BOOST_TEST(identical(
      value(out), value(O{{"a", O{{"b", 1}, {"c", 2}}}, {"d", 3}, {"e", O{{"f", O{{"g", 4}}}}}})));
  auto plain = normalize_document_body(O{{"x", O{{"y.z", 1}}}});
  BOOST_TEST(identical(value(plain), value(O{{"x", O{{"y.z", 1}}}})));
}

BOOST_AUTO_TEST_CASE(document_bodies_apply_current_date_and_reject_other_operators) {
  auto out = normalize_document_body(O{{"a", 1}, {"$currentDate", O{{"t", true}}}});
  BOOST_TEST(out.size() == 2u);
  BOOST_REQUIRE(find_field(out, "t"));
  BOOST_TEST(find_field(out, "t")->is<date_time>());
  BOOST_TEST(!find_field(out, "$currentDate"));
  try {
    normalize_document_body(O{{"a", 1}, {"$set", O{{"b", 1}}}});
    BOOST_FAIL("expected a 400");
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    BOOST_TEST(std::string(e.what()) == "update operators are not allowed here: $set");
  }
  BOOST_CHECK_THROW(normalize_document_body(O{{"a", 1}, {"a.b", 1}}), api_error);
}

BOOST_AUTO_TEST_CASE(an_update_rebuilt_from_its_ops_applies_as_the_parsed_one) {
  O body{{"$inc", O{{"n", 2}}}, {"plain", 5}, {"$push", O{{"list", O{{"$each", A{3, 4}}}}}}};
  auto parsed = update_spec::parse(body);
  auto rebuilt = update_spec::from_ops(parsed.ops());
  O a{{"_id", 1}, {"n", 1}, {"list", A{1}}};
  O b = a;
  parsed.apply(a);
  rebuilt.apply(b);
  BOOST_TEST(identical(value(a), value(b)));
  BOOST_TEST(rebuilt.ops().size() == 3u);
}

BOOST_AUTO_TEST_CASE(ops_are_validated_as_a_body_is) {
  auto error_of = [](std::vector<update_spec::op> ops) {
    try {
      update_spec::from_ops(std::move(ops));
    } catch (const api_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BOOST_TEST(error_of({{"$where", "a", 1}}) == "unknown update operator $where");
  BOOST_TEST(error_of({{"$inc", "a", "x"}}) == "$inc: the value for field 'a' must be a number");
  BOOST_TEST(!error_of({{"$set", "a", 1}, {"$unset", "a.b", ""}}).empty()); // conflict
}

// ---- nesting depth ----

namespace {
/// "a.a.a...": a dotted path of `segments` segments.
std::string dotted_path(std::size_t segments) {
  std::string s = "a";
  for (std::size_t i = 1; i < segments; ++i)
    s += ".a";
  return s;
}
/// {"a":{"a":...{}}} with `levels` objects.
value nested(std::size_t levels) {
  value v = O{};
  for (std::size_t i = 1; i < levels; ++i)
    v = O{{"a", std::move(v)}};
  return v;
}
} // namespace

BOOST_AUTO_TEST_CASE(updates_may_nest_documents_100_levels_deep_and_no_deeper) {
  const std::string too_deep = "nested deeper than 100 levels";
  // The document (1), 98 objects on the path and the {} set at its end: 100 levels.
  BOOST_TEST(update_error(O{{"$set", O{{dotted_path(99), nested(1)}}}}).empty());
  BOOST_TEST(contains(update_error(O{{"$set", O{{dotted_path(100), nested(1)}}}}), too_deep));
  // Path and value each within the limit, together not; the document stays as it was.
  O doc{{"_id", 1}, {"x", 2}};
  BOOST_CHECK_THROW(update_spec::parse(O{{"$set", O{{dotted_path(60), nested(60)}}}}).apply(doc),
                    api_error);
  BOOST_TEST(identical(value(doc), value(O{{"_id", 1}, {"x", 2}})));
  BOOST_TEST(contains(update_error(O{{"$push", O{{dotted_path(50), nested(60)}}}}), too_deep));
  // A path longer than any document may be deep is refused when parsed, before any work.
  BOOST_TEST(contains(update_error(O{{"$set", O{{dotted_path(101), 1}}}}), too_deep));
  BOOST_TEST(contains(update_error(O{{"$unset", O{{dotted_path(10000), ""}}}}), too_deep));
  BOOST_TEST(contains(update_error(O{{"$rename", O{{"x", dotted_path(10000)}}}}), too_deep));
}

BOOST_AUTO_TEST_CASE(document_bodies_with_dotted_keys_stay_within_100_levels) {
  auto body_error = [](const O& body) {
    try {
      normalize_document_body(body);
    } catch (const api_error& e) {
      BOOST_TEST(e.status() == 400);
      return std::string(e.what());
    }
    return std::string();
  };
  BOOST_TEST(body_error(O{{dotted_path(99), O{}}}).empty()); // 100 levels
  BOOST_TEST(contains(body_error(O{{dotted_path(100), O{}}}), "nested deeper than 100 levels"));
  BOOST_TEST(contains(body_error(O{{dotted_path(10000), 1}}), "nested deeper than 100 levels"));
  BOOST_TEST(contains(body_error(O{{"a.b", nested(99)}}), "nested deeper than 100 levels"));
}

BOOST_AUTO_TEST_SUITE_END()
