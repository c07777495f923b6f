// Tests for numa/placement.h: partition p lives on node p % nodes, evenly,
// over 1, 2, 4 and 8 nodes, and memory-only nodes get nothing.
#include "numa/placement.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "numa/topology.h"

namespace numagrid::numa {
namespace {

using ::testing::ElementsAre;
using U32s = std::vector<std::uint32_t>;

// Checks everything a placement promises, for `eligible` nodes of `nodes`.
void ExpectEvenModuloPlacement(const Placement& pl, std::uint32_t partitions,
                               std::uint32_t nodes, const U32s& eligible) {
  ASSERT_EQ(pl.node_of_partition.size(), partitions);
  ASSERT_EQ(pl.partitions_of_node.size(), nodes);
  for (std::uint32_t p = 0; p < partitions; ++p) {
    EXPECT_EQ(pl.node_of_partition[p], eligible[p % eligible.size()])
        << "partition " << p;
  }
  std::size_t total = 0;
  std::size_t min_count = SIZE_MAX;
  std::size_t max_count = 0;
  for (std::uint32_t n = 0; n < nodes; ++n) {
    const U32s& list = pl.partitions_of_node[n];
    EXPECT_TRUE(std::is_sorted(list.begin(), list.end()));
    for (std::uint32_t p : list) EXPECT_EQ(pl.node_of_partition[p], n);
    total += list.size();
    if (std::find(eligible.begin(), eligible.end(), n) == eligible.end()) {
      EXPECT_TRUE(list.empty()) << "node " << n << " is not eligible";
      continue;
    }
    min_count = std::min(min_count, list.size());
    max_count = std::max(max_count, list.size());
  }
  EXPECT_EQ(total, partitions);
  EXPECT_LE(max_count - min_count, 1u) << partitions << " over " << nodes;
}

U32s AllNodes(std::uint32_t n) {
  U32s out(n);
  for (std::uint32_t i = 0; i < n; ++i) out[i] = i;
  return out;
}

TEST(Placement, PartitionPLivesOnNodePModNodesAndIsEven) {
  for (std::uint32_t partitions : {1u, 7u, 64u, 1000u}) {
    for (std::uint32_t nodes : {1u, 2u, 4u, 8u}) {
      SCOPED_TRACE(::testing::Message()
                   << partitions << " partitions over " << nodes << " nodes");
      Result<Placement> pl = PlacePartitions(partitions, nodes);
      ASSERT_TRUE(pl.ok()) << pl.status().ToString();
      ExpectEvenModuloPlacement(*pl, partitions, nodes, AllNodes(nodes));
    }
  }
}

TEST(Placement, FixedExampleSevenOverFour) {
  Result<Placement> pl = PlacePartitions(7, 4);
  ASSERT_TRUE(pl.ok());
  EXPECT_THAT(pl->node_of_partition, ElementsAre(0, 1, 2, 3, 0, 1, 2));
  EXPECT_THAT(pl->partitions_of_node[0], ElementsAre(0, 4));
  EXPECT_THAT(pl->partitions_of_node[3], ElementsAre(3));
}

TEST(Placement, MoreNodesThanPartitionsLeavesSomeNodesEmpty) {
  Result<Placement> pl = PlacePartitions(3, 8);
  ASSERT_TRUE(pl.ok());
  ExpectEvenModuloPlacement(*pl, 3, 8, AllNodes(8));
  EXPECT_TRUE(pl->partitions_of_node[5].empty());
}

TEST(Placement, ZeroOrOversizeCountsAreInvalidArgument) {
  EXPECT_EQ(PlacePartitions(0, 2).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlacePartitions(8, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlacePartitions(0, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlacePartitions(kMaxPlacedPartitions + 1, 2).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlacePartitions(8, kMaxPlacedNodes + 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(PlacePartitions(kMaxPlacedPartitions, 1).ok());
}

TEST(Placement, OnlyEligibleNodesGetPartitions) {
  const U32s eligible = {0, 2, 3};
  for (std::uint32_t partitions : {1u, 7u, 64u, 1000u}) {
    Result<Placement> pl = PlacePartitionsOn(partitions, 5, eligible);
    ASSERT_TRUE(pl.ok()) << pl.status().ToString();
    ExpectEvenModuloPlacement(*pl, partitions, 5, eligible);
  }
}

TEST(Placement, BadEligibleListIsInvalidArgument) {
  for (const U32s& bad : {U32s{}, U32s{0, 4}, U32s{2, 1}, U32s{1, 1}}) {
    EXPECT_EQ(PlacePartitionsOn(8, 4, bad).status().code(),
              StatusCode::kInvalidArgument)
        << ::testing::PrintToString(bad);
  }
}

TEST(Placement, OverSyntheticTopologiesMatchesTheNodeCount) {
  for (const char* desc :
       {"core:2 pu:1", "pack:2 numa:1 core:2 pu:1", "pack:4 numa:1 core:2 pu:2",
        "pack:8 numa:1 core:1 pu:1"}) {
    Result<Topology> t = Topology::FromSynthetic(desc);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    for (std::uint32_t partitions : {1u, 7u, 64u, 1000u}) {
      Result<Placement> a = PlacePartitions(partitions, *t);
      Result<Placement> b = PlacePartitions(partitions, t->node_count());
      ASSERT_TRUE(a.ok() && b.ok()) << desc;
      EXPECT_EQ(a->node_of_partition, b->node_of_partition) << desc;
      EXPECT_EQ(a->partitions_of_node, b->partitions_of_node) << desc;
    }
  }
}

TEST(Placement, MemoryOnlyNodesGetNoPartitions) {
  Result<Topology> t = Topology::FromSynthetic(
      "[numa(memory=1GiB)] pack:2 [numa(memory=2GiB)] core:2 pu:1");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->node_count(), 3u);
  Result<Placement> pl = PlacePartitions(7, *t);
  ASSERT_TRUE(pl.ok()) << pl.status().ToString();
  ExpectEvenModuloPlacement(*pl, 7, 3, {0, 1});
  EXPECT_TRUE(pl->partitions_of_node[2].empty());
}

}  // namespace
}  // namespace numagrid::numa
