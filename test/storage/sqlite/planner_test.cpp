// The embedded store's query planner (storage/sqlite/planner.cpp) on its own: which index
// choose_plan() picks for a filter and a sort, whether it provides the sort (and in which
// direction), and which index entries its key ranges cover. The ranges are checked against
// the entry keys the writer stores (index_keys() + entry_key()): a matching document must
// be inside them, a document the conditions exclude outside.
#include <boost/test/unit_test.hpp>

#include "storage/document/index_key.hpp"
#include "storage/sqlite/id_key.hpp"
#include "storage/sqlite/planner.hpp"
#include "test/storage/sqlite/store_test_support.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

using namespace rheo;
using namespace rheo::sqlite;
using rheo::test::J;

BOOST_AUTO_TEST_SUITE(planner_test)

namespace {

using sort_keys = std::vector<std::pair<std::string, int>>;

/// The REST API's default order: newest first.
const sort_keys newest_first{{"_id", -1}};
/// Sorted by field a.
const sort_keys by_a{{"a", 1}, {"_id", 1}};

/// A ready secondary index, as the catalog holds it (its row id is not 0: that is _id_'s).
index_def index(const std::string& name, std::string_view key, std::string_view options = "{}") {
  static std::int64_t next_id = 1;
  index_def def = parse_index(name, J(key), J(options));
  def.id = next_id++;
  return def;
}

/// Whether the plan scans the entry of `doc` (its first key in the plan's index).
bool scans(const plan& p, const object& doc) {
  const index_def& def = *p.index;
  std::string entry;
  if (def.is_id()) {
    entry = id_key(*find_field(doc, "_id"));
  } else {
    auto keys = index_keys(doc, def.spec);
    BOOST_REQUIRE(!keys.empty());
    entry = entry_key(def, keys.front(), id_key(*find_field(doc, "_id")));
  }
  for (auto& r : p.ranges)
    if (r.lo <= entry && (r.hi.empty() || entry < r.hi)) return true;
  return false;
}

} // namespace

BOOST_AUTO_TEST_CASE(without_indexes_the_documents_are_scanned_in_id_order) {
  auto p = choose_plan(J(R"({"a": 5})"), newest_first, {});
  BOOST_REQUIRE(p.index);
  BOOST_TEST(p.index->is_id());
  // {_id: -1} is the _id index backward: no sort in memory.
  BOOST_TEST(p.provides_sort);
  BOOST_TEST(p.backward);
  BOOST_TEST(scans(p, J(R"({"_id": 1, "a": 5})")));
  BOOST_TEST(scans(p, J(R"({"_id": "x", "a": 6})"))); // the filter is checked afterwards
}

BOOST_AUTO_TEST_CASE(an_equality_on_an_indexed_field_scans_only_its_value) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})"), index("b_1", R"({"b": 1})")};
  auto p = choose_plan(J(R"({"b": "x"})"), newest_first, idx);
  BOOST_TEST(p.index->name == "b_1");
  BOOST_TEST(p.ranges.size() == 1u);
  BOOST_TEST(scans(p, J(R"({"_id": 1, "b": "x"})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 2, "b": "y"})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 3, "b": 5})")));
  // The same through $eq and inside $and.
  BOOST_TEST(choose_plan(J(R"({"b": {"$eq": "x"}})"), newest_first, idx).index->name == "b_1");
  BOOST_TEST(choose_plan(J(R"({"$and": [{"b": "x"}]})"), newest_first, idx).index->name == "b_1");
}

BOOST_AUTO_TEST_CASE(an_equality_on_id_wins_over_every_other_index) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})"), index("ab", R"({"a": 1, "b": 1})")};
  auto p = choose_plan(J(R"({"a": 5, "b": 6, "_id": 7})"), newest_first, idx);
  BOOST_TEST(p.index->is_id());
  BOOST_TEST(scans(p, J(R"({"_id": 7})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 8})")));
}

BOOST_AUTO_TEST_CASE(the_index_fixing_more_fields_wins) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})"), index("ab", R"({"a": 1, "b": 1})")};
  auto p = choose_plan(J(R"({"a": 5, "b": 6})"), newest_first, idx);
  BOOST_TEST(p.index->name == "ab");
  BOOST_TEST(scans(p, J(R"({"_id": 1, "a": 5, "b": 6})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 1, "a": 5, "b": 7})")));
  // Only the first field given: the single-field index wins, as its equal keys are also in
  // _id order (the sort), where the compound one's are in b order.
  auto a = choose_plan(J(R"({"a": 5})"), newest_first, idx);
  BOOST_TEST(a.index->name == "a_1");
  BOOST_TEST(a.provides_sort);
}

