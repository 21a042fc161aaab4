// Minimal leveled logging to stderr, one line per message.
//
// Thread-safety: all functions may be called from any thread; each line is written
// with a single write so lines from different threads do not interleave.
#pragma once

#include <string_view>

namespace rheo::log {

enum class level { error = 0, warn = 1, info = 2, debug = 3 };

/// Sets the threshold ("error", "warn", "info", "debug").
void set_level(std::string_view name);
bool enabled(level l);
void write(level l, std::string_view message);

inline void error(std::string_view m) {
  write(level::error, m);
}
inline void warn(std::string_view m) {
  write(level::warn, m);
}
inline void info(std::string_view m) {
  write(level::info, m);
}
inline void debug(std::string_view m) {
  if (enabled(level::debug)) write(level::debug, m);
}

} // namespace rheo::log
