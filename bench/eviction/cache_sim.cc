// Offline caches for numagrid-eviction-bench: trace, exact LRU, Belady MIN.
#include "bench/eviction/cache_sim.h"

#include <queue>
#include <utility>

#include "bench/numagrid_bench/workload.h"

namespace numagrid::bench {

std::vector<std::uint32_t> ZipfianTrace(std::uint32_t keys, std::uint64_t ops,
                                        double theta, std::uint64_t seed) {
  Rng rng(seed);
  ZipfianGenerator zipf(keys, theta);
  std::vector<std::uint32_t> trace(ops);
  for (std::uint32_t& id : trace) {
    id = static_cast<std::uint32_t>(zipf.Next(rng));
  }
  return trace;
}

ExactLru::ExactLru(std::uint64_t id_limit, std::uint64_t capacity)
    : capacity_(capacity),
      prev_(id_limit, kNil),
      next_(id_limit, kNil),
      cached_(id_limit, 0) {}

void ExactLru::Unlink(std::uint32_t id) noexcept {
  const std::uint32_t p = prev_[id];
  const std::uint32_t n = next_[id];
  if (p != kNil) {
    next_[p] = n;
  } else {
    head_ = n;
  }
  if (n != kNil) {
    prev_[n] = p;
  } else {
    tail_ = p;
  }
  prev_[id] = next_[id] = kNil;
}

void ExactLru::PushFront(std::uint32_t id) noexcept {
  prev_[id] = kNil;
  next_[id] = head_;
  if (head_ != kNil) prev_[head_] = id;
  head_ = id;
  if (tail_ == kNil) tail_ = id;
}

bool ExactLru::Get(std::uint32_t id) noexcept {
  if (cached_[id] == 0) return false;
  if (head_ != id) {
    Unlink(id);
    PushFront(id);
  }
  return true;
}

void ExactLru::Put(std::uint32_t id) noexcept {
  if (Get(id)) return;
  if (capacity_ == 0) return;
  if (size_ >= capacity_) {
    const std::uint32_t victim = tail_;
    Unlink(victim);
    cached_[victim] = 0;
    --size_;
    ++evictions_;
  }
  PushFront(id);
  cached_[id] = 1;
  ++size_;
}

SimResult SimulateLru(const std::vector<std::uint32_t>& trace,
                      std::uint64_t id_limit, std::uint64_t capacity,
                      std::uint64_t measure_from) {
  ExactLru lru(id_limit, capacity);
  SimResult r;
  for (std::uint64_t i = 0; i < trace.size(); ++i) {
    const bool hit = lru.Get(trace[i]);
    if (!hit) lru.Put(trace[i]);
    if (i >= measure_from) {
      ++r.gets;
      r.hits += hit ? 1 : 0;
    }
  }
  return r;
}

SimResult SimulateOptimal(const std::vector<std::uint32_t>& trace,
                          std::uint64_t id_limit, std::uint64_t capacity,
                          std::uint64_t measure_from) {
  constexpr std::uint64_t kNever = UINT64_MAX;
  // next_use[i]: the operation that next uses trace[i] after i.
  std::vector<std::uint64_t> next_use(trace.size());
  {
    std::vector<std::uint64_t> seen(id_limit, kNever);
    for (std::uint64_t i = trace.size(); i-- > 0;) {
      next_use[i] = seen[trace[i]];
      seen[trace[i]] = i;
    }
  }
  // A max-heap of (next use, id) with stale entries left in it: an entry
  // is current only while the id is cached with that next use.
  std::vector<std::uint64_t> cached_next(id_limit, 0);
  std::vector<std::uint8_t> cached(id_limit, 0);
  std::priority_queue<std::pair<std::uint64_t, std::uint32_t>> heap;
  std::uint64_t size = 0;
  SimResult r;
  for (std::uint64_t i = 0; i < trace.size(); ++i) {
    const std::uint32_t id = trace[i];
    const bool hit = cached[id] != 0;
    if (!hit && capacity != 0) {
      if (size >= capacity) {
        for (;;) {
          const auto [next, victim] = heap.top();
          heap.pop();
          if (cached[victim] != 0 && cached_next[victim] == next) {
            cached[victim] = 0;
            --size;
            break;
          }
        }
      }
      cached[id] = 1;
      ++size;
    }
    if (cached[id] != 0) {
      cached_next[id] = next_use[i];
      heap.emplace(next_use[i], id);
    }
    if (i >= measure_from) {
      ++r.gets;
      r.hits += hit ? 1 : 0;
    }
  }
  return r;
}

}  // namespace numagrid::bench
