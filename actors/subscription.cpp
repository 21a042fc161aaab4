#include "actors/subscription.hpp"

#include "actors/replay.hpp"
#include "actors/sink_support.hpp"
#include "config/log.hpp"
#include "net/fanout.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/push_connection.hpp"
#include "storage/document/json.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>

namespace rheo {

namespace {

using self_ptr = subscription_actor::stateful_pointer<subscription_state>;
using state = subscription_state;

/// Appends `out` (the stages' output for `event`) in `transport`'s encoding (SSE: a
/// `change` event whose id is the event's token).
void append_message(std::string& buf, std::size_t transport, const object& event,
                    const object& out) {
  static const std::string no_token;
  std::string json;
  append_json(json, out);
  const std::string* token = event_token(event);
  append_push_message(buf, static_cast<push_transport>(transport), "change",
                      token ? token : &no_token, json);
}

/// The stages' output for `event`, or null (filtered out, or a stage failed: counted).
const object* run_stages(state& st, metrics* stats, const object& event, object& scratch) {
  try {
    return st.stages.run(event, scratch);
  } catch (const pipeline_error& e) {
    stats->stage_errors.fetch_add(1, std::memory_order_relaxed);
    log::debug(std::string("stream ") + st.stream + ": event skipped: " + e.what());
    return nullptr;
  }
}

void close_all(self_ptr self, const close_reason& why) {
  auto& st = self->state;
  st.closed = true;
  const std::uint16_t code = why.code();
  const std::string text = why.text();
  for (auto& [addr, m] : st.sessions)
    self->send(m.handle, close_atom::value, code, text);
}

/// Messages for one connection alone are posted in buffers of about this size, so that a
/// long replay fills the connection's queue a part at a time: what fits under its limit is
/// delivered even when the rest makes it a slow consumer, and the client's next resume
/// starts later.
constexpr std::size_t alone_chunk_bytes = 64 * 1024;

/// Posts what `bytes` holds once it has reached alone_chunk_bytes.
void send_alone_if_full(const std::shared_ptr<push_connection>& conn, std::string& bytes,
                        std::uint32_t& count) {
  if (bytes.size() < alone_chunk_bytes) return;
  send_alone(conn, std::exchange(bytes, {}), std::exchange(count, 0));
}

/// A paced replay's part is at least this big (a connection with a tiny queue limit still
/// replays a few events per part).
constexpr std::int64_t min_replay_part_bytes = 4096;

/// After a part of `id`'s replay has been queued on its connection: once that has drained,
/// the feed goes on with the next part. One drain is asked for at a time.
void ask_for_more(self_ptr self, std::uint64_t id, state::resume& r) {
  if (std::exchange(r.drain_asked, true)) return;
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  post_when_drained(
      r.conn, [weak, id] { send_if_alive<subscription_actor>(weak, replay_atom::value, id); });
}

/// Ends the replay of `id`: the held live events after its last go out to the session
/// alone, then it joins the fan-out, and its replay feed is cancelled.
void hand_over(self_ptr self, metrics* stats, std::uint64_t id) {
  auto& st = self->state;
  auto it = st.resuming.find(id);
  if (it == st.resuming.end()) return;
  state::resume r = std::move(it->second);
  st.resuming.erase(it);
  if (r.feed) st.replays->cancel(std::move(r.feed));
  auto mit = st.sessions.find(r.handle.address());
  if (mit == st.sessions.end()) return;
  state::member& m = mit->second;
  m.replay_id = 0;
  std::string bytes;
  std::uint32_t count = 0;
  object scratch;
  for (const object* ev : r.progress.rest())
    if (const object* out = run_stages(st, stats, *ev, scratch)) {
      append_message(bytes, static_cast<std::size_t>(m.transport), *ev, *out);
      ++count;
      send_alone_if_full(r.conn, bytes, count);
    }
  send_alone(r.conn, std::move(bytes), count);
  st.listeners.join(std::move(r.conn));
}

/// A session that connected with `token`: held until its replay catches up.
void start_resume(self_ptr self, metrics* stats, state::member& m,
                  std::shared_ptr<push_connection> conn, std::string token) {
  auto& st = self->state;
  if (st.position && *st.position == token) {
    // Nothing to replay: the session is where the subscription is.
    st.listeners.join(std::move(conn));
    return;
  }
  const std::uint64_t id = st.next_replay_id++;
  m.replay_id = id;
  const auto pace = static_cast<std::size_t>(
      std::max<std::int64_t>(conn->queue_limit() / 16, min_replay_part_bytes));
  st.resuming.emplace(
      id, state::resume{m.handle, std::move(conn), handover(token, st.position), nullptr});
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  auto sink = std::make_shared<replay_sink<subscription_actor>>(weak, id, stats, pace);
  st.replays->open(
      st.db, st.coll, std::move(token), std::move(sink),
      [weak, id, pool = st.replays](std::shared_ptr<change_feed> feed) {
        if (!send_if_alive<subscription_actor>(weak, replay_atom::value, id, replay_feed{feed}))
          pool->cancel(std::move(feed));
      });
}

/// Closes resuming session `id` (its replay ended before the handover) with `why`.
void close_resuming(self_ptr self, std::uint64_t id, const close_reason& why) {
  auto& st = self->state;
  auto it = st.resuming.find(id);
  if (it == st.resuming.end()) return;
  auto& r = it->second;
  if (r.feed) st.replays->cancel(std::move(r.feed));
  session_actor handle = r.handle;
  st.resuming.erase(it);
  auto mit = st.sessions.find(handle.address());
  if (mit == st.sessions.end()) return;
  mit->second.replay_id = 0;
  self->send(handle, close_atom::value, why.code(), why.text());
}

/// SSE session `id` lost its history: it gets a `history-lost` event whose id is where the
/// stream is now, then continues live from there.
void tell_history_lost(self_ptr self, metrics* stats, std::uint64_t id, const std::string& why) {
  auto& st = self->state;
  auto& r = st.resuming.at(id);
  std::string event = "id: " + r.progress.boundary().value_or(st.position.value_or("")) +
                      "\nevent: history-lost\ndata: ";
  append_json(event, value(object{{"message", value(why)}}));
  event += "\n\n";
  send_alone(r.conn, std::move(event), 1);
  r.progress.skip_to_live(); // everything held is after the boundary
  hand_over(self, stats, id);
}

/// The replay of `id` ended before the handover: history lost (WebSocket 4410; SSE a
/// history-lost event, then live), the collection dropped, or another failure.
void replay_ended(self_ptr self, metrics* stats, std::uint64_t id, const feed_end& end) {
  auto& st = self->state;
  auto it = st.resuming.find(id);
  if (it == st.resuming.end()) return;
  auto& r = it->second;
  auto mit = st.sessions.find(r.handle.address());
  const bool history_lost = end.cause == feed_end_cause::history_lost;
  if (mit != st.sessions.end() && history_lost && mit->second.transport == push_transport::sse) {
    if (!r.progress.boundary() && !st.position) {
      // Where the stream is now is not known yet: the event waits for the watcher to tell.
      if (r.feed) st.replays->cancel(std::move(r.feed));
      r.lost_reason = end.reason;
      return;
    }
    return tell_history_lost(self, stats, id, end.reason);
  }
  switch (end.cause) {
  case feed_end_cause::history_lost:
    return close_resuming(self, id, {close_cause::history_lost, {}});
  case feed_end_cause::invalidated:
    return close_resuming(self, id, {close_cause::collection_dropped, {}});
  case feed_end_cause::failed:
    break;
  }
  close_resuming(self, id, {close_cause::cannot_resume, end.reason});
}

/// Replayed events for `id`, in commit order: sent to its session up to the live position
/// (those after it reach the subscription live too, and are sent from there).
void replayed(self_ptr self, metrics* stats, std::uint64_t id, const std::vector<object>& events) {
  auto& st = self->state;
  auto it = st.resuming.find(id);
  if (it == st.resuming.end()) return;
  auto& r = it->second;
  auto mit = st.sessions.find(r.handle.address());
  if (mit == st.sessions.end()) return;
  const auto transport = static_cast<std::size_t>(mit->second.transport);
  const handover::replay_step step = r.progress.replayed(events);
  std::string bytes;
  std::uint32_t count = 0;
  object scratch;
  for (const object* ev : step.send)
    if (const object* out = run_stages(st, stats, *ev, scratch)) {
      append_message(bytes, transport, *ev, *out);
      ++count;
      send_alone_if_full(r.conn, bytes, count);
    }
  send_alone(r.conn, std::move(bytes), count);
  if (step.ready)
    hand_over(self, stats, id);
  else
    ask_for_more(self, id, r);
}

} // namespace

subscription_state::~subscription_state() {
  for (auto& [id, r] : resuming)
    if (r.feed) replays->cancel(std::move(r.feed));
}

subscription_actor::behavior_type subscription(self_ptr self, broker_actor broker,
                                               subscription_spec spec, metrics* stats,
                                               replay_service* replays) {
  auto& st = self->state;
  st.db = std::move(spec.db);
  st.coll = std::move(spec.coll);
  st.stream = std::move(spec.stream);
  st.definition = std::move(spec.definition);
  st.stages = std::move(spec.stages);
  st.replays = replays;
  return {
      [self, stats](join_atom, session_actor& s, client_handle& h) {
        auto& st = self->state;
        if (st.closed) {
          const close_reason why{close_cause::stream_redefined, {}};
          self->send(s, close_atom::value, why.code(), why.text());
          return;
        }
        state::member m;
        m.handle = s;
        m.shard = h.conn->shard().index();
        m.transport = h.conn->transport();
        auto [it, inserted] = st.sessions.emplace(s.address(), std::move(m));
        if (!inserted) return;
        // Posted before any later batch: the connection receives every batch after this.
        if (h.resume_after && st.replays)
          start_resume(self, stats, it->second, std::move(h.conn), std::move(*h.resume_after));
        else
          st.listeners.join(std::move(h.conn));
      },
      [self](closed_atom, const session_actor& s) {
        auto& st = self->state;
        auto it = st.sessions.find(s.address());
        if (it == st.sessions.end()) return;
        if (it->second.replay_id) {
          auto r = st.resuming.find(it->second.replay_id);
          if (r != st.resuming.end()) {
            if (r->second.feed) st.replays->cancel(std::move(r->second.feed));
            st.resuming.erase(r);
          }
        } else {
          st.listeners.leave(it->second.transport, it->second.shard);
        }
        st.sessions.erase(it);
      },
      [self, broker, stats](event_batch& batch) {
        auto& st = self->state;
        if (st.closed || !batch.events || batch.events->empty()) return;
        if (const std::string* t = event_token(batch.events->back())) st.position = *t;
        const std::array<bool, 2> used{st.listeners.reaches(push_transport::websocket),
                                       st.listeners.reaches(push_transport::sse)};
        std::array<std::string, 2> bytes;
        std::uint32_t count = 0;
        object scratch;
        if (used[0] || used[1])
          for (auto& ev : *batch.events)
            if (const object* out = run_stages(st, stats, ev, scratch)) {
              for (std::size_t tr = 0; tr < 2; ++tr)
                if (used[tr]) append_message(bytes[tr], tr, ev, *out);
              ++count;
            }
        if (count)
          for (std::size_t tr = 0; tr < 2; ++tr) {
            if (!used[tr]) continue;
            st.listeners.post(static_cast<push_transport>(tr),
                              std::make_shared<const std::string>(std::move(bytes[tr])), count);
          }
        // Resuming sessions hold the batch until their replay reaches it. (After the fan-out:
        // a session handed over now must not get this batch from its group too.)
        std::vector<std::uint64_t> caught_up, too_far, lost;
        for (auto& [id, r] : st.resuming) {
          const bool ready = r.progress.hold(batch.events);
          if (r.progress.held_events() > max_held_events)
            too_far.push_back(id);
          else if (r.lost_reason)
            lost.push_back(id); // the stream's position is known now
          else if (ready)
            caught_up.push_back(id);
        }
        for (auto id : caught_up)
          hand_over(self, stats, id);
        for (auto id : lost)
          tell_history_lost(self, stats, id, *st.resuming.at(id).lost_reason);
        for (auto id : too_far)
          close_resuming(self, id, {close_cause::slow_consumer, "the replay fell too far behind"});
        if (batch.invalidates) {
          close_all(self, {close_cause::collection_dropped, {}});
          self->send(broker, retire_atom::value, subscription_actor{self});
        }
      },
      [self, stats](position_atom, std::string& token) {
        auto& st = self->state;
        if (token.empty() || (st.position && token_before(token, *st.position))) return;
        st.position = token;
        // Sessions that joined before the subscription knew where it was start here (those
        // whose history was lost meanwhile learn it now).
        std::vector<std::uint64_t> caught_up, lost;
        for (auto& [id, r] : st.resuming)
          if (r.lost_reason)
            lost.push_back(id);
          else if (r.progress.live_position(token))
            caught_up.push_back(id);
        for (auto id : caught_up)
          hand_over(self, stats, id);
        for (auto id : lost)
          tell_history_lost(self, stats, id, *st.resuming.at(id).lost_reason);
      },
      [self, stats](replay_atom, std::uint64_t id, event_batch& batch) {
        if (batch.events) replayed(self, stats, id, *batch.events);
      },
      [self, stats](replay_atom, std::uint64_t id, std::string& token) {
        auto& st = self->state;
        auto it = st.resuming.find(id);
        if (it != st.resuming.end() && it->second.progress.replay_position(token))
          hand_over(self, stats, id);
      },
      [self](replay_atom, std::uint64_t id, replay_feed& f) {
        auto& st = self->state;
        auto it = st.resuming.find(id);
        if (it == st.resuming.end()) {
          st.replays->cancel(std::move(f.feed)); // handed over (or gone) already
          return;
        }
        it->second.feed = std::move(f.feed);
        if (std::exchange(it->second.more_wanted, false)) st.replays->more(it->second.feed);
      },
      [self](replay_atom, std::uint64_t id) {
        auto& st = self->state;
        auto it = st.resuming.find(id);
        if (it == st.resuming.end()) return;
        it->second.drain_asked = false;
        if (it->second.feed)
          st.replays->more(it->second.feed);
        else
          it->second.more_wanted = true;
      },
      [self, stats](replay_end_atom, std::uint64_t id, feed_end& end) {
        replay_ended(self, stats, id, end);
      },
      [self, broker](metadata_change& m) {
        auto& st = self->state;
        if (st.closed || !m.metadata) return;
        const object* now = find_stream(*m.metadata, st.stream);
        if (now && value(*now) == value(st.definition)) return;
        close_all(self, {close_cause::stream_redefined, {}});
        self->send(broker, retire_atom::value, subscription_actor{self});
      },
      [self](close_atom, close_reason& why) { close_all(self, why); },
  };
}

} // namespace rheo
