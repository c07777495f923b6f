// Several journal streams per node (`create --workers-per-node K`,
// docs/adr/0008-journal-streams.md): the partition-to-stream map, the
// control segment's size, option validation, and a round trip through one
// worker per stream and recovery, in process.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/event_log.h"
#include "core/event_log_layout.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
#include "core/journal_worker.h"
#include "core/prometheus_format.h"
#include "core/recovery.h"
#include "core/snapshot.h"
#include "core/stats.h"
#include "io/node_file_name.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "tests/support/cli_child.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::CliRun;
using ::numagrid::testing::Describe;
using ::numagrid::testing::GridGuard;
using ::numagrid::testing::JournaledOptions;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WorkerThread;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kCli = NUMAGRID_CLI;

CliRun Cli(const std::vector<std::string>& args, const std::string& dir) {
  return ::numagrid::testing::RunCli(kCli, args, dir);
}

numa::Topology TwoNodes() {
  auto t = numa::Topology::FromSynthetic("pack:2 numa:1 core:2 pu:1");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(*t);
}

TEST(JournalStreams, APartitionsStreamIsItsSlotInTheNodeModK) {
  EXPECT_EQ(StreamOfSlot(0, 1), 0U);
  EXPECT_EQ(StreamOfSlot(5, 1), 0U);
  EXPECT_EQ(StreamOfSlot(0, 2), 0U);
  EXPECT_EQ(StreamOfSlot(1, 2), 1U);
  EXPECT_EQ(StreamOfSlot(2, 2), 0U);
  EXPECT_EQ(StreamOfSlot(7, 3), 1U);
  EXPECT_EQ(StreamOfSlot(8, 8), 0U);
}

TEST(JournalStreams, TheControlSegmentHoldsAStateForEveryStream) {
  EXPECT_EQ(EventLogOffset(1), sizeof(JournalBlock) + sizeof(JournalNodeState));
  EXPECT_EQ(EventLogOffset(2 * 4), 384U + 8U * 192U);
  EXPECT_EQ(JournalBlockBytes(2 * 4), 384U + 8U * 192U + sizeof(EventLog));
  JournalConfig c{};
  EXPECT_EQ(StreamsPerNode(c), 1U) << "a block of an older build reads as 1";
  c.streams_per_node = 4;
  EXPECT_EQ(StreamsPerNode(c), 4U);
}

TEST(JournalStreams, WorkersPerNodeOutside1To8OrWithoutAJournalIsRefused) {
  TempDir dir;
  const std::string name = UniqueName("wpn");
  GridGuard guard(name);
  for (std::uint32_t k : {0U, 9U, 64U}) {
    CreateOptions o = JournaledOptions(dir.path());
    o.workers_per_node = k;
    auto r = CreateGrid(name, o, TwoNodes());
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("--workers-per-node"));
  }
  CreateOptions mem;
  mem.partitions = 4;
  mem.memory_bytes = 8ULL << 20;
  mem.workers_per_node = 2;
  auto r = CreateGrid(name, mem, TwoNodes());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("needs a journal"));
}

class StreamGrid : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueName("streams");
    guard_.emplace(name_);
    CreateOptions o = JournaledOptions(dir_.path());
    o.partitions = 8;
    o.workers_per_node = 2;
    auto c = CreateGrid(name_, o, TwoNodes());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }

  TempDir dir_;
  std::string name_;
  std::optional<GridGuard> guard_;
};

