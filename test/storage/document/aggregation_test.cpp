#include <boost/test/unit_test.hpp>

#include "storage/document/aggregation.hpp"
#include "storage/document/group.hpp"
#include "storage/document/json.hpp"
#include "storage/document/query.hpp"
#include "test/storage/document/document_test_helpers.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

using namespace rheo;
using namespace rheo::doc_test;

BOOST_AUTO_TEST_SUITE(aggregation_test)

namespace {

/// Documents from the JSON text of an array of objects.
std::vector<object> docs(std::string_view json_array) {
  value parsed = parse_json(json_array, "docs");
  std::vector<object> out;
  for (auto& v : parsed.as_array())
    out.push_back(v.as_object());
  return out;
}

/// An aggregation from the JSON text of its stages.
aggregation make(std::string_view stages, std::string_view avars = "{}", const server_vars& sv = {},
                 const aggregation_paging& paging = {}) {
  return aggregation::compile(obj(R"({"uri":"a","stages":)" + std::string(stages) + "}"),
                              obj(avars), sv, paging);
}

std::vector<object> run(std::string_view stages, const std::vector<object>& input,
                        std::string_view avars = "{}") {
  return make(stages, avars).run(input);
}

value as_value(const std::vector<object>& documents) {
  array a;
  for (auto& d : documents)
    a.push_back(d);
  return a;
}

/// Compares structurally (1 == 1.0) and shows the JSON on failure.
void check(const std::vector<object>& got, std::string_view expected) {
  BOOST_TEST_INFO("got " << to_json(as_value(got)));
  BOOST_TEST((as_value(got) == json(expected)));
}

std::string compile_error(std::string_view stages, std::string_view avars = "{}") {
  return bad_request([&] { make(stages, avars); });
}

std::string validation_error(std::string_view metadata) {
  return bad_request([&] { validate_aggrs(obj(metadata)); });
}

/// Validates one aggregation named 'a' with these stages.
std::string stages_error(std::string_view stages) {
  return validation_error(R"({"aggrs":[{"uri":"a","stages":)" + std::string(stages) + "}]}");
}

const value* field(const object& o, std::string_view name) {
  return find_field(o, name);
}

// MongoDB manual, $group: "Calculate Count, Sum, and Average".
std::vector<object> sales() {
  return docs(R"([
    {"_id":1,"item":"abc","price":10,"quantity":2,"date":{"$date":"2014-03-01T08:00:00Z"}},
    {"_id":2,"item":"jkl","price":20,"quantity":1,"date":{"$date":"2014-03-01T09:00:00Z"}},
    {"_id":3,"item":"xyz","price":5,"quantity":10,"date":{"$date":"2014-03-15T09:00:00Z"}},
    {"_id":4,"item":"xyz","price":5,"quantity":20,"date":{"$date":"2014-04-04T11:21:39.736Z"}},
    {"_id":5,"item":"abc","price":10,"quantity":10,"date":{"$date":"2014-04-04T21:23:13.331Z"}}])");
}

// MongoDB manual, $group: "Pivot Data".
std::vector<object> books() {
  return docs(R"([
    {"_id":8751,"title":"The Banquet","author":"Dante","copies":2},
    {"_id":8752,"title":"Divine Comedy","author":"Dante","copies":1},
    {"_id":8645,"title":"Eclogues","author":"Dante","copies":2},
    {"_id":7000,"title":"The Odyssey","author":"Homer","copies":10},
    {"_id":7020,"title":"Iliad","author":"Homer","copies":10}])");
}

// MongoDB manual, $unwind: "includeArrayIndex and preserveNullAndEmptyArrays" (prices as
// plain numbers: rheo has no Decimal128).
std::vector<object> inventory2() {
  return docs(R"([
    {"_id":1,"item":"ABC","price":80,"sizes":["S","M","L"]},
    {"_id":2,"item":"EFG","price":120,"sizes":[]},
    {"_id":3,"item":"IJK","price":160,"sizes":"M"},
    {"_id":4,"item":"LMN","price":10},
    {"_id":5,"item":"XYZ","price":5.75,"sizes":null}])");
}

// MongoDB manual, $sort: "Sort Consistency".
std::vector<object> restaurants() {
  return docs(R"([
    {"_id":1,"name":"Central Park Cafe","borough":"Manhattan"},
    {"_id":2,"name":"Rock A Feller Bar and Grill","borough":"Queens"},
    {"_id":3,"name":"Empire State Pub","borough":"Brooklyn"},
    {"_id":4,"name":"Stan's Pizzaria","borough":"Manhattan"},
    {"_id":5,"name":"Jane's Deli","borough":"Brooklyn"}])");
}

std::vector<std::int64_t> ids(const std::vector<object>& documents) {
  std::vector<std::int64_t> out;
  for (auto& d : documents)
    out.push_back(field(d, "_id")->as_int64());
  return out;
}

using id_list = std::vector<std::int64_t>;

} // namespace

// ---- $group ----

BOOST_AUTO_TEST_CASE(group_by_null_counts_sums_and_averages_everything) {
  check(run(R"([{"$group":{"_id":null,
                           "totalPrice":{"$sum":{"$multiply":["$price","$quantity"]}},
                           "averageQuantity":{"$avg":"$quantity"},
                           "count":{"$sum":1},"counted":{"$count":{}}}}])",
            sales()),
        R"([{"_id":null,"totalPrice":290,"averageQuantity":8.6,"count":5,"counted":5}])");
}

BOOST_AUTO_TEST_CASE(group_by_item_totals_in_first_seen_order) {
  check(run(R"([{"$group":{"_id":"$item",
                           "totalSaleAmount":{"$sum":{"$multiply":["$price","$quantity"]}}}}])",
            sales()),
        R"([{"_id":"abc","totalSaleAmount":120},{"_id":"jkl","totalSaleAmount":20},
            {"_id":"xyz","totalSaleAmount":150}])");
  // Distinct values, and a $match on the groups ("having").
  check(run(R"([{"$group":{"_id":"$item"}}])", sales()),
        R"([{"_id":"abc"},{"_id":"jkl"},{"_id":"xyz"}])");
  check(run(R"([{"$group":{"_id":"$item",
                           "totalSaleAmount":{"$sum":{"$multiply":["$price","$quantity"]}}}},
                {"$match":{"totalSaleAmount":{"$gte":100}}}])",
            sales()),
        R"([{"_id":"abc","totalSaleAmount":120},{"_id":"xyz","totalSaleAmount":150}])");
}

