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
// in the order a client applies them.
//
// Thread-safety: plain values, owned by one thread at a time.
#pragma once

#include "storage/document/query.hpp"
#include "storage/document/value.hpp"

#include <cstddef>
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

} // namespace rheo
