#include "core/prometheus_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace numagrid::core {
namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Label values escape backslash, double quote and newline (the format's
// only escapes).
std::string Escape(std::string_view v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

// The shortest text that reads back as `v` (Go's ParseFloat accepts it).
std::string Number(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return {buf, r.ptr};
}

class Writer {
 public:
  explicit Writer(std::string grid) : grid_(std::move(grid)) {}

  // Starts a family: its HELP and TYPE lines.
  void Family(std::string_view name, std::string_view type,
              std::string_view help) {
    name_ = std::string(name);
    out_ += "# HELP " + name_ + " " + std::string(help) + "\n";
    out_ += "# TYPE " + name_ + " " + std::string(type) + "\n";
  }

  void Sample(const Labels& labels, std::uint64_t v,
              std::string_view suffix = "") {
    Line(suffix, labels, std::to_string(v));
  }
  void Sample(const Labels& labels, double v, std::string_view suffix = "") {
    Line(suffix, labels, Number(v));
  }

  // A histogram's _bucket (cumulative, ending in +Inf), _sum and _count.
  void Histogram(const Labels& labels, const HistogramReading& h) {
    const double per_second = std::round(1.0 / h.unit_seconds);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i];
      Labels l = labels;
      l.emplace_back("le", i + 1 == h.buckets.size()
                               ? std::string("+Inf")
                               : Number(std::ldexp(1.0, static_cast<int>(i)) /
                                        per_second));
      Line("_bucket", l, std::to_string(cumulative));
    }
    Line("_sum", labels, Number(static_cast<double>(h.sum) / per_second));
    Line("_count", labels, std::to_string(cumulative));
  }

  const std::string& grid() const { return grid_; }
  std::string Take() { return std::move(out_); }

 private:
  void Line(std::string_view suffix, const Labels& labels,
            const std::string& value) {
    out_ += name_;
    out_ += suffix;
    out_ += "{grid=\"" + Escape(grid_) + "\"";
    for (const auto& [k, v] : labels) {
      out_ += ",";
      out_ += k;
      out_ += "=\"" + Escape(v) + "\"";
    }
    out_ += "} " + value + "\n";
  }

  std::string grid_;
  std::string name_;
  std::string out_;
};

Labels NodeLabels(std::uint32_t node) {
  return {{"node", std::to_string(node)}};
}

// A worker's (journal stream's) series: labelled by node, and by stream
// when the grid has several per node (a one-stream grid's series are as
// they were before streams existed).
Labels WorkerLabels(const GridStatsReport& r, const NodeStatsRow& w) {
  Labels l = NodeLabels(w.node);
  if (r.streams_per_node > 1) {
    l.emplace_back("stream", std::to_string(w.stream));
  }
  return l;
}

Labels PartitionLabels(const PartitionStatsRow& p) {
  return {{"node", std::to_string(p.node)},
          {"partition", std::to_string(p.partition)}};
}

void PartitionFamilies(Writer& w, const GridStatsReport& r) {
  struct Def {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t PartitionStatsRow::*field;
  };
  static const Def defs[] = {
      {"numagrid_entries", "gauge", "Live entries in the partition.",
       &PartitionStatsRow::entries},
      {"numagrid_used_bytes", "gauge",
       "Bytes of the blocks that hold the partition's live records.",
       &PartitionStatsRow::used_bytes},
      {"numagrid_retired_bytes", "gauge",
       "Bytes of replaced or removed records not yet freed.",
       &PartitionStatsRow::retired_bytes},
      {"numagrid_free_bytes", "gauge",
       "Bytes on the partition's free lists, ready for new records.",
       &PartitionStatsRow::free_bytes},
      {"numagrid_chunk_bytes", "gauge",
       "Bytes of the arena chunks the partition owns.",
       &PartitionStatsRow::chunk_bytes},
      {"numagrid_puts_total", "counter",
       "Writes other than removes applied to the partition.",
       &PartitionStatsRow::puts},
      {"numagrid_removes_total", "counter", "Removes applied to the partition.",
       &PartitionStatsRow::removes},
      {"numagrid_cas_failures_total", "counter",
       "Compare-and-set and remove-if-version writes refused for a version "
       "mismatch.",
       &PartitionStatsRow::cas_failures},
      {"numagrid_evictions_total", "counter",
       "Entries evicted from the partition to keep its node below the "
       "memory or entry watermark (docs/eviction.md).",
       &PartitionStatsRow::evictions},
      {"numagrid_expirations_total", "counter",
       "Expired entries the journal worker's sweep removed from the "
       "partition (journaled removes).",
       &PartitionStatsRow::expirations},
      {"numagrid_ring_depth", "gauge",
       "Entries in the partition's change ring not yet reclaimed.",
       &PartitionStatsRow::ring_depth},
      {"numagrid_ring_high_water", "gauge",
       "The most entries the partition's change ring has held since create.",
       &PartitionStatsRow::ring_high_water},
  };
  for (const Def& d : defs) {
    w.Family(d.name, d.type, d.help);
    for (const auto& p : r.partitions) w.Sample(PartitionLabels(p), p.*d.field);
  }
}