BOOST_AUTO_TEST_CASE(group_by_a_compound_key) {
  check(run(R"([{"$group":{"_id":{"item":"$item","price":"$price"},"n":{"$count":{}},
                           "qty":{"$sum":"$quantity"}}}])",
            sales()),
        R"([{"_id":{"item":"abc","price":10},"n":2,"qty":12},
            {"_id":{"item":"jkl","price":20},"n":1,"qty":1},
            {"_id":{"item":"xyz","price":5},"n":2,"qty":30}])");
}

BOOST_AUTO_TEST_CASE(group_push_pivots_titles_and_whole_documents_by_author) {
  check(run(R"([{"$group":{"_id":"$author","books":{"$push":"$title"}}}])", books()),
        R"([{"_id":"Dante","books":["The Banquet","Divine Comedy","Eclogues"]},
            {"_id":"Homer","books":["The Odyssey","Iliad"]}])");
  auto out = run(R"([{"$group":{"_id":"$author","books":{"$push":"$$ROOT"}}}])", books());
  BOOST_REQUIRE(out.size() == 2);
  BOOST_TEST(*field(out[1], "books") ==
             json(R"([{"_id":7000,"title":"The Odyssey","author":"Homer","copies":10},
                      {"_id":7020,"title":"Iliad","author":"Homer","copies":10}])"));
}

BOOST_AUTO_TEST_CASE(group_add_to_set_keeps_distinct_values_in_first_seen_order) {
  check(run(R"([{"$group":{"_id":null,"items":{"$addToSet":"$item"},
                           "prices":{"$addToSet":"$price"}}}])",
            sales()),
        R"([{"_id":null,"items":["abc","jkl","xyz"],"prices":[10,20,5]}])");
  // Equality is compare_values': 1, 1L and 1.0 are one value; missing is skipped, null is not.
  check(run(R"([{"$group":{"_id":null,"s":{"$addToSet":"$v"},"p":{"$push":"$v"}}}])",
            docs(R"([{"v":1},{"v":1.0},{"v":{"$numberLong":"1"}},{},{"v":null},{"v":[1]},
                     {"v":{"a":1}},{"v":{"a":1}},{"v":null}])")),
        R"([{"_id":null,"s":[1,null,[1],{"a":1}],"p":[1,1,1,null,[1],{"a":1},{"a":1},null]}])");
}

BOOST_AUTO_TEST_CASE(group_keys_use_value_equality_and_missing_ids_group_as_null) {
  auto out = run(R"([{"$group":{"_id":"$k","n":{"$sum":1}}}])",
                 docs(R"([{"k":1},{"k":1.0},{"k":{"$numberLong":"1"}},{},{"k":null},{"k":"1"}])"));
  check(out, R"([{"_id":1,"n":3},{"_id":null,"n":2},{"_id":"1","n":1}])");
  BOOST_TEST(field(out[0], "_id")->is<std::int32_t>()); // the first value seen
}

BOOST_AUTO_TEST_CASE(group_min_max_first_last_follow_the_manual) {
  check(run(R"([{"$group":{"_id":"$item","minQuantity":{"$min":"$quantity"},
                           "maxQuantity":{"$max":"$quantity"}}}])",
            sales()),
        R"([{"_id":"abc","minQuantity":2,"maxQuantity":10},
            {"_id":"jkl","minQuantity":1,"maxQuantity":1},
            {"_id":"xyz","minQuantity":10,"maxQuantity":20}])");
  // $first/$last after a $sort, as the manual advises.
  check(run(R"([{"$sort":{"item":1,"date":1}},
                {"$group":{"_id":"$item","firstSale":{"$first":"$date"},
                           "lastSale":{"$last":"$date"}}}])",
            sales()),
        R"([{"_id":"abc","firstSale":{"$date":"2014-03-01T08:00:00Z"},
                         "lastSale":{"$date":"2014-04-04T21:23:13.331Z"}},
            {"_id":"jkl","firstSale":{"$date":"2014-03-01T09:00:00Z"},
                         "lastSale":{"$date":"2014-03-01T09:00:00Z"}},
            {"_id":"xyz","firstSale":{"$date":"2014-03-15T09:00:00Z"},
                         "lastSale":{"$date":"2014-04-04T11:21:39.736Z"}}])");
}

BOOST_AUTO_TEST_CASE(group_min_and_max_ignore_null_and_missing_and_compare_in_bson_order) {
  check(run(R"([{"$group":{"_id":null,"min":{"$min":"$v"},"max":{"$max":"$v"},
                           "none":{"$min":"$nope"},"noneMax":{"$max":"$nope"}}}])",
            docs(R"([{"v":null},{"v":3},{},{"v":"a"},{"v":-2.5},{"v":null}])")),
        R"([{"_id":null,"min":-2.5,"max":"a","none":null,"noneMax":null}])");
}

BOOST_AUTO_TEST_CASE(group_first_and_last_take_null_for_a_missing_value) {
  check(run(R"([{"$group":{"_id":null,"f":{"$first":"$v"},"l":{"$last":"$v"}}}])",
            docs(R"([{},{"v":1},{"v":2},{}])")),
        R"([{"_id":null,"f":null,"l":null}])");
}

BOOST_AUTO_TEST_CASE(group_sum_ignores_non_numbers_and_avg_of_no_numbers_is_null) {
  check(run(R"([{"$group":{"_id":null,"sum":{"$sum":"$v"},"avg":{"$avg":"$v"},
                           "none":{"$sum":"$nope"},"noAvg":{"$avg":"$nope"},
                           "strings":{"$avg":"$s"}}}])",
            docs(R"([{"v":1,"s":"x"},{"v":"2"},{"v":[3,4]},{"v":null},{"v":true},{"v":2},{}])")),
        R"([{"_id":null,"sum":3,"avg":1.5,"none":0,"noAvg":null,"strings":null}])");
}

