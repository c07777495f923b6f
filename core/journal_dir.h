// The grid's journal directory: its claim (which grid it belongs to) and the
// manifest `grid.conf`, which holds everything `recover` needs to rebuild the
// grid's segments when shared memory is gone (a reboot). The journal and
// snapshot files of every node live next to it. docs/journal-format.md
// ("Directory") specifies the manifest.
//
// Thread safety: functions over the file system; safe to call concurrently
// for different directories.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/eviction_config.h"
#include "numagrid/status.h"

namespace numagrid::core {

inline constexpr std::string_view kManifestFileName = "grid.conf";

// What the manifest records: the create options that shape the segments, and
// the identity that the journal files carry.
struct GridManifest {
  std::string name;
  std::uint64_t grid_id = 0;
  std::uint32_t node_count = 0;
  std::uint32_t partitions = 0;
  std::uint64_t memory_bytes = 0;
  std::uint32_t max_key_bytes = 0;
  std::uint32_t max_value_bytes = 0;
  std::uint64_t max_entries = 0;
  std::uint64_t ring_capacity = 0;
  std::uint32_t process_capacity = 0;
  std::uint32_t lock_timeout_ms = 0;
  std::uint32_t ring_wait_ms = 0;
  std::string group;       // "" for none (mode 0600)
  std::string durability;  // "async" or "sync"
  std::uint32_t flush_interval_us = 0;
  std::uint64_t segment_bytes = 0;
  std::uint32_t sync_wait_ms = 0;
  std::uint64_t snapshot_bytes = 0;
  std::uint32_t snapshot_interval_s = 0;
  // Journal streams per node (docs/adr/0008-journal-streams.md); a
  // manifest written before streams existed has no line and reads as 1.
  std::uint32_t streams_per_node = 1;
  // Written by `create` and `config`; a manifest from before eviction
  // existed has none of these lines and reads as the defaults.
  EvictionConfig eviction;
};

// The default journal directory of grid `name`.
std::string DefaultJournalDir(std::string_view name);

// For `create`: makes `dir` (and missing parents) with mode 0700, or 0770 and
// `gid` when a group is set, and refuses a directory that already holds a
// manifest, a journal or a snapshot (kAlreadyExists naming the grid it
// belongs to and what to do). `dir` must be absolute (kInvalidArgument).
Status ClaimJournalDir(const std::string& dir,
                       std::optional<std::uint32_t> gid);

// Writes the manifest atomically (temporary file, fdatasync, rename, fsync of
// the directory) with `file_mode` and `gid`.
Status WriteManifest(const std::string& dir, const GridManifest& manifest,
                     std::uint32_t file_mode, std::optional<std::uint32_t> gid);

// Reads and checks the manifest. kNotFound without one; kCorruption naming
// the line for anything it cannot parse or that is out of range.
Result<GridManifest> ReadManifest(const std::string& dir);

// Removes the manifest (a create that failed after writing it).
void RemoveManifest(const std::string& dir);

// Deletes grid `name`'s journal directory: its manifest, journal, snapshot
// and lock files, then the directory if nothing else is left in it.
// kNotFound if `dir` has no manifest; kInvalidArgument if the manifest
// names another grid (nothing is deleted).
Status PurgeJournalDir(const std::string& dir, std::string_view name);

// Opens (creating it if needed) the file `name` in journal directory `dir`
// (lock files, logs) with `flags` | O_CLOEXEC, giving a new file the
// directory's access: 0660 and its group when the directory is shared with
// a group (`create --group`), else 0600. Returns the descriptor or -1 with
// errno set.
int OpenJournalDirFile(const std::string& dir, std::string_view name,
                       int flags);

// True if `dir` holds any journal segment or snapshot file of any node.
bool HasJournalFiles(const std::string& dir);

}  // namespace numagrid::core
