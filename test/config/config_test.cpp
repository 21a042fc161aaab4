// Configuration layering (defaults < file < environment < flags) and startup errors.
#include <boost/test/unit_test.hpp>

#include "config/config.hpp"
#include "config/trusted_proxies.hpp"
#include "test/test_support.hpp"

#include <fstream>

using namespace rheo;

BOOST_AUTO_TEST_SUITE(config_test)

namespace {
std::string write_file(const rheo::test::temp_dir& dir, const std::string& name,
                       const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}
} // namespace

BOOST_AUTO_TEST_CASE(defaults_match_the_documentation) {
  auto cl = parse_command_line({}, {});
  BOOST_TEST(cl.config.port == 8080);
  BOOST_TEST(cl.config.bind == "127.0.0.1");
  BOOST_TEST(cl.config.data_dir == "./data");
  BOOST_TEST(cl.config.mongo_uri.empty());
  BOOST_TEST(cl.config.max_body_bytes == 16u * 1024 * 1024);
  BOOST_REQUIRE(cl.config.mounts.size() == 1);
  BOOST_TEST(cl.config.mounts[0].prefix == "/");
  BOOST_TEST(cl.config.mounts[0].db == "rheo");
}

BOOST_AUTO_TEST_CASE(flags_override_environment_which_overrides_the_file) {
  rheo::test::temp_dir dir;
  auto path = write_file(dir, "c.json", R"({
    // comments are allowed
    "port": 1111, "bind": "0.0.0.0", "data_dir": "/from/file", /* block */ "log_level": "warn",
    "mounts": [{"prefix": "/api", "db": "app"}]
  })");
  auto only_file = parse_command_line({"--config", path}, {});
  BOOST_TEST(only_file.config.port == 1111);
  BOOST_TEST(only_file.config.bind == "0.0.0.0");
  BOOST_TEST(only_file.config.mounts[0].prefix == "/api/");
  BOOST_TEST(only_file.config.mounts[0].db == "app");
  auto with_env =
      parse_command_line({"--config", path}, {{"RHEO_PORT", "2222"}, {"RHEO_DATA_DIR", "/env"}});
  BOOST_TEST(with_env.config.port == 2222);
  BOOST_TEST(with_env.config.data_dir == "/env");
  BOOST_TEST(with_env.config.bind == "0.0.0.0");
  auto with_flag = parse_command_line({"--config", path, "--port", "3333", "--data-dir=/flag"},
                                      {{"RHEO_PORT", "2222"}});
  BOOST_TEST(with_flag.config.port == 3333);
  BOOST_TEST(with_flag.config.data_dir == "/flag");
  BOOST_TEST(with_flag.config.log_level == "warn");
}

BOOST_AUTO_TEST_CASE(bad_configuration_is_one_clear_error_naming_the_key) {
  rheo::test::temp_dir dir;
  auto check = [](auto&& f, const std::string& fragment) {
    try {
      f();
      BOOST_ERROR("no error for " << fragment);
    } catch (const config_error& e) {
      std::string what = e.what();
      BOOST_TEST(what.find(fragment) != std::string::npos, what);
      BOOST_TEST(what.find('\n') == std::string::npos);
    }
  };
  auto unknown = write_file(dir, "u.json", R"({"prot": 1})");
  check([&] { parse_command_line({"--config", unknown}, {}); }, "unknown key 'prot'");
  auto bad = write_file(dir, "b.json", R"({"port": "eighty"})");
  check([&] { parse_command_line({"--config", bad}, {}); }, "port");
  auto broken = write_file(dir, "x.json", R"({"port": )");
  check([&] { parse_command_line({"--config", broken}, {}); }, "invalid JSON");
  check(
      [&] {
        parse_command_line({"--config", dir.path() + "/missing.json"}, {});
      },
      "cannot be read");
  check([&] { parse_command_line({"--port", "70000"}, {}); }, "--port");
  check([&] { parse_command_line({"--bogus", "1"}, {}); }, "unknown option '--bogus'");
  check([&] { parse_command_line({"--port"}, {}); }, "needs a value");
  check([&] { parse_command_line({}, {{"RHEO_LOG_LEVEL", "loud"}}); }, "RHEO_LOG_LEVEL");
  check([&] { parse_command_line({"--durability", "maybe"}, {}); }, "durability");
  check([&] { parse_command_line({"--mounts", "nodb"}, {}); }, "PREFIX=DB");
  // Cluster options fit together.
  check([&] { parse_command_line({"--cluster-join", "core:7000"}, {}); }, "cluster_secret");
  check([&] { parse_command_line({"--cluster-listen", "0.0.0.0:7000"}, {}); }, "cluster_secret");
  check([&] { parse_command_line({"--cluster-join", "core"}, {}); }, "HOST:PORT");
  check([&] { parse_command_line({"--cluster-join", "core:70000"}, {}); }, "port");
  check(
      [&] {
        parse_command_line({"--cluster-join", "a:1", "--cluster-listen", "b:2"},
                           {{"RHEO_CLUSTER_SECRET", "s"}});
      },
      "exclude each other");
  check(
      [&] {
        parse_command_line({"--cluster-listen", "b:2", "--cluster-cert", "c.pem"},
                           {{"RHEO_CLUSTER_SECRET", "s"}});
      },
      "cluster_key");
  // A plain link to another host must be declared insecure (TLS is the other way).
  check(
      [&] {
        parse_command_line({"--cluster-join", "core:7000"}, {{"RHEO_CLUSTER_SECRET", "s"}});
      },
      "cluster_insecure");
  auto edge = parse_command_line(
      {"--cluster-join", "core:7000", "--node-name", "edge-1", "--cluster-insecure", "true"},
      {{"RHEO_CLUSTER_SECRET", "s3cret"}});
  BOOST_TEST(edge.config.cluster_secret == "s3cret");
  BOOST_TEST(edge.config.node_name == "edge-1");
}

