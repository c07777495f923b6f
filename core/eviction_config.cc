#include "core/eviction_config.h"

#include <algorithm>
#include <array>

namespace numagrid::core {
namespace {

constexpr std::array<std::string_view, kEvictPolicyCount> kPolicyNames = {
    "none", "lru", "lfu", "random", "ttl-first"};

}  // namespace

Result<std::uint32_t> ParseEvictionPolicy(std::string_view name) {
  for (std::uint32_t i = 0; i < kPolicyNames.size(); ++i) {
    if (kPolicyNames[i] == name) return i;
  }
  return InvalidArgument("unknown eviction policy '" + std::string(name) +
                         "' (one of " + EvictionPolicyNames() + ")");
}

std::string_view EvictionPolicyName(std::uint32_t policy) {
  return policy < kPolicyNames.size() ? kPolicyNames[policy] : "unknown";
}

std::string EvictionPolicyNames() {
  std::string s;
  for (std::string_view n : kPolicyNames) {
    if (!s.empty()) s += '|';
    s += n;
  }
  return s;
}

Status ValidateEvictionConfig(const EvictionConfig& c,
                              std::uint64_t index_entries) {
  if (c.policy >= kEvictPolicyCount) {
    return InvalidArgument("unknown eviction policy " +
                           std::to_string(c.policy));
  }
  if (c.high_watermark_pct < 1 || c.high_watermark_pct > 100) {
    return InvalidArgument("--high-watermark must be 1..100 (percent), not " +
                           std::to_string(c.high_watermark_pct));
  }
  if (c.low_watermark_pct < 1 || c.low_watermark_pct >= c.high_watermark_pct) {
    return InvalidArgument(
        "--low-watermark must be at least 1 and below --high-watermark (" +
        std::to_string(c.high_watermark_pct) + "), not " +
        std::to_string(c.low_watermark_pct));
  }
  if (c.samples < 1 || c.samples > kMaxEvictionSamples) {
    return InvalidArgument("--eviction-samples must be 1.." +
                           std::to_string(kMaxEvictionSamples) + ", not " +
                           std::to_string(c.samples));
  }
  if (c.max_entries > index_entries) {
    return InvalidArgument(
        "--max-entries " + std::to_string(c.max_entries) +
        " is more than the index was sized for (" +
        std::to_string(index_entries) +
        "); the index size is fixed at create (`create --max-entries`)");
  }
  return Status::Ok();
}

EvictionConfig LoadEvictionConfig(const EvictionSettings& s) noexcept {
  // relaxed: each field is independent (EvictionSettings); the clamps
  // below make any mix of old and new fields usable.
  constexpr auto r = std::memory_order_relaxed;
  EvictionConfig c;
  c.policy = s.policy.load(r);
  if (c.policy >= kEvictPolicyCount) c.policy = kEvictNone;
  c.high_watermark_pct = std::clamp(s.high_watermark_pct.load(r), 2u, 100u);
  c.low_watermark_pct =
      std::clamp(s.low_watermark_pct.load(r), 1u, c.high_watermark_pct - 1);
  c.samples = std::clamp(s.samples.load(r), 1u, kMaxEvictionSamples);
  c.max_entries = s.max_entries.load(r);
  c.default_ttl_ms = s.default_ttl_ms.load(r);
  c.max_idle_ms = s.max_idle_ms.load(r);
  return c;
}

void StoreEvictionConfig(EvictionSettings& s,
                         const EvictionConfig& c) noexcept {
  // relaxed: see LoadEvictionConfig.
  constexpr auto r = std::memory_order_relaxed;
  s.policy.store(c.policy, r);
  s.high_watermark_pct.store(c.high_watermark_pct, r);
  s.low_watermark_pct.store(c.low_watermark_pct, r);
  s.samples.store(c.samples, r);
  s.max_entries.store(c.max_entries, r);
  s.default_ttl_ms.store(c.default_ttl_ms, r);
  s.max_idle_ms.store(c.max_idle_ms, r);
  s.changes.fetch_add(1, r);
}

}  // namespace numagrid::core