BOOST_AUTO_TEST_CASE(an_index_after_the_equality_prefix_provides_the_sort_in_either_direction) {
  // The chat's query: one room, newest first.
  std::vector<index_def> idx{index("room_ts", R"({"room": 1, "ts": -1})")};
  auto desc = choose_plan(J(R"({"room": "r1"})"), {{"ts", -1}, {"_id", -1}}, idx);
  BOOST_TEST(desc.index->name == "room_ts");
  BOOST_TEST(desc.provides_sort);
  BOOST_TEST(!desc.backward);
  auto asc = choose_plan(J(R"({"room": "r1"})"), {{"ts", 1}, {"_id", 1}}, idx);
  BOOST_TEST(asc.index->name == "room_ts");
  BOOST_TEST(asc.provides_sort);
  BOOST_TEST(asc.backward);
  // Mixed directions are neither the index's order nor its reverse: sorted in memory.
  auto mixed = choose_plan(J(R"({"room": "r1"})"), {{"ts", 1}, {"_id", -1}}, idx);
  BOOST_TEST(mixed.index->name == "room_ts"); // still the best filter
  BOOST_TEST(!mixed.provides_sort);
  // A sort on a field that is not next in the index is not provided either.
  BOOST_TEST(!choose_plan(J(R"({"room": "r1"})"), {{"other", 1}, {"_id", 1}}, idx).provides_sort);
}

BOOST_AUTO_TEST_CASE(an_index_that_only_provides_the_sort_is_used_for_it) {
  std::vector<index_def> idx{index("ts_1", R"({"ts": 1})")};
  auto p = choose_plan(J("{}"), {{"ts", -1}, {"_id", -1}}, idx);
  BOOST_TEST(p.index->name == "ts_1");
  BOOST_TEST(p.provides_sort);
  BOOST_TEST(p.backward);
  BOOST_TEST(scans(p, J(R"({"_id": 1, "ts": 5})")));
  // Neither a predicate nor the sort: not worth it, the _id scan stays.
  BOOST_TEST(choose_plan(J("{}"), newest_first, idx).index->is_id());
}

BOOST_AUTO_TEST_CASE(after_a_unique_key_further_sort_keys_do_not_matter) {
  // Equal keys cannot occur in a unique index: the sort keys after its fields never decide.
  const sort_keys sort{{"email", 1}, {"name", -1}, {"_id", 1}};
  std::vector<index_def> unique{index("email", R"({"email": 1})", R"({"unique": true})")};
  auto u = choose_plan(J("{}"), sort, unique);
  BOOST_TEST(u.index->name == "email");
  BOOST_TEST(u.provides_sort);
  BOOST_TEST(!u.backward);
  std::vector<index_def> plain{index("email", R"({"email": 1})")};
  auto p = choose_plan(J("{}"), sort, plain);
  BOOST_TEST(p.index->is_id());
  BOOST_TEST(!p.provides_sort);
}

BOOST_AUTO_TEST_CASE(in_gives_one_range_per_value_and_no_sort) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})")};
  auto p = choose_plan(J(R"({"a": {"$in": [3, 1, 2, 1]}})"), by_a, idx);
  BOOST_TEST(p.index->name == "a_1");
  BOOST_TEST(p.ranges.size() == 3u); // the duplicate collapses
  // Ascending (as bytes: Boost.Test would compare the strings' chars as signed).
  BOOST_TEST(std::is_sorted(p.ranges.begin(), p.ranges.end(),
                            [](const key_range& x, const key_range& y) { return x.lo < y.lo; }));
  BOOST_TEST(!p.provides_sort); // the values' ranges come one after another, not merged
  for (int v : {1, 2, 3})
    BOOST_TEST(scans(p, object{{"_id", 1}, {"a", v}}));
  BOOST_TEST(!scans(p, J(R"({"_id": 1, "a": 4})")));
}

BOOST_AUTO_TEST_CASE(a_range_is_bounded_on_both_ends_and_to_the_bounds_type) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})")};
  auto p = choose_plan(J(R"({"a": {"$gt": 3, "$lte": 10}})"), by_a, idx);
  BOOST_TEST(p.index->name == "a_1");
  BOOST_TEST(p.provides_sort);
  BOOST_TEST(p.ranges.size() == 1u);
  BOOST_TEST(scans(p, J(R"({"_id": 1, "a": 5})")));
  BOOST_TEST(scans(p, J(R"({"_id": 1, "a": 10})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 1, "a": 11})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 1, "a": 2})")));
  // One bound: up to the end of the numbers, not into the strings (as MongoDB compares).
  auto open = choose_plan(J(R"({"a": {"$gte": 3}})"), by_a, idx);
  BOOST_TEST(scans(open, J(R"({"_id": 1, "a": 1e300})")));
  BOOST_TEST(!scans(open, J(R"({"_id": 1, "a": "zzz"})")));
  BOOST_TEST(!scans(open, J(R"({"_id": 1, "a": null})")));
  // On a descending field the same range, inverted.
  std::vector<index_def> desc{index("a_-1", R"({"a": -1})")};
  auto d = choose_plan(J(R"({"a": {"$gt": 3, "$lte": 10}})"), by_a, desc);
  BOOST_TEST(d.index->name == "a_-1");
  BOOST_TEST(d.backward);
  BOOST_TEST(scans(d, J(R"({"_id": 1, "a": 5})")));
  BOOST_TEST(!scans(d, J(R"({"_id": 1, "a": 11})")));
  BOOST_TEST(!scans(d, J(R"({"_id": 1, "a": 2})")));
}

