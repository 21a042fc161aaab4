// rheo: a realtime data server. Parses the configuration, opens the store, starts the
// actor system and the HTTP/WebSocket server, reloads users, ACL, JWT settings, the log
// level and the TLS certificate on SIGHUP, and shuts everything down cleanly on
// SIGINT/SIGTERM. Under systemd (Type=notify) it reports READY=1, RELOADING=1,
// STOPPING=1 and, with WatchdogSec, WATCHDOG=1 (config/service.hpp).
#include "actors/actors.hpp"
#include "actors/cluster.hpp"
#include "actors/realtime.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "config/service.hpp"
#include "net/metrics.hpp"
#include "net/rest/rest_api.hpp"
#include "net/security/security.hpp"
#include "net/server.hpp"
#include "storage/document/json.hpp"
#include "storage/mongo/mongo_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "tools/commands.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <pthread.h>
#include <set>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#ifndef RHEO_WEB_DIR
#define RHEO_WEB_DIR "web"
#endif
#ifndef RHEO_INSTALLED_WEB_DIR
#define RHEO_INSTALLED_WEB_DIR "../share/rheo/web"
#endif

namespace {

/// Raises the soft open-files limit to the hard limit; returns the resulting limit.
rlim_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

/// The chat's collection, so that a fresh server is a working chat: with stream "all" when
/// missing, and with the index {timestamp:-1} that its history query
/// (?sort={timestamp:-1}&pagesize=15) scans, also when the collection exists without it.
/// In the first mount's database (`rheo` for a `*` mount); a failure only warns.
void create_messages(rheo::store& storage, const rheo::server_config& config) {
  using namespace rheo;
  const std::string db =
      config.mounts.front().db == "*" ? std::string("rheo") : config.mounts.front().db;
  // The chat's stream: new messages, who is online (presence) and who is typing (broadcast).
  // A store made by an older rheo has the same stream without the last two: it gets them,
  // unless someone changed the stream since.
  const std::string stages = R"("stages":[{"_$match":{"_$or":[{"operationType":"insert"}]}}])";
  const object before = parse_json(R"({"streams":[{"uri":"all",)" + stages + "}]}").as_object();
  const object current = parse_json(R"({"streams":[{"uri":"all",)" + stages +
                                    R"(,"presence":true,"broadcast":true}]})")
                             .as_object();
  try {
    auto info = storage.collection(db, "messages");
    if (!info)
      storage.put_collection(db, "messages", current, std::nullopt);
    else if (info->metadata == before)
      storage.put_collection(db, "messages", current, info->etag.hex());
    const object key{{"timestamp", value(-1)}};
    for (auto& index : storage.list_indexes(db, "messages"))
      if (index.key == key) return;
    try {
      storage.create_index(db, "messages", "timestamp_-1", key, {});
    } catch (const api_error& e) {
      if (e.status() != 409) throw; // created meanwhile by another server on the same store
    }
  } catch (const std::exception& e) {
    log::warn(std::string("cannot create the messages collection: ") + e.what());
  }
}

/// SIGHUP: reads the configuration again (the same file, environment and flags) and applies
/// what can change at runtime: users, ACL, JWT settings and the log level. Open sessions
/// keep the rules they were admitted with. A configuration that does not parse or validate
/// changes nothing. Settings that differ from `running` but apply only at startup are named.
void reload(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const rheo::command_line& running, rheo::security& sec, rheo::server& srv) {
  using namespace rheo;
  log::info("received SIGHUP, reloading " + (running.config_file.empty()
                                                 ? std::string("the configuration")
                                                 : "config file " + running.config_file));
  // A rotated access log (moved away by logrotate) is reopened under its name.
  if (log::access_log_enabled() && !running.config.access_log.empty() &&
      running.config.access_log != "-" && !log::reopen_access_log())
    log::error("reload: cannot reopen the access log " + running.config.access_log +
               "; it goes on to the old file");
  command_line next;
  security::reload_outcome out;
  try {
    next = parse_command_line(args, env);
    out = sec.reload(next.config);
  } catch (const std::exception& e) {
    log::error(std::string("reload refused, the running configuration stays in force: ") +
               e.what());
    return;
  }
  log::set_level(next.config.log_level);
  log::info("reloaded: " + std::to_string(out.users) + " users, " + std::to_string(out.acl_rules) +
            " ACL rules, JWT " + (out.jwt ? "on" : "off") + ", log level " + next.config.log_level +
            "; " + std::to_string(out.revoked_tokens) +
            " tokens revoked (user removed or password changed)");
  static const std::set<std::string> reloadable = {"users", "acl", "jwt", "log_level"};
  std::string restart_only;
  for (auto& key : changed_settings(running, next))
    if (!reloadable.count(key)) restart_only += (restart_only.empty() ? "" : ", ") + key;
  if (!restart_only.empty())
    log::warn("reload: these settings differ from the running ones and apply only after a "
              "restart: " +
              restart_only);
  if (!srv.tls()) return;
  try {
    srv.reload_tls();
    log::info("reload: TLS certificate and key read again from " + running.config.tls_cert +
              " and " + running.config.tls_key);
  } catch (const std::exception& e) {
    log::error(std::string("reload: the TLS certificate in use stays in force: ") + e.what());
  }
}

/// Logging as configured; false (after saying why on stderr) when the access log cannot be
/// opened.
bool start_logging(const rheo::server_config& config) {
  using namespace rheo;
  log::set_level(config.log_level);
  log::set_format(config.log_format);
  try {
    log::open_access_log(config.access_log);
  } catch (const std::exception& e) {
    log::startup_error(e.what());
    return false;
  }
  return true;
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and so in every thread started after
/// (one thread takes them with sigwait, see take_signals), and ignores SIGPIPE.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

/// Raises the open-files limit and, when max_connections is not set, derives it from the
/// limit. Returns the limit.
rlim_t apply_fd_limit(rheo::server_config& config) {
  rlim_t fds = raise_fd_limit();
  // Past the open-file limit accept() fails and the client gets no answer: keep a reserve
  // (the store's files, logs, cluster links) so that a refused client still gets its 503.
  if (config.max_connections == 0)
    config.max_connections =
        fds > 128 ? static_cast<std::size_t>(fds - 64) : std::max<std::size_t>(fds / 2, 1);
  return fds;
}

/// The actor system's settings: rheo's message types, the cluster link and the scheduler.
void configure_actors(caf::actor_system_config& caf_config, const rheo::server_config& config) {
  using namespace rheo;
  register_message_types(caf_config);
  configure_cluster(caf_config, config);
  // The actors see one message per batch per subscription (data frames go to the I/O
  // threads directly), so their threads are mostly idle: the sharing policy lets idle
  // threads sleep on one queue instead of polling as work stealing does.
  caf_config.set("scheduler.policy", config.actor_scheduler == "stealing" ? caf::atom("stealing")
                                                                          : caf::atom("sharing"));
  caf_config.set("scheduler.max-threads",
                 static_cast<std::size_t>(threads_or_one_per_core(config.actor_threads)));
}

/// The node's own store: MongoDB when mongo_uri is set, else the embedded store; none for
/// an embedded-store edge, which the core's store serves. Throws when it cannot be opened.
std::unique_ptr<rheo::store> open_own_store(const rheo::server_config& config) {
  using namespace rheo;
  const bool edge = !config.cluster_join.empty();
  if (!config.mongo_uri.empty()) {
    mongo_store_options opts;
    opts.metadata_cache = !edge; // an edge opens no change streams: only the core does
    return open_mongo_store(config.mongo_uri, opts);
  }
  if (edge) return nullptr;
  sqlite_store_options opts;
  opts.data_dir = config.data_dir;
  opts.durability = config.durability == "normal" ? durability::normal : durability::full;
  opts.changelog_retention = config.changelog_retention;
  opts.ttl_interval = std::chrono::milliseconds(config.ttl_monitor_interval_ms);
  return open_sqlite_store(opts);
}

/// Starts serving: the server, then a core's or an edge's cluster link, named `node_name`
/// (else host:port). Returns the port; throws when something cannot start.
std::uint16_t start_serving(rheo::server& srv, rheo::rest_api& api, rheo::cluster_core* core,
                            rheo::cluster_edge* edge_link, const rheo::realtime& streams,
                            std::string node_name) {
  const std::uint16_t port = srv.start();
  if (node_name.empty()) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    node_name = std::string(host) + ":" + std::to_string(port);
  }
  if (core) {
    core->start(node_name);
    api.set_cluster(core);
  }
  if (edge_link) {
    edge_link->start(node_name, std::chrono::seconds(5), streams.presence_link());
    api.set_cluster(edge_link);
  }
  return port;
}

/// Says on stdout and to systemd (READY=1) that rheo accepts connections.
void announce_ready(rheo::server& srv, const rheo::server_config& config, std::uint16_t port,
                    rlim_t fds) {
  const std::string url =
      std::string(srv.tls() ? "https" : "http") + "://" + config.bind + ":" + std::to_string(port);
  rheo::log::announce("rheo listening on " + url + " (store: " +
                          (config.mongo_uri.empty() ? config.data_dir : std::string("MongoDB")) +
                          ", open-file limit " + std::to_string(fds) + ")",
                      {{"url", url}});
  rheo::service::notify("READY=1\nMAINPID=" + std::to_string(getpid()) +
                        "\nSTATUS=listening on port " + std::to_string(port));
}

/// The signal thread (every other thread blocks `signals`): SIGHUP runs `reload`; SIGINT or
/// SIGTERM stops the systemd watchdog and the server (whose wait() then returns) and ends
/// the thread.
void take_signals(const sigset_t& signals, const std::function<void()>& reload,
                  rheo::service::watchdog& dog, rheo::server& srv) {
  using namespace rheo;
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      service::notify("RELOADING=1");
      reload();
      service::notify("READY=1");
      continue;
    }
    service::notify("STOPPING=1");
    dog.stop();
    log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
              ", shutting down");
    srv.stop();
    return;
  }
}

