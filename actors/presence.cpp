#include "actors/presence.hpp"

#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/presence_directory.hpp"
#include "net/push_connection.hpp"
#include "storage/document/json.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>

namespace rheo {

namespace {

using self_ptr = presence_actor::stateful_pointer<presence_state>;
using state = presence_state;

std::atomic<std::uint64_t> next_owner{1};

std::string frame_json(const std::vector<object>& joined, const std::vector<std::string>& left) {
  array j(joined.begin(), joined.end());
  array l;
  for (auto& id : left)
    l.emplace_back(id);
  std::string out;
  append_json(out, value(object{{"presence", value(object{{"joined", value(std::move(j))},
                                                          {"left", value(std::move(l))}})}}));
  return out;
}

/// The coalescing timer: one flush per interval while changes wait.
void schedule(self_ptr self) {
  auto& st = self->state;
  if (st.flush_due) return;
  st.flush_due = true;
  self->delayed_send(self, st.interval, flush_atom::value);
}

/// Tells the listeners what changed since the last frame, and publishes the list.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_due = false;
  if (st.joined.empty() && st.left.empty()) return;
  for (auto& id : st.left)
    st.published.erase(std::remove_if(st.published.begin(), st.published.end(),
                                      [&](const auto& p) { return p.first == id; }),
                       st.published.end());
  for (auto& j : st.joined)
    st.published.emplace_back(find_field(j, "id")->as_string(), j);
  const std::string json = frame_json(st.joined, st.left);
  st.audience_.post_message("presence", nullptr, json);
  st.joined.clear();
  st.left.clear();
  array list;
  for (auto& [id, entry] : st.published)
    list.emplace_back(entry);
  auto text = std::make_shared<std::string>();
  append_json(*text, value(std::move(list)));
  st.directory->publish(st.key, st.owner, std::move(text));
}

} // namespace

presence_state::~presence_state() {
  if (directory) directory->withdraw(key, owner);
  if (stats) stats->presence_members.fetch_sub(static_cast<std::int64_t>(members.size()));
}

presence_actor::behavior_type presence(self_ptr self, std::string key,
                                       presence_directory* directory, metrics* stats,
                                       std::chrono::milliseconds interval) {
  auto& st = self->state;
  st.key = std::move(key);
  st.owner = next_owner.fetch_add(1);
  st.directory = directory;
  st.stats = stats;
  st.interval = interval;
  return {
      [self](join_atom, const session_actor& s, presence_join& join, client_handle& h) {
        auto& st = self->state;
        if (join.broadcasts && h.conn) {
          // Receives the others' broadcasts; sends its own as `from` (SSE sessions cannot).
          object from{{"id", value(join.id)},
                      {"user", join.user ? value(*join.user) : value()},
                      {"info", join.info ? value(*join.info) : value()}};
          st.senders[s.address()] = {std::move(from), h.conn.get(), h.conn->transport(),
                                     h.conn->shard().index()};
          st.receivers.join(h.conn);
        }
        if (join.info) {
          object entry{{"id", value(join.id)},
                       {"user", join.user ? value(*join.user) : value()},
                       {"info", value(std::move(*join.info))},
                       {"since", value(date_time::now())}};
          st.joined.push_back(entry);
          st.members[s.address()] = {join.id, std::move(entry)};
          st.stats->presence_members.fetch_add(1, std::memory_order_relaxed);
          schedule(self);
        }
        if (join.events && h.conn) {
          // First the members the others have been told of; then every frame after.
          std::vector<object> known;
          for (auto& [id, entry] : st.published)
            known.push_back(entry);
          const auto t = h.conn->transport();
          std::string bytes;
          append_push_message(bytes, t, "presence", nullptr, frame_json(known, {}));
          send_alone(h.conn, std::move(bytes), 1);
          st.listeners[s.address()] = {t, h.conn->shard().index()};
          st.audience_.join(std::move(h.conn));
        }
      },
      [self](closed_atom, const session_actor& s) {
        auto& st = self->state;
        if (auto l = st.listeners.find(s.address()); l != st.listeners.end()) {
          st.audience_.leave(l->second.transport, l->second.shard);
          st.listeners.erase(l);
        }
        if (auto r = st.senders.find(s.address()); r != st.senders.end()) {
          st.receivers.leave(r->second.transport, r->second.shard);
          st.senders.erase(r);
        }
        auto m = st.members.find(s.address());
        if (m == st.members.end()) return;
        const std::string id = m->second.id;
        st.members.erase(m);
        st.stats->presence_members.fetch_sub(1, std::memory_order_relaxed);
        // Joined and gone within one interval: nobody needs to hear of it.
        auto pending = std::find_if(st.joined.begin(), st.joined.end(), [&](const object& j) {
          return find_field(j, "id")->as_string() == id;
        });
        if (pending != st.joined.end())
          st.joined.erase(pending);
        else
          st.left.push_back(id);
        schedule(self);
      },
      [self](broadcast_atom, const session_actor& s, std::string& json) {
        auto& st = self->state;
        auto it = st.senders.find(s.address());
        if (it == st.senders.end()) return;
        // {"broadcast":<json>,"from":{...}}: the client's JSON as it was checked, unparsed.
        std::string frame = "{\"broadcast\":";
        frame += json;
        frame += ",\"from\":";
        append_json(frame, value(it->second.from));
        frame += '}';
        st.stats->broadcasts.fetch_add(1, std::memory_order_relaxed);
        st.receivers.post_message("broadcast", nullptr, frame, it->second.conn);
      },
      [self](flush_atom) { flush(self); },
  };
}

} // namespace rheo
