// Declarative security against a real rheo process: roles x endpoints, readFilter on
// GET, streams, bulk writes and aggregations, mergeRequest, tokens and cookies, JWT,
// throttling, the default rules; the cache of verified passwords, the bound on argon2id
// checks at once, and logout at the Auth-Token-Location. Every server runs with debug logs
// and the access log on stderr (JSON); the last case checks that no password, token, JWT,
// Authorization or cookie value, password hash or cluster secret appears in any of them.
#include <boost/test/unit_test.hpp>

#include "storage/document/json.hpp"
#include "test/test_support.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

using namespace rheo;
using namespace rheo::test;

BOOST_AUTO_TEST_SUITE(security_test)

namespace {

/// Every rheo started here logs at debug level, with the access log on stderr, as JSON
/// (through RHEO_* variables, which the servers inherit; flags still override them).
struct verbose_servers {
  verbose_servers() {
    ::setenv("RHEO_LOG_LEVEL", "debug", 1);
    ::setenv("RHEO_ACCESS_LOG", "-", 1);
    ::setenv("RHEO_LOG_FORMAT", "json", 1);
  }
};

/// What no log line may show: the passwords, tokens, JWTs, Authorization values, password
/// hashes and secrets the tests use (short words like "bad" are left out: they are in
/// ordinary messages too; their Authorization values are not).
struct secret_registry {
  std::mutex mutex;
  std::set<std::string> values;
};
secret_registry& secrets() {
  static secret_registry r;
  return r;
}
void remember_secret(const std::string& s) {
  if (s.size() < 6) return;
  std::lock_guard lock(secrets().mutex);
  secrets().values.insert(s);
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(verbose_servers);

namespace {

std::string basic(const std::string& user, const std::string& pw) {
  remember_secret(pw);
  remember_secret(base64(user + ":" + pw));
  return "Basic " + base64(user + ":" + pw);
}

std::string hash_of(const std::string& pw) {
  auto r = run_rheo({"hash-password", pw});
  BOOST_REQUIRE(r.exit_code == 0);
  std::string h = r.output;
  while (!h.empty() && (h.back() == '\n' || h.back() == '\r'))
    h.pop_back();
  BOOST_REQUIRE(h.rfind("$argon2id$", 0) == 0);
  remember_secret(pw);
  remember_secret(h);
  return h;
}

std::string now_plus(long seconds) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() +
                        seconds);
}

std::string hs256(const std::string& payload, const std::string& key) {
  std::string jwt = hs256_jwt(payload, key);
  remember_secret(key);
  remember_secret(jwt);
  remember_secret(jwt.substr(jwt.rfind('.') + 1)); // the signature alone
  return jwt;
}

struct rsa_keys {
  EVP_PKEY* key = nullptr;
  std::string public_pem;
  rsa_keys() {
    key = EVP_RSA_gen(2048);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    public_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
  }
  ~rsa_keys() { EVP_PKEY_free(key); }
  std::string rs256(const std::string& payload) const {
    std::string signing =
        base64(R"({"alg":"RS256","typ":"JWT"})", true) + "." + base64(payload, true);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    std::size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(signing.data()),
                   signing.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(signing.data()), signing.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    std::string jwt = signing + "." + base64(sig, true);
    remember_secret(jwt);
    remember_secret(base64(sig, true));
    return jwt;
  }
};

const rsa_keys& rsa() {
  static rsa_keys k;
  return k;
}

std::string json_string(const std::string& s) {
  return to_json(value(s));
}

/// hash_of(pw), the same each time for the same password (for configs that must keep a
/// user's hash across a reload).
const std::string& hash_for(const std::string& pw) {
  static std::map<std::string, std::string> hashes;
  auto it = hashes.find(pw);
  if (it == hashes.end()) it = hashes.emplace(pw, hash_of(pw)).first;
  return it->second;
}

/// The users of `secured`: ann (role user), bob (role user), root (role admin).
std::string default_users() {
  static const std::string users = R"cfg([
        {"userid": "ann", "password": )cfg" +
                                   json_string(hash_for("ann-pw")) +
                                   R"cfg(, "roles": ["user"]},
        {"userid": "bob", "password": )cfg" +
                                   json_string(hash_for("bob-pw")) +
                                   R"cfg(, "roles": ["user"]},
        {"userid": "root", "password": )cfg" +
                                   json_string(hash_for("root-pw")) +
                                   R"cfg(, "roles": ["admin"]}
      ])cfg";
  return users;
}

/// The ACL of `secured`.
const char* const default_acl = R"cfg([
        {"roles": ["$unauthenticated", "$authenticated"],
         "predicate": "path-prefix('/public') and method(GET)"},
        {"roles": ["user"], "predicate": "path-prefix('/notes') and (method(GET) or method(POST))",
         "readFilter": {"owner": "@user"}, "mergeRequest": {"owner": "@user", "at": "@now"},
         "projectResponse": {"secret": 0}},
        {"roles": ["user"], "predicate": "path('/profiles/{id}') and method(GET)"},
        {"roles": ["user"],
         "predicate": "(path-prefix('/tasks') or path-prefix('/scores')) and (method(GET) or method(POST) or method(PATCH) or method(DELETE))",
         "readFilter": {"owner": "@user"}, "mergeRequest": {"owner": "@user", "at": "@now"}},
        {"roles": ["admin"], "predicate": "path-prefix('/')"}
      ])cfg";

/// A config file's text with these users, ACL and JWT settings, tokens living 2 s and 3
/// failed logins allowed; `extra` is spliced in as more keys (", \"key\": value"; a key
/// given again there wins).
std::string config_text(const std::string& users, const std::string& acl,
                        const std::string& jwt_json, const std::string& extra = "") {
  return "{\"users\": " + users + ",\n\"acl\": " + acl + ",\n\"jwt\": " + jwt_json +
         ",\n\"token_ttl_seconds\": 2, \"login_max_failures\": 3\n" + extra + "}";
}

/// A server with users ann (role user), bob (role user), root (role admin), JWT HS256 or RS256.
struct secured {
  temp_dir dir;
  std::unique_ptr<rheo_process> proc;
  explicit secured(const std::string& jwt_json, const std::string& extra = "",
                   std::vector<std::string> args = {}) {
    std::ofstream(dir.path() + "/rheo.json")
        << config_text(default_users(), default_acl, jwt_json, extra);
    args.insert(args.begin(), {"--config", dir.path() + "/rheo.json", "--durability", "normal"});
    proc = std::make_unique<rheo_process>(std::move(args));
  }
  /// Replaces the config file with `text`, sends SIGHUP and waits for the server to log the
  /// outcome; returns that log line ("reloaded: ..." or "reload refused ...").
  std::string reload(const std::string& text) {
    auto outcomes = [&] {
      std::vector<std::string> lines;
      std::string log = proc->log();
      for (std::size_t p = 0, e; p < log.size(); p = e + 1) {
        e = log.find('\n', p);
        if (e == std::string::npos) e = log.size();
        std::string line = log.substr(p, e - p);
        if (line.find("reloaded: ") != std::string::npos ||
            line.find("reload refused") != std::string::npos)
          lines.push_back(line);
      }
      return lines;
    };
    const std::size_t before = outcomes().size();
    std::ofstream(dir.path() + "/rheo.json", std::ios::trunc) << text;
    BOOST_REQUIRE(kill(proc->pid(), SIGHUP) == 0);
    BOOST_REQUIRE(eventually([&] { return outcomes().size() > before; }));
    return outcomes().back();
  }
  /// How many argon2id checks of `user` the server has logged (it runs with --log-level debug).
  std::size_t argon2_checks(const std::string& user) const {
    std::string log = proc->log(), needle = "argon2id check of user '" + user + "'";
    std::size_t n = 0;
    for (auto p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1))
      ++n;
    return n;
  }
  http_result as(const std::string& auth, const std::string& method, const std::string& target,
                 const std::string& body = "") {
    std::vector<std::pair<std::string, std::string>> h;
    if (!auth.empty()) h.emplace_back("Authorization", auth);
    auto r = http(proc->port(), method, target, body, h);
    // Issued tokens, also as the cookie's value.
    remember_secret(r.header("auth-token"));
    std::string cookie = r.header("set-cookie");
    if (cookie.rfind("rheo_auth=", 0) == 0)
      remember_secret(cookie.substr(10, cookie.find(';') - 10));
    return r;
  }
};

