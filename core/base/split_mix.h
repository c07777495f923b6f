// splitmix64: a fast, well-mixed stream of 64-bit numbers from a counter,
// for choices that need no cryptographic strength (eviction samples, the
// LFU counter's coin).
#pragma once

#include <cstdint>

namespace numagrid::base {

inline std::uint64_t SplitMix64(std::uint64_t* state) noexcept {
  std::uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace numagrid::base
