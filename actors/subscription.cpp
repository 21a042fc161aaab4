#include "actors/subscription.hpp"

#include "config/log.hpp"
#include "net/fanout.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/ws_connection.hpp"
#include "net/ws_frame.hpp"
#include "storage/document/json.hpp"

#include <caf/all.hpp>

namespace rheo {

namespace {

using self_ptr = subscription_actor::stateful_pointer<subscription_state>;

const std::string* operation_of(const object& event) {
  const value* op = find_field(event, "operationType");
  return op && op->is_string() ? &op->as_string() : nullptr;
}

void close_all(self_ptr self, std::uint16_t code, const std::string& reason) {
  auto& st = self->state;
  st.closed = true;
  for (auto& [addr, m] : st.sessions)
    self->send(m.handle, close_atom::value, code, reason);
}

/// Hands one buffer of frames to every I/O thread hosting sessions of ours.
void fan_out(subscription_state& st, std::string frames, std::uint32_t count) {
  auto bytes = std::make_shared<const std::string>(std::move(frames));
  for (std::size_t i = 0; i < st.groups.size(); ++i)
    if (st.sessions_per_shard[i]) st.groups[i]->post_deliver(bytes, count);
}

} // namespace

subscription_state::~subscription_state() {
  for (auto& g : groups)
    if (g) fanout_group::release(std::move(g));
}

subscription_actor::behavior_type subscription(self_ptr self, broker_actor broker,
                                               subscription_spec spec, metrics* stats) {
  auto& st = self->state;
  st.stream = std::move(spec.stream);
  st.definition = std::move(spec.definition);
  st.stages = std::move(spec.stages);
  return {
      [self](join_atom, session_actor& s, ws_handle& h) {
        auto& st = self->state;
        if (st.closed) {
          self->send(s, close_atom::value, std::uint16_t{1000},
                     std::string("stream definition changed"));
          return;
        }
        io_shard& shard = h.conn->shard();
        unsigned i = shard.index();
        if (st.groups.size() <= i) {
          st.groups.resize(i + 1);
          st.sessions_per_shard.resize(i + 1);
        }
        if (!st.groups[i]) st.groups[i] = std::make_shared<fanout_group>(shard);
        // Posted before any later batch: the connection receives every batch after this.
        st.groups[i]->post_add(std::move(h.conn));
        ++st.sessions_per_shard[i];
        auto addr = s.address();
        st.sessions.emplace(std::move(addr), subscription_state::member{std::move(s), i});
      },
      [self](closed_atom, const session_actor& s) {
        auto& st = self->state;
        auto it = st.sessions.find(s.address());
        if (it == st.sessions.end()) return;
        --st.sessions_per_shard[it->second.shard];
        st.sessions.erase(it);
      },
      [self, broker, stats](event_batch& batch) {
        auto& st = self->state;
        if (st.closed || !batch.events) return;
        std::string frames;
        std::uint32_t count = 0;
        object scratch;
        bool invalidated = false;
        for (auto& ev : *batch.events) {
          try {
            const object* out = st.stages.run(ev, scratch);
            if (out) {
              std::string json;
              append_json(json, *out);
              ws::append_frame(frames, ws::opcode::text, json);
              ++count;
            }
          } catch (const pipeline_error& e) {
            stats->stage_errors.fetch_add(1, std::memory_order_relaxed);
            log::debug(std::string("stream ") + st.stream + ": event skipped: " + e.what());
          }
          const std::string* op = operation_of(ev);
          if (op && *op == "invalidate") {
            invalidated = true;
            break;
          }
        }
        if (count && !st.sessions.empty()) fan_out(st, std::move(frames), count);
        if (invalidated) {
          close_all(self, 1000, "collection dropped");
          self->send(broker, retire_atom::value, subscription_actor{self});
        }
      },
      [self, broker](metadata_change& m) {
        auto& st = self->state;
        if (st.closed || !m.metadata) return;
        const object* now = find_stream(*m.metadata, st.stream);
        if (now && value(*now) == value(st.definition)) return;
        close_all(self, 1000, "stream definition changed");
        self->send(broker, retire_atom::value, subscription_actor{self});
      },
      [self](close_atom, std::uint16_t code, std::string& reason) {
        close_all(self, code, reason);
      },
  };
}

} // namespace rheo
