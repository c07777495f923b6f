// JournalWriter: appends one node's journal records to segment files
// `<dir>/journal-<node>-<first_seq:020>.log` with group commit. The caller
// (a worker draining its partitions' change rings) calls Append() for many
// records, then Flush(), which writes everything appended so far and
// fdatasyncs it, one fdatasync per file touched, and returns once it is all
// durable. Format: docs/journal-format.md.
//
// Durability contract (DESIGN invariant 3): when Flush() returns OK, every
// record appended before it survives a crash of this process or of the host.
// durable_seq() is the highest sequence with that guarantee; a record above
// it may or may not survive.
//
// Failure is fail-stop: after any write, sync or create error the writer
// reports that error once and kPanic from then on, because after a failed
// fdatasync the kernel may have dropped the dirty pages and a retry would
// claim durability that is not there. Recovery (JournalReader, then a new
// writer at last_good_seq() + 1) is the way forward.
//
// The writer never appends to an existing file: each writer starts a new
// segment at its first Flush, so a torn tail left by an earlier run stays the
// tail of its own file, where the reader expects it.
//
// Thread safety: thread-compatible (one thread, usually the worker's journal
// task, owns a writer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/journal_device.h"
#include "io/journal_record.h"
#include "numagrid/status.h"

namespace numagrid::io {

struct JournalWriterOptions {
  std::string dir;  // must exist
  std::uint32_t node_id = 0;
  std::uint64_t grid_id = 0;  // stored in every segment header
  // Sequence of the first record this writer appends; after recovery,
  // JournalReader::last_good_seq() + 1. Sequence 0 is never used.
  std::uint64_t first_seq = 1;
  // A new segment starts when appending a record would grow the current one
  // past this many bytes; a record larger than that gets a segment to itself.
  std::uint64_t segment_bytes = 64ULL << 20;
  std::uint32_t file_mode = 0600;  // permission bits of new segments
  int group_id = -1;               // group of new segments; -1: the creator's
};

struct JournalWriterStats {
  std::uint64_t next_seq = 0;          // the sequence the next Append gets
  std::uint64_t durable_seq = 0;       // every record <= this is durable
  std::uint64_t appended_records = 0;  // since Open, durable or not
  std::uint64_t appended_bytes = 0;    // file bytes, segment headers included
  std::uint64_t durable_records = 0;
  std::uint64_t durable_bytes = 0;
  std::uint64_t flushes = 0;  // Flush() calls that wrote something
  std::uint64_t syncs = 0;    // fdatasyncs issued
  std::uint64_t segments_created = 0;
  std::string segment_path;  // the file written last; "" before any
};

class JournalWriter {
 public:
  // A writer over `device`, which must outlive it. Checks the options
  // (kInvalidArgument), that `dir` is a directory (kNotFound), and that no
  // segment of this node in `dir` is named for a sequence >= first_seq
  // (kInvalidArgument: recover first). Creates no file yet.
  static Result<std::unique_ptr<JournalWriter>> Open(
      const JournalWriterOptions& options, JournalDevice* device);
  // The same over its own io_uring device (OpenUringJournalDevice()); fails
  // with that function's kIoError when io_uring is unavailable.
  static Result<std::unique_ptr<JournalWriter>> Open(
      const JournalWriterOptions& options);

  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;
  // Closes the current file. Records appended since the last Flush are lost.
  ~JournalWriter();

  // Adds `record` to the batch the next Flush writes, with the next sequence
  // (`record.sequence` is ignored), and returns that sequence. Copies the
  // key and value. kInvalidArgument (nothing appended) for a record
  // CheckRecord refuses; kPanic after an I/O error; kInvalidArgument after
  // Close.
  Result<std::uint64_t> Append(const RecordView& record);

  // Writes every appended record and makes it durable; OK with nothing to do.
  // On an error (kIoError, or the errno's code for a failed create: e.g.
  // kAlreadyExists, kPermissionDenied) the records of files already synced in
  // this call stay durable (see durable_seq()), the rest are not, and the
  // writer is stopped.
  Status Flush();

  // Flush(), then closes the file. Later calls fail with kInvalidArgument.
  Status Close();

  std::uint64_t next_seq() const noexcept { return next_seq_; }
  std::uint64_t durable_seq() const noexcept { return durable_seq_; }
  JournalWriterStats stats() const;

 private:
  // A run of pending bytes bound for one file.
  struct Piece {
    std::size_t begin = 0;  // in pending_
    std::size_t end = 0;
    bool new_file = false;  // starts with a segment header: create the file
    std::uint64_t first_seq = 0;  // of the piece's first record
    std::uint64_t last_seq = 0;
    std::uint64_t records = 0;
  };

  JournalWriter(const JournalWriterOptions& options, JournalDevice* device,
                std::unique_ptr<JournalDevice> owned_device);

  Status FlushPiece(const Piece& piece);
  // Records `s` as the reason the writer stopped and returns it.
  Status Stop(Status s);

  // Constant after construction.
  const JournalWriterOptions options_;
  std::unique_ptr<JournalDevice> owned_device_;  // set when the writer made it
  JournalDevice* const device_;

  std::vector<std::byte> pending_;  // encoded, not yet written
  std::vector<Piece> pieces_;
  // The file the next record goes to, as it will be once pending_ is written.
  bool planned_file_ = false;
  std::uint64_t planned_bytes_ = 0;
  std::uint64_t planned_records_ = 0;

  int file_ = -1;  // device handle of the open segment, or -1
  std::string file_path_;
  std::uint64_t file_bytes_ = 0;  // written and synced

  std::uint64_t next_seq_;
  std::uint64_t durable_seq_;
  JournalWriterStats stats_;
  Status stopped_;  // not OK once an I/O error stopped the writer
  bool closed_ = false;
};

}  // namespace numagrid::io
