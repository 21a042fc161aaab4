#include "config/config.hpp"
#include "config/trusted_proxies.hpp"

#include <boost/asio/ip/address.hpp>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <utility>

extern char** environ;

namespace rheo {

host_port parse_host_port(const std::string& text, const std::string& what) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw config_error(what + ": '" + text + "' must be HOST:PORT");
  host_port hp;
  hp.host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  unsigned long n = 0;
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      (n = std::stoul(port)) > 65535)
    throw config_error(what + ": '" + port + "' is not a port number");
  hp.port = static_cast<std::uint16_t>(n);
  return hp;
}

namespace {

/// Whether `host` is a loopback address ("localhost" included; other names are not known to be).
bool is_loopback(std::string host) {
  if (host == "localhost") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

using setter = std::function<void(server_config&, const std::string&)>;

struct option {
  const char* key; // config-file key; env is RHEO_<KEY>, flag is --<key with dashes>
  const char* help;
  setter set;
};

template <class T> T parse_unsigned(const std::string& text, T min, T max) {
  unsigned long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty())
    throw config_error("expected a non-negative integer, got '" + text + "'");
  if (v < min || v > max)
    throw config_error("'" + text + "' is out of range " + std::to_string(min) + ".." +
                       std::to_string(max));
  return static_cast<T>(v);
}

std::string one_of(const std::string& text, std::initializer_list<const char*> allowed) {
  std::string list;
  for (auto* a : allowed) {
    if (text == a) return text;
    list += list.empty() ? "" : ", ";
    list += a;
  }
  throw config_error("'" + text + "' is not one of " + list);
}

std::vector<mount> parse_mounts(const std::string& text) {
  // "/=rheo,/all/=*"
  std::vector<mount> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos)
      throw config_error("mount '" + item + "' must be PREFIX=DB (e.g. /=rheo)");
    out.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  return out;
}

/// The items of "a, b,c": trimmed, empty ones left out.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto first = item.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    out.push_back(item.substr(first, item.find_last_not_of(" \t") + 1 - first));
  }
  return out;
}

std::vector<std::string> parse_origins(const std::string& text) {
  // "https://app.example,http://localhost:3000" or "*"
  std::vector<std::string> out = split_list(text);
  for (auto& item : out) {
    auto sep = item.find("://");
    if (item != "*" && (sep == std::string::npos || sep == 0 || sep + 3 == item.size() ||
                        item.find('/', sep + 3) != std::string::npos))
      throw config_error("origin '" + item +
                         "' must be scheme://host[:port] without a path (e.g. "
                         "https://app.example), or *");
  }
  return out;
}

void check_mounts(std::vector<mount>& mounts) {
  if (mounts.empty()) throw config_error("at least one mount is required");
  for (auto& m : mounts) {
    if (m.prefix.empty() || m.prefix.front() != '/')
      throw config_error("mount prefix '" + m.prefix + "' must start with '/'");
    if (m.prefix.back() != '/') m.prefix += '/';
    if (m.db.empty() || (m.db != "*" && m.db.find_first_of("/\\. \"$") != std::string::npos))
      throw config_error("mount database '" + m.db + "' is not a valid database name");
  }
}

