// The core's side of a cluster (see actors/cluster.hpp): the GATEKEEPER, one CORE PEER per
// edge, one RELAY per feed an edge follows, and the STORE WORKERS that run edges' store
// calls.
#include "actors/cluster.hpp"
#include "actors/cluster_support.hpp"
#include "actors/cluster_wire.hpp"

#include "actors/handover.hpp"
#include "actors/presence_link.hpp"
#include "actors/replay.hpp"
#include "actors/sink_support.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "storage/document/json.hpp"
#include "storage/remote/remote_store.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>

#include <map>
#include <mutex>

namespace rheo {

/// What the core knows of its edges, for /_cluster and /_metrics. Thread-safety: a mutex;
/// the byte counters are atomics, kept (by shared pointer) by the relays that count on them.
struct cluster_core::impl {
  struct edge {
    bool up = false;
    std::int64_t sessions = 0;
    std::int64_t subscriptions = 0;
    std::uint64_t joins = 0;
    std::shared_ptr<std::atomic<std::uint64_t>> bytes_sent =
        std::make_shared<std::atomic<std::uint64_t>>(0);
  };

  caf::actor_system& system;
  const server_config& config;
  store& storage;
  broker_actor broker;
  replay_service& replays;
  presence_exchange_actor presence;
  metrics& stats;
  std::string name;
  gatekeeper_actor gatekeeper;
  std::vector<caf::actor> workers;
  std::uint16_t port = 0;

  mutable std::mutex mutex;
  std::map<std::string, edge> edges;

  impl(caf::actor_system& sys, const server_config& cfg, store& st, broker_actor b,
       replay_service& r, presence_exchange_actor p, metrics& s)
      : system(sys), config(cfg), storage(st), broker(std::move(b)), replays(r),
        presence(std::move(p)), stats(s) {}

  /// The nodes as /_cluster lists them (the core first) and the upstream feeds.
  object nodes_status(std::int64_t sessions, std::int64_t subscriptions) const {
    array nodes;
    nodes.emplace_back(node_status(name, "core", "up", sessions, subscriptions));
    std::lock_guard lock(mutex);
    for (auto& [n, e] : edges)
      nodes.emplace_back(node_status(n, "edge", e.up ? "up" : "down", e.sessions, e.subscriptions));
    return object{{"nodes", value(std::move(nodes))},
                  {"upstream_feeds", value(static_cast<std::int64_t>(
                                         stats.upstream_feeds.load(std::memory_order_relaxed)))}};
  }
};

namespace {

using impl_ptr = std::shared_ptr<cluster_core::impl>;

// -- store workers ------------------------------------------------------------

using store_worker_actor =
    caf::typed_actor<caf::replies_to<store_atom, store_request>::with<std::string>>;

/// Runs edges' store calls on a thread of its own (spawned detached): they block.
store_worker_actor::behavior_type store_worker(store_worker_actor::pointer, store* storage) {
  return {
      [storage](store_atom, const store_request& call) {
        return serve_store_call(*storage, call.method, call.args);
      },
  };
}

// -- relays -------------------------------------------------------------------

/// The RELAY interface: a feed listener of the core's watcher of db.coll, and the end of the
/// replay that catches an edge up from its token.
using relay_actor =
    feed_listener_actor::extend<caf::replies_to<watch_atom, std::string, std::string, std::string,
                                                feed_receiver_actor>::with<std::string>,
                                caf::reacts_to<replay_atom, std::uint64_t, event_batch>,
                                caf::reacts_to<replay_atom, std::uint64_t, std::string>,
                                caf::reacts_to<replay_atom, std::uint64_t, replay_feed>,
                                caf::reacts_to<replay_end_atom, std::uint64_t, feed_end>,
                                // The edge's receiver has room for the next part.
                                caf::reacts_to<more_atom>>;

/// Live batches a relay may hold while it catches an edge up before it gives up.
constexpr std::size_t relay_max_held_events = 100000;
/// The parts of a relay's catch-up (stored bytes): the next is read once the edge asks.
constexpr std::size_t relay_part_bytes = 16 * 1024;

struct relay_state {
  static inline const char* name = "relay";
  relay_state() = default; // not an aggregate: CAF would construct it from the actor

