// Snapshots: a node's partitions copied to a snapshot file
// (io/snapshot_file.h), so that recovery need not replay the whole journal
// and the journal can be cut. Each partition is copied under its lock into
// process memory (its writers pause for the copy, not for the disk), then
// written. The node's worker takes them (on request or by journal size);
// when no worker runs, `numagrid snapshot` takes them itself. Either holds
// the node's snapshot lock meanwhile. docs/adr/0003-journal.md.
//
// What a snapshot covers: J, the node's durable journal sequence read before
// the first partition is copied. Every journal record <= J was marked
// journaled before J was published, so its change is below the partition's
// next sequence at copy time, which the section records as covered.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/grid_handle.h"
#include "core/worker_arena.h"
#include "numagrid/status.h"

namespace numagrid::core {

struct NodeSnapshotReport {
  std::uint32_t node = 0;
  std::uint32_t stream = 0;  // the node's journal stream
  std::string path;
  std::uint64_t journal_seq = 0;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  bool by_worker = false;
  std::uint64_t segments_deleted = 0;  // journal segments it made redundant
};

// Writes a snapshot of journal stream `node` (a stream id,
// io::StreamId: the stream's partitions; for stream 0 the node number) and
// prunes: keeps the two newest snapshots
// and deletes the journal segments the older of them covers (so a damaged
// newest snapshot still has a complete fallback). REQUIRES: the caller
// holds the node's snapshot lock (LockNodeJournal(..., kSnapshot)).
// `tick`, if set, is called after each partition: the worker's heartbeat
// while a long snapshot runs. With `arena`, the partitions are copied in
// groups of its concurrency, in parallel on its threads (the file is
// written in partition order either way); without, one after the other.
Result<NodeSnapshotReport> WriteNodeSnapshot(
    GridHandle& grid, std::uint32_t node,
    const std::function<void(std::string_view)>& log,
    const std::function<void()>& tick = nullptr, WorkerArena* arena = nullptr);

struct SnapshotOptions {
  std::function<void(std::string_view)> log;
  std::uint32_t worker_timeout_ms = 120000;  // wait for a worker's answer
};

// Snapshots every journal stream of every node: through its worker when one
// runs, else here.
Result<std::vector<NodeSnapshotReport>> SnapshotGrid(
    GridHandle& grid, const SnapshotOptions& options);

}  // namespace numagrid::core
