// The edge's side of a cluster (see actors/cluster.hpp): the link thread that joins the
// core and keeps joining it, the RECEIVERS of the feeds the edge follows, and the store
// the edge serves (storage/remote's remote_store over this link).
#include "actors/cluster.hpp"
#include "actors/cluster_support.hpp"
#include "actors/cluster_wire.hpp"
#include "actors/presence_link.hpp"

#include "config/config.hpp"
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "storage/document/json.hpp"
#include "storage/remote/remote_store.hpp"
#include "storage/store.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

namespace rheo {

namespace {

/// A receiver's own interface: what the core sends, (from the link thread) a new core peer
/// to ask for the feed again, after the last token it delivered, and (from its remote_feed)
/// room for the next part of a paced catch-up.
using receiver_actor = feed_receiver_actor::extend<caf::reacts_to<attach_atom, core_peer_actor>,
                                                   caf::reacts_to<more_atom>>;

/// What a remote feed and its receiver share. Thread-safety: a mutex; sink calls are made
/// under it, so that once cancel() returns the sink is never called again.
struct remote_feed_state {
  std::mutex mutex;
  std::shared_ptr<feed_sink> sink;
  bool cancelled = false;
  std::vector<std::function<void(feed_sink&)>> pending; // before start()
  /// The sink paces its catch-up (feed_sink::catch_up_bytes): the relay's next part waits for
  /// its more(), not only for the receiver. Set by start().
  bool paced = false;
  /// Every change up to this token has been received: a new relay starts after it.
  std::string last;

  template <class F> void deliver(F f) {
    std::lock_guard lock(mutex);
    if (cancelled) return;
    if (sink)
      f(*sink);
    else
      pending.emplace_back(std::move(f));
  }
};

} // namespace

/// The link to the core. Thread-safety: a mutex guards the peer, the state and the
/// receivers; the counters are atomics.
struct cluster_edge::impl {
  caf::actor_system& system;
  const server_config& config;
  metrics& stats;
  host_port core;
  std::string core_label; // the core's address, until its name is known
  std::string name;
  std::string fingerprint = cluster_fingerprint();
  std::chrono::milliseconds timeout;
  edge_node_actor node;
  presence_uplink_actor presence;
  std::weak_ptr<impl> weak_self;

  mutable std::mutex mutex;
  std::condition_variable changed;
  std::optional<core_peer_actor> peer;
  bool stopping = false;
  bool tried = false; // the first join has been tried
  std::set<receiver_actor> receivers;
  mutable std::string last_nodes; // the core's last answer to nodes_atom
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::thread thread;

  impl(caf::actor_system& sys, const server_config& cfg, metrics& s)
      : system(sys), config(cfg), stats(s), core(parse_host_port(cfg.cluster_join, "cluster_join")),
        core_label(cfg.cluster_join), timeout(cfg.cluster_request_timeout_ms) {}

  std::optional<core_peer_actor> current_peer() const {
    std::lock_guard lock(mutex);
    return peer;
  }

  /// Asks `peer` and waits, up to `deadline`; returns the error's text, or nothing.
  template <class Reply, class... Ts>
  std::optional<std::string> ask(const core_peer_actor& to, std::chrono::milliseconds deadline,
                                 Reply& reply, Ts&&... xs) const {
    caf::scoped_actor self{system};
    std::optional<std::string> err;
    self->request(to, deadline, std::forward<Ts>(xs)...)
        .receive([&](Reply& r) { reply = std::move(r); },
                 [&](caf::error& e) { err = system.render(e); });
    return err;
  }

