#include "storage/document/index_key.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

namespace rheo {

namespace {

// ---- the encoding ----

// Type tags, in canonical_type_rank order, numbers sharing one. Never 00: that byte ends
// objects and arrays, so that a shorter one sorts first. Spaced to leave room for types
// this store does not have yet (undefined, decimal128, ...).
enum tag : std::uint8_t {
  tag_min_key = 0x10,
  tag_null = 0x20,
  tag_number = 0x30,
  tag_string = 0x40,
  tag_object = 0x50,
  tag_array = 0x60,
  tag_binary = 0x70,
  tag_object_id = 0x80,
  tag_bool = 0x90,
  tag_date = 0xA0,
  tag_timestamp = 0xB0,
  tag_regex = 0xC0,
  tag_max_key = 0xF0,
};

// Number classes, in compare_values order (NaN below all numbers).
enum number_class : std::uint8_t {
  number_nan = 0x01,
  number_negative_infinity = 0x02,
  number_negative = 0x03,
  number_zero = 0x04,
  number_positive = 0x05,
  number_positive_infinity = 0x06,
};

constexpr std::uint8_t end_of_sequence = 0x00;
// Binary exponents run from -1074 (the least subnormal double) to 1023.
constexpr int exponent_bias = 0x8000;

void put_byte(std::string& out, std::uint8_t b) {
  out.push_back(static_cast<char>(b));
}

template <class U> void put_big_endian(std::string& out, U x) {
  for (int shift = static_cast<int>(sizeof(U)) * 8 - 8; shift >= 0; shift -= 8)
    put_byte(out, static_cast<std::uint8_t>(x >> shift));
}

// 00 becomes 00 FF and the end is 00 00: the end sorts below any continuation, and the
// escape keeps "a\0b" between "a" and "ab".
void put_string(std::string& out, std::string_view s) {
  for (char c : s) {
    out.push_back(c);
    if (c == '\0') put_byte(out, 0xFF);
  }
  put_byte(out, 0x00);
  put_byte(out, 0x00);
}

std::uint8_t tag_of(const value& v) {
  switch (v.type()) {
  case bson_type::min_key:
    return tag_min_key;
  case bson_type::null:
    return tag_null;
  case bson_type::double_:
  case bson_type::int32:
  case bson_type::int64:
    return tag_number;
  case bson_type::string:
    return tag_string;
  case bson_type::object:
    return tag_object;
  case bson_type::array:
    return tag_array;
  case bson_type::binary:
    return tag_binary;
  case bson_type::object_id:
    return tag_object_id;
  case bson_type::boolean:
    return tag_bool;
  case bson_type::date:
    return tag_date;
  case bson_type::timestamp:
    return tag_timestamp;
  case bson_type::regex:
    return tag_regex;
  case bson_type::max_key:
    return tag_max_key;
  }
  return tag_max_key;
}

// The non-zero number ±u * 2^scale as (1 + f / 2^64) * 2^e: normalised, so one number has
// one encoding whatever its representation.
void put_magnitude(std::string& out, std::uint64_t u, int scale, bool negative) {
  int top = std::bit_width(u) - 1;
  auto exponent = static_cast<std::uint16_t>(top + scale + exponent_bias);
  // The bits below the leading one, left-aligned (the leading one shifts out).
  std::uint64_t fraction = top == 0 ? 0 : u << (64 - top);
  if (negative) {
    exponent = static_cast<std::uint16_t>(~exponent);
    fraction = ~fraction;
  }
  put_byte(out, negative ? number_negative : number_positive);
  put_big_endian(out, exponent);
  put_big_endian(out, fraction);
}

void put_number(std::string& out, const value& v) {
  if (const double* d = v.get_if<double>()) {
    if (std::isnan(*d)) return put_byte(out, number_nan);
    if (std::isinf(*d))
      return put_byte(out, *d < 0 ? number_negative_infinity : number_positive_infinity);
    if (*d == 0) return put_byte(out, number_zero); // and -0.0
    auto bits = std::bit_cast<std::uint64_t>(*d);
    bool negative = (bits >> 63) != 0;
    auto biased = static_cast<int>((bits >> 52) & 0x7FF);
    std::uint64_t mantissa = bits & ((std::uint64_t{1} << 52) - 1);
    if (biased == 0) return put_magnitude(out, mantissa, -1074, negative); // subnormal
    return put_magnitude(out, mantissa | std::uint64_t{1} << 52, biased - 1075, negative);
  }
  std::int64_t i = v.as_int64();
  if (i == 0) return put_byte(out, number_zero);
  // Unsigned negation: |INT64_MIN| = 2^63 fits.
  auto u = static_cast<std::uint64_t>(i);
  put_magnitude(out, i < 0 ? 0 - u : u, 0, i < 0);
}

void put_value(std::string& out, const value& v);

// Everything after the tag.
void put_payload(std::string& out, const value& v) {
  switch (v.type()) {
  case bson_type::min_key:
  case bson_type::null:
  case bson_type::max_key:
    return;
  case bson_type::double_:
  case bson_type::int32:
  case bson_type::int64:
    return put_number(out, v);
  case bson_type::string:
    return put_string(out, v.as_string());
  case bson_type::object:
    // As compare_values: field by field, the type of the value, its name, the value.
    for (const auto& [name, field] : v.as_object()) {
      put_byte(out, tag_of(field));
      put_string(out, name);
      put_payload(out, field);
    }
    return put_byte(out, end_of_sequence);
  case bson_type::array:
    for (const auto& element : v.as_array())
      put_value(out, element);
    return put_byte(out, end_of_sequence);
  case bson_type::binary: {
    // As compare_values (and MongoDB): length, then subtype, then the bytes.
    const auto& b = v.get<binary_value>();
    if (b.data.size() > std::numeric_limits<std::uint32_t>::max())
      throw_bad_request("binary data of 4 GiB or more cannot be an index key");
    put_big_endian(out, static_cast<std::uint32_t>(b.data.size()));
    put_byte(out, b.subtype);
    out += b.data;
    return;
  }
  case bson_type::object_id:
    for (std::uint8_t b : v.get<object_id>().bytes)
      put_byte(out, b);
    return;
  case bson_type::boolean:
    return put_byte(out, v.as_bool() ? 1 : 0);
  case bson_type::date:
    return put_big_endian(out, static_cast<std::uint64_t>(v.get<date_time>().millis) ^
                                   (std::uint64_t{1} << 63));
  case bson_type::timestamp: {
    const auto& t = v.get<timestamp_value>();
    put_big_endian(out, t.t);
    return put_big_endian(out, t.i);
  }
  case bson_type::regex: {
    const auto& r = v.get<regex_value>();
    put_string(out, r.pattern);
    return put_string(out, r.options);
  }
  }
}

void put_value(std::string& out, const value& v) {
  put_byte(out, tag_of(v));
  put_payload(out, v);
}

void check_direction(int direction) {
  if (direction != 1 && direction != -1) throw_bad_request("index key direction must be 1 or -1");
}

// A key part in the direction of its field.
void put_part(std::string& out, const value& v, int direction) {
  std::size_t start = out.size();
  put_value(out, v);
  if (direction < 0)
    for (std::size_t i = start; i < out.size(); ++i)
      out[i] = static_cast<char>(~static_cast<unsigned char>(out[i]));
}

// ---- key extraction ----

// Where resolving a path from some object stopped.
struct walk_result {
  enum kind_t { missing, found, at_array } kind = missing;
  // The value found, or the array to expand.
  const value* v = nullptr;
  // The segments consumed (those after an array to expand continue in its elements).
  std::size_t next = 0;
};

// Follows `path` from segment `next` in `obj` through objects, and through arrays by
// position where the segment is an array index, to its end, a missing field, or an array
// to expand.
walk_result walk(const object& obj, const std::vector<std::string>& path, std::size_t next) {
  const value* v = find_field(obj, path[next++]);
  bool by_position = false;
  while (v) {
    if (const array* a = v->get_if<array>()) {
      std::optional<std::size_t> index =
          next < path.size() ? array_index(path[next]) : std::nullopt;
      if (index) {
        ++next;
        v = *index < a->size() ? &(*a)[*index] : nullptr;
        by_position = true;
        continue;
      }
      if (!by_position) return {walk_result::at_array, v, next};
      // An array inside an array (reached by position) is not expanded: a value when the
      // path ends here; it has no named fields otherwise.
      if (next == path.size()) return {walk_result::found, v, next};
      return {};
    }
    by_position = false;
    if (next == path.size()) return {walk_result::found, v, next};
    if (!v->is_object()) return {};
    v = find_field(v->as_object(), path[next++]);
  }
  return {};
}

// One part of a key being built.
struct slot {
  // The part once resolved; nullptr while pending, and when missing.
  const value* v = nullptr;
  // Pending: the path continues from segment `next` in this object.
  const object* in = nullptr;
  std::size_t next = 0;
};

class key_builder {
public:
  explicit key_builder(const index_key_spec& spec) : spec_(spec) {
    if (spec.fields.empty()) throw_bad_request("an index needs at least one field");
    for (const auto& f : spec.fields) {
      check_direction(f.direction);
      paths_.push_back(split_field_path(f.path, "index field paths cannot have empty segments",
                                        "index field paths cannot start with '$'"));
    }
  }

