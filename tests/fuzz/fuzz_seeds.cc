// numagrid_fuzz_seeds: writes the seed corpora of the fuzz targets, made by
// the real writers so that they follow the formats exactly, and creates the
// targets' working corpus directories. A separate program because a
// libFuzzer binary's main() belongs to libFuzzer.
//
//   numagrid_fuzz_seeds <seed_root> <corpus_root>
//
// writes <seed_root>/journal_record_fuzz/* and <seed_root>/snapshot_fuzz/*
// (replacing what was there) and creates <corpus_root>/<target>/.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/journal_writer.h"
#include "io/snapshot_file.h"
#include "tests/io/fault_journal_device.h"
#include "tests/io/journal_test_util.h"

namespace numagrid::fuzz {
namespace {

namespace fs = std::filesystem;
using io::testing::OwnedRecord;

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "numagrid_fuzz_seeds: %s: %s\n", what,
                 s.ToString().c_str());
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): one thread
  }
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Put(const fs::path& dir, const std::string& name,
         const std::string& bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "numagrid_fuzz_seeds: cannot write %s\n",
                 (dir / name).c_str());
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): one thread
  }
}

OwnedRecord Record(std::uint64_t i, io::RecordOp op, std::size_t value_bytes) {
  OwnedRecord r;
  r.partition_id = static_cast<std::uint32_t>(i % 5);
  r.op = op;
  r.change_seq = i * 2;
  r.version = i * 2;
  r.expiry_ms = i % 3 == 0 ? 1700000000000ULL + i : 0;
  r.key = "key-" + std::to_string(i);
  if (op == io::RecordOp::kPut) {
    r.value.assign(value_bytes, static_cast<char>('a' + i % 26));
  }
  return r;
}

// The concatenated segment files of one node-0 journal of `records`.
std::string Journal(const std::vector<OwnedRecord>& records,
                    std::uint64_t segment_bytes, std::uint64_t first_seq) {
  io::testing::TempDir dir;
  io::testing::FaultJournalDevice dev;
  io::JournalWriterOptions o;
  o.dir = dir.path();
  o.grid_id = 11;
  o.first_seq = first_seq;
  o.segment_bytes = segment_bytes;
  auto w = io::JournalWriter::Open(o, &dev);
  Check(w.status(), "opening a journal writer");
  for (const OwnedRecord& r : records) {
    Check((*w)->Append(r.view()).status(), "appending");
  }
  Check((*w)->Close(), "closing the journal");
  std::string out;
  for (const std::string& p : io::testing::SegmentPaths(dir.path())) {
    out += Slurp(p);
  }
  return out;
}

struct Section {
  std::uint32_t id;
  std::uint64_t covered_seq;
  std::vector<OwnedRecord> entries;
};

std::string Snapshot(const std::vector<Section>& sections, std::uint32_t node,
                     std::uint64_t journal_seq) {
  io::testing::TempDir dir;
  io::SnapshotWriterOptions o;
  o.dir = dir.path();
  o.grid_id = 11;
  o.node_id = node;
  o.journal_seq = journal_seq;
  auto w = io::SnapshotWriter::Create(o);
  Check(w.status(), "creating a snapshot");
  for (const Section& s : sections) {
    Check((*w)->BeginPartition(s.id, s.covered_seq), "BeginPartition");
    for (OwnedRecord e : s.entries) {
      e.partition_id = s.id;
      Check((*w)->Add(e.view()), "Add");
    }
    Check((*w)->EndPartition(), "EndPartition");
  }
  Check((*w)->Commit(), "Commit");
  return Slurp((*w)->path());
}

void WriteJournalSeeds(const fs::path& dir) {
  using io::RecordOp;
  const std::vector<OwnedRecord> mixed = {
      Record(1, RecordOp::kPut, 10),   Record(2, RecordOp::kPut, 0),
      Record(3, RecordOp::kRemove, 0), Record(4, RecordOp::kExpire, 0),
      Record(5, RecordOp::kEvict, 0),  Record(6, RecordOp::kPut, 33),
  };
  const std::string one = Journal(mixed, 64ULL << 20, 1);
  Put(dir, "one-segment", one);
  Put(dir, "torn-tail", one.substr(0, one.size() - 21));
  Put(dir, "zero-tail", one + std::string(64, '\0'));
  Put(dir, "header-only", one.substr(0, io::kSegmentHeaderBytes));
  Put(dir, "bare-record", one.substr(io::kSegmentHeaderBytes, 72));
  Put(dir, "late-start", Journal(mixed, 64ULL << 20, 1000000007));
  // Three segments of the minimum size, concatenated: the target splits
  // them again at their headers.
  std::vector<OwnedRecord> many;
  for (std::uint64_t i = 1; i <= 24; ++i) {
    many.push_back(Record(i, RecordOp::kPut, 300));
  }
  Put(dir, "three-segments", Journal(many, 4096, 5));
}

void WriteSnapshotSeeds(const fs::path& dir) {
  using io::RecordOp;
  Put(dir, "empty", Snapshot({}, 0, 0));
  Put(dir, "three-partitions",
      Snapshot({{2,
                 17,
                 {Record(1, RecordOp::kPut, 5), Record(2, RecordOp::kPut, 0)}},
                {3, 0, {}},
                {9, 40, {Record(3, RecordOp::kPut, 20)}}},
               0, 12));
  Put(dir, "node-3", Snapshot({{0, 1, {Record(7, RecordOp::kPut, 1)}}}, 3, 99));
  Put(dir, "larger-value",
      Snapshot({{1, 5, {Record(4, RecordOp::kPut, 2000)}}, {2, 6, {}}}, 0, 7));
}

int Main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <seed_root> <corpus_root>\n", argv[0]);
    return 2;
  }
  const fs::path seeds = argv[1];
  const fs::path corpus = argv[2];
  for (const char* target : {"journal_record_fuzz", "snapshot_fuzz"}) {
    fs::remove_all(seeds / target);
    fs::create_directories(seeds / target);
    fs::create_directories(corpus / target);
  }
  WriteJournalSeeds(seeds / "journal_record_fuzz");
  WriteSnapshotSeeds(seeds / "snapshot_fuzz");
  return 0;
}

}  // namespace
}  // namespace numagrid::fuzz

int main(int argc, char** argv) { return numagrid::fuzz::Main(argc, argv); }
