// config/service: the systemd notify protocol on a datagram socket of the test's own, first
// the functions, then a real rheo process (READY=1 once it accepts connections, STOPPING=1
// on SIGTERM, WATCHDOG=1 with WATCHDOG_USEC).
#include <boost/test/unit_test.hpp>

#include "config/service.hpp"
#include "test/test_support.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

BOOST_AUTO_TEST_SUITE(service_test)

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// A bound AF_UNIX datagram socket: a path in `dir`, or an abstract name.
class notify_socket {
public:
  /// `name`: a path, or "@name" for an abstract socket (as in NOTIFY_SOCKET).
  explicit notify_socket(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name_.data(), name_.size());
    if (name_[0] == '@') addr.sun_path[0] = '\0';
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0)
      throw std::runtime_error(std::string("bind ") + name_ + ": " + std::strerror(errno));
  }
  ~notify_socket() {
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  const std::string& name() const { return name_; }

  /// The next datagram, or nothing when none arrives within `deadline`.
  std::optional<std::string> next(std::chrono::milliseconds deadline = 10000ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  /// True when a datagram is waiting (without waiting for one).
  bool pending() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

private:
  std::string name_;
  int fd_ = -1;
};

/// Sets an environment variable for the scope (the previous value comes back after).
class scoped_env {
public:
  scoped_env(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~scoped_env() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string abstract_name() {
  static std::atomic<int> n{0};
  return "@rheo-service-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

/// A rheo process on `port` whose environment has NOTIFY_SOCKET and `watchdog_usec`
/// (WATCHDOG_PID: its own pid, or its parent's when `foreign_watchdog_pid`). Its output goes
/// to a file: nothing here waits for it, the notify socket tells.
class notified_rheo {
public:
  notified_rheo(const notify_socket& sock, std::uint16_t port, std::string watchdog_usec = "",
                bool foreign_watchdog_pid = false) {
    const std::string data = dir_.path() + "/data", log = dir_.path() + "/rheo.log";
    std::vector<std::string> args = {RHEO_BINARY, "--port",      std::to_string(port),
                                     "--bind",    "127.0.0.1",   "--data-dir",
                                     data,        "--log-level", "info"};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = {"NOTIFY_SOCKET=" + sock.name(), "MONGOC_DISABLE_SHM=1"};
    if (!watchdog_usec.empty()) env.push_back("WATCHDOG_USEC=" + watchdog_usec);
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0 && std::strncmp(*e, "WATCHDOG_", 9) != 0)
        env.emplace_back(*e);
    // WATCHDOG_PID is known only in the child: its text is written there into this buffer.
    std::string watchdog_pid(64, '\0');
    std::vector<char*> envp;
    for (auto& e : env)
      envp.push_back(e.data());
    if (!watchdog_usec.empty()) envp.push_back(watchdog_pid.data());
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      if (!watchdog_usec.empty()) {
        // async-signal-safe formatting of the pid
        char digits[24];
        int n = 0;
        for (long v = foreign_watchdog_pid ? ::getppid() : ::getpid(); v > 0; v /= 10)
          digits[n++] = static_cast<char>('0' + v % 10);
        char* out = watchdog_pid.data();
        for (const char* p = "WATCHDOG_PID="; *p; ++p)
          *out++ = *p;
        while (n > 0)
          *out++ = digits[--n];
        *out = '\0';
      }
      ::execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
  }
  ~notified_rheo() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  notified_rheo(const notified_rheo&) = delete;
  notified_rheo& operator=(const notified_rheo&) = delete;

  pid_t pid() const { return pid_; }
  /// The exit status (as waitpid's) once it exits within `deadline`, else -1.
  int wait_exit(std::chrono::milliseconds deadline = 20000ms) {
    bool exited = rheo::test::eventually([&] { return ::waitpid(pid_, &status_, WNOHANG) == pid_; },
                                         deadline);
    if (!exited) return -1;
    pid_ = -1;
    return status_;
  }
  std::string log() const {
    std::string text;
    if (FILE* f = std::fopen((dir_.path() + "/rheo.log").c_str(), "r")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        text.append(buf, n);
      std::fclose(f);
    }
    return text;
  }

private:
  rheo::test::temp_dir dir_;
  pid_t pid_ = -1;
  int status_ = 0;
};

/// True when a TCP connection to 127.0.0.1:port is accepted at once (no retry).
bool accepts_now(std::uint16_t port) {
  try {
    int fd = rheo::test::connect_to(port);
    ::close(fd);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(notify_sends_the_state_as_one_datagram_to_a_path_socket) {
  rheo::test::temp_dir dir;
  notify_socket sock(dir.path() + "/notify");
  scoped_env env("NOTIFY_SOCKET", sock.name());
  BOOST_TEST(rheo::service::notify("READY=1\nSTATUS=up"));
  BOOST_TEST(sock.next(2000ms).value_or("<none>") == "READY=1\nSTATUS=up");
  BOOST_TEST(rheo::service::notify("RELOADING=1"));
  BOOST_TEST(sock.next(2000ms).value_or("<none>") == "RELOADING=1");
}

BOOST_AUTO_TEST_CASE(notify_reaches_an_abstract_socket_named_with_an_at_sign) {
  notify_socket sock(abstract_name());
  scoped_env env("NOTIFY_SOCKET", sock.name());
  BOOST_TEST(rheo::service::notify("STOPPING=1"));
  BOOST_TEST(sock.next(2000ms).value_or("<none>") == "STOPPING=1");
}

BOOST_AUTO_TEST_CASE(notify_sends_nothing_without_a_usable_notify_socket) {
  {
    scoped_env env("NOTIFY_SOCKET", std::nullopt);
    BOOST_TEST(!rheo::service::notify("READY=1"));
  }
  for (const char* bad : {"", "relative/path", "vsock:2:1234"}) {
    scoped_env env("NOTIFY_SOCKET", std::string(bad));
    BOOST_TEST(!rheo::service::notify("READY=1"), bad);
  }
  rheo::test::temp_dir dir; // a path no one listens on
  scoped_env env("NOTIFY_SOCKET", dir.path() + "/absent");
  BOOST_TEST(!rheo::service::notify("READY=1"));
}

BOOST_AUTO_TEST_CASE(watchdog_interval_is_watchdog_usec_for_this_process_only) {
  {
    scoped_env usec("WATCHDOG_USEC", std::nullopt);
    scoped_env pid("WATCHDOG_PID", std::nullopt);
    BOOST_TEST(rheo::service::watchdog_interval().count() == 0);
  }
  scoped_env usec("WATCHDOG_USEC", std::string("200000"));
  {
    scoped_env pid("WATCHDOG_PID", std::nullopt);
    BOOST_TEST(rheo::service::watchdog_interval().count() == 200000);
  }
  {
    scoped_env pid("WATCHDOG_PID", std::to_string(::getpid()));
    BOOST_TEST(rheo::service::watchdog_interval().count() == 200000);
  }
  {
    scoped_env pid("WATCHDOG_PID", std::to_string(::getppid()));
    BOOST_TEST(rheo::service::watchdog_interval().count() == 0);
  }
  for (const char* bad : {"", "abc", "-5", "100ms"}) {
    scoped_env bad_usec("WATCHDOG_USEC", std::string(bad));
    BOOST_TEST(rheo::service::watchdog_interval().count() == 0, bad);
  }
}

BOOST_AUTO_TEST_CASE(the_watchdog_pings_only_when_its_check_passes) {
  notify_socket sock(abstract_name());
  scoped_env env("NOTIFY_SOCKET", sock.name());
  {
    std::atomic<int> checks{0};
    rheo::service::watchdog dog(20ms, [&] { return ++checks > 0; });
    for (int i = 0; i < 3; ++i)
      BOOST_TEST(sock.next(2000ms).value_or("<none>") == "WATCHDOG=1");
  }
  while (sock.pending()) // pings sent before the watchdog stopped
    sock.next(0ms);
  std::atomic<int> checks{0};
  {
    rheo::service::watchdog dog(5ms, [&] {
      ++checks;
      return false;
    });
    BOOST_TEST(rheo::test::eventually([&] { return checks.load() >= 3; }, 5000ms));
  }
  // Each check's answer was acted on before the next check began (one thread), and a
  // datagram is queued when sendto returns: any ping would be waiting by now.
  BOOST_TEST(!sock.pending());
  // A zero period starts nothing.
  std::atomic<int> never{0};
  {
    rheo::service::watchdog off(std::chrono::microseconds(0), [&] { return ++never > 0; });
  }
  BOOST_TEST(never.load() == 0);
}

BOOST_AUTO_TEST_CASE(the_web_dir_is_the_installed_one_when_it_has_an_index_html) {
  rheo::test::temp_dir dir;
  // Relative to this test binary's folder, as the installed path is to bin/rheo.
  char exe[4096] = {};
  BOOST_REQUIRE(::readlink("/proc/self/exe", exe, sizeof exe - 1) > 0);
  std::string from = exe;
  from = from.substr(0, from.rfind('/'));
  std::string up;
  for (char c : from)
    if (c == '/') up += "../";
  const std::string relative = up + dir.path().substr(1) + "/web";
  BOOST_TEST(rheo::service::default_web_dir(relative, "/src/web") == "/src/web");
  ::mkdir((dir.path() + "/web").c_str(), 0755);
  BOOST_TEST(rheo::service::default_web_dir(relative, "/src/web") == "/src/web"); // no index
  if (FILE* f = std::fopen((dir.path() + "/web/index.html").c_str(), "w")) std::fclose(f);
  BOOST_TEST(rheo::service::default_web_dir(relative, "/src/web") == dir.path() + "/web");
}

BOOST_AUTO_TEST_CASE(rheo_is_ready_once_it_accepts_connections_and_says_stopping_on_sigterm) {
  rheo::test::temp_dir dir;
  notify_socket sock(dir.path() + "/notify");
  const std::uint16_t port = rheo::test::free_port();
  notified_rheo rheo(sock, port);
  auto ready = sock.next(30000ms);
  BOOST_REQUIRE_MESSAGE(ready, "no READY=1; log: " + rheo.log());
  // Checked at once: READY=1 is sent only once the port accepts connections.
  BOOST_TEST(accepts_now(port));
  BOOST_TEST(ready->find("READY=1\n") == 0, *ready);
  BOOST_TEST(ready->find("MAINPID=" + std::to_string(rheo.pid()) + "\n") != std::string::npos,
             *ready);
  BOOST_TEST(rheo::test::http(port, "GET", "/_ping").status == 200);
  ::kill(rheo.pid(), SIGTERM);
  // The next datagram: without WATCHDOG_USEC there are no pings in between.
  BOOST_TEST(sock.next(10000ms).value_or("<none>") == "STOPPING=1");
  int status = rheo.wait_exit();
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
}

BOOST_AUTO_TEST_CASE(rheo_pings_the_watchdog_twice_per_watchdog_usec) {
  rheo::test::temp_dir dir;
  notify_socket sock(dir.path() + "/notify");
  const std::uint16_t port = rheo::test::free_port();
  notified_rheo rheo(sock, port, "200000");
  auto ready = sock.next(30000ms);
  BOOST_REQUIRE_MESSAGE(ready, "no READY=1; log: " + rheo.log());
  BOOST_TEST(ready->find("READY=1\n") == 0, *ready);
  // 200 ms: a ping every 100 ms. Ten arrive well within the deadline, also on a loaded host.
  const auto start = clock_type::now();
  for (int i = 0; i < 10; ++i)
    BOOST_TEST_REQUIRE(sock.next(5000ms).value_or("<none>") == "WATCHDOG=1");
  const auto elapsed = clock_type::now() - start;
  BOOST_TEST_MESSAGE("10 pings in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                     << " ms");
  // Not faster than the schedule: 10 pings after READY take at least 9 periods.
  BOOST_TEST(elapsed >= 850ms);
  ::kill(rheo.pid(), SIGTERM);
  bool stopping = false;
  for (int i = 0; i < 5 && !stopping; ++i) // a ping may cross the signal
    stopping = sock.next(10000ms).value_or("<none>") == "STOPPING=1";
  BOOST_TEST(stopping);
  int status = rheo.wait_exit();
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
}

BOOST_AUTO_TEST_CASE(rheo_does_not_ping_a_watchdog_meant_for_another_process) {
  rheo::test::temp_dir dir;
  notify_socket sock(dir.path() + "/notify");
  const std::uint16_t port = rheo::test::free_port();
  notified_rheo rheo(sock, port, "200000", /*foreign_watchdog_pid=*/true);
  auto ready = sock.next(30000ms);
  BOOST_REQUIRE_MESSAGE(ready, "no READY=1; log: " + rheo.log());
  // Requests take the server through several would-be ping periods (100 ms each).
  const auto until = clock_type::now() + 500ms;
  while (clock_type::now() < until)
    BOOST_TEST_REQUIRE(rheo::test::http(port, "GET", "/_ping").status == 200);
  ::kill(rheo.pid(), SIGTERM);
  BOOST_TEST(sock.next(10000ms).value_or("<none>") == "STOPPING=1");
  BOOST_TEST(rheo.wait_exit() != -1);
}

BOOST_AUTO_TEST_SUITE_END()