const std::vector<option>& options() {
  static const std::vector<option> table = {
      {"port", "TCP port (0: any free port; the bound port is printed)",
       [](server_config& c, const std::string& v) {
         c.port = parse_unsigned<std::uint16_t>(v, 0, 65535);
       }},
      {"bind", "address to listen on",
       [](server_config& c, const std::string& v) {
         if (v.empty()) throw config_error("must not be empty");
         c.bind = v;
       }},
      {"tls_cert",
       "PEM certificate chain: the port serves HTTPS and wss:// only (with tls_key; re-read on "
       "SIGHUP)",
       [](server_config& c, const std::string& v) { c.tls_cert = v; }},
      {"tls_key", "PEM private key of tls_cert",
       [](server_config& c, const std::string& v) { c.tls_key = v; }},
      {"data_dir", "embedded store directory",
       [](server_config& c, const std::string& v) {
         if (v.empty()) throw config_error("must not be empty");
         c.data_dir = v;
       }},
      {"mongo_uri", "MongoDB connection string (selects the MongoDB backend)",
       [](server_config& c, const std::string& v) { c.mongo_uri = v; }},
      {"log_level", "error | warn | info | debug",
       [](server_config& c, const std::string& v) {
         c.log_level = one_of(v, {"error", "warn", "info", "debug"});
       }},
      {"log_format", "text | json (one JSON object per line), for the log and the access log",
       [](server_config& c, const std::string& v) {
         c.log_format = one_of(v, {"text", "json"});
       }},
      {"access_log",
       "one line per HTTP request and per WebSocket/SSE session: - (stderr), a file, or off "
       "(the default)",
       [](server_config& c, const std::string& v) {
         c.access_log = v == "stderr" ? "-" : (v == "off" ? "" : v);
       }},
      {"io_threads", "HTTP/WebSocket I/O threads (0: one per core)",
       [](server_config& c, const std::string& v) {
         c.io_threads = parse_unsigned<unsigned>(v, 0, 256);
       }},
      {"worker_threads", "threads that run blocking store writes",
       [](server_config& c, const std::string& v) {
         c.worker_threads = parse_unsigned<unsigned>(v, 1, 1024);
       }},
      {"actor_threads", "actor scheduler threads (0: one per core)",
       [](server_config& c, const std::string& v) {
         c.actor_threads = parse_unsigned<unsigned>(v, 0, 256);
       }},
      {"actor_scheduler",
       "sharing (one queue, idle threads sleep) | stealing (work stealing, polls when idle)",
       [](server_config& c, const std::string& v) {
         c.actor_scheduler = one_of(v, {"sharing", "stealing"});
       }},
      {"mounts", "URL prefix to database map, PREFIX=DB[,PREFIX=DB] (DB * = all)",
       [](server_config& c, const std::string& v) { c.mounts = parse_mounts(v); }},
      {"static_dir", "folder served under static_prefix (default: the chat app, see files)",
       [](server_config& c, const std::string& v) { c.static_dir = v; }},
      {"static_prefix", "URL prefix of the static files",
       [](server_config& c, const std::string& v) {
         if (v.size() < 2 || v.front() != '/' || v.back() != '/')
           throw config_error("must start and end with '/', e.g. /chat/");
         c.static_prefix = v;
       }},
      {"max_body_bytes", "largest accepted request body",
       [](server_config& c, const std::string& v) {
         c.max_body_bytes = parse_unsigned<std::size_t>(v, 1, std::size_t(1) << 32);
       }},
      {"durability", "full (survives power loss) | normal (survives process crashes)",
       [](server_config& c, const std::string& v) {
         c.durability = one_of(v, {"full", "normal"});
       }},
      {"ttl_monitor_interval_ms",
       "how often the embedded store deletes documents expired by TTL indexes",
       [](server_config& c, const std::string& v) {
         c.ttl_monitor_interval_ms = parse_unsigned<std::uint64_t>(v, 10, 86400000);
       }},
      {"changelog_retention", "change-log entries kept for resuming streams",
       [](server_config& c, const std::string& v) {
         c.changelog_retention = parse_unsigned<std::uint64_t>(v, 1, std::uint64_t(1) << 40);
       }},
      {"backup_dir",
       "folder where POST /_backup writes backups of the embedded store (default: none, "
       "the endpoint is off)",
       [](server_config& c, const std::string& v) { c.backup_dir = v; }},
      {"aggregation_max_documents",
       "the most documents an aggregation's $sort or $group may hold (400 beyond)",
       [](server_config& c, const std::string& v) {
         c.aggregation_max_documents = parse_unsigned<std::size_t>(v, 1, std::size_t(1) << 32);
       }},
      {"ws_queue_limit_bytes", "outbound bytes queued per WebSocket before closing it with 1013",
       [](server_config& c, const std::string& v) {
         c.ws_queue_limit_bytes = parse_unsigned<std::size_t>(v, 1024, std::size_t(1) << 32);
       }},
      {"ws_max_client_frame_bytes", "largest frame accepted from a client",
       [](server_config& c, const std::string& v) {
         c.ws_max_client_frame_bytes = parse_unsigned<std::size_t>(v, 128, std::size_t(1) << 26);
       }},
      {"ws_ping_interval_ms", "interval of server pings",
       [](server_config& c, const std::string& v) {
         c.ws_ping_interval_ms = parse_unsigned<unsigned>(v, 10, 3600000);
       }},
      {"ws_pong_timeout_ms", "close a WebSocket whose pong is this late",
       [](server_config& c, const std::string& v) {
         c.ws_pong_timeout_ms = parse_unsigned<unsigned>(v, 10, 3600000);
       }},
      {"users", "users: [{\"userid\":..,\"password\":<rheo hash-password>,\"roles\":[..]}]",
       [](server_config& c, const std::string& v) { c.users_json = v; }},
      {"acl", "ordered ACL rules (JSON array; default: the chat's rules)",
       [](server_config& c, const std::string& v) { c.acl_json = v; }},
      {"jwt",
       "JWT verification: {\"algorithm\":\"HS256|RS256\",\"key\":..,\"issuer\":..,\"audience\":..}",
       [](server_config& c, const std::string& v) { c.jwt_json = v; }},
      {"token_ttl_seconds", "lifetime of auth tokens issued at login",
       [](server_config& c, const std::string& v) {
         c.token_ttl_seconds = parse_unsigned<unsigned>(v, 1, 86400 * 365);
       }},
      {"login_max_failures", "failed logins per client address before 429",
       [](server_config& c, const std::string& v) {
         c.login_max_failures = parse_unsigned<unsigned>(v, 1, 1000000);
       }},
      {"login_window_seconds", "window of the failed-login count",
       [](server_config& c, const std::string& v) {
         c.login_window_seconds = parse_unsigned<unsigned>(v, 1, 86400);
       }},
      {"auth_cache_ttl_seconds",
       "how long a verified Basic password is remembered (keyed hash; 0: verify every request)",
       [](server_config& c, const std::string& v) {
         c.auth_cache_ttl_seconds = parse_unsigned<unsigned>(v, 0, 86400);
       }},
      {"auth_cache_size", "most verified Basic passwords remembered (the oldest go first)",
       [](server_config& c, const std::string& v) {
         c.auth_cache_size = parse_unsigned<std::size_t>(v, 1, 10000000);
       }},
      {"auth_max_concurrent_hashes",
       "argon2id password checks running at once, 64 MiB each (0: one per core)",
       [](server_config& c, const std::string& v) {
         c.auth_max_concurrent_hashes = parse_unsigned<unsigned>(v, 0, 1024);
       }},
      {"auth_hash_wait_ms", "how long a password check waits for a free slot before 503",
       [](server_config& c, const std::string& v) {
         c.auth_hash_wait_ms = parse_unsigned<unsigned>(v, 0, 60000);
       }},
      {"cors_allowed_origins",
       "origins whose cross-origin calls may carry credentials, ORIGIN[,ORIGIN] (* = all; "
       "default: none, others call without credentials)",
       [](server_config& c, const std::string& v) { c.cors_allowed_origins = parse_origins(v); }},
      {"trusted_proxies",
       "reverse proxies whose Forwarded / X-Forwarded-For / X-Forwarded-Proto name the client, "
       "ADDRESS|CIDR[,...] (default: none; the headers are ignored)",
       [](server_config& c, const std::string& v) {
         std::vector<std::string> specs = split_list(v);
         try {
           trusted_proxies check(specs);
         } catch (const std::invalid_argument& e) {
           throw config_error(std::string("trusted_proxies: ") + e.what());
         }
         c.trusted_proxies = std::move(specs);
       }},
      {"create_messages",
       "create the chat's messages collection and its {timestamp:-1} index at startup when missing",
       [](server_config& c, const std::string& v) {
         c.create_messages = one_of(v, {"true", "false"}) == "true";
       }},
      {"cluster_listen", "HOST:PORT: this node is a cluster core, its nodes join here",
       [](server_config& c, const std::string& v) {
         parse_host_port(v, "cluster_listen");
         c.cluster_listen = v;
       }},
      {"cluster_join", "HOST:PORT: this node is a cluster edge of the core listening there",
       [](server_config& c, const std::string& v) {
         parse_host_port(v, "cluster_join");
         c.cluster_join = v;
       }},
      {"node_name", "this node's name in logs, metrics and /_cluster (default: host:port)",
       [](server_config& c, const std::string& v) { c.node_name = v; }},
      {"cluster_secret", "shared secret every node of the cluster proves (required with a cluster)",
       [](server_config& c, const std::string& v) { c.cluster_secret = v; }},
      {"cluster_cert", "PEM certificate of this node: cluster links run over TLS",
       [](server_config& c, const std::string& v) { c.cluster_cert = v; }},
      {"cluster_key", "PEM private key of cluster_cert",
       [](server_config& c, const std::string& v) { c.cluster_key = v; }},
      {"cluster_ca", "PEM CA file that signs every node's certificate",
       [](server_config& c, const std::string& v) { c.cluster_ca = v; }},
      {"cluster_insecure",
       "allow plain (not TLS) cluster links on addresses other than loopback: only on a network "
       "nobody else can reach",
       [](server_config& c, const std::string& v) {
         c.cluster_insecure = one_of(v, {"true", "false"}) == "true";
       }},
      {"cluster_heartbeat_ms", "heartbeat interval of cluster links",
       [](server_config& c, const std::string& v) {
         c.cluster_heartbeat_ms = parse_unsigned<unsigned>(v, 10, 600000);
       }},
      {"cluster_timeout_ms", "a cluster link silent this long is down",
       [](server_config& c, const std::string& v) {
         c.cluster_timeout_ms = parse_unsigned<unsigned>(v, 10, 3600000);
       }},
      {"cluster_request_timeout_ms", "how long an edge waits for the core's answer, then 503",
       [](server_config& c, const std::string& v) {
         c.cluster_request_timeout_ms = parse_unsigned<unsigned>(v, 10, 3600000);
       }},
      {"cluster_reconnect_max_ms", "an edge's reconnect backoff grows up to this",
       [](server_config& c, const std::string& v) {
         c.cluster_reconnect_max_ms = parse_unsigned<unsigned>(v, 10, 600000);
       }},
      {"shutdown_timeout_ms", "how long shutdown waits for in-flight requests",
       [](server_config& c, const std::string& v) {
         c.shutdown_timeout_ms = parse_unsigned<unsigned>(v, 0, 3600000);
       }},
      {"max_connections",
       "open connections (HTTP, WebSocket, SSE) before new ones get 503 (0: the open-file "
       "limit minus 64)",
       [](server_config& c, const std::string& v) {
         c.max_connections = parse_unsigned<std::size_t>(v, 0, 100000000);
       }},
      {"max_connections_per_client",
       "open connections from one client address before new ones get 429 (0: no limit)",
       [](server_config& c, const std::string& v) {
         c.max_connections_per_client = parse_unsigned<std::size_t>(v, 0, 100000000);
       }},
      {"max_sessions_per_client",
       "WebSocket and SSE sessions from one client address before handshakes get 429 (0: no "
       "limit)",
       [](server_config& c, const std::string& v) {
         c.max_sessions_per_client = parse_unsigned<std::size_t>(v, 0, 100000000);
       }},
      {"max_requests_per_second_per_client",
       "REST requests per second from one client address, beyond them 429 with Retry-After "
       "(0: no limit)",
       [](server_config& c, const std::string& v) {
         c.max_requests_per_second_per_client = parse_unsigned<unsigned>(v, 0, 100000000);
       }},
      {"request_burst_per_client",
       "requests one client address may send at once above its per-second rate (0: the rate)",
       [](server_config& c, const std::string& v) {
         c.request_burst_per_client = parse_unsigned<unsigned>(v, 0, 100000000);
       }},
      {"rate_limited_clients",
       "client addresses whose request rate is tracked (idle ones go first)",
       [](server_config& c, const std::string& v) {
         c.rate_limited_clients = parse_unsigned<std::size_t>(v, 64, 100000000);
       }},
      {"max_avars_bytes", "largest avars parameter (400 beyond)",
       [](server_config& c, const std::string& v) {
         c.max_avars_bytes = parse_unsigned<std::size_t>(v, 2, std::size_t(1) << 26);
       }},
      {"max_streams_per_collection",
       "most streams a collection's metadata may declare (400 beyond)",
       [](server_config& c, const std::string& v) {
         c.max_streams_per_collection = parse_unsigned<std::size_t>(v, 1, 1000000);
       }},
      {"max_stages_per_stream", "most stages a stream may have (400 beyond)",
       [](server_config& c, const std::string& v) {
         c.max_stages_per_stream = parse_unsigned<std::size_t>(v, 1, 1000000);
       }},
      {"live_query_max_window", "largest pagesize of a live query (400 beyond)",
       [](server_config& c, const std::string& v) {
         c.live_query_max_window = parse_unsigned<std::size_t>(v, 1, 100000);
       }},
      {"presence_interval_ms", "how long presence changes wait to go out together, in one frame",
       [](server_config& c, const std::string& v) {
         c.presence_interval_ms = parse_unsigned<unsigned>(v, 10, 60000);
       }},
      {"broadcast_per_second", "broadcasts a connection may send per second (dropped beyond)",
       [](server_config& c, const std::string& v) {
         c.broadcast_per_second = parse_unsigned<unsigned>(v, 1, 100000);
       }},
      {"max_live_queries_per_collection",
       "most distinct live queries a collection may have at once (503 beyond)",
       [](server_config& c, const std::string& v) {
         c.max_live_queries_per_collection = parse_unsigned<std::size_t>(v, 1, 1000000);
       }},
  };
  return table;
}

