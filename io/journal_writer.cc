// JournalWriter: batching into pieces (one per file), rollover and the
// durable bookkeeping. The device does the I/O.
#include "io/journal_writer.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <span>

#include "core/base/check.h"
#include "io/errno_status.h"
#include "io/uring_journal_device.h"

namespace numagrid::io {
namespace {

std::uint64_t NowUnixNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// The smallest segment size that holds a header and one small record; below
// that every record would get its own file.
constexpr std::uint64_t kMinSegmentBytes = 4096;

Status CheckOptions(const JournalWriterOptions& o) {
  if (o.dir.empty()) return InvalidArgument("journal directory is empty");
  if (o.first_seq == 0) {
    return InvalidArgument("journal sequence 0 is reserved; start at 1");
  }
  if (o.segment_bytes < kMinSegmentBytes) {
    return InvalidArgument(
        "journal segment size " + std::to_string(o.segment_bytes) +
        " is below the minimum of " + std::to_string(kMinSegmentBytes));
  }
  if ((o.file_mode & ~0777U) != 0) {
    return InvalidArgument("journal file mode " + std::to_string(o.file_mode) +
                           " has bits other than permissions");
  }
  struct stat st {};
  if (stat(o.dir.c_str(), &st) != 0) {
    return detail::ErrnoStatus(errno, "journal directory " + o.dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return NotFound("journal directory " + o.dir + " is not a directory");
  }
  // A segment at or past first_seq means the journal already holds (or
  // claims to hold) the sequences this writer would reuse.
  DIR* d = opendir(o.dir.c_str());
  if (d == nullptr) {
    return detail::ErrnoStatus(errno, "listing journal directory " + o.dir);
  }
  Status s;
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    const auto seq = ParseSegmentFileName(e->d_name, o.node_id);
    if (seq && *seq >= o.first_seq) {
      s = InvalidArgument(
          "journal segment " + o.dir + "/" + e->d_name +
          " already starts at sequence " + std::to_string(*seq) +
          ", not below the writer's first sequence " +
          std::to_string(o.first_seq) + "; recover the journal first");
      break;
    }
  }
  closedir(d);
  return s;
}

}  // namespace

Result<std::unique_ptr<JournalWriter>> JournalWriter::Open(
    const JournalWriterOptions& options, JournalDevice* device) {
  NUMAGRID_RETURN_IF_ERROR(CheckOptions(options));
  return std::unique_ptr<JournalWriter>(
      new JournalWriter(options, device, nullptr));
}

Result<std::unique_ptr<JournalWriter>> JournalWriter::Open(
    const JournalWriterOptions& options) {
  NUMAGRID_RETURN_IF_ERROR(CheckOptions(options));
  Result<std::unique_ptr<JournalDevice>> device = OpenUringJournalDevice();
  if (!device.ok()) {
    return device.status().WithContext("journal of node " +
                                       std::to_string(options.node_id));
  }
  JournalDevice* raw = device->get();
  return std::unique_ptr<JournalWriter>(
      new JournalWriter(options, raw, std::move(*device)));
}

JournalWriter::JournalWriter(const JournalWriterOptions& options,
                             JournalDevice* device,
                             std::unique_ptr<JournalDevice> owned_device)
    : options_(options),
      owned_device_(std::move(owned_device)),
      device_(device),
      next_seq_(options.first_seq),
      durable_seq_(options.first_seq - 1) {}

JournalWriter::~JournalWriter() {
  if (file_ >= 0) (void)device_->Close(file_);
}

Result<std::uint64_t> JournalWriter::Append(const RecordView& record) {
  if (closed_) return InvalidArgument("journal writer is closed");
  if (!stopped_.ok()) {
    return Panic("journal writer stopped: " + stopped_.message());
  }
  NUMAGRID_RETURN_IF_ERROR(CheckRecord(record));
  const std::uint64_t size =
      EncodedRecordBytes(record.key.size(), record.value.size());
  const std::uint64_t seq = next_seq_;
  const bool roll =
      !planned_file_ ||
      (planned_records_ > 0 && planned_bytes_ + size > options_.segment_bytes);
  if (roll) {
    Piece p;
    p.begin = pending_.size();
    p.new_file = true;
    p.first_seq = seq;
    pieces_.push_back(p);
    SegmentHeader h;
    h.grid_id = options_.grid_id;
    h.node_id = options_.node_id;
    h.first_seq = seq;
    h.created_unix_ns = NowUnixNs();
    const auto header = EncodeSegmentHeader(h);
    pending_.insert(pending_.end(), header.begin(), header.end());
    planned_file_ = true;
    planned_bytes_ = kSegmentHeaderBytes;
    planned_records_ = 0;
    stats_.appended_bytes += kSegmentHeaderBytes;
  } else if (pieces_.empty()) {
    Piece p;
    p.begin = pending_.size();
    p.first_seq = seq;
    pieces_.push_back(p);
  }
  const std::size_t at = pending_.size();
  pending_.resize(at + size);
  RecordView r = record;
  r.sequence = seq;
  EncodeRecordTo(r, std::span<std::byte>(pending_).subspan(at));
  Piece& p = pieces_.back();
  p.end = pending_.size();
  p.last_seq = seq;
  ++p.records;
  planned_bytes_ += size;
  ++planned_records_;
  ++next_seq_;
  ++stats_.appended_records;
  stats_.appended_bytes += size;
  return seq;
}

Status JournalWriter::Flush() {
  if (closed_) return InvalidArgument("journal writer is closed");
  if (!stopped_.ok()) {
    return Panic("journal writer stopped: " + stopped_.message());
  }
  if (pieces_.empty()) return Status::Ok();
  for (const Piece& piece : pieces_) {
    NUMAGRID_RETURN_IF_ERROR(FlushPiece(piece));
  }
  pending_.clear();
  pieces_.clear();
  ++stats_.flushes;
  return Status::Ok();
}

Status JournalWriter::FlushPiece(const Piece& piece) {
  if (piece.new_file) {
    if (file_ >= 0) {
      // Everything in the old file was synced by the piece that wrote it.
      const int rc = device_->Close(file_);
      file_ = -1;
      if (rc < 0) {
        return Stop(detail::ErrnoIoError(-rc, "closing " + file_path_));
      }
    }
    const std::string path =
        options_.dir + "/" + SegmentFileName(options_.node_id, piece.first_seq);
    const int fd = device_->Create(path, options_.file_mode, options_.group_id);
    if (fd < 0) {
      return Stop(detail::ErrnoStatus(-fd, "creating journal segment " + path));
    }
    file_ = fd;
    file_path_ = path;
    file_bytes_ = 0;
    ++stats_.segments_created;
    stats_.segment_path = path;
    // The new name must be durable before any record in it is called
    // durable; syncing it before the data keeps the order simple.
    const int rc = device_->SyncDir(options_.dir);
    if (rc < 0) {
      return Stop(detail::ErrnoIoError(
          -rc, "syncing journal directory " + options_.dir));
    }
  }
  const std::size_t bytes = piece.end - piece.begin;
  const int rc = device_->WriteAtAndSync(
      file_, file_bytes_,
      std::span<const std::byte>(pending_).subspan(piece.begin, bytes));
  ++stats_.syncs;
  if (rc < 0) {
    return Stop(detail::ErrnoIoError(
        -rc, "writing " + std::to_string(bytes) + " bytes at offset " +
                 std::to_string(file_bytes_) + " of " + file_path_ +
                 " and syncing them"));
  }
  file_bytes_ += bytes;
  durable_seq_ = piece.last_seq;
  stats_.durable_records += piece.records;
  stats_.durable_bytes += bytes;
  return Status::Ok();
}

Status JournalWriter::Stop(Status s) {
  stopped_ = s;
  pending_.clear();
  pieces_.clear();
  return s;
}

Status JournalWriter::Close() {
  if (closed_) return InvalidArgument("journal writer is closed");
  Status s = Flush();
  closed_ = true;
  if (file_ >= 0) {
    const int rc = device_->Close(file_);
    file_ = -1;
    if (rc < 0 && s.ok()) {
      s = detail::ErrnoIoError(-rc, "closing " + file_path_);
    }
  }
  return s;
}

JournalWriterStats JournalWriter::stats() const {
  JournalWriterStats s = stats_;
  s.next_seq = next_seq_;
  s.durable_seq = durable_seq_;
  return s;
}

}  // namespace numagrid::io