// Hits and misses by every process since create: per partition, or per
// node for a grid that keeps its read counters per node
// (GridStatsReport::reads_per_partition).
void ReadFamilies(Writer& w, const GridStatsReport& r) {
  const std::pair<const char*, const char*> families[] = {
      {"numagrid_get_hits_total", "Gets that found their key."},
      {"numagrid_get_misses_total",
       "Gets that did not find their key (absent or expired)."},
  };
  for (const auto& [name, help] : families) {
    const bool hits = name == families[0].first;
    w.Family(name, "counter", help);
    if (r.reads_per_partition) {
      for (const auto& p : r.partitions) {
        w.Sample(PartitionLabels(p), hits ? p.hits : p.misses);
      }
    } else {
      for (const auto& n : r.nodes) {
        w.Sample(NodeLabels(n.node), hits ? n.hits : n.misses);
      }
    }
  }
}

void JournalFamilies(Writer& w, const GridStatsReport& r) {
  struct Def {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t NodeStatsRow::*field;
  };
  static const Def node_defs[] = {
      {"numagrid_journal_lag_records", "gauge",
       "Changes visible but not yet durable in the node's journal.",
       &NodeStatsRow::lag_records},
      {"numagrid_journal_lag_bytes", "gauge",
       "Key and value bytes of the changes visible but not yet durable.",
       &NodeStatsRow::lag_bytes},
  };
  for (const Def& d : node_defs) {
    w.Family(d.name, d.type, d.help);
    for (const auto& n : r.nodes) w.Sample(NodeLabels(n.node), n.*d.field);
  }
  // Per worker: one series per journal stream.
  static const Def defs[] = {
      {"numagrid_journal_records_total", "counter",
       "Records the node's journal workers made durable.",
       &NodeStatsRow::journal_records},
      {"numagrid_journal_bytes_total", "counter",
       "Journal bytes the node's workers made durable.",
       &NodeStatsRow::journal_bytes},
      {"numagrid_journal_flushes_total", "counter",
       "Journal flushes (one fdatasync each) of the node.",
       &NodeStatsRow::flushes},
      {"numagrid_journal_io_errors_total", "counter",
       "Failed journal writes or flushes of the node (each retried).",
       &NodeStatsRow::io_errors},
      {"numagrid_worker_restarts_total", "counter",
       "Journal workers of the node the watchdog started again.",
       &NodeStatsRow::restarts},
      {"numagrid_worker_fences_total", "counter",
       "Journal workers of the node that stepped down, fenced.",
       &NodeStatsRow::fences},
      {"numagrid_worker_generation", "gauge",
       "The node's current worker generation.", &NodeStatsRow::generation},
  };
  for (const Def& d : defs) {
    w.Family(d.name, d.type, d.help);
    for (const auto& n : r.workers) w.Sample(WorkerLabels(r, n), n.*d.field);
  }
  w.Family("numagrid_worker_up", "gauge",
           "1 if the node's journal worker runs, else 0.");
  for (const auto& n : r.workers) {
    w.Sample(WorkerLabels(r, n), std::uint64_t{n.worker_up ? 1U : 0U});
  }
  w.Family("numagrid_journal_lag_seconds", "gauge",
           "For the node's last flushed batch: seconds from its oldest change "
           "becoming visible to the batch being durable.");
  for (const auto& n : r.nodes) {
    w.Sample(NodeLabels(n.node), static_cast<double>(n.lag_last_ms) / 1000);
  }
  w.Family("numagrid_journal_lag_max_seconds", "gauge",
           "The largest journal lag of any batch of the node since create.");
  for (const auto& n : r.nodes) {
    w.Sample(NodeLabels(n.node), static_cast<double>(n.lag_max_ms) / 1000);
  }
  w.Family("numagrid_journal_batch_lag_seconds", "histogram",
           "Per flushed batch: seconds from its oldest change becoming "
           "visible to the batch being durable.");
  for (const auto& n : r.nodes) w.Histogram(NodeLabels(n.node), n.lag);
  w.Family("numagrid_journal_flush_duration_seconds", "histogram",
           "Time of each journal flush: writing the batch and its fdatasync.");
  for (const auto& n : r.nodes) w.Histogram(NodeLabels(n.node), n.flush);
  w.Family("numagrid_snapshot_age_seconds", "gauge",
           "Seconds since the node's newest snapshot file was written (absent "
           "without one).");
  for (const auto& n : r.workers) {
    if (n.snapshot_age_s >= 0) w.Sample(WorkerLabels(r, n), n.snapshot_age_s);
  }
}

