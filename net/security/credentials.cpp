#include "net/security/credentials.hpp"

#include "config/log.hpp"
#include "net/security/codec.hpp"
#include "net/security/config_json.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <ctime>

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

bool credentials::throttled(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = failures_by_address_.find(address);
  if (it == failures_by_address_.end()) return false;
  if (std::chrono::steady_clock::now() - it->second.window_start > failure_window_) {
    failures_by_address_.erase(it);
    return false;
  }
  return it->second.count >= max_failures_;
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

auth_result credentials::authenticate(const std::string& authorization, const std::string& cookie,
                                      const std::string& remote_address) {
  auth_result res;
  std::string user, secret;
  bool from_cookie = false;
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

  // One user set for the whole check, even if a reload swaps it meanwhile.
  std::shared_ptr<const user_set> users = users_.load();
  auto uit = users->users.find(user);
  const bool known = uit != users->users.end();
  // 1. An issued token.
  {
    std::lock_guard lock(mutex_);
    auto t = tokens_.find(user);
    if (t != tokens_.end() && std::chrono::steady_clock::now() < t->second.expires &&
        constant_time_equal(t->second.token, secret) && known &&
        t->second.hash == uit->second.hash) {
      res.user = make_principal(user, uit->second.roles);
      res.from_cookie = from_cookie;
      return res;
    }
  }
  if (from_cookie) {
    // Cookies only ever carry tokens: an expired one means anonymous, not an error.
    return res;
  }
  if (throttled(remote_address)) {
    res.status = 429;
    res.message = "too many failed logins from this address; try again later";
    return res;
  }
  // 2. A password verified recently: the cache holds a keyed hash of it, never the password.
  bool ok = known && users->verified.lookup(user, uit->second.hash, secret);
  if (!ok) {
    // 3. The password (argon2id; slow on purpose, so at most a few at once). Unknown users
    // are verified against a dummy hash so both failures take the same time and answer the
    // same.
    hash_slots::held slot(hash_slots_);
    if (!slot) {
      res.status = 503;
      res.message = "too many password checks at once; try again shortly";
      res.headers.emplace_back("Retry-After", "1");
      return res;
    }
    // Failures recorded while this request waited for its slot count too.
    if (throttled(remote_address)) {
      res.status = 429;
      res.message = "too many failed logins from this address; try again later";
      return res;
    }
    // A burst of requests with the same new credentials (a client opening many
    // connections) verifies once: those that waited find the first one's entry.
    ok = known && users->verified.lookup(user, uit->second.hash, secret);
    if (!ok) {
      const std::string& hash = known ? uit->second.hash : dummy_hash_;
      ok = crypto_pwhash_str_verify(hash.c_str(), secret.data(), secret.size()) == 0 && known;
      if (ok) users->verified.remember(user, uit->second.hash, secret);
      log::debug("argon2id check of user '" + user + "': " + (ok ? "ok" : "wrong"));
    }
  }
  if (!ok) {
    record_failure(remote_address);
    res.status = 401;
    res.message = "wrong user or password";
    return res;
  }
  res.user = make_principal(user, uit->second.roles);
  // Issue (or reuse) a token: usable as the Basic password, and as a cookie for browsers.
  std::string token;
  std::chrono::system_clock::time_point until;
  {
    std::lock_guard lock(mutex_);
    auto& t = tokens_[user];
    auto now = std::chrono::steady_clock::now();
    if (t.token.empty() || now >= t.expires || t.hash != uit->second.hash) {
      t.hash = uit->second.hash;
      t.token = random_token();
      t.expires = now + token_ttl_;
      t.expires_wall = std::chrono::system_clock::now() + token_ttl_;
    }
    token = t.token;
    until = t.expires_wall;
  }
  res.headers.emplace_back("Auth-Token", token);
  res.headers.emplace_back("Auth-Token-Valid-Until", iso8601(until));
  res.headers.emplace_back("Auth-Token-Location", "/tokens/" + user);
  res.headers.emplace_back("Set-Cookie", "rheo_auth=" + base64_encode(user + ":" + token) +
                                             "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" +
                                             std::to_string(token_ttl_.count()));
  return res;
}

bool credentials::needs_password_check(const std::string& authorization) {
  if (authorization.rfind("Basic ", 0) != 0) return false;
  auto decoded = base64_decode(std::string_view(authorization).substr(6), false);
  auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (!decoded || colon == std::string::npos) return false; // a 401 without hashing
  std::string user = decoded->substr(0, colon);
  std::string_view secret = std::string_view(*decoded).substr(colon + 1);
  std::shared_ptr<const user_set> users = users_.load();
  auto uit = users->users.find(user);
  if (uit == users->users.end()) return true; // the dummy hash
  {
    std::lock_guard lock(mutex_);
    auto t = tokens_.find(user);
    if (t != tokens_.end() && std::chrono::steady_clock::now() < t->second.expires &&
        constant_time_equal(t->second.token, secret) && t->second.hash == uit->second.hash)
      return false;
  }
  return !users->verified.lookup(user, uit->second.hash, secret);
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
