// The eviction settings as plain values: parsing and naming the policies,
// validation, and moving them in and out of the control segment's
// EvictionSettings (core/eviction_layout.h). `create`, `config`, the
// manifest and the data path share these.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/eviction_layout.h"
#include "numagrid/status.h"

namespace numagrid::core {

struct EvictionConfig {
  std::uint32_t policy = kEvictNone;
  std::uint32_t high_watermark_pct = kDefaultHighWatermarkPct;
  std::uint32_t low_watermark_pct = kDefaultLowWatermarkPct;
  std::uint32_t samples = kDefaultEvictionSamples;
  std::uint64_t max_entries = 0;  // 0: what the index was sized for
  std::uint64_t default_ttl_ms = 0;
  std::uint64_t max_idle_ms = 0;

  bool operator==(const EvictionConfig&) const = default;
};

// "none", "lru", "lfu", "random", "ttl-first".
Result<std::uint32_t> ParseEvictionPolicy(std::string_view name);
std::string_view EvictionPolicyName(std::uint32_t policy);
// Every policy name, for help texts: "none|lru|lfu|random|ttl-first".
std::string EvictionPolicyNames();

// kInvalidArgument naming the bad setting: watermarks 1..100 with low <
// high, samples 1..kMaxEvictionSamples, max_entries at most
// `index_entries` (what the index was sized for).
Status ValidateEvictionConfig(const EvictionConfig& config,
                              std::uint64_t index_entries);

// Reads the settings (relaxed, field by field) and clamps what a config
// change seen half-way could make inconsistent (see EvictionSettings).
EvictionConfig LoadEvictionConfig(const EvictionSettings& settings) noexcept;
// Stores every field (relaxed) and bumps `changes`.
void StoreEvictionConfig(EvictionSettings& settings,
                         const EvictionConfig& config) noexcept;

}  // namespace numagrid::core
