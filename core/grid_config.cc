#include "core/grid_config.h"

#include <unistd.h>

#include <string>

#include "core/event_log.h"
#include "core/grid_handle.h"
#include "core/journal_dir.h"

namespace numagrid::core {

Result<EvictionConfig> ReadEvictionConfig(std::string_view name) {
  auto h = GridHandle::Attach(name);
  if (!h.ok()) return h.status();
  return LoadEvictionConfig((*h)->eviction());
}

Status ChangeEvictionConfig(std::string_view name, EvictionConfig next) {
  auto h = GridHandle::Attach(name);
  if (!h.ok()) return h.status();
  GridHandle& grid = **h;
  const std::uint64_t index_entries = grid.config().max_entries;
  if (next.max_entries == 0) next.max_entries = index_entries;
  NUMAGRID_RETURN_IF_ERROR(ValidateEvictionConfig(next, index_entries));
  const EvictionConfig before = LoadEvictionConfig(grid.eviction());
  const std::string dir = grid.journaled() ? grid.journal_dir() : "";
  if (!dir.empty()) {
    auto m = ReadManifest(dir);
    if (!m.ok()) return m.status().WithContext("config: the manifest");
    m->eviction = next;
    NUMAGRID_RETURN_IF_ERROR(WriteManifest(
        dir, *m, grid.config().mode,
        m->group.empty() ? std::nullopt
                         : std::optional<std::uint32_t>(grid.config().gid)));
  }
  StoreEvictionConfig(grid.eviction(), next);
  GridEvent e;
  e.kind = EventKind::kConfigChanged;
  e.pid = static_cast<std::uint64_t>(getpid());
  e.cause = "eviction " + std::string(EvictionPolicyName(before.policy)) +
            " -> " + std::string(EvictionPolicyName(next.policy)) + ", " +
            std::to_string(next.low_watermark_pct) + "-" +
            std::to_string(next.high_watermark_pct) + "%";
  RecordEvent(grid, e, dir);
  return Status::Ok();
}

}  // namespace numagrid::core
