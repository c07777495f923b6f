// Tests for the journal worker's task arena (core/worker_arena.h): that
// every thread that runs work in a node's arena runs on that node's CPUs
// only, which binding is chosen when, and that a snapshot whose partitions
// are copied in the arena holds exactly what the grid held.
//
// This machine has one NUMA node, whose cpuset is every CPU, so a check
// against it could not fail. The pinning tests instead load this machine
// through an XML topology that splits its first two CPUs into two NUMA
// nodes of one CPU each, marked as this system (HWLOC_THISSYSTEM=1), so
// that hwloc pins for real: node 1's arena must keep every thread on CPU 1.
#include "core/worker_arena.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hwloc.h>
#include <oneapi/tbb/info.h>

#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/journal_worker.h"
#include "core/snapshot.h"
#include "io/snapshot_file.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "tests/support/journal_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::JournaledGridTest;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::WorkerThread;
using ::testing::HasSubstr;

std::vector<std::uint32_t> CpusOf(const cpu_set_t& set) {
  std::vector<std::uint32_t> out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(static_cast<std::uint32_t>(c));
  }
  return out;
}

std::vector<std::uint32_t> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
  return CpusOf(set);
}

// This machine as two one-CPU NUMA nodes (CPUs 0 and 1), loaded as this
// system so that pinning makes real system calls. Skips the test when CPUs
// 0 and 1 are not both usable.
class SplitTopology : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<std::uint32_t> allowed = AllowedCpus();
    if (std::count(allowed.begin(), allowed.end(), 0U) == 0 ||
        std::count(allowed.begin(), allowed.end(), 1U) == 0) {
      GTEST_SKIP() << "needs CPUs 0 and 1 to split them into two nodes";
    }
    const std::string path = dir_.path() + "/split.xml";
    hwloc_topology_t t = nullptr;
    ASSERT_EQ(hwloc_topology_init(&t), 0);
    ASSERT_EQ(hwloc_topology_set_synthetic(t, "pack:2 numa:1 core:1 pu:1"), 0);
    ASSERT_EQ(hwloc_topology_load(t), 0);
    ASSERT_EQ(hwloc_topology_export_xml(t, path.c_str(), 0), 0);
    hwloc_topology_destroy(t);
    const char* old = std::getenv("HWLOC_THISSYSTEM");
    if (old != nullptr) old_thissystem_ = old;
    had_thissystem_ = old != nullptr;
    setenv("HWLOC_THISSYSTEM", "1", 1);
    auto topo = numa::Topology::FromXmlFile(path);
    ASSERT_TRUE(topo.ok()) << topo.status().ToString();
    ASSERT_TRUE(topo->is_this_system());
    ASSERT_EQ(topo->node_count(), 2U);
    ASSERT_EQ(topo->nodes()[0].cpus, std::vector<std::uint32_t>{0});
    ASSERT_EQ(topo->nodes()[1].cpus, std::vector<std::uint32_t>{1});
    topo_.emplace(std::move(*topo));
  }
  void TearDown() override {
    if (had_thissystem_) {
      setenv("HWLOC_THISSYSTEM", old_thissystem_.c_str(), 1);
    } else {
      unsetenv("HWLOC_THISSYSTEM");
    }
  }

  TempDir dir_;
  std::optional<numa::Topology> topo_;
  bool had_thissystem_ = false;
  std::string old_thissystem_;
};

// What one call of the arena's body saw.
struct Seen {
  long tid;
  int cpu;                             // sched_getcpu()
  std::vector<std::uint32_t> allowed;  // the thread's affinity
};

// Runs `n` calls in `arena` from a new, unpinned thread. Each call waits
// (bounded) until `threads` distinct threads have made a call, so that the
// arena's worker threads take part and not only the caller.
std::vector<Seen> RunAndRecord(WorkerArena& arena, std::size_t n,
                               std::size_t threads) {
  std::mutex mu;
  std::vector<Seen> seen;
  std::set<long> tids;
  Status status;
  std::thread caller([&] {
    status = arena.ForEach(n, [&](std::size_t) {
      const long tid = syscall(SYS_gettid);
      cpu_set_t set;
      CPU_ZERO(&set);
      sched_getaffinity(0, sizeof set, &set);
      {
        std::lock_guard<std::mutex> l(mu);
        tids.insert(tid);
        seen.push_back({tid, sched_getcpu(), CpusOf(set)});
      }
      (void)PollUntil([&] {
        std::lock_guard<std::mutex> l(mu);
        return tids.size() >= threads;
      });
      // Where it runs after the wait too (a thread may have migrated).
      CPU_ZERO(&set);
      sched_getaffinity(0, sizeof set, &set);
      const int cpu = sched_getcpu();
      std::lock_guard<std::mutex> l(mu);
      seen.push_back({tid, cpu, CpusOf(set)});
    });
  });
  caller.join();
  EXPECT_TRUE(status.ok()) << status.ToString();
  return seen;
}

TEST_F(SplitTopology, ObserverKeepsEveryArenaThreadOnItsNodesCpus) {
  if (!ArenaRunsOnTbbThreads()) {
    GTEST_SKIP() << "no oneTBB thread enters the arena in a ThreadSanitizer "
                    "build (see ArenaRunsOnTbbThreads)";
  }
  // Node 1 first, then node 0: the oneTBB worker thread pinned to CPU 1 by
  // the first arena must be moved to CPU 0 when it enters the second.
  for (const std::uint32_t node : {1U, 0U}) {
    SCOPED_TRACE("node " + std::to_string(node));
    auto arena = WorkerArena::Create(
        *topo_, node, {.max_concurrency = 2, .force_observer = true});
    ASSERT_TRUE(arena.ok()) << arena.status().ToString();
    EXPECT_EQ((*arena)->binding(), ArenaBinding::kHwlocObserver);
    EXPECT_EQ((*arena)->max_concurrency(), 2U);
    EXPECT_THAT((*arena)->description(), HasSubstr("hwloc-observer"));
    const std::vector<Seen> seen = RunAndRecord(**arena, 8, 2);
    std::set<long> tids;
    for (const Seen& s : seen) {
      tids.insert(s.tid);
      EXPECT_EQ(s.cpu, static_cast<int>(node)) << "thread " << s.tid;
      EXPECT_EQ(s.allowed, topo_->nodes()[node].cpus) << "thread " << s.tid;
    }
    EXPECT_EQ(tids.size(), 2U)
        << "a oneTBB worker thread did not join: only the caller was checked";
    EXPECT_EQ((*arena)->pin_failures(), 0U);
  }
}

