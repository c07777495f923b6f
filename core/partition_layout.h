// The shared-memory state of one partition: its index, its change ring, its
// allocator and its write intent, all inside its node's data segment and all
// addressed by offsets from that segment's base. docs/data-segment.md and
// docs/adr/0002-data-path.md explain the design; this file is the format.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shm/robust_mutex.h"

namespace numagrid::core {

// ---------------------------------------------------------------- index slots
// An index slot is one std::atomic<uint64_t>:
//   0                 empty: ends every probe sequence
//   1                 deleted: a removed key; probes continue past it
//   tag << 48 | off   a record at byte offset `off` (< 2^48) of the node's
//                     data segment; `tag` is 16 bits of the key's hash that
//                     the index does not use, so most mismatches cost no
//                     record access.
// Slots are written only by the partition's lock holder; readers load them
// with acquire and never lock.
inline constexpr std::uint64_t kSlotEmpty = 0;
inline constexpr std::uint64_t kSlotDeleted = 1;
inline constexpr std::uint64_t kSlotOffsetMask = (1ULL << 48) - 1;

constexpr std::uint64_t SlotTag(std::uint64_t hash) noexcept {
  return (hash >> 32) & 0xFFFF;  // bits the partition map and index ignore
}
constexpr std::uint64_t MakeSlot(std::uint64_t record_off,
                                 std::uint64_t hash) noexcept {
  return (SlotTag(hash) << 48) | record_off;
}
constexpr bool SlotHoldsRecord(std::uint64_t s) noexcept {
  return s > kSlotDeleted;
}
constexpr std::uint64_t SlotOffset(std::uint64_t s) noexcept {
  return s & kSlotOffsetMask;
}
constexpr std::uint64_t SlotTagOf(std::uint64_t s) noexcept { return s >> 48; }

// ----------------------------------------------------------------- ring entry
// RingEntry::op
inline constexpr std::uint32_t kOpPut =
    1;  // new_record replaced old_record (or nothing)
inline constexpr std::uint32_t kOpRemove = 2;  // old_record was removed

// One change, in the partition's change ring at index seq % capacity.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a half-written entry at index next_seq % capacity.
//   Detected by: it lies at or beyond next_seq, so no consumer reads it.
//   Repaired by: nobody needs to: the next change overwrites it; a change
//     whose index slot was already published is rolled forward by the
//     partition repair, which completes the entry and advances next_seq.
//   Holds in every reachable state: entries in [reclaimed_seq, next_seq) are
//     complete, in sequence order, and name records that are not yet freed.
struct RingEntry {
  std::uint64_t seq;  // the change's sequence number (= new record's version)
  std::uint64_t new_record_off;  // kOpPut: the record published; else 0
  std::uint64_t old_record_off;  // the record replaced or removed; 0 if none
  std::uint64_t retire_epoch;    // 0 until reclamation stamps it (an epoch read
                                 // after the unlink)
  std::uint32_t op;              // kOp*
  // The low 32 bits of the writer's coarse wall clock (NowMs) when the
  // change was made, for the journal-lag measurement; 0: unknown (a repair
  // roll-forward, a recovery restore, or a grid created with --no-stats).
  std::uint32_t visible_ms;
};
static_assert(std::is_standard_layout_v<RingEntry>);
static_assert(std::is_trivially_copyable_v<RingEntry>);
static_assert(sizeof(RingEntry) == 40);

// ------------------------------------------------------------- write intent
inline constexpr std::uint32_t kMaxUndo = 48;
inline constexpr std::uint64_t kIntentIdle = 0;
inline constexpr std::uint64_t kIntentActive = 1;
inline constexpr std::uint64_t kNoSlot = ~0ULL;

// One word changed by the current operation: at `off` (from the data
// segment's base) the value went from `old_value` to `new_value`. Undo puts
// `old_value` back only if the word still holds `new_value`, so an entry
// logged just before its store (the store never happened) undoes nothing.
struct UndoEntry {
  std::uint64_t off;
  std::uint64_t old_value;
  std::uint64_t new_value;
};
static_assert(sizeof(UndoEntry) == 24);

// What the partition's lock holder is doing, so that whoever takes the lock
// after the holder died can finish or undo it.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: state == kIntentActive with some of the undo-logged words
//     changed, and the index slot published or not.
//   Detected by: the robust partition lock (EOWNERDEAD at the next lock or
//     try-lock; `numagrid check --repair` try-locks every partition).
//   Repaired by: RepairPartition (core/partition_repair.cc), under the lock:
//     if slot_index holds new_slot the change is visible, so it rolls forward
//     (completes the ring entry, advances next_seq); otherwise it undoes the
//     log in reverse. At once, by the next locker.
//   Holds in every reachable state: every word the operation changed before
//     its commit store is in the log before it is changed.
struct WriteIntent {
  std::uint64_t state;  // kIntent*
  std::uint64_t
      slot_index;  // the index slot stored at the commit point, or kNoSlot
  std::uint64_t new_slot;  // the value stored there
  std::uint64_t seq;       // the change's sequence number
  std::uint64_t undo_len;
  // PartitionCounters::change_bytes as the operation leaves it, stored
  // before the commit point (0: this operation does not change it; reset
  // by every PartitionTx start). The counter itself is stored after the
  // commit, off the undo log (one word in this line, which the commit
  // writes anyway, instead of an undo entry); a repair that rolls the
  // change forward stores this value, so the counter matches the ring
  // whichever instruction the writer died at.
  std::uint64_t change_bytes_after;
  std::uint64_t reserved[2];
  UndoEntry undo[kMaxUndo];
};
static_assert(std::is_standard_layout_v<WriteIntent>);

// ------------------------------------------------------------ partition state
inline constexpr std::uint32_t kSmallClasses = 112;  // classes up to 256 KiB

// Counters: written (relaxed) by the lock holder only; read racily by stats
// and tests, where a value one change old is fine. The lock holder's own
// reads are ordered by the lock.
struct PartitionCounters {
  std::atomic<std::uint64_t> live_entries;
  std::atomic<std::uint64_t> deleted_slots;  // index slots holding kSlotDeleted
  std::atomic<std::uint64_t> live_bytes;     // blocks of records in the index
  std::atomic<std::uint64_t>
      retired_bytes;  // blocks named by ring entries, not yet freed
  std::atomic<std::uint64_t> free_bytes;   // blocks on the free lists
  std::atomic<std::uint64_t> waste_bytes;  // chunk tails too small for a block
  std::atomic<std::uint64_t> chunk_bytes;  // chunks this partition owns
  std::atomic<std::uint64_t> puts;
  std::atomic<std::uint64_t> removes;
  // Monitoring (docs/monitoring.md); not kept with `create --no-stats`.
  // cas_failures: compare-and-set and remove-if-version refused for a
  //   version mismatch. Stored after the decision, not undo-logged: the
  //   write changes nothing else, so a holder killed around the store
  //   leaves the count right or one short.
  std::atomic<std::uint64_t> cas_failures;
  // change_bytes: key + value bytes of every change entered in the ring,
  //   stored just after the change's commit point and completed by the
  //   repair's roll-forward (WriteIntent::change_bytes_after), so that it
  //   matches the ring exactly; PartitionState::journaled_bytes is its
  //   journaled counterpart.
  std::atomic<std::uint64_t> change_bytes;
  // ring_high_water: the most entries the change ring has held (next_seq -
  //   reclaimed_seq after a write). Not undo-logged: a high-water mark that
  //   counts an undone change is one entry high, which a report tolerates.
  std::atomic<std::uint64_t> ring_high_water;
  // evictions: entries removed by eviction (WriteKind::kEvict), undo-logged
  //   with the eviction like removes, so it is exact.
  std::atomic<std::uint64_t> evictions;
  // expirations: expired entries the journal worker's sweep removed
  //   (WriteKind::kRemoveExpired), undo-logged like removes.
  std::atomic<std::uint64_t> expirations;
};

// Crash safety (a process may die at any instruction):
//   Leaves behind: the lock held by a dead process with an active intent
//     (see WriteIntent); counters and allocator words that the intent's undo
//     log restores.
//   Detected by: the robust lock's EOWNERDEAD.
//   Repaired by: RepairPartition, run by the next locker, at once.
//   Holds in every reachable state: readers see a consistent index (every
//     slot is empty, deleted, or names a complete record of this partition).
struct alignas(64) PartitionState {
  // Cache line 0: the writers' lock.
  shm::RobustMutex lock;
  std::uint8_t pad0[64 - sizeof(shm::RobustMutex)];

