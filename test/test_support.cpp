#include "test/test_support.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <mutex>
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
// The MongoDB driver keeps its counters in /dev/shm/mongoc-<pid>, created when the library
// loads and never removed after kill -9; a later process whose pid finds a stale file warns
// on stderr ("Falling back to malloc for counters"), which tests reading the output see.
constexpr const char* no_driver_shm = "MONGOC_DISABLE_SHM=1";

// all_server_logs(): the running processes, and the logs of those that ended.
struct log_archive {
  std::mutex mutex;
  std::vector<const rheo_process*> running;
  std::vector<std::string> ended;
};
log_archive& archive() {
  // Never destroyed: processes held by static objects of a test end after it would.
  static auto* a = new log_archive;
  return *a;
}
} // namespace

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

/// A header `name: value` that is Host replaces the request's default Host line; true then.
bool set_host(std::string& request, const std::string& name, const std::string& value) {
  if (lower(name) != "host") return false;
  const std::string default_host = "Host: 127.0.0.1\r\n";
  if (auto pos = request.find(default_host); pos != std::string::npos)
    request.replace(pos, default_host.size(), "Host: " + value + "\r\n");
  return true;
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
  std::vector<std::string> argv_s = {RHEO_BINARY, "--port",     "0",      "--bind",
                                     "127.0.0.1", "--data-dir", data_dir_};
  bool has_acl = false;
  for (auto& a : args)
    has_acl = has_acl || a == "--acl" || a == "--config";
  if (!has_acl) {
    // Most tests exercise the data API, not the ACL: let everyone do everything.
    argv_s.push_back("--acl");
    argv_s.push_back(
        R"acl([{"roles":["$unauthenticated","$authenticated"],"predicate":"path-prefix('/')"}])acl");
  }
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e)
    envp.push_back(*e);
  std::string shm = no_driver_shm;
  envp.push_back(shm.data());
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out_pipe[1], 1);
    int logfd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (logfd >= 0) ::dup2(logfd, 2);
    ::close(out_pipe[0]);
    ::execve(argv[0], argv.data(), envp.data());
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
  listening_line_ = out.substr(0, out.find('\n'));
  std::lock_guard lock(archive().mutex);
  archive().running.push_back(this);
}

rheo_process::~rheo_process() {
  if (pid_ > 0) stop(SIGKILL);
  auto& a = archive();
  std::lock_guard lock(a.mutex);
  auto it = std::find(a.running.begin(), a.running.end(), this);
  if (it == a.running.end()) return;
  a.running.erase(it);
  a.ended.push_back(log());
}

std::string base64(std::string_view in, bool url) {
  static const char* std_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  while (i + 2 < in.size()) {
    unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6)
      out += std_chars[(n >> s) & 63];
    i += 3;
  }
  if (i < in.size()) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += std_chars[(n >> 18) & 63];
    out += std_chars[(n >> 12) & 63];
    out += i + 1 < in.size() ? std_chars[(n >> 6) & 63] : '=';
    out += '=';
  }
  if (url) {
    for (auto& c : out)
      c = c == '+' ? '-' : (c == '/' ? '_' : c);
    while (!out.empty() && out.back() == '=')
      out.pop_back();
  }
  return out;
}

std::string hs256_jwt(const std::string& payload, const std::string& key) {
  std::string signing =
      base64(R"({"alg":"HS256","typ":"JWT"})", true) + "." + base64(payload, true);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &len);
  return signing + "." + base64(std::string(reinterpret_cast<char*>(mac), len), true);
}

