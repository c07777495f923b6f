// GridStats: one reading of every monitoring counter of a grid, for
// `numagrid stats` (table, JSON, Prometheus text) and the watchdog's
// /metrics. docs/monitoring.md defines each number. Reads only, takes no
// lock, writes nothing: counters are loaded relaxed, so numbers read a
// moment apart may disagree by the operations in between.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/grid_handle.h"
#include "core/stats_layout.h"

namespace numagrid::core {

// A histogram as read: per-bucket counts (not cumulative), bucket i's upper
// bound is 2^i units (the last bucket has none), count = their sum.
struct HistogramReading {
  std::vector<std::uint64_t> buckets;
  std::uint64_t count = 0;
  std::uint64_t sum = 0;  // in units
  double unit_seconds = 0;
};

// ProcessCounters as plain numbers.
struct OpCounts {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t puts = 0;
  std::uint64_t removes = 0;
  std::uint64_t cas_failures = 0;
  std::uint64_t write_errors = 0;
  std::uint64_t backpressure_waits = 0;
  std::uint64_t backpressure_wait_ns = 0;
  OpCounts& operator+=(const OpCounts& o);
};

struct PartitionStatsRow {
  std::uint32_t partition = 0;
  std::uint32_t node = 0;
  std::uint64_t entries = 0;
  std::uint64_t used_bytes = 0;     // blocks of live records
  std::uint64_t retired_bytes = 0;  // replaced records not yet freed
  std::uint64_t free_bytes = 0;     // on the free lists
  std::uint64_t chunk_bytes = 0;    // chunks the partition owns
  std::uint64_t puts = 0;
  std::uint64_t removes = 0;
  std::uint64_t cas_failures = 0;
  std::uint64_t evictions = 0;    // entries evicted (docs/eviction.md)
  std::uint64_t expirations = 0;  // expired entries the worker removed
  // Gets by every process since create; only when the grid keeps read
  // counters per partition (GridStatsReport::reads_per_partition).
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t ring_depth = 0;  // entries not yet reclaimed
  std::uint64_t ring_high_water = 0;
  std::uint64_t lag_records = 0;  // visible, not yet durable
  std::uint64_t lag_bytes = 0;    // their key + value bytes
};

// A node's numbers; in GridStatsReport::workers, one journal stream's (its
// worker's: the journal_*, flushes, io_errors, restarts, fences,
// generation, worker_up and snapshot_age_s fields only).
struct NodeStatsRow {
  std::uint32_t node = 0;
  std::uint32_t stream = 0;  // in `workers`: the node's journal stream
  std::uint64_t entries = 0;
  std::uint64_t hits = 0;  // gets of its partitions, by every process
  std::uint64_t misses = 0;
  std::uint64_t used_bytes = 0;
  std::uint64_t free_bytes = 0;
  std::uint64_t ring_depth = 0;       // the fullest ring of the node
  std::uint64_t ring_high_water = 0;  // the highest mark of its rings
  std::uint64_t lag_records = 0;
  std::uint64_t lag_bytes = 0;
  std::uint64_t lag_last_ms = 0;
  std::uint64_t lag_max_ms = 0;
  HistogramReading lag;    // per batch, ms
  HistogramReading flush;  // per flush, us
  std::uint64_t journal_records = 0;
  std::uint64_t journal_bytes = 0;
  std::uint64_t flushes = 0;
  std::uint64_t io_errors = 0;
  std::uint64_t restarts = 0;
  std::uint64_t fences = 0;
  std::uint64_t expirations = 0;  // the sum of its partitions'
  std::uint64_t evictions = 0;    // the sum of its partitions'
  std::uint64_t generation = 0;
  std::uint64_t worker_generation = 0;
  bool worker_up = false;
  double snapshot_age_s = -1;  // -1: no snapshot file
};

struct ProcessStatsRow {
  std::uint32_t slot = 0;
  std::uint64_t pid = 0;
  OpCounts since_attach;
};

struct GridStatsReport {
  std::string name;
  bool stats_enabled = true;
  bool journaled = false;
  std::uint64_t ring_capacity = 0;
  std::uint32_t process_capacity = 0;
  // Hits and misses are kept per partition (else only per node: a grid
  // whose per-partition rows would exceed kMaxReadCounterBytes).
  bool reads_per_partition = true;
  OpCounts totals;  // over every slot, live or not: never drops
  // Node rows: a node's worker numbers are the sums over its streams
  // (worker_up: every stream's worker runs; generation: the highest;
  // snapshot_age_s: the oldest of the streams' newest snapshots).
  std::vector<NodeStatsRow> nodes;
  // Journal streams per node, and one row per stream (per worker), node by
  // node: node n's stream s at n * streams_per_node + s.
  std::uint32_t streams_per_node = 1;
  std::vector<NodeStatsRow> workers;
  std::vector<PartitionStatsRow> partitions;
  std::vector<ProcessStatsRow> processes;  // claimed slots
};

// Reads every counter of the grid `grid` is attached to.
GridStatsReport CollectStats(GridHandle& grid);

}  // namespace numagrid::core