TEST_F(StreamGrid, EveryStreamJournalsADisjointShareOfItsNodesPartitions) {
  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ((*h)->streams_per_node(), 2U);
  EXPECT_EQ((*h)->stream_count(), 4U);
  const std::vector<std::uint32_t> ids = (*h)->stream_ids();
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{
                     io::StreamId(0, 0), io::StreamId(0, 1), io::StreamId(1, 0),
                     io::StreamId(1, 1)}));
  std::set<const JournalNodeState*> states;
  for (std::uint32_t id : ids) states.insert(&(*h)->journal_node(id));
  EXPECT_EQ(states.size(), 4U) << "each stream has a state of its own";
  std::map<std::uint32_t, std::vector<std::uint32_t>> by_stream;
  std::map<std::uint32_t, std::uint32_t> slot;  // next slot per node
  for (std::uint32_t p = 0; p < 8; ++p) {
    const std::uint32_t node = (*h)->node_of(p);
    const std::uint32_t s = slot[node]++;
    EXPECT_EQ((*h)->stream_of(p), io::StreamId(node, s % 2))
        << "partition " << p;
    by_stream[(*h)->stream_of(p)].push_back(p);
  }
  ASSERT_EQ(by_stream.size(), 4U);
  for (const auto& [id, parts] : by_stream) {
    EXPECT_EQ(parts.size(), 2U) << io::StreamLabel(id);
  }
  auto info = InspectGrid(name_, nullptr);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->workers_per_node, 2U);
  auto m = ReadManifest(dir_.path());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->streams_per_node, 2U);
  // A build that knows only one stream per node refuses format 2.
  EXPECT_THAT(::numagrid::testing::ReadFileBytes(dir_.path() + "/grid.conf"),
              HasSubstr("\nformat=2\n"));
}

TEST_F(StreamGrid,
       AWorkerPerStreamMakesSyncWritesDurableAndRecoveryRebuildsThem) {
  {
    std::vector<std::unique_ptr<WorkerThread>> workers;
    for (std::uint32_t n = 0; n < 2; ++n) {
      for (std::uint32_t s = 0; s < 2; ++s) {
        JournalWorkerOptions o;
        o.node = n;
        o.stream = s;
        workers.push_back(std::make_unique<WorkerThread>(name_, o));
      }
    }
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    std::set<std::uint32_t> partitions;
    for (int i = 0; i < 200; ++i) {
      const std::string key = "key" + std::to_string(i);
      partitions.insert(g->PartitionOfKey(key));
      auto put = g->Put(key, "v" + std::to_string(i),
                        WriteOptions{.durability = Durability::kSync});
      ASSERT_TRUE(put.ok()) << key << ": " << put.status().ToString();
      if (i % 3 == 0) {
        auto rm = g->Remove(key, WriteOptions{.durability = Durability::kSync});
        ASSERT_TRUE(rm.ok()) << key << ": " << rm.ToString();
      }
      if (i == 99) {
        // Half way: each stream's worker snapshots its own partitions, so
        // that recovery loads four snapshots and the journals after them.
        auto h = GridHandle::Attach(name_);
        ASSERT_TRUE(h.ok());
        auto snaps = SnapshotGrid(**h, {});
        ASSERT_TRUE(snaps.ok()) << snaps.status().ToString();
        ASSERT_EQ(snaps->size(), 4U);
        std::set<std::string> files;
        for (const auto& r : *snaps) {
          EXPECT_TRUE(r.by_worker);
          EXPECT_GT(r.entries, 0U) << r.path;
          files.insert(r.path.substr(r.path.rfind('/') + 1, 12));
        }
        EXPECT_EQ(files,
                  (std::set<std::string>{"snapshot-0-0", "snapshot-0.1",
                                         "snapshot-1-0", "snapshot-1.1"}));
      }
    }
    EXPECT_EQ(partitions.size(), 8U) << "the writes must reach every stream";
    for (auto& w : workers) EXPECT_TRUE(w->Stop().ok());
  }
  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok());
  for (std::uint32_t id : (*h)->stream_ids()) {
    const JournalRead j = ReadJournal(dir_.path(), id);
    ASSERT_TRUE(j.status.ok()) << j.status.ToString();
    EXPECT_FALSE(j.records.empty()) << io::StreamLabel(id);
    for (const auto& r : j.records) {
      EXPECT_EQ((*h)->stream_of(r.partition), id)
          << "partition " << r.partition << " in " << io::StreamLabel(id);
    }
  }
  h->reset();
  const auto live = ReadGridState(name_);
  EXPECT_EQ(live.size(), 133U);
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto rec = RecoverGrid(name_, dir_.path(), TwoNodes(), {});
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->snapshots_used.size(), 4U) << "one per stream";
  EXPECT_EQ(StateDiff(live, ReadGridState(name_)), "");
  auto again = GridHandle::Attach(name_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->streams_per_node(), 2U) << "recovery keeps the streams";
}

