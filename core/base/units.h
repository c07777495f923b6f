// Parsing and printing of byte sizes and durations given on command lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "numagrid/status.h"

namespace numagrid::base {

// "4096", "64KiB", "64K", "1.5GiB", "256MB": binary units (K, KB, KiB all
// mean 1024). Rejects negatives, garbage and overflow with kInvalidArgument.
Result<std::uint64_t> ParseSize(std::string_view text);

// 1536 -> "1.5 KiB", 67108864 -> "64 MiB".
std::string FormatSize(std::uint64_t bytes);

// A non-negative decimal integer that fits in `max`; kInvalidArgument naming
// `what` otherwise.
Result<std::uint64_t> ParseUint(std::string_view text, std::string_view what,
                                std::uint64_t max = UINT64_MAX);

// "250us", "10ms", "1.5s", "2m", "1h", "7d": a duration in microseconds. A bare
// number is milliseconds. Rejects negatives, garbage and overflow with
// kInvalidArgument naming `what`.
Result<std::uint64_t> ParseDurationUs(std::string_view text,
                                      std::string_view what);

}  // namespace numagrid::base