  feed_receiver_actor receiver;
  std::string db, coll;
  std::string from; // the edge's token; empty: from now
  caf::response_promise answer;
  bool attached = false; // the watcher has told its position
  bool live = false;     // forwarding the watcher's batches
  /// Catching up the edge from its token (attached, not live yet): the live batches held
  /// meanwhile and where the replay is.
  std::optional<handover> catch_up;
  std::shared_ptr<change_feed> replay;
  bool more_wanted = false; // the edge asked for a part before the replay feed was known
  std::shared_ptr<std::atomic<std::uint64_t>> bytes_sent;
  replay_service* replays = nullptr;
  metrics* stats = nullptr;
};

using relay_ptr = relay_actor::stateful_pointer<relay_state>;

void forward(relay_ptr self, event_batch batch) {
  auto& st = self->state;
  if (!batch.events || batch.events->empty()) return;
  st.bytes_sent->fetch_add(batch.encoded_bytes(), std::memory_order_relaxed);
  self->send(st.receiver, std::move(batch));
}

/// `events` as a batch of its own (copies), for the edge.
event_batch batch_of(const std::vector<const object*>& events) {
  auto out = std::make_shared<std::vector<object>>();
  out->reserve(events.size());
  for (const object* ev : events)
    out->push_back(*ev);
  return to_batch(std::shared_ptr<const std::vector<object>>(std::move(out)));
}

/// The edge has room for the next part of the catch-up.
void read_more(relay_ptr self) {
  auto& st = self->state;
  if (st.live || !st.catch_up) return;
  if (st.replay)
    st.replays->more(st.replay);
  else
    st.more_wanted = true;
}

/// Goes live: the replay is cancelled, the held events after its last go out.
void go_live(relay_ptr self) {
  auto& st = self->state;
  if (st.replay) st.replays->cancel(std::move(st.replay));
  event_batch rest = batch_of(st.catch_up->rest());
  st.catch_up.reset();
  st.live = true;
  forward(self, std::move(rest));
}

void end_relay(relay_ptr self, feed_end end) {
  self->send(self->state.receiver, closed_atom::value, std::move(end));
  self->quit();
}

/// The watcher's position at the attach: the edge's feed starts there, or catches up to it.
void attached(relay_ptr self, const std::string& position) {
  auto& st = self->state;
  st.attached = true;
  if (st.from.empty()) {
    st.answer.deliver(position);
    st.live = true;
    return;
  }
  st.answer.deliver(st.from);
  if (position == st.from) {
    st.live = true;
    return;
  }
  st.catch_up.emplace(st.from, position.empty() ? std::nullopt : std::optional(position));
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  st.replays->open(st.db, st.coll, st.from,
                   std::make_shared<replay_sink<relay_actor>>(weak, 1, st.stats, relay_part_bytes),
                   [weak, pool = st.replays](std::shared_ptr<change_feed> feed) {
                     if (!send_if_alive<relay_actor>(weak, replay_atom::value, std::uint64_t{1},
                                                     replay_feed{feed}))
                       pool->cancel(std::move(feed));
                   });
}

relay_actor::behavior_type relay(relay_ptr self, broker_actor broker, replay_service* replays,
                                 metrics* stats,
                                 std::shared_ptr<std::atomic<std::uint64_t>> bytes) {
  auto& st0 = self->state;
  st0.replays = replays;
  st0.stats = stats;
  st0.bytes_sent = std::move(bytes);
  self->attach_functor([self] {
    if (self->state.replay) self->state.replays->cancel(std::move(self->state.replay));
  });
  self->set_down_handler([self](caf::down_msg&) { self->quit(); }); // the edge's receiver
  return {
      [self, broker](watch_atom, std::string& db, std::string& coll, std::string& from,
                     feed_receiver_actor& receiver) -> caf::result<std::string> {
        auto& st = self->state;
        st.db = std::move(db);
        st.coll = std::move(coll);
        st.from = std::move(from);
        st.receiver = std::move(receiver);
        self->monitor(st.receiver);
        st.answer = self->make_response_promise();
        self->request(broker, caf::infinite, watch_atom::value, st.db, st.coll,
                      feed_listener_actor{self})
            .then([](const watcher_actor&) {},
                  [self](caf::error& e) {
                    self->state.answer.deliver(e);
                    self->quit();
                  });
        return st.answer;
      },
      [self](event_batch& batch) {
        auto& st = self->state;
        if (st.live) return forward(self, std::move(batch));
        if (!st.catch_up || !batch.events || batch.events->empty()) return;
        const bool ready = st.catch_up->hold(batch.events);
        if (st.catch_up->held_events() > relay_max_held_events)
          return end_relay(self,
                           {feed_end_cause::history_lost, std::string(history_lost_reason) +
                                                              ": the edge's catch-up fell behind"});
        if (ready) go_live(self);
      },
      [self](position_atom, std::string& token) {
        auto& st = self->state;
        if (!st.attached) return attached(self, token);
        if (st.live) {
          if (!token.empty()) self->send(st.receiver, position_atom::value, std::move(token));
          return;
        }
        if (st.catch_up && st.catch_up->live_position(token)) go_live(self);
      },
      [self](metadata_change& m) { self->send(self->state.receiver, std::move(m)); },
      [self](close_atom, close_reason& why) { end_relay(self, why.as_feed_end()); },
      [self](replay_atom, std::uint64_t, event_batch& batch) {
        auto& st = self->state;
        if (st.live || !st.catch_up || !batch.events) return;
        const handover::replay_step step = st.catch_up->replayed(*batch.events);
        if (step.ready) {
          forward(self, batch_of(step.send));
          return go_live(self);
        }
        if (step.send.empty()) return read_more(self); // nothing for the edge: go on
        // A part: the edge asks for the next once it has room.
        event_batch part = batch_of(step.send);
        st.bytes_sent->fetch_add(part.encoded_bytes(), std::memory_order_relaxed);
        self->send(st.receiver, replay_atom::value, std::move(part));
      },
      [self](more_atom) {
        auto& sender = self->current_sender();
        if (sender && sender->node() == self->state.receiver.node()) read_more(self);
      },
      [self](replay_atom, std::uint64_t, std::string& token) {
        auto& st = self->state;
        if (!st.live && st.catch_up && st.catch_up->replay_position(token)) go_live(self);
      },
      [self](replay_atom, std::uint64_t, replay_feed& f) {
        auto& st = self->state;
        if (st.live) return st.replays->cancel(std::move(f.feed));
        st.replay = std::move(f.feed);
        if (std::exchange(st.more_wanted, false)) st.replays->more(st.replay);
      },
      [self](replay_end_atom, std::uint64_t, feed_end& end) {
        if (!self->state.live) end_relay(self, std::move(end));
      },
  };
}

// -- core peers ---------------------------------------------------------------

struct peer_state {
  static inline const char* name = "core_peer";
  std::string edge;
  caf::node_id node;
  std::size_t next_worker = 0;
};

using peer_ptr = core_peer_actor::stateful_pointer<peer_state>;

/// Whether the current message comes from the node that proved the secret.
bool from_edge(peer_ptr self) {
  auto& sender = self->current_sender();
  return sender && sender->node() == self->state.node;
}

caf::error not_joined() {
  return caf::make_error(caf::sec::request_receiver_down, "not a node of this cluster");
}

core_peer_actor::behavior_type core_peer(peer_ptr self, impl_ptr core, std::string edge,
                                         caf::node_id node, edge_node_actor edge_actor) {
  self->state.edge = edge;
  self->state.node = node;
  self->monitor(edge_actor);
  self->set_down_handler([self, core](caf::down_msg& dm) {
    log::info("cluster: edge " + self->state.edge + " is gone (" + caf::to_string(dm.reason) + ")");
    {
      std::lock_guard lock(core->mutex);
      auto& e = core->edges[self->state.edge];
      e.up = false;
      e.sessions = e.subscriptions = 0;
    }
    self->send(core->presence, closed_atom::value, self->state.edge); // its members are gone
    self->quit();
  });
  return {
      [self, core](store_atom, store_request& call) -> caf::result<std::string> {
        if (!from_edge(self)) return not_joined();
        auto& w = core->workers[self->state.next_worker++ % core->workers.size()];
        return self->delegate(caf::actor_cast<store_worker_actor>(w), store_atom::value,
                              std::move(call));
      },
      [self, core](watch_atom, std::string& db, std::string& coll, std::string& from,
                   feed_receiver_actor& receiver) -> caf::result<std::string> {
        if (!from_edge(self)) return not_joined();
        std::shared_ptr<std::atomic<std::uint64_t>> bytes;
        {
          std::lock_guard lock(core->mutex);
          bytes = core->edges[self->state.edge].bytes_sent;
        }
        auto r = self->spawn<caf::linked>(relay, core->broker, &core->replays, &core->stats,
                                          std::move(bytes));
        return self->delegate(r, watch_atom::value, std::move(db), std::move(coll), std::move(from),
                              std::move(receiver));
      },
      [self, core](report_atom, std::int64_t sessions, std::int64_t subscriptions) {
        if (!from_edge(self)) return;
        std::lock_guard lock(core->mutex);
        auto& e = core->edges[self->state.edge];
        e.sessions = sessions;
        e.subscriptions = subscriptions;
      },
      [self, core](nodes_atom) -> caf::result<std::string> {
        if (!from_edge(self)) return not_joined();
        return to_json(
            value(core->nodes_status(core->stats.sessions_open.load(std::memory_order_relaxed),
                                     core->stats.subscriptions.load(std::memory_order_relaxed))));
      },
      // Presence: to the exchange, naming the edge (and sent by this peer, which the exchange
      // tells from the edge's earlier and later ones).
      [self, core](join_atom, std::string& key, edge_presence_actor& uplink) {
        if (from_edge(self))
          self->send(core->presence, join_atom::value, self->state.edge, std::move(key),
                     std::move(uplink));
      },
      [self, core](closed_atom, std::string& key) {
        if (from_edge(self))
          self->send(core->presence, closed_atom::value, self->state.edge, std::move(key));
      },
      [self, core](presence_atom, std::string& key, std::string& changes) {
        if (from_edge(self))
          self->send(core->presence, presence_atom::value, self->state.edge, std::move(key),
                     std::move(changes));
      },
      [self, core](broadcast_atom, std::string& key, std::string& frame) {
        if (from_edge(self))
          self->send(core->presence, broadcast_atom::value, self->state.edge, std::move(key),
                     std::move(frame));
      },
      [self, core](presence_atom, std::string& key) -> caf::result<std::string> {
        if (!from_edge(self)) return not_joined();
        return self->delegate(core->presence, presence_atom::value, std::move(key));
      },
  };
}

// -- the gatekeeper -----------------------------------------------------------

struct gatekeeper_state {
  static inline const char* name = "gatekeeper";
  struct pending {
    std::string edge, core_nonce;
    caf::timestamp expires;
  };
  std::map<caf::node_id, pending> waiting; // by the node that said hello
};

using gatekeeper_ptr = gatekeeper_actor::stateful_pointer<gatekeeper_state>;

caf::error refuse(const std::string& why) {
  return caf::make_error(caf::sec::runtime_error, why);
}

gatekeeper_actor::behavior_type gatekeeper(gatekeeper_ptr self, impl_ptr core) {
  const std::string fingerprint = cluster_fingerprint();
  return {
      [self, core, fingerprint](hello_atom, std::string& edge,
                                std::string& theirs) -> caf::result<std::string> {
        auto& sender = self->current_sender();
        if (!sender) return refuse("anonymous hello");
        if (theirs != fingerprint) {
          log::warn("cluster: refused node " + edge + " from " + caf::to_string(sender->node()) +
                    ": it runs another rheo build (\"" + theirs + "\", this core: \"" +
                    fingerprint + "\")");
          return refuse("incompatible node: the core runs \"" + fingerprint + "\"");
        }
        if (edge.empty()) return refuse("malformed hello");
        gatekeeper_state::pending p{edge, make_nonce(),
                                    caf::make_timestamp() + std::chrono::seconds(30)};
        std::string nonce = p.core_nonce;
        self->state.waiting[sender->node()] = std::move(p);
        return nonce;
      },
      [self, core](prove_atom, std::string& proof, std::string& edge_nonce,
                   edge_node_actor& edge_actor) -> caf::result<std::string, core_peer_actor> {
        auto& sender = self->current_sender();
        if (!sender) return refuse("anonymous proof");
        auto it = self->state.waiting.find(sender->node());
        if (it == self->state.waiting.end() || it->second.expires < caf::make_timestamp()) {
          log::warn("cluster: refused a node from " + caf::to_string(sender->node()) +
                    ": a proof without a fresh hello");
          return refuse("say hello first");
        }
        auto p = std::move(it->second);
        self->state.waiting.erase(it); // a nonce is good for one proof
        if (edge_nonce.size() != 64 ||
            !same_proof(proof, prove_secret(core->config.cluster_secret, "edge", edge_nonce,
                                            p.core_nonce, p.edge))) {
          log::warn("cluster: refused node " + p.edge + " from " + caf::to_string(sender->node()) +
                    ": wrong cluster secret");
          return refuse("wrong cluster secret");
        }
        bool rejoin = false;
        {
          std::lock_guard lock(core->mutex);
          auto& e = core->edges[p.edge];
          rejoin = e.joins++ > 0;
          e.up = true;
        }
        log::info("cluster: edge " + p.edge + (rejoin ? " rejoined" : " joined") + " from " +
                  caf::to_string(sender->node()));
        auto peer = self->spawn<caf::linked>(core_peer, core, p.edge, sender->node(),
                                             std::move(edge_actor));
        // Now the core proves itself: only to a node that proved the secret first.
        return {prove_secret(core->config.cluster_secret, "core", edge_nonce, p.core_nonce, p.edge),
                std::move(peer)};
      },
  };
}

} // namespace

cluster_core::cluster_core(caf::actor_system& system, const server_config& config, store& storage,
                           broker_actor broker, replay_service& replays, caf::actor presence,
                           metrics& stats)
    : impl_(std::make_shared<impl>(system, config, storage, std::move(broker), replays,
                                   caf::actor_cast<presence_exchange_actor>(presence), stats)) {}

cluster_core::~cluster_core() {
  stop();
}

std::uint16_t cluster_core::start(std::string node_name) {
  auto& im = *impl_;
  im.name = std::move(node_name);
  for (int i = 0; i < 4; ++i)
    im.workers.push_back(
        caf::actor_cast<caf::actor>(im.system.spawn<caf::detached>(store_worker, &im.storage)));
  im.gatekeeper = im.system.spawn(gatekeeper, impl_);
  host_port hp = parse_host_port(im.config.cluster_listen, "cluster_listen");
  auto port = cluster_tls(im.config)
                  ? caf::openssl::publish(im.gatekeeper, hp.port, hp.host.c_str(), true)
                  : im.system.middleman().publish(im.gatekeeper, hp.port, hp.host.c_str(), true);
  if (!port)
    throw std::runtime_error("cannot listen for cluster nodes on " + im.config.cluster_listen +
                             ": " + im.system.render(port.error()));
  im.port = *port;
  log::info("cluster: core " + im.name + " listening for nodes on " + hp.host + ":" +
            std::to_string(im.port) + (cluster_tls(im.config) ? " (TLS)" : ""));
  return im.port;
}

void cluster_core::stop() {
  auto& im = *impl_;
  if (!im.gatekeeper) return;
  im.system.middleman().unpublish(im.gatekeeper, im.port);
  caf::anon_send_exit(im.gatekeeper, caf::exit_reason::user_shutdown);
  for (auto& w : im.workers)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  im.workers.clear();
  im.gatekeeper = nullptr;
}

std::string cluster_core::status_json(std::int64_t sessions, std::int64_t subscriptions) const {
  object out{{"node", value(impl_->name)}, {"role", value("core")}};
  for (auto& field : impl_->nodes_status(sessions, subscriptions))
    out.push_back(std::move(field));
  return to_json(value(std::move(out)));
}

std::string cluster_core::metrics_text() const {
  std::vector<link_metrics> links;
  std::lock_guard lock(impl_->mutex);
  for (auto& [n, e] : impl_->edges)
    links.push_back({n, e.up, e.joins > 0 ? e.joins - 1 : 0, e.bytes_sent->load()});
  return render_link_metrics(links);
}

const std::string& cluster_core::node_name() const {
  return impl_->name;
}

} // namespace rheo