BOOST_AUTO_TEST_CASE(group_sum_keeps_and_widens_number_types) {
  auto out = run(R"([{"$group":{"_id":null,"ints":{"$sum":"$i"},"wide":{"$sum":"$w"},
                                "mixed":{"$sum":"$m"},"avg":{"$avg":"$i"}}}])",
                 docs(R"([{"i":1,"w":2147483647,"m":1},{"i":2,"w":1,"m":0.5}])"));
  BOOST_REQUIRE(out.size() == 1);
  BOOST_TEST(field(out[0], "ints")->is<std::int32_t>());
  BOOST_TEST(field(out[0], "ints")->as_int64() == 3);
  BOOST_TEST(field(out[0], "wide")->is<std::int64_t>());
  BOOST_TEST(field(out[0], "wide")->as_int64() == 2147483648LL);
  BOOST_TEST(field(out[0], "mixed")->is<double>());
  BOOST_TEST(field(out[0], "mixed")->as_double() == 1.5);
  BOOST_TEST(field(out[0], "avg")->is<double>());
  BOOST_TEST(field(out[0], "avg")->as_double() == 1.5);
}

BOOST_AUTO_TEST_CASE(group_of_no_documents_outputs_nothing) {
  check(run(R"([{"$group":{"_id":null,"n":{"$sum":1}}}])", {}), "[]");
}

BOOST_AUTO_TEST_CASE(group_rejects_bad_specifications) {
  BOOST_TEST(compile_error(R"([{"$group":{"n":{"$sum":1}}}])") == "$group needs an _id");
  BOOST_TEST(compile_error(R"([{"$group":[]}])") == "$group needs an object with an _id");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"n":{"$median":"$x"}}}])") ==
             "$group: unknown accumulator $median");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"n":{"$accumulator":{}}}}])") ==
             "operator $accumulator is not allowed");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"n":1}}])") ==
             "$group: field 'n' must be {<accumulator>: <expression>}");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"n":{"$sum":1,"$avg":1}}}])") ==
             "$group: field 'n' must be {<accumulator>: <expression>}");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"a.b":{"$sum":1}}}])") ==
             "$group: field 'a.b' must not contain '.'");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"$n":{"$sum":1}}}])") ==
             "$group: invalid field name '$n'");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"n":{"$sum":[1,2]}}}])") ==
             "$group: $sum takes one expression, not an array");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":null,"n":{"$count":1}}}])") ==
             R"($group: $count takes no argument, write {"$count": {}})");
  BOOST_TEST(compile_error(R"([{"$group":{"_id":{"$median":"$x"}}}])") ==
             "unknown expression operator $median");
  object duplicate{{"_id", value()}, {"n", obj(R"({"$sum":1})")}, {"n", obj(R"({"$sum":2})")}};
  BOOST_TEST(bad_request([&] { group_stage::compile(duplicate); }) ==
             "$group: duplicate field 'n'");
}

BOOST_AUTO_TEST_CASE(a_failing_expression_fails_the_run_with_a_400) {
  auto a = make(R"([{"$group":{"_id":null,"r":{"$sum":{"$divide":["$v",2]}}}}])");
  BOOST_TEST(bad_request([&] { a.run(docs(R"([{"v":1},{"v":"x"}])")); }) ==
             "$divide needs numbers, got string");
  check(a.run(docs(R"([{"v":1},{"v":3}])")), R"([{"_id":null,"r":2}])");
}

// ---- $unwind ----

BOOST_AUTO_TEST_CASE(unwind_outputs_a_document_per_element) {
  check(
      run(R"([{"$unwind":"$sizes"}])", docs(R"([{"_id":1,"item":"ABC1","sizes":["S","M","L"]}])")),
      R"([{"_id":1,"item":"ABC1","sizes":"S"},{"_id":1,"item":"ABC1","sizes":"M"},
            {"_id":1,"item":"ABC1","sizes":"L"}])");
  std::string expected = R"([{"_id":1,"item":"ABC","price":80,"sizes":"S"},
                             {"_id":1,"item":"ABC","price":80,"sizes":"M"},
                             {"_id":1,"item":"ABC","price":80,"sizes":"L"},
                             {"_id":3,"item":"IJK","price":160,"sizes":"M"}])";
  check(run(R"([{"$unwind":"$sizes"}])", inventory2()), expected);
  check(run(R"([{"$unwind":{"path":"$sizes"}}])", inventory2()), expected);
}

BOOST_AUTO_TEST_CASE(unwind_include_array_index_adds_the_position_as_a_long) {
  auto out =
      run(R"([{"$unwind":{"path":"$sizes","includeArrayIndex":"arrayIndex"}}])", inventory2());
  check(out, R"([{"_id":1,"item":"ABC","price":80,"sizes":"S","arrayIndex":0},
                 {"_id":1,"item":"ABC","price":80,"sizes":"M","arrayIndex":1},
                 {"_id":1,"item":"ABC","price":80,"sizes":"L","arrayIndex":2},
                 {"_id":3,"item":"IJK","price":160,"sizes":"M","arrayIndex":null}])");
  BOOST_TEST(field(out[1], "arrayIndex")->is<std::int64_t>());
}

BOOST_AUTO_TEST_CASE(unwind_preserve_null_and_empty_arrays_passes_those_documents) {
  check(run(R"([{"$unwind":{"path":"$sizes","preserveNullAndEmptyArrays":true}}])", inventory2()),
        R"([{"_id":1,"item":"ABC","price":80,"sizes":"S"},
            {"_id":1,"item":"ABC","price":80,"sizes":"M"},
            {"_id":1,"item":"ABC","price":80,"sizes":"L"},
            {"_id":2,"item":"EFG","price":120},
            {"_id":3,"item":"IJK","price":160,"sizes":"M"},
            {"_id":4,"item":"LMN","price":10},
            {"_id":5,"item":"XYZ","price":5.75,"sizes":null}])");
  check(run(R"([{"$unwind":{"path":"$sizes","preserveNullAndEmptyArrays":true,
                            "includeArrayIndex":"i"}},{"$match":{"_id":{"$gte":4}}}])",
            inventory2()),
        R"([{"_id":4,"item":"LMN","price":10,"i":null},
            {"_id":5,"item":"XYZ","price":5.75,"sizes":null,"i":null}])");
}

BOOST_AUTO_TEST_CASE(unwind_then_group_by_the_unwound_values) {
  // The manual's "Group by Unwound Values": averages M 120, L 80, S 80, null 45.25. The
  // manual lists L before S; here ties keep the groups' first-seen order (S, then L).
  check(run(R"([{"$unwind":{"path":"$sizes","preserveNullAndEmptyArrays":true}},
                {"$group":{"_id":"$sizes","averagePrice":{"$avg":"$price"}}},
                {"$sort":{"averagePrice":-1}}])",
            inventory2()),
        R"([{"_id":"M","averagePrice":120},{"_id":"S","averagePrice":80},
            {"_id":"L","averagePrice":80},{"_id":null,"averagePrice":45.25}])");
}

