#include "tests/io/fault_journal_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace numagrid::io::testing {
namespace {

std::string DirOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string WithoutTrailingSlash(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

FaultJournalDevice::~FaultJournalDevice() {
  for (File& f : files_) {
    if (f.fd >= 0) close(f.fd);
  }
}

void FaultJournalDevice::FailAfter(FaultOp op, int ok_calls, int err) {
  faults_[static_cast<int>(op)] = {ok_calls, err};
}

void FaultJournalDevice::TearWriteAfter(int ok_writes,
                                        std::uint64_t prefix_bytes) {
  tear_countdown_ = ok_writes;
  tear_prefix_ = prefix_bytes;
}

int FaultJournalDevice::Fire(FaultOp op) {
  Fault& f = faults_[static_cast<int>(op)];
  if (f.countdown < 0) return 0;
  if (f.countdown-- > 0) return 0;
  return -f.err;
}

FaultJournalDevice::File* FaultJournalDevice::Find(int fd) {
  for (File& f : files_) {
    if (f.fd == fd) return &f;
  }
  return nullptr;
}

void FaultJournalDevice::PowerLoss(std::uint64_t keep_unsynced_bytes) {
  for (File& f : files_) {
    if (!f.dir_synced) {
      unlink(f.path.c_str());
      continue;
    }
    const std::uint64_t keep =
        std::min(f.written, f.synced + keep_unsynced_bytes);
    if (truncate(f.path.c_str(), static_cast<off_t>(keep)) != 0 &&
        errno != ENOENT) {
      // A test that cannot model the crash must not pass as if it had.
      std::abort();
    }
  }
  dead_ = true;
}

int FaultJournalDevice::Create(const std::string& path, std::uint32_t mode,
                               int gid) {
  if (dead_) return -EIO;
  if (const int rc = Fire(FaultOp::kCreate); rc < 0) return rc;
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  if (fchmod(fd, mode) != 0 ||
      (gid >= 0 &&
       fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)) {
    const int err = errno;
    close(fd);
    unlink(path.c_str());
    return -err;
  }
  ++creates_;
  File f;
  f.path = path;
  f.fd = fd;
  files_.push_back(f);
  return fd;
}

int FaultJournalDevice::WriteAt(int file, std::uint64_t offset,
                                std::span<const std::byte> data) {
  if (dead_) return -EIO;
  File* f = Find(file);
  if (f == nullptr) return -EBADF;
  if (const int rc = Fire(FaultOp::kWrite); rc < 0) return rc;
  ++writes_;
  std::uint64_t len = data.size();
  bool tear = false;
  if (tear_countdown_ >= 0 && tear_countdown_-- == 0) {
    len = std::min<std::uint64_t>(len, tear_prefix_);
    tear = true;
  }
  std::uint64_t done = 0;
  while (done < len) {
    const ssize_t rc = pwrite(f->fd, data.data() + done, len - done,
                              static_cast<off_t>(offset + done));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += static_cast<std::uint64_t>(rc);
  }
  f->written = std::max(f->written, offset + done);
  return tear ? -EIO : 0;
}

int FaultJournalDevice::DataSync(int file) {
  if (dead_) return -EIO;
  File* f = Find(file);
  if (f == nullptr) return -EBADF;
  if (const int rc = Fire(FaultOp::kDataSync); rc < 0) return rc;
  ++data_syncs_;
  // The test files need not reach the platter: what PowerLoss() keeps is
  // decided by this bookkeeping, not by the kernel.
  f->synced = f->written;
  return 0;
}

int FaultJournalDevice::SyncDir(const std::string& dir) {
  if (dead_) return -EIO;
  if (const int rc = Fire(FaultOp::kSyncDir); rc < 0) return rc;
  ++dir_syncs_;
  const std::string d = WithoutTrailingSlash(dir);
  for (File& f : files_) {
    if (DirOf(f.path) == d) f.dir_synced = true;
  }
  return 0;
}

int FaultJournalDevice::Close(int file) {
  File* f = Find(file);
  if (f == nullptr) return -EBADF;
  close(f->fd);
  f->fd = -1;
  if (dead_) return -EIO;
  return Fire(FaultOp::kClose);
}

}  // namespace numagrid::io::testing
