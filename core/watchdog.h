// The watchdog (`numagrid start`): one per grid. It runs a journal worker
// process per journal stream (K per NUMA node, fixed at create:
// docs/adr/0008-journal-streams.md), restarts a worker that exits or whose
// heartbeat stops (killing it first), backs off when a worker keeps dying,
// repairs the slots of attached processes that died, and on stop asks the
// workers to drain and waits for them. Every event is logged and appended to
// `events.log` (JSON lines) in the journal directory.
//
// Each worker it starts gets its stream's next generation (fencing every
// older worker); before it kills a silent worker it fences it, so that a
// worker the kill does not reach steps down when it resumes instead of
// journaling on. Such a worker is never adopted; the watchdog starts newer
// ones (which exit while it still holds the journal lock, and are retried
// with back-off) and records its exit once it has stepped down. One worker
// per stream; each is restarted, fenced and adopted by (node, stream).
// docs/adr/0004-watchdog-and-fencing.md explains the design.
//
// Crash safety (the watchdog may die at any instruction):
//   Leaves behind: its pid in JournalBlock::watchdog_pid; its workers,
//     which go on journaling; possibly a partial last line in events.log.
//   Detected by: the watchdog lock, released by the kernel at its death
//     (RunningWatchdog checks the lock, not the pid).
//   Repaired by: the next `numagrid start`, which takes the lock, adopts
//     the running workers (each still holds its node's journal lock) and
//     overwrites the pid.
//
// Thread safety: one watchdog per grid, enforced by an OFD lock on
// `<journal dir>/watchdog.lock`, which the kernel releases when it dies.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "numagrid/status.h"

namespace numagrid::core {

struct WatchdogOptions {
  // The `numagrid` executable the workers run (`worker NAME --node N
  // --stream S`).
  std::string worker_exe;
  // A worker whose heartbeat is older than this is killed and replaced.
  std::uint32_t heartbeat_timeout_ms = 3000;
  // How often the watchdog looks at its workers and the process table.
  std::uint32_t poll_ms = 50;
  // Set to stop (from a signal handler): workers get SIGTERM, drain and
  // exit; the watchdog waits for them, then returns OK.
  const std::atomic<bool>* stop = nullptr;
  std::function<void(std::string_view)> log;
  // Called once every worker has been started the first time.
  std::function<void()> ready;
};

// Runs the watchdog of grid `name`, which must exist and have a journal.
// kAlreadyExists (naming its pid) if another watchdog runs it.
Status RunWatchdog(std::string_view name, const WatchdogOptions& options);

// The pid of the grid's running watchdog, or 0.
std::uint64_t RunningWatchdog(std::string_view name);

// True if process `pid` exists and has not exited (a zombie, exited but
// not yet reaped by its parent, counts as gone).
bool ProcessRunning(std::uint64_t pid);

}  // namespace numagrid::core
