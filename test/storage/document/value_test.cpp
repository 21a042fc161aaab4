#include <boost/test/unit_test.hpp>

#include "storage/document/value.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <set>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(value_test)

namespace {

std::uint32_t counter_of(const object_id& id) {
  return static_cast<std::uint32_t>(id.bytes[9]) << 16 |
         static_cast<std::uint32_t>(id.bytes[10]) << 8 | id.bytes[11];
}

} // namespace

// ---- ordering ----

BOOST_AUTO_TEST_CASE(values_of_different_types_sort_in_mongodb_order) {
  // One representative per rank, in ascending order.
  const value ordered[] = {
      min_key{},
      value(),
      std::int32_t{5},
      "a string",
      object{{"a", 1}},
      array{1},
      binary_value{0, "x"},
      *object_id::from_hex("000000000000000000000001"),
      false,
      date_time{0},
      timestamp_value{1, 1},
      regex_value{"a", ""},
      max_key{},
  };
  const std::size_t n = std::size(ordered);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      int expected = i < j ? -1 : (i > j ? 1 : 0);
      BOOST_TEST(compare_values(ordered[i], ordered[j]) == expected, "i=" << i << " j=" << j);
    }
}

BOOST_AUTO_TEST_CASE(type_order_beats_value_order) {
  BOOST_TEST(compare_values(1e308, "") < 0);
  BOOST_TEST(compare_values(true, date_time{-1000}) < 0);
  BOOST_TEST(compare_values(value(), std::numeric_limits<double>::quiet_NaN()) < 0);
  BOOST_TEST(compare_values(array{}, object{{"z", "z"}}) > 0);
}

BOOST_AUTO_TEST_CASE(numbers_compare_by_value_across_representations) {
  BOOST_TEST(compare_values(std::int32_t{1}, 1.0) == 0);
  BOOST_TEST(compare_values(std::int64_t{1}, std::int32_t{1}) == 0);
  BOOST_TEST(compare_values(std::int32_t{1}, 1.5) < 0);
  BOOST_TEST(compare_values(2.5, std::int64_t{2}) > 0);
  BOOST_TEST(compare_values(-0.5, std::int32_t{0}) < 0);
  BOOST_TEST(compare_values(std::int32_t{-1}, -0.5) < 0);
  BOOST_TEST(compare_values(std::int64_t{std::numeric_limits<std::int64_t>::max()}, 1e19) < 0);
  BOOST_TEST(compare_values(std::int64_t{std::numeric_limits<std::int64_t>::min()}, -1e19) > 0);
  // Exact beyond 2^53, where converting the integer to double would round.
  BOOST_TEST(compare_values(std::int64_t{9007199254740993}, 9007199254740992.0) > 0);
  BOOST_TEST(compare_values(9007199254740992.0, std::int64_t{9007199254740993}) < 0);
  BOOST_TEST(compare_values(std::int64_t{9007199254740992}, 9007199254740992.0) == 0);
}

BOOST_AUTO_TEST_CASE(nan_sorts_below_all_numbers_and_equals_itself) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  double inf = std::numeric_limits<double>::infinity();
  BOOST_TEST(compare_values(nan, -inf) < 0);
  BOOST_TEST(compare_values(nan, std::int64_t{std::numeric_limits<std::int64_t>::min()}) < 0);
  BOOST_TEST(compare_values(std::int32_t{0}, nan) > 0);
  BOOST_TEST(compare_values(nan, nan) == 0);
}

BOOST_AUTO_TEST_CASE(identical_values_have_the_same_types_and_field_order_all_the_way_down) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  BOOST_TEST(identical(value(std::int32_t(1)), value(std::int32_t(1))));
  BOOST_TEST(!identical(value(std::int32_t(1)), value(1.0)));
  BOOST_TEST(!identical(value(std::int32_t(1)), value(std::int64_t(1))));
  BOOST_TEST(identical(value(nan), value(nan)));
  BOOST_TEST(!identical(value(nan), value(0.0)));
  BOOST_TEST(identical(value(object{{"a", 1}, {"b", array{1, "x"}}}),
                       value(object{{"a", 1}, {"b", array{1, "x"}}})));
  BOOST_TEST(!identical(value(object{{"a", 1}, {"b", 2}}), value(object{{"b", 2}, {"a", 1}})));
  BOOST_TEST(!identical(value(array{1, 2}), value(array{1, 2.0})));
  BOOST_TEST(!identical(value(array{1}), value(array{1, 1})));
  BOOST_TEST(!identical(value(null_t{}), value(min_key{})));
}

