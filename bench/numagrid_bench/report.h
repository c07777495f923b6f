// Report: what one numagrid-bench invocation measured (configuration, clock
// cost, the physical baselines, one RunResult per target and process count,
// the targets skipped and why, and the ratios between them), printed as a
// text table and as JSON with the same names.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/numagrid_bench/baseline.h"
#include "bench/numagrid_bench/histogram.h"

namespace numagrid::bench {

// One operation type of one run (or "all": every type merged).
struct OpSummary {
  std::string op;
  std::uint64_t count = 0;      // measured operations, whatever their outcome
  std::uint64_t not_found = 0;  // of which found no key (reads, scans, updates)
  std::uint64_t failed = 0;     // of which failed (the run's errors say why)
  double throughput_ops_per_s = 0;  // count / the run's wall_seconds
  double mean_ns = 0;
  std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p99_9_ns = 0, p99_99_ns = 0,
                max_ns = 0;
};

OpSummary Summarize(std::string op, const LatencyHistogram& h,
                    std::uint64_t not_found, std::uint64_t failed,
                    double wall_seconds);

struct RunResult {
  std::string target;
  std::string store;  // Target::Describe()
  std::uint32_t procs = 0;
  std::string workers;            // "processes" or "threads"
  std::string persistence;        // Target::Persistence()
  bool syncs_each_write = false;  // Target::SyncsEachWrite()
  double wall_seconds = 0;     // first measured op of any worker to last of any
  std::vector<OpSummary> ops;  // only the types the workload uses
  OpSummary all;
  std::vector<std::string> errors;  // first failure per worker, if any
};

// A target that was not run for this workload, and why.
struct Skipped {
  std::string target;
  std::string reason;
};

struct Ratio {
  std::string name;
  double value = 0;
};

struct Report {
  std::string workload;  // "B"
  std::string workload_description;
  std::string distribution;
  std::uint64_t records = 0;
  std::uint64_t key_size = 0, value_size = 0;
  std::uint64_t seed = 0;
  double seconds = 0;     // 0 when ops is set
  std::uint64_t ops = 0;  // 0 when seconds is set
  double warmup_seconds = 0;
  std::uint32_t cpus = 0;
  double load_average_1min = 0;  // /proc/loadavg at start
  std::uint32_t other_runnable =
      0;  // runnable threads besides this one at start

  std::string clock_source;
  double clock_ns_per_read = 0;          // mean of back-to-back reads
  std::uint64_t clock_min_delta_ns = 0;  // smallest difference of two reads

  std::uint64_t chase_bytes = 0;
  double dram_ns_per_access = 0;
  CacheLineRoundTrip cacheline;  // round_trip_ns < 0: not measured
  DiskBaseline disk;             // negative values: not measured (error)

  std::vector<RunResult> runs;
  std::vector<Skipped> skipped;
  std::vector<Ratio> ratios;
};

// Fills report.ratios from report.runs and the baselines: the read and
// write (update, insert) p50 of numagrid and of its journaled variants
// (numagrid-async, numagrid-sync) over one DRAM access, one cache-line
// round trip and (writes) one fdatasync; the update p50 of every other
// target that syncs each write over one fdatasync; numagrid (the
// memory-only target) over each other target, its variants included, at
// the same process count (p50 of read and writes, total throughput); and
// each target's throughput at every process count over its first process
// count. A ratio whose baseline was not measured is left out.
void ComputeRatios(Report& report);

// How latencies are taken (closed loop, coordinated omission), one
// paragraph, as the text report and the JSON "method" state it.
inline constexpr const char kMethodStatement[] =
    "closed loop: each worker issues its next operation only when the "
    "previous one has returned, and times each operation from just before "
    "the call to just after it (service time). A stall therefore delays the "
    "operations that would have been issued during it instead of adding "
    "their waiting time (coordinated omission): the percentiles are those of "
    "the operations that ran, not of requests arriving at a fixed rate, and "
    "throughput is the most the workers reached, not a rate that was offered";

void PrintText(const Report& report, std::FILE* out);
std::string ToJson(const Report& report);

}  // namespace numagrid::bench
