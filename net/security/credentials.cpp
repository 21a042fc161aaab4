#include "net/security/credentials.hpp"

#include "config/log.hpp"
#include "net/security/codec.hpp"
#include "net/security/config_json.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <string_view>
#include <variant>

namespace rheo {

namespace {

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

std::string iso8601(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

std::string hash_password(const std::string& password) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    throw std::runtime_error("out of memory while hashing the password");
  return out;
}

credentials::credentials(const server_config& config)
    : users_(read_users(config)), token_ttl_(config.token_ttl_seconds),
      max_failures_(config.login_max_failures), failure_window_(config.login_window_seconds),
      hash_slots_(threads_or_one_per_core(config.auth_max_concurrent_hashes),
                  std::chrono::milliseconds(config.auth_hash_wait_ms)) {
  // Verifying against a real hash for unknown users keeps their timing like a wrong password.
  dummy_hash_ = hash_password("rheo-dummy-password-for-unknown-users");
}

std::shared_ptr<const credentials::user_set> credentials::read_users(const server_config& config) {
  if (sodium_init() < 0) throw config_error("libsodium failed to initialise");
  auto set = std::make_shared<user_set>(std::chrono::seconds(config.auth_cache_ttl_seconds),
                                        config.auth_cache_size);
  if (config.users_json.empty()) return set;
  auto items = parse_config_array(config.users_json, "users");
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string where = "config key 'users'[" + std::to_string(i) + "]";
    if (!items[i].is_object()) throw config_error(where + " must be an object");
    auto& u = items[i].as_object();
    std::string id = string_field(u, "userid", where);
    std::string hash = string_field(u, "password", where);
    if (hash.rfind("$argon2", 0) != 0)
      throw config_error(where + ": \"password\" must be a hash from `rheo hash-password`");
    set->users[id] = {hash, string_list(u, "roles", where)};
  }
  return set;
}

std::size_t credentials::install_users(std::shared_ptr<const user_set> users) {
  std::size_t revoked = 0;
  std::lock_guard lock(mutex_);
  // A token is only good with the password hash it was issued against (checked at each
  // use, which also covers a login that verified against the old set while this ran);
  // dropping the others here frees them and tells the log how many went.
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    auto u = users->users.find(it->first);
    if (u != users->users.end() && u->second.hash == it->second.hash) {
      ++it;
    } else {
      it = tokens_.erase(it);
      ++revoked;
    }
  }
  users_.store(std::move(users));
  return revoked;
}

std::chrono::seconds credentials::throttled_for(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = failures_by_address_.find(address);
  if (it == failures_by_address_.end()) return std::chrono::seconds(0);
  const auto passed = std::chrono::steady_clock::now() - it->second.window_start;
  if (passed > failure_window_) {
    failures_by_address_.erase(it);
    return std::chrono::seconds(0);
  }
  if (it->second.count < max_failures_) return std::chrono::seconds(0);
  // Rounded up: a client that waits this long is let in.
  const auto left = failure_window_ - passed;
  return std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(left));
}

void credentials::record_failure(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  // Addresses whose window passed are forgotten when the table doubled since the last
  // sweep: memory follows the addresses failing now, not every address that ever failed
  // (amortised O(1) per failure).
  if (failures_by_address_.size() >= 2 * failures_after_sweep_ + 64) {
    std::erase_if(failures_by_address_,
                  [&](auto& kv) { return now - kv.second.window_start > failure_window_; });
    failures_after_sweep_ = failures_by_address_.size();
  }
  auto& f = failures_by_address_[address];
  if (f.count == 0 || now - f.window_start > failure_window_) {
    f.count = 0;
    f.window_start = now;
  }
  ++f.count;
}

