// Logs: the text and JSON line formats (escaping of any bytes, fields, levels), URI
// password redaction, the access log file and its reopening; and a real rheo's access log
// (JSON) for anonymous, Basic, token, cookie, JWT requests and WebSocket/SSE sessions.
#include <boost/test/unit_test.hpp>

#include "config/log.hpp"
#include "test/test_support.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(log_test)

namespace {

const auto noon = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764676800123));

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

/// `line` parsed as one JSON object (strictly: valid UTF-8 required).
rapidjson::Document parse_line(const std::string& line) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
  BOOST_REQUIRE_MESSAGE(!d.HasParseError(),
                        "not JSON: " << line << " ("
                                     << rapidjson::GetParseError_En(d.GetParseError()) << ")");
  BOOST_REQUIRE(d.IsObject());
  return d;
}

std::string str(const rapidjson::Value& obj, const char* key) {
  BOOST_REQUIRE_MESSAGE(obj.HasMember(key) && obj[key].IsString(), "no string " << key);
  return {obj[key].GetString(), obj[key].GetStringLength()};
}

/// What `f` writes to stderr (fd 2 is a file meanwhile).
template <class F> std::string stderr_of(F&& f) {
  temp_dir dir;
  const std::string path = dir.path() + "/err";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  BOOST_REQUIRE(fd >= 0);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  ::close(fd);
  f();
  ::dup2(saved, 2);
  ::close(saved);
  return read_file(path);
}

} // namespace

BOOST_AUTO_TEST_CASE(json_lines_parse_with_time_level_message_and_typed_fields) {
  std::string line = log::format_line(log::format::json, log::level::warn, "slow request",
                                      {{"remote", "10.0.0.7"},
                                       {"status", 503},
                                       {"bytes", std::uint64_t(18446744073709551615u)},
                                       {"delta", -42},
                                       {"duration_ms", 12.3456},
                                       {"cached", false}},
                                      noon);
  BOOST_TEST(line.back() == '\n');
  BOOST_TEST(line.find('\n') == line.size() - 1);
  auto d = parse_line(line);
  BOOST_TEST(str(d, "time") == "2025-12-02T12:00:00.123Z"); // RFC 3339, UTC, milliseconds
  BOOST_TEST(str(d, "level") == "warn");
  BOOST_TEST(str(d, "msg") == "slow request");
  BOOST_TEST(str(d, "remote") == "10.0.0.7");
  BOOST_TEST(d["status"].GetInt() == 503);
  BOOST_TEST(d["bytes"].GetUint64() == 18446744073709551615u);
  BOOST_TEST(d["delta"].GetInt() == -42);
  BOOST_TEST(d["duration_ms"].GetDouble() == 12.346);
  BOOST_TEST(d["cached"].IsFalse());
  // The fields come in the order given, after time, level and msg.
  BOOST_TEST(line.find("\"time\"") < line.find("\"level\""));
  BOOST_TEST(line.find("\"msg\"") < line.find("\"remote\""));
  BOOST_TEST(line.find("\"remote\"") < line.find("\"status\""));
}

BOOST_AUTO_TEST_CASE(json_escapes_quotes_newlines_control_bytes_and_replaces_invalid_utf8) {
  const std::string nasty =
      std::string("say \"hi\"\\\n\r\t\x01\x7f end ") + "caf\xc3\xa9 \xe2\x82\xac" +
      " bad:\xff\xc3(\xed\xa0\x80\xf4\x90\x80\x80\xc0\xaf" + std::string(1, '\0') + "z";
  std::string line = log::format_line(log::format::json, log::level::info, nasty,
                                      {{nasty, nasty}, {"path", "/a b?c"}}, noon);
  BOOST_TEST(line.find('\n') == line.size() - 1); // one line
  auto d = parse_line(line);
  const std::string expected =
      std::string("say \"hi\"\\\n\r\t\x01\x7f end caf\xc3\xa9 \xe2\x82\xac bad:") +
      "\xef\xbf\xbd\xef\xbf\xbd(" +                        // each invalid byte is U+FFFD
      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" +             // a UTF-16 surrogate: 3 bytes
      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" + // past U+10FFFF: 4 bytes
      "\xef\xbf\xbd\xef\xbf\xbd" +                         // an overlong '/'
      std::string(1, '\0') + "z";
  BOOST_TEST(std::string(d["msg"].GetString(), d["msg"].GetStringLength()) == expected);
  BOOST_REQUIRE(d.HasMember(
      rapidjson::Value(expected.c_str(), static_cast<rapidjson::SizeType>(expected.size()))));
  BOOST_TEST(str(d, "path") == "/a b?c");
}

