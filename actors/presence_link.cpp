#include "actors/presence_link.hpp"

#include "net/presence_directory.hpp"
#include "storage/document/json.hpp"

#include <caf/all.hpp>

#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace rheo {

namespace {

/// Every member but those of node `except`, as one list.
presence_changes all_but(const std::map<std::string, std::map<std::string, object>>& by_node,
                         const std::string& except) {
  presence_changes out;
  out.sync = true;
  for (auto& [node, members] : by_node)
    if (node != except)
      for (auto& [id, entry] : members)
        out.joined.push_back(entry);
  return out;
}

/// A presence actor of this node has gone: the stream it was the local actor of, unless a
/// newer one has taken its place (`State` has `locals`, and `streams` whose entries have
/// `local`).
template <class State>
std::optional<std::string> local_gone(State& st, const caf::actor_addr& gone) {
  auto it = st.locals.find(gone);
  if (it == st.locals.end()) return std::nullopt;
  std::string key = std::move(it->second);
  st.locals.erase(it);
  auto s = st.streams.find(key);
  if (s == st.streams.end() || s->second.local.address() != gone) return std::nullopt;
  return key;
}

// -- the exchange ---------------------------------------------------------------

struct exchange_state {
  static inline const char* name = "presence_exchange";
  exchange_state() = default; // not an aggregate: CAF would construct it from the actor

  struct stream {
    presence_actor local; // this node's presence actor of the stream, if it has one
    std::map<std::string, std::map<std::string, object>> members; // by node, then id
    std::set<std::string> edges;                                  // edges that follow it
  };
  struct edge {
    caf::actor_addr peer;    // its current core peer
    caf::actor_addr retired; // its previous one: whatever it still says is ignored
    edge_presence_actor uplink;
    std::set<std::string> keys; // the streams it follows
  };

