// The connections one subscription or live query sends to, grouped the way the fan-out
// wants them: by transport (each gets its own encoding of a batch) and then by I/O thread
// (one fanout_group each, see net/fanout.hpp), with how many of the owner's sessions each
// group holds. A batch's bytes are posted once per group that has sessions.
//
// Thread-safety: a plain value, owned by one actor (used only by its behavior). It reaches
// the connections only through fanout_group's posting members and post_to_connection().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rheo {

class fanout_group;
class push_connection;
enum class push_transport : std::uint8_t; // net/push_connection.hpp

class audience {
public:
  audience() = default;
  /// Releases the groups: their members receive nothing more from them.
  ~audience();
  audience(const audience&) = delete;
  audience& operator=(const audience&) = delete;

  /// Adds `conn` to the group of its transport and I/O thread: it receives every batch
  /// posted after this (and after what was posted to it alone before).
  void join(std::shared_ptr<push_connection> conn);
  /// A connection that joined on I/O thread `shard` with `transport` has gone.
  void leave(push_transport transport, unsigned shard);
  /// Whether any connection of `transport` is in the audience.
  bool reaches(push_transport transport) const;
  /// Queues `frames` messages in `bytes` (encoded for `transport`) on each of its connections
  /// but `except` (when given).
  void post(push_transport transport, const std::shared_ptr<const std::string>& bytes,
            std::uint32_t frames, const push_connection* except = nullptr);
  /// Queues one message, `json`, on each of its connections but `except`: encoded once per
  /// transport in use, as append_push_message() does.
  void post_message(std::string_view event, const std::string* id, std::string_view json,
                    const push_connection* except = nullptr);

private:
  struct shard_group {
    std::shared_ptr<fanout_group> group;
    std::uint32_t sessions = 0;
  };
  // By transport, then by I/O thread index.
  std::array<std::vector<shard_group>, 2> groups_;
  std::array<std::uint32_t, 2> sessions_{};
};

/// Appends message `json` as `transport` carries it: a WebSocket text frame, or an SSE event
/// named `event` with `id` as its id (no id line when null: the client's last id stays).
void append_push_message(std::string& out, push_transport transport, std::string_view event,
                         const std::string* id, std::string_view json);

/// Queues `frames` messages in `bytes` on `conn` alone (nothing when `frames` is 0), in order
/// with every other post from the calling thread to its I/O thread.
void send_alone(const std::shared_ptr<push_connection>& conn, std::string bytes,
                std::uint32_t frames);

} // namespace rheo
