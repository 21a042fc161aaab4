// The hand-off from a subscription to the I/O threads. A fanout_group holds the
// connections of one subscription that live on one I/O thread; the subscription posts each
// batch of pre-built frames to each group once (one post per I/O thread per batch, not one
// message per session), and the group appends the same shared buffer to each of its
// connections, which the thread then flushes once at the end of its turn. A connection may
// be in several groups (its subscription's, its stream's presence listeners').
//
// Thread-safety: post_add() and post_deliver() may be called from any thread (they post to
// the group's shard, in call order); the members are touched only on the shard's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rheo {

class io_shard;
class push_connection;

/// Queues `frames` data frames in `bytes` on `conn` alone, on its shard's thread; in order
/// with every other post (fanout_group's included) made from the calling thread to that shard.
void post_to_connection(std::shared_ptr<push_connection> conn,
                        std::shared_ptr<const std::string> bytes, std::uint32_t frames);

/// Calls `fn` on `conn`'s shard thread once its queue has drained (push_connection::
/// when_drained), after everything posted to it before from the calling thread.
void post_when_drained(std::shared_ptr<push_connection> conn, std::function<void()> fn);

class fanout_group : public std::enable_shared_from_this<fanout_group> {
public:
  explicit fanout_group(io_shard& shard) : shard_(shard) {}

  io_shard& shard() const { return shard_; }

  /// Adds `conn` (of this group's shard): it receives every batch posted after this call.
  /// A connection that has already finished is not added.
  void post_add(std::shared_ptr<push_connection> conn);
  /// Queues `frames` data frames in `bytes` on every member (but `except`, when given: a
  /// broadcast's sender; compared, never dereferenced).
  void post_deliver(std::shared_ptr<const std::string> bytes, std::uint32_t frames,
                    const push_connection* except = nullptr);

  /// The owner is done with the group: on the shard's thread, after every batch posted
  /// before, its members leave it (they receive nothing more from it).
  static void release(std::shared_ptr<fanout_group> group);

  /// On the shard's thread: called by a finishing member.
  void remove(push_connection& conn);

private:
  void deliver(const std::shared_ptr<const std::string>& bytes, std::uint32_t frames,
               const push_connection* except);

  io_shard& shard_;
  std::vector<std::shared_ptr<push_connection>> members_;
  // While deliver() walks members_, removals leave holes, closed up afterwards.
  bool delivering_ = false;
  bool holes_ = false;
  std::vector<std::shared_ptr<push_connection>> removed_;
};

} // namespace rheo
