// What the HTTP layer sees of a cluster (actors/cluster.hpp): GET /_cluster, the cluster
// lines and the node label of GET /_metrics, and whether store calls leave the node (then
// every request that touches the store may wait on the network: it runs on the workers).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace rheo {

class cluster_view {
public:
  virtual ~cluster_view() = default;
  /// The body of GET /_cluster; `sessions` and `subscriptions` are this node's. May wait
  /// on the core (an edge asks it for the other nodes, with a short deadline).
  virtual std::string status_json(std::int64_t sessions, std::int64_t subscriptions) const = 0;
  /// Prometheus lines of the cluster links (state, reconnects, bytes sent per peer).
  virtual std::string metrics_text() const = 0;
  virtual const std::string& node_name() const = 0;
  virtual bool forwards_store_calls() const = 0;
  /// Stream `key`'s members on every node (GET .../_presence), as JSON, when this node asks
  /// the core for them (an edge); null when the node's own presence_directory has them. May
  /// wait on the core; throws api_error (503) when it cannot answer.
  virtual std::shared_ptr<const std::string> presence_list(const std::string& key) const {
    (void)key;
    return nullptr;
  }
};

/// `text` (Prometheus exposition format) with the label name="value" on every sample
/// (`value` escaped: label_value in net/metrics.hpp).
std::string with_label(const std::string& text, const std::string& name, const std::string& value);

} // namespace rheo
