#include <boost/test/unit_test.hpp>

#include "net/cluster_view.hpp"
#include "net/metrics.hpp"

#include <string>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(metrics_test)

BOOST_AUTO_TEST_CASE(label_values_escape_what_the_exposition_format_requires) {
  BOOST_TEST(label_value("edge-a") == "edge-a");
  BOOST_TEST(label_value(R"(a"b\c)") == R"(a\"b\\c)");
  BOOST_TEST(label_value("two\nlines") == R"(two\nlines)");
}

BOOST_AUTO_TEST_CASE(a_node_label_with_quotes_and_backslashes_keeps_every_sample_parseable) {
  const std::string text = "# HELP x_total X.\n"
                           "# TYPE x_total counter\n"
                           "x_total 3\n"
                           "y{limit=\"connections\"} 1\n";
  const std::string out = with_label(text, "node", R"(my "node"\1)");
  BOOST_TEST(out == "# HELP x_total X.\n"
                    "# TYPE x_total counter\n"
                    "x_total{node=\"my \\\"node\\\"\\\\1\"} 3\n"
                    "y{node=\"my \\\"node\\\"\\\\1\",limit=\"connections\"} 1\n");
}

BOOST_AUTO_TEST_SUITE_END()
