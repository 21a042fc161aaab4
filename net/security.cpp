#include "net/security.hpp"

#include "storage/document/json.hpp"
#include "storage/document/query.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

namespace rheo {

// ---------------------------------------------------------------------------------------
// ACL predicates

struct acl_predicate {
  enum class kind { path_prefix, path, method, and_, or_, not_ } k;
  std::string arg;
  std::vector<std::string> template_segments; // for path
  std::shared_ptr<const acl_predicate> a, b;
};

namespace {

std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/')
      ++i;
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.emplace_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

class predicate_parser {
public:
  explicit predicate_parser(const std::string& text) : s_(text) {}

  std::shared_ptr<const acl_predicate> parse() {
    auto p = parse_or();
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return p;
  }

private:
  [[noreturn]] void fail(const std::string& what) {
    throw config_error("acl predicate '" + s_ + "': " + what + " at offset " +
                       std::to_string(pos_));
  }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
  }
  bool keyword(std::string_view kw) {
    skip_ws();
    if (s_.compare(pos_, kw.size(), kw) != 0) return false;
    std::size_t end = pos_ + kw.size();
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '-'))
      return false;
    pos_ = end;
    return true;
  }
  std::shared_ptr<const acl_predicate> parse_or() {
    auto left = parse_and();
    while (keyword("or")) {
      auto n = std::make_shared<acl_predicate>();
      n->k = acl_predicate::kind::or_;
      n->a = left;
      n->b = parse_and();
      left = n;
    }
    return left;
  }
  std::shared_ptr<const acl_predicate> parse_and() {
    auto left = parse_unary();
    while (keyword("and")) {
      auto n = std::make_shared<acl_predicate>();
      n->k = acl_predicate::kind::and_;
      n->a = left;
      n->b = parse_unary();
      left = n;
    }
    return left;
  }
  std::shared_ptr<const acl_predicate> parse_unary() {
    skip_ws();
    if (keyword("not")) {
      auto n = std::make_shared<acl_predicate>();
      n->k = acl_predicate::kind::not_;
      n->a = parse_unary();
      return n;
    }
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      auto inner = parse_or();
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ')') fail("expected ')'");
      ++pos_;
      return inner;
    }
    std::size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-'))
      ++pos_;
    std::string name = s_.substr(start, pos_ - start);
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != '(') fail("expected '(' after '" + name + "'");
    ++pos_;
    skip_ws();
    std::string arg;
    if (pos_ < s_.size() && (s_[pos_] == '\'' || s_[pos_] == '"')) {
      char q = s_[pos_++];
      std::size_t end = s_.find(q, pos_);
      if (end == std::string::npos) fail("unterminated string");
      arg = s_.substr(pos_, end - pos_);
      pos_ = end + 1;
    } else {
      std::size_t a = pos_;
      while (pos_ < s_.size() && s_[pos_] != ')')
        ++pos_;
      arg = s_.substr(a, pos_ - a);
      while (!arg.empty() && std::isspace(static_cast<unsigned char>(arg.back())))
        arg.pop_back();
    }
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != ')') fail("expected ')'");
    ++pos_;
    auto n = std::make_shared<acl_predicate>();
    n->arg = arg;
    if (name == "path-prefix") {
      n->k = acl_predicate::kind::path_prefix;
      n->template_segments = split_path(arg);
    } else if (name == "path" || name == "path-template") {
      n->k = acl_predicate::kind::path;
      n->template_segments = split_path(arg);
    } else if (name == "method") {
      n->k = acl_predicate::kind::method;
      for (auto& c : n->arg)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else {
      fail("unknown predicate '" + name + "' (use path-prefix, path, method, and, or, not)");
    }
    return n;
  }

  std::string s_;
  std::size_t pos_ = 0;
};

bool segment_matches(const std::string& tmpl, const std::string& seg) {
  return (tmpl.size() >= 2 && tmpl.front() == '{' && tmpl.back() == '}') || tmpl == seg;
}

// ---------------------------------------------------------------------------------------
// base64 / base64url

