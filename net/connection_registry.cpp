#include "net/connection_registry.hpp"

namespace rheo {

bool connection_registry::add(std::weak_ptr<client_connection> c) {
  std::lock_guard lock(mutex_);
  if (shutting_down_) return false;
  // Prune ended connections only when the list has doubled: amortised O(1) per add.
  if (connections_.size() >= 2 * live_after_prune_ + 64) {
    std::erase_if(connections_, [](auto& w) { return w.expired(); });
    live_after_prune_ = connections_.size();
  }
  connections_.push_back(std::move(c));
  return true;
}

void connection_registry::shut_down_all() {
  std::vector<std::shared_ptr<client_connection>> live;
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    for (auto& w : connections_)
      if (auto c = w.lock()) live.push_back(std::move(c));
    connections_.clear();
  }
  for (auto& c : live)
    c->shut_down();
}

} // namespace rheo
