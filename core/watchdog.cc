#include "core/watchdog.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>
#include <vector>

#include "core/event_log.h"
#include "core/grid_handle.h"
#include "core/grid_repair.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
#include "core/journal_worker.h"
#include "core/partition.h"
#include "core/stats.h"
#include "io/errno_status.h"
#include "io/node_file_name.h"
#include "shm/robust_mutex.h"

namespace numagrid::core {
namespace {

using Clock = std::chrono::steady_clock;

// A worker that dies sooner than this after its start counts as a crash
// loop: the next start waits, twice as long each time, up to kMaxBackoff.
constexpr auto kStableRun = std::chrono::seconds(2);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kStopGrace = std::chrono::seconds(60);
// How often the watchdog looks for writers' backpressure waits, and the
// least time between two backpressure events.
constexpr auto kBackpressurePoll = std::chrono::seconds(1);
constexpr auto kBackpressureEventEvery = std::chrono::seconds(10);

struct Worker {
  // The journal stream it writes: io::StreamId(node, stream), which is the
  // node number for stream 0.
  std::uint32_t node = 0;
  pid_t pid = -1;        // -1: not running
  bool adopted = false;  // started by an earlier watchdog: not our child
  Clock::time_point started;
  Clock::time_point next_start;  // when a restart is due
  std::chrono::milliseconds backoff{0};
  std::uint64_t starts = 0;
  std::uint64_t generation = 0;  // the one it was started with or holds
};

class Watchdog {
 public:
  Watchdog(GridHandle& grid, const WatchdogOptions& o)
      : grid_(grid), o_(o), dir_(grid.journal_dir()) {
    // One worker per journal stream: K per node (docs/adr/0008-journal-
    // streams.md), each supervised, fenced and adopted on its own.
    for (const std::uint32_t stream : grid.stream_ids()) {
      workers_.emplace_back();
      workers_.back().node = stream;
    }
  }

  // `previous_pid`: the pid an earlier watchdog left published (it clears
  // it when it stops gracefully), 0 if none.
  Status Run(std::uint64_t previous_pid) {
    Event(EventKind::kWatchdogStarted, nullptr,
          previous_pid == 0
              ? std::string()
              : "the previous watchdog (pid " + std::to_string(previous_pid) +
                    ") ended without stopping",
          -1);
    // Waits before this watchdog started are not news.
    backpressure_.reported = BackpressureWaits();
    backpressure_.last_poll = Clock::now();
    for (Worker& w : workers_) Start(w, "start");
    if (o_.ready) o_.ready();
    auto last_repair = Clock::now();
    while (!Stopping()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o_.poll_ms));
      for (Worker& w : workers_) Supervise(w);
      ReapSuperseded();
      if (Clock::now() - last_repair >= std::chrono::milliseconds(200)) {
        RepairDeadAttachers();
        last_repair = Clock::now();
      }
      if (Clock::now() - backpressure_.last_poll >= kBackpressurePoll) {
        WatchBackpressure();
        backpressure_.last_poll = Clock::now();
      }
    }
    StopWorkers();
    Event(EventKind::kWatchdogStopped, nullptr, "", -1);
    return Status::Ok();
  }

 private:
  bool Stopping() const {
    // relaxed: a flag set by a signal handler.
    return o_.stop != nullptr && o_.stop->load(std::memory_order_relaxed);
  }

  void Log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  // An event about worker `w` (or the grid, if null): into the control
  // segment's ring and events.log, and a log line.
  void Event(EventKind kind, const Worker* w, const std::string& cause,
             std::int64_t duration_ms) {
    GridEvent e;
    e.kind = kind;
    if (w != nullptr) {
      e.node = static_cast<std::int32_t>(w->node);
      e.pid = w->pid > 0 ? static_cast<std::uint64_t>(w->pid) : 0;
      e.generation = w->generation;
    }
    e.cause = cause;
    e.duration_ms = duration_ms;
    RecordEvent(grid_, e, dir_);
    std::string line(EventKindName(kind));
    if (e.node >= 0) {
      line += " " + io::StreamLabel(static_cast<std::uint32_t>(e.node));
    }
    if (e.pid != 0) line += " pid " + std::to_string(e.pid);
    if (e.generation != 0)
      line += " generation " + std::to_string(e.generation);
    if (!cause.empty()) line += ": " + cause;
    Log(line);
  }

