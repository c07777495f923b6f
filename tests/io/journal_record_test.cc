#include "io/journal_record.h"

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/crc32c.h"
#include "tests/io/journal_test_util.h"

namespace numagrid::io {
namespace {

using testing::OwnedRecord;

std::vector<std::byte> Encode(const OwnedRecord& r, std::uint64_t seq = 1) {
  RecordView v = r.view();
  v.sequence = seq;
  std::vector<std::byte> out;
  Status s = EncodeRecord(v, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

void PutLe(std::vector<std::byte>& b, std::size_t off, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + i] = static_cast<std::byte>(v >> (8 * i));
}

// The byte layout of docs/journal-format.md, built by hand from the table
// there, must be exactly what EncodeRecord writes: the on-disk format.
TEST(JournalRecord, EncodingMatchesTheDocumentedLayout) {
  OwnedRecord r;
  r.partition_id = 0x01020304;
  r.op = RecordOp::kPut;
  r.change_seq = 0x1112131415161718ULL;
  r.version = 0x2122232425262728ULL;
  r.expiry_ms = 0x3132333435363738ULL;
  r.key = "key";
  r.value = "value";
  const std::vector<std::byte> got = Encode(r, 0x0A0B0C0D0E0F0102ULL);

  std::vector<std::byte> want(64, std::byte{0});  // 56 + 3 + 5 = 64, no padding
  PutLe(want, 0, 64, 4);
  PutLe(want, 8, 0x0A0B0C0D0E0F0102ULL, 8);
  PutLe(want, 16, 0x01020304, 4);
  PutLe(want, 20, 1, 1);
  PutLe(want, 21, 0, 1);
  PutLe(want, 22, 3, 2);
  PutLe(want, 24, 5, 4);
  PutLe(want, 28, 0, 4);
  PutLe(want, 32, 0x1112131415161718ULL, 8);
  PutLe(want, 40, 0x2122232425262728ULL, 8);
  PutLe(want, 48, 0x3132333435363738ULL, 8);
  std::memcpy(want.data() + 56, "keyvalue", 8);
  PutLe(want, 4, base::Crc32c(want.data() + 8, want.size() - 8), 4);
  EXPECT_EQ(got, want);
  // A golden value as well, so that the CRC's coverage cannot drift.
  EXPECT_EQ(std::to_integer<unsigned>(got[4]) |
                std::to_integer<unsigned>(got[5]) << 8 |
                std::to_integer<unsigned>(got[6]) << 16 |
                std::to_integer<unsigned>(got[7]) << 24,
            0x6C5E543Eu);
}

TEST(JournalRecord, PaddingIsZeroAndCoveredByTheCrc) {
  OwnedRecord r;
  r.key = "k";  // 56 + 1 = 57 -> 64
  std::vector<std::byte> b = Encode(r);
  ASSERT_EQ(b.size(), 64u);
  for (std::size_t i = 57; i < 64; ++i) EXPECT_EQ(b[i], std::byte{0}) << i;
  b[63] = std::byte{1};
  EXPECT_EQ(DecodeRecord(b).outcome, DecodeOutcome::kCorrupt);
}

TEST(JournalRecord, RoundTripsEveryOpAndTheExtremeSizes) {
  std::vector<OwnedRecord> cases;
  for (RecordOp op : {RecordOp::kPut, RecordOp::kRemove, RecordOp::kExpire,
                      RecordOp::kEvict}) {
    OwnedRecord r;
    r.op = op;
    r.key = "some-key";
    if (op == RecordOp::kPut) r.value = "v";
    cases.push_back(r);
  }
  OwnedRecord empty;  // empty key and value
  cases.push_back(empty);
  OwnedRecord max_key;
  max_key.key.assign(kMaxJournalKeyBytes, 'x');
  max_key.value = "after the longest key";
  cases.push_back(max_key);
  OwnedRecord max_value;
  max_value.key = "big";
  max_value.value.assign(kMaxJournalValueBytes, '\x5a');
  cases.push_back(max_value);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::vector<std::byte> b = Encode(cases[i], 100 + i);
    EXPECT_EQ(b.size(),
              EncodedRecordBytes(cases[i].key.size(), cases[i].value.size()));
    EXPECT_EQ(b.size() % kRecordAlignBytes, 0u);
    const DecodedRecord d = DecodeRecord(b, 4096);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d.size_bytes, b.size());
    EXPECT_EQ(d.offset, 4096u);
    EXPECT_EQ(d.record.sequence, 100 + i);
    EXPECT_TRUE(OwnedRecord::From(d.record) == cases[i]) << "case " << i;
  }
}

TEST(JournalRecord, BadInputIsRefusedAndChangesNothing) {
  std::vector<std::byte> out(3, std::byte{7});
  OwnedRecord r;
  r.key.assign(kMaxJournalKeyBytes + 1, 'k');
  EXPECT_EQ(EncodeRecord(r.view(), &out).code(), StatusCode::kInvalidArgument);
  r.key = "k";
  r.value.assign(kMaxJournalValueBytes + 1, 'v');
  EXPECT_EQ(EncodeRecord(r.view(), &out).code(), StatusCode::kInvalidArgument);
  r.value = "v";
  r.op = RecordOp::kRemove;  // a removal with a value
  EXPECT_EQ(EncodeRecord(r.view(), &out).code(), StatusCode::kInvalidArgument);
  r.op = static_cast<RecordOp>(9);
  EXPECT_EQ(EncodeRecord(r.view(), &out).code(), StatusCode::kInvalidArgument);
  r.op = static_cast<RecordOp>(0);
  EXPECT_EQ(EncodeRecord(r.view(), &out).code(), StatusCode::kInvalidArgument);
  r.op = RecordOp::kPut;
  RecordView v = r.view();
  v.flags = 1;
  EXPECT_EQ(EncodeRecord(v, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, std::vector<std::byte>(3, std::byte{7}));
}

TEST(JournalRecord, EveryPrefixIsTornNeverCorruptNorOk) {
  OwnedRecord r;
  r.key = "prefix-key";
  r.value = std::string(100, 'p');
  const std::vector<std::byte> b = Encode(r);
  for (std::size_t n = 1; n < b.size(); ++n) {
    const DecodedRecord d = DecodeRecord(std::span(b).first(n), 640);
    EXPECT_EQ(d.outcome, DecodeOutcome::kTorn) << n << ": " << d.reason;
    EXPECT_EQ(d.offset, 640u);
    EXPECT_EQ(d.status().code(), StatusCode::kCorruption);
    EXPECT_NE(d.status().message().find("torn record at offset 640"),
              std::string::npos);
    if (n >= 8) {
      EXPECT_EQ(d.size_bytes, b.size()) << n;
    }
  }
}

TEST(JournalRecord, ZeroLengthIsTornAsNeverWritten) {
  const std::vector<std::byte> zeros(200, std::byte{0});
  const DecodedRecord d = DecodeRecord(zeros);
  EXPECT_EQ(d.outcome, DecodeOutcome::kTorn);
  EXPECT_NE(d.reason.find("zero length"), std::string::npos) << d.reason;
}

TEST(JournalRecord, EveryFlippedBitIsDetected) {
  OwnedRecord r;
  r.partition_id = 5;
  r.key = "flip";
  r.value = std::string(37, 'f');
  const std::vector<std::byte> good = Encode(r);
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    std::vector<std::byte> b = good;
    b[bit / 8] ^= static_cast<std::byte>(1U << (bit % 8));
    const DecodedRecord d = DecodeRecord(b, 8);
    ASSERT_FALSE(d.ok()) << "bit " << bit;
    // Only clearing the length's one set bit yields a zero length (torn);
    // every other flip is corruption.
    const bool zeroes_length =
        bit < 32 && d.reason.find("zero length") != std::string::npos;
    EXPECT_EQ(d.outcome,
              zeroes_length ? DecodeOutcome::kTorn : DecodeOutcome::kCorrupt)
        << "bit " << bit << ": " << d.reason;
    EXPECT_NE(d.status().message().find("offset 8"), std::string::npos);
  }
}

TEST(JournalRecord, ImpossibleLengthsAreCorruption) {
  OwnedRecord r;
  r.key = "len";
  std::vector<std::byte> b = Encode(r);
  for (std::uint32_t len : {1U, 8U, 48U, 57U, 63U, 0xFFFFFFF8U}) {
    std::vector<std::byte> c = b;
    PutLe(c, 0, len, 4);
    EXPECT_EQ(DecodeRecord(c).outcome, DecodeOutcome::kCorrupt) << len;
  }
  // A length that disagrees with the key and value lengths is corrupt even
  // when the file ends before the promised bytes.
  std::vector<std::byte> c = b;
  PutLe(c, 0, 4096, 4);
  EXPECT_EQ(DecodeRecord(c).outcome, DecodeOutcome::kCorrupt);
}

TEST(SegmentHeader, RoundTripsAndPinsItsLayout) {
  SegmentHeader h;
  h.grid_id = 0xAABBCCDDEEFF0011ULL;
  h.node_id = 3;
  h.first_seq = 12345;
  h.created_unix_ns = 1700000000123456789ULL;
  const auto bytes = EncodeSegmentHeader(h);
  EXPECT_EQ(std::memcmp(bytes.data(), "NGJOURNL", 8), 0);
  EXPECT_EQ(std::to_integer<int>(bytes[8]), 1);    // format version
  EXPECT_EQ(std::to_integer<int>(bytes[12]), 64);  // header size
  EXPECT_EQ(std::to_integer<int>(bytes[24]), 3);   // node id
  EXPECT_EQ(std::to_integer<int>(bytes[32]), 12345 & 0xFF);
  for (std::size_t i = 48; i < 60; ++i) EXPECT_EQ(bytes[i], std::byte{0}) << i;
  const DecodedSegmentHeader d = DecodeSegmentHeader(bytes);
  ASSERT_EQ(d.outcome, DecodeOutcome::kOk) << d.error.ToString();
  EXPECT_EQ(d.header.grid_id, h.grid_id);
  EXPECT_EQ(d.header.node_id, h.node_id);
  EXPECT_EQ(d.header.first_seq, h.first_seq);
  EXPECT_EQ(d.header.created_unix_ns, h.created_unix_ns);
}

TEST(SegmentHeader, TornCorruptAndOtherVersionsAreToldApart) {
  SegmentHeader h;
  h.first_seq = 1;
  const auto good = EncodeSegmentHeader(h);
  for (std::size_t n = 0; n < kSegmentHeaderBytes; ++n) {
    EXPECT_EQ(DecodeSegmentHeader(std::span(good).first(n)).outcome,
              DecodeOutcome::kTorn)
        << n;
  }
  const std::array<std::byte, kSegmentHeaderBytes> zeros{};
  EXPECT_EQ(DecodeSegmentHeader(zeros).outcome, DecodeOutcome::kTorn);

  auto flipped = good;
  flipped[40] ^= std::byte{0x10};
  DecodedSegmentHeader d = DecodeSegmentHeader(flipped);
  EXPECT_EQ(d.outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(d.error.code(), StatusCode::kCorruption);

  auto other = good;
  other[0] = std::byte{'X'};
  EXPECT_EQ(DecodeSegmentHeader(other).error.code(), StatusCode::kCorruption);

  // A journal of format version 2 (its CRC is valid) is refused as such.
  auto v2 = good;
  v2[8] = std::byte{2};
  const std::uint32_t crc = base::Crc32c(v2.data(), 60);
  for (int i = 0; i < 4; ++i) {
    v2[60 + i] = static_cast<std::byte>(crc >> (8 * i));
  }
  d = DecodeSegmentHeader(v2);
  EXPECT_EQ(d.outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(d.error.code(), StatusCode::kVersionMismatch);
  EXPECT_NE(d.error.message().find("version 2"), std::string::npos)
      << d.error.message();
}

TEST(SegmentFileName, SortsBySequenceAndParsesOnlyItsNode) {
  EXPECT_EQ(SegmentFileName(0, 1), "journal-0-00000000000000000001.log");
  EXPECT_EQ(SegmentFileName(12, 18446744073709551615ULL),
            "journal-12-18446744073709551615.log");
  EXPECT_LT(SegmentFileName(1, 99), SegmentFileName(1, 100));
  EXPECT_EQ(ParseSegmentFileName("journal-3-00000000000000000042.log", 3), 42u);
  EXPECT_FALSE(ParseSegmentFileName("journal-3-00000000000000000042.log", 33));
  EXPECT_FALSE(ParseSegmentFileName("journal-33-00000000000000000042.log", 3));
  EXPECT_FALSE(ParseSegmentFileName("journal-3-0000000000000000042.log", 3));
  EXPECT_FALSE(
      ParseSegmentFileName("journal-3-00000000000000000042.log.tmp", 3));
  EXPECT_FALSE(ParseSegmentFileName("journal-3-0000000000000000004x.log", 3));
  EXPECT_FALSE(
      ParseSegmentFileName("journal-3-99999999999999999999.log", 3));  // > u64
}

}  // namespace
}  // namespace numagrid::io
