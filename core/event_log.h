// Grid events: worker starts, exits, restarts, kills, adoptions, fencing,
// slot repairs, recoveries, journal I/O errors and writers' backpressure,
// with time, cause and duration. Each event
// goes into the control segment's ring (core/event_log_layout.h: the recent
// ones, readable by any attached process) and, as one JSON line, into
// `events.log` in the journal directory (the whole history, also after the
// shared memory is gone).
//
// Thread safety: thread-safe; any number of processes may record at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/grid_handle.h"

namespace numagrid::core {

enum class EventKind : std::uint32_t {
  kWatchdogStarted = 1,
  kWatchdogStopped,
  kWorkerStarted,
  kWorkerRestarted,
  kWorkerAdopted,
  kWorkerExited,
  kWorkerKilled,
  kWorkerFenced,
  kWorkerStartFailed,
  kWorkerStoppedByWatchdog,  // drained and exited on `stop`
  kCrashLoopBackoff,
  kRepair,
  kRecovery,
  kWorkerSteppedDown,   // a fenced worker noticed and exited
  kConfigChanged,       // `numagrid config` changed the eviction settings
  kJournalIoError,      // a journal write or flush failed; retried (worker)
  kJournalIoRecovered,  // journal writes succeed again after errors (worker)
  kBackpressure,  // writers waited for change-ring room (watchdog, by poll)
};

// "worker_fenced", ...; "unknown" for a value no EventKind has.
std::string_view EventKindName(EventKind kind) noexcept;

struct GridEvent {
  std::uint64_t seq = 0;  // the event's number in the grid (set on record)
  std::uint64_t time_unix_ms = 0;  // set on record if 0
  EventKind kind = EventKind::kRepair;
  // -1: not about one node. Else io::StreamId(node, stream): the node for
  // stream 0, node + (stream << 16) for a worker of a later journal stream
  // (docs/adr/0008-journal-streams.md).
  std::int32_t node = -1;
  std::uint64_t pid = 0;          // 0: no process
  std::uint64_t generation = 0;   // 0: none
  std::int64_t duration_ms = -1;  // -1: none
  std::string cause;              // cut to 79 bytes in the ring
};

// Appends `event` to the grid's ring and to events.log in `journal_dir`
// (skipped if empty; a failed append is ignored: the ring has it). Returns
// the event as recorded (with its number and time).
GridEvent RecordEvent(GridHandle& grid, GridEvent event,
                      const std::string& journal_dir);

// Appends one line to events.log in `journal_dir` only (for events of a
// grid whose segments do not exist, such as a recovery in progress).
void AppendEventLine(const std::string& journal_dir, std::string_view grid_name,
                     const GridEvent& event);

// The events in the grid's ring, oldest first (at most kEventLogCapacity;
// a half-written one is left out).
std::vector<GridEvent> ReadEvents(GridHandle& grid);

// One event as a one-line JSON object: time_unix_ms, seq, event, grid,
// then node, pid, generation, duration_ms and cause when set.
std::string EventJson(const GridEvent& event, std::string_view grid_name);

}  // namespace numagrid::core