BOOST_AUTO_TEST_CASE(numeric_equality_ignores_representation) {
  BOOST_TEST((value(std::int32_t{1}) == value(1.0)));
  BOOST_TEST((value(1.0) == value(std::int64_t{1})));
  BOOST_TEST((value(std::int32_t{1}) == value(std::int64_t{1})));
  BOOST_TEST(!(value(std::int32_t{1}) == value(1.5)));
  BOOST_TEST(!(value(std::int32_t{1}) == value("1")));
  BOOST_TEST(!(value(std::int32_t{0}) == value(false)));
  BOOST_TEST(!(value() == value(std::int32_t{0})));
  // Also inside containers.
  BOOST_TEST((value(object{{"a", array{1, 2}}}) == value(object{{"a", array{1.0, 2L}}})));
  BOOST_TEST(!(value(object{{"a", 1}, {"b", 2}}) == value(object{{"b", 2}, {"a", 1}})));
}

BOOST_AUTO_TEST_CASE(strings_compare_bytewise_unsigned) {
  BOOST_TEST(compare_values("a", "b") < 0);
  BOOST_TEST(compare_values("ab", "a") > 0);
  BOOST_TEST(compare_values("B", "a") < 0);
  BOOST_TEST(compare_values("\xC3\xA9", "z") > 0); // UTF-8 bytes above ASCII
  BOOST_TEST(compare_values("x", "x") == 0);
}

BOOST_AUTO_TEST_CASE(objects_compare_field_by_field_type_then_name_then_value) {
  BOOST_TEST(compare_values(object{{"a", 1}}, object{{"a", 2}}) < 0);
  BOOST_TEST(compare_values(object{{"a", 1}}, object{{"b", 0}}) < 0);
  BOOST_TEST(compare_values(object{{"b", 1}}, object{{"a", "x"}}) < 0); // number < string
  BOOST_TEST(compare_values(object{{"a", 1}}, object{{"a", 1}, {"b", 1}}) < 0);
  BOOST_TEST(compare_values(object{}, object{{"a", value()}}) < 0);
  BOOST_TEST(compare_values(object{{"a", 1}}, object{{"a", 1.0}}) == 0);
}

BOOST_AUTO_TEST_CASE(arrays_compare_element_by_element_then_length) {
  BOOST_TEST(compare_values(array{1, 2}, array{1, 3}) < 0);
  BOOST_TEST(compare_values(array{1}, array{1, 0}) < 0);
  BOOST_TEST(compare_values(array{2}, array{1, 9}) > 0);
  BOOST_TEST(compare_values(array{}, array{}) == 0);
}

BOOST_AUTO_TEST_CASE(other_types_compare_within_their_type) {
  BOOST_TEST(compare_values(false, true) < 0);
  BOOST_TEST(compare_values(date_time{-5}, date_time{3}) < 0);
  BOOST_TEST(compare_values(timestamp_value{1, 9}, timestamp_value{2, 0}) < 0);
  BOOST_TEST(compare_values(timestamp_value{2, 1}, timestamp_value{2, 0}) > 0);
  BOOST_TEST(compare_values(regex_value{"a", "z"}, regex_value{"b", ""}) < 0);
  BOOST_TEST(compare_values(regex_value{"a", "i"}, regex_value{"a", "m"}) < 0);
  // binData: length first, then subtype, then bytes.
  BOOST_TEST(compare_values(binary_value{9, "z"}, binary_value{0, "aa"}) < 0);
  BOOST_TEST(compare_values(binary_value{1, "a"}, binary_value{2, "a"}) < 0);
  BOOST_TEST(compare_values(binary_value{0, "\x01"}, binary_value{0, "\xff"}) < 0);
  auto a = *object_id::from_hex("00000000000000000000ff00");
  auto b = *object_id::from_hex("0000000000000000000100ff");
  BOOST_TEST(compare_values(a, b) < 0);
  BOOST_TEST(compare_values(min_key{}, min_key{}) == 0);
  BOOST_TEST(compare_values(max_key{}, max_key{}) == 0);
}

