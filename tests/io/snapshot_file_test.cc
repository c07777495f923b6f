#include "io/snapshot_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/crc32c.h"
#include "tests/io/journal_test_util.h"

namespace numagrid::io {
namespace {

using ::testing::HasSubstr;
using testing::OwnedRecord;
using testing::ReadFileBytes;
using testing::TempDir;
using testing::WriteFileBytes;

constexpr std::uint64_t kGrid = 0x6772696431ULL;

// One partition's section as written or read back.
struct Part {
  std::uint32_t id = 0;
  std::uint64_t covered_seq = 0;
  std::vector<OwnedRecord> entries;
  bool operator==(const Part&) const = default;
};

OwnedRecord Entry(std::uint32_t partition, std::uint64_t version,
                  std::string key, std::string value,
                  std::uint64_t expiry_ms = 0) {
  OwnedRecord r;
  r.partition_id = partition;
  r.op = RecordOp::kPut;
  r.version = version;
  r.change_seq = version;  // what the file stores there
  r.expiry_ms = expiry_ms;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

SnapshotWriterOptions Options(const TempDir& dir, std::uint64_t journal_seq,
                              std::uint32_t node = 0) {
  SnapshotWriterOptions o;
  o.dir = dir.path();
  o.grid_id = kGrid;
  o.node_id = node;
  o.journal_seq = journal_seq;
  return o;
}

std::unique_ptr<SnapshotWriter> MustCreate(const SnapshotWriterOptions& o) {
  auto w = SnapshotWriter::Create(o);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? std::move(*w) : nullptr;
}

// Writes `parts` as the snapshot (node, journal_seq) and returns its path.
std::string WriteSnapshot(const TempDir& dir, std::uint64_t journal_seq,
                          const std::vector<Part>& parts,
                          std::uint32_t node = 0) {
  auto w = MustCreate(Options(dir, journal_seq, node));
  if (w == nullptr) return "";
  for (const Part& p : parts) {
    EXPECT_TRUE(w->BeginPartition(p.id, p.covered_seq).ok());
    for (const OwnedRecord& e : p.entries) {
      const Status s = w->Add(e.view());
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    EXPECT_TRUE(w->EndPartition().ok());
  }
  const Status s = w->Commit();
  EXPECT_TRUE(s.ok()) << s.ToString();
  return w->path();
}

// Everything a reader returns for a file.
struct ReadBack {
  Status status;  // of Open, or of the first failing Next
  SnapshotHeader header;
  std::vector<Part> parts;
  std::vector<std::uint64_t> ordinals;
  std::uint64_t entry_count = 0;
};

ReadBack ReadSnapshot(const std::string& path, std::uint64_t grid = kGrid,
                      std::uint32_t node = 0) {
  ReadBack out;
  auto r = SnapshotReader::Open(path, grid, node);
  if (!r.ok()) {
    out.status = r.status();
    return out;
  }
  out.header = (*r)->header();
  out.entry_count = (*r)->entry_count();
  for (;;) {
    auto item = (*r)->Next();
    if (!item.ok()) {
      out.status = item.status();
      break;
    }
    if (!item->has_value()) break;
    const SnapshotItem& it = **item;
    if (it.kind == SnapshotItem::Kind::kPartition) {
      out.parts.push_back({it.partition_id, it.covered_seq, {}});
      continue;
    }
    EXPECT_FALSE(out.parts.empty());
    EXPECT_EQ(it.partition_id, out.parts.back().id);
    out.parts.back().entries.push_back(OwnedRecord::From(it.entry));
    out.ordinals.push_back(it.entry.sequence);
  }
  return out;
}

// Writes `bytes` as a new file at `path`. Unlinking first keeps the file
// system from flushing the old contents as a truncated file's would be,
// which makes a loop of rewrites slow.
void Replace(const std::string& path, const std::string& bytes) {
  (void)unlink(path.c_str());
  WriteFileBytes(path, bytes);
}

std::vector<Part> SmallParts() {
  return {
      {3, 17, {Entry(3, 5, "alpha", "one"), Entry(3, 9, "beta", "")}},
      {4, 1, {}},
      {8,
       40,
       {Entry(8, 12, "gamma", "three", 1700000000123ULL),
        Entry(8, 39, "d", "a value of some length")}},
  };
}

void PutLe(std::string& b, std::size_t off, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + i] = static_cast<char>(v >> (8 * i));
}

std::uint64_t GetLe(const std::string& b, std::size_t off, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[off + i]))
         << (8 * i);
  }
  return v;
}

