// The offline side of numagrid-eviction-bench: the zipfian trace that the
// grid replays, and exact caches replayed on the same trace for reference:
// an exact LRU cache and Belady's optimal (MIN) cache, both with a capacity
// counted in entries (docs/benchmarks.md, "Eviction accuracy").
//
// Thread safety: the functions are thread-safe; an ExactLru belongs to one
// thread.
#pragma once

#include <cstdint>
#include <vector>

namespace numagrid::bench {

// `ops` key ids drawn zipfian over [0, keys) with skew `theta` (YCSB's
// ZipfianGenerator, bench/numagrid_bench/workload.h). Rank r is id r: id 0
// is the most popular. The same arguments give the same trace.
// REQUIRES: keys >= 2, 0 <= theta < 1.
std::vector<std::uint32_t> ZipfianTrace(std::uint32_t keys, std::uint64_t ops,
                                        double theta, std::uint64_t seed);

// An exact LRU cache of key ids in [0, id_limit), holding at most
// `capacity` ids (0: none). O(1) per operation: an intrusive doubly linked
// list over arrays indexed by id.
class ExactLru {
 public:
  ExactLru(std::uint64_t id_limit, std::uint64_t capacity);

  // True if `id` is cached; it becomes the most recently used.
  // REQUIRES: id < id_limit (for Put and Contains too).
  bool Get(std::uint32_t id) noexcept;
  // Caches `id` as the most recently used, first evicting the least
  // recently used id if the cache is full.
  void Put(std::uint32_t id) noexcept;
  bool Contains(std::uint32_t id) const noexcept { return cached_[id] != 0; }
  std::uint64_t size() const noexcept { return size_; }
  std::uint64_t evictions() const noexcept { return evictions_; }

 private:
  static constexpr std::uint32_t kNil = UINT32_MAX;
  void Unlink(std::uint32_t id) noexcept;
  void PushFront(std::uint32_t id) noexcept;

  std::uint64_t capacity_;
  std::vector<std::uint32_t> prev_, next_;  // towards head_, towards tail_
  std::vector<std::uint8_t> cached_;
  std::uint32_t head_ = kNil;  // most recently used
  std::uint32_t tail_ = kNil;  // least recently used
  std::uint64_t size_ = 0;
  std::uint64_t evictions_ = 0;
};

// Hits and gets of a cache-aside replay (get; on a miss, put), counted from
// operation `measure_from` of the trace on; the operations before it only
// warm the cache.
struct SimResult {
  std::uint64_t gets = 0;
  std::uint64_t hits = 0;
  double hit_rate() const {
    return gets == 0 ? 0.0
                     : static_cast<double>(hits) / static_cast<double>(gets);
  }
};

// The trace through an ExactLru of `capacity` entries.
// REQUIRES: every id of `trace` < id_limit.
SimResult SimulateLru(const std::vector<std::uint32_t>& trace,
                      std::uint64_t id_limit, std::uint64_t capacity,
                      std::uint64_t measure_from);

// The trace through Belady's MIN cache of `capacity` entries: every miss is
// inserted, and a full cache evicts the id whose next use is furthest away
// (or never comes). No cache of that capacity that inserts every miss hits
// more often on this trace.
// REQUIRES: every id of `trace` < id_limit.
SimResult SimulateOptimal(const std::vector<std::uint32_t>& trace,
                          std::uint64_t id_limit, std::uint64_t capacity,
                          std::uint64_t measure_from);

}  // namespace numagrid::bench
