// Physical baselines measured in the same run as the targets: the cost of
// one read of the clock every latency is taken with, one dependent DRAM
// access (a pointer chase over a buffer larger than the caches), one
// cache-line round trip between two cores, and a directory's sequential
// write bandwidth and fdatasync latency.
//
// Thread safety: the functions are thread-safe (no shared state).
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>

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

struct CacheLineRoundTrip {
  // Median over batches of the mean time of one round trip: thread A on
  // cpu_a stores a value into an atomic, thread B on cpu_b sees it and
  // stores the next, A sees that. One round trip = two cache-line
  // transfers (one-way is about half). Negative if not measured (`error`).
  double round_trip_ns = -1;
  int cpu_a = -1, cpu_b = -1;
  std::uint64_t round_trips = 0;  // measured, all batches
  std::string error;
};
// Pins two new threads to the first two CPUs this process may run on and
// ping-pongs for at most about `max_seconds`. The calling thread's affinity
// is not changed.
CacheLineRoundTrip MeasureCacheLineRoundTrip(
    double max_seconds, const volatile std::sig_atomic_t* interrupted);

struct DiskBaseline {
  std::string dir;
  std::string fs_type;  // from statfs: "ext4", "xfs", "tmpfs", ...
  // `write_bytes` written sequentially with write(2) in 1 MiB buffers into
  // a new file, then one fdatasync; the time of both. Negative: not measured.
  double seq_write_mib_per_s = -1;
  std::uint64_t write_bytes = 0;
  // 4 KiB appended to a new file, then fdatasync, `samples` times: the
  // fdatasync alone is timed. The write is an append, as a journal's is,
  // so each fdatasync also commits the file's new size.
  double fdatasync_p50_ns = -1;
  double fdatasync_max_ns = -1;
  std::uint32_t samples = 0;
  std::string error;  // why not measured; the files are removed either way
};
// Measures in `dir` (files numagrid-bench-disk-* are created and removed).
DiskBaseline MeasureDisk(const std::string& dir, std::uint64_t write_bytes,
                         std::uint32_t samples,
                         const volatile std::sig_atomic_t* interrupted);

}  // namespace numagrid::bench
