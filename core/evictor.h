// Eviction: choosing entries to give up when a node's memory or entry count
// passes its high watermark, and removing them (docs/eviction.md).
//
// Choice is sampled, as Redis does it: each victim is the best of a few
// index slots drawn at random (EvictionSettings::samples) and of a small
// pool of the best candidates left over from earlier draws, each re-read
// before it goes, so that a key read since it was sampled is spared. An
// eviction is an ordinary change (WriteKind::kEvict): under the partition's
// lock, undo-logged, in the change ring and the journal, so a process
// killed at any instruction leaves what any killed writer leaves, and a
// recovered grid does not bring the entry back.
//
// Who evicts: each node's journal worker, in the background, from the high
// watermark down to the low one (Run); and a writer that still finds no
// room, a bounded amount of its own partition (EvictFrom). A memory-only
// grid has no workers: there, only writers evict.
//
// Thread safety: an Evictor is one thread's (its pool and random state);
// the grid it works on is shared as PartitionRef::Write allows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/eviction_config.h"
#include "core/grid_handle.h"

namespace numagrid::core {

// Where a policy puts a candidate: the lowest rank goes first. Expired or
// idle-expired entries rank 0 under every policy (they are invisible
// already). lru: the last access; lfu: the decayed access count, then the
// last access; random: `random`; ttl-first: the expiry time, and entries
// without a TTL after every entry with one, least recently used first.
std::uint64_t EvictionRank(std::uint32_t policy, const RecordView& record,
                           std::uint64_t now_ms, std::uint64_t max_idle_ms,
                           std::uint64_t random) noexcept;

// How full a set of partitions is, against the limits the watermarks are
// percentages of.
struct MemoryPressure {
  std::uint64_t used_bytes = 0;   // blocks of live and replaced records
  std::uint64_t limit_bytes = 0;  // the arenas' bytes (`create --memory`)
  std::uint64_t entries = 0;      // live entries
  std::uint64_t entry_limit = 0;  // the share of EvictionSettings::max_entries

  // True if bytes or entries are above `pct` percent of their limit.
  bool Above(std::uint32_t pct) const noexcept;
  // True if the entries are (whatever the bytes are).
  bool EntriesAbove(std::uint32_t pct) const noexcept;
};

// What a victim must have to help (docs/eviction.md, "the slack"):
//   block_bytes: a block of at least this size (0: any), because a freed
//     block serves its own size class and, split, smaller ones;
//   frees_slot: an empty index slot right after it, because removing an
//     entry leaves a deleted slot that still counts against the index's
//     fill limit, unless the slot after it is empty: then the removal
//     turns it (and the deleted slots before it) back into empty ones.
struct VictimNeed {
  std::uint64_t block_bytes = 0;
  bool frees_slot = false;
};

class Evictor {
 public:
  // Works on `partitions` of `grid` (a journal stream's, for a worker).
  // The pressure (Measure) is that of `measured`, if given, else of
  // `partitions`: a worker of a node with several journal streams measures
  // the whole node (the watermarks are of the node's memory, which the
  // streams' partitions share) and evicts from its own partitions only
  // (docs/adr/0008-journal-streams.md).
  Evictor(GridHandle& grid, std::vector<std::uint32_t> partitions,
          std::uint64_t seed, std::vector<std::uint32_t> measured = {});

  MemoryPressure Measure() const;

  // Background eviction: once the partitions pass the high watermark,
  // evicts until they are below the low one, at most `max_victims` per
  // call (it goes on at the next call). `limits` as for a write; a worker
  // passes zero waits so that it never blocks behind a writer. Returns how
  // many entries it evicted; *still_above: the low watermark is not yet
  // reached.
  std::uint64_t Run(std::uint64_t max_victims, const WriteLimits& limits,
                    bool* still_above = nullptr);

  // Writer-side eviction: up to `n` entries of partition `p` (whatever the
  // watermarks say: the writer found no room), preferring entries that meet
  // `need`; if none is found and the need is memory, every entry of the
  // partition's chunk closest to empty instead (EvictChunk: possibly more
  // than `n`, at most a chunk's worth), and else any entry. A need of
  // whole chunks (above the node's small-block limit) takes only entries
  // whose blocks are that large: nothing else would make a run (EvictRun
  // does). Returns how many.
  std::uint64_t EvictFrom(std::uint32_t p, std::uint64_t n,
                          const WriteLimits& limits, VictimNeed need = {});

  // Evicts every entry in the small-block chunk of partition `p` with the
  // fewest bytes in use (PartitionRef::VisitLeastFilledChunk): once they
  // are reclaimed, the chunk goes back to the node and serves a block of
  // any size, in any partition of the node. For a writer whose own
  // partition has nothing that helps. Returns how many it evicted.
  std::uint64_t EvictChunk(std::uint32_t p, const WriteLimits& limits,
                           std::uint64_t now_ms);

  // For a block of `run` whole chunks on partition `p`'s node that no
  // free run and no single victim provides: evicts every entry, of any
  // partition of the node, in the run of `run` neighbouring chunks that
  // holds the fewest bytes (free chunks count nothing, a small-block
  // chunk its bytes handed out, a chunk of a large block all of it), and
  // the large blocks reaching into it. Once those are reclaimed the
  // chunks go back to the node (PartitionRef::ReleaseEmptyChunks). Adds
  // the partitions it evicted from to `*touched`. If the run holds no
  // entry, its chunks are free or empty ones a partition still holds: it
  // gives those back.
  struct RunOutcome {
    std::uint64_t evicted = 0;   // entries
    std::uint64_t released = 0;  // empty chunks given back
    // A run was found (free, given back or emptied): a write may find it
    // free, unless another writer takes one of its chunks first. False
    // only if the node has fewer chunks than `run`.
    bool found = false;
  };
  RunOutcome EvictRun(std::uint32_t p, std::uint64_t run,
                      const WriteLimits& limits, std::uint64_t now_ms,
                      std::vector<std::uint32_t>* touched);

 private:
  struct Candidate {
    std::uint64_t rank = 0;
    std::uint32_t partition = 0;
    std::uint64_t version = 0;
    std::string key;
  };

  // Adds `draws` draws (0: the configured samples) from `partition` (or
  // from random partitions of this evictor's, if partition < 0) to the
  // pool, only records that meet `need`.
  void Sample(std::int64_t partition, const EvictionConfig& config,
              std::uint64_t now_ms, std::uint64_t draws = 0,
              VictimNeed need = {});
  enum class Outcome { kEvicted, kNoCandidate, kBusy };
  // Evicts the best candidate of the pool that is still what it was when
  // sampled. kBusy: its partition's lock or change ring was not available
  // within `limits` (the candidate stays in the pool, for the next try).
  Outcome EvictBest(const EvictionConfig& config, const WriteLimits& limits,
                    std::uint64_t now_ms);
  std::uint64_t Next() noexcept;

  GridHandle& grid_;
  std::vector<std::uint32_t> partitions_;
  std::vector<std::uint32_t> measured_;  // what Measure() sums
  std::vector<Candidate> pool_;          // the best first, at most kPoolSize
  std::uint64_t random_;
  bool evicting_ = false;  // between the high and the low watermark
};

}  // namespace numagrid::core
