// RepairDeadProcesses: what the watchdog runs when it sees an attached
// process die (and what `numagrid check --repair` runs): clears the process
// slots whose owners died, so their pinned epochs no longer hold back
// reclamation, and repairs every partition whose lock holder died.
//
// Thread safety: thread-safe; safe to run while other processes read and
// write (each repair takes the lock it repairs under).
#pragma once

#include <cstdint>
#include <vector>

namespace numagrid::core {

class GridHandle;

struct RepairReport {
  std::vector<std::uint32_t> dead_slots;  // found dead
  std::uint32_t slots_repaired = 0;       // of those, cleared now
  std::uint32_t partitions_repaired = 0;  // lock holder had died
};

RepairReport RepairDeadProcesses(GridHandle& grid) noexcept;

}  // namespace numagrid::core
