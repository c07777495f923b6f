// Report: summaries, ratios, text and JSON.
#include "bench/numagrid_bench/report.h"

#include <cinttypes>
#include <cmath>
#include <map>
#include <string_view>

namespace numagrid::bench {

OpSummary Summarize(std::string op, const LatencyHistogram& h,
                    std::uint64_t not_found, std::uint64_t failed,
                    double wall_seconds) {
  OpSummary s;
  s.op = std::move(op);
  s.count = h.count();
  s.not_found = not_found;
  s.failed = failed;
  s.throughput_ops_per_s =
      wall_seconds > 0 ? static_cast<double>(s.count) / wall_seconds : 0;
  s.mean_ns = h.mean();
  s.p50_ns = h.ValueAtQuantile(0.50);
  s.p90_ns = h.ValueAtQuantile(0.90);
  s.p99_ns = h.ValueAtQuantile(0.99);
  s.p99_9_ns = h.ValueAtQuantile(0.999);
  s.p99_99_ns = h.ValueAtQuantile(0.9999);
  s.max_ns = h.max();
  return s;
}

namespace {

const OpSummary* FindOp(const RunResult& r, const std::string& op) {
  if (op == "all") return &r.all;
  for (const OpSummary& s : r.ops) {
    if (s.op == op) return &s;
  }
  return nullptr;
}

// numagrid and its journaled variants (numagrid-async, numagrid-sync).
bool IsNumagrid(std::string_view target) {
  return target == "numagrid" || target.starts_with("numagrid-");
}

std::string P(std::uint32_t procs) { return "procs" + std::to_string(procs); }

void AddRatio(Report& rep, std::string name, double num, double den) {
  if (den > 0 && num > 0) rep.ratios.push_back({std::move(name), num / den});
}

}  // namespace

void ComputeRatios(Report& rep) {
  rep.ratios.clear();
  const double round_trip = rep.cacheline.round_trip_ns;
  const double fdatasync = rep.disk.fdatasync_p50_ns;
  for (const RunResult& r : rep.runs) {
    // Stores that sync each write, against the disk they sync to.
    if (r.syncs_each_write && !IsNumagrid(r.target)) {
      for (const char* op : {"update", "insert"}) {
        const OpSummary* w = FindOp(r, op);
        if (w == nullptr || w->count == 0) continue;
        AddRatio(rep,
                 r.target + "." + P(r.procs) + "." + op +
                     ".p50_ns / fdatasync_p50_ns",
                 static_cast<double>(w->p50_ns), fdatasync);
      }
    }
    if (!IsNumagrid(r.target)) continue;
    // numagrid (and each journaled variant) against the physical limits.
    for (const char* op : {"read", "update", "insert"}) {
      const OpSummary* s = FindOp(r, op);
      if (s == nullptr || s->count == 0) continue;
      const std::string name =
          r.target + "." + P(r.procs) + "." + op + ".p50_ns";
      const auto p50 = static_cast<double>(s->p50_ns);
      AddRatio(rep, name + " / dram_ns_per_access", p50,
               rep.dram_ns_per_access);
      AddRatio(rep, name + " / cacheline_round_trip_ns", p50, round_trip);
      if (std::string_view(op) != "read") {
        AddRatio(rep, name + " / fdatasync_p50_ns", p50, fdatasync);
      }
    }
    // The memory-only grid against everything else, the journaled variants
    // included.
    if (r.target != "numagrid") continue;
    for (const RunResult& peer : rep.runs) {
      if (peer.target == "numagrid" || peer.procs != r.procs) continue;
      // Not scan: numagrid scans a partition, the peers look up N keys.
      for (const char* op : {"read", "update", "insert", "read_modify_write"}) {
        const OpSummary* a = FindOp(r, op);
        const OpSummary* b = FindOp(peer, op);
        if (a == nullptr || b == nullptr || a->count == 0 || b->count == 0) {
          continue;
        }
        AddRatio(rep,
                 "numagrid." + P(r.procs) + "." + op + ".p50_ns / " +
                     peer.target + "." + P(peer.procs) + "." + op + ".p50_ns",
                 static_cast<double>(a->p50_ns),
                 static_cast<double>(b->p50_ns));
      }
      AddRatio(rep,
               "numagrid." + P(r.procs) + ".all.throughput_ops_per_s / " +
                   peer.target + "." + P(peer.procs) +
                   ".all.throughput_ops_per_s",
               r.all.throughput_ops_per_s, peer.all.throughput_ops_per_s);
    }
  }
  // Scaling: each target against its own first run.
  std::map<std::string, const RunResult*> first;
  for (const RunResult& r : rep.runs) {
    auto [it, inserted] = first.emplace(r.target, &r);
    if (inserted) continue;
    const RunResult& base = *it->second;
    AddRatio(rep,
             r.target + "." + P(r.procs) + ".all.throughput_ops_per_s / " +
                 r.target + "." + P(base.procs) + ".all.throughput_ops_per_s",
             r.all.throughput_ops_per_s, base.all.throughput_ops_per_s);
  }
}

namespace {

void PrintRow(std::FILE* out, const OpSummary& s) {
  std::fprintf(out,
               "  %-17s %10" PRIu64 " %20.0f %8.1f %7" PRIu64 " %7" PRIu64
               " %7" PRIu64 " %9" PRIu64 " %10" PRIu64 " %10" PRIu64
               " %9" PRIu64 " %6" PRIu64 "\n",
               s.op.c_str(), s.count, s.throughput_ops_per_s, s.mean_ns,
               s.p50_ns, s.p90_ns, s.p99_ns, s.p99_9_ns, s.p99_99_ns, s.max_ns,
               s.not_found, s.failed);
}

std::string JsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// A baseline: null when not measured (negative).
std::string Measured(double v) { return v < 0 ? "null" : Num(v); }

std::string BaselinesJson(const Report& r) {
  const CacheLineRoundTrip& c = r.cacheline;
  const DiskBaseline& d = r.disk;
  std::string j = "  \"baselines\": {\"dram_ns_per_access\": " +
                  Measured(r.dram_ns_per_access) +
                  ", \"chase_bytes\": " + std::to_string(r.chase_bytes) + ",\n";
  j += "    \"cacheline_round_trip_ns\": " + Measured(c.round_trip_ns) +
       ", \"cacheline_one_way_ns\": " +
       Measured(c.round_trip_ns < 0 ? -1 : c.round_trip_ns / 2) +
       ", \"cacheline_cpus\": [" + std::to_string(c.cpu_a) + ", " +
       std::to_string(c.cpu_b) +
       "], \"cacheline_round_trips\": " + std::to_string(c.round_trips) +
       ", \"cacheline_error\": " + JsonString(c.error) + ",\n";
  j += "    \"disk\": {\"dir\": " + JsonString(d.dir) +
       ", \"fs_type\": " + JsonString(d.fs_type) +
       ", \"seq_write_mib_per_s\": " + Measured(d.seq_write_mib_per_s) +
       ", \"write_bytes\": " + std::to_string(d.write_bytes) +
       ", \"fdatasync_p50_ns\": " + Measured(d.fdatasync_p50_ns) +
       ", \"fdatasync_max_ns\": " + Measured(d.fdatasync_max_ns) +
       ", \"fdatasync_samples\": " + std::to_string(d.samples) +
       ", \"error\": " + JsonString(d.error) + "}},\n";
  return j;
}

std::string OpJson(const OpSummary& s) {
  return "{\"op\": " + JsonString(s.op) +
         ", \"count\": " + std::to_string(s.count) +
         ", \"not_found\": " + std::to_string(s.not_found) +
         ", \"failed\": " + std::to_string(s.failed) +
         ", \"throughput_ops_per_s\": " + Num(s.throughput_ops_per_s) +
         ", \"mean_ns\": " + Num(s.mean_ns) +
         ", \"p50_ns\": " + std::to_string(s.p50_ns) +
         ", \"p90_ns\": " + std::to_string(s.p90_ns) +
         ", \"p99_ns\": " + std::to_string(s.p99_ns) +
         ", \"p99.9_ns\": " + std::to_string(s.p99_9_ns) +
         ", \"p99.99_ns\": " + std::to_string(s.p99_99_ns) +
         ", \"max_ns\": " + std::to_string(s.max_ns) + "}";
}

// numagrid's read and write p50 as multiples of the physical baselines.
void PrintPhysicalLimits(const Report& r, std::FILE* out) {
  bool header = false;
  for (const RunResult& run : r.runs) {
    if (!IsNumagrid(run.target)) continue;
    for (const OpSummary& s : run.ops) {
      if (s.op != "read" && s.op != "update" && s.op != "insert") continue;
      if (s.count == 0) continue;
      if (!header) {
        std::fprintf(out, "numagrid p50 against the physical limits:\n");
        header = true;
      }
      const auto p50 = static_cast<double>(s.p50_ns);
      std::fprintf(out, "  %sprocs %u %-6s p50 %7" PRIu64 " ns",
                   run.target == "numagrid" ? "" : (run.target + " ").c_str(),
                   run.procs, s.op.c_str(), s.p50_ns);
      if (r.dram_ns_per_access > 0) {
        std::fprintf(out, " = %7.2fx DRAM access", p50 / r.dram_ns_per_access);
      }
      if (r.cacheline.round_trip_ns > 0) {
        std::fprintf(out, ", %7.2fx cache-line round trip",
                     p50 / r.cacheline.round_trip_ns);
      }
      if (s.op != "read" && r.disk.fdatasync_p50_ns > 0) {
        std::fprintf(out, ", %7.4fx fdatasync", p50 / r.disk.fdatasync_p50_ns);
      }
      std::fprintf(out, "\n");
    }
  }
  if (header) std::fprintf(out, "\n");
}

}  // namespace

void PrintText(const Report& r, std::FILE* out) {
  std::fprintf(
      out,
      "numagrid-bench: workload %s (%s), distribution %s, records %" PRIu64
      ", key_size %" PRIu64 ", value_size %" PRIu64 ", seed %" PRIu64
      ", %s, warmup %.1f s, %u cpus\n",
      r.workload.c_str(), r.workload_description.c_str(),
      r.distribution.c_str(), r.records, r.key_size, r.value_size, r.seed,
      r.ops != 0 ? ("ops " + std::to_string(r.ops)).c_str()
                 : ("seconds " + Num(r.seconds)).c_str(),
      r.warmup_seconds, r.cpus);
  std::fprintf(
      out, "host: load average %.2f at start, %u other runnable thread(s)%s\n",
      r.load_average_1min, r.other_runnable,
      r.other_runnable > 0 ? " (WARNING: other work competes for the CPUs; "
                             "multi-worker results are not reliable)"
                           : "");
  std::fprintf(
      out,
      "clock: %s, %.1f ns per read (mean of back-to-back reads), smallest step "
      "%" PRIu64 " ns; every latency below includes about one clock read\n",
      r.clock_source.c_str(), r.clock_ns_per_read, r.clock_min_delta_ns);
  std::fprintf(
      out,
      "baseline: dram_ns_per_access %.1f (dependent pointer chase over %" PRIu64
      " MiB, 64-byte nodes in one random cycle, 4 KiB pages)\n",
      r.dram_ns_per_access, r.chase_bytes >> 20);
  if (r.cacheline.round_trip_ns >= 0) {
    std::fprintf(out,
                 "baseline: cacheline_round_trip_ns %.1f (CPUs %d and %d "
                 "ping-pong one atomic; a round trip is two cache-line "
                 "transfers, one-way about %.1f ns; median of %" PRIu64
                 " round trips in batches of 1000)\n",
                 r.cacheline.round_trip_ns, r.cacheline.cpu_a,
                 r.cacheline.cpu_b, r.cacheline.round_trip_ns / 2,
                 r.cacheline.round_trips);
  } else {
    std::fprintf(out, "baseline: cacheline_round_trip_ns not measured: %s\n",
                 r.cacheline.error.c_str());
  }
  if (r.disk.fdatasync_p50_ns >= 0) {
    std::fprintf(
        out,
        "baseline: disk %s (%s): seq_write_mib_per_s %.0f (%" PRIu64
        " MiB in 1 MiB writes + one fdatasync), fdatasync_p50_ns %.0f, "
        "max %.0f (%u x 4 KiB append + fdatasync)%s\n",
        r.disk.dir.c_str(), r.disk.fs_type.c_str(), r.disk.seq_write_mib_per_s,
        r.disk.write_bytes >> 20, r.disk.fdatasync_p50_ns,
        r.disk.fdatasync_max_ns, r.disk.samples,
        r.disk.fs_type == "tmpfs" || r.disk.fs_type == "ramfs"
            ? " WARNING: a memory file system; fdatasync writes nothing"
            : "");
  } else {
    std::fprintf(out, "baseline: disk not measured: %s\n",
                 r.disk.error.c_str());
  }
  std::fprintf(out, "method: %s\n\n", kMethodStatement);
  for (const RunResult& run : r.runs) {
    std::fprintf(out,
                 "target %s, procs %u (%s), wall_seconds %.3f\n  store: %s\n"
                 "  persistence: %s\n",
                 run.target.c_str(), run.procs, run.workers.c_str(),
                 run.wall_seconds, run.store.c_str(), run.persistence.c_str());
    std::fprintf(
        out, "  %-17s %10s %20s %8s %7s %7s %7s %9s %10s %10s %9s %6s\n", "op",
        "count", "throughput_ops_per_s", "mean_ns", "p50_ns", "p90_ns",
        "p99_ns", "p99.9_ns", "p99.99_ns", "max_ns", "not_found", "failed");
    for (const OpSummary& s : run.ops) PrintRow(out, s);
    PrintRow(out, run.all);
    for (const std::string& e : run.errors) {
      std::fprintf(out, "  ERROR: %s\n", e.c_str());
    }
    std::fprintf(out, "\n");
  }
  for (const Skipped& k : r.skipped) {
    std::fprintf(out, "target %s: SKIPPED for workload %s: %s\n\n",
                 k.target.c_str(), r.workload.c_str(), k.reason.c_str());
  }
  PrintPhysicalLimits(r, out);
  if (!r.ratios.empty()) {
    std::fprintf(out, "ratios (same run):\n");
    for (const Ratio& q : r.ratios) {
      std::fprintf(out, "  %-90s %10.4g\n", q.name.c_str(), q.value);
    }
  }
}

std::string ToJson(const Report& r) {
  std::string j = "{\n  \"benchmark\": \"numagrid-bench\",\n";
  j += "  \"workload\": " + JsonString(r.workload) + ",\n";
  j += "  \"workload_description\": " + JsonString(r.workload_description) +
       ",\n";
  j += "  \"distribution\": " + JsonString(r.distribution) + ",\n";
  j += "  \"records\": " + std::to_string(r.records) + ",\n";
  j += "  \"key_size\": " + std::to_string(r.key_size) + ",\n";
  j += "  \"value_size\": " + std::to_string(r.value_size) + ",\n";
  j += "  \"seed\": " + std::to_string(r.seed) + ",\n";
  j += "  \"seconds\": " + Num(r.seconds) + ",\n";
  j += "  \"ops\": " + std::to_string(r.ops) + ",\n";
  j += "  \"warmup_seconds\": " + Num(r.warmup_seconds) + ",\n";
  j += "  \"cpus\": " + std::to_string(r.cpus) + ",\n";
  j += "  \"host\": {\"load_average_1min\": " + Num(r.load_average_1min) +
       ", \"other_runnable\": " + std::to_string(r.other_runnable) + "},\n";
  j += "  \"clock\": {\"source\": " + JsonString(r.clock_source) +
       ", \"ns_per_read\": " + Num(r.clock_ns_per_read) +
       ", \"min_delta_ns\": " + std::to_string(r.clock_min_delta_ns) + "},\n";
  j += BaselinesJson(r);
  j += "  \"method\": {\"loop\": \"closed\", \"latency\": \"service time\", "
       "\"coordinated_omission\": \"not corrected\", \"statement\": " +
       JsonString(kMethodStatement) + "},\n";
  j += "  \"runs\": [";
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    const RunResult& run = r.runs[i];
    j += i == 0 ? "\n" : ",\n";
    j +=
        "    {\"target\": " + JsonString(run.target) +
        ", \"procs\": " + std::to_string(run.procs) +
        ", \"workers\": " + JsonString(run.workers) +
        ", \"store\": " + JsonString(run.store) +
        ", \"persistence\": " + JsonString(run.persistence) +
        ", \"syncs_each_write\": " + (run.syncs_each_write ? "true" : "false") +
        ", \"wall_seconds\": " + Num(run.wall_seconds) +
        ",\n     \"operations\": [";
    for (std::size_t k = 0; k < run.ops.size(); ++k) {
      j += (k == 0 ? "\n       " : ",\n       ") + OpJson(run.ops[k]);
    }
    j += "],\n     \"all\": " + OpJson(run.all) + ",\n     \"errors\": [";
    for (std::size_t k = 0; k < run.errors.size(); ++k) {
      j += (k == 0 ? "" : ", ") + JsonString(run.errors[k]);
    }
    j += "]}";
  }
  j += "\n  ],\n  \"skipped\": [";
  for (std::size_t i = 0; i < r.skipped.size(); ++i) {
    j += (i == 0 ? "\n    " : ",\n    ");
    j += "{\"target\": " + JsonString(r.skipped[i].target) +
         ", \"reason\": " + JsonString(r.skipped[i].reason) + "}";
  }
  j += "\n  ],\n  \"ratios\": [";
  for (std::size_t i = 0; i < r.ratios.size(); ++i) {
    j += (i == 0 ? "\n    " : ",\n    ");
    j += "{\"name\": " + JsonString(r.ratios[i].name) +
         ", \"value\": " + Num(r.ratios[i].value) + "}";
  }
  j += "\n  ]\n}\n";
  return j;
}

}  // namespace numagrid::bench
