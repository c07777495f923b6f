// The control segment's layout: one per grid, "numagrid.<name>.ctl". It holds
// the grid's configuration and partition map (and, as the grid grows, its
// process and worker tables). docs/control-segment.md is the format spec.
//
// Process safety: everything in this file is written once by `create` before
// the segment's magic is published, and is constant afterwards, so any number
// of processes read it without synchronization. (The journal, stats and
// eviction blocks it points at are not: their own headers say how they
// change.)
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a create killed before publishing the magic leaves a
//     control segment whose magic is 0 (and data segments without a control
//     segment if it died earlier).
//   Detected by: shm::Segment::Open refuses magic 0 as incomplete;
//     `numagrid list` shows such grids as "incomplete".
//   Repaired by: `numagrid destroy NAME` (removes every segment of the grid),
//     by hand, at once.
//   Holds in every reachable state: a control segment with a valid magic has
//     a complete configuration and partition map, and its data segments exist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/eviction_layout.h"
#include "core/journal_layout.h"
#include "core/stats_layout.h"
#include "shm/layout_signature.h"
#include "shm/process_table.h"
#include "shm/segment_header.h"

namespace numagrid::core {

// Bump on any change to a struct in this file (a test pins the signature).
inline constexpr std::uint32_t kControlLayoutVersion = 9;

inline constexpr std::uint32_t kMaxPartitions = 65536;
inline constexpr std::uint32_t kMaxNodes = 1024;

// GridConfig::flags
inline constexpr std::uint32_t kConfigMemoryBound =
    1u << 0;  // data segments bound to their nodes
inline constexpr std::uint32_t kConfigPrefaulted =
    1u << 1;  // every page touched at create
inline constexpr std::uint32_t kConfigNoStats =
    1u << 2;  // `create --no-stats`: the data path keeps no monitoring counters

struct GridConfig {
  char name[64];  // NUL-terminated grid name
  std::uint32_t partition_count;
  std::uint32_t node_count;
  std::uint64_t memory_bytes;  // data memory of all nodes together
  std::uint32_t max_key_bytes;
  std::uint32_t max_value_bytes;
  std::uint32_t flags;  // kConfig*
  std::uint32_t mode;   // file mode of every segment
  std::uint32_t gid;    // group of every segment
  // Read-counter buckets per process slot (core/stats_layout.h): the
  // partition count (hits per partition) or the node count (per node).
  std::uint32_t read_buckets;
  std::uint64_t nodes_off;         // NodeEntry[node_count], from segment start
  std::uint64_t partitions_off;    // PartitionEntry[partition_count]
  char topology_source[128];       // what hwloc described at create
  std::uint32_t journal_mode;      // kJournal* (core/partition.h)
  std::uint32_t process_capacity;  // slots in the process table
  std::uint64_t procs_off;         // shm::ProcessTable, from segment start
  std::uint64_t procs_bytes;
  std::uint64_t ring_capacity;    // change-ring entries per partition
  std::uint64_t index_slots;      // index slots per partition
  std::uint64_t max_entries;      // what the index was sized for
  std::uint32_t lock_timeout_ms;  // writers wait this long for a partition lock
  std::uint32_t ring_wait_ms;     // ... and this long for change-ring space
  std::uint64_t journal_off;      // JournalBlock (core/journal_layout.h)
  std::uint64_t stats_off;        // NodeStats[node_count], then
                                  // ProcessStats[process_capacity], then
                                  // a ReadCounters row per slot
                                  // (core/stats_layout.h), 64-byte aligned
  std::uint64_t stats_bytes;
  // EvictionSettings (core/eviction_layout.h), 64-byte aligned: unlike
  // everything else here, changed after create (`numagrid config`).
  std::uint64_t eviction_off;
  std::uint64_t reserved[6];  // zero; for later fields
};
static_assert(std::is_standard_layout_v<GridConfig>);
static_assert(std::is_trivially_copyable_v<GridConfig>);
static_assert(sizeof(GridConfig) == 384);

// NodeEntry::flags
inline constexpr std::uint32_t kNodeBound =
    1u << 0;  // BindMemory applied (not skipped)

struct NodeEntry {
  std::uint32_t node_id;          // logical NUMA node id
  std::uint32_t os_index;         // the kernel's node number at create
  std::uint64_t segment_bytes;    // size of "numagrid.<name>.node<id>"
  std::uint32_t partition_count;  // partitions placed on this node
  std::uint32_t flags;            // kNode*
  std::uint64_t reserved[2];
};
static_assert(std::is_standard_layout_v<NodeEntry>);
static_assert(std::is_trivially_copyable_v<NodeEntry>);
static_assert(sizeof(NodeEntry) == 40);

struct PartitionEntry {
  std::uint32_t node_id;       // the node whose data segment holds it
  std::uint32_t slot_in_node;  // its index among that node's partitions
};
static_assert(std::is_standard_layout_v<PartitionEntry>);
static_assert(sizeof(PartitionEntry) == 8);

// The first bytes of the control segment.
struct ControlBlock {
  shm::SegmentHeader header;
  GridConfig config;
};
static_assert(std::is_standard_layout_v<ControlBlock>);
static_assert(offsetof(ControlBlock, config) == sizeof(shm::SegmentHeader));

inline constexpr std::uint64_t kControlLayoutSignature =
    shm::LayoutSignature()
        .Add(sizeof(GridConfig))
        .Add(offsetof(GridConfig, partition_count))
        .Add(offsetof(GridConfig, memory_bytes))
        .Add(offsetof(GridConfig, flags))
        .Add(offsetof(GridConfig, nodes_off))
        .Add(offsetof(GridConfig, topology_source))
        .Add(offsetof(GridConfig, procs_off))
        .Add(offsetof(GridConfig, ring_capacity))
        .Add(offsetof(GridConfig, lock_timeout_ms))
        .Add(sizeof(NodeEntry))
        .Add(offsetof(NodeEntry, segment_bytes))
        .Add(offsetof(NodeEntry, flags))
        .Add(sizeof(PartitionEntry))
        .Add(sizeof(ControlBlock))
        .Add(offsetof(GridConfig, journal_off))
        .Add(offsetof(GridConfig, eviction_off))
        .AddType<EvictionSettings>()
        .Add(offsetof(EvictionSettings, max_entries))
        .Add(offsetof(EvictionSettings, changes))
        .Add(sizeof(JournalBlock))
        .Add(sizeof(JournalNodeState))
        .Add(offsetof(JournalNodeState, wake))
        .Add(offsetof(JournalNodeState, generation))
        .Add(offsetof(JournalConfig, streams_per_node))
        .Add(sizeof(EventLog))
        .Add(sizeof(EventSlot))
        .Add(offsetof(GridConfig, stats_off))
        .Add(sizeof(NodeStats))
        .Add(sizeof(ProcessStats))
        .Add(offsetof(ProcessStats, reads_at_claim))
        .Add(sizeof(ReadCounters))
        .Add(offsetof(GridConfig, read_buckets))
        .Add(offsetof(NodeStats, lag_ms))
        .Add(offsetof(NodeStats, lag_last_ms))
        .Add(kHistogramBuckets)
        .Add(kConfigNoStats)
        .Add(shm::kProcessTableLayoutSignature)
        .value();

}  // namespace numagrid::core
