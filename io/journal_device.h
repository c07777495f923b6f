// JournalDevice: the disk as the journal writer sees it. The writer never
// calls the kernel itself; it goes through this interface, so that tests can
// put a device underneath that fails with EIO, tears a write or loses what
// was never synced (tests/io/fault_journal_device.h), and production can put
// io_uring underneath (io/uring_journal_device.h).
//
// Like the system calls they stand for, the methods return 0 (or a handle)
// on success and -errno on failure; the writer turns that into a Status with
// the file and offset as context.
//
// Thread safety: thread-compatible; one writer uses a device at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace numagrid::io {

class JournalDevice {
 public:
  virtual ~JournalDevice() = default;

  // Creates the file at `path`, which must not exist yet (-EEXIST), for
  // writing, with exactly the permission bits `mode` (the umask does not
  // apply) and the group `gid` (-1: the creator's). Returns a handle >= 0
  // for the other calls, or -errno; on failure no file is left behind.
  virtual int Create(const std::string& path, std::uint32_t mode, int gid) = 0;

  // Writes all of `data` at `offset` of `file`. Returns 0, or -errno when
  // not every byte could be written (an unknown prefix may have been).
  virtual int WriteAt(int file, std::uint64_t offset,
                      std::span<const std::byte> data) = 0;

  // fdatasync(2) of `file`. Returns 0 or -errno. After an error the kernel
  // may have dropped the dirty pages, so a retry proves nothing.
  virtual int DataSync(int file) = 0;

  // WriteAt, then DataSync, as one submission where the device can do that
  // (io_uring: the writes linked to the fdatasync). Returns 0 or the first
  // -errno.
  virtual int WriteAtAndSync(int file, std::uint64_t offset,
                             std::span<const std::byte> data) {
    const int rc = WriteAt(file, offset, data);
    return rc < 0 ? rc : DataSync(file);
  }

  // fsync(2) of the directory `dir`, so that files created in it survive a
  // host crash. Returns 0 or -errno.
  virtual int SyncDir(const std::string& dir) = 0;

  // Closes `file`. Returns 0 or -errno; the handle is gone either way.
  virtual int Close(int file) = 0;
};

}  // namespace numagrid::io
