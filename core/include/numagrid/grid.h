// numagrid::Grid: an attached process's handle on a grid. Reads and writes go
// straight to the grid's shared memory; nothing is sent to another process.
//
//   auto grid = numagrid::Grid::Attach("orders");
//   if (!grid.ok()) { /* grid.status().message() says why */ }
//   grid->Put("k", "v");
//   std::string v;
//   numagrid::Status s = grid->Get("k", &v);
//
// Thread safety: thread-compatible. A Grid holds one process slot, whose
// epoch covers one operation at a time: give each thread its own Grid
// (Attach is cheap). Do not use a Grid in a child after fork(): attach anew.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "numagrid/status.h"

namespace numagrid {

// When a write returns (docs/adr/0003-journal.md).
enum class Durability : std::uint8_t {
  kGridDefault,  // what the grid was created with (`create --durability`)
  kAsync,        // once visible; durable within the grid's flush interval
  kSync,         // once its journal record is on disk (fdatasync)
};

struct WriteOptions {
  std::uint64_t ttl_ms = 0;  // 0: never expires
  Durability durability = Durability::kGridDefault;
};

class Grid {
 public:
  // Attaches to grid `name`. Errors: kNotFound (no such grid),
  // kVersionMismatch (made by another layout version), kPermissionDenied,
  // kCorruption, kResourceExhausted (every process slot taken).
  static Result<Grid> Attach(std::string_view name);

  Grid(Grid&&) noexcept;
  Grid& operator=(Grid&&) noexcept;
  ~Grid();  // detaches

  // Copies the value of `key` into *value. kNotFound if absent or expired.
  Status Get(std::string_view key, std::string* value,
             std::uint64_t* version = nullptr);
  // Copies the value into `buf` (capacity `cap`) and returns its length;
  // kInvalidArgument naming the needed size when it does not fit.
  Result<std::size_t> GetInto(std::string_view key, char* buf, std::size_t cap);
  // Zero-copy: calls `visit` with a view of the value that is valid only
  // during the call. Lock-free; the record cannot be freed meanwhile.
  Status Visit(std::string_view key,
               const std::function<void(std::string_view value,
                                        std::uint64_t version)>& visit);

  // Writes. Each returns the new version (a per-partition sequence number).
  // A write in sync durability (the grid's default, or asked for in
  // `options`) returns once its change is durable; if the journal worker
  // does not confirm that within the grid's sync wait it fails with
  // kUnavailable, and the change stays visible and will be journaled. Sync
  // on a grid without a journal is kInvalidArgument (nothing is written).
  Result<std::uint64_t> Put(std::string_view key, std::string_view value,
                            const WriteOptions& options = {});
  // Only if absent: kAlreadyExists otherwise.
  Result<std::uint64_t> Insert(std::string_view key, std::string_view value,
                               const WriteOptions& options = {});
  // Only if present: kNotFound otherwise.
  Result<std::uint64_t> Replace(std::string_view key, std::string_view value,
                                const WriteOptions& options = {});
  // Only if present with `expected_version`: kConflict otherwise.
  Result<std::uint64_t> CompareAndSet(std::string_view key,
                                      std::uint64_t expected_version,
                                      std::string_view value,
                                      const WriteOptions& options = {});
  Status Remove(std::string_view key, const WriteOptions& options = {});
  Status RemoveIfVersion(std::string_view key, std::uint64_t expected_version,
                         const WriteOptions& options = {});
  // Adds `delta` to the 8-byte little-endian counter at `key` (absent: 0) and
  // returns the result. kInvalidArgument if the value is not 8 bytes.
  Result<std::int64_t> Increment(
      std::string_view key, std::int64_t delta = 1,
      const WriteOptions& options = {});  // kInvalidArgument on overflow
  // Returns once every change this Grid's process could see when it was
  // called, on every partition, is durable (kUnavailable as for sync
  // writes). OK at once for a grid without a journal.
  Status Flush();

  // One result per key, in order; not atomic across keys.
  std::vector<Result<std::string>> MultiGet(
      const std::vector<std::string>& keys);
  std::vector<Status> MultiPut(
      const std::vector<std::pair<std::string, std::string>>& entries,
      const WriteOptions& options = {});

  // Visits every live entry of the grid (or of one partition), lock-free.
  // An entry that stays live during the scan is visited exactly once. Stop
  // by returning false.
  Status Scan(
      const std::function<bool(std::string_view key, std::string_view value,
                               std::uint64_t version)>& visit,
      std::int64_t partition = -1);

  std::uint32_t partition_count() const;
  // The partition that holds `key` (fixed forever: docs/key-hash.md).
  std::uint32_t PartitionOfKey(std::string_view key) const;

 private:
  struct Impl;
  explicit Grid(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace numagrid
