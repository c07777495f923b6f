#include "io/journal_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/journal_reader.h"
#include "io/uring_journal_device.h"
#include "io/uring_probe.h"
#include "tests/io/fault_journal_device.h"
#include "tests/io/journal_test_util.h"

namespace numagrid::io {
namespace {

using testing::FaultJournalDevice;
using testing::FaultOp;
using testing::OwnedRecord;
using testing::PutOf;
using testing::ReadJournal;
using testing::TempDir;

JournalWriterOptions Options(const TempDir& dir,
                             std::uint64_t segment_bytes = 64ULL << 20) {
  JournalWriterOptions o;
  o.dir = dir.path();
  o.node_id = 0;
  o.grid_id = 77;
  o.segment_bytes = segment_bytes;
  return o;
}

std::unique_ptr<JournalWriter> MustOpen(const JournalWriterOptions& o,
                                        JournalDevice* dev) {
  auto w = JournalWriter::Open(o, dev);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? std::move(*w) : nullptr;
}

// Appends `records` and returns their sequences.
std::vector<std::uint64_t> AppendAll(JournalWriter& w,
                                     const std::vector<OwnedRecord>& records) {
  std::vector<std::uint64_t> seqs;
  for (const OwnedRecord& r : records) {
    auto seq = w.Append(r.view());
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    if (seq.ok()) seqs.push_back(*seq);
  }
  return seqs;
}

std::vector<OwnedRecord> Batch(std::uint64_t first, std::size_t n,
                               std::size_t value_bytes = 40) {
  std::vector<OwnedRecord> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(PutOf(first + i, value_bytes + i % 9));
  }
  return out;
}

// The devices a writer can run on: io_uring with and without a registered
// file table, and the fault device doing nothing wrong.
enum class DeviceKind { kUring, kUringPlainFds, kPlainFiles };

std::string DeviceName(const ::testing::TestParamInfo<DeviceKind>& info) {
  switch (info.param) {
    case DeviceKind::kUring:
      return "Uring";
    case DeviceKind::kUringPlainFds:
      return "UringPlainFds";
    case DeviceKind::kPlainFiles:
      return "PlainFiles";
  }
  return "Unknown";
}

class JournalWriterOnDevice : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (GetParam() == DeviceKind::kPlainFiles) {
      device_ = std::make_unique<FaultJournalDevice>();
      return;
    }
    const UringSupport s = ProbeUring(dir_.path());
    if (!s.available) GTEST_SKIP() << "io_uring unavailable here: " << s.detail;
    UringDeviceOptions o;
    o.register_files = GetParam() == DeviceKind::kUring;
    o.queue_depth = 4;
    o.max_write_bytes = 16384;  // batches become chains of several writes
    auto d = OpenUringJournalDevice(o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    device_ = std::move(*d);
  }

  TempDir dir_;
  std::unique_ptr<JournalDevice> device_;
};

TEST_P(JournalWriterOnDevice, RoundTripOfVariedRecordsAcrossSegments) {
  std::mt19937_64 rng(testing::TestSeed());
  constexpr std::uint64_t kSegmentBytes = 96ULL * 1024;
  auto w = MustOpen(Options(dir_, kSegmentBytes), device_.get());
  ASSERT_NE(w, nullptr);
  std::vector<OwnedRecord> want;
  std::uint64_t bytes = 0;
  for (std::uint64_t i = 0; i < 1500; ++i) {
    want.push_back(testing::VariedRecord(rng, i));
    auto seq = w->Append(want.back().view());
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    EXPECT_EQ(*seq, i + 1);
    bytes +=
        EncodedRecordBytes(want.back().key.size(), want.back().value.size());
    if (rng() % 40 == 0) {
      ASSERT_TRUE(w->Flush().ok());
    }
  }
  ASSERT_TRUE(w->Close().ok());
  const JournalWriterStats st = w->stats();
  EXPECT_EQ(st.durable_seq, 1500u);
  EXPECT_EQ(st.next_seq, 1501u);
  EXPECT_EQ(st.appended_records, 1500u);
  EXPECT_EQ(st.durable_records, 1500u);
  EXPECT_EQ(st.durable_bytes,
            bytes + st.segments_created * kSegmentHeaderBytes);
  EXPECT_EQ(st.appended_bytes, st.durable_bytes);
  EXPECT_GT(st.segments_created, 3u);

  const auto paths = testing::SegmentPaths(dir_.path());
  EXPECT_EQ(paths.size(), st.segments_created);
  std::uint64_t on_disk = 0;
  for (const std::string& p : paths) {
    struct stat sb {};
    ASSERT_EQ(stat(p.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0600u) << p;
    on_disk += static_cast<std::uint64_t>(sb.st_size);
  }
  EXPECT_EQ(on_disk, st.durable_bytes);

  const testing::ReadBack got = ReadJournal(dir_.path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.tail.kind, TailKind::kNone) << got.tail.ToString();
  ASSERT_EQ(got.records.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got.seqs[i], i + 1);
    ASSERT_TRUE(got.records[i] == want[i]) << "record " << i;
  }
  EXPECT_EQ(got.last_good_seq, 1500u);
}