std::optional<std::string> base64_decode(std::string_view in, bool url) {
  std::string out;
  std::string s(in);
  if (url) {
    for (auto& c : s)
      c = c == '-' ? '+' : (c == '_' ? '/' : c);
    while (s.size() % 4)
      s += '=';
  }
  out.resize(s.size() / 4 * 3 + 3);
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(),
                        s.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string base64_encode(std::string_view in) {
  std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                    in.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string random_token() {
  unsigned char bytes[24];
  randombytes_buf(bytes, sizeof bytes);
  std::string out(sodium_base64_encoded_len(sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, sizeof bytes,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

object parse_config_json(const std::string& text, const char* key, bool want_array) {
  value v;
  try {
    v = parse_json(text, key);
  } catch (const api_error& e) {
    throw config_error(std::string("config key '") + key + "': " + e.what());
  }
  if (want_array && !v.is_array())
    throw config_error(std::string("config key '") + key + "' must be an array");
  if (!want_array && !v.is_object())
    throw config_error(std::string("config key '") + key + "' must be an object");
  if (want_array) return object{{"items", v}};
  return v.as_object();
}

std::string string_field(const object& o, const char* name, const std::string& where,
                         bool required = true) {
  const value* v = find_field(o, name);
  if (!v) {
    if (required) throw config_error(where + ": missing \"" + name + "\"");
    return {};
  }
  if (!v->is_string()) throw config_error(where + ": \"" + name + "\" must be a string");
  return v->as_string();
}

std::vector<std::string> string_list(const object& o, const char* name, const std::string& where) {
  std::vector<std::string> out;
  const value* v = find_field(o, name);
  if (!v) return out;
  if (!v->is_array()) throw config_error(where + ": \"" + name + "\" must be an array of strings");
  for (auto& e : v->as_array()) {
    if (!e.is_string())
      throw config_error(where + ": \"" + name + "\" must be an array of strings");
    out.push_back(e.as_string());
  }
  return out;
}

} // namespace

std::shared_ptr<const acl_predicate> parse_acl_predicate(const std::string& text) {
  return predicate_parser(text).parse();
}

bool evaluate_acl_predicate(const acl_predicate& p, std::string_view method,
                            std::string_view path) {
  switch (p.k) {
  case acl_predicate::kind::and_:
    return evaluate_acl_predicate(*p.a, method, path) && evaluate_acl_predicate(*p.b, method, path);
  case acl_predicate::kind::or_:
    return evaluate_acl_predicate(*p.a, method, path) || evaluate_acl_predicate(*p.b, method, path);
  case acl_predicate::kind::not_:
    return !evaluate_acl_predicate(*p.a, method, path);
  case acl_predicate::kind::method:
    return method == p.arg;
  case acl_predicate::kind::path_prefix:
  case acl_predicate::kind::path: {
    auto segs = split_path(path);
    auto& t = p.template_segments;
    if (segs.size() < t.size()) return false;
    if (p.k == acl_predicate::kind::path && segs.size() != t.size()) return false;
    for (std::size_t i = 0; i < t.size(); ++i)
      if (!segment_matches(t[i], segs[i])) return false;
    return true;
  }
  }
  return false;
}

std::string hash_password(const std::string& password) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    throw std::runtime_error("out of memory while hashing the password");
  return out;
}

const char* default_acl_json() {
  return R"acl([
  {"roles": ["$unauthenticated", "$authenticated"],
   "predicate": "path-prefix('/messages') and (method(GET) or method(OPTIONS))"},
  {"roles": ["$unauthenticated", "$authenticated"],
   "predicate": "path('/messages') and method(POST)",
   "mergeRequest": {"timestamp": "@now"}},
  {"roles": ["admin"], "predicate": "path-prefix('/')"}
])acl";
}

// ---------------------------------------------------------------------------------------
// security

struct security::impl {
  struct user_entry {
    std::string hash;
    std::vector<std::string> roles;
  };
  struct token_entry {
    std::string token;
    std::chrono::steady_clock::time_point expires;
    std::chrono::system_clock::time_point expires_wall;
  };
  struct failures {
    unsigned count = 0;
    std::chrono::steady_clock::time_point window_start;
  };
  struct jwt_settings {
    std::string algorithm; // HS256 | RS256
    std::string key;       // secret, or PEM public key
    std::string issuer;
    std::string audience;
    std::string user_claim = "sub";
    std::string roles_claim = "roles";
    EVP_PKEY* public_key = nullptr;
  };

  std::map<std::string, user_entry> users;
  std::optional<jwt_settings> jwt;
  std::chrono::seconds token_ttl{900};
  unsigned max_failures = 10;
  std::chrono::seconds failure_window{60};
  std::string dummy_hash;

  std::mutex mutex;
  std::map<std::string, token_entry> tokens;           // user -> token
  std::map<std::string, failures> failures_by_address; // remote address -> failures
  std::map<std::string, std::chrono::steady_clock::time_point> verified; // hash(user:pw) -> until

  ~impl() {
    if (jwt && jwt->public_key) EVP_PKEY_free(jwt->public_key);
  }

  principal make_principal(const std::string& id, const std::vector<std::string>& roles,
                           object extra = {}) const {
    principal p;
    p.id = id;
    p.roles = roles;
    array r;
    for (auto& role : roles)
      r.emplace_back(role);
    p.document = object{{"_id", value(id)}, {"roles", value(std::move(r))}};
    for (auto& [k, v] : extra)
      if (k != "_id" && k != "roles") p.document.emplace_back(k, v);
    return p;
  }

  bool throttled(const std::string& address) {
    std::lock_guard lock(mutex);
    auto it = failures_by_address.find(address);
    if (it == failures_by_address.end()) return false;
    if (std::chrono::steady_clock::now() - it->second.window_start > failure_window) {
      failures_by_address.erase(it);
      return false;
    }
    return it->second.count >= max_failures;
  }

  void record_failure(const std::string& address) {
    std::lock_guard lock(mutex);
    auto now = std::chrono::steady_clock::now();
    auto& f = failures_by_address[address];
    if (f.count == 0 || now - f.window_start > failure_window) {
      f.count = 0;
      f.window_start = now;
    }
    ++f.count;
  }

  std::optional<principal> verify_jwt(const std::string& jwt_text, std::string& error);
};

security::security(const server_config& config) : impl_(std::make_unique<impl>()) {
  if (sodium_init() < 0) throw config_error("libsodium failed to initialise");
  auto& im = *impl_;
  im.token_ttl = std::chrono::seconds(config.token_ttl_seconds);
  im.max_failures = config.login_max_failures;
  im.failure_window = std::chrono::seconds(config.login_window_seconds);
  // Verifying against a real hash for unknown users keeps their timing like a wrong password.
  im.dummy_hash = hash_password("rheo-dummy-password-for-unknown-users");

  if (!config.users_json.empty()) {
    auto items =
        find_field(parse_config_json(config.users_json, "users", true), "items")->as_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      std::string where = "config key 'users'[" + std::to_string(i) + "]";
      if (!items[i].is_object()) throw config_error(where + " must be an object");
      auto& u = items[i].as_object();
      std::string id = string_field(u, "userid", where);
      std::string hash = string_field(u, "password", where);
      if (hash.rfind("$argon2", 0) != 0)
        throw config_error(where + ": \"password\" must be a hash from `rheo hash-password`");
      im.users[id] = {hash, string_list(u, "roles", where)};
    }
  }

  std::string acl_text = config.acl_json.empty() ? default_acl_json() : config.acl_json;
  auto rules = find_field(parse_config_json(acl_text, "acl", true), "items")->as_array();
  for (std::size_t i = 0; i < rules.size(); ++i) {
    std::string where = "config key 'acl'[" + std::to_string(i) + "]";
    if (!rules[i].is_object()) throw config_error(where + " must be an object");
    auto& r = rules[i].as_object();
    acl_rule rule;
    rule.roles = string_list(r, "roles", where);
    if (rule.roles.empty()) throw config_error(where + ": \"roles\" must name at least one role");
    rule.predicate_text = string_field(r, "predicate", where);
    rule.predicate = parse_acl_predicate(rule.predicate_text);
    for (auto& [k, v] : r) {
      if (k == "roles" || k == "predicate" || k == "priority") continue;
      if (k != "readFilter" && k != "mergeRequest" && k != "projectResponse")
        throw config_error(where + ": unknown option \"" + k + "\"");
      if (!v.is_object()) throw config_error(where + ": \"" + k + "\" must be an object");
      try {
        if (k == "readFilter") {
          matcher::compile(v.as_object()); // checked now, resolved per request
          rule.read_filter = v.as_object();
        } else if (k == "mergeRequest") {
          rule.merge_request = v.as_object();
        } else {
          projection::compile(v.as_object());
          rule.project_response = v.as_object();
        }
      } catch (const api_error& e) {
        throw config_error(where + ": \"" + k + "\": " + e.what());
      }
    }
    acl_.push_back(std::move(rule));
  }

  if (!config.jwt_json.empty()) {
    auto j = parse_config_json(config.jwt_json, "jwt", false);
    const std::string where = "config key 'jwt'";
    impl::jwt_settings s;
    s.algorithm = string_field(j, "algorithm", where);
    s.key = string_field(j, "key", where);
    s.issuer = string_field(j, "issuer", where, false);
    s.audience = string_field(j, "audience", where, false);
    if (auto uc = string_field(j, "userClaim", where, false); !uc.empty()) s.user_claim = uc;
    if (auto rc = string_field(j, "rolesClaim", where, false); !rc.empty()) s.roles_claim = rc;
    if (s.algorithm == "RS256") {
      BIO* bio = BIO_new_mem_buf(s.key.data(), static_cast<int>(s.key.size()));
      s.public_key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      if (!s.public_key) throw config_error(where + ": \"key\" is not a PEM public key");
    } else if (s.algorithm != "HS256") {
      throw config_error(where + ": \"algorithm\" must be HS256 or RS256");
    }
    im.jwt = std::move(s);
  }
}

