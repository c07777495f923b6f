#include "core/data_segment_init.h"

#include <new>

#include "core/base/check.h"
#include "core/data_layout.h"
#include "core/partition.h"
#include "core/partition_layout.h"

namespace numagrid::core {
namespace {

std::uint64_t RoundUp(std::uint64_t v, std::uint64_t a) {
  return (v + a - 1) / a * a;
}

std::uint64_t TablesBytes(const DataSegmentPlan& p) {
  return RoundUp(p.index_slots * 8, 64) +
         RoundUp(p.ring_capacity * sizeof(RingEntry), 64);
}

}  // namespace

void DataSegmentPlan::Compute() noexcept {
  partitions_off = RoundUp(sizeof(DataBlock), 64);
  tables_off = RoundUp(
      partitions_off + sizeof(PartitionState) * partitions.size(), 4096);
  chunk_table_off =
      RoundUp(tables_off + TablesBytes(*this) * partitions.size(), 64);
  chunk_count = (arena_bytes + chunk_bytes - 1) / chunk_bytes;
  chunk_fill_off = RoundUp(chunk_table_off + 8 * chunk_count, 64);
  arena_off = RoundUp(chunk_fill_off + 8 * chunk_count, 4096);
  segment_bytes = RoundUp(arena_off + chunk_count * chunk_bytes, 2ULL << 20);
}

std::uint64_t DataSegmentPlan::index_off(std::size_t slot) const noexcept {
  return tables_off + slot * TablesBytes(*this);
}

std::uint64_t DataSegmentPlan::ring_off(std::size_t slot) const noexcept {
  return index_off(slot) + RoundUp(index_slots * 8, 64);
}

Status InitializeDataSegment(void* base, const DataSegmentPlan& plan) noexcept {
  auto* bytes = static_cast<std::byte*>(base);
  auto* block = static_cast<DataBlock*>(base);
  NodeHeader& n = block->node;
  n.node_id = plan.node_id;
  n.partition_count = static_cast<std::uint32_t>(plan.partitions.size());
  n.partitions_off = plan.partitions_off;
  n.chunk_table_off = plan.chunk_table_off;
  n.chunk_count = plan.chunk_count;
  n.chunk_bytes = plan.chunk_bytes;
  n.small_limit = plan.chunk_bytes / 8;
  n.arena_off = plan.arena_off;
  n.arena_bytes = plan.chunk_count * plan.chunk_bytes;
  n.chunk_fill_off = plan.chunk_fill_off;
  auto* parts = reinterpret_cast<PartitionState*>(bytes + plan.partitions_off);
  for (std::size_t i = 0; i < plan.partitions.size(); ++i) {
    PartitionState* p = new (&parts[i]) PartitionState();
    p->partition_id = plan.partitions[i];
    p->node_id = plan.node_id;
    p->index_off = plan.index_off(i);
    p->index_mask = plan.index_slots - 1;
    p->ring_off = plan.ring_off(i);
    p->ring_capacity = plan.ring_capacity;
    // Sequence numbers start at 1 so that version 0 can mean "no version".
    p->next_seq.store(1, std::memory_order_relaxed);
    p->journaled_seq.store(1, std::memory_order_relaxed);
    p->reclaimed_seq.store(1, std::memory_order_relaxed);
    p->stamped_seq.store(1, std::memory_order_relaxed);
    NUMAGRID_RETURN_IF_ERROR(PartitionRef::Initialize(p));
  }
  return Status::Ok();
}

}  // namespace numagrid::core
