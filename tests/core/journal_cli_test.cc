// Tests for the journal commands of the `numagrid` tool: worker, recover,
// snapshot, and destroy --purge, run as child processes against a grid with
// its own journal directory (mkdtemp), removed at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/event_log.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/grid_names.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/recovery.h"  // IWYU pragma: keep
#include "core/snapshot.h"
#include "io/journal_record.h"
#include "io/snapshot_file.h"
#include "io/uring_probe.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "tests/support/cli_child.h"
#include "tests/support/journal_grid.h"
#include "tests/support/shared_block.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::DirFiles;
using ::numagrid::testing::ForkChild;
using ::numagrid::testing::GridState;
using ::numagrid::testing::JournaledOptions;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::JournalRecord;
using ::numagrid::testing::KeysOfPartition;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadDirFiles;
using ::numagrid::testing::ReadFileBytes;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::SharedBlock;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::numagrid::testing::WorkerThread;
using ::numagrid::testing::WriteDirFiles;
using ::numagrid::testing::WriteFileBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// --- the command-line tool -------------------------------------------------

constexpr const char* kCli = NUMAGRID_CLI;

using ::numagrid::testing::CliRun;
using ::numagrid::testing::Describe;

// The tool run as a child process, its output in files in `dir`.
class CliChild : public ::numagrid::testing::CliChild {
 public:
  CliChild(const std::vector<std::string>& args, const std::string& dir)
      : ::numagrid::testing::CliChild(kCli, args, dir) {}
};

class RecoveryCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const io::UringSupport u = io::ProbeUring("/tmp");
    if (!u.available) GTEST_SKIP() << "io_uring unavailable: " << u.detail;
  }
  void TearDown() override {
    for (const std::string& n : names_) (void)DestroyGrid(n);
  }

  CliRun Run(const std::vector<std::string>& args) {
    CliChild c(args, scratch_.path());
    return c.Wait();
  }
  // Creates a journaled grid with the tool.
  std::string CreateWithTool(const std::string& dir) {
    std::string name = UniqueName();
    names_.push_back(name);
    const CliRun r = Run({"create", name, "--memory", "8MiB", "--partitions",
                          "4", "--journal-dir", dir});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return name;
  }
  // Waits until the worker in `child` journals node 0 of `name`.
  static bool WorkerRunning(const std::string& name, pid_t child) {
    return PollUntil([&] {
      auto h = GridHandle::Attach(name);
      if (!h.ok()) return false;
      JournalNodeState& n = (*h)->journal_node(0);
      return n.worker_pid.load() == static_cast<std::uint64_t>(child) &&
             n.worker_state.load() == kWorkerRunning;
    });
  }

  TempDir scratch_;  // the children's output
  std::vector<std::string> names_;
};

// The number after `"key":` in `json`, or -1.
double JsonNumber(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return -1;
  const std::size_t colon = json.find(':', at);
  if (colon == std::string::npos) return -1;
  return std::strtod(json.c_str() + colon + 1, nullptr);
}

