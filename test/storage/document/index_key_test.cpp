#include <boost/test/unit_test.hpp>

#include "storage/document/index_key.hpp"
#include "storage/document/json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace rheo;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(index_key_test)

namespace {

using i64 = std::int64_t;
using i32 = std::int32_t;

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr i64 i64_min = std::numeric_limits<i64>::min();
constexpr i64 i64_max = std::numeric_limits<i64>::max();
constexpr i64 two_53 = i64{1} << 53;

int sign(int x) {
  return (x > 0) - (x < 0);
}

/// memcmp order, shorter prefix first: std::string compares as unsigned bytes.
int byte_order(const std::string& a, const std::string& b) {
  return sign(a.compare(b));
}

/// Whether `a` sorts before `b` in memcmp order. (BOOST_TEST(a < b) on strings would
/// compare their lengths first.)
bool sorts_before(const std::string& a, const std::string& b) {
  return byte_order(a, b) < 0;
}

std::string descending(const value& v) {
  return encode_compound_key({v}, {-1});
}

object_id oid(const char* hex) {
  return *object_id::from_hex(hex);
}

/// Sample values in MongoDB's BSON comparison order
/// (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/): each group
/// holds values that compare equal, and each group sorts strictly before the next.
std::vector<std::vector<value>> comparison_table() {
  double nan = std::numeric_limits<double>::quiet_NaN();
  return {
      {min_key{}},
      {value()},
      // Numbers: NaN lowest, then by value whatever the representation.
      {nan, -nan},
      {-inf},
      {-std::numeric_limits<double>::max()},
      {i64_min, -9223372036854775808.0},
      {i64_min + 1},
      {-(two_53 + 1)},
      {-two_53, -9007199254740992.0},
      {-1.5},
      {i32{-1}, i64{-1}, -1.0},
      {-std::numeric_limits<double>::denorm_min()},
      {i32{0}, i64{0}, 0.0, -0.0},
      {std::numeric_limits<double>::denorm_min()},
      {std::numeric_limits<double>::min() / 2}, // a subnormal
      {std::numeric_limits<double>::min()},
      {0.5},
      {i32{1}, i64{1}, 1.0},
      {std::nextafter(1.0, 2.0)},
      {1.5},
      {i32{std::numeric_limits<i32>::max()}, i64{std::numeric_limits<i32>::max()}, 2147483647.0},
      {i64{2147483648}, 2147483648.0},
      {two_53 - 1, 9007199254740991.0},
      {two_53, 9007199254740992.0},
      {two_53 + 1},
      {two_53 + 2, 9007199254740994.0},
      {i64{1} << 62, 4611686018427387904.0},
      {i64_max - 1023, 9223372036854774784.0}, // the largest double below 2^63
      {i64_max - 1},
      {i64_max},
      {9223372036854775808.0}, // 2^63, above every int64
      {std::numeric_limits<double>::max()},
      {inf},
      // Strings: by bytes (UTF-8, so by code point), a prefix first.
      {""},
      {"\0"s},
      {"\0\0"s},
      {"\0\x01"s},
      {"\x01"},
      {"A"},
      {"a"},
      {"a\0"s},
      {"a\0b"s},
      {"a\x01"},
      {"ab"},
      {"ab\0"s},
      {"b"},
      {"\x7f"},
      {"\xc3\xa9"},         // é, U+00E9
      {"\xe4\xb8\xad"},     // 中, U+4E2D
      {"\xef\xbf\xbd"},     // U+FFFD
      {"\xf0\x9d\x84\x9e"}, // 𝄞, U+1D11E
      // Objects: field by field, the value's type, then the name, then the value; fewer
      // fields first.
      {object{}},
      {object{{"b", value()}}}, // null sorts before numbers whatever the name
      {object{{"a", i32{1}}}, object{{"a", i64{1}}}, object{{"a", 1.0}}},
      {object{{"a", 1}, {"b", 1}}},
      {object{{"a", 2}}},
      {object{{"a\0b"s, 1}}},
      {object{{"ab", 0}}},
      {object{{"b", 0}}},
      {object{{"a", ""}}},
      {object{{"a", object{}}}},
      {object{{"a", object{{"a", 1}}}}},
      {object{{"a", array{}}}},
      {object{{"a", true}}},
      // Arrays: element by element (type, then value), fewer elements first.
      {array{}},
      {array{value()}},
      {array{1}, array{1.0}},
      {array{1, 2}},
      {array{1, "a"}},
      {array{2}},
      {array{"a"}},
      {array{object{}}},
      {array{array{}}},
      {array{array{1}}},
      {array{true}},
      // binData: length, then subtype, then bytes.
      {binary_value{0, ""}},
      {binary_value{5, ""}},
      {binary_value{0, "\xff"}},
      {binary_value{0, "\0\x01"s}},
      {binary_value{0, "\x01\0"s}},
      {binary_value{4, "\0\0"s}},
      {binary_value{0, "abc"}},
      {binary_value{4, "0123456789abcdef"}},
      // ObjectId: by bytes, unsigned.
      {oid("000000000000000000000000")},
      {oid("000000000000000000000001")},
      {oid("00000000000000000000ff00")},
      {oid("7fffffffffffffffffffffff")},
      {oid("800000000000000000000000")},
      {oid("ffffffffffffffffffffffff")},
      {false},
      {true},
      // Dates: signed milliseconds.
      {date_time{i64_min}},
      {date_time{-1}},
      {date_time{0}},
      {date_time{1}},
      {date_time{i64_max}},
      // Timestamps: t, then i, unsigned.
      {timestamp_value{0, 0}},
      {timestamp_value{0, 1}},
      {timestamp_value{0, 0xffffffff}},
      {timestamp_value{1, 0}},
      {timestamp_value{0x80000000, 0}},
      {timestamp_value{0xffffffff, 0xffffffff}},
      // Regexes: pattern, then options.
      {regex_value{"", ""}},
      {regex_value{"", "i"}},
      {regex_value{"a", ""}},
      {regex_value{"a", "i"}},
      {regex_value{"a", "m"}},
      {regex_value{"ab", ""}},
      {regex_value{"b", ""}},
      {max_key{}},
  };
}

struct ranked {
  value v;
  std::size_t rank; // the group's position in the table
};

std::vector<ranked> flatten(const std::vector<std::vector<value>>& table) {
  std::vector<ranked> out;
  for (std::size_t g = 0; g < table.size(); ++g)
    for (const auto& v : table[g])
      out.push_back({v, g});
  return out;
}

int rank_order(const ranked& a, const ranked& b) {
  return a.rank < b.rank ? -1 : (a.rank > b.rank ? 1 : 0);
}

/// The order of compound keys: field by field, compare_values, reversed where descending.
int tuple_order(const std::vector<value>& a, const std::vector<value>& b,
                const std::vector<int>& directions) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (int r = sign(compare_values(a[i], b[i]))) return directions[i] < 0 ? -r : r;
  return 0;
}

