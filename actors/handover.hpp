// The hand-over from a replay to the live feed: a consumer that resumes from a token (a
// resuming session of a subscription, an edge's feed followed by a core's relay, a live
// query) gets the events after its token from a replay feed of its own while the live
// batches that reach it meanwhile are held here. Once the replay has reached the live
// position (the live feed's position when the consumer joined, or the first held event),
// the consumer gets the held events after the replay's last, in order, and continues live:
// no event is skipped or repeated across the hand-over (events are ordered by token,
// token_before).
//
// Thread-safety: a plain value, owned by one actor (used only by its behavior).
#pragma once

#include "storage/document/value.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rheo {

/// Live events a consumer may have held for it (a resuming session, a live query during a
/// read of the store) before it is closed as a slow consumer: it is that far behind.
inline constexpr std::size_t max_held_events = 10000;

class handover {
public:
  /// A batch of live events in commit order, in the shape stages see (event_batch::events).
  using batch = std::shared_ptr<const std::vector<object>>;

  /// What the replay's events give the consumer: the events it sends (in order, pointing
  /// into the replayed batch), and whether the hand-over is due after them.
  struct replay_step {
    std::vector<const object*> send;
    bool ready = false;
  };

  /// A consumer that has every change up to `token` (an event token; otherwise, e.g. a
  /// snapshot token, the replay tells where it starts) and joined while the live feed was at
  /// `boundary` (nullopt: not known yet; live_position() tells it).
  handover(const std::string& token, std::optional<std::string> boundary);

  /// A live batch: held until the hand-over. Returns ready().
  bool hold(batch live);
  /// The live events held so far (for the owner's limit).
  std::size_t held_events() const { return held_events_; }

  /// The live feed's position when it was not known at the join: the boundary, unless live
  /// events arrived first (they mark the live position then). Returns ready().
  bool live_position(const std::string& token);

  /// Replayed events, in commit order: those the consumer lacks before the live position
  /// (after the replay's last; events past it come live). The replay has spoken: the store
  /// took the token.
  replay_step replayed(const std::vector<object>& events);
  /// The replay has reached `token` without an event. Returns ready().
  bool replay_position(const std::string& token);

  /// Whether the replay has spoken and reached the live position: hand over now.
  bool ready() const;

  /// The history before the live position is lost: the consumer skips to it, so every held
  /// event follows (ready() does not change; the owner hands over at once).
  void skip_to_live() { last_.reset(); }

  /// The held events the consumer still lacks (after the replay's last), in order: what it
  /// gets at the hand-over, before it continues live. Pointers into the held batches, valid
  /// while this object lives.
  std::vector<const object*> rest() const;

  /// The live position at the join, if known.
  const std::optional<std::string>& boundary() const { return boundary_; }
  /// Every change up to this token has been given to the consumer, if known.
  const std::optional<std::string>& last() const { return last_; }

private:
  /// The token of the first held event, or null.
  const std::string* first_held() const;
  /// Whether `token` is at or before the consumer's position.
  bool given(const std::string& token) const;

  std::optional<std::string> last_;
  std::optional<std::string> boundary_;
  std::vector<batch> held_;
  std::size_t held_events_ = 0;
  bool confirmed_ = false; // the replay has spoken: the store accepted the token
};

} // namespace rheo
