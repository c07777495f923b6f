#include "core/stats.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>

#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/watchdog.h"
#include "io/node_file_name.h"
#include "io/snapshot_file.h"

namespace numagrid::core {
namespace {

// relaxed throughout this file: a report of independent counters, each
// written by one party (see core/stats_layout.h); a stale value is fine.
std::uint64_t Load(const std::atomic<std::uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}

OpCounts Read(const ProcessCounters& c) {
  OpCounts o;
  o.puts = Load(c.puts);
  o.removes = Load(c.removes);
  o.cas_failures = Load(c.cas_failures);
  o.write_errors = Load(c.write_errors);
  o.backpressure_waits = Load(c.backpressure_waits);
  o.backpressure_wait_ns = Load(c.backpressure_wait_ns);
  return o;
}

// a - b per field, 0 where b is ahead (at_claim half-written).
OpCounts Minus(const OpCounts& a, const OpCounts& b) {
  auto d = [](std::uint64_t x, std::uint64_t y) { return x > y ? x - y : 0; };
  OpCounts o;
  o.hits = d(a.hits, b.hits);
  o.misses = d(a.misses, b.misses);
  o.puts = d(a.puts, b.puts);
  o.removes = d(a.removes, b.removes);
  o.cas_failures = d(a.cas_failures, b.cas_failures);
  o.write_errors = d(a.write_errors, b.write_errors);
  o.backpressure_waits = d(a.backpressure_waits, b.backpressure_waits);
  o.backpressure_wait_ns = d(a.backpressure_wait_ns, b.backpressure_wait_ns);
  return o;
}

struct ReadTotals {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
};

HistogramReading Read(const Log2Histogram& h, double unit_seconds) {
  HistogramReading r;
  r.unit_seconds = unit_seconds;
  r.buckets.resize(kHistogramBuckets);
  for (std::uint32_t i = 0; i < kHistogramBuckets; ++i) {
    r.buckets[i] = Load(h.buckets[i]);
    r.count += r.buckets[i];  // so that count agrees with the buckets read
  }
  r.sum = Load(h.sum);
  return r;
}

// Seconds since the newest snapshot file of `node` was written; -1 if none.
double SnapshotAge(const std::string& dir, std::uint32_t node) {
  auto snaps = io::ListSnapshots(dir, node);
  if (!snaps.ok() || snaps->empty()) return -1;
  struct stat st {};
  if (stat(snaps->back().path.c_str(), &st) != 0) return -1;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const double age =
      static_cast<double>(now.tv_sec - st.st_mtim.tv_sec) +
      static_cast<double>(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
  return std::max(age, 0.0);
}

}  // namespace

OpCounts& OpCounts::operator+=(const OpCounts& o) {
  hits += o.hits;
  misses += o.misses;
  puts += o.puts;
  removes += o.removes;
  cas_failures += o.cas_failures;
  write_errors += o.write_errors;
  backpressure_waits += o.backpressure_waits;
  backpressure_wait_ns += o.backpressure_wait_ns;
  return *this;
}

GridStatsReport CollectStats(GridHandle& h) {
  GridStatsReport r;
  const GridConfig& c = h.config();
  r.name = h.name();
  r.stats_enabled = h.stats_enabled();
  r.journaled = h.journaled();
  r.ring_capacity = c.ring_capacity;
  r.process_capacity = c.process_capacity;

  r.reads_per_partition = h.reads_per_partition();
  // Gets per bucket (partition or node), summed over the slots.
  std::vector<ReadTotals> reads(c.read_buckets);
  for (std::uint32_t i = 0; i < c.process_capacity; ++i) {
    const ProcessStats& ps = h.process_stats(i);
    OpCounts total = Read(ps.total);
    const ReadCounters* slot_reads = h.read_row(i);
    for (std::uint32_t b = 0; b < c.read_buckets; ++b) {
      const std::uint64_t hits = Load(slot_reads[b].hits);
      const std::uint64_t misses = Load(slot_reads[b].misses);
      reads[b].hits += hits;
      reads[b].misses += misses;
      total.hits += hits;
      total.misses += misses;
    }
    r.totals += total;
    const shm::ProcessSlot& slot = h.procs().slot(i);
    if (slot.state.load(std::memory_order_acquire) != shm::kSlotClaimed) {
      continue;
    }
    ProcessStatsRow row;
    row.slot = i;
    row.pid = slot.pid.load(std::memory_order_relaxed);
    OpCounts at_claim = Read(ps.at_claim);
    at_claim.hits = Load(ps.reads_at_claim.hits);
    at_claim.misses = Load(ps.reads_at_claim.misses);
    row.since_attach = Minus(total, at_claim);
    r.processes.push_back(row);
  }

  r.nodes.resize(c.node_count);
  const std::string dir = h.journaled() ? h.journal_dir() : "";
  for (std::uint32_t n = 0; n < c.node_count; ++n) {
    NodeStatsRow& row = r.nodes[n];
    row.node = n;
    const NodeStats& ns = h.node_stats(n);
    row.lag = Read(ns.lag_ms, 1e-3);
    row.flush = Read(ns.flush_us, 1e-6);
    row.lag_last_ms = Load(ns.lag_last_ms);
    row.lag_max_ms = Load(ns.lag_max_ms);
    if (!h.journaled()) continue;
    row.worker_up = true;
    for (std::uint32_t s = 0; s < h.streams_per_node(); ++s) {
      const std::uint32_t id = io::StreamId(n, s);
      const JournalNodeState& j = h.journal_node(id);
      NodeStatsRow w;
      w.node = n;
      w.stream = s;
      w.journal_records = Load(j.records);
      w.journal_bytes = Load(j.bytes);
      w.flushes = Load(j.flushes);
      w.io_errors = Load(j.io_errors);
      w.restarts = Load(j.restarts);
      w.fences = Load(j.fences);
      w.generation = Load(j.generation);
      w.worker_generation = Load(j.worker_generation);
      w.worker_up =
          j.worker_state.load(std::memory_order_relaxed) == kWorkerRunning &&
          ProcessRunning(Load(j.worker_pid));
      w.snapshot_age_s = SnapshotAge(dir, id);
      row.journal_records += w.journal_records;
      row.journal_bytes += w.journal_bytes;
      row.flushes += w.flushes;
      row.io_errors += w.io_errors;
      row.restarts += w.restarts;
      row.fences += w.fences;
      row.generation = std::max(row.generation, w.generation);
      row.worker_generation =
          std::max(row.worker_generation, w.worker_generation);
      row.worker_up = row.worker_up && w.worker_up;
      if (s == 0 || w.snapshot_age_s < 0 || row.snapshot_age_s < 0) {
        row.snapshot_age_s = s == 0 || w.snapshot_age_s < 0
                                 ? w.snapshot_age_s
                                 : row.snapshot_age_s;
      } else {
        row.snapshot_age_s = std::max(row.snapshot_age_s, w.snapshot_age_s);
      }
      r.workers.push_back(w);
    }
  }
  r.streams_per_node = h.streams_per_node();

  if (!r.reads_per_partition) {
    for (std::uint32_t n = 0; n < c.node_count; ++n) {
      r.nodes[n].hits = reads[n].hits;
      r.nodes[n].misses = reads[n].misses;
    }
  }

  r.partitions.resize(h.partition_count());
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    const PartitionState& st = h.partition(p).state();
    const PartitionCounters& pc = st.counters;
    PartitionStatsRow& row = r.partitions[p];
    row.partition = p;
    row.node = h.node_of(p);
    row.entries = Load(pc.live_entries);
    row.used_bytes = Load(pc.live_bytes);
    row.retired_bytes = Load(pc.retired_bytes);
    row.free_bytes = Load(pc.free_bytes);
    row.chunk_bytes = Load(pc.chunk_bytes);
    row.puts = Load(pc.puts);
    row.removes = Load(pc.removes);
    row.cas_failures = Load(pc.cas_failures);
    row.evictions = Load(pc.evictions);
    row.expirations = Load(pc.expirations);
    row.ring_high_water = Load(pc.ring_high_water);
    // Consumer's counters first: the writer's are then at least as new,
    // so a difference is never negative but for a stale pair (clamped).
    const std::uint64_t journaled_bytes = Load(st.journaled_bytes);
    const std::uint64_t journaled = Load(st.journaled_seq);
    const std::uint64_t reclaimed = Load(st.reclaimed_seq);
    const std::uint64_t next = Load(st.next_seq);
    const std::uint64_t change_bytes = Load(pc.change_bytes);
    row.ring_depth = next > reclaimed ? next - reclaimed : 0;
    if (h.journaled()) {
      row.lag_records = next > journaled ? next - journaled : 0;
      row.lag_bytes =
          change_bytes > journaled_bytes ? change_bytes - journaled_bytes : 0;
    }
    NodeStatsRow& nr = r.nodes[row.node];
    if (r.reads_per_partition) {
      row.hits = reads[p].hits;
      row.misses = reads[p].misses;
      nr.hits += row.hits;
      nr.misses += row.misses;
    }
    nr.entries += row.entries;
    nr.evictions += row.evictions;
    nr.expirations += row.expirations;
    nr.used_bytes += row.used_bytes;
    nr.free_bytes += row.free_bytes;
    nr.ring_depth = std::max(nr.ring_depth, row.ring_depth);
    nr.ring_high_water = std::max(nr.ring_high_water, row.ring_high_water);
    nr.lag_records += row.lag_records;
    nr.lag_bytes += row.lag_bytes;
  }
  return r;
}

}  // namespace numagrid::core
