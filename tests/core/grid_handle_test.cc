#include "core/grid_handle.h"

#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "numa/topology.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

std::unique_ptr<GridHandle> SmallGrid(const std::string& name) {
  auto topo = numa::Topology::Load();
  EXPECT_TRUE(topo.ok());
  CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 8 << 20;
  EXPECT_TRUE(CreateGrid(name, o, *topo).ok());
  auto h = GridHandle::Attach(name);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  return h.ok() ? std::move(*h) : nullptr;
}

std::uint64_t PinnedEpoch(GridHandle& h) {
  return h.procs().slot(h.slot()).pinned_epoch.load();
}

// A read inside a visitor (a Get inside a Scan) must not end the outer
// read's pin: records the outer read still uses would become freeable.
TEST(GridHandle, NestedEpochGuardsKeepTheOuterPin) {
  const std::string name = testing::UniqueName();
  auto h = SmallGrid(name);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(PinnedEpoch(*h), 0u);
  {
    GridHandle::EpochGuard outer(*h);
    const std::uint64_t pinned = PinnedEpoch(*h);
    EXPECT_NE(pinned, 0u);
    {
      GridHandle::EpochGuard inner(*h);
      EXPECT_EQ(PinnedEpoch(*h), pinned) << "the inner guard re-pinned";
    }
    EXPECT_EQ(PinnedEpoch(*h), pinned) << "the inner guard unpinned the outer";
  }
  EXPECT_EQ(PinnedEpoch(*h), 0u);
  h.reset();
  ASSERT_TRUE(DestroyGrid(name).ok());
}

}  // namespace
}  // namespace numagrid::core
