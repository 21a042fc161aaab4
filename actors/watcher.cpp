#include "actors/watcher.hpp"

#include "actors/sink_support.hpp"
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

#include <mutex>
#include <vector>

namespace rheo {

/// The sink of a watcher's feed, and the list of its listeners: each batch the store
/// commits is made once into an immutable event_batch and enqueued, by reference, in the
/// mailbox of every listener, on the store's thread (no relay through the watcher).
///
/// Thread-safety: the feed calls it on a store thread (one call at a time), the watcher
/// actor attaches and detaches listeners from its own. `mu_` guards the listeners, the
/// position and the end; every message to a listener is enqueued under it, so a listener
/// gets its starting position before the first event after it, and no event twice or out of
/// order (CAF keeps a mailbox's order of enqueueing). Never blocks on an actor: anon_send
/// only enqueues.
class watcher_sink final : public feed_sink {
public:
  watcher_sink(caf::weak_actor_ptr watcher, std::string position, metrics* stats)
      : watcher_(std::move(watcher)), stats_(stats), position_(std::move(position)) {}

  /// Every event after the current position reaches `l`, which is told that position first
  /// (empty: unknown yet); after the feed's end, `l` is told the end at once.
  void attach(feed_listener_actor l) {
    std::lock_guard lk(mu_);
    if (end_) {
      caf::anon_send(l, close_atom::value, *end_);
      return;
    }
    caf::anon_send(l, position_atom::value, position_);
    listeners_.push_back(std::move(l));
  }

  void detach(const feed_listener_actor& l) {
    std::lock_guard lk(mu_);
    std::erase(listeners_, l);
  }

  void events(std::vector<change_event> batch) override { send(to_batch(std::move(batch))); }

  void shaped_events(std::shared_ptr<const std::vector<object>> batch) override {
    send(to_batch(std::move(batch)));
  }

  void metadata(object metadata) override {
    metadata_change m{std::make_shared<const object>(std::move(metadata))};
    std::lock_guard lk(mu_);
    for (auto& l : listeners_)
      caf::anon_send(l, m);
  }

  void position(std::string token) override {
    std::lock_guard lk(mu_);
    if (token.empty() || token_before(token, position_)) return;
    position_ = token;
    for (auto& l : listeners_)
      caf::anon_send(l, position_atom::value, token);
  }

  void lost(feed_end end) override {
    {
      // An invalidate event already told the subscriptions; anything else is a lost feed.
      // History lost: events may have been missed, so clients must reload (4410, as for a
      // resume token that is too old).
      std::lock_guard lk(mu_);
      end_ = close_reason::of(end);
      for (auto& l : listeners_)
        caf::anon_send(l, close_atom::value, *end_);
      listeners_.clear();
    }
    send_if_alive<watcher_actor>(watcher_, closed_atom::value, std::move(end));
  }

private:
  void send(event_batch batch) {
    if (!batch.events || batch.events->empty()) return;
    stats_->events_received.fetch_add(batch.events->size(), std::memory_order_relaxed);
    std::lock_guard lk(mu_);
    if (const std::string* t = event_token(batch.events->back())) position_ = *t;
    for (auto& l : listeners_)
      caf::anon_send(l, batch);
  }

  caf::weak_actor_ptr watcher_;
  metrics* stats_;
  std::mutex mu_;
  std::vector<feed_listener_actor> listeners_;
  /// What has been sent so far, as a resume token: the feed's start, then the last event's
  /// token or the last position the feed told. Empty when unknown.
  std::string position_;
  std::optional<close_reason> end_;
};

watcher_actor::behavior_type watcher(watcher_actor::stateful_pointer<watcher_state> self,
                                     broker_actor broker, std::shared_ptr<change_feed> feed,
                                     std::string coll, metrics* stats) {
  // Cancelled on this actor's thread when it terminates: cancel() joins the feed's thread,
  // which must not be the thread running this (a sink call may release the last strong
  // reference to the actor, so the state's destructor is no place for it).
  self->attach_functor([feed] { feed->cancel(); });
  self->state.sink = std::make_shared<watcher_sink>(
      caf::actor_cast<caf::weak_actor_ptr>(self->ctrl()), feed->position(), stats);
  feed->start(self->state.sink);
  return {
      [self](attach_atom, feed_listener_actor& s) { self->state.sink->attach(std::move(s)); },
      [self](detach_atom, const feed_listener_actor& s) { self->state.sink->detach(s); },
      [self, broker, coll](closed_atom, feed_end& end) {
        // The sink has told the listeners; new subscriptions need a new watcher.
        log::info("change feed of " + coll + " ended: " + end.reason);
        self->send(broker, retire_atom::value, watcher_actor{self});
      },
  };
}

} // namespace rheo
