// Snapshot files: for one NUMA node of a grid, every live entry of each of
// the node's partitions at one point, so that recovery is "load the newest
// valid snapshot, then replay the journal after it". A snapshot is written
// to `<name>.tmp`, synced and renamed, so a file with a snapshot name is
// complete; the reader still verifies all of it (every frame's CRC, the
// counts, the entry ordinals and a CRC over the whole file) before it hands
// out the first entry, so that recovery can fall back to an older snapshot
// before it has applied anything. Format: docs/snapshot-format.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/journal_record.h"
#include "numagrid/status.h"

namespace numagrid::io {

// "NGSNAPSH" and "NGSNPART" and "NGSNAPEN" read as little-endian u64s. Never
// change; the version does.
inline constexpr std::uint64_t kSnapshotMagic = 0x485350414E53474EULL;
inline constexpr std::uint64_t kSnapshotSectionMagic = 0x545241504E53474EULL;
inline constexpr std::uint64_t kSnapshotFooterMagic = 0x4E4550414E53474EULL;
inline constexpr std::uint32_t kSnapshotFormatVersion = 1;
inline constexpr std::uint32_t kSnapshotHeaderBytes = 64;
inline constexpr std::uint32_t kSnapshotSectionHeaderBytes = 48;
inline constexpr std::uint32_t kSnapshotFooterBytes = 40;

// "snapshot-<node>-<journal_seq, 20 digits>.snap": zero-padded, so that
// names sort in journal order. The snapshot covers every journal record of
// the node with a sequence <= journal_seq.
std::string SnapshotFileName(std::uint32_t node_id, std::uint64_t journal_seq);

// The journal sequence named by `file_name` if it is a snapshot file name of
// `node_id` (not a `.tmp` one), else nullopt.
std::optional<std::uint64_t> ParseSnapshotFileName(std::string_view file_name,
                                                   std::uint32_t node_id);

struct SnapshotFile {
  std::string path;
  std::uint64_t journal_seq = 0;  // as named
  std::uint64_t size_bytes = 0;
};

// The snapshots of `node_id` in `dir`, by journal_seq ascending (the newest
// last). Ignores `.tmp` files, other nodes' snapshots and every other file;
// a file removed while listing is left out. kNotFound if `dir` does not
// exist. Reads no snapshot: a listed file may still turn out damaged.
Result<std::vector<SnapshotFile>> ListSnapshots(const std::string& dir,
                                                std::uint32_t node_id);

// The fixed header of a snapshot file.
struct SnapshotHeader {
  std::uint64_t grid_id = 0;
  std::uint32_t node_id = 0;
  std::uint64_t journal_seq = 0;      // covers journal records <= this
  std::uint64_t created_unix_ns = 0;  // CLOCK_REALTIME at Create; informative
  std::uint32_t partition_count = 0;  // sections in the file
};

struct SnapshotWriterOptions {
  std::string dir;  // the journal directory; must exist
  std::uint64_t grid_id = 0;
  std::uint32_t node_id = 0;
  // Every journal record of the node with a sequence <= this is reflected
  // in the entries; 0: none is (a snapshot taken before any journaling).
  std::uint64_t journal_seq = 0;
  std::uint32_t file_mode = 0600;  // exact permission bits (no umask)
  int group_id = -1;               // group of the file; -1: the creator's
};

// SnapshotWriter: writes one snapshot file. Call BeginPartition, Add for
// each of the partition's entries, EndPartition, for every partition in
// increasing partition id order, then Commit. The file gets its final name
// only in Commit, once it is complete and synced; a writer destroyed before
// that removes its `.tmp` file. One writer per node and journal_seq at a
// time.
//
// After an I/O error the writer is stopped: it returns that error once and
// kPanic from then on, and Commit is impossible. A misuse (Add outside a
// partition, a partition out of order, ...) is kInvalidArgument and changes
// nothing.
//
// Thread safety: thread-compatible.
class SnapshotWriter {
 public:
  // Checks the options (kInvalidArgument; kNotFound if `dir` is not a
  // directory), refuses with kAlreadyExists if the snapshot's final file
  // exists, removes a stale `<final>.tmp` and creates it anew with exactly
  // `file_mode` and `group_id`. Errno failures carry their code (e.g.
  // kPermissionDenied) and name the path.
  static Result<std::unique_ptr<SnapshotWriter>> Create(
      const SnapshotWriterOptions& options);

  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;
  // Without a successful Commit: closes and removes the `.tmp` file.
  ~SnapshotWriter();

