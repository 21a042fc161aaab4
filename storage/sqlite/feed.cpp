#include "storage/sqlite/feed.hpp"

#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/core.hpp"

namespace rheo::sqlite {

namespace {

/// The parts a catch-up is read in: a paced one's bytes come from its sink.
constexpr std::size_t part_events = 1000;
constexpr std::size_t unpaced_part_bytes = 4 << 20;

} // namespace

std::size_t sqlite_feed_state::push(std::vector<change_event>& events) {
  std::vector<change_event> batch;
  std::size_t delivered = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    delivered += batch.size();
    sink->events(std::exchange(batch, {}));
  };
  for (auto& ev : events) {
    if (ended) return delivered;
    if (ev.seq <= last_seq) continue;
    last_seq = ev.seq;
    if (ev.operation == operation_type::meta) {
      flush();
      sink->metadata(ev.full_document ? std::move(*ev.full_document) : object{});
      continue;
    }
    const bool invalidate = ev.operation == operation_type::invalidate;
    batch.push_back(std::move(ev));
    if (invalidate) {
      // As MongoDB: a dropped collection ends its change streams.
      flush();
      end({feed_end_cause::invalidated, "collection " + coll + " dropped (invalidated)"});
      return delivered;
    }
  }
  flush();
  return delivered;
}

void sqlite_feed_state::end(feed_end why) {
  if (ended) return;
  // A paced catch-up that waits for more() ends now: nothing else would deliver it.
  if ((buffering && !waiting) || !sink) {
    if (!lost) lost = std::move(why);
    return;
  }
  ended = true;
  held.clear();
  auto s = std::move(sink);
  s->lost(std::move(why));
}

void sqlite_feed::start(std::shared_ptr<feed_sink> sink) {
  auto& st = *state_;
  {
    std::lock_guard lk(st.mu);
    if (st.ended || st.sink) return; // cancelled, or started already
    st.sink = std::move(sink);
    st.pace_bytes = st.sink->catch_up_bytes();
    if (st.lost) {
      // A malformed token, or the store closed before the start.
      st.buffering = false;
      st.end(*std::exchange(st.lost, std::nullopt));
      return;
    }
    if (!st.resume) {
      // From the registration on: the events committed since then, then live.
      st.buffering = false;
      auto held = std::exchange(st.held, {});
      st.push(held);
      if (st.lost) st.end(*std::exchange(st.lost, std::nullopt)); // the store closed meanwhile
      return;
    }
    st.last_seq = *std::exchange(st.resume, std::nullopt);
  }
  catch_up();
}

void sqlite_feed::catch_up() {
  auto& st = *state_;
  std::uint64_t after;
  page_limit limit{part_events, unpaced_part_bytes};
  {
    std::lock_guard lk(st.mu);
    after = st.last_seq;
    if (st.pace_bytes) limit.bytes = st.pace_bytes;
  }
  for (;;) {
    // A part of the log after the token, read while the writer holds (or drops) live events.
    change_page part;
    std::optional<feed_end> history_lost;
    if (auto owner = core_.lock()) {
      try {
        core::reader r(*owner);
        part = read_changes_after(*r, st.db, st.coll, after, history_lost, limit);
      } catch (const std::exception& e) {
        history_lost = feed_end{feed_end_cause::failed, e.what()}; // "store closed", an I/O error
      }
    } else {
      history_lost = feed_end{feed_end_cause::failed, "store closed"};
    }
    std::lock_guard lk(st.mu);
    if (st.ended) return; // cancelled meanwhile
    if (history_lost) {
      st.buffering = false;
      st.end(*history_lost);
      return;
    }
    if (!part.complete || !st.holding) {
      // More to read: the live events committed meanwhile are in the log too, so they are
      // not held until the last part (which is read again once they are).
      const bool last_read = part.complete;
      const std::size_t delivered = st.push(part.events);
      if (st.ended) return;
      st.holding = last_read;
      st.held.clear();
      after = st.last_seq;
      if (!last_read && st.pace_bytes && delivered && !std::exchange(st.credit, false)) {
        st.waiting = true;
        return;
      }
      continue;
    }
    // The last part: it, then the live events held meanwhile (those also in the part are
    // dropped by seq), and the feed is live.
    st.buffering = false;
    st.push(part.events);
    auto held = std::exchange(st.held, {});
    st.push(held);
    if (st.lost) {
      st.end(*std::exchange(st.lost, std::nullopt)); // the store closed meanwhile
      return;
    }
    // Every change of the collection up to the snapshot's newest entry (of any collection)
    // has been delivered, and the held ones after it too.
    if (!st.ended) st.sink->position(token_from_seq(std::max(part.newest, st.last_seq)));
    return;
  }
}

void sqlite_feed::more() {
  {
    std::lock_guard lk(state_->mu);
    if (state_->ended || !state_->buffering || !state_->sink) return;
    if (!state_->waiting) {
      state_->credit = true; // a part is under way: the next one follows it at once
      return;
    }
    state_->waiting = false;
  }
  catch_up();
}

std::string sqlite_feed::position() const {
  std::lock_guard lk(state_->mu);
  return token_from_seq(state_->start_seq);
}

void sqlite_feed::cancel() {
  {
    std::lock_guard lk(state_->mu);
    state_->ended = true;
    state_->held.clear();
    state_->sink.reset();
  }
  if (auto owner = core_.lock()) owner->unregister_feed(state_.get());
}

} // namespace rheo::sqlite
