// The journal's part of the control segment: the durability configuration
// (constant after create) and, per journal stream (K per NUMA node, one
// worker each: docs/adr/0008-journal-streams.md), the state that the
// stream's journal worker shares with writers and with `numagrid status`. It
// sits at GridConfig::journal_off. docs/control-segment.md is the format spec;
// docs/adr/0003-journal.md says why it looks like this.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/event_log_layout.h"

namespace numagrid::core {

// JournalConfig::durability: what a write waits for unless it says otherwise.
inline constexpr std::uint32_t kDurabilityAsync =
    0;  // visible; durable within the flush interval
inline constexpr std::uint32_t kDurabilitySync = 1;  // durable on return

// JournalBlock::recovery_state
inline constexpr std::uint32_t kRecoveryNone = 0;
inline constexpr std::uint32_t kRecoveryRunning =
    1;  // `recover` is rebuilding the grid: Attach refuses

// Constant after create (written before the control segment's magic).
struct JournalConfig {
  char dir[256];             // absolute journal directory, NUL-terminated
  std::uint32_t durability;  // kDurability*: the default for writes
  std::uint32_t flush_interval_us;    // async: the worker flushes this often
  std::uint64_t segment_bytes;        // journal files roll over at this size
  std::uint32_t sync_wait_ms;         // a sync write waits this long, then
                                      // kUnavailable (its change stays visible)
  std::uint32_t snapshot_interval_s;  // the worker snapshots its node this
                                      // often if anything was journaled; 0:
                                      // not by time
  std::uint64_t snapshot_bytes;       // the worker snapshots its node once this
                                      // many journal bytes follow the last
                                      // snapshot; 0: only on request
  // Journal streams (and workers) per node, 1..kMaxStreamsPerNode; 0 in a
  // block written before streams existed reads as 1 (StreamsPerNode).
  std::uint32_t streams_per_node;
  std::uint32_t reserved0;
  std::uint64_t reserved[7];
};
static_assert(std::is_standard_layout_v<JournalConfig>);
static_assert(sizeof(JournalConfig) == 352);

// `create --workers-per-node K`: at most this many journal streams per node.
inline constexpr std::uint32_t kMaxStreamsPerNode = 8;

constexpr std::uint32_t StreamsPerNode(const JournalConfig& c) noexcept {
  return c.streams_per_node == 0 ? 1 : c.streams_per_node;
}

// The stream that journals a partition: its slot among its node's
// partitions (PartitionEntry::slot_in_node) modulo the streams per node.
// Fixed at create with the partition map, so a partition's changes are
// always in one stream, in order.
constexpr std::uint32_t StreamOfSlot(std::uint32_t slot_in_node,
                                     std::uint32_t streams_per_node) noexcept {
  return slot_in_node % streams_per_node;
}

// One per journal stream (node n's stream s at index n * K + s, K the
// streams per node), written by the stream's journal worker and by the
// writers of the stream's partitions.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a worker leaves its last published numbers (durable
//     sequence, counters, pid, generation) and `worker_pid` of a dead
//     process; a writer leaves `wake` bumped (a harmless extra flush); a
//     fencer or watchdog killed after bumping `generation` leaves a
//     generation no worker holds (the running one steps down at its next
//     commit; the next one started takes a newer generation).
//   Detected by: the next worker of the stream, which takes the stream's
//     journal lock (an OFD lock on a file in the journal directory,
//     released by the kernel when the holder dies), and `status` (pid no
//     longer alive).
//   Repaired by: the next worker overwrites every field at start.
//   Holds in every reachable state: durable_epoch only grows; a partition's
//     journaled_seq (core/partition_layout.h) only grows, and only after the
//     changes below it are durable in its stream's journal. No partition
//     belongs to two streams, so no two workers mark one partition.
struct alignas(64) JournalNodeState {
  // Cache line 0: published by the worker.
  // durable_epoch: +1 after each flush whose changes were marked journaled;
  //   a futex word that sync writers sleep on.
  std::atomic<std::uint32_t> durable_epoch;
  std::atomic<std::uint32_t> worker_state;         // kWorker*
  std::atomic<std::uint64_t> worker_pid;           // 0: no worker has run
  std::atomic<std::uint64_t> durable_journal_seq;  // records <= are durable
  std::atomic<std::uint64_t> heartbeat_mono_ms;    // the worker's last loop,
                                                   // CLOCK_MONOTONIC ms
  std::atomic<std::uint64_t> records;              // journaled since create
  std::atomic<std::uint64_t> bytes;
  std::atomic<std::uint64_t> flushes;
  std::atomic<std::uint64_t> io_errors;
  // Cache line 1: written by writers.
  // wake: sync writers bump it and wake the worker, which sleeps on it
  //   between flushes, so that a durable write need not wait for the flush
  //   interval.
  alignas(64) std::atomic<std::uint32_t> wake;
  std::uint32_t reserved0;
  std::atomic<std::uint64_t> snapshot_requests;  // `numagrid snapshot` bumps
  // The worker's answers: snapshots_done reaches a request's number once
  // that snapshot was written (or failed: last_snapshot_code, a
  // StatusCode, says which), describing it in the fields before it.
  std::atomic<std::uint64_t> last_snapshot_seq;  // its journal_seq
  std::atomic<std::uint64_t> last_snapshot_entries;
  std::atomic<std::uint32_t> last_snapshot_code;
  std::uint32_t reserved1;
  std::atomic<std::uint64_t> snapshots_done;
  std::atomic<std::uint64_t> last_snapshot_segments_deleted;
  std::atomic<std::uint64_t> restarts;  // workers the watchdog started again
  // Cache line 2: fencing (docs/adr/0004-watchdog-and-fencing.md).
  // generation: the generation the node's worker must hold to commit. Only
  //   grows. Whoever starts a worker takes the next one (the watchdog before
  //   it forks, passing it on; a worker started by hand after taking the
  //   journal lock); `numagrid fence` and the watchdog, before it kills a
  //   silent worker, bump it to fence the worker that holds it.
  alignas(64) std::atomic<std::uint64_t> generation;
  // worker_generation: the generation the running (or last) worker holds,
  //   published by it once it holds the journal lock.
  std::atomic<std::uint64_t> worker_generation;
  std::atomic<std::uint64_t> fences;  // workers that stepped down, fenced
  // Expired entries the node's workers removed in the background.
  std::atomic<std::uint64_t> expired_reclaimed;
  // The worker's task arena (core/worker_arena.h), published by the worker
  // at its start, for `status`: worker_arena is an ArenaBinding (0: none
  // published, e.g. a worker of an older build, which left the reserved
  // zero here), worker_arena_threads its max_concurrency. Written only by
  // the node's worker; a dead one leaves its values, the next overwrites.
  std::atomic<std::uint32_t> worker_arena;
  std::atomic<std::uint32_t> worker_arena_threads;
  std::uint64_t reserved2[3];
};
static_assert(std::is_standard_layout_v<JournalNodeState>);
static_assert(sizeof(JournalNodeState) == 192);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// JournalNodeState::worker_state
inline constexpr std::uint32_t kWorkerNone = 0;     // never started
inline constexpr std::uint32_t kWorkerRunning = 1;  // journaling
inline constexpr std::uint32_t kWorkerRetrying =
    2;  // the last flush failed; retrying with backoff, nothing dropped
inline constexpr std::uint32_t kWorkerStopped = 3;  // stopped gracefully

// At GridConfig::journal_off.
//
// Crash safety: `recovery_state` is set before the magic by `recover` and
//   cleared (release) when the rebuilt grid is complete; a recover killed in
//   between leaves it set, Attach refuses the grid, and the next `recover`
//   removes the half-built segments and starts over.
struct JournalBlock {
  JournalConfig config;
  std::atomic<std::uint32_t> recovery_state;  // kRecovery*
  std::uint32_t recovery_pid;                 // the `recover` that set it
  // The running watchdog (`numagrid start`), 0 if none has run; it holds
  // the watchdog lock in the journal directory, so this may name a dead
  // process, never a second live one.
  std::atomic<std::uint64_t> watchdog_pid;
  std::uint64_t reserved[2];
  // Followed, at the next 64-byte boundary, by
  // JournalNodeState[node_count * streams per node].
};
static_assert(std::is_standard_layout_v<JournalBlock>);
static_assert(sizeof(JournalBlock) == 384);

// The JournalBlock, the stream states (node_count * streams per node of
// them: `stream_count`), then the EventLog (core/event_log_layout.h).
constexpr std::uint64_t EventLogOffset(std::uint32_t stream_count) noexcept {
  return sizeof(JournalBlock) + sizeof(JournalNodeState) * stream_count;
}
constexpr std::uint64_t JournalBlockBytes(std::uint32_t stream_count) noexcept {
  return EventLogOffset(stream_count) + sizeof(EventLog);
}

}  // namespace numagrid::core