BOOST_AUTO_TEST_CASE(text_lines_are_one_line_with_key_value_fields_quoted_when_needed) {
  std::string line = log::format_line(log::format::text, log::level::error, "two\nlines",
                                      {{"remote", "::1"},
                                       {"status", 401},
                                       {"user", ""},
                                       {"path", "/a b=\"c\"\\"},
                                       {"raw", "\xff\x01"},
                                       {"ms", 0.5}},
                                      noon);
  BOOST_TEST(line == "2025-12-02T12:00:00.123Z ERROR two\\nlines remote=::1 status=401 user=\"\" "
                     "path=\"/a b=\\\"c\\\"\\\\\" raw=\"\\xff\\x01\" ms=0.500\n");
}

BOOST_AUTO_TEST_CASE(uri_passwords_are_redacted_in_messages_and_fields) {
  BOOST_TEST(log::redact_uri_passwords("mongodb://app:p%40ss@db1:27017,db2/rheo?tls=true") ==
             "mongodb://app:***@db1:27017,db2/rheo?tls=true");
  BOOST_TEST(log::redact_uri_passwords("a mongodb+srv://u:x@y@h/ and http://h/p?u=a:b@c") ==
             "a mongodb+srv://u:***@h/ and http://h/p?u=a:b@c");
  BOOST_TEST(log::redact_uri_passwords("mongodb://user@h, mongodb://h:27017/x") ==
             "mongodb://user@h, mongodb://h:27017/x");
  std::string line =
      log::format_line(log::format::json, log::level::info, "connecting to mongodb://a:hunter2@h",
                       {{"uri", "mongodb://a:hunter2@h/db"}}, noon);
  BOOST_TEST(line.find("hunter2") == std::string::npos, line);
  BOOST_TEST(line.find("mongodb://a:***@h") != std::string::npos, line);
  line = log::format_line(log::format::text, log::level::info, "mongodb://a:hunter2@h", {}, noon);
  BOOST_TEST(line.find("hunter2") == std::string::npos, line);
}