std::uint32_t Crc(const std::string& b, std::size_t off, std::size_t n) {
  return base::Crc32c(b.data() + off, n);
}

// A snapshot file built by hand from docs/snapshot-format.md, with every
// count and CRC consistent, so that structural checks can be tested alone.
struct HandSection {
  std::uint32_t id = 0;
  std::uint64_t covered_seq = 0;
  std::vector<std::string> records;  // encoded
};

std::string EncodeEntry(const OwnedRecord& r, std::uint64_t ordinal) {
  RecordView v = r.view();
  v.sequence = ordinal;
  std::vector<std::byte> out;
  EXPECT_TRUE(EncodeRecord(v, &out).ok());
  return {reinterpret_cast<const char*>(out.data()), out.size()};
}

std::string HandBuild(const std::vector<HandSection>& sections,
                      std::uint32_t node = 0, std::uint64_t journal_seq = 1,
                      std::uint64_t created = 99) {
  std::string f(64, '\0');
  PutLe(f, 0, kSnapshotMagic, 8);
  PutLe(f, 8, 1, 4);
  PutLe(f, 12, 64, 4);
  PutLe(f, 16, kGrid, 8);
  PutLe(f, 24, node, 4);
  PutLe(f, 28, sections.size(), 4);
  PutLe(f, 32, journal_seq, 8);
  PutLe(f, 40, created, 8);
  PutLe(f, 60, Crc(f, 0, 60), 4);
  std::uint64_t entries = 0;
  for (const HandSection& s : sections) {
    std::string h(48, '\0');
    std::uint64_t bytes = 0;
    for (const std::string& r : s.records) bytes += r.size();
    PutLe(h, 0, kSnapshotSectionMagic, 8);
    PutLe(h, 8, s.id, 4);
    PutLe(h, 16, s.covered_seq, 8);
    PutLe(h, 24, s.records.size(), 8);
    PutLe(h, 32, bytes, 8);
    PutLe(h, 44, Crc(h, 0, 44), 4);
    f += h;
    for (const std::string& r : s.records) f += r;
    entries += s.records.size();
  }
  std::string t(40, '\0');
  PutLe(t, 0, kSnapshotFooterMagic, 8);
  PutLe(t, 8, sections.size(), 4);
  PutLe(t, 16, entries, 8);
  PutLe(t, 24, f.size() + 40, 8);
  PutLe(t, 32, Crc(f, 0, f.size()), 4);
  PutLe(t, 36, Crc(t, 0, 36), 4);
  return f + t;
}

TEST(SnapshotFile, NamesSortInJournalOrderAndParseBack) {
  EXPECT_EQ(SnapshotFileName(3, 42), "snapshot-3-00000000000000000042.snap");
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(3, 42), 3), 42u);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(0, ~0ULL), 0), ~0ULL);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(3, 42), 4), std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(13, 42), 3), std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(3, 42) + ".tmp", 3),
            std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName("snapshot-3-0000000000000000004x.snap", 3),
            std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName("snapshot-3-+0000000000000000042.snap", 3),
            std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName("snapshot-3-42.snap", 3), std::nullopt);
  EXPECT_EQ(ParseSnapshotFileName("journal-3-00000000000000000042.log", 3),
            std::nullopt);
  EXPECT_LT(SnapshotFileName(1, 9), SnapshotFileName(1, 10));
}

