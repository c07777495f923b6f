// The watchdog (`numagrid start`) under a write load from forked writer
// processes: the watchdog, attached writers and journal workers are
// SIGKILLed while writers keep a ledger of what they were told is durable
// (as in tests/crash/journal_crash_test.cc). What each test asserts is
// behaviour: who runs afterwards, what the events say, that `numagrid
// check` is clean, and that every acknowledged-durable change is in the
// grid and in what recovery rebuilds from the journal. Waits are bounded
// polls, never timing assertions.
#include "core/watchdog.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/event_log.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/journal_worker.h"
#include "core/recovery.h"
#include "io/uring_probe.h"
#include "numagrid/grid.h"
#include "tests/support/ack_ledger.h"
#include "tests/support/cli_child.h"
#include "tests/support/journal_grid.h"
#include "tests/support/shared_block.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::AckLedger;
using ::numagrid::testing::AllJournaled;
using ::numagrid::testing::CliChild;
using ::numagrid::testing::CliRun;
using ::numagrid::testing::Describe;
using ::numagrid::testing::ForkChild;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::Mix;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadFileBytes;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::SharedBlock;
using ::numagrid::testing::StartLedgerWriter;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::TestSeed;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kCli = NUMAGRID_CLI;
constexpr int kMaxWriters = ::numagrid::testing::kLedgerMaxWriters;
constexpr int kKeysPerWriter = 32;

// A writer process: sync puts to its keys, recorded in the ledger, and
// (with `async_too`) an async put after each.
pid_t StartWriter(const std::string& name, int w, AckLedger* ledger,
                  std::uint64_t seed, bool async_too) {
  return StartLedgerWriter(name, w, kKeysPerWriter, ledger, seed,
                           {.durability = Durability::kSync}, async_too);
}

// Makes kill(..., SIGKILL) fail with EPERM in the calling process and in
// everything it starts (a seccomp filter, kept across fork and exec), as it
// fails for a process of another user or pid namespace. False if the filter
// cannot be installed.
bool DenySigkill() {
#if defined(__x86_64__)
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 0, 3),
      // The signal: the low half of the second argument (little endian).
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
               offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGKILL, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog {};
  prog.len = static_cast<unsigned short>(sizeof filter / sizeof filter[0]);
  prog.filter = filter;
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
  return false;
#endif
}

// The fields of /proc/<pid>/stat after "(comm)": [0] is the state, [1] the
// parent pid. Empty if the process is gone.
std::vector<std::string> ProcStat(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)),
                  std::istreambuf_iterator<char>());
  const auto paren = all.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream rest(all.substr(paren + 1));
  std::vector<std::string> out;
  for (std::string field; rest >> field && out.size() < 2;) {
    out.push_back(field);
  }
  return out;
}

// 'T' for a stopped process, 0 if it is gone.
char ProcState(long pid) {
  const auto f = ProcStat(pid);
  return f.empty() ? 0 : f[0][0];
}

// The children of `parent` that have not exited, other than `except`.
std::vector<long> LiveChildren(long parent, long except) {
  std::vector<long> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string n = e.path().filename().string();
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const long pid = std::stol(n);
    const auto f = ProcStat(pid);
    if (pid != except && f.size() == 2 && f[1] == std::to_string(parent) &&
        f[0] != "Z") {
      out.push_back(pid);
    }
  }
  return out;
}

// Sends SIGCONT to a process at the end of the scope, so that a failing
// test leaves nothing stopped for the clean-up.
class ResumeAtExit {
 public:
  explicit ResumeAtExit(pid_t pid) : pid_(pid) {}
  ~ResumeAtExit() {
    if (pid_ > 0) kill(pid_, SIGCONT);
  }
  ResumeAtExit(const ResumeAtExit&) = delete;
  ResumeAtExit& operator=(const ResumeAtExit&) = delete;

 private:
  pid_t pid_;
};

// SIGKILLs, at the end of the scope, process `pid` if it still runs the
// `numagrid worker` of grid `name` (the check keeps a reused pid safe): a
// stale worker that failed to step down must not outlive the test.
class EndWorkerAtExit {
 public:
  EndWorkerAtExit(pid_t pid, std::string name)
      : pid_(pid), name_(std::move(name)) {}
  ~EndWorkerAtExit() {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(f)),
                        std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(" worker " + name_ + " ") != std::string::npos) {
      kill(pid_, SIGKILL);
    }
  }
  EndWorkerAtExit(const EndWorkerAtExit&) = delete;
  EndWorkerAtExit& operator=(const EndWorkerAtExit&) = delete;

 private:
  pid_t pid_;
  std::string name_;
};