  void run();
  std::optional<core_peer_actor> join(std::string& why);
  void hold(const core_peer_actor& p, std::string& why);
  std::unique_ptr<change_feed> open_feed(const std::string& db, const std::string& coll,
                                         const std::optional<std::string>& token);
};

namespace {

using edge_impl = cluster_edge::impl;

struct receiver_state {
  static inline const char* name = "receiver";
  std::shared_ptr<remote_feed_state> feed;
  std::string db, coll;
  /// The relay of the catch-up part received last, which waits for more_atom: owed once
  /// the part has reached an unpaced sink, or when the paced sink asks (`spare`: it asked
  /// before the part came).
  caf::strong_actor_ptr relay;
  bool owed = false;
  bool spare = false;
};

using receiver_ptr = receiver_actor::stateful_pointer<receiver_state>;

receiver_actor::behavior_type receiver(receiver_ptr self, std::shared_ptr<remote_feed_state> feed,
                                       std::string db, std::string coll,
                                       std::weak_ptr<edge_impl> link) {
  self->state.feed = std::move(feed);
  self->state.db = std::move(db);
  self->state.coll = std::move(coll);
  // Returns whether any event went to the sink.
  auto pass_on = [self](event_batch& batch) {
    auto& st = self->state;
    if (!batch.events || batch.events->empty()) return false;
    // The batch goes to the sink as it came (shared, not rebuilt), unless it starts with
    // events already delivered: a relay that resumed after `last` sends nothing before
    // it, and this is the guard.
    std::shared_ptr<const std::vector<object>> events = std::move(batch.events);
    {
      std::lock_guard lock(st.feed->mutex);
      const std::string& last = st.feed->last;
      auto fresh = events->begin();
      for (; fresh != events->end(); ++fresh) {
        const std::string* t = event_token(*fresh);
        if (!t || last.empty() || token_before(last, *t)) break;
      }
      if (fresh == events->end()) return false;
      if (fresh != events->begin())
        events = std::make_shared<const std::vector<object>>(fresh, events->end());
      if (const std::string* t = event_token(events->back())) st.feed->last = *t;
    }
    st.feed->deliver(
        [events = std::move(events)](feed_sink& s) mutable { s.shaped_events(std::move(events)); });
    return true;
  };
  // Asks the relay of the last catch-up part for the next.
  auto ask_relay = [self] {
    auto& st = self->state;
    st.owed = false;
    // Not anonymous: the relay takes it only from its receiver's node.
    if (st.relay) self->send(caf::actor_cast<relay_credit_actor>(st.relay), more_atom::value);
  };
  return {
      [pass_on](event_batch& batch) { static_cast<void>(pass_on(batch)); },
      [self, pass_on, ask_relay](replay_atom, event_batch& batch) {
        auto& st = self->state;
        st.relay = self->current_sender();
        bool paced = pass_on(batch); // nothing new for the sink: it would not ask
        if (paced) {
          std::lock_guard lock(st.feed->mutex);
          paced = st.feed->paced || !st.feed->sink; // not started: start() tells
        }
        if (!paced || std::exchange(st.spare, false))
          ask_relay();
        else
          st.owed = true;
      },
      [self, ask_relay](more_atom) {
        auto& st = self->state;
        if (st.owed)
          ask_relay();
        else
          st.spare = true;
      },
      [self](position_atom, std::string& token) {
        auto& st = self->state;
        {
          std::lock_guard lock(st.feed->mutex);
          if (token.empty() || (!st.feed->last.empty() && !token_before(st.feed->last, token)))
            return;
          st.feed->last = token;
        }
        st.feed->deliver([token = std::move(token)](feed_sink& s) { s.position(token); });
      },
      [self](metadata_change& m) {
        if (!m.metadata) return;
        self->state.feed->deliver([m = std::move(m)](feed_sink& s) { s.metadata(*m.metadata); });
      },
      [self](closed_atom, feed_end& end) {
        self->state.feed->deliver([end](feed_sink& s) { s.lost(end); });
        self->quit();
      },
      [self, link](attach_atom, const core_peer_actor& peer) {
        auto& st = self->state;
        std::string from;
        {
          std::lock_guard lock(st.feed->mutex);
          from = st.feed->last;
        }
        auto l = link.lock();
        if (!l) return;
        self->request(peer, l->timeout, watch_atom::value, st.db, st.coll, from,
                      feed_receiver_actor{self})
            .then(
                [self, from](const std::string&) {
                  log::debug("cluster: feed of " + self->state.coll + " resumed after " +
                             (from.empty() ? std::string("now") : from));
                },
                [self](caf::error& e) {
                  // The link is gone again (the next join asks again), or the core cannot
                  // watch the collection (the feed ends).
                  if (e.category() == caf::atom("system") &&
                      e.code() == static_cast<std::uint8_t>(caf::sec::runtime_error)) {
                    feed_end end{feed_end_cause::failed, self->system().render(e)};
                    self->state.feed->deliver([end](feed_sink& s) { s.lost(end); });
                    self->quit();
                  }
                });
      },
  };
}

/// A feed from the core (what an edge's watch() returns).
class remote_feed final : public change_feed {
public:
  remote_feed(std::shared_ptr<remote_feed_state> state, receiver_actor r, std::string position,
              std::weak_ptr<edge_impl> link)
      : state_(std::move(state)), receiver_(std::move(r)), position_(std::move(position)),
        link_(std::move(link)) {}
  ~remote_feed() override { cancel(); }

