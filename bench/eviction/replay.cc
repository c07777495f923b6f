// numagrid-eviction-bench's grid runs: the trace replay and the fill run.
#include "bench/eviction/replay.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "bench/eviction/cache_sim.h"
#include "bench/numagrid_bench/journal_workers.h"
#include "bench/numagrid_bench/workload.h"
#include "core/eviction_config.h"
#include "core/evictor.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "numa/topology.h"
#include "numagrid/grid.h"

namespace numagrid::bench {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// A second attachment beside the Grid, for what Grid does not show: the
// grid's memory pressure (Evictor::Measure over every partition) and its
// eviction counters.
class GridProbe {
 public:
  static Result<GridProbe> Attach(const std::string& name) {
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) return h.status().WithContext("Attach '" + name + "'");
    return GridProbe(std::move(*h));
  }

  core::MemoryPressure Measure() const { return evictor_->Measure(); }

  std::uint64_t Evictions() {
    std::uint64_t n = 0;
    for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
      // relaxed: a count read after the writes of this thread, or a
      // sample while a worker evicts, where a stale count is fine.
      n += h_->partition(p).state().counters.evictions.load(
          std::memory_order_relaxed);
    }
    return n;
  }

  core::EvictionConfig Eviction() {
    return core::LoadEvictionConfig(h_->eviction());
  }

 private:
  explicit GridProbe(std::unique_ptr<core::GridHandle> h) : h_(std::move(h)) {
    std::vector<std::uint32_t> all(h_->partition_count());
    for (std::uint32_t p = 0; p < all.size(); ++p) all[p] = p;
    // The evictor only measures here; it never evicts.
    evictor_ = std::make_unique<core::Evictor>(*h_, std::move(all), 1);
  }

  std::unique_ptr<core::GridHandle> h_;
  std::unique_ptr<core::Evictor> evictor_;
};

// The temporary grid of one replay and what goes with it, removed in the
// right order at the end: journal workers, the grid, its journal directory.
class TemporaryGrid {
 public:
  TemporaryGrid() = default;
  TemporaryGrid(const TemporaryGrid&) = delete;
  TemporaryGrid& operator=(const TemporaryGrid&) = delete;
  ~TemporaryGrid() { (void)Remove(); }

  Status Create(const ReplayOptions& o, std::uint64_t* index_entries) {
    name_ = o.grid_name;
    auto topology = numa::Topology::Load();
    if (!topology.ok()) return topology.status().WithContext("Topology::Load");
    core::CreateOptions c;
    c.partitions = o.partitions;
    c.memory_bytes = o.memory_bytes;
    c.max_key_bytes = static_cast<std::uint32_t>(kEvictionBenchKeySize);
    c.max_value_bytes = static_cast<std::uint32_t>(o.value_size);
    c.bind = false;
    c.eviction.policy = o.policy;
    c.eviction.samples = o.samples;
    *index_entries = c.memory_bytes / 128;  // CreateOptions' default
    if (o.worker) {
      NUMAGRID_RETURN_IF_ERROR(MakeJournalDir(o.journal_parent_dir));
      c.journal_dir = journal_dir_;
      c.durability = core::kDurabilityAsync;
    }
    auto created = core::CreateGrid(name_, c, *topology);
    if (!created.ok()) {
      return created.status().WithContext("CreateGrid '" + name_ + "'");
    }
    created_ = true;
    if (o.worker) NUMAGRID_RETURN_IF_ERROR(workers_.Start(name_, journal_dir_));
    return Status::Ok();
  }

  // Stops the workers, destroys the grid, removes the journal directory.
  // REQUIRES: no Grid or GridProbe of this grid is attached any more.
  std::string Remove() {
    std::string message = workers_.Stop();
    auto add = [&](const std::string& m) {
      if (m.empty()) return;
      if (!message.empty()) message += "; ";
      message += m;
    };
    if (created_) {
      created_ = false;
      const Status s = core::DestroyGrid(name_);
      if (!s.ok()) add("DestroyGrid '" + name_ + "': " + s.ToString());
    }
    if (!journal_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(journal_dir_, ec);
      if (ec) add("cannot remove " + journal_dir_ + ": " + ec.message());
      journal_dir_.clear();
    }
    return message;
  }

 private:
  Status MakeJournalDir(const std::string& parent_dir) {
    std::error_code ec;
    const std::filesystem::path parent =
        std::filesystem::absolute(parent_dir, ec);
    if (ec) return IoError(parent_dir + ": " + ec.message() + " (--disk-dir)");
    std::string tmpl = (parent / "numagrid-eviction-bench.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return IoError("cannot create a journal directory in " + parent.string() +
                     ": " + std::generic_category().message(errno) +
                     " (--disk-dir)");
    }
    journal_dir_ = tmpl;
    return Status::Ok();
  }

  std::string name_;
  bool created_ = false;
  std::string journal_dir_;
  JournalWorkers workers_;
};

}  // namespace

