// rheo-bench: load generator for rheo's WebSocket change streams and REST API.
//
// Worker threads each own an epoll instance and a share of the connections: WebSocket
// subscribers (which parse frames and record latency = receive time - the document's "t"),
// optional slow subscribers (tiny receive buffer, never read until the end), and HTTP
// clients (writers posting time-stamped documents at a paced rate, or GET load). The main
// thread runs the phases (connect, idle hold, rate steps, drain, close), samples the server
// from /proc/<pid>, and writes JSON, a markdown row and an SVG plot.
//
// Live queries (--live, S11): subscribers follow GET /<coll>/_live?... instead of a stream,
// keep their copy of the result by applying its init and diff frames, and at the end each
// copy is compared with what GET /<coll> answers with the same parameters.
//
// Presence (--presence, S12): subscribers join a presence stream with ?presence={"c":<id>,
// "g":<generation>}, some also with presenceEvents=true (listeners), which keep the member
// list the frames tell them and time each join and leave from the moment the member's
// handshake completed or its close was sent; at the end every listener's list and the
// server's GET .../_presence are compared with the members the harness holds open.
//
// TLS (--tls, issue 29): every connection (subscribers over wss://, HTTP clients over https://,
// the main thread's requests) runs OpenSSL on the same non-blocking socket and epoll loop. A
// connection holds an SSL* only then; the plain path's I/O is as before, behind one test of
// that pointer.
#include "bench/histogram.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace bench {
namespace {

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < static_cast<int>(sizeof buf)) return std::string(buf, static_cast<std::size_t>(n));
  std::string big(static_cast<std::size_t>(n) + 1, '\0');
  va_start(ap, fmt);
  vsnprintf(big.data(), big.size(), fmt, ap);
  va_end(ap);
  big.resize(static_cast<std::size_t>(n));
  return big;
}

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += format("%%%02X", c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Options

struct options {
  std::string host = "127.0.0.1";
  int port = 8080;
  // TLS: wss:// and https:// instead of ws:// and http://; the server's certificate checked
  // against tls_ca (its address, or tls_name also sent as SNI) or, without one, not at all.
  bool tls = false;
  std::string tls_ca, tls_name;
  std::string coll = "bench";
  std::string stream = "all";
  bool setup = false;         // PUT /<coll> with the stream definition first
  bool per_user = false;      // each subscriber gets its own window [lo, hi) on field k
  unsigned user_window = 100; // subscribers matched by one event in per-user mode
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  unsigned subscribers = 0;
  unsigned slow_subscribers = 0;
  int slow_rcvbuf = 4096;
  unsigned connect_concurrency = 1000;
  unsigned src_per_addr = 25000; // connections per loopback source address
  unsigned first_id = 0;         // subscriber ids start here (several client processes)
  unsigned http_conns = 1;
  std::string http_method = "POST"; // POST (time-stamped documents) or GET
  std::string http_path;            // GET target; POST goes to /<coll>
  std::string authorization;        // "Authorization: Basic ...\r\n" for --basic, else empty
  unsigned pipeline = 16;
  unsigned doc_bytes = 100;
  double rate = 100;      // requests/s over all HTTP connections (0: as fast as possible)
  double rate_mult = 1.0; // rising rate: step i runs at rate * rate_mult^i + rate_add * i
  double rate_add = 0;
  unsigned steps = 1;
  double step_seconds = 10;
  double hold_seconds = 0;   // idle time after connecting, before load
  double stop_p99_ms = 2000; // stop rising when a step's p99 exceeds this
  double p99_limit_ms = 50;  // "held" rate: p99 under this
  double drain_seconds = 10;
  double slow_drain_seconds = 3;
  double connect_timeout = 120;
  double close_timeout = 30;
  int server_pid = 0;
  std::vector<int> sub_ports; // subscriber i connects to sub_ports[i % size]; empty: port
  struct node {               // a process of a cluster, sampled like the server
    std::string name;
    int pid = 0;
  };
  std::vector<node> nodes;
  int cluster_port = 0; // a core's HTTP port: its /_cluster and bytes sent to each peer
  std::string label = "run";
  std::string out; // prefix for .json/.md/.svg
  // Churn (S8): each wave closes this fraction of the subscribers and reconnects them. A
  // wave runs on SIGUSR1, or every churn_seconds (> 0); SIGUSR2 ends the load step early.
  double churn = 0;
  double churn_seconds = 0;
  std::string progress; // a line per wave (and one when the load starts) is appended here
  // Live queries (S11): subscriber i follows /<coll>/_live with query number i % live_queries
  // ("<k>" in the filter stands for that number); writers post chat messages instead.
  bool live = false;
  std::string live_filter, live_sort, live_keys;
  unsigned live_pagesize = 0; // 0: the server's default window
  unsigned live_queries = 1;
  unsigned live_joiners = 0;  // clients that join during the first load step
  unsigned chat_users = 1000; // messages are "from" u0 .. u<chat_users - 1>
  double delete_fraction = 0; // this share of the writes deletes a message inside a window
  // Presence (S12): subscribers join the stream as members (?presence={"c":id,"g":gen}); the
  // first presence_listeners of them, evenly spread, also ask for presence events.
  bool presence = false;
  unsigned presence_listeners = 0;
  // The first churn wave this far into the load (-1: churn_seconds); waves that close only
  // members that are not listeners.
  double churn_first_seconds = -1;
  bool churn_skip_listeners = false;
};

[[noreturn]] void usage(int code) {
  std::fputs(
      "usage: rheo-bench [options]\n"
      "  --host H --port P          server (default 127.0.0.1:8080)\n"
      "  --tls                      speak TLS: wss:// and https:// (certificate not verified)\n"
      "  --tls-ca FILE              verify the server's certificate against this PEM CA file\n"
      "                             (for --host's address, or --tls-name); implies --tls\n"
      "  --tls-name NAME            server name sent as SNI and verified; implies --tls\n"
      "  --coll C --stream S        collection and stream uri (default bench, all)\n"
      "  --setup                    PUT /<coll> declaring the stream first\n"
      "  --per-user --user-window K subscriber i gets avars {lo:i,hi:i+K}; the stream matches\n"
      "                             fullDocument.k in [lo,hi); writers set k uniformly\n"
      "  --subscribers N            WebSocket subscribers\n"
      "  --slow-subscribers M       subscribers that never read (until the end), small rcvbuf\n"
      "  --slow-rcvbuf BYTES        their SO_RCVBUF (default 4096)\n"
      "  --threads T                worker threads (default: number of cores)\n"
      "  --connect-concurrency C    handshakes in flight (default 1000)\n"
      "  --src-per-addr N           connections per loopback source address (default 25000)\n"
      "  --first-id N               first subscriber id, for several client processes: ids pick\n"
      "                             the source address and the per-user window\n"
      "  --http-conns W             HTTP client connections (writers) (default 1)\n"
      "  --http-method POST|GET     POST time-stamped documents to /<coll>, or GET --http-path\n"
      "  --http-path PATH           GET target (already URL-encoded)\n"
      "  --basic USER:PASSWORD      send HTTP Basic credentials with every HTTP request\n"
      "  --pipeline D               requests in flight per HTTP connection (default 16)\n"
      "  --doc-bytes B              approximate document size (default 100)\n"
      "  --rate R                   requests/s over all HTTP connections, 0 = max (default 100)\n"
      "  --rate-mult X --rate-add Y step i runs at R * X^i + Y * i\n"
      "  --steps K --step-seconds S rate steps and their duration (default 1, 10)\n"
      "  --hold-seconds S           idle time after connecting, before load\n"
      "  --stop-p99-ms MS           stop rising once a step's p99 exceeds this (default 2000)\n"
      "  --p99-limit-ms MS          p99 bound for the best held step (default 50)\n"
      "  --drain-seconds S          max wait for in-flight deliveries after load (default 10)\n"
      "  --slow-drain-seconds S     how long slow subscribers read at the end (default 3)\n"
      "  --server-pid PID           sample the server's RSS and CPU from /proc\n"
      "  --sub-ports P1,P2,...      spread subscribers over these ports (a cluster's nodes);\n"
      "                             writers and metrics stay on --port\n"
      "  --node NAME=PID            a cluster node: its CPU per delivery in each step (repeat)\n"
      "  --cluster-port P           a core's HTTP port: /_cluster while connected, and the\n"
      "                             bytes it sent to each peer per acknowledged insert\n"
      "  --label NAME --out PREFIX  writes PREFIX.json, PREFIX.md, PREFIX.svg\n"
      "  --churn F                  churn waves: each closes this fraction of the subscribers\n"
      "                             and reconnects them (needs --http-conns 1: documents carry\n"
      "                             a sequence number \"n\", so subscribers count missing and\n"
      "                             duplicate events); a wave runs on each SIGUSR1\n"
      "  --churn-seconds S          and also every S seconds of load; SIGUSR2 ends the load\n"
      "                             step early\n"
      "  --progress FILE            append a line of counts when the load starts and after\n"
      "                             each wave (every subscriber reconnected)\n"
      "  --live                     subscribers follow the live query GET /<coll>/_live?... and\n"
      "                             apply its frames; writers POST chat messages {from, message,\n"
      "                             timestamp, t}; at the end every client's array is compared\n"
      "                             with GET /<coll> with the same parameters\n"
      "  --live-filter F --live-sort S --live-keys K --live-pagesize N\n"
      "                             the query's parameters (not encoded; \"<k>\" in F stands for\n"
      "                             the query's number); each implies --live\n"
      "  --live-queries Q           distinct queries: subscriber i follows number i % Q\n"
      "  --live-joiners J           J more clients join during the first load step, evenly\n"
      "                             spread (their time from connect to init frame is reported)\n"
      "  --chat-users U             messages are from u0 .. u<U-1>, uniformly (default 1000)\n"
      "  --delete-fraction F        this share of the writes DELETEs a message this writer\n"
      "                             inserted that is among its sender's --live-pagesize newest\n"
      "                             (inside the window of a per-sender query sorted newest\n"
      "                             first); needs --http-conns 1\n"
      "  --presence                 subscribers join the stream's presence with\n"
      "                             presence={\"c\":<id>,\"g\":<generation>} (--setup declares\n"
      "                             \"presence\": true); at most one rheo-bench process\n"
      "  --presence-listeners L     L of them, evenly spread, add presenceEvents=true: they keep\n"
      "                             the member list from the frames and time every join (from\n"
      "                             the member's handshake) and leave (from its close) during\n"
      "                             the load; implies --presence. With --churn, no writer is\n"
      "                             needed (--http-conns 0)\n"
      "  --churn-first-seconds S    the first churn wave S seconds into the load (default:\n"
      "                             --churn-seconds)\n"
      "  --churn-skip-listeners     waves close as many members as --churn says, but none of\n"
      "                             the presence listeners (a diagnostic: no listener rejoins)\n",
      code ? stderr : stdout);
  std::exit(code);
}

/// Standard base64, padded (for --basic).
std::string base64(std::string_view in) {
  static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += chars[(n >> 18) & 63];
    out += chars[(n >> 12) & 63];
    out += i + 1 < in.size() ? chars[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? chars[n & 63] : '=';
  }
  return out;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "rheo-bench: %s needs a value\n", a.c_str());
        usage(2);
      }
      return argv[++i];
    };
    auto num = [&]() { return std::stod(value()); };
    auto uns = [&]() { return static_cast<unsigned>(std::stoul(value())); };
    if (a == "--help" || a == "-h")
      usage(0);
    else if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = static_cast<int>(uns());
    else if (a == "--tls")
      o.tls = true;
    else if (a == "--tls-ca") {
      o.tls = true;
      o.tls_ca = value();
    } else if (a == "--tls-name") {
      o.tls = true;
      o.tls_name = value();
    }
    else if (a == "--coll")
      o.coll = value();
    else if (a == "--stream")
      o.stream = value();
    else if (a == "--setup")
      o.setup = true;
    else if (a == "--per-user")
      o.per_user = true;
    else if (a == "--user-window")
      o.user_window = uns();
    else if (a == "--threads")
      o.threads = std::max(1u, uns());
    else if (a == "--subscribers")
      o.subscribers = uns();
    else if (a == "--slow-subscribers")
      o.slow_subscribers = uns();
    else if (a == "--slow-rcvbuf")
      o.slow_rcvbuf = static_cast<int>(uns());
    else if (a == "--connect-concurrency")
      o.connect_concurrency = std::max(1u, uns());
    else if (a == "--src-per-addr")
      o.src_per_addr = std::max(1u, uns());
    else if (a == "--first-id")
      o.first_id = uns();
    else if (a == "--http-conns")
      o.http_conns = uns();
    else if (a == "--http-method")
      o.http_method = value();
    else if (a == "--http-path")
      o.http_path = value();
    else if (a == "--basic")
      o.authorization = "Authorization: Basic " + base64(value()) + "\r\n";
    else if (a == "--pipeline")
      o.pipeline = std::clamp(uns(), 1u, 64u);
    else if (a == "--doc-bytes")
      o.doc_bytes = uns();
    else if (a == "--rate")
      o.rate = num();
    else if (a == "--rate-mult")
      o.rate_mult = num();
    else if (a == "--rate-add")
      o.rate_add = num();
    else if (a == "--steps")
      o.steps = std::max(1u, uns());
    else if (a == "--step-seconds")
      o.step_seconds = num();
    else if (a == "--hold-seconds")
      o.hold_seconds = num();
    else if (a == "--stop-p99-ms")
      o.stop_p99_ms = num();
    else if (a == "--p99-limit-ms")
      o.p99_limit_ms = num();
    else if (a == "--drain-seconds")
      o.drain_seconds = num();
    else if (a == "--slow-drain-seconds")
      o.slow_drain_seconds = num();
    else if (a == "--connect-timeout")
      o.connect_timeout = num();
    else if (a == "--close-timeout")
      o.close_timeout = num();
    else if (a == "--server-pid")
      o.server_pid = static_cast<int>(uns());
    else if (a == "--sub-ports") {
      std::istringstream in(value());
      for (std::string p; std::getline(in, p, ',');)
        o.sub_ports.push_back(std::stoi(p));
    } else if (a == "--node") {
      std::string v = value();
      auto eq = v.find('=');
      if (eq == std::string::npos) usage(2);
      o.nodes.push_back({v.substr(0, eq), std::stoi(v.substr(eq + 1))});
    } else if (a == "--cluster-port")
      o.cluster_port = static_cast<int>(uns());
    else if (a == "--label")
      o.label = value();
    else if (a == "--out")
      o.out = value();
    else if (a == "--churn")
      o.churn = std::clamp(num(), 0.0, 1.0);
    else if (a == "--churn-seconds")
      o.churn_seconds = num();
    else if (a == "--progress")
      o.progress = value();
    else if (a == "--live")
      o.live = true;
    else if (a == "--live-filter" || a == "--live-sort" || a == "--live-keys") {
      o.live = true;
      (a == "--live-filter" ? o.live_filter
       : a == "--live-sort" ? o.live_sort
                            : o.live_keys) = value();
    } else if (a == "--live-pagesize") {
      o.live = true;
      o.live_pagesize = uns();
    } else if (a == "--live-queries")
      o.live_queries = std::max(1u, uns());
    else if (a == "--live-joiners")
      o.live_joiners = uns();
    else if (a == "--chat-users")
      o.chat_users = std::max(1u, uns());
    else if (a == "--delete-fraction")
      o.delete_fraction = std::clamp(num(), 0.0, 1.0);
    else if (a == "--presence")
      o.presence = true;
    else if (a == "--presence-listeners") {
      o.presence = true;
      o.presence_listeners = uns();
    } else if (a == "--churn-first-seconds")
      o.churn_first_seconds = num();
    else if (a == "--churn-skip-listeners")
      o.churn_skip_listeners = true;
    else {
      std::fprintf(stderr, "rheo-bench: unknown option %s\n", a.c_str());
      usage(2);
    }
  }
  if (o.http_method != "POST" && o.http_method != "GET") usage(2);
  if (o.churn > 0 &&
      (o.http_conns > 1 || (o.http_conns == 1 && o.http_method != "POST") || o.per_user)) {
    std::fputs("rheo-bench: --churn needs one POST writer (--http-conns 1) or none, no "
               "--per-user\n",
               stderr);
    usage(2);
  }
  if (o.presence && (o.live || o.per_user || o.slow_subscribers > 0 || o.first_id != 0 ||
                     o.presence_listeners > o.subscribers || o.subscribers == 0)) {
    std::fputs("rheo-bench: --presence needs --subscribers (at least --presence-listeners) and "
               "takes no --live, --per-user, --slow-subscribers or --first-id\n",
               stderr);
    usage(2);
  }
  if (o.live && (o.per_user || o.churn > 0 || o.slow_subscribers > 0 || o.http_method != "POST")) {
    std::fputs("rheo-bench: --live takes no --per-user, --churn, --slow-subscribers or GET\n",
               stderr);
    usage(2);
  }
  if (o.delete_fraction > 0 && (!o.live || o.http_conns != 1)) {
    std::fputs("rheo-bench: --delete-fraction needs --live and one writer (--http-conns 1)\n",
               stderr);
    usage(2);
  }
  if (o.http_method == "GET" && o.http_path.empty()) o.http_path = "/" + o.coll + "?pagesize=10";
  return o;
}