  // Cache line 1: constant after create; read by everyone.
  std::uint32_t partition_id;
  std::uint32_t node_id;
  std::uint64_t index_off;      // std::atomic<uint64_t>[index_mask + 1]
  std::uint64_t index_mask;     // slots - 1 (a power of two minus one)
  std::uint64_t ring_off;       // RingEntry[ring_capacity]
  std::uint64_t ring_capacity;  // a power of two
  std::uint64_t reserved1[3];

  // Cache line 2: ring cursors.
  // next_seq: the next sequence number; changes < next_seq are complete.
  //   Stored with release by the lock holder after the change's ring entry
  //   is written; a consumer loads it with acquire and then reads entries.
  std::atomic<std::uint64_t> next_seq;
  // journaled_seq: changes < journaled_seq are durable (written by the
  //   journal consumer; with no journal, by the writer itself).
  std::atomic<std::uint64_t> journaled_seq;
  // reclaimed_seq: entries < reclaimed_seq have had their old records freed;
  //   written under the lock only.
  std::atomic<std::uint64_t> reclaimed_seq;
  // stamped_seq: entries below it carry a retire epoch; written under the
  //   lock only, and not undo-logged: a stamp is conservative whenever it is
  //   written, so a holder that dies mid-stamp leaves nothing to repair.
  std::atomic<std::uint64_t> stamped_seq;
  // journaled_bytes: key + value bytes of the changes below journaled_seq
  //   (PartitionCounters::change_bytes of those changes); written with
  //   journaled_seq, by the same writer, relaxed (a report: the lag in bytes
  //   is change_bytes - journaled_bytes, clamped at 0 when the two are read
  //   a change apart).
  std::atomic<std::uint64_t> journaled_bytes;
  std::uint64_t reserved2[3];

