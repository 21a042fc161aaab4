#include "storage/document/live_window.hpp"

#include "storage/document/change_event.hpp"
#include "storage/document/index_key.hpp"
#include "storage/document/json.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace rheo {

namespace {

/// The `_id` of `doc`, encoded so that equal ids (compare_values) give equal strings.
std::string id_key(const object& doc) {
  const value* id = find_field(doc, "_id");
  return id ? encode_key(*id) : std::string();
}

/// Whether `a` and `b` hold the same fields in the same order with identical values (1 and
/// 1.0 differ: a client would see the change).
bool same_document(const object& a, const object& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !identical(a[i].second, b[i].second)) return false;
  return true;
}

std::string_view op_name(live_op::kind k) {
  switch (k) {
  case live_op::kind::add:
    return "add";
  case live_op::kind::remove:
    return "remove";
  case live_op::kind::update:
    break;
  }
  return "update";
}

} // namespace

value live_op::to_value() const {
  object out;
  out.emplace_back("op", value(op_name(op)));
  out.emplace_back("at", value(static_cast<std::int64_t>(at)));
  if (op == kind::update) out.emplace_back("to", value(static_cast<std::int64_t>(to)));
  if (op != kind::remove && doc) out.emplace_back("doc", value(*doc));
  return value(std::move(out));
}

std::vector<live_op> diff_windows(const std::vector<const object*>& from,
                                  const std::vector<const object*>& to) {
  std::unordered_map<std::string, std::size_t> in_to;
  in_to.reserve(to.size());
  for (std::size_t j = 0; j < to.size(); ++j)
    in_to.emplace(id_key(*to[j]), j);

  std::vector<live_op> ops;
  // What the client holds as the ops apply: each element's id and document.
  struct element {
    std::string key;
    const object* doc;
  };
  std::vector<element> work;
  work.reserve(std::max(from.size(), to.size()));
  for (std::size_t i = from.size(); i-- > 0;)
    if (!in_to.count(id_key(*from[i]))) ops.push_back({live_op::kind::remove, i, 0, nullptr});
  for (const object* d : from)
    if (std::string k = id_key(*d); in_to.count(k)) work.push_back({std::move(k), d});
  // Position by position: the prefix [0, j) of the client's array is already `to`'s.
  for (std::size_t j = 0; j < to.size(); ++j) {
    std::string k = id_key(*to[j]);
    std::size_t i = j;
    while (i < work.size() && work[i].key != k)
      ++i;
    const auto at = [&](std::size_t n) { return work.begin() + static_cast<std::ptrdiff_t>(n); };
    if (i == work.size()) {
      ops.push_back({live_op::kind::add, j, 0, to[j]});
      work.insert(at(j), {std::move(k), to[j]});
      continue;
    }
    if (i == j && same_document(*work[j].doc, *to[j])) continue;
    ops.push_back({live_op::kind::update, i, j, to[j]});
    if (i != j) std::rotate(at(j), at(i), at(i) + 1);
    work[j].doc = to[j];
  }
  return ops;
}

void apply_live_ops(std::vector<object>& docs, const std::vector<live_op>& ops) {
  for (const live_op& op : ops) {
    switch (op.op) {
    case live_op::kind::add:
      if (op.at > docs.size()) throw std::out_of_range("live op: add past the end");
      docs.insert(docs.begin() + static_cast<std::ptrdiff_t>(op.at), *op.doc);
      break;
    case live_op::kind::remove:
      if (op.at >= docs.size()) throw std::out_of_range("live op: remove past the end");
      docs.erase(docs.begin() + static_cast<std::ptrdiff_t>(op.at));
      break;
    case live_op::kind::update: {
      if (op.at >= docs.size()) throw std::out_of_range("live op: update past the end");
      docs.erase(docs.begin() + static_cast<std::ptrdiff_t>(op.at));
      if (op.to > docs.size()) throw std::out_of_range("live op: update moves past the end");
      docs.insert(docs.begin() + static_cast<std::ptrdiff_t>(op.to), *op.doc);
      break;
    }
    }
  }
}

live_window::live_window(matcher filter, sort_spec order, std::size_t size, std::size_t spare)
    : filter_(std::move(filter)), order_(std::move(order)), size_(size), spare_(spare) {}

