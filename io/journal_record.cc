// Encoding and decoding of the journal framing (docs/journal-format.md).
// Fields are stored little-endian byte by byte, so the code does not depend
// on the host's byte order or on the alignment of the buffer.
#include "io/journal_record.h"

#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/base/check.h"
#include "core/base/crc32c.h"
#include "io/node_file_name.h"

namespace numagrid::io {
namespace {

// Record header offsets (docs/journal-format.md, "Record").
constexpr std::size_t kOffLength = 0;
constexpr std::size_t kOffCrc = 4;
constexpr std::size_t kOffSequence = 8;
constexpr std::size_t kOffPartition = 16;
constexpr std::size_t kOffOp = 20;
constexpr std::size_t kOffFlags = 21;
constexpr std::size_t kOffKeyLen = 22;
constexpr std::size_t kOffValueLen = 24;
constexpr std::size_t kOffReserved = 28;
constexpr std::size_t kOffChangeSeq = 32;
constexpr std::size_t kOffVersion = 40;
constexpr std::size_t kOffExpiry = 48;
static_assert(kOffExpiry + 8 == kRecordHeaderBytes);
// The CRC covers everything after itself, so it also covers the padding.
constexpr std::size_t kCrcFrom = kOffSequence;

// Segment header offsets (docs/journal-format.md, "Segment header").
constexpr std::size_t kSegOffMagic = 0;
constexpr std::size_t kSegOffVersion = 8;
constexpr std::size_t kSegOffHeaderBytes = 12;
constexpr std::size_t kSegOffGrid = 16;
constexpr std::size_t kSegOffNode = 24;
constexpr std::size_t kSegOffFirstSeq = 32;
constexpr std::size_t kSegOffCreated = 40;
constexpr std::size_t kSegOffCrc = 60;
static_assert(kSegOffCrc + 4 == kSegmentHeaderBytes);

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

bool KnownOp(std::uint8_t op) noexcept {
  return op >= static_cast<std::uint8_t>(RecordOp::kPut) &&
         op <= static_cast<std::uint8_t>(RecordOp::kEvict);
}

DecodedRecord Problem(DecodeOutcome outcome, std::uint64_t offset,
                      std::uint64_t size_bytes, std::string reason) {
  DecodedRecord d;
  d.outcome = outcome;
  d.offset = offset;
  d.size_bytes = size_bytes;
  d.reason = std::move(reason);
  return d;
}

std::string Hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

std::string_view RecordOpName(RecordOp op) noexcept {
  switch (op) {
    case RecordOp::kPut:
      return "put";
    case RecordOp::kRemove:
      return "remove";
    case RecordOp::kExpire:
      return "expire";
    case RecordOp::kEvict:
      return "evict";
  }
  return "unknown";
}

Status CheckRecord(const RecordView& record) {
  if (record.key.size() > kMaxJournalKeyBytes) {
    return InvalidArgument(
        "journal record key of " + std::to_string(record.key.size()) +
        " bytes; the format allows " + std::to_string(kMaxJournalKeyBytes));
  }
  if (record.value.size() > kMaxJournalValueBytes) {
    return InvalidArgument(
        "journal record value of " + std::to_string(record.value.size()) +
        " bytes; the format allows " + std::to_string(kMaxJournalValueBytes));
  }
  if (!KnownOp(static_cast<std::uint8_t>(record.op))) {
    return InvalidArgument("journal record op " +
                           std::to_string(static_cast<unsigned>(record.op)) +
                           " is not defined");
  }
  if ((record.flags & ~kKnownRecordFlags) != 0) {
    return InvalidArgument("journal record flags " +
                           std::to_string(record.flags) + " are not defined");
  }
  if (record.op != RecordOp::kPut && !record.value.empty()) {
    return InvalidArgument(std::string("a journal ") +
                           std::string(RecordOpName(record.op)) +
                           " record carries no value");
  }
  return Status::Ok();
}

Status EncodeRecord(const RecordView& record, std::vector<std::byte>* out) {
  NUMAGRID_RETURN_IF_ERROR(CheckRecord(record));
  const std::size_t at = out->size();
  out->resize(at + EncodedRecordBytes(record.key.size(), record.value.size()));
  EncodeRecordTo(record, std::span<std::byte>(*out).subspan(at));
  return Status::Ok();
}

void EncodeRecordTo(const RecordView& record,
                    std::span<std::byte> out) noexcept {
  const std::uint64_t size =
      EncodedRecordBytes(record.key.size(), record.value.size());
  NUMAGRID_DCHECK(out.size() >= size);
  std::byte* p = out.data();
  Store<std::uint32_t>(p + kOffLength, static_cast<std::uint32_t>(size));
  Store<std::uint64_t>(p + kOffSequence, record.sequence);
  Store<std::uint32_t>(p + kOffPartition, record.partition_id);
  Store<std::uint8_t>(p + kOffOp, static_cast<std::uint8_t>(record.op));
  Store<std::uint8_t>(p + kOffFlags, record.flags);
  Store<std::uint16_t>(p + kOffKeyLen,
                       static_cast<std::uint16_t>(record.key.size()));
  Store<std::uint32_t>(p + kOffValueLen,
                       static_cast<std::uint32_t>(record.value.size()));
  Store<std::uint32_t>(p + kOffReserved, 0);
  Store<std::uint64_t>(p + kOffChangeSeq, record.change_seq);
  Store<std::uint64_t>(p + kOffVersion, record.version);
  Store<std::uint64_t>(p + kOffExpiry, record.expiry_ms);
  std::byte* body = p + kRecordHeaderBytes;
  if (!record.key.empty()) {
    std::memcpy(body, record.key.data(), record.key.size());
  }
  body += record.key.size();
  if (!record.value.empty()) {
    std::memcpy(body, record.value.data(), record.value.size());
  }
  body += record.value.size();
  std::memset(body, 0, static_cast<std::size_t>(p + size - body));
  Store<std::uint32_t>(p + kOffCrc,
                       base::Crc32c(p + kCrcFrom, size - kCrcFrom));
}

Status DecodedRecord::status() const {
  switch (outcome) {
    case DecodeOutcome::kOk:
      return Status::Ok();
    case DecodeOutcome::kTorn:
      return Corruption("torn record at offset " + std::to_string(offset) +
                        ": " + reason);
    case DecodeOutcome::kCorrupt:
      break;
  }
  return Corruption("corrupt record at offset " + std::to_string(offset) +
                    ": " + reason);
}

DecodedRecord DecodeRecord(std::span<const std::byte> bytes,
                           std::uint64_t offset) {
  NUMAGRID_DCHECK(!bytes.empty());
  const std::uint64_t avail = bytes.size();
  if (avail < kOffCrc + 4) {
    return Problem(DecodeOutcome::kTorn, offset, 0,
                   "only " + std::to_string(avail) +
                       " bytes where a record header starts");
  }
  const std::byte* p = bytes.data();
  const auto length = Load<std::uint32_t>(p + kOffLength);
  if (length == 0) {
    // A writer never stores 0: these bytes were never written (a file the
    // crash extended with zeros, or space reserved but not filled).
    return Problem(DecodeOutcome::kTorn, offset, 0,
                   "zero length (never written)");
  }
  if (length < kRecordHeaderBytes || length % kRecordAlignBytes != 0 ||
      length > kMaxRecordBytes) {
    return Problem(DecodeOutcome::kCorrupt, offset, 0,
                   "impossible length " + std::to_string(length));
  }
  if (avail >= kRecordHeaderBytes) {
    // The lengths sit under the CRC, which cannot be checked before all the
    // bytes are there; a disagreement with `length` is corruption already.
    const auto key_len = Load<std::uint16_t>(p + kOffKeyLen);
    const auto value_len = Load<std::uint32_t>(p + kOffValueLen);
    if (value_len > kMaxJournalValueBytes ||
        EncodedRecordBytes(key_len, value_len) != length) {
      return Problem(DecodeOutcome::kCorrupt, offset, 0,
                     "length " + std::to_string(length) +
                         " does not match key length " +
                         std::to_string(key_len) + " and value length " +
                         std::to_string(value_len));
    }
  }
  if (avail < length) {
    return Problem(DecodeOutcome::kTorn, offset, length,
                   "record of " + std::to_string(length) + " bytes but only " +
                       std::to_string(avail) + " are there");
  }
  const auto stored_crc = Load<std::uint32_t>(p + kOffCrc);
  const std::uint32_t crc = base::Crc32c(p + kCrcFrom, length - kCrcFrom);
  if (crc != stored_crc) {
    return Problem(
        DecodeOutcome::kCorrupt, offset, 0,
        "CRC32C " + Hex32(crc) + " but the record says " + Hex32(stored_crc));
  }
  // The CRC matched, so what follows is what a writer wrote; a bad field here
  // is a writer of another format or a bug, not bit rot.
  const auto op = Load<std::uint8_t>(p + kOffOp);
  const auto flags = Load<std::uint8_t>(p + kOffFlags);
  const auto key_len = Load<std::uint16_t>(p + kOffKeyLen);
  const auto value_len = Load<std::uint32_t>(p + kOffValueLen);
  if (!KnownOp(op)) {
    return Problem(DecodeOutcome::kCorrupt, offset, 0,
                   "unknown op " + std::to_string(op));
  }
  if ((flags & ~kKnownRecordFlags) != 0) {
    return Problem(DecodeOutcome::kCorrupt, offset, 0,
                   "unknown flags " + std::to_string(flags));
  }
  if (Load<std::uint32_t>(p + kOffReserved) != 0) {
    return Problem(DecodeOutcome::kCorrupt, offset, 0,
                   "reserved field is not zero");
  }
  if (op != static_cast<std::uint8_t>(RecordOp::kPut) && value_len != 0) {
    return Problem(DecodeOutcome::kCorrupt, offset, 0,
                   "a removal carries a value");
  }
  for (std::uint64_t i = kRecordHeaderBytes + key_len + value_len; i < length;
       ++i) {
    if (p[i] != std::byte{0}) {
      return Problem(DecodeOutcome::kCorrupt, offset, 0, "padding is not zero");
    }
  }
  DecodedRecord d;
  d.outcome = DecodeOutcome::kOk;
  d.offset = offset;
  d.size_bytes = length;
  RecordView& r = d.record;
  r.sequence = Load<std::uint64_t>(p + kOffSequence);
  r.partition_id = Load<std::uint32_t>(p + kOffPartition);
  r.op = static_cast<RecordOp>(op);
  r.flags = flags;
  r.change_seq = Load<std::uint64_t>(p + kOffChangeSeq);
  r.version = Load<std::uint64_t>(p + kOffVersion);
  r.expiry_ms = Load<std::uint64_t>(p + kOffExpiry);
  const auto* body = reinterpret_cast<const char*>(p + kRecordHeaderBytes);
  r.key = std::string_view(body, key_len);
  r.value = std::string_view(body + key_len, value_len);
  return d;
}

std::array<std::byte, kSegmentHeaderBytes> EncodeSegmentHeader(
    const SegmentHeader& header) {
  std::array<std::byte, kSegmentHeaderBytes>
      out{};  // reserved fields stay zero
  std::byte* p = out.data();
  Store<std::uint64_t>(p + kSegOffMagic, kSegmentMagic);
  Store<std::uint32_t>(p + kSegOffVersion, kJournalFormatVersion);
  Store<std::uint32_t>(p + kSegOffHeaderBytes, kSegmentHeaderBytes);
  Store<std::uint64_t>(p + kSegOffGrid, header.grid_id);
  Store<std::uint32_t>(p + kSegOffNode, header.node_id);
  Store<std::uint64_t>(p + kSegOffFirstSeq, header.first_seq);
  Store<std::uint64_t>(p + kSegOffCreated, header.created_unix_ns);
  Store<std::uint32_t>(p + kSegOffCrc, base::Crc32c(p, kSegOffCrc));
  return out;
}

DecodedSegmentHeader DecodeSegmentHeader(std::span<const std::byte> bytes) {
  DecodedSegmentHeader d;
  bool all_zero = true;
  for (std::size_t i = 0; i < bytes.size() && i < kSegmentHeaderBytes; ++i) {
    if (bytes[i] != std::byte{0}) {
      all_zero = false;
      break;
    }
  }
  if (bytes.size() < kSegmentHeaderBytes || all_zero) {
    d.outcome = DecodeOutcome::kTorn;
    d.error = Corruption(
        all_zero && bytes.size() >= kSegmentHeaderBytes
            ? std::string("segment header is all zero (never written)")
            : "segment header cut short: " + std::to_string(bytes.size()) +
                  " of " + std::to_string(kSegmentHeaderBytes) + " bytes");
    return d;
  }
  const std::byte* p = bytes.data();
  if (Load<std::uint64_t>(p + kSegOffMagic) != kSegmentMagic) {
    d.error = Corruption("not a numagrid journal segment (bad magic)");
    return d;
  }
  // The version sits at a fixed offset in every format version, so it is
  // read before the CRC, whose place a later version may move.
  const auto version = Load<std::uint32_t>(p + kSegOffVersion);
  if (version != kJournalFormatVersion) {
    d.error = VersionMismatch(
        "journal segment of format version " + std::to_string(version) +
        "; this build reads version " + std::to_string(kJournalFormatVersion));
    return d;
  }
  const auto stored_crc = Load<std::uint32_t>(p + kSegOffCrc);
  const std::uint32_t crc = base::Crc32c(p, kSegOffCrc);
  if (crc != stored_crc) {
    d.error = Corruption("segment header CRC32C " + Hex32(crc) +
                         " but the header says " + Hex32(stored_crc));
    return d;
  }
  const auto header_bytes = Load<std::uint32_t>(p + kSegOffHeaderBytes);
  if (header_bytes != kSegmentHeaderBytes) {
    d.error = Corruption("segment header size " + std::to_string(header_bytes) +
                         ", expected " + std::to_string(kSegmentHeaderBytes));
    return d;
  }
  for (std::size_t i = 0; i < kSegmentHeaderBytes; ++i) {
    const bool reserved = (i >= 28 && i < 32) || (i >= 48 && i < 60);
    if (reserved && p[i] != std::byte{0}) {
      d.error = Corruption("segment header: reserved byte " +
                           std::to_string(i) + " is not zero");
      return d;
    }
  }
  d.outcome = DecodeOutcome::kOk;
  d.header.grid_id = Load<std::uint64_t>(p + kSegOffGrid);
  d.header.node_id = Load<std::uint32_t>(p + kSegOffNode);
  d.header.first_seq = Load<std::uint64_t>(p + kSegOffFirstSeq);
  d.header.created_unix_ns = Load<std::uint64_t>(p + kSegOffCreated);
  return d;
}

std::string SegmentFileName(std::uint32_t node_id, std::uint64_t first_seq) {
  return detail::NodeFileName("journal", node_id, first_seq, ".log");
}

std::optional<std::uint64_t> ParseSegmentFileName(std::string_view file_name,
                                                  std::uint32_t node_id) {
  return detail::ParseNodeFileName(file_name, "journal", node_id, ".log");
}

}  // namespace numagrid::io
