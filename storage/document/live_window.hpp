// The evaluation behind a live query (section 10 of the contract): the first N documents of
// a query, kept equal to the collection after every change, and the ops that bring a
// client's copy of them up to date.
//
// live_window holds the first documents of the query in order (the window and a few spare
// ones after it, so that a document leaving the window is usually replaced without a read).
// A change is applied as what the collection now holds under the document's _id (the
// post-image, or nothing for a delete): a change whose document neither matches nor was
// held costs a match test and a hash lookup. When a document leaves and no spare one is
// known while more may match, the window says so (needs_read()), and its owner reads the
// query again from the store, at a position, and resets it (reset()).
//
// diff_windows() gives the ops (add, remove, update) that turn one window into the next,
// in the order a client applies them; live_result puts both together with the projection,
// the reads and the positions, and makes the frames.
//
// Thread-safety: plain values, owned by one thread at a time.
#pragma once

#include "storage/document/query.hpp"
#include "storage/document/value.hpp"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace rheo {

/// One op of a live query's `diff` frame, applied in order to the client's array:
/// add: insert `doc` at `at`; remove: erase the element at `at`; update: the element at
/// `at` is now `doc` and sits at `to` (erase at `at`, then insert at `to`).
struct live_op {
  enum class kind : std::uint8_t { add, remove, update };
  kind op = kind::add;
  std::size_t at = 0;
  std::size_t to = 0;          // update only
  const object* doc = nullptr; // add and update: points into the new window

  /// The op as the frame carries it: {"op":"add","at":i,"doc":{...}}, ...
  value to_value() const;
};

/// The ops that turn `from` into `to` (both in order, documents with distinct `_id`s):
/// removes first (from the end), then, for each position of `to` in turn, an add or an
/// update where the element there differs. Applying them to `from` gives `to` element for
/// element; nothing is sent for an element that neither changed nor moved.
std::vector<live_op> diff_windows(const std::vector<const object*>& from,
                                  const std::vector<const object*>& to);

/// A window's element for diff_windows: the document's `_id` (as encode_key gives it) and
/// what the client sees of it (a projection may hide the `_id`).
struct keyed_doc {
  std::string key;
  const object* doc = nullptr;
};
/// diff_windows() of elements whose identity is given apart from what the client sees.
std::vector<live_op> diff_windows(const std::vector<keyed_doc>& from,
                                  const std::vector<keyed_doc>& to);

/// Applies `ops` to `docs` (as a client does). Throws std::out_of_range on an index outside
/// the array. For tests and for clients written in C++.
void apply_live_ops(std::vector<object>& docs, const std::vector<live_op>& ops);

class live_window {
public:
  /// The first `size` documents matching `filter` in `order` (which ends with `_id`, so no
  /// two documents tie), with up to `spare` more held after them.
  live_window(matcher filter, sort_spec order, std::size_t size, std::size_t spare);

  /// Starts again from a read of the store: the first documents matching in order (at most
  /// read_limit() of them; fewer means they are all that match).
  void reset(std::vector<object> docs);
  /// How many documents a read for reset() asks for.
  std::size_t read_limit() const { return size_ + spare_; }

  /// The document whose `_id` is `id` is now `doc` (null: it was deleted). Returns whether
  /// the window may have changed.
  bool apply(const value& id, const object* doc);

  /// Whether the window lacks documents that the store may hold: a read and reset() are due
  /// before window() is right again.
  bool needs_read() const { return known_.size() < size_ && !complete_; }

  /// The window: the first `size` documents, in order (valid until the next change).
  std::vector<const object*> window() const;

private:
  /// Whether `a` comes before `b` in the query's order.
  bool before(const object& a, const object& b) const { return order_.compare(a, b) < 0; }

  matcher filter_;
  sort_spec order_;
  std::size_t size_;
  std::size_t spare_;
  std::vector<object> known_;           // the first matching documents, in order
  std::unordered_set<std::string> ids_; // the encoded _ids of known_ (encode_key)
  bool complete_ = false;               // no matching document follows known_
};

/// What a change event (in the shape stages see) tells a live window: the document's `_id`
/// and what the collection now holds under it (null: nothing). nullopt for an event about no
/// single document (drop, rename, invalidate).
struct live_change {
  value id;
  const object* doc = nullptr; // points into the event
};
std::optional<live_change> live_change_of(const object& event);

/// A live query's result as its clients hold it, kept current: the window of documents,
/// projected, and the position it reflects. Its owner feeds it the collection's change
/// events in commit order and the reads of the store it asks for, and sends the frames
/// (section 10 of the contract).
///
/// Reads: a read gives the query's first read_limit() documents and the position they
/// reflect; events at or before that position are skipped afterwards, those after it apply
/// on top (the owner holds the events that arrive while a read runs and passes them on
/// after it, as a resuming stream does). A read's position is an event token or a MongoDB
/// snapshot token; reflects() (change_event.hpp) tells which events it already shows.
class live_result {
public:
  /// `keys` and then `shape` (when set) project the documents the clients see.
  live_result(matcher filter, sort_spec order, projection keys, std::size_t size, std::size_t spare,
              std::optional<projection> shape = std::nullopt);

