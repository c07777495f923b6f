#include "tests/support/test_seed.h"

#include <cstdlib>
#include <iostream>
#include <random>

namespace numagrid::testing {

std::uint64_t TestSeed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("NUMAGRID_TEST_SEED");
    const std::uint64_t s =
        env != nullptr && *env != '\0'
            ? std::strtoull(env, nullptr, 0)
            : (std::uint64_t{std::random_device{}()} << 32) ^
                  std::random_device{}();
    std::cout << "[ seed     ] NUMAGRID_TEST_SEED=" << s << std::endl;
    return s;
  }();
  return seed;
}

}  // namespace numagrid::testing