TEST(SnapshotFile, ListSnapshotsSortsByJournalSequenceAndFilters) {
  EXPECT_EQ(ListSnapshots("/nonexistent-numagrid-snapshots", 0).status().code(),
            StatusCode::kNotFound);
  TempDir dir;
  for (std::uint64_t seq : {100ULL, 7ULL, 0ULL, 1000000ULL, 99ULL}) {
    WriteFileBytes(dir.path() + "/" + SnapshotFileName(2, seq),
                   std::string(seq % 50, 'x'));
  }
  WriteFileBytes(dir.path() + "/" + SnapshotFileName(2, 5000) + ".tmp", "t");
  WriteFileBytes(dir.path() + "/" + SnapshotFileName(1, 50), "other node");
  WriteFileBytes(dir.path() + "/" + SnapshotFileName(12, 50), "other node");
  WriteFileBytes(dir.path() + "/journal-2-00000000000000000001.log", "j");
  WriteFileBytes(dir.path() + "/README", "r");
  auto list = ListSnapshots(dir.path(), 2);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::vector<std::uint64_t> seqs;
  for (const SnapshotFile& f : *list) {
    seqs.push_back(f.journal_seq);
    EXPECT_EQ(f.path, dir.path() + "/" + SnapshotFileName(2, f.journal_seq));
    EXPECT_EQ(f.size_bytes, f.journal_seq % 50);
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{0, 7, 99, 100, 1000000}));
  EXPECT_EQ(ListSnapshots(dir.path(), 3)->size(), 0u);
}

// The bytes of docs/snapshot-format.md, built by hand, are what the writer
// writes (but for the creation time) and what the reader accepts.
TEST(SnapshotFile, WriterOutputMatchesTheDocumentedLayout) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 1, SmallParts());
  std::string got = ReadFileBytes(path);
  ASSERT_GE(got.size(), 64u);
  EXPECT_EQ(got.substr(0, 8), "NGSNAPSH");
  EXPECT_EQ(got.substr(64, 8), "NGSNPART");
  EXPECT_EQ(got.substr(got.size() - 40, 8), "NGSNAPEN");
  const std::uint64_t created = GetLe(got, 40, 8);
  EXPECT_GT(created, 1600000000ULL * 1000000000ULL);

  std::vector<HandSection> hand;
  std::uint64_t ordinal = 1;
  for (const Part& p : SmallParts()) {
    HandSection s{p.id, p.covered_seq, {}};
    for (const OwnedRecord& e : p.entries) {
      s.records.push_back(EncodeEntry(e, ordinal++));
    }
    hand.push_back(s);
  }
  EXPECT_EQ(got, HandBuild(hand, 0, 1, created));
}

TEST(SnapshotFile, RoundTripsPartitionsEntriesAndEmptySections) {
  TempDir dir;
  std::mt19937_64 rng(testing::TestSeed());
  Part many{9, 1000, {}};
  for (std::uint64_t i = 0; i < 500; ++i) {
    std::string v(rng() % 200, '\0');
    for (char& c : v) c = static_cast<char>(rng());
    many.entries.push_back(Entry(9, 100 + i, "key" + std::to_string(i), v,
                                 i % 3 == 0 ? 1700000000000ULL + i : 0));
  }
  const std::vector<Part> parts = {
      {0, 0, {}},  // an empty first section
      {1, 5, {Entry(1, 1, "k1", "v1"), Entry(1, 4, "k2", "")}},
      {2, 3, {}},
      // A value larger than the writer's and reader's 1 MiB chunks, so that
      // the section header and file header are filled in after they were
      // written, and the reader reads one entry in one piece.
      {7,
       1ULL << 40,
       {Entry(7, 10, "big", std::string(3 << 20, 'B'), 1800000000000ULL),
        Entry(7, 11, std::string(kMaxJournalKeyBytes, 'K'), "after big")}},
      many,
      {0xFFFFFFFEU, 9, {Entry(0xFFFFFFFEU, 8, "", "empty key")}},
      {0xFFFFFFFFU, 2, {}},  // an empty last section
  };

  auto w = MustCreate(Options(dir, 12345, 3));
  ASSERT_NE(w, nullptr);
  for (const Part& p : parts) {
    ASSERT_TRUE(w->BeginPartition(p.id, p.covered_seq).ok());
    for (const OwnedRecord& e : p.entries) ASSERT_TRUE(w->Add(e.view()).ok());
    ASSERT_TRUE(w->EndPartition().ok());
  }
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(w->path(), dir.path() + "/" + SnapshotFileName(3, 12345));
  EXPECT_EQ(w->partition_count(), parts.size());
  std::uint64_t n = 0;
  for (const Part& p : parts) n += p.entries.size();
  EXPECT_EQ(w->entry_count(), n);
  struct stat sb {};
  ASSERT_EQ(stat(w->path().c_str(), &sb), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(sb.st_size), w->file_bytes());

  const ReadBack got = ReadSnapshot(w->path(), kGrid, 3);
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.header.grid_id, kGrid);
  EXPECT_EQ(got.header.node_id, 3u);
  EXPECT_EQ(got.header.journal_seq, 12345u);
  EXPECT_EQ(got.header.partition_count, parts.size());
  EXPECT_EQ(got.entry_count, n);
  EXPECT_EQ(got.parts, parts);
  for (std::size_t i = 0; i < got.ordinals.size(); ++i) {
    EXPECT_EQ(got.ordinals[i], i + 1);
  }
  // Grid 0 accepts any grid.
  EXPECT_TRUE(ReadSnapshot(w->path(), 0, 3).status.ok());
}

