#include "net/security/credential_cache.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <cstdint>
#include <stdexcept>

namespace rheo {

credential_cache::credential_cache(std::chrono::seconds ttl, std::size_t capacity)
    : ttl_(ttl), capacity_(capacity) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  randombytes_buf(key_.data(), key_.size());
}

credential_cache::digest credential_cache::key_of(std::string_view user,
                                                  std::string_view stored_hash,
                                                  std::string_view password) const {
  // Length-prefixed fields, so that no two (user, hash, password) triples share an input.
  std::string input;
  input.reserve(24 + user.size() + stored_hash.size() + password.size());
  for (std::string_view part : {user, stored_hash, password}) {
    std::uint64_t n = part.size();
    for (int i = 0; i < 8; ++i)
      input += static_cast<char>((n >> (8 * i)) & 0xff);
    input += part;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len))
    throw std::runtime_error("HMAC-SHA256 failed");
  sodium_memzero(input.data(), input.size());
  return digest(reinterpret_cast<const char*>(mac), len);
}

bool credential_cache::lookup(std::string_view user, std::string_view stored_hash,
                              std::string_view password) {
  if (ttl_.count() == 0) return false;
  digest d = key_of(user, stored_hash, password);
  std::lock_guard lock(mutex_);
  auto it = entries_.find(d);
  if (it == entries_.end()) return false;
  if (std::chrono::steady_clock::now() >= it->second.expires) {
    oldest_first_.erase(it->second.age);
    entries_.erase(it);
    return false;
  }
  return it->second.user == user;
}

void credential_cache::remember(std::string_view user, std::string_view stored_hash,
                                std::string_view password) {
  if (ttl_.count() == 0 || capacity_ == 0) return;
  digest d = key_of(user, stored_hash, password);
  auto expires = std::chrono::steady_clock::now() + ttl_;
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(d); it != entries_.end()) {
    // Verified again (it had expired under a concurrent check): renew as the newest.
    oldest_first_.erase(it->second.age);
    entries_.erase(it);
  }
  while (entries_.size() >= capacity_) {
    entries_.erase(oldest_first_.front());
    oldest_first_.pop_front();
  }
  oldest_first_.push_back(d);
  entries_.emplace(d, entry{std::string(user), expires, std::prev(oldest_first_.end())});
}

void credential_cache::forget(std::string_view user) {
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.user == user) {
      oldest_first_.erase(it->second.age);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t credential_cache::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

} // namespace rheo
