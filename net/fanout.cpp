#include "net/fanout.hpp"

#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/push_connection.hpp"

#include <boost/asio/post.hpp>

namespace rheo {

void post_to_connection(std::shared_ptr<push_connection> conn,
                        std::shared_ptr<const std::string> bytes, std::uint32_t frames) {
  auto& shard = conn->shard();
  boost::asio::post(shard.context(), [&shard, conn = std::move(conn), bytes = std::move(bytes),
                                      frames] {
    shard.metrics().bytes_queued.fetch_add(conn->enqueue(bytes, frames), std::memory_order_relaxed);
  });
}

void post_when_drained(std::shared_ptr<push_connection> conn, std::function<void()> fn) {
  auto& ctx = conn->shard().context();
  boost::asio::post(ctx, [conn = std::move(conn), fn = std::move(fn)]() mutable {
    conn->when_drained(std::move(fn));
  });
}

void fanout_group::release(std::shared_ptr<fanout_group> group) {
  auto& ctx = group->shard_.context();
  boost::asio::post(ctx, [group = std::move(group)] {
    for (auto& c : group->members_)
      if (c) c->leave_group(group.get());
    group->members_.clear();
  });
}

void fanout_group::post_add(std::shared_ptr<push_connection> conn) {
  boost::asio::post(shard_.context(), [self = shared_from_this(), conn = std::move(conn)] {
    if (conn->finished() || conn->slot_in(self.get())) return;
    conn->groups_.push_back({self.get(), self->members_.size()});
    self->members_.push_back(conn);
  });
}

void fanout_group::post_deliver(std::shared_ptr<const std::string> bytes, std::uint32_t frames,
                                const push_connection* except) {
  boost::asio::post(shard_.context(), [self = shared_from_this(), bytes = std::move(bytes), frames,
                                       except] { self->deliver(bytes, frames, except); });
}

void fanout_group::deliver(const std::shared_ptr<const std::string>& bytes, std::uint32_t frames,
                           const push_connection* except) {
  delivering_ = true;
  std::int64_t queued = 0;
  for (std::size_t i = 0; i < members_.size(); ++i)
    if (members_[i] && members_[i].get() != except) queued += members_[i]->enqueue(bytes, frames);
  delivering_ = false;
  shard_.metrics().bytes_queued.fetch_add(queued, std::memory_order_relaxed);
  if (holes_) {
    holes_ = false;
    std::erase(members_, nullptr);
    for (std::size_t i = 0; i < members_.size(); ++i)
      *members_[i]->slot_in(this) = i;
    removed_.clear();
  }
}

void fanout_group::remove(push_connection& conn) {
  const std::size_t* place = conn.slot_in(this);
  if (!place) return;
  const std::size_t slot = *place;
  conn.leave_group(this);
  if (slot >= members_.size() || members_[slot].get() != &conn) return;
  if (delivering_) {
    // Keep it alive until deliver() is done with it.
    removed_.push_back(std::move(members_[slot]));
    holes_ = true;
    return;
  }
  // The caller (a handler of the connection) holds a reference: releasing ours is safe.
  if (slot + 1 != members_.size()) {
    members_[slot] = std::move(members_.back());
    *members_[slot]->slot_in(this) = slot;
  }
  members_.pop_back();
}

} // namespace rheo
