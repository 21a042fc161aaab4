// Helpers of the embedded store's tests: a temporary data dir, a store on it, a feed sink
// that records what it gets, and query shorthands.
//
// Thread-safety: test_sink may be called by the store's threads while the test reads it
// (a mutex); the rest is used by the test's thread.
#pragma once

#include "storage/document/json.hpp"
#include "storage/sqlite/sqlite_store.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <stdlib.h>

namespace rheo::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline object J(std::string_view text) {
  return parse_json(text).as_object();
}

inline std::vector<std::string> keys_of(const object& o) {
  std::vector<std::string> keys;
  for (auto& [k, v] : o)
    keys.push_back(k);
  return keys;
}

/// A fresh directory removed at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/rheo_store_test_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct store_fixture {
  temp_dir dir;
  std::unique_ptr<store> db;
  std::chrono::milliseconds ttl_interval{60000};
  explicit store_fixture(std::uint64_t retention = 100000) { open(retention); }
  void open(std::uint64_t retention = 100000) {
    sqlite_store_options opt;
    opt.data_dir = (dir.path / "data").string();
    opt.changelog_retention = retention;
    opt.ttl_interval = ttl_interval;
    db = open_sqlite_store(opt);
  }
};

/// Records what a feed pushes, in call order. Thread-safe: the store calls it on its writer
/// thread (or on start()'s thread during catch-up) while the test reads it.
class test_sink final : public feed_sink {
public:
  /// One call: "e" (one per event), "m" (metadata) or "l" (lost), in order.
  struct call {
    char kind;
    std::optional<change_event> event;
    object metadata;
    std::string reason;
  };

  void events(std::vector<change_event> batch) override {
    std::lock_guard lk(mu_);
    if (batch.empty()) ++misuse_;
    for (auto& ev : batch) {
      if (ev.operation == operation_type::meta) ++misuse_; // metadata never comes as an event
      record({'e', std::move(ev), {}, {}});
    }
  }
  void metadata(object m) override {
    std::lock_guard lk(mu_);
    record({'m', std::nullopt, std::move(m), {}});
  }
  void lost(feed_end end) override {
    std::lock_guard lk(mu_);
    record({'l', std::nullopt, {}, std::move(end.reason)});
  }

  /// The events received so far (no waiting).
  std::vector<change_event> received() {
    std::lock_guard lk(mu_);
    std::vector<change_event> out;
    for (auto& c : calls_)
      if (c.kind == 'e') out.push_back(*c.event);
    return out;
  }
  std::vector<call> calls() {
    std::lock_guard lk(mu_);
    return calls_;
  }
  std::size_t call_count() {
    std::lock_guard lk(mu_);
    return calls_.size();
  }
  /// The reason given to lost(), if it was called (no waiting).
  std::optional<std::string> lost_reason() {
    std::lock_guard lk(mu_);
    for (auto& c : calls_)
      if (c.kind == 'l') return c.reason;
    return std::nullopt;
  }
  /// Calls that broke the contract: after lost(), an empty batch, a "meta" event.
  int misuse() {
    std::lock_guard lk(mu_);
    return misuse_;
  }
  /// Waits until `n` events arrived or the deadline passed; returns the events.
  std::vector<change_event> wait_events(std::size_t n, std::chrono::milliseconds within = 10s) {
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, within, [&] { return events_ >= n; });
    }
    return received();
  }

private:
  void record(call c) {
    if (ended_) ++misuse_;
    if (c.kind == 'l') ended_ = true;
    if (c.kind == 'e') ++events_;
    calls_.push_back(std::move(c));
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<call> calls_;
  std::size_t events_ = 0;
  bool ended_ = false;
  int misuse_ = 0;
};

/// Starts `feed` with a fresh test_sink.
inline std::shared_ptr<test_sink> start(change_feed& feed) {
  auto sink = std::make_shared<test_sink>();
  feed.start(sink);
  return sink;
}

/// Everything a resumed feed catches up: start() delivers it before returning.
inline std::vector<change_event> caught_up(change_feed& feed) {
  return start(feed)->received();
}

inline int status_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const api_error& e) {
    return e.status();
  }
  return 0;
}

/// The current etag carried by the etag_mismatch (412) `fn` throws; fails the test when it
/// throws none.
inline std::optional<object_id> current_etag_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const etag_mismatch& e) {
    return e.current();
  }
  BOOST_FAIL("no etag_mismatch (412) was thrown");
  return std::nullopt;
}

inline find_query query_of(std::string_view filter = "{}", std::string_view sort = "{}",
                           std::string_view keys = "{}", std::int64_t skip = 0,
                           std::int64_t limit = 100) {
  find_query q;
  q.filter = matcher::compile(J(filter));
  q.sort = sort_spec::parse(J(sort));
  q.keys = projection::compile(J(keys));
  q.skip = skip;
  q.limit = limit;
  return q;
}

} // namespace rheo::test
