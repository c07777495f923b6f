// ProcessTable: claiming, releasing and repairing process slots, and the
// epoch operations of epoch-based reclamation. The orderings below are
// labelled as in docs/process-table.md ("Why freeing is safe"):
//   F_W  the fence in GlobalEpoch (writer, after unlinking, before reading r)
//   G_R  the reader's load of the global epoch in Pin
//   P    the reader's store of its pin;  F_R the fence after it
//   FA   AdvanceEpoch's fetch_add
//   F_C  the fence in MinPinnedEpoch;  S the scan's loads of the pins
#include "shm/process_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "core/base/fence.h"

namespace numagrid::shm {
namespace {

// Clears a slot whose byte the caller holds (INV2), in the order that keeps
// INV1 for every prefix a crash may leave: pin first, state last.
void ClearSlot(ProcessSlot& s) noexcept {
  // release: like Unpin; pairs with the acquire loads S in MinPinnedEpoch.
  s.pinned_epoch.store(0, std::memory_order_release);
  // relaxed: published by the release store of state below.
  s.pid.store(0, std::memory_order_relaxed);
  s.start_time_ticks.store(0, std::memory_order_relaxed);
  // release: publishes the zeroed pin and pid (INV1); pairs with the acquire
  // loads of state in DeadSlots and Claim.
  s.state.store(kSlotFree, std::memory_order_release);
}

using base::SeqCstFence;

// A slot a dead owner may have left: claimed, pinned or a corrupt state.
// (A stale pid alone, from a claim that died half-way, blocks nothing.)
bool NeedsRepair(std::uint32_t state, std::uint64_t pinned) noexcept {
  return state != kSlotFree || pinned != 0;
}

}  // namespace

void ProcessTable::Initialize(void* at, std::uint32_t capacity) noexcept {
  NUMAGRID_CHECK(at != nullptr);
  NUMAGRID_CHECK(reinterpret_cast<std::uintptr_t>(at) % 64 == 0);
  NUMAGRID_CHECK(capacity >= 1 && capacity <= kMaxCapacity);
  // The atomics have non-trivial constructors: construct them (value
  // initialization: all zero) rather than assume them into being.
  auto* header = new (at) ProcessTableHeader{};
  // relaxed: the table is not yet visible to other processes; the control
  // segment's magic (release store in Segment::Create) publishes it.
  header->global_epoch.store(1, std::memory_order_relaxed);
  header->capacity = capacity;
  auto* first = static_cast<std::byte*>(at) + sizeof(ProcessTableHeader);
  for (std::uint32_t i = 0; i < capacity; ++i) {
    new (first + std::uint64_t{i} * sizeof(ProcessSlot)) ProcessSlot{};
  }
}

Result<ProcessTable> ProcessTable::View(void* at, std::uint64_t bytes) {
  if (at == nullptr || reinterpret_cast<std::uintptr_t>(at) % 64 != 0) {
    return InvalidArgument(
        "process table: address is null or not 64-byte aligned");
  }
  if (bytes < sizeof(ProcessTableHeader)) {
    return Corruption("process table: " + std::to_string(bytes) +
                      " bytes have no room for its " +
                      std::to_string(sizeof(ProcessTableHeader)) +
                      "-byte header");
  }
  auto* header = static_cast<ProcessTableHeader*>(at);
  // Plain read: constant after Initialize, which ran before the segment was
  // published (its magic was read with acquire by Segment::Open).
  const std::uint32_t capacity = header->capacity;
  if (capacity == 0 || capacity > kMaxCapacity) {
    return Corruption("process table: capacity " + std::to_string(capacity) +
                      " is not within 1.." + std::to_string(kMaxCapacity));
  }
  if (BytesFor(capacity) > bytes) {
    return Corruption("process table: " + std::to_string(capacity) +
                      " slots need " + std::to_string(BytesFor(capacity)) +
                      " bytes, but it has " + std::to_string(bytes));
  }
  // relaxed: only tells "initialized" (>= 1, forever) from zeroed memory.
  if (header->global_epoch.load(std::memory_order_relaxed) == 0) {
    return Corruption("process table: global epoch is 0 (never initialized)");
  }
  auto* slots = reinterpret_cast<ProcessSlot*>(static_cast<std::byte*>(at) +
                                               sizeof(ProcessTableHeader));
  return ProcessTable(header, slots, capacity);
}

Result<std::uint32_t> ProcessTable::Claim(LockFile& locks) {
  const pid_t pid = ::getpid();
  const std::uint64_t start_ticks = ReadProcessStartTicks(pid);
  // Pass 0 tries the slots that look free, pass 1 all the others (a dead
  // owner's slot is claimable too); this spares a failing fcntl per live
  // process in the common case.
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint32_t i = 0; i < capacity_; ++i) {
      // relaxed: only a hint for the order of tries; the lock decides.
      const bool looks_free =
          slots_[i].state.load(std::memory_order_relaxed) == kSlotFree;
      if (looks_free != (pass == 0)) continue;
      if (!locks.TryLockByte(i)) continue;
      // The slot is ours (INV2). Clear what a dead owner may have left,
      // then fill it; state is stored last (INV1, INV4).
      ProcessSlot& s = slots_[i];
      ClearSlot(s);
      // relaxed: only the byte's holder writes the slot; published by the
      // release store of state below.
      s.generation.fetch_add(1, std::memory_order_relaxed);
      s.start_time_ticks.store(start_ticks, std::memory_order_relaxed);
      s.pid.store(static_cast<std::uint32_t>(pid), std::memory_order_relaxed);
      // release: publishes generation, start time and pid (INV4); pairs
      // with the acquire loads of state in DeadSlots and readers of slot().
      s.state.store(kSlotClaimed, std::memory_order_release);
      return i;
    }
  }
  return ResourceExhausted(
      "all " + std::to_string(capacity_) +
      " process slots of the grid are in use (lock file '" + locks.path() +
      "')");
}

