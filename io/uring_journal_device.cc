// JournalDevice over io_uring. See uring_journal_device.h for the shape of a
// submission; this file adds the bookkeeping of short writes and of the one
// registered file slot.
#include "io/uring_journal_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <liburing.h>

#include "io/errno_status.h"

namespace numagrid::io {
namespace {

constexpr std::uint64_t kSyncTag = ~std::uint64_t{0};

class UringJournalDevice final : public JournalDevice {
 public:
  explicit UringJournalDevice(const UringDeviceOptions& options)
      : options_(options) {}
  UringJournalDevice(const UringJournalDevice&) = delete;
  UringJournalDevice& operator=(const UringJournalDevice&) = delete;

  ~UringJournalDevice() override {
    if (!ring_ready_) return;
    // Unregistering drops the ring's reference to a file the owner may have
    // left open; the owner's descriptor itself is the owner's to close.
    if (table_registered_) (void)io_uring_unregister_files(&ring_);
    io_uring_queue_exit(&ring_);
  }

  // Sets up the ring in place (liburing's struct is not meant to be moved).
  // Returns 0 or -errno.
  int Init() {
    const int rc = io_uring_queue_init(options_.queue_depth, &ring_, 0);
    ring_ready_ = rc == 0;
    return rc;
  }

  int Create(const std::string& path, std::uint32_t mode, int gid) override {
    const int fd =
        open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    // open() applies the umask; the journal's mode is a security setting
    // (DESIGN invariant 6), so set it exactly.
    if (fchmod(fd, mode) != 0 ||
        (gid >= 0 &&
         fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)) {
      const int err = errno;
      close(fd);
      unlink(path.c_str());
      return -err;
    }
    RegisterFile(fd);
    return fd;
  }

  int WriteAt(int file, std::uint64_t offset,
              std::span<const std::byte> data) override {
    return Submit(file, offset, data, /*sync=*/false);
  }

  int DataSync(int file) override { return Submit(file, 0, {}, /*sync=*/true); }

  int WriteAtAndSync(int file, std::uint64_t offset,
                     std::span<const std::byte> data) override {
    return Submit(file, offset, data, /*sync=*/true);
  }

  int SyncDir(const std::string& dir) override {
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    const int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
  }

  int Close(int file) override {
    if (file == slot_fd_) {
      // Clear the slot first: the registered table holds its own reference,
      // which would keep the file open after close().
      int empty = -1;
      (void)io_uring_register_files_update(&ring_, 0, &empty, 1);
      slot_fd_ = -1;
    }
    return close(file) == 0 ? 0 : -errno;
  }

 private:
  // Puts `fd` into slot 0 of the ring's file table, registering the table on
  // first use. Any failure just means plain descriptors from now on.
  void RegisterFile(int fd) {
    if (!options_.register_files || registration_failed_) return;
    const int rc = table_registered_
                       ? io_uring_register_files_update(&ring_, 0, &fd, 1)
                       : io_uring_register_files(&ring_, &fd, 1);
    if (rc < 0) {
      registration_failed_ = true;
      slot_fd_ = -1;
      return;
    }
    table_registered_ = true;
    slot_fd_ = fd;
  }

