// Tests of eviction under memory pressure: writers that find no room evict
// in a memory-only grid, the journal worker keeps a journaled grid between
// its watermarks, evictions are journaled (a recovered grid does not bring
// them back), and the grid stays consistent (docs/eviction.md).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "core/evictor.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_config.h"
#include "core/grid_handle.h"
#include "core/recovery.h"
#include "core/stats.h"
#include "numagrid/grid.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::AllJournaled;
using ::numagrid::testing::GridGuard;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WorkerThread;

std::string Value(int i) {
  // 100..400 bytes: several size classes replace each other.
  return std::string(100 + static_cast<std::size_t>(i * 37 % 300), 'v');
}

std::uint64_t Evictions(GridHandle& h) {
  std::uint64_t n = 0;
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    n += h.partition(p).state().counters.evictions.load();
  }
  return n;
}

void ExpectConsistent(const std::string& name) {
  auto check = CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE(check->problems.empty()) << check->problems.front();
}

class MemoryOnlyEviction : public ::testing::Test {
 protected:
  void Create(std::uint32_t policy) {
    name_ = UniqueName("evm");
    guard_.emplace(name_);
    CreateOptions o;
    o.partitions = 4;
    o.memory_bytes = 2ULL << 20;
    o.max_value_bytes = 4096;
    o.bind = false;
    o.eviction.policy = policy;
    auto c = CreateGrid(name_, o, SystemTopology());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto h = GridHandle::Attach(name_);
    ASSERT_TRUE(h.ok());
    h_ = std::move(*h);
  }

  std::string name_;
  std::optional<GridGuard> guard_;
  std::unique_ptr<GridHandle> h_;
};

TEST_F(MemoryOnlyEviction, WithoutAPolicyAFullGridRefusesWritesClearly) {
  Create(kEvictNone);
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  Status refused;
  int written = 0;
  for (int i = 0; i < 100'000 && refused.ok(); ++i, ++written) {
    refused = g->Put("k" + std::to_string(i), Value(i)).status();
  }
  ASSERT_EQ(refused.code(), StatusCode::kResourceExhausted)
      << "wrote " << written << " values into 2 MiB";
  EXPECT_EQ(Evictions(*h_), 0u);
  ExpectConsistent(name_);
}

TEST_F(MemoryOnlyEviction, WritersEvictToMakeRoomAndTheGridStaysWhole) {
  Create(kEvictLru);
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  // About 12 MiB of values through a 2 MiB grid.
  constexpr int kWrites = 50'000;
  for (int i = 0; i < kWrites; ++i) {
    auto r = g->Put("k" + std::to_string(i), Value(i));
    ASSERT_TRUE(r.ok()) << "put " << i << ": " << r.status().ToString();
  }
  const GridStatsReport stats = CollectStats(*h_);
  std::uint64_t entries = 0;
  for (const auto& p : stats.partitions) entries += p.entries;
  EXPECT_EQ(entries + Evictions(*h_), static_cast<std::uint64_t>(kWrites));
  EXPECT_LE(stats.nodes.at(0).used_bytes, h_->config().memory_bytes);
  // The newest writes are there: a writer evicts the least recently used.
  std::string v;
  for (int i = kWrites - 20; i < kWrites; ++i) {
    EXPECT_TRUE(g->Get("k" + std::to_string(i), &v).ok()) << i;
  }
  ExpectConsistent(name_);
}

