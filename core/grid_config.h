// Changing a running grid's eviction and expiry settings (`numagrid config`):
// the journal manifest first, so that a grid recovered later comes back with
// them, then the control segment, where every process sees them at its next
// operation, then an event.
#pragma once

#include <string_view>

#include "core/eviction_config.h"
#include "numagrid/status.h"

namespace numagrid::core {

// The settings in force. Errors: GridHandle::Attach's.
Result<EvictionConfig> ReadEvictionConfig(std::string_view name);

// Validates `next` (kInvalidArgument, nothing changed) and puts it in force.
// next.max_entries 0: what the index was sized for. Errors also kIoError
// when the manifest cannot be written (nothing changed then either).
Status ChangeEvictionConfig(std::string_view name, EvictionConfig next);

}  // namespace numagrid::core