namespace {

/// `user:secret`, base64-encoded (a Basic header's credentials, the token cookie's value).
struct user_secret {
  std::string user;
  std::string secret;
};
std::optional<user_secret> decode_user_secret(std::string_view base64) {
  auto decoded = base64_decode(base64, false);
  auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) return std::nullopt;
  return user_secret{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

/// The credentials of an Authorization header with the Basic scheme; nullopt for another
/// header.
std::optional<std::string_view> basic_credentials(std::string_view authorization) {
  if (authorization.rfind("Basic ", 0) != 0) return std::nullopt;
  return authorization.substr(6);
}

/// What a request presents to be checked.
struct presented {
  user_secret credentials;
  bool from_cookie = false; // the token cookie (which only ever carries a token)
};

/// The credentials a request presents: its Basic header's, else its token cookie's; or,
/// when there are none to check, the answer (anonymous, or 401 for a malformed or
/// unsupported Authorization header).
std::variant<presented, auth_result> read_presented(const std::string& authorization,
                                                    const std::string& cookie) {
  auth_result res;
  if (auto basic = basic_credentials(authorization)) {
    if (auto c = decode_user_secret(*basic)) return presented{std::move(*c), false};
    res.status = 401;
    res.message = "malformed Basic credentials";
    return res;
  }
  if (!authorization.empty()) {
    res.status = 401;
    res.message = "unsupported Authorization scheme";
    return res;
  }
  // rheo_auth=<base64(user:token)> set at login.
  auto pos = cookie.find("rheo_auth=");
  if (pos == std::string::npos) return res; // anonymous
  auto end = cookie.find(';', pos);
  auto c = decode_user_secret(std::string_view(cookie).substr(
      pos + 10, end == std::string::npos ? std::string::npos : end - pos - 10));
  if (!c) return res; // a stale cookie is no login
  return presented{std::move(*c), true};
}

/// 429: the address failed to log in too often lately; it may try again after `wait`.
auth_result too_many_failures(std::chrono::seconds wait) {
  auth_result res;
  res.status = 429;
  res.message = "too many failed logins from this address; try again later";
  res.headers.emplace_back("Retry-After",
                           std::to_string(std::max(wait, std::chrono::seconds(1)).count()));
  return res;
}

} // namespace

const credentials::user_entry* credentials::user_set::find(const std::string& user) const {
  auto it = users.find(user);
  return it == users.end() ? nullptr : &it->second;
}

bool credentials::holds_token(const std::string& user, const user_entry& entry,
                              std::string_view secret) {
  std::lock_guard lock(mutex_);
  auto t = tokens_.find(user);
  return t != tokens_.end() && std::chrono::steady_clock::now() < t->second.expires &&
         constant_time_equal(t->second.token, secret) && t->second.hash == entry.hash;
}

credentials::password_check
credentials::check_password(const user_set& users, const std::string& user, const user_entry* entry,
                            const std::string& secret, const std::string& remote_address) {
  if (throttled_for(remote_address).count()) return password_check::throttled;
  // A password verified recently: the cache holds a keyed hash of it, never the password.
  if (entry && users.verified.lookup(user, entry->hash, secret)) return password_check::ok;
  // argon2id, slow on purpose, so at most a few at once. Unknown users are verified against
  // a dummy hash so both failures take the same time and answer the same.
  hash_slots::held slot(hash_slots_);
  if (!slot) return password_check::busy;
  // Failures recorded while this request waited for its slot count too.
  if (throttled_for(remote_address).count()) return password_check::throttled;
  // A burst of requests with the same new credentials (a client opening many connections)
  // verifies once: those that waited find the first one's entry.
  if (entry && users.verified.lookup(user, entry->hash, secret)) return password_check::ok;
  const std::string& hash = entry ? entry->hash : dummy_hash_;
  const bool ok =
      crypto_pwhash_str_verify(hash.c_str(), secret.data(), secret.size()) == 0 && entry;
  if (ok) users.verified.remember(user, entry->hash, secret);
  log::debug("argon2id check of user '" + user + "': " + (ok ? "ok" : "wrong"));
  return ok ? password_check::ok : password_check::wrong;
}

token_info credentials::issue_token(const std::string& user, const user_entry& entry) {
  std::lock_guard lock(mutex_);
  auto& t = tokens_[user];
  auto now = std::chrono::steady_clock::now();
  if (t.token.empty() || now >= t.expires || t.hash != entry.hash) {
    t.hash = entry.hash;
    t.token = random_token();
    t.expires = now + token_ttl_;
    t.expires_wall = std::chrono::system_clock::now() + token_ttl_;
  }
  return token_info{t.token, iso8601(t.expires_wall)};
}

std::vector<std::pair<std::string, std::string>>
credentials::login_headers(const std::string& user, const token_info& token) const {
  return {
      {"Auth-Token", token.token},
      {"Auth-Token-Valid-Until", token.valid_until},
      {"Auth-Token-Location", "/tokens/" + user},
      {"Set-Cookie",
       "rheo_auth=" + base64_encode(user + ":" + token.token) +
           "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(token_ttl_.count())},
  };
}

auth_result credentials::authenticate(const std::string& authorization, const std::string& cookie,
                                      const std::string& remote_address) {
  auto read = read_presented(authorization, cookie);
  if (auto* answer = std::get_if<auth_result>(&read)) return std::move(*answer);
  const auto& [user, secret] = std::get<presented>(read).credentials;
  const bool from_cookie = std::get<presented>(read).from_cookie;
  // One user set for the whole check, even if a reload swaps it meanwhile.
  std::shared_ptr<const user_set> users = users_.load();
  const user_entry* entry = users->find(user);
  auth_result res;
  if (entry && holds_token(user, *entry, secret)) {
    res.user = make_principal(user, entry->roles);
    res.from_cookie = from_cookie;
    return res;
  }
  // Cookies only ever carry tokens: an expired one means anonymous, not an error.
  if (from_cookie) return res;
  switch (check_password(*users, user, entry, secret, remote_address)) {
  case password_check::ok:
    break;
  case password_check::throttled:
    return too_many_failures(throttled_for(remote_address));
  case password_check::busy:
    res.status = 503;
    res.message = "too many password checks at once; try again shortly";
    res.headers.emplace_back("Retry-After", "1");
    return res;
  case password_check::wrong:
    record_failure(remote_address);
    res.status = 401;
    res.message = "wrong user or password";
    return res;
  }
  // A token, usable as the Basic password, and as a cookie for browsers.
  res.user = make_principal(user, entry->roles);
  res.headers = login_headers(user, issue_token(user, *entry));
  return res;
}

bool credentials::needs_password_check(const std::string& authorization) {
  auto basic = basic_credentials(authorization);
  if (!basic) return false;
  auto c = decode_user_secret(*basic);
  if (!c) return false; // a 401 without hashing
  std::shared_ptr<const user_set> users = users_.load();
  const user_entry* entry = users->find(c->user);
  if (!entry) return true; // the dummy hash
  if (holds_token(c->user, *entry, c->secret)) return false;
  return !users->verified.lookup(c->user, entry->hash, c->secret);
}

std::optional<token_info> credentials::token_of(const std::string& user) {
  std::lock_guard lock(mutex_);
  auto t = tokens_.find(user);
  if (t == tokens_.end() || std::chrono::steady_clock::now() >= t->second.expires)
    return std::nullopt;
  return token_info{t->second.token, iso8601(t->second.expires_wall)};
}

void credentials::revoke_token(const std::string& user) {
  {
    std::lock_guard lock(mutex_);
    tokens_.erase(user);
  }
  // A logged-out client proves its password again, with argon2id.
  users_.load()->verified.forget(user);
}

std::string credentials::expired_cookie() {
  return "rheo_auth=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0";
}

} // namespace rheo
