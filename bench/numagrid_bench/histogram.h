// LatencyHistogram: a fixed-size log-linear histogram of nanosecond
// latencies in the style of HdrHistogram, for numagrid-bench.
//
// Layout: values below 256 ns have one bucket each (exact). Above that, each
// power-of-two range [2^k, 2^(k+1)) is split into 128 equal buckets, so a
// bucket is at most 1/128 (0.78%) of its lowest value wide. The top of the
// range is 2^37 - 1 ns (137 s); larger values land in the last bucket (and
// in max(), which is exact), value 0 in the first. So from 10 ns to 100 s
// every reported percentile is within 0.8% of a recorded value.
//
// Record() is O(1) and allocates nothing; the whole histogram is one
// trivially copyable struct of 3,968 counters (31 KiB), so it can live in a
// MAP_SHARED mapping written by a child process and read by its parent.
//
// Thread safety: thread-compatible (one writer; read after it stopped).
// Process safety: plain memory, no pointers; a reader must see the writer's
// stores through a synchronizing operation (waitpid, a join, or an
// acquire load pairing with a release store after the last Record()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace numagrid::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 8;  // 256
  static constexpr std::uint64_t kSubBucketCount = 1ULL << kSubBucketBits;
  static constexpr std::uint64_t kHalfCount = kSubBucketCount / 2;  // 128
  static constexpr int kMaxValueBits = 37;                          // 137 s
  static constexpr std::uint64_t kHighestTrackable =
      (1ULL << kMaxValueBits) - 1;
  static constexpr std::size_t kBucketCount =
      kSubBucketCount + (kMaxValueBits - kSubBucketBits) * kHalfCount;  // 3968

  // Zeroes everything.
  void Reset() noexcept;

  // Adds one value (nanoseconds). O(1), no allocation.
  void Record(std::uint64_t value_ns) noexcept {
    const std::size_t i = IndexOf(value_ns);
    ++counts_[i];
    ++count_;
    sum_ += value_ns;
    if (value_ns < min_ || count_ == 1) min_ = value_ns;
    if (value_ns > max_) max_ = value_ns;
  }

  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept {
    return count_ == 0
               ? 0.0
               : static_cast<double>(sum_) / static_cast<double>(count_);
  }

  // The smallest value v such that at least `q` (0..1) of the recorded values
  // are <= v, reported as the highest value of v's bucket (HdrHistogram's
  // rule: never below the truth), clamped to [min(), max()]; max() when it
  // falls in the last bucket, which has no upper bound. 0 when empty.
  std::uint64_t ValueAtQuantile(double q) const noexcept;

  // Bucket arithmetic, public for the tests.
  static std::size_t IndexOf(std::uint64_t value_ns) noexcept;
  static std::uint64_t LowestValueAt(std::size_t index) noexcept;
  static std::uint64_t HighestValueAt(std::size_t index) noexcept;
  std::uint64_t CountAt(std::size_t index) const noexcept {
    return counts_[index];
  }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;  // 2^64 ns is 584 years of summed latency
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t counts_[kBucketCount] = {};
};

static_assert(std::is_trivially_copyable_v<LatencyHistogram>);
static_assert(std::is_standard_layout_v<LatencyHistogram>);

}  // namespace numagrid::bench
