// numagrid-eviction-bench: how close the grid's sampled eviction policies
// come to an exact LRU cache. One zipfian trace is replayed as a
// cache-aside workload on a small grid per policy, and through an exact LRU
// cache (and Belady's optimal cache) of the size the grid held on average.
// With --fill it instead streams distinct values through an existing grid
// while hot keys are read (scripts/eviction-acceptance.sh). See
// docs/benchmarks.md, "Eviction accuracy".
//
// Exit codes: 0 done, 1 a run failed (a grid could not be made, a write
// failed, the memory used passed the limit), 2 bad input, 130 interrupted.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "bench/eviction/cache_sim.h"
#include "bench/eviction/replay.h"
#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/eviction_config.h"
#include "core/record.h"

namespace numagrid::bench {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void OnSignal(int) { g_interrupted = 1; }

constexpr const char* kUsage = R"(usage: numagrid-eviction-bench [options]
       numagrid-eviction-bench --fill SIZE --grid NAME [fill options]

Replays one zipfian trace of key ids as a cache-aside workload (get; on a
miss, put) on a small memory-only grid per eviction policy, from one
process, and replays the same trace through an exact LRU cache and through
Belady's optimal cache, each holding as many entries as the grid held on
average in the measured part. Prints, per policy, the grid's hit rate
against those references, its mean entry count, the peak memory used
against the limit (core::Evictor::Measure) and the evictions. Each grid is
created for its replay and destroyed after it (also on Ctrl-C).

Trace and replay:
  --keys N            key ids drawn from, 2..100000000 (default 200000);
                      keys are "user" + the id in 12 digits
  --ops N             operations of the trace, 1..1000000000 (default 2000000)
  --theta X           zipfian skew, 0 <= X < 1 (default 0.99, YCSB's); id 0
                      is the most popular key, id 1 the next, ...
  --seed N            seed of the trace (default 42)
  --value-size B      bytes of every value, 1..65536 (default 256)
  --warmup-pct P      the first P% of the operations fill the cache and are
                      not counted, 0..99 (default 20)
  --sample-every K    operations between two samples of the grid's entries
                      and memory (default 1000)
  --policies LIST     comma-separated, run in this order: lru, lfu, random,
                      ttl-first (default: all four)
  --ttl MS            ttl-first only: every write gets a TTL of MS plus a
                      share of --ttl-spread fixed by its key (FNV-1a of the
                      id), so a key always gets the same TTL (default
                      600000: nothing expires during a replay)
  --ttl-spread MS     (default 1000; 0: every key the same TTL, which makes
                      ttl-first evict the oldest write first)

Grid:
  --memory SIZE       the grid's memory (create --memory), e.g. 8MiB
                      (default: 15% of the key set's records, rounded up
                      to a MiB, at least 2 MiB)
  --partitions P      1..1024 (default 4)
  --samples N         eviction samples per victim, 1..64 (default 16, as
                      create's --eviction-samples)
  --worker            journal the grid (async, in a new directory under
                      --disk-dir) and run its journal worker as a thread of
                      this process, which also evicts in the background
                      between the watermarks (90% and 80%); default: a
                      memory-only grid, where only writers evict
  --disk-dir DIR      parent of the --worker journal (default /var/tmp)
  --json FILE         also write the results as JSON to FILE ('-': stdout)

Fill (scripts/eviction-acceptance.sh):
  --fill SIZE         write SIZE of values (e.g. 1GiB), each under a new key
                      with a value that differs from every other, into the
                      existing grid --grid, each write followed by
                      --reads-per-write gets of a hot key drawn zipfian
                      (--theta) from --hot-keys keys written first; a miss
                      is not written back. Reports the peak memory used
                      against the limit, failed writes, and how many hot
                      keys are still present (and how many an exact LRU
                      cache of the grid's mean size would keep on the same
                      sequence). The grid is left in place.
  --grid NAME         the grid to fill (it needs an eviction policy)
  --hot-keys N        1..10000000 (default 10000)
  --reads-per-write N 0..1000 (default 1)
  --value-size, --theta, --seed, --sample-every, --json as above
  (samples count writes in this mode)

  --help              this text

Exit codes: 0 done, 1 a run failed (a grid could not be created or
attached, a write failed in --fill, or the memory used passed the limit),
2 bad input, 130 interrupted.
)";

struct Options {
  std::uint64_t keys = 200'000;
  std::uint64_t ops = 2'000'000;
  double theta = 0.99;
  std::uint64_t seed = 42;
  std::uint64_t value_size = 256;
  std::uint64_t warmup_pct = 20;
  std::uint64_t sample_every = 1000;
  std::vector<std::uint32_t> policies{core::kEvictLru, core::kEvictLfu,
                                      core::kEvictRandom, core::kEvictTtlFirst};
  std::uint64_t ttl_ms = 600'000;
  std::uint64_t ttl_spread_ms = 1000;
  std::uint64_t memory_bytes = 0;  // 0: the default, from the key set
  std::uint64_t partitions = 4;
  std::uint64_t samples = core::kDefaultEvictionSamples;
  bool worker = false;
  std::string disk_dir = "/var/tmp";
  std::string json;
  // --fill
  std::uint64_t fill_bytes = 0;
  std::string grid;
  std::uint64_t hot_keys = 10'000;
  std::uint64_t reads_per_write = 1;
};

[[noreturn]] void BadInput(const std::string& message) {
  std::fprintf(stderr, "numagrid-eviction-bench: %s (see --help)\n",
               message.c_str());
  std::exit(2);
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

std::uint64_t ParseBytes(std::string_view opt, const std::string& text,
                         std::uint64_t lo) {
  auto v = base::ParseSize(text);
  if (!v.ok() || *v < lo) {
    BadInput(std::string(opt) + " wants a size of at least " +
             base::FormatSize(lo) + " (e.g. 8MiB, 1GiB), not '" + text + "'");
  }
  return *v;
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

Options ParseOptions(int argc, char** argv) {
  Options o;
  std::set<std::string> given;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
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
    if (!given.insert(arg).second) BadInput(arg + " given twice");
    auto need = [&]() -> const std::string& {
      if (!has_value) {
        if (i + 1 >= argc) BadInput(arg + " needs a value");
        value = argv[++i];
        has_value = true;
      }
      return value;
    };
    auto flag = [&] {
      if (has_value) BadInput(arg + " takes no value");
    };
    if (arg == "--keys") {
      o.keys = ParseUint(arg, need(), 2, 100'000'000);
    } else if (arg == "--ops") {
      o.ops = ParseUint(arg, need(), 1, 1'000'000'000);
    } else if (arg == "--theta") {
      errno = 0;
      char* end = nullptr;
      const std::string& t = need();
      o.theta = std::strtod(t.c_str(), &end);
      if (t.empty() || *end != '\0' || errno != 0 || !(o.theta >= 0) ||
          !(o.theta < 1)) {
        BadInput("--theta wants a number with 0 <= theta < 1, not '" + t + "'");
      }
    } else if (arg == "--seed") {
      o.seed = ParseUint(arg, need(), 0, UINT64_MAX);
    } else if (arg == "--value-size") {
      o.value_size = ParseUint(arg, need(), 1, 65536);
    } else if (arg == "--warmup-pct") {
      o.warmup_pct = ParseUint(arg, need(), 0, 99);
    } else if (arg == "--sample-every") {
      o.sample_every = ParseUint(arg, need(), 1, 1'000'000'000);
    } else if (arg == "--policies") {
      o.policies.clear();
      for (const std::string& name : SplitComma(need())) {
        auto p = core::ParseEvictionPolicy(name);
        if (!p.ok() || *p == core::kEvictNone) {
          BadInput("unknown policy '" + name +
                   "' in --policies (lru, lfu, random, ttl-first)");
        }
        if (std::find(o.policies.begin(), o.policies.end(), *p) !=
            o.policies.end()) {
          BadInput("policy '" + name + "' given twice in --policies");
        }
        o.policies.push_back(*p);
      }
    } else if (arg == "--ttl") {
      o.ttl_ms = ParseUint(arg, need(), 1, 365ULL * 86'400'000);
    } else if (arg == "--ttl-spread") {
      o.ttl_spread_ms = ParseUint(arg, need(), 0, 365ULL * 86'400'000);
    } else if (arg == "--memory") {
      o.memory_bytes = ParseBytes(arg, need(), 1ULL << 20);
    } else if (arg == "--partitions") {
      o.partitions = ParseUint(arg, need(), 1, 1024);
    } else if (arg == "--samples") {
      o.samples = ParseUint(arg, need(), 1, core::kMaxEvictionSamples);
    } else if (arg == "--worker") {
      flag();
      o.worker = true;
    } else if (arg == "--disk-dir") {
      o.disk_dir = need();
      if (o.disk_dir.empty()) BadInput("--disk-dir needs a directory");
    } else if (arg == "--json") {
      o.json = need();
      if (o.json.empty()) BadInput("--json needs a file name");
    } else if (arg == "--fill") {
      o.fill_bytes = ParseBytes(arg, need(), 1);
    } else if (arg == "--grid") {
      o.grid = need();
      if (o.grid.empty()) BadInput("--grid needs a name");
    } else if (arg == "--hot-keys") {
      o.hot_keys = ParseUint(arg, need(), 1, 10'000'000);
    } else if (arg == "--reads-per-write") {
      o.reads_per_write = ParseUint(arg, need(), 0, 1000);
    } else {
      BadInput("unknown option '" + arg + "'");
    }
  }
  const bool fill = given.count("--fill") != 0;
  if (fill) {
    if (o.grid.empty()) BadInput("--fill needs --grid NAME");
    for (const char* opt : {"--keys", "--ops", "--warmup-pct", "--policies",
                            "--ttl", "--ttl-spread", "--memory", "--partitions",
                            "--samples", "--worker", "--disk-dir"}) {
      if (given.count(opt) != 0) {
        BadInput(std::string(opt) +
                 " does not apply to --fill, which uses the grid as "
                 "created (numagrid create, numagrid config)");
      }
    }
  } else {
    for (const char* opt : {"--grid", "--hot-keys", "--reads-per-write"}) {
      if (given.count(opt) != 0) {
        BadInput(std::string(opt) + " applies only to --fill");
      }
    }
    if (given.count("--disk-dir") != 0 && !o.worker) {
      BadInput("--disk-dir applies only to --worker");
    }
  }
  return o;
}

// About 15% of the key set: each record rounded up to its 16-byte block.
std::uint64_t DefaultMemory(const Options& o) {
  const std::uint64_t record =
      (core::RecordBytes(kEvictionBenchKeySize, o.value_size, true) + 15) / 16 *
      16;
  const std::uint64_t bytes = o.keys * record * 15 / 100;
  const std::uint64_t mib = std::max<std::uint64_t>(2, (bytes >> 20) + 1);
  return mib << 20;
}

Status WriteJson(const std::string& path, const std::string& json) {
  if (path == "-") {
    std::fputs(json.c_str(), stdout);
    return Status::Ok();
  }
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr || std::fputs(json.c_str(), f) < 0 || std::fclose(f) != 0) {
    return IoError("cannot write " + path + ": " +
                   std::generic_category().message(errno));
  }
  return Status::Ok();
}

double Ratio(std::uint64_t a, std::uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

struct PolicyRow {
  std::uint32_t policy = 0;
  ReplayResult grid;
  std::uint64_t capacity = 0;  // the exact caches' entries
  SimResult lru, optimal;
};

int RunReplay(const Options& o) {
  const std::uint64_t memory =
      o.memory_bytes != 0 ? o.memory_bytes : DefaultMemory(o);
  const std::uint64_t warmup = o.ops * o.warmup_pct / 100;
  std::fprintf(stderr, "numagrid-eviction-bench: zipfian trace, %llu ops...\n",
               static_cast<unsigned long long>(o.ops));
  auto started = std::chrono::steady_clock::now();
  const std::vector<std::uint32_t> trace =
      ZipfianTrace(static_cast<std::uint32_t>(o.keys), o.ops, o.theta, o.seed);
  const double trace_seconds = SecondsSince(started);
  std::uint64_t distinct = 0;
  {
    std::vector<std::uint8_t> seen(o.keys, 0);
    for (std::uint32_t id : trace) {
      distinct += seen[id] == 0 ? 1 : 0;
      seen[id] = 1;
    }
  }

  std::vector<PolicyRow> rows;
  double sim_seconds = 0;
  for (std::uint32_t policy : o.policies) {
    const std::string name(core::EvictionPolicyName(policy));
    ReplayOptions r;
    r.grid_name =
        "evbench-" + std::to_string(::getpid()) + "-" + std::to_string(policy);
    r.policy = policy;
    r.partitions = static_cast<std::uint32_t>(o.partitions);
    r.memory_bytes = memory;
    r.samples = static_cast<std::uint32_t>(o.samples);
    r.value_size = o.value_size;
    r.warmup_ops = warmup;
    r.sample_every = o.sample_every;
    r.ttl_ms = o.ttl_ms;
    r.ttl_spread_ms = o.ttl_spread_ms;
    r.worker = o.worker;
    r.journal_parent_dir = o.disk_dir;
    std::fprintf(stderr, "numagrid-eviction-bench: %s: replaying...\n",
                 name.c_str());
    auto result = ReplayTrace(r, trace, &g_interrupted);
    if (g_interrupted) {
      std::fprintf(stderr, "numagrid-eviction-bench: interrupted\n");
      return 130;
    }
    if (!result.ok()) {
      std::fprintf(stderr, "numagrid-eviction-bench: %s: %s\n", name.c_str(),
                   result.status().ToString().c_str());
      return 1;
    }
    PolicyRow row;
    row.policy = policy;
    row.grid = *result;
    row.capacity =
        static_cast<std::uint64_t>(std::llround(row.grid.mean_entries));
    started = std::chrono::steady_clock::now();
    row.lru = SimulateLru(trace, o.keys, row.capacity, warmup);
    row.optimal = SimulateOptimal(trace, o.keys, row.capacity, warmup);
    sim_seconds += SecondsSince(started);
    rows.push_back(row);
  }

  std::printf(
      "# numagrid-eviction-bench\n\n"
      "Trace: %llu ops, zipfian theta %.3g over %llu keys (%llu distinct in "
      "the trace), seed %llu, %llu-byte keys, %llu-byte values; cache-aside "
      "(get; on a miss, put) from one process; hit rates over the last "
      "%llu%% of the ops (%llu ops of warm-up).\n"
      "Grid: %s, %s, %llu partitions, eviction samples %llu.\n"
      "Exact caches: the same trace, with as many entries as the grid "
      "held on average in the measured part (sampled every %llu ops).\n\n",
      static_cast<unsigned long long>(o.ops), o.theta,
      static_cast<unsigned long long>(o.keys),
      static_cast<unsigned long long>(distinct),
      static_cast<unsigned long long>(o.seed),
      static_cast<unsigned long long>(kEvictionBenchKeySize),
      static_cast<unsigned long long>(o.value_size),
      static_cast<unsigned long long>(100 - o.warmup_pct),
      static_cast<unsigned long long>(warmup),
      o.worker ? "journaled (async), journal worker thread evicting in the "
                 "background"
               : "memory-only (writers evict)",
      base::FormatSize(memory).c_str(),
      static_cast<unsigned long long>(o.partitions),
      static_cast<unsigned long long>(o.samples),
      static_cast<unsigned long long>(o.sample_every));
  for (std::uint32_t p : o.policies) {
    if (p == core::kEvictTtlFirst) {
      std::printf(
          "ttl-first: every write of key id gets TTL %llu ms + (FNV-1a(id) "
          "mod %llu) ms.\n\n",
          static_cast<unsigned long long>(o.ttl_ms),
          static_cast<unsigned long long>(o.ttl_spread_ms));
    }
  }
  std::printf(
      "| policy | hit rate | exact-LRU hit rate (same capacity) | ratio | "
      "optimal (Belady) | mean entries (%% of keys) | peak used / limit | "
      "evictions | replay s |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  bool failed = false;
  for (const PolicyRow& row : rows) {
    const ReplayResult& g = row.grid;
    std::printf(
        "| %s | %.4f | %.4f | %.3f | %.4f | %.0f (%.1f%%) | %s / %s (%.1f%%) | "
        "%llu | %.1f |\n",
        std::string(core::EvictionPolicyName(row.policy)).c_str(), g.hit_rate(),
        row.lru.hit_rate(),
        row.lru.hit_rate() == 0 ? 0.0 : g.hit_rate() / row.lru.hit_rate(),
        row.optimal.hit_rate(), g.mean_entries,
        100.0 * g.mean_entries / static_cast<double>(o.keys),
        base::FormatSize(g.peak_used_bytes).c_str(),
        base::FormatSize(g.limit_bytes).c_str(),
        100.0 * Ratio(g.peak_used_bytes, g.limit_bytes),
        static_cast<unsigned long long>(g.evictions), g.seconds);
    if (g.put_failures != 0) {
      std::fprintf(stderr,
                   "numagrid-eviction-bench: %s: %llu of %llu puts failed, "
                   "the first: %s\n",
                   std::string(core::EvictionPolicyName(row.policy)).c_str(),
                   static_cast<unsigned long long>(g.put_failures),
                   static_cast<unsigned long long>(g.puts),
                   g.first_put_error.c_str());
      failed = true;
    }
    if (g.peak_used_bytes > g.limit_bytes) failed = true;
  }
  std::printf(
      "\nTrace generated in %.1f s; exact caches simulated in %.1f s.\n",
      trace_seconds, sim_seconds);

  if (!o.json.empty()) {
    base::JsonWriter j;
    j.BeginObject();
    j.Field("mode", "replay");
    j.Field("keys", o.keys);
    j.Field("ops", o.ops);
    j.Field("distinct_keys_in_trace", distinct);
    j.Field("theta", o.theta);
    j.Field("seed", o.seed);
    j.Field("key_size", kEvictionBenchKeySize);
    j.Field("value_size", o.value_size);
    j.Field("warmup_ops", warmup);
    j.Field("sample_every", o.sample_every);
    j.Field("memory_bytes", memory);
    j.Field("partitions", o.partitions);
    j.Field("eviction_samples", o.samples);
    j.Field("worker", o.worker);
    j.Field("ttl_ms", o.ttl_ms);
    j.Field("ttl_spread_ms", o.ttl_spread_ms);
    j.Key("policies").BeginArray();
    for (const PolicyRow& row : rows) {
      const ReplayResult& g = row.grid;
      j.BeginObject();
      j.Field("policy", core::EvictionPolicyName(row.policy));
      j.Field("gets", g.gets);
      j.Field("hits", g.hits);
      j.Field("hit_rate", g.hit_rate());
      j.Field("puts", g.puts);
      j.Field("put_failures", g.put_failures);
      j.Field("exact_capacity", row.capacity);
      j.Field("exact_lru_hit_rate", row.lru.hit_rate());
      j.Field("ratio_to_exact_lru", row.lru.hit_rate() == 0
                                        ? 0.0
                                        : g.hit_rate() / row.lru.hit_rate());
      j.Field("optimal_hit_rate", row.optimal.hit_rate());
      j.Field("mean_entries", g.mean_entries);
      j.Field("min_entries", g.min_entries);
      j.Field("max_entries", g.max_entries);
      j.Field("limit_bytes", g.limit_bytes);
      j.Field("peak_used_bytes", g.peak_used_bytes);
      j.Field("mean_used_bytes", g.mean_used_bytes);
      j.Field("evictions", g.evictions);
      j.Field("replay_seconds", g.seconds);
      j.EndObject();
    }
    j.EndArray();
    j.EndObject();
    const Status s = WriteJson(o.json, j.str());
    if (!s.ok()) {
      std::fprintf(stderr, "numagrid-eviction-bench: %s\n",
                   s.message().c_str());
      return 1;
    }
  }
  return failed ? 1 : 0;
}

int RunFill(const Options& o) {
  FillOptions f;
  f.grid_name = o.grid;
  f.fill_bytes = o.fill_bytes;
  f.value_size = o.value_size;
  f.hot_keys = static_cast<std::uint32_t>(o.hot_keys);
  f.theta = o.theta;
  f.reads_per_write = static_cast<std::uint32_t>(o.reads_per_write);
  f.sample_every = o.sample_every;
  f.seed = o.seed;
  std::fprintf(stderr, "numagrid-eviction-bench: filling '%s' with %s...\n",
               o.grid.c_str(), base::FormatSize(o.fill_bytes).c_str());
  auto result = FillGrid(f, &g_interrupted);
  if (!result.ok()) {
    std::fprintf(stderr, "numagrid-eviction-bench: --fill: %s\n",
                 result.status().ToString().c_str());
    return result.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  const FillResult& r = *result;
  const bool over = r.peak_used_bytes > r.limit_bytes;
  std::printf(
      "fill: grid %s: %llu writes (%u hot keys, then %llu distinct keys), "
      "%s of values in %.1f s (%.0f writes/s)\n"
      "fill: failed writes: %llu%s%s\n"
      "fill: memory used: peak %s of limit %s (%.2f%%), at the end %s with "
      "%llu entries (mean %.0f once full)\n"
      "fill: evictions: %llu\n"
      "fill: hot reads: %llu, hit rate %.4f (zipfian theta %.3g over the hot "
      "keys, %llu per write, a miss not written back)\n"
      "fill: hot keys present at the end: %u of %u (%.1f%%); an exact LRU "
      "cache of %.0f entries on the same sequence keeps %u (%.1f%%)\n",
      o.grid.c_str(), static_cast<unsigned long long>(r.writes), f.hot_keys,
      static_cast<unsigned long long>(r.writes - f.hot_keys),
      base::FormatSize(r.value_bytes).c_str(), r.seconds,
      static_cast<double>(r.writes) / std::max(r.seconds, 1e-9),
      static_cast<unsigned long long>(r.write_failures),
      r.write_failures != 0 ? ", the first: " : "", r.first_write_error.c_str(),
      base::FormatSize(r.peak_used_bytes).c_str(),
      base::FormatSize(r.limit_bytes).c_str(),
      100.0 * Ratio(r.peak_used_bytes, r.limit_bytes),
      base::FormatSize(r.final_used_bytes).c_str(),
      static_cast<unsigned long long>(r.final_entries), r.mean_entries,
      static_cast<unsigned long long>(r.evictions),
      static_cast<unsigned long long>(r.reads), Ratio(r.read_hits, r.reads),
      o.theta, static_cast<unsigned long long>(o.reads_per_write),
      r.hot_present, f.hot_keys, 100.0 * Ratio(r.hot_present, f.hot_keys),
      r.mean_entries, r.lru_hot_present,
      100.0 * Ratio(r.lru_hot_present, f.hot_keys));
  const bool ok = r.write_failures == 0 && !over && !g_interrupted;
  std::printf("fill: %s\n",
              ok ? "OK: every write succeeded, memory stayed within the limit"
                 : (g_interrupted ? "INTERRUPTED"
                                  : (r.write_failures != 0
                                         ? "FAILED: writes failed"
                                         : "FAILED: memory passed the limit")));
  if (!o.json.empty()) {
    base::JsonWriter j;
    j.BeginObject();
    j.Field("mode", "fill");
    j.Field("grid", o.grid);
    j.Field("fill_bytes", o.fill_bytes);
    j.Field("value_size", o.value_size);
    j.Field("hot_keys", o.hot_keys);
    j.Field("theta", o.theta);
    j.Field("reads_per_write", o.reads_per_write);
    j.Field("writes", r.writes);
    j.Field("write_failures", r.write_failures);
    j.Field("first_write_error", r.first_write_error);
    j.Field("value_bytes", r.value_bytes);
    j.Field("reads", r.reads);
    j.Field("read_hits", r.read_hits);
    j.Field("limit_bytes", r.limit_bytes);
    j.Field("peak_used_bytes", r.peak_used_bytes);
    j.Field("final_used_bytes", r.final_used_bytes);
    j.Field("final_entries", r.final_entries);
    j.Field("mean_entries", r.mean_entries);
    j.Field("evictions", r.evictions);
    j.Field("hot_present", r.hot_present);
    j.Field("exact_lru_hot_present", r.lru_hot_present);
    j.Field("seconds", r.seconds);
    j.Field("ok", ok);
    j.EndObject();
    const Status s = WriteJson(o.json, j.str());
    if (!s.ok()) {
      std::fprintf(stderr, "numagrid-eviction-bench: %s\n",
                   s.message().c_str());
      return 1;
    }
  }
  if (g_interrupted) return 130;
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  return o.fill_bytes != 0 ? RunFill(o) : RunReplay(o);
}

}  // namespace
}  // namespace numagrid::bench

int main(int argc, char** argv) { return numagrid::bench::Main(argc, argv); }
