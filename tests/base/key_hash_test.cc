#include "core/base/key_hash.h"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace numagrid::base {
namespace {

// Golden values: journals and snapshots name partitions by this hash, so a
// change here is a change of the on-disk format (docs/key-hash.md).
TEST(KeyHash, GoldenValuesNeverChange) {
  EXPECT_EQ(KeyHash(""), 0x7acdbb98b1344213ULL);
  EXPECT_EQ(KeyHash("a"), 0xac6c43a6b757e724ULL);
  EXPECT_EQ(KeyHash("orders:42"), 0x03ee55466a5e75a7ULL);
  EXPECT_EQ(KeyHash("0123456789abcdef"), 0x024185ecf3ab21a0ULL);
  EXPECT_EQ(KeyHash("the quick brown fox jumps over the lazy dog"),
            0x2c12b75a8beed507ULL);
}

TEST(KeyHash, GoldenPartitionsNeverChange) {
  EXPECT_EQ(PartitionOf(KeyHash("user1000"), 64), 36u);
  EXPECT_EQ(PartitionOf(KeyHash("user1001"), 7), 1u);
  EXPECT_EQ(PartitionOf(KeyHash("user1000"), 271), 156u);
  EXPECT_EQ(PartitionOf(KeyHash("k"), 64), 51u);
}

TEST(KeyHash, LengthIsPartOfTheHash) {
  // Zero padding of the tail must not make "a" and "a\0" collide.
  EXPECT_NE(KeyHash(std::string("a", 1)), KeyHash(std::string("a\0", 2)));
  EXPECT_NE(KeyHash(std::string(8, '\0')), KeyHash(std::string(16, '\0')));
}

TEST(KeyHash, DoesNotDependOnAlignment) {
  std::string buf = "xxxxxxxxhello-world-key";
  std::string copy = buf.substr(3);
  EXPECT_EQ(KeyHash(buf.data() + 3, buf.size() - 3), KeyHash(copy));
}

TEST(PartitionOf, SpreadsKeysEvenly) {
  constexpr std::uint32_t kParts = 64;
  constexpr int kKeys = 64000;
  std::vector<int> count(kParts);
  for (int i = 0; i < kKeys; ++i) {
    ++count[PartitionOf(KeyHash("user" + std::to_string(i)), kParts)];
  }
  // Expected 1000 per partition; 5 sigma of a binomial is about 160.
  for (std::uint32_t p = 0; p < kParts; ++p) {
    EXPECT_GT(count[p], 840) << "partition " << p;
    EXPECT_LT(count[p], 1160) << "partition " << p;
  }
}

TEST(PartitionOf, StaysInRange) {
  for (std::uint32_t parts : {1u, 2u, 3u, 64u, 1000u, 65536u}) {
    EXPECT_EQ(PartitionOf(0, parts), 0u);
    EXPECT_EQ(PartitionOf(~0ULL, parts), parts - 1);
  }
}

}  // namespace
}  // namespace numagrid::base
