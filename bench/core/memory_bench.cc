// What an entry costs in memory beyond its key and value (DESIGN.md: at most
// 32 bytes), measured on a filled grid rather than computed from the
// layout: each run creates a memory-only grid whose index is sized for
// exactly the entries it then writes, fills it, and reads the grid's own
// accounting.
//
// Counters, per entry:
//   block_B:    the blocks of the live records (PartitionCounters::
//               live_bytes: header, TTL word, key, value, rounded up to the
//               size class) minus the key and the value;
//   index_B:    the index of this grid (8 bytes a slot, a power of two of
//               slots per partition, at least 4/3 per entry it was sized
//               for) over its entries;
//   overhead_B: the two together.
// Not counted: the change rings (`ring_capacity` entries of 40 bytes per
// partition, whatever the entry count) and the chunk tails and free blocks
// a fill leaves (none here: nothing is replaced or removed).
// The time is that of the fill (items_per_second: puts).
//
// Args: value bytes, whether every put has a TTL. Keys are 16 bytes.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/stats.h"
#include "numa/topology.h"
#include "numagrid/grid.h"

namespace numagrid {
namespace {

constexpr std::uint64_t kEntries = 196'608;  // 3 * 2^16
constexpr std::uint32_t kPartitions = 4;
constexpr std::size_t kKeyBytes = 16;

[[noreturn]] void Die(std::string_view what, const Status& s) {
  std::fprintf(stderr, "memory_bench: %.*s: %s\n",
               static_cast<int>(what.size()), what.data(),
               s.ToString().c_str());
  std::exit(1);
}

std::string Key(std::uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key_%012llu",
                static_cast<unsigned long long>(n));
  return buf;  // 16 bytes
}

void BM_MemoryPerEntry(benchmark::State& state) {
  const auto value_bytes = static_cast<std::size_t>(state.range(0));
  const bool ttl = state.range(1) != 0;
  const std::string value(value_bytes, 'v');
  auto topology = numa::Topology::Load();
  if (!topology.ok()) Die("Topology::Load", topology.status());
  double block_b = 0, index_b = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string name = "membench" + std::to_string(::getpid());
    core::CreateOptions o;
    o.partitions = kPartitions;
    o.max_entries = kEntries;
    // Room for every block and the partly used chunk of each partition.
    o.memory_bytes = kEntries * (value_bytes + kKeyBytes + 128) + (64ULL << 20);
    o.max_value_bytes = 4096;
    o.bind = false;
    auto created = core::CreateGrid(name, o, *topology);
    if (!created.ok()) Die("CreateGrid", created.status());
    {
      auto grid = Grid::Attach(name);
      if (!grid.ok()) Die("Attach", grid.status());
      WriteOptions w;
      if (ttl) w.ttl_ms = 3'600'000;
      state.ResumeTiming();
      for (std::uint64_t i = 0; i < kEntries; ++i) {
        auto r = grid->Put(Key(i), value, w);
        if (!r.ok()) Die("Put", r.status());
      }
      state.PauseTiming();
      auto h = core::GridHandle::Attach(name);
      if (!h.ok()) Die("GridHandle::Attach", h.status());
      const core::GridStatsReport stats = core::CollectStats(**h);
      std::uint64_t entries = 0, used = 0, slots = 0;
      for (const auto& p : stats.partitions) {
        entries += p.entries;
        used += p.used_bytes;
      }
      for (std::uint32_t p = 0; p < (*h)->partition_count(); ++p) {
        slots += (*h)->partition(p).index_slots();
      }
      if (entries != kEntries) {
        std::fprintf(stderr, "memory_bench: %llu entries after %llu puts\n",
                     static_cast<unsigned long long>(entries),
                     static_cast<unsigned long long>(kEntries));
        std::exit(1);
      }
      block_b = static_cast<double>(used) / static_cast<double>(entries) -
                static_cast<double>(kKeyBytes + value_bytes);
      index_b = static_cast<double>(slots * 8) / static_cast<double>(entries);
    }  // detached before the grid goes
    const Status d = core::DestroyGrid(name);
    if (!d.ok()) Die("DestroyGrid", d);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(
      static_cast<std::int64_t>(state.iterations() * kEntries));
  state.counters["block_B"] = block_b;
  state.counters["index_B"] = index_b;
  state.counters["overhead_B"] = block_b + index_b;
}

BENCHMARK(BM_MemoryPerEntry)
    ->ArgNames({"value", "ttl"})
    ->ArgsProduct({{8, 100, 1000}, {0, 1}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace numagrid

BENCHMARK_MAIN();
