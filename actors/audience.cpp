#include "actors/audience.hpp"

#include "net/fanout.hpp"
#include "net/io_pool.hpp"
#include "net/push_connection.hpp"
#include "net/ws_frame.hpp"

namespace rheo {

audience::~audience() {
  for (auto& by_shard : groups_)
    for (auto& g : by_shard)
      if (g.group) fanout_group::release(std::move(g.group));
}

void audience::join(std::shared_ptr<push_connection> conn) {
  const auto t = static_cast<std::size_t>(conn->transport());
  const unsigned shard = conn->shard().index();
  auto& groups = groups_[t];
  if (groups.size() <= shard) groups.resize(shard + 1);
  auto& g = groups[shard];
  if (!g.group) g.group = std::make_shared<fanout_group>(conn->shard());
  g.group->post_add(std::move(conn));
  ++g.sessions;
  ++sessions_[t];
}

void audience::leave(push_transport transport, unsigned shard) {
  const auto t = static_cast<std::size_t>(transport);
  if (shard >= groups_[t].size() || groups_[t][shard].sessions == 0) return;
  --groups_[t][shard].sessions;
  --sessions_[t];
}

bool audience::reaches(push_transport transport) const {
  return sessions_[static_cast<std::size_t>(transport)] > 0;
}

void audience::post(push_transport transport, const std::shared_ptr<const std::string>& bytes,
                    std::uint32_t frames, const push_connection* except) {
  for (auto& g : groups_[static_cast<std::size_t>(transport)])
    if (g.sessions) g.group->post_deliver(bytes, frames, except);
}

void audience::post_message(std::string_view event, const std::string* id, std::string_view json,
                            const push_connection* except) {
  for (auto t : {push_transport::websocket, push_transport::sse}) {
    if (!reaches(t)) continue;
    auto bytes = std::make_shared<std::string>();
    append_push_message(*bytes, t, event, id, json);
    post(t, std::move(bytes), 1, except);
  }
}

void append_push_message(std::string& out, push_transport transport, std::string_view event,
                         const std::string* id, std::string_view json) {
  if (transport == push_transport::websocket) {
    ws::append_frame(out, ws::opcode::text, json);
    return;
  }
  if (id) {
    out += "id: ";
    out += *id;
    out += '\n';
  }
  out += "event: ";
  out += event;
  out += "\ndata: ";
  out += json;
  out += "\n\n";
}

void send_alone(const std::shared_ptr<push_connection>& conn, std::string bytes,
                std::uint32_t frames) {
  if (frames)
    post_to_connection(conn, std::make_shared<const std::string>(std::move(bytes)), frames);
}

} // namespace rheo
