// Leveled logging to stderr, one line per message, as text or as JSON (one object per
// line), with optional structured fields; and the access log (one line per HTTP request
// and per WebSocket/SSE session, off by default) to stderr or a file.
//
// Text:  2026-12-02T03:04:05.678Z INFO message key=value key="a value"
// JSON:  {"time":"2026-12-02T03:04:05.678Z","level":"info","msg":"message","key":"value"}
//
// Every line is escaped so that it stays one line (control characters, and in JSON any
// byte that is not valid UTF-8, are escaped or replaced), and the password of any
// scheme://user:password@host in the message or a string field is replaced by "***".
// Nothing is formatted when the level is off; callers pass secrets (passwords, tokens,
// Authorization or Cookie values, JWTs, the cluster secret) to no log call.
//
// Thread-safety: all functions may be called from any thread; each line is written with a
// single write() so lines from different threads do not interleave. set_level(),
// set_format() and open_access_log() are meant for startup (they are atomic, so a line
// written meanwhile uses either the old or the new setting); reopen_access_log() may run
// at any time (it swaps the file under the same descriptor).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace rheo::log {

enum class level { error = 0, warn = 1, info = 2, debug = 3 };
enum class format { text = 0, json = 1 };

/// One structured field of a line: a key and a string, integer, real or boolean value.
/// A field only views its key and string: it lives for the call that it is passed to.
class field {
public:
  enum class kind : std::uint8_t { string, signed_int, unsigned_int, real, boolean };

  field(std::string_view key, std::string_view v) : key_(key), kind_(kind::string), s_(v) {}
  field(std::string_view key, const char* v) : field(key, std::string_view(v ? v : "")) {}
  field(std::string_view key, const std::string& v) : field(key, std::string_view(v)) {}
  field(std::string_view key, bool v) : key_(key), kind_(kind::boolean), u_(v) {}
  field(std::string_view key, double v) : key_(key), kind_(kind::real), d_(v) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                          !std::is_same_v<T, char>,
                                      int> = 0>
  field(std::string_view key, T v) : key_(key) {
    if constexpr (std::is_signed_v<T>) {
      kind_ = kind::signed_int;
      i_ = v;
    } else {
      kind_ = kind::unsigned_int;
      u_ = v;
    }
  }

  std::string_view key() const { return key_; }
  kind type() const { return kind_; }
  std::string_view string_value() const { return s_; }
  std::int64_t signed_value() const { return i_; }
  std::uint64_t unsigned_value() const { return u_; }
  double real_value() const { return d_; }

private:
  std::string_view key_;
  kind kind_ = kind::string;
  std::string_view s_;
  std::int64_t i_ = 0;
  std::uint64_t u_ = 0;
  double d_ = 0;
};

using fields = std::initializer_list<field>;

/// Sets the threshold ("error", "warn", "info", "debug").
void set_level(std::string_view name);
/// Sets the line format ("text" or "json") of the log and of the access log.
void set_format(std::string_view name);
bool enabled(level l);
void write(level l, std::string_view message, fields f = {});

inline void error(std::string_view m, fields f = {}) {
  write(level::error, m, f);
}
inline void warn(std::string_view m, fields f = {}) {
  write(level::warn, m, f);
}
inline void info(std::string_view m, fields f = {}) {
  write(level::info, m, f);
}
inline void debug(std::string_view m, fields f = {}) {
  if (enabled(level::debug)) write(level::debug, m, f);
}

/// The line on standard output that says rheo listens: `message` alone in the text format
/// (scripts read it), a JSON line (level info, with `f`) in the json format.
void announce(std::string_view message, fields f = {});
/// A failure that stops rheo before or while it starts, on standard error: "rheo: <message>"
/// in the text format, a JSON line (level error) in the json format.
void startup_error(std::string_view message);

/// One line (with its newline) as write() prints it in format `fmt` at time `t`; reals
/// print with three decimals.
std::string format_line(format fmt, level l, std::string_view message, fields f,
                        std::chrono::system_clock::time_point t);

/// `text` with the password of every scheme://user:password@ replaced by "***".
std::string redact_uri_passwords(std::string_view text);

// -- the access log ------------------------------------------------------------

/// Where access lines go: "" (off, the default), "-" or "stderr", or a file (appended to,
/// created with mode 0640). Throws std::runtime_error when the file cannot be opened.
void open_access_log(const std::string& where);
/// Whether the access log is on (one relaxed atomic load: callers check it before they
/// gather anything for a line).
bool access_log_enabled();
/// Opens the access log file again under its name (after a rotation moved it away); keeps
/// the old file when the name cannot be opened, and answers false then.
bool reopen_access_log();
/// Writes one access line (message "access") with `f`, if the access log is on.
void access(fields f);

} // namespace rheo::log
