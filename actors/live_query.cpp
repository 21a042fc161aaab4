#include "actors/live_query.hpp"

#include "actors/handover.hpp"
#include "actors/replay.hpp"
#include "actors/sink_support.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/push_connection.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

namespace rheo {

namespace {

using self_ptr = live_query_actor::stateful_pointer<live_query_state>;
using state = live_query_state;

void close_all(self_ptr self, const close_reason& why) {
  auto& st = self->state;
  if (!st.closed) st.closed = why;
  for (auto& [addr, m] : st.sessions)
    self->send(m.handle, close_atom::value, why.code(), why.text());
}

/// Closes every session and tells the broker: new clients get a new evaluation.
void end(self_ptr self, const broker_actor& broker, const close_reason& why) {
  close_all(self, why);
  self->send(broker, retire_atom::value, subscription_actor{self});
}

/// Sessions that joined before the result was ready get the init frame, then join.
void admit_waiting(self_ptr self) {
  auto& st = self->state;
  std::optional<std::string> frame;
  for (auto& [addr, m] : st.sessions) {
    if (!m.waiting) continue;
    if (!frame) {
      frame = st.eval->init_frame(); // built once for every client that joins now
      st.stats->live_frames.fetch_add(1, std::memory_order_relaxed);
    }
    std::string bytes;
    append_push_message(bytes, m.transport, "init", &st.eval->position(), *frame);
    send_alone(m.waiting, std::move(bytes), 1);
    st.listeners.join(std::move(m.waiting));
    m.waiting = nullptr;
  }
}

/// Does what the evaluation's `step` says: sends its diff frames to every joined session,
/// starts the read it asks for (the answer comes as read_atom); then, once the result is
/// current, lets in the sessions that wait for it.
void follow(self_ptr self, live_evaluation::step step) {
  auto& st = self->state;
  if (st.listeners.reaches(push_transport::websocket) || st.listeners.reaches(push_transport::sse))
    for (auto& f : step.diffs) {
      st.stats->live_frames.fetch_add(1, std::memory_order_relaxed);
      st.listeners.post_message("diff", &f.token, f.json);
    }
  if (step.start_read) {
    if (st.eval->refills() > 0) st.stats->live_refills.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t id = ++st.read_id;
    find_query q;
    q.filter = st.spec->filter;
    q.filter_doc = st.spec->filter_doc;
    q.sort = st.spec->order;
    q.sort_doc = st.spec->sort_doc;
    q.limit = static_cast<std::int64_t>(st.eval->read_limit());
    auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
    st.replays->read(st.db, st.coll, std::move(q), [weak, id](store_read r) {
      send_if_alive<live_query_actor>(weak, read_atom::value, id, std::move(r));
    });
  }
  if (st.eval->ready()) admit_waiting(self);
}

} // namespace

live_query_actor::behavior_type live_query(self_ptr self, broker_actor broker,
                                           subscription_spec spec, metrics* stats,
                                           replay_service* replays) {
  auto& st = self->state;
  st.db = std::move(spec.db);
  st.coll = std::move(spec.coll);
  st.spec = std::move(spec.live);
  st.eval = st.spec->evaluation();
  st.stats = stats;
  st.replays = replays;
  return {
      [self](join_atom, session_actor& s, client_handle& h) {
        auto& st = self->state;
        if (st.closed) {
          self->send(s, close_atom::value, st.closed->code(), st.closed->text());
          return;
        }
        state::member m;
        m.handle = s;
        m.shard = h.conn->shard().index();
        m.transport = h.conn->transport();
        // A resume token asks for a fresh init: every client gets one.
        m.waiting = std::move(h.conn);
        if (!st.sessions.emplace(s.address(), std::move(m)).second) return;
        if (st.eval->ready()) admit_waiting(self);
      },
      [self](closed_atom, const session_actor& s) {
        auto& st = self->state;
        auto it = st.sessions.find(s.address());
        if (it == st.sessions.end()) return;
        if (!it->second.waiting) st.listeners.leave(it->second.transport, it->second.shard);
        st.sessions.erase(it);
      },
      [self, broker](event_batch& batch) {
        auto& st = self->state;
        if (st.closed || !batch.events || batch.events->empty()) return;
        if (batch.invalidates) return end(self, broker, {close_cause::collection_dropped, {}});
        follow(self, st.eval->events(std::move(batch.events)));
        if (st.eval->held_events() > max_held_events)
          end(self, broker,
              {close_cause::slow_consumer, "the live query's read fell too far behind"});
      },
      [self](position_atom, std::string&) {
        // The feed is attached: every commit after a read that starts now reaches us.
        auto& st = self->state;
        if (!st.closed) follow(self, st.eval->attached());
      },
      [self, broker](read_atom, std::uint64_t id, store_read& r) {
        auto& st = self->state;
        if (st.closed || id != st.read_id) return;
        if (r.error)
          return end(self, broker, {close_cause::feed_ended, "cannot read the query: " + *r.error});
        follow(self, st.eval->read(std::move(r.docs), std::move(r.position)));
      },
      // Resuming sessions get a fresh init: no replays.
      [](replay_atom, std::uint64_t, event_batch&) {},
      [](replay_atom, std::uint64_t, std::string&) {},
      [self](replay_atom, std::uint64_t, replay_feed& f) {
        self->state.replays->cancel(std::move(f.feed));
      },
      [](replay_end_atom, std::uint64_t, feed_end&) {},
      [](replay_atom, std::uint64_t) {},
      // Stream definitions do not concern a live query.
      [](metadata_change&) {},
      [self](close_atom, close_reason& why) { close_all(self, why); },
  };
}

} // namespace rheo
