// Runner: workers, the shared result slots, the parent's phase control.
#include "bench/numagrid_bench/runner.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "bench/numagrid_bench/baseline.h"
#include "bench/numagrid_bench/histogram.h"

namespace numagrid::bench {
namespace {

enum Phase : std::uint32_t { kAttach = 0, kWarmup, kMeasure, kStop };
enum SlotState : std::uint32_t { kStarting = 0, kReady, kDone, kFailed };

static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "only lock-free atomics work between processes");

// The first page of the mapping. Written only by the parent.
struct alignas(64) Control {
  // release by the parent; acquire by the workers. Carries no data, only the
  // phase, so a worker that sees a change late runs one more operation in
  // the old phase: harmless.
  std::atomic<std::uint32_t> phase{kAttach};
};

struct OpStats {
  LatencyHistogram histogram;
  std::uint64_t not_found = 0;
  std::uint64_t failed = 0;
};

// One per worker, page-aligned so no two workers share a cache line. Written
// only by its worker until it stores state kDone or kFailed (release), read
// by the parent after it loads that state (acquire) or reaps the process.
struct alignas(4096) WorkerSlot {
  std::atomic<std::uint32_t> state{kStarting};
  std::uint64_t start_ns = 0;  // first measured operation began
  std::uint64_t end_ns = 0;    // last measured operation ended
  std::uint64_t inserts = 0;   // insert ids used (warmup included)
  bool measured = false;
  OpStats ops[kOpTypeCount];
  char error[512] = {};
};

struct SharedArea {
  void* base = MAP_FAILED;
  std::size_t bytes = 0;
  Control* control = nullptr;
  WorkerSlot* slots = nullptr;