  /// How this node's own members are filed: a name no edge has (an edge's is never empty).
  const std::string node;
  presence_directory* directory = nullptr;
  std::chrono::milliseconds interval{250};
  std::map<std::string, stream> streams;
  std::map<std::string, edge> edges;
  std::unordered_map<caf::actor_addr, std::string> locals; // presence actor -> its stream
  std::set<std::string> changed;                           // lists to publish
  bool flush_due = false;
  caf::actor_clock::time_point last_publish{};
};

using exchange_ptr = presence_exchange_actor::stateful_pointer<exchange_state>;

/// Tells everyone of stream `key` but node `from` (this node, or an edge) what `from` did.
void pass_on(exchange_ptr self, const std::string& key, const std::string& from,
             const presence_changes& done) {
  auto& st = self->state;
  if (done.empty()) return;
  auto& s = st.streams[key];
  // Built for the first node that is told (a node without a cluster tells nobody).
  std::string json;
  auto text = [&]() -> const std::string& {
    if (json.empty()) json = done.json();
    return json;
  };
  if (s.local && from != st.node) self->send(s.local, peers_atom::value, text());
  for (auto& e : s.edges)
    if (e != from) self->send(st.edges[e].uplink, peers_atom::value, key, text());
  st.changed.insert(key);
  // As the presence actors' frames: at once after a quiet interval, else when it has passed.
  schedule_flush(self, st.flush_due, st.last_publish, st.interval);
}

/// Node `node`'s changes to stream `key`.
void apply(exchange_ptr self, const std::string& key, const std::string& node,
           const std::string& json) {
  auto changes = presence_changes::parse(json);
  if (!changes) return;
  auto& members = self->state.streams[key].members;
  const presence_changes done = changes->apply_to(members[node]);
  if (members[node].empty()) members.erase(node);
  pass_on(self, key, node, done);
}

/// Node `node`'s members of stream `key` are gone.
void drop(exchange_ptr self, const std::string& key, const std::string& node) {
  auto& s = self->state.streams[key];
  auto it = s.members.find(node);
  if (it == s.members.end()) return;
  presence_changes done;
  for (auto& [id, entry] : it->second)
    done.left.push_back(id);
  s.members.erase(it);
  pass_on(self, key, node, done);
}

/// Forgets stream `key` once nobody follows it.
void prune(exchange_ptr self, const std::string& key) {
  auto& st = self->state;
  auto it = st.streams.find(key);
  if (it != st.streams.end() && !it->second.local && it->second.edges.empty() &&
      it->second.members.empty())
    st.streams.erase(it);
}

/// Edge `name` no longer follows any stream: its members are gone.
void forget_edge(exchange_ptr self, const std::string& name) {
  auto& e = self->state.edges[name];
  const std::set<std::string> keys = std::move(e.keys);
  e.keys.clear();
  for (auto& key : keys) {
    drop(self, key, name);
    self->state.streams[key].edges.erase(name);
    prune(self, key);
  }
}

/// Whether the current message is from edge `name`'s current core peer. A first message
/// from a new one (the edge joined again) drops what the previous one said.
bool from_current_peer(exchange_ptr self, const std::string& name) {
  auto& sender = self->current_sender();
  if (!sender) return false;
  const caf::actor_addr addr = caf::actor_cast<caf::actor_addr>(sender);
  auto& e = self->state.edges[name];
  if (e.peer == addr) return true;
  if (e.retired == addr) return false;
  if (e.peer) {
    forget_edge(self, name);
    e.retired = e.peer;
  }
  e.peer = addr;
  return true;
}

std::string list_json(const exchange_state::stream* s) {
  array list;
  if (s)
    for (auto& [node, members] : s->members)
      for (auto& [id, entry] : members)
        list.emplace_back(entry);
  std::string out;
  append_json(out, value(std::move(list)));
  return out;
}

presence_exchange_actor::behavior_type exchange(exchange_ptr self, presence_directory* directory,
                                                std::chrono::milliseconds interval) {
  auto& st0 = self->state;
  st0.directory = directory;
  st0.interval = interval;
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto key = local_gone(st, dm.source);
    if (!key) return;
    st.streams[*key].local = nullptr;
    drop(self, *key, st.node);
    prune(self, *key);
  });
  return {
      [self](join_atom, const std::string& key, presence_actor& p) {
        auto& st = self->state;
        auto& s = st.streams[key];
        // What this node's previous presence actor of the stream said is void: the new one
        // starts with no members.
        drop(self, key, st.node);
        st.locals[p.address()] = key;
        self->monitor(p);
        s.local = std::move(p);
        presence_changes others = all_but(s.members, st.node);
        if (!others.joined.empty()) self->send(s.local, peers_atom::value, others.json());
      },
      [self](presence_atom, const std::string& key, const std::string& json) {
        apply(self, key, self->state.node, json);
      },
      [self](broadcast_atom, const std::string& key, const std::string& frame) {
        auto& st = self->state;
        auto it = st.streams.find(key);
        if (it == st.streams.end()) return;
        for (auto& e : it->second.edges)
          self->send(st.edges[e].uplink, relay_atom::value, key, frame);
      },
      [self](join_atom, const std::string& name, const std::string& key,
             edge_presence_actor& uplink) {
        if (!from_current_peer(self, name)) return;
        auto& st = self->state;
        auto& e = st.edges[name];
        e.uplink = std::move(uplink);
        e.keys.insert(key);
        auto& s = st.streams[key];
        s.edges.insert(name);
        // The whole list of the others, even when empty: the edge replaces what it knew.
        self->send(e.uplink, peers_atom::value, key, all_but(s.members, name).json());
      },
      [self](closed_atom, const std::string& name, const std::string& key) {
        if (!from_current_peer(self, name)) return;
        auto& st = self->state;
        st.edges[name].keys.erase(key);
        drop(self, key, name);
        st.streams[key].edges.erase(name);
        prune(self, key);
      },
      [self](presence_atom, const std::string& name, const std::string& key,
             const std::string& json) {
        if (!from_current_peer(self, name) || !self->state.edges[name].keys.count(key)) return;
        apply(self, key, name, json);
      },
      [self](broadcast_atom, const std::string& name, const std::string& key,
             const std::string& frame) {
        if (!from_current_peer(self, name)) return;
        auto& st = self->state;
        auto it = st.streams.find(key);
        if (it == st.streams.end()) return;
        if (it->second.local) self->send(it->second.local, relay_atom::value, frame);
        for (auto& e : it->second.edges)
          if (e != name) self->send(st.edges[e].uplink, relay_atom::value, key, frame);
      },
      [self](closed_atom, const std::string& name) {
        auto& st = self->state;
        auto& sender = self->current_sender();
        auto it = st.edges.find(name);
        if (!sender || it == st.edges.end() ||
            it->second.peer != caf::actor_cast<caf::actor_addr>(sender))
          return; // an older core peer of the edge: dropped already
        forget_edge(self, name);
        it->second.retired = it->second.peer;
        it->second.peer = nullptr;
        it->second.uplink = nullptr;
      },
      [self](presence_atom, const std::string& key) {
        auto it = self->state.streams.find(key);
        return list_json(it == self->state.streams.end() ? nullptr : &it->second);
      },
      [self](flush_atom) {
        auto& st = self->state;
        st.flush_due = false;
        st.last_publish = self->clock().now();
        for (auto& key : st.changed) {
          auto it = st.streams.find(key);
          if (it == st.streams.end() || it->second.members.empty())
            st.directory->withdraw(key, 1);
          else
            st.directory->publish(key, 1,
                                  std::make_shared<const std::string>(list_json(&it->second)));
        }
        st.changed.clear();
      },
  };
}