std::vector<std::string> all_server_logs() {
  auto& a = archive();
  std::lock_guard lock(a.mutex);
  std::vector<std::string> logs = a.ended;
  for (auto* p : a.running)
    logs.push_back(p->log());
  return logs;
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

pid_t spawn_rheo(const std::vector<std::string>& args, const std::string& log,
                 const std::vector<std::string>& env) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<std::string> argv_s = {RHEO_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s = env;
    env_s.push_back(no_driver_shm);
    std::vector<char*> envp;
    for (auto& e : env_s)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

run_result run_rheo(const std::vector<std::string>& args, const std::vector<std::string>& env,
                    std::chrono::seconds deadline) {
  temp_dir dir;
  std::string out_path = dir.path() + "/out";
  const pid_t pid = spawn_rheo(args, out_path, env);
  run_result r;
  int status = 0;
  auto until = clock::now() + deadline;
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
  if (args.empty() || args[0] != "hash-password") {
    std::lock_guard lock(archive().mutex);
    archive().ended.push_back(r.output);
  }
  return r;
}

std::string http_result::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

void reset_peak_rss(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  if (!out.good()) throw std::runtime_error("cannot reset VmHWM of " + std::to_string(pid));
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int connect_to(std::uint16_t port, int receive_buffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  if (receive_buffer > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
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
    if (set_host(req, k, v)) continue;
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

namespace rheo::test {

std::string client_frame(std::uint8_t first_byte, std::string_view payload) {
  std::string out;
  out += static_cast<char>(first_byte);
  std::size_t n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n <= 0xFFFF) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xFF);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int s = 56; s >= 0; s -= 8)
      out += static_cast<char>((static_cast<std::uint64_t>(n) >> s) & 0xFF);
  }
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  out.append(mask, 4);
  for (std::size_t i = 0; i < n; ++i)
    out += static_cast<char>(payload[i] ^ mask[i & 3]);
  return out;
}

std::uint16_t ws_client::frame::close_code() const {
  if (payload.size() < 2) return 0;
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                    static_cast<std::uint8_t>(payload[1]));
}

namespace {

/// Sends `request` (a request line and headers, without the blank line) plus `headers` on
/// `fd` and reads the response head. Returns the status. When it is not `expected`, reads
/// the error response's body into `error_body` and clears `buf`; otherwise `buf` keeps what
/// follows the head, and `head` (when given) receives the head's header lines.
int stream_request(int fd, std::string request,
                   const std::vector<std::pair<std::string, std::string>>& headers, int expected,
                   std::string& buf, std::string& error_body, std::string* head = nullptr) {
  for (auto& [k, v] : headers)
    if (!set_host(request, k, v)) request += k + ": " + v + "\r\n";
  request += "\r\n";
  write_all(fd, request);
  auto until = clock::now() + std::chrono::seconds(30);
  while (buf.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(until)) <= 0)
      throw std::runtime_error("timeout waiting for the response head");
    char b[4096];
    ssize_t n = ::recv(fd, b, sizeof b, 0);
    if (n <= 0) throw std::runtime_error("connection closed before the response head");
    buf.append(b, static_cast<std::size_t>(n));
  }
  const int status = std::stoi(buf.substr(9, 3));
  const std::size_t head_end = buf.find("\r\n\r\n");
  if (status != expected) {
    http_result r;
    // Read the rest of the error body (the server closes after it).
    std::string raw = buf;
    while (!parse_one(raw, 0, r)) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, remaining_ms(until)) <= 0) break;
      char b[4096];
      ssize_t n = ::recv(fd, b, sizeof b, 0);
      if (n <= 0) break;
      raw.append(b, static_cast<std::size_t>(n));
    }
    error_body = r.body;
    buf.clear();
    return status;
  }
  if (head) *head = buf.substr(0, head_end + 2);
  buf.erase(0, head_end + 4);
  return status;
}

} // namespace

std::string ws_client::frame::close_reason() const {
  return payload.size() > 2 ? payload.substr(2) : std::string();
}

ws_client::ws_client(std::uint16_t port, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     int receive_buffer) {
  fd_ = connect_to(port, receive_buffer);
  std::string req = "GET " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  status_ = stream_request(fd_, req, headers, 101, buf_, error_body_);
}

ws_client::~ws_client() {
  if (fd_ >= 0) ::close(fd_);
}

bool ws_client::parse_buffered(frame& f) {
  while (true) {
    if (buf_.size() < 2) return false;
    auto b0 = static_cast<std::uint8_t>(buf_[0]);
    auto b1 = static_cast<std::uint8_t>(buf_[1]);
    std::size_t pos = 2;
    std::uint64_t len = b1 & 0x7F;
    if (len == 126) {
      if (buf_.size() < 4) return false;
      len = (static_cast<std::uint8_t>(buf_[2]) << 8) | static_cast<std::uint8_t>(buf_[3]);
      pos = 4;
    } else if (len == 127) {
      if (buf_.size() < 10) return false;
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | static_cast<std::uint8_t>(buf_[2 + i]);
      pos = 10;
    }
    if (b1 & 0x80) throw std::runtime_error("server frames must not be masked");
    if (buf_.size() < pos + len) return false;
    f.opcode = b0 & 0x0F;
    f.payload = buf_.substr(pos, len);
    buf_.erase(0, pos + len);
    if (f.opcode == 9) {
      send_frame(10, f.payload);
      continue;
    }
    return true;
  }
}

ws_client::frame ws_client::next(std::chrono::milliseconds deadline) {
  frame f;
  auto until = clock::now() + deadline;
  while (!parse_buffered(f)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(until)) <= 0) return frame{-1, {}};
    char b[65536];
    ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n <= 0) return frame{-2, {}};
    buf_.append(b, static_cast<std::size_t>(n));
  }
  return f;
}

