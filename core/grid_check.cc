#include "core/grid_check.h"

#include "core/grid_handle.h"
#include "core/grid_repair.h"

namespace numagrid::core {

Result<GridCheckReport> CheckGrid(std::string_view name, bool repair) {
  auto h = GridHandle::Attach(name);
  if (!h.ok()) return h.status();
  GridHandle& g = **h;
  GridCheckReport rep;
  if (repair) {
    RepairReport rr = RepairDeadProcesses(g);
    rep.dead_slots = std::move(rr.dead_slots);
    rep.slots_repaired = rr.slots_repaired;
    rep.partitions_repaired = rr.partitions_repaired;
  } else {
    rep.dead_slots = g.procs().DeadSlots(g.lock_file());
  }
  const std::uint64_t now = NowMs();
  for (std::uint32_t p = 0; p < g.partition_count(); ++p) {
    // Check repairs a partition whose lock holder died: that repair is what
    // any next writer would do anyway, so it runs with or without --repair.
    PartitionCheckReport pr =
        g.partition(p).Check(g.limits(), g.partition_count(), now);
    ++rep.partitions_checked;
    if (pr.repaired) ++rep.partitions_repaired;
    rep.live_entries += pr.live_entries;
    rep.expired_entries += pr.expired_entries;
    rep.ring_entries += pr.ring_entries;
    for (auto& m : pr.problems) rep.problems.push_back(std::move(m));
  }
  if (!repair && !rep.dead_slots.empty()) {
    rep.problems.push_back(
        std::to_string(rep.dead_slots.size()) +
        " process slot(s) of dead processes (run with --repair)");
  }
  return rep;
}

}  // namespace numagrid::core
