// Tests of bench/numagrid_bench/workload.h: the operation mix of each YCSB
// workload within tolerance, the zipfian skew (the hottest keys' shares), the
// latest distribution, and reproducibility from a seed. Counts only, no
// timings.
#include "bench/numagrid_bench/workload.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace numagrid::bench {
namespace {

constexpr std::uint64_t kSeed = 20261127;

double Zeta(std::uint64_t n, double theta) {
  double sum = 0;
  for (std::uint64_t i = 1; i <= n; ++i)
    sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

TEST(WorkloadMix, ParsesTheYcsbCoreProportions) {
  struct Want {
    const char* letter;
    double read, update, insert, scan, rmw;
  };
  const Want wants[] = {{"A", 0.5, 0.5, 0, 0, 0},   {"b", 0.95, 0.05, 0, 0, 0},
                        {"C", 1, 0, 0, 0, 0},       {"D", 0.95, 0, 0.05, 0, 0},
                        {"E", 0, 0, 0.05, 0.95, 0}, {"F", 0.5, 0, 0, 0, 0.5}};
  for (const Want& w : wants) {
    auto spec = ParseWorkload(w.letter);
    ASSERT_TRUE(spec.has_value()) << w.letter;
    EXPECT_DOUBLE_EQ(spec->read, w.read) << w.letter;
    EXPECT_DOUBLE_EQ(spec->update, w.update) << w.letter;
    EXPECT_DOUBLE_EQ(spec->insert, w.insert) << w.letter;
    EXPECT_DOUBLE_EQ(spec->scan, w.scan) << w.letter;
    EXPECT_DOUBLE_EQ(spec->read_modify_write, w.rmw) << w.letter;
  }
  EXPECT_EQ(ParseWorkload("D")->default_distribution, Distribution::kLatest);
  EXPECT_EQ(ParseWorkload("A")->default_distribution, Distribution::kZipfian);
  EXPECT_FALSE(ParseWorkload("G").has_value());
  EXPECT_FALSE(ParseWorkload("").has_value());
}

TEST(WorkloadMix, OperationSharesMatchEachWorkloadWithinHalfAPercent) {
  constexpr int kDraws = 200'000;  // 4.5 standard deviations at p = 0.5
  for (const char* letter : {"A", "B", "C", "D", "E", "F"}) {
    const WorkloadSpec spec = *ParseWorkload(letter);
    const OpChooser chooser(spec);
    Rng rng(kSeed);
    int counts[kOpTypeCount] = {};
    for (int i = 0; i < kDraws; ++i)
      ++counts[static_cast<int>(chooser.Next(rng))];
    const double want[kOpTypeCount] = {spec.read, spec.update, spec.insert,
                                       spec.scan, spec.read_modify_write};
    for (int k = 0; k < kOpTypeCount; ++k) {
      const double share = static_cast<double>(counts[k]) / kDraws;
      EXPECT_NEAR(share, want[k], 0.005)
          << letter << " " << OpTypeName(static_cast<OpType>(k));
      if (want[k] == 0) {
        EXPECT_EQ(counts[k], 0) << letter;
      }
    }
  }
}

TEST(WorkloadZipfian, GeneratorGivesItemZeroItsZipfianShare) {
  constexpr std::uint64_t kItems = 1000;
  constexpr int kDraws = 400'000;
  ZipfianGenerator zipf(kItems);
  Rng rng(kSeed);
  std::vector<int> counts(kItems);
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t v = zipf.Next(rng);
    ASSERT_LT(v, kItems);
    ++counts[v];
  }
  const double zeta = Zeta(kItems, ZipfianGenerator::kTheta);
  // P(item i) = 1 / (i + 1)^theta / zeta.
  EXPECT_NEAR(counts[0] / double{kDraws}, 1.0 / zeta, 0.05 / zeta);
  EXPECT_NEAR(counts[1] / double{kDraws},
              std::pow(0.5, ZipfianGenerator::kTheta) / zeta, 0.05 / zeta);
  EXPECT_GT(counts[0], counts[1]);
  EXPECT_GT(counts[1], counts[10]);
}

TEST(WorkloadZipfian, HottestKeyTakesAboutOneTwentySixthOfTheDraws) {
  // YCSB's scrambled zipfian: zipfian over 10^10 items (zeta 26.469), item
  // i mapped to key FNV(i) % records. Item 0 alone is 1/26.469 = 3.78% of
  // the draws; the other items add about 1/records each to every key.
  constexpr std::uint64_t kRecords = 100'000;
  constexpr int kDraws = 1'000'000;
  KeyChooser chooser(Distribution::kZipfian, kRecords);
  Rng rng(kSeed);
  std::vector<int> counts(kRecords);
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t id = chooser.Next(rng);
    ASSERT_LT(id, kRecords);
    ++counts[id];
  }
  const auto hottest = static_cast<std::uint64_t>(
      std::max_element(counts.begin(), counts.end()) - counts.begin());
  EXPECT_EQ(hottest, FnvHash64(0) % kRecords);
  const double share = counts[hottest] / double{kDraws};
  EXPECT_GT(share, 0.035);
  EXPECT_LT(share, 0.042);
  // The second item: 0.5^0.99 / 26.469 = 1.90%.
  const double second = counts[FnvHash64(1) % kRecords] / double{kDraws};
  EXPECT_GT(second, 0.017);
  EXPECT_LT(second, 0.022);
  // Skewed: the hottest key is thousands of times the uniform share.
  EXPECT_GT(share * kRecords, 1000);
}

