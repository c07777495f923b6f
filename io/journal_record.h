// The journal's on-disk framing: the header every segment file starts with,
// the records that follow it, and the segment file names. Every byte here is
// part of the journal format, specified in docs/journal-format.md; a change
// bumps kJournalFormatVersion.
//
// Thread safety: pure functions over caller-owned bytes; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "numagrid/status.h"

namespace numagrid::io {

// "NGJOURNL" read as a little-endian u64. Never changes; the version does.
inline constexpr std::uint64_t kSegmentMagic = 0x4C4E52554F4A474EULL;
inline constexpr std::uint32_t kJournalFormatVersion = 1;
inline constexpr std::uint32_t kSegmentHeaderBytes = 64;
inline constexpr std::uint32_t kRecordHeaderBytes = 56;
// Records start and end on this boundary, so a reader can scan for the next
// record header after a damaged one.
inline constexpr std::uint32_t kRecordAlignBytes = 8;
// The key length field is a u16. Values are capped well above the grid's own
// limit so that a corrupt length cannot make a reader allocate gigabytes.
inline constexpr std::uint32_t kMaxJournalKeyBytes = 65535;
inline constexpr std::uint32_t kMaxJournalValueBytes = 64U << 20;

// What a record does to its key. Zero is not an op, so zeroed bytes never
// decode as a record.
enum class RecordOp : std::uint8_t {
  kPut = 1,     // the key now has `value` (insert, replace, CAS, increment)
  kRemove = 2,  // removed by a client
  kExpire = 3,  // removed because its expiry passed
  kEvict = 4,   // removed by the eviction policy
};

// "put", "remove", "expire", "evict" or "unknown".
std::string_view RecordOpName(RecordOp op) noexcept;

// No flag bits are defined in format version 1; a reader rejects any.
inline constexpr std::uint8_t kKnownRecordFlags = 0;

// One journal record. As an argument to EncodeRecord the views point at the
// caller's bytes; as returned by DecodeRecord they point into the decoded
// buffer and stay valid as long as it does.
struct RecordView {
  std::uint64_t sequence = 0;  // journal sequence: per node, +1 per record
  std::uint32_t partition_id = 0;
  RecordOp op = RecordOp::kPut;
  std::uint8_t flags = 0;
  std::uint64_t change_seq =
      0;                      // the partition's change sequence (order per key)
  std::uint64_t version = 0;  // the entry's version after the change
  std::uint64_t expiry_ms = 0;  // absolute Unix time in ms; 0 = never
  std::string_view key;
  std::string_view value;  // empty unless op == kPut
};

// Bytes a record with these key and value lengths occupies, padding included.
constexpr std::uint64_t EncodedRecordBytes(std::uint64_t key_bytes,
                                           std::uint64_t value_bytes) noexcept {
  const std::uint64_t n = kRecordHeaderBytes + key_bytes + value_bytes;
  return (n + kRecordAlignBytes - 1) & ~std::uint64_t{kRecordAlignBytes - 1};
}

inline constexpr std::uint64_t kMaxRecordBytes =
    EncodedRecordBytes(kMaxJournalKeyBytes, kMaxJournalValueBytes);

// OK, or kInvalidArgument when `record` cannot be encoded: key or value too
// long, an unknown op or flag, or a value on a removal.
Status CheckRecord(const RecordView& record);

// Appends the encoding of `record` to `*out`. kInvalidArgument (and `*out`
// unchanged) when CheckRecord fails.
Status EncodeRecord(const RecordView& record, std::vector<std::byte>* out);

// Encodes `record` into the first EncodedRecordBytes() bytes of `out`.
// REQUIRES: CheckRecord(record).ok(), out.size() >= EncodedRecordBytes(...).
void EncodeRecordTo(const RecordView& record,
                    std::span<std::byte> out) noexcept;

// What DecodeRecord found at an offset.
enum class DecodeOutcome : std::uint8_t {
  kOk,       // a whole, intact record
  kTorn,     // the bytes end inside the record, or its length is zero (never
             // written): what a crash during an append leaves
  kCorrupt,  // bytes that no writer of this format produces: impossible
             // lengths, a CRC mismatch, an unknown op
};

struct DecodedRecord {
  DecodeOutcome outcome = DecodeOutcome::kCorrupt;
  RecordView record;         // kOk only; views into the decoded bytes
  std::uint64_t offset = 0;  // the record's offset, as given to DecodeRecord
  // kOk: bytes the record occupies (padding included). kTorn: bytes its
  // length field promises, or 0 when that field is absent or zero.
  std::uint64_t size_bytes = 0;
  std::string reason;  // kTorn/kCorrupt: what is wrong, for reports

  bool ok() const noexcept { return outcome == DecodeOutcome::kOk; }
  // OK, or kCorruption "torn record at offset N: ..." / "corrupt record at
  // offset N: ...".
  Status status() const;
};

// Decodes the record at the start of `bytes`, which are the bytes from file
// offset `offset` to the end of what is available (the end of the file, for
// a reader that wants torn and corrupt told apart correctly).
// REQUIRES: !bytes.empty().
DecodedRecord DecodeRecord(std::span<const std::byte> bytes,
                           std::uint64_t offset = 0);

// The fixed header of a segment file.
struct SegmentHeader {
  std::uint64_t grid_id = 0;
  std::uint32_t node_id = 0;
  std::uint64_t first_seq = 0;        // sequence of the file's first record
  std::uint64_t created_unix_ns = 0;  // CLOCK_REALTIME when the writer cut it
};

std::array<std::byte, kSegmentHeaderBytes> EncodeSegmentHeader(
    const SegmentHeader& header);

struct DecodedSegmentHeader {
  // kTorn: fewer than kSegmentHeaderBytes bytes, or all of them zero.
  // kCorrupt: anything else wrong; `error` says what and carries
  // kVersionMismatch for a journal of another format version, else
  // kCorruption.
  DecodeOutcome outcome = DecodeOutcome::kCorrupt;
  SegmentHeader header;  // kOk only
  Status error;          // OK for kOk
};

DecodedSegmentHeader DecodeSegmentHeader(std::span<const std::byte> bytes);

// "journal-<node>-<first_seq, 20 digits>.log": zero-padded, so that names
// sort in sequence order.
std::string SegmentFileName(std::uint32_t node_id, std::uint64_t first_seq);

// The first sequence named by `file_name` if it is a segment file name of
// `node_id`, else nullopt.
std::optional<std::uint64_t> ParseSegmentFileName(std::string_view file_name,
                                                  std::uint32_t node_id);

}  // namespace numagrid::io
