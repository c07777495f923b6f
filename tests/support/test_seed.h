// Seeds for randomized tests: one per test binary, printed so that a failure
// can be replayed with NUMAGRID_TEST_SEED=<seed>, and a mixer that turns a
// seed and a counter into well-spread 64-bit values.
#pragma once

#include <cstdint>

namespace numagrid::testing {

// NUMAGRID_TEST_SEED if set, else random; printed on first use.
std::uint64_t TestSeed();

// SplitMix64's finalizer: a bijection that spreads nearby inputs apart.
constexpr std::uint64_t Mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace numagrid::testing
