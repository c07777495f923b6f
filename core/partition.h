// PartitionRef: the operations on one partition's shared state (its index,
// records, change ring and allocator) in its node's data segment. Reads are
// lock-free; writes take the partition's robust lock for a few hundred
// nanoseconds. docs/adr/0002-data-path.md explains why.
//
// Thread safety: a PartitionRef is a view (copyable); every operation is
// thread-safe and process-safe as documented on it.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: in a write, reclaim or tombstone cleanup, a held partition
//     lock and an active WriteIntent (core/partition_layout.h); in a read, a
//     pinned epoch in its process slot; in ReadChanges and MarkJournaled,
//     nothing (journaled_seq moves only after the changes are durable, in
//     one store).
//   Detected by: the robust lock (EOWNERDEAD) for writers; the lock file's
//     free byte for readers (shm/process_table.h).
//   Repaired by: RepairLocked in the next locker, at once; the pinned epoch
//     by RepairDeadProcesses (core/grid_repair.h).
//   Holds in every reachable state: see PartitionState.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "core/data_layout.h"
#include "core/partition_layout.h"
#include "core/record.h"
#include "core/stats_layout.h"
#include "numagrid/status.h"

namespace numagrid::shm {
class ProcessTable;
}

namespace numagrid::core {

// GridConfig::journal_mode
inline constexpr std::uint32_t kJournalNone =
    0;  // writers mark their own changes journaled
inline constexpr std::uint32_t kJournalConsumer =
    1;  // a consumer (the worker) drains the rings

struct WriteLimits {
  std::uint32_t max_key_bytes = 250;
  std::uint32_t max_value_bytes = 1U << 20;
  std::uint64_t lock_timeout_ns =
      1'000'000'000;  // a writer waits this long for the lock
  std::uint64_t ring_wait_ns =
      1'000'000'000;  // ... and this long for ring space
  std::uint32_t journal_mode = kJournalNone;
  // Keep the monitoring counters (PartitionCounters' cas_failures,
  // change_bytes, ring_high_water; RingEntry::visible_ms); false for a grid
  // created with --no-stats.
  bool stats = true;
};

enum class WriteKind {
  kUpsert,         // put
  kInsert,         // only if absent
  kReplace,        // only if present
  kCompareAndSet,  // only if present with version == expected_version
  kRemove,
  kRemoveIfVersion,  // only if present with version == expected_version
  kIncrement,        // 8-byte little-endian signed counter += delta (absent: 0)
  // Only if present, expired at now_ms, with version == expected_version:
  // the background reclaim of an expired entry (a remove in the ring and
  // the journal). kNotFound if absent or not expired.
  kRemoveExpired,
  // Only if present (live, expired or idle) with version == expected_version:
  // an eviction (core/evictor.h). A remove in the ring and the journal,
  // counted in PartitionCounters::evictions instead of removes.
  kEvict,
};

// Why a write failed with kResourceExhausted (PartitionRef::
// last_exhaustion), so that a writer knows whether evicting would help.
enum class Exhaustion : std::uint8_t {
  kNone,
  kMemory,  // no block for the record
  kIndex,   // the partition's index is full
  kRing,    // the change ring stayed full
  kLock,    // the lock stayed held
};

struct WriteRequest {
  WriteKind kind = WriteKind::kUpsert;
  std::string_view key;
  std::uint64_t hash = 0;  // base::KeyHash(key)
  std::string_view value;  // not for removes and increments
  std::uint64_t expected_version = 0;
  std::uint64_t expire_at_ms = 0;  // 0: never
  std::int64_t delta = 0;
  // The grid's max-idle (EvictionSettings::max_idle_ms): an entry idle for
  // longer counts as expired, as one past its TTL does. 0: never.
  std::uint64_t max_idle_ms = 0;
  // Recovery only (kUpsert, kRemove): the version the record had when it was
  // journaled, instead of a new one (the ring entry keeps its own sequence;
  // ResetSequence moves the sequence past every restored version at the
  // end). REQUIRES: no other process attached (the grid is marked as
  // recovering) and journal_mode none.
  std::uint64_t restore_version = 0;
};

struct WriteResult {
  std::uint64_t version = 0;  // the new record's version (its sequence number)
  std::int64_t counter = 0;   // kIncrement: the value after the increment
};

// One change as the ring holds it, for a consumer.
struct ChangeView {
  std::uint64_t seq;      // the change sequence; the entry's new version
  std::uint64_t version;  // kOpPut: the new record's version; else seq
  std::uint32_t op;       // kOpPut or kOpRemove
  std::string_view key;
  std::string_view value;  // kOpPut only
  std::uint64_t expire_at_ms;
  std::uint32_t visible_ms;  // RingEntry::visible_ms: 0 unknown
};

struct PartitionCheckReport {
  std::uint64_t live_entries = 0;
  std::uint64_t expired_entries = 0;
  std::uint64_t ring_entries = 0;
  std::uint64_t free_blocks = 0;
  bool repaired = false;  // the lock's previous holder had died; repaired now
  std::vector<std::string> problems;  // empty when consistent
};

// Milliseconds since the Unix epoch, from the coarse clock (a few ns; TTLs
// need no better).
std::uint64_t NowMs() noexcept;

class PartitionRef {
 public:
  PartitionRef(std::byte* segment_base, const NodeHeader* node,
               PartitionState* state, shm::ProcessTable* procs) noexcept
      : base_(segment_base), node_(node), p_(state), procs_(procs) {}

