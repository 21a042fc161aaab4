#include "config/service.hpp"

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace rheo::service {

bool notify(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (!name || !*name) return false;
  const std::size_t len = std::strlen(name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Only paths and abstract names: other forms (vsock:...) are not for a service of ours.
  if ((name[0] != '/' && name[0] != '@') || len > sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, name, len);
  if (name[0] == '@') addr.sun_path[0] = '\0'; // abstract: the length bounds the name
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);

  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t sent = -1;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

namespace {
/// A positive decimal integer, or 0.
unsigned long long env_number(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return 0;
  unsigned long long v = 0;
  const char* end = text + std::strlen(text);
  auto [p, ec] = std::from_chars(text, end, v);
  return ec == std::errc() && p == end ? v : 0;
}
} // namespace

std::chrono::microseconds watchdog_interval() {
  const unsigned long long usec = env_number("WATCHDOG_USEC");
  if (usec == 0) return {};
  if (std::getenv("WATCHDOG_PID") &&
      env_number("WATCHDOG_PID") != static_cast<unsigned long long>(::getpid()))
    return {};
  return std::chrono::microseconds(usec);
}

watchdog::watchdog(std::chrono::microseconds period, std::function<bool()> alive)
    : period_(period), alive_(std::move(alive)) {
  if (period_.count() > 0) thread_ = std::thread([this] { run(); });
}

watchdog::~watchdog() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void watchdog::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void watchdog::run() {
  // On a fixed schedule, so that a slow check does not delay the pings after it.
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    if (alive_()) notify("WATCHDOG=1");
    lock.lock();
    next += period_;
    wake_.wait_until(lock, next, [this] { return stopping_; });
  }
}

std::string default_web_dir(const std::string& installed_relative, const std::string& source_dir) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = (exe.parent_path() / installed_relative).lexically_normal();
    if (std::filesystem::is_regular_file(installed / "index.html", ec)) return installed.string();
  }
  return source_dir;
}

} // namespace rheo::service