std::vector<std::string> keys_of(const char* json, const index_key_spec& spec) {
  return index_keys(parse_json(json).as_object(), spec);
}

index_key_spec ascending_on(std::string path) {
  return {{{std::move(path), 1}}};
}

std::vector<std::string> single_keys(std::vector<value> values) {
  std::vector<std::string> out;
  for (const auto& v : values)
    out.push_back(encode_key(v));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> compound_keys(std::vector<std::vector<value>> tuples,
                                       const std::vector<int>& directions) {
  std::vector<std::string> out;
  for (const auto& t : tuples)
    out.push_back(encode_compound_key(t, directions));
  std::sort(out.begin(), out.end());
  return out;
}

/// The message of the api_error(400) that index_keys raises, or "" when none.
std::string index_error(const char* json, const index_key_spec& spec) {
  try {
    keys_of(json, spec);
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return e.what();
  }
  return "";
}

} // namespace

// ---- the comparison table ----

BOOST_AUTO_TEST_CASE(compare_values_follows_the_bson_comparison_order_of_the_table) {
  auto values = flatten(comparison_table());
  BOOST_TEST_MESSAGE(values.size() << " sample values");
  for (const auto& a : values)
    for (const auto& b : values)
      BOOST_TEST(sign(compare_values(a.v, b.v)) == rank_order(a, b), to_json(a.v)
                                                                         << " vs " << to_json(b.v));
}