/// The cluster options fit together.
void check_cluster(const server_config& c) {
  if (!c.cluster_listen.empty() && !c.cluster_join.empty())
    throw config_error("cluster_listen and cluster_join exclude each other: a node is a core or "
                       "an edge");
  const bool clustered = !c.cluster_listen.empty() || !c.cluster_join.empty();
  if (clustered && c.cluster_secret.empty())
    throw config_error("a cluster needs cluster_secret (--cluster-secret or RHEO_CLUSTER_SECRET), "
                       "the same on every node");
  const int tls = !c.cluster_cert.empty() + !c.cluster_key.empty() + !c.cluster_ca.empty();
  if (tls != 0 && tls != 3)
    throw config_error("cluster TLS needs all of cluster_cert, cluster_key and cluster_ca");
  if (c.cluster_timeout_ms <= c.cluster_heartbeat_ms)
    throw config_error("cluster_timeout_ms must be longer than cluster_heartbeat_ms");
  // A plain link's peer can make the node allocate what a message header asks for before it
  // has proved the secret (CAF's BASP): only loopback, unless the operator says otherwise.
  if (clustered && tls == 0 && !c.cluster_insecure) {
    const bool listens = !c.cluster_listen.empty();
    const std::string& where = listens ? c.cluster_listen : c.cluster_join;
    if (!is_loopback(parse_host_port(where, listens ? "cluster_listen" : "cluster_join").host))
      throw config_error(
          std::string(listens ? "cluster_listen" : "cluster_join") + " " + where +
          " is not a loopback address, and the cluster link is plain: anyone who reaches it can "
          "make this node allocate memory before proving the secret. Use TLS (cluster_cert, "
          "cluster_key, cluster_ca), or set cluster_insecure=true on a network only the "
          "cluster's nodes can reach");
  }
}

