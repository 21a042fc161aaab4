#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/document/json.hpp"
#include "test/storage/document/document_test_helpers.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace rheo;
using doc_test::bad_request;

BOOST_AUTO_TEST_SUITE(json_test)

namespace {

// The message of the api_error thrown by parse_json, or "" when it parses.
std::string parse_error(std::string_view text, std::string_view what = "body",
                        const json_limits& limits = {}) {
  try {
    parse_json(text, what, limits);
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

value round_trip(const value& v) {
  return parse_json(to_json(v));
}

} // namespace

// ---- parsing: strict JSON ----

BOOST_AUTO_TEST_CASE(scalars_parse_to_their_types) {
  BOOST_TEST(parse_json("null").is_null());
  BOOST_TEST(parse_json("true").as_bool() == true);
  BOOST_TEST(parse_json("false").as_bool() == false);
  BOOST_TEST(parse_json("\"hi\"").as_string() == "hi");
  BOOST_TEST(parse_json("42").is<std::int32_t>());
  BOOST_TEST(parse_json("42").get<std::int32_t>() == 42);
  BOOST_TEST(parse_json("-7").get<std::int32_t>() == -7);
  BOOST_TEST(parse_json("1.5").get<double>() == 1.5);
  BOOST_TEST(parse_json("-2.5e3").get<double>() == -2500.0);
  BOOST_TEST(parse_json("1E2").get<double>() == 100.0);
  BOOST_TEST(parse_json("3.0").is<double>());
}

BOOST_AUTO_TEST_CASE(objects_keep_field_order_and_nest) {
  value v = parse_json(R"( { "b" : 1 , "a" : [ 1 , { "c" : null } , [ ] ] , "e" : { } } )");
  const object& o = v.as_object();
  BOOST_TEST_REQUIRE(o.size() == 3u);
  BOOST_TEST(o[0].first == "b");
  BOOST_TEST(o[1].first == "a");
  BOOST_TEST(o[2].first == "e");
  const array& a = o[1].second.as_array();
  BOOST_TEST_REQUIRE(a.size() == 3u);
  BOOST_TEST(find_field(a[1].as_object(), "c")->is_null());
  BOOST_TEST(a[2].as_array().empty());
  BOOST_TEST(o[2].second.as_object().empty());
}

BOOST_AUTO_TEST_CASE(whitespace_is_allowed_anywhere_between_tokens) {
  BOOST_TEST(parse_json(" \t\r\n[\n1\t,\r2 ]\n ") == value(array{1, 2}));
}

BOOST_AUTO_TEST_CASE(integers_use_the_narrowest_integer_type_then_double) {
  BOOST_TEST(parse_json("2147483647").is<std::int32_t>());
  BOOST_TEST(parse_json("-2147483648").is<std::int32_t>());
  BOOST_TEST(parse_json("2147483648").is<std::int64_t>());
  BOOST_TEST(parse_json("-2147483649").is<std::int64_t>());
  BOOST_TEST(parse_json("9223372036854775807").get<std::int64_t>() ==
             std::numeric_limits<std::int64_t>::max());
  BOOST_TEST(parse_json("-9223372036854775808").get<std::int64_t>() ==
             std::numeric_limits<std::int64_t>::min());
  value big = parse_json("9223372036854775808");
  BOOST_TEST_REQUIRE(big.is<double>());
  BOOST_TEST(big.get<double>() == 9223372036854775808.0);
  value huge = parse_json("123456789012345678901234567890");
  BOOST_TEST_REQUIRE(huge.is<double>());
  BOOST_TEST(huge.get<double>() == 1.2345678901234568e29);
}

BOOST_AUTO_TEST_CASE(numbers_beyond_double_range_are_rejected) {
  BOOST_TEST(contains(parse_error("1e400"), "number out of range"));
  BOOST_TEST(contains(parse_error("[-1e999]"), "at offset 1: number out of range"));
  BOOST_TEST(contains(parse_error("12345678901234567890e300"), "number out of range"));
  BOOST_TEST(contains(parse_error("0.001e312"), "number out of range"));
  BOOST_TEST(parse_json("1.7976931348623157e308").get<double>() ==
             std::numeric_limits<double>::max());
}

BOOST_AUTO_TEST_CASE(numbers_below_double_range_round_to_zero) {
  for (const char* text : {"1e-400", "0.0000000001e-330", "123e-500", "-1e-400"}) {
    value v = parse_json(text);
    BOOST_TEST_REQUIRE(v.is<double>(), text);
    BOOST_TEST(v.get<double>() == 0.0, text);
    BOOST_TEST(std::signbit(v.get<double>()) == (text[0] == '-'), text);
  }
  BOOST_TEST(parse_json("5e-324").get<double>() == std::numeric_limits<double>::denorm_min());
}

BOOST_AUTO_TEST_CASE(string_escapes_are_decoded) {
  BOOST_TEST(parse_json(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string() ==
             "a\"b\\c/d\be\ff\ng\rh\ti");
  BOOST_TEST(parse_json(R"("\u0041\u00e9\u20AC")").as_string() == "A\u00e9\u20ac");
  BOOST_TEST(parse_json(R"("\u0000")").as_string() == std::string(1, '\0'));
}

BOOST_AUTO_TEST_CASE(surrogate_pairs_decode_to_one_code_point) {
  BOOST_TEST(parse_json(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80"); // U+1F600
  BOOST_TEST(parse_json(R"("\uDBFF\uDFFF")").as_string() == "\xF4\x8F\xBF\xBF"); // U+10FFFF
}

BOOST_AUTO_TEST_CASE(invalid_surrogates_are_rejected) {
  BOOST_TEST(contains(parse_error(R"("\ud83d")"), "at offset 1: unpaired UTF-16 surrogate"));
  BOOST_TEST(contains(parse_error(R"("\ude00")"), "unpaired UTF-16 surrogate"));
  BOOST_TEST(contains(parse_error(R"("\ud83dx")"), "unpaired UTF-16 surrogate"));
  BOOST_TEST(contains(parse_error(R"("\ud83d\u0041")"), "unpaired UTF-16 surrogate"));
  BOOST_TEST(contains(parse_error(R"("\ud83d\ud83d")"), "unpaired UTF-16 surrogate"));
  BOOST_TEST(contains(parse_error(R"("\u12")"), "invalid \\u escape"));
  BOOST_TEST(contains(parse_error(R"("\u12g4")"), "invalid \\u escape"));
}

BOOST_AUTO_TEST_CASE(raw_control_characters_in_strings_are_rejected) {
  BOOST_TEST(contains(parse_error("\"a\nb\""), "at offset 2: control character in string"));
  BOOST_TEST(contains(parse_error(std::string("\"a\0b\"", 5)), "control character"));
  BOOST_TEST(contains(parse_error("\"\x1f\""), "byte 0x1f"));
  BOOST_TEST(contains(parse_error("'\t'"), "control character"));
}

BOOST_AUTO_TEST_CASE(utf8_bytes_pass_through_unchanged) {
  BOOST_TEST(parse_json("\"h\xC3\xA9llo \xE2\x82\xAC\"").as_string() ==
             "h\xC3\xA9llo \xE2\x82\xAC");
}

// ---- parsing: relaxed shell syntax ----

BOOST_AUTO_TEST_CASE(unquoted_keys_are_accepted) {
  value v = parse_json("{timestamp:-1}");
  BOOST_TEST(v == value(object{{"timestamp", -1}}));
  BOOST_TEST(parse_json("{ $gt : 1 }") == value(object{{"$gt", 1}}));
  BOOST_TEST(parse_json("{_id:1,a_b2:2}") == value(object{{"_id", 1}, {"a_b2", 2}}));
  BOOST_TEST(parse_json("{fullDocument.from:'x'}") == value(object{{"fullDocument.from", "x"}}));
  BOOST_TEST(parse_json("{a:{$in:[1,2]}}") == value(object{{"a", object{{"$in", array{1, 2}}}}}));
}

BOOST_AUTO_TEST_CASE(single_quoted_strings_are_accepted) {
  BOOST_TEST(parse_json("{'n':'x'}") == value(object{{"n", "x"}}));
  BOOST_TEST(parse_json(R"('say "hi"')").as_string() == "say \"hi\"");
  BOOST_TEST(parse_json(R"('it\'s')").as_string() == "it's");
  BOOST_TEST(parse_json(R"("it's")").as_string() == "it's");
  // \' is a shell escape, not a JSON one.
  BOOST_TEST(contains(parse_error(R"("it\'s")"), "at offset 3: invalid escape"));
}

BOOST_AUTO_TEST_CASE(duplicate_keys_keep_the_last_value_in_the_first_position) {
  BOOST_TEST(to_json(parse_json(R"({"a":1,"b":2,"a":3})")) == R"({"a":3,"b":2})");
  // Large objects take the sort-based path.
  std::string text = "{";
  for (int i = 0; i < 40; ++i)
    text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  text += "\"k5\":\"five\",\"k39\":\"last\",\"k5\":\"again\"}";
  value v = parse_json(text);
  const object& o = v.as_object();
  BOOST_TEST_REQUIRE(o.size() == 40u);
  BOOST_TEST(o[5].first == "k5");
  BOOST_TEST(o[5].second.as_string() == "again");
  BOOST_TEST(o[39].second.as_string() == "last");
  BOOST_TEST(o[6].second == value(6));
}

// ---- parsing: errors ----

BOOST_AUTO_TEST_CASE(malformed_input_is_a_400_naming_the_parameter_and_offset) {
  BOOST_TEST(parse_error(R"({"a" 1})", "filter") ==
             "invalid JSON in filter at offset 5: expected ':'");
  BOOST_TEST(parse_error("{a:1", "sort") ==
             "invalid JSON in sort at offset 4: expected ',' or '}'");
  BOOST_TEST(parse_error("[1 2]", "avars") ==
             "invalid JSON in avars at offset 3: expected ',' or ']'");
  BOOST_TEST(parse_error("") == "invalid JSON in body at offset 0: unexpected end of input");
  BOOST_TEST(parse_error("   ") == "invalid JSON in body at offset 3: unexpected end of input");
  BOOST_TEST(parse_error("{} x") ==
             "invalid JSON in body at offset 3: unexpected trailing character 'x'");
  BOOST_TEST(parse_error("\"abc") == "invalid JSON in body at offset 0: unterminated string");
}

BOOST_AUTO_TEST_CASE(invalid_documents_are_rejected) {
  // Each must fail; none may parse to something.
  const char* bad[] = {
      "{",           "}",         "[",          "]",        "[1,]",         "{\"a\":1,}",
      "{,}",         "[,1]",      "{\"a\"}",    "{:1}",     "{a-b:1}",      "tru",
      "nul",         "True",      "undefined",  "NaN",      "Infinity",     "+1",
      "01",          "-",         "1.",         ".5",       "1e",           "1e+",
      "0x10",        "\"\\x\"",   "\"\\",       "'abc",     "[1]]",         "{} {}",
      "\"a\" \"b\"", "{'a' 'b'}", "[\"a\":1]",  "{\"a\":}", "abc",          "--1",
      "-a",          "1.2.3",     "{\"a\"::1}", "[nul]",    "[true false]", "\xEF\xBB\xBF{}",
  };
  for (const char* text : bad)
    BOOST_TEST(!parse_error(text).empty(), "accepted invalid JSON: " << text);
}

BOOST_AUTO_TEST_CASE(valid_documents_are_accepted) {
  const char* good[] = {
      "0",
      "-0",
      "0.0",
      "1e5",
      "1E-5",
      "1e+5",
      "[]",
      "{}",
      "[[]]",
      "[{}]",
      "{\"\":1}",
      "\"\"",
      "''",
      "{a:[]}",
      "[-0.5]",
      "{'a':{b:'c'}}",
      "[null,true,false]",
      "{$and:[{a:1},{b:{$ne:null}}]}",
  };
  for (const char* text : good)
    BOOST_TEST(parse_error(text).empty(), "rejected valid JSON: " << text);
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_a_400_not_a_stack_overflow) {
  std::string deep(10000, '[');
  BOOST_TEST(contains(parse_error(deep, "body"), "nested deeper than 100 levels"));
  std::string deep_objects;
  for (int i = 0; i < 10000; ++i)
    deep_objects += "{a:";
  BOOST_TEST(contains(parse_error(deep_objects), "nested deeper than 100 levels"));
}

BOOST_AUTO_TEST_CASE(the_depth_limit_is_exact) {
  json_limits limits;
  limits.max_depth = 3;
  BOOST_TEST(parse_error("[[[1]]]", "body", limits).empty());
  BOOST_TEST(parse_error("[{a:[1]}]", "body", limits).empty());
  BOOST_TEST(parse_error("[[[[1]]]]", "body", limits) ==
             "invalid JSON in body at offset 3: nested deeper than 3 levels");
  std::string at_default(100, '[');
  at_default += std::string(100, ']');
  BOOST_TEST(parse_error(at_default).empty());
  BOOST_TEST(contains(parse_error("[" + at_default + "]"), "nested deeper than 100 levels"));
}

// ---- extended JSON input ----

BOOST_AUTO_TEST_CASE(oid_wrappers_decode_to_object_ids) {
  value v = parse_json(R"({"$oid":"65A1B2C3D4E5F60718293a4b"})");
  BOOST_TEST_REQUIRE(v.is<object_id>());
  BOOST_TEST(v.get<object_id>().hex() == "65a1b2c3d4e5f60718293a4b");
  BOOST_TEST(
      parse_json("{_id:{$oid:'65a1b2c3d4e5f60718293a4b'}}").as_object()[0].second.is<object_id>());
  BOOST_TEST(parse_error(R"({"a":{"$oid":"65a1b2c3d4e5f60718293a4"}})", "filter") ==
             "invalid JSON in filter at offset 5: invalid $oid: expected a string of 24 hex "
             "digits");
  BOOST_TEST(contains(parse_error(R"({"$oid":"zza1b2c3d4e5f60718293a4b"})"), "invalid $oid"));
  BOOST_TEST(contains(parse_error(R"({"$oid":12})"), "invalid $oid"));
}

BOOST_AUTO_TEST_CASE(date_wrappers_accept_millis_iso_strings_and_number_long) {
  auto millis = [](std::string_view text) { return parse_json(text).get<date_time>().millis; };
  BOOST_TEST(millis(R"({"$date":0})") == 0);
  BOOST_TEST(millis(R"({"$date":1704164645000})") == 1704164645000);
  BOOST_TEST(millis(R"({"$date":-1})") == -1);
  BOOST_TEST(millis(R"({"$date":1.0e3})") == 1000);
  BOOST_TEST(millis(R"({"$date":{"$numberLong":"1704164645123"}})") == 1704164645123);
  BOOST_TEST(millis(R"({"$date":"1970-01-01T00:00:00Z"})") == 0);
  BOOST_TEST(millis(R"({"$date":"2024-01-02T03:04:05Z"})") == 1704164645000);
  BOOST_TEST(millis(R"({"$date":"2024-01-02T03:04:05.123Z"})") == 1704164645123);
  BOOST_TEST(millis(R"({"$date":"2024-01-02T03:04:05.1Z"})") == 1704164645100);
  BOOST_TEST(millis(R"({"$date":"2024-01-02T03:04:05.123456Z"})") == 1704164645123);
  BOOST_TEST(millis(R"({"$date":"2024-01-02T04:04:05+01:00"})") == 1704164645000);
  BOOST_TEST(millis(R"({"$date":"2024-01-01T22:34:05-0430"})") == 1704164645000);
  BOOST_TEST(millis(R"({"$date":"2024-01-02T05:04:05+02"})") == 1704164645000);
  BOOST_TEST(millis(R"({"$date":"2024-02-29T00:00:00Z"})") == 1709164800000);
  BOOST_TEST(millis(R"({"$date":"1969-12-31T23:59:59.500Z"})") == -500);
  BOOST_TEST(millis(R"({"$date":"1900-03-01T00:00:00Z"})") == -2203891200000);
}

BOOST_AUTO_TEST_CASE(bad_dates_are_a_400) {
  const char* bad[] = {
      R"({"$date":"garbage"})",
      R"({"$date":""})",
      R"({"$date":"2024-01-02"})",
      R"({"$date":"2024-01-02T03:04:05"})",
      R"({"$date":"2024-13-02T03:04:05Z"})",
      R"({"$date":"2023-02-29T03:04:05Z"})",
      R"({"$date":"2024-01-02T24:00:00Z"})",
      R"({"$date":"2024-01-02T03:04:05.Z"})",
      R"({"$date":"2024-01-02T03:04:05Zjunk"})",
      R"({"$date":"2024-01-02T03:04:05+1"})",
      R"({"$date":1.5})",
      R"({"$date":1e300})",
      R"({"$date":true})",
      R"({"$date":null})",
      R"({"$date":{"x":1}})",
  };
  for (const char* text : bad)
    BOOST_TEST(contains(parse_error(text), "invalid $date"), text);
}

BOOST_AUTO_TEST_CASE(objects_only_become_wrappers_when_the_key_set_matches_exactly) {
  value v = parse_json(R"({"$date":"garbage","x":1})");
  BOOST_TEST(v.is_object());
  BOOST_TEST(parse_json(R"({"$oid":"nothex","x":1})").is_object());
  BOOST_TEST(parse_json(R"({"$gt":1})").is_object());
  BOOST_TEST(parse_json(R"({"$numberDecimal":"1.5"})").is_object());
  value regex = parse_json(R"({"$regex":"^a","$options":"i"})");
  BOOST_TEST_REQUIRE(regex.is_object());
  BOOST_TEST(regex.as_object().size() == 2u);
  BOOST_TEST(parse_json(R"({"$regex":"^a"})").is_object());
}

BOOST_AUTO_TEST_CASE(number_wrappers_keep_their_declared_type) {
  value l = parse_json(R"({"$numberLong":"5"})");
  BOOST_TEST_REQUIRE(l.is<std::int64_t>());
  BOOST_TEST(l.get<std::int64_t>() == 5);
  BOOST_TEST(parse_json(R"({"$numberLong":"-9223372036854775808"})").get<std::int64_t>() ==
             std::numeric_limits<std::int64_t>::min());
  value i = parse_json(R"({"$numberInt":"-12"})");
  BOOST_TEST_REQUIRE(i.is<std::int32_t>());
  BOOST_TEST(i.get<std::int32_t>() == -12);
  value d = parse_json(R"({"$numberDouble":"10"})");
  BOOST_TEST_REQUIRE(d.is<double>());
  BOOST_TEST(d.get<double>() == 10.0);
  BOOST_TEST(parse_json(R"({"$numberDouble":"-1.5e-3"})").get<double>() == -1.5e-3);
  BOOST_TEST(std::isnan(parse_json(R"({"$numberDouble":"NaN"})").get<double>()));
  BOOST_TEST(parse_json(R"({"$numberDouble":"Infinity"})").get<double>() ==
             std::numeric_limits<double>::infinity());
  BOOST_TEST(parse_json(R"({"$numberDouble":"-Infinity"})").get<double>() ==
             -std::numeric_limits<double>::infinity());
}

BOOST_AUTO_TEST_CASE(bad_number_wrappers_are_a_400) {
  BOOST_TEST(
      contains(parse_error(R"({"$numberLong":"9223372036854775808"})"), "invalid $numberLong"));
  BOOST_TEST(contains(parse_error(R"({"$numberLong":"12x"})"), "invalid $numberLong"));
  BOOST_TEST(contains(parse_error(R"({"$numberLong":12})"), "invalid $numberLong"));
  BOOST_TEST(contains(parse_error(R"({"$numberInt":"2147483648"})"), "invalid $numberInt"));
  BOOST_TEST(contains(parse_error(R"({"$numberDouble":"inf"})"), "invalid $numberDouble"));
  BOOST_TEST(contains(parse_error(R"({"$numberDouble":"nan"})"), "invalid $numberDouble"));
  BOOST_TEST(contains(parse_error(R"({"$numberDouble":"1.5x"})"), "invalid $numberDouble"));
}

BOOST_AUTO_TEST_CASE(regex_binary_timestamp_and_key_wrappers_decode) {
  value r = parse_json(R"({"$regularExpression":{"pattern":"^a.*","options":"im"}})");
  BOOST_TEST((r.get<regex_value>() == regex_value{"^a.*", "im"}));
  value b = parse_json(R"({"$binary":{"base64":"aGVsbG8=","subType":"00"}})");
  BOOST_TEST((b.get<binary_value>() == binary_value{0, "hello"}));
  value b4 = parse_json(R"({"$binary":{"subType":"4","base64":"AAEC/w=="}})");
  BOOST_TEST((b4.get<binary_value>() == binary_value{4, std::string("\x00\x01\x02\xff", 4)}));
  BOOST_TEST((parse_json(R"({"$binary":{"base64":"","subType":"80"}})").get<binary_value>() ==
              binary_value{0x80, ""}));
  value t = parse_json(R"({"$timestamp":{"t":4294967295,"i":7}})");
  BOOST_TEST((t.get<timestamp_value>() == timestamp_value{4294967295u, 7}));
  BOOST_TEST(parse_json(R"({"$minKey":1})").is<min_key>());
  BOOST_TEST(parse_json(R"({"$maxKey":1})").is<max_key>());
}

// Found by json_fuzz: libbson stores only the flags "ilmsux", sorted, and a pattern up to its
// first NUL, so other options or a NUL changed a document on its way through the store.
BOOST_AUTO_TEST_CASE(regex_options_are_bson_flags_sorted_and_survive_bson) {
  value r = parse_json(R"({"$regularExpression":{"pattern":"a","options":"xmii"}})");
  BOOST_TEST(r.get<regex_value>().options == "imx");
  const object doc{{"re", r}};
  BOOST_TEST(identical(value(decode_bson(encode_bson(doc))), value(doc)));
  BOOST_TEST(contains(parse_error(R"({"$regularExpression":{"pattern":"a","options":"c"}})"),
                      "invalid $regularExpression"));
  BOOST_TEST(contains(parse_error(R"({"$regularExpression":{"pattern":"a\u0000b","options":""}})"),
                      "invalid $regularExpression"));
  // BSON bytes holding other options are corrupt (no writer makes them).
  const std::string bad_options("\x0e\x00\x00\x00"
                                "\x0bre\x00"
                                "a\x00"
                                "ci\x00"
                                "\x00",
                                14);
  try {
    decode_bson(bad_options);
    BOOST_FAIL("decoded");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(contains(e.what(), "corrupt BSON"));
  }
}

BOOST_AUTO_TEST_CASE(bad_regex_binary_timestamp_and_key_wrappers_are_a_400) {
  BOOST_TEST(contains(parse_error(R"({"$regularExpression":{"pattern":"a"}})"),
                      "invalid $regularExpression"));
  BOOST_TEST(contains(parse_error(R"({"$regularExpression":{"pattern":1,"options":""}})"),
                      "invalid $regularExpression"));
  BOOST_TEST(
      contains(parse_error(R"({"$binary":{"base64":"a$==","subType":"00"}})"), "invalid $binary"));
  BOOST_TEST(
      contains(parse_error(R"({"$binary":{"base64":"a","subType":"00"}})"), "invalid $binary"));
  BOOST_TEST(
      contains(parse_error(R"({"$binary":{"base64":"","subType":"123"}})"), "invalid $binary"));
  BOOST_TEST(contains(parse_error(R"({"$binary":"aGVsbG8="})"), "invalid $binary"));
  BOOST_TEST(contains(parse_error(R"({"$timestamp":{"t":-1,"i":0}})"), "invalid $timestamp"));
  BOOST_TEST(
      contains(parse_error(R"({"$timestamp":{"t":4294967296,"i":0}})"), "invalid $timestamp"));
  BOOST_TEST(contains(parse_error(R"({"$timestamp":{"t":1}})"), "invalid $timestamp"));
  BOOST_TEST(contains(parse_error(R"({"$minKey":0})"), "invalid $minKey"));
  BOOST_TEST(contains(parse_error(R"({"$maxKey":"1"})"), "invalid $maxKey"));
}

// ---- writer ----

BOOST_AUTO_TEST_CASE(writer_emits_compact_relaxed_extended_json) {
  object_id id = *object_id::from_hex("65a1b2c3d4e5f60718293a4b");
  value v = object{
      {"_id", id},
      {"n", std::int32_t{1}},
      {"l", std::int64_t{5000000000}},
      {"d", 2.5},
      {"whole", 3.0},
      {"s", "x"},
      {"at", date_time{1704164645123}},
      {"arr", array{value(), true, false}},
      {"o", object{}},
  };
  BOOST_TEST(to_json(v) == R"({"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"n":1,"l":5000000000,)"
                           R"("d":2.5,"whole":3.0,"s":"x","at":{"$date":1704164645123},)"
                           R"("arr":[null,true,false],"o":{}})");
}

BOOST_AUTO_TEST_CASE(writer_emits_the_other_extended_types) {
  BOOST_TEST(to_json(regex_value{"a\"b", "i"}) ==
             R"({"$regularExpression":{"pattern":"a\"b","options":"i"}})");
  BOOST_TEST(to_json(binary_value{4, "hello"}) ==
             R"({"$binary":{"base64":"aGVsbG8=","subType":"04"}})");
  BOOST_TEST(to_json(binary_value{0x80, "hi"}) ==
             R"({"$binary":{"base64":"aGk=","subType":"80"}})");
  BOOST_TEST(to_json(timestamp_value{1700000000, 3}) == R"({"$timestamp":{"t":1700000000,"i":3}})");
  BOOST_TEST(to_json(min_key{}) == R"({"$minKey":1})");
  BOOST_TEST(to_json(max_key{}) == R"({"$maxKey":1})");
  BOOST_TEST(to_json(std::numeric_limits<double>::quiet_NaN()) == R"({"$numberDouble":"NaN"})");
  BOOST_TEST(to_json(std::numeric_limits<double>::infinity()) == R"({"$numberDouble":"Infinity"})");
  BOOST_TEST(to_json(-std::numeric_limits<double>::infinity()) ==
             R"({"$numberDouble":"-Infinity"})");
}

BOOST_AUTO_TEST_CASE(doubles_print_shortest_and_stay_doubles) {
  BOOST_TEST(to_json(0.1) == "0.1");
  BOOST_TEST(to_json(-0.0) == "-0.0");
  BOOST_TEST(to_json(100.0) == "100.0");
  BOOST_TEST(to_json(1e300) == "1e+300");
  BOOST_TEST(to_json(5e-324) == "5e-324");
  for (double d : {0.1, 1.0 / 3, 1e21, 123456789.125, -2.5e-300, 9007199254740993.0}) {
    value back = round_trip(d);
    BOOST_TEST_REQUIRE(back.is<double>());
    BOOST_TEST(back.get<double>() == d);
  }
  BOOST_TEST(std::signbit(round_trip(-0.0).get<double>()));
}

BOOST_AUTO_TEST_CASE(strings_are_escaped) {
  BOOST_TEST(to_json("q\"b\\s/") == R"("q\"b\\s/")");
  BOOST_TEST(to_json("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  BOOST_TEST(to_json(std::string("\x00\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  BOOST_TEST(to_json("h\xC3\xA9 \xF0\x9F\x98\x80") == "\"h\xC3\xA9 \xF0\x9F\x98\x80\"");
  BOOST_TEST(to_json(object{{"a\"b", 1}}) == R"({"a\"b":1})");
  std::string all;
  for (int c = 0; c < 256; ++c)
    all += static_cast<char>(c);
  BOOST_TEST(round_trip(all).as_string() == all);
}

BOOST_AUTO_TEST_CASE(append_json_appends_values_and_objects) {
  std::string out = "x=";
  append_json(out, value(array{1, "a"}));
  out += ';';
  append_json(out, object{{"k", value()}});
  BOOST_TEST(out == R"(x=[1,"a"];{"k":null})");
}

// ---- round trip ----

namespace {

/// A value of every type the value model has, with edge cases.
std::vector<value> every_type() {
  return {
      value(),
      true,
      false,
      std::int32_t{-5},
      std::int32_t{std::numeric_limits<std::int32_t>::min()},
      std::int64_t{std::numeric_limits<std::int64_t>::max()},
      std::int64_t{std::numeric_limits<std::int64_t>::min()},
      1.5,
      4.0,
      std::numeric_limits<double>::infinity(),
      -std::numeric_limits<double>::infinity(),
      "",
      "text with \"quotes\" and \\ and \n",
      object{},
      array{},
      object_id::generate(),
      date_time{0},
      date_time{-62135596800000},
      date_time{253402300799999},
      regex_value{"^x\\d+$", "ims"},
      regex_value{"", ""},
      binary_value{},
      binary_value{3, std::string("\x00\xff\x10", 3)},
      binary_value{0x80, "abcd"},
      timestamp_value{},
      timestamp_value{4294967295u, 4294967295u},
      min_key{},
      max_key{},
  };
}

} // namespace

BOOST_AUTO_TEST_CASE(every_type_round_trips) {
  for (const value& v : every_type()) {
    value back = round_trip(v);
    BOOST_TEST((back == v), to_json(v));
    BOOST_TEST((back.type() == v.type()), to_json(v));
  }
  value nan = round_trip(std::numeric_limits<double>::quiet_NaN());
  BOOST_TEST(std::isnan(nan.get<double>()));
}

BOOST_AUTO_TEST_CASE(nested_documents_round_trip) {
  value doc = object{
      {"_id", object_id::generate()},
      {"nested", object{{"a", array{1, 2.5, "s", object{{"$regex", "x"}}}},
                        {"when", date_time{1704164645123}}}},
      {"bin", binary_value{0, "data"}},
      {"$gt", array{min_key{}, max_key{}}},
  };
  value back = round_trip(doc);
  BOOST_TEST((back == doc));
  BOOST_TEST(to_json(back) == to_json(doc));
}

BOOST_AUTO_TEST_CASE(json_written_from_bson_is_the_json_of_the_decoded_document) {
  object all;
  array list;
  for (const value& v : every_type()) {
    all.emplace_back("f" + std::to_string(all.size()), v);
    list.push_back(v);
  }
  all.emplace_back("nan", std::numeric_limits<double>::quiet_NaN());
  all.emplace_back("list", list);
  all.emplace_back("deep", object{{"a", array{array{}, object{{"\u00e9\"\x01", list}}}}});
  all.emplace_back("dup", 1);
  all.emplace_back("dup", 2); // BSON may hold a key twice: both are written, as decoded
  for (const object& doc : {object{}, object{{"_id", 1}}, all}) {
    const std::string bson = encode_bson(doc);
    std::string direct = "prefix";
    append_json_from_bson(direct, bson);
    BOOST_TEST(direct == "prefix" + to_json(value(decode_bson(bson))));
  }
  // Corrupt bytes fail as decode_bson does.
  std::string bson = encode_bson(all);
  bson.resize(bson.size() - 3);
  std::string out;
  BOOST_CHECK_THROW(append_json_from_bson(out, bson), std::runtime_error);
  BOOST_CHECK_THROW(decode_bson(bson), std::runtime_error);
}

// ---- nesting limits beyond the parser ----

namespace {
/// {"a":{"a":...{}}} with `levels` objects.
object nested(std::size_t levels) {
  value v = object{};
  for (std::size_t i = 1; i < levels; ++i)
    v = object{{"a", std::move(v)}};
  return v.as_object();
}

/// BSON bytes of `levels` nested documents, built by hand (encode_bson refuses them).
std::string nested_bson(std::size_t levels) {
  auto le32 = [](std::size_t n) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i)
      s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    return s;
  };
  std::string doc = le32(5) + std::string(1, '\0');
  for (std::size_t i = 1; i < levels; ++i) {
    std::string body = std::string("\x03"
                                   "a",
                                   2) +
                       std::string(1, '\0') + doc + std::string(1, '\0');
    doc = le32(body.size() + 4) + body;
  }
  return doc;
}

} // namespace

BOOST_AUTO_TEST_CASE(depth_counts_containers_and_stops_at_the_limit) {
  BOOST_TEST(!nested_deeper_than(value(1), 0));
  BOOST_TEST(nested_deeper_than(value(object{}), 0));
  BOOST_TEST(!nested_deeper_than(value(object{{"a", array{}}}), 2));
  BOOST_TEST(nested_deeper_than(value(object{{"a", array{}}}), 1));
  BOOST_TEST(!nested_deeper_than(nested(100), 100));
  BOOST_TEST(nested_deeper_than(nested(101), 100));
  BOOST_TEST(bad_request([] { check_nesting_depth(nested(101), "document"); }) ==
             "document nested deeper than 100 levels");
  BOOST_TEST(bad_request([] { check_nesting_depth(nested(100), "document"); }).empty());
}

BOOST_AUTO_TEST_CASE(bson_nested_up_to_200_levels_round_trips_and_deeper_is_refused) {
  object at_limit = nested(max_bson_depth);
  BOOST_TEST((value(decode_bson(encode_bson(at_limit))) == value(at_limit)));
  BOOST_TEST((value(decode_bson(nested_bson(max_bson_depth))) == value(at_limit)));
  BOOST_CHECK_THROW(encode_bson(nested(max_bson_depth + 1)), std::runtime_error);
  BOOST_TEST(bad_request([] { decode_bson(nested_bson(max_bson_depth + 1)); }) ==
             "BSON document nested deeper than 200 levels");
  // 10,000 levels: refused, not a stack overflow.
  BOOST_TEST(!bad_request([] { decode_bson(nested_bson(10000)); }).empty());
}

BOOST_AUTO_TEST_CASE(objects_at_the_default_depth_parse_and_one_more_is_a_400) {
  std::string at_limit, over;
  for (int i = 0; i < 100; ++i)
    at_limit += "{a:";
  over = "{a:" + at_limit + "1" + std::string(101, '}');
  at_limit += "1" + std::string(100, '}');
  BOOST_TEST(parse_error(at_limit).empty());
  BOOST_TEST(contains(parse_error(over, "filter"),
                      "invalid JSON in filter at offset 300: nested deeper than 100 levels"));
}

// ---- reading an array one element at a time ----

namespace {

/// The elements json_array_reader gives for `text`, then the message of its error ("" when
/// the whole text was read).
std::pair<std::vector<value>, std::string> read_elements(std::string_view text) {
  std::vector<value> out;
  try {
    json_array_reader reader(text);
    while (auto v = reader.next())
      out.push_back(std::move(*v));
    BOOST_TEST(!reader.next()); // and stays at the end
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return {std::move(out), e.what()};
  }
  return {std::move(out), ""};
}

} // namespace

BOOST_AUTO_TEST_CASE(an_array_read_element_by_element_equals_the_parsed_array) {
  for (std::string_view text : {"[]", " [ ] ", "[1]", R"([{"a":1},{"b":[2,{"c":3}]}, "x" ,null])",
                                R"( [{a:'q'},{"$oid":"5f1f7e9b2c8d4e6f7a8b9c0d"}] )"}) {
    auto [elements, error] = read_elements(text);
    BOOST_TEST(error == "", text);
    BOOST_TEST(identical(value(std::move(elements)), parse_json(text)), text);
  }
}

BOOST_AUTO_TEST_CASE(an_array_read_element_by_element_fails_as_parse_json_does) {
  // The same message at the same offset; the elements before the fault were given.
  for (std::string_view text :
       {"[1,2", "[1 2]", "[1,]", "[1]x", "[1],", "", "[{\"a\":}]", "[1,[2,3]"}) {
    auto [elements, error] = read_elements(text);
    BOOST_TEST(error != "", text);
    BOOST_TEST(error == parse_error(text), text);
  }
  BOOST_TEST(read_elements("[1,2,oops]").first.size() == 2u);
  BOOST_TEST(contains(read_elements(R"({"a":1})").second, "unexpected character '{'"));
  // Nesting counts the array itself, as in parse_json.
  std::string deep =
      "[" + std::string(max_nesting_depth - 1, '[') + std::string(max_nesting_depth - 1, ']') + "]";
  BOOST_TEST(read_elements(deep).second == "");
  deep = "[" + deep + "]";
  BOOST_TEST(read_elements(deep).second == parse_error(deep));
}

BOOST_AUTO_TEST_SUITE_END()
