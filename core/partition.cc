// PartitionRef: lookups, scans and writes. Repair, reclamation and the change
// consumer are in partition_repair.cc; the checker in partition_check.cc.
//
// Orderings: under the partition lock, words only the lock holder writes
// (counters, cursors, allocator state, index slots when probing) are loaded
// relaxed, because the lock orders them. The stores others read without the
// lock (index slots, next_seq, journaled_seq) say what they publish.
#include "core/partition.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "core/base/check.h"
#include "core/partition_alloc.h"
#include "core/partition_tx.h"
#include "core/record_access.h"
#include "shm/futex.h"
#include "shm/robust_mutex.h"

namespace numagrid::core {
namespace {

std::uint64_t MonotonicNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Ring entries a write reclaims in passing.
constexpr std::uint64_t kReclaimBatch = 64;
constexpr std::uint32_t kReclaimBackoff = 32;

// Where a key is, or where it would go, in a partition's index.
struct Probe {
  std::uint64_t found_slot = kNoSlot;  // slot holding the key's record
  std::uint64_t found_value = 0;
  std::uint64_t insert_slot = kNoSlot;  // first deleted or empty slot seen
  bool hit_empty = false;               // the probe ended at an empty slot
};

}  // namespace

std::uint64_t NowMs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void PartitionRef::ClearDeletedRun(std::uint64_t slot_index) noexcept {
  // A deleted slot followed by an empty one ends no probe that could reach
  // further (no record lies past an empty slot of its probe sequence), so it
  // can become empty, and so can the deleted slots before it. Readers are
  // unaffected: they would have stopped at the next empty slot anyway.
  std::atomic<std::uint64_t>* s = slots();
  const std::uint64_t mask = p_->index_mask;
  auto& deleted = p_->counters.deleted_slots;
  PartitionTx tx(base_, p_);
  std::uint64_t j = slot_index;
  for (std::uint32_t n = 0; n < kMaxUndo / 2 - 1; ++n, j = (j - 1) & mask) {
    if (s[j].load(std::memory_order_relaxed) != kSlotDeleted) break;
    if (!tx.Set(s[j], kSlotEmpty) ||
        !tx.Set(deleted, deleted.load(std::memory_order_relaxed) - 1)) {
      break;
    }
  }
  tx.Finish();
}

Status PartitionRef::Initialize(PartitionState* state) noexcept {
  const int rc = state->lock.Initialize();
  if (rc != 0) {
    return IoError("pthread_mutex_init of partition " +
                   std::to_string(state->partition_id) + ": " +
                   std::strerror(rc));
  }
  return Status::Ok();
}

Result<RecordView> PartitionRef::Find(std::string_view key, std::uint64_t hash,
                                      std::uint64_t now_ms) const noexcept {
  const std::atomic<std::uint64_t>* s = slots();
  const std::uint64_t mask = p_->index_mask;
  const std::uint64_t tag = SlotTag(hash);
  std::uint64_t i = hash & mask;
  for (std::uint64_t n = 0; n <= mask; ++n, i = (i + 1) & mask) {
    // acquire: pairs with the writer's release store of the slot, which
    // publishes the record's bytes written before it.
    const std::uint64_t v = s[i].load(std::memory_order_acquire);
    if (v == kSlotEmpty) break;
    if (!SlotHoldsRecord(v) || SlotTagOf(v) != tag) continue;
    const std::uint64_t off = SlotOffset(v);
    if (!InArena(off, sizeof(RecordHeader))) {
      return Corruption("partition " + std::to_string(p_->partition_id) +
                        ": index slot " + std::to_string(i) + " names offset " +
                        std::to_string(off) + " outside the arena");
    }
    // The value usually starts in the record's second cache line: fetch it
    // while the first one (header and key) is being compared.
    __builtin_prefetch(base_ + off + 64);
    RecordView r(base_ + off);
    if (r.header().key_len != key.size() ||
        std::memcmp(r.key().data(), key.data(), key.size()) != 0) {
      continue;
    }
    if (r.has_expiry() && r.ExpiredAt(now_ms != 0 ? now_ms : NowMs())) break;
    return r;
  }
  return NotFound("key not found");
}

std::uint64_t PartitionRef::ScanExpired(
    std::uint64_t from_slot, std::uint64_t max_slots, std::uint64_t now_ms,
    std::uint64_t max_idle_ms,
    const std::function<void(const RecordView&)>& visit) const {
  const std::atomic<std::uint64_t>* s = slots();
  const std::uint64_t mask = p_->index_mask;
  std::uint64_t i = from_slot & mask;
  for (std::uint64_t n = 0; n < max_slots && n <= mask;
       ++n, i = (i + 1) & mask) {
    // acquire: as in Find.
    const std::uint64_t v = s[i].load(std::memory_order_acquire);
    if (!SlotHoldsRecord(v)) continue;
    const std::uint64_t off = SlotOffset(v);
    if (!InArena(off, sizeof(RecordHeader))) continue;  // Check reports it
    const RecordView r(base_ + off);
    if (r.ExpiredAt(now_ms) ||
        IdleExpired(r.access().load(std::memory_order_relaxed), now_ms,
                    max_idle_ms)) {
      visit(r);
    }
  }
  return i;
}

bool PartitionRef::RecordBeforeEmpty(std::uint64_t* slot,
                                     std::uint64_t max_slots,
                                     RecordView* record) const noexcept {
  const std::atomic<std::uint64_t>* s = slots();
  const std::uint64_t mask = p_->index_mask;
  std::uint64_t i = *slot & mask;
  for (std::uint64_t n = 0; n < max_slots && n <= mask;
       ++n, i = (i + 1) & mask) {
    // relaxed: only a hint of where a run ends; the record itself is
    // loaded with acquire below.
    if (s[i].load(std::memory_order_relaxed) != kSlotEmpty) continue;
    const std::uint64_t before = (i - 1) & mask;
    std::uint64_t found = before;
    if (!RecordAtOrAfter(&found, 1, record)) return false;
    *slot = found;
    return true;
  }
  return false;
}

bool PartitionRef::VisitLeastFilledChunk(
    const std::function<void(const RecordView&)>& visit) const {
  const PartitionAlloc alloc(base_, node_, p_);
  const std::uint64_t tag = alloc.owner_tag();
  // relaxed (all three): a hint; a value one change old picks a chunk that
  // is nearly as good.
  const std::uint64_t cur = p_->cur_chunk_off.load(std::memory_order_relaxed);
  std::uint64_t best = node_->chunk_count;
  std::uint64_t best_fill = ~0ULL;
  for (std::uint64_t i = 0; i < node_->chunk_count; ++i) {
    if (alloc.owners()[i].load(std::memory_order_relaxed) != tag) continue;
    if (node_->arena_off + i * node_->chunk_bytes == cur) continue;
    const std::uint64_t f = alloc.fills()[i].load(std::memory_order_relaxed);
    if (f != 0 && f < best_fill) {
      best = i;
      best_fill = f;
    }
  }
  if (best == node_->chunk_count) return false;
  const std::uint64_t first = node_->arena_off + best * node_->chunk_bytes;
  const std::atomic<std::uint64_t>* s = slots();
  for (std::uint64_t i = 0; i <= p_->index_mask; ++i) {
    // acquire: as in Find.
    const std::uint64_t v = s[i].load(std::memory_order_acquire);
    if (!SlotHoldsRecord(v)) continue;
    const std::uint64_t off = SlotOffset(v);
    if (off < first || off - first >= node_->chunk_bytes) continue;
    if (!InArena(off, sizeof(RecordHeader))) continue;  // Check reports it
    visit(RecordView(base_ + off));
  }
  return true;
}

void PartitionRef::VisitChunkRun(
    std::uint64_t first_chunk, std::uint64_t chunks,
    const std::function<void(const RecordView&)>& visit) const {
  const PartitionAlloc alloc(base_, node_, p_);
  const std::uint64_t n = node_->chunk_count;
  if (first_chunk >= n || chunks == 0) return;
  const std::uint64_t end_chunk = std::min(n, first_chunk + chunks);
  // A large block whose first chunk lies before the run but reaches into
  // it: its record starts in that first chunk. relaxed: a hint.
  std::uint64_t from = first_chunk;
  while (from > 0 && (alloc.owners()[from].load(std::memory_order_relaxed) &
                      kChunkLargeTail) != 0) {
    --from;
  }
  const std::uint64_t lo = node_->arena_off + from * node_->chunk_bytes;
  const std::uint64_t hi = node_->arena_off + end_chunk * node_->chunk_bytes;
  const std::atomic<std::uint64_t>* s = slots();
  for (std::uint64_t i = 0; i <= p_->index_mask; ++i) {
    // acquire: as in Find.
    const std::uint64_t v = s[i].load(std::memory_order_acquire);
    if (!SlotHoldsRecord(v)) continue;
    const std::uint64_t off = SlotOffset(v);
    if (off < lo || off >= hi) continue;
    if (!InArena(off, sizeof(RecordHeader))) continue;  // Check reports it
    visit(RecordView(base_ + off));
  }
}

const std::atomic<std::uint64_t>* PartitionRef::chunk_owners() const noexcept {
  return PartitionAlloc(base_, node_, p_).owners();
}

const std::atomic<std::uint64_t>* PartitionRef::chunk_fills() const noexcept {
  return PartitionAlloc(base_, node_, p_).fills();
}

std::uint64_t PartitionRef::owner_tag() const noexcept {
  return PartitionAlloc(base_, node_, p_).owner_tag();
}

bool PartitionRef::RecordAtOrAfter(std::uint64_t* slot, std::uint64_t max_slots,
                                   RecordView* record) const noexcept {
  const std::atomic<std::uint64_t>* s = slots();
  const std::uint64_t mask = p_->index_mask;
  std::uint64_t i = *slot & mask;
  for (std::uint64_t n = 0; n < max_slots && n <= mask;
       ++n, i = (i + 1) & mask) {
    // acquire: as in Find.
    const std::uint64_t v = s[i].load(std::memory_order_acquire);
    if (!SlotHoldsRecord(v)) continue;
    const std::uint64_t off = SlotOffset(v);
    if (!InArena(off, sizeof(RecordHeader))) continue;  // Check reports it
    *slot = i;
    *record = RecordView(base_ + off);
    return true;
  }
  return false;
}

void PartitionRef::Scan(const std::function<bool(const RecordView&)>& visit,
                        std::uint64_t now_ms) const {
  const std::atomic<std::uint64_t>* s = slots();
  for (std::uint64_t i = 0; i <= p_->index_mask; ++i) {
    // acquire: as in Find.
    const std::uint64_t v = s[i].load(std::memory_order_acquire);
    if (!SlotHoldsRecord(v)) continue;
    const std::uint64_t off = SlotOffset(v);
    if (!InArena(off, sizeof(RecordHeader))) continue;  // Check reports it
    RecordView r(base_ + off);
    if (r.has_expiry() && r.ExpiredAt(now_ms != 0 ? now_ms : NowMs())) continue;
    if (!visit(r)) return;
  }
}

Status PartitionRef::LockForWrite(const WriteLimits& limits) noexcept {
  // Uncontended (the common case): no clock read, no timed wait.
  shm::LockResult r = p_->lock.TryLock();
  if (r == shm::LockResult::kTimedOut) {
    r = p_->lock.Lock(shm::MonotonicNowNs() + limits.lock_timeout_ns);
  }
  switch (r) {
    case shm::LockResult::kAcquired:
      return Status::Ok();
    case shm::LockResult::kAcquiredOwnerDied:
      RepairLocked();
      p_->lock.MarkConsistent();
      return Status::Ok();
    case shm::LockResult::kTimedOut:
      return ResourceExhausted(
          "partition " + std::to_string(p_->partition_id) +
          ": another writer held its lock for more than " +
          std::to_string(limits.lock_timeout_ns / 1000000) +
          " ms (a stopped process?)");
    case shm::LockResult::kUnrecoverable:
      break;
  }
  return Panic("partition " + std::to_string(p_->partition_id) +
               ": its lock is unrecoverable");
}

namespace {

// Releases the partition lock when it goes out of scope, if it is held.
class Unlocker {
 public:
  explicit Unlocker(shm::RobustMutex& mu) noexcept : mu_(mu) {}
  Unlocker(const Unlocker&) = delete;
  Unlocker& operator=(const Unlocker&) = delete;
  ~Unlocker() {
    if (held_) mu_.Unlock();
  }
  void Release() noexcept {
    mu_.Unlock();
    held_ = false;
  }
  void Reacquired() noexcept { held_ = true; }