TEST(SnapshotFile, ASnapshotWithoutPartitionsRoundTrips) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 0, {});
  const ReadBack got = ReadSnapshot(path);
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_TRUE(got.parts.empty());
  EXPECT_EQ(got.header.journal_seq, 0u);
  EXPECT_EQ(ReadFileBytes(path).size(), 64u + 40u);
}

TEST(SnapshotFile, TheFileGetsExactlyTheModeAndGroup) {
  TempDir dir;
  SnapshotWriterOptions o = Options(dir, 1);
  o.file_mode = 0640;
  gid_t groups[64];
  const int n = getgroups(64, groups);
  o.group_id = static_cast<int>(n > 0 ? groups[n - 1] : getegid());
  const mode_t old = umask(0077);
  auto w = MustCreate(o);
  umask(old);
  ASSERT_NE(w, nullptr);
  struct stat sb {};
  ASSERT_EQ(stat((w->path() + ".tmp").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0640u);
  ASSERT_TRUE(w->Commit().ok());
  ASSERT_EQ(stat(w->path().c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0640u);
  EXPECT_EQ(static_cast<int>(sb.st_gid), o.group_id);
  EXPECT_NE(stat((w->path() + ".tmp").c_str(), &sb), 0);
}

TEST(SnapshotFile, AnAbandonedWriterLeavesNoFile) {
  TempDir dir;
  std::string path;
  {
    auto w = MustCreate(Options(dir, 5));
    ASSERT_NE(w, nullptr);
    path = w->path();
    ASSERT_TRUE(w->BeginPartition(1, 1).ok());
    ASSERT_TRUE(
        w->Add(Entry(1, 1, "k", std::string(2 << 20, 'v')).view()).ok());
  }
  auto list = ListSnapshots(dir.path(), 0);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  struct stat sb {};
  EXPECT_NE(stat((path + ".tmp").c_str(), &sb), 0);
  EXPECT_NE(stat(path.c_str(), &sb), 0);
}

TEST(SnapshotFile, AStaleTmpFileIsReplaced) {
  TempDir dir;
  const std::string tmp = dir.path() + "/" + SnapshotFileName(0, 8) + ".tmp";
  WriteFileBytes(tmp, std::string(10000, 'x'));
  const std::string path = WriteSnapshot(dir, 8, SmallParts());
  EXPECT_EQ(ReadSnapshot(path).parts, SmallParts());
  struct stat sb {};
  EXPECT_NE(stat(tmp.c_str(), &sb), 0);
}

TEST(SnapshotFile, AnExistingSnapshotIsNeverReplaced) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 8, SmallParts());
  const std::string before = ReadFileBytes(path);
  EXPECT_EQ(SnapshotWriter::Create(Options(dir, 8)).status().code(),
            StatusCode::kAlreadyExists);
  // The same name appearing while a writer works: Commit refuses too.
  {
    auto w = MustCreate(Options(dir, 9));
    ASSERT_NE(w, nullptr);
    WriteFileBytes(w->path(), "someone else's");
    const Status s = w->Commit();
    EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(w->path()));
    EXPECT_EQ(w->Commit().code(), StatusCode::kPanic);
    EXPECT_EQ(ReadFileBytes(w->path()), "someone else's");
  }
  struct stat sb {};
  EXPECT_NE(
      stat((dir.path() + "/" + SnapshotFileName(0, 9) + ".tmp").c_str(), &sb),
      0);
  EXPECT_EQ(ReadFileBytes(path), before);
}