  std::vector<std::string> keys(const object& doc) {
    std::vector<slot> slots(paths_.size());
    for (auto& s : slots)
      s.in = &doc;
    build(slots);
    std::sort(keys_.begin(), keys_.end());
    keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
    return std::move(keys_);
  }

private:
  // Resolves the pending slots; expands the one array they meet, if any, by recursing once
  // per element; adds the key when none is left.
  void build(std::vector<slot>& slots) {
    const value* arr = nullptr;
    std::size_t arr_field = 0;
    std::vector<std::size_t> through; // the fields whose paths pass through `arr`
    std::vector<std::size_t> rest(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (!slots[i].in) continue;
      walk_result w = walk(*slots[i].in, paths_[i], slots[i].next);
      slots[i].in = nullptr;
      slots[i].v = w.kind == walk_result::found ? w.v : nullptr;
      if (w.kind != walk_result::at_array) continue;
      if (arr && w.v != arr)
        throw_bad_request("cannot index parallel arrays [" + spec_.fields[arr_field].path + "] [" +
                          spec_.fields[i].path + "]");
      if (!arr) arr_field = i;
      arr = w.v;
      through.push_back(i);
      rest[i] = w.next;
    }
    if (!arr) return add(slots);

    const array& elements = arr->as_array();
    if (elements.empty()) {
      // Null (MongoDB: undefined) where a path ends at the array; missing where it goes on.
      for (std::size_t i : through)
        slots[i].v = rest[i] == paths_[i].size() ? &null_ : nullptr;
      return add(slots);
    }
    for (const value& element : elements) {
      std::vector<slot> next = slots;
      for (std::size_t i : through) {
        if (rest[i] == paths_[i].size())
          next[i].v = &element;
        else if (const object* o = element.get_if<object>())
          next[i] = {nullptr, o, rest[i]};
      }
      build(next);
    }
  }

  void add(const std::vector<slot>& slots) {
    if (spec_.sparse &&
        std::all_of(slots.begin(), slots.end(), [](const slot& s) { return s.v == nullptr; }))
      return;
    std::string key;
    for (std::size_t i = 0; i < slots.size(); ++i)
      put_part(key, slots[i].v ? *slots[i].v : null_, spec_.fields[i].direction);
    keys_.push_back(std::move(key));
  }

  const index_key_spec& spec_;
  std::vector<std::vector<std::string>> paths_;
  std::vector<std::string> keys_;
  const value null_;
};

} // namespace

std::string encode_key(const value& v) {
  std::string out;
  put_value(out, v);
  return out;
}

std::string encode_compound_key(const std::vector<value>& parts,
                                const std::vector<int>& directions) {
  if (parts.size() != directions.size())
    throw std::invalid_argument("encode_compound_key: one direction per part");
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    check_direction(directions[i]);
    put_part(out, parts[i], directions[i]);
  }
  return out;
}

std::vector<std::string> index_keys(const object& doc, const index_key_spec& spec) {
  return key_builder(spec).keys(doc);
}

} // namespace rheo
