// Snapshot files (docs/snapshot-format.md): names, the writer's buffered
// output with counts filled in afterwards, and the reader's verifying pass.
// Fields are stored little-endian byte by byte, as in journal_record.cc.
#include "io/snapshot_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "core/base/check.h"
#include "core/base/crc32c.h"
#include "io/errno_status.h"

namespace numagrid::io {
namespace {

// File header offsets (docs/snapshot-format.md, "File header").
constexpr std::size_t kHdrOffMagic = 0;
constexpr std::size_t kHdrOffVersion = 8;
constexpr std::size_t kHdrOffHeaderBytes = 12;
constexpr std::size_t kHdrOffGrid = 16;
constexpr std::size_t kHdrOffNode = 24;
constexpr std::size_t kHdrOffPartitions = 28;
constexpr std::size_t kHdrOffJournalSeq = 32;
constexpr std::size_t kHdrOffCreated = 40;
constexpr std::size_t kHdrOffReserved = 48;
constexpr std::size_t kHdrOffCrc = 60;
static_assert(kHdrOffCrc + 4 == kSnapshotHeaderBytes);

// Section header offsets ("Section header").
constexpr std::size_t kSecOffMagic = 0;
constexpr std::size_t kSecOffPartition = 8;
constexpr std::size_t kSecOffReserved0 = 12;
constexpr std::size_t kSecOffCoveredSeq = 16;
constexpr std::size_t kSecOffEntries = 24;
constexpr std::size_t kSecOffEntryBytes = 32;
constexpr std::size_t kSecOffReserved1 = 40;
constexpr std::size_t kSecOffCrc = 44;
static_assert(kSecOffCrc + 4 == kSnapshotSectionHeaderBytes);

// Footer offsets ("Footer").
constexpr std::size_t kFtrOffMagic = 0;
constexpr std::size_t kFtrOffPartitions = 8;
constexpr std::size_t kFtrOffReserved = 12;
constexpr std::size_t kFtrOffEntries = 16;
constexpr std::size_t kFtrOffFileBytes = 24;
constexpr std::size_t kFtrOffFileCrc = 32;
constexpr std::size_t kFtrOffCrc = 36;
static_assert(kFtrOffCrc + 4 == kSnapshotFooterBytes);

// The writer hands the kernel this much at a time; the reader reads this
// much at a time (a longer entry is read whole).
constexpr std::size_t kChunkBytes = 1U << 20;

template <typename T>
void Store(std::byte* p, T v) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    p[i] = static_cast<std::byte>(static_cast<std::uint64_t>(v) >> (8 * i));
  }
}

template <typename T>
T Load(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(p[i]))
         << (8 * i);
  }
  return static_cast<T>(v);
}

bool AllZero(const std::byte* p, std::size_t n) noexcept {
  return std::all_of(p, p + n, [](std::byte b) { return b == std::byte{0}; });
}

std::string Hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

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

namespace detail {
namespace {

// The GF(2) 32x32 matrix `mat` (one column per u32) times `vec`.
std::uint32_t Gf2Times(const std::uint32_t* mat, std::uint32_t vec) noexcept {
  std::uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if ((vec & 1) != 0) sum ^= *mat;
  }
  return sum;
}

void Gf2Square(std::uint32_t* square, const std::uint32_t* mat) noexcept {
  for (int n = 0; n < 32; ++n) square[n] = Gf2Times(mat, mat[n]);
}

}  // namespace

