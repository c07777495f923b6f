// Micro-benchmarks of single-key grid operations: numagrid::Grid against an
// in-process oneTBB concurrent_hash_map holding the same data, and against
// one dependent DRAM random access (BM_DramPointerChase), the baseline
// DESIGN.md compares a get with. Every result is to be read as a ratio to
// the baselines of the same run.
//
// Data: 100k keys (or --keys=N) "user" + 12-digit number (16 bytes), 100-byte
// values. The grid "bench<pid>" is created on first use and destroyed at exit.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>
#include <oneapi/tbb/concurrent_hash_map.h>

#include "core/grid_admin.h"
#include "numa/topology.h"
#include "numagrid/grid.h"

namespace numagrid {
namespace {

// Keys loaded before the benchmarks; --keys=N (e.g. 10000000) changes it.
std::size_t g_key_count = 100'000;
constexpr std::size_t kValueBytes = 100;
constexpr std::size_t kIndexCount = 1
                                    << 16;  // random key indices, a power of 2
constexpr std::size_t kFreshPerThread = 1024;  // insert/remove and counter keys
constexpr int kMaxThreads = 2;

std::string MakeKey(std::string_view prefix, std::uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*s%012llu", static_cast<int>(prefix.size()),
                prefix.data(), static_cast<unsigned long long>(n));
  return buf;
}

[[noreturn]] void Die(std::string_view what, const Status& s) {
  std::fprintf(stderr, "grid_bench: %.*s: %s\n", static_cast<int>(what.size()),
               what.data(), s.ToString().c_str());
  std::exit(1);
}

// Keys, values and the random index array shared by all benchmarks.
struct Data {
  std::vector<std::string> keys;                   // present
  std::vector<std::string> missing;                // never written
  std::vector<std::vector<std::string>> fresh;     // per thread: insert/remove
  std::vector<std::vector<std::string>> counters;  // per thread: increment
  std::vector<std::uint32_t> index;                // random indices into keys
  std::string value = std::string(kValueBytes, 'v');
  std::string value2 = std::string(kValueBytes, 'w');

