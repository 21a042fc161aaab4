#include "config/log.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <mutex>
#include <stdexcept>
#include <unistd.h>

namespace rheo::log {

namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};
std::atomic<int> line_format{static_cast<int>(format::text)};
constexpr const char* upper_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
constexpr const char* lower_names[] = {"error", "warn", "info", "debug"};

// The access log: its descriptor (-1: off; 2: stderr) and, for a file, its name.
std::atomic<int> access_fd{-1};
std::mutex access_mutex; // guards access_path and the opening of files
std::string access_path;

void put_stamp(std::string& out, std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  if (ms < 0) ms += 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[64];
  int n = std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, static_cast<int>(ms));
  out.append(stamp, static_cast<std::size_t>(n > 0 ? n : 0));
}

/// The length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
/// surrogates, nothing past U+10FFFF), or 0 when the byte there does not begin one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0; // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0; // past U+10FFFF
    return 4;
  }
  return 0;
}

void put_hex_byte(std::string& out, const char* prefix, unsigned char c) {
  static const char digits[] = "0123456789abcdef";
  out += prefix;
  out += digits[c >> 4];
  out += digits[c & 15];
}

/// A JSON string: quotes, backslashes and control characters escaped, bytes that are not
/// valid UTF-8 replaced by U+FFFD.
void put_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20 || c == 0x7F)
        put_hex_byte(out, "\\u00", c);
      else
        out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

/// Text: control characters and bytes that are not valid UTF-8 as \n, \t, \xHH (the line
/// stays one line); in a quoted value, quotes and backslashes escaped too.
void put_text(std::string& out, std::string_view s, bool quoted) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        put_hex_byte(out, "\\x", c);
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7F)
      put_hex_byte(out, "\\x", c);
    else if (quoted && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else
      out += static_cast<char>(c);
    ++i;
  }
}

/// Whether a text value needs quotes to stay one token.
bool needs_quotes(std::string_view s) {
  if (s.empty()) return true;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c >= 0x7F) return true;
  }
  return false;
}

void put_number(std::string& out, const field& f, bool json) {
  char buf[64];
  std::to_chars_result r{buf, std::errc()};
  switch (f.type()) {
  case field::kind::signed_int:
    r = std::to_chars(buf, buf + sizeof buf, f.signed_value());
    break;
  case field::kind::unsigned_int:
    r = std::to_chars(buf, buf + sizeof buf, f.unsigned_value());
    break;
  case field::kind::boolean:
    out += f.unsigned_value() ? "true" : "false";
    return;
  case field::kind::real:
    if (!std::isfinite(f.real_value())) {
      out += json ? "null" : "nan";
      return;
    }
    r = std::to_chars(buf, buf + sizeof buf, f.real_value(), std::chars_format::fixed, 3);
    break;
  case field::kind::string:
    return;
  }
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

/// `s`, or its redacted copy in `scratch` when it holds a URI with a password.
std::string_view without_passwords(std::string_view s, std::string& scratch) {
  if (s.find("://") == std::string_view::npos) return s;
  scratch = redact_uri_passwords(s);
  return scratch;
}

void write_fd(int fd, const std::string& line) {
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

} // namespace

void set_level(std::string_view name) {
  level l = level::info;
  if (name == "error")
    l = level::error;
  else if (name == "warn")
    l = level::warn;
  else if (name == "debug")
    l = level::debug;
  threshold.store(static_cast<int>(l));
}

void set_format(std::string_view name) {
  line_format.store(static_cast<int>(name == "json" ? format::json : format::text));
}

bool enabled(level l) {
  return static_cast<int>(l) <= threshold.load(std::memory_order_relaxed);
}

std::string redact_uri_passwords(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t done = 0;
  for (std::size_t p = text.find("://"); p != std::string_view::npos; p = text.find("://", p + 3)) {
    // The authority runs to the first '/', '?', '#' or space; its userinfo ends at its
    // last '@' (a password may hold an '@'), the password starts after the first ':'.
    const std::size_t start = p + 3;
    std::size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != '?' && text[end] != '#' &&
           static_cast<unsigned char>(text[end]) > 0x20 && text[end] != '"' && text[end] != '\'')
      ++end;
    std::string_view authority = text.substr(start, end - start);
    const std::size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    const std::size_t colon = authority.substr(0, at).find(':');
    if (colon == std::string_view::npos) continue;
    out.append(text.substr(done, start + colon + 1 - done));
    out += "***";
    done = start + at;
    p = end > p + 3 ? end - 3 : p;
  }
  out.append(text.substr(done));
  return out;
}

