// Shared by the libFuzzer targets of test/fuzz: splitting an input into the parts a target
// feeds to the code under test, and failing loudly on a broken invariant (libFuzzer then
// saves the input as a crash).
//
// Thread-safety: free functions without shared state; libFuzzer runs a target on one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace rheo::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The input's lines ('\n' separated; the last one may lack its '\n'), at most `max` of
/// them: the last part then holds the rest, newlines included.
inline std::vector<std::string_view> split_lines(std::string_view text, std::size_t max) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max) {
    auto nl = text.find('\n');
    if (nl == std::string_view::npos) break;
    parts.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  parts.push_back(text);
  return parts;
}

/// A broken invariant: prints what and aborts (a crash for libFuzzer).
[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz invariant broken: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

} // namespace rheo::fuzz
