// Grid administration: create, inspect, list and destroy the segments of a
// grid. These are the operations behind `numagrid create|info|list|destroy`.
//
// Thread safety: the functions are thread-safe; concurrent creates of one name
// are resolved by exclusive segment creation (one wins, the other gets
// kAlreadyExists and removes nothing of the winner's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/eviction_config.h"
#include "core/journal_dir.h"
#include "numa/topology.h"
#include "numagrid/status.h"

namespace numagrid::core {

struct CreateOptions {
  std::uint32_t partitions = 64;
  std::uint64_t memory_bytes = 256ULL << 20;  // all nodes together
  std::optional<std::string> group;           // 0660 and this group, else 0600
  std::uint32_t max_key_bytes = 250;
  std::uint32_t max_value_bytes = 1U << 20;
  std::uint64_t max_entries = 0;       // index sizing; 0: memory_bytes / 128
  std::uint64_t ring_capacity = 1024;  // change-ring entries per partition
  std::uint32_t process_capacity = 256;
  std::uint32_t lock_timeout_ms = 1000;
  std::uint32_t ring_wait_ms = 1000;
  bool bind = true;      // false only to check that placement tests can fail
  bool prefault = true;  // touch every page at create (no faults later)
  // Keep the monitoring counters on the data path (docs/monitoring.md);
  // false: `create --no-stats`.
  bool stats = true;
  // Eviction and expiry (docs/eviction.md); changeable later with
  // `numagrid config`. eviction.max_entries 0: the index's size.
  EvictionConfig eviction;

  // The journal (docs/adr/0003-journal.md). An empty journal_dir makes a
  // memory-only grid: writers mark their own changes journaled and nothing
  // survives the segments. Otherwise a worker per node (`numagrid worker`)
  // journals every change there.
  std::string journal_dir;
  std::uint32_t durability = 0;  // kDurabilityAsync or kDurabilitySync
  std::uint32_t flush_interval_us = 10000;
  std::uint64_t journal_segment_bytes = 64ULL << 20;
  std::uint32_t sync_wait_ms = 5000;
  std::uint64_t snapshot_bytes = 256ULL << 20;  // 0: not by journal size
  std::uint32_t snapshot_interval_s = 0;        // 0: not by time
  // Journal streams per node, each written by a worker of its own
  // (`--workers-per-node`, 1..kMaxStreamsPerNode; a grid without a journal
  // has no workers and takes only 1). docs/adr/0008-journal-streams.md.
  std::uint32_t workers_per_node = 1;

  // For `recover` only: reuse this grid id and the journal directory as it
  // is, and leave the grid marked as recovering (Attach refuses it until
  // FinishRecovery).
  std::uint64_t grid_id = 0;
  bool recovering = false;
};

struct CreateReport {
  std::uint32_t node_count = 0;
  bool all_bound = false;       // every data segment bound to its node
  std::string topology_source;  // "system", "synthetic: ...", "xml: ..."
};

// Creates grid `name` on `topology`: P partitions spread over its nodes, one
// control segment and one data segment per node, each bound to its node and
// prefaulted. On any failure nothing this call created is left behind.
// Errors: kInvalidArgument (bad name or option), kAlreadyExists,
// kPermissionDenied, kResourceExhausted (no room in /dev/shm), kIoError.
Result<CreateReport> CreateGrid(std::string_view name,
                                const CreateOptions& options,
                                const numa::Topology& topology);

// Removes every segment of grid `name`, complete or not. kNotFound when there
// is none. The journal directory stays.
Status DestroyGrid(std::string_view name);

// The create options that `manifest` records (core/journal_dir.h), for
// `recover`, with the journal directory `dir`.
CreateOptions OptionsFromManifest(const GridManifest& manifest,
                                  const std::string& dir);

struct NodeReport {
  std::uint32_t node_id = 0;
  std::uint32_t os_index = 0;
  std::string segment_name;
  std::uint64_t segment_bytes = 0;
  std::uint64_t arena_bytes = 0;
  std::uint64_t chunk_bytes = 0;
  bool bound = false;
  std::vector<std::uint32_t> partitions;
  // Nodes that hold the segment's pages now, as the OS reports them; empty
  // when it cannot tell (synthetic topology, or nothing touched yet).
  std::vector<std::uint32_t> resident_nodes;
};

struct GridReport {
  std::string name;
  std::uint64_t grid_id = 0;
  std::uint32_t control_layout_version = 0;
  std::uint32_t data_layout_version = 0;
  std::uint64_t created_unix_ns = 0;
  std::uint32_t owner_uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t mode = 0;
  std::uint32_t partition_count = 0;
  std::uint64_t memory_bytes = 0;
  std::uint32_t max_key_bytes = 0;
  std::uint32_t max_value_bytes = 0;
  std::uint64_t max_entries = 0;
  std::uint64_t index_slots = 0;    // per partition
  std::uint64_t ring_capacity = 0;  // per partition
  std::uint32_t process_capacity = 0;
  bool prefaulted = false;
  std::string journal_dir;  // "" for a memory-only grid
  std::string durability;   // "async", "sync" or "none"
  std::uint32_t flush_interval_us = 0;
  std::uint32_t workers_per_node = 1;  // journal streams per node
  bool recovering = false;
  std::string topology_source;
  std::string control_segment;
  std::vector<NodeReport> nodes;
};

// Opens and validates every segment of grid `name` and describes it. When
// `readback` is given and describes this system, reports where the pages of
// each data segment sit. Errors: kNotFound (no such grid), kVersionMismatch,
// kCorruption, kPermissionDenied.
Result<GridReport> InspectGrid(std::string_view name,
                               const numa::Topology* readback);

struct GridListing {
  std::string name;
  bool complete = false;  // false: segments without a valid control segment
  std::string problem;    // why it is incomplete
};

// The grids on this host, by name.
std::vector<GridListing> ListGrids();

}  // namespace numagrid::core
