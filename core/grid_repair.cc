#include "core/grid_repair.h"

#include "core/grid_handle.h"

namespace numagrid::core {

RepairReport RepairDeadProcesses(GridHandle& grid) noexcept {
  RepairReport r;
  try {
    r.dead_slots = grid.procs().DeadSlots(grid.lock_file());
  } catch (...) {
    // Out of memory for the list: repair nothing rather than throw.
    return r;
  }
  for (std::uint32_t s : r.dead_slots) {
    if (grid.procs().RepairDeadSlot(s, grid.lock_file())) ++r.slots_repaired;
  }
  for (std::uint32_t p = 0; p < grid.partition_count(); ++p) {
    if (grid.partition(p).RepairIfOwnerDied()) ++r.partitions_repaired;
  }
  return r;
}

}  // namespace numagrid::core
