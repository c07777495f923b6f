#include "io/journal_reader.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/crc32c.h"
#include "io/journal_writer.h"
#include "tests/io/fault_journal_device.h"
#include "tests/io/journal_test_util.h"

namespace numagrid::io {
namespace {

using testing::FaultJournalDevice;
using testing::OwnedRecord;
using testing::PutOf;
using testing::ReadJournal;
using testing::TempDir;

// Writes `records` to node `node`'s journal in `dir` through a plain-file
// device, one flush per `per_flush` records, and returns the records.
std::vector<OwnedRecord> WriteJournal(const std::string& dir,
                                      const std::vector<OwnedRecord>& records,
                                      std::uint64_t segment_bytes = 64ULL << 20,
                                      std::uint32_t node = 0,
                                      std::uint64_t first_seq = 1) {
  FaultJournalDevice dev;
  JournalWriterOptions o;
  o.dir = dir;
  o.node_id = node;
  o.grid_id = 5;
  o.first_seq = first_seq;
  o.segment_bytes = segment_bytes;
  auto w = JournalWriter::Open(o, &dev);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (const OwnedRecord& r : records) EXPECT_TRUE((*w)->Append(r.view()).ok());
  EXPECT_TRUE((*w)->Close().ok());
  return records;
}

std::vector<OwnedRecord> Records(std::size_t n, std::size_t value_bytes = 50) {
  std::vector<OwnedRecord> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(PutOf(i + 1, value_bytes + (i * 7) % 23));
  }
  return out;
}

std::vector<OwnedRecord> Prefix(const std::vector<OwnedRecord>& v,
                                std::size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::uint64_t SizeOf(const OwnedRecord& r) {
  return EncodedRecordBytes(r.key.size(), r.value.size());
}

TEST(JournalReader, AMissingDirectoryIsNotFoundAndAnEmptyOneHasNoRecords) {
  JournalReaderOptions o;
  o.dir = "/nonexistent-numagrid-journal";
  EXPECT_EQ(JournalReader::Open(o).status().code(), StatusCode::kNotFound);
  TempDir dir;
  const auto got = ReadJournal(dir.path());
  EXPECT_TRUE(got.status.ok());
  EXPECT_TRUE(got.records.empty());
  EXPECT_EQ(got.tail.kind, TailKind::kNone);
  EXPECT_EQ(got.last_good_seq, 0u);
}

TEST(JournalReader, ReadsSegmentsInSequenceOrderAndOnlyItsNode) {
  TempDir dir;
  // Segments of ~1 KiB: sequence order must not depend on directory order.
  const auto want = WriteJournal(dir.path(), Records(200), 4096);
  WriteJournal(dir.path(), Records(30), 4096, /*node=*/1);
  WriteJournal(dir.path(), Records(30), 4096, /*node=*/10);
  EXPECT_GT(testing::SegmentPaths(dir.path()).size(), 5u);
  const auto got = ReadJournal(dir.path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records, want);
  for (std::size_t i = 0; i < got.seqs.size(); ++i) {
    EXPECT_EQ(got.seqs[i], i + 1);
  }
  EXPECT_EQ(ReadJournal(dir.path(), 1).records.size(), 30u);
}

// The journal cut at every byte of its last record (as a crash mid-append
// leaves it): every earlier record comes back, and the tail is reported at
// the last record's offset with exactly the bytes that were there.
TEST(JournalReader, TornTailAtEveryByteOfTheLastRecord) {
  TempDir dir;
  std::vector<OwnedRecord> records = Records(12);
  records.push_back(PutOf(13, 301));
  WriteJournal(dir.path(), records);
  const std::string path = testing::SegmentPaths(dir.path()).at(0);
  const std::string original = testing::ReadFileBytes(path);
  const std::uint64_t last_start = original.size() - SizeOf(records.back());
  for (std::uint64_t len = last_start; len < original.size(); ++len) {
    SCOPED_TRACE("file cut to " + std::to_string(len) + " bytes");
    testing::WriteFileBytes(path, original.substr(0, len));
    auto got = ReadJournal(dir.path());
    ASSERT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_EQ(got.records, Prefix(records, 12));
    EXPECT_EQ(got.last_good_seq, 12u);
    if (len == last_start) {
      EXPECT_EQ(got.tail.kind, TailKind::kNone);
      continue;
    }
    EXPECT_EQ(got.tail.kind, TailKind::kTornRecord) << got.tail.ToString();
    EXPECT_EQ(got.tail.file, path);
    EXPECT_EQ(got.tail.offset, last_start);
    EXPECT_EQ(got.tail.dropped_bytes, len - last_start);
    EXPECT_EQ(got.tail.last_good_seq, 12u);
    EXPECT_FALSE(got.tail.removes_file);

    // The same cut, but the file system extended the file with zeros.
    testing::WriteFileBytes(path,
                            original.substr(0, len) + std::string(4096, '\0'));
    got = ReadJournal(dir.path());
    ASSERT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_EQ(got.records, Prefix(records, 12));
    EXPECT_NE(got.tail.kind, TailKind::kNone);
    EXPECT_EQ(got.tail.offset, last_start);
  }
}

TEST(JournalReader, TruncateTornTailCutsAtTheLastGoodRecord) {
  TempDir dir;
  const auto records = WriteJournal(dir.path(), Records(20));
  const std::string path = testing::SegmentPaths(dir.path()).at(0);
  const std::string original = testing::ReadFileBytes(path);
  const std::uint64_t last_start = original.size() - SizeOf(records.back());
  testing::WriteFileBytes(path, original.substr(0, last_start + 30));

  JournalReaderOptions o;
  o.dir = dir.path();
  auto reader = JournalReader::Open(o);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->TruncateTornTail().code(),
            StatusCode::kInvalidArgument);  // not read yet
  for (;;) {
    auto r = (*reader)->Next();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!r->has_value()) break;
  }
  EXPECT_EQ((*reader)->tail().kind, TailKind::kTornRecord);
  ASSERT_TRUE((*reader)->TruncateTornTail().ok());
  ASSERT_TRUE(
      (*reader)->TruncateTornTail().ok());  // a second call does nothing
  EXPECT_EQ(testing::ReadFileBytes(path), original.substr(0, last_start));
  const auto after = ReadJournal(dir.path());
  EXPECT_TRUE(after.status.ok());
  EXPECT_EQ(after.tail.kind, TailKind::kNone);
  EXPECT_EQ(after.records, Prefix(records, 19));
}

