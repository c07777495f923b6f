#include "core/base/crc32c.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace numagrid::base {
namespace {

// NUMAGRID_TEST_SEED if set, else a random seed; printed so that a failing run
// can be replayed.
std::uint32_t TestSeed() {
  const char* s =
      std::getenv("NUMAGRID_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint32_t v =
      s != nullptr ? static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10))
                   : static_cast<std::uint32_t>(std::random_device{}());
  std::printf("[ seed     ] NUMAGRID_TEST_SEED=%u\n", v);
  return v;
}

// The check value of the CRC catalogue (CRC-32/ISCSI) and RFC 3720's test
// vectors: the on-disk format depends on exactly this function.
TEST(Crc32c, StandardCheckValues) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, BothImplementationsGiveTheCheckValue) {
  EXPECT_EQ(detail::Crc32cSoftware("123456789", 9, 0), 0xE3069283u);
  if (!detail::Crc32cHardwareAvailable()) {
    GTEST_SKIP() << "no SSE4.2 on this CPU";
  }
  EXPECT_EQ(detail::Crc32cHardware("123456789", 9, 0), 0xE3069283u);
}

TEST(Crc32c, ExtendingEqualsOneShot) {
  const std::string s =
      "the quick brown fox jumps over the lazy dog, twice over";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    const std::uint32_t head = Crc32c(s.data(), cut);
    EXPECT_EQ(Crc32c(s.data() + cut, s.size() - cut, head), Crc32c(s))
        << "cut " << cut;
  }
}

TEST(Crc32c, SoftwareAndHardwareAgreeOnRandomBuffers) {
  if (!detail::Crc32cHardwareAvailable()) {
    GTEST_SKIP() << "no SSE4.2 on this CPU";
  }
  const std::uint32_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> buf(1 << 16);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (int i = 0; i < 2000; ++i) {
    // Random start (to vary alignment), length and initial value.
    const std::size_t off = rng() % 64;
    const std::size_t len =
        i < 200 ? static_cast<std::size_t>(i) : rng() % (buf.size() - off);
    const auto init = static_cast<std::uint32_t>(rng());
    ASSERT_EQ(detail::Crc32cSoftware(buf.data() + off, len, init),
              detail::Crc32cHardware(buf.data() + off, len, init))
        << "seed " << seed << " off " << off << " len " << len;
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::string s(100, 'a');
  const std::uint32_t good = Crc32c(s);
  for (std::size_t bit = 0; bit < s.size() * 8; ++bit) {
    std::string t = s;
    t[bit / 8] = static_cast<char>(t[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_NE(Crc32c(t), good) << "bit " << bit;
  }
}

// Combining the CRCs of two parts gives the CRC of their concatenation: with
// either part empty or one byte long, at a few fixed splits and at random.
TEST(Crc32c, CombineEqualsTheCrcOfTheConcatenation) {
  const std::uint32_t seed = TestSeed();
  std::mt19937_64 rng(seed);
  std::string all(70000, '\0');
  for (char& c : all) c = static_cast<char>(rng());
  for (std::size_t split :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
        std::size_t{69999}, std::size_t{70000}}) {
    const std::string a = all.substr(0, split);
    const std::string b = all.substr(split);
    EXPECT_EQ(Crc32cCombine(Crc32c(a), Crc32c(b), b.size()), Crc32c(all))
        << "split " << split;
  }
  for (int i = 0; i < 50; ++i) {
    const std::size_t split = rng() % all.size();
    EXPECT_EQ(Crc32cCombine(Crc32c(all.substr(0, split)),
                            Crc32c(all.substr(split)), all.size() - split),
              Crc32c(all))
        << "seed " << seed << " split " << split;
  }
}

}  // namespace
}  // namespace numagrid::base
