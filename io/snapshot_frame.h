// The frame layout shared by the snapshot writer and reader
// (docs/snapshot-format.md): where each field sits in the file header, a
// section header and the footer, the I/O chunk size, and the field codec.
// Internal to io/: only snapshot_writer.cc and snapshot_reader.cc include it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "io/snapshot_file.h"

namespace numagrid::io::detail {

// File header offsets (docs/snapshot-format.md, "File header").
inline constexpr std::size_t kHdrOffMagic = 0;
inline constexpr std::size_t kHdrOffVersion = 8;
inline constexpr std::size_t kHdrOffHeaderBytes = 12;
inline constexpr std::size_t kHdrOffGrid = 16;
inline constexpr std::size_t kHdrOffNode = 24;
inline constexpr std::size_t kHdrOffPartitions = 28;
inline constexpr std::size_t kHdrOffJournalSeq = 32;
inline constexpr std::size_t kHdrOffCreated = 40;
inline constexpr std::size_t kHdrOffReserved = 48;
inline constexpr std::size_t kHdrOffCrc = 60;
static_assert(kHdrOffCrc + 4 == kSnapshotHeaderBytes);

// Section header offsets ("Section header").
inline constexpr std::size_t kSecOffMagic = 0;
inline constexpr std::size_t kSecOffPartition = 8;
inline constexpr std::size_t kSecOffReserved0 = 12;
inline constexpr std::size_t kSecOffCoveredSeq = 16;
inline constexpr std::size_t kSecOffEntries = 24;
inline constexpr std::size_t kSecOffEntryBytes = 32;
inline constexpr std::size_t kSecOffReserved1 = 40;
inline constexpr std::size_t kSecOffCrc = 44;
static_assert(kSecOffCrc + 4 == kSnapshotSectionHeaderBytes);

// Footer offsets ("Footer").
inline constexpr std::size_t kFtrOffMagic = 0;
inline constexpr std::size_t kFtrOffPartitions = 8;
inline constexpr std::size_t kFtrOffReserved = 12;
inline constexpr std::size_t kFtrOffEntries = 16;
inline constexpr std::size_t kFtrOffFileBytes = 24;
inline constexpr std::size_t kFtrOffFileCrc = 32;
inline constexpr std::size_t kFtrOffCrc = 36;
static_assert(kFtrOffCrc + 4 == kSnapshotFooterBytes);

// The writer hands the kernel this much at a time; the reader reads this
// much at a time (a longer entry is read whole).
inline constexpr std::size_t kChunkBytes = 1U << 20;

// Fields are stored little-endian byte by byte, as in journal_record.cc, so
// the bytes do not depend on the host's byte order or on alignment.

// Writes the low sizeof(T) bytes of `v` at `p`, least significant first.
template <typename T>
void Store(std::byte* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    p[i] = static_cast<std::byte>(static_cast<std::uint64_t>(v) >> (8 * i));
  }
}

// Reads what Store<T> wrote at `p`.
template <typename T>
T Load(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(p[i]))
         << (8 * i);
  }
  return static_cast<T>(v);
}

}  // namespace numagrid::io::detail