BOOST_AUTO_TEST_CASE(type_reports_the_bson_type) {
  BOOST_TEST((value().type() == bson_type::null));
  BOOST_TEST((value(true).type() == bson_type::boolean));
  BOOST_TEST((value(std::int32_t{1}).type() == bson_type::int32));
  BOOST_TEST((value(std::int64_t{1}).type() == bson_type::int64));
  BOOST_TEST((value(1.0).type() == bson_type::double_));
  BOOST_TEST((value("s").type() == bson_type::string));
  BOOST_TEST((value(object{}).type() == bson_type::object));
  BOOST_TEST((value(array{}).type() == bson_type::array));
  BOOST_TEST((value(object_id{}).type() == bson_type::object_id));
  BOOST_TEST((value(date_time{}).type() == bson_type::date));
  BOOST_TEST((value(regex_value{}).type() == bson_type::regex));
  BOOST_TEST((value(binary_value{}).type() == bson_type::binary));
  BOOST_TEST((value(timestamp_value{}).type() == bson_type::timestamp));
  BOOST_TEST((value(min_key{}).type() == bson_type::min_key));
  BOOST_TEST((value(max_key{}).type() == bson_type::max_key));
}

BOOST_AUTO_TEST_CASE(numeric_accessors_convert_and_saturate) {
  BOOST_TEST(value(std::int32_t{-3}).as_double() == -3.0);
  BOOST_TEST(value(std::int64_t{1} << 40).as_double() == 1099511627776.0);
  BOOST_TEST(value(2.9).as_int64() == 2);
  BOOST_TEST(value(-2.9).as_int64() == -2);
  BOOST_TEST(value(1e300).as_int64() == std::numeric_limits<std::int64_t>::max());
  BOOST_TEST(value(-1e300).as_int64() == std::numeric_limits<std::int64_t>::min());
  BOOST_TEST(value(std::numeric_limits<double>::quiet_NaN()).as_int64() == 0);
}

BOOST_AUTO_TEST_CASE(truthiness_follows_mongodb) {
  BOOST_TEST(!value().truthy());
  BOOST_TEST(!value(false).truthy());
  BOOST_TEST(!value(std::int32_t{0}).truthy());
  BOOST_TEST(!value(std::int64_t{0}).truthy());
  BOOST_TEST(!value(0.0).truthy());
  BOOST_TEST(value(true).truthy());
  BOOST_TEST(value(-1).truthy());
  BOOST_TEST(value("").truthy());
  BOOST_TEST(value(array{}).truthy());
  BOOST_TEST(value(object{}).truthy());
}

// ---- object_id ----

BOOST_AUTO_TEST_CASE(object_id_hex_round_trips) {
  auto id = object_id::from_hex("0123456789ABCDEFabcdef00");
  BOOST_TEST_REQUIRE(id.has_value());
  BOOST_TEST(id->bytes[0] == 0x01);
  BOOST_TEST(id->bytes[7] == 0xef);
  BOOST_TEST(id->bytes[11] == 0x00);
  BOOST_TEST(id->hex() == "0123456789abcdefabcdef00");
  BOOST_TEST((object_id::from_hex(id->hex()) == id));
}

BOOST_AUTO_TEST_CASE(object_id_from_hex_rejects_bad_input) {
  BOOST_TEST(!object_id::from_hex("").has_value());
  BOOST_TEST(!object_id::from_hex("0123456789abcdef0123456").has_value());
  BOOST_TEST(!object_id::from_hex("0123456789abcdef012345678").has_value());
  BOOST_TEST(!object_id::from_hex("0123456789abcdef0123456g").has_value());
  BOOST_TEST(!object_id::from_hex(" 123456789abcdef01234567").has_value());
}

