#include "storage/sqlite/feed.hpp"

#include "storage/sqlite/change_log.hpp"
#include "storage/sqlite/core.hpp"

namespace rheo::sqlite {

void sqlite_feed_state::push(std::vector<change_event>& events) {
  std::vector<change_event> batch;
  auto flush = [&] {
    if (!batch.empty()) sink->events(std::exchange(batch, {}));
  };
  for (auto& ev : events) {
    if (ended) return;
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
      return;
    }
  }
  flush();
}

void sqlite_feed_state::end(feed_end why) {
  if (ended) return;
  if (buffering || !sink) {
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
  std::optional<std::uint64_t> resume;
  {
    std::lock_guard lk(st.mu);
    if (st.ended || st.sink) return; // cancelled, or started already
    st.sink = std::move(sink);
    if (st.lost) {
      // A malformed token, or the store closed before the start.
      st.buffering = false;
      st.end(*std::exchange(st.lost, std::nullopt));
      return;
    }
    resume = std::exchange(st.resume, std::nullopt);
  }
  // Catch-up: the log after the token, read while the writer keeps holding live events.
  std::vector<change_event> missed;
  std::optional<feed_end> history_lost;
  std::uint64_t newest = 0;
  if (resume) {
    if (auto owner = core_.lock()) {
      try {
        core::reader r(*owner);
        missed = read_changes_after(*r, st.db, st.coll, *resume, history_lost, newest);
      } catch (const std::exception& e) {
        history_lost = feed_end{feed_end_cause::failed, e.what()}; // "store closed", an I/O error
      }
    } else {
      history_lost = feed_end{feed_end_cause::failed, "store closed"};
    }
  }
  std::lock_guard lk(st.mu);
  if (st.ended) return; // cancelled meanwhile
  st.buffering = false;
  if (history_lost) {
    st.end(*history_lost);
    return;
  }
  if (resume) st.last_seq = *resume;
  // The caught-up events first, then the live ones held meanwhile; those also in the log
  // snapshot are dropped by seq.
  st.push(missed);
  auto held = std::exchange(st.held, {});
  st.push(held);
  if (st.lost) {
    st.end(*std::exchange(st.lost, std::nullopt)); // the store closed meanwhile
    return;
  }
  // Every change of the collection up to the snapshot's newest entry (of any collection)
  // has been delivered, and the held ones after it too.
  if (resume && !st.ended) st.sink->position(token_from_seq(std::max(newest, st.last_seq)));
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