  // Cache lines 3-4: counters.
  PartitionCounters counters;
  std::uint64_t reserved3[2];

  // Allocator (guarded by lock; every change undo-logged).
  std::atomic<std::uint64_t> cur_chunk_off;   // chunk being carved, 0 if none
  std::atomic<std::uint64_t> cur_chunk_used;  // bytes carved from it
  std::atomic<std::uint64_t>
      free_head[kSmallClasses];  // block offsets, 0 = empty

  // The operation in progress (guarded by lock).
  WriteIntent intent;
};
static_assert(std::is_standard_layout_v<PartitionState>);
static_assert(offsetof(PartitionState, partition_id) == 64);
static_assert(offsetof(PartitionState, next_seq) == 128);
static_assert(offsetof(PartitionState, counters) == 192);
static_assert(offsetof(PartitionState, cur_chunk_off) == 320);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// ------------------------------------------------------------ chunk owners
// Each node's arena is cut into chunks of NodeHeader::chunk_bytes. The owner
// word of chunk i (std::atomic<uint64_t>[chunk_count] at chunk_table_off):
//   0                                   free
//   (slot_in_node + 1)                  carved into small blocks by that
//   partition (slot_in_node + 1) | kChunkLarge | run << 32
//                                       first chunk of a large block of `run`
//                                       chunks
//   (slot_in_node + 1) | kChunkLargeTail  a later chunk of such a block
//   (slot_in_node + 1) | kChunkReleasing  being given back by that partition
// A partition claims a free chunk with a CAS from 0, under its own lock and
// after logging the claim, so a claim by a dead holder is undone (the owner
// word still holds its value) and a claim that lost the race undoes nothing.
// It gives chunks back in two steps: before its commit point it marks them
// kChunkReleasing (undo-logged; nobody else claims a marked chunk), after it
// stores 0. A holder that dies between the two leaves marked chunks, which
// the partition repair sweeps back to 0.
//
// Chunk fill (std::atomic<uint64_t>[chunk_count] at NodeHeader::
// chunk_fill_off): of a chunk carved into small blocks, the bytes of its
// blocks handed out (live records, retired records awaiting reclamation,
// and a block an operation in progress allocated). Its other bytes are on
// the owner's free lists or counted in the owner's waste (the tail left
// when it stopped being the current chunk, and free blocks taken off the
// lists to give it back). 0 for a free chunk and for a large block's.
// Changed only by the owner's lock holder, through the undo log, with the
// allocation or free that changes it; read relaxed by that lock holder and
// by `check` under the same lock.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a fill changed by an operation that had not committed.
//   Detected by: the owner's robust lock (its intent is active).
//   Repaired by: the partition repair's undo, with the allocation or free
//     it belongs to, at once, by the next locker.
//   Holds in every reachable state: the fill of a chunk is the sum of the
//     blocks in it that a record of the index or the ring names (check
//     verifies it); a chunk whose fill is 0 holds no record, so its owner
//     may give it back after taking its free blocks off the lists
//     (PartitionAlloc::ReleaseEmptyChunks); the current chunk too, in the
//     same operation that stops it being current and counts its tail as
//     waste.
inline constexpr std::uint64_t kChunkReleasing = 1ULL << 29;
inline constexpr std::uint64_t kChunkLarge = 1ULL << 30;
inline constexpr std::uint64_t kChunkLargeTail = 1ULL << 31;
inline constexpr std::uint64_t kChunkOwnerMask = kChunkReleasing - 1;

}  // namespace numagrid::core