BOOST_AUTO_TEST_CASE(ascending_encodings_order_as_compare_values_for_every_pair) {
  auto values = flatten(comparison_table());
  for (const auto& a : values)
    for (const auto& b : values)
      BOOST_TEST(byte_order(encode_key(a.v), encode_key(b.v)) == sign(compare_values(a.v, b.v)),
                 to_json(a.v) << " vs " << to_json(b.v));
}

BOOST_AUTO_TEST_CASE(descending_encodings_order_in_reverse_for_every_pair) {
  auto values = flatten(comparison_table());
  for (const auto& a : values)
    for (const auto& b : values)
      BOOST_TEST(byte_order(descending(a.v), descending(b.v)) == -sign(compare_values(a.v, b.v)),
                 to_json(a.v) << " vs " << to_json(b.v));
}

BOOST_AUTO_TEST_CASE(no_encoding_is_a_proper_prefix_of_another) {
  // What makes concatenated (and inverted) encodings order field by field.
  auto values = flatten(comparison_table());
  for (const auto& a : values)
    for (const auto& b : values) {
      auto x = encode_key(a.v), y = encode_key(b.v);
      BOOST_TEST(!(x.size() < y.size() && y.starts_with(x)), to_json(a.v)
                                                                 << " vs " << to_json(b.v));
    }
}

BOOST_AUTO_TEST_CASE(equal_numbers_encode_identically_whatever_their_representation) {
  BOOST_TEST(encode_key(i32{1}) == encode_key(i64{1}));
  BOOST_TEST(encode_key(i32{1}) == encode_key(1.0));
  BOOST_TEST(encode_key(0.0) == encode_key(-0.0));
  BOOST_TEST(encode_key(two_53) == encode_key(9007199254740992.0));
  BOOST_TEST(encode_key(i64_min) == encode_key(-9223372036854775808.0));
  BOOST_TEST(encode_key(std::numeric_limits<double>::quiet_NaN()) ==
             encode_key(-std::numeric_limits<double>::quiet_NaN()));
  BOOST_TEST(encode_key(two_53 + 1) != encode_key(9007199254740992.0));
  BOOST_TEST(encode_key(array{1, object{{"a", 2}}}) ==
             encode_key(array{1.0, object{{"a", i64{2}}}}));
}

BOOST_AUTO_TEST_CASE(int64_values_beyond_two_pow_53_sit_exactly_between_neighbouring_doubles) {
  BOOST_TEST(sorts_before(encode_key(9007199254740992.0), encode_key(two_53 + 1)));
  BOOST_TEST(sorts_before(encode_key(two_53 + 1), encode_key(9007199254740994.0)));
  BOOST_TEST(sorts_before(encode_key(9223372036854774784.0), encode_key(i64_max - 1)));
  BOOST_TEST(sorts_before(encode_key(i64_max), encode_key(9223372036854775808.0)));
  BOOST_TEST(sorts_before(encode_key(-9223372036854775808.0), encode_key(i64_min + 1)));
}

BOOST_AUTO_TEST_CASE(strings_with_nul_bytes_order_as_bytes_prefix_first) {
  BOOST_TEST(sorts_before(encode_key("a"), encode_key("a\0"s)));
  BOOST_TEST(sorts_before(encode_key("a\0"s), encode_key("a\0b"s)));
  BOOST_TEST(sorts_before(encode_key("a\0b"s), encode_key("ab")));
  BOOST_TEST(encode_key("a\0b"s) != encode_key("a\0c"s));
}

BOOST_AUTO_TEST_CASE(directions_other_than_one_and_minus_one_are_rejected) {
  BOOST_CHECK_THROW(encode_compound_key({1}, {0}), api_error);
  BOOST_CHECK_THROW(encode_compound_key({1}, {2}), api_error);
  BOOST_CHECK_THROW(encode_compound_key({1, 2}, {1}), std::invalid_argument);
}

// ---- compound keys ----

