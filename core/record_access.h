// A record's access word (RecordHeader::access): when it was last read or
// written and, for the lfu policy, how often. Pure functions, so that the
// policies' arithmetic is tested without a grid (docs/eviction.md).
//
//   bits  0..47  the last access, in ms since the Unix epoch (NowMs)
//   bits 48..55  a logarithmic access counter (LFU), 0..255
//   bits 56..63  zero
//
// The counter is Morris-style, as Redis keeps it: it starts at kLfuInit,
// grows by one with probability 1 / ((c - kLfuInit) * kLfuLogFactor + 1),
// so that it distinguishes about a million accesses in 8 bits, and loses
// one per minute without access, so that yesterday's hot keys cool down.
#pragma once

#include <algorithm>
#include <cstdint>

namespace numagrid::core {

inline constexpr std::uint64_t kAccessMsMask = (1ULL << 48) - 1;
inline constexpr std::uint32_t kLfuInit = 5;
inline constexpr std::uint32_t kLfuMax = 255;
inline constexpr std::uint64_t kLfuLogFactor = 10;
inline constexpr std::uint64_t kLfuDecayMs = 60'000;

constexpr std::uint64_t PackAccess(std::uint64_t ms,
                                   std::uint32_t lfu) noexcept {
  return (ms & kAccessMsMask) |
         (static_cast<std::uint64_t>(std::min(lfu, kLfuMax)) << 48);
}
constexpr std::uint64_t AccessMs(std::uint64_t word) noexcept {
  return word & kAccessMsMask;
}
constexpr std::uint32_t AccessLfu(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>((word >> 48) & 0xFF);
}

// The counter as of now_ms: one lost per kLfuDecayMs since the last access.
constexpr std::uint32_t DecayedLfu(std::uint64_t word,
                                   std::uint64_t now_ms) noexcept {
  const std::uint64_t last = AccessMs(word);
  const std::uint64_t idle = now_ms > last ? now_ms - last : 0;
  const std::uint64_t periods = idle / kLfuDecayMs;
  const std::uint32_t c = AccessLfu(word);
  return periods >= c ? 0 : c - static_cast<std::uint32_t>(periods);
}

// The word after an access at now_ms. `count_frequency`: keep the LFU
// counter (decay, then the logarithmic increment drawn from `random`, any
// uniformly distributed 64-bit number); otherwise the counter is kept as it
// is. Returns `word` itself when nothing changed, so that the caller can
// skip the store (and the cache line stays shared among readers).
constexpr std::uint64_t Touched(std::uint64_t word, std::uint64_t now_ms,
                                bool count_frequency,
                                std::uint64_t random) noexcept {
  std::uint32_t c = AccessLfu(word);
  if (count_frequency) {
    c = DecayedLfu(word, now_ms);
    if (c < kLfuMax) {
      const std::uint64_t base = c > kLfuInit ? c - kLfuInit : 0;
      // P(increment) = 1 / (base * factor + 1): compare `random` against
      // 2^64 / (base * factor + 1).
      const std::uint64_t odds = base * kLfuLogFactor + 1;
      if (odds == 1 || random < UINT64_MAX / odds) ++c;
    }
  }
  const std::uint64_t touched = PackAccess(now_ms, c);
  return AccessMs(word) >= (now_ms & kAccessMsMask) && AccessLfu(word) == c
             ? word
             : touched;
}

// The idle time of a record whose word is `word`.
constexpr std::uint64_t IdleMs(std::uint64_t word,
                               std::uint64_t now_ms) noexcept {
  const std::uint64_t last = AccessMs(word);
  return now_ms > last ? now_ms - last : 0;
}

// True if a record with this word has been idle for more than max_idle_ms
// (0: never).
constexpr bool IdleExpired(std::uint64_t word, std::uint64_t now_ms,
                           std::uint64_t max_idle_ms) noexcept {
  return max_idle_ms != 0 && IdleMs(word, now_ms) > max_idle_ms;
}

}  // namespace numagrid::core
