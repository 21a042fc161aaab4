// Users and their credentials: the users of the configuration with argon2id password
// hashes (libsodium), HTTP Basic with a password or an issued token, the token cookie for
// browsers, the tokens issued at login, and login throttling by remote address.
//
// Thread-safety: authenticate() may be called concurrently from any thread (the token
// table and throttling counters are guarded by a mutex); the users are immutable after
// construction.
#pragma once

#include "config/config.hpp"
#include "net/security/principal.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rheo {

/// The outcome of authenticating a request.
struct auth_result {
  std::optional<principal> user;
  int status = 0;      // 0 ok; 401 bad credentials; 429 throttled
  std::string message; // for errors
  std::vector<std::pair<std::string, std::string>> headers; // Auth-Token..., Set-Cookie
};

/// Creates an argon2id hash string for `password` (libsodium, interactive limits).
std::string hash_password(const std::string& password);

class credentials {
public:
  /// Reads users, token lifetime and login limits from `config`; throws config_error.
  explicit credentials(const server_config& config);

  /// Authenticates from an Authorization header with the Basic scheme (a password, which
  /// issues a token, or an issued token), or from the token cookie when there is no
  /// Authorization header. No credentials: ok and no user. Other schemes: 401.
  auth_result authenticate(const std::string& authorization, const std::string& cookie,
                           const std::string& remote_address);

private:
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

  bool throttled(const std::string& address);
  void record_failure(const std::string& address);

  std::map<std::string, user_entry> users_;
  std::chrono::seconds token_ttl_;
  unsigned max_failures_;
  std::chrono::seconds failure_window_;
  std::string dummy_hash_;

  std::mutex mutex_;
  std::map<std::string, token_entry> tokens_;           // user -> token
  std::map<std::string, failures> failures_by_address_; // remote address -> failures
};

} // namespace rheo
