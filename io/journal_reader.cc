// JournalReader: a sliding read buffer over one segment at a time, the
// sequence and header checks, and the tail-or-corruption decision.
#include "io/journal_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/base/check.h"
#include "io/errno_status.h"

namespace numagrid::io {
namespace {

Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return detail::ErrnoStatus(errno, "opening journal directory " + dir);
  }
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) {
    return detail::ErrnoIoError(err, "syncing journal directory " + dir);
  }
  return Status::Ok();
}

}  // namespace

std::string_view TailKindName(TailKind kind) noexcept {
  switch (kind) {
    case TailKind::kNone:
      return "none";
    case TailKind::kTornRecord:
      return "torn record";
    case TailKind::kCorruptRecord:
      return "corrupt record";
    case TailKind::kTornHeader:
      return "torn segment header";
  }
  return "unknown";
}

std::string DroppedTail::ToString() const {
  if (kind == TailKind::kNone) return "none";
  return std::string(TailKindName(kind)) + " in " + file + " at offset " +
         std::to_string(offset) + " (" + std::to_string(dropped_bytes) +
         " bytes dropped, last good sequence " + std::to_string(last_good_seq) +
         "): " + reason;
}

Result<std::unique_ptr<JournalReader>> JournalReader::Open(
    const JournalReaderOptions& options) {
  if (options.read_chunk_bytes < kRecordHeaderBytes) {
    return InvalidArgument("journal read chunk of " +
                           std::to_string(options.read_chunk_bytes) +
                           " bytes is smaller than a record header");
  }
  std::unique_ptr<JournalReader> r(new JournalReader(options));
  DIR* d = opendir(options.dir.c_str());
  if (d == nullptr) {
    return detail::ErrnoStatus(errno, "journal directory " + options.dir);
  }
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    const auto seq = ParseSegmentFileName(e->d_name, options.node_id);
    if (seq) r->segments_.push_back({options.dir + "/" + e->d_name, *seq, 0});
  }
  closedir(d);
  std::sort(r->segments_.begin(), r->segments_.end(),
            [](const SegmentFile& a, const SegmentFile& b) {
              return a.first_seq < b.first_seq;
            });
  if (options.from_seq != 0) {
    // Keep the segment that holds from_seq (the last one named at or below
    // it) and every later one.
    auto first_kept = std::upper_bound(
        r->segments_.begin(), r->segments_.end(), options.from_seq,
        [](std::uint64_t seq, const SegmentFile& s) {
          return seq < s.first_seq;
        });
    if (first_kept != r->segments_.begin()) --first_kept;
    r->segments_.erase(r->segments_.begin(), first_kept);
  }
  for (SegmentFile& s : r->segments_) {
    struct stat st {};
    if (stat(s.path.c_str(), &st) != 0) {
      return detail::ErrnoStatus(errno, "journal segment " + s.path);
    }
    s.size_bytes = static_cast<std::uint64_t>(st.st_size);
  }
  return r;
}

JournalReader::JournalReader(JournalReaderOptions options)
    : options_(std::move(options)) {}

JournalReader::~JournalReader() { CloseSegment(); }

void JournalReader::CloseSegment() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buf_len_ = 0;
}

Status JournalReader::Fail(Status s) {
  error_ = s;
  CloseSegment();
  return s;
}

