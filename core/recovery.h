// Recovery: rebuilds a grid whose shared memory is gone (a reboot, a host
// crash, a destroyed grid) from its journal directory: the manifest shapes
// the segments, each node's newest valid snapshot and the journal after it
// are read and coalesced to each key's last change, which is applied,
// partitions in parallel (oneTBB). The rebuilt
// grid holds exactly the last durable state: every entry with the key,
// value, version and expiry it had. `numagrid recover` and a worker that
// finds its grid missing run it. docs/adr/0003-journal.md.
//
// Crash safety: the grid is created marked as recovering (Attach refuses
// it); a recover killed at any point leaves that mark, and the next recover
// removes the half-built segments and starts over. The journal itself is
// only changed by cutting a torn tail, which the next recover would cut the
// same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "numa/topology.h"
#include "numagrid/status.h"

namespace numagrid::core {

struct RecoveryOptions {
  std::function<void(std::string_view)> log;
  // A node's snapshot entries and journal records are coalesced per key
  // (each key's last put or remove) and applied, partitions in parallel, at
  // the end of the node's journal, or earlier, in steps, once the keys and
  // values held pass this many bytes: a node whose durable state is larger
  // is applied in steps, each leaving every partition in a state it had.
  std::uint64_t batch_bytes = 64ULL << 20;
};

// What the end of one node's journal lost.
struct DroppedTailReport {
  std::uint32_t node = 0;
  std::uint32_t stream = 0;  // the node's journal stream
  std::string kind;          // "torn_record", "corrupt_record", "torn_header"
  std::string file;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::uint64_t last_good_seq = 0;
  std::string reason;
};

struct RecoveryReport {
  std::uint64_t snapshot_entries = 0;  // loaded from snapshots
  std::uint64_t journal_records = 0;   // read after the snapshots
  std::uint64_t applied_records = 0;
  std::uint64_t skipped_records = 0;  // already in a snapshot, or journaled
                                      // twice by a restarted worker
  std::uint64_t live_entries = 0;     // in the rebuilt grid
  double seconds = 0;
  std::vector<std::string> snapshots_used;
  std::vector<std::string> snapshots_rejected;  // "<path>: <why>"
  std::vector<DroppedTailReport> dropped;
};

// Rebuilds grid `name` from `journal_dir`. Errors: kNotFound (no manifest
// there), kInvalidArgument (the manifest names another grid, or the machine
// has another number of NUMA nodes), kAlreadyExists (the grid's segments
// exist and are not a half-done recovery), kUnavailable (another recover is
// running), kCorruption (damage before the journal's tail, a missing
// journal segment; the half-built grid is removed), and create's errors.
Result<RecoveryReport> RecoverGrid(std::string_view name,
                                   const std::string& journal_dir,
                                   const numa::Topology& topology,
                                   const RecoveryOptions& options);

}  // namespace numagrid::core