  /// A read of the store at `position`: the ops that turn the clients' result into the new
  /// one (all adds for the first read).
  std::vector<live_op> read(std::vector<object> docs, std::string position);

  /// Change events in commit order: the ops that bring the clients' result up to date (empty
  /// when nothing they see changed). Stops at the first event after which the window lacks
  /// documents the store may hold: needs_read() is then true, and the events after it (in
  /// `events`, from index *consumed on) wait for the read.
  std::vector<live_op> apply(const std::vector<object>& events, std::size_t* consumed = nullptr);

  /// A read is due before more events apply (the first one, or a refill).
  bool needs_read() const { return !read_once_ || window_.needs_read(); }
  std::size_t read_limit() const { return window_.read_limit(); }

  /// The result the clients hold after the last ops, and the position it reflects.
  const std::vector<object>& result() const { return result_; }
  const std::string& position() const { return position_; }

  /// {"init":[<doc>,...],"token":"<t>"}: the result for a client that joins now.
  std::string init_frame() const;
  /// {"diff":[<op>,...],"token":"<t>"}.
  std::string diff_frame(const std::vector<live_op>& ops) const;

private:
  /// The ops from the clients' result to the window now, which becomes their result.
  std::vector<live_op> publish();

  live_window window_;
  projection keys_;
  std::optional<projection> shape_;
  std::vector<object> result_;
  std::vector<std::string> result_keys_; // the _id of each (encode_key)
  std::string position_;
  bool read_once_ = false;
};

/// A live query's evaluation as its owner (the live_query actor) drives it: the live_result,
/// the feed's batches held while a read of the store runs, and when to read. Each call says
/// what to do next: the diff frames to send, in order, and whether to start a read (whose
/// answer goes to read()). Batches that arrive while a read runs (or before the first one)
/// are held; after the read, those it already reflects are skipped and the rest apply on
/// top, so that no commit is missed or counted twice.
class live_evaluation {
public:
  using batch = std::shared_ptr<const std::vector<object>>;
  struct frame {
    std::string token; // the position it brings the clients to
    std::string json;  // {"diff":[...],"token":...}
  };
  struct step {
    std::vector<frame> diffs;
    bool start_read = false;
  };

  explicit live_evaluation(live_result result) : result_(std::move(result)) {}

  /// The feed has told where it starts, so every commit after a read that starts now will
  /// reach events(): the first read is due.
  step attached();
  /// The feed's next batch of change events, in commit order.
  step events(batch events);
  /// The answer to the read last started: the query's first read_limit() documents and the
  /// position they reflect.
  step read(std::vector<object> docs, std::string position);

  /// Whether the result is current (no read runs or is due): a client that joins now gets
  /// init_frame() and then every diff.
  bool ready() const { return attached_ && !reading_ && held_.empty() && !result_.needs_read(); }
  /// Events held for a read.
  std::size_t held_events() const { return held_events_; }
  /// Reads after the first one (refills).
  std::size_t refills() const { return reads_ > 0 ? reads_ - 1 : 0; }
  std::size_t read_limit() const { return result_.read_limit(); }
  std::string init_frame() const { return result_.init_frame(); }
  const std::string& position() const { return result_.position(); }
  const live_result& result() const { return result_; }

private:
  /// Applies `events` and appends the frame to `out`; when a read becomes due, holds the
  /// rest of them first in line. Returns whether a read is due.
  bool apply(const batch& events, step& out);
  /// Applies what is held, until a read is due.
  void drain(step& out);
  step start_read(step out);

  live_result result_;
  std::deque<batch> held_;
  std::size_t held_events_ = 0;
  std::size_t reads_ = 0;
  bool attached_ = false;
  bool reading_ = false;
};

/// A live query as a client asked for it (GET /<coll>/_live, section 10 of the contract),
/// compiled. Clients whose specs have equal keys() share one evaluation.
struct live_query_spec {
  object filter_doc; // the `filter` parameters and the readFilter, ANDed
  matcher filter;
  object sort_doc; // ends with _id: no two documents tie
  sort_spec order;
  object keys_doc;
  projection keys;
  std::optional<object> shape_doc; // the ACL rule's projectResponse
  std::optional<projection> shape;
  std::size_t size = 100; // the window (pagesize)

  /// The spec in one string: equal for equal filters, sorts, projections and windows.
  std::string key() const;
  /// Documents read past the window, so that most documents leaving it are replaced
  /// without a read.
  std::size_t spare() const { return std::max<std::size_t>(4, size / 4); }
  /// A new evaluation of this query.
  live_evaluation evaluation() const {
    return live_evaluation(live_result(filter, order, keys, size, spare(), shape));
  }
};

} // namespace rheo