std::uint32_t Crc32cCombine(std::uint32_t crc_a, std::uint32_t crc_b,
                            std::uint64_t b_len) noexcept {
  if (b_len == 0) return crc_a;
  // Appending b_len zero bytes to a is a linear map of its CRC register;
  // apply it by repeated squaring of the one-zero-bit operator, then add b's
  // CRC (the pre- and post-conditioning cancel out; see zlib's crc32.c).
  std::uint32_t even[32];
  std::uint32_t odd[32];
  odd[0] = 0x82F63B78U;  // the reflected Castagnoli polynomial
  std::uint32_t row = 1;
  for (int n = 1; n < 32; ++n) {
    odd[n] = row;
    row <<= 1;
  }
  Gf2Square(even, odd);  // two zero bits
  Gf2Square(odd, even);  // four zero bits
  for (;;) {
    Gf2Square(even, odd);  // first pass: one zero byte
    if ((b_len & 1) != 0) crc_a = Gf2Times(even, crc_a);
    b_len >>= 1;
    if (b_len == 0) break;
    Gf2Square(odd, even);
    if ((b_len & 1) != 0) crc_a = Gf2Times(odd, crc_a);
    b_len >>= 1;
    if (b_len == 0) break;
  }
  return crc_a ^ crc_b;
}

}  // namespace detail

// ---------------------------------------------------------------- names

std::string SnapshotFileName(std::uint32_t node_id, std::uint64_t journal_seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "snapshot-%u-%020llu.snap", node_id,
                static_cast<unsigned long long>(journal_seq));
  return buf;
}

std::optional<std::uint64_t> ParseSnapshotFileName(std::string_view file_name,
                                                   std::uint32_t node_id) {
  const std::string prefix = "snapshot-" + std::to_string(node_id) + "-";
  constexpr std::string_view kSuffix = ".snap";
  constexpr std::size_t kDigits = 20;
  if (file_name.size() != prefix.size() + kDigits + kSuffix.size() ||
      file_name.substr(0, prefix.size()) != prefix ||
      file_name.substr(prefix.size() + kDigits) != kSuffix) {
    return std::nullopt;
  }
  const std::string_view digits = file_name.substr(prefix.size(), kDigits);
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t seq = 0;
  const auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return seq;
}

Result<std::vector<SnapshotFile>> ListSnapshots(const std::string& dir,
                                                std::uint32_t node_id) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return detail::ErrnoStatus(errno, "snapshot directory " + dir);
  }
  std::vector<SnapshotFile> out;
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    const auto seq = ParseSnapshotFileName(e->d_name, node_id);
    if (seq) out.push_back({dir + "/" + e->d_name, *seq, 0});
  }
  closedir(d);
  std::vector<SnapshotFile> present;
  present.reserve(out.size());
  for (SnapshotFile& f : out) {
    struct stat st {};
    if (stat(f.path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile (an older one)
      return detail::ErrnoStatus(errno, "snapshot " + f.path);
    }
    f.size_bytes = static_cast<std::uint64_t>(st.st_size);
    present.push_back(std::move(f));
  }
  std::sort(present.begin(), present.end(),
            [](const SnapshotFile& a, const SnapshotFile& b) {
              return a.journal_seq < b.journal_seq;
            });
  return present;
}

// ---------------------------------------------------------------- writer

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
      detail::Crc32cCombine(body_crc_, base::Crc32c(p, h.size()), h.size());
  body_crc_ =
      detail::Crc32cCombine(body_crc_, section_crc_, section_entry_bytes_);
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
      detail::Crc32cCombine(base::Crc32c(p, h.size()), body_crc_, body_bytes_);

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

// ---------------------------------------------------------------- reader

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::Open(
    const std::string& path, std::uint64_t expected_grid_id,
    std::uint32_t expected_node_id) {
  std::unique_ptr<SnapshotReader> r(
      new SnapshotReader(path, expected_grid_id, expected_node_id));
  r->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) {
    return detail::ErrnoStatus(errno, "opening snapshot " + path);
  }
  struct stat st {};
  if (fstat(r->fd_, &st) != 0) {
    return detail::ErrnoIoError(errno, "stat of snapshot " + path);
  }
  r->size_ = static_cast<std::uint64_t>(st.st_size);
  // The verifying pass: the same steps as Next(), discarding the items.
  r->Rewind();
  while (r->state_ != State::kDone) {
    std::optional<SnapshotItem> item;
    NUMAGRID_RETURN_IF_ERROR(r->Step(&item));
  }
  r->total_entries_ = r->next_ordinal_ - 1;
  r->verified_ = true;
  r->Rewind();
  return r;
}

