#include "core/evictor.h"

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/base/key_hash.h"
#include "core/base/split_mix.h"
#include "core/partition_alloc.h"
#include "core/record_access.h"

namespace numagrid::core {
namespace {

// Candidates kept between draws. Redis keeps 16; more costs a re-read of
// each at eviction time for little accuracy.
constexpr std::size_t kPoolSize = 16;
// Slots looked at from a random position to find one record: an index is
// at most 7/8 full, so a record is usually within a few slots; an emptier
// one gives up on this draw instead of walking the whole index.
constexpr std::uint64_t kProbeSlots = 32;
// Re-measure the pressure after this many evictions (a measure reads a
// counter line of every partition).
constexpr std::uint64_t kMeasureEvery = 16;
// Draws of a writer that looks for entries of one block size.
constexpr std::uint64_t kWriterDraws = 64;

// Products of a limit and a percentage or a partition count overflow 64 bits
// only for absurd limits; 128 bits make that impossible.
__extension__ using Wide = unsigned __int128;

// Evicts every record of partition p that `visit` (one of PartitionRef's
// lock-free visitors, run under a pinned epoch) calls its callback with,
// each only if it still has the version seen. Stops when the lock or the
// ring stays busy (the writer's own bounds ran out). A record rewritten or
// removed meanwhile is skipped: it left its block anyway, or has a new one
// elsewhere (the writer's next round looks again). Returns how many.
std::uint64_t EvictVisited(
    GridHandle& grid, std::uint32_t p,
    const std::function<void(const std::function<void(const RecordView&)>&)>&
        visit,
    const WriteLimits& limits, std::uint64_t now_ms) {
  struct Seen {
    std::uint64_t version;
    std::string key;
  };
  std::vector<Seen> seen;
  {
    GridHandle::EpochGuard pin(grid);  // the records stay while we read them
    visit([&](const RecordView& r) {
      seen.push_back(Seen{r.version(), std::string(r.key())});
    });
  }
  PartitionRef& part = grid.partition(p);
  std::uint64_t evicted = 0;
  for (const Seen& s : seen) {
    WriteRequest rq;
    rq.kind = WriteKind::kEvict;
    rq.key = s.key;
    rq.hash = base::KeyHash(s.key);
    rq.expected_version = s.version;
    auto w = part.Write(rq, limits, now_ms);
    if (w.ok()) {
      ++evicted;
    } else if (w.status().code() == StatusCode::kResourceExhausted) {
      break;
    }
  }
  return evicted;
}

}  // namespace

std::uint64_t EvictionRank(std::uint32_t policy, const RecordView& r,
                           std::uint64_t now_ms, std::uint64_t max_idle_ms,
                           std::uint64_t random) noexcept {
  // relaxed: the access word is a hint (RecordHeader).
  const std::uint64_t word = r.access().load(std::memory_order_relaxed);
  if (r.ExpiredAt(now_ms) || IdleExpired(word, now_ms, max_idle_ms)) return 0;
  const std::uint64_t last = AccessMs(word);
  switch (policy) {
    case kEvictLfu:
      return (static_cast<std::uint64_t>(DecayedLfu(word, now_ms)) << 48) |
             last;
    case kEvictRandom:
      return random | 1;  // never 0, which means expired
    case kEvictTtlFirst:
      if (r.has_expiry()) return r.expire_at_ms();
      return (1ULL << 62) | last;
    case kEvictLru:
    default:
      return last + 1;
  }
}

bool MemoryPressure::Above(std::uint32_t pct) const noexcept {
  // In 128-bit arithmetic: limits can be large.
  const auto over = [pct](std::uint64_t used, std::uint64_t limit) {
    return limit != 0 &&
           static_cast<Wide>(used) * 100 > static_cast<Wide>(limit) * pct;
  };
  return over(used_bytes, limit_bytes) || over(entries, entry_limit);
}

bool MemoryPressure::EntriesAbove(std::uint32_t pct) const noexcept {
  return entry_limit != 0 && static_cast<Wide>(entries) * 100 >
                                 static_cast<Wide>(entry_limit) * pct;
}

Evictor::Evictor(GridHandle& grid, std::vector<std::uint32_t> partitions,
                 std::uint64_t seed, std::vector<std::uint32_t> measured)
    : grid_(grid),
      partitions_(std::move(partitions)),
      measured_(measured.empty() ? partitions_ : std::move(measured)),
      random_(seed) {}

std::uint64_t Evictor::Next() noexcept { return base::SplitMix64(&random_); }

MemoryPressure Evictor::Measure() const {
  MemoryPressure m;
  std::set<std::uint32_t> nodes;
  for (std::uint32_t p : measured_) {
    PartitionRef& part = grid_.partition(p);
    const PartitionCounters& c = part.state().counters;
    // relaxed: counters for a decision that tolerates one change of skew.
    m.used_bytes += c.live_bytes.load(std::memory_order_relaxed) +
                    c.retired_bytes.load(std::memory_order_relaxed);
    m.entries += c.live_entries.load(std::memory_order_relaxed);
    if (nodes.insert(grid_.node_of(p)).second) {
      m.limit_bytes += part.node().arena_bytes;
    }
  }
  const EvictionConfig config = LoadEvictionConfig(grid_.eviction());
  m.entry_limit = static_cast<std::uint64_t>(
      static_cast<Wide>(config.max_entries) * measured_.size() /
      std::max<std::uint32_t>(1, grid_.partition_count()));
  return m;
}

void Evictor::Sample(std::int64_t partition, const EvictionConfig& config,
                     std::uint64_t now_ms, std::uint64_t draws,
                     VictimNeed need) {
  GridHandle::EpochGuard pin(grid_);  // the records stay while we read them
  if (partition < 0 && partitions_.size() == 1) partition = partitions_[0];
  // An index no larger than the sample is looked at whole: the choice is
  // then exact, which small grids (and the policies' tests) rely on.
  const bool whole =
      partition >= 0 &&
      grid_.partition(static_cast<std::uint32_t>(partition)).index_slots() <=
          config.samples;
  if (whole) {
    draws =
        grid_.partition(static_cast<std::uint32_t>(partition)).index_slots();
  } else if (draws == 0) {
    draws = config.samples;
  }
  for (std::uint64_t i = 0; i < draws; ++i) {
    const std::uint32_t p =
        partition >= 0 ? static_cast<std::uint32_t>(partition)
                       : partitions_[Next() % std::max<std::size_t>(
                                                  1, partitions_.size())];
    PartitionRef& part = grid_.partition(p);
    std::uint64_t slot = whole ? i : Next() % part.index_slots();
    RecordView r(nullptr);
    if (need.frees_slot) {
      // The record that ends a run of occupied slots: drawing a random
      // record would rarely give one, since runs are long in a full index.
      if (!part.RecordBeforeEmpty(&slot, whole ? 1 : 4 * kProbeSlots, &r)) {
        continue;
      }
    } else if (!part.RecordAtOrAfter(&slot, whole ? 1 : kProbeSlots, &r)) {
      continue;
    }
    if (need.block_bytes != 0 &&
        BlockBytes(part.node(), r.bytes()) < need.block_bytes) {
      continue;
    }
    Candidate c;
    c.rank = EvictionRank(config.policy, r, now_ms, config.max_idle_ms, Next());
    if (pool_.size() >= kPoolSize && c.rank >= pool_.back().rank) continue;
    c.partition = p;
    c.version = r.version();
    // The same record drawn twice would take two pool places.
    const bool known =
        std::any_of(pool_.begin(), pool_.end(), [&](const Candidate& o) {
          return o.partition == p && o.version == c.version;
        });
    if (known) continue;
    c.key.assign(r.key());
    pool_.insert(std::upper_bound(pool_.begin(), pool_.end(), c,
                                  [](const Candidate& a, const Candidate& b) {
                                    return a.rank < b.rank;
                                  }),
                 std::move(c));
    if (pool_.size() > kPoolSize) pool_.pop_back();
  }
}

Evictor::Outcome Evictor::EvictBest(const EvictionConfig& config,
                                    const WriteLimits& limits,
                                    std::uint64_t now_ms) {
  while (!pool_.empty()) {
    Candidate c = std::move(pool_.front());
    pool_.erase(pool_.begin());
    const std::uint64_t hash = base::KeyHash(c.key);
    PartitionRef& part = grid_.partition(c.partition);
    {
      // Re-read: a key read or rewritten since it was drawn may no longer
      // be the best choice (or no longer exist).
      GridHandle::EpochGuard pin(grid_);
      auto r = part.Find(c.key, hash, 1);  // 1: expired entries count too
      if (!r.ok() || r->version() != c.version) continue;
      const std::uint64_t rank =
          EvictionRank(config.policy, *r, now_ms, config.max_idle_ms, c.rank);
      if (rank > c.rank && !pool_.empty() && rank > pool_.front().rank) {
        c.rank = rank;  // back in line, where it now belongs
        pool_.insert(
            std::upper_bound(pool_.begin(), pool_.end(), c,
                             [](const Candidate& a, const Candidate& b) {
                               return a.rank < b.rank;
                             }),
            c);
        if (pool_.size() > kPoolSize) pool_.pop_back();
        continue;
      }
    }
    WriteRequest rq;
    rq.kind = WriteKind::kEvict;
    rq.key = c.key;
    rq.hash = hash;
    rq.expected_version = c.version;
    auto w = part.Write(rq, limits, now_ms);
    if (w.ok()) return Outcome::kEvicted;
    if (w.status().code() == StatusCode::kResourceExhausted) {
      // The lock or the ring is busy: the best candidate stays best. The
      // caller stops for now rather than evict worse ones elsewhere (a
      // worker's ring fills with its own evictions until it journals).
      pool_.insert(pool_.begin(), std::move(c));
      return Outcome::kBusy;
    }
    // Rewritten or removed meanwhile: the next one.
  }
  return Outcome::kNoCandidate;
}

std::uint64_t Evictor::Run(std::uint64_t max_victims, const WriteLimits& limits,
                           bool* still_above) {
  if (still_above != nullptr) *still_above = false;
  const EvictionConfig config = LoadEvictionConfig(grid_.eviction());
  if (config.policy == kEvictNone || partitions_.empty()) {
    evicting_ = false;
    pool_.clear();
    return 0;
  }
  MemoryPressure m = Measure();
  if (!evicting_ && !m.Above(config.high_watermark_pct)) return 0;
  evicting_ = true;
  const std::uint64_t now = NowMs();
  std::uint64_t evicted = 0;
  std::uint64_t failures = 0;
  while (evicted < max_victims) {
    if (!m.Above(config.low_watermark_pct)) {
      evicting_ = false;
      return evicted;
    }
    if (m.EntriesAbove(config.low_watermark_pct)) {
      // Entry pressure: only victims whose removal frees an index slot
      // lower the index's fill (VictimNeed); any if none was found.
      pool_.clear();
      Sample(-1, config, now, 0, VictimNeed{0, true});
      if (pool_.empty()) Sample(-1, config, now);
    } else {
      // A fresh sample per victim; the pool keeps the best leftovers.
      Sample(-1, config, now);
    }
    const Outcome o = EvictBest(config, limits, now);
    if (o == Outcome::kEvicted) {
      ++evicted;
      if (evicted % kMeasureEvery == 0) m = Measure();
    } else if (o == Outcome::kBusy || ++failures > max_victims) {
      break;  // busy, or nothing evictable right now: the next round
    }
  }
  if (still_above != nullptr) *still_above = true;
  return evicted;
}

std::uint64_t Evictor::EvictFrom(std::uint32_t p, std::uint64_t n,
                                 const WriteLimits& limits, VictimNeed need) {
  const EvictionConfig config = LoadEvictionConfig(grid_.eviction());
  if (config.policy == kEvictNone) return 0;
  const std::uint64_t now = NowMs();
  // Its own pool: candidates of other partitions would not help this one.
  std::vector<Candidate> saved = std::move(pool_);
  pool_.clear();
  std::uint64_t evicted = 0;
  const bool needy = need.block_bytes != 0 || need.frees_slot;
  // A block of whole chunks: only an entry with as large a block helps
  // here; emptying a chunk or evicting any entry would not make a run
  // (the writer then uses EvictRun).
  const bool large = need.block_bytes > grid_.partition(p).node().small_limit;
  for (std::uint64_t tries = 0; evicted < n && tries < 2 * n; ++tries) {
    // The configured sample per victim, of entries that meet the need;
    // the pool carries the best leftovers to the next victim. A wider
    // draw when none qualified (only a share of the records may). Then,
    // for memory, the entries of the chunk closest to empty, since an
    // empty chunk goes back to the node and serves any size; and any
    // entry as the last resort, after which the pool is dropped: such a
    // leftover would win on rank over entries that meet the need.
    Sample(p, config, now, 0, need);
    if (pool_.empty() && needy) Sample(p, config, now, kWriterDraws, need);
    if (pool_.empty() && large) break;
    if (pool_.empty() && need.block_bytes != 0) {
      const std::uint64_t k = EvictChunk(p, limits, now);
      if (k != 0) {
        evicted += k;
        break;
      }
    }
    const bool any = pool_.empty();
    if (any) Sample(p, config, now);
    const Outcome o = EvictBest(config, limits, now);
    if (o == Outcome::kEvicted) ++evicted;
    if (any) pool_.clear();
    if (o == Outcome::kBusy) break;  // the writer's own bounds ran out
  }
  pool_ = std::move(saved);
  return evicted;
}

Evictor::RunOutcome Evictor::EvictRun(std::uint32_t p, std::uint64_t run,
                                      const WriteLimits& limits,
                                      std::uint64_t now_ms,
                                      std::vector<std::uint32_t>* touched) {
  PartitionRef& part = grid_.partition(p);
  const NodeHeader& node = part.node();
  const std::uint64_t n = node.chunk_count;
  RunOutcome out;
  if (run == 0 || run > n) return out;
  out.found = true;
  // relaxed (owner and fill words): hints; a chunk claimed or filled since
  // costs this writer another round, never a wrong write.
  const std::atomic<std::uint64_t>* own = part.chunk_owners();
  const std::atomic<std::uint64_t>* fill = part.chunk_fills();
  const auto cost = [&](std::uint64_t i) -> std::uint64_t {
    const std::uint64_t w = own[i].load(std::memory_order_relaxed);
    if ((w & kChunkOwnerMask) == 0 || (w & kChunkReleasing) != 0) return 0;
    if ((w & (kChunkLarge | kChunkLargeTail)) != 0) return node.chunk_bytes;
    return fill[i].load(std::memory_order_relaxed);
  };
  // The cheapest window, by a sliding sum. Each chunk's cost is read once
  // (kept until it leaves the window): the words change under us, and a
  // second read could take out more than went in.
  std::vector<std::uint64_t> window(run);
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < run; ++i) sum += window[i] = cost(i);
  std::uint64_t best = 0;
  std::uint64_t best_sum = sum;
  for (std::uint64_t i = run; i < n; ++i) {
    std::uint64_t& slot = window[i % run];
    sum -= slot;
    slot = cost(i);
    sum += slot;
    if (sum < best_sum) {
      best_sum = sum;
      best = i - run + 1;
    }
  }
  // The owners of its chunks, by their tags: partitions of this node.
  std::vector<std::uint32_t> owners;
  for (std::uint32_t q = 0; q < grid_.partition_count(); ++q) {
    if (grid_.node_of(q) != grid_.node_of(p)) continue;
    const std::uint64_t tag = grid_.partition(q).owner_tag();
    bool in_run = false;
    for (std::uint64_t i = best; i < best + run && !in_run; ++i) {
      in_run =
          (own[i].load(std::memory_order_relaxed) & kChunkOwnerMask) == tag;
    }
    if (in_run) owners.push_back(q);
  }
  if (best_sum == 0) {
    // Nothing to evict: its chunks are free, or empty but still held (a
    // partition gives its empty chunks back when it runs out of room, not
    // before). Give those back now.
    for (const std::uint32_t q : owners) {
      auto r = grid_.partition(q).ReleaseEmptyChunks(limits, /*wait=*/true);
      if (r.ok()) out.released += *r;
    }
    return out;
  }
  for (const std::uint32_t q : owners) {
    const PartitionRef& owner = grid_.partition(q);
    const std::uint64_t from_q = EvictVisited(
        grid_, q,
        [&](const std::function<void(const RecordView&)>& f) {
          owner.VisitChunkRun(best, run, f);
        },
        limits, now_ms);
    if (from_q != 0 && touched != nullptr) touched->push_back(q);
    out.evicted += from_q;
  }
  return out;
}

std::uint64_t Evictor::EvictChunk(std::uint32_t p, const WriteLimits& limits,
                                  std::uint64_t now_ms) {
  const PartitionRef& part = grid_.partition(p);
  return EvictVisited(
      grid_, p,
      [&](const std::function<void(const RecordView&)>& f) {
        part.VisitLeastFilledChunk(f);
      },
      limits, now_ms);
}

}  // namespace numagrid::core
