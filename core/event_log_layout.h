// The grid's event log in the control segment: the last kEventLogCapacity
// events of the watchdog, the workers' fencing and the repairs and
// recoveries, in a ring that any process may append to and any process may
// read without a lock. It follows the journal's node states
// (core/journal_layout.h); docs/control-segment.md is the format spec and
// core/event_log.h the code that reads and writes it. events.log in the
// journal directory keeps the whole history; this ring is what `numagrid
// events` shows of a running grid.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace numagrid::core {

inline constexpr std::uint32_t kEventLogCapacity = 256;
inline constexpr std::uint32_t kEventCauseWords = 10;  // 80 bytes of text

// One event, 128 bytes. Every field is an atomic word so that a reader
// racing a writer reads stale or torn words, never undefined behaviour; the
// stamp tells it which.
//
// Process safety: a seqlock per slot. The writer of event n stores stamp
//   2n+1, then every payload word with release (so that a reader that sees
//   any of them also sees the odd stamp), then stamp 2n+2 with release. A
//   reader loads the stamp with acquire, the words with acquire (so that
//   the second stamp load cannot move before them), then the stamp again;
//   the event is whole iff both loads saw 2n+2.
// Crash safety (a writer may die at any instruction):
//   Leaves behind: a slot with an odd stamp (a half-written event).
//   Detected by: readers, which skip a slot whose stamp is not 2n+2.
//   Repaired by: nobody needs to; the writer of event n + capacity
//     overwrites the slot.
//   Holds in every reachable state: an event a reader accepts is the one a
//     writer wrote whole, unless a writer was paused inside its write while
//     `kEventLogCapacity` later events were written (then the slot may mix
//     two events' words; both were written by our code, so it is garbled,
//     never unsafe: the kind is checked and the cause is NUL-bounded).
struct EventSlot {
  std::atomic<std::uint64_t> stamp;  // 0 never written; 2n+1 writing n;
                                     // 2n+2 event n complete
  std::atomic<std::uint64_t> time_unix_ms;
  std::atomic<std::uint64_t> duration_ms;  // UINT64_MAX: no duration
  std::atomic<std::uint64_t> kind_node;    // kind << 32 | (node + 1): 0 none
  std::atomic<std::uint64_t> pid;          // 0: none
  std::atomic<std::uint64_t> generation;   // 0: none
  std::atomic<std::uint64_t> cause[kEventCauseWords];  // text, NUL-padded
};
static_assert(std::is_standard_layout_v<EventSlot>);
static_assert(sizeof(EventSlot) == 128);

// Process safety: `next` is claimed with fetch_add, so concurrent writers
//   get distinct event numbers.
// Crash safety: a writer killed after its fetch_add leaves a number whose
//   slot stays odd (skipped, see EventSlot); nothing else.
struct alignas(64) EventLog {
  std::atomic<std::uint64_t> next;  // the number the next event gets
  std::uint32_t capacity;           // kEventLogCapacity, set at create
  std::uint32_t reserved0;
  std::uint64_t reserved[6];
  EventSlot slots[kEventLogCapacity];
};
static_assert(std::is_standard_layout_v<EventLog>);
static_assert(sizeof(EventLog) == 64 + 128 * kEventLogCapacity);

}  // namespace numagrid::core