SnapshotReader::SnapshotReader(std::string path, std::uint64_t expected_grid_id,
                               std::uint32_t expected_node_id)
    : path_(std::move(path)),
      expected_grid_id_(expected_grid_id),
      expected_node_id_(expected_node_id) {}

SnapshotReader::~SnapshotReader() {
  if (fd_ >= 0) close(fd_);
}

void SnapshotReader::Rewind() {
  state_ = State::kHeader;
  pos_ = 0;
  crc_ = 0;
  sections_ = 0;
  partition_id_ = 0;
  covered_seq_ = 0;
  section_entries_ = 0;
  entries_left_ = 0;
  entry_bytes_left_ = 0;
  next_ordinal_ = 1;
}

Result<std::optional<SnapshotItem>> SnapshotReader::Next() {
  if (!error_.ok()) return error_;
  std::optional<SnapshotItem> item;
  while (state_ != State::kDone) {
    Status s = Step(&item);
    if (!s.ok()) {
      error_ = s;
      return s;
    }
    if (item) break;
  }
  return item;
}

Status SnapshotReader::Damage(std::uint64_t off,
                              const std::string& reason) const {
  return Corruption(path_ + ": corrupt snapshot at offset " +
                    std::to_string(off) + ": " + reason);
}

Result<std::span<const std::byte>> SnapshotReader::Bytes(std::uint64_t off,
                                                         std::uint64_t n,
                                                         std::uint64_t limit) {
  limit = std::min(limit, size_);
  n = off >= limit ? 0 : std::min(n, limit - off);
  if (n == 0) return std::span<const std::byte>();
  if (off >= buf_off_ && off + n <= buf_off_ + buf_len_) {
    return std::span<const std::byte>(buf_.data() + (off - buf_off_), n);
  }
  // n <= size_ - off, so what is allocated never exceeds the file.
  const std::uint64_t want = std::min<std::uint64_t>(
      std::max<std::uint64_t>(n, kChunkBytes), size_ - off);
  if (buf_.size() < want) buf_.resize(want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t rc = pread(fd_, buf_.data() + got, want - got,
                             static_cast<off_t>(off + got));
    if (rc < 0) {
      if (errno == EINTR) continue;
      buf_len_ = 0;
      return detail::ErrnoIoError(errno, "reading snapshot " + path_ +
                                             " at offset " +
                                             std::to_string(off + got));
    }
    if (rc == 0) break;
    got += static_cast<std::size_t>(rc);
  }
  buf_off_ = off;
  buf_len_ = got;
  if (got < n) {
    return IoError("snapshot " + path_ + " shrank while being read (" +
                   std::to_string(off + got) + " bytes, expected " +
                   std::to_string(size_) + ")");
  }
  return std::span<const std::byte>(buf_.data(), n);
}

Status SnapshotReader::Step(std::optional<SnapshotItem>* item) {
  switch (state_) {
    case State::kHeader:
      return StepHeader();
    case State::kSection:
      return StepSection(item);
    case State::kEntry:
      return StepEntry(item);
    case State::kFooter:
      return StepFooter();
    case State::kDone:
      break;
  }
  return Status::Ok();
}

