// Tests of eviction under memory pressure: writers that find no room evict
// in a memory-only grid, the journal worker keeps a journaled grid between
// its watermarks, evictions are journaled (a recovered grid does not bring
// them back), and the grid stays consistent (docs/eviction.md).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

// A writer whose own partition holds nothing, on a node whose chunks all
// belong to another partition that holds only removed records a reader's
// pinned epoch keeps from being freed: the write waits for the reader (up
// to the ring wait) instead of being refused at once. Until it looked at
// the node's retired bytes, the writer gave up as soon as its own
// partition had none.
TEST_F(MemoryOnlyEviction, AWriterWaitsForRoomAReaderHoldsInAnotherPartition) {
  name_ = UniqueName("evr");
  guard_.emplace(name_);
  CreateOptions o;
  o.partitions = 2;
  o.memory_bytes = 1ULL << 20;
  o.max_value_bytes = 4096;
  o.ring_capacity = 4096;  // every remove below fits while reclaim is held
  o.ring_wait_ms = 20'000;
  o.bind = false;
  o.eviction.policy = kEvictLru;
  ASSERT_TRUE(CreateGrid(name_, o, SystemTopology()).ok());
  auto attached = GridHandle::Attach(name_);
  ASSERT_TRUE(attached.ok());
  h_ = std::move(*attached);
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());

  // Partition 1 takes every chunk of the node; partition 0 none.
  const std::string value(3000, 'v');
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 2000; ++i) {
    std::string k = "k" + std::to_string(i);
    if (g->PartitionOfKey(k) == 1) keys.push_back(std::move(k));
  }
  std::vector<std::string> written;
  for (const std::string& k : keys) {
    ASSERT_TRUE(g->Put(k, value).ok()) << k;
    written.push_back(k);
  }
  const PartitionState& p0 = h_->partition(0).state();
  const PartitionState& p1 = h_->partition(1).state();
  ASSERT_EQ(p0.counters.chunk_bytes.load(), 0u);
  ASSERT_GT(p1.counters.evictions.load(), 0u) << "partition 1 never filled";

  // A reader pins its epoch; partition 1's entries are all removed, so its
  // chunks hold only records waiting for that reader.
  std::atomic<bool> release{false};
  std::atomic<bool> pinned{false};
  std::thread reader([&] {
    GridHandle::EpochGuard pin(*h_);
    pinned.store(true);
    while (!release.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  while (!pinned.load()) std::this_thread::yield();
  for (const std::string& k : written) {
    const Status s = g->Remove(k);
    ASSERT_TRUE(s.ok() || s.code() == StatusCode::kNotFound) << s.ToString();
  }
  ASSERT_GT(p1.counters.retired_bytes.load(), 0u);

  // The reader lets go a little later, from another thread.
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    release.store(true);
  });
  std::string p0_key;
  for (int i = 0; p0_key.empty(); ++i) {
    std::string k = "n" + std::to_string(i);
    if (g->PartitionOfKey(k) == 0) p0_key = k;
  }
  const auto put = g->Put(p0_key, value);
  releaser.join();
  reader.join();
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  std::string v;
  EXPECT_TRUE(g->Get(p0_key, &v).ok());
  EXPECT_EQ(v, value);
  ExpectConsistent(name_);
}

