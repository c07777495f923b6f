// What the fuzz targets share: a scratch directory on a memory file system,
// file writing, little-endian loads, and a check that aborts (which libFuzzer
// reports as a crash, with the input that caused it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/base/check.h"

// A broken invariant: the input that reached it is a finding.
#define FUZZ_CHECK(cond) NUMAGRID_CHECK(cond)

namespace numagrid::fuzz {

// A directory made once per process (under /dev/shm when it exists, so that
// syncs cost nothing) and removed with its contents at exit.
const std::string& ScratchDir();

// Replaces `path` with exactly `bytes`; aborts on failure (the environment,
// not the input, is broken then).
void WriteFile(const std::string& path, std::span<const std::uint8_t> bytes);

// Removes every file in `dir` (not recursively).
void ClearDir(const std::string& dir);

// The little-endian integer of sizeof(T) bytes at `off`, or `fallback` when
// the input is shorter.
template <typename T>
T LoadOr(std::span<const std::uint8_t> data, std::size_t off, T fallback) {
  if (data.size() < off + sizeof(T)) return fallback;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<std::uint64_t>(data[off + i]) << (8 * i);
  }
  return static_cast<T>(v);
}

}  // namespace numagrid::fuzz
