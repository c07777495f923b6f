// Tests of bench/eviction/cache_sim.h: the exact LRU and Belady caches on
// tiny traces whose hits are worked out by hand, against a naive LRU on a
// longer trace, and the zipfian trace's determinism and skew. Counts only.
#include "bench/eviction/cache_sim.h"

#include <algorithm>
#include <cstdint>
#include <list>
#include <vector>

#include <gtest/gtest.h>

namespace numagrid::bench {
namespace {

TEST(ExactLru, EvictsTheLeastRecentlyUsedId) {
  ExactLru lru(10, 2);
  lru.Put(1);
  lru.Put(2);
  EXPECT_TRUE(lru.Get(1));  // 1 is now more recent than 2
  lru.Put(3);               // evicts 2
  EXPECT_TRUE(lru.Contains(1));
  EXPECT_FALSE(lru.Contains(2));
  EXPECT_TRUE(lru.Contains(3));
  EXPECT_EQ(lru.size(), 2u);
  EXPECT_EQ(lru.evictions(), 1u);
  EXPECT_FALSE(lru.Get(2));  // a miss inserts nothing
  EXPECT_EQ(lru.size(), 2u);
  lru.Put(3);  // already there: refreshed, nothing evicted
  EXPECT_EQ(lru.evictions(), 1u);
}

TEST(ExactLru, CapacityZeroHoldsNothing) {
  ExactLru lru(4, 0);
  lru.Put(1);
  EXPECT_FALSE(lru.Contains(1));
  EXPECT_EQ(lru.size(), 0u);
}

// 1 2 1 3 2 1 with 2 entries. LRU: miss, miss, hit, miss (evicts 2), miss
// (evicts 1), miss (evicts 3): 1 hit. Belady: at the 3 it evicts 1 (next
// used at op 5, after 2 at op 4), so the 2 hits: 2 hits.
TEST(CacheSim, HandWorkedTinyTrace) {
  const std::vector<std::uint32_t> trace = {1, 2, 1, 3, 2, 1};
  const SimResult lru = SimulateLru(trace, 4, 2, 0);
  EXPECT_EQ(lru.gets, 6u);
  EXPECT_EQ(lru.hits, 1u);
  const SimResult opt = SimulateOptimal(trace, 4, 2, 0);
  EXPECT_EQ(opt.gets, 6u);
  EXPECT_EQ(opt.hits, 2u);
}

TEST(CacheSim, CountsOnlyFromMeasureFrom) {
  const std::vector<std::uint32_t> trace = {1, 2, 1, 3, 2, 1};
  const SimResult lru = SimulateLru(trace, 4, 2, 3);
  EXPECT_EQ(lru.gets, 3u);
  EXPECT_EQ(lru.hits, 0u);
  const SimResult opt = SimulateOptimal(trace, 4, 2, 3);
  EXPECT_EQ(opt.gets, 3u);
  EXPECT_EQ(opt.hits, 1u);  // the 2 at op 4
}

// A loop over 4 ids with room for 3: LRU always evicts the id needed next,
// Belady keeps 2 of the other 3 (asymptotically 2 hits in 3).
TEST(CacheSim, CyclicTraceDefeatsLruNotBelady) {
  std::vector<std::uint32_t> trace;
  for (int round = 0; round < 300; ++round) {
    for (std::uint32_t id = 0; id < 4; ++id) trace.push_back(id);
  }
  EXPECT_EQ(SimulateLru(trace, 4, 3, 0).hits, 0u);
  const SimResult opt = SimulateOptimal(trace, 4, 3, 0);
  EXPECT_NEAR(opt.hit_rate(), 2.0 / 3.0, 0.01);
}

TEST(CacheSim, RoomForEveryIdMissesOnlyOnFirstUse) {
  const std::vector<std::uint32_t> trace = {5, 1, 5, 2, 1, 5, 2, 0};
  EXPECT_EQ(SimulateLru(trace, 8, 4, 0).hits, 4u);  // 8 ops, 4 distinct
  EXPECT_EQ(SimulateOptimal(trace, 8, 4, 0).hits, 4u);
  EXPECT_EQ(SimulateLru(trace, 8, 0, 0).hits, 0u);
  EXPECT_EQ(SimulateOptimal(trace, 8, 0, 0).hits, 0u);
}

// The array-based LRU against a plain std::list one, on a zipfian trace.
TEST(CacheSim, LruMatchesANaiveLruAndBeladyBoundsIt) {
  constexpr std::uint32_t kKeys = 500;
  const std::vector<std::uint32_t> trace = ZipfianTrace(kKeys, 20000, 0.9, 7);
  for (std::uint64_t capacity : {1u, 10u, 50u, 200u}) {
    std::list<std::uint32_t> naive;  // most recent first
    std::uint64_t hits = 0;
    for (std::uint32_t id : trace) {
      auto it = std::find(naive.begin(), naive.end(), id);
      if (it != naive.end()) {
        ++hits;
        naive.erase(it);
      } else if (naive.size() == capacity) {
        naive.pop_back();
      }
      naive.push_front(id);
    }
    const SimResult lru = SimulateLru(trace, kKeys, capacity, 0);
    EXPECT_EQ(lru.hits, hits) << "capacity " << capacity;
    EXPECT_GE(SimulateOptimal(trace, kKeys, capacity, 0).hits, lru.hits)
        << "capacity " << capacity;
  }
}

TEST(ZipfianTrace, IsReproducibleInRangeAndSkewed) {
  const std::vector<std::uint32_t> a = ZipfianTrace(1000, 50000, 0.99, 42);
  EXPECT_EQ(a, ZipfianTrace(1000, 50000, 0.99, 42));
  EXPECT_NE(a, ZipfianTrace(1000, 50000, 0.99, 43));
  std::vector<std::uint64_t> count(1000, 0);
  for (std::uint32_t id : a) {
    ASSERT_LT(id, 1000u);
    ++count[id];
  }
  // Rank r is id r: id 0 is the most popular, well ahead of id 10.
  EXPECT_EQ(std::max_element(count.begin(), count.end()) - count.begin(), 0);
  EXPECT_GT(count[0], 5 * count[10]);
}

}  // namespace
}  // namespace numagrid::bench