void ProcessFamilies(Writer& w, const GridStatsReport& r) {
  w.Family("numagrid_process_operations_total", "counter",
           "Operations of each attached process since it attached, by "
           "outcome.");
  for (const auto& p : r.processes) {
    const Labels base = {{"slot", std::to_string(p.slot)},
                         {"pid", std::to_string(p.pid)}};
    const std::pair<const char*, std::uint64_t> ops[] = {
        {"get_hit", p.since_attach.hits},
        {"get_miss", p.since_attach.misses},
        {"put", p.since_attach.puts},
        {"remove", p.since_attach.removes},
        {"cas_failure", p.since_attach.cas_failures},
        {"write_error", p.since_attach.write_errors},
    };
    for (const auto& [op, v] : ops) {
      Labels l = base;
      l.emplace_back("op", op);
      w.Sample(l, v);
    }
  }
  w.Family("numagrid_process_backpressure_wait_seconds_total", "counter",
           "Seconds each attached process's writes waited for change-ring "
           "room since it attached.");
  for (const auto& p : r.processes) {
    w.Sample({{"slot", std::to_string(p.slot)}, {"pid", std::to_string(p.pid)}},
             static_cast<double>(p.since_attach.backpressure_wait_ns) / 1e9);
  }
}

}  // namespace

std::string FormatPrometheus(const GridStatsReport& r) {
  Writer w(r.name);
  w.Family("numagrid_stats_enabled", "gauge",
           "1 if the grid keeps data-path counters, 0 if created with "
           "--no-stats.");
  w.Sample({}, std::uint64_t{r.stats_enabled ? 1U : 0U});
  w.Family("numagrid_attached_processes", "gauge",
           "Process slots currently claimed (attached handles).");
  w.Sample({}, static_cast<std::uint64_t>(r.processes.size()));
  ReadFamilies(w, r);
  w.Family("numagrid_write_errors_total", "counter",
           "Writes that failed other than by a version conflict (not found, "
           "already exists, full, timed out).");
  w.Sample({}, r.totals.write_errors);
  w.Family("numagrid_backpressure_waits_total", "counter",
           "Writes that found their change ring full and waited for room.");
  w.Sample({}, r.totals.backpressure_waits);
  w.Family("numagrid_backpressure_wait_seconds_total", "counter",
           "Seconds writes spent waiting for change-ring room.");
  w.Sample({}, static_cast<double>(r.totals.backpressure_wait_ns) / 1e9);
  w.Family("numagrid_ring_capacity", "gauge",
           "Entries each partition's change ring holds.");
  w.Sample({}, r.ring_capacity);
  PartitionFamilies(w, r);
  if (r.journaled) JournalFamilies(w, r);
  ProcessFamilies(w, r);
  return w.Take();
}

}  // namespace numagrid::core
