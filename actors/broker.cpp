#include "actors/broker.hpp"

#include "actors/live_query.hpp"
#include "actors/presence.hpp"
#include "actors/replay.hpp"
#include "actors/subscription.hpp"
#include "actors/watcher.hpp"
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "net/presence_directory.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

namespace rheo {

namespace {

using self_ptr = broker_actor::stateful_pointer<broker_state>;

/// New subscriptions of the watcher's collection no longer find `w` (a newer watcher of the
/// same collection keeps its place).
void forget_watcher_key(broker_state& st, const broker_state::watcher_entry& w) {
  if (auto k = st.watchers_by_key.find(w.key);
      k != st.watchers_by_key.end() && k->second == w.handle)
    st.watchers_by_key.erase(k);
}

/// One user (subscription or listener) of `w` less: stops it when it was the last.
void release_watcher(self_ptr self, const watcher_actor& w) {
  auto& st = self->state;
  auto wit = st.watchers.find(w.address());
  if (wit == st.watchers.end() || --wit->second.users > 0) return;
  forget_watcher_key(st, wit->second);
  self->send_exit(wit->second.handle, caf::exit_reason::user_shutdown);
  st.watchers.erase(wit);
}

/// Removes a session; tears down its subscription when it was the last one, and the
/// subscription's watcher when that was its last subscription.
void remove_session(self_ptr self, const caf::actor_addr& session) {
  auto& st = self->state;
  auto it = st.session_to_subscription.find(session);
  if (it == st.session_to_subscription.end()) return;
  auto sub_addr = it->second;
  st.session_to_subscription.erase(it);
  auto sit = st.subscriptions.find(sub_addr);
  if (sit == st.subscriptions.end()) return;
  auto& entry = sit->second;
  self->send(entry.handle, closed_atom::value, caf::actor_cast<session_actor>(session));
  if (--entry.sessions > 0) return;
  // Last session gone: stop the subscription.
  if (auto k = st.subscriptions_by_key.find(entry.key);
      k != st.subscriptions_by_key.end() && k->second == entry.handle)
    st.subscriptions_by_key.erase(k);
  if (!entry.live_collection.empty())
    if (auto l = st.live_queries.find(entry.live_collection);
        l != st.live_queries.end() && --l->second == 0)
      st.live_queries.erase(l);
  self->send(entry.watcher, detach_atom::value, feed_listener_actor{entry.handle});
  self->send_exit(entry.handle, caf::exit_reason::user_shutdown);
  release_watcher(self, entry.watcher);
  st.subscriptions.erase(sit);
}

/// Removes a listener attached with watch_atom.
void remove_listener(self_ptr self, const caf::actor_addr& listener) {
  auto& st = self->state;
  auto it = st.listeners.find(listener);
  if (it == st.listeners.end()) return;
  watcher_actor w = std::move(it->second);
  st.listeners.erase(it);
  self->send(w, detach_atom::value, caf::actor_cast<feed_listener_actor>(listener));
  release_watcher(self, w);
}

/// The watcher of db.coll (`key`, db + '\0' + coll), opening its feed when there is none;
/// null with the error when the feed cannot be opened.
watcher_actor watcher_for(self_ptr self, const std::string& db, const std::string& coll,
                          caf::error& err) {
  auto& st = self->state;
  std::string wkey = db + '\0' + coll;
  if (auto wit = st.watchers_by_key.find(wkey); wit != st.watchers_by_key.end()) return wit->second;
  // Open the feed here, synchronously: its position is fixed before we reply, so every
  // event committed after the client's handshake reaches it.
  std::shared_ptr<change_feed> feed;
  try {
    feed = st.storage->watch(db, coll, std::nullopt);
  } catch (const std::exception& e) {
    err = caf::make_error(caf::sec::runtime_error,
                          std::string("cannot watch ") + coll + ": " + e.what());
    return {};
  }
  auto w = counted(self->spawn(watcher, broker_actor{self}, std::move(feed), coll, st.stats),
                   st.stats->upstream_feeds);
  st.watchers_by_key[wkey] = w;
  st.watchers[w.address()] = {w, 0, std::move(wkey)};
  return w;
}

/// Joins `session` to the presence of its stream (spawning the stream's presence actor).
void join_presence(self_ptr self, const session_actor& session, const std::string& key,
                   presence_join join, std::shared_ptr<push_connection> conn) {
  auto& st = self->state;
  if (!st.options.presence) return;
  auto& entry = st.presences[key];
  if (!entry.handle)
    entry.handle = caf::actor_cast<caf::actor>(
        self->spawn(presence, key, caf::actor_cast<presence_link_actor>(st.options.presence),
                    st.stats, st.options.presence_interval));
  ++entry.sessions;
  st.session_to_presence[session.address()] = key;
  const bool needs_conn = join.events || join.broadcasts;
  if (join.broadcasts) self->send(session, hub_atom::value, entry.handle);
  self->send(caf::actor_cast<presence_actor>(entry.handle), join_atom::value, session,
             std::move(join), client_handle{needs_conn ? std::move(conn) : nullptr, {}});
}

/// `session` has gone: it leaves its stream's presence (stopped when nobody is left).
void leave_presence(self_ptr self, const caf::actor_addr& session) {
  auto& st = self->state;
  auto it = st.session_to_presence.find(session);
  if (it == st.session_to_presence.end()) return;
  auto entry = st.presences.find(it->second);
  st.session_to_presence.erase(it);
  if (entry == st.presences.end()) return;
  auto handle = caf::actor_cast<presence_actor>(entry->second.handle);
  self->send(handle, closed_atom::value, caf::actor_cast<session_actor>(session));
  if (--entry->second.sessions > 0) return;
  self->send_exit(handle, caf::exit_reason::user_shutdown);
  st.presences.erase(entry);
}

/// A new subscription, or live query, for `spec`; null with `err` set when the collection
/// has as many live queries as it may.
subscription_actor spawn_for(self_ptr self, subscription_spec& spec, caf::error& err) {
  auto& st = self->state;
  if (!spec.live)
    return counted(
        self->spawn(subscription, broker_actor{self}, std::move(spec), st.stats, st.replays),
        st.stats->subscriptions);
  if (!st.replays) {
    err = caf::make_error(caf::sec::runtime_error, "live queries are not available");
    return {};
  }
  std::size_t& running = st.live_queries[spec.db + '\0' + spec.coll];
  if (running >= st.options.max_live_queries) {
    err = caf::make_error(
        caf::sec::invalid_argument,
        "collection '" + spec.coll + "' has " + std::to_string(running) +
            " live queries, the most it may have (max_live_queries_per_collection)");
    st.stats->count_refusal(limit::live_queries_per_collection);
    return {};
  }
  ++running;
  return counted(self->spawn(live_query, broker_actor{self}, std::move(spec), st.stats, st.replays),
                 st.stats->live_queries);
}

} // namespace

broker_actor::behavior_type broker(self_ptr self, store* storage, metrics* stats,
                                   replay_service* replays, broker_options options) {
  self->state.options = options;
  self->state.storage = storage;
  self->state.stats = stats;
  self->state.replays = replays;
  self->set_down_handler([self](caf::down_msg& dm) {
    leave_presence(self, dm.source);
    remove_session(self, dm.source);
    remove_listener(self, dm.source);
  });
  return {
      [self](subscribe_atom, session_actor& session, client_handle& conn,
             subscription_spec& spec) -> caf::result<subscription_actor> {
        auto& st = self->state;
        // Taken before the spec goes to a new subscription.
        std::optional<presence_join> presence = std::move(spec.presence);
        const std::string presence_key =
            presence ? presence_directory::key(spec.db, spec.coll, spec.stream) : std::string();
        subscription_actor sub;
        if (auto it = st.subscriptions_by_key.find(spec.key); it != st.subscriptions_by_key.end()) {
          sub = it->second;
        } else {
          caf::error err;
          watcher_actor w = watcher_for(self, spec.db, spec.coll, err);
          if (!w) return err;
          std::string key = spec.key;
          std::string live_collection = spec.live ? spec.db + '\0' + spec.coll : std::string();
          st.watchers[w.address()].users++;
          sub = spawn_for(self, spec, err);
          if (!sub) {
            release_watcher(self, w);
            return err;
          }
          st.subscriptions_by_key[key] = sub;
          st.subscriptions[sub.address()] = {sub, std::move(key), w, 0, std::move(live_collection)};
          self->send(w, attach_atom::value, feed_listener_actor{sub});
        }
        st.subscriptions[sub.address()].sessions++;
        st.session_to_subscription[session.address()] = sub.address();
        self->monitor(session);
        if (presence) join_presence(self, session, presence_key, std::move(*presence), conn.conn);
        // The join is in the subscription's mailbox before the session learns it joined.
        self->send(sub, join_atom::value, session, std::move(conn));
        return sub;
      },
      [self](watch_atom, const std::string& db, const std::string& coll,
             feed_listener_actor& listener) -> caf::result<watcher_actor> {
        auto& st = self->state;
        caf::error err;
        watcher_actor w = watcher_for(self, db, coll, err);
        if (!w) return err;
        st.watchers[w.address()].users++;
        st.listeners[listener.address()] = w;
        self->monitor(listener);
        self->send(w, attach_atom::value, listener);
        return w;
      },
      [self](retire_atom, const subscription_actor& sub) {
        auto& st = self->state;
        auto it = st.subscriptions.find(sub.address());
        if (it == st.subscriptions.end()) return;
        if (auto k = st.subscriptions_by_key.find(it->second.key);
            k != st.subscriptions_by_key.end() && k->second == sub)
          st.subscriptions_by_key.erase(k);
      },
      [self](retire_atom, const watcher_actor& w) {
        auto& st = self->state;
        auto it = st.watchers.find(w.address());
        if (it == st.watchers.end()) return;
        forget_watcher_key(st, it->second);
        // Its subscriptions can no longer receive events: new sessions get new ones.
        for (auto sit = st.subscriptions_by_key.begin(); sit != st.subscriptions_by_key.end();) {
          auto e = st.subscriptions.find(sit->second.address());
          if (e != st.subscriptions.end() && e->second.watcher == w)
            sit = st.subscriptions_by_key.erase(sit);
          else
            ++sit;
        }
      },
  };
}

} // namespace rheo
