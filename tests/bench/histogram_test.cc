// Tests of bench/numagrid_bench/histogram.h: percentiles within 1%, merge,
// and the end buckets.
#include "bench/numagrid_bench/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace numagrid::bench {
namespace {

using H = LatencyHistogram;

// The exact value at quantile q of sorted `v` by the same rank rule.
std::uint64_t ExactQuantile(const std::vector<std::uint64_t>& v, double q) {
  auto rank =
      static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

TEST(LatencyHistogram, BucketsCoverTheRangeContiguouslyWithinOnePercent) {
  for (std::size_t i = 0; i + 1 < H::kBucketCount; ++i) {
    ASSERT_EQ(H::HighestValueAt(i) + 1, H::LowestValueAt(i + 1)) << i;
    ASSERT_EQ(H::IndexOf(H::LowestValueAt(i)), i);
    ASSERT_EQ(H::IndexOf(H::HighestValueAt(i)), i);
    // Any value of the bucket is reported as its highest value: the error.
    const double error =
        static_cast<double>(H::HighestValueAt(i) - H::LowestValueAt(i));
    if (H::LowestValueAt(i) >= 10) {
      ASSERT_LE(error / static_cast<double>(H::LowestValueAt(i)), 0.01) << i;
    }
  }
  EXPECT_EQ(H::HighestValueAt(H::kBucketCount - 1), H::kHighestTrackable);
  EXPECT_GE(H::kHighestTrackable, 100'000'000'000ULL);  // 100 s
}

TEST(LatencyHistogram, KnownValuesGivePercentilesWithinOnePercent) {
  auto h = std::make_unique<H>();
  std::vector<std::uint64_t> values;
  std::mt19937_64 rng(1);
  // Log-uniform from 10 ns to 100 s.
  std::uniform_real_distribution<double> exponent(1.0, 11.0);
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
    values.push_back(v);
    h->Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const double exact = static_cast<double>(ExactQuantile(values, q));
    const double got = static_cast<double>(h->ValueAtQuantile(q));
    EXPECT_GE(got, exact) << q;  // never reports less than the truth
    EXPECT_LE(got, exact * 1.01) << q;
  }
  EXPECT_EQ(h->count(), values.size());
  EXPECT_EQ(h->min(), values.front());
  EXPECT_EQ(h->max(), values.back());
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  auto h = std::make_unique<H>();
  for (std::uint64_t v = 1; v <= 100; ++v) h->Record(v);
  EXPECT_EQ(h->ValueAtQuantile(0.5), 50U);
  EXPECT_EQ(h->ValueAtQuantile(0.99), 99U);
  EXPECT_EQ(h->ValueAtQuantile(1.0), 100U);
  EXPECT_DOUBLE_EQ(h->mean(), 50.5);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  auto a = std::make_unique<H>();
  auto b = std::make_unique<H>();
  auto both = std::make_unique<H>();
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> d(6.0, 2.0);
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<std::uint64_t>(d(rng));
    (i % 3 == 0 ? *a : *b).Record(v);
    both->Record(v);
  }
  a->Merge(*b);
  EXPECT_EQ(a->count(), both->count());
  EXPECT_EQ(a->min(), both->min());
  EXPECT_EQ(a->max(), both->max());
  EXPECT_DOUBLE_EQ(a->mean(), both->mean());
  for (std::size_t i = 0; i < H::kBucketCount; ++i)
    ASSERT_EQ(a->CountAt(i), both->CountAt(i)) << i;
  for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999}) {
    EXPECT_EQ(a->ValueAtQuantile(q), both->ValueAtQuantile(q)) << q;
  }
}

TEST(LatencyHistogram, MergeIntoEmptyAndOfEmptyKeepMin) {
  auto a = std::make_unique<H>();
  auto b = std::make_unique<H>();
  b->Record(500);
  b->Record(700);
  a->Merge(*b);
  EXPECT_EQ(a->min(), 500U);
  auto empty = std::make_unique<H>();
  a->Merge(*empty);
  EXPECT_EQ(a->min(), 500U);
  EXPECT_EQ(a->count(), 2U);
}

TEST(LatencyHistogram, ExtremesLandInTheEndBuckets) {
  auto h = std::make_unique<H>();
  h->Record(0);
  h->Record(UINT64_MAX);
  h->Record(H::kHighestTrackable + 1);
  EXPECT_EQ(h->CountAt(0), 1U);
  EXPECT_EQ(h->CountAt(H::kBucketCount - 1), 2U);
  EXPECT_EQ(H::IndexOf(0), 0U);
  EXPECT_EQ(H::IndexOf(UINT64_MAX), H::kBucketCount - 1);
  EXPECT_EQ(h->max(), UINT64_MAX);  // max stays exact
  EXPECT_EQ(h->min(), 0U);
  EXPECT_EQ(h->ValueAtQuantile(0.0), 0U);
  EXPECT_EQ(h->ValueAtQuantile(1.0), UINT64_MAX);
}

TEST(LatencyHistogram, EmptyReportsZeroAndResetEmpties) {
  auto h = std::make_unique<H>();
  EXPECT_EQ(h->ValueAtQuantile(0.5), 0U);
  EXPECT_EQ(h->mean(), 0.0);
  h->Record(1234);
  h->Reset();
  EXPECT_EQ(h->count(), 0U);
  EXPECT_EQ(h->max(), 0U);
  EXPECT_EQ(h->CountAt(H::IndexOf(1234)), 0U);
}

}  // namespace
}  // namespace numagrid::bench