// -- the uplink -----------------------------------------------------------------

struct uplink_state {
  static inline const char* name = "presence_uplink";
  uplink_state() = default; // not an aggregate: CAF would construct it from the actor

  struct stream {
    presence_actor local;
    std::map<std::string, object> members; // this node's, by id
  };

  std::string node;
  std::optional<core_peer_actor> core;
  std::map<std::string, stream> streams;
  std::unordered_map<caf::actor_addr, std::string> locals; // presence actor -> its stream
};

using uplink_ptr = presence_uplink_actor::stateful_pointer<uplink_state>;

/// Whether the current message comes from the core's node while the link is up.
bool from_core(uplink_ptr self) {
  auto& sender = self->current_sender();
  return sender && self->state.core && sender->node() == self->state.core->node();
}

/// Tells the core this edge follows stream `key`, and who of it is here.
void announce(uplink_ptr self, const std::string& key, const uplink_state::stream& s) {
  auto& core = *self->state.core;
  self->send(core, join_atom::value, key, caf::actor_cast<edge_presence_actor>(self));
  presence_changes all;
  all.sync = true;
  for (auto& [id, entry] : s.members)
    all.joined.push_back(entry);
  self->send(core, presence_atom::value, key, all.json());
}

/// `node`: the edge's name, for debugging, and because CAF 0.17 dereferences a null argument
/// tuple when it spawns a function actor without arguments (UBSan: reference binding to null
/// pointer).
presence_uplink_actor::behavior_type uplink(uplink_ptr self, std::string node) {
  self->state.node = std::move(node);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto key = local_gone(st, dm.source);
    if (!key) return;
    st.streams.erase(*key);
    if (st.core) self->send(*st.core, closed_atom::value, *key);
  });
  return {
      [self](join_atom, const std::string& key, presence_actor& p) {
        auto& st = self->state;
        auto& s = st.streams[key];
        s.members.clear(); // a previous presence actor's; the new one starts with none
        st.locals[p.address()] = key;
        self->monitor(p);
        s.local = std::move(p);
        if (st.core) announce(self, key, s);
      },
      [self](presence_atom, const std::string& key, const std::string& json) {
        auto& st = self->state;
        auto it = st.streams.find(key);
        if (it == st.streams.end()) return;
        if (auto changes = presence_changes::parse(json)) changes->apply_to(it->second.members);
        if (st.core) self->send(*st.core, presence_atom::value, key, json);
      },
      [self](broadcast_atom, const std::string& key, const std::string& frame) {
        if (self->state.core) self->send(*self->state.core, broadcast_atom::value, key, frame);
      },
      [self](peers_atom, const std::string& key, const std::string& json) {
        if (!from_core(self)) return;
        auto it = self->state.streams.find(key);
        if (it != self->state.streams.end()) self->send(it->second.local, peers_atom::value, json);
      },
      [self](relay_atom, const std::string& key, const std::string& frame) {
        if (!from_core(self)) return;
        auto it = self->state.streams.find(key);
        if (it != self->state.streams.end()) self->send(it->second.local, relay_atom::value, frame);
      },
      [self](attach_atom, core_peer_actor& core) {
        auto& st = self->state;
        st.core = std::move(core);
        for (auto& [key, s] : st.streams)
          announce(self, key, s);
      },
      [self](detach_atom) {
        auto& st = self->state;
        st.core.reset();
        // The other nodes' members: gone until the core tells them again.
        presence_changes none;
        none.sync = true;
        const std::string json = none.json();
        for (auto& [key, s] : st.streams)
          self->send(s.local, peers_atom::value, json);
      },
  };
}

} // namespace

presence_exchange_actor spawn_presence_exchange(caf::actor_system& system,
                                                presence_directory* directory,
                                                std::chrono::milliseconds interval) {
  return system.spawn(exchange, directory, interval);
}

presence_uplink_actor spawn_presence_uplink(caf::actor_system& system, std::string node) {
  return system.spawn(uplink, std::move(node));
}

} // namespace rheo
