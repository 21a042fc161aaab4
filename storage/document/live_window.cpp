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
  auto keyed = [](const std::vector<const object*>& docs) {
    std::vector<keyed_doc> out;
    out.reserve(docs.size());
    for (const object* d : docs)
      out.push_back({id_key(*d), d});
    return out;
  };
  return diff_windows(keyed(from), keyed(to));
}

std::vector<live_op> diff_windows(const std::vector<keyed_doc>& from,
                                  const std::vector<keyed_doc>& to) {
  std::unordered_map<std::string_view, std::size_t> in_to;
  in_to.reserve(to.size());
  for (std::size_t j = 0; j < to.size(); ++j)
    in_to.emplace(to[j].key, j);

  std::vector<live_op> ops;
  // What the client holds as the ops apply: each element's id and document.
  std::vector<keyed_doc> work;
  work.reserve(std::max(from.size(), to.size()));
  for (std::size_t i = from.size(); i-- > 0;)
    if (!in_to.count(from[i].key)) ops.push_back({live_op::kind::remove, i, 0, nullptr});
  for (const keyed_doc& e : from)
    if (in_to.count(e.key)) work.push_back(e);
  // Position by position: the prefix [0, j) of the client's array is already `to`'s.
  for (std::size_t j = 0; j < to.size(); ++j) {
    const std::string& k = to[j].key;
    std::size_t i = j;
    while (i < work.size() && work[i].key != k)
      ++i;
    const auto at = [&](std::size_t n) { return work.begin() + static_cast<std::ptrdiff_t>(n); };
    if (i == work.size()) {
      ops.push_back({live_op::kind::add, j, 0, to[j].doc});
      work.insert(at(j), to[j]);
      continue;
    }
    if (i == j && same_document(*work[j].doc, *to[j].doc)) continue;
    ops.push_back({live_op::kind::update, i, j, to[j].doc});
    if (i != j) std::rotate(at(j), at(i), at(i) + 1);
    work[j].doc = to[j].doc;
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
                         std::size_t spare, std::optional<projection> shape)
    : window_(std::move(filter), std::move(order), size, spare), keys_(std::move(keys)),
      shape_(std::move(shape)) {}

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
    if (token && reflects(position_, *token)) continue;
    if (auto c = live_change_of(events[i])) changed = window_.apply(c->id, c->doc) || changed;
    if (token) position_ = *token;
  }
  if (consumed) *consumed = i;
  if (!changed || needs_read()) return {};
  return publish();
}

std::vector<live_op> live_result::publish() {
  // What the clients see of each document (projected: it may not show the _id), and its _id.
  std::vector<object> next;
  std::vector<std::string> next_keys;
  for (const object* d : window_.window()) {
    object seen = keys_.empty() ? *d : keys_.apply(*d);
    next.push_back(shape_ ? shape_->apply(seen) : std::move(seen));
    next_keys.push_back(id_key(*d));
  }
  std::vector<keyed_doc> from, to;
  for (std::size_t i = 0; i < result_.size(); ++i)
    from.push_back({result_keys_[i], &result_[i]});
  for (std::size_t i = 0; i < next.size(); ++i)
    to.push_back({next_keys[i], &next[i]});
  std::vector<live_op> ops = diff_windows(from, to);
  // The ops point into `next`: it becomes the result, its documents stay where they are.
  result_ = std::move(next);
  result_keys_ = std::move(next_keys);
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

live_evaluation::step live_evaluation::attached() {
  if (attached_) return {};
  attached_ = true;
  return start_read({});
}

live_evaluation::step live_evaluation::events(batch events) {
  step out;
  if (!events || events->empty()) return out;
  if (!ready()) {
    held_events_ += events->size();
    held_.push_back(std::move(events));
    return out;
  }
  if (apply(events, out)) return start_read(std::move(out));
  return out;
}

live_evaluation::step live_evaluation::read(std::vector<object> docs, std::string position) {
  step out;
  if (!reading_) return out;
  reading_ = false;
  auto ops = result_.read(std::move(docs), std::move(position));
  // After the first read clients join with the init frame: nobody holds a result before it.
  if (!ops.empty() && reads_ > 1)
    out.diffs.push_back({result_.position(), result_.diff_frame(ops)});
  drain(out);
  if (result_.needs_read()) return start_read(std::move(out));
  return out;
}

bool live_evaluation::apply(const batch& events, step& out) {
  std::size_t consumed = 0;
  auto ops = result_.apply(*events, &consumed);
  if (!ops.empty()) out.diffs.push_back({result_.position(), result_.diff_frame(ops)});
  if (!result_.needs_read()) return false;
  if (consumed < events->size()) {
    auto rest = std::make_shared<const std::vector<object>>(
        events->begin() + static_cast<std::ptrdiff_t>(consumed), events->end());
    held_events_ += rest->size();
    held_.push_front(std::move(rest));
  }
  return true;
}

void live_evaluation::drain(step& out) {
  while (!held_.empty()) {
    batch events = std::move(held_.front());
    held_.pop_front();
    held_events_ -= events->size();
    if (apply(events, out)) return;
  }
}

live_evaluation::step live_evaluation::start_read(step out) {
  reading_ = true;
  ++reads_;
  out.start_read = true;
  return out;
}

std::string live_query_spec::key() const {
  std::string k;
  append_json(k, value(filter_doc));
  k += '\0';
  append_json(k, value(sort_doc));
  k += '\0';
  append_json(k, value(keys_doc));
  k += '\0';
  if (shape_doc) append_json(k, value(*shape_doc));
  k += '\0';
  k += std::to_string(size);
  return k;
}

} // namespace rheo
