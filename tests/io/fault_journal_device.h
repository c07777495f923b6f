// FaultJournalDevice: a JournalDevice over ordinary files (pwrite,
// fdatasync) that can be told to fail, to tear a write, and to lose power.
// It remembers, per file, how much was written and how much of that was
// synced, so that PowerLoss() can leave the files exactly as a host crash
// would have: what was synced stays, the rest vanishes (or, to model a write
// torn by the crash, only a prefix of it stays), and a file whose directory
// entry was never synced vanishes altogether.
//
// Thread safety: thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/journal_device.h"

namespace numagrid::io::testing {

enum class FaultOp : std::uint8_t {
  kCreate,
  kWrite,
  kDataSync,
  kSyncDir,
  kClose
};

class FaultJournalDevice final : public io::JournalDevice {
 public:
  FaultJournalDevice() = default;
  FaultJournalDevice(const FaultJournalDevice&) = delete;
  FaultJournalDevice& operator=(const FaultJournalDevice&) = delete;
  ~FaultJournalDevice() override;

  // The call of `op` that follows `ok_calls` more successful ones fails with
  // -err and does nothing. One pending fault per op; a new one replaces it.
  void FailAfter(FaultOp op, int ok_calls, int err);

  // The write that follows `ok_writes` more successful ones writes only the
  // first `prefix_bytes` of its data, then fails with -EIO.
  void TearWriteAfter(int ok_writes, std::uint64_t prefix_bytes);

  // The host loses power: every file is cut to its synced length plus at
  // most `keep_unsynced_bytes` of what followed; files whose directory was
  // not synced after their creation are removed. From then on every call
  // fails with -EIO (Close still releases the descriptor).
  void PowerLoss(std::uint64_t keep_unsynced_bytes = 0);

  int creates() const noexcept { return creates_; }
  int writes() const noexcept { return writes_; }
  int data_syncs() const noexcept { return data_syncs_; }
  int dir_syncs() const noexcept { return dir_syncs_; }

  int Create(const std::string& path, std::uint32_t mode, int gid) override;
  int WriteAt(int file, std::uint64_t offset,
              std::span<const std::byte> data) override;
  int DataSync(int file) override;
  int SyncDir(const std::string& dir) override;
  int Close(int file) override;

 private:
  struct File {
    std::string path;
    int fd = -1;                // -1 once closed
    std::uint64_t written = 0;  // end of the furthest write
    std::uint64_t synced = 0;   // bytes a crash cannot take
    bool dir_synced = false;
  };
  struct Fault {
    int countdown = -1;  // -1: none pending
    int err = 0;
  };

  // -errno if a fault for `op` fires now, else 0.
  int Fire(FaultOp op);
  File* Find(int fd);

  std::vector<File> files_;
  Fault faults_[5];
  int tear_countdown_ = -1;
  std::uint64_t tear_prefix_ = 0;
  bool dead_ = false;
  int creates_ = 0;
  int writes_ = 0;
  int data_syncs_ = 0;
  int dir_syncs_ = 0;
};

}  // namespace numagrid::io::testing