// ---------------------------------------------------------------------------------------
// Live queries: their parameters, and just enough JSON to walk a frame (nothing is decoded:
// documents are kept as the server wrote them, which is also how GET writes them)

/// The URL parameters of live query number `q` (encoded), as /<coll>/_live and the GET that
/// checks the result both take them.
std::string live_params(const options& o, unsigned q) {
  std::string filter = o.live_filter, number = std::to_string(q);
  for (auto at = filter.find("<k>"); at != std::string::npos; at = filter.find("<k>", at)) {
    filter.replace(at, 3, number);
    at += number.size();
  }
  std::string params;
  auto add = [&params](const char* name, const std::string& v) {
    if (v.empty()) return;
    if (!params.empty()) params += '&';
    params += name;
    params += '=';
    params += url_encode(v);
  };
  add("filter", filter);
  add("sort", o.live_sort);
  add("pagesize", o.live_pagesize > 0 ? std::to_string(o.live_pagesize) : std::string());
  add("keys", o.live_keys);
  return params;
}

constexpr std::size_t npos = std::string_view::npos;

std::size_t json_skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
    ++i;
  return i;
}

/// The end of the JSON value that starts at `i`, or npos where it is cut short or malformed.
std::size_t json_value_end(std::string_view s, std::size_t i) {
  if (i >= s.size()) return npos;
  if (s[i] == '"') {
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\')
        ++i;
      else if (s[i] == '"')
        return i + 1;
    }
    return npos;
  }
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') {
        std::size_t e = json_value_end(s, i);
        if (e == npos) return npos;
        i = e - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return npos;
  }
  std::size_t b = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t')
    ++i;
  return i > b ? i : npos;
}

/// Calls f(element) for each element of the JSON array `s`; false if `s` is not one.
template <class F> bool json_elements(std::string_view s, F&& f) {
  std::size_t i = json_skip_ws(s, 0);
  if (i >= s.size() || s[i] != '[') return false;
  i = json_skip_ws(s, i + 1);
  if (i < s.size() && s[i] == ']') return true;
  for (;;) {
    std::size_t e = json_value_end(s, i);
    if (e == npos) return false;
    f(s.substr(i, e - i));
    i = json_skip_ws(s, e);
    if (i >= s.size() || s[i] != ',') return i < s.size() && s[i] == ']';
    i = json_skip_ws(s, i + 1);
  }
}

/// Calls f(key, value) for each member of the JSON object `s`, the key as written without its
/// quotes; false if `s` is not one.
template <class F> bool json_members(std::string_view s, F&& f) {
  std::size_t i = json_skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{') return false;
  i = json_skip_ws(s, i + 1);
  if (i < s.size() && s[i] == '}') return true;
  for (;;) {
    if (i >= s.size() || s[i] != '"') return false;
    std::size_t ke = json_value_end(s, i);
    if (ke == npos) return false;
    std::string_view key = s.substr(i + 1, ke - i - 2);
    i = json_skip_ws(s, ke);
    if (i >= s.size() || s[i] != ':') return false;
    i = json_skip_ws(s, i + 1);
    std::size_t ve = json_value_end(s, i);
    if (ve == npos) return false;
    f(key, s.substr(i, ve - i));
    i = json_skip_ws(s, ve);
    if (i >= s.size() || s[i] != ',') return i < s.size() && s[i] == '}';
    i = json_skip_ws(s, i + 1);
  }
}

/// A non-negative JSON integer, or -1.
std::int64_t json_index(std::string_view v) {
  if (v.empty() || v.size() > 18) return -1;
  std::int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

/// The writer's send time "t" in a chat message, 0 if it has none (messages loaded before).
/// The other members of these documents cannot contain the text "t": (their strings are
/// the writer's or load_docs.py's, without quotes).
std::int64_t message_t(std::string_view doc) {
  auto at = doc.find("\"t\":");
  if (at == npos) return 0;
  std::int64_t v = 0;
  for (std::size_t i = at + 4; i < doc.size() && doc[i] >= '0' && doc[i] <= '9'; ++i)
    v = v * 10 + (doc[i] - '0');
  return v;
}

/// The hex of a document's ObjectId `_id` (its first member, as the server writes it).
std::string_view message_oid(std::string_view doc) {
  constexpr std::string_view key = "\"$oid\":\"";
  auto at = doc.find(key);
  return at == npos || at + key.size() + 24 > doc.size() ? std::string_view()
                                                         : doc.substr(at + key.size(), 24);
}

// ---------------------------------------------------------------------------------------
// TLS (--tls): one client context for every connection of the process

SSL_CTX* tls_ctx = nullptr; // set by run() with --tls, before any connection

/// The first few OpenSSL errors of the process go to stderr, each with what failed.
void tls_report(const char* what) {
  static std::atomic<int> reported{0};
  unsigned long e = ERR_get_error();
  if (reported.fetch_add(1) < 3) {
    char text[256] = "";
    if (e != 0) ERR_error_string_n(e, text, sizeof text);
    std::fprintf(stderr, "rheo-bench: TLS %s failed: %s (errno %d)\n", what,
                 e != 0 ? text : "no OpenSSL error", errno);
  }
  ERR_clear_error();
}

/// The client context: TLS 1.2 or 1.3, OpenSSL's default ciphers, no session cache (rheo does
/// not resume sessions). Record buffers are given back while empty (SSL_MODE_RELEASE_BUFFERS);
/// an open session still costs about 34 KB of rheo-bench's RSS with OpenSSL 3.0 (measured:
/// the same with or without that mode, see bench/README.md, issue 29). Reads take what the
/// socket has (read-ahead), as the plain path's recv into the worker's buffer does. Writes
/// may be partial and retried from a moved buffer: the connection's `out` string.
SSL_CTX* make_tls_ctx(const options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) throw std::runtime_error("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!o.tls_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, o.tls_ca.c_str(), nullptr) != 1)
      throw std::runtime_error("cannot load the CA file " + o.tls_ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

/// A client SSL on socket `fd` (connected or connecting), with SNI and the name or address to
/// verify. nullptr if OpenSSL refuses.
SSL* tls_new(const options& o, int fd) {
  SSL* ssl = SSL_new(tls_ctx);
  if (!ssl) return nullptr;
  SSL_set_fd(ssl, fd);
  SSL_set_connect_state(ssl);
  if (!o.tls_name.empty()) {
    SSL_set_tlsext_host_name(ssl, o.tls_name.c_str());
    if (!o.tls_ca.empty()) SSL_set1_host(ssl, o.tls_name.c_str());
  } else if (!o.tls_ca.empty()) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o.host.c_str());
  }
  return ssl;
}

/// SSL_write as ::send answers: bytes written, or -1 with errno EAGAIN (try again with the
/// same bytes, at the same or a moved address) or EPIPE (the connection is unusable).
ssize_t tls_send(SSL* ssl, const char* data, std::size_t n) {
  ERR_clear_error();
  int w = SSL_write(ssl, data, static_cast<int>(std::min<std::size_t>(n, 1u << 30)));
  if (w > 0) return w;
  int e = SSL_get_error(ssl, w);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
    errno = EAGAIN;
  } else {
    if (e == SSL_ERROR_SSL) tls_report("write");
    ERR_clear_error();
    errno = EPIPE;
  }
  return -1;
}

/// SSL_read as ::recv answers: bytes read, 0 at the peer's close_notify or EOF, or -1 with
/// errno EAGAIN (nothing more now) or EPIPE (a TLS error, or a reset).
ssize_t tls_recv(SSL* ssl, char* buf, std::size_t n) {
  ERR_clear_error();
  int r = SSL_read(ssl, buf, static_cast<int>(std::min<std::size_t>(n, 1u << 30)));
  if (r > 0) return r;
  int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET)) {
    ERR_clear_error();
    return 0; // EOF without close_notify, or a reset: gone, as a plain recv would say
  }
  if (e == SSL_ERROR_SSL) tls_report("read");
  ERR_clear_error();
  errno = EPIPE;
  return -1;
}

// ---------------------------------------------------------------------------------------
// Shared state between the main thread and the workers

enum phase : int { ph_connect, ph_load, ph_drain, ph_slow_drain, ph_close, ph_exit };

/// A counter written by one worker, read by the main thread.
struct counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n = 1) {
    v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

constexpr int close_code_slots = 17; // 1000..1015, then "other"
int close_slot(int code) {
  return code >= 1000 && code <= 1015 ? code - 1000 : 16;
}

struct alignas(64) worker_counters {
  counter subs_open, subs_failed, http_open, http_failed;
  counter handshake_rejected, protocol_errors, unexpected_closes, closed;
  counter deliveries, slow_deliveries, bytes_in;
  counter http_sent, http_ok, http_errors, http_missed;
  std::array<counter, close_code_slots> close_codes, slow_close_codes;
  // Churn: subscribers open now (a gauge), closed by a wave, reopened, failed to reopen;
  // events missing from a subscriber's sequence, seen twice or out of order; subscribers
  // that received nothing while 100 inserts were acknowledged; subscribers that missed the
  // last acknowledged insert at the end.
  counter live, churn_closed, churn_reopened, churn_failed;
  counter seq_gaps, seq_duplicates, silent, behind;
  std::atomic<unsigned> wave_started{0};
  // Live queries: init frames received, ops applied, frames or ops that could not be applied
  // (malformed, an index out of range, a diff before the init); the writer's deletes, and
  // the deletes it could not make (no message of its own inside a window yet: it inserted).
  counter live_inits, live_ops, live_errors, deletes_sent, deletes_skipped;
  // Presence: frames received by listeners (the first of each session lists the members so
  // far), joined and left entries in the frames after it, the changes timed (and those that
  // could not be: their time was not known), timed changes later than 500 ms, listeners that
  // have seen every member once (the ramp-up); errors: a member joined twice or a left of a
  // member not in the list, a frame that does not parse, a presence frame at a non-listener.
  counter presence_frames, presence_initial_frames, presence_entries, presence_untimed;
  counter presence_late, listeners_full;
  counter presence_dup_joins, presence_unknown_leaves, presence_bad_frames, presence_stray_frames;
  // The check at the end: listeners compared, those whose list differs, members missing
  // from a list or still in it though gone, listeners without a first frame.
  counter verify_checked, verify_wrong, verify_missing, verify_stale, verify_no_view;
  std::atomic<unsigned> verify_done{0};
};

/// Presence: when member c's generation g (its g-th connection) completed its handshake and
/// when it sent its close, for the listeners (any worker) to time the change they see. A ring
/// of the last few generations per member; written only by the member's worker.
struct presence_times {
  struct slot {
    std::atomic<std::uint32_t> gen{~0u};
    std::atomic<std::int64_t> joined{0}, closed{0};
  };
  std::array<slot, 4> ring;
};

struct control {
  std::atomic<int> phase{ph_connect};
  std::atomic<unsigned> step{0};
  std::atomic<double> rate_per_conn{0};
  std::atomic<std::int64_t> step_start{0};
  std::atomic<unsigned> churn_wave{0};
  std::atomic<std::int64_t> last_acked_seq{-1}; // churn: "n" of the last acknowledged insert
  std::atomic<std::int64_t> load_start{0};      // when the first load step started
  // Live queries with deletes: the send time of each DELETE by the id of the message, so the
  // clients that see it leave their window get its latency. Written by the writer's worker,
  // read by all (a few hundred times a second: a mutex is enough).
  std::mutex deletes_mutex;
  std::unordered_map<std::string, std::int64_t> deleted_at;
  // Presence: each member's times, its generation while open (-1 otherwise: the truth the
  // listeners' lists are checked against), since when changes are timed (0: not yet), when
  // the last listener saw every member, and the main thread's request to check the lists.
  std::unique_ptr<presence_times[]> times;
  std::unique_ptr<std::atomic<std::int32_t>[]> current;
  std::atomic<std::int64_t> measure_from{0};
  std::atomic<std::int64_t> last_full_at{0};
  std::atomic<unsigned> verify_requested{0};
  std::atomic<std::int64_t> wave_started_at{0}; // the latest churn wave
};

// ---------------------------------------------------------------------------------------
// Connections

enum class role : std::uint8_t { subscriber, slow_subscriber, http };
enum class conn_state : std::uint8_t { idle, connecting, handshaking, open, closing, closed };

struct connection {
  int fd = -1;
  SSL* ssl = nullptr; // --tls: this connection's TLS session (from connect to close)
  role kind = role::subscriber;
  conn_state state = conn_state::idle;
  bool draining = false; // slow subscriber allowed to read
  std::uint32_t id = 0;  // subscriber index or HTTP connection index
  std::string out;
  std::size_t out_off = 0;
  std::string in;
  // HTTP clients: send times of requests in flight (a ring), paced-send bookkeeping.
  std::array<std::int64_t, 64> sent_at{};
  std::uint32_t head = 0, outstanding = 0;
  unsigned step_seen = ~0u;
  std::uint64_t sent_in_step = 0;
  std::array<std::int64_t, 64> seq_at{}; // churn: "n" of each request in flight
  // Churn (subscribers): close for a wave, then reconnect; reconnecting; the last "n" seen
  // since it opened (-1: none yet), deliveries since then, last acked "n" when it opened.
  bool rejoin = false, rejoining = false;
  std::int64_t last_seq = -1;
  std::uint64_t delivered_since_open = 0;
  std::int64_t acked_at_open = -1;
  // Live queries: the query followed, when a late joiner connects (ns after the load
  // started; -1: with the others at the start), when the connect started, whether the init
  // frame came; the client's copy of the result (documents as sent); the newest "t" in it,
  // so that a message entering the window is timed only when the write is new (not a
  // refill of an older message after a delete).
  std::uint32_t query = 0;
  std::int64_t join_at = -1, connect_at = 0;
  bool has_init = false;
  std::vector<std::string> docs;
  std::int64_t newest_t = 0;
  // Writers of chat messages: the sender of each insert in flight, -1 for a delete.
  std::array<std::int32_t, 64> user_at{};
  bool dropped = false; // closed by the server or lost while open (counted as an error)
  // Presence: a listener (presenceEvents=true), the member's generation (its connections so
  // far - 1), whether this session's first frame has come, and the list it tells: per member
  // the bit (generation % 32) of each of its connections in the list; members in it.
  bool listener = false;
  std::uint32_t gen = 0;
  std::int64_t opened_at = 0; // this session's handshake answer
  bool has_view = false, ever_full = false;
  std::vector<std::uint32_t> view;
  std::uint32_t view_count = 0;
};

class worker {
public:
  worker(const options& o, control& ctl, unsigned index) : o_(o), ctl_(ctl), index_(index) {}

  worker_counters counters;
  histogram_recorder latency;      // delivery latency, ns
  histogram_recorder http_latency; // request -> response, ns
  // Live queries: connect -> init frame of the clients connected at the start and of those
  // that joined during the load; DELETE sent -> its remove op applied.
  histogram_recorder init_latency, joiner_init_latency, delete_latency;
  // Presence: handshake -> the join in a listener's frame; close sent -> the leave in it; both
  // for listeners connected when the change happened. Changes that happened before the
  // listener's session opened (it left and came back in the same wave): apart.
  histogram_recorder join_latency, leave_latency, rejoined_latency;
  // Presence: from the kernel's receive time of a read to this thread's recvmsg.
  histogram_recorder read_lag;

  /// A connection; `join_at` >= 0: a live client that connects that many ns into the load.
  void add(role kind, std::uint32_t id, std::int64_t join_at = -1, bool listener = false) {
    auto c = std::make_unique<connection>();
    c->kind = kind;
    c->id = id;
    c->listener = listener;
    c->query = o_.live ? id % o_.live_queries : 0;
    c->join_at = join_at;
    conns_.push_back(std::move(c));
  }

