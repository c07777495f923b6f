// SnapshotWriter (docs/snapshot-format.md, "Writing"): output buffered and
// handed to the kernel a chunk at a time, frame headers reserved first and
// filled in once their counts are known, and the file CRC extended without
// re-reading anything.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/base/check.h"
#include "core/base/crc32c.h"
#include "io/errno_status.h"
#include "io/snapshot_file.h"
#include "io/snapshot_frame.h"

namespace numagrid::io {

// The parts of the frame layout (snapshot_frame.h) the writer uses.
using detail::kChunkBytes;
using detail::kFtrOffCrc;
using detail::kFtrOffEntries;
using detail::kFtrOffFileBytes;
using detail::kFtrOffFileCrc;
using detail::kFtrOffMagic;
using detail::kFtrOffPartitions;
using detail::kHdrOffCrc;
using detail::kHdrOffCreated;
using detail::kHdrOffGrid;
using detail::kHdrOffHeaderBytes;
using detail::kHdrOffJournalSeq;
using detail::kHdrOffMagic;
using detail::kHdrOffNode;
using detail::kHdrOffPartitions;
using detail::kHdrOffVersion;
using detail::kSecOffCoveredSeq;
using detail::kSecOffCrc;
using detail::kSecOffEntries;
using detail::kSecOffEntryBytes;
using detail::kSecOffMagic;
using detail::kSecOffPartition;
using detail::Store;

namespace {

std::uint64_t NowUnixNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return detail::ErrnoStatus(errno, "opening snapshot directory " + dir);
  }
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) {
    return detail::ErrnoIoError(err, "syncing snapshot directory " + dir);
  }
  return Status::Ok();
}

// Writes all of `data` at `off` (pwrite) or, with off < 0, at the file
// position (write). Returns 0 or an errno.
int WriteAll(int fd, const std::byte* data, std::size_t n, off_t off) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t rc = off < 0 ? write(fd, data + done, n - done)
                               : pwrite(fd, data + done, n - done,
                                        off + static_cast<off_t>(done));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<std::size_t>(rc);
  }
  return 0;
}

