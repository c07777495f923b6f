// Reconciliation: `numagrid check NAME --journal` compares what readers see
// in shared memory with what the snapshots and journal say the grid holds
// (DESIGN invariant 4). It rebuilds the durable state in process memory from
// the journal directory (JournalReplay, touching no file) and compares it,
// key by key, with a scan of every partition.
//
// Changes that are visible but not yet journaled are not differences: the
// check first waits (bounded) for the rings to drain, and a partition that
// still has unjournaled changes, or changed during the check, has its
// differences reported as pending instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/grid_handle.h"
#include "numagrid/status.h"

namespace numagrid::core {

struct ReconcileOptions {
  std::uint32_t drain_wait_ms = 2000;  // for the rings to be journaled
  std::size_t max_listed = 100;        // differences listed by key
};

struct KeyDifference {
  std::uint32_t partition = 0;
  std::string key;
  std::string live;      // "absent" or "version V, N bytes[, expires T]"
  std::string journal;   // the same for the durable state
  bool pending = false;  // its partition has unjournaled or concurrent changes
};

struct ReconcileReport {
  std::uint64_t live_keys = 0;
  std::uint64_t journal_keys = 0;
  std::uint64_t differences = 0;  // not pending
  std::uint64_t pending_differences = 0;
  std::uint32_t pending_partitions = 0;
  std::vector<KeyDifference> listed;       // up to max_listed
  std::vector<std::string> dropped_tails;  // what replay stopped at
  std::vector<std::string> snapshots_rejected;
};

// kInvalidArgument for a grid without a journal; kCorruption when the
// journal cannot be replayed (damage before its tail).
Result<ReconcileReport> ReconcileWithJournal(GridHandle& grid,
                                             const ReconcileOptions& options);

}  // namespace numagrid::core