BOOST_AUTO_TEST_CASE(generated_object_ids_are_unique_with_a_counter_and_timestamp) {
  std::set<std::string> seen;
  object_id prev = object_id::generate();
  seen.insert(prev.hex());
  for (int i = 0; i < 10000; ++i) {
    object_id id = object_id::generate();
    BOOST_TEST_REQUIRE(seen.insert(id.hex()).second);
    BOOST_TEST_REQUIRE(counter_of(id) == ((counter_of(prev) + 1) & 0xFFFFFF));
    // The 5 process-random bytes stay fixed.
    BOOST_TEST_REQUIRE(
        std::equal(id.bytes.begin() + 4, id.bytes.begin() + 9, prev.bytes.begin() + 4));
    prev = id;
  }
  std::uint32_t secs = static_cast<std::uint32_t>(prev.bytes[0]) << 24 | prev.bytes[1] << 16 |
                       prev.bytes[2] << 8 | prev.bytes[3];
  // The clock generate() reads: time() may read a coarser one that lags it at a second's turn.
  auto now = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  BOOST_TEST(secs <= now);
  BOOST_TEST(secs + 5 >= now);
}

// ---- object helpers ----

BOOST_AUTO_TEST_CASE(find_path_follows_dotted_paths_and_array_indices) {
  object doc{
      {"a", object{{"b", object{{"c", 42}}}}},
      {"list", array{object{{"x", 1}}, object{{"x", 2}}, array{"p", "q"}}},
      {"s", "str"},
      {"with.dot", 7},
  };
  BOOST_TEST_REQUIRE(find_path(doc, "a.b.c"));
  BOOST_TEST((*find_path(doc, "a.b.c") == value(42)));
  BOOST_TEST(find_path(doc, "a.b")->is_object());
  BOOST_TEST((*find_path(doc, "s") == value("str")));
  BOOST_TEST((*find_path(doc, "list.1.x") == value(2)));
  BOOST_TEST((*find_path(doc, "list.2.1") == value("q")));
  BOOST_TEST(find_path(doc, "list.0")->is_object());
  BOOST_TEST(find_path(doc, "list")->is_array());
  BOOST_TEST(find_path(doc, "missing") == nullptr);
  BOOST_TEST(find_path(doc, "a.missing") == nullptr);
  BOOST_TEST(find_path(doc, "a.b.c.d") == nullptr);
  BOOST_TEST(find_path(doc, "s.length") == nullptr);
  BOOST_TEST(find_path(doc, "list.3") == nullptr);
  BOOST_TEST(find_path(doc, "list.x") == nullptr); // no implicit array traversal
  BOOST_TEST(find_path(doc, "list.-1") == nullptr);
  BOOST_TEST(find_path(doc, "list.+1") == nullptr);
  BOOST_TEST(find_path(doc, "list.") == nullptr);
  BOOST_TEST(find_path(doc, "list.99999999999999999999999") == nullptr); // used to throw
  BOOST_TEST(find_path(doc, "with.dot") == nullptr);                     // dots always split
  BOOST_TEST(find_path(doc, "") == nullptr);
}

BOOST_AUTO_TEST_CASE(set_field_replaces_in_place_or_appends) {
  object o{{"a", 1}, {"b", 2}};
  set_field(o, "a", "one");
  BOOST_TEST_REQUIRE(o.size() == 2u);
  BOOST_TEST(o[0].first == "a");
  BOOST_TEST(o[0].second.as_string() == "one");
  set_field(o, "c", 3);
  BOOST_TEST_REQUIRE(o.size() == 3u);
  BOOST_TEST(o[2].first == "c");
  BOOST_TEST((*find_field(o, "c") == value(3)));
  BOOST_TEST(find_field(o, "zz") == nullptr);
}

BOOST_AUTO_TEST_CASE(erase_field_removes_and_reports) {
  object o{{"a", 1}, {"b", 2}, {"c", 3}};
  BOOST_TEST(erase_field(o, "b"));
  BOOST_TEST_REQUIRE(o.size() == 2u);
  BOOST_TEST(o[0].first == "a");
  BOOST_TEST(o[1].first == "c");
  BOOST_TEST(!erase_field(o, "b"));
  BOOST_TEST(o.size() == 2u);
}

BOOST_AUTO_TEST_CASE(bad_request_errors_carry_status_400) {
  try {
    throw_bad_request("nope");
    BOOST_FAIL("throw_bad_request returned");
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    BOOST_TEST(std::string(e.what()) == "nope");
  }
}

BOOST_AUTO_TEST_SUITE_END()