BOOST_AUTO_TEST_CASE(compound_keys_order_field_by_field_in_every_direction_combination) {
  const std::vector<value> firsts = {min_key{}, value(),      i32{1},           1.0,     i64{2},
                                     "",        "a",          "a\0"s,           "ab",    "abc",
                                     "b",       object{},     object{{"a", 1}}, array{}, array{1},
                                     false,     date_time{0}, max_key{}};
  const std::vector<value> seconds = {value(), -1, 2.5, "", "a", "ab", "b", array{"a"}, true};
  std::vector<std::vector<value>> tuples;
  for (const auto& x : firsts)
    for (const auto& y : seconds)
      tuples.push_back({x, y});
  const std::vector<std::vector<int>> combinations = {{1, 1}, {1, -1}, {-1, 1}, {-1, -1}};
  for (const auto& directions : combinations)
    for (const auto& a : tuples)
      for (const auto& b : tuples)
        BOOST_TEST(byte_order(encode_compound_key(a, directions),
                              encode_compound_key(b, directions)) == tuple_order(a, b, directions),
                   "(" << to_json(a[0]) << ", " << to_json(a[1]) << ") vs (" << to_json(b[0])
                       << ", " << to_json(b[1]) << ") directions " << directions[0] << ", "
                       << directions[1]);
}

BOOST_AUTO_TEST_CASE(a_descending_string_prefix_sorts_after_its_extensions_whatever_follows) {
  std::vector<int> directions{-1, 1};
  // "a" < "ab" ascending, so ("ab", ...) comes first descending; the second field, even
  // the lowest against the highest, must not leak into that.
  BOOST_TEST(sorts_before(encode_compound_key({"ab", max_key{}}, directions),
                          encode_compound_key({"a", min_key{}}, directions)));
  BOOST_TEST(sorts_before(encode_compound_key({"ab", ""}, directions),
                          encode_compound_key({"a", "z"}, directions)));
  BOOST_TEST(sorts_before(encode_compound_key({"a\0"s, ""}, directions),
                          encode_compound_key({"a", ""}, directions)));
  BOOST_TEST(sorts_before(encode_compound_key({"a", "a"}, directions),
                          encode_compound_key({"a", "b"}, directions)));
}

BOOST_AUTO_TEST_CASE(three_field_keys_order_lexicographically) {
  const std::vector<value> parts = {value(), 1, "a", "ab", array{1}};
  std::vector<std::vector<value>> tuples;
  for (const auto& x : parts)
    for (const auto& y : parts)
      for (const auto& z : parts)
        tuples.push_back({x, y, z});
  std::vector<int> directions{1, -1, 1};
  for (const auto& a : tuples)
    for (const auto& b : tuples)
      BOOST_TEST(byte_order(encode_compound_key(a, directions),
                            encode_compound_key(b, directions)) == tuple_order(a, b, directions));
}

// ---- keys of a document ----

BOOST_AUTO_TEST_CASE(a_top_level_field_has_one_key) {
  BOOST_TEST(keys_of(R"({"a": 5, "b": "x"})", ascending_on("a")) == single_keys({5}));
  BOOST_TEST(keys_of(R"({"a": {"x": [1]}})", ascending_on("a")) ==
             single_keys({object{{"x", array{1}}}}));
}

BOOST_AUTO_TEST_CASE(dotted_paths_resolve_through_objects) {
  BOOST_TEST(keys_of(R"({"a": {"b": {"c": "x"}}})", ascending_on("a.b.c")) == single_keys({"x"}));
  BOOST_TEST(keys_of(R"({"a": {"b": 1}})", ascending_on("a.c")) == single_keys({value()}));
  BOOST_TEST(keys_of(R"({"a": 7})", ascending_on("a.b")) == single_keys({value()}));
}

BOOST_AUTO_TEST_CASE(an_array_at_the_end_of_the_path_gives_one_key_per_element_not_itself) {
  auto keys = keys_of(R"({"a": [3, 1, 3, 2]})", ascending_on("a"));
  BOOST_TEST(keys == single_keys({1, 2, 3}));
  BOOST_TEST(std::count(keys.begin(), keys.end(), encode_key(array{3, 1, 3, 2})) == 0);
}

BOOST_AUTO_TEST_CASE(inner_arrays_are_key_parts_as_whole_values) {
  BOOST_TEST(keys_of(R"({"a": [[1, 2], 3, []]})", ascending_on("a")) ==
             single_keys({array{1, 2}, 3, array{}}));
  BOOST_TEST(keys_of(R"({"a": [[]]})", ascending_on("a")) == single_keys({array{}}));
}

