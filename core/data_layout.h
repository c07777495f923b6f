// The data segment's layout: one per NUMA node, "numagrid.<name>.node<id>",
// bound to that node's memory before its first byte is touched. It holds the
// partitions placed on the node. docs/data-segment.md is the format spec.
//
// Process safety: NodeHeader's fields are written once by `create` before the
// segment's magic is published and are constant afterwards. The partitions'
// own state is described in core/partition_layout.h.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a create killed before publishing the magic leaves a data
//     segment with magic 0 and no control segment.
//   Detected by: shm::Segment::Open (incomplete segment); `numagrid list`
//     (a grid with data segments but no control segment is "incomplete").
//   Repaired by: `numagrid destroy NAME`, by hand, at once.
//   Holds in every reachable state: a data segment with a valid magic has a
//     complete NodeHeader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/partition_layout.h"
#include "core/record.h"
#include "shm/layout_signature.h"
#include "shm/segment_header.h"

namespace numagrid::core {

// Bump on any change to a struct in this file (a test pins the signature).
inline constexpr std::uint32_t kDataLayoutVersion = 9;

// Segment layout: DataBlock | PartitionState[partition_count] | per partition
// its index slots and ring entries | chunk owner table | chunk fill table |
// arena of chunks.
struct NodeHeader {
  std::uint32_t node_id;
  std::uint32_t partition_count;  // partitions on this node
  std::uint64_t partitions_off;   // PartitionState[partition_count]
  std::uint64_t chunk_table_off;  // std::atomic<uint64_t>[chunk_count]
  std::uint64_t chunk_count;
  std::uint64_t chunk_bytes;  // a power of two
  std::uint64_t small_limit;  // blocks above this are whole chunks
  std::uint64_t arena_off;    // first byte of chunk 0
  std::uint64_t arena_bytes;  // chunk_count * chunk_bytes
  // std::atomic<uint64_t>[chunk_count]: each small-block chunk's bytes
  // handed out (core/partition_layout.h, "chunk fill").
  std::uint64_t chunk_fill_off;
  std::uint64_t reserved[7];
};
static_assert(std::is_standard_layout_v<NodeHeader>);
static_assert(std::is_trivially_copyable_v<NodeHeader>);
static_assert(sizeof(NodeHeader) == 128);

struct DataBlock {
  shm::SegmentHeader header;
  NodeHeader node;
};
static_assert(std::is_standard_layout_v<DataBlock>);

inline constexpr std::uint64_t kDataLayoutSignature =
    shm::LayoutSignature()
        .AddType<NodeHeader>()
        .Add(offsetof(NodeHeader, partitions_off))
        .Add(offsetof(NodeHeader, chunk_table_off))
        .Add(offsetof(NodeHeader, arena_off))
        .Add(offsetof(NodeHeader, arena_bytes))
        .Add(offsetof(NodeHeader, chunk_fill_off))
        .AddType<DataBlock>()
        .AddType<PartitionState>()
        .Add(offsetof(PartitionState, index_off))
        .Add(offsetof(PartitionState, next_seq))
        .Add(offsetof(PartitionState, stamped_seq))
        .Add(offsetof(PartitionState, counters))
        .Add(offsetof(PartitionState, journaled_bytes))
        .Add(sizeof(PartitionCounters))
        .Add(offsetof(PartitionCounters, cas_failures))
        .Add(offsetof(PartitionCounters, ring_high_water))
        .Add(offsetof(PartitionCounters, evictions))
        .Add(offsetof(PartitionCounters, expirations))
        .Add(offsetof(RingEntry, visible_ms))
        .Add(offsetof(WriteIntent, change_bytes_after))
        .Add(offsetof(PartitionState, cur_chunk_off))
        .Add(offsetof(PartitionState, free_head))
        .Add(offsetof(PartitionState, intent))
        .AddType<WriteIntent>()
        .AddType<RingEntry>()
        .AddType<RecordHeader>()
        .Add(kSmallClasses)
        .Add(kMaxUndo)
        .Add(kSlotDeleted)
        .Add(kChunkReleasing)
        .Add(kChunkLarge)
        .Add(kChunkLargeTail)
        .Add(kOpPut)
        .Add(kOpRemove)
        .value();

}  // namespace numagrid::core