const option* find_option(const std::string& key) {
  for (auto& o : options())
    if (key == o.key) return &o;
  return nullptr;
}

void apply(command_line& cl, const option& o, const std::string& v, const std::string& where) {
  try {
    o.set(cl.config, v);
  } catch (const config_error& e) {
    throw config_error(where + ": " + e.what());
  }
  cl.settings[o.key] = v;
}

std::string json_scalar(const rapidjson::Value& v, const std::string& where) {
  if (v.IsString()) return {v.GetString(), v.GetStringLength()};
  if (v.IsObject() || v.IsArray()) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return {buf.GetString(), buf.GetSize()};
  }
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  if (v.IsNumber()) throw config_error(where + ": expected a non-negative integer");
  throw config_error(where + ": expected a string or a number");
}

void load_file(command_line& cl, const std::string& path) {
  server_config& c = cl.config;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error("config file " + path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(text.c_str(),
                                                                                 text.size());
  if (doc.HasParseError())
    throw config_error("config file " + path + ": invalid JSON at offset " +
                       std::to_string(doc.GetErrorOffset()) + ": " +
                       rapidjson::GetParseError_En(doc.GetParseError()));
  if (!doc.IsObject()) throw config_error("config file " + path + ": must be a JSON object");
  // Over the const object: clang's C++20 mode finds rapidjson's comparison of a mutable
  // member iterator with itself ambiguous (-Wambiguous-reversed-operator).
  for (const auto& m : std::as_const(doc).GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    std::string where = "config file " + path + ": key '" + key + "'";
    if (key == "mounts" && m.value.IsArray()) {
      c.mounts.clear();
      for (auto& item : m.value.GetArray()) {
        if (!item.IsObject() || !item.HasMember("prefix") || !item.HasMember("db") ||
            !item["prefix"].IsString() || !item["db"].IsString())
          throw config_error(where + ": each mount must be {\"prefix\":\"/\",\"db\":\"rheo\"}");
        c.mounts.push_back({item["prefix"].GetString(), item["db"].GetString()});
      }
      cl.settings[key] = json_scalar(m.value, where);
      continue;
    }
    if ((key == "cors_allowed_origins" || key == "trusted_proxies") && m.value.IsArray()) {
      std::string list;
      for (auto& item : m.value.GetArray()) {
        const bool origins = key == "cors_allowed_origins";
        if (!item.IsString())
          throw config_error(where + (origins
                                          ? ": each origin must be a string, e.g. "
                                            "\"https://app.example\""
                                          : ": each proxy must be a string, e.g. \"10.0.0.0/8\""));
        std::string origin(item.GetString(), item.GetStringLength());
        if (origin.find(',') != std::string::npos ||
            origin.find_first_not_of(" \t") == std::string::npos)
          throw config_error(where + ": '" + origin + "' is not " +
                             (origins ? "an origin" : "an address or a CIDR range"));
        list += (list.empty() ? "" : ",") + origin;
      }
      apply(cl, *find_option(key), list, where);
      continue;
    }
    auto* o = find_option(key);
    if (!o) throw config_error("config file " + path + ": unknown key '" + key + "'");
    apply(cl, *o, json_scalar(m.value, where), where);
  }
}

std::string env_name(const char* key) {
  std::string s = "RHEO_";
  for (const char* p = key; *p; ++p)
    s += static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
  return s;
}

std::string flag_name(const char* key) {
  std::string s = "--";
  for (const char* p = key; *p; ++p)
    s += *p == '_' ? '-' : *p;
  return s;
}

} // namespace