BOOST_AUTO_TEST_CASE(paths_continue_into_each_element_of_an_array) {
  // An element without the field, or not an object, gives null.
  BOOST_TEST(keys_of(R"({"a": [{"b": 1}, {"b": 2}, {"c": 3}, 4]})", ascending_on("a.b")) ==
             single_keys({value(), 1, 2}));
  BOOST_TEST(keys_of(R"({"a": [{"b": [1, 2]}, {"b": [2, 3]}]})", ascending_on("a.b")) ==
             single_keys({1, 2, 3}));
  BOOST_TEST(keys_of(R"({"x": {"a": [{"b": {"c": 1}}, {"b": {"c": 2}}]}})",
                     ascending_on("x.a.b.c")) == single_keys({1, 2}));
}

BOOST_AUTO_TEST_CASE(paths_do_not_traverse_arrays_directly_inside_arrays) {
  BOOST_TEST(keys_of(R"({"a": [[{"b": 1}]]})", ascending_on("a.b")) == single_keys({value()}));
}

BOOST_AUTO_TEST_CASE(numeric_segments_select_array_elements_by_position) {
  BOOST_TEST(keys_of(R"({"a": [{"b": 1}, {"b": 2}]})", ascending_on("a.0.b")) == single_keys({1}));
  BOOST_TEST(keys_of(R"({"a": [{"b": 1}]})", ascending_on("a.1.b")) == single_keys({value()}));
  BOOST_TEST(keys_of(R"({"a": [[1, 2], 3]})", ascending_on("a.0")) == single_keys({array{1, 2}}));
  BOOST_TEST(keys_of(R"({"a": [[1, 2], 3]})", ascending_on("a.0.1")) == single_keys({2}));
  BOOST_TEST(keys_of(R"({"a": [{"b": [4, 5]}]})", ascending_on("a.0.b")) == single_keys({4, 5}));
  // On an object, a numeric segment is a field name.
  BOOST_TEST(keys_of(R"({"a": {"0": "x"}})", ascending_on("a.0")) == single_keys({"x"}));
}

BOOST_AUTO_TEST_CASE(an_empty_array_indexes_as_null) {
  BOOST_TEST(keys_of(R"({"a": []})", ascending_on("a")) == single_keys({value()}));
  BOOST_TEST(keys_of(R"({"a": {"b": []}})", ascending_on("a.b")) == single_keys({value()}));
  BOOST_TEST(keys_of(R"({"a": []})", ascending_on("a.b")) == single_keys({value()}));
}

BOOST_AUTO_TEST_CASE(missing_fields_index_as_null) {
  index_key_spec spec{{{"a", 1}, {"b", -1}}};
  BOOST_TEST(keys_of(R"({"c": 1})", spec) == compound_keys({{value(), value()}}, {1, -1}));
  BOOST_TEST(keys_of(R"({"b": 1})", spec) == compound_keys({{value(), 1}}, {1, -1}));
  // Missing and null are the same key.
  BOOST_TEST(keys_of(R"({"a": null})", spec) == keys_of("{}", spec));
}

BOOST_AUTO_TEST_CASE(sparse_indexes_skip_documents_missing_every_field) {
  index_key_spec spec{{{"a", 1}, {"b", 1}}, true};
  BOOST_TEST(keys_of(R"({"c": 1})", spec).empty());
  BOOST_TEST(keys_of("{}", spec).empty());
  BOOST_TEST(keys_of(R"({"b": 1})", spec) == compound_keys({{value(), 1}}, {1, 1}));
  // An explicit null is present.
  BOOST_TEST(keys_of(R"({"a": null})", spec) == compound_keys({{value(), value()}}, {1, 1}));
  auto sparse_b = ascending_on("a.b");
  sparse_b.sparse = true;
  BOOST_TEST(keys_of(R"({"a": [{"c": 1}]})", sparse_b).empty());
  BOOST_TEST(keys_of(R"({"a": [{"b": 1}, {"c": 1}]})", sparse_b) == single_keys({1}));
  BOOST_TEST(keys_of(R"({"a": []})", sparse_b).empty());
  auto sparse_a = ascending_on("a");
  sparse_a.sparse = true;
  BOOST_TEST(keys_of(R"({"a": []})", sparse_a) == single_keys({value()}));
}