// A last segment whose header never fully reached the disk (a crash right
// after a rollover): it is dropped whole, and truncation removes it.
TEST(JournalReader, ATornHeaderDropsTheLastSegment) {
  TempDir dir;
  const auto records = WriteJournal(dir.path(), Records(150), 4096);
  const auto paths = testing::SegmentPaths(dir.path());
  ASSERT_GT(paths.size(), 2u);
  const std::string& last = paths.back();
  const std::string original = testing::ReadFileBytes(last);
  auto first_seq = ParseSegmentFileName(last.substr(last.rfind('/') + 1), 0);
  ASSERT_TRUE(first_seq);
  for (std::uint64_t len = 0; len <= kSegmentHeaderBytes; ++len) {
    SCOPED_TRACE("last segment cut to " + std::to_string(len) + " bytes");
    std::string bytes = original.substr(0, len);
    if (len == kSegmentHeaderBytes) {
      bytes.assign(kSegmentHeaderBytes, '\0');  // all zero
    }
    testing::WriteFileBytes(last, bytes);
    const auto got = ReadJournal(dir.path());
    ASSERT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_EQ(got.records, Prefix(records, *first_seq - 1));
    EXPECT_EQ(got.tail.kind, TailKind::kTornHeader);
    EXPECT_EQ(got.tail.offset, 0u);
    EXPECT_TRUE(got.tail.removes_file);
  }
  JournalReaderOptions o;
  o.dir = dir.path();
  auto reader = JournalReader::Open(o);
  ASSERT_TRUE(reader.ok());
  for (;;) {
    auto r = (*reader)->Next();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!r->has_value()) break;
  }
  ASSERT_TRUE((*reader)->TruncateTornTail().ok());
  EXPECT_EQ(access(last.c_str(), F_OK), -1);
  EXPECT_EQ(ReadJournal(dir.path()).tail.kind, TailKind::kNone);
}

// A flipped bit in a record with intact records after it is corruption in
// the middle of the journal: reported as kCorruption after the records
// before it, never skipped, and never truncated away.
TEST(JournalReader, AFlippedBitInTheMiddleIsCorruption) {
  TempDir dir;
  const auto records = WriteJournal(dir.path(), Records(30));
  const std::string path = testing::SegmentPaths(dir.path()).at(0);
  const std::string original = testing::ReadFileBytes(path);
  std::uint64_t off = kSegmentHeaderBytes;
  for (std::size_t i = 0; i < 15; ++i) off += SizeOf(records[i]);
  // Bits in the length, the CRC, the sequence, the key and the value.
  for (std::uint64_t at :
       {off + 1, off + 5, off + 9, off + 57, off + SizeOf(records[15]) - 9}) {
    SCOPED_TRACE("flipped byte " + std::to_string(at));
    std::string bytes = original;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x04);
    testing::WriteFileBytes(path, bytes);
    JournalReaderOptions o;
    o.dir = dir.path();
    auto reader = JournalReader::Open(o);
    ASSERT_TRUE(reader.ok());
    std::vector<OwnedRecord> got;
    Status s;
    for (;;) {
      auto r = (*reader)->Next();
      if (!r.ok()) {
        s = r.status();
        break;
      }
      ASSERT_TRUE(r->has_value())
          << "reached the end: " << (*reader)->tail().ToString();
      got.push_back(OwnedRecord::From(**r));
    }
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("offset " + std::to_string(off)),
              std::string::npos)
        << s.message();
    EXPECT_EQ(got, Prefix(records, 15));
    EXPECT_EQ((*reader)->Next().status().code(),
              StatusCode::kCorruption);  // sticky
    EXPECT_EQ((*reader)->TruncateTornTail().code(), StatusCode::kCorruption);
    EXPECT_EQ(testing::ReadFileBytes(path), bytes);
  }
}