Status SnapshotReader::StepHeader() {
  Result<std::span<const std::byte>> b = Bytes(0, kSnapshotHeaderBytes, size_);
  if (!b.ok()) return b.status();
  const std::byte* p = b->data();
  const std::string short_file =
      "file of " + std::to_string(size_) + " bytes, shorter than the " +
      std::to_string(kSnapshotHeaderBytes) + "-byte header";
  if (b->size() < kHdrOffVersion) return Damage(0, short_file);
  if (Load<std::uint64_t>(p + kHdrOffMagic) != kSnapshotMagic) {
    return Damage(0, "not a numagrid snapshot (bad magic)");
  }
  if (b->size() < kHdrOffHeaderBytes) return Damage(0, short_file);
  // The version sits at a fixed offset in every format version, so it is
  // read before the CRC, whose place a later version may move.
  const auto version = Load<std::uint32_t>(p + kHdrOffVersion);
  if (version != kSnapshotFormatVersion) {
    return VersionMismatch(
        path_ + ": snapshot of format version " + std::to_string(version) +
        "; this build reads version " + std::to_string(kSnapshotFormatVersion));
  }
  if (b->size() < kSnapshotHeaderBytes) return Damage(0, short_file);
  const auto stored_crc = Load<std::uint32_t>(p + kHdrOffCrc);
  const std::uint32_t crc = base::Crc32c(p, kHdrOffCrc);
  if (crc != stored_crc) {
    return Damage(0, "header CRC32C " + Hex32(crc) + " but the header says " +
                         Hex32(stored_crc));
  }
  const auto header_bytes = Load<std::uint32_t>(p + kHdrOffHeaderBytes);
  if (header_bytes != kSnapshotHeaderBytes) {
    return Damage(0, "header size " + std::to_string(header_bytes) +
                         ", expected " + std::to_string(kSnapshotHeaderBytes));
  }
  if (!AllZero(p + kHdrOffReserved, kHdrOffCrc - kHdrOffReserved)) {
    return Damage(kHdrOffReserved, "reserved header bytes are not zero");
  }
  SnapshotHeader h;
  h.grid_id = Load<std::uint64_t>(p + kHdrOffGrid);
  h.node_id = Load<std::uint32_t>(p + kHdrOffNode);
  h.partition_count = Load<std::uint32_t>(p + kHdrOffPartitions);
  h.journal_seq = Load<std::uint64_t>(p + kHdrOffJournalSeq);
  h.created_unix_ns = Load<std::uint64_t>(p + kHdrOffCreated);
  if (h.node_id != expected_node_id_) {
    return Corruption(path_ + ": snapshot of node " +
                      std::to_string(h.node_id) + ", expected node " +
                      std::to_string(expected_node_id_));
  }
  if (expected_grid_id_ != 0 && h.grid_id != expected_grid_id_) {
    return Corruption(path_ + ": snapshot of grid " +
                      std::to_string(h.grid_id) + ", expected grid " +
                      std::to_string(expected_grid_id_));
  }
  const std::size_t slash = path_.rfind('/');
  const std::string_view name = std::string_view(path_).substr(
      slash == std::string::npos ? 0 : slash + 1);
  const auto named_seq = ParseSnapshotFileName(name, h.node_id);
  if (named_seq && *named_seq != h.journal_seq) {
    return Corruption(path_ + ": header says journal sequence " +
                      std::to_string(h.journal_seq) +
                      ", which does not match the file name");
  }
  if (verified_ &&
      (h.grid_id != header_.grid_id || h.journal_seq != header_.journal_seq ||
       h.created_unix_ns != header_.created_unix_ns ||
       h.partition_count != header_.partition_count)) {
    return Damage(0, "the header changed since the file was verified");
  }
  if (size_ < kSnapshotHeaderBytes + kSnapshotFooterBytes) {
    return Damage(size_, "file of " + std::to_string(size_) +
                             " bytes ends before a footer");
  }
  header_ = h;
  crc_ = base::Crc32c(p, kSnapshotHeaderBytes);
  pos_ = kSnapshotHeaderBytes;
  state_ = h.partition_count > 0 ? State::kSection : State::kFooter;
  return Status::Ok();
}

