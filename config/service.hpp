// rheo as a system service: the systemd notify protocol (READY=1, STOPPING=1, WATCHDOG=1,
// RELOADING=1 as datagrams to $NOTIFY_SOCKET, without libsystemd) and where an installed
// binary finds its files.
//
// Thread-safety: notify() and watchdog_interval() may be called from any thread (each
// notify() uses its own socket). A watchdog is built and destroyed by one thread (the
// destructor joins its thread); stop() may be called from any thread and is idempotent.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace rheo::service {

/// Sends `state` (newline-separated VAR=VALUE assignments, e.g. "READY=1") as one datagram to
/// the AF_UNIX socket named by $NOTIFY_SOCKET: a path, or an abstract name when it starts
/// with '@'. Returns true when sent; false (and sends nothing) when NOTIFY_SOCKET is unset
/// or unusable.
bool notify(std::string_view state);

/// The interval at which the service manager expects WATCHDOG=1: $WATCHDOG_USEC, zero when
/// it is unset, malformed, or $WATCHDOG_PID is set and names another process.
std::chrono::microseconds watchdog_interval();

/// Until stopped, every `period` (a fixed schedule) runs `alive()` on its own thread and
/// sends WATCHDOG=1 when it returns true: a failed check sends nothing, so the service
/// manager sees the hang. A zero period starts no thread.
class watchdog {
public:
  watchdog(std::chrono::microseconds period, std::function<bool()> alive);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// No ping after the one in progress, if any; the destructor joins the thread.
  void stop();

private:
  void run();

  std::chrono::microseconds period_;
  std::function<bool()> alive_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

/// The folder of the chat app: `<prefix>/share/rheo/web` next to an installed binary
/// (found through /proc/self/exe: `installed_relative` is that folder relative to the
/// binary's own folder), else `source_dir` (a binary run from the build folder).
std::string default_web_dir(const std::string& installed_relative, const std::string& source_dir);

} // namespace rheo::service
