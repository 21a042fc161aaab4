// The open client connections of a server, HTTP sessions and WebSockets alike, so that
// stopping the server can shut every one of them down. The server owns the registry and
// registers its HTTP sessions; the websocket_hub registers the WebSockets it accepts. A
// connection is held only weakly, so it leaves on its own when it ends (expired entries are
// pruned, amortised, as new ones come). Once shut_down_all() has begun, add() refuses: the
// caller turns the connection away.
//
// Thread-safety: add() and shut_down_all() may be called from any thread, concurrently
// (one mutex guards the list); shut_down_all() calls the connections' shut_down() outside
// the lock.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace rheo {

/// An open client connection, as the registry sees it.
class client_connection {
public:
  /// The server is stopping: close, as gracefully as this kind of connection allows (an
  /// HTTP session after the response in flight, a WebSocket with 1001). Called from any
  /// thread.
  virtual void shut_down() = 0;

protected:
  ~client_connection() = default;
};

class connection_registry {
public:
  /// Registers `c` (weakly). False once shut_down_all() has begun: `c` was not registered.
  [[nodiscard]] bool add(std::weak_ptr<client_connection> c);
  /// Refuses every later add(), then shuts down every registered connection still alive.
  /// Idempotent.
  void shut_down_all();

private:
  std::mutex mutex_;
  std::vector<std::weak_ptr<client_connection>> connections_;
  std::size_t live_after_prune_ = 0;
  bool shutting_down_ = false;
};

} // namespace rheo