TEST_F(RecoveryCli, WorkerDestroyRecoverAndPurge) {
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  CliChild worker({"worker", name}, scratch_.path());
  ASSERT_TRUE(WorkerRunning(name, worker.pid()));
  for (const char* k : {"k1", "k2", "k3"}) {
    const CliRun r = Run({"put", name, k, std::string("value of ") + k});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  const CliRun del = Run({"del", name, "k2"});
  ASSERT_EQ(del.exit_code, 0) << Describe(del);

  ASSERT_EQ(kill(worker.pid(), SIGTERM), 0);
  const CliRun stopped = worker.Wait();
  EXPECT_EQ(stopped.exit_code, 0) << Describe(stopped);
  EXPECT_THAT(stopped.err, HasSubstr("stopped"));

  const CliRun destroy = Run({"destroy", name});
  ASSERT_EQ(destroy.exit_code, 0) << Describe(destroy);
  EXPECT_THAT(destroy.out, HasSubstr("journal kept"));
  EXPECT_EQ(Run({"get", name, "k1"}).exit_code, 3);

  const CliRun rec =
      Run({"recover", name, "--journal-dir", journal.path(), "--json"});
  ASSERT_EQ(rec.exit_code, 0) << Describe(rec);
  EXPECT_EQ(JsonNumber(rec.out, "journal_records"), 4) << rec.out;
  EXPECT_EQ(JsonNumber(rec.out, "applied_records"), 4) << rec.out;
  EXPECT_EQ(JsonNumber(rec.out, "skipped_records"), 0) << rec.out;
  EXPECT_EQ(JsonNumber(rec.out, "snapshot_entries"), 0) << rec.out;
  EXPECT_EQ(JsonNumber(rec.out, "live_entries"), 2) << rec.out;
  const CliRun get1 = Run({"get", name, "k1"});
  EXPECT_EQ(get1.exit_code, 0) << Describe(get1);
  EXPECT_EQ(get1.out, "value of k1\n");
  EXPECT_EQ(Run({"get", name, "k3"}).out, "value of k3\n");
  EXPECT_EQ(Run({"get", name, "k2"}).exit_code, 3) << "k2 was deleted";

  const CliRun purge = Run({"destroy", name, "--purge"});
  ASSERT_EQ(purge.exit_code, 0) << Describe(purge);
  EXPECT_THAT(purge.out, HasSubstr("deleted journal"));
  struct stat st {};
  EXPECT_NE(stat(journal.path().c_str(), &st), 0)
      << "--purge removes the journal directory";
}

TEST_F(RecoveryCli, SecondWorkerExits4NamingTheFirst) {
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  CliChild worker({"worker", name, "--quiet"}, scratch_.path());
  ASSERT_TRUE(WorkerRunning(name, worker.pid()));
  const CliRun second = Run({"worker", name});
  EXPECT_EQ(second.exit_code, 4) << Describe(second);
  EXPECT_THAT(second.err, HasSubstr("pid " + std::to_string(worker.pid())))
      << "the refusal names the worker that holds the journal";
  ASSERT_EQ(kill(worker.pid(), SIGTERM), 0);
  EXPECT_EQ(worker.Wait().exit_code, 0);
}

TEST_F(RecoveryCli, WorkerRecoversAGridWhoseSegmentsAreGone) {
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  ASSERT_EQ(Run({"put", name, "k", "survives"}).exit_code, 0);
  {
    CliChild worker({"worker", name}, scratch_.path());
    ASSERT_TRUE(WorkerRunning(name, worker.pid()));
    ASSERT_EQ(kill(worker.pid(), SIGTERM), 0);
    EXPECT_EQ(worker.Wait().exit_code, 0);
  }
  ASSERT_EQ(Run({"destroy", name}).exit_code, 0);
  CliChild worker({"worker", name, "--journal-dir", journal.path()},
                  scratch_.path());
  ASSERT_TRUE(WorkerRunning(name, worker.pid()));
  const CliRun get = Run({"get", name, "k"});
  EXPECT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(get.out, "survives\n");
  ASSERT_EQ(kill(worker.pid(), SIGTERM), 0);
  const CliRun stopped = worker.Wait();
  EXPECT_EQ(stopped.exit_code, 0) << Describe(stopped);
  EXPECT_THAT(stopped.err, HasSubstr("recover"));
}

TEST_F(RecoveryCli, SnapshotIsTakenByTheWorkerWhenOneRuns) {
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  ASSERT_EQ(Run({"put", name, "k", "v"}).exit_code, 0);
  const CliRun alone = Run({"snapshot", name, "--json"});
  ASSERT_EQ(alone.exit_code, 0) << Describe(alone);
  EXPECT_THAT(alone.out, HasSubstr("\"by_worker\": false"));
  EXPECT_EQ(JsonNumber(alone.out, "entries"), 1) << alone.out;

  CliChild worker({"worker", name, "--quiet"}, scratch_.path());
  ASSERT_TRUE(WorkerRunning(name, worker.pid()));
  ASSERT_EQ(Run({"put", name, "k2", "v2"}).exit_code, 0);
  const CliRun by_worker = Run({"snapshot", name, "--json"});
  ASSERT_EQ(by_worker.exit_code, 0) << Describe(by_worker);
  EXPECT_THAT(by_worker.out, HasSubstr("\"by_worker\": true"));
  EXPECT_EQ(JsonNumber(by_worker.out, "entries"), 2) << by_worker.out;
  ASSERT_EQ(kill(worker.pid(), SIGTERM), 0);
  EXPECT_EQ(worker.Wait().exit_code, 0);
}

TEST_F(RecoveryCli, CreateRefusesADirectoryThatHoldsAnotherGridsJournal) {
  TempDir journal;
  const std::string first = CreateWithTool(journal.path());
  const std::string second = UniqueName();
  names_.push_back(second);
  const CliRun r = Run(
      {"create", second, "--memory", "8MiB", "--journal-dir", journal.path()});
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(first));
  EXPECT_EQ(Run({"info", second}).exit_code, 3) << "nothing was created";
  // Also once the first grid's segments are gone: its journal stays.
  ASSERT_EQ(Run({"destroy", first}).exit_code, 0);
  EXPECT_EQ(Run({"create", second, "--memory", "8MiB", "--journal-dir",
                 journal.path()})
                .exit_code,
            4);
}

