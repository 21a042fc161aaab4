// flood-server: measures rheo-bench's own ceiling. Accepts WebSocket upgrades (any path, no
// key check) and writes, to every connection as fast as the socket takes it, one write of
// `frames` pre-built text frames `{"t":<now ns>,"pad":"..."}`; nothing else (no JSON, no
// fan-out logic), like the raw epoll floor of ../shared/bench.md.
//   flood-server [port (0: any)] [frames per write] [payload bytes]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct peer {
  int fd = -1;
  bool open = false; // upgrade answered
  std::string request;
};

} // namespace

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  int frames = argc > 2 ? std::atoi(argv[2]) : 32;
  int payload = argc > 3 ? std::atoi(argv[3]) : 120;
  signal(SIGPIPE, SIG_IGN);
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 4096) != 0) {
    std::perror("flood-server: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("flood-server listening on http://127.0.0.1:%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::vector<peer> peers(rl.rlim_cur);
  std::vector<int> open_fds;
  std::string pad(static_cast<std::size_t>(std::max(payload - 30, 1)), 'x');
  std::string batch;
  std::vector<epoll_event> events(1024);
  char buf[8192];
  for (;;) {
    int n =
        epoll_wait(ep, events.data(), static_cast<int>(events.size()), open_fds.empty() ? 100 : 0);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (int c; (c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          peers[c] = peer{c, false, {}};
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      auto& p = peers[fd];
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        close(fd);
        if (p.open) std::erase(open_fds, fd);
        p = peer{};
        continue;
      }
      if (p.open) continue; // client frames (pongs, closes) are ignored
      p.request.append(buf, static_cast<std::size_t>(r));
      if (p.request.find("\r\n\r\n") == std::string::npos) continue;
      const char* ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: unchecked\r\n\r\n";
      send(fd, ok, std::strlen(ok), MSG_NOSIGNAL);
      p.open = true;
      p.request.clear();
      open_fds.push_back(fd);
    }
    if (open_fds.empty()) continue;
    // One round: every connection gets one write of `frames` frames stamped now.
    batch.clear();
    std::string body = "{\"t\":" + std::to_string(now_ns()) + ",\"pad\":\"" + pad + "\"}";
    for (int f = 0; f < frames; ++f) {
      batch += static_cast<char>(0x81);
      if (body.size() < 126) {
        batch += static_cast<char>(body.size());
      } else {
        batch += static_cast<char>(126);
        batch += static_cast<char>(body.size() >> 8);
        batch += static_cast<char>(body.size() & 0xFF);
      }
      batch += body;
    }
    for (int fd : open_fds) {
      // Partial writes would split a frame: only write when the whole batch fits.
      ssize_t w = send(fd, batch.data(), batch.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0 && static_cast<std::size_t>(w) < batch.size()) {
        // Finish this batch blocking-free by retrying; rare with small batches.
        std::size_t done = static_cast<std::size_t>(w);
        while (done < batch.size()) {
          ssize_t more = send(fd, batch.data() + done, batch.size() - done, MSG_NOSIGNAL);
          if (more <= 0 && errno != EAGAIN) break;
          if (more > 0) done += static_cast<std::size_t>(more);
        }
      }
    }
  }
}
