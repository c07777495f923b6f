// Partition repair after a lock holder died, reclamation of replaced and
// removed records, and the change consumer.
#include <algorithm>
#include <atomic>

#include "core/partition.h"
#include "core/partition_alloc.h"
#include "core/partition_tx.h"
#include "shm/process_table.h"

namespace numagrid::core {

void UndoIntent(std::byte* segment_base, PartitionState* p) noexcept {
  WriteIntent& in = p->intent;
  std::uint64_t n = std::atomic_ref<std::uint64_t>(in.undo_len)
                        .load(std::memory_order_acquire);
  if (n > kMaxUndo) n = kMaxUndo;  // bad bytes: undo what the log can hold
  while (n > 0) {
    const UndoEntry& u = in.undo[--n];
    auto* word =
        reinterpret_cast<std::atomic<std::uint64_t>*>(segment_base + u.off);
    std::uint64_t expected = u.new_value;
    // A CAS, because chunk owner words are shared with other partitions: put
    // the old value back only if the word still holds what we wrote.
    // acq_rel: as for the claim in PartitionTx::CasClaim.
    word->compare_exchange_strong(expected, u.old_value,
                                  std::memory_order_acq_rel);
  }
}

void PartitionTx::Abort() noexcept {
  UndoIntent(base_, p_);
  Finish();
}

void PartitionRef::RepairLocked() noexcept {
  RepairIntent();
  // Chunks a committed reclaim had marked but not yet given back.
  PartitionAlloc(base_, node_, p_).SweepMarked();
}

void PartitionRef::RepairIntent() noexcept {
  WriteIntent& in = p_->intent;
  // acquire: pairs with the release stores of state in PartitionTx.
  if (std::atomic_ref<std::uint64_t>(in.state).load(
          std::memory_order_acquire) != kIntentActive) {
    return;
  }
  const bool published =
      in.slot_index != kNoSlot && in.slot_index <= p_->index_mask &&
      slots()[in.slot_index].load(std::memory_order_relaxed) == in.new_slot;
  if (published) {
    // Readers may have seen the change: finish it. Its undo log is moot, and
    // its ring entry is complete (retire epochs are stamped by reclamation).
    if (p_->next_seq.load(std::memory_order_relaxed) <= in.seq) {
      // release: publishes the completed entry, as in Write.
      p_->next_seq.store(in.seq + 1, std::memory_order_release);
    }
    // The writer stores the counter after its commit point; it may have
    // died first. Idempotent. relaxed: under the lock; a report.
    if (in.change_bytes_after != 0) {
      p_->counters.change_bytes.store(in.change_bytes_after,
                                      std::memory_order_relaxed);
    }
  } else {
    UndoIntent(base_, p_);
  }
  std::atomic_ref<std::uint64_t>(in.undo_len)
      .store(0, std::memory_order_release);
  std::atomic_ref<std::uint64_t>(in.state).store(kIntentIdle,
                                                 std::memory_order_release);
}

bool PartitionRef::RepairIfOwnerDied() noexcept {
  switch (p_->lock.TryLock()) {
    case shm::LockResult::kAcquiredOwnerDied:
      RepairLocked();
      p_->lock.MarkConsistent();
      p_->lock.Unlock();
      return true;
    case shm::LockResult::kAcquired:
      p_->lock.Unlock();
      return false;
    default:
      return false;
  }
}

std::uint64_t PartitionRef::ReclaimLocked(std::uint64_t max_entries) noexcept {
  // acquire: pairs with the consumer's release store of journaled_seq; the
  // consumer is done reading the records of entries below it.
  const std::uint64_t journaled =
      p_->journaled_seq.load(std::memory_order_acquire);
  std::uint64_t r = p_->reclaimed_seq.load(std::memory_order_relaxed);
  if (r >= journaled) return 0;
  const std::uint64_t mask = p_->ring_capacity - 1;
  // Stamp the entries not stamped yet with the epoch now. Their records were
  // unlinked before (each by a holder of this lock, which we now hold), and
  // GlobalEpoch() begins with a seq_cst fence, so this is the "epoch read
  // after the unlink" of the reclamation argument; stamping later than the
  // unlink only delays the free.
  // relaxed: stamped_seq is written only under the lock we hold.
  const std::uint64_t stamped =
      std::max(r, p_->stamped_seq.load(std::memory_order_relaxed));
  if (stamped < journaled) {
    const std::uint64_t now = procs_->GlobalEpoch();
    for (std::uint64_t q = stamped; q < journaled; ++q) {
      RingEntry& e = ring()[q & mask];
      if (e.retire_epoch == 0) e.retire_epoch = now;
    }
    p_->stamped_seq.store(journaled, std::memory_order_relaxed);
    // Readers that pin from now on pin a newer epoch than every stamp, or
    // nothing could ever be freed.
    procs_->AdvanceEpoch();
  }
  // MinPinnedEpoch() begins with a seq_cst fence that pairs with the fence in
  // each reader's pin (shm::ProcessTable::Pin).
  const std::uint64_t min_pinned = procs_->MinPinnedEpoch();
  PartitionAlloc alloc(base_, node_, p_);
  auto& c = p_->counters;
  std::uint64_t done = 0;
  while (r < journaled && done < max_entries) {
    const RingEntry& e = ring()[r & mask];
    if (e.retire_epoch >= min_pinned) break;
    PartitionTx tx(base_, p_);
    PartitionAlloc::PendingRelease pending;
    if (e.old_record_off != 0) {
      const std::uint64_t bytes = RecordView(base_ + e.old_record_off).bytes();
      if (!alloc.Free(tx, e.old_record_off, bytes, &pending)) {
        tx.Abort();
        break;
      }
      tx.Set(c.retired_bytes, c.retired_bytes.load(std::memory_order_relaxed) -
                                  BlockBytes(*node_, bytes));
    }
    tx.Set(p_->reclaimed_seq, r + 1);
    tx.Finish();  // committed: from here on the free must complete
    alloc.ReleaseMarked(pending);
    ++r;
    ++done;
  }
  return done;
}

Result<std::uint64_t> PartitionRef::ReleaseEmptyChunks(
    const WriteLimits& limits, bool wait) noexcept {
  if (wait) {
    NUMAGRID_RETURN_IF_ERROR(LockForWrite(limits));
  } else {
    switch (p_->lock.TryLock()) {
      case shm::LockResult::kAcquired:
        break;
      case shm::LockResult::kAcquiredOwnerDied:
        RepairLocked();
        p_->lock.MarkConsistent();
        break;
      default:
        return std::uint64_t{0};  // busy (or unrecoverable: a writer says)
    }
  }
  ReclaimLocked(p_->ring_capacity);
  const std::uint64_t n =
      PartitionAlloc(base_, node_, p_).ReleaseAllEmptyChunks();
  p_->lock.Unlock();
  return n;
}

Result<std::uint64_t> PartitionRef::Reclaim(const WriteLimits& limits,
                                            bool wait) noexcept {
  if (wait) {
    NUMAGRID_RETURN_IF_ERROR(LockForWrite(limits));
  } else {
    switch (p_->lock.TryLock()) {
      case shm::LockResult::kAcquired:
        break;
      case shm::LockResult::kAcquiredOwnerDied:
        RepairLocked();
        p_->lock.MarkConsistent();
        break;
      default:
        return std::uint64_t{0};  // busy (or unrecoverable: a writer says)
    }
  }
  const std::uint64_t n = ReclaimLocked(p_->ring_capacity);
  p_->lock.Unlock();
  return n;
}

std::uint64_t PartitionRef::ReadChanges(
    std::uint64_t from,
    const std::function<bool(const ChangeView&)>& consume) const {
  // acquire: pairs with the writer's release store of next_seq; entries
  // below it are complete.
  const std::uint64_t next = p_->next_seq.load(std::memory_order_acquire);
  const std::uint64_t mask = p_->ring_capacity - 1;
  std::uint64_t j = from;
  for (; j < next; ++j) {
    const RingEntry& e = ring()[j & mask];
    ChangeView v{e.seq, e.seq, e.op, {}, {}, 0, e.visible_ms};
    if (e.op == kOpPut) {
      RecordView r(base_ + e.new_record_off);
      v.version = r.version();
      v.key = r.key();
      v.value = r.value();
      v.expire_at_ms = r.expire_at_ms();
    } else {
      v.key = RecordView(base_ + e.old_record_off).key();
    }
    if (!consume(v)) break;
  }
  return j;
}

void PartitionRef::MarkJournaled(std::uint64_t upto,
                                 std::uint64_t bytes) noexcept {
  // relaxed: a counter for reports (see PartitionState::journaled_bytes);
  // only this consumer writes it.
  if (bytes != 0) BumpOwned(p_->journaled_bytes, bytes);
  // release: the journal bytes are durable before this store; a writer that
  // loads journaled_seq with acquire and sees it past its change may report
  // that change durable, and ReclaimLocked (which loads it with acquire) may
  // free the records the changes replaced.
  p_->journaled_seq.store(upto, std::memory_order_release);
}

Status PartitionRef::ResetSequence(std::uint64_t next_seq) noexcept {
  const std::uint64_t cur = p_->next_seq.load(std::memory_order_relaxed);
  ReclaimLocked(p_->ring_capacity);
  if (p_->reclaimed_seq.load(std::memory_order_relaxed) != cur) {
    return Panic("partition " + std::to_string(p_->partition_id) +
                 ": replaced records still pinned during recovery");
  }
  if (next_seq < cur) {
    return InvalidArgument("cannot move partition " +
                           std::to_string(p_->partition_id) +
                           "'s sequence back from " + std::to_string(cur) +
                           " to " + std::to_string(next_seq));
  }
  // The ring holds nothing that still needs freeing; every cursor moves
  // together. Relaxed stores
  // suffice: nobody else is attached, and the grid is published to other
  // processes afterwards by the release store of the recovery state.
  p_->stamped_seq.store(next_seq, std::memory_order_relaxed);
  p_->reclaimed_seq.store(next_seq, std::memory_order_relaxed);
  p_->journaled_seq.store(next_seq, std::memory_order_relaxed);
  p_->journaled_bytes.store(
      p_->counters.change_bytes.load(std::memory_order_relaxed),
      std::memory_order_relaxed);
  p_->next_seq.store(next_seq, std::memory_order_relaxed);
  return Status::Ok();
}

Status PartitionRef::CopyLive(
    const WriteLimits& limits, std::uint64_t now_ms,
    const std::function<void(std::uint64_t)>& begin,
    const std::function<void(const RecordView&)>& copy) {
  NUMAGRID_RETURN_IF_ERROR(LockForWrite(limits));
  // relaxed: next_seq and the slots change only under the lock we hold.
  begin(p_->next_seq.load(std::memory_order_relaxed));
  const std::atomic<std::uint64_t>* s = slots();
  for (std::uint64_t i = 0; i <= p_->index_mask; ++i) {
    const std::uint64_t v = s[i].load(std::memory_order_relaxed);
    if (v == kSlotEmpty || v == kSlotDeleted) continue;
    if (!InArena(SlotOffset(v), sizeof(RecordHeader))) continue;
    const RecordView r(base_ + SlotOffset(v));
    if (r.ExpiredAt(now_ms)) continue;
    copy(r);
  }
  p_->lock.Unlock();
  return Status::Ok();
}

}  // namespace numagrid::core