void ProcessTable::Release(std::uint32_t slot, LockFile& locks) noexcept {
  if (slot >= capacity_ || !locks.HoldsByte(slot)) return;
  ClearSlot(slots_[slot]);
  // The byte goes last: until here nobody else may touch the slot (INV2).
  locks.UnlockByte(slot);
}

std::uint64_t ProcessTable::GlobalEpoch() const noexcept {
  // F_W. seq_cst fence: orders the caller's earlier stores (the unlink of
  // what it retires) before the epoch load, for readers that pin a later
  // epoch: F_W precedes FA in S (the load reads a value before FA's), FA
  // strongly happens before the reader's F_R (through G_R), so the reader's
  // loads after F_R see the unlink. A bare load would let a store-buffered
  // unlink come after a reader's pin at r + 1.
  SeqCstFence();
  return header_->global_epoch.load(std::memory_order_seq_cst);
}

void ProcessTable::Pin(std::uint32_t slot) noexcept {
  NUMAGRID_DCHECK(slot < capacity_);
  ProcessSlot& s = slots_[slot];
  // relaxed: our own slot; only a debug check that pins do not nest.
  NUMAGRID_DCHECK(s.pinned_epoch.load(std::memory_order_relaxed) == 0);
  // G_R. seq_cst (a plain load on x86-64): synchronizing with FA, seq_cst on
  // both ends, makes FA strongly happen before our F_R, which the argument
  // for readers pinned at e > r needs.
  const std::uint64_t epoch =
      header_->global_epoch.load(std::memory_order_seq_cst);
  // P. release: publishes the Unpin that ended our previous read together
  // with everything before it, to a scan that reads this pin (acquire S), so
  // loads of the previous read happen before any free that scan allows.
  s.pinned_epoch.store(epoch, std::memory_order_release);
  // F_R. seq_cst fence: a store-load barrier between P and the reader's
  // later loads of shared data (the Dekker pair with F_C): either F_C
  // precedes F_R in S, and then the reader's loads see everything that
  // happened before F_C, i.e. the unlink of anything the scan lets free; or
  // F_R precedes F_C, and then S sees P (or later), so the scan returns at
  // most `epoch`. (GCC emits `lock or $0,(%rsp)`, the cost of an xchg.)
  SeqCstFence();
}

void ProcessTable::Unpin(std::uint32_t slot) noexcept {
  NUMAGRID_DCHECK(slot < capacity_);
  // release: the loads of the read just ended happen before whatever a scan
  // that reads this 0 (acquire S in MinPinnedEpoch) goes on to free.
  slots_[slot].pinned_epoch.store(0, std::memory_order_release);
}