  void run();

  /// Every connection; read only after run() has returned.
  const std::vector<std::unique_ptr<connection>>& connections() const { return conns_; }

private:
  /// The port `c` connects to: writers --port, subscribers spread over --sub-ports.
  int port_of(const connection& c) const {
    return c.kind == role::http || o_.sub_ports.empty() ? o_.port
                                                        : o_.sub_ports[c.id % o_.sub_ports.size()];
  }
  void start_connects(int ph);
  void start_connect(connection& c);
  void on_connected(connection& c);
  bool tls_handshake(connection& c);
  void on_event(connection& c, std::uint32_t events);
  void read_all(connection& c);
  void feed(connection& c, const char* data, std::size_t n);
  std::size_t process(connection& c, const char* data, std::size_t n);
  std::size_t process_frames(connection& c, const char* data, std::size_t n);
  std::size_t process_responses(connection& c, const char* data, std::size_t n);
  void on_close_frame(connection& c, int code);
  void send(connection& c, std::string_view data);
  void flush(connection& c);
  void close_conn(connection& c);
  void lost(connection& c);
  void pace_http();
  void append_request(connection& c, std::int64_t t);
  void start_closing();
  void start_churn(unsigned wave);
  void on_sequence(connection& c, std::int64_t n);
  void on_live_frame(connection& c, std::string_view body);
  void on_presence_frame(connection& c, std::string_view body);
  void presence_open(connection& c);
  void presence_gone(connection& c, bool timed);
  presence_times::slot& times_of(std::uint32_t member, std::uint32_t gen) {
    return ctl_.times[member].ring[gen % 4];
  }
  void verify_presence();
  bool apply_op(connection& c, std::string_view op);
  std::int64_t append_chat_write(connection& c, std::int64_t t);
  void on_chat_ack(std::int32_t user, std::string_view location);
  std::uint64_t next_random() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  const options& o_;
  control& ctl_;
  unsigned index_;
  int ep_ = -1;
  std::vector<std::unique_ptr<connection>> conns_;
  std::size_t next_connect_ = 0;
  unsigned handshakes_in_flight_ = 0;
  bool slow_drain_started_ = false, close_started_ = false;
  std::uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  std::int64_t now_ = 0;
  std::vector<char> buf_ = std::vector<char>(256 * 1024);
  std::string pad_;
  unsigned wave_seen_ = 0;
  std::vector<connection*> rejoin_queue_; // closed by a wave, to reconnect
  std::int64_t next_seq_ = 0;             // churn: the writer's next "n"
  // Chat writer: writes made, the last "t" (each write's is unique and increasing), each
  // sender's messages of this writer that are among its newest (oldest first, at most a
  // window), the senders of the latest inserts acknowledged (a ring).
  std::uint64_t chat_writes_ = 0;
  std::int64_t last_t_ = 0;
  std::vector<std::vector<std::string>> recent_;
  std::vector<std::uint32_t> recent_senders_;
  std::size_t recent_next_ = 0;
  // Presence: each member id the server assigned, as this worker's listeners learnt it from a
  // joined entry: (member << 32) | generation. A left entry names only the id.
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const { return std::hash<std::string_view>()(v); }
  };
  std::unordered_map<std::string, std::uint64_t, text_hash, std::equal_to<>> presence_ids_;
  unsigned verify_seen_ = 0;

public:
  // Presence: the frames of the first listener (subscriber 0) during the load, for the
  // timeline in the JSON: (arrival ns, joined, left); read after run() has returned.
  struct frame_note {
    std::int64_t at;
    std::uint32_t joined, left;
  };
  std::vector<frame_note> timeline;
  std::vector<std::pair<std::int64_t, std::int64_t>> wave_frames; // per wave: first, last arrival
};

void worker::run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  rng_ ^= index_ * 0x2545F4914F6CDD1Dull + 1;
  pad_.assign(o_.doc_bytes > 40 ? o_.doc_bytes - 40 : 1, 'x');
  // Writers first, so they are ready when the subscribers are.
  std::stable_partition(conns_.begin(), conns_.end(),
                        [](const auto& c) { return c->kind == role::http; });
  std::array<epoll_event, 512> events;
  for (;;) {
    int ph = ctl_.phase.load(std::memory_order_acquire);
    if (ph == ph_exit) break;
    if (ph == ph_connect || ph == ph_load) start_connects(ph);
    if (ph == ph_load) pace_http();
    if (ph == ph_load) {
      unsigned wave = ctl_.churn_wave.load(std::memory_order_acquire);
      if (wave != wave_seen_) start_churn(wave);
    }
    // Reconnect outside the event loop: an event already fetched for the old socket must
    // not be taken for the new one's.
    if (!rejoin_queue_.empty() && ph < ph_close) {
      auto queue = std::move(rejoin_queue_);
      rejoin_queue_.clear();
      for (auto* c : queue) {
        ++handshakes_in_flight_;
        start_connect(*c);
      }
    }
    if (ph >= ph_slow_drain && !slow_drain_started_) {
      slow_drain_started_ = true;
      for (auto& c : conns_)
        if (c->kind == role::slow_subscriber && c->state == conn_state::open) {
          c->draining = true;
          read_all(*c);
        }
    }
    if (ph >= ph_close && !close_started_) {
      close_started_ = true;
      start_closing();
    }
    if (unsigned v = ctl_.verify_requested.load(std::memory_order_acquire); v != verify_seen_) {
      verify_seen_ = v;
      verify_presence();
      counters.verify_done.store(v, std::memory_order_release);
    }
    int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 1);
    now_ = now_ns();
    for (int i = 0; i < n; ++i)
      on_event(*static_cast<connection*>(events[i].data.ptr), events[i].events);
  }
  for (auto& c : conns_) {
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = nullptr;
    if (c->fd >= 0) ::close(c->fd);
  }
  ::close(ep_);
}

void worker::start_connects(int ph) {
  unsigned limit = std::max(1u, o_.connect_concurrency / o_.threads);
  while (next_connect_ < conns_.size() && handshakes_in_flight_ < limit) {
    // Late joiners come last, in the order of their times.
    auto& next = *conns_[next_connect_];
    if (next.join_at >= 0 &&
        (ph != ph_load ||
         now_ns() < ctl_.load_start.load(std::memory_order_relaxed) + next.join_at))
      break;
    auto& c = *conns_[next_connect_++];
    if (c.kind != role::http) ++handshakes_in_flight_;
    start_connect(c);
  }
}

void worker::start_connect(connection& c) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    c.state = conn_state::closed;
    counters.closed.add();
    if (c.kind == role::http)
      counters.http_failed.add();
    else {
      counters.subs_failed.add();
      --handshakes_in_flight_;
    }
    if (c.rejoining) {
      c.rejoining = false;
      counters.churn_failed.add();
    }
    return;
  }
  c.fd = fd;
  c.connect_at = now_ns();
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o_.presence && c.kind == role::subscriber)
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (c.kind == role::slow_subscriber)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o_.slow_rcvbuf, sizeof o_.slow_rcvbuf);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(port_of(c)));
  inet_pton(AF_INET, o_.host.c_str(), &dst.sin_addr);
  if ((ntohl(dst.sin_addr.s_addr) >> 24) == 127 && c.kind != role::http) {
    // Past ~28,000 connections one source address runs out of ephemeral ports.
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7F000002u + c.id / o_.src_per_addr);
#ifdef IP_BIND_ADDRESS_NO_PORT
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  }
  if (o_.tls && !(c.ssl = tls_new(o_, fd))) {
    tls_report("SSL_new");
    c.state = conn_state::connecting;
    return lost(c);
  }
  c.state = conn_state::connecting;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &c;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS)
    lost(c);
}