BOOST_AUTO_TEST_CASE(a_range_alone_does_not_beat_the_id_order_of_the_default_sort) {
  // Newest first is the _id index backward: its scan stops after the page, where the
  // range's matches would all be sorted in memory.
  std::vector<index_def> idx{index("a_1", R"({"a": 1})")};
  auto p = choose_plan(J(R"({"a": {"$gt": 3}})"), newest_first, idx);
  BOOST_TEST(p.index->is_id());
  BOOST_TEST(p.provides_sort);
  // An equality does (the index's equal keys are in _id order).
  BOOST_TEST(choose_plan(J(R"({"a": 3})"), newest_first, idx).index->name == "a_1");
}

BOOST_AUTO_TEST_CASE(a_range_across_two_types_keeps_its_lower_bound) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})")};
  auto p = choose_plan(J(R"({"a": {"$gt": 3, "$lt": "m"}})"), by_a, idx);
  BOOST_TEST(p.index->name == "a_1");
  BOOST_TEST(scans(p, J(R"({"_id": 1, "a": 100})")));
  BOOST_TEST(!scans(p, J(R"({"_id": 1, "a": 1})")));
}

BOOST_AUTO_TEST_CASE(regexes_arrays_and_or_use_no_index) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})")};
  BOOST_TEST(choose_plan(J(R"({"a": {"$regex": "^x"}})"), newest_first, idx).index->is_id());
  BOOST_TEST(choose_plan(J(R"({"a": [1, 2]})"), newest_first, idx).index->is_id());
  BOOST_TEST(choose_plan(J(R"({"$or": [{"a": 1}, {"a": 2}]})"), newest_first, idx).index->is_id());
}

BOOST_AUTO_TEST_CASE(a_sparse_index_needs_a_condition_that_excludes_missing_fields) {
  std::vector<index_def> idx{index("a_1", R"({"a": 1})", R"({"sparse": true})")};
  // {a: null} matches documents without `a`, which a sparse index does not hold.
  BOOST_TEST(choose_plan(J(R"({"a": null})"), newest_first, idx).index->is_id());
  BOOST_TEST(choose_plan(J(R"({"a": 5})"), newest_first, idx).index->name == "a_1");
  BOOST_TEST(choose_plan(J(R"({"a": {"$in": [5, null]}})"), newest_first, idx).index->is_id());
  // Nor for the sort alone: it would skip the documents without the field.
  BOOST_TEST(choose_plan(J("{}"), by_a, idx).index->is_id());
}

BOOST_AUTO_TEST_CASE(a_partial_index_needs_its_filter_in_the_query_literally) {
  std::vector<index_def> idx{
      index("a_1", R"({"a": 1})", R"({"partialFilterExpression": {"kind": "msg"}})")};
  BOOST_TEST(choose_plan(J(R"({"a": 5})"), newest_first, idx).index->is_id());
  BOOST_TEST(choose_plan(J(R"({"a": 5, "kind": "msg"})"), newest_first, idx).index->name == "a_1");
  BOOST_TEST(
      choose_plan(J(R"({"$and": [{"kind": "msg"}, {"a": 5}]})"), newest_first, idx).index->name ==
      "a_1");
  BOOST_TEST(choose_plan(J(R"({"a": 5, "kind": "other"})"), newest_first, idx).index->is_id());
}

BOOST_AUTO_TEST_CASE(a_multikey_index_serves_no_sort_and_one_end_of_a_range) {
  auto def = index("a_1", R"({"a": 1})");
  def.multikey = true;
  std::vector<index_def> idx{def};
  BOOST_TEST(choose_plan(J("{}"), by_a, idx).index->is_id());
  auto eq = choose_plan(J(R"({"a": 5})"), by_a, idx);
  BOOST_TEST(eq.index->name == "a_1");
  BOOST_TEST(!eq.provides_sort);
  // {a: [1, 20]} matches {$gt: 3, $lt: 10} (20 > 3, 1 < 10) although no element is inside:
  // only the lower bound may narrow the scan.
  auto range = choose_plan(J(R"({"a": {"$gt": 3, "$lt": 10}})"), by_a, idx);
  BOOST_TEST(range.index->name == "a_1");
  BOOST_TEST(scans(range, J(R"({"_id": 1, "a": 20})")));
  BOOST_TEST(!scans(range, J(R"({"_id": 1, "a": 1})")));
}

BOOST_AUTO_TEST_CASE(an_index_still_building_is_not_used) {
  auto def = index("a_1", R"({"a": 1})");
  def.ready = false;
  BOOST_TEST(choose_plan(J(R"({"a": 5})"), newest_first, {def}).index->is_id());
}

BOOST_AUTO_TEST_SUITE_END()
