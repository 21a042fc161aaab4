// Reading the security settings (users, acl, jwt), which the configuration holds as JSON
// texts: parsing them and taking typed fields, with a config_error that names the key for
// anything malformed. Private to rheo_security.
//
// Thread-safety: free functions without shared state; safe from any thread.
#pragma once

#include "storage/document/value.hpp"

#include <string>
#include <vector>

namespace rheo {

/// The JSON array of config key `key`; throws config_error when it is malformed or no array.
array parse_config_array(const std::string& text, const char* key);
/// The JSON object of config key `key`; throws config_error when it is malformed or no
/// object.
object parse_config_object(const std::string& text, const char* key);

/// String field `name` of `o` ("" when absent and not `required`); `where` names `o` in
/// the config_error thrown otherwise.
std::string string_field(const object& o, const char* name, const std::string& where,
                         bool required = true);
/// Array-of-strings field `name` of `o` (empty when absent); throws config_error otherwise.
std::vector<std::string> string_list(const object& o, const char* name, const std::string& where);

} // namespace rheo
