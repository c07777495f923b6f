// PartitionTx: the undo log of one operation on a partition, kept in the
// partition's WriteIntent so that whoever takes the lock after a holder died
// can put every changed word back (core/partition_repair.cc).
//
// Thread safety: used only by the holder of the partition's lock.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: an active intent whose log holds every word changed so
//     far (each entry is complete before it counts, and before its word
//     changes), possibly one more entry whose store never ran.
//   Detected by: the partition's robust lock.
//   Repaired by: UndoIntent, or roll-forward when the commit store happened
//     (core/partition_repair.cc), at once.
//   Holds in every reachable state: undoing the log newest first restores
//     every word the operation changed and touches no other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/base/check.h"
#include "core/partition_layout.h"

namespace numagrid::core {

class PartitionTx {
 public:
  // Starts an operation. REQUIRES: the partition lock is held and the intent
  // is idle.
  PartitionTx(std::byte* segment_base, PartitionState* p) noexcept
      : base_(segment_base), p_(p) {
    Restart();
  }

  // Begins again after Abort() or Finish(), as a new operation.
  void Restart() noexcept {
    NUMAGRID_DCHECK(p_->intent.state == kIntentIdle);
    p_->intent.undo_len = 0;
    p_->intent.slot_index = kNoSlot;
    // A value no index slot ever holds (a record offset is below 2^48 and
    // 16-byte aligned). Not 0, which is kSlotEmpty: a writer killed between
    // PrepareCommit's two stores, putting a new key into an empty slot,
    // would leave slot_index naming a slot that holds exactly new_slot, and
    // the repair would roll forward a change nobody can see.
    p_->intent.new_slot = kNoSlot;
    p_->intent.change_bytes_after = 0;
    p_->intent.seq = p_->next_seq.load(std::memory_order_relaxed);
    // release: the fields above are in memory before the intent counts as
    // active, for a repairer that reads them after this process died (a
    // stale slot_index would make it roll an old change forward).
    std::atomic_ref<std::uint64_t>(p_->intent.state)
        .store(kIntentActive, std::memory_order_release);
  }

  // Changes `word` (a word of this data segment) to `value`, logging it first.
  // Only the lock holder writes these words; readers outside the lock are
  // stats, which tolerate a stale value. Returns false, changing nothing,
  // when the log is full (the caller fails the operation).
  bool Set(std::atomic<std::uint64_t>& word, std::uint64_t value) noexcept {
    const std::uint64_t old = word.load(std::memory_order_relaxed);
    if (!Log(&word, old, value)) return false;
    // release: orders the undo entry written by Log() before the change, for
    // a repairer that reads this memory after this process died.
    word.store(value, std::memory_order_release);
    return true;
  }

  // Claims an owner word with a CAS from `expected` to `value`, logging the
  // claim first so that a claim that happened is undone and one that lost
  // the race (the word holds another value) is not.
  bool CasClaim(std::atomic<std::uint64_t>& word, std::uint64_t expected,
                std::uint64_t value) noexcept {
    if (!Log(&word, expected, value)) return false;
    // acq_rel: the acquire pairs with the release store of 0 in
    // PartitionAlloc::ReleaseMarked, so the previous owner's last reads of
    // the chunk happen before we write it; the release publishes our claim.
    if (word.compare_exchange_strong(expected, value,
                                     std::memory_order_acq_rel)) {
      return true;
    }
    // It did not happen: drop the entry (undoing it would be a no-op anyway,
    // since the word does not hold `value`).
    std::atomic_ref<std::uint64_t>(p_->intent.undo_len)
        .store(p_->intent.undo_len - 1, std::memory_order_relaxed);
    return false;
  }

  // The change's commit point: after this store readers see the change. Set
  // `slot_index`/`new_slot` first so that repair can tell whether it happened.
  void PrepareCommit(std::uint64_t slot_index,
                     std::uint64_t new_slot) noexcept {
    p_->intent.slot_index = slot_index;
    p_->intent.new_slot = new_slot;
  }

  std::uint64_t seq() const noexcept { return p_->intent.seq; }
  std::uint32_t room() const noexcept {
    return kMaxUndo - static_cast<std::uint32_t>(p_->intent.undo_len);
  }

  // Ends the operation: nothing is to be undone any more.
  // release (both stores): every change of the operation, its commit store
  // included, is in memory before the log is emptied; otherwise a death in
  // between would leave uncommitted changes that nothing undoes.
  void Finish() noexcept {
    std::atomic_ref<std::uint64_t>(p_->intent.undo_len)
        .store(0, std::memory_order_release);
    std::atomic_ref<std::uint64_t>(p_->intent.state)
        .store(kIntentIdle, std::memory_order_release);
  }

  // Undoes every logged change, newest first, and ends the operation.
  void Abort() noexcept;

 private:
  bool Log(std::atomic<std::uint64_t>* word, std::uint64_t old,
           std::uint64_t value) noexcept {
    WriteIntent& in = p_->intent;
    if (in.undo_len >= kMaxUndo) return false;
    in.undo[in.undo_len] = UndoEntry{
        static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(word) - base_),
        old, value};
    // release: the entry must be in memory before it counts, for a repairer
    // that reads the log after this process died.
    std::atomic_ref<std::uint64_t>(in.undo_len)
        .store(in.undo_len + 1, std::memory_order_release);
    return true;
  }

  std::byte* base_;
  PartitionState* p_;
};

// Undoes the log of `p`'s intent, newest first (each entry only if its word
// still holds the logged new value). Used by PartitionTx::Abort and by repair.
void UndoIntent(std::byte* segment_base, PartitionState* p) noexcept;

}  // namespace numagrid::core
