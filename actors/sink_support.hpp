// What the feed sinks of the actors share (the watcher's, actors/watcher.cpp, and the
// replay feeds', actors/subscription.cpp and the cluster's relays): turning a store's batch into
// the message the actors pass on, and sending to an actor held only weakly.
//
// Thread-safety: both may be called from any thread (a store's).
#pragma once

#include "actors/actors.hpp"
#include "net/metrics.hpp"
#include "storage/document/change_event.hpp"
#include "storage/store.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <utility>
#include <vector>

namespace rheo {

/// The events in the shape stages see (change_event::to_object(), moving their documents),
/// as one shared, immutable batch; after an "invalidate" event nothing is taken.
event_batch to_batch(std::vector<change_event>&& events);
/// Events already in that shape (a cluster edge's, from its core), shared as they are.
event_batch to_batch(std::shared_ptr<const std::vector<object>> events);

/// Sends `xs` to the actor behind `weak` (of interface `Handle`) if it is still alive;
/// never blocks. Returns whether it was sent (when not, `xs` were not touched).
template <class Handle, class... Ts>
bool send_if_alive(const caf::weak_actor_ptr& weak, Ts&&... xs) {
  auto strong = weak.lock();
  if (!strong) return false;
  caf::anon_send(caf::actor_cast<Handle>(strong), std::forward<Ts>(xs)...);
  return true;
}

/// The sink of replay feed `id` (a resuming session's, or a relay's catch-up): tells the actor
/// behind `owner` (of interface `Handle`, which takes replay_atom and replay_end_atom) what
/// the feed does, through a weak reference. `pace_bytes`: its catch_up_bytes() (0: unpaced;
/// otherwise the owner calls change_feed::more() after each part). Thread-safety: as
/// feed_sink says.
template <class Handle> class replay_sink final : public feed_sink {
public:
  replay_sink(caf::weak_actor_ptr owner, std::uint64_t id, metrics* stats,
              std::size_t pace_bytes = 0)
      : owner_(std::move(owner)), id_(id), stats_(stats), pace_bytes_(pace_bytes) {}

  std::size_t catch_up_bytes() const override { return pace_bytes_; }

  void events(std::vector<change_event> batch) override {
    stats_->events_replayed.fetch_add(batch.size(), std::memory_order_relaxed);
    send(replay_atom::value, id_, to_batch(std::move(batch)));
  }
  void shaped_events(std::shared_ptr<const std::vector<object>> batch) override {
    stats_->events_replayed.fetch_add(batch->size(), std::memory_order_relaxed);
    send(replay_atom::value, id_, to_batch(std::move(batch)));
  }
  void metadata(object) override {} // the live feed tells the owner
  void position(std::string token) override { send(replay_atom::value, id_, std::move(token)); }
  void lost(feed_end end) override { send(replay_end_atom::value, id_, std::move(end)); }

private:
  template <class... Ts> void send(Ts&&... xs) {
    send_if_alive<Handle>(owner_, std::forward<Ts>(xs)...);
  }

  caf::weak_actor_ptr owner_;
  std::uint64_t id_;
  metrics* stats_;
  std::size_t pace_bytes_;
};

} // namespace rheo
