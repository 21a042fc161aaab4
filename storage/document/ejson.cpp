#include "storage/document/ejson.hpp"

#include <bson/bson.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <memory>
#include <stdexcept>

namespace rheo {

namespace {

/// Accepts any JSON; remembers whether the top-level value is an object.
struct shape_check : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, shape_check> {
  int depth = 0;
  bool object_root = false;
  bool Default() { return depth > 0; } // a scalar at the top: not a document
  bool StartObject() {
    if (depth++ == 0) object_root = true;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() { return depth++ > 0; }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }
};

} // namespace

std::string ejson_from_bson(std::string_view bson, ejson_mode mode) {
  bson_t doc;
  if (!bson_init_static(&doc, reinterpret_cast<const std::uint8_t*>(bson.data()), bson.size()))
    throw std::runtime_error("not a BSON document");
  std::size_t length = 0;
  std::unique_ptr<char, void (*)(void*)> text(mode == ejson_mode::canonical
                                                  ? bson_as_canonical_extended_json(&doc, &length)
                                                  : bson_as_relaxed_extended_json(&doc, &length),
                                              bson_free);
  if (!text) throw std::runtime_error("a BSON document that cannot be written as JSON");
  return std::string(text.get(), length);
}

std::string bson_from_ejson(std::string_view json) {
  // libbson reads the first document and ignores what follows, and takes an array for a
  // document: RapidJSON checks the shape (and UTF-8) first, with its positioned messages.
  {
    rapidjson::MemoryStream in(json.data(), json.size());
    rapidjson::Reader reader;
    shape_check shape;
    const auto ok = reader.Parse<rapidjson::kParseValidateEncodingFlag>(in, shape);
    if (!shape.object_root) throw std::runtime_error("not a JSON object");
    if (!ok)
      throw std::runtime_error("offset " + std::to_string(ok.Offset()) + ": " +
                               rapidjson::GetParseError_En(ok.Code()));
  }
  bson_t doc;
  bson_error_t error;
  if (!bson_init_from_json(&doc, json.data(), static_cast<ssize_t>(json.size()), &error))
    throw std::runtime_error(error.message);
  std::string out(reinterpret_cast<const char*>(bson_get_data(&doc)), doc.len);
  bson_destroy(&doc);
  return out;
}

} // namespace rheo