BOOST_AUTO_TEST_CASE(unwind_embedded_arrays_twice_then_total_by_tag) {
  auto out = run(R"([{"$unwind":"$items"},{"$unwind":"$items.tags"},
                     {"$group":{"_id":"$items.tags","totalSalesAmount":
                                 {"$sum":{"$multiply":["$items.price","$items.quantity"]}}}}])",
                 docs(R"([
    {"_id":"1","items":[{"name":"pens","tags":["writing","office","school","stationary"],
                         "price":12.00,"quantity":5},
                        {"name":"envelopes","tags":["stationary","office"],
                         "price":1.95,"quantity":8}]},
    {"_id":"2","items":[{"name":"laptop","tags":["office","electronics"],
                         "price":800.00,"quantity":1},
                        {"name":"notepad","tags":["stationary","school"],
                         "price":14.95,"quantity":3}]}])"));
  std::vector<std::pair<std::string, double>> expected = {{"writing", 60},
                                                          {"office", 875.6},
                                                          {"school", 104.85},
                                                          {"stationary", 120.45},
                                                          {"electronics", 800}};
  BOOST_REQUIRE(out.size() == expected.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    BOOST_TEST(field(out[i], "_id")->as_string() == expected[i].first);
    BOOST_TEST(std::fabs(field(out[i], "totalSalesAmount")->as_double() - expected[i].second) <
               1e-9);
  }
}

BOOST_AUTO_TEST_CASE(unwind_follows_objects_only_and_replaces_the_nested_field) {
  check(run(R"([{"$unwind":{"path":"$a.b","includeArrayIndex":"at.i"}}])",
            docs(R"([{"a":{"b":[1,2],"c":3},"at":5},{"a":[{"b":[1]}]},{"a":{"b":{"x":1}}}])")),
        R"([{"a":{"b":1,"c":3},"at":{"i":0}},{"a":{"b":2,"c":3},"at":{"i":1}},
            {"a":{"b":{"x":1}},"at":{"i":null}}])");
  check(run(R"([{"$unwind":{"path":"$a.b","preserveNullAndEmptyArrays":true}}])",
            docs(R"([{"a":{"b":[],"c":3}},{"a":[{"b":[1]}]}])")),
        R"([{"a":{"c":3}},{"a":[{"b":[1]}]}])");
}

BOOST_AUTO_TEST_CASE(unwind_rejects_bad_specifications) {
  BOOST_TEST(compile_error(R"([{"$unwind":"sizes"}])") ==
             "$unwind needs a field path starting with '$'");
  BOOST_TEST(compile_error(R"([{"$unwind":{"includeArrayIndex":"i"}}])") ==
             "$unwind needs a field path starting with '$'");
  BOOST_TEST(compile_error(R"([{"$unwind":"$$ROOT"}])") ==
             "$unwind needs a field path starting with '$'");
  BOOST_TEST(compile_error(R"([{"$unwind":5}])") == "$unwind needs a field path starting with '$'");
  BOOST_TEST(compile_error(R"([{"$unwind":"$a..b"}])") == "$unwind: invalid path '$a..b'");
  BOOST_TEST(compile_error(R"([{"$unwind":{"path":"$a","includeArrayIndex":"$i"}}])") ==
             "$unwind: includeArrayIndex needs a field name not starting with '$'");
  BOOST_TEST(compile_error(R"([{"$unwind":{"path":"$a","preserveNullAndEmptyArrays":1}}])") ==
             "$unwind: preserveNullAndEmptyArrays needs a boolean");
  BOOST_TEST(compile_error(R"([{"$unwind":{"path":"$a","keep":true}}])") ==
             "$unwind: unknown option 'keep'");
}

// ---- $count ----

BOOST_AUTO_TEST_CASE(count_counts_the_documents_that_reach_it) {
  // The manual's example: passing scores.
  auto scores = docs(R"([{"_id":1,"subject":"History","score":88},
                         {"_id":2,"subject":"History","score":92},
                         {"_id":3,"subject":"History","score":97},
                         {"_id":4,"subject":"History","score":71},
                         {"_id":5,"subject":"History","score":79},
                         {"_id":6,"subject":"History","score":83}])");
  check(run(R"([{"$match":{"score":{"$gt":80}}},{"$count":"passing_scores"}])", scores),
        R"([{"passing_scores":4}])");
  check(run(R"([{"$match":{"score":{"$gt":100}}},{"$count":"n"}])", scores), "[]");
  check(run(R"([{"$count":"n"},{"$set":{"twice":{"$multiply":["$n",2]}}}])", scores),
        R"([{"n":6,"twice":12}])");
}

BOOST_AUTO_TEST_CASE(count_needs_a_plain_field_name) {
  for (std::string arg : {R"("")", R"("$n")", R"("a.b")", "5", "{}"}) {
    BOOST_TEST_CONTEXT(arg) {
      BOOST_TEST(compile_error(R"([{"$count":)" + arg + "}]") ==
                 "$count needs a field name that is not empty, does not start with '$' and has "
                 "no '.'");
    }
  }
}

// ---- $sort ----

BOOST_AUTO_TEST_CASE(sort_is_stable_and_orders_by_several_keys) {
  BOOST_TEST(ids(run(R"([{"$sort":{"borough":1}}])", restaurants())) == (id_list{3, 5, 1, 4, 2}));
  BOOST_TEST(ids(run(R"([{"$sort":{"borough":-1}}])", restaurants())) == (id_list{2, 1, 4, 3, 5}));
  BOOST_TEST(ids(run(R"([{"$sort":{"borough":1,"_id":-1}}])", restaurants())) ==
             (id_list{5, 3, 4, 1, 2}));
  BOOST_TEST(ids(run(R"([{"$sort":{"_id":-1}}])", restaurants())) == (id_list{5, 4, 3, 2, 1}));
}