// Renames `from` to `to` unless `to` exists (EEXIST). Returns 0 or an errno.
int RenameNoReplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(),
                RENAME_NOREPLACE) == 0) {
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // The file system cannot refuse atomically; the check and the rename are
  // then two steps, which is enough with one writer per snapshot name.
  struct stat st {};
  if (lstat(to.c_str(), &st) == 0) return EEXIST;
  return rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

Status CheckOptions(const SnapshotWriterOptions& o) {
  if (o.dir.empty()) return InvalidArgument("snapshot directory is empty");
  if ((o.file_mode & ~0777U) != 0) {
    return InvalidArgument("snapshot file mode " + std::to_string(o.file_mode) +
                           " has bits other than permissions");
  }
  struct stat st {};
  if (stat(o.dir.c_str(), &st) != 0) {
    return detail::ErrnoStatus(errno, "snapshot directory " + o.dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return NotFound("snapshot directory " + o.dir + " is not a directory");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(
    const SnapshotWriterOptions& options) {
  NUMAGRID_RETURN_IF_ERROR(CheckOptions(options));
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter(options));
  struct stat st {};
  if (lstat(w->final_path_.c_str(), &st) == 0) {
    return AlreadyExists("snapshot " + w->final_path_ + " already exists");
  }
  if (errno != ENOENT) {
    return detail::ErrnoStatus(errno, "snapshot " + w->final_path_);
  }
  // A .tmp left by a writer that died: never a snapshot, so never needed.
  if (unlink(w->tmp_path_.c_str()) != 0 && errno != ENOENT) {
    return detail::ErrnoStatus(errno,
                               "removing stale snapshot " + w->tmp_path_);
  }
  const int fd = open(w->tmp_path_.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC,
                      options.file_mode);
  if (fd < 0) {
    return detail::ErrnoStatus(errno, "creating snapshot " + w->tmp_path_);
  }
  w->fd_ = fd;
  w->owns_tmp_ = true;  // from here on, the destructor removes the file
  // open() applies the umask; the mode is a security setting (DESIGN
  // invariant 6), so set it exactly.
  if (fchmod(fd, options.file_mode) != 0) {
    return detail::ErrnoStatus(errno, "setting the mode of " + w->tmp_path_);
  }
  if (options.group_id >= 0 &&
      fchown(fd, static_cast<uid_t>(-1),
             static_cast<gid_t>(options.group_id)) != 0) {
    return detail::ErrnoStatus(errno, "setting the group of " + w->tmp_path_);
  }
  // The header, with its partition count, is filled in by Commit.
  Result<std::byte*> header = w->Reserve(kSnapshotHeaderBytes);
  if (!header.ok()) return header.status();
  return w;
}

SnapshotWriter::SnapshotWriter(const SnapshotWriterOptions& options)
    : options_(options),
      final_path_(options.dir + "/" +
                  SnapshotFileName(options.node_id, options.journal_seq)),
      tmp_path_(final_path_ + ".tmp"),
      created_unix_ns_(NowUnixNs()) {
  buf_.reserve(kChunkBytes);
}

SnapshotWriter::~SnapshotWriter() {
  if (fd_ >= 0) close(fd_);
  if (owns_tmp_ && !committed_) (void)unlink(tmp_path_.c_str());
}

Status SnapshotWriter::Stop(Status s) {
  stopped_ = s;
  buf_.clear();
  return s;
}

Status SnapshotWriter::CheckUsable() const {
  if (!stopped_.ok()) {
    return Panic("snapshot writer of " + final_path_ +
                 " stopped: " + stopped_.message());
  }
  if (committed_) {
    return InvalidArgument("snapshot " + final_path_ + " is already committed");
  }
  return Status::Ok();
}

Result<std::byte*> SnapshotWriter::Reserve(std::size_t n) {
  if (!buf_.empty() && buf_.size() + n > kChunkBytes) {
    NUMAGRID_RETURN_IF_ERROR(FlushBuffer());
  }
  const std::size_t at = buf_.size();
  buf_.resize(at + n);
  file_bytes_ += n;
  return buf_.data() + at;
}

Status SnapshotWriter::FlushBuffer() {
  if (buf_.empty()) return Status::Ok();
  const int err = WriteAll(fd_, buf_.data(), buf_.size(), -1);
  if (err != 0) {
    return Stop(detail::ErrnoIoError(
        err, "writing " + std::to_string(buf_.size()) + " bytes at offset " +
                 std::to_string(buf_file_off_) + " of " + tmp_path_));
  }
  buf_file_off_ += buf_.size();
  buf_.clear();
  return Status::Ok();
}

Status SnapshotWriter::Patch(std::uint64_t off,
                             std::span<const std::byte> bytes) {
  // Frames are reserved whole and the buffer is flushed only between
  // reservations, so a frame is either all in the buffer or all written.
  if (off >= buf_file_off_) {
    NUMAGRID_DCHECK(off + bytes.size() <= buf_file_off_ + buf_.size());
    std::memcpy(buf_.data() + (off - buf_file_off_), bytes.data(),
                bytes.size());
    return Status::Ok();
  }
  const int err =
      WriteAll(fd_, bytes.data(), bytes.size(), static_cast<off_t>(off));
  if (err != 0) {
    return Stop(detail::ErrnoIoError(
        err, "writing " + std::to_string(bytes.size()) + " bytes at offset " +
                 std::to_string(off) + " of " + tmp_path_));
  }
  return Status::Ok();
}

Status SnapshotWriter::BeginPartition(std::uint32_t partition_id,
                                      std::uint64_t covered_seq) {
  NUMAGRID_RETURN_IF_ERROR(CheckUsable());
  if (in_partition_) {
    return InvalidArgument("snapshot section of partition " +
                           std::to_string(partition_id_) + " is still open");
  }
  if (any_partition_ && partition_id <= partition_id_) {
    return InvalidArgument("snapshot section of partition " +
                           std::to_string(partition_id) + " after partition " +
                           std::to_string(partition_id_) +
                           "; sections go in increasing partition order");
  }
  section_off_ = file_bytes_;
  // The header, with its counts, is filled in by EndPartition.
  Result<std::byte*> p = Reserve(kSnapshotSectionHeaderBytes);
  if (!p.ok()) return p.status();
  in_partition_ = true;
  any_partition_ = true;
  partition_id_ = partition_id;
  covered_seq_ = covered_seq;
  section_entries_ = 0;
  section_entry_bytes_ = 0;
  section_crc_ = 0;
  return Status::Ok();
}

Status SnapshotWriter::Add(const RecordView& entry) {
  NUMAGRID_RETURN_IF_ERROR(CheckUsable());
  if (!in_partition_) {
    return InvalidArgument("snapshot entry outside a partition section");
  }
  if (entry.partition_id != partition_id_) {
    return InvalidArgument(
        "snapshot entry of partition " + std::to_string(entry.partition_id) +
        " in the section of partition " + std::to_string(partition_id_));
  }
  if (entry.op != RecordOp::kPut) {
    return InvalidArgument(std::string("a snapshot entry is a put, not a ") +
                           std::string(RecordOpName(entry.op)));
  }
  NUMAGRID_RETURN_IF_ERROR(CheckRecord(entry));
  RecordView r = entry;
  r.sequence = entries_ + 1;
  r.change_seq = entry.version;
  const std::uint64_t size = EncodedRecordBytes(r.key.size(), r.value.size());
  Result<std::byte*> p = Reserve(size);
  if (!p.ok()) return p.status();
  EncodeRecordTo(r, std::span<std::byte>(*p, size));
  section_crc_ = base::Crc32c(*p, size, section_crc_);
  ++section_entries_;
  section_entry_bytes_ += size;
  ++entries_;
  return Status::Ok();
}

Status SnapshotWriter::EndPartition() {
  NUMAGRID_RETURN_IF_ERROR(CheckUsable());
  if (!in_partition_) {
    return InvalidArgument("no snapshot partition section is open");
  }
  std::array<std::byte, kSnapshotSectionHeaderBytes> h{};
  std::byte* p = h.data();
  Store<std::uint64_t>(p + kSecOffMagic, kSnapshotSectionMagic);
  Store<std::uint32_t>(p + kSecOffPartition, partition_id_);
  Store<std::uint64_t>(p + kSecOffCoveredSeq, covered_seq_);
  Store<std::uint64_t>(p + kSecOffEntries, section_entries_);
  Store<std::uint64_t>(p + kSecOffEntryBytes, section_entry_bytes_);
  Store<std::uint32_t>(p + kSecOffCrc, base::Crc32c(p, kSecOffCrc));
  NUMAGRID_RETURN_IF_ERROR(Patch(section_off_, h));
  // The entries were checksummed as they came; the header, which precedes
  // them, only now has its final bytes.
  body_crc_ =
      base::Crc32cCombine(body_crc_, base::Crc32c(p, h.size()), h.size());
  body_crc_ =
      base::Crc32cCombine(body_crc_, section_crc_, section_entry_bytes_);
  body_bytes_ += h.size() + section_entry_bytes_;
  ++partitions_;
  in_partition_ = false;
  return Status::Ok();
}

Status SnapshotWriter::Commit() {
  NUMAGRID_RETURN_IF_ERROR(CheckUsable());
  if (in_partition_) {
    return InvalidArgument("snapshot section of partition " +
                           std::to_string(partition_id_) + " is still open");
  }
  std::array<std::byte, kSnapshotHeaderBytes> h{};  // reserved stays zero
  std::byte* p = h.data();
  Store<std::uint64_t>(p + kHdrOffMagic, kSnapshotMagic);
  Store<std::uint32_t>(p + kHdrOffVersion, kSnapshotFormatVersion);
  Store<std::uint32_t>(p + kHdrOffHeaderBytes, kSnapshotHeaderBytes);
  Store<std::uint64_t>(p + kHdrOffGrid, options_.grid_id);
  Store<std::uint32_t>(p + kHdrOffNode, options_.node_id);
  Store<std::uint32_t>(p + kHdrOffPartitions, partitions_);
  Store<std::uint64_t>(p + kHdrOffJournalSeq, options_.journal_seq);
  Store<std::uint64_t>(p + kHdrOffCreated, created_unix_ns_);
  Store<std::uint32_t>(p + kHdrOffCrc, base::Crc32c(p, kHdrOffCrc));
  NUMAGRID_RETURN_IF_ERROR(Patch(0, h));
  NUMAGRID_DCHECK(kSnapshotHeaderBytes + body_bytes_ == file_bytes_);
  const std::uint32_t file_crc =
      base::Crc32cCombine(base::Crc32c(p, h.size()), body_crc_, body_bytes_);

  Result<std::byte*> f = Reserve(kSnapshotFooterBytes);
  if (!f.ok()) return f.status();
  std::byte* q = *f;  // zero-filled by Reserve
  Store<std::uint64_t>(q + kFtrOffMagic, kSnapshotFooterMagic);
  Store<std::uint32_t>(q + kFtrOffPartitions, partitions_);
  Store<std::uint64_t>(q + kFtrOffEntries, entries_);
  Store<std::uint64_t>(q + kFtrOffFileBytes, file_bytes_);
  Store<std::uint32_t>(q + kFtrOffFileCrc, file_crc);
  Store<std::uint32_t>(q + kFtrOffCrc, base::Crc32c(q, kFtrOffCrc));
  NUMAGRID_RETURN_IF_ERROR(FlushBuffer());

  if (fdatasync(fd_) != 0) {
    return Stop(detail::ErrnoIoError(errno, "syncing " + tmp_path_));
  }
  const int rc = close(fd_);
  fd_ = -1;
  if (rc != 0) return Stop(detail::ErrnoIoError(errno, "closing " + tmp_path_));
  const int err = RenameNoReplace(tmp_path_, final_path_);
  if (err != 0) {
    return Stop(detail::ErrnoStatus(
        err, "renaming " + tmp_path_ + " to " + final_path_));
  }
  // The .tmp name is gone; a failure below leaves a complete snapshot that
  // may not survive a host crash, never a partial one.
  committed_ = true;
  Status s = SyncDirectory(options_.dir);
  if (!s.ok()) return Stop(s);
  return Status::Ok();
}

}  // namespace numagrid::io
