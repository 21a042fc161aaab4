#include "storage/sqlite/id_key.hpp"

#include <cmath>
#include <cstring>

namespace rheo::sqlite {

namespace {

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> shift)));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> shift)));
}

// Strings: 0x00 escaped as 00 FF, terminated by 00 00, so that byte order equals
// string order and a string followed by more key bytes still compares correctly.
void put_string(std::string& out, std::string_view s) {
  for (char c : s) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\0');
}

// Numbers of all types: a sortable double, then the exact remainder of int64 values that a
// double cannot hold, so that 1, 1L and 1.0 share one key (MongoDB treats them as one _id).
void put_number(std::string& out, const value& v) {
  double d = v.as_double();
  __int128 remainder = 0;
  if (auto* i = v.get_if<std::int64_t>())
    remainder = static_cast<__int128>(*i) - static_cast<__int128>(d);
  if (std::isnan(d)) {
    out.append(16, '\0'); // below every other number, as compare_values orders NaN
    return;
  }
  if (d == 0) d = 0.0; // -0 == 0
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  bits = (bits >> 63) ? ~bits : bits | (std::uint64_t{1} << 63);
  put_u64(out, bits);
  put_u64(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(remainder)) ^
                   (std::uint64_t{1} << 63));
}

void put_key_payload(std::string& out, const value& v);

void put_key_value(std::string& out, const value& v) {
  out.push_back(static_cast<char>(canonical_type_rank(v.type())));
  put_key_payload(out, v);
}

void put_key_payload(std::string& out, const value& v) {
  switch (v.type()) {
  case bson_type::min_key:
  case bson_type::max_key:
  case bson_type::null:
    break;
  case bson_type::double_:
  case bson_type::int32:
  case bson_type::int64:
    put_number(out, v);
    break;
  case bson_type::string:
    put_string(out, v.as_string());
    break;
  case bson_type::object:
    // Field by field: type rank, name, value (as compare_values); 0x00 ends (ranks are >= 1).
    for (auto& [name, field] : v.as_object()) {
      out.push_back(static_cast<char>(canonical_type_rank(field.type())));
      put_string(out, name);
      put_key_payload(out, field);
    }
    out.push_back('\0');
    break;
  case bson_type::array:
    for (auto& element : v.as_array())
      put_key_value(out, element);
    out.push_back('\0');
    break;
  case bson_type::binary: {
    auto& b = v.get<binary_value>();
    put_u32(out, static_cast<std::uint32_t>(b.data.size()));
    out.push_back(static_cast<char>(b.subtype));
    out.append(b.data);
    break;
  }
  case bson_type::object_id: {
    auto& id = v.get<object_id>();
    out.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
    break;
  }
  case bson_type::boolean:
    out.push_back(v.as_bool() ? '\1' : '\0');
    break;
  case bson_type::date:
    put_u64(out, static_cast<std::uint64_t>(v.get<date_time>().millis) ^ (std::uint64_t{1} << 63));
    break;
  case bson_type::timestamp:
    put_u32(out, v.get<timestamp_value>().t);
    put_u32(out, v.get<timestamp_value>().i);
    break;
  case bson_type::regex:
    put_string(out, v.get<regex_value>().pattern);
    put_string(out, v.get<regex_value>().options);
    break;
  }
}

} // namespace

std::string id_key(const value& id) {
  if (id.is_array()) throw_bad_request("_id cannot be an array");
  std::string out;
  put_key_value(out, id);
  return out;
}

} // namespace rheo::sqlite
