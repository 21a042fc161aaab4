// The passwords verified recently, so that a client repeating HTTP Basic does not pay for
// argon2id on every request. An entry is keyed by HMAC-SHA256(user, stored hash, password)
// under a random key drawn when the cache is made: it holds neither the password nor a
// fast unkeyed digest of it, a lookup hits only with the very same password, and an entry
// made against another stored hash never matches (a changed password invalidates).
// Entries live `ttl` from the verification that made them (not from their last use), and
// at most `capacity` are kept (the oldest go first).
//
// Thread-safety: lookup(), remember() and forget() may be called concurrently from any
// thread (a mutex guards the table); the key is immutable after construction.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rheo {

class credential_cache {
public:
  /// A cache keeping `capacity` entries for `ttl` each; a zero ttl disables it.
  credential_cache(std::chrono::seconds ttl, std::size_t capacity);

  /// Whether `user` with `password` was verified against `stored_hash` less than ttl ago.
  bool lookup(std::string_view user, std::string_view stored_hash, std::string_view password);
  /// Records that `password` verified against `stored_hash` of `user` just now.
  void remember(std::string_view user, std::string_view stored_hash, std::string_view password);
  /// Drops every entry of `user` (logout).
  void forget(std::string_view user);

  std::size_t size();

private:
  using digest = std::string; // 32 bytes of HMAC-SHA256
  struct entry {
    std::string user;
    std::chrono::steady_clock::time_point expires;
    std::list<digest>::iterator age; // position in oldest_first_
  };

  digest key_of(std::string_view user, std::string_view stored_hash,
                std::string_view password) const;

  const std::chrono::seconds ttl_;
  const std::size_t capacity_;
  std::array<unsigned char, 32> key_{}; // per-process secret of the HMAC

  std::mutex mutex_;
  std::unordered_map<digest, entry> entries_;
  std::list<digest> oldest_first_;
};

} // namespace rheo