  void Start(Worker& w, const std::string& why) {
    // A worker left running by a watchdog that died is adopted, not
    // replaced: it holds the node's journal and loses nothing by going on.
    if (NodeJournalLocked(dir_, w.node)) {
      // relaxed: the pid it published when it took the lock.
      const auto pid =
          static_cast<pid_t>(grid_.journal_node(w.node).worker_pid.load(
              std::memory_order_relaxed));
      // Never one that is fenced (a stopped worker the kill did not reach
      // still holds the lock): it steps down when it resumes, and the new
      // worker started below takes over then. relaxed: both were published
      // before the lock was taken (worker_generation) or long before
      // (generation); a stale read starts a worker that finds the lock held
      // and is retried.
      const bool current =
          grid_.journal_node(w.node).worker_generation.load(
              std::memory_order_relaxed) ==
          grid_.journal_node(w.node).generation.load(std::memory_order_relaxed);
      if (pid > 0 && current &&
          ProcessRunning(static_cast<std::uint64_t>(pid))) {
        w.pid = pid;
        w.adopted = true;
        // Its start is unknown: not a crash loop if it dies soon.
        w.started = Clock::now() - kStableRun;
        // relaxed: published by the worker once it held the lock; for the
        // event and status only.
        w.generation = grid_.journal_node(w.node).worker_generation.load(
            std::memory_order_relaxed);
        ++w.starts;
        Event(EventKind::kWorkerAdopted, &w,
              "it was running when this watchdog started", -1);
        return;
      }
    }
    w.adopted = false;
    if (w.starts == 0) ReportWorkerLostUnwatched(w);
    // A new generation for the new worker, taken before it exists: any
    // older worker that still runs (a stopped one the kernel has not killed
    // yet, one started by hand) is fenced by it.
    w.generation = TakeWorkerGeneration(grid_, w.node);
    const std::string node = std::to_string(io::StreamNode(w.node));
    const std::string stream = std::to_string(io::StreamIndex(w.node));
    const std::string generation = std::to_string(w.generation);
    const pid_t pid = fork();
    if (pid == 0) {
      // The child: the worker command, which attaches on its own.
      execl(o_.worker_exe.c_str(), o_.worker_exe.c_str(), "worker",
            grid_.name().c_str(), "--node", node.c_str(), "--stream",
            stream.c_str(), "--generation", generation.c_str(),
            static_cast<char*>(nullptr));
      std::fprintf(stderr, "numagrid watchdog: cannot run %s: %s\n",
                   o_.worker_exe.c_str(), io::detail::ErrnoText(errno).c_str());
      _exit(127);
    }
    if (pid < 0) {
      w.pid = -1;
      Event(EventKind::kWorkerStartFailed, &w, io::detail::ErrnoText(errno),
            -1);
      w.next_start = Clock::now() + std::chrono::seconds(1);
      return;
    }
    w.pid = pid;
    w.started = Clock::now();
    if (w.starts++ > 0) {
      // relaxed: a counter for `status`.
      grid_.journal_node(w.node).restarts.fetch_add(1,
                                                    std::memory_order_relaxed);
    }
    Event(
        w.starts == 1 ? EventKind::kWorkerStarted : EventKind::kWorkerRestarted,
        &w, why, -1);
  }

  // A worker that died while no watchdog ran (its lock is free, it had not
  // stopped gracefully) gets its worker_exited event now, late.
  void ReportWorkerLostUnwatched(const Worker& w) {
    const JournalNodeState& ns = grid_.journal_node(w.node);
    // relaxed: what the dead worker published last; for the event only.
    const std::uint64_t pid = ns.worker_pid.load(std::memory_order_relaxed);
    const std::uint32_t state = ns.worker_state.load(std::memory_order_relaxed);
    if (pid == 0 || state == kWorkerStopped || state == kWorkerNone ||
        ProcessRunning(pid)) {
      return;
    }
    Worker dead = w;
    dead.pid = static_cast<pid_t>(pid);
    dead.generation = ns.worker_generation.load(std::memory_order_relaxed);
    Event(EventKind::kWorkerExited, &dead,
          "ended while no watchdog ran (found when this one started)", -1);
  }

