// Test support: a temporary directory, a real `rheo` process on a free port, and a
// minimal blocking HTTP/1.1 client over plain sockets (so tests can also send raw,
// malformed bytes).
//
// Thread-safety: each object is used by one thread; http() may be called from several
// threads at once (it opens its own connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace rheo::test {

class temp_dir {
public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// Runs build/rheo with `--port 0 --bind 127.0.0.1 --data-dir <dir>` plus `args`, and
/// waits (with a deadline) for it to print its port. Unless `args` has --acl or --config,
/// an ACL that allows everything is added.
class rheo_process {
public:
  explicit rheo_process(std::vector<std::string> args = {}, std::string data_dir = "");
  ~rheo_process();
  rheo_process(const rheo_process&) = delete;
  rheo_process& operator=(const rheo_process&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return data_dir_; }
  /// Sends `sig` and waits (with a deadline) for exit; returns the exit status as from
  /// waitpid, or -1 when it did not exit in time (it is then killed).
  int stop(int sig = 15, std::chrono::seconds deadline = std::chrono::seconds(20));
  /// What the process wrote to stderr so far.
  std::string log() const;
  /// The line it wrote to stdout when it began to listen.
  const std::string& listening_line() const { return listening_line_; }

private:
  temp_dir dir_;
  std::string data_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::string listening_line_;
};

/// What every rheo this program started wrote to stderr, one entry per process: the
/// rheo_processes' (the running ones' so far; the ended ones' kept after their directory is
/// gone) and run_rheo()'s output but for `hash-password`'s. For checks over all server logs.
std::vector<std::string> all_server_logs();

/// Runs build/rheo with `args` to completion; returns the exit code and stderr+stdout.
struct run_result {
  int exit_code = -1;
  std::string output;
};
/// Runs rheo with `args` to its end (killed after `deadline`: output "(timed out)").
run_result run_rheo(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                    std::chrono::seconds deadline = std::chrono::seconds(30));
/// Starts build/rheo with `args` (and `env`) without waiting, its stdout and stderr into the
/// file `log`; returns its pid, for the caller to signal and reap (waitpid).
pid_t spawn_rheo(const std::vector<std::string>& args, const std::string& log,
                 const std::vector<std::string>& env = {});

struct http_result {
  int status = 0;
  std::map<std::string, std::string> headers; // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const;
};

/// One request on a fresh connection; a "Host" in `headers` replaces the default
/// (127.0.0.1), as it does for ws_client and sse_client. Throws std::runtime_error on I/O failure
/// or timeout.
http_result http(std::uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body = "",
                 const std::vector<std::pair<std::string, std::string>>& headers = {});

/// Sends raw bytes and reads until the server closes or `deadline` passes; returns
/// everything read.
std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

/// Parses every HTTP response found in `raw` (for pipelining tests).
std::vector<http_result> parse_responses(const std::string& raw);

/// A masked client WebSocket frame: `first_byte` is FIN/RSV/opcode as sent.
std::string client_frame(std::uint8_t first_byte, std::string_view payload);

/// Connects to 127.0.0.1:port; returns the socket fd. Throws on failure. A non-zero
/// `receive_buffer` fixes SO_RCVBUF (small values emulate a client that reads slowly).
int connect_to(std::uint16_t port, int receive_buffer = 0);

/// A loopback port no one listens on now (bound to port 0, then released), for a process
/// that must keep its port across restarts.
std::uint16_t free_port();

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM, ...); -1 when absent.
long proc_status_kib(pid_t pid, const std::string& field);
/// Resets process `pid`'s peak RSS (VmHWM) to its current RSS (clear_refs), so that a later
/// peak is not hidden under an earlier one.
void reset_peak_rss(pid_t pid);

/// Base64 of `in`; `url`: the URL-safe alphabet without padding (as in JWTs).
std::string base64(std::string_view in, bool url = false);
/// A JWT of `payload` signed with HS256 under `key`.
std::string hs256_jwt(const std::string& payload, const std::string& key);

/// Polls `condition` until it is true or `deadline` passes; returns the last result.
template <class F>
bool eventually(F&& condition,
                std::chrono::milliseconds deadline = std::chrono::milliseconds(10000)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    struct timespec ts {
      0, 5 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
  }
}

} // namespace rheo::test

