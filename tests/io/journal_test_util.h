// Helpers for the journal suites: temporary directories, records that own
// their bytes, reading a whole journal back, and file surgery.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "io/journal_reader.h"
#include "io/journal_record.h"
#include "numagrid/status.h"

namespace numagrid::io::testing {

// NUMAGRID_TEST_SEED if set, else a random seed; printed once so that a
// failing run can be replayed.
std::uint32_t TestSeed();

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// A record that owns its key and value.
struct OwnedRecord {
  std::uint32_t partition_id = 0;
  RecordOp op = RecordOp::kPut;
  std::uint64_t change_seq = 0;
  std::uint64_t version = 0;
  std::uint64_t expiry_ms = 0;
  std::string key;
  std::string value;

  RecordView view() const;
  static OwnedRecord From(const RecordView& v);
  bool operator==(const OwnedRecord&) const = default;
};

// Record `i` of a varied stream: mostly small puts, every 13th with an empty
// value, every 29th a removal/expiry/eviction, every 101st with a key of the
// maximum length, now and then a value of tens of KiB.
OwnedRecord VariedRecord(std::mt19937_64& rng, std::uint64_t i);

// A put of exactly `value_bytes` bytes of value.
OwnedRecord PutOf(std::uint64_t i, std::size_t value_bytes);

// Everything a reader returns for a journal directory.
struct ReadBack {
  std::vector<OwnedRecord> records;
  std::vector<std::uint64_t> seqs;
  Status status;  // the reading error, if it ended in one
  DroppedTail tail;
  std::uint64_t last_good_seq = 0;
};
ReadBack ReadJournal(const std::string& dir, std::uint32_t node_id = 0);

std::string ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, const std::string& bytes);
std::vector<std::string> SegmentPaths(const std::string& dir,
                                      std::uint32_t node_id = 0);

}  // namespace numagrid::io::testing
