// The eviction settings of a grid (docs/eviction.md): the one part of the
// control segment that changes after create. `create` fills them,
// `numagrid config NAME` changes them while the grid runs; writers, readers
// and the workers read them on every operation that needs them.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace numagrid::core {

// EvictionSettings::policy
inline constexpr std::uint32_t kEvictNone = 0;  // a full grid refuses writes
inline constexpr std::uint32_t kEvictLru = 1;   // sampled least recently used
inline constexpr std::uint32_t kEvictLfu = 2;   // sampled least frequently used
inline constexpr std::uint32_t kEvictRandom = 3;
inline constexpr std::uint32_t kEvictTtlFirst = 4;  // expired, then soonest
inline constexpr std::uint32_t kEvictPolicyCount = 5;

inline constexpr std::uint32_t kDefaultHighWatermarkPct = 90;
inline constexpr std::uint32_t kDefaultLowWatermarkPct = 80;
inline constexpr std::uint32_t kDefaultEvictionSamples = 16;
inline constexpr std::uint32_t kMaxEvictionSamples = 64;

// Process safety: each field is its own atomic word, written by `config`
// (relaxed) and read relaxed by everyone. No reader needs two fields to
// agree: a reader that sees a policy from after a change and a watermark
// from before it acts, for one operation, on a mix of two valid settings.
// Consumers clamp what a mix could make invalid (low >= high is read as
// low = high - 1; a sample count of 0 as 1).
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a `config` killed half-way leaves some fields changed and
//     others not (each word is whole), and possibly the journal manifest
//     out of step with the segment.
//   Detected by: `numagrid config NAME` shows the settings in force.
//   Repaired by: running the same `config` command again, by hand.
//   Holds in every reachable state: every field holds a value `create` or
//     `config` validated.
struct alignas(64) EvictionSettings {
  std::atomic<std::uint32_t> policy;              // kEvict*
  std::atomic<std::uint32_t> high_watermark_pct;  // evict above this, 1..100
  std::atomic<std::uint32_t> low_watermark_pct;   // ... down to this
  std::atomic<std::uint32_t> samples;  // candidates compared per victim
  // Most live entries the grid keeps (0: only the memory limits it).
  std::atomic<std::uint64_t> max_entries;
  // TTL of a write that gives none (0: such writes never expire).
  std::atomic<std::uint64_t> default_ttl_ms;
  // An entry not read or written for this long expires (0: never).
  std::atomic<std::uint64_t> max_idle_ms;
  std::atomic<std::uint64_t> changes;  // bumped by every `config` change
  std::uint64_t reserved[2];
};
static_assert(std::is_standard_layout_v<EvictionSettings>);
static_assert(sizeof(EvictionSettings) == 64);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace numagrid::core