void worker::on_connected(connection& c) {
  if (c.kind == role::http) {
    c.state = conn_state::open;
    counters.http_open.add();
    return;
  }
  c.state = conn_state::handshaking;
  std::string target = o_.live ? "/" + o_.coll + "/_live?" + live_params(o_, c.query)
                               : "/" + o_.coll + "/_streams/" + o_.stream;
  if (o_.per_user)
    target += "?avars=" + url_encode(format("{\"lo\":%u,\"hi\":%u}", c.id, c.id + o_.user_window));
  if (o_.presence)
    target += "?presence=" + url_encode(format("{\"c\":%u,\"g\":%u}", c.id, c.gen)) +
              (c.listener ? "&presenceEvents=true" : "");
  send(c, format("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: cmhlby1iZW5jaC1rZXkhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 target.c_str(), o_.host.c_str(), port_of(c)));
}

/// One step of the TLS handshake of a connecting socket: true once it is complete; false while
/// it waits for the socket, or after a failure (then the connection is lost).
bool worker::tls_handshake(connection& c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c.ssl);
  if (r == 1) return true;
  int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
  tls_report("handshake");
  lost(c);
  return false;
}

void worker::on_event(connection& c, std::uint32_t events) {
  if (c.state == conn_state::closed) return;
  if (c.state == conn_state::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return lost(c);
    if (!(events & (EPOLLOUT | EPOLLIN))) return;
    if (c.ssl) {
      // TLS: the handshake first, as long as it takes (still "connecting"); then the
      // upgrade request, and a read for whatever came with the server's last flight.
      if (!tls_handshake(c)) return;
      on_connected(c);
      flush(c);
      if (c.state != conn_state::closed) read_all(c);
      return;
    }
    on_connected(c);
  }
  if (events & EPOLLOUT) flush(c);
  if (c.state == conn_state::closed) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_all(c);
}

void worker::read_all(connection& c) {
  for (;;) {
    if (c.state == conn_state::closed) return;
    // A slow subscriber stops reading once its handshake is done.
    if (c.kind == role::slow_subscriber && c.state == conn_state::open && !c.draining) return;
    ssize_t n;
    if (c.ssl) {
      // TLS: no kernel receive time (presence listeners over TLS time from this read).
      n = tls_recv(c.ssl, buf_.data(), buf_.size());
      if (n > 0) now_ = now_ns();
    } else if (o_.presence && c.kind == role::subscriber) {
      // Presence: the kernel's receive time of the read's last segment (SO_TIMESTAMPNS), so
      // neither a handshake's completion nor a frame's arrival waits for this thread to get
      // round to the socket (a wave's frame reaches hundreds of listeners at once). How long
      // it took is recorded apart during the load (read_lag).
      iovec iov{buf_.data(), buf_.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      n = ::recvmsg(c.fd, &msg, 0);
      if (n > 0) {
        now_ = now_ns();
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
          if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts;
            std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            std::int64_t at = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
            if (at > 0 && at <= now_) {
              if (ctl_.measure_from.load(std::memory_order_relaxed) > 0)
                read_lag.record(static_cast<std::uint64_t>(now_ - at));
              now_ = at;
            }
          }
      }
    } else {
      n = ::recv(c.fd, buf_.data(), buf_.size(), 0);
      if (n > 0) now_ = now_ns(); // the receive time of every frame in this read
    }
    if (n > 0) {
      counters.bytes_in.add(static_cast<std::uint64_t>(n));
      feed(c, buf_.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    return lost(c); // EOF or reset
  }
}

void worker::feed(connection& c, const char* data, std::size_t n) {
  if (c.in.empty()) {
    std::size_t used = process(c, data, n);
    if (c.state != conn_state::closed && used < n) c.in.assign(data + used, n - used);
    return;
  }
  c.in.append(data, n);
  std::size_t used = process(c, c.in.data(), c.in.size());
  if (c.state != conn_state::closed) c.in.erase(0, used);
}

std::size_t worker::process(connection& c, const char* data, std::size_t n) {
  if (c.kind == role::http) return process_responses(c, data, n);
  if (c.state == conn_state::handshaking) {
    std::string_view s(data, n);
    auto end = s.find("\r\n\r\n");
    if (end == std::string_view::npos) return 0;
    if (s.substr(0, 12) != "HTTP/1.1 101") {
      counters.handshake_rejected.add();
      counters.subs_failed.add();
      if (counters.handshake_rejected.get() <= 3)
        std::fprintf(stderr, "rheo-bench: handshake rejected: %.*s\n",
                     static_cast<int>(std::min<std::size_t>(end, 200)), data);
      close_conn(c);
      return n;
    }
    --handshakes_in_flight_;
    c.state = conn_state::open;
    counters.subs_open.add();
    counters.live.add();
    c.last_seq = -1;
    c.delivered_since_open = 0;
    c.acked_at_open = ctl_.last_acked_seq.load(std::memory_order_relaxed);
    if (c.rejoining) {
      c.rejoining = false;
      counters.churn_reopened.add();
    }
    if (o_.presence) presence_open(c);
    std::size_t used = end + 4;
    if (c.kind == role::slow_subscriber && !c.draining) return used;
    return used + process_frames(c, data + used, n - used);
  }
  return process_frames(c, data, n);
}

std::size_t worker::process_frames(connection& c, const char* data, std::size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  std::size_t off = 0;
  while (n - off >= 2 && c.state != conn_state::closed) {
    unsigned op = p[off] & 0x0F;
    std::uint64_t len = p[off + 1] & 0x7F;
    std::size_t hdr = 2;
    if (p[off + 1] & 0x80) { // servers must not mask
      counters.protocol_errors.add();
      close_conn(c);
      return n;
    }
    if (len == 126) {
      if (n - off < 4) break;
      len = (std::uint64_t{p[off + 2]} << 8) | p[off + 3];
      hdr = 4;
    } else if (len == 127) {
      if (n - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | p[off + 2 + i];
      hdr = 10;
    }
    if (n - off - hdr < len) break;
    const char* payload = data + off + hdr;
    switch (op) {
    case 0x1:
    case 0x2:
      if (c.kind == role::slow_subscriber) {
        counters.slow_deliveries.add();
      } else if (o_.live) {
        on_live_frame(c, std::string_view(payload, len));
      } else if (o_.presence) {
        on_presence_frame(c, std::string_view(payload, len));
      } else {
        counters.deliveries.add();
        ++c.delivered_since_open;
        std::string_view body(payload, len);
        if (o_.churn > 0) {
          auto n = body.find("\"n\":");
          if (n != std::string_view::npos) {
            std::int64_t v = 0;
            for (std::size_t i = n + 4; i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i)
              v = v * 10 + (body[i] - '0');
            on_sequence(c, v);
          }
        }
        auto t = body.find("\"t\":");
        if (t != std::string_view::npos) {
          std::int64_t v = 0;
          for (std::size_t i = t + 4; i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i)
            v = v * 10 + (body[i] - '0');
          latency.record(now_ > v ? static_cast<std::uint64_t>(now_ - v) : 0);
        }
      }
      break;
    case 0x9: { // ping: answer with a masked pong (mask key 0 leaves the payload as is)
      std::string pong;
      pong += static_cast<char>(0x8A);
      if (len < 126) {
        pong += static_cast<char>(0x80 | len);
        pong.append(4, '\0');
        pong.append(payload, len);
        send(c, pong);
      }
      break;
    }
    case 0x8: {
      int code = len >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                static_cast<unsigned char>(payload[1])
                          : 1005;
      off += hdr + len;
      on_close_frame(c, code);
      return n;
    }
    default:
      break;
    }
    off += hdr + static_cast<std::size_t>(len);
  }
  return off;
}

// Churn: the writer numbers its documents 0, 1, 2, ... and the server delivers them in that
// order, so after its first event a subscriber must see each next number exactly once.
void worker::on_sequence(connection& c, std::int64_t n) {
  if (c.last_seq >= 0) {
    if (n <= c.last_seq)
      counters.seq_duplicates.add();
    else if (n > c.last_seq + 1)
      counters.seq_gaps.add(static_cast<std::uint64_t>(n - c.last_seq - 1));
  }
  c.last_seq = std::max(c.last_seq, n);
}

// Presence: a member's connection is open (its handshake completed at now_); a listener starts
// a new list, which its first frame fills.
void worker::presence_open(connection& c) {
  auto& t = times_of(c.id, c.gen);
  t.joined.store(now_);
  t.closed.store(0);
  t.gen.store(c.gen);
  ctl_.current[c.id].store(static_cast<std::int32_t>(c.gen));
  c.opened_at = now_;
  if (c.listener) {
    c.view.assign(o_.subscribers, 0);
    c.view_count = 0;
    c.has_view = false;
  }
}

// Presence: a member's connection goes; `timed`: a churn wave, whose close frame is sent next
// (the leave is timed from now).
void worker::presence_gone(connection& c, bool timed) {
  if (timed) times_of(c.id, c.gen).closed.store(now_ns());
  ctl_.current[c.id].store(-1);
}

/// A JSON string's text without its quotes (no escapes expected).
std::string_view unquote(std::string_view v) {
  return v.size() >= 2 && v.front() == '"' && v.back() == '"' ? v.substr(1, v.size() - 2)
                                                              : std::string_view();
}

// A presence frame {"presence":{"joined":[{"id","user","info","since"},...],"left":[id,...]}}
// at a listener. The session's first frame lists the members so far; the later ones tell the
// changes, each timed from its member's handshake (a join) or close (a leave) when it
// happened during the load. Leaves first: a member that left and came back within one frame
// is two connections (two ids), and the list holds each connection's bit.
void worker::on_presence_frame(connection& c, std::string_view body) {
  if (ctl_.phase.load(std::memory_order_relaxed) >= ph_close) return; // the end: not checked
  counters.presence_frames.add();
  if (!c.listener) {
    counters.presence_stray_frames.add();
    return;
  }
  std::string_view joined, left;
  bool found = false, inner = true;
  bool outer = json_members(body, [&](std::string_view key, std::string_view value) {
    if (key != "presence") return;
    found = true;
    inner = json_members(value, [&](std::string_view k, std::string_view v) {
      if (k == "joined")
        joined = v;
      else if (k == "left")
        left = v;
    });
  });
  if (!outer || !found || !inner || joined.empty() || left.empty()) {
    counters.presence_bad_frames.add();
    return;
  }
  const bool initial = !c.has_view;
  c.has_view = true;
  if (initial) counters.presence_initial_frames.add();
  const std::int64_t from = ctl_.measure_from.load(std::memory_order_relaxed);
  std::uint64_t entries = 0;
  auto timed = [&](histogram_recorder& h, std::int64_t at) {
    if (from <= 0) return; // the ramp-up: not timed
    if (at < from) {
      counters.presence_untimed.add();
      return;
    }
    auto v = now_ > at ? static_cast<std::uint64_t>(now_ - at) : 0;
    if (at < c.opened_at) { // the listener was not connected when it happened
      rejoined_latency.record(v);
      return;
    }
    h.record(v);
    latency.record(v);
    if (v > 500'000'000) counters.presence_late.add();
  };
  bool ok = json_elements(left, [&](std::string_view idv) {
    auto it = presence_ids_.find(unquote(idv));
    if (it == presence_ids_.end()) {
      counters.presence_unknown_leaves.add();
      return;
    }
    auto m = static_cast<std::uint32_t>(it->second >> 32);
    auto g = static_cast<std::uint32_t>(it->second);
    std::uint32_t bit = 1u << (g % 32);
    if (!(c.view[m] & bit)) {
      counters.presence_unknown_leaves.add();
      return;
    }
    c.view[m] &= ~bit;
    --c.view_count;
    if (initial) return;
    ++entries;
    auto& t = times_of(m, g);
    timed(leave_latency, t.gen.load() == g ? t.closed.load() : 0);
  });
  std::uint64_t left_entries = entries;
  ok = ok && json_elements(joined, [&](std::string_view e) {
         std::string_view id;
         std::int64_t m = -1, g = -1;
         bool parsed = json_members(e, [&](std::string_view k, std::string_view v) {
           if (k == "id")
             id = unquote(v);
           else if (k == "info")
             json_members(v, [&](std::string_view ik, std::string_view iv) {
               if (ik == "c")
                 m = json_index(iv);
               else if (ik == "g")
                 g = json_index(iv);
             });
         });
         if (!parsed || id.empty() || m < 0 || m >= static_cast<std::int64_t>(o_.subscribers) ||
             g < 0) {
           counters.presence_bad_frames.add();
           return;
         }
         auto mu = static_cast<std::uint32_t>(m), gu = static_cast<std::uint32_t>(g);
         if (presence_ids_.find(id) == presence_ids_.end())
           presence_ids_.emplace(std::string(id), (std::uint64_t{mu} << 32) | gu);
         std::uint32_t bit = 1u << (gu % 32);
         if (c.view[mu] & bit) {
           counters.presence_dup_joins.add();
           return;
         }
         c.view[mu] |= bit;
         ++c.view_count;
         if (initial) return;
         ++entries;
         auto& t = times_of(mu, gu);
         timed(join_latency, t.gen.load() == gu ? t.joined.load() : 0);
       });
  if (!ok) counters.presence_bad_frames.add();
  if (c.id == 0 && from > 0 && !initial)
    timeline.push_back({now_, static_cast<std::uint32_t>(entries - left_entries),
                        static_cast<std::uint32_t>(left_entries)});
  // The first and last arrival of a frame with changes in each wave, at listeners whose
  // session is older than the wave: when the server sent the wave's frame, and its spread.
  unsigned wave = ctl_.churn_wave.load(std::memory_order_relaxed);
  if (from > 0 && !initial && entries > 0 && wave > 0 &&
      c.opened_at < ctl_.wave_started_at.load(std::memory_order_relaxed)) {
    if (wave_frames.size() < wave) wave_frames.resize(wave, {INT64_MAX, 0});
    auto& [first, last] = wave_frames[wave - 1];
    first = std::min(first, now_);
    last = std::max(last, now_);
  }
  counters.presence_entries.add(entries);
  counters.deliveries.add(entries);
  c.delivered_since_open += entries;
  if (!c.ever_full && c.view_count >= o_.subscribers) {
    c.ever_full = true;
    counters.listeners_full.add();
    std::int64_t prev = ctl_.last_full_at.load();
    while (prev < now_ && !ctl_.last_full_at.compare_exchange_weak(prev, now_)) {
    }
  }
}

// Presence, at the main thread's request (the load over, the frames quiet): every open
// listener's list against the members open now.
void worker::verify_presence() {
  if (!o_.presence) return;
  for (auto& cp : conns_) {
    auto& c = *cp;
    if (!c.listener || c.state != conn_state::open) continue;
    if (!c.has_view) {
      counters.verify_no_view.add();
      continue;
    }
    counters.verify_checked.add();
    std::uint64_t missing = 0, stale = 0;
    for (std::uint32_t m = 0; m < o_.subscribers; ++m) {
      std::int32_t cur = ctl_.current[m].load();
      std::uint32_t want = cur >= 0 ? 1u << (static_cast<std::uint32_t>(cur) % 32) : 0;
      missing += static_cast<unsigned>(std::popcount(want & ~c.view[m]));
      stale += static_cast<unsigned>(std::popcount(c.view[m] & ~want));
    }
    if (missing + stale > 0) {
      counters.verify_wrong.add();
      counters.verify_missing.add(missing);
      counters.verify_stale.add(stale);
    }
  }
}

// A live query's frame: {"init":[doc, ...],"token":"t"} replaces the client's copy, and
// {"diff":[op, ...],"token":"t"} changes it op by op, in order.
void worker::on_live_frame(connection& c, std::string_view body) {
  bool well_formed = json_members(body, [&](std::string_view key, std::string_view value) {
    if (key == "init") {
      c.docs.clear();
      c.newest_t = 0;
      if (!json_elements(value, [&](std::string_view doc) {
            c.docs.emplace_back(doc);
            c.newest_t = std::max(c.newest_t, message_t(doc));
          }))
        counters.live_errors.add();
      counters.live_inits.add();
      if (!c.has_init) {
        c.has_init = true;
        auto& h = c.join_at >= 0 ? joiner_init_latency : init_latency;
        h.record(now_ > c.connect_at ? static_cast<std::uint64_t>(now_ - c.connect_at) : 0);
      }
    } else if (key == "diff") {
      counters.deliveries.add();
      ++c.delivered_since_open;
      std::uint64_t ops = 0;
      bool applied = c.has_init;
      // After an op that does not apply, the copy is wrong: the rest is only counted.
      bool listed = json_elements(value, [&](std::string_view op) {
        applied = applied && apply_op(c, op);
        ++ops;
      });
      counters.live_ops.add(ops);
      if (!listed || !applied) counters.live_errors.add();
    }
  });
  if (!well_formed) counters.live_errors.add();
}

// One op of a diff: add (insert doc at `at`), remove (erase at `at`), update (erase at `at`,
// insert doc at `to`). A message that enters the window newer than any the client has held
// is a new write: its latency is now - its "t". A remove of a message the writer deleted
// gets the latency of that DELETE.
bool worker::apply_op(connection& c, std::string_view op) {
  std::string_view kind, doc;
  std::int64_t at = -1, to = -1;
  if (!json_members(op, [&](std::string_view key, std::string_view value) {
        if (key == "op")
          kind = value;
        else if (key == "at")
          at = json_index(value);
        else if (key == "to")
          to = json_index(value);
        else if (key == "doc")
          doc = value;
      }))
    return false;
  auto size = static_cast<std::int64_t>(c.docs.size());
  bool remove = kind == "\"remove\"";
  if (remove || kind == "\"update\"") {
    if (at < 0 || at >= size) return false;
    if (remove && o_.delete_fraction > 0) {
      std::int64_t sent = -1;
      {
        std::lock_guard<std::mutex> lock(ctl_.deletes_mutex);
        auto it = ctl_.deleted_at.find(std::string(message_oid(c.docs[at])));
        if (it != ctl_.deleted_at.end()) sent = it->second;
      }
      if (sent >= 0) {
        auto v = now_ > sent ? static_cast<std::uint64_t>(now_ - sent) : 0;
        latency.record(v);
        delete_latency.record(v);
      }
    }
    c.docs.erase(c.docs.begin() + at);
    if (remove) return true;
    at = to;
    --size;
  } else if (kind != "\"add\"") {
    return false;
  }
  if (at < 0 || at > size || doc.empty()) return false;
  c.docs.emplace(c.docs.begin() + at, doc);
  std::int64_t t = message_t(doc);
  if (t > c.newest_t) {
    latency.record(now_ > t ? static_cast<std::uint64_t>(now_ - t) : 0);
    c.newest_t = t;
  }
  return true;
}

void worker::on_close_frame(connection& c, int code) {
  if (c.state != conn_state::closing) {
    c.dropped = true;
    // The server closed first: record why.
    auto& codes =
        c.kind == role::slow_subscriber ? counters.slow_close_codes : counters.close_codes;
    codes[close_slot(code)].add();
    if (c.kind == role::subscriber) counters.unexpected_closes.add();
    // Answer with our own close (masked, same code) before hanging up.
    char frame[8] = {static_cast<char>(0x88),      static_cast<char>(0x82),       0, 0, 0, 0,
                     static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    send(c, std::string_view(frame, sizeof frame));
  }
  close_conn(c);
}

std::size_t worker::process_responses(connection& c, const char* data, std::size_t n) {
  std::string_view s(data, n);
  std::size_t off = 0;
  while (off < n) {
    auto end = s.find("\r\n\r\n", off);
    if (end == std::string_view::npos) break;
    std::string_view head = s.substr(off, end - off);
    std::size_t body_len = 0;
    std::string_view location;
    for (std::size_t pos = 0; pos < head.size();) {
      auto eol = head.find("\r\n", pos);
      std::string_view line = head.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
      if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0)
        body_len = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
      else if (line.size() > 9 && strncasecmp(line.data(), "location:", 9) == 0)
        location = line.substr(9);
      if (eol == std::string_view::npos) break;
      pos = eol + 2;
    }
    if (n - end - 4 < body_len) break;
    int status = head.size() > 12 ? std::atoi(std::string(head.substr(9, 3)).c_str()) : 0;
    if (status >= 200 && status < 300) {
      counters.http_ok.add();
      if (o_.churn > 0 && c.outstanding > 0)
        ctl_.last_acked_seq.store(c.seq_at[c.head], std::memory_order_relaxed);
      if (o_.delete_fraction > 0 && c.outstanding > 0 && c.user_at[c.head] >= 0)
        on_chat_ack(c.user_at[c.head], location);
    } else {
      counters.http_errors.add();
      if (counters.http_errors.get() <= 3)
        std::fprintf(stderr, "rheo-bench: HTTP %d: %.*s\n", status,
                     static_cast<int>(std::min<std::size_t>(body_len, 200)), data + end + 4);
    }
    if (c.outstanding > 0) {
      std::int64_t sent = c.sent_at[c.head];
      c.head = (c.head + 1) % c.sent_at.size();
      --c.outstanding;
      http_latency.record(now_ > sent ? static_cast<std::uint64_t>(now_ - sent) : 0);
    }
    off = end + 4 + body_len;
  }
  return off;
}

void worker::send(connection& c, std::string_view data) {
  if (c.state == conn_state::closed) return;
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
    ssize_t w = c.ssl ? tls_send(c.ssl, data.data(), data.size())
                      : ::send(c.fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return lost(c);
    std::size_t done = w > 0 ? static_cast<std::size_t>(w) : 0;
    if (done < data.size()) c.out.assign(data.substr(done));
    return;
  }
  c.out.append(data);
}

void worker::flush(connection& c) {
  while (c.out_off < c.out.size()) {
    ssize_t w = c.ssl ? tls_send(c.ssl, c.out.data() + c.out_off, c.out.size() - c.out_off)
                      : ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                               MSG_NOSIGNAL);
    if (w > 0) {
      c.out_off += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    return lost(c);
  }
  c.out.clear();
  c.out_off = 0;
}

void worker::close_conn(connection& c) {
  if (c.state == conn_state::closed) return;
  if (c.state == conn_state::connecting || c.state == conn_state::handshaking) {
    if (c.kind != role::http) --handshakes_in_flight_;
    if (c.rejoining) {
      c.rejoining = false;
      counters.churn_failed.add();
    }
  } else if (c.kind != role::http) {
    counters.live.sub(); // open or closing
    if (o_.presence && !c.rejoin) presence_gone(c, false);
  }
  c.state = conn_state::closed;
  if (c.ssl) {
    // TLS: close_notify (one non-blocking try; not after a failure, see lost), then the socket.
    if (SSL_is_init_finished(c.ssl) && !SSL_get_quiet_shutdown(c.ssl)) {
      ERR_clear_error();
      SSL_shutdown(c.ssl);
      ERR_clear_error();
    }
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  ::close(c.fd);
  c.fd = -1;
  c.in.clear();
  c.in.shrink_to_fit();
  c.out.clear();
  c.out.shrink_to_fit();
  if (c.rejoin) { // closed by a churn wave: reconnect from the event loop
    c.rejoin = false;
    c.rejoining = true;
    c.draining = false;
    ++c.gen;
    rejoin_queue_.push_back(&c);
    return;
  }
  counters.closed.add();
}

// The peer went away without a close frame (EOF, reset, failed connect).
void worker::lost(connection& c) {
  if (c.state == conn_state::closed) return;
  if (c.ssl) SSL_set_quiet_shutdown(c.ssl, 1); // gone: no close_notify
  bool before_open = c.state == conn_state::connecting || c.state == conn_state::handshaking;
  if (c.kind == role::http) {
    if (before_open)
      counters.http_failed.add();
    else
      counters.http_errors.add();
  } else if (before_open) {
    counters.subs_failed.add();
  } else if (c.state == conn_state::open) {
    c.dropped = true;
    auto& codes =
        c.kind == role::slow_subscriber ? counters.slow_close_codes : counters.close_codes;
    codes[close_slot(1006)].add();
    if (c.kind == role::subscriber) counters.unexpected_closes.add();
  }
  close_conn(c);
}

void worker::append_request(connection& c, std::int64_t t) {
  if (o_.live) {
    t = append_chat_write(c, t);
  } else if (o_.http_method == "GET") {
    c.out += format("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", o_.http_path.c_str(), o_.host.c_str(),
                    o_.authorization.c_str());
  } else {
    std::string body;
    if (o_.per_user) {
      unsigned k = static_cast<unsigned>(next_random() % std::max(1u, o_.subscribers));
      body = format("{\"t\":%lld,\"k\":%u,\"pad\":\"%s\"}", static_cast<long long>(t), k,
                    pad_.c_str());
    } else if (o_.churn > 0) {
      body = format("{\"t\":%lld,\"n\":%lld,\"pad\":\"%s\"}", static_cast<long long>(t),
                    static_cast<long long>(next_seq_), pad_.c_str());
    } else {
      body = format("{\"t\":%lld,\"pad\":\"%s\"}", static_cast<long long>(t), pad_.c_str());
    }
    c.out += format("POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    "%sContent-Length: %zu\r\n\r\n",
                    o_.coll.c_str(), o_.host.c_str(), o_.authorization.c_str(), body.size());
    c.out += body;
  }
  c.sent_at[(c.head + c.outstanding) % c.sent_at.size()] = t;
  if (o_.churn > 0) c.seq_at[(c.head + c.outstanding) % c.seq_at.size()] = next_seq_++;
  ++c.outstanding;
  counters.http_sent.add();
}

// A chat writer's next write (live queries): a POST of a message from a random sender or,
// for --delete-fraction of the writes, a DELETE of one of this writer's messages among its
// sender's newest (inside that sender's window). Returns the write's "t": unique and
// increasing, so a client can tell a new message from an older one refilling its window.
std::int64_t worker::append_chat_write(connection& c, std::int64_t t) {
  t = std::max(t, last_t_ + 1);
  last_t_ = t;
  std::size_t slot = (c.head + c.outstanding) % c.user_at.size();
  ++chat_writes_;
  double f = o_.delete_fraction;
  if (f > 0 && std::floor(static_cast<double>(chat_writes_) * f) >
                   std::floor(static_cast<double>(chat_writes_ - 1) * f)) {
    std::string id;
    for (int tries = 0; tries < 8 && id.empty() && !recent_senders_.empty(); ++tries) {
      auto& ids = recent_[recent_senders_[next_random() % recent_senders_.size()]];
      if (ids.empty()) continue;
      auto k = static_cast<std::ptrdiff_t>(next_random() % ids.size());
      id = std::move(ids[static_cast<std::size_t>(k)]);
      ids.erase(ids.begin() + k);
    }
    if (!id.empty()) {
      {
        std::lock_guard<std::mutex> lock(ctl_.deletes_mutex);
        ctl_.deleted_at[id] = t;
      }
      c.out += format("DELETE /%s/%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", o_.coll.c_str(), id.c_str(),
                      o_.host.c_str(), o_.authorization.c_str());
      c.user_at[slot] = -1;
      counters.deletes_sent.add();
      return t;
    }
    counters.deletes_skipped.add(); // nothing of this writer's in a window yet: insert
  }
  auto user = static_cast<std::uint32_t>(next_random() % o_.chat_users);
  std::string body =
      format("{\"from\":\"u%u\",\"message\":\"%s\",\"timestamp\":{\"$date\":%lld},\"t\":%lld}",
             user, pad_.c_str(), static_cast<long long>(t / 1'000'000), static_cast<long long>(t));
  c.out += format("POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                  "%sContent-Length: %zu\r\n\r\n",
                  o_.coll.c_str(), o_.host.c_str(), o_.authorization.c_str(), body.size());
  c.out += body;
  c.user_at[slot] = static_cast<std::int32_t>(user);
  return t;
}

// A chat message acknowledged (201, Location: /<coll>/<id>), with deletes: it is now its
// sender's newest, inside the window of a per-sender query sorted newest first; of that
// sender's messages, those beyond a window's length are forgotten.
void worker::on_chat_ack(std::int32_t user, std::string_view location) {
  auto slash = location.rfind('/');
  if (slash == npos || slash + 1 >= location.size()) return;
  if (recent_.empty()) recent_.resize(o_.chat_users);
  auto& ids = recent_[static_cast<std::size_t>(user)];
  ids.emplace_back(location.substr(slash + 1));
  std::size_t window = o_.live_pagesize > 0 ? o_.live_pagesize : 100; // the server's default
  if (ids.size() > window) ids.erase(ids.begin());
  constexpr std::size_t ring = 256;
  if (recent_senders_.size() < ring)
    recent_senders_.push_back(static_cast<std::uint32_t>(user));
  else
    recent_senders_[recent_next_++ % ring] = static_cast<std::uint32_t>(user);
}

void worker::pace_http() {
  unsigned step = ctl_.step.load(std::memory_order_acquire);
  double rate = ctl_.rate_per_conn.load(std::memory_order_relaxed);
  std::int64_t t0 = ctl_.step_start.load(std::memory_order_relaxed);
  std::int64_t t = now_ns();
  for (auto& cp : conns_) {
    auto& c = *cp;
    if (c.kind != role::http) break; // HTTP connections come first
    if (c.state != conn_state::open) continue;
    if (c.step_seen != step) {
      c.step_seen = step;
      c.sent_in_step = 0;
    }
    std::uint64_t target;
    if (rate <= 0) {
      target = c.sent_in_step + (o_.pipeline - c.outstanding);
    } else {
      target = static_cast<std::uint64_t>(rate * static_cast<double>(t - t0) / 1e9);
      // Requests that could not be sent because the pipeline was full are skipped, not
      // sent later in a burst.
      if (target > c.sent_in_step + o_.pipeline) {
        counters.http_missed.add(target - c.sent_in_step - o_.pipeline);
        c.sent_in_step = target - o_.pipeline;
      }
    }
    bool was_idle = c.out_off == c.out.size();
    if (was_idle) {
      c.out.clear();
      c.out_off = 0;
    }
    std::size_t before = c.out.size();
    while (c.sent_in_step < target && c.outstanding < o_.pipeline) {
      append_request(c, t);
      ++c.sent_in_step;
    }
    if (c.out.size() != before && was_idle) flush(c);
  }
}

// Wave `wave` (1, 2, ...): closes the next share of this worker's subscribers (a window
// that moves by that share every wave, so each wave picks others) and queues them for
// reconnecting once the server has answered the close. Before that, a subscriber that
// received nothing while 100 inserts were acknowledged counts as silent.
void worker::start_churn(unsigned wave) {
  std::vector<connection*> subs;
  std::size_t all = 0;
  for (auto& c : conns_) {
    if (c->kind != role::subscriber) continue;
    ++all;
    if (!(o_.churn_skip_listeners && c->listener)) subs.push_back(c.get());
  }
  std::size_t share = std::min(
      subs.size(), static_cast<std::size_t>(std::lround(o_.churn * static_cast<double>(all))));
  std::int64_t acked = ctl_.last_acked_seq.load(std::memory_order_relaxed);
  for (std::size_t k = 0; k < share && !subs.empty(); ++k) {
    auto& c = *subs[((wave - 1) * share + k) % subs.size()];
    if (c.state != conn_state::open) continue;
    if (c.delivered_since_open == 0 && acked - c.acked_at_open >= 100) counters.silent.add();
    c.rejoin = true;
    c.state = conn_state::closing;
    counters.churn_closed.add();
    if (o_.presence) presence_gone(c, true);
    const char frame[8] = {static_cast<char>(0x88),      static_cast<char>(0x82),       0, 0, 0, 0,
                           static_cast<char>(1000 >> 8), static_cast<char>(1000 & 0xFF)};
    send(c, std::string_view(frame, sizeof frame));
  }
  wave_seen_ = wave;
  counters.wave_started.store(wave, std::memory_order_release);
}

void worker::start_closing() {
  std::int64_t last = ctl_.last_acked_seq.load(std::memory_order_relaxed);
  for (auto& c : conns_) {
    if (c->state != conn_state::open) continue;
    // Churn: every subscriber open at the end received the last acknowledged insert.
    if (o_.churn > 0 && c->kind == role::subscriber && last >= 0 && c->last_seq < last)
      counters.behind.add();
    if (c->kind == role::http) {
      close_conn(*c);
      continue;
    }
    c->state = conn_state::closing;
    c->draining = true;
    const char frame[8] = {static_cast<char>(0x88),      static_cast<char>(0x82),       0, 0, 0, 0,
                           static_cast<char>(1000 >> 8), static_cast<char>(1000 & 0xFF)};
    send(*c, std::string_view(frame, sizeof frame));
    read_all(*c);
  }
}

// ---------------------------------------------------------------------------------------
// Main thread helpers: blocking HTTP, /proc sampling

struct http_result {
  int status = 0;
  std::string body;
};

http_result http_request(const options& o, const std::string& method, const std::string& path,
                         const std::string& body) {
  http_result r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &dst.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return r;
  }
  // TLS: a blocking session on the same socket (the receive timeout bounds its reads too).
  SSL* ssl = nullptr;
  if (tls_ctx) {
    ssl = tls_new(o, fd);
    ERR_clear_error();
    if (!ssl || SSL_connect(ssl) != 1) {
      tls_report("handshake (main thread)");
      if (ssl) SSL_free(ssl);
      ::close(fd);
      return r;
    }
  }
  auto done = [&] {
    if (ssl) SSL_free(ssl);
    ::close(fd);
  };
  std::string req = format("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method.c_str(),
                           path.c_str(), o.host.c_str());
  if (!body.empty())
    req += format("Content-Type: application/json\r\nContent-Length: %zu\r\n", body.size());
  req += "\r\n" + body;
  for (std::size_t off = 0; off < req.size();) {
    ssize_t w = ssl ? tls_send(ssl, req.data() + off, req.size() - off)
                    : ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (w < 0) {
      done();
      return r;
    }
    off += static_cast<std::size_t>(w);
  }
  // Read to EOF or to the end of a Content-Length body, for at most 10 s overall.
  std::string resp;
  char buf[16384];
  std::int64_t deadline = now_ns() + 10'000'000'000;
  while (now_ns() < deadline) {
    ssize_t n = ssl ? tls_recv(ssl, buf, sizeof buf) : ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
    auto end = resp.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    auto cl = resp.find("Content-Length: ");
    if (cl == std::string::npos) cl = resp.find("content-length: ");
    if (cl != std::string::npos && cl < end &&
        resp.size() >= end + 4 + std::strtoull(resp.c_str() + cl + 16, nullptr, 10))
      break;
    if (resp.compare(0, 12, "HTTP/1.1 101") == 0) break; // not an HTTP server
  }
  done();
  if (resp.size() > 12) r.status = std::atoi(resp.substr(9, 3).c_str());
  if (auto e = resp.find("\r\n\r\n"); e != std::string::npos) r.body = resp.substr(e + 4);
  return r;
}

struct proc_sample {
  std::int64_t at = 0;
  std::uint64_t cpu_ticks = 0; // utime + stime
  std::uint64_t rss_kib = 0;
};

proc_sample sample_proc(int pid) {
  proc_sample s;
  s.at = now_ns();
  if (pid <= 0) return s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    auto rp = line.rfind(')');
    std::istringstream in(line.substr(rp + 2));
    std::string f;
    std::uint64_t ut = 0, st = 0;
    for (int i = 3; i <= 15 && in >> f; ++i) {
      if (i == 14) ut = std::strtoull(f.c_str(), nullptr, 10);
      if (i == 15) st = std::strtoull(f.c_str(), nullptr, 10);
    }
    s.cpu_ticks = ut + st;
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::strtoull(line.c_str() + 6, nullptr, 10);
  return s;
}

/// CPU seconds (utime + stime) of the process between two samples.
double cpu_seconds(const proc_sample& a, const proc_sample& b) {
  if (b.cpu_ticks < a.cpu_ticks) return 0;
  return static_cast<double>(b.cpu_ticks - a.cpu_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double cpu_percent(const proc_sample& a, const proc_sample& b) {
  double wall = static_cast<double>(b.at - a.at) / 1e9;
  if (wall <= 0) return 0;
  return 100.0 * static_cast<double>(b.cpu_ticks - a.cpu_ticks) /
         static_cast<double>(sysconf(_SC_CLK_TCK)) / wall;
}

/// The value of an unlabelled Prometheus sample, or -1.
double metric(const std::string& text, const std::string& name) {
  std::size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    bool line_start = pos == 0 || text[pos - 1] == '\n';
    std::size_t end = pos + name.size();
    if (line_start && end < text.size() && text[end] == '{') // labels, e.g. node="..."
      end = text.find("} ", end) == std::string::npos ? end : text.find("} ", end) + 1;
    if (line_start && end < text.size() && text[end] == ' ')
      return std::strtod(text.c_str() + end + 1, nullptr);
    pos += name.size();
  }
  return -1;
}

/// The value of every `name{...peer="P"...} V` line of a Prometheus text, by peer.
std::vector<std::pair<std::string, double>> metric_by_peer(const std::string& text,
                                                           const std::string& name) {
  std::vector<std::pair<std::string, double>> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0) continue;
    auto p = line.find("peer=\"");
    auto close = line.find("} ");
    if (p == std::string::npos || close == std::string::npos) continue;
    auto end = line.find('"', p + 6);
    out.emplace_back(line.substr(p + 6, end - p - 6),
                     std::strtod(line.c_str() + close + 2, nullptr));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Results

struct totals {
  std::uint64_t subs_open = 0, subs_failed = 0, http_open = 0, http_failed = 0;
  std::uint64_t handshake_rejected = 0, protocol_errors = 0, unexpected_closes = 0, closed = 0;
  std::uint64_t deliveries = 0, slow_deliveries = 0, bytes_in = 0;
  std::uint64_t http_sent = 0, http_ok = 0, http_errors = 0, http_missed = 0;
  std::array<std::uint64_t, close_code_slots> close_codes{}, slow_close_codes{};
  std::uint64_t live = 0, churn_closed = 0, churn_reopened = 0, churn_failed = 0;
  std::uint64_t seq_gaps = 0, seq_duplicates = 0, silent = 0, behind = 0;
  std::uint64_t live_inits = 0, live_ops = 0, live_errors = 0, deletes_sent = 0,
                deletes_skipped = 0;
  std::uint64_t presence_frames = 0, presence_initial_frames = 0, presence_entries = 0,
                presence_untimed = 0, presence_late = 0, listeners_full = 0;
  std::uint64_t presence_dup_joins = 0, presence_unknown_leaves = 0, presence_bad_frames = 0,
                presence_stray_frames = 0;
  std::uint64_t verify_checked = 0, verify_wrong = 0, verify_missing = 0, verify_stale = 0,
                verify_no_view = 0;
  /// Every error: failed connects (first or after a wave: churn_failed is a part of
  /// subs_failed), HTTP errors, protocol errors, closes by the server, the churn checks,
  /// live frames that could not be applied, and presence frames that disagree with the
  /// members (a join twice, a leave of a member not in the list, a frame that does not
  /// parse, a presence frame at a client that did not ask for them, a listener whose list
  /// differs at the end or that never got its first frame).
  std::uint64_t errors() const {
    return subs_failed + http_failed + http_errors + protocol_errors + unexpected_closes +
           seq_gaps + seq_duplicates + silent + behind + live_errors + presence_dup_joins +
           presence_unknown_leaves + presence_bad_frames + presence_stray_frames + verify_wrong +
           verify_no_view;
  }
};

totals collect(const std::vector<std::unique_ptr<worker>>& ws) {
  totals t;
  for (auto& w : ws) {
    auto& c = w->counters;
    t.subs_open += c.subs_open.get();
    t.subs_failed += c.subs_failed.get();
    t.http_open += c.http_open.get();
    t.http_failed += c.http_failed.get();
    t.handshake_rejected += c.handshake_rejected.get();
    t.protocol_errors += c.protocol_errors.get();
    t.unexpected_closes += c.unexpected_closes.get();
    t.closed += c.closed.get();
    t.deliveries += c.deliveries.get();
    t.slow_deliveries += c.slow_deliveries.get();
    t.bytes_in += c.bytes_in.get();
    t.http_sent += c.http_sent.get();
    t.http_ok += c.http_ok.get();
    t.http_errors += c.http_errors.get();
    t.http_missed += c.http_missed.get();
    t.live += c.live.get();
    t.churn_closed += c.churn_closed.get();
    t.churn_reopened += c.churn_reopened.get();
    t.churn_failed += c.churn_failed.get();
    t.seq_gaps += c.seq_gaps.get();
    t.seq_duplicates += c.seq_duplicates.get();
    t.silent += c.silent.get();
    t.behind += c.behind.get();
    t.live_inits += c.live_inits.get();
    t.live_ops += c.live_ops.get();
    t.live_errors += c.live_errors.get();
    t.deletes_sent += c.deletes_sent.get();
    t.deletes_skipped += c.deletes_skipped.get();
    t.presence_frames += c.presence_frames.get();
    t.presence_initial_frames += c.presence_initial_frames.get();
    t.presence_entries += c.presence_entries.get();
    t.presence_untimed += c.presence_untimed.get();
    t.presence_late += c.presence_late.get();
    t.listeners_full += c.listeners_full.get();
    t.presence_dup_joins += c.presence_dup_joins.get();
    t.presence_unknown_leaves += c.presence_unknown_leaves.get();
    t.presence_bad_frames += c.presence_bad_frames.get();
    t.presence_stray_frames += c.presence_stray_frames.get();
    t.verify_checked += c.verify_checked.get();
    t.verify_wrong += c.verify_wrong.get();
    t.verify_missing += c.verify_missing.get();
    t.verify_stale += c.verify_stale.get();
    t.verify_no_view += c.verify_no_view.get();
    for (int i = 0; i < close_code_slots; ++i) {
      t.close_codes[i] += c.close_codes[i].get();
      t.slow_close_codes[i] += c.slow_close_codes[i].get();
    }
  }
  return t;
}

void snapshot_all(const std::vector<std::unique_ptr<worker>>& ws, histogram_snapshot& lat,
                  histogram_snapshot& http, bool interval_max) {
  lat = {};
  http = {};
  histogram_snapshot one;
  for (auto& w : ws) {
    w->latency.snapshot(one, interval_max);
    lat.merge(one);
    w->http_latency.snapshot(one, interval_max);
    http.merge(one);
  }
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

std::string latency_json(const histogram_snapshot& h) {
  return format("{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
                "\"max\":%.3f}",
                static_cast<unsigned long long>(h.total()), ms(h.quantile(0.5)),
                ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max));
}

struct step_result {
  double offered_rate = 0, seconds = 0;
  std::uint64_t sent = 0, acked = 0, deliveries = 0, missed = 0;
  histogram_snapshot latency, http;
  double server_cpu = 0, bench_cpu = 0;
  // Server CPU seconds over the window of `deliveries`: from the sample taken where the
  // previous step's deliveries were collected to the one taken where this step's were.
  // < 0 without --server-pid.
  double server_cpu_seconds = -1;
  std::uint64_t server_rss_kib = 0;
  std::vector<double> node_cpu_seconds; // per --node, over the same window as server_cpu_seconds
  /// Server CPU (user + system) per delivery in microseconds; < 0 without deliveries or
  /// without a server to sample.
  double server_cpu_us_per_delivery() const {
    return deliveries > 0 && server_cpu_seconds >= 0
               ? server_cpu_seconds * 1e6 / static_cast<double>(deliveries)
               : -1;
  }
  /// server_cpu_us_per_delivery() formatted with `fmt`, or `none` where there is none.
  std::string us_per_delivery_text(const char* fmt, const char* none) const {
    double v = server_cpu_us_per_delivery();
    return v >= 0 ? format(fmt, v) : std::string(none);
  }
  double deliveries_per_s() const {
    return seconds > 0 ? static_cast<double>(deliveries) / seconds : 0;
  }
  double acked_per_s() const { return seconds > 0 ? static_cast<double>(acked) / seconds : 0; }
};

std::string codes_json(const std::array<std::uint64_t, close_code_slots>& codes) {
  std::string s = "{";
  for (int i = 0; i < close_code_slots; ++i) {
    if (!codes[i]) continue;
    if (s.size() > 1) s += ",";
    s += format("\"%s\":%llu", i < 16 ? std::to_string(1000 + i).c_str() : "other",
                static_cast<unsigned long long>(codes[i]));
  }
  return s + "}";
}

std::string nice_rate(double v) {
  if (v >= 1e6) return format("%.2fM", v / 1e6);
  if (v >= 1e4) return format("%.0fk", v / 1e3);
  if (v >= 1e3) return format("%.1fk", v / 1e3);
  return format("%.0f", v);
}

// Latency (log scale, ms) against throughput, one point per step.
std::string svg_plot(const options& o, const std::vector<step_result>& steps, bool http_mode) {
  const double W = 720, H = 420, L = 80, R = 20, T = 40, B = 60;
  double xmax = 1;
  double ymin = 1e9, ymax = 0;
  for (auto& s : steps) {
    double x = http_mode ? s.acked_per_s() : s.deliveries_per_s();
    xmax = std::max(xmax, x);
    auto& h = http_mode ? s.http : s.latency;
    ymin = std::min(ymin, std::max(ms(h.quantile(0.5)), 0.01));
    ymax = std::max(ymax, std::max(ms(h.quantile(0.99)), 0.01));
  }
  if (ymax <= 0) ymax = 1;
  double lo = std::pow(10, std::floor(std::log10(std::min(ymin, ymax))));
  double hi = std::pow(10, std::ceil(std::log10(ymax * 1.01)));
  if (hi <= lo) hi = lo * 10;
  xmax *= 1.1;
  auto px = [&](double x) { return L + (W - L - R) * x / xmax; };
  auto py = [&](double y) {
    y = std::max(y, lo);
    return T +
           (H - T - B) * (1 - (std::log10(y) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)));
  };
  std::string s = format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                         "font-family=\"sans-serif\" font-size=\"12\">\n",
                         W, H);
  s += format("<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
  s += format("<text x=\"%.0f\" y=\"22\" font-size=\"14\">%s: latency vs %s</text>\n", L,
              o.label.c_str(), http_mode ? "requests/s" : "deliveries/s");
  s += format("<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L,
              H - B, W - R, H - B);
  s += format("<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L,
              H - B);
  for (double y = lo; y <= hi * 1.001; y *= 10) {
    s += format("<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L,
                py(y), W - R, py(y));
    s += format("<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%g ms</text>\n", L - 6, py(y) + 4,
                y);
  }
  for (int i = 0; i <= 5; ++i) {
    double x = xmax * i / 5;
    s += format("<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", px(x), H - B + 18,
                nice_rate(x).c_str());
  }
  s += format("<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", (L + W - R) / 2,
              H - 16, http_mode ? "requests/s" : "deliveries/s");
  const char* colors[] = {"#1f77b4", "#d62728"};
  const double qs[] = {0.5, 0.99};
  const char* names[] = {"p50", "p99"};
  for (int k = 0; k < 2; ++k) {
    std::string pts;
    for (auto& st : steps) {
      auto& h = http_mode ? st.http : st.latency;
      double x = px(http_mode ? st.acked_per_s() : st.deliveries_per_s());
      double y = py(ms(h.quantile(qs[k])));
      pts += format("%.1f,%.1f ", x, y);
      s += format("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, colors[k]);
    }
    s += format("<polyline points=\"%s\" fill=\"none\" stroke=\"%s\"/>\n", pts.c_str(), colors[k]);
    s += format("<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">%s</text>\n", W - R - 40,
                T + 14.0 * (k + 1), colors[k], names[k]);
  }
  if (!http_mode && o.p99_limit_ms > lo && o.p99_limit_ms < hi)
    s += format("<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#999\" "
                "stroke-dasharray=\"4 4\"/>\n",
                L, py(o.p99_limit_ms), W - R, py(o.p99_limit_ms));
  return s + "</svg>\n";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// Churn: SIGUSR1 asks for a wave, SIGUSR2 ends the load step.
std::atomic<bool> wave_requested{false}, stop_requested{false};
void on_signal(int sig) {
  (sig == SIGUSR1 ? wave_requested : stop_requested).store(true);
}

int run(const options& o) {
  signal(SIGPIPE, SIG_IGN);
  if (o.tls) tls_ctx = make_tls_ctx(o);
  if (o.churn > 0) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, nullptr);
    sigaction(SIGUSR2, &sa, nullptr);
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  unsigned joiners = o.live ? o.live_joiners : 0;
  std::uint64_t conns_needed =
      std::uint64_t{o.subscribers} + o.slow_subscribers + joiners + o.http_conns;
  if (conns_needed + 32 > rl.rlim_cur)
    std::fprintf(stderr, "rheo-bench: warning: %llu connections but the fd limit is %llu\n",
                 static_cast<unsigned long long>(conns_needed),
                 static_cast<unsigned long long>(rl.rlim_cur));

  if (o.setup) {
    std::string stage =
        o.per_user
            ? "{\"_$match\":{\"fullDocument::k\":{\"_$gte\":{\"_$var\":\"lo\"},\"_$lt\":{\"_$var\":"
              "\"hi\"}}}}"
            : "";
    auto r = http_request(o, "PUT", "/" + o.coll,
                          "{\"streams\":[{\"uri\":\"" + o.stream + "\",\"stages\":[" + stage + "]" +
                              (o.presence ? ",\"presence\":true" : "") + "}]}");
    if (r.status != 200 && r.status != 201) {
      std::fprintf(stderr, "rheo-bench: PUT /%s failed: %d %s\n", o.coll.c_str(), r.status,
                   r.body.c_str());
      return 1;
    }
  }

  control ctl;
  if (o.presence) {
    ctl.times = std::make_unique<presence_times[]>(o.subscribers);
    ctl.current = std::make_unique<std::atomic<std::int32_t>[]>(o.subscribers);
    for (unsigned i = 0; i < o.subscribers; ++i)
      ctl.current[i].store(-1);
  }
  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned i = 0; i < o.threads; ++i)
    workers.push_back(std::make_unique<worker>(o, ctl, i));
  for (unsigned i = 0; i < o.http_conns; ++i)
    workers[i % o.threads]->add(role::http, i);
  // Presence listeners: every k-th subscriber, k = subscribers / listeners; listeners and the
  // other subscribers each go round the workers, so every worker parses its share of frames.
  unsigned listener_every = o.presence_listeners > 0 ? o.subscribers / o.presence_listeners : 0;
  unsigned listeners_added = 0, others_added = 0;
  for (unsigned i = 0; i < o.subscribers + o.slow_subscribers; ++i) {
    bool listener =
        listener_every > 0 && i % listener_every == 0 && listeners_added < o.presence_listeners;
    unsigned w = listener ? listeners_added++ % o.threads : others_added++ % o.threads;
    workers[w]->add(i < o.subscribers ? role::subscriber : role::slow_subscriber, o.first_id + i,
                    -1, listener);
  }
  // Late joiners (live queries): evenly over the first 80 % of the first load step.
  for (unsigned j = 0; j < joiners; ++j) {
    unsigned i = o.subscribers + o.slow_subscribers + j;
    auto at = static_cast<std::int64_t>((j + 0.5) / joiners * 0.8 * o.step_seconds * 1e9);
    workers[i % o.threads]->add(role::subscriber, o.first_id + i, at);
  }

  proc_sample srv0 = sample_proc(o.server_pid), self0 = sample_proc(getpid());
  std::int64_t t_connect = now_ns();
  std::vector<std::thread> threads;
  for (auto& w : workers)
    threads.emplace_back([&w] { w->run(); });

  // Connect.
  std::uint64_t subs_total = o.subscribers + o.slow_subscribers;
  totals t;
  double handshakes_seconds = -1; // until every subscriber's handshake was answered
  for (;;) {
    t = collect(workers);
    bool handshakes =
        t.subs_open + t.subs_failed >= subs_total && t.http_open + t.http_failed >= o.http_conns;
    if (handshakes && handshakes_seconds < 0)
      handshakes_seconds = static_cast<double>(now_ns() - t_connect) / 1e9;
    // Live clients are ready once their init frame has come; presence listeners once they
    // have seen every member (the ramp-up).
    bool done = handshakes &&
                (!o.live || t.live_inits + t.subs_failed + t.unexpected_closes >= subs_total) &&
                t.listeners_full >= o.presence_listeners;
    if (done || now_ns() - t_connect > static_cast<std::int64_t>(o.connect_timeout * 1e9)) break;
    sleep_ms(5);
  }
  double connect_seconds = static_cast<double>(now_ns() - t_connect) / 1e9;
  // Presence: from the first connect until the last listener had seen every member.
  double ramp_seconds = o.presence_listeners > 0 && t.listeners_full >= o.presence_listeners
                            ? static_cast<double>(ctl.last_full_at.load() - t_connect) / 1e9
                            : -1;
  if (o.presence)
    std::fprintf(stderr,
                 "rheo-bench: presence: handshakes done in %.2f s, %llu/%u listeners saw all %u "
                 "members, the last after %.2f s\n",
                 handshakes_seconds, static_cast<unsigned long long>(t.listeners_full),
                 o.presence_listeners, o.subscribers, ramp_seconds);
  std::fprintf(stderr, "rheo-bench: %llu/%llu subscribers, %llu/%u writers connected in %.2f s\n",
               static_cast<unsigned long long>(t.subs_open),
               static_cast<unsigned long long>(subs_total),
               static_cast<unsigned long long>(t.http_open), o.http_conns, connect_seconds);
  if (o.live)
    std::fprintf(stderr, "rheo-bench: %llu live init frames\n",
                 static_cast<unsigned long long>(t.live_inits));
  sleep_ms(200); // let the server finish registering subscriptions
  malloc_trim(0); // rheo-bench's own RSS below: what its connections hold, not the handshakes'
  proc_sample srv_connected = sample_proc(o.server_pid), self_connected = sample_proc(getpid());
  std::uint64_t rss_max = srv_connected.rss_kib;
  if (o.hold_seconds > 0) {
    for (double held = 0; held < o.hold_seconds; held += 0.1) {
      sleep_ms(100);
      rss_max = std::max(rss_max, sample_proc(o.server_pid).rss_kib);
    }
  }
  proc_sample srv_held = sample_proc(o.server_pid);
  std::string metrics_connected = http_request(o, "GET", "/_metrics", "").body;
  options core = o;
  core.port = o.cluster_port;
  std::string core_metrics_connected =
      o.cluster_port > 0 ? http_request(core, "GET", "/_metrics", "").body : std::string();

  // Load: rate steps.
  std::vector<step_result> steps;
  // Steps run without writers too: a server that sends on its own (flood-server).
  bool load = o.step_seconds > 0 && (o.http_conns > 0 || o.subscribers > 0);
  histogram_snapshot lat_prev, http_prev, lat_now, http_now;
  // Churn waves and the progress file: a line of counts when the load starts and after
  // every wave, once each subscriber it closed has reconnected (or failed to).
  unsigned wave = 0;
  std::int64_t load_start = now_ns(), last_wave_at = load_start;
  histogram_snapshot wave_lat_prev;
  auto progress_line = [&](double wave_ms, bool complete) {
    if (o.progress.empty()) return;
    totals c = collect(workers);
    histogram_snapshot lat, http;
    snapshot_all(workers, lat, http, false);
    histogram_snapshot d = lat;
    d.subtract(wave_lat_prev);
    wave_lat_prev = lat;
    std::string line = format(
        "wave=%u t=%.3f live=%llu complete=%d wave_ms=%.0f closed=%llu reopened=%llu "
        "failed=%llu deliveries=%llu acked=%llu missed=%llu errors=%llu gaps=%llu "
        "duplicates=%llu silent=%llu unexpected_closes=%llu p50_ms=%.3f p99_ms=%.3f\n",
        wave, static_cast<double>(now_ns() - load_start) / 1e9,
        static_cast<unsigned long long>(c.live), complete ? 1 : 0, wave_ms,
        static_cast<unsigned long long>(c.churn_closed),
        static_cast<unsigned long long>(c.churn_reopened),
        static_cast<unsigned long long>(c.churn_failed),
        static_cast<unsigned long long>(c.deliveries), static_cast<unsigned long long>(c.http_ok),
        static_cast<unsigned long long>(c.http_missed), static_cast<unsigned long long>(c.errors()),
        static_cast<unsigned long long>(c.seq_gaps),
        static_cast<unsigned long long>(c.seq_duplicates),
        static_cast<unsigned long long>(c.silent),
        static_cast<unsigned long long>(c.unexpected_closes), ms(d.quantile(0.5)),
        ms(d.quantile(0.99)));
    if (FILE* f = std::fopen(o.progress.c_str(), "a")) {
      std::fputs(line.c_str(), f);
      std::fclose(f);
    }
  };
  std::vector<std::pair<std::int64_t, double>> wave_times; // start, ms until all reconnected
  auto run_wave = [&] {
    ++wave;
    std::int64_t w0 = now_ns();
    last_wave_at = w0;
    ctl.wave_started_at.store(w0, std::memory_order_relaxed);
    ctl.churn_wave.store(wave, std::memory_order_release);
    bool complete = false;
    while (!complete && now_ns() - w0 < 60'000'000'000) {
      sleep_ms(10);
      bool started = std::all_of(workers.begin(), workers.end(), [&](auto& w) {
        return w->counters.wave_started.load(std::memory_order_acquire) >= wave;
      });
      totals c = collect(workers);
      complete = started && c.churn_reopened + c.churn_failed >= c.churn_closed;
    }
    wave_times.emplace_back(w0, static_cast<double>(now_ns() - w0) / 1e6);
    progress_line(static_cast<double>(now_ns() - w0) / 1e6, complete);
  };
  if (load) {
    snapshot_all(workers, lat_prev, http_prev, true);
    // The server CPU sample sits next to each delivery count, so CPU per delivery covers
    // exactly the deliveries it divides.
    proc_sample srv_before = sample_proc(o.server_pid);
    auto sample_nodes = [&o] {
      std::vector<proc_sample> v;
      for (auto& n : o.nodes)
        v.push_back(sample_proc(n.pid));
      return v;
    };
    auto nodes_before = sample_nodes();
    totals before = collect(workers);
    load_start = now_ns();
    ctl.load_start.store(load_start, std::memory_order_relaxed);
    ctl.measure_from.store(load_start, std::memory_order_relaxed);
    last_wave_at = load_start;
    // The first wave at --churn-first-seconds, the next ones every --churn-seconds.
    if (o.churn_first_seconds >= 0 && o.churn_seconds > 0)
      last_wave_at -= static_cast<std::int64_t>((o.churn_seconds - o.churn_first_seconds) * 1e9);
    if (o.churn > 0) progress_line(0, true);
    for (unsigned i = 0; i < o.steps && !stop_requested.load(); ++i) {
      double rate = o.rate * std::pow(o.rate_mult, i) + o.rate_add * i;
      ctl.rate_per_conn.store(rate / o.http_conns, std::memory_order_relaxed);
      ctl.step_start.store(now_ns(), std::memory_order_relaxed);
      ctl.step.store(i, std::memory_order_release);
      ctl.phase.store(ph_load, std::memory_order_release);
      proc_sample s0 = sample_proc(o.server_pid), b0 = sample_proc(getpid());
      std::int64_t t0 = now_ns();
      std::uint64_t step_rss = 0;
      while (now_ns() - t0 < static_cast<std::int64_t>(o.step_seconds * 1e9)) {
        sleep_ms(100);
        step_rss = std::max(step_rss, sample_proc(o.server_pid).rss_kib);
        if (o.churn > 0) {
          if (wave_requested.exchange(false) ||
              (o.churn_seconds > 0 &&
               now_ns() - last_wave_at >= static_cast<std::int64_t>(o.churn_seconds * 1e9)))
            run_wave();
          if (stop_requested.load()) break;
        }
      }
      proc_sample s1 = sample_proc(o.server_pid), b1 = sample_proc(getpid());
      totals after = collect(workers);
      proc_sample srv_after = sample_proc(o.server_pid);
      auto nodes_after = sample_nodes();
      snapshot_all(workers, lat_now, http_now, true);
      step_result r;
      r.offered_rate = rate;
      r.seconds = static_cast<double>(s1.at - t0) / 1e9;
      r.sent = after.http_sent - before.http_sent;
      r.acked = after.http_ok - before.http_ok;
      r.missed = after.http_missed - before.http_missed;
      r.deliveries = after.deliveries - before.deliveries;
      r.latency = lat_now;
      r.latency.subtract(lat_prev);
      r.http = http_now;
      r.http.subtract(http_prev);
      r.server_cpu = cpu_percent(s0, s1);
      r.bench_cpu = cpu_percent(b0, b1);
      if (o.server_pid > 0) r.server_cpu_seconds = cpu_seconds(srv_before, srv_after);
      r.server_rss_kib = step_rss;
      for (std::size_t n = 0; n < o.nodes.size(); ++n)
        r.node_cpu_seconds.push_back(cpu_seconds(nodes_before[n], nodes_after[n]));
      rss_max = std::max(rss_max, step_rss);
      steps.push_back(r);
      std::fprintf(
          stderr,
          "rheo-bench: step %u rate %.0f/s: %.0f acked/s, %.0f deliveries/s, p50 %.2f ms, "
          "p99 %.2f ms, max %.2f ms, server CPU %.0f%% (%s us/delivery), bench CPU %.0f%%, "
          "RSS %llu KiB\n",
          i, rate, r.acked_per_s(), r.deliveries_per_s(), ms(r.latency.quantile(0.5)),
          ms(r.latency.quantile(0.99)), ms(r.latency.max), r.server_cpu,
          r.us_per_delivery_text("%.2f", "-").c_str(), r.bench_cpu,
          static_cast<unsigned long long>(step_rss));
      before = after;
      srv_before = srv_after;
      nodes_before = nodes_after;
      lat_prev = lat_now;
      http_prev = http_now;
      if (o.subscribers > 0 && ms(r.latency.quantile(0.99)) > o.stop_p99_ms) break;
    }
  }

  // Drain: stop writing, wait for responses and deliveries in flight.
  ctl.phase.store(ph_drain, std::memory_order_release);
  bool drain_quiet = false; // ended by a second without progress, not by the time limit
  {
    std::int64_t t0 = now_ns();
    std::uint64_t last = ~0ull;
    std::int64_t stable_since = t0;
    while (now_ns() - t0 < static_cast<std::int64_t>(o.drain_seconds * 1e9)) {
      sleep_ms(50);
      t = collect(workers);
      std::uint64_t progress = t.deliveries + t.http_ok + t.http_errors;
      bool writers_idle = t.http_ok + t.http_errors >= t.http_sent;
      // With churn, subscribers come and go: wait until nothing moves for a second.
      // Live queries: how many frames a write makes is not known; the same wait.
      bool all_in =
          o.churn > 0 || o.live ? false : o.per_user || t.deliveries >= t.http_ok * t.subs_open;
      if (progress != last) {
        last = progress;
        stable_since = now_ns();
      } else if (writers_idle && (all_in || now_ns() - stable_since > 1'000'000'000)) {
        drain_quiet = true;
        break;
      }
    }
  }
  std::uint64_t live_at_end = collect(workers).live; // subscribers open after the load
  // Presence: every listener's list (in its worker) and GET .../_presence against the members
  // open now (the waves are over and the frames have been quiet for a second).
  struct {
    int status = 0;
    std::uint64_t size = 0, expected = 0, missing = 0, stale = 0, duplicates = 0, bad = 0;
    bool verified = false; // every worker checked its listeners
  } plist;
  if (o.presence) {
    ctl.verify_requested.store(1, std::memory_order_release);
    for (std::int64_t t0 = now_ns(); now_ns() - t0 < 30'000'000'000;) {
      plist.verified = std::all_of(workers.begin(), workers.end(), [](auto& w) {
        return w->counters.verify_done.load(std::memory_order_acquire) >= 1;
      });
      if (plist.verified) break;
      sleep_ms(5);
    }
    auto r = http_request(o, "GET", "/" + o.coll + "/_streams/" + o.stream + "/_presence", "");
    plist.status = r.status;
    std::vector<std::uint32_t> seen(o.subscribers, 0);
    bool listed = json_elements(r.body, [&](std::string_view e) {
      ++plist.size;
      std::int64_t m = -1, g = -1;
      json_members(e, [&](std::string_view k, std::string_view v) {
        if (k == "info")
          json_members(v, [&](std::string_view ik, std::string_view iv) {
            if (ik == "c")
              m = json_index(iv);
            else if (ik == "g")
              g = json_index(iv);
          });
      });
      if (m < 0 || m >= static_cast<std::int64_t>(o.subscribers) || g < 0) {
        ++plist.bad;
        return;
      }
      std::int32_t cur = ctl.current[m].load();
      if (cur != g)
        ++plist.stale;
      else if (seen[m]++ > 0)
        ++plist.duplicates;
    });
    if (!listed) ++plist.bad;
    for (std::uint32_t m = 0; m < o.subscribers; ++m) {
      if (ctl.current[m].load() < 0) continue;
      ++plist.expected;
      if (seen[m] == 0) ++plist.missing;
    }
    if (plist.status != 200 || plist.missing + plist.stale + plist.duplicates + plist.bad > 0)
      std::fprintf(stderr,
                   "rheo-bench: GET _presence: %d, %llu entries for %llu members: %llu missing, "
                   "%llu stale, %llu twice, %llu malformed\n",
                   plist.status, static_cast<unsigned long long>(plist.size),
                   static_cast<unsigned long long>(plist.expected),
                   static_cast<unsigned long long>(plist.missing),
                   static_cast<unsigned long long>(plist.stale),
                   static_cast<unsigned long long>(plist.duplicates),
                   static_cast<unsigned long long>(plist.bad));
  }
  // Live queries: each query's result now, as GET /<coll> with the same parameters answers
  // it (the clients' copies are compared with it once the workers have stopped).
  std::vector<std::vector<std::string>> results;
  std::uint64_t get_errors = 0;
  if (o.live) {
    results.resize(o.live_queries);
    std::vector<bool> followed(o.live_queries); // (--live takes no slow subscribers)
    for (unsigned i = 0; i < o.subscribers + joiners; ++i)
      followed[(o.first_id + i) % o.live_queries] = true;
    for (unsigned q = 0; q < results.size(); ++q) {
      if (!followed[q]) continue;
      auto r = http_request(o, "GET", "/" + o.coll + "?" + live_params(o, q), "");
      if (r.status != 200 ||
          !json_elements(r.body, [&](std::string_view doc) { results[q].emplace_back(doc); })) {
        if (++get_errors <= 3)
          std::fprintf(stderr, "rheo-bench: GET of query %u: %d %.200s\n", q, r.status,
                       r.body.c_str());
      }
    }
  }
  std::string metrics_after = http_request(o, "GET", "/_metrics", "").body;
  std::string core_metrics_after, cluster_loaded; // edges report their counts every second
  if (o.cluster_port > 0) {
    core_metrics_after = http_request(core, "GET", "/_metrics", "").body;
    cluster_loaded = http_request(core, "GET", "/_cluster", "").body;
  }
  proc_sample srv_loaded = sample_proc(o.server_pid);
  rss_max = std::max(rss_max, srv_loaded.rss_kib);

  if (o.slow_subscribers > 0) {
    ctl.phase.store(ph_slow_drain, std::memory_order_release);
    sleep_ms(static_cast<int>(o.slow_drain_seconds * 1000));
  }

  // Close everything; measure how long until the server has answered every close.
  std::int64_t t_close = now_ns();
  ctl.phase.store(ph_close, std::memory_order_release);
  std::uint64_t conns_started = subs_total + o.http_conns;
  for (;;) {
    t = collect(workers);
    if (t.closed >= conns_started) break;
    if (now_ns() - t_close > static_cast<std::int64_t>(o.close_timeout * 1e9)) break;
    sleep_ms(5);
  }
  double close_seconds = static_cast<double>(now_ns() - t_close) / 1e9;
  ctl.phase.store(ph_exit, std::memory_order_release);
  for (auto& th : threads)
    th.join();
  sleep_ms(200);
  proc_sample srv_end = sample_proc(o.server_pid), self_end = sample_proc(getpid());
  t = collect(workers);

  histogram_snapshot lat_all, http_all;
  snapshot_all(workers, lat_all, http_all, false);

  // Consistency: every healthy subscriber received every acknowledged insert.
  // Subscribers opened (a reconnect after a churn wave is not a new one).
  std::uint64_t opened = t.subs_open - t.churn_reopened;
  std::uint64_t slow_open = std::min<std::uint64_t>(o.slow_subscribers, opened);
  std::uint64_t healthy = opened - slow_open;
  // Live queries: every client's copy against its query's result. A client the server closed
  // is not compared (its close is an error already); one that never had an init is an error.
  std::uint64_t verified = 0, mismatches = 0, with_init = 0, joiners_opened = 0;
  histogram_snapshot init_lat, joiner_init_lat, delete_lat;
  if (o.live) {
    histogram_snapshot one;
    for (auto& w : workers) {
      w->init_latency.snapshot(one, false);
      init_lat.merge(one);
      w->joiner_init_latency.snapshot(one, false);
      joiner_init_lat.merge(one);
      w->delete_latency.snapshot(one, false);
      delete_lat.merge(one);
      for (auto& c : w->connections()) {
        if (c->kind != role::subscriber || !c->has_init) continue;
        ++with_init;
        if (c->join_at >= 0) ++joiners_opened;
        if (c->dropped) continue;
        ++verified;
        const auto& want = results[c->query];
        if (c->docs == want) continue;
        if (++mismatches > 3) continue;
        std::size_t k = 0;
        while (k < c->docs.size() && k < want.size() && c->docs[k] == want[k])
          ++k;
        std::fprintf(stderr,
                     "rheo-bench: client %u (query %u) holds %zu documents, GET answers %zu; "
                     "first difference at %zu: %.160s | %.160s\n",
                     c->id, c->query, c->docs.size(), want.size(), k,
                     k < c->docs.size() ? c->docs[k].c_str() : "(none)",
                     k < want.size() ? want[k].c_str() : "(none)");
      }
    }
  }
  std::uint64_t no_init = o.live && t.subs_open > with_init ? t.subs_open - with_init : 0;
  // The clients connected at the start (not the late joiners): connect rate, RSS growth.
  std::uint64_t opened_first = opened - std::min(opened, joiners_opened);
  std::uint64_t presence_list_errors = o.presence ? (plist.status == 200 ? 0 : 1) + plist.missing +
                                                        plist.stale + plist.duplicates + plist.bad +
                                                        (plist.verified ? 0 : 1)
                                                  : 0;
  std::uint64_t errors = t.errors() + mismatches + no_init + get_errors + presence_list_errors;
  bool comparable =
      !o.per_user && o.http_method == "POST" && o.slow_subscribers == 0 && o.churn == 0 && !o.live;
  std::uint64_t expected = comparable ? healthy * t.http_ok : 0;
  bool consistent = o.live       ? errors == 0 && verified == t.subs_open
                    : o.presence ? errors == 0 && t.verify_checked == o.presence_listeners
                                 : comparable && errors == 0 && t.deliveries == expected;

  // Best held step: the highest throughput whose p99 stays under the limit.
  bool http_mode = o.subscribers == 0;
  int best = -1;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto& s = steps[i];
    auto& h = http_mode ? s.http : s.latency;
    double x = http_mode ? s.acked_per_s() : s.deliveries_per_s();
    if (ms(h.quantile(0.99)) > o.p99_limit_ms || h.total() == 0) continue;
    if (best < 0 || x > (http_mode ? steps[best].acked_per_s() : steps[best].deliveries_per_s()))
      best = static_cast<int>(i);
  }

  double rss_per_conn = opened_first > 0 && srv_connected.rss_kib >= srv0.rss_kib
                            ? 1024.0 * static_cast<double>(srv_connected.rss_kib - srv0.rss_kib) /
                                  static_cast<double>(opened_first)
                            : 0;
  std::string j = "{";
  j += format("\"label\":\"%s\",\"subscribers\":%u,\"slow_subscribers\":%u,\"http_conns\":%u,"
              "\"http_method\":\"%s\",\"threads\":%u,\"per_user\":%s,\"doc_bytes\":%u,\"tls\":%s,",
              o.label.c_str(), o.subscribers, o.slow_subscribers, o.http_conns,
              o.http_method.c_str(), o.threads, o.per_user ? "true" : "false", o.doc_bytes,
              o.tls ? "true" : "false");
  j += format("\"connect\":{\"opened\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"per_second\":%.1f},",
              static_cast<unsigned long long>(opened_first),
              static_cast<unsigned long long>(t.subs_failed), connect_seconds,
              connect_seconds > 0 ? static_cast<double>(opened_first) / connect_seconds : 0);
  j += format("\"close_all_seconds\":%.3f,", close_seconds);
  j += format(
      "\"server\":{\"pid\":%d,\"rss_start_kib\":%llu,\"rss_connected_kib\":%llu,"
      "\"rss_held_kib\":%llu,\"rss_loaded_kib\":%llu,\"rss_max_kib\":%llu,"
      "\"rss_end_kib\":%llu,\"rss_per_connection_bytes\":%.0f,\"cpu_percent\":%.1f},",
      o.server_pid, static_cast<unsigned long long>(srv0.rss_kib),
      static_cast<unsigned long long>(srv_connected.rss_kib),
      static_cast<unsigned long long>(srv_held.rss_kib),
      static_cast<unsigned long long>(srv_loaded.rss_kib), static_cast<unsigned long long>(rss_max),
      static_cast<unsigned long long>(srv_end.rss_kib), rss_per_conn, cpu_percent(srv0, srv_end));
  j += format("\"bench_cpu_percent\":%.1f,", cpu_percent(self0, self_end));
  // rheo-bench's own memory: RSS at the start and once connected, per connection (TLS: what
  // each client's session costs the load generator).
  j += format("\"bench\":{\"rss_start_kib\":%llu,\"rss_connected_kib\":%llu,"
              "\"rss_per_connection_bytes\":%.0f},",
              static_cast<unsigned long long>(self0.rss_kib),
              static_cast<unsigned long long>(self_connected.rss_kib),
              opened_first > 0 && self_connected.rss_kib >= self0.rss_kib
                  ? 1024.0 * static_cast<double>(self_connected.rss_kib - self0.rss_kib) /
                        static_cast<double>(opened_first)
                  : 0.0);
  j += "\"steps\":[";
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto& s = steps[i];
    if (i) j += ",";
    j +=
        format("{\"offered_rate\":%.1f,\"seconds\":%.3f,\"sent\":%llu,\"acked\":%llu,"
               "\"missed\":%llu,\"acked_per_s\":%.1f,\"deliveries\":%llu,\"deliveries_per_s\":%.1f,"
               "\"server_cpu_percent\":%.1f,\"bench_cpu_percent\":%.1f,\"server_rss_kib\":%llu,"
               "\"server_cpu_seconds\":%.3f,\"server_cpu_us_per_delivery\":%s,",
               s.offered_rate, s.seconds, static_cast<unsigned long long>(s.sent),
               static_cast<unsigned long long>(s.acked), static_cast<unsigned long long>(s.missed),
               s.acked_per_s(), static_cast<unsigned long long>(s.deliveries), s.deliveries_per_s(),
               s.server_cpu, s.bench_cpu, static_cast<unsigned long long>(s.server_rss_kib),
               std::max(s.server_cpu_seconds, 0.0), s.us_per_delivery_text("%.4f", "null").c_str());
    j += "\"nodes\":[";
    for (std::size_t n = 0; n < o.nodes.size(); ++n) {
      double sec = s.node_cpu_seconds[n];
      j += format("%s{\"name\":\"%s\",\"pid\":%d,\"cpu_seconds\":%.3f,\"cpu_us_per_delivery\":%s}",
                  n ? "," : "", o.nodes[n].name.c_str(), o.nodes[n].pid, sec,
                  s.deliveries > 0
                      ? format("%.4f", sec * 1e6 / static_cast<double>(s.deliveries)).c_str()
                      : "null");
    }
    j += "],\"latency_ms\":" + latency_json(s.latency) +
         ",\"http_latency_ms\":" + latency_json(s.http) + "}";
  }
  j += format("],\"best_step\":%d,", best);
  j += format(
      "\"totals\":{\"inserts_sent\":%llu,\"inserts_acked\":%llu,\"http_ok\":%llu,"
      "\"deliveries\":%llu,\"slow_deliveries\":%llu,\"expected_deliveries\":%llu,"
      "\"healthy_subscribers\":%llu,\"consistent\":%s,\"bytes_in\":%llu,",
      static_cast<unsigned long long>(t.http_sent), static_cast<unsigned long long>(t.http_ok),
      static_cast<unsigned long long>(t.http_ok), static_cast<unsigned long long>(t.deliveries),
      static_cast<unsigned long long>(t.slow_deliveries), static_cast<unsigned long long>(expected),
      static_cast<unsigned long long>(healthy), consistent ? "true" : "false",
      static_cast<unsigned long long>(t.bytes_in));
  j += "\"latency_ms\":" + latency_json(lat_all) +
       ",\"http_latency_ms\":" + latency_json(http_all) + "},";
  j += format(
      "\"errors\":{\"total\":%llu,\"connect_failed\":%llu,\"handshake_rejected\":%llu,"
      "\"writer_connect_failed\":%llu,\"http_errors\":%llu,\"http_missed\":%llu,"
      "\"protocol\":%llu,\"unexpected_closes\":%llu,\"churn_reconnect_failed\":%llu,"
      "\"seq_gaps\":%llu,\"seq_duplicates\":%llu,\"silent\":%llu,"
      "\"behind_at_end\":%llu},",
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(t.subs_failed),
      static_cast<unsigned long long>(t.handshake_rejected),
      static_cast<unsigned long long>(t.http_failed),
      static_cast<unsigned long long>(t.http_errors),
      static_cast<unsigned long long>(t.http_missed),
      static_cast<unsigned long long>(t.protocol_errors),
      static_cast<unsigned long long>(t.unexpected_closes),
      static_cast<unsigned long long>(t.churn_failed), static_cast<unsigned long long>(t.seq_gaps),
      static_cast<unsigned long long>(t.seq_duplicates), static_cast<unsigned long long>(t.silent),
      static_cast<unsigned long long>(t.behind));
  if (o.churn > 0)
    j += format("\"churn\":{\"fraction\":%.3f,\"waves\":%u,\"closed\":%llu,\"reopened\":%llu,"
                "\"failed\":%llu,\"live_at_end\":%llu,\"last_acked_seq\":%lld},",
                o.churn, wave, static_cast<unsigned long long>(t.churn_closed),
                static_cast<unsigned long long>(t.churn_reopened),
                static_cast<unsigned long long>(t.churn_failed),
                static_cast<unsigned long long>(live_at_end),
                static_cast<long long>(ctl.last_acked_seq.load()));
  if (o.live) {
    std::uint64_t diffs = t.deliveries;
    j += format(
        "\"live\":{\"params\":\"%s\",\"queries\":%u,\"clients\":%llu,\"joiners\":%u,"
        "\"joiners_opened\":%llu,\"init_frames\":%llu,\"diff_frames\":%llu,\"ops\":%llu,"
        "\"ops_per_frame\":%.2f,\"apply_errors\":%llu,\"deletes_sent\":%llu,"
        "\"deletes_skipped\":%llu,\"verified\":%llu,\"mismatches\":%llu,"
        "\"no_init\":%llu,\"get_errors\":%llu,\"drain_quiet\":%s,",
        live_params(o, 0).c_str(), o.live_queries, static_cast<unsigned long long>(t.subs_open),
        joiners, static_cast<unsigned long long>(joiners_opened),
        static_cast<unsigned long long>(t.live_inits), static_cast<unsigned long long>(diffs),
        static_cast<unsigned long long>(t.live_ops),
        diffs > 0 ? static_cast<double>(t.live_ops) / static_cast<double>(diffs) : 0.0,
        static_cast<unsigned long long>(t.live_errors),
        static_cast<unsigned long long>(t.deletes_sent),
        static_cast<unsigned long long>(t.deletes_skipped),
        static_cast<unsigned long long>(verified), static_cast<unsigned long long>(mismatches),
        static_cast<unsigned long long>(no_init), static_cast<unsigned long long>(get_errors),
        drain_quiet ? "true" : "false");
    j += "\"init_latency_ms\":" + latency_json(init_lat) +
         ",\"joiner_init_latency_ms\":" + latency_json(joiner_init_lat) +
         ",\"delete_latency_ms\":" + latency_json(delete_lat) + "},";
  }
  if (o.presence) {
    histogram_snapshot join_lat, leave_lat, rejoined_lat, one;
    for (auto& w : workers) {
      w->join_latency.snapshot(one, false);
      join_lat.merge(one);
      w->leave_latency.snapshot(one, false);
      leave_lat.merge(one);
      w->rejoined_latency.snapshot(one, false);
      rejoined_lat.merge(one);
    }
    histogram_snapshot all_lat = join_lat;
    all_lat.merge(leave_lat);
    // The measured window: the load steps (the waves), the server's CPU over it.
    double cpu = 0, secs = 0;
    for (auto& s : steps) {
      cpu += std::max(s.server_cpu_seconds, 0.0);
      secs += s.seconds;
    }
    std::uint64_t changes = t.churn_closed + t.churn_reopened;
    auto per = [](double cpu_s, std::uint64_t n) {
      return n > 0 ? format("%.1f", cpu_s * 1e6 / static_cast<double>(n)) : std::string("null");
    };
    j += format(
        "\"presence\":{\"members\":%u,\"listeners\":%u,\"handshakes_seconds\":%.3f,"
        "\"ramp_seconds\":%s,\"listeners_full\":%llu,\"frames\":%llu,\"initial_frames\":%llu,"
        "\"entries_delivered\":%llu,\"joins\":%llu,\"leaves\":%llu,\"timed\":%llu,"
        "\"untimed\":%llu,\"late_over_500ms\":%llu,\"window_seconds\":%.3f,"
        "\"server_cpu_seconds\":%.3f,\"server_cpu_percent\":%.2f,"
        "\"server_cpu_us_per_change\":%s,\"server_cpu_us_per_entry\":%s,"
        "\"dup_joins\":%llu,\"unknown_leaves\":%llu,\"bad_frames\":%llu,\"stray_frames\":%llu,"
        "\"lists\":{\"checked\":%llu,\"wrong\":%llu,\"missing\":%llu,\"stale\":%llu,"
        "\"no_first_frame\":%llu,\"all_checked\":%s},"
        "\"get\":{\"status\":%d,\"entries\":%llu,\"members\":%llu,\"missing\":%llu,\"stale\":%llu,"
        "\"twice\":%llu,\"malformed\":%llu},",
        o.subscribers, o.presence_listeners, handshakes_seconds,
        ramp_seconds >= 0 ? format("%.3f", ramp_seconds).c_str() : "null",
        static_cast<unsigned long long>(t.listeners_full),
        static_cast<unsigned long long>(t.presence_frames),
        static_cast<unsigned long long>(t.presence_initial_frames),
        static_cast<unsigned long long>(t.presence_entries),
        static_cast<unsigned long long>(t.churn_reopened),
        static_cast<unsigned long long>(t.churn_closed),
        static_cast<unsigned long long>(all_lat.total()),
        static_cast<unsigned long long>(t.presence_untimed),
        static_cast<unsigned long long>(t.presence_late), secs, cpu,
        secs > 0 ? 100.0 * cpu / secs : 0.0, per(cpu, changes).c_str(),
        per(cpu, t.presence_entries).c_str(), static_cast<unsigned long long>(t.presence_dup_joins),
        static_cast<unsigned long long>(t.presence_unknown_leaves),
        static_cast<unsigned long long>(t.presence_bad_frames),
        static_cast<unsigned long long>(t.presence_stray_frames),
        static_cast<unsigned long long>(t.verify_checked),
        static_cast<unsigned long long>(t.verify_wrong),
        static_cast<unsigned long long>(t.verify_missing),
        static_cast<unsigned long long>(t.verify_stale),
        static_cast<unsigned long long>(t.verify_no_view), plist.verified ? "true" : "false",
        plist.status, static_cast<unsigned long long>(plist.size),
        static_cast<unsigned long long>(plist.expected),
        static_cast<unsigned long long>(plist.missing),
        static_cast<unsigned long long>(plist.stale),
        static_cast<unsigned long long>(plist.duplicates),
        static_cast<unsigned long long>(plist.bad));
    histogram_snapshot lag;
    for (auto& w : workers) {
      w->read_lag.snapshot(one, false);
      lag.merge(one);
    }
    j += "\"latency_ms\":" + latency_json(all_lat) +
         ",\"join_latency_ms\":" + latency_json(join_lat) +
         ",\"leave_latency_ms\":" + latency_json(leave_lat) +
         ",\"read_lag_ms\":" + latency_json(lag) +
         ",\"rejoined_listener_latency_ms\":" + latency_json(rejoined_lat);
    // Each wave's start (ms into the load), how long until every client it closed had
    // reconnected, and the first and last arrival of a frame with changes at the listeners
    // connected before it (ms after its start; -1: none); the frames listener 0 received
    // during the load (ms into the load, joined, left entries).
    j += ",\"waves\":[";
    for (std::size_t i = 0; i < wave_times.size(); ++i) {
      std::int64_t first = INT64_MAX, last = 0;
      for (auto& w : workers)
        if (i < w->wave_frames.size()) {
          first = std::min(first, w->wave_frames[i].first);
          last = std::max(last, w->wave_frames[i].second);
        }
      double w0 = static_cast<double>(wave_times[i].first);
      j += format("%s[%.1f,%.1f,%.1f,%.1f]", i ? "," : "",
                  (w0 - static_cast<double>(load_start)) / 1e6, wave_times[i].second,
                  first == INT64_MAX ? -1.0 : (static_cast<double>(first) - w0) / 1e6,
                  last == 0 ? -1.0 : (static_cast<double>(last) - w0) / 1e6);
    }
    j += "],\"listener0_frames\":[";
    bool first_note = true;
    for (auto& w : workers)
      for (auto& n : w->timeline) {
        j += format("%s[%.1f,%u,%u]", first_note ? "" : ",",
                    static_cast<double>(n.at - load_start) / 1e6, n.joined, n.left);
        first_note = false;
      }
    j += "]},";
  }
  j += "\"close_codes\":" + codes_json(t.close_codes) +
       ",\"slow_close_codes\":" + codes_json(t.slow_close_codes) + ",";
  auto m = [&](const std::string& text, const char* name) {
    double v = metric(text, name);
    return v < 0 ? std::string("null") : format("%.0f", v);
  };
  if (o.cluster_port > 0) {
    // Bytes the core sent each peer between connected and drained, per acknowledged insert.
    auto before = metric_by_peer(core_metrics_connected, "rheo_cluster_bytes_sent_total");
    auto after = metric_by_peer(core_metrics_after, "rheo_cluster_bytes_sent_total");
    j += "\"cluster\":{\"status_loaded\":" +
         (cluster_loaded.empty() ? std::string("null") : cluster_loaded) + ",\"peers\":[";
    for (std::size_t i = 0; i < after.size(); ++i) {
      double b0 = 0;
      for (auto& [peer, v] : before)
        if (peer == after[i].first) b0 = v;
      double bytes = after[i].second - b0;
      j += format("%s{\"peer\":\"%s\",\"bytes_sent\":%.0f,\"bytes_per_insert\":%.1f}", i ? "," : "",
                  after[i].first.c_str(), bytes,
                  t.http_ok > 0 ? bytes / static_cast<double>(t.http_ok) : 0.0);
    }
    j += "]},";
  }
  j += "\"server_metrics\":{\"upstream_feeds_connected\":" +
       m(metrics_connected, "rheo_upstream_feeds") +
       ",\"subscriptions_connected\":" + m(metrics_connected, "rheo_subscriptions") +
       ",\"sessions_open_connected\":" + m(metrics_connected, "rheo_sessions_open") +
       ",\"events_received\":" + m(metrics_after, "rheo_events_received_total") +
       ",\"frames_sent\":" + m(metrics_after, "rheo_frames_sent_total") +
       ",\"slow_consumer_closes\":" + m(metrics_after, "rheo_slow_consumer_closes_total") +
       ",\"stage_errors\":" + m(metrics_after, "rheo_stage_errors_total") +
       ",\"live_queries_connected\":" + m(metrics_connected, "rheo_live_queries") +
       ",\"live_refills\":" + m(metrics_after, "rheo_live_refills_total") +
       ",\"live_frames\":" + m(metrics_after, "rheo_live_frames_total") +
       ",\"presence_members_connected\":" + m(metrics_connected, "rheo_presence_members") +
       ",\"presence_members_after\":" + m(metrics_after, "rheo_presence_members") + "}";
  j += "}\n";

  // Markdown row: label | subscribers | best throughput | latency of that step | CPU | RSS.
  std::string row;
  {
    const step_result* s = best >= 0 ? &steps[best] : (steps.empty() ? nullptr : &steps.back());
    const histogram_snapshot& h = s ? (http_mode ? s->http : s->latency) : lat_all;
    row = format(
        "| %s | %u | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %s | %.1f | %.0f | "
        "%llu |\n",
        o.label.c_str(), o.subscribers + o.slow_subscribers, http_mode ? "req/s" : "deliveries/s",
        s ? (http_mode ? s->acked_per_s() : s->deliveries_per_s()) : 0.0,
        s ? s->acked_per_s() : 0.0, ms(h.quantile(0.5)), ms(h.quantile(0.99)),
        ms(h.quantile(0.999)), ms(h.max), s ? s->server_cpu : 0.0,
        s ? s->us_per_delivery_text("%.2f", "-").c_str() : "-",
        static_cast<double>(rss_max) / 1024.0,
        connect_seconds > 0 ? static_cast<double>(opened_first) / connect_seconds : 0.0,
        static_cast<unsigned long long>(errors));
  }
  std::fputs(j.c_str(), stdout);
  if (!o.out.empty()) {
    write_file(o.out + ".json", j);
    write_file(
        o.out + ".md",
        "| run | conns | unit | throughput | writes/s | p50 ms | p99 ms | p99.9 ms | max ms | "
        "server CPU | server CPU us/delivery | server RSS max MiB | connects/s | errors |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" +
            row);
    write_file(o.out + ".svg", svg_plot(o, steps, http_mode));
  }
  return 0;
}

} // namespace
} // namespace bench

int main(int argc, char** argv) {
  try {
    return bench::run(bench::parse_options(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rheo-bench: %s\n", e.what());
    return 2;
  }
}
