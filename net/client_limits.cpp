#include "net/client_limits.hpp"

#include "net/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace rheo {

struct client_limits::counts {
  std::mutex mutex;
  std::size_t total = 0;
  std::unordered_map<std::string, std::size_t> by_address;

  void release(const std::string& address) {
    std::lock_guard lock(mutex);
    --total;
    if (address.empty()) return;
    auto it = by_address.find(address);
    if (it != by_address.end() && --it->second == 0) by_address.erase(it);
  }
};

namespace {

/// One open connection or session of `address`, counted in `counts` until destroyed.
template <class Counts> struct held {
  std::shared_ptr<Counts> counts;
  std::string address;
  held(std::shared_ptr<Counts> c, std::string a) : counts(std::move(c)), address(std::move(a)) {}
  ~held() { counts->release(address); }
  held(const held&) = delete;
  held& operator=(const held&) = delete;
};

} // namespace

client_limits::client_limits(const server_config& config, metrics& stats)
    : config_(config), stats_(stats), connections_(std::make_shared<counts>()),
      sessions_(std::make_shared<counts>()) {
  rate_ = config.max_requests_per_second_per_client;
  burst_ = std::max<double>(rate_, config.request_burst_per_client);
  shard_capacity_ = std::max<std::size_t>(config.rate_limited_clients / bucket_shards, 2);
}

client_limits::slot client_limits::admit_connection(const std::string& address,
                                                    http_response& refusal) {
  {
    std::lock_guard lock(connections_->mutex);
    if (config_.max_connections && connections_->total >= config_.max_connections) {
      stats_.count_refusal(limit::connections);
      refusal = error_response(503, "the server has reached its limit of " +
                                        std::to_string(config_.max_connections) +
                                        " open connections (max_connections)");
      refusal.close = true;
      return nullptr;
    }
    if (address.empty()) { // a trusted proxy's: it pools its clients' requests
      ++connections_->total;
      return std::make_shared<held<counts>>(connections_, address);
    }
    auto& mine = connections_->by_address[address];
    if (config_.max_connections_per_client && mine >= config_.max_connections_per_client) {
      if (mine == 0) connections_->by_address.erase(address);
      stats_.count_refusal(limit::connections_per_client);
      refusal = error_response(429, "too many open connections from " + address + " (limit " +
                                        std::to_string(config_.max_connections_per_client) +
                                        ", max_connections_per_client)");
      refusal.close = true;
      return nullptr;
    }
    ++mine;
    ++connections_->total;
  }
  return std::make_shared<held<counts>>(connections_, address);
}

client_limits::slot client_limits::admit_session(const std::string& address,
                                                 http_response& refusal) {
  {
    std::lock_guard lock(sessions_->mutex);
    auto& mine = sessions_->by_address[address];
    if (config_.max_sessions_per_client && mine >= config_.max_sessions_per_client) {
      if (mine == 0) sessions_->by_address.erase(address);
      stats_.count_refusal(limit::sessions_per_client);
      refusal = error_response(
          429, "too many open WebSocket and SSE sessions from " + address + " (limit " +
                   std::to_string(config_.max_sessions_per_client) + ", max_sessions_per_client)");
      refusal.close = true;
      return nullptr;
    }
    ++mine;
    ++sessions_->total;
  }
  return std::make_shared<held<counts>>(sessions_, address);
}

std::optional<http_response>
client_limits::check_request(const std::string& address,
                             std::chrono::steady_clock::time_point now) {
  if (rate_ == 0) return std::nullopt;
  auto& s = shards_[std::hash<std::string>{}(address) % bucket_shards];
  double wait_seconds = 0;
  {
    std::lock_guard lock(s.mutex);
    auto it = s.buckets.find(address);
    if (it == s.buckets.end()) {
      if (s.buckets.size() >= shard_capacity_) evict(s, now);
      it = s.buckets.emplace(address, bucket{burst_, now}).first;
    }
    bucket& b = it->second;
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * rate_);
    b.last = std::max(b.last, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return std::nullopt;
    }
    wait_seconds = (1 - b.tokens) / rate_;
  }
  stats_.count_refusal(limit::requests_per_second);
  const auto retry_after = std::max<long long>(1, static_cast<long long>(std::ceil(wait_seconds)));
  http_response res =
      error_response(429, "too many requests from " + address + " (limit " +
                              std::to_string(config_.max_requests_per_second_per_client) +
                              " per second, max_requests_per_second_per_client)");
  res.headers.emplace_back("Retry-After", std::to_string(retry_after));
  return res;
}

void client_limits::evict(bucket_shard& s, std::chrono::steady_clock::time_point now) {
  // Idle addresses first: a full bucket is what a new one starts with.
  std::erase_if(s.buckets, [&](auto& kv) {
    const double elapsed = std::chrono::duration<double>(now - kv.second.last).count();
    return kv.second.tokens + elapsed * rate_ >= burst_;
  });
  if (s.buckets.size() < shard_capacity_ * 7 / 8) return;
  // Still (nearly) full: forget the least recently seen quarter, so that the next sweep is
  // far away (amortised O(1) per new address).
  std::vector<std::chrono::steady_clock::time_point> seen;
  seen.reserve(s.buckets.size());
  for (auto& kv : s.buckets)
    seen.push_back(kv.second.last);
  auto nth = seen.begin() + static_cast<std::ptrdiff_t>(seen.size() / 4);
  std::nth_element(seen.begin(), nth, seen.end());
  const auto threshold = *nth;
  std::erase_if(s.buckets, [&](auto& kv) { return kv.second.last <= threshold; });
}

} // namespace rheo