  void start(std::shared_ptr<feed_sink> sink) override {
    {
      std::lock_guard lock(state_->mutex);
      if (state_->cancelled) return;
      state_->sink = std::move(sink);
      state_->paced = state_->sink->catch_up_bytes() != 0;
      for (auto& f : state_->pending)
        f(*state_->sink);
      state_->pending.clear();
      if (state_->paced) return; // the sink asks with more()
    }
    more(); // a part that came before the start has reached the sink
  }

  void more() override { caf::anon_send(receiver_, more_atom::value); }

  std::string position() const override { return position_; }

  void cancel() override {
    {
      std::lock_guard lock(state_->mutex);
      if (state_->cancelled) return;
      state_->cancelled = true;
      state_->sink.reset();
      state_->pending.clear();
    }
    if (auto l = link_.lock()) {
      std::lock_guard lock(l->mutex);
      l->receivers.erase(receiver_);
    }
    caf::anon_send_exit(receiver_, caf::exit_reason::user_shutdown);
  }

private:
  std::shared_ptr<remote_feed_state> state_;
  receiver_actor receiver_;
  std::string position_;
  std::weak_ptr<edge_impl> link_;
};

/// The edge as the core sees it (the core monitors it). Takes the edge's name, for
/// debugging, and because CAF 0.17 dereferences a null argument tuple when it spawns a
/// function actor without arguments (UBSan: reference binding to null pointer).
edge_node_actor::behavior_type edge_node(edge_node_actor::pointer, std::string name) {
  return {[name](closed_atom) { log::debug("cluster: edge " + name + " told to close"); }};
}

} // namespace

std::unique_ptr<change_feed> edge_impl::open_feed(const std::string& db, const std::string& coll,
                                                  const std::optional<std::string>& token) {
  auto p = current_peer();
  if (!p) throw api_error(503, "the cluster core is unreachable; try again");
  auto state = std::make_shared<remote_feed_state>();
  state->last = token.value_or("");
  std::weak_ptr<edge_impl> link = weak_self;
  auto r = system.spawn(receiver, state, db, coll, link);
  {
    std::lock_guard lock(mutex);
    receivers.insert(r);
  }
  std::string position;
  if (auto err = ask(*p, timeout, position, watch_atom::value, db, coll, token.value_or(""),
                     feed_receiver_actor{r})) {
    {
      std::lock_guard lock(mutex);
      receivers.erase(r);
    }
    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    throw api_error(503, "cannot watch " + coll + " on the cluster core: " + *err);
  }
  {
    std::lock_guard lock(state->mutex);
    if (state->last.empty()) state->last = position;
  }
  return std::make_unique<remote_feed>(state, r, token ? *token : position, link);
}

std::optional<core_peer_actor> edge_impl::join(std::string& why) {
  caf::scoped_actor self{system};
  caf::strong_actor_ptr found;
  caf::detail::type_list<gatekeeper_actor> tk;
  const auto expected = system.message_types(tk);
  self->request(cluster_middleman(system, config),
                std::chrono::milliseconds(config.cluster_timeout_ms), caf::connect_atom::value,
                core.host, core.port)
      .receive(
          [&](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>& ifs) {
            if (!ptr)
              why = "nothing is published there";
            else if (ifs != expected)
              why = "it is not a rheo core of this version";
            else
              found = std::move(ptr);
          },
          [&](caf::error& e) { why = system.render(e); });
  if (!found) return std::nullopt;
  auto gk = caf::actor_cast<gatekeeper_actor>(found);
  std::string core_nonce;
  self->request(gk, timeout, hello_atom::value, name, fingerprint)
      .receive([&](std::string& n) { core_nonce = std::move(n); },
               [&](caf::error& e) { why = "the core refused this node: " + system.render(e); });
  if (core_nonce.empty()) return std::nullopt;
  const std::string edge_nonce = make_nonce();
  std::optional<core_peer_actor> joined;
  self->request(gk, timeout, prove_atom::value,
                prove_secret(config.cluster_secret, "edge", edge_nonce, core_nonce, name),
                edge_nonce, node)
      .receive(
          [&](std::string& core_proof, core_peer_actor& p) {
            if (same_proof(core_proof, prove_secret(config.cluster_secret, "core", edge_nonce,
                                                    core_nonce, name)))
              joined = std::move(p);
            else
              why = "the core could not prove the cluster secret; not joining it";
          },
          [&](caf::error& e) { why = "the core refused this node: " + system.render(e); });
  return joined;
}

void edge_impl::hold(const core_peer_actor& p, std::string& why) {
  caf::scoped_actor self{system};
  self->monitor(p);
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
    }
    // Sent by `self`, not anonymously: the core peer drops messages without a sender on this
    // edge's node.
    self->send(p, report_atom::value, stats.sessions_open.load(std::memory_order_relaxed),
               stats.subscriptions.load(std::memory_order_relaxed));
    bool down = false;
    self->receive(
        [&](caf::down_msg& dm) {
          down = true;
          why = system.render(dm.reason);
        },
        caf::after(std::chrono::seconds(1)) >> [] {});
    if (down) return;
  }
}

