// failover_bench: how long journaling stops when a worker is SIGKILLed
// (DESIGN target: a killed worker is replaced and journaling resumes within
// 100 ms). A grid with a journal runs under its watchdog (`numagrid start
// --foreground`, a child process); the benchmark kills node 0's worker with
// SIGKILL, then issues sync puts until one returns: the time from the kill
// to that return is one sample. It reports p50, p90 and max over --kills
// samples, and, as the baseline of the same run, the p50 of a sync put while
// nothing is killed.
//
// The watchdog backs off when a worker dies within 2 s of its start (a crash
// loop); the benchmark waits 2.5 s between kills so that every sample is a
// plain replacement. Usage:
//   failover_bench [--kills=N (default 20)] [--dir=PATH (default /var/tmp)]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "numa/topology.h"
#include "numagrid/grid.h"

namespace numagrid {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "failover_bench: %s\n", what.c_str());
  std::exit(1);
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const std::size_t i =
      std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()));
  return v[i];
}

// Node 0's journal worker once it journals, else 0.
std::uint64_t RunningWorker(core::GridHandle& h) {
  const core::JournalNodeState& n = h.journal_node(0);
  // relaxed: polled.
  if (n.worker_state.load(std::memory_order_relaxed) != core::kWorkerRunning) {
    return 0;
  }
  const std::uint64_t pid = n.worker_pid.load(std::memory_order_relaxed);
  return pid != 0 && kill(static_cast<pid_t>(pid), 0) == 0 ? pid : 0;
}

int Main(int argc, char** argv) {
  int kills = 20;
  std::string base = "/var/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--kills=", 0) == 0) {
      kills = std::atoi(a.c_str() + 8);
    } else if (a.rfind("--dir=", 0) == 0) {
      base = a.substr(6);
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "failover_bench [--kills=N] [--dir=PATH]: time from a journal "
          "worker's SIGKILL to the next durable put\n");
      return 0;
    } else {
      Die("unknown argument '" + a + "' (see --help)");
    }
  }
  if (kills < 1) Die("--kills must be at least 1");
  std::string tmpl = base + "/numagrid-failover-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp under " + base);
  const std::string dir = tmpl;
  const std::string name = "failover" + std::to_string(getpid());

  core::CreateOptions o;
  o.partitions = 8;
  o.memory_bytes = 32ULL << 20;
  o.journal_dir = dir;
  auto topo = numa::Topology::Load();
  if (!topo.ok()) Die(topo.status().ToString());
  if (auto c = core::CreateGrid(name, o, *topo); !c.ok()) {
    Die(c.status().ToString());
  }
  const pid_t watchdog = fork();
  if (watchdog == 0) {
    // Its log would bury the result; events.log in `dir` keeps the events.
    const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) dup2(null, STDERR_FILENO);
    execl(NUMAGRID_CLI, NUMAGRID_CLI, "start", name.c_str(), "--foreground",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  auto h = core::GridHandle::Attach(name);
  auto g = Grid::Attach(name);
  if (!h.ok() || !g.ok()) Die("attach");
  const WriteOptions sync{.durability = Durability::kSync};
  auto wait_worker = [&] {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    std::uint64_t pid = 0;
    while ((pid = RunningWorker(**h)) == 0) {
      if (Clock::now() > deadline) Die("no worker within 10 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pid;
  };
  wait_worker();

  // Baseline: sync puts with nothing killed.
  std::vector<double> put_us;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    if (!g->Put("k" + std::to_string(i), "v", sync).ok()) Die("sync put");
    put_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }

  std::vector<double> gap_ms;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    const std::uint64_t victim = wait_worker();
    const auto t0 = Clock::now();
    kill(static_cast<pid_t>(victim), SIGKILL);
    // The first sync put after the kill returns once a new worker journals.
    for (;;) {
      auto r = g->Put("after" + std::to_string(k), "v", sync);
      if (r.ok()) break;
      if (r.status().code() != StatusCode::kUnavailable) {
        Die(r.status().ToString());
      }
    }
    gap_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }

  kill(watchdog, SIGTERM);
  int st = 0;
  waitpid(watchdog, &st, 0);
  h->reset();
  g = Status(StatusCode::kNotFound, "detached");
  (void)core::DestroyGrid(name);
  std::filesystem::remove_all(dir);

  const double put_p50_ms = Percentile(put_us, 0.5) / 1000.0;
  std::printf("failover_bench: %d SIGKILLs of node 0's journal worker\n",
              kills);
  std::printf(
      "  kill -> next durable put   p50 %.2f ms  p90 %.2f ms  max "
      "%.2f ms   (target: within 100 ms)\n",
      Percentile(gap_ms, 0.5), Percentile(gap_ms, 0.9),
      Percentile(gap_ms, 1.0));
  std::printf("  baseline sync put          p50 %.3f ms\n", put_p50_ms);
  std::printf("  ratio p50 gap / p50 sync put = %.1f\n",
              Percentile(gap_ms, 0.5) / put_p50_ms);
  return 0;
}

}  // namespace
}  // namespace numagrid

int main(int argc, char** argv) { return numagrid::Main(argc, argv); }