TEST(SnapshotFile, MisuseIsRefusedAndChangesNothing) {
  TempDir dir;
  SnapshotWriterOptions bad = Options(dir, 1);
  bad.file_mode = 01600;
  EXPECT_EQ(SnapshotWriter::Create(bad).status().code(),
            StatusCode::kInvalidArgument);
  bad = Options(dir, 1);
  bad.dir = dir.path() + "/missing";
  EXPECT_EQ(SnapshotWriter::Create(bad).status().code(), StatusCode::kNotFound);

  auto w = MustCreate(Options(dir, 1));
  ASSERT_NE(w, nullptr);
  const OwnedRecord e = Entry(5, 1, "k", "v");
  EXPECT_EQ(w->Add(e.view()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->EndPartition().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(w->BeginPartition(5, 2).ok());
  EXPECT_EQ(w->BeginPartition(6, 2).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->Commit().code(), StatusCode::kInvalidArgument);
  OwnedRecord other = e;
  other.partition_id = 6;
  EXPECT_EQ(w->Add(other.view()).code(), StatusCode::kInvalidArgument);
  OwnedRecord removal = e;
  removal.op = RecordOp::kRemove;
  removal.value.clear();
  EXPECT_EQ(w->Add(removal.view()).code(), StatusCode::kInvalidArgument);
  RecordView fv = e.view();
  fv.flags = 1;
  EXPECT_EQ(w->Add(fv).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(w->Add(e.view()).ok());
  ASSERT_TRUE(w->EndPartition().ok());
  EXPECT_EQ(w->BeginPartition(5, 2).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->BeginPartition(4, 2).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_EQ(w->Commit().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->BeginPartition(9, 2).code(), StatusCode::kInvalidArgument);
  const ReadBack got = ReadSnapshot(w->path());
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.parts, (std::vector<Part>{{5, 2, {e}}}));
}

// A snapshot cut at any byte is corrupt: never accepted, never a crash.
TEST(SnapshotFile, TruncationAtEveryByteIsCorruption) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 1, SmallParts());
  const std::string original = ReadFileBytes(path);
  for (std::size_t len = 0; len < original.size(); ++len) {
    SCOPED_TRACE("cut to " + std::to_string(len) + " bytes");
    Replace(path, original.substr(0, len));
    const ReadBack got = ReadSnapshot(path);
    EXPECT_EQ(got.status.code(), StatusCode::kCorruption)
        << got.status.ToString();
    EXPECT_THAT(got.status.message(), HasSubstr(path));
  }
  // And bytes after the end (a zero-extended or appended-to file).
  for (const std::string& extra :
       {std::string(1, '\0'), std::string(8, '\0'), std::string(40, '\0'),
        original.substr(original.size() - 40)}) {
    Replace(path, original + extra);
    EXPECT_EQ(ReadSnapshot(path).status.code(), StatusCode::kCorruption);
  }
  Replace(path, original);
  EXPECT_TRUE(ReadSnapshot(path).status.ok());
}

// Any damaged byte is found before the first entry is handed out.
TEST(SnapshotFile, RandomByteFlipsAreDetected) {
  TempDir dir;
  std::vector<Part> parts = SmallParts();
  parts.push_back({20, 5, {Entry(20, 3, "x", std::string(3000, 'y'))}});
  const std::string path = WriteSnapshot(dir, 1, parts);
  const std::string original = ReadFileBytes(path);
  std::mt19937_64 rng(testing::TestSeed());
  for (int i = 0; i < 3000; ++i) {
    std::string damaged = original;
    const std::size_t off = rng() % damaged.size();
    const auto mask = static_cast<char>(1 + rng() % 255);
    damaged[off] = static_cast<char>(damaged[off] ^ mask);
    if (i % 4 == 0) {
      // Sometimes a run of bytes zeroed or scrambled as well.
      const std::size_t at = rng() % damaged.size();
      const std::size_t n =
          std::min<std::size_t>(rng() % 64, damaged.size() - at);
      for (std::size_t j = 0; j < n; ++j) {
        damaged[at + j] = static_cast<char>(i % 8 == 0 ? 0 : rng());
      }
    }
    if (damaged == original) continue;
    SCOPED_TRACE("byte " + std::to_string(off) + " damaged, iteration " +
                 std::to_string(i));
    Replace(path, damaged);
    const ReadBack got = ReadSnapshot(path);
    ASSERT_FALSE(got.status.ok());
    EXPECT_TRUE(got.parts.empty());  // Open failed: nothing was handed out
    if (damaged.compare(0, 8, original, 0, 8) == 0 &&
        damaged.compare(8, 4, original, 8, 4) != 0) {
      EXPECT_EQ(got.status.code(), StatusCode::kVersionMismatch);
    } else {
      EXPECT_EQ(got.status.code(), StatusCode::kCorruption)
          << got.status.ToString();
    }
  }
}

TEST(SnapshotFile, AnotherGridNodeOrNameIsRefused) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 77, SmallParts(), 2);
  EXPECT_TRUE(ReadSnapshot(path, kGrid, 2).status.ok());
  const Status other_grid = ReadSnapshot(path, kGrid + 1, 2).status;
  EXPECT_EQ(other_grid.code(), StatusCode::kCorruption);
  EXPECT_THAT(other_grid.message(), HasSubstr("grid"));
  const Status other_node = ReadSnapshot(path, kGrid, 1).status;
  EXPECT_EQ(other_node.code(), StatusCode::kCorruption);
  EXPECT_THAT(other_node.message(), HasSubstr("node"));
  // Renamed to another journal sequence: the header disagrees.
  const std::string renamed = dir.path() + "/" + SnapshotFileName(2, 78);
  ASSERT_EQ(rename(path.c_str(), renamed.c_str()), 0);
  EXPECT_EQ(ReadSnapshot(renamed, kGrid, 2).status.code(),
            StatusCode::kCorruption);
  // A name that is no snapshot name is checked by its contents only.
  const std::string copy = dir.path() + "/copy";
  ASSERT_EQ(rename(renamed.c_str(), copy.c_str()), 0);
  EXPECT_TRUE(ReadSnapshot(copy, kGrid, 2).status.ok());
  EXPECT_EQ(ReadSnapshot(dir.path() + "/missing", kGrid, 2).status.code(),
            StatusCode::kNotFound);
}

