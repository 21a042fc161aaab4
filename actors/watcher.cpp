#include "actors/watcher.hpp"

#include "actors/sink_support.hpp"
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

namespace rheo {

namespace {

/// Turns what the store pushes into messages to the watcher. Holds only a weak reference,
/// so the actor can terminate while the feed runs. Thread-safety: called by the feed, one
/// call at a time, on a store thread; never blocks (anon_send only).
class watcher_sink final : public feed_sink {
public:
  watcher_sink(caf::weak_actor_ptr watcher, metrics* stats)
      : watcher_(std::move(watcher)), stats_(stats) {}

  void events(std::vector<change_event> batch) override {
    stats_->events_received.fetch_add(batch.size(), std::memory_order_relaxed);
    send(feed_atom::value, to_batch(batch));
  }

  void metadata(object metadata) override {
    send(metadata_change{std::make_shared<const object>(std::move(metadata))});
  }

  void position(std::string token) override { send(position_atom::value, std::move(token)); }

  void lost(feed_end end) override { send(closed_atom::value, std::move(end)); }

private:
  template <class... Ts> void send(Ts&&... xs) {
    send_if_alive<watcher_actor>(watcher_, std::forward<Ts>(xs)...);
  }

  caf::weak_actor_ptr watcher_;
  metrics* stats_;
};

} // namespace

watcher_actor::behavior_type watcher(watcher_actor::stateful_pointer<watcher_state> self,
                                     broker_actor broker, std::shared_ptr<change_feed> feed,
                                     std::string coll, metrics* stats) {
  // Cancelled on this actor's thread when it terminates: cancel() joins the feed's thread,
  // which must not be the thread running this (a sink call may release the last strong
  // reference to the actor, so the state's destructor is no place for it).
  self->attach_functor([feed] { feed->cancel(); });
  self->state.position = feed->position();
  feed->start(
      std::make_shared<watcher_sink>(caf::actor_cast<caf::weak_actor_ptr>(self->ctrl()), stats));
  return {
      [self](attach_atom, feed_listener_actor& s) {
        // Every event after this position reaches `s` (empty: unknown yet).
        self->send(s, position_atom::value, self->state.position);
        self->state.listeners.push_back(std::move(s));
      },
      [self](detach_atom, const feed_listener_actor& s) { std::erase(self->state.listeners, s); },
      [self](feed_atom, event_batch& batch) {
        if (batch.events && !batch.events->empty())
          if (const std::string* t = event_token(batch.events->back())) self->state.position = *t;
        for (auto& s : self->state.listeners)
          self->send(s, batch);
      },
      [self](position_atom, std::string& token) {
        if (token.empty() || token_before(token, self->state.position)) return;
        self->state.position = token;
        for (auto& s : self->state.listeners)
          self->send(s, position_atom::value, token);
      },
      [self](metadata_change& m) {
        for (auto& s : self->state.listeners)
          self->send(s, m);
      },
      [self, broker, coll](closed_atom, feed_end& end) {
        // An invalidate event already told the subscriptions; anything else is a lost feed.
        // History lost: events may have been missed, so clients must reload (4410, as for a
        // resume token that is too old).
        log::info("change feed of " + coll + " ended: " + end.reason);
        const close_reason why = close_reason::of(end);
        for (auto& s : self->state.listeners)
          self->send(s, close_atom::value, why);
        self->send(broker, retire_atom::value, watcher_actor{self});
      },
  };
}

} // namespace rheo
