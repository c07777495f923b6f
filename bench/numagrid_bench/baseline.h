// Physical baselines measured in the same run as the targets: the cost of
// one read of the clock every latency is taken with, and one dependent DRAM
// access (a pointer chase over a buffer larger than the caches).
//
// Thread safety: the functions are thread-safe (no shared state).
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>

namespace numagrid::bench {

// The clock of every latency: std::chrono::steady_clock (CLOCK_MONOTONIC,
// one clock for all processes of the host), in nanoseconds.
inline std::uint64_t NowNs() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

struct ClockCost {
  double ns_per_read = 0;  // mean over `reads` back-to-back reads
  std::uint64_t min_delta_ns =
      0;  // smallest non-negative step between two reads
  std::uint64_t reads = 0;
};
ClockCost MeasureClock();

// Mean ns per access of a dependent pointer chase through `bytes` of
// 64-byte nodes linked in one random cycle (Sattolo's algorithm), so every
// load depends on the previous one and almost none hits a cache. The buffer
// is anonymous memory with 4 KiB pages (no MADV_HUGEPAGE), like the grid's
// /dev/shm segments, so each access also pays its TLB miss. Returns a
// negative value if the buffer cannot be allocated or *interrupted is set.
double MeasureDramChase(std::uint64_t bytes, std::uint64_t seed,
                        const volatile std::sig_atomic_t* interrupted);

// The last-level cache size sysconf reports, 0 if unknown.
std::uint64_t LastLevelCacheBytes();

}  // namespace numagrid::bench