TEST(SnapshotFile, AnotherFormatVersionIsAVersionMismatch) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 1, SmallParts());
  std::string b = ReadFileBytes(path);
  PutLe(b, 8, 2, 4);
  PutLe(b, 60, Crc(b, 0, 60), 4);  // a well-formed header of version 2
  WriteFileBytes(path, b);
  const Status s = ReadSnapshot(path).status;
  EXPECT_EQ(s.code(), StatusCode::kVersionMismatch) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_THAT(s.message(), HasSubstr("version 2"));
}

// Structural damage under good CRCs: what a buggy writer would produce.
TEST(SnapshotFile, StructuralDamageUnderGoodChecksumsIsCorruption) {
  TempDir dir;
  const std::string path = dir.path() + "/" + SnapshotFileName(0, 1);
  const OwnedRecord a = Entry(3, 5, "a", "1");
  const OwnedRecord b = Entry(3, 6, "b", "2");
  const OwnedRecord c = Entry(4, 7, "c", "3");
  auto expect = [&](const std::vector<HandSection>& s, const char* what) {
    SCOPED_TRACE(what);
    WriteFileBytes(path, HandBuild(s));
    const Status st = ReadSnapshot(path).status;
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
    EXPECT_THAT(st.message(), HasSubstr(what));
  };
  // The well-formed file first.
  WriteFileBytes(path,
                 HandBuild({{3, 9, {EncodeEntry(a, 1), EncodeEntry(b, 2)}},
                            {4, 9, {EncodeEntry(c, 3)}}}));
  ASSERT_TRUE(ReadSnapshot(path).status.ok());

  expect({{3, 9, {EncodeEntry(a, 1), EncodeEntry(b, 3)}}},
         "missing or repeated");
  expect({{3, 9, {EncodeEntry(a, 1), EncodeEntry(a, 1)}}},
         "missing or repeated");
  expect({{3, 9, {EncodeEntry(a, 2)}}}, "missing or repeated");
  expect({{3, 9, {EncodeEntry(a, 1), EncodeEntry(c, 2)}}}, "is of partition 4");
  expect({{4, 9, {EncodeEntry(c, 1)}}, {3, 9, {EncodeEntry(a, 2)}}},
         "out of order");
  expect({{3, 9, {EncodeEntry(a, 1)}}, {3, 9, {EncodeEntry(b, 2)}}},
         "out of order");
  OwnedRecord removal = a;
  removal.op = RecordOp::kRemove;
  removal.value.clear();
  expect({{3, 9, {EncodeEntry(removal, 1)}}}, "not a put");
  OwnedRecord skewed = a;
  skewed.change_seq = a.version + 1;
  expect({{3, 9, {EncodeEntry(skewed, 1)}}}, "change sequence");
  // Nonzero padding, under a recomputed record CRC.
  std::string padded = EncodeEntry(Entry(3, 5, "k", ""), 1);  // 57 -> 64
  padded[60] = 'p';
  PutLe(padded, 4, Crc(padded, 8, padded.size() - 8), 4);
  expect({{3, 9, {padded}}}, "padding");

  // Counts that disagree with what follows, under good CRCs.
  std::string f = HandBuild({{3, 9, {EncodeEntry(a, 1), EncodeEntry(b, 2)}}});
  std::string g = f;
  PutLe(g, 64 + 24, 1, 8);  // the section claims one entry
  PutLe(g, 64 + 44, Crc(g, 64, 44), 4);
  WriteFileBytes(path, g);
  EXPECT_EQ(ReadSnapshot(path).status.code(), StatusCode::kCorruption);
  g = f;
  PutLe(g, 28, 2, 4);  // the header claims two sections
  PutLe(g, 60, Crc(g, 0, 60), 4);
  WriteFileBytes(path, g);
  EXPECT_EQ(ReadSnapshot(path).status.code(), StatusCode::kCorruption);
  g = f;
  PutLe(g, g.size() - 40 + 16, 3, 8);  // the footer claims three entries
  PutLe(g, g.size() - 4, Crc(g, g.size() - 40, 36), 4);
  WriteFileBytes(path, g);
  EXPECT_THAT(ReadSnapshot(path).status.message(), HasSubstr("footer counts"));
}