security::~security() = default;

std::optional<principal> security::impl::verify_jwt(const std::string& token, std::string& error) {
  if (!jwt) {
    error = "bearer tokens are not configured";
    return std::nullopt;
  }
  auto d1 = token.find('.');
  auto d2 = token.find('.', d1 == std::string::npos ? d1 : d1 + 1);
  if (d1 == std::string::npos || d2 == std::string::npos) {
    error = "malformed JWT";
    return std::nullopt;
  }
  auto header = base64_decode(std::string_view(token).substr(0, d1), true);
  auto payload = base64_decode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1), true);
  auto signature = base64_decode(std::string_view(token).substr(d2 + 1), true);
  if (!header || !payload || !signature) {
    error = "malformed JWT";
    return std::nullopt;
  }
  object h, claims;
  try {
    value hv = parse_json(*header, "JWT header"), pv = parse_json(*payload, "JWT payload");
    if (!hv.is_object() || !pv.is_object()) throw api_error(400, "not objects");
    h = hv.as_object();
    claims = pv.as_object();
  } catch (const api_error&) {
    error = "malformed JWT";
    return std::nullopt;
  }
  const value* alg = find_field(h, "alg");
  if (!alg || !alg->is_string() || alg->as_string() != jwt->algorithm) {
    error = "JWT algorithm not accepted";
    return std::nullopt;
  }
  std::string_view signed_part = std::string_view(token).substr(0, d2);
  bool ok = false;
  if (jwt->algorithm == "HS256") {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), jwt->key.data(), static_cast<int>(jwt->key.size()),
         reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
         &mac_len);
    ok = constant_time_equal(std::string_view(reinterpret_cast<char*>(mac), mac_len), *signature);
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, jwt->public_key) == 1 &&
         EVP_DigestVerify(
             ctx, reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
  }
  if (!ok) {
    error = "invalid JWT signature";
    return std::nullopt;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (const value* exp = find_field(claims, "exp");
      exp && exp->is_number() && exp->as_int64() < now) {
    error = "JWT expired";
    return std::nullopt;
  }
  if (const value* nbf = find_field(claims, "nbf");
      nbf && nbf->is_number() && nbf->as_int64() > now) {
    error = "JWT not yet valid";
    return std::nullopt;
  }
  if (!jwt->issuer.empty()) {
    const value* iss = find_field(claims, "iss");
    if (!iss || !iss->is_string() || iss->as_string() != jwt->issuer) {
      error = "JWT issuer not accepted";
      return std::nullopt;
    }
  }
  if (!jwt->audience.empty()) {
    const value* aud = find_field(claims, "aud");
    bool match = aud && aud->is_string() && aud->as_string() == jwt->audience;
    if (aud && aud->is_array())
      for (auto& a : aud->as_array())
        match = match || (a.is_string() && a.as_string() == jwt->audience);
    if (!match) {
      error = "JWT audience not accepted";
      return std::nullopt;
    }
  }
  const value* sub = find_field(claims, jwt->user_claim);
  if (!sub || !sub->is_string()) {
    error = "JWT has no \"" + jwt->user_claim + "\" claim";
    return std::nullopt;
  }
  std::vector<std::string> roles;
  if (const value* r = find_field(claims, jwt->roles_claim); r && r->is_array())
    for (auto& e : r->as_array())
      if (e.is_string()) roles.push_back(e.as_string());
  return make_principal(sub->as_string(), roles, claims);
}

