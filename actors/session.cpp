#include "actors/session.hpp"

#include "actors/presence.hpp"
#include "net/http.hpp"
#include "net/push_connection.hpp"

#include <caf/all.hpp>

namespace rheo {

session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::shared_ptr<push_connection> conn, broker_actor broker,
                                     subscription_spec spec,
                                     std::optional<std::string> resume_after) {
  self->state.conn = conn;
  self->request(broker, caf::infinite, subscribe_atom::value, session_actor{self},
                client_handle{conn, std::move(resume_after)}, std::move(spec))
      .then(
          [self](const subscription_actor&) {
            auto& st = self->state;
            st.conn->accept();
            st.accepted = true;
            if (st.pending_close)
              st.conn->close(st.pending_close->first, std::move(st.pending_close->second));
          },
          [self](const caf::error& err) {
            // A limit (caf::sec::invalid_argument) says which in its message: 503 with it.
            if (err.category() == caf::atom("system") &&
                err.code() == static_cast<std::uint8_t>(caf::sec::invalid_argument) &&
                err.context().match_elements<std::string>()) {
              const std::string& why = err.context().get_as<std::string>(0);
              self->state.conn->reject(503, error_response(503, why).body);
              return;
            }
            self->state.conn->reject(
                500, error_response(500, "cannot subscribe: " + self->system().render(err)).body);
          });
  return {
      [self](close_atom, std::uint16_t code, std::string& reason) {
        auto& st = self->state;
        if (st.accepted)
          st.conn->close(code, std::move(reason));
        else if (!st.pending_close)
          st.pending_close.emplace(code, std::move(reason));
      },
      [self](hub_atom, caf::actor& hub) { self->state.hub = std::move(hub); },
      [self](broadcast_atom, std::string& json) {
        if (self->state.hub)
          self->send(caf::actor_cast<presence_actor>(self->state.hub), broadcast_atom::value,
                     session_actor{self}, std::move(json));
      },
      [self](closed_atom) { self->quit(); },
  };
}

} // namespace rheo