// The lines of `text` that contain every one of `parts`.
std::vector<std::string> LinesWith(const std::string& text,
                                   const std::vector<std::string>& parts) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const std::string& p : parts) {
      all = all && line.find(p) != std::string::npos;
    }
    if (all) out.push_back(line);
  }
  return out;
}

class WatchdogUnderLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    const io::UringSupport u = io::ProbeUring("/tmp");
    if (!u.available) GTEST_SKIP() << "io_uring unavailable: " << u.detail;
    seed_ = TestSeed();
    name_ = UniqueName("wd");
    CreateOptions o;
    o.partitions = 4;
    o.memory_bytes = 16ULL << 20;
    o.ring_capacity = 1024;
    o.journal_dir = journal_.path();
    o.durability = kDurabilityAsync;
    o.flush_interval_us = 1000;
    o.sync_wait_ms = 2000;
    o.ring_wait_ms = 2000;
    o.snapshot_bytes = 0;
    auto created = CreateGrid(name_, o, SystemTopology());
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }
  void TearDown() override {
    ledger_->stop.store(true);
    for (pid_t w : writers_) kill(w, SIGKILL);
    for (pid_t w : writers_) (void)WaitChild(w);
    if (!name_.empty()) {
      (void)Run({"stop", name_, "--quiet", "--timeout", "10s"});
      // A worker adopted by no watchdog (one killed last) stops with it.
      if (const std::uint64_t pid = WorkerPid(); pid != 0) {
        kill(static_cast<pid_t>(pid), SIGKILL);
      }
      (void)DestroyGrid(name_);
    }
  }

  CliRun Run(const std::vector<std::string>& args) {
    return ::numagrid::testing::RunCli(kCli, args, scratch_.path());
  }
  std::unique_ptr<CliChild> StartWatchdog() {
    return std::make_unique<CliChild>(
        kCli,
        std::vector<std::string>{"start", name_, "--foreground",
                                 "--heartbeat-timeout", "2s"},
        scratch_.path());
  }
  // The pid of node 0's worker if one journals (alive, running), else 0.
  std::uint64_t WorkerPid() {
    return ::numagrid::testing::RunningWorkerPid(name_);
  }
  std::uint64_t WaitForWorker(std::uint64_t other_than = 0) {
    std::uint64_t pid = 0;
    EXPECT_TRUE(PollUntil([&] {
      pid = WorkerPid();
      return pid != 0 && pid != other_than;
    })) << "no journal worker (other than "
        << other_than << ")";
    return pid;
  }
  void StartWriters(int n, bool async_too) {
    for (int w = 0; w < n; ++w) {
      writers_.push_back(
          StartWriter(name_, w, ledger_.get(), Mix(seed_ + w), async_too));
    }
  }
  // Waits until the writers got `n` more durable acknowledgements.
  bool MoreAcks(std::uint64_t n) {
    const std::uint64_t from = ledger_->acked_total.load();
    return PollUntil([&] { return ledger_->acked_total.load() >= from + n; },
                     20000);
  }
  void StopWriters() {
    ledger_->stop.store(true);
    for (pid_t w : writers_) EXPECT_EQ(WaitChild(w), 0) << "writer " << w;
    writers_.clear();
    std::cout << "[ info     ] " << ledger_->acked_total.load()
              << " durable acks, " << ledger_->async_ok.load()
              << " async puts, " << ledger_->not_confirmed.load()
              << " writes not confirmed" << std::endl;
  }
  std::string Events() {
    return ReadFileBytes(journal_.path() + "/events.log");
  }
  // Node 0's journal segments, name -> contents.
  ::numagrid::testing::DirFiles JournalFiles() {
    ::numagrid::testing::DirFiles out;
    for (auto& [file, bytes] :
         ::numagrid::testing::ReadDirFiles(journal_.path())) {
      if (file.rfind("journal-0-", 0) == 0) out[file] = std::move(bytes);
    }
    return out;
  }

  // Every acknowledged-durable value (or a later attempted one) is in the
  // grid, and nothing that was never written.
  void ExpectLedgerHeld(int writers, const std::string& when) {
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok()) << when << ": " << g.status().ToString();
    (void)::numagrid::testing::ExpectLedgerHeld(*g, *ledger_.get(), writers,
                                                kKeysPerWriter, when);
  }
  // After the watchdog stopped: check --journal is clean, the ledger holds
  // in the grid and in the grid rebuilt from its journal alone.
  void ExpectCleanAndDurable(int writers) {
    const CliRun check = Run({"check", name_, "--journal"});
    EXPECT_EQ(check.exit_code, 0) << Describe(check);
    EXPECT_THAT(check.out, Not(HasSubstr("leaked")));
    ExpectLedgerHeld(writers, "live grid");
    ASSERT_TRUE(DestroyGrid(name_).ok());
    auto rec = RecoverGrid(name_, journal_.path(), SystemTopology(), {});
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    ExpectLedgerHeld(writers, "recovered grid");
  }

  std::uint64_t seed_ = 0;
  TempDir journal_;
  TempDir scratch_;
  std::string name_;
  SharedBlock<AckLedger> ledger_;
  std::vector<pid_t> writers_;
};

