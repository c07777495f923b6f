// Tests for shm/layout_signature.h: the values are pinned, because a
// signature that drifts between builds refuses every existing segment.
#include "shm/layout_signature.h"

#include <cstddef>
#include <cstdint>

#include <gtest/gtest.h>

namespace numagrid::shm {
namespace {

struct Sample {
  std::uint64_t a;
  std::uint32_t b;
};

// Computed at compile time: core builds its signatures this way.
constexpr std::uint64_t kSampleSignature = LayoutSignature()
                                               .AddType<Sample>()
                                               .Add(offsetof(Sample, a))
                                               .Add(offsetof(Sample, b))
                                               .value();
static_assert(kSampleSignature != LayoutSignature().value());

TEST(LayoutSignature, DefaultSeedIsFnv1aOfTheCacheLineSize) {
  EXPECT_EQ(kCacheLineSize, 64U);
  // FNV-1a-64 over the 8 little-endian bytes of 64.
  EXPECT_EQ(LayoutSignature().value(), 0x6779ba74e3ecc205ULL);
}

TEST(LayoutSignature, ValuesArePinned) {
  EXPECT_EQ(LayoutSignature().Add(1).Add(2).value(), 0x1ab407105d803746ULL);
  EXPECT_EQ(LayoutSignature().Add(2).Add(1).value(), 0xaabdf34d75f1a1a6ULL);
}

TEST(LayoutSignature, OrderOfAddedValuesMatters) {
  EXPECT_NE(LayoutSignature().Add(8).Add(16).value(),
            LayoutSignature().Add(16).Add(8).value());
}

TEST(LayoutSignature, AddTypeAddsSizeThenAlignment) {
  EXPECT_EQ(LayoutSignature().AddType<Sample>(),
            LayoutSignature().Add(sizeof(Sample)).Add(alignof(Sample)));
}

TEST(LayoutSignature, AddLeavesTheOriginalUnchanged) {
  constexpr LayoutSignature kBase;
  const LayoutSignature extended = kBase.Add(42);
  EXPECT_EQ(kBase.value(), LayoutSignature().value());
  EXPECT_NE(extended.value(), kBase.value());
}

TEST(LayoutSignature, EveryByteOfAnAddedValueCounts) {
  for (int byte = 0; byte < 8; ++byte) {
    const std::uint64_t v = std::uint64_t{1} << (8 * byte);
    EXPECT_NE(LayoutSignature().Add(v).value(),
              LayoutSignature().Add(0).value())
        << "byte " << byte;
  }
}

}  // namespace
}  // namespace numagrid::shm