void edge_impl::run() {
  auto backoff = std::chrono::milliseconds(100);
  const auto max_backoff = std::chrono::milliseconds(config.cluster_reconnect_max_ms);
  bool joined_before = false;
  std::string last_why;
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
    }
    std::string why;
    if (auto p = join(why)) {
      std::vector<receiver_actor> rs;
      {
        std::lock_guard lock(mutex);
        peer = p;
        rs.assign(receivers.begin(), receivers.end());
      }
      changed.notify_all();
      if (joined_before) reconnects.fetch_add(1, std::memory_order_relaxed);
      log::info(std::string("cluster: ") + (joined_before ? "rejoined" : "joined") +
                " the core at " + config.cluster_join + " as " + name +
                (rs.empty() ? "" : ", resuming " + std::to_string(rs.size()) + " feeds"));
      joined_before = true;
      backoff = std::chrono::milliseconds(100);
      last_why.clear();
      for (auto& r : rs)
        caf::anon_send(r, attach_atom::value, *p);
      if (presence) caf::anon_send(presence, attach_atom::value, *p);
      std::string lost;
      hold(*p, lost);
      if (presence) caf::anon_send(presence, detach_atom::value);
      {
        std::lock_guard lock(mutex);
        peer.reset();
        if (stopping) return;
      }
      log::warn("cluster: lost the core at " + config.cluster_join + " (" + lost +
                "); clients stay connected, reconnecting");
      continue;
    }
    {
      std::lock_guard lock(mutex);
      tried = true;
    }
    changed.notify_all();
    if (why != last_why)
      log::warn("cluster: cannot join the core at " + config.cluster_join + ": " + why);
    last_why = why;
    std::unique_lock lock(mutex);
    changed.wait_for(lock, backoff, [&] { return stopping; });
    backoff = std::min(backoff * 2, max_backoff);
  }
}

cluster_edge::cluster_edge(caf::actor_system& system, const server_config& config, metrics& stats,
                           store* local)
    : impl_(std::make_shared<impl>(system, config, stats)), forwards_(local == nullptr) {
  std::weak_ptr<impl> weak = impl_;
  impl_->weak_self = weak;
  store_transport transport = [weak](store_method method, const std::string& args) {
    auto l = weak.lock();
    if (!l) throw api_error(503, "the cluster link is stopped");
    auto p = l->current_peer();
    if (!p) throw api_error(503, "the cluster core is unreachable; try again");
    std::string reply;
    if (auto err = l->ask(*p, l->timeout, reply, store_atom::value, store_request{method, args}))
      throw api_error(503, "the cluster core did not answer: " + *err);
    l->bytes_sent.fetch_add(sizeof(method) + args.size(), std::memory_order_relaxed);
    return reply;
  };
  feed_opener opener = [weak](const std::string& db, const std::string& coll,
                              const std::optional<std::string>& token) {
    auto l = weak.lock();
    if (!l) throw api_error(503, "the cluster link is stopped");
    return l->open_feed(db, coll, token);
  };
  std::shared_ptr<store> own = local ? std::shared_ptr<store>(local, [](store*) {}) : nullptr;
  storage_ = std::make_unique<remote_store>(std::move(transport), std::move(opener), own);
}

