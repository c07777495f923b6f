// Tests of what each eviction policy chooses: the access word's arithmetic,
// the ranks, and on a one-partition grid small enough that the sample is
// the whole index, exactly which entries go (docs/eviction.md).
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/key_hash.h"
#include "core/evictor.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_config.h"
#include "core/grid_handle.h"
#include "core/record_access.h"
#include "numagrid/grid.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::GridGuard;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::UniqueName;

std::uint64_t SplitMix(std::uint64_t* s) {
  std::uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

TEST(AccessWord, PacksTimeAndCounter) {
  const std::uint64_t w = PackAccess(1'700'000'000'123ULL, 42);
  EXPECT_EQ(AccessMs(w), 1'700'000'000'123ULL);
  EXPECT_EQ(AccessLfu(w), 42u);
  EXPECT_EQ(AccessLfu(PackAccess(1, 1000)), kLfuMax);  // saturates
}

TEST(AccessWord, TouchKeepsTheWordWhenNothingChanges) {
  const std::uint64_t w = PackAccess(5000, kLfuInit);
  EXPECT_EQ(Touched(w, 5000, false, 0), w);  // same ms: no store needed
  EXPECT_EQ(Touched(w, 4000, false, 0), w);  // a clock step back: neither
  const std::uint64_t later = Touched(w, 6000, false, 0);
  EXPECT_EQ(AccessMs(later), 6000u);
  EXPECT_EQ(AccessLfu(later), kLfuInit);  // LRU leaves the counter alone
}

TEST(AccessWord, LfuCounterGrowsLogarithmically) {
  std::uint64_t seed = 7;
  std::uint64_t w = PackAccess(1000, kLfuInit);
  std::map<int, std::uint32_t> at;
  for (int i = 1; i <= 1'000'000; ++i) {
    const std::uint32_t before = AccessLfu(w);
    w = Touched(w, 1000, true, SplitMix(&seed));
    ASSERT_GE(AccessLfu(w), before);  // never shrinks without idle time
    if (i == 10 || i == 100 || i == 10'000 || i == 1'000'000) {
      at[i] = AccessLfu(w);
    }
  }
  // Redis's figures for factor 10 (counter above its initial value):
  // 10 hits ~ 5, 100 ~ 10, 10k ~ 50, 1M ~ 250: ordered, spread, unsaturated
  // early.
  EXPECT_LT(at[10], at[100]);
  EXPECT_LT(at[100], at[10'000]);
  EXPECT_LE(at[100], kLfuInit + 20);
  EXPECT_GE(at[10'000], kLfuInit + 25);
  EXPECT_GT(at[1'000'000], at[10'000]);
}

TEST(AccessWord, LfuCounterDecaysOnePerIdleMinute) {
  const std::uint64_t w = PackAccess(0, 10);
  EXPECT_EQ(DecayedLfu(w, kLfuDecayMs - 1), 10u);
  EXPECT_EQ(DecayedLfu(w, 3 * kLfuDecayMs), 7u);
  EXPECT_EQ(DecayedLfu(w, 100 * kLfuDecayMs), 0u);
}

TEST(AccessWord, IdleExpiryNeedsMoreThanTheLimit) {
  const std::uint64_t w = PackAccess(1000, kLfuInit);
  EXPECT_FALSE(IdleExpired(w, 1500, 0));  // 0: no max-idle
  EXPECT_FALSE(IdleExpired(w, 1500, 500));
  EXPECT_TRUE(IdleExpired(w, 1501, 500));
}

// A one-partition memory-only grid whose index (16 slots) fits in the
// sample, so that every eviction is exact.
class PolicyChoice : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueName("ev");
    guard_.emplace(name_);
    CreateOptions o;
    o.partitions = 1;
    o.memory_bytes = 4ULL << 20;
    o.max_value_bytes = 4096;
    o.max_entries = 10;
    o.bind = false;
    o.eviction.policy = kEvictLru;
    o.eviction.samples = 16;
    auto c = CreateGrid(name_, o, SystemTopology());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto h = GridHandle::Attach(name_);
    ASSERT_TRUE(h.ok());
    h_ = std::move(*h);
    ASSERT_EQ(h_->partition(0).index_slots(), 16u);
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok());
    g_.emplace(std::move(*g));
  }

  void SetPolicy(std::uint32_t policy) {
    EvictionConfig c = LoadEvictionConfig(h_->eviction());
    c.policy = policy;
    ASSERT_TRUE(ChangeEvictionConfig(name_, c).ok());
  }

  void SetAccess(const std::string& key, std::uint64_t word) {
    GridHandle::EpochGuard pin(*h_);
    auto r = h_->partition(0).Find(key, base::KeyHash(key), 1);
    ASSERT_TRUE(r.ok()) << key;
    r->access().store(word);
  }

  std::uint64_t AccessOf(const std::string& key) {
    GridHandle::EpochGuard pin(*h_);
    auto r = h_->partition(0).Find(key, base::KeyHash(key), 1);
    return r.ok() ? r->access().load() : 0;
  }

  std::vector<std::string> Present(int n) {
    std::vector<std::string> keys;
    for (int i = 0; i < n; ++i) {
      std::string v;
      if (g_->Get(Key(i), &v).ok()) keys.push_back(Key(i));
    }
    return keys;
  }

  // Evicts n entries the way a writer does, and checks the count.
  void EvictFromPartition(std::uint64_t n, std::uint64_t seed = 1) {
    Evictor ev(*h_, {0}, seed);
    EXPECT_EQ(ev.EvictFrom(0, n, h_->limits()), n);
  }

  static std::string Key(int i) { return "k" + std::to_string(i); }

  std::string name_;
  std::optional<GridGuard> guard_;
  std::unique_ptr<GridHandle> h_;
  std::optional<Grid> g_;
};

TEST_F(PolicyChoice, LruEvictsTheLeastRecentlyUsed) {
  const std::uint64_t now = NowMs();
  const int order[10] = {7, 2, 9, 0, 5, 1, 8, 3, 6, 4};  // oldest first
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(g_->Put(Key(i), "v").ok());
  for (int rank = 0; rank < 10; ++rank) {
    SetAccess(Key(order[rank]),
              PackAccess(now - 100'000 + rank * 1000, kLfuInit));
  }
  EvictFromPartition(3);
  const std::vector<std::string> want = {"k0", "k1", "k3", "k4",
                                         "k5", "k6", "k8"};
  EXPECT_EQ(Present(10), want);
  EXPECT_EQ(h_->partition(0).state().counters.evictions.load(), 3u);
  EXPECT_EQ(h_->partition(0).state().counters.removes.load(), 0u);
}

TEST_F(PolicyChoice, ReadsMakeAnEntryRecentUnderLru) {
  const std::uint64_t old = NowMs() - 100'000;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(g_->Put(Key(i), "v").ok());
    SetAccess(Key(i), PackAccess(old + i, kLfuInit));
  }
  // Reads of the seven oldest: they become the newest.
  for (int i = 0; i < 7; ++i) {
    std::string v;
    ASSERT_TRUE(g_->Get(Key(i), &v).ok());
    EXPECT_GT(AccessMs(AccessOf(Key(i))), old + 50'000) << Key(i);
  }
  EvictFromPartition(3);
  const std::vector<std::string> want = {"k0", "k1", "k2", "k3",
                                         "k4", "k5", "k6"};
  EXPECT_EQ(Present(10), want);
}

TEST_F(PolicyChoice, LfuEvictsTheLeastFrequentlyUsed) {
  SetPolicy(kEvictLfu);
  const std::uint64_t now = NowMs();
  const std::uint32_t counts[10] = {30, 6, 40, 7, 50, 60, 5, 70, 80, 90};
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(g_->Put(Key(i), "v").ok());
    // The rarely used are also the most recent: LFU must not care.
    SetAccess(Key(i), PackAccess(now - counts[i], counts[i]));
  }
  EvictFromPartition(3);
  const std::vector<std::string> want = {"k0", "k2", "k4", "k5",
                                         "k7", "k8", "k9"};
  EXPECT_EQ(Present(10), want);
}

TEST_F(PolicyChoice, LfuCountsReads) {
  SetPolicy(kEvictLfu);
  ASSERT_TRUE(g_->Put("hot", "v").ok());
  std::string v;
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(g_->Get("hot", &v).ok());
  EXPECT_GT(AccessLfu(AccessOf("hot")), kLfuInit + 5);
}

TEST_F(PolicyChoice, TtlFirstEvictsExpiredThenSoonestThenLeastRecent) {
  SetPolicy(kEvictTtlFirst);
  const std::uint64_t hour = 3'600'000;
  ASSERT_TRUE(g_->Put(Key(0), "v", {.ttl_ms = 5 * hour}).ok());
  ASSERT_TRUE(g_->Put(Key(1), "v", {.ttl_ms = 2 * hour}).ok());
  ASSERT_TRUE(g_->Put(Key(2), "v", {.ttl_ms = 9 * hour}).ok());
  ASSERT_TRUE(g_->Put(Key(3), "v", {.ttl_ms = 1}).ok());  // expires at once
  ASSERT_TRUE(g_->Put(Key(4), "v", {.ttl_ms = 3 * hour}).ok());
  for (int i = 5; i < 10; ++i) ASSERT_TRUE(g_->Put(Key(i), "v").ok());
  ASSERT_TRUE(::numagrid::testing::PollUntil([&] {
    std::string v;
    return !g_->Get(Key(3), &v).ok();
  }));
  EvictFromPartition(3);  // k3 (expired), k1 (2 h), k4 (3 h)
  std::vector<std::string> want = {"k0", "k2", "k5", "k6", "k7", "k8", "k9"};
  EXPECT_EQ(Present(10), want);
  // Without a TTL left among the rest but k0 and k2, those go next, then
  // the least recently used of the others.
  const std::uint64_t now = NowMs();
  for (int i = 5; i < 10; ++i) {
    SetAccess(Key(i), PackAccess(now - 1000 * (10 - i), kLfuInit));
  }
  EvictFromPartition(3);  // k0, k2, then k5 (the oldest access)
  want = {"k6", "k7", "k8", "k9"};
  EXPECT_EQ(Present(10), want);
}

TEST_F(PolicyChoice, RandomEvictsAnyEntryAndExactlyAsMany) {
  SetPolicy(kEvictRandom);
  std::map<std::string, int> evicted;
  for (std::uint64_t trial = 0; trial < 40; ++trial) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(g_->Put(Key(i), "v").ok());
    EvictFromPartition(3, trial + 1);
    const auto left = Present(10);
    ASSERT_EQ(left.size(), 7u);
    for (int i = 0; i < 10; ++i) {
      if (std::find(left.begin(), left.end(), Key(i)) == left.end()) {
        ++evicted[Key(i)];
      }
    }
  }
  // 120 evictions over 10 keys: each key chosen sometimes (a key never
  // chosen in 40 trials has probability 0.7^40 ~ 6e-7 per key).
  EXPECT_EQ(evicted.size(), 10u);
}

TEST_F(PolicyChoice, NoneEvictsNothing) {
  SetPolicy(kEvictNone);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(g_->Put(Key(i), "v").ok());
  Evictor ev(*h_, {0}, 1);
  EXPECT_EQ(ev.EvictFrom(0, 3, h_->limits()), 0u);
  EXPECT_EQ(ev.Run(100, h_->limits()), 0u);
  EXPECT_EQ(Present(10).size(), 10u);
}

TEST_F(PolicyChoice, AFullIndexEvictsForANewKeyOnlyWithAPolicy) {
  // 16 slots keep 14 entries (7/8); the 15th new key needs an eviction.
  for (int i = 0; i < 14; ++i) ASSERT_TRUE(g_->Put(Key(i), "v").ok());
  SetPolicy(kEvictNone);
  auto refused = g_->Put("one-more", "v");
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("index full"), std::string::npos)
      << refused.status().ToString();
  SetPolicy(kEvictLru);
  EXPECT_TRUE(g_->Put("one-more", "v").ok());
  std::string v;
  EXPECT_TRUE(g_->Get("one-more", &v).ok());
  EXPECT_GT(h_->partition(0).state().counters.evictions.load(), 0u);
  auto check = CheckGrid(name_, /*repair=*/false);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->problems.empty()) << check->problems.front();
}

TEST_F(PolicyChoice, IdleEntriesAreInvisibleAndMayBeWrittenAgain) {
  EvictionConfig c = LoadEvictionConfig(h_->eviction());
  c.max_idle_ms = 3'600'000;
  ASSERT_TRUE(ChangeEvictionConfig(name_, c).ok());
  ASSERT_TRUE(g_->Put("idle", "old").ok());
  ASSERT_TRUE(g_->Put("busy", "v").ok());
  SetAccess("idle", PackAccess(NowMs() - 2 * 3'600'000, kLfuInit));
  std::string v;
  EXPECT_EQ(g_->Get("idle", &v).code(), StatusCode::kNotFound);
  EXPECT_TRUE(g_->Get("busy", &v).ok());
  int scanned = 0;
  ASSERT_TRUE(
      g_->Scan([&](std::string_view k, std::string_view, std::uint64_t) {
          EXPECT_NE(k, "idle");
          ++scanned;
          return true;
        }).ok());
  EXPECT_EQ(scanned, 1);
  // Absent for writers too: an insert succeeds, and the entry is fresh.
  EXPECT_TRUE(g_->Insert("idle", "new").ok());
  EXPECT_TRUE(g_->Get("idle", &v).ok());
  EXPECT_EQ(v, "new");
}

TEST_F(PolicyChoice, DefaultTtlAppliesToWritesWithoutOne) {
  EvictionConfig c = LoadEvictionConfig(h_->eviction());
  c.default_ttl_ms = 3'600'000;
  ASSERT_TRUE(ChangeEvictionConfig(name_, c).ok());
  const std::uint64_t before = NowMs();
  ASSERT_TRUE(g_->Put("defaulted", "v").ok());
  ASSERT_TRUE(g_->Put("own", "v", {.ttl_ms = 60'000}).ok());
  GridHandle::EpochGuard pin(*h_);
  auto d = h_->partition(0).Find("defaulted", base::KeyHash("defaulted"), 1);
  ASSERT_TRUE(d.ok());
  // NowMs is a coarse clock: allow a few ms of skew between the two reads.
  EXPECT_GE(d->expire_at_ms() + 50, before + 3'600'000);
  EXPECT_LE(d->expire_at_ms(), NowMs() + 3'600'000 + 50);
  auto own = h_->partition(0).Find("own", base::KeyHash("own"), 1);
  ASSERT_TRUE(own.ok());
  EXPECT_LE(own->expire_at_ms(), NowMs() + 60'000 + 50);
}

TEST(EvictionConfigCheck, RefusesBadSettings) {
  EvictionConfig c;
  EXPECT_TRUE(ValidateEvictionConfig(c, 100).ok());
  c.low_watermark_pct = 95;
  EXPECT_EQ(ValidateEvictionConfig(c, 100).code(),
            StatusCode::kInvalidArgument);
  c = {};
  c.high_watermark_pct = 101;
  EXPECT_FALSE(ValidateEvictionConfig(c, 100).ok());
  c = {};
  c.samples = 0;
  EXPECT_FALSE(ValidateEvictionConfig(c, 100).ok());
  c = {};
  c.max_entries = 101;
  EXPECT_FALSE(ValidateEvictionConfig(c, 100).ok());
  EXPECT_FALSE(ParseEvictionPolicy("lru2").ok());
  for (std::uint32_t p = 0; p < kEvictPolicyCount; ++p) {
    auto back = ParseEvictionPolicy(EvictionPolicyName(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
}

TEST(EvictionConfigCheck, HalfChangedSettingsAreClampedOnLoad) {
  EvictionSettings s{};
  EvictionConfig c;
  StoreEvictionConfig(s, c);
  s.low_watermark_pct.store(95);  // as if a change stopped half-way
  s.samples.store(0);
  const EvictionConfig got = LoadEvictionConfig(s);
  EXPECT_LT(got.low_watermark_pct, got.high_watermark_pct);
  EXPECT_GE(got.samples, 1u);
}

}  // namespace
}  // namespace numagrid::core
