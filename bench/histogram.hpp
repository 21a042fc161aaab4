// A log-linear latency histogram in the style of HdrHistogram: values below 128 have their
// own bucket, larger values share one bucket per 1/64 of their power of two (relative error
// under 1.6 %). Fixed size, no allocation per sample.
//
// Thread-safety: exactly one thread records; any thread may read a (not perfectly
// consistent) snapshot at any time. Counts are relaxed atomics written without a locked
// read-modify-write, which is correct because there is a single writer.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace bench {

inline constexpr int histogram_direct = 128;
inline constexpr int histogram_sub = 64;
inline constexpr int histogram_buckets = histogram_direct + 57 * histogram_sub;

constexpr int bucket_of(std::uint64_t v) {
  if (v < histogram_direct) return static_cast<int>(v);
  int e = 63 - std::countl_zero(v) - 6; // >= 1
  auto m = static_cast<int>(v >> e);    // in [64, 128)
  return histogram_direct + (e - 1) * histogram_sub + (m - histogram_sub);
}

/// The highest value that lands in bucket `b`.
constexpr std::uint64_t bucket_top(int b) {
  if (b < histogram_direct) return static_cast<std::uint64_t>(b);
  int e = (b - histogram_direct) / histogram_sub + 1;
  auto m = static_cast<std::uint64_t>((b - histogram_direct) % histogram_sub + histogram_sub);
  return ((m + 1) << e) - 1;
}

/// Counts copied out of a recorder; plain data, cheap to subtract and merge.
struct histogram_snapshot {
  std::array<std::uint64_t, histogram_buckets> counts{};
  std::uint64_t max = 0;

  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (auto c : counts)
      n += c;
    return n;
  }
  void merge(const histogram_snapshot& o) {
    for (int i = 0; i < histogram_buckets; ++i)
      counts[i] += o.counts[i];
    if (o.max > max) max = o.max;
  }
  /// Counts recorded since `earlier` (max is kept as is: callers track per-interval max).
  void subtract(const histogram_snapshot& earlier) {
    for (int i = 0; i < histogram_buckets; ++i)
      counts[i] -= earlier.counts[i];
  }
  /// The value at quantile q in [0, 1], as the top of its bucket capped at the max seen.
  std::uint64_t quantile(double q) const {
    std::uint64_t n = total();
    if (n == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n));
    if (rank >= n) rank = n - 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < histogram_buckets; ++i) {
      seen += counts[i];
      if (seen > rank) return bucket_top(i) < max ? bucket_top(i) : max;
    }
    return max;
  }
};

class histogram_recorder {
public:
  void record(std::uint64_t v) {
    auto& c = counts_[bucket_of(v)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
    if (v > interval_max_.load(std::memory_order_relaxed))
      interval_max_.store(v, std::memory_order_relaxed);
  }
  /// Cumulative counts; `max` is the largest value since the previous call with
  /// `reset_interval_max` (a reader-side reset: a racing record may be attributed late).
  void snapshot(histogram_snapshot& out, bool reset_interval_max) {
    for (int i = 0; i < histogram_buckets; ++i)
      out.counts[i] = counts_[i].load(std::memory_order_relaxed);
    if (reset_interval_max)
      out.max = interval_max_.exchange(0, std::memory_order_relaxed);
    else
      out.max = max_.load(std::memory_order_relaxed);
  }

private:
  std::array<std::atomic<std::uint64_t>, histogram_buckets> counts_{};
  std::atomic<std::uint64_t> max_{0};
  std::atomic<std::uint64_t> interval_max_{0};
};

} // namespace bench
