// numagrid-bench: YCSB-style latency benchmark of numagrid against its peers
// (oneTBB in-process, a Boost.Interprocess map under a reader-writer lock,
// and, when compiled in, LMDB, Redis and memcached), all in one run, with the
// physical baselines (clock cost, one DRAM access, one cache-line round
// trip, disk bandwidth and fdatasync) measured in the same run. See
// docs/benchmarks.md.
//
// Exit codes: 0 done, 1 a run failed, 2 bad input, 130 interrupted.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/numagrid_bench/baseline.h"
#include "bench/numagrid_bench/peer_targets.h"
#include "bench/numagrid_bench/report.h"
#include "bench/numagrid_bench/runner.h"
#include "bench/numagrid_bench/target.h"
#include "bench/numagrid_bench/workload.h"
#include "core/grid_admin.h"

namespace numagrid::bench {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void OnSignal(int) { g_interrupted = 1; }

constexpr const char* kUsage = R"(usage: numagrid-bench [options]

Runs a YCSB core workload against one or more stores, one after another, with
the same workload and seed, and prints latency percentiles and throughput per
store and operation, the physical baselines and the ratios between them.

  --target LIST        stores to run, comma-separated, in this order:
                       numagrid   the grid; each worker process attaches itself
                                  (a memory-only temporary grid, unless
                                  --durability or --grid)
                       numagrid-async, numagrid-sync
                                  the same, on a temporary grid journaled
                                  with that durability (as --durability)
                       tbb        oneTBB concurrent_hash_map, in-process threads
                       boost-map  boost::unordered_map in Boost.Interprocess
                                  shared memory under an interprocess
                                  reader-writer lock, worker processes
                       peers (optional, see the end of this text):
                       lmdb       LMDB in --disk-dir, MDB_NOSYNC, processes
                       lmdb-sync  LMDB with its default fsync per commit
                       redis      Redis at --redis-socket (hiredis), one
                                  connection per worker process
                       redis-aof  Redis at --redis-aof-socket, which must run
                                  with appendonly yes
                       memcached  memcached at --memcached-socket
                                  (libmemcached); no scans: skipped for E
                       (default: numagrid)
  --workload A..F      YCSB core workload (default B):
                       A 50% read 50% update; B 95% read 5% update;
                       C 100% read; D 95% read 5% insert, latest keys;
                       E 95% short scan (1..100 entries) 5% insert;
                       F 50% read 50% read-modify-write
  --distribution D     key choice: uniform | zipfian (YCSB scrambled zipfian,
                       theta 0.99) | latest (YCSB skewed latest)
                       (default: latest for D, zipfian otherwise)
  --records N          records loaded before the run (default 100000)
  --key-size N         key bytes, 12..250 (default 16)
  --value-size N       value bytes, 1..1048576 (default 100)
  --procs LIST         worker count, or a comma list run one after another
                       on the same store (e.g. 1,2); processes for numagrid
                       and boost-map, threads for tbb (default 1)
  --seconds S          length of the measured phase (default 5)
  --ops N              measured operations instead, split over the workers
  --warmup S           unmeasured operations first, for S seconds (default 1)
  --seed N             random seed of the key and operation choice (default 42)
  --grid NAME          numagrid: use this existing grid (records are written
                       into it and stay); without it a temporary grid sized for
                       the records is created and destroyed at the end, also
                       on Ctrl-C
  --durability D       numagrid: journal the temporary grid, with durability
                       async (a put returns before its fdatasync, which
                       follows within 10 ms) or sync (a put returns after
                       it); its journal is a new directory under --disk-dir,
                       its journal workers run as threads of numagrid-bench,
                       and both go at the end, also on Ctrl-C. Not with
                       --grid: an existing grid's durability is the one it
                       was created with (default: memory-only, no journal)
  --chase-mib N        DRAM baseline buffer in MiB (default 256); should be
                       larger than the last-level cache
  --disk-dir DIR       directory of the disk baseline (64 MiB sequential
                       write, 50 x 4 KiB append + fdatasync), of the LMDB
                       environments and of journaled temporary grids
                       (default: the journal directory of --grid if it has
                       one, else /var/tmp)
  --no-disk-baseline   skip the disk baseline
  --redis-socket P     unix socket of the redis target's server
                       (default /run/redis/redis-server.sock)
  --redis-aof-socket P unix socket of the redis-aof target's server
                       (default /run/redis/redis-aof.sock)
  --memcached-socket P unix socket of the memcached target's server
                       (default /run/memcached/memcached.sock)
                       The redis, redis-aof and memcached targets empty their
                       server (FLUSHDB, flush_all) before loading and at the
                       end: point them only at servers of their own.
  --json FILE          also write the report as JSON to FILE ('-': stdout)
  --help               this text

Peers compiled into this binary: @PEERS@. Others need their client library at
build time: configure with -DNUMAGRID_BENCH_PEERS=ON (scripts/bench-peers.sh
installs them, starts the servers and runs every target).

Exit codes: 0 done, 1 a run failed, 2 bad input (also: a target that was not
compiled in, a peer server that cannot be reached), 130 interrupted.
)";

