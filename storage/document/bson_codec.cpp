#include "storage/document/bson_codec.hpp"

#include "storage/document/json.hpp"

#include <bson/bson.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace rheo {

namespace {

void append_value(bson_t* b, std::string_view key, const value& v, std::size_t depth);

void fail_encode(std::string_view key) {
  throw std::runtime_error("cannot encode field '" + std::string(key) + "' as BSON");
}

// `depth`: levels of the container being written (the document itself is 1). Nothing deeper
// than decode_bson reads back is written.
void append_object(bson_t* b, const object& o, std::size_t depth) {
  if (depth > max_bson_depth)
    throw std::runtime_error("cannot encode as BSON: " +
                             nested_too_deep("document", max_bson_depth));
  for (auto& [k, v] : o)
    append_value(b, k, v, depth);
}

void append_array(bson_t* b, const array& a, std::size_t depth) {
  if (depth > max_bson_depth)
    throw std::runtime_error("cannot encode as BSON: " +
                             nested_too_deep("document", max_bson_depth));
  char buf[16];
  const char* key;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto len = bson_uint32_to_string(static_cast<std::uint32_t>(i), &key, buf, sizeof buf);
    append_value(b, std::string_view(key, len), a[i], depth);
  }
}

void append_value(bson_t* b, std::string_view key, const value& v, std::size_t depth) {
  const char* k = key.data();
  int kl = static_cast<int>(key.size());
  bool ok = true;
  switch (v.type()) {
  case bson_type::null:
    ok = bson_append_null(b, k, kl);
    break;
  case bson_type::boolean:
    ok = bson_append_bool(b, k, kl, v.as_bool());
    break;
  case bson_type::int32:
    ok = bson_append_int32(b, k, kl, v.get<std::int32_t>());
    break;
  case bson_type::int64:
    ok = bson_append_int64(b, k, kl, v.get<std::int64_t>());
    break;
  case bson_type::double_:
    ok = bson_append_double(b, k, kl, v.get<double>());
    break;
  case bson_type::string: {
    auto& s = v.as_string();
    ok = bson_append_utf8(b, k, kl, s.data(), static_cast<int>(s.size()));
    break;
  }
  case bson_type::object: {
    bson_t child;
    if (!bson_append_document_begin(b, k, kl, &child)) fail_encode(key);
    append_object(&child, v.as_object(), depth + 1);
    ok = bson_append_document_end(b, &child);
    break;
  }
  case bson_type::array: {
    bson_t child;
    if (!bson_append_array_begin(b, k, kl, &child)) fail_encode(key);
    append_array(&child, v.as_array(), depth + 1);
    ok = bson_append_array_end(b, &child);
    break;
  }
  case bson_type::object_id: {
    bson_oid_t oid;
    bson_oid_init_from_data(&oid, v.get<object_id>().bytes.data());
    ok = bson_append_oid(b, k, kl, &oid);
    break;
  }
  case bson_type::date:
    ok = bson_append_date_time(b, k, kl, v.get<date_time>().millis);
    break;
  case bson_type::regex: {
    auto& r = v.get<regex_value>();
    ok = bson_append_regex_w_len(b, k, kl, r.pattern.data(), static_cast<int>(r.pattern.size()),
                                 r.options.c_str());
    break;
  }
  case bson_type::binary: {
    auto& bin = v.get<binary_value>();
    ok = bson_append_binary(b, k, kl, static_cast<bson_subtype_t>(bin.subtype),
                            reinterpret_cast<const std::uint8_t*>(bin.data.data()),
                            static_cast<std::uint32_t>(bin.data.size()));
    break;
  }
  case bson_type::timestamp: {
    auto& ts = v.get<timestamp_value>();
    ok = bson_append_timestamp(b, k, kl, ts.t, ts.i);
    break;
  }
  case bson_type::min_key:
    ok = bson_append_minkey(b, k, kl);
    break;
  case bson_type::max_key:
    ok = bson_append_maxkey(b, k, kl);
    break;
  }
  if (!ok) fail_encode(key);
}

[[noreturn]] void fail_decode(const char* what) {
  throw std::runtime_error(std::string("corrupt BSON: ") + what);
}

value read_value(const bson_iter_t* it, std::size_t depth);

// `depth`: levels of the container being read (the document itself is 1).
object read_object(bson_iter_t* it, std::size_t depth) {
  if (depth > max_bson_depth)
    throw api_error(400, nested_too_deep("BSON document", max_bson_depth));
  object o;
  while (bson_iter_next(it)) {
    std::uint32_t klen = bson_iter_key_len(it);
    o.emplace_back(std::string(bson_iter_key(it), klen), read_value(it, depth));
  }
  if (it->err_off != 0) fail_decode("truncated or malformed element");
  return o;
}

array read_array(bson_iter_t* it, std::size_t depth) {
  if (depth > max_bson_depth)
    throw api_error(400, nested_too_deep("BSON document", max_bson_depth));
  array a;
  while (bson_iter_next(it))
    a.push_back(read_value(it, depth));
  if (it->err_off != 0) fail_decode("truncated or malformed element");
  return a;
}