  explicit SharedArea(std::uint32_t procs) {
    bytes = sizeof(WorkerSlot) * (procs + 1);
    base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return;
    control = new (base) Control();
    slots = reinterpret_cast<WorkerSlot*>(static_cast<char*>(base) +
                                          sizeof(WorkerSlot));
    for (std::uint32_t i = 0; i < procs; ++i) new (&slots[i]) WorkerSlot();
  }
  ~SharedArea() {
    if (base != MAP_FAILED) ::munmap(base, bytes);
  }
  SharedArea(const SharedArea&) = delete;
  SharedArea& operator=(const SharedArea&) = delete;
};

void SetError(WorkerSlot* slot, const std::string& message) {
  std::snprintf(slot->error, sizeof slot->error, "%s", message.c_str());
}

// The body of every worker, process or thread. Returns its exit code.
int WorkerMain(Target& target, const RunConfig& c, Control* control,
               WorkerSlot* slot, std::uint32_t index) {
  auto opened = target.Open();
  if (!opened.ok()) {
    SetError(slot, opened.status().ToString());
    slot->state.store(kFailed, std::memory_order_release);
    return 1;
  }
  std::unique_ptr<Session> session = std::move(*opened);

  Rng rng(c.seed * 0x9e3779b97f4a7c15ULL + index + 1);
  KeyChooser chooser(c.distribution, c.records);
  chooser.set_insert_stride(c.procs);
  const OpChooser op_chooser(c.workload);
  const KeySpace keys(c.key_size);
  std::string value(c.value_size, 'v');
  char kbuf[KeySpace::kKeyBufferSize];
  std::uint64_t limit = 0;
  if (c.ops != 0) limit = c.ops / c.procs + (index < c.ops % c.procs ? 1 : 0);

  // release: publishes nothing but readiness; the parent's acquire load
  // only counts ready workers.
  slot->state.store(kReady, std::memory_order_release);
  while (control->phase.load(std::memory_order_acquire) == kAttach)
    ::sched_yield();

  bool measuring = false;
  std::uint64_t done = 0;
  std::uint64_t writes = 0;
  for (;;) {
    const std::uint32_t phase = control->phase.load(std::memory_order_acquire);
    if (phase == kStop) break;
    if (phase == kMeasure && !measuring) {
      for (OpStats& s : slot->ops) {
        s.histogram.Reset();
        s.not_found = 0;
        s.failed = 0;
      }
      measuring = true;
      slot->measured = true;
      slot->start_ns = NowNs();
    }
    if (limit != 0 && done >= limit) break;

    const OpType op = op_chooser.Next(rng);
    Outcome outcome = Outcome::kOk;
    std::uint64_t t0 = 0, t1 = 0;
    switch (op) {
      case OpType::kRead: {
        const std::string_view key = keys.Format(chooser.Next(rng), kbuf);
        t0 = NowNs();
        outcome = session->Read(key);
        t1 = NowNs();
        break;
      }
      case OpType::kUpdate: {
        const std::string_view key = keys.Format(chooser.Next(rng), kbuf);
        value[0] =
            static_cast<char>('a' + writes++ % 26);  // a new value each time
        t0 = NowNs();
        outcome = session->Update(key, value);
        t1 = NowNs();
        break;
      }
      case OpType::kInsert: {
        const std::uint64_t id =
            c.insert_base + index + slot->inserts++ * c.procs;
        const std::string_view key = keys.Format(id, kbuf);
        t0 = NowNs();
        outcome = session->Insert(key, value);
        t1 = NowNs();
        if (outcome == Outcome::kOk) chooser.NoteInsert(id);
        break;
      }
      case OpType::kScan: {
        const std::uint64_t id = chooser.Next(rng);
        const std::string_view key = keys.Format(id, kbuf);
        const auto len =
            static_cast<std::uint32_t>(1 + rng.Below(kMaxScanLength));
        t0 = NowNs();
        outcome = session->Scan(key, id, len);
        t1 = NowNs();
        break;
      }
      case OpType::kReadModifyWrite: {
        const std::string_view key = keys.Format(chooser.Next(rng), kbuf);
        value[0] = static_cast<char>('a' + writes++ % 26);
        t0 = NowNs();
        outcome = session->Read(key);
        if (outcome == Outcome::kOk) outcome = session->Update(key, value);
        t1 = NowNs();
        break;
      }
    }
    OpStats& s = slot->ops[static_cast<int>(op)];
    s.histogram.Record(t1 - t0);
    if (outcome == Outcome::kNotFound) ++s.not_found;
    if (outcome == Outcome::kFailed) ++s.failed;
    if (measuring) {
      ++done;
      slot->end_ns = t1;
    }
  }
  if (!session->first_error().empty()) SetError(slot, session->first_error());
  session.reset();  // detach before saying done
  // release: publishes the slot's histograms and counters; pairs with the
  // parent's acquire load of state.
  slot->state.store(kDone, std::memory_order_release);
  return 0;
}

void SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

RunOutput RunTarget(Target& target, const RunConfig& c) {
  RunOutput out;
  out.next_insert_base = c.insert_base;
  SharedArea area(c.procs);
  if (area.base == MAP_FAILED) {
    out.fatal =
        std::string("mmap of the result slots: ") + std::strerror(errno);
    return out;
  }
  Control* control = area.control;
  WorkerSlot* slots = area.slots;
  const bool forks = target.forks();
  std::vector<pid_t> pids;
  std::vector<std::thread> threads;
  std::vector<bool> reaped;

  for (std::uint32_t i = 0; i < c.procs; ++i) {
    if (!forks) {
      threads.emplace_back(
          [&, i] { WorkerMain(target, c, control, &slots[i], i); });
      continue;
    }
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      out.fatal = std::string("fork: ") + std::strerror(errno);
      break;
    }
    if (pid == 0) {
      // The parent handles Ctrl-C and stops the workers; a worker whose
      // parent dies goes with it.
      std::signal(SIGINT, SIG_IGN);
      std::signal(SIGTERM, SIG_DFL);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      const int code = WorkerMain(target, c, control, &slots[i], i);
      ::_exit(code);  // no atexit handlers, no parent's destructors
    }
    pids.push_back(pid);
    reaped.push_back(false);
  }

  // Polls until pred() holds; false if a worker failed or died, the user
  // interrupted, or the deadline passed (then out.fatal says which).
  auto wait_for = [&](auto pred, double max_seconds) -> bool {
    const std::uint64_t deadline =
        NowNs() + static_cast<std::uint64_t>(max_seconds * 1e9);
    for (;;) {
      if (*c.interrupted) {
        out.interrupted = true;
        out.fatal = "interrupted";
        return false;
      }
      for (std::uint32_t i = 0; i < c.procs; ++i) {
        if (slots[i].state.load(std::memory_order_acquire) == kFailed) {
          out.fatal = "worker " + std::to_string(i) + ": " + slots[i].error;
          return false;
        }
      }
      for (std::size_t i = 0; i < pids.size(); ++i) {
        int status = 0;
        if (!reaped[i] && ::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
          reaped[i] = true;
          if (slots[i].state.load(std::memory_order_acquire) != kDone) {
            out.fatal = "worker process " + std::to_string(pids[i]) +
                        " died (" +
                        (WIFSIGNALED(status)
                             ? "signal " + std::to_string(WTERMSIG(status))
                             : "exit " + std::to_string(WEXITSTATUS(status))) +
                        ")";
            return false;
          }
        }
      }
      if (pred()) return true;
      if (NowNs() > deadline) {
        out.fatal = "timed out";
        return false;
      }
      // Coarse on purpose: on a machine with as many workers as CPUs every
      // wakeup of the parent preempts a worker.
      SleepMs(5);
    }
  };
  auto all_in = [&](std::uint32_t state) {
    for (std::uint32_t i = 0; i < c.procs; ++i) {
      if (slots[i].state.load(std::memory_order_acquire) < state) return false;
    }
    return true;
  };