  // Initializes a partition's state in a new data segment. REQUIRES: zeroed
  // memory, index and ring laid out as `state` says.
  static Status Initialize(PartitionState* state) noexcept;

  // Lock-free lookup. Returns the live record of `key`, kNotFound (absent or
  // expired at `now_ms`), or kCorruption (an index slot names bytes outside
  // the arena). REQUIRES: the calling process has pinned an epoch and keeps
  // it pinned for as long as it uses the returned view.
  Result<RecordView> Find(std::string_view key, std::uint64_t hash,
                          std::uint64_t now_ms) const noexcept;

  // Applies one change under the partition lock. Errors: kNotFound,
  // kAlreadyExists, kConflict (version), kInvalidArgument (increment of a
  // value that is not 8 bytes), kResourceExhausted (no memory, index full,
  // change ring full after the bounded wait, lock held past the timeout).
  // Changes nothing when it fails.
  Result<WriteResult> Write(const WriteRequest& request,
                            const WriteLimits& limits,
                            std::uint64_t now_ms) noexcept;

  // Visits every live record (lock-free; each record that stays live during
  // the scan is visited exactly once). Stops when `visit` returns false.
  // REQUIRES: an epoch pinned for the whole scan.
  // Lock-free: visits the expired records in index slots [from_slot,
  // from_slot + max_slots) (wrapping at the end of the index) and returns
  // the slot to continue from. REQUIRES: an epoch pinned while the views
  // are used.
  // An entry idle for longer than max_idle_ms (if not 0) counts as expired.
  std::uint64_t ScanExpired(
      std::uint64_t from_slot, std::uint64_t max_slots, std::uint64_t now_ms,
      std::uint64_t max_idle_ms,
      const std::function<void(const RecordView&)>& visit) const;
  // Lock-free: the record in index slot `slot` (wrapping), or the first
  // one after it within `max_slots` slots; false if there is none. For
  // sampling eviction candidates. `*slot` is set to where it was found.
  // REQUIRES: an epoch pinned while the view is used.
  bool RecordAtOrAfter(std::uint64_t* slot, std::uint64_t max_slots,
                       RecordView* record) const noexcept;
  // Lock-free: the record in the slot just before the first empty slot
  // at or after `*slot`, within `max_slots` slots; false if there is none
  // (or that slot holds no record). Its removal frees a slot (see
  // ClearDeletedRun). For choosing victims under index pressure; `*slot`
  // is set to the record's slot. REQUIRES: as RecordAtOrAfter.
  bool RecordBeforeEmpty(std::uint64_t* slot, std::uint64_t max_slots,
                         RecordView* record) const noexcept;
  std::uint64_t index_slots() const noexcept { return p_->index_mask + 1; }
  // Lock-free, a hint (fills change under the lock): calls `visit` for each
  // record in the index that lies in this partition's small-block chunk
  // with the fewest bytes handed out, other than its current chunk and
  // those with none (ReleaseEmptyChunks gives those back). Evicting them
  // all empties that chunk, once the retired records in it are reclaimed
  // too. False if there is no such chunk. O(chunks + index slots).
  // REQUIRES: an epoch pinned while the views are used.
  bool VisitLeastFilledChunk(
      const std::function<void(const RecordView&)>& visit) const;
  // Lock-free, a hint: calls `visit` for each record in the index whose
  // block starts in one of the node's chunks [first_chunk, first_chunk +
  // chunks), or in the first chunk of a large block that reaches into
  // them. O(index slots). REQUIRES: an epoch pinned while the views are
  // used.
  void VisitChunkRun(std::uint64_t first_chunk, std::uint64_t chunks,
                     const std::function<void(const RecordView&)>& visit) const;
  // The node's chunk owner and fill tables (core/partition_layout.h), for
  // choosing chunks to empty; read racily (relaxed), they are hints.
  const std::atomic<std::uint64_t>* chunk_owners() const noexcept;
  const std::atomic<std::uint64_t>* chunk_fills() const noexcept;
  // The value this partition's chunks carry in the owner table (below
  // kChunkReleasing).
  std::uint64_t owner_tag() const noexcept;