TEST_F(RecoveryCli, HelpOfTheJournalCommandsListsTheirOptions) {
  const std::map<std::string, std::vector<std::string>> options = {
      {"worker", {"--node", "--journal-dir", "--no-pin", "--quiet"}},
      {"recover", {"--journal-dir", "--json", "--quiet"}},
      {"snapshot", {"--json", "--quiet"}},
  };
  for (const auto& [command, opts] : options) {
    const CliRun r = Run({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command << "\n" << Describe(r);
    for (const std::string& o : opts) {
      EXPECT_THAT(r.out, HasSubstr(o)) << command;
    }
  }
}

// --- the watchdog (`numagrid start|stop`) -----------------------------------

// The pid of node 0's journal worker once one journals, else 0.
std::uint64_t RunningWorker(const std::string& name) {
  return ::numagrid::testing::RunningWorkerPid(name);
}

TEST_F(RecoveryCli, WatchdogReplacesKilledAndStoppedWorkersAndStopDrains) {
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  CliChild watchdog(
      {"start", name, "--foreground", "--heartbeat-timeout", "300ms"},
      scratch_.path());
  std::uint64_t first = 0;
  ASSERT_TRUE(PollUntil([&] { return (first = RunningWorker(name)) != 0; }));
  const CliRun second = Run({"start", name, "--foreground"});
  EXPECT_EQ(second.exit_code, 4) << Describe(second);
  EXPECT_THAT(second.err, HasSubstr("pid " + std::to_string(watchdog.pid())));

  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok());
  const WriteOptions sync{.durability = Durability::kSync};
  ASSERT_TRUE(g->Put("before", "kill", sync).ok());

  // SIGKILL: replaced by a new worker, and durable writes go on.
  ASSERT_EQ(kill(static_cast<pid_t>(first), SIGKILL), 0);
  std::uint64_t replacement = 0;
  ASSERT_TRUE(PollUntil([&] {
    replacement = RunningWorker(name);
    return replacement != 0 && replacement != first;
  }));
  ASSERT_TRUE(g->Put("after", "kill", sync).ok());

  // SIGSTOP: its heartbeat stops, so it is killed and replaced.
  ASSERT_EQ(kill(static_cast<pid_t>(replacement), SIGSTOP), 0);
  std::uint64_t third = 0;
  ASSERT_TRUE(PollUntil([&] {
    third = RunningWorker(name);
    return third != 0 && third != replacement;
  }));
  EXPECT_NE(kill(static_cast<pid_t>(replacement), 0), 0)
      << "the stopped worker was killed before it was replaced";
  ASSERT_TRUE(g->Put("after", "stop", {}).ok());
  {
    // It was fenced before the kill, and its successor holds a newer
    // generation than the fence.
    auto h = GridHandle::Attach(name);
    ASSERT_TRUE(h.ok());
    std::uint64_t fenced_generation = 0;
    for (const GridEvent& e : ReadEvents(**h)) {
      if (e.kind == EventKind::kWorkerFenced && e.pid == replacement) {
        fenced_generation = e.generation;
      }
    }
    ASSERT_NE(fenced_generation, 0u) << "no worker_fenced event";
    ASSERT_TRUE(PollUntil(
        [&] { return (*h)->journal_node(0).worker_pid.load() == third; }));
    EXPECT_GT((*h)->journal_node(0).worker_generation.load(),
              fenced_generation + 1);
    EXPECT_EQ((*h)->journal_node(0).worker_generation.load(),
              (*h)->journal_node(0).generation.load());
  }

  // A graceful stop drains: the async write above is durable afterwards.
  const CliRun stop = Run({"stop", name});
  EXPECT_EQ(stop.exit_code, 0) << Describe(stop);
  EXPECT_EQ(watchdog.Wait().exit_code, 0);
  {
    auto h = GridHandle::Attach(name);
    ASSERT_TRUE(h.ok());
    for (std::uint32_t p = 0; p < (*h)->partition_count(); ++p) {
      const PartitionState& st = (*h)->partition(p).state();
      EXPECT_EQ(st.journaled_seq.load(), st.next_seq.load()) << p;
    }
  }
  const std::string events = ReadFileBytes(journal.path() + "/events.log");
  for (const char* e : {"watchdog_started", "worker_started", "worker_exited",
                        "worker_restarted", "worker_killed", "worker_stopped",
                        "watchdog_stopped"}) {
    EXPECT_THAT(events, HasSubstr(std::string("\"event\":\"") + e + "\""));
  }
  const CliRun listed = Run({"events", name, "--last", "3"});
  EXPECT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_THAT(listed.out, HasSubstr("watchdog_stopped"));
  const CliRun json = Run({"events", name, "--json"});
  EXPECT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_THAT(json.out, HasSubstr("\"event\":\"worker_restarted\""));
}

// A port nobody listens on now (bound to port 0, then released).
std::uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  close(fd);
  return ntohs(sa.sin_port);
}

