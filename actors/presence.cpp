#include "actors/presence.hpp"

#include "config/log.hpp"
#include "net/io_pool.hpp"
#include "net/metrics.hpp"
#include "net/push_connection.hpp"
#include "storage/document/json.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <set>

namespace rheo {

namespace {

using self_ptr = presence_actor::stateful_pointer<presence_state>;
using state = presence_state;

/// A presence frame: {"presence":{"joined":[...],"left":[...]}}.
std::string frame_json(const presence_changes& changes) {
  return "{\"presence\":" + changes.json() + "}";
}

const std::string& id_of(const object& entry) {
  static const std::string none;
  const value* id = find_field(entry, "id");
  return id && id->is_string() ? id->as_string() : none;
}

/// The coalescing timer: changes go out at most once per interval. After a quiet interval
/// they go at once (with whatever else is in the mailbox now); else when it has passed.
void schedule(self_ptr self) {
  auto& st = self->state;
  schedule_flush(self, st.flush_due, st.last_frame, st.interval);
}

/// The listeners will hear that `entry` joined.
void record_join(self_ptr self, const object& entry) {
  auto& st = self->state;
  // Gone and back within one interval (another node's member, after the link came back):
  // the listeners still have it.
  auto& left = st.pending.left;
  if (auto l = std::find(left.begin(), left.end(), id_of(entry)); l != left.end())
    left.erase(l);
  else
    st.pending.joined.push_back(entry);
  schedule(self);
}

/// The listeners will hear that member `id` left.
void record_leave(self_ptr self, const std::string& id) {
  auto& st = self->state;
  // Joined and gone within one interval: nobody needs to hear of it.
  auto& joined = st.pending.joined;
  auto pending =
      std::find_if(joined.begin(), joined.end(), [&](const object& j) { return id_of(j) == id; });
  if (pending != joined.end())
    joined.erase(pending);
  else
    st.pending.left.push_back(id);
  schedule(self);
}

/// This node's change goes to the link with whatever else is in the mailbox now.
void share(self_ptr self) {
  auto& st = self->state;
  if (st.share_due) return;
  st.share_due = true;
  self->send(self, share_atom::value);
}

/// Tells the listeners what changed since the last frame.
void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_due = false;
  if (st.pending.empty()) return;
  st.last_frame = self->clock().now();
  for (auto& id : st.pending.left)
    st.published.erase(id);
  for (auto& j : st.pending.joined)
    st.published.emplace(id_of(j), j);
  st.published_frame.reset();
  st.audience_.post_message("presence", nullptr, frame_json(st.pending));
  st.pending = {};
}

} // namespace

std::string presence_changes::json() const {
  array j(joined.begin(), joined.end());
  array l;
  for (auto& id : left)
    l.emplace_back(id);
  object out{{"joined", value(std::move(j))}, {"left", value(std::move(l))}};
  if (sync) out.emplace_back("sync", value(true));
  std::string text;
  append_json(text, value(std::move(out)));
  return text;
}

std::optional<presence_changes> presence_changes::parse(const std::string& json) {
  presence_changes out;
  try {
    value v = parse_json(json, "presence");
    const value* joined = v.is_object() ? find_field(v.as_object(), "joined") : nullptr;
    const value* left = v.is_object() ? find_field(v.as_object(), "left") : nullptr;
    const value* sync = v.is_object() ? find_field(v.as_object(), "sync") : nullptr;
    if (!joined || !joined->is_array() || !left || !left->is_array())
      throw std::runtime_error("no joined and left lists");
    for (auto& j : joined->as_array())
      if (j.is_object() && !id_of(j.as_object()).empty()) out.joined.push_back(j.as_object());
    for (auto& id : left->as_array())
      if (id.is_string()) out.left.push_back(id.as_string());
    out.sync = sync && sync->is_bool() && sync->as_bool();
  } catch (const std::exception& e) {
    log::warn(std::string("presence: a malformed member change from the cluster: ") + e.what());
    return std::nullopt;
  }
  return out;
}

presence_changes presence_changes::apply_to(std::map<std::string, object>& members) const {
  presence_changes done;
  if (sync) {
    std::set<std::string> listed;
    for (auto& j : joined)
      listed.insert(id_of(j));
    for (auto it = members.begin(); it != members.end();) {
      if (listed.count(it->first)) {
        ++it;
        continue;
      }
      done.left.push_back(it->first);
      it = members.erase(it);
    }
  }
  for (auto& id : left)
    if (members.erase(id)) done.left.push_back(id);
  for (auto& j : joined)
    if (members.emplace(id_of(j), j).second) done.joined.push_back(j);
  return done;
}

presence_state::~presence_state() {
  if (stats) stats->presence_members.fetch_sub(static_cast<std::int64_t>(members.size()));
}

presence_actor::behavior_type presence(self_ptr self, std::string key, presence_link_actor link,
                                       metrics* stats, std::chrono::milliseconds interval) {
  auto& st = self->state;
  st.key = std::move(key);
  st.link = std::move(link);
  st.stats = stats;
  st.interval = interval;
  self->send(st.link, join_atom::value, st.key, caf::actor_cast<presence_actor>(self));
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
          record_join(self, entry);
          st.unshared.joined.push_back(entry);
          share(self);
          st.members[s.address()] = {join.id, std::move(entry)};
          st.stats->presence_members.fetch_add(1, std::memory_order_relaxed);
        }
        if (join.events && h.conn) {
          // First the members the others have been told of; then every frame after.
          if (!st.published_frame) {
            presence_changes known;
            known.joined.reserve(st.published.size());
            for (auto& [id, entry] : st.published)
              known.joined.push_back(entry);
            st.published_frame = frame_json(known);
          }
          const auto t = h.conn->transport();
          std::string bytes;
          append_push_message(bytes, t, "presence", nullptr, *st.published_frame);
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
        record_leave(self, id);
        // Not shared yet: the link need not hear of it either.
        auto& unshared = st.unshared.joined;
        auto pending = std::find_if(unshared.begin(), unshared.end(),
                                    [&](const object& j) { return id_of(j) == id; });
        if (pending != unshared.end()) {
          unshared.erase(pending);
        } else {
          st.unshared.left.push_back(id);
          share(self);
        }
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
        self->send(st.link, broadcast_atom::value, st.key, std::move(frame));
      },
      [self](peers_atom, const std::string& json) {
        auto changes = presence_changes::parse(json);
        if (!changes) return;
        const presence_changes done = changes->apply_to(self->state.peers);
        for (auto& id : done.left)
          record_leave(self, id);
        for (auto& entry : done.joined)
          record_join(self, entry);
      },
      [self](relay_atom, const std::string& frame) {
        self->state.receivers.post_message("broadcast", nullptr, frame);
      },
      [self](flush_atom) { flush(self); },
      [self](share_atom) {
        auto& st = self->state;
        st.share_due = false;
        if (st.unshared.empty()) return;
        self->send(st.link, presence_atom::value, st.key, st.unshared.json());
        st.unshared = {};
      },
  };
}

} // namespace rheo