  void Supervise(Worker& w) {
    const auto now = Clock::now();
    if (w.pid < 0) {
      if (now >= w.next_start) Start(w, "restart after backoff");
      return;
    }
    int status = 0;
    if (w.adopted) {
      // Not our child: no exit status. It lives as long as it holds the
      // node's journal lock (a pid alone could be reused or a zombie).
      if (!NodeJournalLocked(dir_, w.node)) {
        Exited(w, -1);
        return;
      }
    } else if (waitpid(w.pid, &status, WNOHANG) == w.pid) {
      Exited(w, status);
      return;
    }
    // A worker that stopped beating (paused, wedged) is killed and replaced.
    const JournalNodeState& ns = grid_.journal_node(w.node);
    // relaxed: a heartbeat is a hint with a generous timeout.
    const std::uint64_t beat =
        ns.heartbeat_mono_ms.load(std::memory_order_relaxed);
    const std::uint64_t pid = ns.worker_pid.load(std::memory_order_relaxed);
    const bool ours = pid == static_cast<std::uint64_t>(w.pid);
    const auto since_start =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - w.started);
    // CLOCK_MONOTONIC: a step of the wall clock kills nobody.
    const std::uint64_t now_ms = shm::MonotonicNowNs() / 1'000'000;
    const bool stale =
        since_start.count() > o_.heartbeat_timeout_ms &&
        (!ours || (now_ms > beat && now_ms - beat > o_.heartbeat_timeout_ms));
    if (stale) {
      const std::string why =
          ours ? "heartbeat older than " +
                     std::to_string(o_.heartbeat_timeout_ms) + " ms"
               : "never started journaling within the heartbeat timeout";
      // Fence first: should the kill not take (another user's or another
      // pid namespace's process, or one the kernel has not yet killed), the
      // worker steps down before its next journal write once it resumes,
      // and lets go of the journal for its replacement.
      (void)FenceNodeWorker(grid_, w.node, why);
      if (kill(w.pid, SIGKILL) != 0) {
        const int err = errno;
        // The kill did not reach it (another user's process, one in
        // another pid namespace). It is fenced: once it runs again it
        // steps down before its next journal write and lets go of the
        // journal lock. Until then the workers started for the node find
        // the lock held and exit, and the crash-loop back-off retries them.
        Event(EventKind::kWorkerKilled, &w,
              why + "; the kill failed (" + io::detail::ErrnoText(err) +
                  "): fenced, it steps down when it runs again",
              -1);
        superseded_.push_back(w);
        w.pid = -1;
        w.next_start = Clock::now();
        Start(w, "replacing a fenced worker that the kill did not reach");
        return;
      }
      Event(EventKind::kWorkerKilled, &w, why, -1);
      if (w.adopted) {
        // Until the kernel released its journal lock, bounded.
        for (int i = 0; i < 5000 && NodeJournalLocked(dir_, w.node); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        status = -1;
      } else {
        waitpid(w.pid, &status, 0);
      }
      Exited(w, status);
    }
  }

  // What a worker's wait status (-1: an adopted worker, no status) says.
  static std::string ExitCause(int status) {
    std::string cause;
    if (status == -1) {
      cause = "an adopted worker ended";
    } else if (WIFEXITED(status)) {
      cause = "exited with status " + std::to_string(WEXITSTATUS(status));
      if (WEXITSTATUS(status) == static_cast<int>(StatusCode::kAlreadyExists)) {
        cause += " (fenced, or another worker holds the node's journal)";
      }
    } else if (WIFSIGNALED(status)) {
      cause = std::string("killed by signal ") + strsignal(WTERMSIG(status));
    }
    return cause;
  }