TEST_P(JournalWriterOnDevice, ARecordLargerThanASegmentGetsOneToItself) {
  auto w = MustOpen(Options(dir_, 4096), device_.get());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Append(PutOf(1, 10).view()).ok());
  ASSERT_TRUE(w->Append(PutOf(2, 20000).view()).ok());
  ASSERT_TRUE(w->Append(PutOf(3, 10).view()).ok());
  ASSERT_TRUE(w->Flush().ok());
  const auto paths = testing::SegmentPaths(dir_.path());
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_NE(paths[1].find(SegmentFileName(0, 2)), std::string::npos);
  EXPECT_NE(paths[2].find(SegmentFileName(0, 3)), std::string::npos);
  const auto got = ReadJournal(dir_.path());
  EXPECT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records.size(), 3u);
  EXPECT_EQ(got.records[1].value.size(), 20000u);
}

INSTANTIATE_TEST_SUITE_P(Devices, JournalWriterOnDevice,
                         ::testing::Values(DeviceKind::kUring,
                                           DeviceKind::kUringPlainFds,
                                           DeviceKind::kPlainFiles),
                         DeviceName);

TEST(JournalWriter, OpensItsOwnIoUringOrSaysWhyNot) {
  TempDir dir;
  const UringSupport s = ProbeUring(dir.path());
  auto w = JournalWriter::Open(Options(dir));
  if (!s.available) {
    EXPECT_EQ(w.status().code(), StatusCode::kIoError);
    GTEST_SKIP() << "io_uring unavailable here: " << s.detail;
  }
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append(PutOf(1, 5).view()).ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(ReadJournal(dir.path()).records.size(), 1u);
}

// Group commit: a Flush costs one fdatasync per file it touches, however
// many records it carries.
TEST(JournalWriter, AFlushIsOneSyncPerFileItTouches) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir, 64ULL * 1024), &dev);
  AppendAll(*w, Batch(1, 500));
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(dev.data_syncs(), 1);
  EXPECT_EQ(dev.writes(), 1);
  EXPECT_EQ(dev.creates(), 1);
  EXPECT_EQ(dev.dir_syncs(), 1);
  // About 30 KiB per batch of 500: the next one (~3 x 30 KiB) spills over
  // into new files, each written and synced once.
  AppendAll(*w, Batch(501, 1500));
  ASSERT_TRUE(w->Flush().ok());
  const JournalWriterStats st = w->stats();
  EXPECT_EQ(dev.creates(), static_cast<int>(st.segments_created));
  EXPECT_GT(st.segments_created, 1u);
  // The first file's remainder plus one piece per new file.
  EXPECT_EQ(dev.data_syncs(), 1 + static_cast<int>(st.segments_created));
  EXPECT_EQ(static_cast<std::uint64_t>(dev.data_syncs()), st.syncs);
  EXPECT_EQ(dev.dir_syncs(), dev.creates());
  EXPECT_EQ(st.flushes, 2u);
  ASSERT_TRUE(w->Flush().ok());  // nothing pending: no I/O at all
  EXPECT_EQ(dev.data_syncs(), 1 + static_cast<int>(st.segments_created));
}

