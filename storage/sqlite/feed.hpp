// Change feeds of the embedded store: the state one feed shares between the writer thread
// and its owner, and the change_feed the store hands out. Internal to storage/sqlite.
//
// Thread-safety: sqlite_feed_state is guarded by its `mu` (see below); sqlite_feed as change_feed
// (storage/store.hpp).
#pragma once

#include "storage/store.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rheo::sqlite {

class core;

/// The shared state of one change feed, between the writer thread (which delivers committed
/// events), the thread that starts the feed (which catches up a resume token) and the one
/// that cancels it. Thread-safety: every member under `mu`, which is also held during every
/// call to the sink (so sink calls never overlap, and cancel() waits for a running one).
struct sqlite_feed_state {
  std::string db;
  std::string coll;
  std::mutex mu;
  std::shared_ptr<feed_sink> sink;     // set by start(), released when the feed ends
  bool buffering = true;               // not started, or catching up: live events wait
  bool holding = true;                 // while buffering: live events are kept in `held`
                                       // (else dropped: the catch-up reads them from the log)
  bool ended = false;                  // cancelled or lost: nothing more is delivered
  std::vector<change_event> held;      // live events committed while buffering and holding
  std::size_t pace_bytes = 0;          // the sink's catch_up_bytes() (0: not paced)
  bool waiting = false;                // a paced catch-up waits for more()
  bool credit = false;                 // more() came while a part was under way
  std::uint64_t last_seq = 0;          // highest seq delivered (or the resume position)
  std::uint64_t start_seq = 0;         // the position fixed at registration (or the resume)
  std::optional<std::uint64_t> resume; // catch-up pending from this seq
  std::optional<feed_end> lost;        // the feed ends with this reason once delivered up to here

  /// Delivers `events` (in commit order) to the sink, dropping those at or before last_seq,
  /// turning "meta" log entries into metadata() calls and ending the feed after an
  /// invalidate. Requires `mu` held and a sink (and !buffering, but for the catch-up's
  /// own parts). Returns how many events reached sink->events().
  std::size_t push(std::vector<change_event>& events);
  /// Ends the feed with `why` now, or once buffering is over. Requires `mu` held.
  void end(feed_end why);
};

/// Thread-safety: as change_feed (store.hpp).
class sqlite_feed final : public change_feed {
public:
  sqlite_feed(std::shared_ptr<sqlite_feed_state> state, std::weak_ptr<core> owner)
      : state_(std::move(state)), core_(std::move(owner)) {}
  ~sqlite_feed() override { cancel(); }
  void start(std::shared_ptr<feed_sink> sink) override;
  std::string position() const override;
  void cancel() override;
  void more() override;

private:
  /// Reads the log after last_seq and delivers it, a part at a time, until the feed is live
  /// (or, paced, until a part went out and no credit is left). At most one runs at a time.
  void catch_up();

  std::shared_ptr<sqlite_feed_state> state_;
  std::weak_ptr<core> core_;
};

} // namespace rheo::sqlite
