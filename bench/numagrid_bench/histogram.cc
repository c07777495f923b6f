// LatencyHistogram: bucket arithmetic, merge and quantiles.
#include "bench/numagrid_bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace numagrid::bench {

void LatencyHistogram::Reset() noexcept {
  count_ = 0;
  sum_ = 0;
  min_ = 0;
  max_ = 0;
  std::memset(counts_, 0, sizeof counts_);
}

std::size_t LatencyHistogram::IndexOf(std::uint64_t value_ns) noexcept {
  if (value_ns < kSubBucketCount) return static_cast<std::size_t>(value_ns);
  if (value_ns > kHighestTrackable) return kBucketCount - 1;
  // shift >= 1: value_ns >> shift lies in [128, 256).
  const int shift = std::bit_width(value_ns) - kSubBucketBits;
  const std::uint64_t sub = value_ns >> shift;
  return static_cast<std::size_t>(kSubBucketCount + (shift - 1) * kHalfCount +
                                  (sub - kHalfCount));
}

std::uint64_t LatencyHistogram::LowestValueAt(std::size_t index) noexcept {
  if (index < kSubBucketCount) return index;
  const std::uint64_t rest = index - kSubBucketCount;
  const int shift = static_cast<int>(rest / kHalfCount) + 1;
  const std::uint64_t sub = kHalfCount + rest % kHalfCount;
  return sub << shift;
}

std::uint64_t LatencyHistogram::HighestValueAt(std::size_t index) noexcept {
  if (index < kSubBucketCount) return index;
  const int shift =
      static_cast<int>((index - kSubBucketCount) / kHalfCount) + 1;
  return LowestValueAt(index) + (1ULL << shift) - 1;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) noexcept {
  if (other.count_ == 0) return;
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
  for (std::size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
}

std::uint64_t LatencyHistogram::ValueAtQuantile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the wanted value, 1-based: at least q of the values are <= it.
  auto rank =
      static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen < rank) continue;
    // The last bucket also holds everything beyond kHighestTrackable.
    if (i == kBucketCount - 1) return max_;
    return std::clamp(HighestValueAt(i), min(), max_);
  }
  return max_;
}

}  // namespace numagrid::bench