std::uint64_t TtlForKey(std::uint64_t id, std::uint64_t base_ms,
                        std::uint64_t spread_ms) noexcept {
  return base_ms + (spread_ms == 0 ? 0 : FnvHash64(id) % spread_ms);
}

Result<ReplayResult> ReplayTrace(
    const ReplayOptions& o, const std::vector<std::uint32_t>& trace,
    const volatile std::sig_atomic_t* interrupted) {
  ReplayResult res;
  TemporaryGrid temp;
  NUMAGRID_RETURN_IF_ERROR(temp.Create(o, &res.index_entries));
  {
    auto grid = Grid::Attach(o.grid_name);
    if (!grid.ok()) {
      return grid.status().WithContext("Attach '" + o.grid_name + "'");
    }
    auto probe = GridProbe::Attach(o.grid_name);
    if (!probe.ok()) return probe.status();

    const KeySpace keys(kEvictionBenchKeySize);
    char kbuf[KeySpace::kKeyBufferSize];
    const std::string value(o.value_size, 'v');
    std::vector<char> buf(o.value_size + 64);
    const bool ttl = o.policy == core::kEvictTtlFirst;
    const std::uint64_t every = std::max<std::uint64_t>(1, o.sample_every);
    double entries_sum = 0, used_sum = 0;
    std::uint64_t samples = 0;
    res.min_entries = UINT64_MAX;
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < trace.size(); ++i) {
      if ((i & 1023) == 0 && *interrupted) break;
      const std::uint32_t id = trace[i];
      const std::string_view key = keys.Format(id, kbuf);
      auto got = grid->GetInto(key, buf.data(), buf.size());
      const bool hit = got.ok();
      if (!hit) {
        WriteOptions w;
        if (ttl) w.ttl_ms = TtlForKey(id, o.ttl_ms, o.ttl_spread_ms);
        auto put = grid->Put(key, value, w);
        ++res.puts;
        const Status& s = got.status().code() == StatusCode::kNotFound
                              ? put.status()
                              : got.status();
        if (!s.ok()) {
          if (res.put_failures++ == 0) res.first_put_error = s.ToString();
        }
      }
      const bool measured = i >= o.warmup_ops;
      if (measured) {
        ++res.gets;
        res.hits += hit ? 1 : 0;
      }
      if (i % every == every - 1) {
        const core::MemoryPressure m = probe->Measure();
        res.limit_bytes = m.limit_bytes;
        res.peak_used_bytes = std::max(res.peak_used_bytes, m.used_bytes);
        if (measured) {
          entries_sum += static_cast<double>(m.entries);
          used_sum += static_cast<double>(m.used_bytes);
          res.min_entries = std::min(res.min_entries, m.entries);
          res.max_entries = std::max(res.max_entries, m.entries);
          ++samples;
        }
      }
    }
    res.seconds = SecondsSince(start);
    const core::MemoryPressure m = probe->Measure();
    res.limit_bytes = m.limit_bytes;
    res.peak_used_bytes = std::max(res.peak_used_bytes, m.used_bytes);
    if (samples == 0) {  // a replay shorter than one sampling period
      entries_sum = static_cast<double>(m.entries);
      used_sum = static_cast<double>(m.used_bytes);
      res.min_entries = res.max_entries = m.entries;
      samples = 1;
    }
    res.mean_entries = entries_sum / static_cast<double>(samples);
    res.mean_used_bytes = used_sum / static_cast<double>(samples);
    res.evictions = probe->Evictions();
  }
  const std::string removed = temp.Remove();
  if (!removed.empty()) return IoError(removed);
  return res;
}