bool ws_client::poll_frames(std::vector<frame>& out) {
  bool alive = true;
  while (true) {
    char b[65536];
    ssize_t n = ::recv(fd_, b, sizeof b, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(b, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) alive = false;
    break;
  }
  frame f;
  while (parse_buffered(f))
    out.push_back(std::move(f));
  return alive;
}

void ws_client::send_frame(int opcode, const std::string& payload, bool fin) {
  write_all(fd_, client_frame(static_cast<std::uint8_t>((fin ? 0x80 : 0) | opcode), payload));
}

void ws_client::send_raw(const std::string& bytes) {
  write_all(fd_, bytes);
}

void ws_client::close(std::uint16_t code) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xFF);
  send_frame(8, p);
}

} // namespace rheo::test

namespace rheo::test {

sse_client::sse_client(std::uint16_t port, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       int receive_buffer) {
  fd_ = connect_to(port, receive_buffer);
  std::string head;
  status_ = stream_request(fd_,
                           "GET " + target +
                               " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n",
                           headers, 200, buf_, error_body_, &head);
  // Header lines after the status line.
  std::size_t line = head.find("\r\n");
  while (line != std::string::npos && line + 2 < head.size()) {
    line += 2;
    std::size_t eol = head.find("\r\n", line);
    std::string h = head.substr(line, eol - line);
    if (auto colon = h.find(':'); colon != std::string::npos) {
      std::string name = h.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string v = h.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      headers_[name] = v;
    }
    line = eol;
  }
}

sse_client::~sse_client() {
  if (fd_ >= 0) ::close(fd_);
}

std::string sse_client::header(const std::string& lower_name) const {
  auto it = headers_.find(lower_name);
  return it == headers_.end() ? std::string() : it->second;
}

bool sse_client::parse_buffered(event& e) {
  // An event ends with a blank line; fields are "name: value" lines.
  for (;;) {
    std::size_t end = buf_.find("\n\n");
    if (end == std::string::npos) return false;
    std::string block = buf_.substr(0, end + 1);
    buf_.erase(0, end + 2);
    event out;
    bool any = false;
    std::size_t pos = 0;
    while (pos < block.size()) {
      std::size_t eol = block.find('\n', pos);
      std::string l = block.substr(pos, eol - pos);
      pos = eol + 1;
      if (l.empty()) continue;
      if (l[0] == ':') {
        ++comments_;
        last_comment_ = l.substr(l.size() > 1 && l[1] == ' ' ? 2 : 1);
        continue;
      }
      auto colon = l.find(':');
      std::string name = l.substr(0, colon);
      std::string v = colon == std::string::npos ? "" : l.substr(colon + 1);
      if (!v.empty() && v[0] == ' ') v.erase(0, 1);
      any = true;
      if (name == "id")
        out.id = v;
      else if (name == "event")
        out.type = v;
      else if (name == "data")
        out.data += out.data.empty() ? v : "\n" + v;
    }
    if (!any) continue; // only comments
    if (out.type.empty()) out.type = "message";
    e = std::move(out);
    return true;
  }
}

sse_client::event sse_client::next(std::chrono::milliseconds deadline) {
  event e;
  auto until = clock::now() + deadline;
  for (;;) {
    if (parse_buffered(e)) return e;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, remaining_ms(until));
    if (r <= 0) {
      e.timed_out = true;
      return e;
    }
    char b[65536];
    ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n <= 0) {
      e.ended = true;
      return e;
    }
    buf_.append(b, static_cast<std::size_t>(n));
  }
}

const std::string& cluster_secret() {
  static const std::string secret = "cluster-test-secret";
  return secret;
}

std::string loopback(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

std::unique_ptr<rheo_process> start_cluster_core(std::uint16_t cluster_port,
                                                 const std::string& data_dir,
                                                 const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--cluster-listen", loopback(cluster_port), "--cluster-secret",
                                cluster_secret(),   "--node-name",          "core"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<rheo_process>(std::move(args), data_dir);
}

std::unique_ptr<rheo_process> start_cluster_edge(std::uint16_t cluster_port,
                                                 const std::string& name, const std::string& secret,
                                                 const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--cluster-join",
                                loopback(cluster_port),
                                "--cluster-secret",
                                secret,
                                "--node-name",
                                name,
                                "--cluster-reconnect-max-ms",
                                "300"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<rheo_process>(std::move(args));
}

test_cluster::test_cluster(const std::vector<std::string>& edge_names,
                           std::vector<std::string> extra_args)
    : extra(std::move(extra_args)), cluster_port(free_port()) {
  core = start_cluster_core(cluster_port, data.path(), extra);
  for (auto& n : edge_names)
    edges.push_back(start_cluster_edge(cluster_port, n, cluster_secret(), extra));
}

} // namespace rheo::test
