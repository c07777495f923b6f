// LayoutSignature: a compile-time hash of the sizes, alignments and offsets
// of the types a segment holds, stored in SegmentHeader::layout_signature so
// that a build whose shared types differ is refused even when somebody forgot
// to bump the layout version.
//
//   inline constexpr std::uint64_t kControlLayoutSignature =
//       shm::LayoutSignature()
//           .AddType<GridConfig>()  // sizeof, alignof
//           .Add(offsetof(GridConfig, partition_count))
//           .Add(offsetof(GridConfig, nodes_off))
//           .value();
//
// Thread safety: immutable value type.
#pragma once

#include <cstdint>

namespace numagrid::shm {

// The cache-line size the shared types are padded to (alignas(64) slots).
// Part of every signature: a build for another line size lays them out
// differently.
inline constexpr std::uint64_t kCacheLineSize = 64;

// FNV-1a (64-bit) over the added values, each taken as 8 little-endian bytes.
// The default seed already holds kCacheLineSize. Order matters: Add(a).Add(b)
// differs from Add(b).Add(a).
class LayoutSignature {
 public:
  static constexpr std::uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

  // The default seed: the FNV offset basis with kCacheLineSize added.
  constexpr LayoutSignature() noexcept
      : hash_(Mix(kFnvOffsetBasis, kCacheLineSize)) {}

  // Returns this signature with `v` added; *this is unchanged.
  [[nodiscard]] constexpr LayoutSignature Add(std::uint64_t v) const noexcept {
    return LayoutSignature(Mix(hash_, v));
  }

  // Adds sizeof(T) and alignof(T).
  template <typename T>
  [[nodiscard]] constexpr LayoutSignature AddType() const noexcept {
    return Add(sizeof(T)).Add(alignof(T));
  }

  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return hash_; }

  friend constexpr bool operator==(LayoutSignature,
                                   LayoutSignature) noexcept = default;

 private:
  explicit constexpr LayoutSignature(std::uint64_t hash) noexcept
      : hash_(hash) {}

  static constexpr std::uint64_t Mix(std::uint64_t h,
                                     std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xffU;
      h *= kFnvPrime;
    }
    return h;
  }

  std::uint64_t hash_;
};

}  // namespace numagrid::shm