// The same flip in the last record has nothing intact after it: a damaged
// tail, dropped and reported as a corrupt record.
TEST(JournalReader, AFlippedBitInTheLastRecordIsADroppedTail) {
  TempDir dir;
  const auto records = WriteJournal(dir.path(), Records(10));
  const std::string path = testing::SegmentPaths(dir.path()).at(0);
  std::string bytes = testing::ReadFileBytes(path);
  const std::uint64_t last_start = bytes.size() - SizeOf(records.back());
  bytes[last_start + 60] = static_cast<char>(bytes[last_start + 60] ^ 1);
  testing::WriteFileBytes(path, bytes);
  const auto got = ReadJournal(dir.path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records, Prefix(records, 9));
  EXPECT_EQ(got.tail.kind, TailKind::kCorruptRecord);
  EXPECT_EQ(got.tail.offset, last_start);
  EXPECT_NE(got.tail.reason.find("CRC32C"), std::string::npos)
      << got.tail.reason;
  EXPECT_NE(got.tail.ToString().find("last good sequence 9"),
            std::string::npos);
}

TEST(JournalReader, ATornTailInAnEarlierSegmentIsCorruption) {
  TempDir dir;
  WriteJournal(dir.path(), Records(150), 4096);
  const auto paths = testing::SegmentPaths(dir.path());
  ASSERT_GT(paths.size(), 2u);
  const std::string first = testing::ReadFileBytes(paths[0]);
  testing::WriteFileBytes(paths[0], first.substr(0, first.size() - 3));
  const auto got = ReadJournal(dir.path());
  EXPECT_EQ(got.status.code(), StatusCode::kCorruption);
  EXPECT_NE(got.status.message().find("not a torn tail"), std::string::npos)
      << got.status.message();
}

TEST(JournalReader, AMissingSegmentIsCorruption) {
  TempDir dir;
  WriteJournal(dir.path(), Records(150), 4096);
  const auto paths = testing::SegmentPaths(dir.path());
  ASSERT_GT(paths.size(), 2u);
  ASSERT_EQ(unlink(paths[1].c_str()), 0);
  const auto got = ReadJournal(dir.path());
  EXPECT_EQ(got.status.code(), StatusCode::kCorruption);
  EXPECT_NE(got.status.message().find("missing"), std::string::npos)
      << got.status.message();
}

TEST(JournalReader, AJournalMayStartAfterSequenceOne) {
  // Segments before a snapshot get deleted; the rest still reads.
  TempDir dir;
  const auto want =
      WriteJournal(dir.path(), Records(5), 64ULL << 20, 0, /*first_seq=*/1000);
  const auto got = ReadJournal(dir.path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records, want);
  EXPECT_EQ(got.seqs.front(), 1000u);
  EXPECT_EQ(got.last_good_seq, 1004u);
}

TEST(JournalReader, ASegmentOfAnotherFormatVersionIsRefused) {
  TempDir dir;
  WriteJournal(dir.path(), Records(3));
  const std::string path = testing::SegmentPaths(dir.path()).at(0);
  std::string bytes = testing::ReadFileBytes(path);
  bytes[8] = 2;  // format version, then a valid header CRC for it
  const std::uint32_t crc = base::Crc32c(bytes.data(), 60);
  for (int i = 0; i < 4; ++i) bytes[60 + i] = static_cast<char>(crc >> (8 * i));
  testing::WriteFileBytes(path, bytes);
  const auto got = ReadJournal(dir.path());
  EXPECT_EQ(got.status.code(), StatusCode::kVersionMismatch)
      << got.status.ToString();
  EXPECT_NE(got.status.message().find(path), std::string::npos);
}

TEST(JournalReader, HeadersMustMatchTheirNamesAndOneGrid) {
  TempDir dir;
  WriteJournal(dir.path(), Records(3));
  const std::string path = testing::SegmentPaths(dir.path()).at(0);
  // Renamed to claim other sequences.
  const std::string renamed = dir.path() + "/" + SegmentFileName(0, 2);
  ASSERT_EQ(rename(path.c_str(), renamed.c_str()), 0);
  EXPECT_EQ(ReadJournal(dir.path()).status.code(), StatusCode::kCorruption);
  ASSERT_EQ(rename(renamed.c_str(), path.c_str()), 0);
  // The wrong grid.
  JournalReaderOptions o;
  o.dir = dir.path();
  o.grid_id = 6;
  auto reader = JournalReader::Open(o);
  ASSERT_TRUE(reader.ok());
  auto r = (*reader)->Next();
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("grid"), std::string::npos);
  o.grid_id = 5;
  reader = JournalReader::Open(o);
  ASSERT_TRUE((*reader)->Next().ok());
  EXPECT_EQ((*reader)->grid_id(), 5u);
}

}  // namespace
}  // namespace numagrid::io
