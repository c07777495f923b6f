// Placement: which NUMA node each partition of a grid lives on.
//
// The rule is fixed and documented (docs/numa.md): partition p lives on node
// p % node_count. It is even (the partition counts of two nodes differ by at
// most one), needs no state, and every process computes the same answer from
// the partition and node counts alone.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "numa/topology.h"
#include "numagrid/status.h"

namespace numagrid::numa {

// Limits that keep a placement small; a grid needs far fewer.
inline constexpr std::uint32_t kMaxPlacedPartitions = 1u << 20;
inline constexpr std::uint32_t kMaxPlacedNodes = 4096;

// Immutable value; safe to copy between threads.
struct Placement {
  // node_of_partition[p]: the node id partition p lives on.
  std::vector<std::uint32_t> node_of_partition;
  // partitions_of_node[n]: the partitions on node n, ascending; one entry per
  // node id, empty for a node that got none.
  std::vector<std::vector<std::uint32_t>> partitions_of_node;
};

// Partition p goes to node p % node_count.
// kInvalidArgument if either count is 0 or above its kMaxPlaced* limit.
Result<Placement> PlacePartitions(std::uint32_t partition_count,
                                  std::uint32_t node_count);

// Places only on `eligible_nodes` (ascending, distinct, each < node_count):
// partition p goes to eligible_nodes[p % eligible_nodes.size()];
// partitions_of_node still has node_count entries. With every node eligible
// this is PlacePartitions(partition_count, node_count).
// kInvalidArgument for a zero or oversize count or a bad eligible list.
Result<Placement> PlacePartitionsOn(
    std::uint32_t partition_count, std::uint32_t node_count,
    std::span<const std::uint32_t> eligible_nodes);

// Places on the nodes of `topology` that have CPUs (Topology::NodesWithCpus):
// memory-only nodes get no partitions, because no worker can run there. On a
// machine without memory-only nodes this equals
// PlacePartitions(partition_count, topology.node_count()).
Result<Placement> PlacePartitions(std::uint32_t partition_count,
                                  const Topology& topology);

}  // namespace numagrid::numa
