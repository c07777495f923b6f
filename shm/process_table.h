// ProcessTable: one slot per process attached to a grid, in the control
// segment. A slot says which epoch its owner may still be reading (the basis
// of epoch-based reclamation: MinPinnedEpoch), and, through byte <slot> of
// the grid's lock file, whether its owner is still alive (DeadSlots). The
// owner of slot i is whoever holds the OFD lock on byte i: the lock is the
// ownership, the slot's fields are data. docs/process-table.md is the format
// spec and holds the full safety argument; change both together.
//
// The epoch protocol (every step cites the orderings in process_table.cc):
//   Reader (every get):  Pin(slot); ...load shared data...; Unpin(slot).
//   Writer (retiring X): make X unreachable; r = GlobalEpoch(); retire (X, r).
//   Reclaimer:           AdvanceEpoch() now and then; free X once
//                        MinPinnedEpoch() > r, where that MinPinnedEpoch() call
//                        happens after the retire (same thread, or the retire
//                        list handed over with release/acquire or a mutex).
// A reader then never sees freed memory: a reader whose pin the reclaimer's
// scan missed does see X unlinked (Pin and MinPinnedEpoch each hold a
// seq_cst fence: a store-buffering/Dekker pair), and a reader pinned at
// e > r loaded the global epoch after it passed r, hence after X was
// unlinked (the fence in GlobalEpoch orders the unlink before the epoch
// read). The loads the reader made before Unpin happen before the free
// (release Unpin, acquire scan).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/base/check.h"
#include "numagrid/status.h"
#include "shm/layout_signature.h"
#include "shm/lock_file.h"

namespace numagrid::shm {

// ProcessSlot::state values.
inline constexpr std::uint32_t kSlotFree = 0;
inline constexpr std::uint32_t kSlotClaimed = 1;

// One per attached process, at offset 64 * (1 + i) of the table.
//
// Slot states (the lock is byte i of the lock file; "-" = any value):
//   lock   state    pinned  meaning
//   free   free     0       free (pid may hold a stale value: INV1)
//   held   -        -       owned by a live process: claiming, claimed,
//                           pinned, releasing or repairing; nobody else
//                           touches the fields
//   free   claimed  -       dead owner: DeadSlots reports it
//   free   free     != 0    unreachable by this code (INV1); reported like a
//                           dead owner, so that corruption cannot block
//                           reclamation forever
//   free   other    -       corrupt state value; reported like a dead owner
// Invariants (code and tests cite them):
//   INV1 state == kSlotFree implies pinned_epoch == 0: Claim stores `state`
//        claimed before its owner can pin, and ClearSlot zeroes pinned_epoch
//        and pid before storing `state` free.
//   INV2 only the holder of byte i writes slot i (Claim, Pin, Unpin, Release
//        and RepairDeadSlot all hold it); everybody may read it.
//   INV3 generation only grows: +1 per claim.
//   INV4 state == kSlotClaimed (acquire) implies that pid, start_time_ticks
//        and generation of that claim are visible (release store of state
//        after them).
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: an owner killed while claimed leaves state claimed, its
//     pid, and possibly a pinned epoch (which keeps MinPinnedEpoch, hence
//     reclamation, at or below it); killed inside Claim, a half-filled slot
//     (state free, stale pid: blocks nothing) or a claimed one without pid;
//     killed inside Release or RepairDeadSlot, a slot half-cleared in the
//     order pinned_epoch, pid, state. Its byte lock is always released by
//     the kernel, so no slot stays unusable.
//   Detected by: DeadSlots (byte free, slot not clean); Claim, which clears a
//     not-clean slot whose byte it just locked.
//   Repaired by: RepairDeadSlot (called by the watchdog within a second, and
//     by `numagrid check --repair`), or by the next Claim of the slot.
//   Holds in every reachable state: INV1-INV4; a slot whose byte nobody
//     holds is clean (free, pinned 0) or reported by DeadSlots; a live
//     owner's slot is never reported, repaired nor claimed by another (they
//     all need the byte first); the only harm a dead owner does is to hold
//     MinPinnedEpoch down until its slot is repaired.
struct alignas(64) ProcessSlot {
  // 0: the owner is not inside a read. Else the global epoch it pinned; it
  // may be reading anything not freed before that epoch. Written by the
  // owner (Pin/Unpin) and by whoever clears the slot; read by MinPinnedEpoch.
  std::atomic<std::uint64_t> pinned_epoch;
  // The owner's pid (in the pid namespace of the claimer), for operators and
  // failover events; 0: free. Never used for liveness: pids are reused.
  std::atomic<std::uint32_t> pid;
  // kSlotFree or kSlotClaimed; stored last by Claim (release, INV4).
  std::atomic<std::uint32_t> state;
  // /proc/<pid>/stat field 22 (clock ticks after boot) of the owner, so that
  // an operator can tell the owner from a later process with the same pid;
  // 0 if unknown. Not for liveness.
  std::atomic<std::uint64_t> start_time_ticks;
  // Bumped by each Claim (INV3): tells one owner of the slot from the next.
  std::atomic<std::uint64_t> generation;
  // Zero; for later fields.
  std::uint64_t reserved[4];
};

// The first 64 bytes of the table.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: nothing: capacity is written once by Initialize before the
//     control segment is published; global_epoch changes only by atomic
//     fetch_add (an advancer killed around it has either advanced it or not).
//   Detected by: View (capacity and size checks, epoch 0 means "never
//     initialized": kCorruption).
//   Repaired by: nobody; nothing to repair.
//   Holds in every reachable state: global_epoch >= 1 and only grows;
//     capacity is constant and the slots fit in the table's bytes.
struct alignas(64) ProcessTableHeader {
  // Starts at 1; only grows (AdvanceEpoch, seq_cst fetch_add).
  std::atomic<std::uint64_t> global_epoch;
  // Number of slots; constant after Initialize.
  std::uint32_t capacity;
  std::uint32_t reserved0;    // zero
  std::uint64_t reserved[6];  // zero; for later fields
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "only lock-free atomics are address-free between processes");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "only lock-free atomics are address-free between processes");
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);
static_assert(sizeof(std::atomic<std::uint32_t>) == 4);
static_assert(std::is_standard_layout_v<ProcessSlot>);
static_assert(std::is_trivially_destructible_v<ProcessSlot>);
static_assert(sizeof(ProcessSlot) == 64);
static_assert(alignof(ProcessSlot) == 64);
static_assert(offsetof(ProcessSlot, pinned_epoch) == 0);
static_assert(offsetof(ProcessSlot, pid) == 8);
static_assert(offsetof(ProcessSlot, state) == 12);
static_assert(offsetof(ProcessSlot, start_time_ticks) == 16);
static_assert(offsetof(ProcessSlot, generation) == 24);
static_assert(offsetof(ProcessSlot, reserved) == 32);
static_assert(std::is_standard_layout_v<ProcessTableHeader>);
static_assert(std::is_trivially_destructible_v<ProcessTableHeader>);
static_assert(sizeof(ProcessTableHeader) == 64);
static_assert(alignof(ProcessTableHeader) == 64);
static_assert(offsetof(ProcessTableHeader, global_epoch) == 0);
static_assert(offsetof(ProcessTableHeader, capacity) == 8);
static_assert(offsetof(ProcessTableHeader, reserved0) == 12);
static_assert(offsetof(ProcessTableHeader, reserved) == 16);