  // Records the end of each fenced worker that the kill did not reach, once
  // it has ended: a child of ours by its exit status, an adopted one when
  // its pid no longer runs (the node's journal lock is no sign: the new
  // worker takes it).
  void ReapSuperseded() {
    for (auto it = superseded_.begin(); it != superseded_.end();) {
      int status = -1;
      bool ended = false;
      if (it->adopted) {
        ended = !ProcessRunning(static_cast<std::uint64_t>(it->pid));
      } else {
        const pid_t r = waitpid(it->pid, &status, WNOHANG);
        ended = r == it->pid || r < 0;
      }
      if (!ended) {
        ++it;
        continue;
      }
      Event(EventKind::kWorkerExited, &*it,
            ExitCause(status) + "; it had been fenced and replaced",
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                  it->started)
                .count());
      it = superseded_.erase(it);
    }
  }

  void Exited(Worker& w, int status) {
    const auto ran = Clock::now() - w.started;
    const std::string cause = ExitCause(status);
    Event(EventKind::kWorkerExited, &w, cause,
          std::chrono::duration_cast<std::chrono::milliseconds>(ran).count());
    w.pid = -1;
    if (ran < kStableRun) {
      w.backoff =
          w.backoff.count() == 0
              ? std::chrono::duration_cast<std::chrono::milliseconds>(
                    kFirstBackoff)
              : std::min(w.backoff * 2,
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             kMaxBackoff));
      Event(EventKind::kCrashLoopBackoff, &w,
            "worker ran " +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::milliseconds>(ran)
                        .count()) +
                " ms; next start in " + std::to_string(w.backoff.count()) +
                " ms",
            -1);
    } else {
      w.backoff = std::chrono::milliseconds(0);
    }
    w.next_start = Clock::now() + w.backoff;
    if (w.backoff.count() == 0) Start(w, "replacing the exited worker");
  }

  struct WaitTotals {
    std::uint64_t waits = 0;
    std::uint64_t wait_ns = 0;
  };

  // Writes that waited for change-ring room, over every process slot.
  WaitTotals BackpressureWaits() {
    WaitTotals t;
    for (std::uint32_t i = 0; i < grid_.config().process_capacity; ++i) {
      const ProcessCounters& c = grid_.process_stats(i).total;
      // relaxed: monotonic counters, each written by one process; a stale
      // value only moves a wait into the next poll.
      t.waits += c.backpressure_waits.load(std::memory_order_relaxed);
      t.wait_ns += c.backpressure_wait_ns.load(std::memory_order_relaxed);
    }
    return t;
  }

  // Writers waiting for change-ring room (the journal behind them) is an
  // event, found by polling the processes' counters: the data path writes
  // no event. At most one per kBackpressureEventEvery while it lasts, each
  // counting the waits since the last one, so that a saturated journal
  // does not flush the event ring.
  void WatchBackpressure() {
    const WaitTotals now = BackpressureWaits();
    if (now.waits <= backpressure_.reported.waits) return;
    if (backpressure_.any_event &&
        Clock::now() - backpressure_.last_event < kBackpressureEventEvery) {
      return;
    }
    const std::uint64_t waits = now.waits - backpressure_.reported.waits;
    const std::uint64_t wait_ms =
        (now.wait_ns > backpressure_.reported.wait_ns
             ? now.wait_ns - backpressure_.reported.wait_ns
             : 0) /
        1'000'000;
    const GridStatsReport r = CollectStats(grid_);
    const PartitionStatsRow* fullest = nullptr;
    for (const PartitionStatsRow& p : r.partitions) {
      if (fullest == nullptr || p.ring_depth > fullest->ring_depth) {
        fullest = &p;
      }
    }
    // Short: the event ring keeps 79 bytes of a cause (events.log all).
    std::string cause = std::to_string(waits) + " writes waited " +
                        std::to_string(wait_ms) + " ms for ring room";
    if (fullest != nullptr) {
      cause += "; fullest: partition " + std::to_string(fullest->partition) +
               " (node " + std::to_string(fullest->node) + ") " +
               std::to_string(fullest->ring_depth) + "/" +
               std::to_string(r.ring_capacity);
    }
    Event(EventKind::kBackpressure, nullptr, cause,
          static_cast<std::int64_t>(wait_ms));
    backpressure_.reported = now;
    backpressure_.last_event = Clock::now();
    backpressure_.any_event = true;
  }

  void RepairDeadAttachers() {
    const auto t0 = Clock::now();
    const RepairReport r = RepairDeadProcesses(grid_);
    if (r.slots_repaired == 0 && r.partitions_repaired == 0) return;
    Event(
        EventKind::kRepair, nullptr,
        std::to_string(r.slots_repaired) + " dead process slot(s), " +
            std::to_string(r.partitions_repaired) + " partition(s)",
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
            .count());
  }

  void StopWorkers() {
    ReapSuperseded();
    for (const Worker& w : superseded_) {
      // Not waited for: it is fenced, and may stay stopped for ever.
      Event(EventKind::kWorkerStoppedByWatchdog, &w,
            "left running: fenced, it steps down when it runs again", -1);
    }
    for (Worker& w : workers_) {
      if (w.pid > 0) kill(w.pid, SIGTERM);
    }
    const auto deadline = Clock::now() + kStopGrace;
    for (Worker& w : workers_) {
      if (w.pid <= 0) continue;
      int status = 0;
      for (;;) {
        if (w.adopted) {
          if (!NodeJournalLocked(dir_, w.node)) break;
        } else {
          const pid_t r = waitpid(w.pid, &status, WNOHANG);
          if (r == w.pid || r < 0) break;
        }
        if (Clock::now() > deadline) {
          Event(EventKind::kWorkerKilled, &w,
                "did not drain within the stop grace period", -1);
          kill(w.pid, SIGKILL);
          waitpid(w.pid, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      Event(EventKind::kWorkerStoppedByWatchdog, &w,
            w.adopted ? "ended (adopted: exit status unknown)"
            : WIFEXITED(status) && WEXITSTATUS(status) == 0
                ? "drained and flushed"
                : "exit status " + std::to_string(status),
            -1);
      w.pid = -1;
    }
  }

  GridHandle& grid_;
  const WatchdogOptions& o_;
  const std::string dir_;
  std::vector<Worker> workers_;
  // Fenced workers that the kill did not reach and that have not ended
  // yet; no longer counted as the node's worker.
  std::vector<Worker> superseded_;
  struct {
    WaitTotals reported;  // the counts the last event (or the start) had
    Clock::time_point last_poll{};
    Clock::time_point last_event{};
    bool any_event = false;
  } backpressure_;
};

Result<int> LockWatchdog(const std::string& dir) {
  const std::string path = dir + "/watchdog.lock";
  const int fd = OpenJournalDirFile(dir, "watchdog.lock", O_RDWR);
  if (fd < 0) return io::detail::ErrnoStatus(errno, "open " + path);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    const int err = errno;
    close(fd);
    if (err == EAGAIN || err == EACCES) return AlreadyExists("");
    return io::detail::ErrnoStatus(err, "lock " + path);
  }
  return fd;
}

bool WatchdogLocked(const std::string& dir) {
  const int fd = open((dir + "/watchdog.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = 1;
  const bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  close(fd);
  return held;
}

}  // namespace

bool ProcessRunning(std::uint64_t pid) {
  if (pid == 0 || kill(static_cast<pid_t>(pid), 0) != 0) return false;
  // /proc/<pid>/stat: "pid (comm) S ...", where comm may hold spaces and
  // parentheses, so the state is the first field after the last ')'.
  std::FILE* f =
      std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "re");
  if (f == nullptr) return true;
  char buf[512];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* paren = std::strrchr(buf, ')');
  return paren == nullptr || paren[1] == '\0' || paren[2] != 'Z';
}

std::uint64_t RunningWatchdog(std::string_view name) {
  auto h = GridHandle::Attach(name);
  if (!h.ok() || !(*h)->journaled()) return 0;
  // relaxed: a lookup; ProcessRunning says whether it still runs.
  const std::uint64_t pid =
      (*h)->journal().watchdog_pid.load(std::memory_order_relaxed);
  // The lock, not the pid, says that a watchdog runs (a pid can be reused).
  if (!WatchdogLocked((*h)->journal_dir())) return 0;
  return ProcessRunning(pid) ? pid : 0;
}

Status RunWatchdog(std::string_view name, const WatchdogOptions& o) {
  auto h = GridHandle::Attach(name);
  if (!h.ok()) return h.status();
  if (!(*h)->journaled()) {
    return InvalidArgument("grid '" + std::string(name) +
                           "' has no journal (created with --no-journal): "
                           "there are no workers to run");
  }
  auto lock = LockWatchdog((*h)->journal_dir());
  if (!lock.ok()) {
    if (lock.status().code() != StatusCode::kAlreadyExists) {
      return lock.status();
    }
    return AlreadyExists("grid '" + std::string(name) +
                         "' already has a watchdog (pid " +
                         std::to_string((*h)->journal().watchdog_pid.load(
                             std::memory_order_relaxed)) +
                         ")");
  }
  // relaxed: read by `stop` and `status` to find us; the lock is what
  // makes us the only one.
  const std::uint64_t previous = (*h)->journal().watchdog_pid.exchange(
      static_cast<std::uint64_t>(getpid()), std::memory_order_relaxed);
  Watchdog w(**h, o);
  Status s = w.Run(previous);
  (*h)->journal().watchdog_pid.store(0, std::memory_order_relaxed);
  close(*lock);
  return s;
}

}  // namespace numagrid::core
