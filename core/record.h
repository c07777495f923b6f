// Records: the immutable key-value entries of a partition, and the size
// classes their blocks come in. docs/data-segment.md has the byte layout.
//
// A record is written completely while it is unreachable and published by one
// release store of its offset into an index slot; after that nobody writes it
// again until it is freed, which happens only once no process can still reach
// it (epochs). So readers need no lock to read one.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace numagrid::core {

// RecordHeader::flags
inline constexpr std::uint16_t kRecordHasExpiry =
    1u << 0;  // a u64 expiry follows the header

// Crash safety (a process may die at any instruction):
//   Leaves behind: a half-written record in a block that no index slot and no
//     ring entry names yet.
//   Detected by: the partition's write intent (core/partition_layout.h):
//     the block's allocation is in its undo log.
//   Repaired by: the next locker of the partition (undo returns the block to
//     its free list), at once.
//   Holds in every reachable state: a record reachable from an index slot or
//     a ring entry is complete and never changes.
//
// The one exception to "never changes": `access`, the record's access word
// (core/record_access.h), which readers overwrite, relaxed, through
// std::atomic_ref, to keep the recency and frequency that eviction and
// max-idle use. It is never part of what a reader returns or a check
// compares, so a lost or torn-by-race update (two readers storing at once:
// one store wins whole) costs eviction accuracy, never correctness. A
// reader killed at any instruction leaves the old or the new word.
struct RecordHeader {
  std::uint64_t version;  // the partition sequence number of the change
  std::uint32_t value_len;
  std::uint16_t key_len;
  std::uint16_t flags;  // kRecord*
  // Only through std::atomic_ref<std::uint64_t> once published.
  std::uint64_t access;
};
static_assert(std::is_standard_layout_v<RecordHeader>);
static_assert(std::is_trivially_copyable_v<RecordHeader>);
static_assert(sizeof(RecordHeader) == 24);
static_assert(offsetof(RecordHeader, access) % 8 == 0);

inline constexpr std::uint64_t kRecordAlign = 16;

// Bytes a record of this shape needs, before rounding to a size class.
constexpr std::uint64_t RecordBytes(std::uint64_t key_len,
                                    std::uint64_t value_len,
                                    bool has_expiry) noexcept {
  return sizeof(RecordHeader) + (has_expiry ? 8 : 0) + key_len + value_len;
}

// A read-only view of a published record.
class RecordView {
 public:
  explicit RecordView(const std::byte* p) noexcept : p_(p) {}
  const RecordHeader& header() const noexcept {
    return *reinterpret_cast<const RecordHeader*>(p_);
  }
  std::uint64_t version() const noexcept { return header().version; }
  bool has_expiry() const noexcept { return header().flags & kRecordHasExpiry; }
  // Milliseconds since the Unix epoch after which the record is invisible;
  // 0 when it never expires.
  std::uint64_t expire_at_ms() const noexcept {
    if (!has_expiry()) return 0;
    std::uint64_t v;
    std::memcpy(&v, p_ + sizeof(RecordHeader), sizeof v);
    return v;
  }
  std::string_view key() const noexcept {
    return {reinterpret_cast<const char*>(p_ + KeyOffset()), header().key_len};
  }
  std::string_view value() const noexcept {
    return {reinterpret_cast<const char*>(p_ + KeyOffset() + header().key_len),
            header().value_len};
  }
  std::uint64_t bytes() const noexcept {
    return RecordBytes(header().key_len, header().value_len, has_expiry());
  }
  bool ExpiredAt(std::uint64_t now_ms) const noexcept {
    const std::uint64_t e = expire_at_ms();
    return e != 0 && now_ms >= e;
  }
  // The access word (core/record_access.h). relaxed: see RecordHeader.
  std::atomic_ref<std::uint64_t> access() const noexcept {
    return std::atomic_ref<std::uint64_t>(
        const_cast<RecordHeader&>(header()).access);
  }

 private:
  std::uint64_t KeyOffset() const noexcept {
    return sizeof(RecordHeader) + (has_expiry() ? 8 : 0);
  }
  const std::byte* p_;
};

// Writes a record into `dst` (RecordBytes(...) bytes).
// `access`: the initial access word (core/record_access.h).
inline void WriteRecord(std::byte* dst, std::uint64_t version,
                        std::string_view key, std::string_view value,
                        std::uint64_t expire_at_ms,
                        std::uint64_t access) noexcept {
  RecordHeader h{
      version, static_cast<std::uint32_t>(value.size()),
      static_cast<std::uint16_t>(key.size()),
      static_cast<std::uint16_t>(expire_at_ms ? kRecordHasExpiry : 0), access};
  std::memcpy(dst, &h, sizeof h);
  std::byte* p = dst + sizeof h;
  if (expire_at_ms != 0) {
    std::memcpy(p, &expire_at_ms, 8);
    p += 8;
  }
  // memcpy from a null data() is undefined even for 0 bytes.
  if (!key.empty()) std::memcpy(p, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + key.size(), value.data(), value.size());
}

// Size classes: 16-byte steps up to 512 bytes (classes 0..31), then eight
// classes per power of two (at most 12.5% rounding). Blocks above the small
// limit of a grid are whole chunks instead (core/partition_alloc.h).
inline constexpr std::uint32_t kLinearClasses = 32;
inline constexpr std::uint64_t kLinearLimit = 512;

constexpr std::uint32_t SizeClassOf(std::uint64_t bytes) noexcept {
  if (bytes <= kLinearLimit) {
    return bytes == 0 ? 0 : static_cast<std::uint32_t>((bytes + 15) / 16 - 1);
  }
  const int b = std::bit_width(bytes - 1) - 1;  // floor(log2(bytes - 1)) >= 9
  const std::uint64_t base = 1ULL << b;
  const std::uint64_t step = base / 8;
  const std::uint64_t k = (bytes - 1 - base) / step + 1;  // 1..8
  return kLinearClasses + static_cast<std::uint32_t>(b - 9) * 8 +
         static_cast<std::uint32_t>(k - 1);
}

constexpr std::uint64_t ClassSize(std::uint32_t cls) noexcept {
  if (cls < kLinearClasses) return 16ULL * (cls + 1);
  const std::uint32_t g = (cls - kLinearClasses) / 8;
  const std::uint32_t k = (cls - kLinearClasses) % 8 + 1;
  const std::uint64_t base = kLinearLimit << g;
  return base + k * (base / 8);
}

static_assert(SizeClassOf(1) == 0 && ClassSize(0) == 16);
static_assert(SizeClassOf(512) == 31 && ClassSize(31) == 512);
static_assert(ClassSize(SizeClassOf(513)) == 576);
static_assert(ClassSize(SizeClassOf(1024)) == 1024);
static_assert(ClassSize(SizeClassOf(1025)) == 1152);

}  // namespace numagrid::core