  // Writes `data` at `offset` (if any) and then, when `sync`, fdatasyncs,
  // in as few chains as the queue depth allows. Returns 0 or -errno.
  int Submit(int fd, std::uint64_t offset, std::span<const std::byte> data,
             bool sync) {
    if (broken_) return -EIO;
    const bool fixed = fd == slot_fd_;
    const int target = fixed ? 0 : fd;
    const unsigned char sqe_flags = fixed ? IOSQE_FIXED_FILE : 0;
    std::size_t done = 0;
    std::vector<std::uint32_t> lengths;
    for (;;) {
      // One round: as many writes as fit, then the sync if everything fits.
      lengths.clear();
      io_uring_sqe* last = nullptr;
      std::size_t cur = done;
      const std::uint32_t write_slots = options_.queue_depth - (sync ? 1 : 0);
      while (cur < data.size() && lengths.size() < write_slots) {
        const auto len = static_cast<std::uint32_t>(
            std::min<std::size_t>(options_.max_write_bytes, data.size() - cur));
        io_uring_sqe* sqe = GetSqe();
        if (sqe == nullptr) return -EBUSY;
        io_uring_prep_write(sqe, target, data.data() + cur, len, offset + cur);
        io_uring_sqe_set_flags(sqe, sqe_flags | IOSQE_IO_LINK);
        io_uring_sqe_set_data64(sqe, lengths.size());
        last = sqe;
        lengths.push_back(len);
        cur += len;
      }
      const bool last_round = cur == data.size();
      const bool sync_now = sync && last_round;
      if (sync_now) {
        io_uring_sqe* sqe = GetSqe();
        if (sqe == nullptr) return -EBUSY;
        io_uring_prep_fsync(sqe, target, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_flags(sqe, sqe_flags);
        io_uring_sqe_set_data64(sqe, kSyncTag);
      }
      const unsigned count =
          static_cast<unsigned>(lengths.size()) + (sync_now ? 1 : 0);
      if (count == 0) return 0;
      if (!sync_now) {
        // The chain ends at the first SQE without the flag; a link left on
        // the last write would be ended by the submission boundary anyway,
        // but say so explicitly.
        io_uring_sqe_set_flags(last, sqe_flags);
      }
      int rc = io_uring_submit(&ring_);
      if (rc != static_cast<int>(count)) {
        // A partly submitted chain leaves SQEs in the ring that the next
        // submission would send; this ring cannot be trusted any more.
        broken_ = true;
        return rc < 0 ? rc : -EIO;
      }
      std::vector<int> write_res(lengths.size(), -ECANCELED);
      int sync_res = 0;
      for (unsigned i = 0; i < count; ++i) {
        io_uring_cqe* cqe = nullptr;
        do {
          rc = io_uring_wait_cqe(&ring_, &cqe);
        } while (rc == -EINTR);
        if (rc < 0) {
          broken_ = true;  // completions still owed to us would go astray
          return rc;
        }
        const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag == kSyncTag) {
          sync_res = cqe->res;
        } else if (tag < write_res.size()) {
          write_res[tag] = cqe->res;
        }
        io_uring_cqe_seen(&ring_, cqe);
      }
      // Linked writes run in order, so progress is the prefix of full ones.
      bool short_write = false;
      for (std::size_t i = 0; i < lengths.size(); ++i) {
        const int res = write_res[i];
        if (res < 0) {
          return res;  // the first failure; later ones are -ECANCELED
        }
        done += static_cast<std::size_t>(res);
        if (static_cast<std::uint32_t>(res) < lengths[i]) {
          if (res == 0) return -EIO;  // no progress: do not spin
          short_write = true;
          break;
        }
      }
      if (short_write) continue;  // the rest of the chain was cancelled
      if (sync_now) return sync_res < 0 ? sync_res : 0;
      if (last_round && !sync) return 0;
    }
  }

  // A free SQE. Every round starts with an empty queue and takes at most
  // queue_depth entries, so running out means the ring's state is not what
  // this code believes: stop using it.
  io_uring_sqe* GetSqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) broken_ = true;
    return sqe;
  }

  const UringDeviceOptions options_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool table_registered_ = false;
  bool registration_failed_ = false;
  int slot_fd_ = -1;     // the descriptor in registered slot 0, or -1
  bool broken_ = false;  // a submission went wrong half-way; refuse all I/O
};

}  // namespace

Result<std::unique_ptr<JournalDevice>> OpenUringJournalDevice(
    const UringDeviceOptions& options) {
  if (options.queue_depth < 2 || options.queue_depth > 4096) {
    return InvalidArgument("io_uring queue depth " +
                           std::to_string(options.queue_depth) +
                           " is outside [2, 4096]");
  }
  if (options.max_write_bytes == 0) {
    return InvalidArgument("max_write_bytes is 0");
  }
  auto device = std::make_unique<UringJournalDevice>(options);
  const int rc = device->Init();
  if (rc < 0) {
    return IoError(std::string("io_uring_queue_init: ") +
                   detail::ErrnoText(-rc));
  }
  return std::unique_ptr<JournalDevice>(std::move(device));
}

}  // namespace numagrid::io
