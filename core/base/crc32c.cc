// CRC32C: slicing-by-8 tables for any CPU, the SSE4.2 crc32 instruction where
// the CPU has it. The instruction is enabled per function with a target
// attribute, never with -march, so one binary runs on every x86-64 CPU.
#include "core/base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace numagrid::base {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78;  // Castagnoli, bit-reversed

// kTables[0] is the classic byte table; kTables[k][b] is the CRC of byte b
// followed by k zero bytes, which lets the loop fold 8 bytes per step.
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][b] = c;
  }
  for (std::uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 8; ++k) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
    }
  }
  return t;
}

constexpr Tables kTables = MakeTables();

// Reads 8 bytes as a little-endian integer from a possibly unaligned address.
inline std::uint64_t LoadLe64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

using CrcFn = std::uint32_t (*)(const void*, std::size_t,
                                std::uint32_t) noexcept;

CrcFn Choose() noexcept {
  return detail::Crc32cHardwareAvailable() ? &detail::Crc32cHardware
                                           : &detail::Crc32cSoftware;
}

// The GF(2) 32x32 matrix `mat` (one column per u32) times `vec`.
std::uint32_t Gf2Times(const std::uint32_t* mat, std::uint32_t vec) noexcept {
  std::uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if ((vec & 1) != 0) sum ^= *mat;
  }
  return sum;
}

void Gf2Square(std::uint32_t* square, const std::uint32_t* mat) noexcept {
  for (int n = 0; n < 32; ++n) square[n] = Gf2Times(mat, mat[n]);
}

}  // namespace

namespace detail {

std::uint32_t Crc32cSoftware(const void* data, std::size_t len,
                             std::uint32_t init) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~init;
  for (; len >= 8; len -= 8, p += 8) {
    const std::uint64_t w = LoadLe64(p) ^ c;
    c = kTables[7][w & 0xFF] ^ kTables[6][(w >> 8) & 0xFF] ^
        kTables[5][(w >> 16) & 0xFF] ^ kTables[4][(w >> 24) & 0xFF] ^
        kTables[3][(w >> 32) & 0xFF] ^ kTables[2][(w >> 40) & 0xFF] ^
        kTables[1][(w >> 48) & 0xFF] ^ kTables[0][w >> 56];
  }
  for (; len > 0; --len, ++p) c = (c >> 8) ^ kTables[0][(c ^ *p) & 0xFF];
  return ~c;
}

#if defined(__x86_64__)

__attribute__((target("sse4.2"))) std::uint32_t Crc32cHardware(
    const void* data, std::size_t len, std::uint32_t init) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~init;
  for (; len >= 8; len -= 8, p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);  // x86 is little-endian, as the CRC wants
    c = _mm_crc32_u64(c, w);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; len > 0; --len, ++p) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

bool Crc32cHardwareAvailable() noexcept {
  // The CPU model is normally filled in by a constructor; calling this from
  // another static initializer may come first, so make sure it ran.
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

#else

std::uint32_t Crc32cHardware(const void* data, std::size_t len,
                             std::uint32_t init) noexcept {
  return Crc32cSoftware(data, len, init);
}

bool Crc32cHardwareAvailable() noexcept { return false; }

#endif

}  // namespace detail

std::uint32_t Crc32c(const void* data, std::size_t len,
                     std::uint32_t init) noexcept {
  // Chosen once; a function-local static is initialized thread-safely.
  static const CrcFn fn = Choose();
  return fn(data, len, init);
}

std::uint32_t Crc32cCombine(std::uint32_t crc_a, std::uint32_t crc_b,
                            std::uint64_t b_len) noexcept {
  if (b_len == 0) return crc_a;
  // Appending b_len zero bytes to a is a linear map of its CRC register;
  // apply it by repeated squaring of the one-zero-bit operator, then add b's
  // CRC (the pre- and post-conditioning cancel out; see zlib's crc32.c).
  std::uint32_t even[32];
  std::uint32_t odd[32];
  odd[0] = kPoly;
  std::uint32_t row = 1;
  for (int n = 1; n < 32; ++n) {
    odd[n] = row;
    row <<= 1;
  }
  Gf2Square(even, odd);  // two zero bits
  Gf2Square(odd, even);  // four zero bits
  for (;;) {
    Gf2Square(even, odd);  // first pass: one zero byte
    if ((b_len & 1) != 0) crc_a = Gf2Times(even, crc_a);
    b_len >>= 1;
    if (b_len == 0) break;
    Gf2Square(odd, even);
    if ((b_len & 1) != 0) crc_a = Gf2Times(odd, crc_a);
    b_len >>= 1;
    if (b_len == 0) break;
  }
  return crc_a ^ crc_b;
}

}  // namespace numagrid::base