TEST(JournalWriter, CreatesSegmentsWithTheGivenModeAndGroup) {
  TempDir dir;
  FaultJournalDevice dev;
  JournalWriterOptions o = Options(dir);
  o.file_mode = 0640;
  // A group this process may give files to: a supplementary one if there
  // is one, else its own.
  gid_t groups[64];
  const int n = getgroups(64, groups);
  o.group_id = static_cast<int>(n > 0 ? groups[n - 1] : getegid());
  auto w = MustOpen(o, &dev);
  ASSERT_TRUE(w->Append(PutOf(1, 1).view()).ok());
  ASSERT_TRUE(w->Close().ok());
  struct stat sb {};
  ASSERT_EQ(stat(w->stats().segment_path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0640u);
  EXPECT_EQ(static_cast<int>(sb.st_gid), o.group_id);
}

TEST(JournalWriter, BadOptionsAreRefused) {
  TempDir dir;
  FaultJournalDevice dev;
  JournalWriterOptions o = Options(dir);
  o.first_seq = 0;
  EXPECT_EQ(JournalWriter::Open(o, &dev).status().code(),
            StatusCode::kInvalidArgument);
  o = Options(dir, 100);
  EXPECT_EQ(JournalWriter::Open(o, &dev).status().code(),
            StatusCode::kInvalidArgument);
  o = Options(dir);
  o.file_mode = 04600;
  EXPECT_EQ(JournalWriter::Open(o, &dev).status().code(),
            StatusCode::kInvalidArgument);
  o = Options(dir);
  o.dir = dir.path() + "/missing";
  EXPECT_EQ(JournalWriter::Open(o, &dev).status().code(),
            StatusCode::kNotFound);
}

TEST(JournalWriter, RefusesToStartAtOrBelowAnExistingSegment) {
  TempDir dir;
  FaultJournalDevice dev;
  {
    auto w = MustOpen(Options(dir), &dev);
    AppendAll(*w, Batch(1, 10));
    ASSERT_TRUE(w->Close().ok());
  }
  JournalWriterOptions o = Options(dir);
  o.first_seq = 1;  // journal-0-...1.log exists
  auto again = JournalWriter::Open(o, &dev);
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("recover"), std::string::npos);
  o.first_seq = 11;  // after recovery: continues the journal
  auto w = MustOpen(o, &dev);
  AppendAll(*w, Batch(11, 5));
  ASSERT_TRUE(w->Close().ok());
  const auto got = ReadJournal(dir.path());
  EXPECT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records.size(), 15u);
  // Another node's journal in the same directory is no obstacle.
  o.node_id = 1;
  o.first_seq = 1;
  EXPECT_TRUE(JournalWriter::Open(o, &dev).ok());
}

TEST(JournalWriter, ABadRecordIsRefusedAndTakesNoSequence) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir), &dev);
  OwnedRecord r = PutOf(1, 1);
  r.key.assign(kMaxJournalKeyBytes + 1, 'k');
  EXPECT_EQ(w->Append(r.view()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->next_seq(), 1u);
  EXPECT_EQ(w->stats().appended_records, 0u);
  auto seq = w->Append(PutOf(1, 1).view());
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 1u);
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(w->Append(PutOf(2, 1).view()).status().code(),
            StatusCode::kInvalidArgument);
}

// EIO on a write: the flush fails with kIoError naming the file, nothing of
// that batch is reported durable, and the writer stops for good.
TEST(JournalWriter, EioOnWriteIsAnIoErrorAndNothingOfTheBatchIsDurable) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir), &dev);
  AppendAll(*w, Batch(1, 20));
  ASSERT_TRUE(w->Flush().ok());
  AppendAll(*w, Batch(21, 30));
  dev.FailAfter(FaultOp::kWrite, 0, EIO);
  const Status s = w->Flush();
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.ToString();
  EXPECT_NE(s.message().find("journal-0-00000000000000000001.log"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("Input/output error"), std::string::npos)
      << s.message();
  const JournalWriterStats st = w->stats();
  EXPECT_EQ(st.durable_seq, 20u);
  EXPECT_EQ(st.durable_records, 20u);
  EXPECT_EQ(w->Flush().code(), StatusCode::kPanic);
  EXPECT_EQ(w->Append(PutOf(99, 1).view()).status().code(), StatusCode::kPanic);
  EXPECT_EQ(w->durable_seq(), 20u);
  const auto got = ReadJournal(dir.path());
  EXPECT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records, Batch(1, 20));
}