command_line parse_command_line(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env) {
  command_line cl;
  // Pass 1: find --config (flags win over the file, so the file is read first).
  std::string config_path;
  if (auto it = env.find("RHEO_CONFIG"); it != env.end()) config_path = it->second;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) throw config_error("--config needs a file name");
      config_path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      config_path = args[i].substr(9);
    }
  }
  if (!config_path.empty()) load_file(cl, config_path);
  cl.config_file = config_path;

  for (auto& [name, val] : env) {
    if (name == "RHEO_CONFIG" || name.rfind("RHEO_", 0) != 0) continue;
    const option* found = nullptr;
    for (auto& o : options())
      if (env_name(o.key) == name) found = &o;
    // Unknown RHEO_* variables are ignored: the environment is shared with other tools
    // (e.g. RHEO_TEST_MONGO_URI).
    if (found) apply(cl, *found, val, "environment " + name);
  }

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") {
      cl.help = true;
      continue;
    }
    if (a == "--version") {
      cl.version = true;
      continue;
    }
    if (a == "--config") {
      ++i;
      continue;
    }
    if (a.rfind("--config=", 0) == 0) continue;
    std::string val;
    bool has_val = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      val = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_val = true;
    }
    const option* found = nullptr;
    for (auto& o : options())
      if (flag_name(o.key) == a) found = &o;
    if (!found) throw config_error("unknown option '" + a + "' (see --help)");
    if (!has_val) {
      if (i + 1 >= args.size()) throw config_error("option " + a + " needs a value");
      val = args[++i];
    }
    apply(cl, *found, val, "option " + a);
  }
  check_mounts(cl.config.mounts);
  check_cluster(cl.config);
  if (cl.config.tls_cert.empty() != cl.config.tls_key.empty())
    throw config_error("TLS needs both tls_cert and tls_key");
  return cl;
}

