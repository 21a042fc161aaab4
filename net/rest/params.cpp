#include "net/rest/params.hpp"

#include "net/metrics.hpp"
#include "storage/document/json.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>

namespace rheo::rest {

namespace {

std::string strip_etag_quotes(std::string s) {
  if (s.rfind("W/", 0) == 0) s = s.substr(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

} // namespace

bool valid_collection_name(std::string_view name) {
  if (name.empty() || name.size() > 120 || name[0] == '_' || name.rfind("system.", 0) == 0)
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

value parse_id(const std::string& text, const std::optional<std::string>& id_type) {
  std::string type = id_type.value_or("");
  for (auto& c : type)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (type.empty()) {
    if (auto oid = object_id::from_hex(text)) return *oid;
    return text;
  }
  if (type == "STRING") return text;
  if (type == "OID" || type == "OBJECTID") {
    if (auto oid = object_id::from_hex(text)) return *oid;
    throw_bad_request("invalid id '" + text + "': not an ObjectId (24 hex digits)");
  }
  if (type == "NUMBER") {
    std::int64_t i = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
    if (!text.empty() && ec == std::errc() && p == text.data() + text.size()) {
      if (i >= INT32_MIN && i <= INT32_MAX) return static_cast<std::int32_t>(i);
      return i;
    }
    double d = 0;
    auto [p2, ec2] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (!text.empty() && ec2 == std::errc() && p2 == text.data() + text.size()) return d;
    throw_bad_request("invalid id '" + text + "': not a number");
  }
  throw_bad_request("invalid id_type '" + *id_type + "': must be STRING, OID or NUMBER");
}

std::string id_url(const value& id) {
  if (auto* oid = id.get_if<object_id>()) return oid->hex();
  if (auto* s = id.get_if<std::string>()) {
    std::string enc = percent_encode(*s);
    if (object_id::from_hex(*s)) enc += "?id_type=STRING";
    return enc;
  }
  if (id.is_number()) {
    std::string j = to_json(id);
    return j + "?id_type=NUMBER";
  }
  return percent_encode(to_json(id));
}

std::optional<std::string> if_match_of(const http_request& req) {
  if (req.if_match.empty()) return std::nullopt;
  return strip_etag_quotes(req.if_match);
}

object parse_object_param(const std::string& text, const char* name) {
  value v = parse_json(text, name);
  if (!v.is_object()) throw_bad_request(std::string(name) + " must be a JSON object");
  return std::move(v.as_object());
}

object keys_param(const parsed_target& t) {
  object keys;
  for (auto& k : t.all("keys"))
    for (auto& [name, v] : parse_object_param(k, "keys"))
      set_field(keys, name, v);
  return keys;
}

object body_object(const http_request& req, bool empty_ok) {
  auto first = req.body.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    if (empty_ok) return {};
    throw_bad_request("data must be a json object");
  }
  value v = parse_json(req.body, "body");
  if (!v.is_object()) throw_bad_request("data must be a json object");
  return std::move(v.as_object());
}

std::int64_t parse_int_param(const std::string& text, const char* name, std::int64_t min,
                             std::int64_t max) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < min || v > max)
    throw_bad_request("invalid " + std::string(name) + " '" + text + "': must be an integer from " +
                      std::to_string(min) + " to " + std::to_string(max));
  return v;
}

/// The `filter` parameters (repeatable, ANDed) and an ACL readFilter, as one filter.
object combined_filter(const parsed_target& t, std::optional<object> read_filter) {
  array all;
  for (auto& f : t.all("filter"))
    all.emplace_back(parse_object_param(f, "filter"));
  if (read_filter) all.emplace_back(std::move(*read_filter));
  if (all.empty()) return {};
  if (all.size() == 1) return std::move(all[0].as_object());
  return object{{"$and", value(std::move(all))}};
}

/// The `sort` parameters (repeatable): "field", "-field", "+field" or a JSON object.
/// _id breaks ties, so that pages of an equal-valued sort neither overlap nor skip.
object sort_param(const parsed_target& t) {
  object sort;
  for (auto& s : t.all("sort")) {
    auto first = s.find_first_not_of(" \t");
    if (first != std::string::npos && s[first] == '{') {
      for (auto& [k, v] : parse_object_param(s, "sort"))
        set_field(sort, k, v);
    } else if (!s.empty()) {
      bool desc = s[0] == '-';
      std::string field = (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
      if (field.empty()) throw_bad_request("invalid sort '" + s + "'");
      set_field(sort, field, value(desc ? -1 : 1));
    } else {
      throw_bad_request("invalid sort: empty");
    }
  }
  if (!sort.empty() && !find_field(sort, "_id")) {
    const value& last = sort.back().second;
    set_field(sort, "_id", value(last.is_number() && last.as_double() < 0 ? -1 : 1));
  }
  return sort;
}

object parse_avars(const parsed_target& t, std::size_t max_bytes, metrics& stats) {
  auto text = t.last("avars");
  if (!text) return {};
  if (text->size() > max_bytes) {
    stats.count_refusal(limit::avars_bytes);
    throw_bad_request("avars is " + std::to_string(text->size()) +
                      " bytes, more than the limit of " + std::to_string(max_bytes) +
                      " (max_avars_bytes)");
  }
  value v = parse_json(*text, "avars");
  if (!v.is_object()) throw_bad_request("avars must be a JSON object");
  for (auto& [k, val] : v.as_object())
    if (!k.empty() && k[0] == '$') throw_bad_request("avars keys cannot start with '$': " + k);
  return std::move(v.as_object());
}

} // namespace rheo::rest