TEST(WorkloadZipfian, UniformHasNoHotKey) {
  constexpr std::uint64_t kRecords = 1000;
  constexpr int kDraws = 1'000'000;
  KeyChooser chooser(Distribution::kUniform, kRecords);
  Rng rng(kSeed);
  std::vector<int> counts(kRecords);
  for (int i = 0; i < kDraws; ++i) ++counts[chooser.Next(rng)];
  const int max = *std::max_element(counts.begin(), counts.end());
  const int min = *std::min_element(counts.begin(), counts.end());
  // Mean 1000 per key, standard deviation about 32.
  EXPECT_LT(max, 1200);
  EXPECT_GT(min, 800);
}

TEST(WorkloadLatest, NewestKeyIsHottestAndFollowsInserts) {
  constexpr std::uint64_t kRecords = 10'000;
  KeyChooser chooser(Distribution::kLatest, kRecords);
  Rng rng(kSeed);
  std::vector<int> counts(kRecords + 100);
  for (int i = 0; i < 200'000; ++i) ++counts[chooser.Next(rng)];
  EXPECT_EQ(std::max_element(counts.begin(), counts.end()) - counts.begin(),
            static_cast<std::ptrdiff_t>(kRecords - 1));

  // Worker 1 of 4: its inserted ids step by 4.
  chooser.set_insert_stride(4);
  chooser.NoteInsert(kRecords + 1);
  chooser.NoteInsert(kRecords + 5);
  std::fill(counts.begin(), counts.end(), 0);
  for (int i = 0; i < 200'000; ++i) {
    const std::uint64_t id = chooser.Next(rng);
    ASSERT_LT(id, counts.size());
    ++counts[id];
  }
  EXPECT_EQ(std::max_element(counts.begin(), counts.end()) - counts.begin(),
            static_cast<std::ptrdiff_t>(kRecords + 5));
  EXPECT_GT(counts[kRecords + 1], counts[kRecords - 1]);
  EXPECT_EQ(counts[kRecords + 2], 0);  // another worker's id
}

TEST(WorkloadSeed, SameSeedGivesTheSameKeysAndOperations) {
  const OpChooser ops(*ParseWorkload("A"));
  auto draw = [&](std::uint64_t seed) {
    Rng rng(seed);
    KeyChooser keys(Distribution::kZipfian, 100'000);
    std::vector<std::uint64_t> out;
    for (int i = 0; i < 1000; ++i) {
      out.push_back(keys.Next(rng));
      out.push_back(static_cast<std::uint64_t>(ops.Next(rng)));
    }
    return out;
  };
  EXPECT_EQ(draw(kSeed), draw(kSeed));
  EXPECT_NE(draw(kSeed), draw(kSeed + 1));
}

TEST(WorkloadKeys, KeysAreZeroPaddedIdsOfTheKeySize) {
  char buf[KeySpace::kKeyBufferSize];
  EXPECT_EQ(KeySpace(16).Format(42, buf), "user000000000042");
  EXPECT_EQ(KeySpace(12).Format(0, buf), "user00000000");
  EXPECT_EQ(KeySpace(12).IdLimit(), 100'000'000U);
  // Byte order is id order (LMDB's scan relies on it).
  std::string a(KeySpace(16).Format(999, buf));
  std::string b(KeySpace(16).Format(1000, buf));
  EXPECT_LT(a, b);
}

}  // namespace
}  // namespace numagrid::bench
