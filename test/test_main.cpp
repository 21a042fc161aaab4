// The main() of every Boost.Test executable of test/ (test/CMakeLists.txt): each test file
// is a suite of its own, BOOST_AUTO_TEST_SUITE(<file name>), so this module holds no tests.
#define BOOST_TEST_MODULE rheo
#include <boost/test/unit_test.hpp>