TEST(SnapshotFile, ErrorsNameTheFileAndTheOffset) {
  TempDir dir;
  const std::string path = WriteSnapshot(dir, 1, SmallParts());
  std::string b = ReadFileBytes(path);
  b[64 + 48 + 60] = static_cast<char>(b[64 + 48 + 60] ^ 1);  // first entry
  WriteFileBytes(path, b);
  const Status s = ReadSnapshot(path).status;
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(),
              HasSubstr(path + ": corrupt snapshot at offset 112"));
  EXPECT_THAT(s.message(), HasSubstr("CRC32C"));
}

// The file changing after Open (which nobody should do) ends the reading
// with an error, never with garbage or a crash. The file is larger than the
// reader's buffer, so that the second pass has to read it again.
TEST(SnapshotFile, AFileChangedAfterOpenIsAnError) {
  TempDir dir;
  std::vector<Part> parts = SmallParts();
  parts.push_back({20, 5, {Entry(20, 3, "x", std::string(3 << 20, 'y'))}});
  const std::string path = WriteSnapshot(dir, 1, parts);
  auto r = SnapshotReader::Open(path, kGrid, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string damaged = ReadFileBytes(path);
  damaged[64 + 48 + 60] = static_cast<char>(damaged[64 + 48 + 60] ^ 1);
  WriteFileBytes(path, damaged);  // the same inode, rewritten in place
  Status s;
  for (int i = 0; i < 100 && s.ok(); ++i) {
    auto item = (*r)->Next();
    s = item.status();
    if (s.ok()) {
      ASSERT_TRUE(item->has_value());
    }
  }
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_EQ((*r)->Next().status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace numagrid::io
