#include "net/security/config_json.hpp"

#include "config/config.hpp"
#include "storage/document/json.hpp"

namespace rheo {

namespace {

value parse_config_value(const std::string& text, const char* key) {
  try {
    return parse_json(text, key);
  } catch (const api_error& e) {
    throw config_error(std::string("config key '") + key + "': " + e.what());
  }
}

} // namespace

array parse_config_array(const std::string& text, const char* key) {
  value v = parse_config_value(text, key);
  if (!v.is_array()) throw config_error(std::string("config key '") + key + "' must be an array");
  return std::move(v.as_array());
}

object parse_config_object(const std::string& text, const char* key) {
  value v = parse_config_value(text, key);
  if (!v.is_object()) throw config_error(std::string("config key '") + key + "' must be an object");
  return std::move(v.as_object());
}

std::string string_field(const object& o, const char* name, const std::string& where,
                         bool required) {
  const value* v = find_field(o, name);
  if (!v) {
    if (required) throw config_error(where + ": missing \"" + name + "\"");
    return {};
  }
  if (!v->is_string()) throw config_error(where + ": \"" + name + "\" must be a string");
  return v->as_string();
}

std::vector<std::string> string_list(const object& o, const char* name, const std::string& where) {
  std::vector<std::string> out;
  const value* v = find_field(o, name);
  if (!v) return out;
  if (!v->is_array()) throw config_error(where + ": \"" + name + "\" must be an array of strings");
  for (auto& e : v->as_array()) {
    if (!e.is_string())
      throw config_error(where + ": \"" + name + "\" must be an array of strings");
    out.push_back(e.as_string());
  }
  return out;
}

} // namespace rheo