BOOST_AUTO_TEST_CASE(sort_uses_bson_order_missing_as_null_and_arrays_by_their_extremes) {
  auto input = docs(R"([{"_id":1,"v":"b"},{"_id":2},{"_id":3,"v":2},{"_id":4,"v":null},
                        {"_id":5,"v":[5,0]},{"_id":6,"v":1.5},{"_id":7,"v":{"a":1}}])");
  BOOST_TEST(ids(run(R"([{"$sort":{"v":1}}])", input)) == (id_list{2, 4, 5, 6, 3, 1, 7}));
  BOOST_TEST(ids(run(R"([{"$sort":{"v":-1}}])", input)) == (id_list{7, 1, 5, 3, 6, 2, 4}));
}

BOOST_AUTO_TEST_CASE(sort_stability_holds_over_many_ties_with_and_without_a_limit) {
  std::vector<object> input;
  for (int i = 0; i < 500; ++i)
    input.push_back(object{{"_id", i}, {"k", (i * 7) % 5}});
  auto expected = input;
  std::stable_sort(expected.begin(), expected.end(), [](auto& a, auto& b) {
    return field(a, "k")->as_int64() > field(b, "k")->as_int64();
  });
  BOOST_TEST(ids(run(R"([{"$sort":{"k":-1}}])", input)) == ids(expected));
  // $sort + $skip + $limit keeps only the documents that can reach the limit.
  auto page = run(R"([{"$sort":{"k":-1}},{"$skip":95},{"$limit":10}])", input);
  BOOST_TEST(ids(page) == ids(std::vector<object>(expected.begin() + 95, expected.begin() + 105)));
  auto few = run(R"([{"$sort":{"k":-1}},{"$limit":3}])", input);
  BOOST_TEST(ids(few) == ids(std::vector<object>(expected.begin(), expected.begin() + 3)));
}

BOOST_AUTO_TEST_CASE(sort_rejects_bad_specifications) {
  BOOST_TEST(compile_error(R"([{"$sort":{}}])") == "$sort needs an object with at least one field");
  BOOST_TEST(compile_error(R"([{"$sort":1}])") == "$sort needs an object with at least one field");
  BOOST_TEST(compile_error(R"([{"$sort":{"a":2}}])") ==
             "sort: direction for field 'a' must be 1 or -1");
  BOOST_TEST(compile_error(R"([{"$sort":{"score":{"$meta":"textScore"}}}])") ==
             "sort: direction for field 'score' must be 1 or -1");
}

// ---- $skip and $limit ----

BOOST_AUTO_TEST_CASE(skip_and_limit_select_a_slice_in_order) {
  BOOST_TEST(ids(run(R"([{"$skip":2}])", restaurants())) == (id_list{3, 4, 5}));
  BOOST_TEST(ids(run(R"([{"$limit":2}])", restaurants())) == (id_list{1, 2}));
  BOOST_TEST(ids(run(R"([{"$skip":1},{"$limit":2}])", restaurants())) == (id_list{2, 3}));
  BOOST_TEST(ids(run(R"([{"$limit":2},{"$skip":1}])", restaurants())) == (id_list{2}));
  BOOST_TEST(ids(run(R"([{"$skip":0},{"$limit":2.0}])", restaurants())) == (id_list{1, 2}));
  BOOST_TEST(ids(run(R"([{"$skip":9}])", restaurants())).empty());
  BOOST_TEST(ids(run(R"([{"$limit":{"$numberLong":"9000000000"}}])", restaurants())).size() == 5);
}

BOOST_AUTO_TEST_CASE(limit_stops_reading_the_input) {
  auto input = restaurants();
  std::size_t reads = 0;
  auto source = [&]() -> const object* { return reads < input.size() ? &input[reads++] : nullptr; };
  auto out = make(R"([{"$match":{"borough":"Manhattan"}},{"$limit":1}])").run(source);
  BOOST_TEST(ids(out) == (id_list{1}));
  BOOST_TEST(reads == 1);
  out = make(R"([{"$unwind":"$tags"},{"$limit":3}])")
            .run(docs(R"([{"_id":1,"tags":[1,2]},{"_id":2,"tags":[3,4]},{"_id":3,"tags":[5]}])"));
  BOOST_TEST(ids(out) == (id_list{1, 1, 2}));
}

BOOST_AUTO_TEST_CASE(skip_and_limit_need_whole_numbers_in_range) {
  BOOST_TEST(compile_error(R"([{"$limit":0}])") == "$limit needs a positive integer, got 0");
  BOOST_TEST(compile_error(R"([{"$limit":-1}])") == "$limit needs a positive integer, got -1");
  BOOST_TEST(compile_error(R"([{"$limit":1.5}])") == "$limit needs a positive integer, got 1.5");
  BOOST_TEST(compile_error(R"([{"$limit":"ten"}])") ==
             R"($limit needs a positive integer, got "ten")");
  BOOST_TEST(compile_error(R"([{"$skip":-1}])") == "$skip needs a non-negative integer, got -1");
  BOOST_TEST(compile_error(R"([{"$skip":null}])") ==
             "$skip needs a non-negative integer, got null");
}

// ---- the stream stages in aggregations ----

BOOST_AUTO_TEST_CASE(document_stages_work_on_documents) {
  check(run(R"([{"$match":{"item":"xyz"}},{"$set":{"total":{"$multiply":["$price","$quantity"]}}},
                {"$project":{"_id":0,"item":1,"total":1}}])",
            sales()),
        R"([{"item":"xyz","total":50},{"item":"xyz","total":100}])");
  check(run(R"([{"$group":{"_id":"$author","n":{"$sum":"$copies"}}},
                {"$replaceWith":{"who":"$_id","copies":"$n"}},{"$unset":"copies"}])",
            books()),
        R"([{"who":"Dante"},{"who":"Homer"}])");
}

// ---- variables ----

BOOST_AUTO_TEST_CASE(paging_variables_bind_skip_limit_page_and_pagesize) {
  std::vector<object> input;
  for (int i = 0; i < 10; ++i)
    input.push_back(object{{"_id", i}});
  auto a = make(R"([{"$sort":{"_id":-1}},{"$skip":"@skip"},{"$limit":"@limit"},
                    {"$set":{"page":"@page","size":"@pagesize","other":"@offset"}}])",
                "{}", {}, aggregation_paging{3, 2});
  check(a.run(input), R"([{"_id":5,"page":3,"size":2,"other":"@offset"},
                          {"_id":4,"page":3,"size":2,"other":"@offset"}])");
  // Without paging: page 1 of 100.
  auto first = make(R"([{"$skip":"@skip"},{"$limit":"@limit"},{"$count":"n"}])");
  check(first.run(input), R"([{"n":10}])");
}