value read_value(const bson_iter_t* it, std::size_t depth) {
  switch (bson_iter_type(it)) {
  case BSON_TYPE_DOUBLE:
    return value(bson_iter_double(it));
  case BSON_TYPE_UTF8:
  case BSON_TYPE_SYMBOL:
  case BSON_TYPE_CODE: {
    std::uint32_t len = 0;
    const char* s = bson_iter_type(it) == BSON_TYPE_UTF8     ? bson_iter_utf8(it, &len)
                    : bson_iter_type(it) == BSON_TYPE_SYMBOL ? bson_iter_symbol(it, &len)
                                                             : bson_iter_code(it, &len);
    if (!s) fail_decode("bad string");
    return value(std::string(s, len));
  }
  case BSON_TYPE_DOCUMENT:
  case BSON_TYPE_ARRAY: {
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child)) fail_decode("bad nested document");
    if (bson_iter_type(it) == BSON_TYPE_DOCUMENT) return value(read_object(&child, depth + 1));
    return value(read_array(&child, depth + 1));
  }
  case BSON_TYPE_BINARY: {
    bson_subtype_t sub;
    std::uint32_t len = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_binary(it, &sub, &len, &data);
    binary_value bin;
    bin.subtype = static_cast<std::uint8_t>(sub);
    if (data) bin.data.assign(reinterpret_cast<const char*>(data), len);
    return value(std::move(bin));
  }
  case BSON_TYPE_UNDEFINED:
  case BSON_TYPE_NULL:
    return value(null_t{});
  case BSON_TYPE_OID: {
    object_id id;
    const bson_oid_t* oid = bson_iter_oid(it);
    std::copy(oid->bytes, oid->bytes + 12, id.bytes.begin());
    return value(id);
  }
  case BSON_TYPE_BOOL:
    return value(bson_iter_bool(it));
  case BSON_TYPE_DATE_TIME:
    return value(date_time{bson_iter_date_time(it)});
  case BSON_TYPE_REGEX: {
    const char* options = nullptr;
    const char* pattern = bson_iter_regex(it, &options);
    auto canonical = canonical_regex_options(options ? options : "");
    if (!canonical) fail_decode("regex options other than \"ilmsux\"");
    return value(regex_value{pattern ? pattern : "", std::move(*canonical)});
  }
  case BSON_TYPE_INT32:
    return value(bson_iter_int32(it));
  case BSON_TYPE_TIMESTAMP: {
    timestamp_value ts;
    bson_iter_timestamp(it, &ts.t, &ts.i);
    return value(ts);
  }
  case BSON_TYPE_INT64:
    return value(bson_iter_int64(it));
  case BSON_TYPE_DECIMAL128: {
    // No decimal type in the value model: the nearest double.
    bson_decimal128_t dec;
    bson_iter_decimal128(it, &dec);
    char buf[BSON_DECIMAL128_STRING];
    bson_decimal128_to_string(&dec, buf);
    return value(std::strtod(buf, nullptr));
  }
  case BSON_TYPE_MINKEY:
    return value(min_key{});
  case BSON_TYPE_MAXKEY:
    return value(max_key{});
  default:
    fail_decode("unsupported element type");
  }
}

void write_json(std::string& out, bson_iter_t* it, bool is_array, std::size_t depth);

/// One element's value as JSON: containers and strings written from the bytes, the other
/// scalars through their value (as append_json writes them).
void write_json_value(std::string& out, const bson_iter_t* it, std::size_t depth) {
  switch (bson_iter_type(it)) {
  case BSON_TYPE_UTF8: {
    std::uint32_t len = 0;
    const char* s = bson_iter_utf8(it, &len);
    if (!s) fail_decode("bad string");
    append_json_string(out, std::string_view(s, len));
    return;
  }
  case BSON_TYPE_DOCUMENT:
  case BSON_TYPE_ARRAY: {
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child)) fail_decode("bad nested document");
    write_json(out, &child, bson_iter_type(it) == BSON_TYPE_ARRAY, depth + 1);
    return;
  }
  default:
    append_json(out, read_value(it, depth));
  }
}

// `depth` as in read_object.
void write_json(std::string& out, bson_iter_t* it, bool is_array, std::size_t depth) {
  if (depth > max_bson_depth)
    throw api_error(400, nested_too_deep("BSON document", max_bson_depth));
  out += is_array ? '[' : '{';
  bool first = true;
  while (bson_iter_next(it)) {
    if (!first) out += ',';
    first = false;
    if (!is_array) {
      append_json_string(out, std::string_view(bson_iter_key(it), bson_iter_key_len(it)));
      out += ':';
    }
    write_json_value(out, it, depth);
  }
  if (it->err_off != 0) fail_decode("truncated or malformed element");
  out += is_array ? ']' : '}';
}

} // namespace

void append_json_from_bson(std::string& out, std::string_view bytes) {
  bson_t b;
  if (!bson_init_static(&b, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))
    fail_decode("bad document length");
  bson_iter_t it;
  if (!bson_iter_init(&it, &b)) fail_decode("bad document header");
  // JSON is rarely more than twice the BSON: one allocation, growing geometrically.
  const std::size_t wanted = out.size() + 2 * bytes.size();
  if (out.capacity() < wanted) out.reserve(std::max(wanted, 2 * out.capacity()));
  write_json(out, &it, false, 1);
}

std::optional<std::string> canonical_regex_options(std::string_view options) {
  static constexpr std::string_view flags = "ilmsux";
  if (options.find_first_not_of(flags) != std::string_view::npos) return std::nullopt;
  std::string out;
  for (char f : flags)
    if (options.find(f) != std::string_view::npos) out += f;
  return out;
}

std::string encode_bson(const object& doc) {
  bson_t b;
  bson_init(&b);
  try {
    append_object(&b, doc, 1);
  } catch (...) {
    bson_destroy(&b);
    throw;
  }
  std::string out(reinterpret_cast<const char*>(bson_get_data(&b)), b.len);
  bson_destroy(&b);
  return out;
}

object decode_bson(std::string_view bytes) {
  bson_t b;
  if (!bson_init_static(&b, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))
    fail_decode("bad document length");
  bson_iter_t it;
  if (!bson_iter_init(&it, &b)) fail_decode("bad document header");
  return read_object(&it, 1);
}

} // namespace rheo
