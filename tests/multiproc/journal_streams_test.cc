// Several journal workers per node (`create --workers-per-node 2`) on a
// synthetic two-node machine, as processes: the watchdog runs one worker
// per (node, stream); a SIGKILLed worker is replaced alone (the other
// streams keep their worker and generation) and no acknowledged durable
// write is lost; the grid recovered from the journal alone equals the live
// one; a stopped worker that was fenced and replaced exits without writing
// when it resumes. Waits are bounded polls, never timing assertions.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/recovery.h"
#include "io/node_file_name.h"
#include "io/uring_probe.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "tests/support/cli_child.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::CliChild;
using ::numagrid::testing::CliRun;
using ::numagrid::testing::Describe;
using ::numagrid::testing::GridGuard;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadDirFiles;
using ::numagrid::testing::ReadFileBytes;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::testing::HasSubstr;

// The state letter of /proc/PID/stat ('T': stopped); 0 if it is gone.
char ProcState(pid_t pid) {
  const std::string stat =
      ReadFileBytes("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) S ...": the comm may hold spaces and parentheses.
  const std::size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size()
             ? 0
             : stat[close + 2];
}

constexpr const char* kCli = NUMAGRID_CLI;
constexpr const char* kTwoNodes = "pack:2 numa:1 core:2 pu:1";

numa::Topology TwoNodes() {
  auto t = numa::Topology::FromSynthetic(kTwoNodes);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(*t);
}

// What one stream's worker published.
struct StreamWorker {
  std::uint64_t pid = 0;
  std::uint64_t generation = 0;
  std::uint64_t restarts = 0;
  bool running = false;
};

class JournalStreamsUnderTheWatchdog : public ::testing::Test {
 protected:
  void SetUp() override {
    const io::UringSupport u = io::ProbeUring("/tmp");
    if (!u.available) GTEST_SKIP() << "io_uring unavailable: " << u.detail;
    // Every CLI child (watchdog, workers, check) sees the same two nodes.
    setenv("HWLOC_SYNTHETIC", kTwoNodes, 1);
    name_ = UniqueName("wpn");
    guard_.emplace(name_);
    CreateOptions o;
    o.partitions = 8;
    o.memory_bytes = 16ULL << 20;
    o.ring_capacity = 1024;
    o.journal_dir = journal_.path();
    o.durability = kDurabilityAsync;
    o.flush_interval_us = 1000;
    o.sync_wait_ms = 5000;
    o.snapshot_bytes = 0;
    o.workers_per_node = 2;
    auto created = CreateGrid(name_, o, TwoNodes());
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }
  void TearDown() override {
    if (!name_.empty()) {
      (void)Run({"stop", name_, "--quiet", "--timeout", "10s"});
      for (const auto& [id, w] : Workers()) {
        if (w.running) kill(static_cast<pid_t>(w.pid), SIGKILL);
      }
    }
    unsetenv("HWLOC_SYNTHETIC");
  }

  CliRun Run(const std::vector<std::string>& args) {
    return ::numagrid::testing::RunCli(kCli, args, scratch_.path());
  }
  std::unique_ptr<CliChild> Spawn(const std::vector<std::string>& args) {
    return std::make_unique<CliChild>(kCli, args, scratch_.path());
  }

  // Every stream's worker, by stream id.
  std::map<std::uint32_t, StreamWorker> Workers() {
    std::map<std::uint32_t, StreamWorker> out;
    auto h = GridHandle::Attach(name_);
    if (!h.ok()) return out;
    for (std::uint32_t id : (*h)->stream_ids()) {
      const JournalNodeState& ns = (*h)->journal_node(id);
      StreamWorker w;
      w.pid = ns.worker_pid.load();
      w.generation = ns.worker_generation.load();
      w.restarts = ns.restarts.load();
      w.running = w.pid != 0 && ns.worker_state.load() == kWorkerRunning &&
                  kill(static_cast<pid_t>(w.pid), 0) == 0;
      out[id] = w;
    }
    return out;
  }
  bool AllRunning() {
    const auto w = Workers();
    if (w.size() != 4) return false;
    for (const auto& [id, s] : w) {
      if (!s.running) return false;
    }
    return true;
  }
  // Sync puts of `count` keys "<prefix><i>"; each one returned is durable.
  // Returns the partitions written.
  std::set<std::uint32_t> SyncPuts(const std::string& prefix, int count) {
    std::set<std::uint32_t> parts;
    auto g = Grid::Attach(name_);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    if (!g.ok()) return parts;
    for (int i = 0; i < count; ++i) {
      const std::string key = prefix + std::to_string(i);
      auto put = g->Put(key, "value of " + key,
                        WriteOptions{.durability = Durability::kSync});
      EXPECT_TRUE(put.ok()) << key << ": " << put.status().ToString();
      if (put.ok()) {
        acked_[key] = "value of " + key;
        parts.insert(g->PartitionOfKey(key));
      }
    }
    return parts;
  }
  void ExpectAcked(const std::string& when) {
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok()) << when << ": " << g.status().ToString();
    for (const auto& [key, value] : acked_) {
      std::string got;
      const Status s = g->Get(key, &got);
      ASSERT_TRUE(s.ok()) << when << ": " << key << ": " << s.ToString();
      EXPECT_EQ(got, value) << when << ": " << key;
    }
  }
  // The files of one stream's journal, name -> bytes.
  ::numagrid::testing::DirFiles StreamJournal(std::uint32_t id) {
    ::numagrid::testing::DirFiles out;
    const std::string prefix = "journal-" + io::StreamTag(id) + "-";
    for (auto& [file, bytes] : ReadDirFiles(journal_.path())) {
      if (file.rfind(prefix, 0) == 0) out[file] = std::move(bytes);
    }
    return out;
  }

  TempDir journal_;
  TempDir scratch_;
  std::string name_;
  std::optional<GridGuard> guard_;
  std::map<std::string, std::string> acked_;
};