Status SnapshotReader::StepSection(std::optional<SnapshotItem>* item) {
  // The footer is the file's last kSnapshotFooterBytes; nothing else may
  // reach into them.
  const std::uint64_t limit = size_ - kSnapshotFooterBytes;
  const std::string which = "section " + std::to_string(sections_ + 1) +
                            " of " + std::to_string(header_.partition_count);
  Result<std::span<const std::byte>> b =
      Bytes(pos_, kSnapshotSectionHeaderBytes, limit);
  if (!b.ok()) return b.status();
  if (b->size() < kSnapshotSectionHeaderBytes) {
    return Damage(pos_, which + " cut short: " + std::to_string(b->size()) +
                            " bytes before the footer");
  }
  const std::byte* p = b->data();
  if (Load<std::uint64_t>(p + kSecOffMagic) != kSnapshotSectionMagic) {
    return Damage(pos_, which + ": bad section magic");
  }
  const auto stored_crc = Load<std::uint32_t>(p + kSecOffCrc);
  const std::uint32_t crc = base::Crc32c(p, kSecOffCrc);
  if (crc != stored_crc) {
    return Damage(pos_, which + ": section header CRC32C " + Hex32(crc) +
                            " but the header says " + Hex32(stored_crc));
  }
  if (Load<std::uint32_t>(p + kSecOffReserved0) != 0 ||
      Load<std::uint32_t>(p + kSecOffReserved1) != 0) {
    return Damage(pos_, which + ": reserved fields are not zero");
  }
  const auto partition_id = Load<std::uint32_t>(p + kSecOffPartition);
  const auto entries = Load<std::uint64_t>(p + kSecOffEntries);
  const auto entry_bytes = Load<std::uint64_t>(p + kSecOffEntryBytes);
  if (sections_ > 0 && partition_id <= partition_id_) {
    return Damage(pos_, which + " is of partition " +
                            std::to_string(partition_id) + " after partition " +
                            std::to_string(partition_id_) + ": out of order");
  }
  const std::uint64_t room = limit - pos_ - kSnapshotSectionHeaderBytes;
  if (entry_bytes % kRecordAlignBytes != 0 ||
      entries > entry_bytes / kRecordHeaderBytes ||
      (entries == 0) != (entry_bytes == 0) || entry_bytes > room) {
    return Damage(pos_, which + ": " + std::to_string(entries) +
                            " entries in " + std::to_string(entry_bytes) +
                            " bytes is impossible here (" +
                            std::to_string(room) + " bytes before the footer)");
  }
  crc_ = base::Crc32c(p, kSnapshotSectionHeaderBytes, crc_);
  pos_ += kSnapshotSectionHeaderBytes;
  ++sections_;
  partition_id_ = partition_id;
  covered_seq_ = Load<std::uint64_t>(p + kSecOffCoveredSeq);
  section_entries_ = entries;
  entries_left_ = entries;
  entry_bytes_left_ = entry_bytes;
  if (entries > 0) {
    state_ = State::kEntry;
  } else {
    state_ =
        sections_ < header_.partition_count ? State::kSection : State::kFooter;
  }
  SnapshotItem it;
  it.kind = SnapshotItem::Kind::kPartition;
  it.partition_id = partition_id_;
  it.covered_seq = covered_seq_;
  it.entry_count = section_entries_;
  *item = it;
  return Status::Ok();
}

