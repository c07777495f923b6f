// The eviction and expiry options that `create` and `config` share: their
// specs for --help, and their parsing onto an EvictionConfig.
#pragma once

#include <vector>

#include "core/cli/command.h"
#include "core/eviction_config.h"

namespace numagrid::cli {

std::vector<OptionSpec> EvictionOptionSpecs();

// Applies the options present in `a` to `*config` (the others stay).
// kInvalidArgument naming the option; ranges are checked later, by
// core::ValidateEvictionConfig, against the grid.
Status ParseEvictionOptions(const ParsedArgs& a, core::EvictionConfig* config);

// True if any of them is present.
bool HasEvictionOptions(const ParsedArgs& a);

}  // namespace numagrid::cli