std::uint64_t ProcessTable::AdvanceEpoch() noexcept {
  // FA. seq_cst RMW: every change of global_epoch is an RMW, so FA heads a
  // release sequence that readers' G_R (seq_cst) synchronize with, and it
  // is ordered in S after a writer's F_W whose load read an earlier value.
  return header_->global_epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
}

std::uint64_t ProcessTable::MinPinnedEpoch() const noexcept {
  // F_C. seq_cst fence: the other half of the Dekker pair with F_R (see
  // Pin). The caller's retire happened before this call, so the unlink
  // happens before F_C.
  SeqCstFence();
  std::uint64_t min = std::numeric_limits<std::uint64_t>::max();
  for (std::uint32_t i = 0; i < capacity_; ++i) {
    // S. acquire: pairs with the release of Unpin (a 0) or of a later Pin,
    // so the reads of every pinned section that ended before the value we
    // read happen before any free we allow.
    const std::uint64_t pinned =
        slots_[i].pinned_epoch.load(std::memory_order_acquire);
    if (pinned != 0 && pinned < min) min = pinned;
  }
  return min;
}

std::vector<std::uint32_t> ProcessTable::DeadSlots(
    const LockFile& locks) const {
  std::vector<std::uint32_t> dead;
  for (std::uint32_t i = 0; i < capacity_; ++i) {
    if (locks.HoldsByte(i)) continue;  // ours: F_OFD_GETLK cannot see it
    const ProcessSlot& s = slots_[i];
    // acquire: pairs with the release stores of state (Claim, ClearSlot),
    // so the generation read after it is that claim's or later (INV4).
    // relaxed pin: a stale value only makes this scan skip or re-check.
    const std::uint32_t state = s.state.load(std::memory_order_acquire);
    const std::uint64_t pinned = s.pinned_epoch.load(std::memory_order_relaxed);
    const std::uint64_t generation =
        s.generation.load(std::memory_order_relaxed);
    if (!NeedsRepair(state, pinned)) continue;
    if (locks.IsByteLocked(i)) continue;  // owner alive (or claiming/repairing)
    // Re-read: a live owner that released between our first look and the
    // lock check has cleared the slot (it clears before unlocking), and a
    // new claimer has bumped the generation before storing state claimed.
    // Orderings as above.
    const std::uint32_t state2 = s.state.load(std::memory_order_acquire);
    const std::uint64_t pinned2 =
        s.pinned_epoch.load(std::memory_order_relaxed);
    const std::uint64_t generation2 =
        s.generation.load(std::memory_order_relaxed);
    if (!NeedsRepair(state2, pinned2) || generation2 != generation) continue;
    dead.push_back(i);
  }
  return dead;
}

bool ProcessTable::RepairDeadSlot(std::uint32_t slot,
                                  LockFile& locks) noexcept {
  if (slot >= capacity_) return false;
  // Holding the byte makes the slot ours (INV2): no live owner, claimer or
  // other repairer can be inside it, so clearing it is always safe.
  if (!locks.TryLockByte(slot)) return false;
  ClearSlot(slots_[slot]);
  locks.UnlockByte(slot);
  return true;
}

std::uint64_t ReadProcessStartTicks(pid_t pid) noexcept {
  std::array<char, 48> path{};
  std::snprintf(path.data(), path.size(), "/proc/%d/stat",
                static_cast<int>(pid));
  const int fd = ::open(path.data(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  // The line is "pid (comm) state ppid ..."; comm is at most 16 bytes but may
  // hold spaces and parentheses, so fields are counted after the last ')'.
  std::array<char, 1024> buf{};
  std::size_t len = 0;
  while (len < buf.size() - 1) {
    const ssize_t n = ::read(fd, buf.data() + len, buf.size() - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  const char* p = std::strrchr(buf.data(), ')');
  if (p == nullptr) return 0;
  ++p;
  // Field 3 (state) is the first after ")"; field 22 is the 20th.
  for (int field = 3; field < 22; ++field) {
    while (*p == ' ') ++p;
    while (*p != ' ' && *p != '\0') ++p;
    if (*p == '\0') return 0;
  }
  while (*p == ' ') ++p;
  std::uint64_t ticks = 0;
  bool any = false;
  for (; *p >= '0' && *p <= '9'; ++p) {
    ticks = ticks * 10 + static_cast<std::uint64_t>(*p - '0');
    any = true;
  }
  return any ? ticks : 0;
}

}  // namespace numagrid::shm