namespace rheo::test {

/// A minimal blocking WebSocket client (masked frames, as RFC 6455 requires of clients).
class ws_client {
public:
  /// Sends the upgrade request for `target`. `upgrade_status()` tells the outcome: 101 on
  /// success, else the HTTP status (and `error_body()`).
  ws_client(std::uint16_t port, const std::string& target,
            const std::vector<std::pair<std::string, std::string>>& headers = {},
            int receive_buffer = 0);
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  int upgrade_status() const { return status_; }
  const std::string& error_body() const { return error_body_; }
  int fd() const { return fd_; }

  struct frame {
    int opcode = -1; // 1 text, 8 close, 9 ping, 10 pong; -1 timeout; -2 connection closed
    std::string payload;
    std::uint16_t close_code() const;
    std::string close_reason() const;
  };
  /// The next data or close frame (pings are answered with pongs automatically);
  /// opcode -1 when `deadline` passed, -2 when the connection ended.
  frame next(std::chrono::milliseconds deadline = std::chrono::milliseconds(10000));
  /// Reads whatever is available without blocking; appends complete frames to `out`.
  /// Returns false when the connection has ended.
  bool poll_frames(std::vector<frame>& out);
  void send_frame(int opcode, const std::string& payload, bool fin = true);
  void send_raw(const std::string& bytes);
  /// Sends a close frame.
  void close(std::uint16_t code = 1000);

private:
  bool parse_buffered(frame& f);
  int fd_ = -1;
  int status_ = 0;
  std::string error_body_;
  std::string buf_;
};

} // namespace rheo::test

namespace rheo::test {

/// A minimal blocking Server-Sent Events client: `GET target` with `Accept:
/// text/event-stream`, then the events of the response as they come.
class sse_client {
public:
  /// Sends the request; `status()` is the response's status (200 on success, else the HTTP
  /// error, with `error_body()`).
  sse_client(std::uint16_t port, const std::string& target,
             const std::vector<std::pair<std::string, std::string>>& headers = {},
             int receive_buffer = 0);
  ~sse_client();
  sse_client(const sse_client&) = delete;
  sse_client& operator=(const sse_client&) = delete;

  int status() const { return status_; }
  const std::string& error_body() const { return error_body_; }
  /// The response's header `lower_name` ("" when absent).
  std::string header(const std::string& lower_name) const;

  struct event {
    std::string id;
    std::string type; // "message" when the event names none
    std::string data;
    bool timed_out = false; // no event before the deadline
    bool ended = false;     // the response ended (connection closed)
  };
  /// The next event; comments (keep-alives) are counted, not returned.
  event next(std::chrono::milliseconds deadline = std::chrono::milliseconds(10000));
  int comments() const { return comments_; }
  /// The text of the last comment line seen (without ": ").
  const std::string& last_comment() const { return last_comment_; }

private:
  bool parse_buffered(event& e);
  int fd_ = -1;
  int status_ = 0;
  std::string error_body_;
  std::map<std::string, std::string> headers_;
  std::string buf_;
  int comments_ = 0;
  std::string last_comment_;
};

/// A cluster of real processes on loopback (section 8 of the contract): a core on the
/// embedded store, and edges that forward their store calls to it, all started with `extra`
/// arguments too. A core restart keeps its data directory and cluster port.
const std::string& cluster_secret();
std::string loopback(std::uint16_t port); // "127.0.0.1:<port>"
std::unique_ptr<rheo_process> start_cluster_core(std::uint16_t cluster_port,
                                                 const std::string& data_dir,
                                                 const std::vector<std::string>& extra = {});
/// An edge with a short reconnect backoff (300 ms), which keeps fault tests quick.
std::unique_ptr<rheo_process> start_cluster_edge(std::uint16_t cluster_port,
                                                 const std::string& name,
                                                 const std::string& secret = cluster_secret(),
                                                 const std::vector<std::string>& extra = {});
struct test_cluster {
  explicit test_cluster(const std::vector<std::string>& edge_names,
                        std::vector<std::string> extra_args = {});
  void restart_core() { core = start_cluster_core(cluster_port, data.path(), extra); }
  std::uint16_t edge_port(std::size_t i) const { return edges.at(i)->port(); }

  std::vector<std::string> extra;
  temp_dir data;
  std::uint16_t cluster_port;
  std::unique_ptr<rheo_process> core;
  std::vector<std::unique_ptr<rheo_process>> edges;
};

} // namespace rheo::test