BOOST_AUTO_TEST_CASE(compound_keys_combine_one_array_with_the_other_fields) {
  index_key_spec spec{{{"a", 1}, {"b", -1}}};
  BOOST_TEST(keys_of(R"({"a": [1, 2, 1.0], "b": "x"})", spec) ==
             compound_keys({{1, "x"}, {2, "x"}}, {1, -1}));
  BOOST_TEST(keys_of(R"({"a": 0, "b": ["x", "y"]})", spec) ==
             compound_keys({{0, "x"}, {0, "y"}}, {1, -1}));
}

BOOST_AUTO_TEST_CASE(fields_through_the_same_array_take_parts_from_the_same_element) {
  index_key_spec spec{{{"a.b", 1}, {"a.c", 1}}};
  BOOST_TEST(keys_of(R"({"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]})", spec) ==
             compound_keys({{1, 2}, {3, 4}}, {1, 1}));
  BOOST_TEST(keys_of(R"({"a": [{"b": [1, 2], "c": 3}]})", spec) ==
             compound_keys({{1, 3}, {2, 3}}, {1, 1}));
  BOOST_TEST(keys_of(R"({"a": [{"b": [1]}, {"c": [2]}]})", spec) ==
             compound_keys({{1, value()}, {value(), 2}}, {1, 1}));
  index_key_spec whole_and_part{{{"a", 1}, {"a.b", 1}}};
  BOOST_TEST(keys_of(R"({"a": [{"b": 1}, 5]})", whole_and_part) ==
             compound_keys({{object{{"b", 1}}, 1}, {5, value()}}, {1, 1}));
}

BOOST_AUTO_TEST_CASE(two_fields_through_different_arrays_are_parallel_arrays) {
  index_key_spec spec{{{"a", 1}, {"b", 1}}};
  BOOST_TEST(index_error(R"({"a": [1], "b": [2]})", spec) ==
             "cannot index parallel arrays [a] [b]");
  BOOST_TEST(index_error(R"({"a": [], "b": []})", spec) == "cannot index parallel arrays [a] [b]");
  index_key_spec nested{{{"x.a.b", 1}, {"x.a.c", -1}}};
  BOOST_TEST(index_error(R"({"x": {"a": [{"b": [1], "c": [2]}]}})", nested) ==
             "cannot index parallel arrays [x.a.b] [x.a.c]");
  // One array each, in different documents, is fine.
  BOOST_TEST(index_error(R"({"a": [1], "b": 2})", spec) == "");
  BOOST_TEST(index_error(R"({"a": 1, "b": [2]})", spec) == "");
}

BOOST_AUTO_TEST_CASE(duplicate_keys_from_one_document_are_kept_once) {
  BOOST_TEST(keys_of(R"({"a": [1, 1.0, {"$numberLong": "1"}, 1]})", ascending_on("a")) ==
             single_keys({1}));
  BOOST_TEST(keys_of(R"({"a": [{"b": 1}, {"b": 1}, {"b": [1, 1]}]})", ascending_on("a.b")) ==
             single_keys({1}));
  BOOST_TEST(keys_of(R"({"a": [{"c": 1}, {"d": 1}, 3]})", ascending_on("a.b")) ==
             single_keys({value()}));
}

BOOST_AUTO_TEST_CASE(keys_come_in_ascending_byte_order) {
  auto keys = keys_of(R"({"a": ["z", 3, null, {"b": 1}, "a"]})", index_key_spec{{{"a", -1}}});
  BOOST_TEST(std::is_sorted(keys.begin(), keys.end()));
  BOOST_TEST(keys.size() == 5u);
  BOOST_TEST(keys.front() == descending(object{{"b", 1}}));
}

BOOST_AUTO_TEST_CASE(bad_key_patterns_are_rejected) {
  BOOST_TEST(index_error("{}", index_key_spec{}) == "an index needs at least one field");
  BOOST_TEST(index_error("{}", index_key_spec{{{"a", 0}}}) ==
             "index key direction must be 1 or -1");
  BOOST_TEST(index_error("{}", ascending_on("a..b")) ==
             "index field paths cannot have empty segments");
  BOOST_TEST(index_error("{}", ascending_on("$a")) == "index field paths cannot start with '$'");
}

BOOST_AUTO_TEST_SUITE_END()