  Data() {
    keys.reserve(g_key_count);
    missing.reserve(g_key_count);
    for (std::size_t i = 0; i < g_key_count; ++i) {
      keys.push_back(MakeKey("user", i));
      missing.push_back(MakeKey("miss", i));
    }
    fresh.resize(kMaxThreads);
    counters.resize(kMaxThreads);
    for (int t = 0; t < kMaxThreads; ++t) {
      for (std::size_t i = 0; i < kFreshPerThread; ++i) {
        const std::uint64_t n =
            static_cast<std::uint64_t>(t) * kFreshPerThread + i;
        fresh[t].push_back(MakeKey("new_", n));
        counters[t].push_back(MakeKey("ctr_", n));
      }
    }
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::uint32_t> pick(0, g_key_count - 1);
    index.resize(kIndexCount);
    for (auto& i : index) i = pick(rng);
  }
};

const Data& GetData() {
  static const Data data;
  return data;
}

// Start each thread at a different place in the shared index array.
std::size_t StartOf(const benchmark::State& state) {
  return static_cast<std::size_t>(state.thread_index()) *
         (kIndexCount / kMaxThreads);
}

// ---------------------------------------------------------------- numagrid

std::once_flag grid_once;
bool grid_created = false;  // written once under grid_once
std::string grid_name;

// Creates and loads the grid on first call (thread-safe); returns its name.
const std::string& BenchGrid() {
  std::call_once(grid_once, [] {
    const Data& d = GetData();
    grid_name = "bench" + std::to_string(::getpid());
    auto topology = numa::Topology::Load();
    if (!topology.ok()) Die("Topology::Load", topology.status());
    core::CreateOptions options;
    options.partitions = 64;
    // 144-byte blocks per record, with room for the per-thread fresh keys and
    // for replaced records awaiting reclamation.
    options.memory_bytes =
        std::max<std::uint64_t>(256ULL << 20, g_key_count * 320);
    options.max_entries = g_key_count * 2 + 4 * kFreshPerThread * kMaxThreads;
    auto created = core::CreateGrid(grid_name, options, *topology);
    if (!created.ok()) Die("CreateGrid", created.status());
    grid_created = true;
    auto grid = Grid::Attach(grid_name);
    if (!grid.ok()) Die("Attach", grid.status());
    for (const std::string& k : d.keys) {
      auto r = grid->Put(k, d.value);
      if (!r.ok()) Die("load Put", r.status());
    }
  });
  return grid_name;
}

void DestroyBenchGrid() {
  if (!grid_created) return;
  Status s = core::DestroyGrid(grid_name);
  if (!s.ok()) Die("DestroyGrid", s);
}

Grid AttachOrDie() {
  auto grid = Grid::Attach(BenchGrid());
  if (!grid.ok()) Die("Attach", grid.status());
  return std::move(*grid);
}

void BM_NumagridGetHit(benchmark::State& state) {
  const Data& d = GetData();
  Grid grid = AttachOrDie();
  char buf[kValueBytes * 2];
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    auto r =
        grid.GetInto(d.keys[d.index[i++ & (kIndexCount - 1)]], buf, sizeof buf);
    if (!r.ok()) state.SkipWithError("GetInto failed");
    benchmark::DoNotOptimize(buf);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NumagridGetMiss(benchmark::State& state) {
  const Data& d = GetData();
  Grid grid = AttachOrDie();
  char buf[kValueBytes * 2];
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    auto r = grid.GetInto(d.missing[d.index[i++ & (kIndexCount - 1)]], buf,
                          sizeof buf);
    if (r.ok()) state.SkipWithError("GetInto found a missing key");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NumagridPutUpdate(benchmark::State& state) {
  const Data& d = GetData();
  Grid grid = AttachOrDie();
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    const std::string& v = (i & 1) ? d.value : d.value2;
    auto r = grid.Put(d.keys[d.index[i++ & (kIndexCount - 1)]], v);
    if (!r.ok()) state.SkipWithError("Put failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NumagridInsertRemove(benchmark::State& state) {
  const Data& d = GetData();
  Grid grid = AttachOrDie();
  const auto& fresh = d.fresh[state.thread_index()];
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& k = fresh[i++ % kFreshPerThread];
    auto r = grid.Insert(k, d.value);
    if (!r.ok()) state.SkipWithError("Insert failed");
    if (!grid.Remove(k).ok()) state.SkipWithError("Remove failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NumagridIncrement(benchmark::State& state) {
  const Data& d = GetData();
  Grid grid = AttachOrDie();
  const auto& counters = d.counters[state.thread_index()];
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = grid.Increment(counters[i++ % kFreshPerThread]);
    if (!r.ok()) state.SkipWithError("Increment failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// ------------------------------------------- monitoring counters on vs off

// Two grids loaded alike, one created with --no-stats. Each benchmark
// iteration times a block of kStatsBlock operations on one grid, then the
// same operations (same keys, same order) on the other, so that both see
// the same machine load (other processes, frequency changes); which grid
// goes first alternates, so that neither always finds the keys' strings
// and the index array warmed by the other. The counters are ns per
// operation of each and their ratio, the overhead (averaged over threads).
constexpr std::size_t kStatsBlock = 512;
std::once_flag stats_once;
std::string stats_on_name;
std::string stats_off_name;
// The same as the stats-on grid, but with the lru policy: its readers keep
// the records' access words (docs/eviction.md).
std::string lru_name;

std::uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

void CreateStatsGrids() {
  std::call_once(stats_once, [] {
    const Data& d = GetData();
    auto topology = numa::Topology::Load();
    if (!topology.ok()) Die("Topology::Load", topology.status());
    const std::string pid = std::to_string(::getpid());
    stats_on_name = "bstatson" + pid;
    stats_off_name = "bstatsoff" + pid;
    lru_name = "blru" + pid;
    for (const std::string* n : {&stats_on_name, &stats_off_name, &lru_name}) {
      core::CreateOptions options;
      options.partitions = 64;
      options.memory_bytes =
          std::max<std::uint64_t>(64ULL << 20, g_key_count * 320);
      options.max_entries = g_key_count * 2;
      options.stats = n != &stats_off_name;
      if (n == &lru_name) options.eviction.policy = core::kEvictLru;
      const std::string& name = *n;
      auto created = core::CreateGrid(name, options, *topology);
      if (!created.ok()) Die("CreateGrid", created.status());
      auto grid = Grid::Attach(name);
      if (!grid.ok()) Die("Attach", grid.status());
      for (const std::string& k : d.keys) {
        auto r = grid->Put(k, d.value);
        if (!r.ok()) Die("load Put", r.status());
      }
    }
  });
}

void DestroyStatsGrids() {
  for (const std::string* n : {&stats_on_name, &stats_off_name, &lru_name}) {
    if (!n->empty()) (void)core::DestroyGrid(*n);
  }
}

// Runs `op(grid, i)` for a block on each of two grids per iteration, in
// turns; reports on_ns, off_ns (per operation) and on_off_ratio.
template <typename Op>
void OnOff(benchmark::State& state, const std::string& on_name,
           const std::string& off_name, Op op) {
  CreateStatsGrids();
  auto on = Grid::Attach(on_name);
  auto off = Grid::Attach(off_name);
  if (!on.ok() || !off.ok()) {
    state.SkipWithError("Attach failed");
    return;
  }
  std::uint64_t on_ns = 0;
  std::uint64_t off_ns = 0;
  std::size_t i = StartOf(state);
  bool on_first = true;
  for (auto _ : state) {
    const std::size_t start = i;
    Grid& first = on_first ? *on : *off;
    Grid& second = on_first ? *off : *on;
    const std::uint64_t t0 = NowNs();
    for (std::size_t n = 0; n < kStatsBlock; ++n) op(first, i++);
    const std::uint64_t t1 = NowNs();
    i = start;  // the same keys, in the same order
    for (std::size_t n = 0; n < kStatsBlock; ++n) op(second, i++);
    const std::uint64_t t2 = NowNs();
    (on_first ? on_ns : off_ns) += t1 - t0;
    (on_first ? off_ns : on_ns) += t2 - t1;
    on_first = !on_first;
  }
  const double ops = static_cast<double>(state.iterations() * kStatsBlock);
  using benchmark::Counter;
  state.counters["on_ns"] =
      Counter(static_cast<double>(on_ns) / ops, Counter::kAvgThreads);
  state.counters["off_ns"] =
      Counter(static_cast<double>(off_ns) / ops, Counter::kAvgThreads);
  state.counters["on_off_ratio"] = Counter(
      off_ns == 0 ? 0.0
                  : static_cast<double>(on_ns) / static_cast<double>(off_ns),
      Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations() * kStatsBlock * 2);
}

// Counters on (the stats-on grid) against off.
template <typename Op>
void StatsOnOff(benchmark::State& state, Op op) {
  OnOff(state, stats_on_name, stats_off_name, op);
}

// get of a present key with counters on vs off (on_off_ratio).
void BM_StatsGetHit(benchmark::State& state) {
  const Data& d = GetData();
  char buf[kValueBytes * 2];
  StatsOnOff(state, [&](Grid& g, std::size_t i) {
    auto r = g.GetInto(d.keys[d.index[i & (kIndexCount - 1)]], buf, sizeof buf);
    if (!r.ok()) std::abort();
    benchmark::DoNotOptimize(buf);
  });
}

// put replacing a present key's value with counters on vs off.
void BM_StatsPutUpdate(benchmark::State& state) {
  const Data& d = GetData();
  StatsOnOff(state, [&](Grid& g, std::size_t i) {
    const std::string& v = (i & 1) ? d.value : d.value2;
    auto r = g.Put(d.keys[d.index[i & (kIndexCount - 1)]], v);
    if (!r.ok()) std::abort();
  });
}

// get of a present key with the lru policy (the reader keeps the record's
// access word) against none, counters on in both (on_off_ratio).
void BM_LruGetHit(benchmark::State& state) {
  const Data& d = GetData();
  char buf[kValueBytes * 2];
  OnOff(state, lru_name, stats_on_name, [&](Grid& g, std::size_t i) {
    auto r = g.GetInto(d.keys[d.index[i & (kIndexCount - 1)]], buf, sizeof buf);
    if (!r.ok()) std::abort();
    benchmark::DoNotOptimize(buf);
  });
}

// ------------------------------------------------------------- oneTBB map

using TbbMap = tbb::concurrent_hash_map<std::string, std::string>;

TbbMap& BenchMap() {
  static TbbMap* map = [] {
    const Data& d = GetData();
    auto* m = new TbbMap(g_key_count * 2);
    for (const std::string& k : d.keys) m->insert({k, d.value});
    return m;
  }();
  return *map;
}

void BM_TbbGetHit(benchmark::State& state) {
  const Data& d = GetData();
  TbbMap& map = BenchMap();
  char buf[kValueBytes * 2];
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    TbbMap::const_accessor acc;
    if (!map.find(acc, d.keys[d.index[i++ & (kIndexCount - 1)]])) {
      state.SkipWithError("find failed");
      break;
    }
    std::memcpy(buf, acc->second.data(),
                std::min(acc->second.size(), sizeof buf));
    benchmark::DoNotOptimize(buf);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_TbbGetMiss(benchmark::State& state) {
  const Data& d = GetData();
  TbbMap& map = BenchMap();
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    TbbMap::const_accessor acc;
    bool found = map.find(acc, d.missing[d.index[i++ & (kIndexCount - 1)]]);
    if (found) state.SkipWithError("found a missing key");
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_TbbPutUpdate(benchmark::State& state) {
  const Data& d = GetData();
  TbbMap& map = BenchMap();
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    const std::string& v = (i & 1) ? d.value : d.value2;
    TbbMap::accessor acc;
    map.insert(acc, d.keys[d.index[i++ & (kIndexCount - 1)]]);
    acc->second.assign(v);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_TbbInsertRemove(benchmark::State& state) {
  const Data& d = GetData();
  TbbMap& map = BenchMap();
  const auto& fresh = d.fresh[state.thread_index()];
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& k = fresh[i++ % kFreshPerThread];
    {
      TbbMap::accessor acc;
      if (!map.insert(acc, k)) state.SkipWithError("insert found the key");
      acc->second.assign(d.value);
    }
    if (!map.erase(k)) state.SkipWithError("erase failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_TbbIncrement(benchmark::State& state) {
  const Data& d = GetData();
  TbbMap& map = BenchMap();
  const auto& counters = d.counters[state.thread_index()];
  std::size_t i = 0;
  for (auto _ : state) {
    TbbMap::accessor acc;
    map.insert(acc, counters[i++ % kFreshPerThread]);
    std::int64_t n = 0;
    if (acc->second.size() == sizeof n)
      std::memcpy(&n, acc->second.data(), sizeof n);
    ++n;
    acc->second.assign(reinterpret_cast<const char*>(&n), sizeof n);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

// ------------------------------------------------------ DRAM baseline

// 256 MiB of cache-line nodes linked in one random cycle (Sattolo), so each
// load depends on the previous one and misses every cache level.
struct alignas(64) Node {
  Node* next;
  char pad[64 - sizeof(Node*)];
};
constexpr std::size_t kChaseBytes = 256ULL << 20;
constexpr std::size_t kChaseNodes = kChaseBytes / sizeof(Node);

Node* ChaseBuffer() {
  static Node* nodes = [] {
    auto* n =
        static_cast<Node*>(std::aligned_alloc(alignof(Node), kChaseBytes));
    if (n == nullptr) {
      std::fprintf(stderr, "grid_bench: cannot allocate the chase buffer\n");
      std::exit(1);
    }
    std::vector<std::uint32_t> order(kChaseNodes);
    for (std::size_t i = 0; i < kChaseNodes; ++i)
      order[i] = static_cast<std::uint32_t>(i);
    std::mt19937_64 rng(7);
    for (std::size_t i = kChaseNodes - 1; i > 0; --i) {
      std::uniform_int_distribution<std::size_t> pick(0, i - 1);
      std::swap(order[i], order[pick(rng)]);
    }
    for (std::size_t i = 0; i < kChaseNodes; ++i) {
      n[order[i]].next = &n[order[(i + 1) % kChaseNodes]];
    }
    return n;
  }();
  return nodes;
}

void BM_DramPointerChase(benchmark::State& state) {
  Node* p = ChaseBuffer() + static_cast<std::size_t>(state.thread_index()) *
                                (kChaseNodes / kMaxThreads);
  for (auto _ : state) {
    p = p->next;
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_DramPointerChase)->Threads(1)->Threads(2);
BENCHMARK(BM_NumagridGetHit)->Threads(1)->Threads(2);
BENCHMARK(BM_TbbGetHit)->Threads(1)->Threads(2);
BENCHMARK(BM_NumagridGetMiss)->Threads(1)->Threads(2);
BENCHMARK(BM_TbbGetMiss)->Threads(1)->Threads(2);
BENCHMARK(BM_NumagridPutUpdate)->Threads(1)->Threads(2);
BENCHMARK(BM_TbbPutUpdate)->Threads(1)->Threads(2);
BENCHMARK(BM_NumagridInsertRemove);
BENCHMARK(BM_TbbInsertRemove);
BENCHMARK(BM_NumagridIncrement);
BENCHMARK(BM_StatsGetHit)->Threads(1)->Threads(2);
BENCHMARK(BM_StatsPutUpdate)->Threads(1)->Threads(2);
BENCHMARK(BM_LruGetHit)->Threads(1)->Threads(2);
BENCHMARK(BM_TbbIncrement);

}  // namespace
}  // namespace numagrid

int main(int argc, char** argv) {
  // --keys=N is ours; the rest belongs to Google Benchmark.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--keys=", 7) == 0) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(argv[i] + 7, &end, 10);
      if (end == argv[i] + 7 || *end != '\0' || n < 1000 || n > 100'000'000) {
        std::fprintf(stderr,
                     "grid_bench: --keys must be in [1000, 100000000]\n");
        return 2;
      }
      numagrid::g_key_count = n;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("keys", std::to_string(numagrid::g_key_count));
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  numagrid::DestroyBenchGrid();
  numagrid::DestroyStatsGrids();
  return 0;
}
