// Process-shared futex wait and wake on a 32-bit word in shared memory: how
// a sync writer sleeps until the journal worker says its change is durable,
// and how the worker sleeps until a writer asks for a flush.
//
// Crash safety: these functions keep no state of their own. A waiter killed
// in FutexWait leaves nothing behind (the kernel drops its wait); the words
// belong to the structures that hold them (core/journal_layout.h), whose
// comments say what a crash leaves there.
//
// Thread safety: thread-safe and process-safe (the words are atomics; these
// are plain system calls without FUTEX_PRIVATE_FLAG, so they work across
// processes that map the word at different addresses).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

namespace numagrid::shm {

// Sleeps while `*word == expected`, for at most `timeout_ns`; returns early
// on a wake, a signal or a spurious wake-up. The caller re-checks its
// condition in a loop.
inline void FutexWait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                      std::uint64_t timeout_ns) noexcept {
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
              static_cast<long>(timeout_ns % 1'000'000'000)};
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT,
          expected, &ts, nullptr, 0);
}

// Wakes up to `count` waiters of `word` (all by default).
inline void FutexWake(std::atomic<std::uint32_t>* word,
                      int count = INT_MAX) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, count,
          nullptr, nullptr, 0);
}

}  // namespace numagrid::shm