BOOST_AUTO_TEST_CASE(startup_errors_stop_the_binary_with_one_line) {
  rheo::test::temp_dir dir;
  auto r = rheo::test::run_rheo({"--port", "abc"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("--port") != std::string::npos, r.output);

  auto mongo = rheo::test::run_rheo(
      {"--mongo-uri", "mongodb://localhost/?replicaSet=rs0", "--data-dir", dir.path() + "/m"});
  BOOST_TEST(mongo.exit_code == 2);
  BOOST_TEST(mongo.output.find("MongoDB") != std::string::npos, mongo.output);

  // A data dir that is a file.
  std::ofstream(dir.path() + "/file") << "x";
  auto baddir = rheo::test::run_rheo({"--port", "0", "--data-dir", dir.path() + "/file"});
  BOOST_TEST(baddir.exit_code == 2);
  BOOST_TEST(baddir.output.find(dir.path() + "/file") != std::string::npos, baddir.output);

  // A port already in use.
  rheo::test::rheo_process running;
  auto busy = rheo::test::run_rheo(
      {"--port", std::to_string(running.port()), "--data-dir", dir.path() + "/busy"});
  BOOST_TEST(busy.exit_code == 2);
  BOOST_TEST(busy.output.find(std::to_string(running.port())) != std::string::npos, busy.output);
}

BOOST_AUTO_TEST_CASE(help_lists_every_option) {
  auto r = rheo::test::run_rheo({"--help"});
  BOOST_TEST(r.exit_code == 0);
  for (auto* flag : {"--port", "--bind", "--data-dir", "--mongo-uri", "--log-level", "--log-format",
                     "--access-log", "--config"})
    BOOST_TEST(r.output.find(flag) != std::string::npos, flag);
}

BOOST_AUTO_TEST_CASE(version_prints_the_cmake_project_version) {
  // RHEO_PROJECT_VERSION is project()'s VERSION, given by test/CMakeLists.txt.
  auto r = rheo::test::run_rheo({"--version"});
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.output == "rheo " RHEO_PROJECT_VERSION "\n");
  BOOST_TEST(std::string(rheo::version()) == RHEO_PROJECT_VERSION);
}