  void Scan(const std::function<bool(const RecordView&)>& visit,
            std::uint64_t now_ms) const;

  // For the journal consumer: calls `consume` for each complete change in
  // [from, next_seq), in order, until it returns false, and returns the
  // sequence after the last one it accepted. Moves nothing: the records the
  // views point at stay allocated until MarkJournaled passes them, so no
  // epoch is needed. REQUIRES: from >= journaled_seq; a single consumer per
  // partition.
  std::uint64_t ReadChanges(
      std::uint64_t from,
      const std::function<bool(const ChangeView&)>& consume) const;

  // Publishes that every change below `upto` is durable: writers waiting for
  // durability may return, and reclamation may free what those changes
  // replaced. `bytes`: the key + value bytes of the changes marked (for the
  // lag in bytes, PartitionState::journaled_bytes). REQUIRES: journaled_seq
  // <= upto <= next_seq; a single consumer.
  void MarkJournaled(std::uint64_t upto, std::uint64_t bytes = 0) noexcept;

  // Recovery only: after the last restore, frees every replaced record and
  // moves every ring cursor to `next_seq` (>= the current one) so that new
  // changes get versions above every restored one. kPanic if a pinned epoch
  // keeps a record from being freed. REQUIRES: as for
  // WriteRequest::restore_version.
  Status ResetSequence(std::uint64_t next_seq) noexcept;

  // Frees the records of journaled changes that no pinned epoch can see any
  // more. Takes the lock (without `wait`, only if it is free: 0 otherwise).
  // Returns how many ring entries it reclaimed.
  Result<std::uint64_t> Reclaim(const WriteLimits& limits,
                                bool wait = true) noexcept;

  // Frees what it can (as Reclaim), then gives the partition's chunks that
  // hold no record back to the node (PartitionAlloc::ReleaseEmptyChunks),
  // so that another partition of the node can claim them. Takes the lock
  // as Reclaim does. Returns how many chunks went back.
  Result<std::uint64_t> ReleaseEmptyChunks(const WriteLimits& limits,
                                           bool wait = true) noexcept;

