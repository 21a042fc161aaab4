#include "test/test_support.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RHEO_BINARY
#error "RHEO_BINARY must name the rheo executable"
#endif

namespace rheo::test {

namespace {

using clock = std::chrono::steady_clock;

int remaining_ms(clock::time_point until) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Parses one response at the start of `raw`; returns bytes consumed or 0 if incomplete.
std::size_t parse_one(const std::string& raw, std::size_t from, http_result& out,
                      bool head = false) {
  auto end = raw.find("\r\n\r\n", from);
  if (end == std::string::npos) return 0;
  std::istringstream lines(raw.substr(from, end - from));
  std::string line;
  std::getline(lines, line);
  if (line.rfind("HTTP/1.", 0) != 0) throw std::runtime_error("not an HTTP response: " + line);
  out = {};
  out.status = std::stoi(line.substr(9, 3));
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    out.headers[lower(line.substr(0, colon))] = v;
  }
  std::size_t len = 0;
  if (auto it = out.headers.find("content-length"); it != out.headers.end() && !head)
    len = std::stoul(it->second);
  std::size_t body_start = end + 4;
  if (raw.size() < body_start + len) return 0;
  out.body = raw.substr(body_start, len);
  return body_start + len - from;
}

} // namespace

temp_dir::temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "rheo-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

rheo_process::rheo_process(std::vector<std::string> args, std::string data_dir) {
  data_dir_ = data_dir.empty() ? dir_.path() + "/data" : data_dir;
  log_path_ = dir_.path() + "/rheo.log";
  int out_pipe[2];
  if (::pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> argv_s = {RHEO_BINARY, "--port", "0", "--bind", "127.0.0.1",
                                     "--data-dir", data_dir_};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out_pipe[1], 1);
    int logfd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (logfd >= 0) ::dup2(logfd, 2);
    ::close(out_pipe[0]);
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out_pipe[1]);
  // Wait for "rheo listening on http://127.0.0.1:PORT".
  std::string out;
  auto until = clock::now() + std::chrono::seconds(30);
  while (out.find('\n') == std::string::npos) {
    pollfd p{out_pipe[0], POLLIN, 0};
    int r = ::poll(&p, 1, remaining_ms(until));
    if (r <= 0) break;
    char buf[512];
    ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  auto pos = out.find("127.0.0.1:");
  if (pos == std::string::npos) {
    stop(SIGKILL);
    throw std::runtime_error("rheo did not start: stdout '" + out + "', log: " + log());
  }
  port_ = static_cast<std::uint16_t>(std::stoi(out.substr(pos + 10)));
}

rheo_process::~rheo_process() {
  if (pid_ > 0) stop(SIGKILL);
}

int rheo_process::stop(int sig, std::chrono::seconds deadline) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  auto until = clock::now() + deadline;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (clock::now() > until) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    ::usleep(2000);
  }
  pid_ = -1;
  return status;
}

std::string rheo_process::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

run_result run_rheo(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  temp_dir dir;
  std::string out_path = dir.path() + "/out";
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<std::string> argv_s = {RHEO_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s = env;
    std::vector<char*> envp;
    for (auto& e : env_s)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  run_result r;
  int status = 0;
  auto until = clock::now() + std::chrono::seconds(30);
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.output = "(timed out)";
      return r;
    }
    ::usleep(2000);
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output += ss.str();
  return r;
}

std::string http_result::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds deadline) {
  int fd = connect_to(port);
  std::string out;
  try {
    write_all(fd, bytes);
  } catch (...) {
    // The server may close early (e.g. after rejecting a huge body); keep what it sent.
  }
  auto until = clock::now() + deadline;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, remaining_ms(until));
    if (r <= 0) break;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::vector<http_result> parse_responses(const std::string& raw) {
  std::vector<http_result> out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    http_result r;
    std::size_t n = parse_one(raw, pos, r);
    if (!n) break;
    out.push_back(std::move(r));
    pos += n;
  }
  return out;
}

http_result http(std::uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body,
                 const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_type = false;
  for (auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (lower(k) == "content-type") has_type = true;
  }
  if (!body.empty() && !has_type) req += "Content-Type: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "Connection: close\r\n\r\n" + body;
  int fd = connect_to(port);
  std::string raw;
  http_result res;
  auto until = clock::now() + std::chrono::seconds(30);
  try {
    write_all(fd, req);
    while (true) {
      if (parse_one(raw, 0, res, method == "HEAD")) break;
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, remaining_ms(until));
      if (r <= 0) throw std::runtime_error("timeout waiting for " + method + " " + target);
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
      if (n == 0) {
        if (parse_one(raw, 0, res, method == "HEAD")) break;
        throw std::runtime_error("connection closed before a full response to " + method + " " +
                                 target + ": '" + raw + "'");
      }
      raw.append(buf, static_cast<std::size_t>(n));
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return res;
}

} // namespace rheo::test