// EIO on fdatasync: the same, and after a power loss only the batches whose
// flush succeeded are there.
TEST(JournalWriter, EioOnSyncIsAnIoErrorAndThePowerLossDropsTheBatch) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir), &dev);
  AppendAll(*w, Batch(1, 20));
  ASSERT_TRUE(w->Flush().ok());
  AppendAll(*w, Batch(21, 30));
  dev.FailAfter(FaultOp::kDataSync, 0, EIO);
  EXPECT_EQ(w->Flush().code(), StatusCode::kIoError);
  EXPECT_EQ(w->durable_seq(), 20u);
  dev.PowerLoss();
  const auto got = ReadJournal(dir.path());
  EXPECT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records, Batch(1, 20));
  EXPECT_EQ(got.tail.kind, TailKind::kNone);
}

TEST(JournalWriter, AFailedCreateIsReportedWithItsCause) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir), &dev);
  AppendAll(*w, Batch(1, 3));
  dev.FailAfter(FaultOp::kCreate, 0, EACCES);
  const Status s = w->Flush();
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  EXPECT_NE(s.message().find("creating journal segment"), std::string::npos);
  EXPECT_EQ(w->durable_seq(), 0u);
}

// Power loss after N successful flushes, with the next flush's fdatasync
// never completing: the reader returns exactly the records of the N flushed
// batches. Recovery (truncate the tail, continue at last_good_seq + 1) then
// yields a journal that reads cleanly to the end.
TEST(JournalWriter, PowerLossAfterNFlushesKeepsExactlyTheFlushedBatches) {
  for (int flushed = 0; flushed <= 4; ++flushed) {
    SCOPED_TRACE("flushed batches: " + std::to_string(flushed));
    TempDir dir;
    FaultJournalDevice dev;
    auto w = MustOpen(Options(dir, 8192), &dev);  // rollovers on the way
    std::vector<OwnedRecord> durable;
    std::uint64_t next = 1;
    for (int b = 0; b < flushed; ++b) {
      const auto batch = Batch(next, 20 + 30 * static_cast<std::size_t>(b), 60);
      AppendAll(*w, batch);
      ASSERT_TRUE(w->Flush().ok());
      durable.insert(durable.end(), batch.begin(), batch.end());
      next += batch.size();
    }
    AppendAll(*w, Batch(next, 50, 60));
    dev.FailAfter(FaultOp::kDataSync, 0, EIO);
    EXPECT_EQ(w->Flush().code(), StatusCode::kIoError);
    EXPECT_EQ(w->durable_seq(), durable.size());
    dev.PowerLoss();
    w.reset();

    JournalReaderOptions ro;
    ro.dir = dir.path();
    auto reader = JournalReader::Open(ro);
    ASSERT_TRUE(reader.ok());
    std::vector<OwnedRecord> got;
    for (;;) {
      auto r = (*reader)->Next();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!r->has_value()) break;
      got.push_back(OwnedRecord::From(**r));
    }
    EXPECT_EQ(got, durable);
    EXPECT_EQ((*reader)->last_good_seq(), durable.size());
    ASSERT_TRUE((*reader)->TruncateTornTail().ok());

    JournalWriterOptions o = Options(dir, 8192);
    o.first_seq = (*reader)->last_good_seq() + 1;
    FaultJournalDevice dev2;
    auto w2 = MustOpen(o, &dev2);
    ASSERT_NE(w2, nullptr);
    const auto more = Batch(o.first_seq, 10, 60);
    AppendAll(*w2, more);
    ASSERT_TRUE(w2->Close().ok());
    durable.insert(durable.end(), more.begin(), more.end());
    const auto after = ReadJournal(dir.path());
    EXPECT_TRUE(after.status.ok()) << after.status.ToString();
    EXPECT_EQ(after.tail.kind, TailKind::kNone) << after.tail.ToString();
    EXPECT_EQ(after.records, durable);
  }
}