struct Options {
  std::vector<std::string> targets{"numagrid"};
  WorkloadSpec workload = *ParseWorkload("B");
  std::optional<Distribution> distribution;
  std::uint64_t records = 100'000;
  std::uint64_t key_size = 16;
  std::uint64_t value_size = 100;
  std::vector<std::uint32_t> procs{1};
  double seconds = 5;
  std::uint64_t ops = 0;
  double warmup = 1;
  std::uint64_t seed = 42;
  std::string grid;
  std::string durability;  // "", "async", "sync": for the numagrid target
  std::uint64_t chase_mib = 256;
  std::string disk_dir;  // empty: the default, chosen in Main
  bool disk_baseline = true;
  PeerOptions peers;
  std::string json;
};

[[noreturn]] void BadInput(const std::string& message) {
  std::fprintf(stderr, "numagrid-bench: %s (see --help)\n", message.c_str());
  std::exit(2);
}

std::vector<std::string> SplitComma(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = s.find(',', start);
    out.emplace_back(s.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::uint64_t ParseUint(std::string_view opt, const std::string& text,
                        std::uint64_t lo, std::uint64_t hi) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0 || v < lo ||
      v > hi) {
    BadInput(std::string(opt) + " wants an integer in " + std::to_string(lo) +
             ".." + std::to_string(hi) + ", not '" + text + "'");
  }
  return v;
}