/// The one shutdown, after a signal or a failed start: each part stops before what it uses.
/// The server first (no new connections; in-flight requests finish, sessions close with
/// 1001; stop() is a no-op when the signal thread already called it), as its requests call
/// into everything below. Then the cluster core, whose peers and relays use the broker, the
/// replay pool and the store; then the realtime core (its broker, and so every subscription
/// and watcher, which cancels its feed); then an edge's link, which until then carries the
/// store calls and feeds of everything above. Every actor has ended before the store closes.
void shut_down(rheo::server& srv, rheo::cluster_core* core, rheo::realtime& streams,
               rheo::cluster_edge* edge_link, caf::actor_system& actors, rheo::store& storage) {
  srv.stop();
  srv.wait();
  if (core) core->stop();
  streams.stop();
  if (edge_link) edge_link->stop();
  actors.await_all_actors_done();
  storage.close();
}

int run(const rheo::command_line& cl, const std::vector<std::string>& args,
        const std::map<std::string, std::string>& env) {
  using namespace rheo;
  server_config config = cl.config;
  if (!start_logging(config)) return 2;
  if (config.static_dir.empty())
    config.static_dir = service::default_web_dir(RHEO_INSTALLED_WEB_DIR, RHEO_WEB_DIR);
  const sigset_t signals = block_signals();
  const rlim_t fds = apply_fd_limit(config);

  std::unique_ptr<security> sec;
  try {
    sec = std::make_unique<security>(config);
  } catch (const std::exception& e) {
    log::startup_error(e.what());
    return 2;
  }
  // Counted on by the actors and the server: created before them, so that it outlives them.
  metrics stats;
  caf::actor_system_config caf_config;
  configure_actors(caf_config, config);
  caf::actor_system actors{caf_config};
  std::unique_ptr<store> own_store; // embedded, MongoDB, or none (an embedded-store edge)
  try {
    own_store = open_own_store(config);
  } catch (const std::exception& e) {
    log::startup_error(e.what());
    return 2;
  }

  // Each part is handed references to those built before it (shut_down stops them).
  const bool edge = !config.cluster_join.empty();
  std::unique_ptr<cluster_edge> edge_link;
  if (edge) edge_link = std::make_unique<cluster_edge>(actors, config, stats, own_store.get());
  store& storage = edge ? edge_link->storage() : *own_store;
  if (config.create_messages && !edge) create_messages(storage, config); // else the core's
  rest_api api(config, storage, *sec, stats);
  realtime streams(actors, storage, config, stats);
  api.set_presence(&streams.presence());
  server srv(config, api, &streams, stats);
  std::unique_ptr<cluster_core> core;
  if (!config.cluster_listen.empty())
    core = std::make_unique<cluster_core>(actors, config, storage, streams.broker(),
                                          streams.replays(), streams.presence_link(), stats);

  std::uint16_t port = 0;
  try {
    port = start_serving(srv, api, core.get(), edge_link.get(), streams, config.node_name);
  } catch (const std::exception& e) {
    log::startup_error(e.what());
    shut_down(srv, core.get(), streams, edge_link.get(), actors, storage);
    return 2;
  }
  announce_ready(srv, config, port, fds);
  // WATCHDOG=1 twice per WATCHDOG_USEC, each when every I/O thread has run a posted task
  // within half the time between pings.
  const auto watchdog_period = service::watchdog_interval() / 2;
  service::watchdog dog(watchdog_period, [&] {
    return srv.responsive(
        std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_period / 2));
  });
  std::thread signal_thread(take_signals, std::cref(signals),
                            std::function<void()>([&] { reload(args, env, cl, *sec, srv); }),
                            std::ref(dog), std::ref(srv));
  srv.wait();
  // wait() returns only after stop(); the signal thread has finished or is about to.
  signal_thread.join();
  shut_down(srv, core.get(), streams, edge_link.get(), actors, storage);
  log::info("stopped cleanly");
  return 0;
}