BOOST_AUTO_TEST_CASE(write_prints_one_line_per_call_at_or_above_the_level_in_the_format_set) {
  std::string out = stderr_of([] {
    log::set_format("json");
    log::set_level("info");
    log::debug("hidden", {{"k", 1}});
    log::info("shown", {{"k", "v"}});
    log::warn("also");
    log::set_level("error");
    log::warn("hidden too");
    log::error("last");
    log::set_level("info");
    log::set_format("text");
    log::info("plain", {{"n", 7}});
  });
  auto lines = lines_of(out);
  BOOST_REQUIRE(lines.size() == 4u);
  BOOST_TEST(str(parse_line(lines[0]), "msg") == "shown");
  BOOST_TEST(str(parse_line(lines[0]), "k") == "v");
  BOOST_TEST(str(parse_line(lines[1]), "level") == "warn");
  BOOST_TEST(str(parse_line(lines[2]), "msg") == "last");
  BOOST_TEST(lines[3].find(" INFO plain n=7") != std::string::npos, lines[3]);
  BOOST_TEST(out.find("hidden") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_access_log_goes_to_its_file_and_reopens_after_a_rotation) {
  temp_dir dir;
  const std::string path = dir.path() + "/access.log";
  BOOST_TEST(!log::access_log_enabled());
  log::access({{"method", "GET"}}); // off: nothing, nowhere
  log::set_format("json");
  log::open_access_log(path);
  BOOST_TEST(log::access_log_enabled());
  log::access({{"method", "GET"}, {"status", 200}});
  BOOST_REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
  log::access({{"method", "PUT"}}); // still into the renamed file
  BOOST_TEST(log::reopen_access_log());
  log::access({{"method", "POST"}, {"status", 201}});
  log::open_access_log("");
  BOOST_TEST(!log::access_log_enabled());
  log::access({{"method", "DELETE"}});
  log::set_format("text");

  auto old_lines = lines_of(read_file(path + ".1"));
  auto new_lines = lines_of(read_file(path));
  BOOST_REQUIRE(old_lines.size() == 2u);
  BOOST_REQUIRE(new_lines.size() == 1u);
  BOOST_TEST(str(parse_line(old_lines[0]), "msg") == "access");
  BOOST_TEST(str(parse_line(old_lines[0]), "method") == "GET");
  BOOST_TEST(str(parse_line(old_lines[1]), "method") == "PUT");
  BOOST_TEST(str(parse_line(new_lines[0]), "method") == "POST");
  BOOST_CHECK_THROW(log::open_access_log(dir.path() + "/no/such/dir/access.log"),
                    std::runtime_error);
}

namespace {

std::string password_hash(const std::string& pw) {
  auto r = run_rheo({"hash-password", pw});
  BOOST_REQUIRE(r.exit_code == 0);
  std::string h = r.output.substr(0, r.output.find('\n'));
  BOOST_REQUIRE(h.rfind("$argon2id$", 0) == 0);
  return h;
}

/// The access lines of `path` parsed, in order.
std::vector<rapidjson::Document> access_lines(const std::string& path) {
  std::vector<rapidjson::Document> out;
  for (auto& line : lines_of(read_file(path)))
    out.push_back(parse_line(line));
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_server_logs_one_json_access_line_per_request_and_per_session) {
  temp_dir dir;
  const std::string access = dir.path() + "/access.log";
  const std::string users = R"([{"userid":"ann","password":")" + password_hash("ann-secret-pw") +
                            R"(","roles":["user"]}])";
  rheo_process p({"--log-format", "json", "--access-log", access, "--users", users, "--jwt",
                  R"({"algorithm":"HS256","key":"jwt-key-123"})", "--durability", "normal"});
  const auto port = p.port();
  const std::string good = "Basic " + base64("ann:ann-secret-pw");
  const std::string bad = "Basic " + base64("ann:not-her-password");

  struct expect {
    std::string method, path, user;
    int status;
  };
  std::vector<expect> expected;
  // Anonymous, with a query string (not logged: it may hold user data).
  BOOST_TEST(http(port, "GET", "/messages?filter=%7B%22who%22%3A%22x%22%7D&pagesize=2").status ==
             200);
  expected.push_back({"GET", "/messages", "", 200});
  // Basic with the right password: a login, a token issued.
  auto login = http(port, "GET", "/messages", "", {{"Authorization", good}});
  BOOST_REQUIRE(login.status == 200);
  expected.push_back({"GET", "/messages", "ann", 200});
  const std::string token = login.header("auth-token");
  const std::string set_cookie = login.header("set-cookie");
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  BOOST_REQUIRE(!token.empty());
  BOOST_TEST(http(port, "POST", "/messages", R"({"m":1})", {{"Authorization", bad}}).status == 401);
  expected.push_back({"POST", "/messages", "", 401});
  BOOST_TEST(
      http(port, "GET", "/messages", "", {{"Authorization", "Basic " + base64("ann:" + token)}})
          .status == 200);
  expected.push_back({"GET", "/messages", "ann", 200});
  BOOST_TEST(http(port, "GET", "/tokens/ann", "", {{"Cookie", cookie}}).status == 200);
  expected.push_back({"GET", "/tokens/ann", "ann", 200});
  const std::string jwt = hs256_jwt(R"({"sub":"carol","roles":["user"]})", "jwt-key-123");
  BOOST_TEST(http(port, "PUT", "/notes", "{}", {{"Authorization", "Bearer " + jwt}}).status < 300);
  expected.push_back({"PUT", "/notes", "carol", 0});
  BOOST_TEST(http(port, "HEAD", "/_ping").status == 200);
  expected.push_back({"HEAD", "/_ping", "", 200});
  // A malformed request: method and path unknown.
  raw_exchange(port, "NOT HTTP\r\n\r\n");
  expected.push_back({"-", "-", "", 400});

  BOOST_REQUIRE(eventually([&] { return access_lines(access).size() == expected.size(); }));
  auto lines = access_lines(access);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    auto& d = lines[i];
    const auto& e = expected[i];
    BOOST_TEST_CONTEXT("line " << i << ": " << e.method << " " << e.path) {
      BOOST_TEST(str(d, "msg") == "access");
      BOOST_TEST(str(d, "level") == "info");
      BOOST_TEST(str(d, "time").size() == 24u);
      BOOST_TEST(str(d, "remote") == "127.0.0.1");
      BOOST_TEST(str(d, "method") == e.method);
      BOOST_TEST(str(d, "path") == e.path);
      BOOST_TEST(str(d, "user") == e.user);
      BOOST_REQUIRE(d["status"].IsInt());
      if (e.status) BOOST_TEST(d["status"].GetInt() == e.status);
      BOOST_TEST(d["bytes"].IsUint64());
      BOOST_TEST(d["duration_ms"].GetDouble() >= 0.0);
      BOOST_TEST(!d.HasMember("session"));
    }
  }
  BOOST_TEST(lines[0]["bytes"].GetUint64() > 0u);
  BOOST_TEST(lines[6]["bytes"].GetUint64() == 0u); // HEAD: no body

  // Sessions: one line each when it has ended, with the bytes sent and how long it lasted.
  {
    ws_client ws(port, "/messages/_streams/all", {{"Authorization", good}});
    BOOST_REQUIRE(ws.upgrade_status() == 101);
    sse_client sse(port, "/messages/_streams/all?avars=%7B%7D", {{"Cookie", cookie}});
    BOOST_REQUIRE(sse.status() == 200);
    BOOST_TEST(http(port, "POST", "/messages", R"({"message":"hi"})").status == 201);
    BOOST_TEST(ws.next().opcode == 1);
    BOOST_TEST(!sse.next().timed_out);
    ws.close();
    BOOST_TEST(ws.next().opcode == 8);
  }
  const std::size_t before = expected.size() + 1; // and the POST
  BOOST_REQUIRE(eventually([&] { return access_lines(access).size() == before + 2; }));
  lines = access_lines(access);
  std::map<std::string, const rapidjson::Document*> sessions;
  for (std::size_t i = before; i < lines.size(); ++i)
    sessions[str(lines[i], "session")] = &lines[i];
  BOOST_REQUIRE(sessions.size() == 2u);
  auto& ws_line = *sessions.at("websocket");
  BOOST_TEST(str(ws_line, "method") == "GET");
  BOOST_TEST(str(ws_line, "path") == "/messages/_streams/all");
  BOOST_TEST(ws_line["status"].GetInt() == 101);
  BOOST_TEST(str(ws_line, "user") == "ann");
  BOOST_TEST(ws_line["bytes"].GetUint64() > 100u); // the handshake and an event
  auto& sse_line = *sessions.at("sse");
  BOOST_TEST(str(sse_line, "path") == "/messages/_streams/all");
  BOOST_TEST(sse_line["status"].GetInt() == 200);
  BOOST_TEST(str(sse_line, "user") == "ann");

  // None of the credentials is in either log.
  const std::string all = read_file(access) + p.log();
  for (const std::string& secret :
       {std::string("ann-secret-pw"), std::string("not-her-password"), token, jwt,
        cookie.substr(10), base64("ann:ann-secret-pw"), std::string("jwt-key-123")})
    BOOST_TEST(all.find(secret) == std::string::npos, secret);
  // The server's own log is JSON too.
  for (auto& line : lines_of(p.log()))
    parse_line(line);
}