// A value that takes a run of whole chunks, written into a partition that
// holds nothing, on a node whose chunks all hold small records of the other
// partitions: the writer empties the run of neighbouring chunks that holds
// the fewest bytes and writes there, evicting little more than that run.
// Emptying the chunks closest to empty, one at a time wherever they lie,
// made no run of 9 in time (the write was refused).
TEST_F(MemoryOnlyEviction, AValueOfManyChunksFindsARunOnAFullNode) {
  name_ = UniqueName("evl");
  guard_.emplace(name_);
  CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 4ULL << 20;
  o.max_value_bytes = 1U << 20;  // chunks of 128 KiB, small blocks to 16 KiB
  o.bind = false;
  o.eviction.policy = kEvictLru;
  ASSERT_TRUE(CreateGrid(name_, o, SystemTopology()).ok());
  auto attached = GridHandle::Attach(name_);
  ASSERT_TRUE(attached.ok());
  h_ = std::move(*attached);
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  const std::uint64_t chunk = h_->partition(0).node().chunk_bytes;
  ASSERT_EQ(chunk, 128u << 10);

  // Partitions 1 to 3 fill the node with 2000-byte values, in turns.
  const std::string small(2000, 's');
  for (int i = 0; Evictions(*h_) < 500; ++i) {
    const std::string k = "k" + std::to_string(i);
    if (g->PartitionOfKey(k) == 0) continue;
    ASSERT_TRUE(g->Put(k, small).ok()) << k;
    ASSERT_LT(i, 100'000) << "the node never filled";
  }
  ASSERT_EQ(h_->partition(0).state().counters.chunk_bytes.load(), 0u);

  std::string big_key;
  for (int i = 0; big_key.empty(); ++i) {
    std::string k = "big" + std::to_string(i);
    if (g->PartitionOfKey(k) == 0) big_key = k;
  }
  const std::string big(1U << 20, 'B');
  const std::uint64_t before = Evictions(*h_);
  const auto put = g->Put(big_key, big);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  std::string v;
  ASSERT_TRUE(g->Get(big_key, &v).ok());
  EXPECT_EQ(v, big);
  // A run of 9 chunks (1 MiB and the record's header) holds at most about
  // 9 * 128 KiB / 2 KiB = 576 such entries; allow two chunks more.
  const std::uint64_t per_chunk = chunk / 2048;
  std::cout << "[ run      ] " << Evictions(*h_) - before
            << " entries evicted for one value of 9 chunks\n";
  EXPECT_LE(Evictions(*h_) - before, 11 * per_chunk);
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

// Two workers of one node (`create --workers-per-node 2`): each evicts only
// the partitions of its own journal stream, both against the node's
// watermarks. Together they keep the node between them: below the high
// one once the writes stop, and not far below the low one (each measures
// again only every 16 victims, docs/adr/0008-journal-streams.md).
TEST(WorkerEvictionStreams, TwoWorkersOfANodeKeepItBetweenItsWatermarks) {
  ::numagrid::testing::TempDir dir;
  const std::string name = UniqueName("evs");
  GridGuard guard(name);
  CreateOptions o = ::numagrid::testing::JournaledOptions(dir.path());
  o.workers_per_node = 2;
  o.eviction.policy = kEvictLru;
  o.eviction.high_watermark_pct = 50;
  o.eviction.low_watermark_pct = 30;
  ASSERT_TRUE(CreateGrid(name, o, SystemTopology()).ok());
  auto attached = GridHandle::Attach(name);
  ASSERT_TRUE(attached.ok());
  GridHandle& h = **attached;
  ASSERT_EQ(h.stream_count(), 2u);
  std::vector<std::uint32_t> all(h.partition_count());
  for (std::uint32_t p = 0; p < all.size(); ++p) all[p] = p;
  Evictor probe(h, all, 1);  // only to measure
  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok());
  {
    std::vector<std::unique_ptr<WorkerThread>> workers;
    for (std::uint32_t s = 0; s < 2; ++s) {
      JournalWorkerOptions w;
      w.node = 0;
      w.stream = s;
      workers.push_back(std::make_unique<WorkerThread>(name, w));
    }
    // About 16 MiB of values through an 8 MiB grid; a full change ring is
    // backpressure (a slow worker under a sanitizer), tried again.
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
    EXPECT_TRUE(PollUntil([&] { return !probe.Measure().Above(50); }))
        << probe.Measure().used_bytes << " of " << probe.Measure().limit_bytes;
    ASSERT_TRUE(PollUntil([&] { return AllJournaled(h); }));
    for (auto& w : workers) ASSERT_TRUE(w->Stop().ok());
  }
  // Both streams' partitions had entries evicted (by their stream's
  // worker, or by a writer that found no room).
  std::map<std::uint32_t, std::uint64_t> evicted;  // by stream
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    evicted[h.stream_of(p)] += h.partition(p).state().counters.evictions.load();
  }
  ASSERT_EQ(evicted.size(), 2u);
  for (const auto& [stream, n] : evicted) {
    EXPECT_GT(n, 0u) << "stream " << stream << " evicted nothing";
  }
  const MemoryPressure m = probe.Measure();
  std::cout << "[ streams  ] used " << m.used_bytes << " of " << m.limit_bytes
            << " bytes at the end\n";
  // Not far below the low watermark. Each worker evicts at most 16 victims
  // past it; and the measure counts evicted and replaced records that are
  // not yet freed, at most the change rings' worth: each record a block
  // of at most 512 bytes (Value: 100 to 400 bytes).
  const std::uint64_t ring_records =
      std::uint64_t{h.partition_count()} * o.ring_capacity;
  EXPECT_GE(m.used_bytes + (2 * 16 + ring_records) * 512,
            m.limit_bytes * 30 / 100)
      << m.used_bytes << " of " << m.limit_bytes;
  ExpectConsistent(name);
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
