// numagrid_arena_probe: checks, against the kernel, that every thread that
// runs work in a node's journal-worker task arena (core/worker_arena.h)
// runs on that node's CPUs. Meant for a machine with real NUMA nodes (the
// numa-vm guest, see docs/numa.md); plain main(), no gtest.
//
//   numagrid_arena_probe --nodes N
//
// It builds every node's arena first (as `numagrid worker` does, before any
// thread is pinned), both ways: as the worker would (on a machine with
// several nodes that must be the oneTBB NUMA constraint, tbb-numa) and with
// the hwloc observer forced. Then, for each arena, from a new unpinned
// thread, it runs 4 x max_concurrency calls, each of which waits until
// max_concurrency distinct threads have made a call (so that oneTBB's worker
// threads take part, not only the caller), and records each call's thread,
// sched_getcpu() and sched_getaffinity(). Every CPU seen must be one of the
// node's, every affinity a subset of the node's CPUs, and as many threads as
// the arena's concurrency must have taken part.
//
// Exit codes: 0 everything matched; 1 a thread off its node, a wrong
// binding, or too few threads; 2 bad usage or a setup error.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/worker_arena.h"
#include "numa/topology.h"

namespace {

using numagrid::core::ArenaBinding;
using numagrid::core::ArenaBindingName;
using numagrid::core::WorkerArena;
using numagrid::numa::Topology;

constexpr int kExitOk = 0;
constexpr int kExitMismatch = 1;
constexpr int kExitSetup = 2;

std::vector<std::uint32_t> ThreadAffinity() {
  std::vector<std::uint32_t> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(static_cast<std::uint32_t>(c));
  }
  return out;
}

std::string List(const std::vector<std::uint32_t>& v) {
  std::string s;
  for (std::uint32_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

struct Call {
  long tid;
  int cpu;
  std::vector<std::uint32_t> affinity;
};

// Checks one arena; prints what it saw. True when it matched.
bool CheckArena(WorkerArena& arena, const std::vector<std::uint32_t>& cpus,
                const char* what) {
  const std::size_t threads = arena.max_concurrency();
  std::mutex mu;
  std::vector<Call> calls;
  std::set<long> tids;
  numagrid::Status status;
  std::thread caller([&] {
    status = arena.ForEach(4 * threads, [&](std::size_t) {
      const long tid = syscall(SYS_gettid);
      {
        std::lock_guard<std::mutex> l(mu);
        tids.insert(tid);
        calls.push_back({tid, sched_getcpu(), ThreadAffinity()});
      }
      // The guest's CPUs are slow and emulated: a generous bound.
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (;;) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (tids.size() >= threads) break;
        }
        if (std::chrono::steady_clock::now() > until) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      const int cpu = sched_getcpu();
      std::lock_guard<std::mutex> l(mu);
      calls.push_back({tid, cpu, ThreadAffinity()});
    });
  });
  caller.join();
  bool ok = status.ok();
  if (!ok) {
    std::printf("  node %u %s: ForEach failed: %s\n", arena.node(), what,
                status.ToString().c_str());
  }
  std::set<int> seen_cpus;
  for (const Call& c : calls) {
    seen_cpus.insert(c.cpu);
    const bool cpu_ok =
        std::find(cpus.begin(), cpus.end(),
                  static_cast<std::uint32_t>(c.cpu)) != cpus.end();
    const bool aff_ok =
        !c.affinity.empty() &&
        std::all_of(c.affinity.begin(), c.affinity.end(), [&](std::uint32_t x) {
          return std::find(cpus.begin(), cpus.end(), x) != cpus.end();
        });
    if (!cpu_ok || !aff_ok) {
      std::printf(
          "  node %u %s: thread %ld ran on cpu %d with affinity {%s}, "
          "node cpus {%s}\n",
          arena.node(), what, c.tid, c.cpu, List(c.affinity).c_str(),
          List(cpus).c_str());
      ok = false;
    }
  }
  if (tids.size() < threads) {
    std::printf("  node %u %s: only %zu of %zu threads took part\n",
                arena.node(), what, tids.size(), threads);
    ok = false;
  }
  std::string cpu_list;
  for (int c : seen_cpus) {
    cpu_list += (cpu_list.empty() ? "" : ",") + std::to_string(c);
  }
  std::printf(
      "node %u %s: %s; %zu thread(s) ran %zu call(s) on cpus {%s} "
      "(node cpus {%s}): %s\n",
      arena.node(), what, arena.description().c_str(), tids.size(),
      calls.size(), cpu_list.c_str(), List(cpus).c_str(),
      ok ? "ok" : "MISMATCH");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t nodes = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
      nodes = static_cast<std::uint32_t>(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s --nodes N\n", argv[0]);
      return kExitSetup;
    }
  }
  auto topo = Topology::Load();
  if (!topo.ok()) {
    std::fprintf(stderr, "topology: %s\n", topo.status().ToString().c_str());
    return kExitSetup;
  }
  if (nodes == 0 || topo->node_count() != nodes) {
    std::fprintf(stderr, "expected %u NUMA nodes, hwloc sees %u\n", nodes,
                 topo->node_count());
    return kExitSetup;
  }
  // Every arena first, before any thread is pinned.
  std::vector<std::unique_ptr<WorkerArena>> as_worker, observed;
  for (std::uint32_t n = 0; n < nodes; ++n) {
    auto a = WorkerArena::Create(*topo, n);
    auto b = WorkerArena::Create(*topo, n, {.force_observer = true});
    if (!a.ok() || !b.ok()) {
      std::fprintf(stderr, "node %u: %s\n", n,
                   (!a.ok() ? a.status() : b.status()).ToString().c_str());
      return kExitSetup;
    }
    as_worker.push_back(std::move(*a));
    observed.push_back(std::move(*b));
  }
  bool ok = true;
  for (std::uint32_t n = 0; n < nodes; ++n) {
    const std::vector<std::uint32_t>& cpus = topo->nodes()[n].cpus;
    const ArenaBinding want =
        nodes > 1 ? ArenaBinding::kTbbNuma : ArenaBinding::kHwlocObserver;
    if (as_worker[n]->binding() != want) {
      std::printf(
          "node %u: the worker's arena is %s, expected %s: %s\n", n,
          std::string(ArenaBindingName(
                          static_cast<std::uint32_t>(as_worker[n]->binding())))
              .c_str(),
          std::string(ArenaBindingName(static_cast<std::uint32_t>(want)))
              .c_str(),
          as_worker[n]->description().c_str());
      ok = false;
    }
    ok = CheckArena(*as_worker[n], cpus, "worker arena") && ok;
    ok = CheckArena(*observed[n], cpus, "observer arena") && ok;
  }
  std::printf("%s\n", ok ? "arena probe: every arena thread ran on its node"
                         : "arena probe: FAIL");
  return ok ? kExitOk : kExitMismatch;
}
