// Placement: the p % nodes rule.
#include "numa/placement.h"

#include <string>

namespace numagrid::numa {

Result<Placement> PlacePartitionsOn(
    std::uint32_t partition_count, std::uint32_t node_count,
    std::span<const std::uint32_t> eligible_nodes) {
  if (partition_count == 0 || partition_count > kMaxPlacedPartitions) {
    return InvalidArgument("partition count " +
                           std::to_string(partition_count) + " is not in 1.." +
                           std::to_string(kMaxPlacedPartitions));
  }
  if (node_count == 0 || node_count > kMaxPlacedNodes) {
    return InvalidArgument("node count " + std::to_string(node_count) +
                           " is not in 1.." + std::to_string(kMaxPlacedNodes));
  }
  if (eligible_nodes.empty()) {
    return InvalidArgument("no node to place partitions on");
  }
  for (std::size_t i = 0; i < eligible_nodes.size(); ++i) {
    if (eligible_nodes[i] >= node_count ||
        (i > 0 && eligible_nodes[i] <= eligible_nodes[i - 1])) {
      return InvalidArgument(
          "eligible nodes must be ascending, distinct and below " +
          std::to_string(node_count));
    }
  }
  Placement out;
  out.node_of_partition.resize(partition_count);
  out.partitions_of_node.resize(node_count);
  const std::size_t n = eligible_nodes.size();
  for (std::uint32_t p = 0; p < partition_count; ++p) {
    const std::uint32_t node = eligible_nodes[p % n];
    out.node_of_partition[p] = node;
    out.partitions_of_node[node].push_back(p);
  }
  return out;
}

Result<Placement> PlacePartitions(std::uint32_t partition_count,
                                  std::uint32_t node_count) {
  if (node_count == 0 || node_count > kMaxPlacedNodes) {
    return InvalidArgument("node count " + std::to_string(node_count) +
                           " is not in 1.." + std::to_string(kMaxPlacedNodes));
  }
  std::vector<std::uint32_t> all(node_count);
  for (std::uint32_t i = 0; i < node_count; ++i) all[i] = i;
  return PlacePartitionsOn(partition_count, node_count, all);
}

Result<Placement> PlacePartitions(std::uint32_t partition_count,
                                  const Topology& topology) {
  const std::vector<std::uint32_t> eligible = topology.NodesWithCpus();
  if (eligible.empty()) {
    return InvalidArgument("topology (" + topology.source() +
                           ") has no node with CPUs");
  }
  return PlacePartitionsOn(partition_count, topology.node_count(), eligible);
}

}  // namespace numagrid::numa
