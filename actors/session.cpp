#include "actors/session.hpp"

#include "net/metrics.hpp"
#include "net/ws_connection.hpp"
#include "storage/json.hpp"

#include <caf/all.hpp>

namespace rheo {

session_state::session_state() {
  global_metrics().sessions_open.fetch_add(1, std::memory_order_relaxed);
}

session_state::~session_state() {
  global_metrics().sessions_open.fetch_sub(1, std::memory_order_relaxed);
}

session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::shared_ptr<ws_connection> conn, broker_actor broker,
                                     subscription_spec spec, std::int64_t queue_limit) {
  self->state.conn = conn;
  self->state.queue_limit = queue_limit;
  // The connection reports its end to us; we then quit, and the broker (which monitors
  // us) removes us from our subscription.
  conn->on_closed = [hdl = session_actor{self}] { caf::anon_send(hdl, closed_atom::value); };
  self->request(broker, caf::infinite, subscribe_atom::value, session_actor{self}, std::move(spec))
      .then([self](const subscription_actor&) { self->state.conn->accept(); },
            [self](const caf::error& err) {
              std::string msg = "cannot subscribe: " + self->system().render(err);
              std::string body = "{\"http status code\":500,\"http status description\":"
                                 "\"Internal Server Error\",\"message\":" +
                                 to_json(value(msg)) + "}";
              self->state.conn->reject(500, std::move(body));
            });
  return {
      [self](frame_batch& batch) {
        auto& st = self->state;
        if (st.closing) return;
        auto n = static_cast<std::int64_t>(batch.bytes->size());
        auto queued = st.conn->queued_bytes().fetch_add(n, std::memory_order_relaxed) + n;
        if (queued > st.queue_limit) {
          st.conn->queued_bytes().fetch_sub(n, std::memory_order_relaxed);
          st.closing = true;
          global_metrics().slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
          st.conn->close(1013,
                         "slow consumer: outbound queue over " + std::to_string(st.queue_limit) +
                             " bytes",
                         true);
          return;
        }
        st.conn->send(std::move(batch.bytes), batch.frames);
      },
      [self](close_atom, std::uint16_t code, std::string& reason) {
        self->state.closing = true;
        self->state.conn->close(code, std::move(reason));
      },
      [self](closed_atom) { self->quit(); },
  };
}

} // namespace rheo
