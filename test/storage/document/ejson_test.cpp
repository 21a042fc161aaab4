#include <boost/test/unit_test.hpp>

#include "storage/document/bson_codec.hpp"
#include "storage/document/ejson.hpp"

#include <string>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(ejson_test)

namespace {

/// The message bson_from_ejson throws for `json`, or "" when it reads it.
std::string error_of(const std::string& json) {
  try {
    bson_from_ejson(json);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

} // namespace

BOOST_AUTO_TEST_CASE(canonical_output_reads_back_to_the_same_bytes_for_every_value_type) {
  const object doc{
      {"_id", value(object_id::generate())},
      {"null", value(null_t{})},
      {"b", value(true)},
      {"i32", value(std::int32_t(-7))},
      {"i64", value(std::int64_t(1) << 53)},
      {"i64small", value(std::int64_t(3))},
      {"d", value(0.1)},
      {"dint", value(2.0)},
      {"negzero", value(-0.0)},
      {"s", value("a\nb\"c\\\u00e9")},
      {"o", value(object{{"x", value(array{value(1), value("y")})}})},
      {"date", value(date_time{-1})},
      {"re", value(regex_value{"^x", "im"})},
      {"bin", value(binary_value{4, std::string("\x00\x01\xff", 3)})},
      {"ts", value(timestamp_value{5, 6})},
      {"min", value(min_key{})},
      {"max", value(max_key{})},
  };
  const std::string bson = encode_bson(doc);
  const std::string line = ejson_from_bson(bson);
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_TEST(line.find(R"("i64small" : { "$numberLong" : "3" })") != std::string::npos, line);
  BOOST_TEST((bson_from_ejson(line) == bson));
  // Relaxed mode is plain JSON numbers: it reads back to the same values, not always types.
  const std::string relaxed = ejson_from_bson(bson, ejson_mode::relaxed);
  BOOST_TEST(relaxed.find(R"("i32" : -7)") != std::string::npos, relaxed);
  BOOST_TEST(decode_bson(bson_from_ejson(relaxed)).size() == doc.size());
}

BOOST_AUTO_TEST_CASE(relaxed_and_legacy_input_is_read) {
  const object o = decode_bson(
      bson_from_ejson(R"({"n":1,"l":3000000000,"d":1.0,"at":{"$date":"1970-01-01T00:00:01Z"},)"
                      R"("old":{"$date":2000},"b":{"$binary":"AQI=","$type":"00"}})"));
  BOOST_TEST(find_field(o, "n")->is<std::int32_t>());
  BOOST_TEST(find_field(o, "l")->is<std::int64_t>());
  BOOST_TEST(find_field(o, "d")->is<double>());
  BOOST_TEST(find_field(o, "at")->get<date_time>().millis == 1000);
  BOOST_TEST(find_field(o, "old")->get<date_time>().millis == 2000);
  BOOST_TEST(find_field(o, "b")->get<binary_value>().data == std::string("\x01\x02", 2));
}

BOOST_AUTO_TEST_CASE(anything_but_one_json_object_is_refused_saying_where) {
  BOOST_TEST(error_of(R"({"a":1})") == "");
  BOOST_TEST(error_of("  {\"a\":1}  \r") == "");
  BOOST_TEST(error_of(R"({"a": })") == "offset 6: Invalid value.");
  BOOST_TEST(error_of(R"({"a":1} {"b":2})").find("offset 8: The document root must not") == 0u);
  BOOST_TEST(error_of("[1,2]") == "not a JSON object");
  BOOST_TEST(error_of("42") == "not a JSON object");
  BOOST_TEST(error_of("") == "not a JSON object");
  BOOST_TEST(error_of("{\"a\":\"\xff\"}").find("offset 6: Invalid encoding") == 0u,
             error_of("{\"a\":\"\xff\"}"));
  BOOST_TEST(error_of(R"({"a":{"$numberLong":"ten"}})") != "");
  BOOST_TEST(error_of(R"({"a":{"$oid":"xyz"}})") != "");
}

BOOST_AUTO_TEST_SUITE_END()
