// ngh1: word-at-a-time multiply-fold hash. See docs/key-hash.md; every
// constant and step here is part of the journal format.
#include "core/base/key_hash.h"

#include <cstring>

namespace numagrid::base {
namespace {

constexpr std::uint64_t kSeed = 0x243F6A8885A308D3ULL;  // pi fraction
constexpr std::uint64_t kMulA = 0x9E3779B97F4A7C15ULL;  // golden ratio
constexpr std::uint64_t kMulB = 0xC2B2AE3D27D4EB4FULL;

// 64x64->128 multiply, folded: cheap and mixes every input bit into the
// middle of the product.
__extension__ typedef unsigned __int128 Uint128;

inline std::uint64_t Fold(std::uint64_t a, std::uint64_t b) noexcept {
  const Uint128 p = static_cast<Uint128>(a) * b;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

// Reads `n` (<= 8) bytes as a little-endian integer, zero-extended.
inline std::uint64_t LoadLe(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, n);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);  // p[0] becomes the least significant byte
#endif
  return v;
}

// murmur3's 64-bit finalizer: full avalanche of the folded state.
inline std::uint64_t Avalanche(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

std::uint64_t KeyHash(const void* data, std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = kSeed ^ (static_cast<std::uint64_t>(len) * kMulA);
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) h = Fold(h ^ LoadLe(p + i, 8), kMulB);
  if (i < len) h = Fold(h ^ LoadLe(p + i, len - i), kMulA);
  return Avalanche(h);
}

}  // namespace numagrid::base