// Add to the control segment's layout signature (shm/layout_signature.h).
inline constexpr std::uint64_t kProcessTableLayoutSignature =
    LayoutSignature()
        .AddType<ProcessTableHeader>()
        .Add(offsetof(ProcessTableHeader, global_epoch))
        .Add(offsetof(ProcessTableHeader, capacity))
        .AddType<ProcessSlot>()
        .Add(offsetof(ProcessSlot, pinned_epoch))
        .Add(offsetof(ProcessSlot, pid))
        .Add(offsetof(ProcessSlot, state))
        .Add(offsetof(ProcessSlot, start_time_ticks))
        .Add(offsetof(ProcessSlot, generation))
        .Add(kSlotFree)
        .Add(kSlotClaimed)
        .value();

// A view of a process table in shared memory: does not own the memory; cheap
// to copy; valid while the mapping is.
//
// Thread safety: thread-safe; every operation is atomic on shared memory.
// Process safety: any number of processes, each with its own mapping (at any
// address: the table holds no pointers) and its own LockFile. One slot holds
// one pin: Pin does not nest, and a process whose threads read concurrently
// claims one slot per reading thread (or counts its readers itself).
// Fork: a slot belongs to the LockFile that claimed it, which does not
// survive fork() (shm/lock_file.h): a forked child must not use its parent's
// slot; it opens the lock file anew and claims its own.
class ProcessTable {
 public:
  // Slots per table: at most this many (bytes [0, capacity) of the lock
  // file; the rest of LockFile::kMaxBytes is left to other tables).
  static constexpr std::uint32_t kMaxCapacity = 1U << 14;

  // Bytes a table of `capacity` slots occupies: the header and the slots.
  static constexpr std::uint64_t BytesFor(std::uint32_t capacity) noexcept {
    return sizeof(ProcessTableHeader) +
           std::uint64_t{capacity} * sizeof(ProcessSlot);
  }

  // Writes an empty table of `capacity` slots at `at` (global epoch 1, all
  // slots free). Called once, by grid create, before the segment is
  // published.
  // REQUIRES: `at` is 64-byte aligned, BytesFor(capacity) bytes, zeroed and
  // not yet visible to other processes; 1 <= capacity <= kMaxCapacity.
  static void Initialize(void* at, std::uint32_t capacity) noexcept;