TEST_F(SplitTopology, ArenaConcurrencyIsTheNodesCoreCount) {
  auto arena = WorkerArena::Create(*topo_, 1, {.force_observer = true});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_EQ((*arena)->max_concurrency(), topo_->nodes()[1].cores.size());
}

TEST(WorkerArena, FallsBackToTheHwlocObserverWhenTbbReportsOneNode) {
  if (TbbNumaQueriesAllowed() && tbb::info::numa_nodes().size() > 1) {
    GTEST_SKIP() << "oneTBB reports several NUMA nodes here: the numa-vm "
                    "placement check covers that binding";
  }
  const numa::Topology& topo = SystemTopology();
  if (!topo.is_this_system()) GTEST_SKIP() << "not this system's topology";
  auto arena = WorkerArena::Create(topo, 0);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_EQ((*arena)->binding(), ArenaBinding::kHwlocObserver);
  EXPECT_EQ((*arena)->tbb_numa_id(), -1);
  EXPECT_THAT((*arena)->description(),
              HasSubstr(TbbNumaQueriesAllowed() ? "oneTBB reports"
                                                : "sanitizer build"));
  EXPECT_EQ((*arena)->max_concurrency(),
            std::max<std::size_t>(1, topo.nodes()[0].cores.size()));
}

TEST(WorkerArena, SyntheticTopologyRunsEveryIndexOnceUnpinned) {
  auto topo = numa::Topology::FromSynthetic("pack:2 numa:1 core:2 pu:1");
  ASSERT_TRUE(topo.ok());
  auto arena = WorkerArena::Create(*topo, 1);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  EXPECT_EQ((*arena)->binding(), ArenaBinding::kUnpinned);
  EXPECT_EQ((*arena)->max_concurrency(), 2U);
  std::vector<std::atomic<int>> calls(100);
  ASSERT_TRUE(
      (*arena)
          ->ForEach(calls.size(), [&](std::size_t i) { calls[i].fetch_add(1); })
          .ok());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].load(), 1) << "index " << i;
  }
  EXPECT_EQ(WorkerArena::Create(*topo, 2).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(WorkerArena, BindingNamesAreStable) {
  EXPECT_EQ(ArenaBindingName(0), "unknown");
  EXPECT_EQ(ArenaBindingName(1), "tbb-numa");
  EXPECT_EQ(ArenaBindingName(2), "hwloc-observer");
  EXPECT_EQ(ArenaBindingName(3), "unpinned");
  EXPECT_EQ(ArenaBindingName(99), "unknown");
}

// --- the worker's use of the arena ------------------------------------------

class WorkerWithArena : public JournaledGridTest {};

TEST_F(WorkerWithArena, SnapshotCopiedInTheArenaHoldsExactlyTheGrid) {
  if (h_->config().node_count != 1) {
    GTEST_SKIP() << "compares one node's snapshot with the whole grid";
  }
  const numa::Topology& topo = SystemTopology();
  // Two threads even on a one-core node, so that partitions are copied in
  // parallel groups.
  auto arena = WorkerArena::Create(topo, 0, {.max_concurrency = 2});
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(g->Put("key" + std::to_string(i),
                       std::string(static_cast<std::size_t>(i % 50), 'v'))
                    .ok());
  }
  JournalWorkerOptions o;
  o.arena = arena->get();
  WorkerThread worker(name_, o);
  ASSERT_TRUE(PollUntil([&] {
    return h_->journal_node(0).worker_state.load() == kWorkerRunning;
  }));
  EXPECT_EQ(h_->journal_node(0).worker_arena.load(),
            static_cast<std::uint32_t>((*arena)->binding()));
  EXPECT_EQ(h_->journal_node(0).worker_arena_threads.load(), 2U);
  auto snap = SnapshotGrid(*h_, {});
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  ASSERT_EQ(snap->size(), 1U);
  EXPECT_TRUE((*snap)[0].by_worker);
  ASSERT_TRUE(worker.Stop().ok());

  auto reader =
      io::SnapshotReader::Open((*snap)[0].path, h_->grid_id(), /*node=*/0);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ::numagrid::testing::GridState from_snapshot;
  std::vector<std::uint32_t> sections;
  for (;;) {
    auto item = (*reader)->Next();
    ASSERT_TRUE(item.ok()) << item.status().ToString();
    if (!item->has_value()) break;
    if ((*item)->kind == io::SnapshotItem::Kind::kPartition) {
      sections.push_back((*item)->partition_id);
      continue;
    }
    const io::RecordView& e = (*item)->entry;
    from_snapshot[std::string(e.key)] = {std::string(e.value), e.version,
                                         e.expiry_ms};
  }
  EXPECT_EQ(sections, (std::vector<std::uint32_t>{0, 1, 2, 3}))
      << "sections out of partition order";
  EXPECT_EQ(::numagrid::testing::StateDiff(ReadGridState(name_), from_snapshot),
            "");
}

}  // namespace
}  // namespace numagrid::core