TEST_F(JournalStreamsUnderTheWatchdog,
       AKilledWorkerIsReplacedAloneAndRecoveryEqualsTheLiveGrid) {
  auto watchdog =
      Spawn({"start", name_, "--foreground", "--heartbeat-timeout", "2s"});
  ASSERT_TRUE(PollUntil([&] { return AllRunning(); }, 20000))
      << "the watchdog must run a worker per (node, stream)";

  EXPECT_EQ(SyncPuts("a", 200).size(), 8U)
      << "sync writes to every partition, so to every stream, return";

  const auto before = Workers();
  const std::uint32_t victim = io::StreamId(1, 1);
  ASSERT_TRUE(before.at(victim).running);
  ASSERT_EQ(kill(static_cast<pid_t>(before.at(victim).pid), SIGKILL), 0);
  ASSERT_TRUE(PollUntil(
      [&] {
        const auto w = Workers();
        return w.at(victim).running &&
               w.at(victim).pid != before.at(victim).pid;
      },
      20000))
      << "node 1 stream 1 gets a new worker";
  const auto after = Workers();
  for (const auto& [id, w] : after) {
    if (id == victim) {
      EXPECT_GT(w.generation, before.at(id).generation);
      EXPECT_EQ(w.restarts, before.at(id).restarts + 1);
    } else {
      EXPECT_EQ(w.pid, before.at(id).pid) << io::StreamLabel(id);
      EXPECT_EQ(w.generation, before.at(id).generation)
          << io::StreamLabel(id) << " must keep its generation";
      EXPECT_EQ(w.restarts, before.at(id).restarts) << io::StreamLabel(id);
    }
  }
  // The events name the stream of the worker that was replaced.
  const std::string events = ReadFileBytes(journal_.path() + "/events.log");
  std::istringstream lines(events);
  int restarted = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"worker_restarted\"") == std::string::npos) continue;
    ++restarted;
    EXPECT_THAT(line, HasSubstr("\"node\":1,\"stream\":1")) << line;
  }
  EXPECT_EQ(restarted, 1) << events;

  EXPECT_EQ(SyncPuts("b", 100).size(), 8U);
  ExpectAcked("live grid");

  const CliRun status = Run({"status", name_, "--json"});
  EXPECT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_THAT(status.out, HasSubstr("\"stream\": 1"));

  const CliRun stop = Run({"stop", name_});
  EXPECT_EQ(stop.exit_code, 0) << Describe(stop);
  EXPECT_EQ(watchdog->Wait().exit_code, 0);
  const CliRun check = Run({"check", name_, "--journal"});
  EXPECT_EQ(check.exit_code, 0) << Describe(check);

  const auto live = ReadGridState(name_);
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto rec = RecoverGrid(name_, journal_.path(), TwoNodes(), {});
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(StateDiff(live, ReadGridState(name_)), "");
  ExpectAcked("recovered grid");
}