// A crash that persisted part of an unsynced batch (any prefix of its
// bytes): the reader returns the flushed batches plus the whole records of
// that prefix, and reports the partial one as the torn tail.
TEST(JournalWriter,
     PowerLossKeepingPartOfAnUnsyncedBatchYieldsWholeRecordsOnly) {
  const std::vector<OwnedRecord> first = Batch(1, 10, 30);
  const std::vector<OwnedRecord> second = Batch(11, 8, 50);
  std::vector<std::uint64_t> ends;  // end offset of each record of `second`
  std::uint64_t unsynced = 0;
  for (const OwnedRecord& r : second) {
    unsynced += EncodedRecordBytes(r.key.size(), r.value.size());
    ends.push_back(unsynced);
  }
  for (std::uint64_t keep = 0; keep <= unsynced; keep += 5) {
    SCOPED_TRACE("unsynced bytes kept: " + std::to_string(keep));
    TempDir dir;
    FaultJournalDevice dev;
    auto w = MustOpen(Options(dir), &dev);
    AppendAll(*w, first);
    ASSERT_TRUE(w->Flush().ok());
    const std::uint64_t synced_end = w->stats().durable_bytes;
    AppendAll(*w, second);
    dev.FailAfter(FaultOp::kDataSync, 0, EIO);
    ASSERT_EQ(w->Flush().code(), StatusCode::kIoError);
    dev.PowerLoss(keep);

    std::size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= keep) ++whole;
    std::vector<OwnedRecord> want = first;
    want.insert(want.end(), second.begin(),
                second.begin() + static_cast<std::ptrdiff_t>(whole));
    const auto got = ReadJournal(dir.path());
    ASSERT_TRUE(got.status.ok()) << got.status.ToString();
    EXPECT_EQ(got.records, want);
    const std::uint64_t cut = synced_end + (whole == 0 ? 0 : ends[whole - 1]);
    if (cut == synced_end + keep) {
      EXPECT_EQ(got.tail.kind, TailKind::kNone) << got.tail.ToString();
    } else {
      EXPECT_EQ(got.tail.kind, TailKind::kTornRecord) << got.tail.ToString();
      EXPECT_EQ(got.tail.offset, cut);
      EXPECT_EQ(got.tail.dropped_bytes, synced_end + keep - cut);
      EXPECT_EQ(got.tail.last_good_seq, want.size());
    }
  }
}

// A torn write without a crash: the bytes that did land are in the page
// cache, and the reader drops the partial record as the tail.
TEST(JournalWriter, ATornWriteLeavesAPrefixThatTheReaderDrops) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir), &dev);
  const auto batch = Batch(1, 5, 100);
  AppendAll(*w, batch);
  const std::uint64_t one =
      EncodedRecordBytes(batch[0].key.size(), batch[0].value.size());
  dev.TearWriteAfter(0, kSegmentHeaderBytes + 2 * one + 17);
  EXPECT_EQ(w->Flush().code(), StatusCode::kIoError);
  EXPECT_EQ(w->durable_seq(), 0u);
  const auto got = ReadJournal(dir.path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records,
            std::vector<OwnedRecord>(batch.begin(), batch.begin() + 2));
  EXPECT_EQ(got.tail.kind, TailKind::kTornRecord);
  EXPECT_EQ(got.tail.offset, kSegmentHeaderBytes + 2 * one);
  EXPECT_EQ(got.tail.dropped_bytes, 17u);
}

// A flush that spans a rollover: the old file's piece is synced, the new
// file's sync fails. What the old file got is durable and reported so; the
// new file is empty after the power loss and the reader drops it whole.
TEST(JournalWriter, AFailureAfterARolloverKeepsThePiecesAlreadySynced) {
  TempDir dir;
  FaultJournalDevice dev;
  auto w = MustOpen(Options(dir, 4096), &dev);
  AppendAll(*w, Batch(1, 10, 100));  // ~1.7 KiB
  ASSERT_TRUE(w->Flush().ok());
  AppendAll(*w,
            Batch(11, 30, 100));  // fills the first file, spills into a second
  dev.FailAfter(FaultOp::kDataSync, 1, EIO);
  EXPECT_EQ(w->Flush().code(), StatusCode::kIoError);
  const std::uint64_t durable = w->durable_seq();
  EXPECT_GT(durable, 10u);
  EXPECT_LT(durable, 40u);
  dev.PowerLoss();
  const auto got = ReadJournal(dir.path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.records.size(), durable);
  EXPECT_EQ(got.tail.kind, TailKind::kTornHeader) << got.tail.ToString();
  EXPECT_TRUE(got.tail.removes_file);
  EXPECT_EQ(got.tail.last_good_seq, durable);
}

}  // namespace
}  // namespace numagrid::io