secured& hs_server() {
  static secured s(R"({"algorithm":"HS256","key":"s3cret","issuer":"idp","audience":"rheo"})");
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(hash_password_prints_an_argon2id_hash) {
  auto h = hash_of("x");
  BOOST_TEST(h.find("$argon2id$v=19$") == 0u);
  BOOST_TEST(hash_of("x") != h); // salted
}

BOOST_AUTO_TEST_CASE(roles_times_endpoints_give_200_401_403) {
  auto& s = hs_server();
  std::string root = basic("root", "root-pw"), ann = basic("ann", "ann-pw");
  BOOST_REQUIRE(s.as(root, "POST", "/public", R"({"a":1})").status == 201);
  BOOST_REQUIRE(
      s.as(root, "PUT", "/notes", R"({"streams":[{"uri":"all","stages":[]}]})").status / 100 == 2);
  BOOST_REQUIRE(
      s.as(root, "PUT", "/profiles", R"({"streams":[{"uri":"all","stages":[]}]})").status == 201);
  BOOST_REQUIRE(s.as(root, "POST", "/profiles", R"({"_id":"p1"})").status == 201);
  struct row {
    const char* method;
    const char* target;
    int anonymous, user, admin;
  } rows[] = {
      {"GET", "/public", 200, 200, 200},      {"POST", "/public", 401, 403, 201},
      {"GET", "/notes", 401, 200, 200},       {"DELETE", "/notes/x", 401, 403, 404},
      {"GET", "/profiles/p1", 401, 200, 200}, {"GET", "/profiles", 401, 403, 200},
      {"PUT", "/profiles/p1", 401, 403, 200}, {"GET", "/_metrics", 401, 403, 200},
  };
  for (auto& r : rows) {
    std::string body =
        std::string(r.method) == "GET" || std::string(r.method) == "DELETE" ? "" : "{}";
    BOOST_TEST(s.as("", r.method, r.target, body).status == r.anonymous,
               r.method << " " << r.target);
    BOOST_TEST(s.as(ann, r.method, r.target, body).status == r.user, r.method << " " << r.target);
    BOOST_TEST(s.as(root, r.method, r.target, body).status == r.admin, r.method << " " << r.target);
  }
  // WebSocket handshakes are authorized like a GET of the stream path.
  ws_client anon(s.proc->port(), "/profiles/_streams/all");
  BOOST_TEST(anon.upgrade_status() == 401);
  ws_client user(s.proc->port(), "/profiles/_streams/all", {{"Authorization", ann}});
  BOOST_TEST(user.upgrade_status() == 403);
  ws_client admin(s.proc->port(), "/profiles/_streams/all", {{"Authorization", root}});
  BOOST_TEST(admin.upgrade_status() == 101);
}

BOOST_AUTO_TEST_CASE(unknown_user_and_wrong_password_answer_the_same) {
  auto& s = hs_server();
  auto wrong = s.as(basic("ann", "nope"), "GET", "/public");
  auto unknown = s.as(basic("nobody", "nope"), "GET", "/public");
  BOOST_TEST(wrong.status == 401);
  BOOST_TEST(unknown.status == 401);
  BOOST_TEST(wrong.body == unknown.body);
  BOOST_TEST(wrong.header("www-authenticate") == unknown.header("www-authenticate"));
}

BOOST_AUTO_TEST_CASE(read_filter_limits_gets_and_merge_request_stamps_owner_and_time) {
  auto& s = hs_server();
  std::string ann = basic("ann", "ann-pw"), bob = basic("bob", "bob-pw");
  // The client cannot choose the owner: mergeRequest overrides it.
  BOOST_REQUIRE(s.as(ann, "POST", "/notes", R"({"text":"a1","owner":"bob","secret":"x"})").status ==
                201);
  BOOST_REQUIRE(s.as(bob, "POST", "/notes", R"({"text":"b1"})").status == 201);
  auto mine = parse_json(s.as(ann, "GET", "/notes").body, "r").as_array();
  BOOST_REQUIRE(mine.size() == 1u);
  auto& doc = mine[0].as_object();
  BOOST_TEST(find_field(doc, "owner")->as_string() == "ann");
  BOOST_TEST(find_field(doc, "at")->is<date_time>());
  BOOST_TEST(find_field(doc, "secret") == nullptr);                      // projectResponse
  BOOST_TEST(s.as(ann, "GET", "/notes/_size").body == R"({"_size":1})"); // readFilter applies
  BOOST_TEST(s.as(basic("root", "root-pw"), "GET", "/notes/_size").body == R"({"_size":2})");
}

BOOST_AUTO_TEST_CASE(read_filter_applies_to_stream_events) {
  auto& s = hs_server();
  std::string root = basic("root", "root-pw");
  BOOST_REQUIRE(
      s.as(root, "PUT", "/notes", R"({"streams":[{"uri":"all","stages":[]}]})").status / 100 == 2);
  ws_client ann(s.proc->port(), "/notes/_streams/all", {{"Authorization", basic("ann", "ann-pw")}});
  ws_client bob(s.proc->port(), "/notes/_streams/all", {{"Authorization", basic("bob", "bob-pw")}});
  BOOST_REQUIRE(ann.upgrade_status() == 101);
  BOOST_REQUIRE(bob.upgrade_status() == 101);
  BOOST_REQUIRE(s.as(basic("bob", "bob-pw"), "POST", "/notes", R"({"text":"from bob"})").status ==
                201);
  BOOST_REQUIRE(s.as(basic("ann", "ann-pw"), "POST", "/notes", R"({"text":"from ann"})").status ==
                201);
  auto a = ann.next();
  BOOST_REQUIRE(a.opcode == 1);
  BOOST_TEST(a.payload.find("from ann") != std::string::npos);
  BOOST_TEST(a.payload.find("from bob") == std::string::npos);
  auto b = bob.next();
  BOOST_REQUIRE(b.opcode == 1);
  BOOST_TEST(b.payload.find("from bob") != std::string::npos);
  BOOST_TEST(ann.next(std::chrono::milliseconds(300)).opcode == -1);
  BOOST_TEST(bob.next(std::chrono::milliseconds(300)).opcode == -1);
}

BOOST_AUTO_TEST_CASE(resume_and_sse_apply_the_same_auth_and_read_filter) {
  auto& s = hs_server();
  std::string root = basic("root", "root-pw"), ann = basic("ann", "ann-pw"),
              bob = basic("bob", "bob-pw");
  BOOST_REQUIRE(
      s.as(root, "PUT", "/notes", R"({"streams":[{"uri":"all","stages":[]}]})").status / 100 == 2);
  // A snapshot as ann, then writes by both while ann is away.
  const std::string token = s.as(ann, "GET", "/notes").header("resume-token");
  BOOST_REQUIRE(!token.empty());
  for (int i = 0; i < 3; ++i) {
    BOOST_REQUIRE(s.as(bob, "POST", "/notes", R"({"text":"bob-away"})").status == 201);
    BOOST_REQUIRE(s.as(ann, "POST", "/notes", R"({"text":"ann-away"})").status == 201);
  }
  const std::string target = "/notes/_streams/all?resumeAfter=" + token;
  // The replay is filtered like live events: ann gets her three, never bob's.
  ws_client ws(s.proc->port(), target, {{"Authorization", ann}});
  BOOST_REQUIRE(ws.upgrade_status() == 101);
  for (int i = 0; i < 3; ++i) {
    auto f = ws.next();
    BOOST_REQUIRE(f.opcode == 1);
    BOOST_TEST(f.payload.find("ann-away") != std::string::npos);
  }
  BOOST_TEST(ws.next(std::chrono::milliseconds(300)).opcode == -1);
  sse_client sse(s.proc->port(), target, {{"Authorization", ann}});
  BOOST_REQUIRE(sse.status() == 200);
  for (int i = 0; i < 3; ++i) {
    auto e = sse.next();
    BOOST_REQUIRE(e.type == "change");
    BOOST_TEST(e.data.find("ann-away") != std::string::npos);
  }
  BOOST_TEST(sse.next(std::chrono::milliseconds(300)).timed_out);
  // SSE is authorized like a WebSocket handshake.
  BOOST_TEST(sse_client(s.proc->port(), target).status() == 401);
  BOOST_TEST(
      sse_client(s.proc->port(), "/profiles/_streams/all", {{"Authorization", ann}}).status() ==
      403);
}

BOOST_AUTO_TEST_CASE(bulk_writes_touch_only_the_read_filter_and_merge_request_applies_to_each) {
  auto& s = hs_server();
  std::string ann = basic("ann", "ann-pw"), bob = basic("bob", "bob-pw"),
              root = basic("root", "root-pw");
  auto object_of = [](const http_result& r) {
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
    return parse_json(r.body, "response").as_object();
  };
  auto count = [](const object& o, const char* name) { return find_field(o, name)->as_int64(); };
  auto doc = [&](const std::string& id) {
    auto r = s.as(root, "GET", "/tasks/" + id);
    BOOST_REQUIRE_MESSAGE(r.status == 200, id << ": " << r.body);
    return parse_json(r.body, "response").as_object();
  };
  // mergeRequest stamps every document of a bulk POST; the client cannot choose the owner.
  auto posted =
      object_of(s.as(ann, "POST", "/tasks",
                     R"([{"_id":"a1","done":false,"owner":"bob"},{"_id":"a2","done":false}])"));
  BOOST_TEST(count(posted, "inserted") == 2);
  BOOST_TEST(count(object_of(s.as(bob, "POST", "/tasks", R"([{"_id":"b1","done":false}])")),
                   "inserted") == 1);
  for (const char* id : {"a1", "a2"}) {
    auto d = doc(id);
    BOOST_TEST(find_field(d, "owner")->as_string() == "ann", id);
    BOOST_TEST(find_field(d, "at")->is<date_time>(), id);
  }
  BOOST_TEST(find_field(doc("b1"), "owner")->as_string() == "bob");

  // PATCH /*: the readFilter narrows the matches to ann's; mergeRequest wins over the body.
  auto patched = object_of(s.as(ann, "PATCH", "/tasks/*?filter={done:false}",
                                R"({"$set":{"done":true,"owner":"bob"}})"));
  BOOST_TEST(count(patched, "matched") == 2);
  BOOST_TEST(count(patched, "modified") == 2);
  for (const char* id : {"a1", "a2"}) {
    auto d = doc(id);
    BOOST_TEST(find_field(d, "done")->as_bool(), id);
    BOOST_TEST(find_field(d, "owner")->as_string() == "ann", id);
  }
  BOOST_TEST(!find_field(doc("b1"), "done")->as_bool());
  // A filter naming another owner's documents finds nothing.
  auto others = object_of(s.as(ann, "PATCH", "/tasks/*?filter={owner:'bob'}", R"({"done":true})"));
  BOOST_TEST(count(others, "matched") == 0);
  BOOST_TEST(!find_field(doc("b1"), "done")->as_bool());
  // Without a readFilter (the admin rule), every match.
  auto all = object_of(s.as(root, "PATCH", "/tasks/*?filter={_id:'b1'}", R"({"done":true})"));
  BOOST_TEST(count(all, "matched") == 1);

  // DELETE /*: only ann's documents go, although bob's matches the filter too.
  auto deleted = object_of(s.as(ann, "DELETE", "/tasks/*?filter={done:true}"));
  BOOST_TEST(count(deleted, "deleted") == 2);
  BOOST_TEST(s.as(root, "GET", "/tasks/_size").body == R"({"_size":1})");
  BOOST_TEST(s.as(root, "GET", "/tasks/b1").status == 200);
  BOOST_TEST(count(object_of(s.as(bob, "DELETE", "/tasks/*?filter={done:true}")), "deleted") == 1);
  BOOST_TEST(s.as(root, "GET", "/tasks/_size").body == R"({"_size":0})");
  // Anonymous clients are not let in.
  BOOST_TEST(s.as("", "DELETE", "/tasks/*?filter={done:true}").status == 401);
}

BOOST_AUTO_TEST_CASE(aggregations_apply_the_read_filter_before_the_first_stage) {
  auto& s = hs_server();
  std::string ann = basic("ann", "ann-pw"), bob = basic("bob", "bob-pw"),
              root = basic("root", "root-pw");
  BOOST_REQUIRE(
      s.as(root, "PUT", "/scores",
           R"({"aggrs":[{"uri":"by_owner","stages":[{"_$group":{"_id":"$owner","total":{"_$sum":"$points"}}},{"_$sort":{"_id":1}}]},)"
           R"({"uri":"anonymous","stages":[{"$project":{"_id":0,"points":1}},{"$group":{"_id":null,"total":{"$sum":"$points"}}}]},)"
           R"({"uri":"of","stages":[{"$match":{"owner":{"$var":"who"}}},{"$count":"n"}]}]})")
          .status == 201);
  BOOST_REQUIRE(s.as(ann, "POST", "/scores", R"([{"points":1},{"points":2}])").status == 200);
  BOOST_REQUIRE(s.as(bob, "POST", "/scores", R"([{"points":10,"owner":"ann"}])").status == 200);
  auto run = [&](const std::string& who, const std::string& target) {
    auto r = s.as(who, "GET", target);
    BOOST_TEST(r.status == 200, target << " -> " << r.body);
    return r.body;
  };
  BOOST_TEST(run(ann, "/scores/_aggrs/by_owner") == R"([{"_id":"ann","total":3}])");
  BOOST_TEST(run(bob, "/scores/_aggrs/by_owner") == R"([{"_id":"bob","total":10}])");
  BOOST_TEST(run(root, "/scores/_aggrs/by_owner") ==
             R"([{"_id":"ann","total":3},{"_id":"bob","total":10}])");
  // A first stage that drops the owner cannot widen what the readFilter lets through.
  BOOST_TEST(run(ann, "/scores/_aggrs/anonymous") == R"([{"_id":null,"total":3}])");
  // Nor can a $match naming another owner.
  BOOST_TEST(run(ann, "/scores/_aggrs/of?avars={who:'bob'}") == "[]");
  BOOST_TEST(run(ann, "/scores/_aggrs/of?avars={who:'ann'}") == R"([{"n":2}])");
  BOOST_TEST(s.as("", "GET", "/scores/_aggrs/by_owner").status == 401);
}

BOOST_AUTO_TEST_CASE(login_issues_a_token_usable_as_password_and_cookie_until_it_expires) {
  secured s(R"({"algorithm":"HS256","key":"k"})");
  BOOST_REQUIRE(
      s.as(basic("root", "root-pw"), "PUT", "/notes", R"({"streams":[{"uri":"all","stages":[]}]})")
          .status == 201);
  auto login = s.as(basic("ann", "ann-pw"), "GET", "/notes");
  BOOST_TEST(login.status == 200);
  std::string token = login.header("auth-token");
  BOOST_REQUIRE(!token.empty());
  BOOST_TEST(!login.header("auth-token-valid-until").empty());
  std::string cookie = login.header("set-cookie");
  BOOST_TEST(cookie.find("HttpOnly") != std::string::npos);
  BOOST_TEST(s.as(basic("ann", token), "GET", "/notes").status == 200);
  // The cookie authenticates a browser's WebSocket.
  std::string cookie_value = cookie.substr(0, cookie.find(';'));
  ws_client ws(s.proc->port(), "/notes/_streams/all", {{"Cookie", cookie_value}});
  BOOST_TEST(ws.upgrade_status() == 101);
  // A wrong token is a 401; after the TTL (2 s here) the token is no longer accepted.
  BOOST_TEST(s.as(basic("ann", token + "x"), "GET", "/notes").status == 401);
  // (Failed attempts count towards throttling, so the answer may turn into 429.)
  BOOST_TEST(eventually([&] { return s.as(basic("ann", token), "GET", "/notes").status != 200; },
                        std::chrono::milliseconds(10000)));
  ws_client late(s.proc->port(), "/notes/_streams/all", {{"Cookie", cookie_value}});
  BOOST_TEST(late.upgrade_status() == 401); // an expired cookie is anonymous
}

BOOST_AUTO_TEST_CASE(jwt_hs256_valid_expired_wrong_signature_wrong_audience) {
  auto& s = hs_server();
  auto bearer = [](const std::string& jwt) { return "Bearer " + jwt; };
  std::string good = hs256(R"({"sub":"carol","roles":["user"],"iss":"idp","aud":"rheo","exp":)" +
                               now_plus(60) + "}",
                           "s3cret");
  BOOST_TEST(s.as(bearer(good), "GET", "/notes").status == 200);
  std::string expired = hs256(R"({"sub":"carol","roles":["user"],"iss":"idp","aud":"rheo","exp":)" +
                                  now_plus(-60) + "}",
                              "s3cret");
  auto e = s.as(bearer(expired), "GET", "/notes");
  BOOST_TEST(e.status == 401);
  BOOST_TEST(e.body.find("expired") != std::string::npos);
  std::string forged =
      hs256(R"({"sub":"carol","roles":["admin"],"iss":"idp","aud":"rheo"})", "guess");
  BOOST_TEST(s.as(bearer(forged), "GET", "/notes").status == 401);
  std::string other_aud =
      hs256(R"({"sub":"carol","roles":["user"],"iss":"idp","aud":"other"})", "s3cret");
  BOOST_TEST(s.as(bearer(other_aud), "GET", "/notes").status == 401);
  std::string alg_none = base64(R"({"alg":"none"})", true) + "." +
                         base64(R"({"sub":"x","roles":["admin"]})", true) + ".";
  BOOST_TEST(s.as(bearer(alg_none), "GET", "/notes").status == 401);
  BOOST_TEST(s.as(bearer("garbage"), "GET", "/notes").status == 401);
}

BOOST_AUTO_TEST_CASE(jwt_rs256_and_user_fields_in_stream_variables) {
  secured s(R"({"algorithm":"RS256","key":)" + json_string(rsa().public_pem) + "}");
  std::string root = basic("root", "root-pw");
  BOOST_REQUIRE(
      s.as(root, "PUT", "/notes",
           R"({"streams":[{"uri":"team","stages":[{"_$match":{"fullDocument::team":{"_$var":"t"}}}]},
                                    {"uri":"mine","stages":[{"_$match":{"fullDocument::team":"@user.team"}}]}]})")
          .status == 201);
  std::string jwt = rsa().rs256(R"({"sub":"dan","roles":["user"],"team":"red"})");
  BOOST_TEST(s.as("Bearer " + jwt, "GET", "/notes").status == 200);
  std::string tampered = jwt;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  BOOST_TEST(s.as("Bearer " + tampered, "GET", "/notes").status == 401);
  BOOST_TEST(s.as("Bearer " + hs256(R"({"sub":"dan","roles":["admin"]})", rsa().public_pem), "GET",
                  "/notes")
                 .status == 401); // HS256 with the public key as secret: not accepted
  ws_client mine(s.proc->port(), "/notes/_streams/mine", {{"Authorization", "Bearer " + jwt}});
  BOOST_REQUIRE(mine.upgrade_status() == 101);
  BOOST_REQUIRE(s.as(root, "POST", "/notes", R"({"team":"blue","n":1,"owner":"dan"})").status ==
                201);
  BOOST_REQUIRE(s.as(root, "POST", "/notes", R"({"team":"red","n":2,"owner":"dan"})").status ==
                201);
  auto f = mine.next();
  BOOST_REQUIRE(f.opcode == 1);
  BOOST_TEST(f.payload.find("\"n\":2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_login_keeps_its_token_headers_on_an_error_answer) {
  secured s(R"({"algorithm":"HS256","key":"k"})");
  // The collection does not exist: the store's 404 is an error thrown under the handler.
  auto r = s.as(basic("ann", "ann-pw"), "GET", "/public");
  BOOST_TEST(r.status == 404);
  BOOST_TEST(!r.header("auth-token").empty());
  BOOST_TEST(!r.header("set-cookie").empty());
  // A body that does not parse: 400, the login still answered.
  auto bad = s.as(basic("ann", "ann-pw"), "POST", "/notes", "{not json");
  BOOST_TEST(bad.status == 400);
  BOOST_TEST(!bad.header("auth-token").empty());
}

BOOST_AUTO_TEST_CASE(failed_logins_are_throttled_per_address) {
  secured s(R"({"algorithm":"HS256","key":"k"})");
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(s.as(basic("ann", "bad"), "GET", "/public").status == 401);
  auto t = s.as(basic("ann", "ann-pw"), "GET", "/public");
  BOOST_TEST(t.status == 429);
  // When to come back: within the failure window (login_window_seconds, 60 by default).
  BOOST_REQUIRE(!t.header("retry-after").empty());
  const int retry = std::stoi(t.header("retry-after"));
  BOOST_TEST(retry >= 1);
  BOOST_TEST(retry <= 60);
  // Anonymous requests are not logins: still allowed (404: the collection does not exist).
  BOOST_TEST(s.as("", "GET", "/public").status == 404);
}

BOOST_AUTO_TEST_CASE(bad_security_configuration_stops_startup_with_one_line) {
  temp_dir dir;
  auto check = [&](const std::string& cfg, const std::string& fragment) {
    std::ofstream(dir.path() + "/c.json") << cfg;
    auto r = run_rheo(
        {"--config", dir.path() + "/c.json", "--port", "0", "--data-dir", dir.path() + "/d"});
    BOOST_TEST(r.exit_code == 2, cfg);
    BOOST_TEST(r.output.find(fragment) != std::string::npos, r.output);
  };
  check(R"c({"acl":[{"roles":["x"],"predicate":"path-prefix('/a') andd method(GET)"}]})c",
        "predicate");
  check(R"c({"acl":[{"roles":["x"],"predicate":"frob('/a')"}]})c", "frob");
  check(
      R"c({"acl":[{"roles":["x"],"predicate":"method(GET)","readFilter":{"a":{"$where":"1"}}}]})c",
      "$where");
  check(R"({"users":[{"userid":"a","password":"plaintext","roles":[]}]})", "hash-password");
  check(R"({"jwt":{"algorithm":"HS512","key":"k"}})", "HS256 or RS256");
}

BOOST_AUTO_TEST_CASE(default_rules_let_anonymous_users_chat_and_nothing_else) {
  temp_dir dir;
  // No --acl: the default rules apply; the messages collection is created at startup.
  std::ofstream(dir.path() + "/empty.json") << "{}";
  rheo_process p({"--config", dir.path() + "/empty.json"}, dir.path() + "/d");
  auto port = p.port();
  ws_client ws(port, "/messages/_streams/all");
  BOOST_REQUIRE(ws.upgrade_status() == 101);
  auto post =
      http(port, "POST", "/messages", R"({"message":"hi","from":"anon","timestamp":"forged"})");
  BOOST_TEST(post.status == 201);
  auto f = ws.next();
  BOOST_REQUIRE(f.opcode == 1);
  auto ev = parse_json(f.payload, "frame").as_object();
  BOOST_TEST(find_path(ev, "fullDocument.timestamp")->is<date_time>()); // stamped by the server
  auto list = http(port, "GET", "/messages?page=1&pagesize=15&sort={timestamp:-1}");
  BOOST_TEST(list.status == 200);
  BOOST_TEST(http(port, "PUT", "/messages", "{}").status == 401);
  BOOST_TEST(http(port, "PATCH", "/messages/x", R"({"a":1})").status == 401);
  BOOST_TEST(http(port, "DELETE", "/messages/x").status == 401);
  // Index creation and dropping are writes like any other under /messages.
  BOOST_TEST(http(port, "PUT", "/messages/_indexes/x", R"({"keys":{"a":1}})").status == 401);
  BOOST_TEST(http(port, "DELETE", "/messages/_indexes/timestamp_-1").status == 401);
  BOOST_TEST(http(port, "POST", "/other", "{}").status == 401);
  BOOST_TEST(http(port, "GET", "/other").status == 401);
  BOOST_TEST(http(port, "GET", "/").status == 401);
  BOOST_TEST(http(port, "GET", "/chat/").status == 200);
  BOOST_TEST(http(port, "GET", "/_ping").status == 200);
}

namespace {

const std::string no_jwt = R"({"algorithm":"HS256","key":"k"})";

/// Peak resident set of `pid` in KiB (VmHWM), 0 when unknown.
/// A "Vm...:" figure of /proc/<pid>/status in KiB (VmHWM: the peak RSS; VmRSS: now).
long status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return 0;
}

long peak_rss_kib(pid_t pid) {
  return status_kib(pid, "VmHWM");
}

/// Sends `requests[i]` on connection i, all connected before the first is sent, and reads
/// every connection to its end (the requests say Connection: close) in one poll loop, for
/// at most `deadline`. Returns what each connection received.
std::vector<std::string> burst(std::uint16_t port, const std::vector<std::string>& requests,
                               std::chrono::seconds deadline) {
  std::vector<int> fds;
  for (std::size_t i = 0; i < requests.size(); ++i)
    fds.push_back(connect_to(port));
  for (std::size_t i = 0; i < fds.size(); ++i) // small requests: the socket buffer takes each
    BOOST_REQUIRE(::send(fds[i], requests[i].data(), requests[i].size(), MSG_NOSIGNAL) ==
                  static_cast<ssize_t>(requests[i].size()));
  std::vector<std::string> in(fds.size());
  std::vector<pollfd> open;
  for (int fd : fds)
    open.push_back({fd, POLLIN, 0});
  auto until = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  while (!open.empty() && std::chrono::steady_clock::now() < until) {
    if (::poll(open.data(), open.size(), 100) <= 0) continue;
    for (std::size_t k = 0; k < open.size();) {
      bool done = false;
      if (open[k].revents) {
        std::size_t i =
            static_cast<std::size_t>(std::find(fds.begin(), fds.end(), open[k].fd) - fds.begin());
        ssize_t n = ::recv(open[k].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) in[i].append(buf, static_cast<std::size_t>(n));
        done = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
      }
      if (done) {
        open[k] = open.back();
        open.pop_back();
      } else {
        ++k;
      }
    }
  }
  for (int fd : fds)
    ::close(fd);
  return in;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_verified_password_is_cached_until_its_ttl_and_never_matches_another) {
  secured s(no_jwt, R"(, "auth_cache_ttl_seconds": 1, "login_max_failures": 1000)",
            {"--log-level", "debug"});
  // Miss: the first request runs argon2id; hits do not, as long as the entry lives.
  BOOST_TEST(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
  BOOST_TEST(s.argon2_checks("ann") == 1u);
  BOOST_TEST(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
  BOOST_TEST(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
  // (A check that the TTL could end between requests would make this flaky: the TTL is 1 s
  // and these take milliseconds.)
  BOOST_TEST(s.argon2_checks("ann") <= 2u);
  // A cached entry never authenticates another password, nor the password for another user.
  for (auto* wrong : {"ann-pwx", "ann-p", "", "ANN-PW"})
    BOOST_TEST(s.as(basic("ann", wrong), "GET", "/public").status == 401, wrong);
  BOOST_TEST(s.as(basic("bob", "ann-pw"), "GET", "/public").status == 401);
  // A wrong password is never cached as right: each try runs argon2id again.
  std::size_t before = s.argon2_checks("ann");
  BOOST_TEST(s.as(basic("ann", "ann-pwx"), "GET", "/public").status == 401);
  BOOST_TEST(s.argon2_checks("ann") == before + 1);
  // Expiry: once the TTL has passed, the right password is checked with argon2id again.
  before = s.argon2_checks("ann");
  BOOST_TEST(eventually(
      [&] {
        BOOST_REQUIRE(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
        return s.argon2_checks("ann") > before;
      },
      std::chrono::milliseconds(10000)));
}

BOOST_AUTO_TEST_CASE(a_zero_cache_ttl_checks_every_request) {
  secured s(no_jwt, R"(, "auth_cache_ttl_seconds": 0)", {"--log-level", "debug"});
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
  BOOST_TEST(s.argon2_checks("ann") == 3u);
}

BOOST_AUTO_TEST_CASE(concurrent_wrong_passwords_beyond_the_bound_get_503_and_the_server_lives) {
  // One argon2id check at a time and no waiting: a burst of 200 wrong passwords (POSTs, so
  // they run on the 16 worker threads at once) is mostly refused, in bounded memory.
  secured s(no_jwt,
            R"(, "auth_max_concurrent_hashes": 1, "auth_hash_wait_ms": 0,
               "login_max_failures": 1000000)");
  constexpr int clients = 200;
  const long before = status_kib(s.proc->pid(), "VmRSS");
  std::mutex m;
  std::map<int, int> statuses;
  bool retry_after_on_every_503 = true, json_on_every_503 = true;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      auto r = s.as(basic(i % 2 ? "ann" : "nobody", "wrong-" + std::to_string(i)), "POST", "/notes",
                    R"({"x":1})");
      std::lock_guard lock(m);
      ++statuses[r.status];
      if (r.status == 503) {
        retry_after_on_every_503 &= r.header("retry-after") == "1";
        json_on_every_503 &= r.body.find("too many password checks") != std::string::npos;
      }
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(statuses[401] + statuses[503] == clients);
  BOOST_TEST(statuses[401] >= 1);
  BOOST_TEST(statuses[503] >= 1);
  BOOST_TEST(retry_after_on_every_503);
  BOOST_TEST(json_on_every_503);
  // At most one 64 MiB hash at a time: the peak stays within what the server held before
  // plus one hash and a margin, far below 200 x 64 MiB. (Relative to the start, which is
  // about 20 MiB in a release build and 130 MiB under ASan.)
  long peak = peak_rss_kib(s.proc->pid());
  BOOST_TEST_MESSAGE("RSS before the burst " << before << " KiB, peak after " << peak << " KiB");
#ifdef RHEO_SANITIZED
  const long freed_but_kept = 256 * 1024; // ASan's quarantine keeps freed hashes resident
#else
  const long freed_but_kept = 0;
#endif
  BOOST_TEST(peak < before + 2 * 64 * 1024 + freed_but_kept);
  // The server still answers, and a right password still logs in.
  BOOST_TEST(s.as("", "GET", "/_ping").status == 200);
  BOOST_TEST(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
}

BOOST_AUTO_TEST_CASE(a_thousand_concurrent_wrong_passwords_keep_the_peak_rss_under_the_bound) {
  // README (Security): at most auth_max_concurrent_hashes argon2id checks run at once, 64 MiB
  // each. 1,000 wrong passwords at once, each on its own connection (half for a known user,
  // half for unknown ones, checked against the dummy hash), with 2 checks at a time and
  // 100 ms of waiting for one: every answer is 401, or 503 with Retry-After: 1 when no check
  // came free; none gets in; the server's peak RSS stays under its RSS before the burst
  // + 2 x 64 MiB + 64 MiB (the 1,000 connections, their requests, allocator slack).
  constexpr int clients = 1000;
  constexpr long slots = 2, hash_kib = 64 * 1024, margin_kib = 64 * 1024;
  secured s(no_jwt,
            R"(, "auth_max_concurrent_hashes": 2, "auth_hash_wait_ms": 100,
               "login_max_failures": 1000000)");
  rlimit rl{};
  BOOST_REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_cur = std::max<rlim_t>(rl.rlim_cur, std::min<rlim_t>(rl.rlim_max, clients + 256));
  BOOST_REQUIRE(setrlimit(RLIMIT_NOFILE, &rl) == 0);
  BOOST_REQUIRE(rl.rlim_cur >= clients + 64u);
  BOOST_REQUIRE(s.as("", "GET", "/_ping").status == 200);
  long before = status_kib(s.proc->pid(), "VmRSS");
  std::vector<std::string> requests;
  for (int i = 0; i < clients; ++i)
    requests.push_back(
        "GET /notes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " +
        basic(i % 2 ? "ann" : "nobody-" + std::to_string(i), "wrong-" + std::to_string(i)) +
        "\r\nConnection: close\r\n\r\n");
  auto start = std::chrono::steady_clock::now();
  auto answers = burst(s.proc->port(), requests, std::chrono::seconds(90));
  auto took = std::chrono::steady_clock::now() - start;
  std::map<int, int> statuses;
  int answered_once = 0, retry_after_on_503 = 0;
  for (auto& a : answers) {
    auto r = parse_responses(a);
    answered_once += r.size() == 1;
    if (r.empty()) continue;
    ++statuses[r[0].status];
    retry_after_on_503 += r[0].status == 503 && r[0].header("retry-after") == "1";
  }
  long peak = peak_rss_kib(s.proc->pid());
  BOOST_TEST_MESSAGE("1,000 wrong passwords: "
                     << statuses[401] << " x 401, " << statuses[503] << " x 503 in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms; RSS before " << before << " KiB, peak " << peak << " KiB, bound "
                     << before + slots * hash_kib + margin_kib << " KiB");
  BOOST_TEST(answered_once == clients);
  BOOST_TEST(statuses[401] + statuses[503] == clients); // no 200, no other status
  BOOST_TEST(statuses[401] >= 1);                       // checks ran
  BOOST_TEST(retry_after_on_503 == statuses[503]);
  BOOST_TEST(peak <= before + slots * hash_kib + margin_kib);
  // The server still answers, and the right password gets in.
  BOOST_TEST(s.as(basic("ann", "ann-pw"), "POST", "/notes", R"({"x":1})").status == 201);
}

BOOST_AUTO_TEST_CASE(password_checks_beyond_the_bound_wait_for_a_slot) {
  secured s(no_jwt,
            R"(, "auth_max_concurrent_hashes": 1, "auth_hash_wait_ms": 60000,
               "login_max_failures": 1000000)");
  std::mutex m;
  std::multiset<int> statuses;
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i)
    threads.emplace_back([&, i] {
      auto r = s.as(basic("ann", i % 3 ? "wrong" : "ann-pw"), "POST", "/notes", R"({"x":1})");
      std::lock_guard lock(m);
      statuses.insert(r.status);
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(statuses.count(201) == 4u);
  BOOST_TEST(statuses.count(401) == 8u);
}

BOOST_AUTO_TEST_CASE(password_checks_do_not_hold_up_the_io_threads) {
  // One I/O thread: argon2id on it would make every other request wait behind the burst.
  secured s(no_jwt,
            R"(, "auth_max_concurrent_hashes": 1, "auth_hash_wait_ms": 60000,
               "login_max_failures": 1000000)",
            {"--log-level", "debug", "--io-threads", "1"});
  std::vector<std::thread> threads;
  for (int i = 0; i < 40; ++i)
    threads.emplace_back([&] { s.as(basic("ann", "wrong"), "GET", "/public"); });
  BOOST_REQUIRE(eventually([&] { return s.argon2_checks("ann") >= 1; }));
  auto start = std::chrono::steady_clock::now();
  BOOST_TEST(s.as("", "GET", "/public").status == 404); // anonymous: no argon2id
  auto took = std::chrono::steady_clock::now() - start;
  std::size_t done_meanwhile = s.argon2_checks("ann");
  for (auto& t : threads)
    t.join();
  BOOST_TEST_MESSAGE("anonymous GET during the burst: "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms, after " << done_meanwhile << " of 40 checks");
  BOOST_TEST(done_meanwhile < 40u); // the burst was still running
  BOOST_TEST(took < std::chrono::seconds(2));
}

BOOST_AUTO_TEST_CASE(the_token_location_tells_validity_and_delete_logs_out) {
  secured s(no_jwt, R"(, "token_ttl_seconds": 900)", {"--log-level", "debug"});
  BOOST_REQUIRE(
      s.as(basic("root", "root-pw"), "PUT", "/notes", R"({"streams":[{"uri":"all","stages":[]}]})")
          .status == 201);
  auto login = s.as(basic("ann", "ann-pw"), "GET", "/notes");
  BOOST_REQUIRE(login.status == 200);
  std::string token = login.header("auth-token");
  std::string location = login.header("auth-token-location");
  BOOST_REQUIRE(!token.empty());
  BOOST_TEST(location == "/tokens/ann");
  std::string cookie = login.header("set-cookie");
  std::string cookie_value = cookie.substr(0, cookie.find(';'));

  // GET tells the token and until when it is valid, to its owner only.
  auto info = s.as(basic("ann", token), "GET", location);
  BOOST_TEST(info.status == 200);
  auto doc = parse_json(info.body).as_object();
  BOOST_TEST(find_field(doc, "auth_token")->as_string() == token);
  BOOST_TEST(find_field(doc, "auth_token_valid_until")->as_string() ==
             login.header("auth-token-valid-until"));
  BOOST_TEST(http(s.proc->port(), "GET", location, "", {{"Cookie", cookie_value}}).status == 200);
  BOOST_TEST(s.as(basic("bob", "bob-pw"), "GET", location).status == 403);
  BOOST_TEST(s.as(basic("bob", "bob-pw"), "DELETE", location).status == 403);
  BOOST_TEST(s.as("", "GET", location).status == 401);
  BOOST_TEST(s.as(basic("ann", token), "PUT", location).status == 405);

  // DELETE revokes the token and expires the cookie.
  auto out = http(s.proc->port(), "DELETE", location, "", {{"Cookie", cookie_value}});
  BOOST_TEST(out.status == 204);
  BOOST_TEST(out.header("set-cookie").find("rheo_auth=;") == 0u);
  BOOST_TEST(out.header("set-cookie").find("Max-Age=0") != std::string::npos);
  BOOST_TEST(out.header("auth-token").empty());
  // The revoked token no longer authenticates, as password or cookie.
  BOOST_TEST(s.as(basic("ann", token), "GET", location).status == 401);
  BOOST_TEST(http(s.proc->port(), "GET", location, "", {{"Cookie", cookie_value}}).status == 401);
  ws_client ws(s.proc->port(), "/notes/_streams/all", {{"Cookie", cookie_value}});
  BOOST_TEST(ws.upgrade_status() == 401);
  // Logout also forgets the verified password: the next login runs argon2id and gets a
  // new token.
  std::size_t before = s.argon2_checks("ann");
  auto again = s.as(basic("ann", "ann-pw"), "GET", "/notes");
  BOOST_TEST(again.status == 200);
  BOOST_TEST(s.argon2_checks("ann") == before + 1);
  BOOST_TEST(!again.header("auth-token").empty());
  BOOST_TEST(again.header("auth-token") != token);
}

BOOST_AUTO_TEST_CASE(bad_auth_settings_stop_startup_with_one_line) {
  for (auto& [flag, value] :
       std::vector<std::pair<std::string, std::string>>{{"--auth-cache-size", "0"},
                                                        {"--auth-cache-ttl-seconds", "-1"},
                                                        {"--auth-max-concurrent-hashes", "5000"},
                                                        {"--auth-hash-wait-ms", "x"}}) {
    auto r = run_rheo({flag, value});
    BOOST_TEST(r.exit_code != 0, flag);
    BOOST_TEST(r.output.find(flag.substr(2)) != std::string::npos, r.output);
  }
}

// ---- cross-origin rules (cors_allowed_origins) ----

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// A server with users, cors_allowed_origins as `cors` (a JSON value; "" for the default),
/// a stream /notes/_streams/all, and ann's token cookie ("rheo_auth=...") and Basic header.
struct cors_server {
  secured s;
  std::string cookie;
  std::string ann = basic("ann", "ann-pw");
  explicit cors_server(const std::string& cors, std::vector<std::string> args = {})
      : s(no_jwt,
          R"(, "token_ttl_seconds": 900)" +
              (cors.empty() ? std::string() : R"(, "cors_allowed_origins": )" + cors),
          std::move(args)) {
    BOOST_REQUIRE(s.as(basic("root", "root-pw"), "PUT", "/notes",
                       R"({"streams":[{"uri":"all","stages":[]}]})")
                      .status == 201);
    auto login = s.as(ann, "GET", "/notes");
    BOOST_REQUIRE(login.status == 200);
    std::string set_cookie = login.header("set-cookie");
    cookie = set_cookie.substr(0, set_cookie.find(';'));
    BOOST_REQUIRE(cookie.rfind("rheo_auth=", 0) == 0);
  }
  std::uint16_t port() const { return s.proc->port(); }
  http_result get(const header_list& h) { return http(port(), "GET", "/notes", "", h); }
  http_result preflight(const std::string& origin) {
    return http(port(), "OPTIONS", "/notes", "",
                {{"Origin", origin},
                 {"Access-Control-Request-Method", "POST"},
                 {"Access-Control-Request-Headers", "authorization, content-type"}});
  }
  int ws(const header_list& h) {
    return ws_client(port(), "/notes/_streams/all", h).upgrade_status();
  }
  int sse(const header_list& h) { return sse_client(port(), "/notes/_streams/all", h).status(); }
};

} // namespace

BOOST_AUTO_TEST_CASE(by_default_any_origin_may_call_but_never_with_credentials) {
  cors_server c("");
  // Anonymous, with Basic and with the cookie: the Origin is reflected, credentials are not
  // allowed (a browser keeps the answer from the page).
  for (auto& h :
       std::vector<header_list>{{{"Origin", "https://other.example"}},
                                {{"Origin", "https://other.example"}, {"Authorization", c.ann}},
                                {{"Origin", "https://other.example"}, {"Cookie", c.cookie}}}) {
    auto r = http(c.port(), "GET", "/public/x", "", h);
    BOOST_TEST(r.header("access-control-allow-origin") == "https://other.example");
    BOOST_TEST(r.header("access-control-allow-credentials").empty());
    BOOST_TEST(r.header("vary") == "Origin");
    BOOST_TEST(r.header("access-control-expose-headers").find("ETag") != std::string::npos);
  }
  auto ann = c.get({{"Origin", "https://other.example"}, {"Authorization", c.ann}});
  BOOST_TEST(ann.status == 200); // the server answers; only the headers decide who reads it
  BOOST_TEST(ann.header("access-control-allow-credentials").empty());
  // Without an Origin: no CORS headers, but the answer still varies on Origin.
  auto plain = c.get({{"Authorization", c.ann}});
  BOOST_TEST(plain.header("access-control-allow-origin").empty());
  BOOST_TEST(plain.header("vary") == "Origin");
  // Preflight: the same rules.
  auto pre = c.preflight("https://other.example");
  BOOST_TEST(pre.status == 200);
  BOOST_TEST(pre.header("access-control-allow-origin") == "https://other.example");
  BOOST_TEST(pre.header("access-control-allow-credentials").empty());
  BOOST_TEST(pre.header("access-control-allow-methods").find("POST") != std::string::npos);
  BOOST_TEST(pre.header("access-control-allow-headers") == "authorization, content-type");
  BOOST_TEST(pre.header("vary") == "Origin");
  // The same origin as the server (Origin host:port = Host) gets no credentials header
  // either: a browser needs none there.
  auto same = c.get({{"Origin", "http://127.0.0.1"}, {"Cookie", c.cookie}});
  BOOST_TEST(same.status == 200);
  BOOST_TEST(same.header("access-control-allow-credentials").empty());
}

BOOST_AUTO_TEST_CASE(listed_origins_get_credentials_and_others_do_not) {
  cors_server c(R"(["https://app.example", "http://localhost:3000"])");
  for (auto& origin : {"https://app.example", "http://localhost:3000", "HTTPS://APP.EXAMPLE"}) {
    auto r = c.get({{"Origin", origin}, {"Cookie", c.cookie}});
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.header("access-control-allow-origin") == origin);
    BOOST_TEST(r.header("access-control-allow-credentials") == "true", origin);
    BOOST_TEST(r.header("vary") == "Origin");
    auto pre = c.preflight(origin);
    BOOST_TEST(pre.header("access-control-allow-origin") == origin);
    BOOST_TEST(pre.header("access-control-allow-credentials") == "true", origin);
  }
  // An exact match of scheme, host and port: anything else calls without credentials.
  for (auto& origin : {"http://app.example", "https://app.example:8443", "https://evil.app.example",
                       "http://localhost:3001", "null"}) {
    auto r = c.get({{"Origin", origin}, {"Cookie", c.cookie}});
    BOOST_TEST(r.header("access-control-allow-origin") == origin);
    BOOST_TEST(r.header("access-control-allow-credentials").empty(), origin);
    auto pre = c.preflight(origin);
    BOOST_TEST(pre.status == 200);
    BOOST_TEST(pre.header("access-control-allow-origin") == origin);
    BOOST_TEST(pre.header("access-control-allow-credentials").empty(), origin);
  }
}

BOOST_AUTO_TEST_CASE(a_star_gives_every_origin_credentials) {
  // As a flag this time (a comma-separated list).
  cors_server c("", {"--cors-allowed-origins", "https://app.example,*"});
  for (auto& origin : {"https://anything.example", "http://127.0.0.2:9999"}) {
    auto r = c.get({{"Origin", origin}, {"Authorization", c.ann}});
    BOOST_TEST(r.header("access-control-allow-origin") == origin);
    BOOST_TEST(r.header("access-control-allow-credentials") == "true");
    BOOST_TEST(c.preflight(origin).header("access-control-allow-credentials") == "true");
    // The cookie opens streams from any origin too: that is what * asks for.
    BOOST_TEST(c.ws({{"Origin", origin}, {"Cookie", c.cookie}}) == 101);
    BOOST_TEST(c.sse({{"Origin", origin}, {"Cookie", c.cookie}}) == 200);
  }
}

BOOST_AUTO_TEST_CASE(streams_opened_with_the_cookie_from_a_foreign_origin_are_refused) {
  cors_server c(R"(["https://app.example"])");
  const std::string port = std::to_string(c.port());
  // Cross-site WebSocket hijacking: a foreign page's WebSocket or EventSource carries the
  // cookie; the handshake is refused with the contract's JSON error.
  for (auto& origin : {"https://evil.example", "http://127.0.0.1:1", "null"}) {
    ws_client ws(c.port(), "/notes/_streams/all", {{"Origin", origin}, {"Cookie", c.cookie}});
    BOOST_TEST(ws.upgrade_status() == 403, origin);
    BOOST_TEST(ws.error_body().find("\"http status code\":403") != std::string::npos,
               ws.error_body());
    BOOST_TEST(ws.error_body().find("cors_allowed_origins") != std::string::npos);
    sse_client sse(c.port(), "/notes/_streams/all", {{"Origin", origin}, {"Cookie", c.cookie}});
    BOOST_TEST(sse.status() == 403, origin);
    BOOST_TEST(sse.error_body().find("\"http status code\":403") != std::string::npos);
  }
  // Allowed: no Origin (not a browser page), the server's own origin, a listed origin.
  const std::vector<header_list> allowed = {
      {{"Cookie", c.cookie}},
      {{"Origin", "http://127.0.0.1"}, {"Cookie", c.cookie}}, // Host: 127.0.0.1
      {{"Origin", "http://127.0.0.1:" + port}, {"Host", "127.0.0.1:" + port}, {"Cookie", c.cookie}},
      {{"Origin", "http://LOCALHOST:" + port}, {"Host", "localhost:" + port}, {"Cookie", c.cookie}},
      {{"Origin", "https://app.example"}, {"Cookie", c.cookie}}};
  for (auto& h : allowed) {
    BOOST_TEST(c.ws(h) == 101, h[0].second);
    BOOST_TEST(c.sse(h) == 200, h[0].second);
  }
  // The Host must match the Origin's port as well as its host.
  BOOST_TEST(c.ws({{"Origin", "http://127.0.0.1:" + port},
                   {"Host", "127.0.0.1:1"},
                   {"Cookie", c.cookie}}) == 403);
  // Authorization headers are not sent by browsers on their own: any origin may use them,
  // even with a cookie beside them (the header is what authenticates).
  for (auto& h : std::vector<header_list>{
           {{"Origin", "https://evil.example"}, {"Authorization", c.ann}},
           {{"Origin", "https://evil.example"}, {"Authorization", c.ann}, {"Cookie", c.cookie}}}) {
    BOOST_TEST(c.ws(h) == 101);
    BOOST_TEST(c.sse(h) == 200);
  }
  // An SSE answer carries the same CORS headers as a REST one.
  sse_client listed(c.port(), "/notes/_streams/all",
                    {{"Origin", "https://app.example"}, {"Cookie", c.cookie}});
  BOOST_TEST(listed.header("access-control-allow-origin") == "https://app.example");
  BOOST_TEST(listed.header("access-control-allow-credentials") == "true");
}

BOOST_AUTO_TEST_CASE(by_default_only_same_origin_pages_open_streams_with_the_cookie) {
  cors_server c("");
  const std::string port = std::to_string(c.port());
  BOOST_TEST(c.ws({{"Origin", "https://other.example"}, {"Cookie", c.cookie}}) == 403);
  BOOST_TEST(c.sse({{"Origin", "https://other.example"}, {"Cookie", c.cookie}}) == 403);
  const header_list same = {
      {"Origin", "http://127.0.0.1:" + port}, {"Host", "127.0.0.1:" + port}, {"Cookie", c.cookie}};
  BOOST_TEST(c.ws(same) == 101);
  BOOST_TEST(c.sse(same) == 200);
  BOOST_TEST(c.ws({{"Origin", "https://other.example"}, {"Authorization", c.ann}}) == 101);
  BOOST_TEST(c.sse({{"Origin", "https://other.example"}, {"Authorization", c.ann}}) == 200);
  // Anonymous handshakes are unaffected (the default rules' chat stream works from anywhere).
  temp_dir dir;
  std::ofstream(dir.path() + "/empty.json") << "{}";
  rheo_process chat({"--config", dir.path() + "/empty.json"}, dir.path() + "/d");
  ws_client anon(chat.port(), "/messages/_streams/all", {{"Origin", "https://other.example"}});
  BOOST_TEST(anon.upgrade_status() == 101);
}

BOOST_AUTO_TEST_CASE(a_malformed_allowed_origin_stops_startup_with_one_line) {
  auto r = run_rheo({"--cors-allowed-origins", "https://app.example/path"});
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("cors-allowed-origins") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("scheme://host[:port]") != std::string::npos, r.output);
}

// Reload (SIGHUP): users, ACL, JWT settings and the log level change at runtime.

BOOST_AUTO_TEST_CASE(sighup_applies_a_new_acl_while_open_websockets_stay_open) {
  secured s(no_jwt);
  const std::string root = basic("root", "root-pw"), ann = basic("ann", "ann-pw");
  BOOST_REQUIRE(s.as(root, "PUT", "/public", R"({"streams":[{"uri":"all","stages":[]}]})").status ==
                201);
  BOOST_REQUIRE(s.as(root, "PUT", "/notes").status / 100 == 2);
  ws_client open_before(s.proc->port(), "/public/_streams/all");
  BOOST_REQUIRE(open_before.upgrade_status() == 101);
  BOOST_REQUIRE(s.as(ann, "GET", "/notes").status == 200);

  // The new ACL drops the public rule and the notes rule; admins keep everything.
  const std::string acl = R"j([{"roles": ["admin"], "predicate": "path-prefix('/')"}])j";
  auto outcome = s.reload(config_text(default_users(), acl, no_jwt));
  BOOST_TEST(outcome.find("reloaded: 3 users, 1 ACL rules") != std::string::npos, outcome);

  // New requests and handshakes get the new rules...
  BOOST_TEST(s.as(ann, "GET", "/notes").status == 403);
  BOOST_TEST(s.as("", "GET", "/public").status == 401);
  ws_client opened_after(s.proc->port(), "/public/_streams/all");
  BOOST_TEST(opened_after.upgrade_status() == 401);
  // ...while the WebSocket admitted before stays open and keeps receiving.
  BOOST_REQUIRE(s.as(root, "POST", "/public", R"({"_id":"after-reload"})").status == 201);
  auto f = open_before.next();
  BOOST_REQUIRE(f.opcode == 1);
  BOOST_TEST(f.payload.find("after-reload") != std::string::npos, f.payload);
}

BOOST_AUTO_TEST_CASE(sighup_forgets_verified_passwords_and_revokes_tokens_of_changed_users) {
  const std::string more =
      R"(, "auth_cache_ttl_seconds": 600, "login_max_failures": 1000, "token_ttl_seconds": 900)";
  const std::string ann_new_hash = hash_of("ann-new");
  secured s(no_jwt, more, {"--log-level", "debug"});
  BOOST_REQUIRE(s.as(basic("root", "root-pw"), "PUT", "/public").status == 201);
  auto token_of = [&](const std::string& user, const std::string& pw) {
    auto r = s.as(basic(user, pw), "GET", "/public");
    BOOST_REQUIRE(r.status == 200);
    BOOST_REQUIRE(!r.header("auth-token").empty());
    return r.header("auth-token");
  };
  const std::string ann_token = token_of("ann", "ann-pw"), bob_token = token_of("bob", "bob-pw");
  token_of("root", "root-pw");
  BOOST_REQUIRE(s.argon2_checks("bob") == 1u);
  BOOST_REQUIRE(s.as(basic("bob", "bob-pw"), "GET", "/public").status == 200); // a cache hit
  BOOST_REQUIRE(s.argon2_checks("bob") == 1u);

  // ann gets a new password, root is removed, bob stays as he was.
  const std::string users = R"([
      {"userid": "ann", "password": )" +
                            json_string(ann_new_hash) + R"(, "roles": ["user"]},
      {"userid": "bob", "password": )" +
                            json_string(hash_for("bob-pw")) + R"(, "roles": ["user"]}])";
  auto outcome = s.reload(config_text(users, default_acl, no_jwt, more));
  BOOST_TEST(outcome.find("reloaded: 2 users") != std::string::npos, outcome);
  BOOST_TEST(outcome.find("2 tokens revoked") != std::string::npos, outcome);

  // The old password of ann was cached as right: it must not authenticate any more, nor
  // her token, nor anything of root's.
  BOOST_TEST(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 401);
  BOOST_TEST(s.as(basic("ann", ann_token), "GET", "/public").status == 401);
  BOOST_TEST(s.as(basic("root", "root-pw"), "GET", "/public").status == 401);
  BOOST_TEST(s.as(basic("ann", "ann-new"), "GET", "/public").status == 200);
  // bob's token survives (same password hash); his password is verified with argon2id
  // again, since the reload dropped every cached verification.
  BOOST_TEST(s.as(basic("bob", bob_token), "GET", "/public").status == 200);
  BOOST_TEST(s.as(basic("bob", "bob-pw"), "GET", "/public").status == 200);
  BOOST_TEST(s.argon2_checks("bob") == 2u);
}

BOOST_AUTO_TEST_CASE(a_config_that_fails_on_reload_changes_nothing_and_says_why_in_one_line) {
  secured s(no_jwt);
  const std::string ann = basic("ann", "ann-pw");
  BOOST_REQUIRE(s.as(basic("root", "root-pw"), "PUT", "/notes").status / 100 == 2);
  BOOST_REQUIRE(s.as(ann, "GET", "/notes").status == 200);
  const std::string deny_all = R"j([{"roles": ["admin"], "predicate": "path-prefix('/')"}])j";

  auto outcome = s.reload("{\"acl\": [ oops");
  BOOST_TEST(outcome.find("reload refused") != std::string::npos, outcome);
  BOOST_TEST(outcome.find("invalid JSON") != std::string::npos, outcome);
  BOOST_TEST(s.as(ann, "GET", "/notes").status == 200);

  // Valid JSON, but a predicate that does not parse: the users of the same file must not
  // be applied either.
  const std::string only_bob =
      R"([{"userid": "bob", "password": )" + json_string(hash_of("bob-pw")) + "}]";
  outcome = s.reload(config_text(
      only_bob, R"j([{"roles": ["user"], "predicate": "path-prefix('/notes') andd"}])j", no_jwt));
  BOOST_TEST(outcome.find("reload refused") != std::string::npos, outcome);
  BOOST_TEST(outcome.find("andd") != std::string::npos, outcome);
  BOOST_TEST(s.as(ann, "GET", "/notes").status == 200);
  // A bad JWT setting is refused likewise.
  outcome = s.reload(config_text(default_users(), deny_all, R"({"algorithm":"none"})"));
  BOOST_TEST(outcome.find("reload refused") != std::string::npos, outcome);
  BOOST_TEST(s.as(ann, "GET", "/notes").status == 200);

  // After refusals a good file still applies.
  outcome = s.reload(config_text(default_users(), deny_all, no_jwt));
  BOOST_TEST(outcome.find("reloaded: ") != std::string::npos, outcome);
  BOOST_TEST(s.as(ann, "GET", "/notes").status == 403);
}

BOOST_AUTO_TEST_CASE(reload_applies_the_log_level_and_names_settings_that_need_a_restart) {
  // The log level comes from the file here: not from RHEO_LOG_LEVEL (verbose_servers).
  struct without_level_variable {
    without_level_variable() { ::unsetenv("RHEO_LOG_LEVEL"); }
    ~without_level_variable() { ::setenv("RHEO_LOG_LEVEL", "debug", 1); }
  } file_decides;
  secured s(no_jwt, R"(, "login_max_failures": 1000)");
  BOOST_REQUIRE(s.as(basic("ann", "ann-pw"), "GET", "/public").status == 404);
  BOOST_REQUIRE(s.argon2_checks("ann") == 0u); // a debug line, and the level is info
  s.reload(config_text(default_users(), default_acl, no_jwt,
                       R"(, "login_max_failures": 1000, "log_level": "debug",
                            "changelog_retention": 5, "ws_queue_limit_bytes": 65536)"));
  BOOST_REQUIRE(s.as(basic("bob", "bob-pw"), "GET", "/public").status == 404);
  BOOST_TEST(s.argon2_checks("bob") == 1u);
  auto log = s.proc->log();
  // Exactly the two that changed (login_max_failures did not; log_level applies now).
  const std::string named = "apply only after a restart: changelog_retention, ws_queue_limit_bytes";
  auto warn = log.find(named);
  BOOST_REQUIRE(warn != std::string::npos);
  BOOST_TEST(log.compare(warn + named.size(), 1, ",") != 0); // nothing more listed
}

BOOST_AUTO_TEST_CASE(the_cluster_secret_appears_in_no_log_of_the_nodes) {
  const std::string secret = "cluster-secret-4411", wrong = "wrong-secret-9922";
  remember_secret(secret);
  remember_secret(wrong);
  const std::uint16_t cport = free_port();
  const std::string at = "127.0.0.1:" + std::to_string(cport);
  rheo_process core({"--cluster-listen", at, "--cluster-secret", secret, "--node-name", "core"});
  rheo_process edge({"--cluster-join", at, "--cluster-secret", secret, "--node-name", "edge-ok",
                     "--cluster-reconnect-max-ms", "300"});
  rheo_process bad({"--cluster-join", at, "--cluster-secret", wrong, "--node-name", "edge-bad",
                    "--cluster-reconnect-max-ms", "300"});
  BOOST_REQUIRE(eventually([&] { return core.log().find("edge-ok joined") != std::string::npos; }));
  BOOST_REQUIRE(
      eventually([&] { return core.log().find("wrong cluster secret") != std::string::npos; }));
  BOOST_TEST(http(edge.port(), "GET", "/_cluster").status == 200);
  for (const rheo_process* p : {&core, &edge, &bad}) {
    const std::string log = p->log();
    BOOST_TEST(log.find(secret) == std::string::npos, log);
    BOOST_TEST(log.find(wrong) == std::string::npos, log);
  }
}

// Last: it also checks the logs of every server the cases before started.
BOOST_AUTO_TEST_CASE(no_password_token_jwt_cookie_or_secret_appears_in_any_server_log) {
  // Its own requests too, so that it checks something when it runs alone: a login, the
  // token as password and cookie, a JWT, streams opened with each.
  auto& s = hs_server();
  BOOST_REQUIRE(
      s.as(basic("root", "root-pw"), "PUT", "/notes", R"({"streams":[{"uri":"all","stages":[]}]})")
          .status < 300);
  auto login = s.as(basic("ann", "ann-pw"), "GET", "/notes");
  BOOST_REQUIRE(login.status == 200);
  const std::string token = login.header("auth-token");
  BOOST_REQUIRE(!token.empty());
  const std::string set_cookie = login.header("set-cookie");
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  BOOST_REQUIRE(cookie.rfind("rheo_auth=", 0) == 0);
  BOOST_TEST(s.as(basic("ann", token), "GET", "/notes").status == 200);
  BOOST_TEST(http(s.proc->port(), "GET", "/notes", "", {{"Cookie", cookie}}).status == 200);
  BOOST_TEST(s.as(basic("ann", "ann-pw-wrong"), "GET", "/notes").status == 401);
  const std::string jwt = hs256(
      R"({"sub":"carol","roles":["user"],"iss":"idp","aud":"rheo","exp":)" + now_plus(60) + "}",
      "s3cret");
  BOOST_TEST(s.as("Bearer " + jwt, "GET", "/notes").status == 200);
  {
    ws_client ws(s.proc->port(), "/notes/_streams/all", {{"Cookie", cookie}});
    ws_client bearer(s.proc->port(), "/notes/_streams/all", {{"Authorization", "Bearer " + jwt}});
    sse_client sse(s.proc->port(), "/notes/_streams/all", {{"Authorization", basic("ann", token)}});
  }
  // The session lines come when the sessions have ended.
  BOOST_REQUIRE(eventually([&] {
    const std::string log = s.proc->log();
    std::size_t n = 0;
    for (auto p = log.find("\"session\":"); p != std::string::npos;
         p = log.find("\"session\":", p + 1))
      ++n;
    return n >= 3;
  }));

  std::set<std::string> values;
  {
    std::lock_guard lock(secrets().mutex);
    values = secrets().values;
  }
  BOOST_TEST(values.count("ann-pw") == 1u);
  BOOST_TEST(values.count(token) == 1u);
  BOOST_TEST(values.count(jwt) == 1u);
  BOOST_TEST(values.count(cookie.substr(10)) == 1u);
  const auto logs = all_server_logs();
  BOOST_TEST_MESSAGE(logs.size() << " server logs, " << values.size() << " secrets");
  std::size_t access_lines = 0, debug_lines = 0;
  for (auto& log : logs) {
    for (auto p = log.find("\"msg\":\"access\""); p != std::string::npos;
         p = log.find("\"msg\":\"access\"", p + 1))
      ++access_lines;
    for (auto p = log.find("\"level\":\"debug\""); p != std::string::npos;
         p = log.find("\"level\":\"debug\"", p + 1))
      ++debug_lines;
    for (auto& secret : values) {
      auto at = log.find(secret);
      if (at == std::string::npos) continue;
      auto begin = log.rfind('\n', at);
      begin = begin == std::string::npos ? 0 : begin + 1;
      BOOST_ERROR("secret '" << secret
                             << "' logged: " << log.substr(begin, log.find('\n', at) - begin));
    }
  }
  // The logs checked are the verbose ones: access lines and debug lines are there.
  BOOST_TEST(access_lines >= 8u);
  BOOST_TEST(debug_lines >= 1u);
}

// -- behind a reverse proxy ---------------------------------------------------------------

namespace {

/// One HTTP/1.1 exchange from source address `from` (a loopback address of the 127/8 range)
/// to `port`: `head` is the request line and headers without the final blank line. Returns
/// what came back until the server closed, or until `wait` passed (a stream's head).
/// A connection to 127.0.0.1:`port` from source address `from` that has sent `head` and the
/// blank line after it.
int connect_from(const std::string& from, std::uint16_t port, const std::string& head) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
  const std::string req = head + "\r\n\r\n";
  BOOST_REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(req.size()));
  return fd;
}

std::string exchange_from(const std::string& from, std::uint16_t port, const std::string& head,
                          std::chrono::milliseconds wait = std::chrono::seconds(10)) {
  const int fd = connect_from(from, port, head);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    // A stream's answer never ends: its head is enough.
    if ((got.rfind("HTTP/1.1 101", 0) == 0 || got.find("text/event-stream") != std::string::npos) &&
        got.find("\r\n\r\n") != std::string::npos)
      break;
  }
  ::close(fd);
  return got;
}

std::string status_of(const std::string& answer) {
  return answer.substr(0, answer.find("\r\n"));
}

/// Debian's nginx in front of rheo at `upstream`, as a TLS-terminating proxy would be set up:
/// it appends the caller's address to X-Forwarded-For, says X-Forwarded-Proto: https, passes
/// WebSocket upgrades and streams SSE unbuffered. It connects to rheo from 127.0.0.1.
struct nginx_proxy {
  temp_dir dir;
  std::uint16_t port = free_port();
  pid_t pid = -1;

  explicit nginx_proxy(std::uint16_t upstream) {
    const std::string d = dir.path();
    std::ofstream(d + "/nginx.conf")
        << (::geteuid() == 0 ? "user root;\n" : "") << "daemon off;\nworker_processes 1;\n"
        << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log;\nevents {}\nhttp {\n"
        << "  access_log off;\n"
        << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
        << "  fastcgi_temp_path " << d << "/fcgi;\n  uwsgi_temp_path " << d << "/uwsgi;\n"
        << "  scgi_temp_path " << d << "/scgi;\n"
        << "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
        << "  server {\n    listen 127.0.0.1:" << port << ";\n    location / {\n"
        << "      proxy_pass http://127.0.0.1:" << upstream << ";\n"
        << "      proxy_bind 127.0.0.1;\n      proxy_http_version 1.1;\n"
        << "      proxy_set_header Host $host;\n"
        << "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        << "      proxy_set_header X-Forwarded-Proto https;\n"
        << "      proxy_set_header Upgrade $http_upgrade;\n"
        << "      proxy_set_header Connection $connection_upgrade;\n"
        << "      proxy_buffering off;\n      proxy_read_timeout 1h;\n    }\n  }\n}\n";
    pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      ::execl("/usr/sbin/nginx", "nginx", "-p", d.c_str(), "-c", (d + "/nginx.conf").c_str(), "-e",
              (d + "/error.log").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    BOOST_REQUIRE_MESSAGE(eventually([&] {
                            try {
                              ::close(connect_to(port));
                              return true;
                            } catch (const std::runtime_error&) {
                              return false; // not listening yet
                            }
                          }),
                          "nginx did not listen (is Debian's nginx installed? scripts/setup.sh)");
  }
  ~nginx_proxy() {
    ::kill(pid, SIGQUIT);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(
    behind_a_trusted_proxy_each_client_has_its_own_address_and_forged_headers_count_nothing) {
  secured s(no_jwt, R"(, "max_sessions_per_client": 1)", {"--trusted-proxies", "127.0.0.1"});
  nginx_proxy proxy(s.proc->port());
  const std::uint16_t via = proxy.port, direct = s.proc->port();
  for (auto* coll : {"/notes", "/public"})
    BOOST_REQUIRE_EQUAL(http(direct, "PUT", coll, R"({"streams":[{"uri":"all","stages":[]}]})",
                             {{"Authorization", basic("root", "root-pw")}})
                                .status /
                            100,
                        2);
  auto get = [&](const std::string& from, std::uint16_t port, const std::string& auth,
                 const std::string& more = "") {
    return exchange_from(from, port,
                         "GET /notes HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"
                         "Authorization: " +
                             auth + more);
  };
  // Through the proxy, a client that guesses wrong (3 failures allowed) is throttled alone:
  // another client behind the same proxy logs in.
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(status_of(get("127.0.0.3", via, basic("ann", "wrong"))) ==
               "HTTP/1.1 401 Unauthorized");
  const std::string throttled = get("127.0.0.3", via, basic("ann", "ann-pw"));
  BOOST_TEST(status_of(throttled) == "HTTP/1.1 429 Too Many Requests");
  BOOST_TEST(throttled.find("Retry-After: ") != std::string::npos, throttled);
  const std::string other = get("127.0.0.4", via, basic("ann", "ann-pw"));
  BOOST_TEST(status_of(other) == "HTTP/1.1 200 OK", other);
  // The proxy said https: the login cookie is Secure. Straight to rheo over plain HTTP it is
  // not, whatever the client claims.
  BOOST_TEST(other.find("; Secure") != std::string::npos, other);
  const std::string plain =
      get("127.0.0.5", direct, basic("bob", "bob-pw"), "\r\nX-Forwarded-Proto: https");
  BOOST_TEST(status_of(plain) == "HTTP/1.1 200 OK", plain);
  BOOST_TEST(plain.find("Set-Cookie: ") != std::string::npos, plain);
  BOOST_TEST(plain.find("; Secure") == std::string::npos, plain);
  // The access log names the clients, not the proxy.
  BOOST_TEST(eventually([&] {
    return s.proc->log().find(R"("remote":"127.0.0.3")") != std::string::npos &&
           s.proc->log().find(R"("remote":"127.0.0.4")") != std::string::npos;
  }));
  // A client straight to rheo forging X-Forwarded-For is itself: its failures are its own,
  // and blaming someone else for them does not work.
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(status_of(get("127.0.0.2", direct, basic("bob", "wrong"),
                             "\r\nX-Forwarded-For: 127.0.0.6\r\nForwarded: for=127.0.0.6")) ==
               "HTTP/1.1 401 Unauthorized");
  BOOST_TEST(status_of(get("127.0.0.2", direct, basic("bob", "bob-pw"),
                           "\r\nX-Forwarded-For: 127.0.0.7")) == "HTTP/1.1 429 Too Many Requests");
  BOOST_TEST(status_of(get("127.0.0.6", via, basic("bob", "bob-pw"))) == "HTTP/1.1 200 OK");
  // Through the proxy, a client forging its own X-Forwarded-For gets the address the proxy
  // saw: nginx appends it, and rheo takes the right-most untrusted one.
  BOOST_TEST(status_of(get("127.0.0.3", via, basic("ann", "ann-pw"),
                           "\r\nX-Forwarded-For: 127.0.0.8")) == "HTTP/1.1 429 Too Many Requests");
  // Sessions through the proxy count per client (max_sessions_per_client 1), over WebSocket
  // and SSE alike.
  const std::string upgrade = "GET /public/_streams/all HTTP/1.1\r\nHost: app.example\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13";
  int held[2] = {-1, -1};
  auto open_ws = [&](const std::string& from, int* keep) {
    // Kept open (the session holds its place): exchange_from would close it.
    const int fd = connect_from(from, via, upgrade);
    std::string got;
    char buf[1024];
    pollfd p{fd, POLLIN, 0};
    while (got.find("\r\n\r\n") == std::string::npos && ::poll(&p, 1, 10000) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    *keep = fd;
    return status_of(got);
  };
  BOOST_TEST(open_ws("127.0.0.3", &held[0]) == "HTTP/1.1 101 Switching Protocols");
  BOOST_TEST(status_of(exchange_from("127.0.0.3", via, upgrade)) ==
             "HTTP/1.1 429 Too Many Requests");
  BOOST_TEST(open_ws("127.0.0.4", &held[1]) == "HTTP/1.1 101 Switching Protocols");
  const std::string sse = exchange_from(
      "127.0.0.5", via,
      "GET /public/_streams/all HTTP/1.1\r\nHost: app.example\r\nAccept: text/event-stream");
  BOOST_TEST(status_of(sse) == "HTTP/1.1 200 OK", sse);
  for (int fd : held)
    if (fd >= 0) ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()
