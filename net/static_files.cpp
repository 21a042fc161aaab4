#include "net/static_files.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace rheo {

const char* content_type_for(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view ext = dot == std::string_view::npos ? "" : name.substr(dot + 1);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "ico") return "image/x-icon";
  if (ext == "webp") return "image/webp";
  if (ext == "txt" || ext == "md") return "text/plain; charset=utf-8";
  if (ext == "woff2") return "font/woff2";
  return "application/octet-stream";
}

http_response serve_static(const std::string& dir, std::string_view prefix,
                           std::string_view raw_path) {
  auto t = parse_target(raw_path);
  if (!t) return error_response(400, "malformed path");
  std::string rel;
  for (std::size_t i = 0; i < t->segments.size(); ++i) {
    const std::string& seg = t->segments[i];
    // The prefix's own segments come first; skip them.
    if (i < static_cast<std::size_t>(std::count(prefix.begin(), prefix.end(), '/') - 1)) continue;
    if (seg == ".." || seg == "." || seg.find('/') != std::string::npos ||
        seg.find('\\') != std::string::npos || seg.find('\0') != std::string::npos)
      return error_response(404, "not found");
    rel += '/';
    rel += seg;
  }
  if (rel.empty() || raw_path.back() == '/') rel += "/index.html";

  char root_buf[PATH_MAX], file_buf[PATH_MAX];
  if (!::realpath(dir.c_str(), root_buf)) return error_response(404, "not found");
  std::string candidate = std::string(root_buf) + rel;
  if (!::realpath(candidate.c_str(), file_buf)) return error_response(404, "not found");
  std::string root = root_buf, file = file_buf;
  if (file.compare(0, root.size() + 1, root + "/") != 0) return error_response(404, "not found");

  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return error_response(404, "not found");
  std::ifstream in(file, std::ios::binary);
  if (!in) return error_response(404, "not found");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return error_response(404, "not found");
  http_response r;
  r.status = 200;
  r.content_type = content_type_for(file);
  r.body = ss.str();
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

} // namespace rheo
