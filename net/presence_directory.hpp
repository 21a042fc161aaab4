// Who is present on which stream, as GET /<coll>/_streams/<uri>/_presence answers it
// (section 11 of the contract): each stream's presence actor (actors/presence.hpp) publishes
// its list here as JSON, coalesced like its presence frames; the REST API reads it.
//
// Thread-safety: every member may be called from any thread (one mutex; the lists are
// immutable once published and shared).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace rheo {

class presence_directory {
public:
  /// The key of stream `uri` of db.coll.
  static std::string key(const std::string& db, const std::string& coll, const std::string& uri) {
    return db + '\0' + coll + '\0' + uri;
  }

  /// Sets the list of `key` to `json` (a JSON array), published by `owner` (a number of the
  /// publisher's: a later publisher of the same key replaces an earlier one's list).
  void publish(const std::string& key, std::uint64_t owner,
               std::shared_ptr<const std::string> json) {
    std::lock_guard lock(mutex_);
    lists_[key] = {owner, std::move(json)};
  }
  /// Removes the list of `key` if `owner` published it last.
  void withdraw(const std::string& key, std::uint64_t owner) {
    std::lock_guard lock(mutex_);
    if (auto it = lists_.find(key); it != lists_.end() && it->second.owner == owner)
      lists_.erase(it);
  }
  /// The list of `key`: null when nobody is present.
  std::shared_ptr<const std::string> list(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = lists_.find(key);
    return it == lists_.end() ? nullptr : it->second.json;
  }

private:
  struct entry {
    std::uint64_t owner = 0;
    std::shared_ptr<const std::string> json;
  };
  mutable std::mutex mutex_;
  std::map<std::string, entry> lists_;
};

} // namespace rheo
