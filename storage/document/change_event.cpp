#include "storage/document/change_event.hpp"

namespace rheo {

object change_event::to_object() const {
  object out;
  out.emplace_back("_id", value(object{{"_data", value(token)}}));
  out.emplace_back("operationType", value(operation));
  if (full_document) out.emplace_back("fullDocument", value(*full_document));
  if (document_key) out.emplace_back("documentKey", value(object{{"_id", *document_key}}));
  if (update) {
    array removed;
    removed.reserve(update->removed_fields.size());
    for (auto& path : update->removed_fields)
      removed.emplace_back(path);
    out.emplace_back("updateDescription",
                     value(object{{"updatedFields", value(update->updated_fields)},
                                  {"removedFields", value(std::move(removed))}}));
  }
  return out;
}

const std::string* event_token(const object& event) {
  const value* id = find_field(event, "_id");
  if (!id || !id->is_object()) return nullptr;
  const value* data = find_field(id->as_object(), "_data");
  return data && data->is_string() ? &data->as_string() : nullptr;
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
