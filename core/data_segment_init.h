// How `create` lays out a data segment: the sizes and offsets of its
// partitions, indexes, rings, chunk table and arena, and the initialization
// of that memory before the segment is published.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "numagrid/status.h"

namespace numagrid::core {

struct DataSegmentPlan {
  std::uint32_t node_id = 0;
  std::vector<std::uint32_t> partitions;  // partition ids on this node, by slot
  std::uint64_t index_slots = 0;          // per partition, a power of two
  std::uint64_t ring_capacity = 0;        // per partition, a power of two
  std::uint64_t chunk_bytes = 0;
  std::uint64_t arena_bytes = 0;  // requested record memory

  // Filled by Compute():
  std::uint64_t partitions_off = 0;
  std::uint64_t tables_off = 0;  // first partition's index
  std::uint64_t chunk_table_off = 0;
  std::uint64_t chunk_count = 0;
  std::uint64_t chunk_fill_off = 0;
  std::uint64_t arena_off = 0;
  std::uint64_t segment_bytes = 0;

  void Compute() noexcept;
  std::uint64_t index_off(std::size_t slot) const noexcept;
  std::uint64_t ring_off(std::size_t slot) const noexcept;
};

// Writes the node header and every partition's initial state into the
// mapped, zeroed segment at `base`. Runs before the segment is published.
Status InitializeDataSegment(void* base, const DataSegmentPlan& plan) noexcept;

}  // namespace numagrid::core