std::vector<std::string> changed_settings(const command_line& before, const command_line& after) {
  std::vector<std::string> keys;
  for (auto& o : options()) {
    auto a = before.settings.find(o.key), b = after.settings.find(o.key);
    const bool in_a = a != before.settings.end(), in_b = b != after.settings.end();
    if (in_a != in_b || (in_a && a->second != b->second)) keys.emplace_back(o.key);
  }
  return keys;
}

std::map<std::string, std::string> rheo_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (kv.rfind("RHEO_", 0) != 0) continue;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::string usage_text() {
  std::string s = "usage: rheo [--config FILE] [options]\n\n"
                  "Each option KEY may also be set as \"key\" in the config file (JSON,\n"
                  "comments allowed) or as the environment variable RHEO_KEY.\n"
                  "Precedence: flags > environment > config file > defaults.\n\noptions:\n";
  for (auto& o : options()) {
    std::string f = flag_name(o.key) + " VALUE";
    s += "  " + f + std::string(f.size() < 34 ? 34 - f.size() : 1, ' ') + o.help + "\n";
  }
  s += "  --help                            this text\n"
       "  --version                         print the version\n";
  s += R"(
commands:
  rheo hash-password [PASSWORD]     print an argon2id hash of PASSWORD (or of the first
                                    line of standard input) for the "users" key
  rheo backup --data-dir DIR --out FILE
                                    write a consistent backup of the embedded store in
                                    DIR, a server running on it or not
  rheo restore FILE --data-dir DIR  replace the store in DIR with a backup (refused
                                    while a server runs on DIR)
  rheo export --data-dir DIR --out PATH [--db DB] [--coll NAME] [--relaxed]
                                    write collections as MongoDB Extended JSON files
                                    (mongoexport's format) and their metadata
  rheo import PATH --data-dir DIR [--db DB] [--coll NAME]
                                    read them back (or one mongoexport file), all or
                                    nothing; no server may run on DIR
  rheo migrate --data-dir DIR --to MONGODB_URI
                                    copy the collections into a MongoDB replica set,
                                    as rheo --mongo-uri serves them; repeatable
  rheo COMMAND --help               a command's own usage

config file:
  A JSON object of the keys above, read only when named by --config FILE or
  RHEO_CONFIG=FILE (no file is read otherwise, also by an installed binary). In the
  file, "mounts" may also be [{"prefix":"/","db":"rheo"}], "cors_allowed_origins" an
  array, and "users", "acl", "jwt" JSON values instead of strings.

files:
  PREFIX/share/rheo/web             the chat app, served under static_prefix when
                                    static_dir is not set: an installed binary
                                    (PREFIX/bin/rheo) uses the folder next to it, a
                                    binary in the build folder the source tree's web/
  /etc/rheo/rheo.json               the Debian package's config (conffile), passed by
                                    its systemd unit rheo.service with --config
  /var/lib/rheo                     the Debian package's data_dir (user rheo)
  PREFIX/share/doc/rheo/example.json
                                    an example config with an "admin" user

signals:
  SIGINT, SIGTERM                   graceful shutdown: stop accepting, finish
                                    in-flight requests (up to shutdown_timeout_ms),
                                    close WebSockets with 1001, close the store, exit 0
  SIGHUP                            reload: read the configuration again and apply
                                    users, acl, jwt and log_level (open sessions keep
                                    their rules), and the TLS files; a bad file changes
                                    nothing; other changed keys are named in the log

environment:
  RHEO_KEY                          the option KEY (see above); RHEO_CONFIG: the file
  NOTIFY_SOCKET                     systemd's notify socket (a path, or @abstract): rheo
                                    sends READY=1 once it accepts connections and
                                    STOPPING=1 when a shutdown signal arrives;
                                    RELOADING=1, then READY=1, around a reload
  WATCHDOG_USEC, WATCHDOG_PID       with NOTIFY_SOCKET: WATCHDOG=1 every WATCHDOG_USEC/2
                                    while every I/O thread answers within a quarter of it

exit status:
  0                                 clean shutdown, --help, --version, a command done
  1                                 a command failed (backup, restore, export, import,
                                    migrate: also counts that differ)
  2                                 bad configuration or option, or a startup failure
                                    (address in use, store or security setup failed)
)";
  return s;
}

const char* version() {
  return RHEO_VERSION;
}

unsigned threads_or_one_per_core(unsigned configured) {
  if (configured) return configured;
  return std::max(1u, std::thread::hardware_concurrency());
}

} // namespace rheo