  bool ok = out.fatal.empty();
  ok = ok && wait_for([&] { return all_in(kReady); }, 60);
  if (ok && c.warmup_seconds > 0) {
    control->phase.store(kWarmup, std::memory_order_release);
    ok = wait_for([] { return false; }, c.warmup_seconds) ||
         out.fatal == "timed out";
    if (ok) out.fatal.clear();
  }
  if (ok) {
    control->phase.store(kMeasure, std::memory_order_release);
    if (c.ops == 0) {
      ok =
          wait_for([] { return false; }, c.seconds) || out.fatal == "timed out";
      if (ok) out.fatal.clear();
    } else {
      ok = wait_for([&] { return all_in(kDone); }, 24 * 3600.0);
    }
  }
  control->phase.store(kStop, std::memory_order_release);

  // Reap: give workers 10 s to notice the stop, then kill them.
  const std::uint64_t kill_at = NowNs() + 10'000'000'000ULL;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    while (!reaped[i]) {
      int status = 0;
      const pid_t r = ::waitpid(pids[i], &status, WNOHANG);
      if (r == pids[i] || (r < 0 && errno != EINTR)) {
        reaped[i] = true;
        if (ok && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
          ok = false;
          out.fatal = "worker process " + std::to_string(pids[i]) + " failed";
        }
        break;
      }
      if (NowNs() > kill_at) ::kill(pids[i], SIGKILL);
      SleepMs(1);
    }
  }
  for (std::thread& t : threads) t.join();
  if (!ok) return out;

  // Merge.
  RunResult& r = out.result;
  r.target = std::string(target.name());
  r.store = target.Describe();
  r.procs = c.procs;
  r.workers = forks ? "processes" : "threads";
  r.persistence = target.Persistence();
  r.syncs_each_write = target.SyncsEachWrite();
  std::uint64_t start = UINT64_MAX, end = 0, max_inserts = 0;
  LatencyHistogram merged[kOpTypeCount];
  std::uint64_t not_found[kOpTypeCount] = {}, failed[kOpTypeCount] = {};
  for (std::uint32_t i = 0; i < c.procs; ++i) {
    const WorkerSlot& s = slots[i];
    if (s.state.load(std::memory_order_acquire) != kDone) continue;
    max_inserts = std::max(max_inserts, s.inserts);
    if (s.error[0] != '\0')
      r.errors.push_back("worker " + std::to_string(i) + ": " + s.error);
    if (!s.measured) continue;
    start = std::min(start, s.start_ns);
    end = std::max(end, s.end_ns);
    for (int k = 0; k < kOpTypeCount; ++k) {
      merged[k].Merge(s.ops[k].histogram);
      not_found[k] += s.ops[k].not_found;
      failed[k] += s.ops[k].failed;
    }
  }
  out.next_insert_base = c.insert_base + max_inserts * c.procs;
  r.wall_seconds = end > start ? static_cast<double>(end - start) / 1e9 : 0;
  const double share[kOpTypeCount] = {c.workload.read, c.workload.update,
                                      c.workload.insert, c.workload.scan,
                                      c.workload.read_modify_write};
  LatencyHistogram all;
  std::uint64_t all_nf = 0, all_failed = 0;
  for (int k = 0; k < kOpTypeCount; ++k) {
    if (share[k] <= 0) continue;
    r.ops.push_back(Summarize(std::string(OpTypeName(static_cast<OpType>(k))),
                              merged[k], not_found[k], failed[k],
                              r.wall_seconds));
    all.Merge(merged[k]);
    all_nf += not_found[k];
    all_failed += failed[k];
  }
  r.all = Summarize("all", all, all_nf, all_failed, r.wall_seconds);
  return out;
}

}  // namespace numagrid::bench