Result<std::optional<RecordView>> JournalReader::Next() {
  if (!error_.ok()) return error_;
  for (;;) {
    if (done_) return std::optional<RecordView>();
    if (fd_ < 0) {
      if (next_segment_ == segments_.size()) {
        done_ = true;
        continue;
      }
      Status s = OpenSegment(next_segment_++);
      if (!s.ok()) return Fail(s);
      continue;
    }
    const SegmentFile& seg = segments_[seg_index_];
    if (pos_ >= seg.size_bytes) {
      CloseSegment();
      continue;
    }
    Result<DecodedRecord> d = DecodeAt(pos_);
    if (!d.ok()) return Fail(d.status());
    if (!d->ok()) {
      const TailKind kind = d->outcome == DecodeOutcome::kTorn
                                ? TailKind::kTornRecord
                                : TailKind::kCorruptRecord;
      Status s = DamageAt(pos_, kind, d->status().message());
      if (!s.ok()) return Fail(s);
      continue;
    }
    const RecordView& r = d->record;
    if (r.sequence != expected_seq_) {
      return Fail(Corruption(seg.path + ": record at offset " +
                             std::to_string(pos_) + " has sequence " +
                             std::to_string(r.sequence) + ", expected " +
                             std::to_string(expected_seq_)));
    }
    ++expected_seq_;
    last_good_seq_ = r.sequence;
    pos_ += d->size_bytes;
    return std::optional<RecordView>(r);
  }
}

Status JournalReader::OpenSegment(std::size_t index) {
  SegmentFile& seg = segments_[index];
  fd_ = open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    return detail::ErrnoStatus(errno, "opening journal segment " + seg.path);
  }
  struct stat st {};
  if (fstat(fd_, &st) != 0) {
    return detail::ErrnoIoError(errno, "stat of " + seg.path);
  }
  seg.size_bytes = static_cast<std::uint64_t>(st.st_size);
  seg_index_ = index;
  buf_len_ = 0;
  pos_ = 0;
  Result<std::span<const std::byte>> head = Bytes(0, kSegmentHeaderBytes);
  if (!head.ok()) return head.status();
  const DecodedSegmentHeader h = DecodeSegmentHeader(*head);
  if (h.outcome != DecodeOutcome::kOk) {
    if (h.error.code() == StatusCode::kVersionMismatch) {
      return h.error.WithContext(seg.path);
    }
    return DamageAt(0, TailKind::kTornHeader, h.error.message());
  }
  const SegmentHeader& hdr = h.header;
  if (hdr.node_id != options_.node_id || hdr.first_seq != seg.first_seq) {
    return Corruption(seg.path + ": header says node " +
                      std::to_string(hdr.node_id) + ", first sequence " +
                      std::to_string(hdr.first_seq) +
                      ", which does not match its name");
  }
  const std::uint64_t want_grid = options_.grid_id != 0 ? options_.grid_id
                                  : index > 0           ? grid_id_
                                                        : hdr.grid_id;
  if (hdr.grid_id != want_grid) {
    return Corruption(
        seg.path + ": segment of grid " + std::to_string(hdr.grid_id) +
        ", but the journal belongs to grid " + std::to_string(want_grid));
  }
  grid_id_ = hdr.grid_id;
  if (index > 0 && hdr.first_seq != expected_seq_) {
    return Corruption(
        seg.path + ": segment starts at sequence " +
        std::to_string(hdr.first_seq) + " but the one before it ends before " +
        std::to_string(expected_seq_) + ": a segment is missing or misplaced");
  }
  expected_seq_ = hdr.first_seq;
  pos_ = kSegmentHeaderBytes;
  return Status::Ok();
}

Result<std::span<const std::byte>> JournalReader::Bytes(std::uint64_t off,
                                                        std::uint64_t n) {
  const std::uint64_t size = segments_[seg_index_].size_bytes;
  n = off >= size ? 0 : std::min(n, size - off);
  if (off >= buf_off_ && off + n <= buf_off_ + buf_len_) {
    return std::span<const std::byte>(buf_.data() + (off - buf_off_), n);
  }
  const std::uint64_t want = std::min<std::uint64_t>(
      std::max<std::uint64_t>(n, options_.read_chunk_bytes), size - off);
  if (buf_.size() < want) buf_.resize(want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t rc = pread(fd_, buf_.data() + got, want - got,
                             static_cast<off_t>(off + got));
    if (rc < 0) {
      if (errno == EINTR) continue;
      buf_len_ = 0;
      return detail::ErrnoIoError(
          errno, "reading " + segments_[seg_index_].path + " at offset " +
                     std::to_string(off + got));
    }
    if (rc == 0) break;
    got += static_cast<std::size_t>(rc);
  }
  buf_off_ = off;
  buf_len_ = got;
  if (got < n) {
    return IoError(segments_[seg_index_].path + " shrank while being read (" +
                   std::to_string(off + got) + " bytes, expected " +
                   std::to_string(size) + ")");
  }
  return std::span<const std::byte>(buf_.data(), n);
}