 private:
  shm::RobustMutex& mu_;
  bool held_ = true;
};

}  // namespace

void PartitionRef::MarkOwnBytesJournaled(const WriteLimits& limits) noexcept {
  if (!limits.stats) return;
  // relaxed: both are written only by the lock holder (which we are, in
  // journal mode none, where the writer is its own consumer); a report.
  p_->journaled_bytes.store(
      p_->counters.change_bytes.load(std::memory_order_relaxed),
      std::memory_order_relaxed);
}

void PartitionRef::CountBackpressure(std::uint64_t wait_deadline,
                                     const WriteLimits& limits) noexcept {
  if (wait_deadline == 0 || process_counters_ == nullptr) return;
  // The wait began ring_wait_ns before its deadline.
  const std::uint64_t began = wait_deadline - limits.ring_wait_ns;
  const std::uint64_t now = MonotonicNs();
  BumpOwned(process_counters_->backpressure_waits);
  BumpOwned(process_counters_->backpressure_wait_ns,
            now > began ? now - began : 0);
}

Result<WriteResult> PartitionRef::Write(const WriteRequest& rq,
                                        const WriteLimits& limits,
                                        std::uint64_t now_ms) noexcept {
  const bool is_remove =
      rq.kind == WriteKind::kRemove || rq.kind == WriteKind::kRemoveIfVersion ||
      rq.kind == WriteKind::kRemoveExpired || rq.kind == WriteKind::kEvict;
  last_exhaustion_ = Exhaustion::kLock;  // until the lock is ours
  NUMAGRID_RETURN_IF_ERROR(LockForWrite(limits));
  last_exhaustion_ = Exhaustion::kNone;
  Unlocker unlock(p_->lock);

  // Room in the change ring: reclaim what we can, else wait a bounded time
  // with the lock released so the consumer can make progress.
  const std::uint64_t cap = p_->ring_capacity;
  std::uint64_t wait_deadline = 0;  // set when the first wait begins
  std::uint32_t waits = 0;
  for (;;) {
    const std::uint64_t next = p_->next_seq.load(std::memory_order_relaxed);
    if (limits.journal_mode == kJournalNone) {
      // release: publishes the entries (already complete) as consumed, for
      // symmetry with a journal consumer; read with acquire by stats.
      p_->journaled_seq.store(next, std::memory_order_release);
      MarkOwnBytesJournaled(limits);
    }
    std::uint64_t in_use =
        next - p_->reclaimed_seq.load(std::memory_order_relaxed);
    // Reclaim a little at a time once a quarter of the ring is in use, so
    // that no single write pays for a whole ring (a tail-latency spike); all
    // of it when the ring is full.
    // A pass that freed nothing (a reader holds an old epoch) is not
    // repeated for the next kReclaimBackoff writes: each pass scans every
    // process slot and advances the epoch that every reader loads.
    if (in_use >= cap || (in_use >= cap / 4 && reclaim_backoff_ == 0)) {
      const std::uint64_t freed =
          ReclaimLocked(in_use >= cap ? cap : kReclaimBatch);
      reclaim_backoff_ = freed == 0 ? kReclaimBackoff : 0;
      in_use = next - p_->reclaimed_seq.load(std::memory_order_relaxed);
    } else if (reclaim_backoff_ > 0) {
      --reclaim_backoff_;
    }
    if (in_use < cap) {
      CountBackpressure(wait_deadline, limits);
      break;
    }
    if (wait_deadline == 0) wait_deadline = MonotonicNs() + limits.ring_wait_ns;
    if (MonotonicNs() >= wait_deadline) {
      CountBackpressure(wait_deadline, limits);
      last_exhaustion_ = Exhaustion::kRing;
      return ResourceExhausted("partition " + std::to_string(p_->partition_id) +
                               ": change ring full (" + std::to_string(cap) +
                               " changes not yet journaled or reclaimed) for " +
                               std::to_string(limits.ring_wait_ns / 1000000) +
                               " ms; nothing was written");
    }
    unlock.Release();
    last_exhaustion_ = Exhaustion::kLock;  // if the relock times out
    if (waits == 0 && journal_wake_ != nullptr) {
      // release: pairs with the worker's acquire load of the word.
      journal_wake_->fetch_add(1, std::memory_order_release);
      shm::FutexWake(journal_wake_, 1);
    }
    if (++waits < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    NUMAGRID_RETURN_IF_ERROR(LockForWrite(limits));
    last_exhaustion_ = Exhaustion::kNone;
    unlock.Reacquired();
  }

  // Find the key, or where it would go.
  std::atomic<std::uint64_t>* s = slots();
  const std::uint64_t mask = p_->index_mask;
  const std::uint64_t tag = SlotTag(rq.hash);
  Probe probe;
  std::uint64_t i = rq.hash & mask;
  for (std::uint64_t n = 0; n <= mask; ++n, i = (i + 1) & mask) {
    // relaxed: slots change only under the lock we hold.
    const std::uint64_t v = s[i].load(std::memory_order_relaxed);
    if (v == kSlotEmpty) {
      if (probe.insert_slot == kNoSlot) probe.insert_slot = i;
      probe.hit_empty = true;
      break;
    }
    if (v == kSlotDeleted) {
      if (probe.insert_slot == kNoSlot) probe.insert_slot = i;
      continue;
    }
    if (SlotTagOf(v) != tag || !InArena(SlotOffset(v), sizeof(RecordHeader)))
      continue;
    RecordView r(base_ + SlotOffset(v));
    if (r.key() == rq.key) {
      probe.found_slot = i;
      probe.found_value = v;
      break;
    }
  }

  const bool present_raw = probe.found_slot != kNoSlot;
  const RecordView old(present_raw ? base_ + SlotOffset(probe.found_value)
                                   : nullptr);
  // An entry past its TTL or idle past the grid's max-idle is invisible to
  // readers, so a write treats it as absent too.
  const bool live = present_raw && !old.ExpiredAt(now_ms) &&
                    !IdleExpired(old.access().load(std::memory_order_relaxed),
                                 now_ms, rq.max_idle_ms);
  switch (rq.kind) {
    case WriteKind::kInsert:
      if (live) return AlreadyExists("key already exists");
      break;
    case WriteKind::kReplace:
    case WriteKind::kRemove:
      if (!live) return NotFound("key not found");
      break;
    case WriteKind::kCompareAndSet:
    case WriteKind::kRemoveIfVersion:
      if (!live) return NotFound("key not found");
      if (old.version() != rq.expected_version) {
        // Only the lock holder writes the counter (BumpOwned's rule).
        if (limits.stats) BumpOwned(p_->counters.cas_failures);
        return Conflict("version is " + std::to_string(old.version()) +
                        ", expected " + std::to_string(rq.expected_version));
      }
      break;
    case WriteKind::kRemoveExpired:
      if (!present_raw || live) return NotFound("no expired entry of the key");
      if (old.version() != rq.expected_version) {
        return Conflict("version is " + std::to_string(old.version()) +
                        ", expected " + std::to_string(rq.expected_version));
      }
      break;
    case WriteKind::kEvict:
      if (!present_raw) return NotFound("key not found");
      if (old.version() != rq.expected_version) {
        return Conflict("version is " + std::to_string(old.version()) +
                        ", expected " + std::to_string(rq.expected_version));
      }
      break;
    case WriteKind::kUpsert:
    case WriteKind::kIncrement:
      break;
  }
  std::int64_t counter = 0;
  char counter_bytes[8];
  std::string_view value = rq.value;
  if (rq.kind == WriteKind::kIncrement) {
    if (live) {
      if (old.value().size() != 8) {
        return InvalidArgument("value is " +
                               std::to_string(old.value().size()) +
                               " bytes, not an 8-byte counter");
      }
      std::memcpy(&counter, old.value().data(), 8);
    }
    if (__builtin_add_overflow(counter, rq.delta, &counter)) {
      return InvalidArgument("increment would overflow the 64-bit counter");
    }
    std::memcpy(counter_bytes, &counter, 8);
    value = std::string_view(counter_bytes, 8);
  }
  if (is_remove && !present_raw) return NotFound("key not found");
  if (!present_raw && probe.insert_slot == kNoSlot) {
    last_exhaustion_ = Exhaustion::kIndex;
    return ResourceExhausted(
        "partition " + std::to_string(p_->partition_id) + ": index full (" +
        std::to_string(mask + 1) +
        " slots); create the grid with a larger --max-entries");
  }
  const auto& cnt = p_->counters;
  // Keep at least an eighth of the slots empty, so probes stay short and end:
  // a new key may take a deleted slot freely, an empty one only below 7/8.
  const bool takes_empty =
      !present_raw && !is_remove &&
      s[probe.insert_slot].load(std::memory_order_relaxed) == kSlotEmpty;
  if (takes_empty && cnt.live_entries.load(std::memory_order_relaxed) +
                             cnt.deleted_slots.load(std::memory_order_relaxed) +
                             1 >
                         (mask + 1) * 7 / 8) {
    last_exhaustion_ = Exhaustion::kIndex;
    return ResourceExhausted(
        "partition " + std::to_string(p_->partition_id) + ": index full (" +
        std::to_string(cnt.live_entries.load(std::memory_order_relaxed)) +
        " entries in " + std::to_string(mask + 1) +
        " slots); create the grid with a larger --max-entries");
  }

  // The change itself, undo-logged up to its commit point.
  PartitionTx tx(base_, p_);
  PartitionAlloc alloc(base_, node_, p_);
  const std::uint64_t seq = tx.seq();
  const std::uint64_t version =
      rq.restore_version != 0 ? rq.restore_version : seq;
  auto& c = p_->counters;
  const std::uint64_t old_block =
      present_raw ? BlockBytes(*node_, old.bytes()) : 0;
  std::uint64_t new_slot = kSlotDeleted;
  std::uint64_t new_off = 0;
  std::uint64_t new_block = 0;
  if (!is_remove) {
    const std::uint64_t expire = rq.expire_at_ms;
    const std::uint64_t bytes =
        RecordBytes(rq.key.size(), value.size(), expire != 0);
    auto block = alloc.Allocate(tx, bytes);
    if (!block.ok() &&
        block.status().code() == StatusCode::kResourceExhausted) {
      // Out of memory: free what replaced and removed records hold, if the
      // epochs allow, give the chunks left empty back to the node, and try
      // once more. The probe above stays valid: neither changes an index
      // slot.
      tx.Abort();
      const bool freed = ReclaimLocked(cap) > 0;
      if (alloc.ReleaseAllEmptyChunks() > 0 || freed) {
        tx.Restart();
        block = alloc.Allocate(tx, bytes);
      }
    }
    if (!block.ok()) {
      tx.Abort();
      if (block.status().code() == StatusCode::kResourceExhausted) {
        last_exhaustion_ = Exhaustion::kMemory;
      }
      return block.status();
    }
    new_off = *block;
    new_block = BlockBytes(*node_, bytes);
    // A new key starts with the initial LFU count; a replaced one keeps its
    // count (an update is an access too, and a hot key stays hot).
    const std::uint32_t lfu =
        live ? AccessLfu(old.access().load(std::memory_order_relaxed))
             : kLfuInit;
    WriteRecord(base_ + new_off, version, rq.key, value, expire,
                PackAccess(now_ms, lfu));
    new_slot = MakeSlot(new_off, rq.hash);
  }
  const std::uint64_t slot_index =
      present_raw ? probe.found_slot : probe.insert_slot;
  const bool reused_deleted =
      !present_raw &&
      s[slot_index].load(std::memory_order_relaxed) == kSlotDeleted;

  RingEntry& e = ring()[seq & (cap - 1)];
  e.seq = seq;
  e.op = is_remove ? kOpRemove : kOpPut;
  e.new_record_off = new_off;
  e.old_record_off = present_raw ? SlotOffset(probe.found_value) : 0;
  e.retire_epoch = 0;
  e.visible_ms = limits.stats ? static_cast<std::uint32_t>(now_ms) : 0;

  const std::uint64_t live_now = c.live_entries.load(std::memory_order_relaxed);
  bool ok = true;
  if (is_remove) {
    ok = ok && tx.Set(c.live_entries, live_now - 1);
    ok = ok && tx.Set(c.deleted_slots,
                      c.deleted_slots.load(std::memory_order_relaxed) + 1);
    auto& count = rq.kind == WriteKind::kEvict           ? c.evictions
                  : rq.kind == WriteKind::kRemoveExpired ? c.expirations
                                                         : c.removes;
    ok = ok && tx.Set(count, count.load(std::memory_order_relaxed) + 1);
  } else {
    if (!present_raw) ok = ok && tx.Set(c.live_entries, live_now + 1);
    if (reused_deleted) {
      ok = ok && tx.Set(c.deleted_slots,
                        c.deleted_slots.load(std::memory_order_relaxed) - 1);
    }
    ok = ok && tx.Set(c.puts, c.puts.load(std::memory_order_relaxed) + 1);
  }
  const std::uint64_t live_bytes = c.live_bytes.load(std::memory_order_relaxed);
  ok = ok && tx.Set(c.live_bytes, live_bytes + new_block - old_block);
  ok =
      ok && tx.Set(c.retired_bytes,
                   c.retired_bytes.load(std::memory_order_relaxed) + old_block);
  if (!ok) {
    tx.Abort();
    return ResourceExhausted("internal: undo log full");
  }

  // The change-bytes counter, stored after the commit (see
  // WriteIntent::change_bytes_after); a change has at least a 1-byte key,
  // so the value is never the 0 that means "unchanged".
  const std::uint64_t change_bytes =
      limits.stats ? c.change_bytes.load(std::memory_order_relaxed) +
                         rq.key.size() + (is_remove ? 0 : value.size())
                   : 0;
  p_->intent.change_bytes_after = change_bytes;

  // Commit point. release: publishes the record written above; pairs with
  // the acquire loads in Find and Scan.
  tx.PrepareCommit(slot_index, new_slot);
  s[slot_index].store(new_slot, std::memory_order_release);
  // relaxed: only the lock holder writes it; a report.
  if (change_bytes != 0) {
    c.change_bytes.store(change_bytes, std::memory_order_relaxed);
  }
  // The entry's retire epoch stays 0 ("not yet stamped"): the reclaimer
  // stamps it later, under this lock, after a fence (ReclaimLocked), which
  // keeps a fence off the write path (docs/adr/0002-data-path.md).
  // release: publishes the ring entry to the consumer, which loads next_seq
  // with acquire before reading entries.
  p_->next_seq.store(seq + 1, std::memory_order_release);
  tx.Finish();
  if (limits.journal_mode == kJournalNone) {
    p_->journaled_seq.store(seq + 1, std::memory_order_release);  // as above
    MarkOwnBytesJournaled(limits);
  }
  if (limits.stats) {
    // relaxed: only the lock holder writes it; a report.
    const std::uint64_t depth =
        seq + 1 - p_->reclaimed_seq.load(std::memory_order_relaxed);
    if (depth > c.ring_high_water.load(std::memory_order_relaxed)) {
      c.ring_high_water.store(depth, std::memory_order_relaxed);
    }
  }
  if (is_remove && s[(slot_index + 1) & mask].load(std::memory_order_relaxed) ==
                       kSlotEmpty) {
    ClearDeletedRun(slot_index);
  }
  return WriteResult{version, counter};
}

}  // namespace numagrid::core