  // A view of the table at `at`, which has `bytes` bytes of room. Errors:
  // kInvalidArgument (null or not 64-byte aligned `at`: a caller bug);
  // kCorruption (room for no header, capacity 0 or above kMaxCapacity, slots
  // that do not fit in `bytes`, global epoch 0: never initialized).
  static Result<ProcessTable> View(void* at, std::uint64_t bytes);

  std::uint32_t capacity() const noexcept { return capacity_; }

  // Claims a free slot for this process and returns its index. Tries every
  // byte i of `locks` (first those of free slots, then the rest); the first
  // it locks is ours. A slot that is not clean (its owner died) is cleared
  // first. Then fills generation, start time and pid, and stores state
  // claimed last. kResourceExhausted "all N process slots of the grid are in
  // use" if no byte can be locked.
  // The slot is this process's until Release, or until `locks` is closed
  // (which leaves it to the watchdog's repair). REQUIRES: `locks` is the
  // grid's lock file, opened by this process (not inherited over fork).
  Result<std::uint32_t> Claim(LockFile& locks);

  // Clears `slot` (pin, pid, then state free), then unlocks its byte. No-op
  // if `locks` does not hold the byte (not ours; or a forked child's copy).
  // REQUIRES: no thread of this process is pinned on it.
  void Release(std::uint32_t slot, LockFile& locks) noexcept;

  // The current global epoch. Also the epoch to retire memory at: it begins
  // with a seq_cst fence, so that the stores that unlinked the memory are
  // visible to every reader that pins a later epoch. No syscall, no lock.
  std::uint64_t GlobalEpoch() const noexcept;

  // Pins the current global epoch in `slot`: from here to Unpin, nothing
  // retired at this epoch or later is freed. Ends with a seq_cst fence, so
  // that the pin is visible to any MinPinnedEpoch scan that could miss it
  // before any later load of shared data is made. No syscall, no lock.
  // REQUIRES: this thread owns `slot` (Claim) and is not pinned on it.
  void Pin(std::uint32_t slot) noexcept;

  // Ends the read: release store of 0, so that the loads made while pinned
  // happen before a MinPinnedEpoch that sees the 0 (and so before any free
  // it allows). REQUIRES: this thread pinned `slot`.
  void Unpin(std::uint32_t slot) noexcept;

  // global_epoch += 1; returns the new value. Any process may call it.
  std::uint64_t AdvanceEpoch() noexcept;

  // The smallest epoch pinned in any slot (dead owners' pins included, until
  // repaired), or UINT64_MAX if none is pinned. Memory retired at epoch r
  // may be freed once a call made after its retirement returns > r (see the
  // protocol at the top of this file). Begins with a seq_cst fence.
  std::uint64_t MinPinnedEpoch() const noexcept;

  // Slots that are not clean (claimed, pinned, or a corrupt state) and whose
  // byte nobody holds: their owner died. A scan, not a snapshot: a slot is
  // reported only if it stayed not clean, with one generation, across the
  // lock check; by the time the caller acts it may have been repaired or
  // claimed by someone else, which RepairDeadSlot rechecks under the lock.
  // Slots whose byte `locks` itself holds are skipped (they are ours).
  // REQUIRES: `locks` is the grid's lock file.
  std::vector<std::uint32_t> DeadSlots(const LockFile& locks) const;

  // Repairs `slot` if its owner is gone: locks its byte (so that nobody
  // claims it meanwhile), clears pin, pid and state, unlocks. Returns false,
  // and changes nothing, if the byte is locked (owner alive, another
  // repairer, a claimer; or `locks` holds it itself) or `slot` is out of
  // range. Idempotent: a clean free slot stays so and returns true.
  bool RepairDeadSlot(std::uint32_t slot, LockFile& locks) noexcept;

  // Slot `i`, for inspection (operators, tests). REQUIRES: i < capacity().
  const ProcessSlot& slot(std::uint32_t i) const noexcept {
    NUMAGRID_DCHECK(i < capacity_);
    return slots_[i];
  }

 private:
  ProcessTable(ProcessTableHeader* header, ProcessSlot* slots,
               std::uint32_t capacity) noexcept
      : header_(header), slots_(slots), capacity_(capacity) {}

  ProcessTableHeader* header_;
  ProcessSlot* slots_;
  std::uint32_t capacity_;  // copied from the header by View
};

// Field 22 of /proc/<pid>/stat (start time in clock ticks after boot), or 0
// if the process does not exist or the file cannot be read or parsed. With
// the pid, it names a process uniquely for as long as the host is up.
std::uint64_t ReadProcessStartTicks(pid_t pid) noexcept;

}  // namespace numagrid::shm