Result<DecodedRecord> JournalReader::DecodeAt(std::uint64_t off) {
  Result<std::span<const std::byte>> head = Bytes(off, kRecordHeaderBytes);
  if (!head.ok()) return head.status();
  DecodedRecord d = DecodeRecord(*head, off);
  if (d.outcome == DecodeOutcome::kTorn && d.size_bytes > head->size()) {
    // The header promises more bytes: decode again with all the file has.
    Result<std::span<const std::byte>> whole = Bytes(off, d.size_bytes);
    if (!whole.ok()) return whole.status();
    d = DecodeRecord(*whole, off);
  }
  return d;
}

Result<std::optional<std::uint64_t>> JournalReader::FindIntactRecord(
    std::uint64_t from) {
  const std::uint64_t size = segments_[seg_index_].size_bytes;
  from = (from + kRecordAlignBytes - 1) & ~std::uint64_t{kRecordAlignBytes - 1};
  for (std::uint64_t off = from; off + kRecordHeaderBytes <= size;
       off += kRecordAlignBytes) {
    Result<DecodedRecord> d = DecodeAt(off);
    if (!d.ok()) return d.status();
    if (d->ok()) return std::optional<std::uint64_t>(off);
  }
  return std::optional<std::uint64_t>();
}

Status JournalReader::DamageAt(std::uint64_t off, TailKind kind,
                               const std::string& reason) {
  const SegmentFile& seg = segments_[seg_index_];
  if (seg_index_ + 1 < segments_.size()) {
    // A writer syncs a segment completely before it creates the next one,
    // so only the last segment can end in an interrupted append.
    return Corruption(seg.path + ": " + reason +
                      "; later segments exist, so this is not a torn tail");
  }
  Result<std::optional<std::uint64_t>> intact = FindIntactRecord(
      std::max<std::uint64_t>(off + kRecordAlignBytes, kSegmentHeaderBytes));
  if (!intact.ok()) return intact.status();
  if (*intact) {
    return Corruption(
        seg.path + ": " + reason + "; an intact record follows at offset " +
        std::to_string(**intact) +
        ", so this is damage inside the journal, not a torn tail");
  }
  tail_.kind = kind;
  tail_.file = seg.path;
  tail_.offset = off;
  tail_.dropped_bytes = seg.size_bytes - off;
  tail_.last_good_seq = last_good_seq_;
  tail_.reason = reason;
  tail_.removes_file = off <= kSegmentHeaderBytes;
  done_ = true;
  CloseSegment();
  return Status::Ok();
}

Status JournalReader::TruncateTornTail() {
  if (!error_.ok()) return error_;
  if (!done_) {
    return InvalidArgument(
        "read the journal to its end before truncating its tail");
  }
  if (tail_.kind == TailKind::kNone || truncated_) return Status::Ok();
  if (tail_.removes_file) {
    if (unlink(tail_.file.c_str()) != 0) {
      return detail::ErrnoStatus(errno,
                                 "removing torn journal segment " + tail_.file);
    }
  } else {
    const int fd = open(tail_.file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      return detail::ErrnoStatus(errno,
                                 "opening journal segment " + tail_.file);
    }
    int rc = ftruncate(fd, static_cast<off_t>(tail_.offset));
    if (rc == 0) rc = fsync(fd);
    const int err = errno;
    close(fd);
    if (rc != 0) {
      return detail::ErrnoIoError(err, "truncating " + tail_.file +
                                           " at offset " +
                                           std::to_string(tail_.offset));
    }
  }
  NUMAGRID_RETURN_IF_ERROR(SyncDirectory(options_.dir));
  truncated_ = true;
  return Status::Ok();
}

}  // namespace numagrid::io