TEST_F(WatchdogUnderLoad, KilledWatchdogLeavesWorkersJournalingAndIsAdopted) {
  auto watchdog = StartWatchdog();
  const std::uint64_t worker = WaitForWorker();
  ASSERT_NE(worker, 0U);
  StartWriters(2, /*async_too=*/true);
  ASSERT_TRUE(MoreAcks(50));

  kill(watchdog->pid(), SIGKILL);
  EXPECT_EQ(watchdog->Wait().exit_code, 128 + SIGKILL);
  // Without a watchdog the worker goes on: durable and async writes both
  // keep succeeding.
  const std::uint64_t async_before = ledger_->async_ok.load();
  ASSERT_TRUE(MoreAcks(300)) << "durable writes stopped with the watchdog";
  EXPECT_TRUE(PollUntil(
      [&] { return ledger_->async_ok.load() >= async_before + 300; }));
  EXPECT_EQ(WorkerPid(), worker) << "the worker died with its watchdog";

  // A new watchdog adopts it: same pid, an adoption event naming it.
  watchdog = StartWatchdog();
  ASSERT_TRUE(PollUntil([&] {
    return Events().find("\"event\":\"worker_adopted\",\"grid\":\"" + name_ +
                         "\",\"node\":0,\"pid\":" + std::to_string(worker)) !=
           std::string::npos;
  })) << Events();
  // It also repairs the process slot the killed watchdog held (generous
  // bound; it looks every 200 ms).
  EXPECT_TRUE(PollUntil(
      [&] {
        auto c = CheckGrid(name_, /*repair=*/false);
        return c.ok() && c->dead_slots.empty();
      },
      5000))
      << "the killed watchdog's slot was not repaired";
  ASSERT_TRUE(MoreAcks(200));
  EXPECT_EQ(WorkerPid(), worker);
  const CliRun events = Run({"events", name_});
  EXPECT_THAT(events.out, HasSubstr("worker_adopted"));
  EXPECT_THAT(Events(), Not(HasSubstr("worker_restarted")));

  StopWriters();
  const CliRun stop = Run({"stop", name_});
  EXPECT_EQ(stop.exit_code, 0) << Describe(stop);
  EXPECT_EQ(watchdog->Wait().exit_code, 0);
  EXPECT_EQ(WorkerPid(), 0U) << "stop ends the adopted worker too";
  ExpectCleanAndDurable(2);
}

TEST_F(WatchdogUnderLoad, SlotsOfKilledWritersAreRepairedWithNothingLeaked) {
  auto watchdog = StartWatchdog();
  ASSERT_NE(WaitForWorker(), 0U);
  StartWriters(1, /*async_too=*/true);  // a survivor, writing throughout
  ASSERT_TRUE(MoreAcks(20));
  std::uint64_t r = seed_;
  constexpr int kKills = 5;
  for (int i = 0; i < kKills; ++i) {
    // A writer of its own keys (writer index 1..), killed mid-write.
    const int w = 1 + i % (kMaxWriters - 1);
    const std::uint64_t from = ledger_->async_ok.load();
    const pid_t victim =
        StartWriter(name_, w, ledger_.get(), Mix(seed_ + 100 + i), true);
    ASSERT_TRUE(
        PollUntil([&] { return ledger_->async_ok.load() >= from + 20; }));
    r = Mix(r);
    usleep(static_cast<useconds_t>(r % 3000));
    kill(victim, SIGKILL);
    EXPECT_EQ(WaitChild(victim), 128 + SIGKILL);
    // DESIGN invariant 2 says within a second; the watchdog looks every
    // 200 ms. Polled with a generous bound, not timed.
    EXPECT_TRUE(PollUntil(
        [&] {
          auto c = CheckGrid(name_, /*repair=*/false);
          return c.ok() && c->dead_slots.empty();
        },
        5000))
        << "kill " << i << ": the dead writer's slot was not repaired";
  }
  EXPECT_THAT(Events(), HasSubstr("\"event\":\"repair\""));
  ASSERT_TRUE(MoreAcks(20)) << "the surviving writer is blocked";
  StopWriters();
  const CliRun check = Run({"check", name_});
  EXPECT_EQ(check.exit_code, 0) << Describe(check);
  EXPECT_THAT(check.out, HasSubstr("of 0 dead process slot(s)"));
  EXPECT_THAT(check.out, Not(HasSubstr("leaked")));
  EXPECT_EQ(Run({"stop", name_}).exit_code, 0);
  EXPECT_EQ(watchdog->Wait().exit_code, 0);
  ExpectCleanAndDurable(kMaxWriters);
}