  // Starts the section of `partition_id`, which holds every change of the
  // partition with a change sequence < covered_seq. kInvalidArgument if a
  // section is open or `partition_id` is not above the previous section's.
  Status BeginPartition(std::uint32_t partition_id, std::uint64_t covered_seq);

  // Appends one live entry to the open section, copying its key, value,
  // version and expiry_ms. kInvalidArgument (nothing appended) unless a
  // section is open, entry.partition_id is the section's, the op is kPut and
  // CheckRecord accepts it. `sequence` and `change_seq` are ignored: the file
  // stores the entry's ordinal and its version there.
  Status Add(const RecordView& entry);

  // Ends the open section (kInvalidArgument if none is open).
  Status EndPartition();

  // Writes the footer, fdatasyncs the file, renames it to its final name
  // (refusing with kAlreadyExists if that appeared meanwhile) and fsyncs the
  // directory. When it returns OK the snapshot is complete and durable. If
  // only the directory fsync fails, the file keeps its final name (it is
  // complete, but may not survive a host crash). kInvalidArgument while a
  // section is open or after a Commit.
  Status Commit();

  // The final path (where the file is after Commit).
  const std::string& path() const noexcept { return final_path_; }
  std::uint32_t partition_count() const noexcept { return partitions_; }
  std::uint64_t entry_count() const noexcept { return entries_; }
  // Bytes of the file so far (all of it, footer included, after Commit).
  std::uint64_t file_bytes() const noexcept { return file_bytes_; }

 private:
  explicit SnapshotWriter(const SnapshotWriterOptions& options);

  // Appends `n` zero bytes to the file (through the buffer) and returns
  // where they start in the buffer; valid until the next call.
  Result<std::byte*> Reserve(std::size_t n);
  Status FlushBuffer();
  // Overwrites the bytes at file offset `off`, in the buffer or the file.
  Status Patch(std::uint64_t off, std::span<const std::byte> bytes);
  Status Stop(Status s);
  Status CheckUsable() const;

  // Constant after construction.
  const SnapshotWriterOptions options_;
  std::string final_path_;
  std::string tmp_path_;
  std::uint64_t created_unix_ns_ = 0;

  int fd_ = -1;
  std::vector<std::byte> buf_;      // bytes not yet written to the file
  std::uint64_t buf_file_off_ = 0;  // file offset of buf_[0]
  std::uint64_t file_bytes_ = 0;    // written or buffered

  // CRC32C of the bytes after the header up to the end of the last ended
  // section, which are final (see Commit for the header).
  std::uint32_t body_crc_ = 0;
  std::uint64_t body_bytes_ = 0;
  // The open section.
  bool in_partition_ = false;
  bool any_partition_ = false;
  std::uint32_t partition_id_ = 0;  // of the open or last section
  std::uint64_t covered_seq_ = 0;
  std::uint64_t section_off_ = 0;  // file offset of its header
  std::uint64_t section_entries_ = 0;
  std::uint64_t section_entry_bytes_ = 0;
  std::uint32_t section_crc_ = 0;  // of its entries

