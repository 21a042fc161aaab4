#include "storage/document/change_event.hpp"

#include <array>
#include <cstdio>
#include <ostream>

namespace rheo {

namespace {

constexpr std::array<std::string_view, 9> operation_names = {
    "insert", "update",       "replace",    "delete", "drop",
    "rename", "dropDatabase", "invalidate", "meta"};

} // namespace

std::string_view to_string(operation_type op) {
  return operation_names[static_cast<std::size_t>(op)];
}

std::optional<operation_type> operation_from_string(std::string_view name) {
  for (std::size_t i = 0; i < operation_names.size(); ++i)
    if (operation_names[i] == name) return static_cast<operation_type>(i);
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& out, operation_type op) {
  return out << to_string(op);
}

namespace {

/// The shape of to_object(), copying from `e` or (an rvalue) moving out of it.
template <class Event> object shape_of(Event&& e) {
  object out;
  out.reserve(5);
  out.emplace_back("_id", value(object{{"_data", value(e.token)}}));
  out.emplace_back("operationType", value(to_string(e.operation)));
  if (e.full_document)
    out.emplace_back("fullDocument", value(std::forward<Event>(e).full_document.value()));
  if (e.document_key) out.emplace_back("documentKey", value(object{{"_id", *e.document_key}}));
  if (e.update) {
    array removed;
    removed.reserve(e.update->removed_fields.size());
    for (auto& path : e.update->removed_fields)
      removed.emplace_back(path);
    out.emplace_back(
        "updateDescription",
        value(object{{"updatedFields", value(std::forward<Event>(e).update.value().updated_fields)},
                     {"removedFields", value(std::move(removed))}}));
  }
  return out;
}

} // namespace

object change_event::to_object() const& {
  return shape_of(*this);
}

object change_event::to_object() && {
  return shape_of(std::move(*this));
}

change_event change_event::from_object(const object& event, std::string db, std::string coll) {
  change_event e;
  e.db = std::move(db);
  e.coll = std::move(coll);
  if (const std::string* t = event_token(event)) e.token = *t;
  if (const value* op = find_field(event, "operationType"); op && op->is_string())
    if (auto known = operation_from_string(op->as_string())) e.operation = *known;
  if (const value* doc = find_field(event, "fullDocument"); doc && doc->is_object())
    e.full_document = doc->as_object();
  if (const value* key = find_field(event, "documentKey"); key && key->is_object())
    if (const value* id = find_field(key->as_object(), "_id")) e.document_key = *id;
  if (const value* u = find_field(event, "updateDescription"); u && u->is_object()) {
    update_description d;
    if (const value* set = find_field(u->as_object(), "updatedFields"); set && set->is_object())
      d.updated_fields = set->as_object();
    if (const value* rm = find_field(u->as_object(), "removedFields"); rm && rm->is_array())
      for (auto& path : rm->as_array())
        if (path.is_string()) d.removed_fields.push_back(path.as_string());
    e.update = std::move(d);
  }
  return e;
}

const std::string* event_token(const object& event) {
  const value* id = find_field(event, "_id");
  if (!id || !id->is_object()) return nullptr;
  const value* data = find_field(id->as_object(), "_data");
  return data && data->is_string() ? &data->as_string() : nullptr;
}

std::string snapshot_token(std::uint32_t t, std::uint32_t i) {
  char out[18];
  std::snprintf(out, sizeof out, "T%08X%08X", t, i);
  return out;
}

namespace {

/// The 16 hex digits at `digits` as the (t, i) of a timestamp, or nullopt.
std::optional<timestamp_value> timestamp_of_hex(std::string_view digits) {
  if (digits.size() != 16) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : digits) {
    const int d = hex_digit(c);
    if (d < 0) return std::nullopt;
    n = n << 4 | static_cast<std::uint64_t>(d);
  }
  return timestamp_value{static_cast<std::uint32_t>(n >> 32), static_cast<std::uint32_t>(n)};
}

} // namespace

std::optional<timestamp_value> snapshot_time(std::string_view token) {
  if (token.size() != 17 || token[0] != 'T') return std::nullopt;
  return timestamp_of_hex(token.substr(1));
}

bool reflects(std::string_view position, std::string_view event) {
  if (position.empty() || event.empty()) return false;
  if (is_event_token(position)) return !token_before(position, event);
  const auto snapshot = snapshot_time(position);
  if (!snapshot || event.size() < 18 || event.substr(0, 2) != "82") return false;
  const auto at = timestamp_of_hex(event.substr(2, 16));
  if (!at) return false;
  return at->t < snapshot->t || (at->t == snapshot->t && at->i <= snapshot->i);
}

std::string token_from_seq(std::uint64_t seq) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, seq >>= 4)
    s[static_cast<std::size_t>(i)] = digits[seq & 15];
  return s;
}

std::optional<std::uint64_t> seq_from_token(std::string_view token) {
  if (token.size() != 16) return std::nullopt;
  std::uint64_t seq = 0;
  for (char c : token) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return std::nullopt;
    seq = (seq << 4) | static_cast<std::uint64_t>(d);
  }
  return seq;
}

} // namespace rheo