  // For snapshots: under the partition's lock (so that writers of this
  // partition pause, briefly), calls `copy` with the sequence that the copy
  // covers (every change below it, none after) and then each record that is
  // live at `now_ms`, in index order. `copy` must only copy: the lock is
  // held throughout. Errors: LockForWrite's.
  Status CopyLive(const WriteLimits& limits, std::uint64_t now_ms,
                  const std::function<void(std::uint64_t covered_seq)>& begin,
                  const std::function<void(const RecordView&)>& copy);

  // Verifies every structure of the partition under its lock (repairing first
  // if the previous holder died): see PartitionCheckReport.
  PartitionCheckReport Check(const WriteLimits& limits,
                             std::uint32_t partition_count,
                             std::uint64_t now_ms);

  // Takes the lock if nobody holds it and repairs the partition if its last
  // holder died. Returns true if a repair ran.
  bool RepairIfOwnerDied() noexcept;

  const PartitionState& state() const noexcept { return *p_; }
  const NodeHeader& node() const noexcept { return *node_; }

  // Why this handle's last failed write was kResourceExhausted
  // (process-local; kNone after a write that was not).
  Exhaustion last_exhaustion() const noexcept { return last_exhaustion_; }

  // The futex word of this partition's journal worker (JournalNodeState::
  // wake): a writer that finds the ring full wakes the worker, so that it
  // drains now instead of at its next flush interval. Null: no journal.
  void set_journal_wake(std::atomic<std::uint32_t>* wake) noexcept {
    journal_wake_ = wake;
  }

  // This process's counters (core/stats_layout.h), where a write that waits
  // for ring space adds its wait. Null: not kept (--no-stats).
  void set_process_counters(ProcessCounters* counters) noexcept {
    process_counters_ = counters;
  }

  // This process's read counters for this partition (its bucket in the
  // slot's row, core/stats_layout.h), which Grid's gets count into. Null:
  // not kept (--no-stats).
  void set_read_counters(ReadCounters* counters) noexcept {
    read_counters_ = counters;
  }
  ReadCounters* read_counters() const noexcept { return read_counters_; }

 private:
  friend class PartitionWriter;
  Status LockForWrite(const WriteLimits& limits) noexcept;
  void RepairLocked() noexcept;
  void RepairIntent() noexcept;
  void ClearDeletedRun(std::uint64_t slot_index) noexcept;
  // In journal mode none: journaled_bytes follows change_bytes.
  void MarkOwnBytesJournaled(const WriteLimits& limits) noexcept;
  // Adds a finished ring-space wait (begun if wait_deadline != 0) to this
  // process's counters.
  void CountBackpressure(std::uint64_t wait_deadline,
                         const WriteLimits& limits) noexcept;
  std::uint64_t ReclaimLocked(std::uint64_t max_entries) noexcept;
  std::atomic<std::uint64_t>* slots() const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + p_->index_off);
  }
  RingEntry* ring() const noexcept {
    return reinterpret_cast<RingEntry*>(base_ + p_->ring_off);
  }
  // True if [off, off + len) lies inside the arena.
  bool InArena(std::uint64_t off, std::uint64_t len) const noexcept {
    return off >= node_->arena_off && len <= node_->arena_bytes &&
           off - node_->arena_off <= node_->arena_bytes - len;
  }

  std::byte* base_;
  const NodeHeader* node_;
  PartitionState* p_;
  shm::ProcessTable* procs_;
  // Writes left before this handle retries a reclaim pass that freed
  // nothing. Process-local; touched under the partition lock.
  std::uint32_t reclaim_backoff_ = 0;
  std::atomic<std::uint32_t>* journal_wake_ = nullptr;
  ProcessCounters* process_counters_ = nullptr;  // owned by this process
  ReadCounters* read_counters_ = nullptr;        // owned by this process
  Exhaustion last_exhaustion_ = Exhaustion::kNone;
};

}  // namespace numagrid::core