security::auth_result security::authenticate(const std::string& authorization,
                                             const std::string& cookie,
                                             const std::string& remote_address) {
  auto& im = *impl_;
  auth_result res;
  std::string user, secret;
  bool from_cookie = false;
  if (authorization.rfind("Bearer ", 0) == 0) {
    std::string error;
    auto p = im.verify_jwt(authorization.substr(7), error);
    if (!p) {
      res.status = 401;
      res.message = error;
      return res;
    }
    res.user = std::move(p);
    return res;
  }
  if (authorization.rfind("Basic ", 0) == 0) {
    auto decoded = base64_decode(std::string_view(authorization).substr(6), false);
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (!decoded || colon == std::string::npos) {
      res.status = 401;
      res.message = "malformed Basic credentials";
      return res;
    }
    user = decoded->substr(0, colon);
    secret = decoded->substr(colon + 1);
  } else if (!authorization.empty()) {
    res.status = 401;
    res.message = "unsupported Authorization scheme";
    return res;
  } else {
    // rheo_auth=<base64(user:token)> set at login.
    auto pos = cookie.find("rheo_auth=");
    if (pos == std::string::npos) return res; // anonymous
    auto end = cookie.find(';', pos);
    auto decoded = base64_decode(
        cookie.substr(pos + 10, end == std::string::npos ? std::string::npos : end - pos - 10),
        false);
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (!decoded || colon == std::string::npos) return res; // a stale cookie is no login
    user = decoded->substr(0, colon);
    secret = decoded->substr(colon + 1);
    from_cookie = true;
  }

  auto uit = im.users.find(user);
  // 1. An issued token.
  {
    std::lock_guard lock(im.mutex);
    auto t = im.tokens.find(user);
    if (t != im.tokens.end() && std::chrono::steady_clock::now() < t->second.expires &&
        constant_time_equal(t->second.token, secret) && uit != im.users.end()) {
      res.user = im.make_principal(user, uit->second.roles);
      return res;
    }
  }
  if (from_cookie) {
    // Cookies only ever carry tokens: an expired one means anonymous, not an error.
    return res;
  }
  if (im.throttled(remote_address)) {
    res.status = 429;
    res.message = "too many failed logins from this address; try again later";
    return res;
  }
  // 2. The password (argon2id; slow on purpose). Unknown users are verified against a
  // dummy hash so both failures take the same time and answer the same.
  const std::string& hash = uit != im.users.end() ? uit->second.hash : im.dummy_hash;
  bool ok = crypto_pwhash_str_verify(hash.c_str(), secret.data(), secret.size()) == 0 &&
            uit != im.users.end();
  if (!ok) {
    im.record_failure(remote_address);
    res.status = 401;
    res.message = "wrong user or password";
    return res;
  }
  res.user = im.make_principal(user, uit->second.roles);
  // Issue (or reuse) a token: usable as the Basic password, and as a cookie for browsers.
  std::string token;
  std::chrono::system_clock::time_point until;
  {
    std::lock_guard lock(im.mutex);
    auto& t = im.tokens[user];
    auto now = std::chrono::steady_clock::now();
    if (t.token.empty() || now >= t.expires) {
      t.token = random_token();
      t.expires = now + im.token_ttl;
      t.expires_wall = std::chrono::system_clock::now() + im.token_ttl;
    }
    token = t.token;
    until = t.expires_wall;
  }
  res.headers.emplace_back("Auth-Token", token);
  res.headers.emplace_back("Auth-Token-Valid-Until", iso8601(until));
  res.headers.emplace_back("Auth-Token-Location", "/tokens/" + user);
  res.headers.emplace_back("Set-Cookie", "rheo_auth=" + base64_encode(user + ":" + token) +
                                             "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" +
                                             std::to_string(im.token_ttl.count()));
  return res;
}

