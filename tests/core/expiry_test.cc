// Tests for the background removal of expired entries by the journal
// worker: what expired is removed as a journaled change (so a recovered
// grid does not bring it back and its memory is freed), nothing else is.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "core/base/key_hash.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/recovery.h"
#include "core/stats.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::AllJournaled;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::WorkerThread;

class Expiry : public ::numagrid::testing::JournaledGridTest {
 protected:
  // Records in the index, expired or not.
  std::uint64_t IndexedEntries() {
    std::uint64_t n = 0;
    for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
      n += h_->partition(p).state().counters.live_entries.load();
    }
    return n;
  }
};

TEST_F(Expiry, TheWorkerRemovesExpiredEntriesAsJournaledChanges) {
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(g->Put("short" + std::to_string(i), "v", {.ttl_ms = 1}).ok());
  }
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(g->Put("keep" + std::to_string(i), "v").ok());
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(
        g->Put("long" + std::to_string(i), "v", {.ttl_ms = 3'600'000}).ok());
  }
  // Expired at once for readers, still in the index until the sweep.
  ASSERT_TRUE(PollUntil([&] {
    std::string v;
    return g->Get("short199", &v).code() == StatusCode::kNotFound;
  }));
  EXPECT_EQ(IndexedEntries(), 350u);

  {
    WorkerThread worker(name_);
    EXPECT_TRUE(PollUntil([&] { return IndexedEntries() == 150; }))
        << IndexedEntries() << " entries left in the index";
    ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
    ASSERT_TRUE(worker.Stop().ok());
  }
  EXPECT_EQ(h_->journal_node(0).expired_reclaimed.load(), 200u);
  const GridStatsReport stats = CollectStats(*h_);
  EXPECT_EQ(stats.nodes.at(0).expirations, 200u);
  // Counted per partition, as expirations, not as removes.
  std::uint64_t expirations = 0;
  std::uint64_t counted_removes = 0;
  for (const PartitionStatsRow& p : stats.partitions) {
    expirations += p.expirations;
    counted_removes += p.removes;
  }
  EXPECT_EQ(expirations, 200u);
  EXPECT_EQ(counted_removes, 0u);

  // Each expired entry is a journaled remove, and nothing else was removed.
  const JournalRead j = ReadJournal(dir_.path());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  std::map<std::string, int> removes;
  for (const auto& r : j.records) {
    if (r.op == io::RecordOp::kRemove) ++removes[r.key];
  }
  EXPECT_EQ(removes.size(), 200u);
  for (const auto& [key, n] : removes) {
    EXPECT_EQ(key.rfind("short", 0), 0u) << key << " was removed";
    EXPECT_EQ(n, 1) << key;
  }
  EXPECT_EQ(StateDiff(ModelOf(j.records), ReadGridState(name_)), "");
  auto check = CheckGrid(name_, /*repair=*/false);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE(check->problems.empty()) << check->problems.front();
  EXPECT_EQ(check->live_entries, 150u);
  EXPECT_EQ(check->expired_entries, 0u);

  // A grid rebuilt from the journal holds what this one holds.
  const auto before = ReadGridState(name_);
  h_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto r = RecoverGrid(name_, dir_.path(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->live_entries, 150u);
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
}

TEST_F(Expiry, RemoveExpiredTakesOnlyTheExpiredVersionItWasGiven) {
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  auto old = g->Put("gone", "v", {.ttl_ms = 1});
  ASSERT_TRUE(old.ok());
  auto live = g->Put("live", "v");
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(PollUntil([&] {
    std::string v;
    return g->Get("gone", &v).code() == StatusCode::kNotFound;
  }));
  const std::uint64_t now = NowMs();
  auto remove = [&](std::string_view key, std::uint64_t version) {
    WriteRequest rq;
    rq.kind = WriteKind::kRemoveExpired;
    rq.key = key;
    rq.hash = base::KeyHash(key);
    rq.expected_version = version;
    PartitionRef& part = h_->partition(g->PartitionOfKey(key));
    return part.Write(rq, h_->limits(), now).status();
  };
  EXPECT_EQ(remove("gone", *old + 1).code(), StatusCode::kConflict);
  EXPECT_EQ(remove("live", *live).code(), StatusCode::kNotFound);
  EXPECT_EQ(remove("absent", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(IndexedEntries(), 2u);
  EXPECT_TRUE(remove("gone", *old).ok());
  EXPECT_EQ(IndexedEntries(), 1u);
  EXPECT_EQ(remove("gone", *old).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace numagrid::core
