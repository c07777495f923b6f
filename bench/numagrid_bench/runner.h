// Runner: one measured run of one target with P workers (forked processes
// or threads, as the target says). Workers report into per-worker slots of a
// MAP_SHARED anonymous mapping (histograms included) that the parent merges.
//
// Timeline: workers open their session and report ready; the parent starts
// the warmup (operations run, their latencies are thrown away), then the
// measured phase, which ends after `seconds` (the parent says stop) or when
// every worker has done its share of `ops`.
//
// Thread safety: RunTarget is called by the parent's main thread only.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>

#include "bench/numagrid_bench/report.h"
#include "bench/numagrid_bench/target.h"
#include "bench/numagrid_bench/workload.h"

namespace numagrid::bench {

struct RunConfig {
  WorkloadSpec workload;
  Distribution distribution = Distribution::kZipfian;
  std::uint64_t records = 0;
  std::size_t key_size = 0;
  std::size_t value_size = 0;
  std::uint32_t procs = 1;
  double seconds = 0;     // measured phase length, or
  std::uint64_t ops = 0;  // measured operations, split over the workers
  double warmup_seconds = 0;
  std::uint64_t seed = 0;
  // Inserted key ids are insert_base + worker + k * procs: unique across the
  // workers and, with the base advanced, across runs on one store.
  std::uint64_t insert_base = 0;
  const volatile std::sig_atomic_t* interrupted = nullptr;
};

struct RunOutput {
  RunResult result;
  std::uint64_t next_insert_base = 0;  // for the next run on the same store
  bool interrupted = false;
  std::string fatal;  // non-empty: the run did not complete, this says why
};

RunOutput RunTarget(Target& target, const RunConfig& config);

}  // namespace numagrid::bench
