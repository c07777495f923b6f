// CheckGrid: `numagrid check`. Verifies every partition's structures and
// accounting, finds attached processes that died, and with `repair` clears
// their slots and repairs partitions whose lock holder died.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "numagrid/status.h"

namespace numagrid::core {

struct GridCheckReport {
  std::uint64_t live_entries = 0;
  std::uint64_t expired_entries = 0;
  std::uint64_t ring_entries = 0;
  std::uint32_t partitions_checked = 0;
  std::uint32_t partitions_repaired = 0;  // their lock holder had died
  std::vector<std::uint32_t> dead_slots;  // process slots whose owner died
  std::uint32_t slots_repaired = 0;
  std::vector<std::string> problems;  // empty when the grid is consistent
};

Result<GridCheckReport> CheckGrid(std::string_view name, bool repair);

}  // namespace numagrid::core
