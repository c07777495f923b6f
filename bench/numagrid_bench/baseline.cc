// Physical baselines: clock cost and DRAM pointer chase.
#include "bench/numagrid_bench/baseline.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "bench/numagrid_bench/workload.h"

namespace numagrid::bench {

ClockCost MeasureClock() {
  ClockCost c;
  c.reads = 1'000'000;
  std::uint64_t min_delta = UINT64_MAX;
  std::uint64_t prev = NowNs();
  const std::uint64_t start = prev;
  for (std::uint64_t i = 0; i < c.reads; ++i) {
    const std::uint64_t now = NowNs();
    if (now - prev < min_delta) min_delta = now - prev;
    prev = now;
  }
  c.ns_per_read =
      static_cast<double>(prev - start) / static_cast<double>(c.reads);
  c.min_delta_ns = min_delta;
  return c;
}

namespace {
struct alignas(64) ChaseNode {
  ChaseNode* next;
  char pad[64 - sizeof(ChaseNode*)];
};
static_assert(sizeof(ChaseNode) == 64);
}  // namespace

double MeasureDramChase(std::uint64_t bytes, std::uint64_t seed,
                        const volatile std::sig_atomic_t* interrupted) {
  const std::uint64_t n = bytes / sizeof(ChaseNode);
  if (n < 2) return -1;
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -1;
  auto* nodes = static_cast<ChaseNode*>(mem);
  double result = -1;
  {
    // Sattolo: a random permutation that is one single cycle.
    std::vector<std::uint32_t> order(n);
    for (std::uint64_t i = 0; i < n; ++i)
      order[i] = static_cast<std::uint32_t>(i);
    Rng rng(seed);
    for (std::uint64_t i = n - 1; i > 0; --i) {
      std::swap(order[i], order[rng.Below(i)]);
      if ((i & 0xfffff) == 0 && *interrupted) break;
    }
    for (std::uint64_t i = 0; i < n; ++i)
      nodes[order[i]].next = &nodes[order[(i + 1) % n]];
  }
  if (!*interrupted) {
    ChaseNode* p = nodes;
    for (std::uint64_t i = 0; i < n; ++i)
      p = p->next;  // warm the TLB and caches alike
    const std::uint64_t steps = std::max<std::uint64_t>(n * 2, 8'000'000);
    const std::uint64_t t0 = NowNs();
    for (std::uint64_t i = 0; i < steps; ++i) p = p->next;
    const std::uint64_t t1 = NowNs();
    // The chase must not be optimized away: the final pointer escapes.
    asm volatile("" : : "r"(p) : "memory");
    result = static_cast<double>(t1 - t0) / static_cast<double>(steps);
  }
  ::munmap(mem, bytes);
  return result;
}

std::uint64_t LastLevelCacheBytes() {
  for (int name :
       {_SC_LEVEL4_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long v = ::sysconf(name);
    if (v > 0) return static_cast<std::uint64_t>(v);
  }
  return 0;
}

}  // namespace numagrid::bench
