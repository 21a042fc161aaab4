// What the feed sinks of the actors share (the watcher's, actors/watcher.cpp, and the
// replay feeds', actors/subscription.cpp): turning a store's batch into the message the
// actors pass on, and sending to an actor held only weakly.
//
// Thread-safety: both may be called from any thread (a store's).
#pragma once

#include "actors/actors.hpp"
#include "storage/document/change_event.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <utility>
#include <vector>

namespace rheo {

/// The events in the shape stages see (change_event::to_object()), as one shared batch.
event_batch to_batch(const std::vector<change_event>& events);

/// Sends `xs` to the actor behind `weak` (of interface `Handle`) if it is still alive;
/// never blocks. Returns whether it was sent (when not, `xs` were not touched).
template <class Handle, class... Ts>
bool send_if_alive(const caf::weak_actor_ptr& weak, Ts&&... xs) {
  auto strong = weak.lock();
  if (!strong) return false;
  caf::anon_send(caf::actor_cast<Handle>(strong), std::forward<Ts>(xs)...);
  return true;
}

} // namespace rheo
