// RobustMutex: a process-shared, robust pthread mutex that lives in shared
// memory. When its holder dies, the kernel hands the lock to the next locker
// with EOWNERDEAD; the locker repairs what the dead holder guarded, marks the
// mutex consistent, and carries on. No waiter ever waits for a dead process.
//
// Thread safety: thread-safe and process-safe (it is a lock).
#pragma once

#include <pthread.h>

#include <cstdint>
#include <type_traits>

namespace numagrid::shm {

enum class LockResult {
  kAcquired,           // locked; the guarded state is consistent
  kAcquiredOwnerDied,  // locked, but the previous holder died holding it: the
                       // caller must repair the guarded state, then call
                       // MarkConsistent() before unlocking
  kTimedOut,           // not locked: another holder kept it past the deadline
  kUnrecoverable,      // not locked: a previous locker gave up repairing
};

// Crash safety (a process may die at any instruction):
//   Leaves behind: a mutex held by a dead thread (the kernel's robust list
//     marks it FUTEX_OWNER_DIED when the thread dies).
//   Detected by: the next lock or try-lock, which returns kAcquiredOwnerDied.
//   Repaired by: that locker, which repairs the guarded state (for partitions:
//     core/partition_repair.cc) and calls MarkConsistent(), at once.
//   Holds in every reachable state: at most one live holder; a dead holder
//     never blocks a locker.
struct RobustMutex {
  pthread_mutex_t mu;

  // Initializes in place. REQUIRES: zeroed memory not yet used as a mutex.
  // Returns 0 or an errno value.
  int Initialize() noexcept;

  // Waits until `deadline_ns` (CLOCK_MONOTONIC, so that a step of the wall
  // clock neither shortens nor stretches the wait); 0 waits forever.
  LockResult Lock(std::uint64_t deadline_ns) noexcept;
  LockResult TryLock() noexcept;
  void MarkConsistent() noexcept;
  void Unlock() noexcept;
};
static_assert(std::is_standard_layout_v<RobustMutex>);
static_assert(sizeof(RobustMutex) == 40, "glibc x86-64 pthread_mutex_t");

// CLOCK_MONOTONIC now, in nanoseconds, for RobustMutex deadlines.
std::uint64_t MonotonicNowNs() noexcept;

}  // namespace numagrid::shm