TEST_F(MemoryOnlyEviction, AFullIndexKeepsTakingNewKeysByEvicting) {
  name_ = UniqueName("evi");
  guard_.emplace(name_);
  CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 4ULL << 20;
  o.max_value_bytes = 4096;
  o.max_entries = 2000;  // the index, not the memory, is the limit
  o.bind = false;
  o.eviction.policy = kEvictLru;
  ASSERT_TRUE(CreateGrid(name_, o, SystemTopology()).ok());
  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok());
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  // Distinct keys only: every write needs a slot, and every eviction
  // leaves a deleted slot behind unless its run can be cleared.
  constexpr int kWrites = 40'000;
  for (int i = 0; i < kWrites; ++i) {
    const std::uint64_t before = Evictions(**h);
    auto r = g->Put("key" + std::to_string(i), "v");
    ASSERT_TRUE(r.ok()) << "put " << i << ": " << r.status().ToString()
                        << " evicted in this put " << Evictions(**h) - before
                        << " (deleted slots: "
                        << (*h)->partition(
                                   g->PartitionOfKey("key" + std::to_string(i)))
                               .state()
                               .counters.deleted_slots.load()
                        << ", evictions " << Evictions(**h) << ")";
  }
  EXPECT_GT(Evictions(**h), 0u);
  ExpectConsistent(name_);
}

// A journaled grid with a worker: it evicts in the background between the
// watermarks; evictions are journaled removes.
class WorkerEviction : public ::numagrid::testing::JournaledGridTest {};

TEST_F(WorkerEviction, TheWorkerKeepsTheNodeBetweenItsWatermarks) {
  EvictionConfig c = LoadEvictionConfig(h_->eviction());
  c.policy = kEvictLru;
  c.high_watermark_pct = 50;
  c.low_watermark_pct = 30;
  ASSERT_TRUE(ChangeEvictionConfig(name_, c).ok());
  Evictor probe(*h_, {0, 1, 2, 3}, 1);  // only to measure
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  {
    WorkerThread worker(name_);
    // Writes past the high watermark (8 MiB grid: ~16 MiB of values).
    // A full change ring (the worker, slow under a sanitizer, did not
    // drain it within the ring wait) is backpressure, not a lack of room:
    // such a write is tried again.
    for (int i = 0; i < 60'000; ++i) {
      auto r = g->Put("k" + std::to_string(i), Value(i));
      for (int retry = 0;
           !r.ok() && retry < 100 &&
           r.status().message().find("change ring full") != std::string::npos;
           ++retry) {
        r = g->Put("k" + std::to_string(i), Value(i));
      }
      ASSERT_TRUE(r.ok()) << "put " << i << ": " << r.status().ToString();
    }
    EXPECT_GT(Evictions(*h_), 0u);
    // Once the writes stop, the worker brings the node below the high
    // watermark (it evicts down to the low one).
    EXPECT_TRUE(PollUntil([&] { return !probe.Measure().Above(50); }))
        << probe.Measure().used_bytes << " of " << probe.Measure().limit_bytes;
    ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
    ASSERT_TRUE(worker.Stop().ok());
  }
  ExpectConsistent(name_);

  // Every eviction is a journaled remove: the journal replayed gives this
  // grid's state, and so does a recovery.
  const JournalRead j = ReadJournal(dir_.path());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  const auto before = ReadGridState(name_);
  EXPECT_EQ(StateDiff(ModelOf(j.records), before), "");
  h_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto r = RecoverGrid(name_, dir_.path(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  // The settings came back with the grid (from the manifest).
  auto settings = ReadEvictionConfig(name_);
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->policy, kEvictLru);
  EXPECT_EQ(settings->high_watermark_pct, 50u);
}

TEST_F(WorkerEviction, IdleEntriesAreRemovedInTheBackground) {
  EvictionConfig c = LoadEvictionConfig(h_->eviction());
  c.max_idle_ms = 50;
  ASSERT_TRUE(ChangeEvictionConfig(name_, c).ok());
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(g->Put("idle" + std::to_string(i), "v").ok());
  }
  WorkerThread worker(name_);
  EXPECT_TRUE(PollUntil([&] {
    std::uint64_t n = 0;
    for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
      n += h_->partition(p).state().counters.live_entries.load();
    }
    return n == 0;
  }));
  EXPECT_EQ(h_->journal_node(0).expired_reclaimed.load(), 100u);
  ASSERT_TRUE(worker.Stop().ok());
}

}  // namespace
}  // namespace numagrid::core
