// Helpers shared by the Boost.Test suites of the document model (pipeline_test,
// aggregation_test): JSON literals, values printed as JSON in failure messages, and the
// message of an expected 400.
//
// Thread-safety: plain functions; the tests call them from the test thread.
#pragma once

#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"

#include <ostream>
#include <string>
#include <string_view>

namespace rheo {

/// Lets BOOST_TEST print values as JSON.
inline std::ostream& boost_test_print_type(std::ostream& os, const value& v) {
  return os << to_json(v);
}

namespace doc_test {

/// The object that the JSON text `json` holds.
inline object obj(std::string_view json) {
  return parse_json(json, "test").as_object();
}

/// The value that the JSON text `text` holds.
inline value json(std::string_view text) {
  return parse_json(text, "expected");
}

/// The message of the api_error(400) that `f` throws, or "" when it throws none.
template <class F> std::string bad_request(F f) {
  try {
    f();
  } catch (const api_error& e) {
    BOOST_TEST(e.status() == 400);
    return e.what();
  }
  return "";
}

} // namespace doc_test
} // namespace rheo