Status SnapshotReader::StepEntry(std::optional<SnapshotItem>* item) {
  // Entries end where the section header says, which is before the footer.
  const std::uint64_t limit = pos_ + entry_bytes_left_;
  const std::string which = "entry " + std::to_string(next_ordinal_) +
                            " (in the section of partition " +
                            std::to_string(partition_id_) + ")";
  Result<std::span<const std::byte>> b = Bytes(pos_, kRecordHeaderBytes, limit);
  if (!b.ok()) return b.status();
  if (b->empty()) {
    return Damage(pos_, which + ": the section's bytes end before its " +
                            std::to_string(section_entries_) + " entries");
  }
  DecodedRecord d = DecodeRecord(*b, pos_);
  if (d.outcome == DecodeOutcome::kTorn && d.size_bytes > b->size()) {
    // The header promises more bytes: decode again with all there are.
    b = Bytes(pos_, d.size_bytes, limit);
    if (!b.ok()) return b.status();
    d = DecodeRecord(*b, pos_);
  }
  if (!d.ok()) {
    return Damage(pos_, which + ": " + d.reason +
                            (d.outcome == DecodeOutcome::kTorn
                                 ? " (the section's bytes end inside it)"
                                 : ""));
  }
  const RecordView& r = d.record;
  if (r.sequence != next_ordinal_) {
    return Damage(pos_, which + " has ordinal " + std::to_string(r.sequence) +
                            ": an entry is missing or repeated");
  }
  if (r.partition_id != partition_id_) {
    return Damage(pos_,
                  which + " is of partition " + std::to_string(r.partition_id));
  }
  if (r.op != RecordOp::kPut) {
    return Damage(pos_, which + " is a " + std::string(RecordOpName(r.op)) +
                            ", not a put");
  }
  if (r.change_seq != r.version) {
    return Damage(pos_, which + " has change sequence " +
                            std::to_string(r.change_seq) + " but version " +
                            std::to_string(r.version));
  }
  const std::size_t used = kRecordHeaderBytes + r.key.size() + r.value.size();
  if (!AllZero(b->data() + used, d.size_bytes - used)) {
    return Damage(pos_, which + ": padding is not zero");
  }
  crc_ = base::Crc32c(b->data(), d.size_bytes, crc_);
  pos_ += d.size_bytes;
  entry_bytes_left_ -= d.size_bytes;  // d.size_bytes <= limit - pos_
  --entries_left_;
  ++next_ordinal_;
  if (entries_left_ == 0) {
    if (entry_bytes_left_ != 0) {
      return Damage(pos_, "the section of partition " +
                              std::to_string(partition_id_) + " has " +
                              std::to_string(entry_bytes_left_) +
                              " bytes after its last entry");
    }
    state_ =
        sections_ < header_.partition_count ? State::kSection : State::kFooter;
  }
  SnapshotItem it;
  it.kind = SnapshotItem::Kind::kEntry;
  it.partition_id = partition_id_;
  it.covered_seq = covered_seq_;
  it.entry_count = section_entries_;
  it.entry = r;
  *item = it;
  return Status::Ok();
}

Status SnapshotReader::StepFooter() {
  const std::uint64_t footer_off = size_ - kSnapshotFooterBytes;
  if (pos_ != footer_off) {
    return Damage(pos_, std::to_string(footer_off - pos_) +
                            " bytes after the last section, before the footer");
  }
  Result<std::span<const std::byte>> b =
      Bytes(footer_off, kSnapshotFooterBytes, size_);
  if (!b.ok()) return b.status();
  NUMAGRID_DCHECK(b->size() == kSnapshotFooterBytes);
  const std::byte* p = b->data();
  if (Load<std::uint64_t>(p + kFtrOffMagic) != kSnapshotFooterMagic) {
    return Damage(footer_off,
                  "bad footer magic (the file is cut short, or "
                  "has bytes after its end)");
  }
  const auto stored_crc = Load<std::uint32_t>(p + kFtrOffCrc);
  const std::uint32_t crc = base::Crc32c(p, kFtrOffCrc);
  if (crc != stored_crc) {
    return Damage(footer_off, "footer CRC32C " + Hex32(crc) +
                                  " but the footer says " + Hex32(stored_crc));
  }
  if (Load<std::uint32_t>(p + kFtrOffReserved) != 0) {
    return Damage(footer_off, "reserved footer field is not zero");
  }
  const auto partitions = Load<std::uint32_t>(p + kFtrOffPartitions);
  const auto entries = Load<std::uint64_t>(p + kFtrOffEntries);
  const auto file_bytes = Load<std::uint64_t>(p + kFtrOffFileBytes);
  if (partitions != header_.partition_count || entries != next_ordinal_ - 1 ||
      file_bytes != size_) {
    return Damage(footer_off, "footer counts " + std::to_string(partitions) +
                                  " partitions, " + std::to_string(entries) +
                                  " entries and " + std::to_string(file_bytes) +
                                  " bytes, the file has " +
                                  std::to_string(header_.partition_count) +
                                  ", " + std::to_string(next_ordinal_ - 1) +
                                  " and " + std::to_string(size_));
  }
  const auto file_crc = Load<std::uint32_t>(p + kFtrOffFileCrc);
  if (file_crc != crc_) {
    return Damage(footer_off, "CRC32C of the file before the footer is " +
                                  Hex32(crc_) + " but the footer says " +
                                  Hex32(file_crc));
  }
  state_ = State::kDone;
  return Status::Ok();
}

}  // namespace numagrid::io
