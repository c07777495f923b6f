// JournalReader: reads one node's journal back, for recovery: the records of
// the segment files `journal-<node>-*.log` in a directory, in sequence
// order, checking each one (CRC, lengths, sequence +1 per record, headers
// that match their names and each other, no missing segment).
//
// How it ends (docs/journal-format.md, "Recovery"):
//   - the end of the last segment: a clean end;
//   - a torn or corrupt record (or segment header) in the last segment with
//     no intact record after it: the tail a crash during an append leaves.
//     The reader stops, and tail() says exactly what it dropped: the file,
//     the offset, the byte count, why, and the last good sequence.
//     TruncateTornTail() then cuts the file there;
//   - damage anywhere else (an intact record follows it, or it is not in the
//     last segment), a missing segment or a sequence gap: kCorruption, which
//     Next() keeps returning. Nothing is skipped silently.
//
// Thread safety: thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/journal_record.h"
#include "numagrid/status.h"

namespace numagrid::io {

struct JournalReaderOptions {
  std::string dir;
  std::uint32_t node_id = 0;
  // The grid the journal must belong to; 0 accepts the first segment's grid
  // and then requires every other segment to agree.
  std::uint64_t grid_id = 0;
  // Nonzero: skip the segments wholly below this sequence (a snapshot covers
  // them, or only the tail matters); reading starts at the first record of
  // the segment that holds it, and the reader checks the sequence from
  // there. UINT64_MAX reads only the last segment.
  std::uint64_t from_seq = 0;
  // Bytes read per read(2); a longer record is read whole regardless.
  std::uint32_t read_chunk_bytes = 1U << 20;
};

enum class TailKind : std::uint8_t {
  kNone,           // the journal ended cleanly
  kTornRecord,     // the last record is cut short (or its length is zero)
  kCorruptRecord,  // the last record fails its checks, and nothing follows
  kTornHeader,     // the last segment's header is cut short or damaged
};

std::string_view TailKindName(TailKind kind) noexcept;

// What the reader dropped at the end of the journal.
struct DroppedTail {
  TailKind kind = TailKind::kNone;
  std::string file;                 // the segment's path
  std::uint64_t offset = 0;         // first dropped byte: where a cut goes
  std::uint64_t dropped_bytes = 0;  // from `offset` to the end of the file
  std::uint64_t last_good_seq = 0;  // of the last record returned; 0: none
  std::string reason;               // the decoder's account of the damage
  // The cut leaves no record in the file (the header is damaged, or the
  // first record is), so TruncateTornTail() removes the file instead.
  bool removes_file = false;

  // "torn record in <file> at offset N (M bytes dropped, last good sequence
  // S): <reason>", or "none".
  std::string ToString() const;
};

struct SegmentFile {
  std::string path;
  std::uint64_t first_seq = 0;  // as named
  std::uint64_t size_bytes = 0;
};

class JournalReader {
 public:
  // Lists the node's segments in `dir` (kNotFound if it does not exist); an
  // empty list is a journal with no records. Reads nothing yet.
  static Result<std::unique_ptr<JournalReader>> Open(
      const JournalReaderOptions& options);

  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;
  ~JournalReader();

  // The next record, or std::nullopt at the end of the journal (see tail()).
  // The record's key and value point into the reader's buffer and stay valid
  // until the next call to Next() or the reader's destruction. kCorruption,
  // kVersionMismatch or kIoError end the reading; later calls return the
  // same error.
  Result<std::optional<RecordView>> Next();

  // After Next() returned std::nullopt: what was dropped (kind kNone if
  // nothing).
  const DroppedTail& tail() const noexcept { return tail_; }

  // Sequence of the last record Next() returned; 0 before any. A new writer
  // continues at last_good_seq() + 1 once the tail is truncated.
  std::uint64_t last_good_seq() const noexcept { return last_good_seq_; }

  // The grid id the segment headers carry (0 until a header was read).
  std::uint64_t grid_id() const noexcept { return grid_id_; }

  const std::vector<SegmentFile>& segments() const noexcept {
    return segments_;
  }

  // Cuts the dropped tail off for good, so that a new writer's segment is not
  // preceded by a torn one: truncates the file at tail().offset (or removes
  // it, see DroppedTail::removes_file) and syncs the file and the directory.
  // OK with nothing to cut (and on a second call). kInvalidArgument before
  // Next() reached the end; the reading error if it ended in one: damage that
  // is not a tail is never cut automatically.
  Status TruncateTornTail();

 private:
  explicit JournalReader(JournalReaderOptions options);

  Status OpenSegment(std::size_t index);
  void CloseSegment();
  // Makes [off, off + n) of the open segment (clipped to its size) readable
  // and returns it; the view is valid until the next call.
  Result<std::span<const std::byte>> Bytes(std::uint64_t off, std::uint64_t n);
  // Decodes the record at `off` with every byte of it that the file has.
  Result<DecodedRecord> DecodeAt(std::uint64_t off);
  // Offset of an intact record at or after `from` (8-byte steps) in the open
  // segment, or nullopt: tells a damaged tail from damage in the middle.
  Result<std::optional<std::uint64_t>> FindIntactRecord(std::uint64_t from);
  // The open segment ends in damage at `off`: drop it as the tail, or fail.
  Status DamageAt(std::uint64_t off, TailKind kind, const std::string& reason);
  Status Fail(Status s);

  const JournalReaderOptions options_;
  std::vector<SegmentFile> segments_;
  std::size_t next_segment_ = 0;  // index of the next segment to open

  // The open segment.
  int fd_ = -1;
  std::size_t seg_index_ = 0;
  std::uint64_t pos_ = 0;  // offset of the next record
  std::vector<std::byte> buf_;
  std::uint64_t buf_off_ = 0;  // file offset of buf_[0]
  std::size_t buf_len_ = 0;    // valid bytes in buf_

  std::uint64_t grid_id_ = 0;
  std::uint64_t expected_seq_ = 0;  // of the next record; 0 before any header
  std::uint64_t last_good_seq_ = 0;
  DroppedTail tail_;
  bool done_ = false;
  bool truncated_ = false;
  Status error_;
};

}  // namespace numagrid::io
