#include "actors/watcher.hpp"

#include "config/log.hpp"
#include "net/metrics.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

#include <condition_variable>
#include <mutex>

namespace rheo {

namespace {
std::mutex feed_threads_mutex;
std::condition_variable feed_threads_cv;
int feed_threads = 0;
} // namespace

void wait_for_feed_threads() {
  std::unique_lock lock(feed_threads_mutex);
  feed_threads_cv.wait(lock, [] { return feed_threads == 0; });
}

watcher_state::watcher_state() {
  global_metrics().upstream_feeds.fetch_add(1, std::memory_order_relaxed);
}

watcher_state::~watcher_state() {
  // Not joined: the feed thread may hold the last reference to this actor, and releasing
  // it from there while we wait would deadlock. Cancelling makes it exit promptly.
  if (stop) stop->store(true);
  if (feed) feed->cancel();
  global_metrics().upstream_feeds.fetch_sub(1, std::memory_order_relaxed);
}

watcher_actor::behavior_type watcher(watcher_actor::stateful_pointer<watcher_state> self,
                                     broker_actor broker, std::shared_ptr<change_feed> feed,
                                     std::string coll) {
  auto& st = self->state;
  st.feed = feed;
  // The feed thread holds only a weak reference, so the actor can terminate; its state's
  // destructor cancels the feed and joins the thread.
  caf::weak_actor_ptr weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  {
    std::lock_guard lock(feed_threads_mutex);
    ++feed_threads;
  }
  st.stop = std::make_shared<std::atomic<bool>>(false);
  std::thread([feed, weak, coll, stop = st.stop] {
    struct done_guard {
      ~done_guard() {
        std::lock_guard lock(feed_threads_mutex);
        if (--feed_threads == 0) feed_threads_cv.notify_all();
      }
    } done;
    auto send = [&](auto&&... xs) {
      if (auto strong = weak.lock())
        caf::anon_send(caf::actor_cast<watcher_actor>(strong), std::forward<decltype(xs)>(xs)...);
    };
    try {
      for (;;) {
        auto events = feed->next(std::chrono::milliseconds(1000));
        if (stop->load()) return;
        if (events.empty()) continue;
        auto objects = std::make_shared<std::vector<object>>();
        objects->reserve(events.size());
        for (auto& e : events)
          objects->push_back(e.to_object());
        global_metrics().events_received.fetch_add(events.size(), std::memory_order_relaxed);
        send(feed_atom::value, event_batch{std::move(objects)});
      }
    } catch (const feed_lost& e) {
      send(closed_atom::value, std::string(e.what()));
    } catch (const std::exception& e) {
      log::error("change feed of " + coll + " failed: " + e.what());
      send(closed_atom::value, std::string(e.what()));
    }
  }).detach();
  return {
      [self](attach_atom, subscription_actor& s) {
        self->state.subscriptions.push_back(std::move(s));
      },
      [self](detach_atom, const subscription_actor& s) {
        std::erase(self->state.subscriptions, s);
      },
      [self](feed_atom, event_batch& batch) {
        // A metadata change is its own message, in order with the events around it.
        auto& subs = self->state.subscriptions;
        auto events = std::make_shared<std::vector<object>>();
        auto flush = [&] {
          if (events->empty()) return;
          event_batch part{std::move(events)};
          for (auto& s : subs)
            self->send(s, part);
          events = std::make_shared<std::vector<object>>();
        };
        for (auto& ev : *batch.events) {
          const value* op = find_field(ev, "operationType");
          if (op && op->is_string() && op->as_string() == "meta") {
            flush();
            const value* meta = find_field(ev, "fullDocument");
            metadata_change m{std::make_shared<const object>(
                meta && meta->is_object() ? meta->as_object() : object{})};
            for (auto& s : subs)
              self->send(s, m);
          } else {
            events->push_back(ev);
          }
        }
        flush();
      },
      [self](feed_atom, metadata_change& m) {
        for (auto& s : self->state.subscriptions)
          self->send(s, m);
      },
      [self, broker](closed_atom, std::string& reason) {
        // An invalidate event already told the subscriptions; anything else is a lost feed.
        log::info("change feed ended: " + reason);
        for (auto& s : self->state.subscriptions)
          self->send(s, close_atom::value, std::uint16_t{1011}, "change feed ended: " + reason);
        self->send(broker, retire_atom::value, watcher_actor{self});
      },
  };
}

} // namespace rheo
