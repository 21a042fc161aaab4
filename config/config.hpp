// rheo's configuration: built-in defaults, then the config file (JSON, comments
// allowed), then RHEO_* environment variables, then command-line flags; each layer
// overrides the one before.
//
// Thread-safety: a plain value; built once at startup and read-only afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace rheo {

/// A URL prefix mapped to a database. `db == "*"` exposes every database as
/// `<prefix><db>/<coll>`.
struct mount {
  std::string prefix; // starts and ends with '/'
  std::string db;
};

struct server_config {
  std::string bind = "127.0.0.1";
  std::string tls_cert, tls_key; // PEM files: HTTPS and wss:// on the port (both or none)
  std::uint16_t port = 8080;     // 0: any free port
  std::string data_dir = "./data";
  std::string mongo_uri;                   // empty: embedded store
  std::string log_level = "info";          // error | warn | info | debug
  std::string log_format = "text";         // text | json (the log and the access log)
  std::string access_log;                  // "": off; "-" or "stderr"; or a file
  unsigned io_threads = 0;                 // 0: one per core
  unsigned worker_threads = 16;            // blocking store writes run here
  unsigned actor_threads = 0;              // CAF scheduler threads (0: one per core)
  std::string actor_scheduler = "sharing"; // sharing | stealing
  std::vector<mount> mounts{{"/", "rheo"}};
  std::string static_dir; // default: share/rheo/web of the install, else the sources' web/
  std::string static_prefix = "/chat/";
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  std::string durability = "full"; // full | normal
  std::uint64_t changelog_retention = 100000;
  std::string backup_dir; // POST /_backup writes backups here; empty: the endpoint is off
  // Embedded store: how often TTL indexes are checked for expired documents.
  std::uint64_t ttl_monitor_interval_ms = 60000;
  std::size_t ws_queue_limit_bytes = 1024 * 1024;
  // Aggregations: the most documents a $sort or $group may hold (400 beyond).
  std::size_t aggregation_max_documents = 100000;
  std::size_t ws_max_client_frame_bytes = 64 * 1024;
  unsigned ws_ping_interval_ms = 30000;
  unsigned ws_pong_timeout_ms = 30000;
  unsigned shutdown_timeout_ms = 10000;
  // Limits (net/client_limits.hpp); a refusal is counted in rheo_limit_refusals_total.
  std::size_t max_connections = 0;                 // 0: the open-file limit minus a reserve of 64
  std::size_t max_connections_per_client = 30000;  // per client address, 0: none
  std::size_t max_sessions_per_client = 30000;     // WebSocket + SSE per client address, 0: none
  unsigned max_requests_per_second_per_client = 0; // REST requests, token bucket; 0: off
  unsigned request_burst_per_client = 0;           // bucket size (0: the per-second rate)
  std::size_t rate_limited_clients = 100000;       // addresses with a bucket; idle ones go first
  std::size_t max_avars_bytes = 16 * 1024;
  std::size_t max_streams_per_collection = 100;
  std::size_t max_stages_per_stream = 50;
  std::size_t live_query_max_window = 1000;           // largest pagesize of a live query
  std::size_t max_live_queries_per_collection = 1000; // distinct ones at once
  unsigned presence_interval_ms = 250; // presence changes wait this long to go out together
  unsigned broadcast_per_second = 20;  // broadcasts per connection (a bucket of as many)
  // Security (see net/security/security.hpp). JSON texts; empty: none (acl: the default rules).
  std::string users_json;
  std::string acl_json;
  std::string jwt_json;
  unsigned token_ttl_seconds = 900;
  unsigned login_max_failures = 10;
  unsigned login_window_seconds = 60;
  unsigned auth_cache_ttl_seconds = 60;    // verified Basic passwords kept this long (0: no cache)
  std::size_t auth_cache_size = 10000;     // at most this many verified passwords kept
  unsigned auth_max_concurrent_hashes = 0; // argon2id verifications at once (0: one per core)
  unsigned auth_hash_wait_ms = 1000;       // wait for a free one this long, then 503
  // Origins (scheme://host[:port], or "*" for all) whose cross-origin calls may carry
  // credentials; any other origin may call without them. Empty: none.
  std::vector<std::string> cors_allowed_origins;
  /// Reverse proxies (addresses, CIDR ranges) whose Forwarded / X-Forwarded-For /
  /// X-Forwarded-Proto headers name the client (config/trusted_proxies.hpp).
  std::vector<std::string> trusted_proxies;
  bool create_messages = true; // create /messages (stream "all", index {timestamp:-1}) if missing
  // Cluster (section 8 of the API contract). At most one of listen (a core) and join (an
  // edge), each HOST:PORT; both need the secret.
  std::string cluster_listen;
  std::string cluster_join;
  std::string node_name; // default: host name and HTTP port
  std::string cluster_secret;
  std::string cluster_cert, cluster_key, cluster_ca; // TLS between nodes: all three or none
  bool cluster_insecure = false;                     // plain links on addresses other than loopback
  unsigned cluster_heartbeat_ms = 1000;              // link heartbeat
  unsigned cluster_timeout_ms = 5000;                // a link silent this long is down
  unsigned cluster_request_timeout_ms = 10000; // an edge's store call waits this long, then 503
  unsigned cluster_reconnect_max_ms = 5000;    // an edge's reconnect backoff grows up to this
};

/// HOST:PORT split; throws config_error naming `what` when malformed.
struct host_port {
  std::string host;
  std::uint16_t port = 0;
};
host_port parse_host_port(const std::string& text, const std::string& what);

/// A configuration problem; what() is one line naming the key or flag.
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// What the command line asked for besides configuration.
struct command_line {
  server_config config;
  bool help = false;
  bool version = false;
  std::string config_file; // from --config or RHEO_CONFIG; empty: none
  // key -> the text it was last set to (file, environment or flag, as precedence goes);
  // keys left at their defaults are absent.
  std::map<std::string, std::string> settings;
};

/// Builds the configuration from defaults, `--config FILE`, `env` (RHEO_* variables)
/// and `args` (argv without the program name). Throws config_error.
command_line parse_command_line(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env);

/// The keys set differently in `after` than in `before` (set in one only, or to another
/// text), in the order of --help.
std::vector<std::string> changed_settings(const command_line& before, const command_line& after);

/// The RHEO_* variables of the current process environment.
std::map<std::string, std::string> rheo_environment();

/// Usage text for --help.
std::string usage_text();

/// rheo's version: the CMake project version (what --version prints).
const char* version();

/// The thread count of a setting whose 0 means one per core (io_threads, actor_threads,
/// auth_max_concurrent_hashes): `configured`, else the number of cores (at least 1).
unsigned threads_or_one_per_core(unsigned configured);

} // namespace rheo
