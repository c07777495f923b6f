// SnapshotReader (docs/snapshot-format.md, "Reading and recovery"): one state
// machine over the file's frames, run once by Open to verify the whole file and
// again by Next() to hand out its items, with the same checks.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "core/base/check.h"
#include "core/base/crc32c.h"
#include "io/errno_status.h"
#include "io/snapshot_file.h"
#include "io/snapshot_frame.h"

namespace numagrid::io {

// The parts of the frame layout (snapshot_frame.h) the reader uses.
using detail::kChunkBytes;
using detail::kFtrOffCrc;
using detail::kFtrOffEntries;
using detail::kFtrOffFileBytes;
using detail::kFtrOffFileCrc;
using detail::kFtrOffMagic;
using detail::kFtrOffPartitions;
using detail::kFtrOffReserved;
using detail::kHdrOffCrc;
using detail::kHdrOffCreated;
using detail::kHdrOffGrid;
using detail::kHdrOffHeaderBytes;
using detail::kHdrOffJournalSeq;
using detail::kHdrOffMagic;
using detail::kHdrOffNode;
using detail::kHdrOffPartitions;
using detail::kHdrOffReserved;
using detail::kHdrOffVersion;
using detail::kSecOffCoveredSeq;
using detail::kSecOffCrc;
using detail::kSecOffEntries;
using detail::kSecOffEntryBytes;
using detail::kSecOffMagic;
using detail::kSecOffPartition;
using detail::kSecOffReserved0;
using detail::kSecOffReserved1;
using detail::Load;

namespace {

bool AllZero(const std::byte* p, std::size_t n) noexcept {
  return std::all_of(p, p + n, [](std::byte b) { return b == std::byte{0}; });
}

std::string Hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

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