#include "config/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <unistd.h>

namespace rheo::log {

namespace {
std::atomic<int> threshold{static_cast<int>(level::info)};
constexpr const char* names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
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

bool enabled(level l) {
  return static_cast<int>(l) <= threshold.load(std::memory_order_relaxed);
}

void write(level l, std::string_view message) {
  if (!enabled(l)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line = stamp;
  line += names[static_cast<int>(l)];
  line += ' ';
  line += message;
  line += '\n';
  [[maybe_unused]] auto n = ::write(2, line.data(), line.size());
}

} // namespace rheo::log