/// Whether `--log-format json` (or `--log-format=json`) is among `args` or RHEO_LOG_FORMAT is
/// json.
bool asks_for_json_log(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env) {
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--log-format=json" ||
        (args[i] == "--log-format" && i + 1 < args.size() && args[i + 1] == "json"))
      return true;
  auto it = env.find("RHEO_LOG_FORMAT");
  return it != env.end() && it->second == "json";
}

} // namespace

/// `rheo hash-password [PASSWORD]`: prints an argon2id hash for the config's users.
int hash_password_command(const std::vector<std::string>& args) {
  std::string password;
  if (args.size() >= 2) {
    password = args[1];
  } else {
    std::getline(std::cin, password);
  }
  if (password.empty()) {
    std::cerr << "rheo hash-password: give the password as an argument or on standard input\n";
    return 2;
  }
  std::cout << rheo::hash_password(password) << "\n";
  return 0;
}

#ifdef RHEO_JEMALLOC
// jemalloc's settings (the environment's MALLOC_CONF overrides them): a background thread
// purges pages left unused for a second, so memory freed after a burst (a bulk write, a
// reconnect storm) goes back to the system instead of staying with the thread that held it.
extern "C" {
// NOLINTNEXTLINE: the name jemalloc reads
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "hash-password") return hash_password_command(args);
  if (auto status = rheo::tools::run_command(args)) return *status; // backup, restore, ...
  rheo::command_line cl;
  const auto env = rheo::rheo_environment();
  try {
    cl = rheo::parse_command_line(args, env);
  } catch (const rheo::config_error& e) {
    // The configuration did not parse: its log format is taken from where it is plainly
    // asked for (the flag, the environment), so that a JSON log shipper reads this line too.
    if (asks_for_json_log(args, env)) rheo::log::set_format("json");
    rheo::log::startup_error(e.what());
    return 2;
  }
  if (cl.help) {
    std::cout << rheo::usage_text();
    return 0;
  }
  if (cl.version) {
    std::cout << "rheo " << rheo::version() << "\n";
    return 0;
  }
  return run(cl, args, env);
}