std::string Curl(const std::string& url) {
  std::string out;
  FILE* p =
      popen(("curl -sS --max-time 5 " + url + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST_F(RecoveryCli, WatchdogServesMetricsWhileItRuns) {
  if (std::system("command -v curl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "curl is not installed";
  }
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  const std::uint16_t port = FreePort();
  ASSERT_NE(port, 0);
  const std::string url =
      "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  CliChild watchdog({"start", name, "--foreground", "--metrics-listen",
                     "127.0.0.1:" + std::to_string(port)},
                    scratch_.path());
  // Once the worker runs, /metrics says so.
  const std::string up =
      "numagrid_worker_up{grid=\"" + name + "\",node=\"0\"} 1\n";
  std::string body;
  ASSERT_TRUE(PollUntil([&] {
    body = Curl(url);
    return body.find(up) != std::string::npos;
  })) << body;
  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->Put("k", "v").ok());
  EXPECT_THAT(Curl(url),
              HasSubstr("numagrid_puts_total{grid=\"" + name +
                        "\",node=\"0\",partition=\"" +
                        std::to_string(g->PartitionOfKey("k")) + "\"} 1\n"));
  EXPECT_EQ(Run({"stop", name}).exit_code, 0);
  EXPECT_EQ(watchdog.Wait().exit_code, 0);
  EXPECT_EQ(Curl(url), "");  // the server went with the watchdog
}

TEST_F(RecoveryCli, WatchdogRepairsTheSlotOfAnAttachedProcessThatDied) {
  TempDir journal;
  const std::string name = CreateWithTool(journal.path());
  CliChild watchdog({"start", name, "--foreground"}, scratch_.path());
  ASSERT_TRUE(PollUntil([&] { return RunningWorker(name) != 0; }));
  SharedBlock<std::atomic<int>> attached_flag;
  const pid_t attached = ForkChild([&] {
    auto g = Grid::Attach(name);
    if (!g.ok()) return 1;
    attached_flag->store(1);
    pause();
    return 0;
  });
  ASSERT_TRUE(PollUntil([&] { return attached_flag->load() == 1; }));
  kill(attached, SIGKILL);
  EXPECT_EQ(WaitChild(attached), 128 + SIGKILL);
  // No `check --repair` here: the watchdog clears the dead slot.
  ASSERT_TRUE(PollUntil([&] {
    auto c = CheckGrid(name, /*repair=*/false);
    return c.ok() && c->dead_slots.empty();
  }));
  EXPECT_THAT(ReadFileBytes(journal.path() + "/events.log"),
              HasSubstr("\"event\":\"repair\""));
  EXPECT_EQ(Run({"stop", name, "--destroy"}).exit_code, 0);
  EXPECT_EQ(watchdog.Wait().exit_code, 0);
}

TEST_F(RecoveryCli, WatchdogRecordsWritersWaitingForRingRoomAsAnEvent) {
  TempDir journal;
  const std::string name = UniqueName();
  names_.push_back(name);
  CreateOptions o = JournaledOptions(journal.path());
  o.partitions = 1;
  o.ring_capacity = 16;
  // The worker flushes only when woken: a writer that fills the ring waits
  // for it (a backpressure wait) every 16 puts.
  o.flush_interval_us = 1'000'000;
  ASSERT_TRUE(CreateGrid(name, o, SystemTopology()).ok());
  CliChild watchdog({"start", name, "--foreground"}, scratch_.path());
  ASSERT_TRUE(PollUntil([&] { return RunningWorker(name) != 0; }));
  {
    auto g = Grid::Attach(name);
    ASSERT_TRUE(g.ok());
    for (int i = 0; i < 64; ++i) {
      ASSERT_TRUE(g->Put("k" + std::to_string(i), "v").ok());
    }
  }
  ASSERT_TRUE(PollUntil([&] {
    return ReadFileBytes(journal.path() + "/events.log")
               .find("\"event\":\"backpressure\"") != std::string::npos;
  })) << ReadFileBytes(journal.path() + "/events.log");
  const CliRun events = Run({"events", name, "--json"});
  EXPECT_EQ(events.exit_code, 0) << Describe(events);
  EXPECT_THAT(events.out, HasSubstr(" ms for ring room; fullest: partition 0 "
                                    "(node 0) "));
  // The event ring has it too: one event, not one per wait.
  auto h = GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  int backpressure_events = 0;
  for (const GridEvent& e : ReadEvents(**h)) {
    if (e.kind == EventKind::kBackpressure) ++backpressure_events;
  }
  EXPECT_EQ(backpressure_events, 1);
  h->reset();
  EXPECT_EQ(Run({"stop", name, "--destroy"}).exit_code, 0);
  EXPECT_EQ(watchdog.Wait().exit_code, 0);
}

}  // namespace
}  // namespace numagrid::core
