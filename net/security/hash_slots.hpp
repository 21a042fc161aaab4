// A bound on the argon2id verifications running at once: each needs 64 MiB and a core for
// tens of milliseconds, so a burst of Basic logins (right or wrong) must queue, not
// allocate without limit. A caller waits at most `wait` for one of `slots` slots; when
// none frees up in time it is refused (the REST API answers 503 with Retry-After).
//
// Thread-safety: acquire() and release() may be called concurrently from any thread (a
// mutex and condition variable guard the count).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace rheo {

class hash_slots {
public:
  hash_slots(unsigned slots, std::chrono::milliseconds wait) : free_(slots), wait_(wait) {}

  /// Takes a slot, waiting at most the configured time; false when none came free.
  bool acquire() {
    std::unique_lock lock(mutex_);
    if (!freed_.wait_for(lock, wait_, [&] { return free_ > 0; })) return false;
    --free_;
    return true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      ++free_;
    }
    freed_.notify_one();
  }

  /// Holds a slot for one scope.
  class held {
  public:
    explicit held(hash_slots& s) : slots_(s), ok_(s.acquire()) {}
    ~held() {
      if (ok_) slots_.release();
    }
    held(const held&) = delete;
    held& operator=(const held&) = delete;
    explicit operator bool() const { return ok_; }

  private:
    hash_slots& slots_;
    bool ok_;
  };

private:
  std::mutex mutex_;
  std::condition_variable freed_;
  unsigned free_;
  const std::chrono::milliseconds wait_;
};

} // namespace rheo