  std::uint32_t partitions_ = 0;
  std::uint64_t entries_ = 0;
  Status stopped_;         // not OK once an I/O error stopped the writer
  bool owns_tmp_ = false;  // created tmp_path_; the destructor removes it
  bool committed_ = false;
};

// One step of reading a snapshot: the start of a partition's section, or one
// of its entries.
struct SnapshotItem {
  enum class Kind : std::uint8_t { kPartition, kEntry };
  Kind kind = Kind::kPartition;
  // kPartition: the section that starts. kEntry: the section the entry is in.
  std::uint32_t partition_id = 0;
  std::uint64_t covered_seq = 0;  // every change_seq < this is included
  std::uint64_t entry_count = 0;  // entries in the section
  // kEntry only: op kPut, partition_id, version, expiry_ms, key, value;
  // `sequence` is the entry's ordinal in the file (from 1) and change_seq
  // equals version. key and value point into the reader's buffer and stay
  // valid until the next call to Next() or the reader's destruction.
  RecordView entry;
};

// SnapshotReader: verifies a snapshot file, then streams its contents.
//
// Thread safety: thread-compatible.
class SnapshotReader {
 public:
  // Opens `path` and reads all of it once to verify it: the header, every
  // section header and entry (CRCs, lengths, counts, ordinals, partition
  // ids), the footer and the CRC over the whole file. Returns kCorruption
  // naming the file, the offset and the damage (or a header of another
  // grid or node, or a name that disagrees with the header),
  // kVersionMismatch for another format version, or the errno's code when
  // the file cannot be read. `expected_grid_id` 0 accepts any grid.
  static Result<std::unique_ptr<SnapshotReader>> Open(
      const std::string& path, std::uint64_t expected_grid_id,
      std::uint32_t expected_node_id);

  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;
  ~SnapshotReader();

  // The next item, or nullopt after the last entry. Each section's
  // kPartition item comes before its entries, also for an empty section.
  // Reads the file a second time with the same checks; an error (the file
  // changed since Open, or kIoError) ends the reading, and later calls
  // return it again.
  Result<std::optional<SnapshotItem>> Next();

  const SnapshotHeader& header() const noexcept { return header_; }
  std::uint64_t entry_count() const noexcept { return total_entries_; }
  std::uint64_t file_bytes() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

 private:
  enum class State : std::uint8_t { kHeader, kSection, kEntry, kFooter, kDone };

  SnapshotReader(std::string path, std::uint64_t expected_grid_id,
                 std::uint32_t expected_node_id);

  // Starts a pass over the file from its first byte.
  void Rewind();
  // Decodes the next frame; sets *item for a section start or an entry.
  // Every call consumes bytes or ends the pass, so a pass always ends.
  Status Step(std::optional<SnapshotItem>* item);
  Status StepHeader();
  Status StepSection(std::optional<SnapshotItem>* item);
  Status StepEntry(std::optional<SnapshotItem>* item);
  Status StepFooter();
  // [off, off + n) clipped to [0, limit); the view is valid until the next
  // call.
  Result<std::span<const std::byte>> Bytes(std::uint64_t off, std::uint64_t n,
                                           std::uint64_t limit);
  Status Damage(std::uint64_t off, const std::string& reason) const;

  // Constant after construction.
  const std::string path_;
  const std::uint64_t expected_grid_id_;
  const std::uint32_t expected_node_id_;
  int fd_ = -1;
  std::uint64_t size_ = 0;  // of the file, at Open

  SnapshotHeader header_;  // set by the verifying pass
  std::uint64_t total_entries_ = 0;
  bool verified_ = false;  // the verifying pass is done

  // The read buffer.
  std::vector<std::byte> buf_;
  std::uint64_t buf_off_ = 0;
  std::size_t buf_len_ = 0;

  // The pass in progress.
  State state_ = State::kHeader;
  std::uint64_t pos_ = 0;           // offset of the next frame
  std::uint32_t crc_ = 0;           // CRC32C of the bytes [0, pos_)
  std::uint32_t sections_ = 0;      // sections started
  std::uint32_t partition_id_ = 0;  // of the current section
  std::uint64_t covered_seq_ = 0;
  std::uint64_t section_entries_ = 0;
  std::uint64_t entries_left_ = 0;      // in the current section
  std::uint64_t entry_bytes_left_ = 0;  // in the current section
  std::uint64_t next_ordinal_ = 1;
  Status error_;
};

}  // namespace numagrid::io