const acl_rule* security::authorize(std::string_view method, std::string_view path,
                                    const std::optional<principal>& user) const {
  for (auto& rule : acl_) {
    bool role_ok = false;
    for (auto& r : rule.roles) {
      if (r == "$unauthenticated" && !user)
        role_ok = true;
      else if (r == "$authenticated" && user)
        role_ok = true;
      else if (user)
        for (auto& ur : user->roles)
          if (ur == r) role_ok = true;
      if (role_ok) break;
    }
    if (role_ok && evaluate_acl_predicate(*rule.predicate, method, path)) return &rule;
  }
  return nullptr;
}

value security::resolve_variables(const value& v, const std::optional<principal>& user) {
  if (auto* s = v.get_if<std::string>()) {
    if (*s == "@now") return date_time::now();
    if (*s == "@user") return user ? value(user->id) : value();
    if (s->rfind("@user.", 0) == 0) {
      if (!user) return value();
      const value* f = find_path(user->document, s->substr(6));
      return f ? *f : value();
    }
    return v;
  }
  if (auto* o = v.get_if<object>()) {
    object out;
    out.reserve(o->size());
    for (auto& [k, e] : *o)
      out.emplace_back(k, resolve_variables(e, user));
    return out;
  }
  if (auto* a = v.get_if<array>()) {
    array out;
    out.reserve(a->size());
    for (auto& e : *a)
      out.push_back(resolve_variables(e, user));
    return out;
  }
  return v;
}

} // namespace rheo