Result<FillResult> FillGrid(const FillOptions& o,
                            const volatile std::sig_atomic_t* interrupted) {
  auto grid = Grid::Attach(o.grid_name);
  if (!grid.ok()) {
    return grid.status().WithContext("Attach '" + o.grid_name + "'");
  }
  auto probe = GridProbe::Attach(o.grid_name);
  if (!probe.ok()) return probe.status();
  if (probe->Eviction().policy == core::kEvictNone) {
    return InvalidArgument("grid '" + o.grid_name +
                           "' has no eviction policy: a fill would only "
                           "find it full (numagrid config NAME --eviction)");
  }
  FillResult res;
  const KeySpace keys(kEvictionBenchKeySize);
  char kbuf[KeySpace::kKeyBufferSize];
  std::string value(o.value_size, 'f');
  std::vector<char> buf(o.value_size + 64);
  const std::uint64_t fill_writes =
      (o.fill_bytes + o.value_size - 1) / o.value_size;
  // Ids: the hot keys first, then one per fill write.
  const std::uint64_t id_limit = o.hot_keys + fill_writes;
  if (id_limit >= UINT32_MAX) {
    return InvalidArgument("--fill / --value-size: too many writes");
  }
  Rng rng(o.seed);
  ZipfianGenerator zipf(o.hot_keys, o.theta);
  // The hot reads, kept for the exact-LRU replay afterwards.
  std::vector<std::uint32_t> reads;
  reads.reserve(fill_writes * o.reads_per_write);
  std::uint64_t counter = 0;
  auto write = [&](std::uint64_t id) {
    // Every value differs: the write counter in its first bytes.
    ++counter;
    std::memcpy(value.data(), &counter,
                std::min<std::size_t>(sizeof(counter), value.size()));
    auto put = grid->Put(keys.Format(id, kbuf), value);
    ++res.writes;
    res.value_bytes += value.size();
    if (!put.ok() && res.write_failures++ == 0) {
      res.first_write_error = put.status().ToString();
    }
  };
  // The mean entry count is that of the full grid: samples from the first
  // eviction on.
  double entries_sum = 0;
  std::uint64_t samples = 0;
  auto sample = [&] {
    const core::MemoryPressure m = probe->Measure();
    res.limit_bytes = m.limit_bytes;
    res.peak_used_bytes = std::max(res.peak_used_bytes, m.used_bytes);
    if (samples != 0 || probe->Evictions() != 0) {
      entries_sum += static_cast<double>(m.entries);
      ++samples;
    }
  };
  const std::uint64_t every = std::max<std::uint64_t>(1, o.sample_every);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t h = 0; h < o.hot_keys; ++h) write(h);
  sample();
  const std::uint64_t step = std::max<std::uint64_t>(1, fill_writes / 8);
  std::uint64_t last_j = 0;
  double last_s = SecondsSince(start);
  for (std::uint64_t j = 0; j < fill_writes; ++j) {
    if ((j & 1023) == 0 && *interrupted) break;
    write(o.hot_keys + j);
    for (std::uint32_t r = 0; r < o.reads_per_write; ++r) {
      const auto h = static_cast<std::uint32_t>(zipf.Next(rng));
      reads.push_back(h);
      ++res.reads;
      if (grid->GetInto(keys.Format(h, kbuf), buf.data(), buf.size()).ok()) {
        ++res.read_hits;
      }
    }
    if (j % every == every - 1) sample();
    if ((j + 1) % step == 0 || j + 1 == fill_writes) {
      // Progress on stderr: the pace of each eighth, so that a slowdown
      // as the grid ages shows.
      const double now = SecondsSince(start);
      std::fprintf(
          stderr,
          "numagrid-eviction-bench: fill %3.0f%%: %.0f writes/s "
          "since the last line, %llu evictions so far\n",
          100.0 * static_cast<double>(j + 1) / static_cast<double>(fill_writes),
          static_cast<double>(j + 1 - last_j) / std::max(now - last_s, 1e-9),
          static_cast<unsigned long long>(probe->Evictions()));
      last_j = j + 1;
      last_s = now;
    }
  }
  res.seconds = SecondsSince(start);
  sample();
  const core::MemoryPressure end = probe->Measure();
  res.final_used_bytes = end.used_bytes;
  res.final_entries = end.entries;
  res.mean_entries = samples == 0 ? static_cast<double>(end.entries)
                                  : entries_sum / static_cast<double>(samples);
  res.evictions = probe->Evictions();
  for (std::uint32_t h = 0; h < o.hot_keys; ++h) {
    if (grid->GetInto(keys.Format(h, kbuf), buf.data(), buf.size()).ok()) {
      ++res.hot_present;
    }
  }
  // The same sequence through an exact LRU cache of the grid's mean size.
  ExactLru lru(id_limit,
               static_cast<std::uint64_t>(std::llround(res.mean_entries)));
  for (std::uint32_t h = 0; h < o.hot_keys; ++h) lru.Put(h);
  const std::uint64_t done = res.writes - o.hot_keys;
  for (std::uint64_t j = 0; j < done; ++j) {
    lru.Put(static_cast<std::uint32_t>(o.hot_keys + j));
    for (std::uint32_t r = 0; r < o.reads_per_write; ++r) {
      const std::uint64_t k = j * o.reads_per_write + r;
      if (k < reads.size()) (void)lru.Get(reads[k]);
    }
  }
  for (std::uint32_t h = 0; h < o.hot_keys; ++h) {
    res.lru_hot_present += lru.Contains(h) ? 1 : 0;
  }
  return res;
}

}  // namespace numagrid::bench
