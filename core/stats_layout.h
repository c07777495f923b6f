// The monitoring counters that live in the control segment, at
// GridConfig::stats_off: one NodeStats per NUMA node (written by the node's
// journal worker), then one ProcessStats per process-table slot (written by
// the slot's owner), then one row of ReadCounters per process-table slot
// (written by the slot's owner: its gets, by partition or by node; see
// ReadCounterBuckets). docs/control-segment.md is the format spec and
// docs/monitoring.md says what each number means; partition counters are in
// PartitionCounters (core/partition_layout.h).
//
// Why this shape: a get must not write a cache line that another process
// writes (DESIGN invariant 1 and the get target), so read counters live in
// the reader's own slot, and the totals are sums over the slots. Write
// counters that belong to a partition are kept by the partition's lock
// holder, on lines it writes anyway.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace numagrid::core {

// Adds `d` to a counter that only the caller writes: a relaxed load and a
// relaxed store, no read-modify-write (no locked instruction). relaxed: the
// counter publishes nothing; a reader in another process may see a value
// some operations old, which a report tolerates, and never a torn one (an
// aligned lock-free 8-byte atomic).
inline void BumpOwned(std::atomic<std::uint64_t>& c,
                      std::uint64_t d = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

// Log2 buckets: bucket 0 counts values <= 1 unit, bucket i (1..kHistogram
// Buckets-2) values in (2^(i-1), 2^i], the last one every larger value.
inline constexpr std::uint32_t kHistogramBuckets = 24;

// Bucket of value `v` (in the histogram's unit).
constexpr std::uint32_t HistogramBucket(std::uint64_t v) noexcept {
  if (v <= 1) return 0;
  const std::uint32_t b =
      64 - static_cast<std::uint32_t>(__builtin_clzll(v - 1));
  return b < kHistogramBuckets - 1 ? b : kHistogramBuckets - 1;
}

// A histogram written by one process at a time (the node's journal worker,
// which holds the node's journal lock). Its count is the sum of the buckets,
// so a reader that sums the buckets it read gets a count consistent with
// them; `sum` may be a few observations ahead or behind.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a writer killed between a bucket and `sum` leaves `sum`
//     one observation short.
//   Detected by: nothing needs to: the next worker continues the counts.
//   Repaired by: nobody; the error is one observation's value.
//   Holds in every reachable state: every bucket only grows.
struct Log2Histogram {
  std::atomic<std::uint64_t> buckets[kHistogramBuckets];
  std::atomic<std::uint64_t> sum;  // of the observed values, in the unit
  std::uint64_t reserved[7];

  // relaxed: counters read racily by `stats`; a stale value is a report
  // one flush old. fetch_add: the journal lock makes the worker the only
  // writer, but a fenced worker may still be finishing a flush while its
  // successor starts, and this is once per flush, not on the data path.
  void Record(std::uint64_t v) noexcept {
    buckets[HistogramBucket(v)].fetch_add(1, std::memory_order_relaxed);
    sum.fetch_add(v, std::memory_order_relaxed);
  }
};
static_assert(std::is_standard_layout_v<Log2Histogram>);
static_assert(sizeof(Log2Histogram) == 256);

// One per node: what the node's journal workers measured (one worker per
// journal stream, K per node: docs/adr/0008-journal-streams.md). Several
// workers update one NodeStats at once: the histograms and `batches` with
// fetch_add, `lag_max_ms` with a compare-exchange loop; `lag_last_ms` is
// whichever stream's batch stored last.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a worker killed mid-update leaves a histogram one
//     observation short in `sum` (see Log2Histogram) and its last gauges.
//   Detected by: nothing needs to.
//   Repaired by: nobody: the stream's next worker (the stream's journal
//     lock admits one at a time) goes on counting; the gauges are
//     overwritten at the next flush of any of the node's streams.
//   Holds in every reachable state: buckets and `batches` only grow;
//     `lag_max_ms` only grows.
struct alignas(64) NodeStats {
  // Time of each journal flush (the batch's write and its fdatasync), us.
  Log2Histogram flush_us;
  // Per flushed batch: milliseconds from the oldest change of the batch
  // becoming visible (the writer's coarse wall clock, RingEntry::visible_ms)
  // to the batch being marked durable.
  Log2Histogram lag_ms;
  std::atomic<std::uint64_t> lag_last_ms;  // the last batch's
  std::atomic<std::uint64_t> lag_max_ms;   // the largest since create
  std::atomic<std::uint64_t> batches;      // flushes that carried changes
  std::uint64_t reserved[5];
};
static_assert(std::is_standard_layout_v<NodeStats>);
static_assert(sizeof(NodeStats) == 576);

// What one process did, by operation. Every field only grows. Its gets are
// counted apart, per partition, in its ReadCounters row.
struct ProcessCounters {
  std::atomic<std::uint64_t> puts;     // successful writes other than removes
  std::atomic<std::uint64_t> removes;  // successful removes
  std::atomic<std::uint64_t> cas_failures;  // version conflicts
  std::atomic<std::uint64_t> write_errors;  // other failed writes
  // Writes that found their partition's change ring full and waited for
  // room (backpressure from the journal), and the time they waited, ns.
  std::atomic<std::uint64_t> backpressure_waits;
  std::atomic<std::uint64_t> backpressure_wait_ns;
  std::uint64_t reserved[2];
};
static_assert(std::is_standard_layout_v<ProcessCounters>);
static_assert(sizeof(ProcessCounters) == 64);

// The gets of one process in one bucket (a partition, or a node when the
// grid keeps read counters per node: see ReadCounterBuckets).
struct ReadCounters {
  std::atomic<std::uint64_t> hits;    // gets that found the key
  std::atomic<std::uint64_t> misses;  // gets that did not (absent, expired)
};
static_assert(std::is_standard_layout_v<ReadCounters>);
static_assert(sizeof(ReadCounters) == 16);

// ProcessStats[i] belongs to process-table slot i (shm/process_table.h) and,
// like the slot, is written only by whoever holds byte i of the lock file.
// So is row i of the read counters. The counters are cumulative per slot,
// not per owner: a new owner goes on counting where the last one stopped,
// so nothing is ever folded, zeroed or lost, and grid totals (sums over all
// slots) never drop when a process dies. `at_claim` and `reads_at_claim`
// hold the counters as they were when the current owner claimed the slot
// (the reads summed over the row), so `stats` can show what that process
// did.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: its counters, complete up to its last operation (each
//     counter is one aligned store; an operation killed between its effect
//     and its count is not counted); a half-written `at_claim` or
//     `reads_at_claim` if it died inside Attach.
//   Detected by: nothing needs to: a dead owner's counts stay in the slot
//     and in the totals.
//   Repaired by: nobody; the next owner of the slot rewrites the at-claim
//     values and continues `total` and the read row.
//   Holds in every reachable state: every field of `total` and of the read
//     row only grows; only the holder of the slot's lock-file byte writes
//     the slot's stats.
struct alignas(64) ProcessStats {
  ProcessCounters total;        // line 0: written on every write
  ProcessCounters at_claim;     // line 1: written once per claim
  ReadCounters reads_at_claim;  // line 2: written once per claim
  std::uint64_t reserved[6];
};
static_assert(std::is_standard_layout_v<ProcessStats>);
static_assert(sizeof(ProcessStats) == 192);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// Read counters are kept per (slot, partition) when that costs at most this
// many bytes, else per (slot, node): hits per partition for the usual grid
// (64 partitions and 256 slots: 256 KiB), and a bounded control segment for
// the largest (65536 partitions would need 256 MiB).
inline constexpr std::uint64_t kMaxReadCounterBytes = 16ULL << 20;

// Bytes of one slot's row of `buckets` read counters: whole cache lines, so
// that no two processes write one line (DESIGN invariant 1).
constexpr std::uint64_t ReadRowBytes(std::uint32_t buckets) noexcept {
  return (sizeof(ReadCounters) * std::uint64_t{buckets} + 63) / 64 * 64;
}

// How many read-counter buckets each slot has: `partition_count` (a bucket
// per partition) if those rows fit kMaxReadCounterBytes, else `node_count`
// (a bucket per node).
constexpr std::uint32_t ReadCounterBuckets(std::uint32_t partition_count,
                                           std::uint32_t node_count,
                                           std::uint32_t process_capacity) {
  return ReadRowBytes(partition_count) * std::uint64_t{process_capacity} <=
                 kMaxReadCounterBytes
             ? partition_count
             : node_count;
}

// Offset of the read-counter rows from the start of the stats area.
constexpr std::uint64_t ReadCountersOffset(
    std::uint32_t node_count, std::uint32_t process_capacity) noexcept {
  return sizeof(NodeStats) * std::uint64_t{node_count} +
         sizeof(ProcessStats) * std::uint64_t{process_capacity};
}

// Bytes of the stats area of a grid.
constexpr std::uint64_t StatsBytes(std::uint32_t node_count,
                                   std::uint32_t process_capacity,
                                   std::uint32_t read_buckets) noexcept {
  return ReadCountersOffset(node_count, process_capacity) +
         ReadRowBytes(read_buckets) * std::uint64_t{process_capacity};
}

}  // namespace numagrid::core