double ParseSeconds(std::string_view opt, const std::string& text, double lo) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !(v >= lo) || v > 86400) {
    BadInput(std::string(opt) + " wants seconds (" + (lo > 0 ? "> 0" : ">= 0") +
             ", at most 86400), not '" + text + "'");
  }
  return v;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool seen_seconds = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::string usage = kUsage;
      usage.replace(usage.find("@PEERS@"), 7, CompiledPeers());
      std::fputs(usage.c_str(), stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) BadInput("unexpected argument '" + arg + "'");
    std::string value;
    bool has_value = false;
    if (const std::size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto need = [&]() -> const std::string& {
      if (!has_value) {
        if (i + 1 >= argc) BadInput(arg + " needs a value");
        value = argv[++i];
        has_value = true;
      }
      return value;
    };
    if (arg == "--target") {
      o.targets = SplitComma(need());
      for (std::size_t k = 0; k < o.targets.size(); ++k) {
        const std::string& t = o.targets[k];
        if (t != "numagrid" && t != "numagrid-async" && t != "numagrid-sync" &&
            t != "tbb" && t != "boost-map" && !IsPeerTarget(t)) {
          BadInput("unknown target '" + t +
                   "' (numagrid, numagrid-async, numagrid-sync, tbb, "
                   "boost-map, lmdb, lmdb-sync, redis, redis-aof, memcached)");
        }
        if (IsPeerTarget(t) && !PeerCompiledIn(t)) {
          std::fprintf(stderr, "numagrid-bench: %s\n",
                       PeerNotBuiltMessage(t).c_str());
          std::exit(2);
        }
        for (std::size_t m = 0; m < k; ++m) {
          if (o.targets[m] == t) BadInput("target '" + t + "' given twice");
        }
      }
    } else if (arg == "--workload") {
      auto w = ParseWorkload(need());
      if (!w) BadInput("unknown workload '" + value + "' (A, B, C, D, E or F)");
      o.workload = *w;
    } else if (arg == "--distribution") {
      o.distribution = ParseDistribution(need());
      if (!o.distribution)
        BadInput("unknown distribution '" + value +
                 "' (uniform, zipfian, latest)");
    } else if (arg == "--records") {
      o.records = ParseUint(arg, need(), 1, 1'000'000'000);
    } else if (arg == "--key-size") {
      o.key_size =
          ParseUint(arg, need(), KeySpace::kMinKeySize, KeySpace::kMaxKeySize);
    } else if (arg == "--value-size") {
      o.value_size = ParseUint(arg, need(), 1, 1U << 20);
    } else if (arg == "--procs") {
      o.procs.clear();
      for (const std::string& p : SplitComma(need())) {
        o.procs.push_back(
            static_cast<std::uint32_t>(ParseUint(arg, p, 1, 1024)));
      }
    } else if (arg == "--seconds") {
      o.seconds = ParseSeconds(arg, need(), 0.001);
      seen_seconds = true;
    } else if (arg == "--ops") {
      o.ops = ParseUint(arg, need(), 1, UINT64_MAX / 2);
    } else if (arg == "--warmup") {
      o.warmup = ParseSeconds(arg, need(), 0);
    } else if (arg == "--seed") {
      o.seed = ParseUint(arg, need(), 0, UINT64_MAX);
    } else if (arg == "--grid") {
      o.grid = need();
      if (o.grid.empty()) BadInput("--grid needs a name");
    } else if (arg == "--durability") {
      o.durability = need();
      if (o.durability != "async" && o.durability != "sync")
        BadInput("--durability wants async or sync, not '" + value + "'");
    } else if (arg == "--chase-mib") {
      o.chase_mib = ParseUint(arg, need(), 1, 1U << 16);
    } else if (arg == "--disk-dir") {
      o.disk_dir = need();
      if (o.disk_dir.empty()) BadInput("--disk-dir needs a directory");
    } else if (arg == "--no-disk-baseline") {
      o.disk_baseline = false;
    } else if (arg == "--redis-socket") {
      o.peers.redis_socket = need();
    } else if (arg == "--redis-aof-socket") {
      o.peers.redis_aof_socket = need();
    } else if (arg == "--memcached-socket") {
      o.peers.memcached_socket = need();
    } else if (arg == "--json") {
      o.json = need();
      if (o.json.empty()) BadInput("--json needs a file name");
    } else {
      BadInput("unknown option '" + arg + "'");
    }
  }
  if (o.ops != 0 && seen_seconds)
    BadInput("--ops and --seconds exclude each other");
  if (o.ops != 0) o.seconds = 0;
  bool numagrid = false;
  for (const std::string& t : o.targets) numagrid = numagrid || t == "numagrid";
  if (!o.grid.empty() && !numagrid) {
    BadInput("--grid applies to the numagrid target, which is not in --target");
  }
  if (!o.durability.empty() && !numagrid) {
    BadInput(
        "--durability applies to the numagrid target, which is not in "
        "--target (numagrid-async and numagrid-sync have their own)");
  }
  if (!o.durability.empty() && !o.grid.empty()) {
    auto report = core::InspectGrid(o.grid, nullptr);
    const std::string has = report.ok()
                                ? (report->durability == "none"
                                       ? "is memory-only (no journal)"
                                       : "has durability " + report->durability)
                                : "keeps its own durability";
    BadInput("--durability is for the temporary grid; grid '" + o.grid + "' " +
             has +
             ", set when it was created (numagrid create --journal-dir, "
             "--durability): drop --durability, or leave out --grid");
  }
  if (o.records >= KeySpace(o.key_size).IdLimit() / 2) {
    BadInput("--records " + std::to_string(o.records) +
             " needs longer keys than --key-size " +
             std::to_string(o.key_size));
  }
  return o;
}

std::unique_ptr<Target> MakeTarget(const std::string& name, const Options& o) {
  if (name == "numagrid" || name == "numagrid-async" ||
      name == "numagrid-sync") {
    NumagridTargetOptions n;
    n.name = name;
    n.journal_parent_dir = o.disk_dir;
    if (name == "numagrid") {
      n.grid = o.grid;
      n.durability = o.durability;
    } else {
      n.durability = name.substr(std::string_view("numagrid-").size());
    }
    return MakeNumagridTarget(std::move(n));
  }
  if (name == "tbb") return MakeTbbTarget();
  if (name == "boost-map") return MakeBoostMapTarget();
  return MakePeerTarget(name, o.peers);
}

// --disk-dir's default: the journal directory of --grid, else /var/tmp
// (not /tmp, which may be tmpfs).
std::string DefaultDiskDir(const Options& o) {
  if (!o.grid.empty()) {
    auto report = core::InspectGrid(o.grid, nullptr);
    if (report.ok() && !report->journal_dir.empty()) return report->journal_dir;
  }
  return "/var/tmp";
}