TEST_F(WatchdogUnderLoad, KilledWorkerUnderSyncLoadIsReplacedLosingNoAck) {
  auto watchdog = StartWatchdog();
  std::uint64_t worker = WaitForWorker();
  ASSERT_NE(worker, 0U);
  StartWriters(3, /*async_too=*/false);
  ASSERT_TRUE(MoreAcks(50));
  constexpr int kKills = 5;
  for (int i = 0; i < kKills; ++i) {
    ASSERT_EQ(kill(static_cast<pid_t>(worker), SIGKILL), 0);
    const std::uint64_t replacement = WaitForWorker(worker);
    ASSERT_NE(replacement, 0U) << "kill " << i << ": not replaced";
    worker = replacement;
    ASSERT_TRUE(MoreAcks(200)) << "kill " << i << ": durable writes stopped";
  }
  const std::string events = Events();
  EXPECT_THAT(events, HasSubstr("killed by signal"));
  EXPECT_THAT(events, HasSubstr("\"event\":\"worker_restarted\""));
  StopWriters();
  EXPECT_EQ(Run({"stop", name_}).exit_code, 0);
  EXPECT_EQ(watchdog->Wait().exit_code, 0);
  ExpectCleanAndDurable(3);
}

// A worker stopped while it journals, whom the watchdog's SIGKILL does not
// reach (here a seccomp filter makes it fail with EPERM, as it fails for
// another user's process): the watchdog fences it and starts workers of
// newer generations, which cannot take the journal lock while the stopped
// one holds it. Resumed, the stale worker must step down without writing a
// byte, exit 4, and leave a journal that holds every acknowledged write and
// nothing else.
TEST_F(WatchdogUnderLoad,
       StoppedWorkerTheKillMissesStepsDownUnwrittenOnResume) {
  const std::string log = scratch_.path() + "/watchdog.log";
  const pid_t watchdog = ForkChild([&] {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 125;
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (!DenySigkill()) return 126;
    execl(kCli, kCli, "start", name_.c_str(), "--foreground",
          "--heartbeat-timeout", "1s", static_cast<char*>(nullptr));
    return 127;
  });
  ASSERT_GT(watchdog, 0);
  ResumeAtExit resume_watchdog(watchdog);
  const auto watchdog_log = [&] { return ReadFileBytes(log); };
  const std::uint64_t old = WaitForWorker();
  ASSERT_NE(old, 0U) << watchdog_log();
  EndWorkerAtExit end_old(static_cast<pid_t>(old), name_);
  ResumeAtExit resume_old(static_cast<pid_t>(old));
  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  JournalNodeState& ns = (*h)->journal_node(0);
  const std::uint64_t old_generation = ns.worker_generation.load();
  ASSERT_EQ(old_generation, ns.generation.load());

  constexpr int kWriters = 3;
  StartWriters(kWriters, /*async_too=*/false);
  ASSERT_TRUE(MoreAcks(100));
  // Writers pause between two puts and the worker journals all they wrote,
  // so that it is stopped with no batch under way: a worker stopped between
  // its generation check and its fdatasync may finish that one batch when
  // resumed (docs/adr/0004-watchdog-and-fencing.md), which would blur "the
  // stale worker writes nothing".
  ledger_->pause.store(true);
  ASSERT_TRUE(PollUntil([&] { return ledger_->paused.load() == kWriters; }));
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(**h); }));
  ASSERT_EQ(kill(static_cast<pid_t>(old), SIGSTOP), 0);
  ASSERT_TRUE(
      PollUntil([&] { return ProcState(static_cast<long>(old)) == 'T'; }));
  ledger_->pause.store(false);  // the load goes on; sync puts wait in vain

  // The heartbeat goes stale: the watchdog fences the worker, fails to kill
  // it, and starts a newer one.
  ASSERT_TRUE(PollUntil(
      [&] {
        return !LinesWith(Events(),
                          {"\"event\":\"worker_killed\"", "the kill failed"})
                    .empty() &&
               !LinesWith(Events(), {"\"event\":\"worker_restarted\""}).empty();
      },
      30000))
      << Events() << watchdog_log();
  EXPECT_TRUE(ProcessRunning(old)) << "the kill reached the stopped worker";
  EXPECT_GE(ns.generation.load(), old_generation + 2)
      << "no fence and newer start";
  EXPECT_EQ(ns.worker_generation.load(), old_generation)
      << "a newer worker journaled while the stale one held the lock";
  EXPECT_THAT(Events(), Not(HasSubstr("worker_adopted")));

  // Freeze the watchdog, so that no newer worker can start before the check
  // below, and wait for those it started to give up (the lock is held).
  ASSERT_EQ(kill(watchdog, SIGSTOP), 0);
  ASSERT_TRUE(PollUntil([&] { return ProcState(watchdog) == 'T'; }));
  ASSERT_TRUE(PollUntil(
      [&] { return LiveChildren(watchdog, static_cast<long>(old)).empty(); }));
  ASSERT_FALSE(AllJournaled(**h))
      << "no change is pending: the stale worker would have nothing to write";
  const auto files = JournalFiles();
  ASSERT_FALSE(files.empty());
  const std::uint64_t flushes = ns.flushes.load();
  const std::uint64_t durable = ns.durable_journal_seq.load();
  const std::uint64_t fences = ns.fences.load();

  ASSERT_EQ(kill(static_cast<pid_t>(old), SIGCONT), 0);
  EXPECT_TRUE(
      PollUntil([&] { return !NodeJournalLocked(journal_.path(), 0); }, 20000))
      << "the fenced worker went on journaling after it was resumed";
  EXPECT_TRUE(PollUntil([&] { return !ProcessRunning(old); }, 20000))
      << "the fenced worker did not exit";
  EXPECT_TRUE(JournalFiles() == files)
      << "the fenced worker wrote to the journal after it was replaced";
  EXPECT_EQ(ns.flushes.load(), flushes);
  EXPECT_EQ(ns.durable_journal_seq.load(), durable);
  EXPECT_EQ(ns.fences.load(), fences + 1);
  bool stepped_down = false;
  for (const GridEvent& e : ReadEvents(**h)) {
    if (e.kind == EventKind::kWorkerSteppedDown && e.pid == old) {
      stepped_down = true;
      EXPECT_EQ(e.generation, old_generation);
    }
  }
  EXPECT_TRUE(stepped_down) << "no worker_stepped_down event from pid " << old;

  // The watchdog, resumed, records its exit status and starts a newer
  // worker, which journals what waited.
  ASSERT_EQ(kill(watchdog, SIGCONT), 0);
  EXPECT_TRUE(PollUntil(
      [&] {
        return !LinesWith(Events(),
                          {"\"event\":\"worker_exited\"",
                           "\"pid\":" + std::to_string(old) + ",",
                           "exited with status 4", "fenced and replaced"})
                    .empty();
      },
      20000))
      << Events();
  EXPECT_NE(WaitForWorker(old), 0U) << Events() << watchdog_log();
  EXPECT_GT(ns.worker_generation.load(), old_generation + 1);
  ASSERT_TRUE(MoreAcks(200)) << Events() << watchdog_log();

  StopWriters();
  const CliRun stop = Run({"stop", name_});
  EXPECT_EQ(stop.exit_code, 0) << Describe(stop);
  EXPECT_EQ(WaitChild(watchdog), 0) << watchdog_log();
  // The journal: whole (no torn or corrupt tail), and replaying it rebuilds
  // exactly what readers see.
  const JournalRead journal = ReadJournal(journal_.path(), 0, (*h)->grid_id());
  ASSERT_TRUE(journal.status.ok()) << journal.status.ToString();
  EXPECT_EQ(journal.tail.kind, io::TailKind::kNone) << journal.tail.ToString();
  for (std::size_t i = 1; i < journal.records.size(); ++i) {
    ASSERT_EQ(journal.records[i].sequence, journal.records[i - 1].sequence + 1)
        << "record " << i;
  }
  EXPECT_EQ(StateDiff(ModelOf(journal.records), ReadGridState(name_)), "");
  h->reset();
  ExpectCleanAndDurable(kWriters);
}

}  // namespace
}  // namespace numagrid::core
