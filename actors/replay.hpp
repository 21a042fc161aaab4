// The replay pool: where the change feeds of resuming sessions (one per session that
// connects with a resume token) are opened, caught up and cancelled. Those calls block (a
// read of the change log, a round trip to MongoDB, the join of a feed thread), so they run
// on threads of their own instead of the actors' scheduler or the I/O threads.
//
// The reads of live queries (the first one and each refill) run there too: a read of the
// store may wait as long as a replay does.
//
// Subscriptions and live queries see the replay_service interface (a test gives them a
// fake).
//
// Thread-safety: open() and cancel() may be called from any thread; the pool's destructor
// joins its threads (after the actors that use the pool are done).
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <memory>
#include <string>

namespace rheo {

class change_feed;
class feed_sink;
class store;
struct find_query;
struct store_read; // actors/actors.hpp

class replay_service {
public:
  virtual ~replay_service() = default;
  /// Opens db.coll's feed after `token` and starts it with `sink` (which is then called as
  /// feed_sink says), then calls `opened` with it; when the feed cannot be opened, calls
  /// sink->lost() with the reason instead.
  virtual void open(std::string db, std::string coll, std::string token,
                    std::shared_ptr<feed_sink> sink,
                    std::function<void(std::shared_ptr<change_feed>)> opened) = 0;
  /// Cancels `feed`.
  virtual void cancel(std::shared_ptr<change_feed> feed) = 0;
  /// Lets paced `feed` deliver its next part (change_feed::more; it may read it).
  virtual void more(std::shared_ptr<change_feed> feed) = 0;
  /// Runs `q` on db.coll (its `position` set to where `done` receives it), then calls
  /// `done` with the result or the error.
  virtual void read(std::string db, std::string coll, find_query q,
                    std::function<void(store_read)> done) = 0;
};

/// The replay_service of a running server: opens and cancels on threads of its own.
class replay_pool final : public replay_service {
public:
  /// `storage` must outlive the pool.
  replay_pool(store& storage, unsigned threads);
  ~replay_pool() override;
  replay_pool(const replay_pool&) = delete;
  replay_pool& operator=(const replay_pool&) = delete;

  /// On a pool thread.
  void open(std::string db, std::string coll, std::string token, std::shared_ptr<feed_sink> sink,
            std::function<void(std::shared_ptr<change_feed>)> opened) override;
  /// On a pool thread.
  void cancel(std::shared_ptr<change_feed> feed) override;
  /// On a pool thread.
  void more(std::shared_ptr<change_feed> feed) override;
  /// On a pool thread.
  void read(std::string db, std::string coll, find_query q,
            std::function<void(store_read)> done) override;

private:
  store& storage_;
  boost::asio::thread_pool threads_;
};

} // namespace rheo