TEST_F(JournalStreamsUnderTheWatchdog,
       AStoppedWorkerFencedAndReplacedExitsWithoutWritingWhenResumed) {
  const std::uint32_t id = io::StreamId(0, 1);
  auto a = Spawn({"worker", name_, "--node", "0", "--stream", "1"});
  ASSERT_TRUE(PollUntil([&] { return Workers()[id].running; }, 20000));
  // Keys of node 0 stream 1's partitions.
  std::vector<std::string> keys;
  {
    auto h = GridHandle::Attach(name_);
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(h.ok() && g.ok());
    for (int i = 0; keys.size() < 40; ++i) {
      const std::string key = "s" + std::to_string(i);
      if ((*h)->stream_of(g->PartitionOfKey(key)) == id) keys.push_back(key);
    }
    for (std::size_t i = 0; i < 20; ++i) {
      auto put = g->Put(keys[i], "before",
                        WriteOptions{.durability = Durability::kSync});
      ASSERT_TRUE(put.ok()) << put.status().ToString();
    }
  }
  const std::uint64_t a_generation = Workers()[id].generation;

  ASSERT_EQ(kill(a->pid(), SIGSTOP), 0);
  // kill() returns before the worker stops: until it has, it may still
  // journal (the comparison below starts from a stopped worker).
  ASSERT_TRUE(PollUntil([&] { return ProcState(a->pid()) == 'T'; }, 20000));
  const auto journal_before = StreamJournal(id);
  ASSERT_FALSE(journal_before.empty());
  {
    // Changes the stopped worker would journal if it went on.
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok());
    for (std::size_t i = 20; i < 40; ++i) {
      ASSERT_TRUE(g->Put(keys[i], "while stopped").ok());
    }
  }
  const CliRun fence =
      Run({"fence", name_, "--node", "0", "--stream", "1", "--reason", "test"});
  ASSERT_EQ(fence.exit_code, 0) << Describe(fence);
  EXPECT_THAT(fence.out, HasSubstr("node 0 stream 1"));
  EXPECT_GT(Workers()[id].generation, 0U);
  // A replacement cannot take the stream while the stopped one holds it.
  const CliRun b = Run({"worker", name_, "--node", "0", "--stream", "1"});
  EXPECT_EQ(b.exit_code, 4) << Describe(b);

  ASSERT_EQ(kill(a->pid(), SIGCONT), 0);
  const CliRun a_end = a->Wait();
  EXPECT_EQ(a_end.exit_code, 4) << "fenced: " << Describe(a_end);
  EXPECT_TRUE(StreamJournal(id) == journal_before)
      << "the fenced worker wrote to its journal after it was resumed";
  {
    auto h = GridHandle::Attach(name_);
    ASSERT_TRUE(h.ok());
    EXPECT_GT((*h)->journal_node(id).generation.load(), a_generation);
    EXPECT_EQ((*h)->journal_node(id).fences.load(), 1U);
  }

  // The next worker journals what the fenced one left.
  auto c = Spawn({"worker", name_, "--node", "0", "--stream", "1"});
  ASSERT_TRUE(PollUntil(
      [&] {
        auto h = GridHandle::Attach(name_);
        return h.ok() &&
               (*h)->journal_node(id).worker_pid.load() ==
                   static_cast<std::uint64_t>(c->pid()) &&
               Workers()[id].running;
      },
      20000));
  {
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok());
    auto put =
        g->Put(keys[0], "after", WriteOptions{.durability = Durability::kSync});
    EXPECT_TRUE(put.ok()) << put.status().ToString();
  }
  ASSERT_EQ(kill(c->pid(), SIGTERM), 0);
  EXPECT_EQ(c->Wait().exit_code, 0);
  const CliRun check = Run({"check", name_, "--journal"});
  EXPECT_EQ(check.exit_code, 0) << Describe(check);
}

}  // namespace
}  // namespace numagrid::core