BOOST_AUTO_TEST_CASE(cors_allowed_origins_is_a_list_in_flags_env_and_file) {
  BOOST_TEST(parse_command_line({}, {}).config.cors_allowed_origins.empty());
  auto flag = parse_command_line(
      {"--cors-allowed-origins", "https://a.example, http://b.example:3000"}, {});
  BOOST_TEST(flag.config.cors_allowed_origins ==
                 (std::vector<std::string>{"https://a.example", "http://b.example:3000"}),
             boost::test_tools::per_element());
  auto env = parse_command_line({}, {{"RHEO_CORS_ALLOWED_ORIGINS", "*"}});
  BOOST_TEST(env.config.cors_allowed_origins == std::vector<std::string>{"*"},
             boost::test_tools::per_element());
  rheo::test::temp_dir dir;
  auto array = write_file(dir, "a.json", R"({"cors_allowed_origins": ["https://a.example", "*"]})");
  BOOST_TEST(parse_command_line({"--config", array}, {}).config.cors_allowed_origins ==
                 (std::vector<std::string>{"https://a.example", "*"}),
             boost::test_tools::per_element());
  auto text = write_file(dir, "s.json", R"({"cors_allowed_origins": "https://a.example"})");
  BOOST_TEST(parse_command_line({"--config", text}, {}).config.cors_allowed_origins ==
                 std::vector<std::string>{"https://a.example"},
             boost::test_tools::per_element());
  for (const char* bad : {"a.example", "https://a.example/", "https://a.example/app", "://x"}) {
    try {
      parse_command_line({"--cors-allowed-origins", bad}, {});
      BOOST_ERROR("no error for " << bad);
    } catch (const config_error& e) {
      BOOST_TEST(std::string(e.what()).find("scheme://host") != std::string::npos, e.what());
    }
  }
  auto wrong = write_file(dir, "w.json", R"({"cors_allowed_origins": [1]})");
  BOOST_CHECK_THROW(parse_command_line({"--config", wrong}, {}), config_error);
}

BOOST_AUTO_TEST_CASE(log_format_and_access_log_come_from_flags_env_and_file) {
  auto defaults = parse_command_line({}, {});
  BOOST_TEST(defaults.config.log_format == "text");
  BOOST_TEST(defaults.config.access_log.empty()); // off
  BOOST_TEST(parse_command_line({"--log-format", "json"}, {}).config.log_format == "json");
  BOOST_TEST(parse_command_line({}, {{"RHEO_ACCESS_LOG", "stderr"}}).config.access_log == "-");
  BOOST_TEST(parse_command_line({"--access-log=off"}, {{"RHEO_ACCESS_LOG", "-"}})
                 .config.access_log.empty());
  rheo::test::temp_dir dir;
  auto file =
      write_file(dir, "l.json", R"({"log_format": "json", "access_log": "/var/log/a.log"})");
  auto from_file = parse_command_line({"--config", file}, {});
  BOOST_TEST(from_file.config.log_format == "json");
  BOOST_TEST(from_file.config.access_log == "/var/log/a.log");
  try {
    parse_command_line({"--log-format", "xml"}, {});
    BOOST_ERROR("no error for xml");
  } catch (const config_error& e) {
    BOOST_TEST(std::string(e.what()).find("--log-format") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(an_access_log_that_cannot_be_opened_and_a_mongo_password_in_errors) {
  rheo::test::temp_dir dir;
  auto r = rheo::test::run_rheo({"--port", "0", "--data-dir", dir.path() + "/d", "--access-log",
                                 dir.path() + "/no/such/dir/access.log"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("access log " + dir.path() + "/no/such/dir/access.log") !=
                 std::string::npos,
             r.output);
  // A MongoDB URI's password is not in the error naming the unreachable server.
  auto mongo = rheo::test::run_rheo(
      {"--mongo-uri", "mongodb://app:hunter2pw@127.0.0.1:1/?serverSelectionTimeoutMS=300",
       "--data-dir", dir.path() + "/m", "--log-level", "debug"});
  BOOST_TEST(mongo.exit_code == 2);
  BOOST_TEST(mongo.output.find("127.0.0.1:1") != std::string::npos, mongo.output);
  BOOST_TEST(mongo.output.find("hunter2pw") == std::string::npos, mongo.output);
}

BOOST_AUTO_TEST_CASE(trusted_proxies_name_the_client_only_when_the_peer_is_one_of_them) {
  trusted_proxies p({"10.0.0.0/8", "192.168.1.7", "fd00::/8"});
  BOOST_TEST(p.trusts("10.200.3.4"));
  BOOST_TEST(p.trusts("::ffff:10.0.0.1")); // as a dual-stack socket reports it
  BOOST_TEST(p.trusts("192.168.1.7"));
  BOOST_TEST(!p.trusts("192.168.1.8"));
  BOOST_TEST(p.trusts("fd12::1"));
  BOOST_TEST(!p.trusts("fe80::1"));
  BOOST_TEST(!p.trusts("not an address"));
  // X-Forwarded-For: the right-most address that is not a trusted proxy; whatever the client
  // wrote left of it is ignored.
  auto c = p.client_of("10.0.0.2", "", "6.6.6.6, 203.0.113.9, 10.1.1.1", "https");
  BOOST_TEST(c.address == "203.0.113.9");
  BOOST_TEST(c.scheme == "https");
  // Forwarded wins over X-Forwarded-For; quoted IPv6 with a port; per-hop proto.
  c = p.client_of("10.0.0.2", R"(for=6.6.6.6, for="[2001:db8::5]:4711";proto=http)", "1.2.3.4",
                  "https");
  BOOST_TEST(c.address == "2001:db8::5");
  BOOST_TEST(c.scheme == "http");
  // Only proxies in the chain: the left-most of them.
  BOOST_TEST(p.client_of("10.0.0.2", "", "10.9.9.9", "").address == "10.9.9.9");
  // No header: the proxy itself.
  BOOST_TEST(p.client_of("10.0.0.2", "", "", "").address == "10.0.0.2");
  // From a peer that is not trusted, the headers are ignored.
  c = p.client_of("203.0.113.1", "for=1.1.1.1;proto=https", "1.1.1.1", "https");
  BOOST_TEST(c.address == "203.0.113.1");
  BOOST_TEST(c.scheme.empty());
  // A scheme other than http or https is not believed.
  BOOST_TEST(p.client_of("10.0.0.2", "", "1.2.3.4", "gopher").scheme.empty());
  // Malformed entries are refused with their text.
  for (std::string bad : {"10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/", "1.2.3.4/x"})
    BOOST_CHECK_EXCEPTION(trusted_proxies({bad}), std::invalid_argument,
                          [&](const std::invalid_argument& e) {
                            return std::string(e.what()).find(bad) != std::string::npos;
                          });
  auto r = test::run_rheo({"--trusted-proxies", "10.0.0.0/8,banana", "--port", "0"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output.find("trusted_proxies: 'banana'") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
