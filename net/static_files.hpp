// Serves the files of one folder (the chat app) under a URL prefix, with content types
// by extension and no way out of the folder (no "..", no symlink escapes).
//
// Thread-safety: a free function without shared state; safe from any thread.
#pragma once

#include "net/http.hpp"

#include <string>
#include <string_view>

namespace rheo {

/// `raw_path` is the request path (still percent-encoded) starting with `prefix`.
/// A path ending in '/' serves its index.html. 404 for anything missing or outside `dir`.
http_response serve_static(const std::string& dir, std::string_view prefix,
                           std::string_view raw_path);

/// The Content-Type for a file name, by extension.
const char* content_type_for(std::string_view filename);

} // namespace rheo
