// The grid side of numagrid-eviction-bench: a zipfian trace replayed as a
// cache-aside workload on a temporary grid with one eviction policy
// (ReplayTrace), and the fill run of scripts/eviction-acceptance.sh, which
// streams distinct values through an existing grid while hot keys are read
// (FillGrid). One thread, one process; see docs/benchmarks.md, "Eviction
// accuracy".
//
// Thread safety: the functions are thread-compatible (they use the calling
// thread only, and the journal worker threads they start themselves).
#pragma once

#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

#include "numagrid/status.h"

namespace numagrid::bench {

inline constexpr std::uint64_t kEvictionBenchKeySize = 16;  // "user" + 12

// The TTL a ttl-first replay gives every write of key `id`: `base_ms` plus
// a share of `spread_ms` fixed by the key (FNV-1a of the id), so that each
// key always gets the same TTL and the keys' TTLs differ.
std::uint64_t TtlForKey(std::uint64_t id, std::uint64_t base_ms,
                        std::uint64_t spread_ms) noexcept;

struct ReplayOptions {
  std::string grid_name;     // created by ReplayTrace and destroyed at its end
  std::uint32_t policy = 0;  // core::kEvict*
  std::uint32_t partitions = 4;
  std::uint64_t memory_bytes = 0;
  std::uint32_t samples = 16;  // EvictionConfig::samples
  std::uint64_t value_size = 256;
  std::uint64_t warmup_ops = 0;       // replayed, but not counted
  std::uint64_t sample_every = 1000;  // ops between memory samples
  std::uint64_t ttl_ms = 0;           // ttl-first: TtlForKey's base
  std::uint64_t ttl_spread_ms = 0;    // ... and spread
  // Journal the grid in a new directory under journal_parent_dir, with a
  // journal worker thread per node that also evicts in the background.
  bool worker = false;
  std::string journal_parent_dir = "/var/tmp";
};

struct ReplayResult {
  std::uint64_t gets = 0;  // measured (after the warm-up)
  std::uint64_t hits = 0;
  std::uint64_t puts = 0;  // the whole replay
  std::uint64_t put_failures = 0;
  std::string first_put_error;
  double mean_entries = 0;  // live entries, measured part
  std::uint64_t min_entries = 0, max_entries = 0;
  std::uint64_t limit_bytes = 0;      // Evictor::Measure
  std::uint64_t peak_used_bytes = 0;  // the whole replay
  double mean_used_bytes = 0;         // measured part
  std::uint64_t evictions = 0;        // the whole replay
  double seconds = 0;
  std::uint64_t index_entries = 0;  // what the index was sized for
  double hit_rate() const {
    return gets == 0 ? 0.0
                     : static_cast<double>(hits) / static_cast<double>(gets);
  }
};

// Creates a memory-only (or, with `worker`, journaled) grid as `o` says,
// replays `trace` (key ids) on it: get; on a miss, put a value of
// value_size bytes; and destroys the grid. Errors: creating or attaching
// the grid; failed puts are counted, not errors. Stops early, with what it
// measured so far, once *interrupted is set.
Result<ReplayResult> ReplayTrace(const ReplayOptions& o,
                                 const std::vector<std::uint32_t>& trace,
                                 const volatile std::sig_atomic_t* interrupted);

struct FillOptions {
  std::string grid_name;  // an existing grid; it is left in place
  std::uint64_t fill_bytes = 1ULL << 30;  // value bytes written in all
  std::uint64_t value_size = 256;
  std::uint32_t hot_keys = 10000;
  double theta = 0.99;
  std::uint32_t reads_per_write = 1;
  std::uint64_t sample_every = 1000;  // writes between memory samples
  std::uint64_t seed = 42;
};

struct FillResult {
  std::uint64_t writes = 0;  // hot-key loads and fill writes
  std::uint64_t write_failures = 0;
  std::string first_write_error;
  std::uint64_t value_bytes = 0;
  std::uint64_t reads = 0, read_hits = 0;
  std::uint64_t limit_bytes = 0;
  std::uint64_t peak_used_bytes = 0;
  std::uint64_t final_used_bytes = 0;
  std::uint64_t final_entries = 0;
  double mean_entries = 0;  // sampled from the first eviction on
  std::uint64_t evictions = 0;
  std::uint32_t hot_present = 0;  // hot keys still in the grid at the end
  // Of an exact LRU cache with mean_entries entries on the same sequence.
  std::uint32_t lru_hot_present = 0;
  double seconds = 0;
};

// Writes hot_keys keys, then distinct keys with distinct values until
// fill_bytes of values are written, each write followed by reads_per_write
// gets of hot keys drawn zipfian (a miss is not written back). Counts the
// hot keys present at the end. Errors: attaching the grid, or a grid
// without an eviction policy; failed writes are counted, not errors.
Result<FillResult> FillGrid(const FillOptions& o,
                            const volatile std::sig_atomic_t* interrupted);

}  // namespace numagrid::bench