BOOST_AUTO_TEST_CASE(client_variables_substitute_values_and_stages) {
  std::string stages = R"([{"$match":{"item":{"$var":"item"}}},
                           {"$ifvar":["min",{"$match":{"quantity":{"$gte":{"$var":"min"}}}}]},
                           {"$limit":{"$var":["n",10]}},
                           {"$group":{"_id":"$item","qty":{"$sum":"$quantity"}}}])";
  check(run(stages, sales(), R"({"item":"abc"})"), R"([{"_id":"abc","qty":12}])");
  check(run(stages, sales(), R"({"item":"abc","min":5})"), R"([{"_id":"abc","qty":10}])");
  check(run(stages, sales(), R"({"item":"xyz","n":1})"), R"([{"_id":"xyz","qty":10}])");
  BOOST_TEST(compile_error(stages) == "variable item not bound");
  BOOST_TEST(compile_error(stages, R"({"item":"abc","n":0})") ==
             "$limit needs a positive integer, got 0");
}

BOOST_AUTO_TEST_CASE(server_variables_resolve_in_aggregations) {
  server_vars sv{obj(R"({"_id":"ann"})"), date_time{1700000000000}, {}};
  auto a = make(R"([{"$match":{"owner":"@user._id"}},{"$set":{"at":"@now"}}])", "{}", sv);
  check(a.run(docs(R"([{"_id":1,"owner":"ann"},{"_id":2,"owner":"bob"}])")),
        R"([{"_id":1,"owner":"ann","at":{"$date":1700000000000}}])");
}

BOOST_AUTO_TEST_CASE(escaped_keys_are_unescaped) {
  auto a = aggregation::compile(obj(R"({"uri":"a","stages":[{"_$match":{"a::b":{"_$gt":1}}},
                                                            {"_$group":{"_id":"$a.b",
                                                                        "n":{"_$sum":1}}}]})"),
                                {}, {});
  check(a.run(docs(R"([{"a":{"b":1}},{"a":{"b":2}},{"a":{"b":2}}])")), R"([{"_id":2,"n":2}])");
}

// ---- readFilter ----

BOOST_AUTO_TEST_CASE(the_read_filter_applies_before_the_first_stage) {
  server_vars sv;
  sv.read_filter = obj(R"({"item":"abc"})");
  // The first stage removes the filtered field: the filter still saw it.
  auto a = make(R"([{"$project":{"item":0}},{"$group":{"_id":null,"n":{"$count":{}}}}])", "{}", sv);
  check(a.run(sales()), R"([{"_id":null,"n":2}])");
  // A $count would otherwise see all five documents.
  check(make(R"([{"$count":"n"}])", "{}", sv).run(sales()), R"([{"n":2}])");
  BOOST_TEST(to_json(value(a.pushdown().filter)) == R"({"item":"abc"})");
}

// ---- the memory bound ----

BOOST_AUTO_TEST_CASE(sort_and_group_fail_past_the_bound_naming_it) {
  aggregation_limits three{3};
  auto input = sales(); // five documents, three items
  BOOST_TEST(bad_request([&] { make(R"([{"$sort":{"item":1}}])").run(input, three); }) ==
             "$sort exceeded the limit of 3 documents (aggregation_max_documents)");
  BOOST_TEST(bad_request([&] {
               make(R"([{"$match":{"_id":{"$lte":3}}},{"$sort":{"item":1}}])").run(input, three);
             }) == "");
  // A $sort under a $limit holds only what can reach it.
  BOOST_TEST(bad_request([&] {
               make(R"([{"$sort":{"item":1}},{"$skip":1},{"$limit":2}])").run(input, three);
             }) == "");
  BOOST_TEST(bad_request([&] { make(R"([{"$group":{"_id":"$_id"}}])").run(input, three); }) ==
             "$group exceeded the limit of 3 documents (aggregation_max_documents)");
  BOOST_TEST(bad_request([&] { make(R"([{"$group":{"_id":"$item"}}])").run(input, three); }) == "");
  // Values collected by $push count: one group holding five documents.
  BOOST_TEST(bad_request([&] {
               make(R"([{"$group":{"_id":null,"all":{"$push":"$$ROOT"}}}])").run(input, three);
             }) == "$group exceeded the limit of 3 documents (aggregation_max_documents)");
  BOOST_TEST(bad_request([&] {
               make(R"([{"$group":{"_id":null,"n":{"$sum":1},"items":{"$addToSet":"$item"}}}])")
                   .run(input, aggregation_limits{4});
             }) == "");
  BOOST_TEST(bad_request([&] {
               std::vector<object> many(100001, obj("{}"));
               make(R"([{"$sort":{"a":1}}])").run(many);
             }) == "$sort exceeded the limit of 100000 documents (aggregation_max_documents)");
}

// ---- pushdown ----

namespace {

/// What a store does with a pushdown: filter, stable sort, skip, limit, in natural order.
std::vector<object> store_apply(const aggregation_pushdown& p, const std::vector<object>& input) {
  auto m = matcher::compile(p.filter);
  std::vector<object> out;
  for (auto& d : input)
    if (m.matches(d)) out.push_back(d);
  if (!p.sort.empty()) {
    auto spec = sort_spec::parse(p.sort);
    std::stable_sort(out.begin(), out.end(),
                     [&](auto& a, auto& b) { return spec.compare(a, b) < 0; });
  }
  auto skip = std::min<std::size_t>(std::size_t(p.skip), out.size());
  out.erase(out.begin(), out.begin() + std::ptrdiff_t(skip));
  if (p.limit && std::size_t(*p.limit) < out.size()) out.resize(std::size_t(*p.limit));
  return out;
}

std::vector<object> run_pushed_down(const aggregation& a, const std::vector<object>& input) {
  auto pushed = store_apply(a.pushdown(), input);
  std::size_t next = 0;
  return a.run_after_pushdown(
      [&]() -> const object* { return next < pushed.size() ? &pushed[next++] : nullptr; });
}

std::string describe(const aggregation_pushdown& p) {
  return to_json(value(object{{"filter", p.filter},
                              {"sort", p.sort},
                              {"skip", p.skip},
                              {"limit", p.limit ? value(*p.limit) : value()}}));
}

} // namespace