std::string format_line(format fmt, level l, std::string_view message, fields f,
                        std::chrono::system_clock::time_point t) {
  std::string line;
  line.reserve(64 + message.size() + 24 * f.size());
  std::string scratch;
  if (fmt == format::json) {
    line += "{\"time\":\"";
    put_stamp(line, t);
    line += "\",\"level\":\"";
    line += lower_names[static_cast<int>(l)];
    line += "\",\"msg\":";
    put_json_string(line, without_passwords(message, scratch));
    for (auto& x : f) {
      line += ',';
      put_json_string(line, x.key());
      line += ':';
      if (x.type() == field::kind::string)
        put_json_string(line, without_passwords(x.string_value(), scratch));
      else
        put_number(line, x, true);
    }
    line += "}\n";
    return line;
  }
  put_stamp(line, t);
  line += ' ';
  line += upper_names[static_cast<int>(l)];
  line += ' ';
  put_text(line, without_passwords(message, scratch), false);
  for (auto& x : f) {
    line += ' ';
    put_text(line, x.key(), false);
    line += '=';
    if (x.type() != field::kind::string) {
      put_number(line, x, false);
      continue;
    }
    std::string_view v = without_passwords(x.string_value(), scratch);
    if (needs_quotes(v)) {
      line += '"';
      put_text(line, v, true);
      line += '"';
    } else {
      put_text(line, v, false);
    }
  }
  line += '\n';
  return line;
}

void write(level l, std::string_view message, fields f) {
  if (!enabled(l)) return;
  write_fd(2, format_line(static_cast<format>(line_format.load(std::memory_order_relaxed)), l,
                          message, f, std::chrono::system_clock::now()));
}

void announce(std::string_view message, fields f) {
  const auto fmt = static_cast<format>(line_format.load(std::memory_order_relaxed));
  if (fmt == format::json)
    write_fd(1, format_line(fmt, level::info, message, f, std::chrono::system_clock::now()));
  else
    write_fd(1, std::string(message) + "\n");
}

void startup_error(std::string_view message) {
  const auto fmt = static_cast<format>(line_format.load(std::memory_order_relaxed));
  if (fmt == format::json)
    write_fd(2, format_line(fmt, level::error, message, {}, std::chrono::system_clock::now()));
  else
    write_fd(2, "rheo: " + std::string(message) + "\n");
}

void open_access_log(const std::string& where) {
  std::lock_guard lock(access_mutex);
  int fd = -1;
  std::string path;
  if (where == "-" || where == "stderr") {
    fd = 2;
  } else if (!where.empty()) {
    fd = ::open(where.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
      throw std::runtime_error("access log " + where +
                               ": cannot be opened: " + std::strerror(errno));
    path = where;
  }
  int old = access_fd.exchange(fd);
  if (old > 2) ::close(old);
  access_path = std::move(path);
}

bool access_log_enabled() {
  return access_fd.load(std::memory_order_relaxed) >= 0;
}

bool reopen_access_log() {
  std::lock_guard lock(access_mutex);
  const int fd = access_fd.load();
  if (access_path.empty() || fd <= 2) return true; // off or stderr: nothing to reopen
  int fresh = ::open(access_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fresh < 0) return false;
  // Under the same descriptor: a line being written meanwhile goes to the old or the new
  // file, never to a descriptor that was closed and reused.
  const bool ok = ::dup3(fresh, fd, O_CLOEXEC) >= 0;
  ::close(fresh);
  return ok;
}

void access(fields f) {
  const int fd = access_fd.load(std::memory_order_relaxed);
  if (fd < 0) return;
  write_fd(fd, format_line(static_cast<format>(line_format.load(std::memory_order_relaxed)),
                           level::info, "access", f, std::chrono::system_clock::now()));
}

} // namespace rheo::log
