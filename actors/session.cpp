#include "actors/session.hpp"

#include "net/http.hpp"
#include "net/ws_connection.hpp"

#include <caf/all.hpp>

namespace rheo {

session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::shared_ptr<ws_connection> conn, broker_actor broker,
                                     subscription_spec spec) {
  self->state.conn = conn;
  self->request(broker, caf::infinite, subscribe_atom::value, session_actor{self}, ws_handle{conn},
                std::move(spec))
      .then([self](const subscription_actor&) { self->state.conn->accept(); },
            [self](const caf::error& err) {
              self->state.conn->reject(
                  500, error_response(500, "cannot subscribe: " + self->system().render(err)).body);
            });
  return {
      [self](close_atom, std::uint16_t code, std::string& reason) {
        self->state.conn->close(code, std::move(reason));
      },
      [self](closed_atom) { self->quit(); },
  };
}

} // namespace rheo
