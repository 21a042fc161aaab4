// Users and their credentials: the users of the configuration with argon2id password
// hashes (libsodium), HTTP Basic with a password or an issued token, the token cookie for
// browsers, the tokens issued at login and revoked at logout, login throttling by remote
// address, a cache of recently verified passwords (credential_cache.hpp) and a bound on the
// argon2id checks running at once (hash_slots.hpp).
//
// Thread-safety: every public member may be called concurrently from any thread (the token
// table and throttling counters are guarded by a mutex, the cache and the slots guard
// themselves). The user set is immutable; a reload swaps it atomically, and a check in
// progress finishes with the set it started with.
#pragma once

#include "config/config.hpp"
#include "net/security/credential_cache.hpp"
#include "net/security/hash_slots.hpp"
#include "net/security/principal.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rheo {

/// The outcome of authenticating a request.
struct auth_result {
  std::optional<principal> user;
  int status = 0;      // 0 ok; 401 bad credentials; 429 throttled; 503 too many password checks
  std::string message; // for errors
  bool from_cookie = false; // the user was authenticated by the token cookie (rheo_auth)
  // Auth-Token..., Set-Cookie on success; Retry-After with a 503.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// The token issued to a user, as its Auth-Token-Location tells it.
struct token_info {
  std::string token;
  std::string valid_until; // ISO 8601, UTC
};

/// Creates an argon2id hash string for `password` (libsodium, interactive limits).
std::string hash_password(const std::string& password);

class credentials {
public:
  /// Reads users, token lifetime and login limits from `config`; throws config_error.
  explicit credentials(const server_config& config);

  struct user_set;
  /// The users of `config`, checked: throws config_error and changes nothing.
  static std::shared_ptr<const user_set> read_users(const server_config& config);
  /// Makes `users` (from read_users) the user set, with an empty cache of verified
  /// passwords: a password verified before counts for nothing after. Tokens of users who
  /// are gone or whose password hash changed are revoked; other tokens stay valid, with the
  /// user's new roles. Returns how many tokens were revoked.
  std::size_t install_users(std::shared_ptr<const user_set> users);

  /// Authenticates from an Authorization header with the Basic scheme (a password, which
  /// issues a token, or an issued token), or from the token cookie when there is no
  /// Authorization header. No credentials: ok and no user. Other schemes: 401.
  auth_result authenticate(const std::string& authorization, const std::string& cookie,
                           const std::string& remote_address);

  /// Whether authenticating `authorization` (Basic) would run argon2id: a password that is
  /// neither an issued token nor cached. Such requests are handled off the I/O threads.
  bool needs_password_check(const std::string& authorization);

  /// The unexpired token issued to `user`, if any.
  std::optional<token_info> token_of(const std::string& user);
  /// Logout: revokes the token of `user` and forgets the passwords verified for it.
  void revoke_token(const std::string& user);
  /// Whether users are configured (and so tokens can be issued).
  bool has_users() const { return !users_.load()->users.empty(); }

  /// The header value of a cookie that makes the browser drop the token cookie.
  static std::string expired_cookie();

  struct user_entry {
    std::string hash;
    std::vector<std::string> roles;
  };
  // The users and the cache of their verified passwords belong together: a cache entry is
  // only valid for the user set it was verified against, so a reload, which swaps the set,
  // drops the old cache with the old users.
  struct user_set {
    user_set(std::chrono::seconds ttl, std::size_t capacity) : verified(ttl, capacity) {}
    /// The entry of `user`, or null.
    const user_entry* find(const std::string& user) const;
    std::map<std::string, user_entry> users;
    mutable credential_cache verified;
  };

private:
  struct token_entry {
    std::string token;
    std::string hash; // the user's password hash it was issued against
    std::chrono::steady_clock::time_point expires;
    std::chrono::system_clock::time_point expires_wall;
  };
  struct failures {
    unsigned count = 0;
    std::chrono::steady_clock::time_point window_start;
  };

  enum class password_check {
    ok,
    wrong,     // or an unknown user
    throttled, // the address failed too often lately: 429
    busy,      // no argon2id slot within auth_hash_wait_ms: 503
  };

  // The steps of authenticate(), in its order.
  /// Whether `secret` is the unexpired token issued to `user` with its current hash.
  bool holds_token(const std::string& user, const user_entry& entry, std::string_view secret);
  /// Checks a password (not a token): the throttle, the cache of verified passwords, then
  /// argon2id (against a dummy hash for an unknown user, null `entry`).
  password_check check_password(const user_set& users, const std::string& user,
                                const user_entry* entry, const std::string& secret,
                                const std::string& remote_address);
  /// The unexpired token of `user`, or a new one.
  token_info issue_token(const std::string& user, const user_entry& entry);
  /// The headers of a login: the token (Auth-Token...) and the cookie that carries it.
  std::vector<std::pair<std::string, std::string>> login_headers(const std::string& user,
                                                                 const token_info& token) const;
  /// How long `address` stays refused after its failed logins (zero: it is not).
  std::chrono::seconds throttled_for(const std::string& address);
  void record_failure(const std::string& address);

  std::atomic<std::shared_ptr<const user_set>> users_;
  std::chrono::seconds token_ttl_;
  unsigned max_failures_;
  std::chrono::seconds failure_window_;
  std::string dummy_hash_;
  hash_slots hash_slots_;

  std::mutex mutex_;
  std::map<std::string, token_entry> tokens_;           // user -> token
  std::map<std::string, failures> failures_by_address_; // remote address -> failures
  std::size_t failures_after_sweep_ = 0;                // its size after the last sweep
};

} // namespace rheo