// Stores are sized for this many inserts over all runs: the insert share of
// the operations at an assumed ceiling of 5 million operations per second
// per worker (warmup included). Beyond it inserts may fail, and say so.
std::uint64_t ExpectedInserts(const Options& o) {
  const double insert_share = o.workload.insert;
  if (insert_share <= 0) return 0;
  double ops = 0;
  for (std::uint32_t p : o.procs) {
    ops += (o.ops != 0 ? static_cast<double>(o.ops) : o.seconds * p * 5e6) +
           o.warmup * p * 5e6;
  }
  return static_cast<std::uint64_t>(ops * insert_share * 1.1) + 1024;
}

// What else runs here: the 1-minute load average and the runnable threads
// other than this one (/proc/loadavg's "running/total" field).
void ReadHostLoad(Report& rep) {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return;
  double one = 0, five = 0, fifteen = 0;
  unsigned running = 0, total = 0;
  if (std::fscanf(f, "%lf %lf %lf %u/%u", &one, &five, &fifteen, &running,
                  &total) == 5) {
    rep.load_average_1min = one;
    rep.other_runnable = running > 0 ? running - 1 : 0;
  }
  std::fclose(f);
}

int Main(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  if (o.disk_dir.empty()) o.disk_dir = DefaultDiskDir(o);
  o.peers.lmdb_parent_dir = o.disk_dir;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  Report rep;
  rep.workload = std::string(1, o.workload.letter);
  rep.workload_description = o.workload.description;
  const Distribution dist =
      o.distribution.value_or(o.workload.default_distribution);
  rep.distribution = std::string(DistributionName(dist));
  rep.records = o.records;
  rep.key_size = o.key_size;
  rep.value_size = o.value_size;
  rep.seed = o.seed;
  rep.seconds = o.seconds;
  rep.ops = o.ops;
  rep.warmup_seconds = o.warmup;
  rep.cpus = static_cast<std::uint32_t>(::sysconf(_SC_NPROCESSORS_ONLN));

  ReadHostLoad(rep);
  const ClockCost clock = MeasureClock();
  rep.clock_source = "std::chrono::steady_clock (CLOCK_MONOTONIC)";
  rep.clock_ns_per_read = clock.ns_per_read;
  rep.clock_min_delta_ns = clock.min_delta_ns;

  rep.chase_bytes = o.chase_mib << 20;
  const std::uint64_t llc = LastLevelCacheBytes();
  if (llc != 0 && llc >= rep.chase_bytes) {
    std::fprintf(stderr,
                 "numagrid-bench: warning: the last-level cache reports %llu "
                 "MiB, not less than "
                 "the %llu MiB chase buffer; the DRAM baseline may be a cache "
                 "hit (--chase-mib)\n",
                 static_cast<unsigned long long>(llc >> 20),
                 static_cast<unsigned long long>(o.chase_mib));
  }
  std::fprintf(stderr, "numagrid-bench: DRAM pointer chase over %llu MiB...\n",
               static_cast<unsigned long long>(o.chase_mib));
  rep.dram_ns_per_access =
      MeasureDramChase(rep.chase_bytes, o.seed, &g_interrupted);
  if (g_interrupted) {
    std::fprintf(stderr, "numagrid-bench: interrupted\n");
    return 130;
  }
  if (rep.dram_ns_per_access < 0) {
    std::fprintf(stderr,
                 "numagrid-bench: cannot allocate the %llu MiB chase buffer\n",
                 static_cast<unsigned long long>(o.chase_mib));
    return 1;
  }

  // Every target is checked before anything runs, so a missing server
  // fails the run at its start, not after the targets before it.
  for (const std::string& name : o.targets) {
    const Status s = MakeTarget(name, o)->Preflight();
    if (!s.ok()) {
      std::fprintf(stderr, "numagrid-bench: %s: %s\n", name.c_str(),
                   s.ToString().c_str());
      return 2;
    }
  }

  std::fprintf(stderr,
               "numagrid-bench: cache-line round trip between two CPUs...\n");
  rep.cacheline = MeasureCacheLineRoundTrip(0.3, &g_interrupted);
  if (o.disk_baseline && !g_interrupted) {
    std::fprintf(stderr,
                 "numagrid-bench: disk baseline in %s (64 MiB write, 50 "
                 "fdatasyncs)...\n",
                 o.disk_dir.c_str());
    rep.disk = MeasureDisk(o.disk_dir, 64ULL << 20, 50, &g_interrupted);
    if (!rep.disk.error.empty()) {
      std::fprintf(stderr, "numagrid-bench: warning: disk baseline: %s\n",
                   rep.disk.error.c_str());
    }
  } else {
    rep.disk.dir = o.disk_dir;
    rep.disk.error = "not measured (--no-disk-baseline)";
  }
  if (g_interrupted) {
    std::fprintf(stderr, "numagrid-bench: interrupted\n");
    return 130;
  }

  LoadSpec load;
  load.records = o.records;
  load.key_size = o.key_size;
  load.value_size = o.value_size;
  load.expected_inserts = ExpectedInserts(o);
  for (std::uint32_t p : o.procs) load.max_procs = std::max(load.max_procs, p);
  const std::string value(o.value_size, 'v');

  int exit_code = 0;
  for (const std::string& name : o.targets) {
    std::unique_ptr<Target> target = MakeTarget(name, o);
    if (const std::string why = target->ScanUnsupported();
        !why.empty() && o.workload.scan > 0) {
      std::fprintf(stderr,
                   "numagrid-bench: %s: SKIPPED: workload %c needs scans: %s\n",
                   name.c_str(), o.workload.letter, why.c_str());
      rep.skipped.push_back({name, "workload " +
                                       std::string(1, o.workload.letter) +
                                       " needs scans: " + why});
      continue;
    }
    std::fprintf(stderr, "numagrid-bench: %s: loading %llu records...\n",
                 name.c_str(), static_cast<unsigned long long>(o.records));
    const Status prepared = target->Prepare(load, value, &g_interrupted);
    if (!prepared.ok() || g_interrupted) {
      const std::string cleanup = target->Cleanup();
      if (!cleanup.empty())
        std::fprintf(stderr, "numagrid-bench: %s\n", cleanup.c_str());
      if (g_interrupted) {
        std::fprintf(stderr, "numagrid-bench: interrupted\n");
        return 130;
      }
      std::fprintf(stderr, "numagrid-bench: %s: %s\n", name.c_str(),
                   prepared.ToString().c_str());
      return 1;
    }
    std::uint64_t insert_base = o.records;
    for (std::uint32_t procs : o.procs) {
      std::fprintf(
          stderr,
          "numagrid-bench: %s: %u worker(s), warmup %.1f s, then %s...\n",
          name.c_str(), procs, o.warmup,
          o.ops != 0 ? (std::to_string(o.ops) + " ops").c_str()
                     : (std::to_string(o.seconds) + " s").c_str());
      RunConfig rc;
      rc.workload = o.workload;
      rc.distribution = dist;
      rc.records = o.records;
      rc.key_size = o.key_size;
      rc.value_size = o.value_size;
      rc.procs = procs;
      rc.seconds = o.seconds;
      rc.ops = o.ops;
      rc.warmup_seconds = o.warmup;
      rc.seed = o.seed;
      rc.insert_base = insert_base;
      rc.interrupted = &g_interrupted;
      RunOutput run = RunTarget(*target, rc);
      insert_base = run.next_insert_base;
      if (!run.fatal.empty()) {
        const std::string cleanup = target->Cleanup();
        if (!cleanup.empty())
          std::fprintf(stderr, "numagrid-bench: %s\n", cleanup.c_str());
        std::fprintf(stderr, "numagrid-bench: %s, %u worker(s): %s\n",
                     name.c_str(), procs, run.fatal.c_str());
        return run.interrupted ? 130 : 1;
      }
      if (!run.result.errors.empty() || run.result.all.failed != 0)
        exit_code = 1;
      rep.runs.push_back(std::move(run.result));
    }
    const std::string cleanup = target->Cleanup();
    if (!cleanup.empty()) {
      std::fprintf(stderr, "numagrid-bench: %s\n", cleanup.c_str());
      exit_code = 1;
    }
  }

  ComputeRatios(rep);
  PrintText(rep, stdout);
  if (!o.json.empty()) {
    const std::string json = ToJson(rep);
    if (o.json == "-") {
      std::fputs(json.c_str(), stdout);
    } else {
      std::FILE* f = std::fopen(o.json.c_str(), "w");
      if (f == nullptr || std::fputs(json.c_str(), f) < 0 ||
          std::fclose(f) != 0) {
        std::fprintf(stderr, "numagrid-bench: cannot write %s: %s\n",
                     o.json.c_str(), std::strerror(errno));
        return 1;
      }
    }
  }
  if (exit_code != 0) {
    std::fprintf(stderr,
                 "numagrid-bench: some operations failed; see ERROR lines and "
                 "'failed'\n");
  }
  return exit_code;
}

}  // namespace
}  // namespace numagrid::bench

int main(int argc, char** argv) { return numagrid::bench::Main(argc, argv); }
