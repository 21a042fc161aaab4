#include "actors/subscription.hpp"

#include "config/log.hpp"
#include "net/metrics.hpp"
#include "net/ws_frame.hpp"
#include "storage/json.hpp"

#include <caf/all.hpp>

namespace rheo {

namespace {

const std::string* operation_of(const object& event) {
  const value* op = find_field(event, "operationType");
  return op && op->is_string() ? &op->as_string() : nullptr;
}

/// The stored definition of stream `uri` in collection metadata; nullptr if gone.
const value* definition_in(const object& metadata, const std::string& uri) {
  const value* streams = find_field(metadata, "streams");
  if (!streams || !streams->is_array()) return nullptr;
  for (auto& s : streams->as_array()) {
    if (!s.is_object()) continue;
    const value* u = find_field(s.as_object(), "uri");
    if (u && u->is_string() && u->as_string() == uri) return &s;
  }
  return nullptr;
}

void close_all(subscription_actor::stateful_pointer<subscription_state> self, std::uint16_t code,
               const std::string& reason) {
  auto& st = self->state;
  st.closed = true;
  for (auto& s : st.sessions)
    self->send(s, close_atom::value, code, reason);
}

} // namespace

subscription_state::subscription_state() {
  global_metrics().subscriptions.fetch_add(1, std::memory_order_relaxed);
}

subscription_state::~subscription_state() {
  global_metrics().subscriptions.fetch_sub(1, std::memory_order_relaxed);
}

subscription_actor::behavior_type
subscription(subscription_actor::stateful_pointer<subscription_state> self, broker_actor broker,
             subscription_spec spec) {
  auto& st = self->state;
  st.stream = spec.stream;
  st.definition_json = spec.definition_json;
  try {
    value def = parse_json(spec.definition_json, "stream definition");
    value avars = parse_json(spec.avars_json.empty() ? "{}" : spec.avars_json, "avars");
    server_vars sv;
    if (!spec.user_json.empty()) sv.user = parse_json(spec.user_json, "user").as_object();
    if (!spec.read_filter_json.empty())
      sv.read_filter = parse_json(spec.read_filter_json, "readFilter").as_object();
    st.stages = pipeline::compile(def.as_object(), avars.as_object(), sv);
  } catch (const std::exception& e) {
    // The session validated the same definition before the upgrade; a failure here means
    // the definition changed in between. Close whoever joins.
    log::warn(std::string("subscription ") + spec.key + ": " + e.what());
    st.closed = true;
  }
  return {
      [self](join_atom, session_actor& s) {
        if (self->state.closed) {
          self->send(s, close_atom::value, std::uint16_t{1000},
                     std::string("stream definition changed"));
          return;
        }
        self->state.sessions.push_back(std::move(s));
      },
      [self](closed_atom, const session_actor& s) {
        auto& v = self->state.sessions;
        std::erase(v, s);
      },
      [self, broker](event_batch& batch) {
        auto& st = self->state;
        if (st.closed || !batch.events) return;
        std::string frames;
        std::uint32_t count = 0;
        object scratch;
        std::optional<std::pair<std::uint16_t, std::string>> close_after;
        for (auto& ev : *batch.events) {
          const std::string* op = operation_of(ev);
          try {
            const object* out = st.stages.run(ev, scratch);
            if (out) {
              std::string json;
              append_json(json, *out);
              ws::append_frame(frames, ws::opcode::text, json);
              ++count;
            }
          } catch (const pipeline_error& e) {
            global_metrics().stage_errors.fetch_add(1, std::memory_order_relaxed);
            log::debug(std::string("stream ") + st.stream + ": event skipped: " + e.what());
          }
          if (op && *op == "invalidate") {
            close_after.emplace(1000, "collection dropped");
            break;
          }
        }
        if (count) {
          frame_batch fb{std::make_shared<const std::string>(std::move(frames)), count};
          for (auto& s : st.sessions)
            self->send(s, fb);
        }
        if (close_after) {
          close_all(self, close_after->first, close_after->second);
          self->send(broker, retire_atom::value, subscription_actor{self});
        }
      },
      [self, broker](metadata_change& m) {
        // Collection metadata changed: if our stream's definition changed, we are done.
        auto& st = self->state;
        if (st.closed || !m.metadata) return;
        const value* now = definition_in(*m.metadata, st.stream);
        bool same = false;
        try {
          same = now && *now == parse_json(st.definition_json, "stream definition");
        } catch (const std::exception&) {
          // Our own definition does not parse: it cannot be the stored one.
        }
        if (same) return;
        close_all(self, 1000, "stream definition changed");
        self->send(broker, retire_atom::value, subscription_actor{self});
      },
      [self](close_atom, std::uint16_t code, std::string& reason) {
        close_all(self, code, reason);
      },
  };
}

} // namespace rheo
