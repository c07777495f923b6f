// The journaling loop of one journal stream of a NUMA node (a node has K
// streams, docs/adr/0008-journal-streams.md; stream s journals the node's
// partitions whose slot in the node is s mod K): drains the change rings of
// the stream's partitions, in sequence order, into the stream's journal, makes
// each batch durable with one fdatasync (group commit), then marks it journaled
// so that sync writers return and reclamation may free what the changes
// replaced. This is what `numagrid worker NAME --node N --stream S` runs.
// docs/adr/0003-journal.md explains the design.
//
// Nothing is dropped: a change leaves its ring only after it is durable. An
// I/O error stops the journal writer (fail-stop), the loop reports it, backs
// off and reopens the journal after its last durable record, and journals
// the same changes again; meanwhile the rings fill and writers get the
// bounded-wait error. A worker killed at any instruction leaves changes that
// are durable but not yet marked: the next worker journals them again, and
// replay applies each partition's changes once, in change order.
//
// Crash safety (a worker may die at any instruction):
//   Leaves behind: journal records after the last published durable
//     position (a write whose fdatasync had not returned), possibly torn;
//     durable records whose changes it had not yet marked journaled; stale
//     numbers in its JournalNodeState; a snapshot `.tmp` file.
//   Detected by: the journal lock, which the kernel releases at its death,
//     so the next worker can start; the watchdog sees the exit.
//   Repaired by: the next worker, at start: it cuts every record after the
//     published durable position (their changes are unmarked, so it
//     journals them again), overwrites the node's state, and journals the
//     unmarked changes again (replay applies each change once, by its
//     per-partition change sequence); the next snapshot removes stale
//     `.tmp` files.
//   Holds in every reachable state: a change marked journaled is in the
//     journal at or below the published durable position.
//
// Thread safety: one loop per stream per grid, enforced by an OFD lock on
// `<journal dir>/journal-<node>.lock` (stream 0) or
// `journal-<node>.<stream>.lock` (released by the kernel when the holder
// dies).
//
// Below, a "stream id" is io::StreamId(node, stream) (io/node_file_name.h):
// for stream 0 it is the node number.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/grid_handle.h"
#include "core/worker_arena.h"
#include "io/journal_device.h"
#include "numagrid/status.h"

namespace numagrid::core {

struct JournalWorkerOptions {
  std::uint32_t node = 0;
  // The node's journal stream, 0..streams per node - 1.
  std::uint32_t stream = 0;
  // Set (from a signal handler, another thread or a test) to stop: the loop
  // then drains every ring, flushes, and returns OK.
  const std::atomic<bool>* stop = nullptr;
  // One line per event (start, I/O error and retry, snapshot, stop).
  std::function<void(std::string_view)> log;
  // Makes the journal device; default: io_uring. Tests inject faults here.
  std::function<Result<std::unique_ptr<io::JournalDevice>>()> make_device;
  // The longest pause between retries after an I/O error.
  std::uint32_t max_backoff_ms = 2000;
  // A batch ends after this many journal bytes, so that one flush does not
  // hold a huge amount of memory or delay marking.
  std::uint64_t max_batch_bytes = 16ULL << 20;
  // The generation this worker was given (by the watchdog, which took it
  // with TakeWorkerGeneration before starting it); 0: take one after the
  // journal lock. A worker whose generation is no longer the node's
  // current one is fenced: it exits without writing.
  std::uint64_t generation = 0;
  // The node's task arena (core/worker_arena.h), in which the worker runs
  // the per-partition parts of a snapshot and of reclamation in parallel;
  // null: it runs them in its own thread. Not owned; outlives the call.
  WorkerArena* arena = nullptr;
};

// Runs the loop until options.stop is set; returns OK after the final drain.
// Errors before the loop starts: kInvalidArgument (no such node, or the grid
// has no journal), kAlreadyExists (another worker holds the node's journal),
// kCorruption (the journal is damaged other than at its tail: recover, or
// move the damaged file away), and the errors of opening the directory.
// kAlreadyExists, "fenced", at any time: the node's generation moved past
// this worker's (FenceNodeWorker, or a newer worker was started); it wrote
// nothing after it saw that and did not flush what it had appended.
Status RunJournalWorker(GridHandle& grid, const JournalWorkerOptions& options);

// Takes the stream's next generation for a worker about to start, fencing
// every older one. Returns it. `node` is a stream id.
std::uint64_t TakeWorkerGeneration(GridHandle& grid, std::uint32_t node);

// Fences the worker of stream id `node`: bumps the stream's generation, so that
// the worker steps down before its next journal write (at once if it runs, when
// resumed if it is stopped). Records a worker_fenced event with `cause`.
// Returns the new generation. The journal lock, not this, is what keeps two
// workers from writing one journal: fencing makes a superseded worker let go.
std::uint64_t FenceNodeWorker(GridHandle& grid, std::uint32_t node,
                              const std::string& cause);

// The locks on the stream's lock file (`<dir>/journal-<node>.lock` for
// stream 0, `journal-<node>.<stream>.lock` otherwise; `node` is a stream
// id), released when the returned
// descriptor is closed or the process dies:
//   kJournal (byte 0): held by the node's worker for its lifetime, so that
//     one worker journals a node. Taken without waiting: kAlreadyExists
//     naming the holder's pid.
//   kSnapshot (byte 1): held while a snapshot of the node is written and
//     pruned, by the worker or by `numagrid snapshot`.
// With `wait`, waits for the lock; without, kAlreadyExists when it is held.
enum class JournalLock { kJournal = 0, kSnapshot = 1 };
Result<int> LockNodeJournal(const std::string& dir, std::uint32_t node,
                            JournalLock which = JournalLock::kJournal,
                            bool wait = false);

// True if a process holds the stream's kJournal lock (a worker runs).
bool NodeJournalLocked(const std::string& dir, std::uint32_t node);

// Reads the tail of the stream's (stream id `node`) journal, cuts a torn tail
// off (logging what was dropped), and returns the sequence the next record
// gets. `floor` is the lowest sequence it may return (what the grid already
// counts durable, or a snapshot's coverage when the directory holds no
// segment). Records above `keep_upto` are cut off too: after a failed
// fdatasync, the records the failed writer did not confirm may sit in the page
// cache without being on disk.
Result<std::uint64_t> PrepareJournalTail(
    const std::string& dir, std::uint32_t node, std::uint64_t grid_id,
    std::uint64_t floor, const std::function<void(std::string_view)>& log,
    std::uint64_t keep_upto = UINT64_MAX);

}  // namespace numagrid::core