BOOST_AUTO_TEST_CASE(pushdown_reports_the_leading_match_sort_skip_and_limit) {
  auto a = make(R"([{"$match":{"item":{"$var":"item"}}},{"_$match":{"quantity":{"$gt":1}}},
                    {"$sort":{"date":-1}},{"$skip":1},{"$limit":5},{"$limit":2},
                    {"$match":{"price":5}},{"$limit":1}])",
                R"({"item":"xyz"})");
  BOOST_TEST(describe(a.pushdown()) ==
             R"({"filter":{"$and":[{"item":"xyz"},{"quantity":{"$gt":1}}]},"sort":{"date":-1},)"
             R"("skip":1,"limit":2})");
  BOOST_TEST(describe(make(R"([{"$sort":{"a":1}},{"$group":{"_id":"$a"}}])").pushdown()) ==
             R"({"filter":{},"sort":{"a":1},"skip":0,"limit":null})");
  BOOST_TEST(
      describe(make(R"([{"$limit":5},{"$skip":2},{"$skip":3},{"$sort":{"a":1}}])").pushdown()) ==
      R"({"filter":{},"sort":{},"skip":2,"limit":3})");
  BOOST_TEST(describe(make(R"([{"$project":{"a":1}},{"$match":{"a":1}}])").pushdown()) ==
             R"({"filter":{},"sort":{},"skip":0,"limit":null})");
  BOOST_TEST(describe(make(R"([{"$match":{}},{"$match":{"a":1}}])").pushdown()) ==
             R"({"filter":{"a":1},"sort":{},"skip":0,"limit":null})");
  server_vars sv;
  sv.read_filter = obj(R"({"owner":"ann"})");
  BOOST_TEST(describe(make(R"([{"$match":{"a":1}},{"$limit":"@limit"}])", "{}", sv,
                           aggregation_paging{2, 10})
                          .pushdown()) ==
             R"({"filter":{"$and":[{"owner":"ann"},{"a":1}]},"sort":{},"skip":0,"limit":10})");
}

BOOST_AUTO_TEST_CASE(running_after_a_pushdown_gives_the_results_of_running_everything) {
  std::vector<object> input;
  for (int i = 0; i < 60; ++i)
    input.push_back(object{{"_id", i},
                           {"owner", i % 3 ? "ann" : "bob"},
                           {"k", (i * 11) % 7},
                           {"tags", array{value(i % 4), value(i % 5)}}});
  server_vars sv;
  sv.read_filter = obj(R"({"owner":"ann"})");
  for (std::string stages : {
           R"([])",
           R"([{"$match":{"k":{"$gte":2}}}])",
           R"([{"$match":{"k":{"$gte":2}}},{"$sort":{"k":-1}},{"$skip":"@skip"},
               {"$limit":"@limit"}])",
           R"([{"$sort":{"k":1}},{"$limit":7},{"$skip":3},{"$group":{"_id":"$k",
               "ids":{"$push":"$_id"}}}])",
           R"([{"$limit":5},{"$skip":10}])",
           R"([{"$skip":4},{"$unwind":"$tags"},{"$group":{"_id":"$tags","n":{"$count":{}}}},
               {"$sort":{"n":-1,"_id":1}}])",
           R"([{"$match":{"k":1}},{"$match":{"tags":0}},{"$count":"n"}])",
           R"([{"$set":{"k2":{"$multiply":["$k",2]}}},{"$match":{"k2":4}},{"$sort":{"_id":-1}},
               {"$limit":2}])",
       }) {
    for (bool with_filter : {false, true}) {
      BOOST_TEST_CONTEXT(stages << (with_filter ? " with a readFilter" : "")) {
        auto a = make(stages, "{}", with_filter ? sv : server_vars{}, aggregation_paging{2, 4});
        auto everything = a.run(input);
        auto pushed = run_pushed_down(a, input);
        BOOST_TEST(to_json(as_value(pushed)) == to_json(as_value(everything)));
      }
    }
  }
}

// ---- declaration ----

BOOST_AUTO_TEST_CASE(validation_accepts_well_formed_aggregations) {
  BOOST_TEST(validation_error(R"({"aggrs":[
      {"uri":"by_user","type":"pipeline","stages":[
          {"_$match":{"owner":"@user._id"}},
          {"_$unwind":{"path":"$tags","includeArrayIndex":"i","preserveNullAndEmptyArrays":true}},
          {"_$group":{"_id":"$owner","n":{"_$sum":1},"avg":{"$avg":"$n"},"lo":{"$min":"$n"},
                      "hi":{"$max":"$n"},"f":{"$first":"$n"},"l":{"$last":"$n"},
                      "all":{"$push":"$$ROOT"},"set":{"$addToSet":"$tags"},"c":{"$count":{}}}},
          {"$sort":{"n":-1}},{"$skip":"@skip"},{"$limit":"@limit"},
          {"$project":{"n":1}},{"$set":{"page":"@page"}},{"$unset":"page"},
          {"$replaceWith":"$$ROOT"},{"$replaceRoot":{"newRoot":"$$ROOT"}},{"$count":"total"}]},
      {"uri":"empty","stages":[]}],
      "streams":[{"uri":"x","stages":[{"$lookup":{}}]}]})") == "");
  BOOST_TEST(validation_error(R"({"other":1})") == "");
}

BOOST_AUTO_TEST_CASE(validation_rejects_forbidden_and_unsupported_stages_naming_them) {
  for (std::string stage : {"$lookup", "$out", "$merge", "$where", "$function", "$accumulator",
                            "$facet", "$graphLookup", "$bucket", "$geoNear", "$sample"}) {
    BOOST_TEST_CONTEXT(stage) {
      auto expected = "aggregation 'by_user': stage " + stage + " is not allowed";
      BOOST_TEST(validation_error(R"({"aggrs":[{"uri":"by_user","stages":[{"_)" + stage +
                                  R"(":{}}]}]})") == expected);
      BOOST_TEST(validation_error(R"({"aggrs":[{"uri":"by_user","stages":[{")" + stage +
                                  R"(":{}}]}]})") == expected);
      BOOST_TEST(compile_error(R"([{")" + stage + R"(":{}}])") ==
                 "stage " + stage + " is not allowed");
    }
  }
}