BOOST_AUTO_TEST_CASE(under_the_json_format_the_listening_line_and_startup_errors_are_json_too) {
  rheo_process p({"--log-format", "json"});
  const std::string url = "http://127.0.0.1:" + std::to_string(p.port());
  auto listening = parse_line(p.listening_line());
  BOOST_TEST(std::string(listening["level"].GetString()) == "info");
  BOOST_TEST(
      std::string(listening["msg"].GetString()).rfind("rheo listening on " + url + " (", 0) == 0u);
  BOOST_TEST(std::string(listening["url"].GetString()) == url);

  // A store that cannot be opened, and an option that does not parse: one JSON error line.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--log-format", "json", "--data-dir", "/proc/no-such-dir/db", "--port", "0"},
           {"--log-format=json", "--no-such-option"},
       }) {
    auto r = run_rheo(args);
    BOOST_TEST(r.exit_code == 2);
    auto lines = lines_of(r.output);
    BOOST_REQUIRE_EQUAL(lines.size(), 1u);
    auto line = parse_line(lines[0]);
    BOOST_TEST(std::string(line["level"].GetString()) == "error");
    BOOST_TEST(std::string(line["msg"].GetString()).size() > 10u);
  }
  // The text format says it as before.
  auto r = run_rheo({"--no-such-option"});
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(r.output == "rheo: unknown option '--no-such-option' (see --help)\n");
}

BOOST_AUTO_TEST_SUITE_END()
