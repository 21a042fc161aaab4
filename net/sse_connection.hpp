// One Server-Sent Events session (`Accept: text/event-stream` on a stream URL): the 200
// response's head, then the events the subscription hands over as they come, a comment
// (": keep-alive") at the ping interval, and the end of the response (the connection
// closes: the response has no length) on close(), shut_down() or as a slow consumer.
// Bytes the client sends after its request are read and ignored; its EOF ends the session.
// The queue, the writer and the backpressure are push_connection's.
//
// Thread-safety: as push_connection: accept(), reject(), close() and shut_down() from any
// thread; everything else on the shard's thread.
#pragma once

#include "net/push_connection.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rheo {

class sse_connection final : public push_connection {
public:
  /// `stream` must belong to `shard`'s context. `headers` are added to the response's head
  /// (CORS).
  sse_connection(io_shard& shard, connection_stream stream, unsigned http_version,
                 std::vector<std::pair<std::string, std::string>> headers, options opts);

  push_transport transport() const override { return push_transport::sse; }
  void accept() override;

private:
  void start_close(std::uint16_t code, std::string_view reason, bool drop_queued) override;
  void last_item_written() override;
  void do_read();
  void schedule_keep_alive();
  std::shared_ptr<sse_connection> self() {
    return std::static_pointer_cast<sse_connection>(shared_from_this());
  }

  std::vector<std::pair<std::string, std::string>> headers_;
};

} // namespace rheo