BOOST_AUTO_TEST_CASE(validation_rejects_code_operators_and_unknown_accumulators) {
  BOOST_TEST(stages_error(R"([{"$match":{"$where":"1"}}])") ==
             "aggregation 'a': operator $where is not allowed");
  BOOST_TEST(stages_error(R"([{"$set":{"x":{"$function":{}}}}])") ==
             "aggregation 'a': operator $function is not allowed");
  BOOST_TEST(stages_error(R"([{"$group":{"_id":null,"x":{"$accumulator":{}}}}])") ==
             "aggregation 'a': operator $accumulator is not allowed");
  BOOST_TEST(stages_error(R"([{"$group":{"_id":null,"x":{"$median":"$a"}}}])") ==
             "aggregation 'a': $group: unknown accumulator $median");
  BOOST_TEST(stages_error(R"([{"$group":{"_id":null,"x":{"$stdDevPop":"$a"}}}])") ==
             "aggregation 'a': $group: unknown accumulator $stdDevPop");
}

BOOST_AUTO_TEST_CASE(validation_checks_stage_arguments) {
  BOOST_TEST(stages_error(R"([{"$limit":0}])") ==
             "aggregation 'a': $limit needs a positive integer, got 0");
  BOOST_TEST(stages_error(R"([{"$limit":"@limt"}])") ==
             R"(aggregation 'a': $limit needs a positive integer, got "@limt")");
  BOOST_TEST(stages_error(R"([{"$skip":-5}])") ==
             "aggregation 'a': $skip needs a non-negative integer, got -5");
  BOOST_TEST(stages_error(R"([{"$sort":{}}])") ==
             "aggregation 'a': $sort needs an object with at least one field");
  BOOST_TEST(stages_error(R"([{"$count":"a.b"}])") ==
             "aggregation 'a': $count needs a field name that is not empty, does not start with "
             "'$' and has no '.'");
  BOOST_TEST(stages_error(R"([{"$unwind":"tags"}])") ==
             "aggregation 'a': $unwind needs a field path starting with '$'");
  BOOST_TEST(stages_error(R"([{"$group":{"n":{"$sum":1}}}])") ==
             "aggregation 'a': $group needs an _id");
  BOOST_TEST(stages_error(R"([{"$match":{"$expr":{"$eq":[1,1]}}}])") ==
             "aggregation 'a': $match: $expr is not supported");
  BOOST_TEST(stages_error(R"([{"$project":{"a":1,"b":0}}])") ==
             "aggregation 'a': $project: cannot mix exclusion with inclusion or computed fields");
}

BOOST_AUTO_TEST_CASE(validation_checks_names_in_stages_with_variables) {
  BOOST_TEST(stages_error(R"([{"$match":{"a":{"$var":"a"}}},{"$limit":{"$var":["n",5]}},
                              {"$sort":{"$var":"sort"}},{"$skip":{"$var":"skip"}},
                              {"$group":{"_id":{"$var":"key"},"n":{"$sum":1},
                                         "x":{"$max":{"$add":["$a",{"$var":"d"}]}}}},
                              {"$ifvar":["u",{"$unwind":{"$var":"u"}},{"$count":"n"}]}])") == "");
  BOOST_TEST(stages_error(R"([{"$group":{"_id":{"$var":"k"},"n":{"$median":"$x"}}}])") ==
             "aggregation 'a': unknown expression operator $median");
  BOOST_TEST(stages_error(R"([{"$group":{"_id":{"$var":"k"},"n":{"$accumulator":{}}}}])") ==
             "aggregation 'a': operator $accumulator is not allowed");
  BOOST_TEST(stages_error(R"([{"$lookup":{"from":{"$var":"c"}}}])") ==
             "aggregation 'a': stage $lookup is not allowed");
  BOOST_TEST(stages_error(R"([{"$ifvar":["x",{"$limit":1},{"$out":"c"}]}])") ==
             "aggregation 'a': stage $out is not allowed");
  BOOST_TEST(stages_error(R"([{"$match":{"a":{"$var":"a"},"b":{"$near":1}}}])") ==
             "aggregation 'a': unknown operator $near");
  BOOST_TEST(stages_error(R"([{"$limit":{"$var":{"name":"n"}}}])") ==
             R"(aggregation 'a': $var needs "name" or ["name", default])");
}

BOOST_AUTO_TEST_CASE(validation_rejects_malformed_aggregation_lists) {
  BOOST_TEST(validation_error(R"({"aggrs":{}})") == "aggrs must be an array");
  BOOST_TEST(validation_error(R"({"aggrs":[1]})") == "aggrs[0] must be an object");
  BOOST_TEST(validation_error(R"({"aggrs":[{"stages":[]}]})") ==
             "aggrs[0]: uri must be a non-empty string");
  BOOST_TEST(validation_error(R"({"aggrs":[{"uri":"a","stages":[]},{"uri":"a","stages":[]}]})") ==
             "duplicate aggregation uri 'a'");
  BOOST_TEST(validation_error(R"({"aggrs":[{"uri":"a"}]})") ==
             "aggregation 'a': stages must be an array");
  BOOST_TEST(validation_error(R"({"aggrs":[{"uri":"a","type":"mapReduce","map":"f"}]})") ==
             R"(aggregation 'a': type must be "pipeline" (map-reduce is not supported))");
  BOOST_TEST(stages_error(R"([{"$limit":1,"$skip":1}])") ==
             "aggregation 'a': a stage must be an object with exactly one field, the stage name");
}

BOOST_AUTO_TEST_CASE(find_aggr_finds_a_definition_by_uri) {
  auto metadata = obj(R"({"aggrs":[{"uri":"a","stages":[]},{"uri":"b","stages":[{"$limit":1}]}],
                          "streams":[{"uri":"c","stages":[]}]})");
  BOOST_REQUIRE(find_aggr(metadata, "b") != nullptr);
  BOOST_TEST(to_json(value(*find_aggr(metadata, "b"))) == R"({"uri":"b","stages":[{"$limit":1}]})");
  BOOST_TEST(find_aggr(metadata, "c") == nullptr);
  BOOST_TEST(find_aggr(obj("{}"), "a") == nullptr);
}

// ---- sharing ----

BOOST_AUTO_TEST_CASE(runs_keep_their_own_state) {
  auto a = make(R"([{"$skip":1},{"$limit":2},{"$group":{"_id":null,"n":{"$count":{}}}}])");
  aggregation copy = a;
  check(a.run(sales()), R"([{"_id":null,"n":2}])");
  check(copy.run(sales()), R"([{"_id":null,"n":2}])");
  check(a.run(sales()), R"([{"_id":null,"n":2}])");
}

BOOST_AUTO_TEST_SUITE_END()
