#include "actors/cluster.hpp"
#include "actors/cluster_support.hpp"

#include "config/config.hpp"
#include "net/metrics.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace rheo {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

} // namespace

std::string make_nonce() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("RAND_bytes failed");
  return hex(bytes, sizeof bytes);
}

std::string prove_secret(const std::string& secret, std::string_view side,
                         const std::string& edge_nonce, const std::string& core_nonce,
                         const std::string& edge_name) {
  std::string text;
  text.append(side).append("\n").append(edge_nonce).append("\n").append(core_nonce);
  text.append("\n").append(edge_name);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len))
    throw std::runtime_error("HMAC-SHA256 failed");
  return hex(mac, len);
}

bool same_proof(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

object node_status(const std::string& name, std::string_view role, std::string_view state,
                   std::int64_t sessions, std::int64_t subscriptions) {
  return object{{"name", value(name)},
                {"role", value(std::string(role))},
                {"state", value(std::string(state))},
                {"sessions", value(sessions)},
                {"subscriptions", value(subscriptions)}};
}

std::string render_link_metrics(const std::vector<link_metrics>& links) {
  std::string up = "# HELP rheo_cluster_link_up Whether the link to a peer node is up.\n"
                   "# TYPE rheo_cluster_link_up gauge\n";
  std::string again = "# HELP rheo_cluster_reconnects_total Times the link to a peer was joined "
                      "again.\n# TYPE rheo_cluster_reconnects_total counter\n";
  std::string bytes = "# HELP rheo_cluster_bytes_sent_total Bytes sent to a peer: change events "
                      "(core), store calls (edge).\n# TYPE rheo_cluster_bytes_sent_total counter\n";
  for (auto& l : links) {
    const std::string label = "{peer=\"" + label_value(l.peer) + "\"} ";
    up += "rheo_cluster_link_up" + label + (l.up ? "1\n" : "0\n");
    again += "rheo_cluster_reconnects_total" + label + std::to_string(l.reconnects) + "\n";
    bytes += "rheo_cluster_bytes_sent_total" + label + std::to_string(l.bytes_sent) + "\n";
  }
  return up + again + bytes;
}

bool cluster_tls(const server_config& config) {
  return !config.cluster_cert.empty();
}

caf::io::middleman_actor cluster_middleman(caf::actor_system& system, const server_config& config) {
  return cluster_tls(config) ? system.openssl_manager().actor_handle()
                             : system.middleman().actor_handle();
}

void configure_cluster(caf::actor_system_config& cfg, const server_config& config) {
  if (config.cluster_listen.empty() && config.cluster_join.empty()) return;
  cfg.load<caf::io::middleman>();
  // Other CAF applications (and other programs) speaking BASP are refused at the handshake;
  // other rheo builds get as far as the gatekeeper, which compares fingerprints.
  cfg.set("middleman.app-identifiers", std::vector<std::string>{"rheo-cluster"});
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{std::chrono::milliseconds(config.cluster_heartbeat_ms)});
  cfg.set("middleman.connection-timeout",
          caf::timespan{std::chrono::milliseconds(config.cluster_timeout_ms)});
  if (cluster_tls(config)) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = config.cluster_cert;
    cfg.openssl_key = config.cluster_key;
    cfg.openssl_cafile = config.cluster_ca;
  }
}

std::string cluster_fingerprint() {
  // For tests only: pretend to be another build.
  if (const char* other = std::getenv("RHEO_TEST_CLUSTER_FINGERPRINT")) return other;
  caf::actor_system_config cfg;
  register_message_types(cfg);
  std::vector<std::string> names;
  for (auto& [name, factory] : cfg.value_factories_by_name)
    names.push_back(name);
  std::sort(names.begin(), names.end());
  // The revision of what crosses the link beyond the registered types (2: paced catch-ups,
  // more_atom).
  std::string out = std::string("rheo ") + version() + " link 2;";
  for (auto& n : names)
    out += " " + n;
  return out;
}

} // namespace rheo
