// How a grid's name maps onto the names of its shared-memory segments.
// Part of the on-host format: `numagrid list` and every attached process
// find a grid by these names (docs/adr/0001-architecture.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "numagrid/status.h"

namespace numagrid::core {

inline constexpr std::string_view kSegmentPrefix = "numagrid.";
inline constexpr std::size_t kMaxGridNameBytes = 48;

// Grid names: 1 to 48 of [A-Za-z0-9_-], not starting with '-'. Anything else
// is refused with kInvalidArgument saying why.
Status ValidateGridName(std::string_view name);

// "numagrid.<name>.ctl": the control segment; its presence means the grid
// exists.
std::string ControlSegmentName(std::string_view grid);
// "numagrid.<name>.node<id>": the data segment of NUMA node `node_id`.
std::string DataSegmentName(std::string_view grid, std::uint32_t node_id);
// "numagrid.<name>.lock": the lock file in /dev/shm whose bytes attached
// processes lock (one per process slot), so that their death is seen.
std::string LockFileName(std::string_view grid);
// "numagrid.<name>.": every segment of the grid starts with this.
std::string GridSegmentPrefix(std::string_view grid);

}  // namespace numagrid::core
