// GridStatus: what `numagrid status` shows of a running grid: per journal
// stream (one per node, or K per node: docs/adr/0008-journal-streams.md),
// its journal worker (pid, alive, state, heartbeat age) and the journal's
// progress and lag (changes visible but not yet durable, per ring).
// Reads only; takes no lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/grid_handle.h"

namespace numagrid::core {

// One journal stream of a node and its worker.
struct NodeStatus {
  std::uint32_t node = 0;
  std::uint32_t stream = 0;      // the node's journal stream, 0..K-1
  std::uint64_t worker_pid = 0;  // 0: no worker has run
  bool worker_alive = false;     // the pid exists now
  std::string worker_state;      // "none", "running", "retrying", "stopped",
                                 // "dead" (its process is gone; it had not
                                 // stopped gracefully)
  std::int64_t heartbeat_age_ms = -1;  // -1: never
  std::uint64_t durable_journal_seq = 0;
  std::uint64_t records = 0;  // journaled since create
  std::uint64_t bytes = 0;
  std::uint64_t flushes = 0;
  std::uint64_t io_errors = 0;
  std::uint64_t pending_changes = 0;  // visible, not yet durable
  std::uint64_t max_ring_depth = 0;   // the fullest ring of the stream
  std::uint64_t ring_capacity = 0;
  std::uint64_t snapshots_done = 0;
  std::uint64_t generation = 0;         // the node's current generation
  std::uint64_t worker_generation = 0;  // the one the worker holds; less
                                        // than `generation`: it is fenced
  std::uint64_t restarts = 0;           // by the watchdog
  std::uint64_t fences = 0;             // workers that stepped down
  std::uint64_t expired_reclaimed = 0;  // expired entries removed by workers
  // How the worker's task arena is kept on the node (ArenaBindingName of
  // JournalNodeState::worker_arena) and its concurrency.
  std::string worker_arena = "unknown";
  std::uint32_t worker_arena_threads = 0;
};

struct GridStatusReport {
  std::string name;
  std::string journal_dir;         // "" without a journal
  std::string durability;          // "async", "sync" or "none"
  std::uint64_t watchdog_pid = 0;  // the running watchdog, 0 if none runs
  std::uint32_t streams_per_node = 1;
  // Node by node, the node's streams in order: node n's stream s at
  // n * streams_per_node + s.
  std::vector<NodeStatus> nodes;
};

GridStatusReport GridStatus(GridHandle& grid);

}  // namespace numagrid::core
