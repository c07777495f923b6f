// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
// journal record and segment header (docs/journal-format.md). The value is
// part of the on-disk format, so both implementations must agree bit for bit;
// tests/base/crc32c_test.cc pins the standard check value and compares them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace numagrid::base {

// CRC32C of `len` bytes at `data`, continuing from `init`, the CRC32C of the
// bytes before them (0 for none): Crc32c(b, m, Crc32c(a, n)) is the CRC32C of
// a followed by b. Uses the SSE4.2 crc32 instruction when the CPU has it
// (checked once, at run time; the build never assumes it), else a table.
// Thread-safe; pure.
std::uint32_t Crc32c(const void* data, std::size_t len,
                     std::uint32_t init = 0) noexcept;

inline std::uint32_t Crc32c(std::string_view bytes,
                            std::uint32_t init = 0) noexcept {
  return Crc32c(bytes.data(), bytes.size(), init);
}

// CRC32C of a followed by b, from crc_a = Crc32c(a), crc_b = Crc32c(b) and
// b_len = b's length in bytes, without the bytes (zlib's crc32_combine for
// the Castagnoli polynomial). Lets a writer checksum bytes before the bytes
// in front of them are final, e.g. a frame header whose counts are filled in
// after the frame's payload. Costs O(log b_len) 32x32-bit matrix squarings,
// independent of the data. Thread-safe; pure.
std::uint32_t Crc32cCombine(std::uint32_t crc_a, std::uint32_t crc_b,
                            std::uint64_t b_len) noexcept;

namespace detail {

// The two implementations behind Crc32c(), exposed so tests can compare them.
std::uint32_t Crc32cSoftware(const void* data, std::size_t len,
                             std::uint32_t init) noexcept;
// REQUIRES: Crc32cHardwareAvailable().
std::uint32_t Crc32cHardware(const void* data, std::size_t len,
                             std::uint32_t init) noexcept;
// Whether this CPU has SSE4.2 (always false off x86-64).
bool Crc32cHardwareAvailable() noexcept;

}  // namespace detail
}  // namespace numagrid::base