void live_window::reset(std::vector<object> docs) {
  complete_ = docs.size() < read_limit();
  if (docs.size() > read_limit()) docs.resize(read_limit());
  known_ = std::move(docs);
  ids_.clear();
  for (auto& d : known_)
    ids_.insert(id_key(d));
}

bool live_window::apply(const value& id, const object* doc) {
  std::string key = encode_key(id);
  const bool held = ids_.count(key) != 0;
  const bool matches = doc && filter_.matches(*doc);
  if (!held && !matches) return false;
  if (held) {
    auto it = std::find_if(known_.begin(), known_.end(), [&](const object& d) {
      const value* i = find_field(d, "_id");
      return i && compare_values(*i, id) == 0;
    });
    if (it != known_.end()) known_.erase(it);
    ids_.erase(key);
  }
  if (!matches) return true;
  auto pos = std::upper_bound(known_.begin(), known_.end(), *doc,
                              [this](const object& a, const object& b) { return before(a, b); });
  // After every known document while others may match: unknown ones may come between, so
  // it is not held (a read finds it in its place).
  if (pos == known_.end() && !complete_) return held;
  known_.insert(pos, *doc);
  ids_.insert(std::move(key));
  if (known_.size() > read_limit()) {
    ids_.erase(id_key(known_.back()));
    known_.pop_back();
    complete_ = false;
  }
  return true;
}

std::vector<const object*> live_window::window() const {
  std::vector<const object*> out;
  const std::size_t n = std::min(size_, known_.size());
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(&known_[i]);
  return out;
}

std::optional<live_change> live_change_of(const object& event) {
  const value* key = find_field(event, "documentKey");
  if (!key || !key->is_object()) return std::nullopt;
  const value* id = find_field(key->as_object(), "_id");
  if (!id) return std::nullopt;
  live_change c{*id, nullptr};
  // An update's fullDocument is the document looked up after it (MongoDB: null when it was
  // deleted since, as the delete event that follows will say too).
  const value* op = find_field(event, "operationType");
  const bool deleted =
      op && op->is_string() && op->as_string() == to_string(operation_type::delete_);
  if (!deleted)
    if (const value* doc = find_field(event, "fullDocument"); doc && doc->is_object())
      c.doc = &doc->as_object();
  return c;
}

live_result::live_result(matcher filter, sort_spec order, projection keys, std::size_t size,
                         std::size_t spare)
    : window_(std::move(filter), std::move(order), size, spare), keys_(std::move(keys)) {}

std::vector<live_op> live_result::read(std::vector<object> docs, std::string position) {
  window_.reset(std::move(docs));
  position_ = std::move(position);
  read_once_ = true;
  return publish();
}

std::vector<live_op> live_result::apply(const std::vector<object>& events, std::size_t* consumed) {
  std::size_t i = 0;
  bool changed = false;
  for (; i < events.size() && !needs_read(); ++i) {
    const std::string* token = event_token(events[i]);
    // What the last read already reflects.
    if (token && !position_.empty() && !token_before(position_, *token)) continue;
    if (auto c = live_change_of(events[i])) changed = window_.apply(c->id, c->doc) || changed;
    if (token) position_ = *token;
  }
  if (consumed) *consumed = i;
  if (!changed || needs_read()) return {};
  return publish();
}

std::vector<live_op> live_result::publish() {
  std::vector<object> next;
  for (const object* d : window_.window())
    next.push_back(keys_.empty() ? *d : keys_.apply(*d));
  std::vector<const object*> from, to;
  for (auto& d : result_)
    from.push_back(&d);
  for (auto& d : next)
    to.push_back(&d);
  std::vector<live_op> ops = diff_windows(from, to);
  // The ops point into `next`: it becomes the result, its documents stay where they are.
  result_ = std::move(next);
  return ops;
}

std::string live_result::init_frame() const {
  std::string out = "{\"init\":[";
  for (std::size_t i = 0; i < result_.size(); ++i) {
    if (i) out += ',';
    append_json(out, value(result_[i]));
  }
  out += "],\"token\":";
  append_json(out, value(position_));
  out += '}';
  return out;
}

std::string live_result::diff_frame(const std::vector<live_op>& ops) const {
  std::string out = "{\"diff\":[";
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (i) out += ',';
    append_json(out, ops[i].to_value());
  }
  out += "],\"token\":";
  append_json(out, value(position_));
  out += '}';
  return out;
}

} // namespace rheo
