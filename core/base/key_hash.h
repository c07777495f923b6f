// The key hash and the key-to-partition map. Both are part of the on-disk
// format (journals and snapshots name partitions), so they are fixed forever;
// docs/key-hash.md specifies them and tests pin golden values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace numagrid::base {

// 64-bit hash of `len` bytes at `data` ("ngh1", docs/key-hash.md).
// Thread-safe; pure.
std::uint64_t KeyHash(const void* data, std::size_t len) noexcept;

inline std::uint64_t KeyHash(std::string_view key) noexcept {
  return KeyHash(key.data(), key.size());
}

// The partition of a key with hash `hash` in a grid of `partition_count`
// partitions: the high 32 bits scaled onto [0, partition_count) by a
// multiply-shift, so that the low bits stay free for the index.
// REQUIRES: partition_count > 0.
constexpr std::uint32_t PartitionOf(std::uint64_t hash,
                                    std::uint32_t partition_count) noexcept {
  return static_cast<std::uint32_t>(((hash >> 32) * partition_count) >> 32);
}

}  // namespace numagrid::base