cluster_edge::~cluster_edge() {
  stop();
}

store& cluster_edge::storage() {
  return *storage_;
}

void cluster_edge::start(std::string node_name, std::chrono::milliseconds first_link,
                         caf::actor presence) {
  auto& im = *impl_;
  im.name = std::move(node_name);
  im.presence = caf::actor_cast<presence_uplink_actor>(presence);
  im.node = im.system.spawn(edge_node, im.name);
  im.thread = std::thread([&im] { im.run(); });
  std::unique_lock lock(im.mutex);
  // Until the first join has worked or failed (the thread then keeps trying, with backoff).
  im.changed.wait_for(lock, first_link, [&] { return im.peer.has_value() || im.tried; });
  if (!im.peer)
    log::warn("cluster: not joined to the core at " + im.config.cluster_join +
              " yet; serving, and answering what needs the core with 503 until it is");
}

void cluster_edge::stop() {
  auto& im = *impl_;
  {
    std::lock_guard lock(im.mutex);
    im.stopping = true;
  }
  im.changed.notify_all();
  if (im.thread.joinable()) im.thread.join();
  if (im.node) caf::anon_send_exit(im.node, caf::exit_reason::user_shutdown);
}

std::string cluster_edge::status_json(std::int64_t sessions, std::int64_t subscriptions) const {
  auto& im = *impl_;
  std::string nodes;
  const auto p = im.current_peer();
  if (p && !im.ask(*p, std::chrono::milliseconds(1000), nodes, nodes_atom::value)) {
    std::lock_guard lock(im.mutex);
    im.last_nodes = nodes;
  } else {
    std::lock_guard lock(im.mutex);
    nodes = im.last_nodes;
  }
  object known;
  if (!nodes.empty()) known = parse_json(nodes).as_object();
  array list;
  bool listed_core = false;
  if (const value* v = find_field(known, "nodes"); v && v->is_array())
    for (auto& n : v->as_array()) {
      if (!n.is_object()) continue;
      object node = n.as_object();
      const value* nm = find_field(node, "name");
      if (nm && nm->is_string() && nm->as_string() == im.name) continue; // added below, live
      const value* role = find_field(node, "role");
      if (role && role->is_string() && role->as_string() == "core") {
        listed_core = true;
        if (!p) set_field(node, "state", value("down"));
      } else if (!p) {
        set_field(node, "state", value("unknown")); // what the core knew; it cannot tell now
      }
      list.emplace_back(std::move(node));
    }
  if (!listed_core)
    list.insert(list.begin(), value(node_status(im.core_label, "core", p ? "up" : "down", 0, 0)));
  list.emplace_back(node_status(im.name, "edge", "up", sessions, subscriptions));
  const value* feeds = find_field(known, "upstream_feeds");
  object out{{"node", value(im.name)},
             {"role", value("edge")},
             {"nodes", value(std::move(list))},
             {"upstream_feeds", feeds ? *feeds : value()}};
  return to_json(value(std::move(out)));
}

std::string cluster_edge::metrics_text() const {
  auto& im = *impl_;
  return render_link_metrics({{im.config.cluster_join, im.current_peer().has_value(),
                               im.reconnects.load(), im.bytes_sent.load()}});
}

const std::string& cluster_edge::node_name() const {
  return impl_->name;
}

std::shared_ptr<const std::string> cluster_edge::presence_list(const std::string& key) const {
  auto& im = *impl_;
  auto p = im.current_peer();
  if (!p) throw api_error(503, "the cluster core is unreachable; try again");
  auto list = std::make_shared<std::string>();
  if (auto err = im.ask(*p, im.timeout, *list, presence_atom::value, key))
    throw api_error(503, "the cluster core did not answer: " + *err);
  return list;
}

} // namespace rheo
