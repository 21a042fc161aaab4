// rheo: a realtime data server. Parses the configuration, opens the store, starts the
// actor system and the HTTP/WebSocket server, and shuts everything down cleanly on
// SIGINT/SIGTERM.
#include "actors/actors.hpp"
#include "actors/cluster.hpp"
#include "actors/realtime.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "net/metrics.hpp"
#include "net/rest/rest_api.hpp"
#include "net/security/security.hpp"
#include "net/server.hpp"
#include "storage/document/json.hpp"
#include "storage/mongo/mongo_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#ifndef RHEO_WEB_DIR
#define RHEO_WEB_DIR "web"
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
void create_messages(rheo::store& db, const std::string& db_name) {
  using namespace rheo;
  if (!db.collection(db_name, "messages"))
    db.put_collection(db_name, "messages",
                      parse_json(R"({"streams":[{"uri":"all","stages":)"
                                 R"([{"_$match":{"_$or":[{"operationType":"insert"}]}}]}]})")
                          .as_object(),
                      std::nullopt);
  const object key{{"timestamp", value(-1)}};
  for (auto& index : db.list_indexes(db_name, "messages"))
    if (index.key == key) return;
  try {
    db.create_index(db_name, "messages", "timestamp_-1", key, {});
  } catch (const api_error& e) {
    if (e.status() != 409) throw; // created meanwhile by another server on the same store
  }
}

int run(rheo::server_config config) {
  using namespace rheo;
  log::set_level(config.log_level);
  log::set_format(config.log_format);
  try {
    log::open_access_log(config.access_log);
  } catch (const std::exception& e) {
    std::cerr << "rheo: " << e.what() << "\n";
    return 2;
  }
  if (config.static_dir.empty()) config.static_dir = RHEO_WEB_DIR;

  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  rlim_t fds = raise_fd_limit();
  // Past the open-file limit accept() fails and the client gets no answer: keep a reserve
  // (the store's files, logs, cluster links) so that a refused client still gets its 503.
  if (config.max_connections == 0)
    config.max_connections =
        fds > 128 ? static_cast<std::size_t>(fds - 64) : std::max<std::size_t>(fds / 2, 1);

  std::unique_ptr<security> sec;
  try {
    sec = std::make_unique<security>(config);
  } catch (const std::exception& e) {
    std::cerr << "rheo: " << e.what() << "\n";
    return 2;
  }

  // Counted on by the actors and the server: created before them, so that it outlives them.
  metrics stats;
  caf::actor_system_config caf_config;
  register_message_types(caf_config);
  configure_cluster(caf_config, config);
  // The actors see one message per batch per subscription (data frames go to the I/O
  // threads directly), so their threads are mostly idle: the sharing policy lets idle
  // threads sleep on one queue instead of polling as work stealing does.
  caf_config.set("scheduler.policy", config.actor_scheduler == "stealing" ? caf::atom("stealing")
                                                                          : caf::atom("sharing"));
  caf_config.set("scheduler.max-threads",
                 static_cast<std::size_t>(config.actor_threads
                                              ? config.actor_threads
                                              : std::max(1u, std::thread::hardware_concurrency())));
  caf::actor_system actors{caf_config};

  const bool edge = !config.cluster_join.empty();
  std::unique_ptr<store> db; // the node's own store: embedded, MongoDB, or none (an edge)
  try {
    if (!config.mongo_uri.empty()) {
      mongo_store_options opts;
      opts.metadata_cache = !edge; // an edge opens no change streams: only the core does
      db = open_mongo_store(config.mongo_uri, opts);
    } else if (edge) {
      // An embedded-store edge has no store of its own: the core's serves it.
    } else {
      sqlite_store_options opts;
      opts.data_dir = config.data_dir;
      opts.durability = config.durability == "normal" ? durability::normal : durability::full;
      opts.changelog_retention = config.changelog_retention;
      opts.ttl_interval = std::chrono::milliseconds(config.ttl_monitor_interval_ms);
      db = open_sqlite_store(opts);
    }
  } catch (const std::exception& e) {
    std::cerr << "rheo: " << e.what() << "\n";
    return 2;
  }

  std::unique_ptr<cluster_edge> edge_link;
  if (edge) edge_link = std::make_unique<cluster_edge>(actors, config, stats, db.get());
  store& storage = edge ? edge_link->storage() : *db;

  if (config.create_messages && !edge) { // an edge's core creates it
    const auto& db_name =
        config.mounts.front().db == "*" ? std::string("rheo") : config.mounts.front().db;
    try {
      create_messages(storage, db_name);
    } catch (const std::exception& e) {
      log::warn(std::string("cannot create the messages collection: ") + e.what());
    }
  }

  rest_api api(config, storage, *sec, stats);
  realtime streams(actors, storage, config, stats);
  server srv(config, api, &streams, stats);
  std::unique_ptr<cluster_core> core;
  if (!config.cluster_listen.empty())
    core = std::make_unique<cluster_core>(actors, config, storage, streams.broker(),
                                          streams.replays(), stats);
  std::uint16_t port = 0;
  std::string node_name = config.node_name;
  try {
    port = srv.start();
    if (node_name.empty()) {
      char host[256] = "localhost";
      gethostname(host, sizeof host - 1);
      node_name = std::string(host) + ":" + std::to_string(port);
    }
    if (core) {
      core->start(node_name);
      api.set_cluster(core.get());
    }
    if (edge_link) {
      edge_link->start(node_name, std::chrono::seconds(5));
      api.set_cluster(edge_link.get());
    }
  } catch (const std::exception& e) {
    std::cerr << "rheo: " << e.what() << "\n";
    if (port) {
      srv.stop();
      srv.wait();
    }
    if (core) core->stop();
    if (edge_link) edge_link->stop();
    streams.stop();
    actors.await_all_actors_done();
    storage.close();
    return 2;
  }
  std::printf("rheo listening on http://%s:%u (store: %s, open-file limit %llu)\n",
              config.bind.c_str(), static_cast<unsigned>(port),
              config.mongo_uri.empty() ? config.data_dir.c_str() : "MongoDB",
              static_cast<unsigned long long>(fds));
  std::fflush(stdout);

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
              ", shutting down");
    srv.stop();
  });
  srv.wait();
  // wait() returns only after stop(); the signal thread has finished or is about to.
  signal_thread.join();
  if (core) core->stop();
  streams.stop();
  if (edge_link) edge_link->stop();
  actors.await_all_actors_done();
  storage.close();
  log::info("stopped cleanly");
  return 0;
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

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "hash-password") return hash_password_command(args);
  rheo::command_line cl;
  try {
    cl = rheo::parse_command_line(args, rheo::rheo_environment());
  } catch (const rheo::config_error& e) {
    std::cerr << "rheo: " << e.what() << "\n";
    return 2;
  }
  if (cl.help) {
    std::cout << rheo::usage_text();
    return 0;
  }
  if (cl.version) {
    std::cout << "rheo 0.1.0\n";
    return 0;
  }
  return run(std::move(cl.config));
}