TEST_F(StreamGrid, AWorkerOfAStreamTheGridHasNotIsRefused) {
  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok());
  JournalWorkerOptions o;
  o.node = 0;
  o.stream = 2;
  const Status s = RunJournalWorker(**h, o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("2 journal stream(s) per node"));
}

TEST(JournalStreams, CreateRefusesWorkersPerNodeOutOfRangeOrWithoutAJournal) {
  TempDir scratch;
  const std::string name = UniqueName("wpncli");
  GridGuard guard(name);
  for (const char* k : {"0", "9", "two"}) {
    const CliRun r = Cli({"create", name, "--memory", "8MiB", "--journal-dir",
                          scratch.path() + "/j", "--workers-per-node", k},
                         scratch.path());
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("--workers-per-node")) << Describe(r);
  }
  const CliRun mem = Cli({"create", name, "--memory", "8MiB", "--no-journal",
                          "--workers-per-node", "2"},
                         scratch.path());
  EXPECT_EQ(mem.exit_code, 2) << Describe(mem);
  EXPECT_THAT(mem.err, HasSubstr("contradicts --no-journal"));
  EXPECT_FALSE(InspectGrid(name, nullptr).ok()) << "nothing was created";
}

TEST(JournalStreams, EventsNameTheStreamAfterTheFirst) {
  GridEvent e;
  e.kind = EventKind::kWorkerRestarted;
  e.node = static_cast<std::int32_t>(io::StreamId(1, 0));
  EXPECT_THAT(EventJson(e, "g"), HasSubstr("\"node\":1"));
  EXPECT_THAT(EventJson(e, "g"), Not(HasSubstr("stream")));
  e.node = static_cast<std::int32_t>(io::StreamId(1, 3));
  EXPECT_THAT(EventJson(e, "g"), HasSubstr("\"node\":1,\"stream\":3"));
}

TEST_F(StreamGrid, StatusStatsAndPrometheusShowOneRowPerWorker) {
  TempDir scratch;
  const CliRun status = Cli({"status", name_, "--json"}, scratch.path());
  ASSERT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_THAT(status.out, HasSubstr("\"workers_per_node\": 2"));
  for (const char* row : {"\"node\": 0,\n      \"stream\": 0",
                          "\"node\": 0,\n      \"stream\": 1",
                          "\"node\": 1,\n      \"stream\": 0",
                          "\"node\": 1,\n      \"stream\": 1"}) {
    EXPECT_THAT(status.out, HasSubstr(row)) << status.out;
  }
  const CliRun text = Cli({"status", name_}, scratch.path());
  ASSERT_EQ(text.exit_code, 0) << Describe(text);
  EXPECT_THAT(text.out, HasSubstr("\n1.1 "));

  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok());
  const GridStatsReport r = CollectStats(**h);
  EXPECT_EQ(r.streams_per_node, 2U);
  ASSERT_EQ(r.workers.size(), 4U);
  EXPECT_EQ(r.workers[3].node, 1U);
  EXPECT_EQ(r.workers[3].stream, 1U);
  const std::string prom = FormatPrometheus(r);
  EXPECT_THAT(prom, HasSubstr("numagrid_worker_up{grid=\"" + name_ +
                              "\",node=\"1\",stream=\"1\"} 0"))
      << prom;
  EXPECT_THAT(prom, HasSubstr("numagrid_journal_lag_records{grid=\"" + name_ +
                              "\",node=\"1\"} 0"));
}

}  // namespace
}  // namespace numagrid::core
