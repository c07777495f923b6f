// Tests for recovery (core/recovery.h) and snapshots (core/snapshot.h): a
// grid rebuilt from its journal directory holds exactly what it held (keys,
// values, versions, expiries),
// also through snapshots and a damaged newest snapshot; recovery refuses
// what it must; a torn tail cut at any byte, or a byte flipped anywhere,
// yields a prefix of the journal's history or kCorruption, never invented
// state. Each test has its own grid (UniqueName) and journal directory
// (mkdtemp), both removed at the end.
#include "core/recovery.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/grid_names.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/snapshot.h"
#include "io/journal_record.h"
#include "io/snapshot_file.h"
#include "io/uring_probe.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::DirFiles;
using ::numagrid::testing::ForkChild;
using ::numagrid::testing::GridState;
using ::numagrid::testing::JournaledOptions;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::JournalRecord;
using ::numagrid::testing::KeysOfPartition;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadDirFiles;
using ::numagrid::testing::ReadFileBytes;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::numagrid::testing::WorkerThread;
using ::numagrid::testing::WriteDirFiles;
using ::numagrid::testing::WriteFileBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The seed of the randomized tests (tests/support/test_seed.h), printed
// once; NUMAGRID_TEST_SEED=<seed> replays a run.
std::uint32_t TestSeed() {
  return static_cast<std::uint32_t>(::numagrid::testing::TestSeed());
}

// The highest change sequence each partition has in `records`.
std::map<std::uint32_t, std::uint64_t> LastChanges(
    const std::vector<JournalRecord>& records) {
  std::map<std::uint32_t, std::uint64_t> out;
  for (const JournalRecord& r : records) {
    out[r.partition] = std::max(out[r.partition], r.change_seq);
  }
  return out;
}

class Recovery : public ::testing::Test {
 protected:
  void TearDown() override {
    grid_.reset();
    if (!name_.empty()) (void)DestroyGrid(name_);
  }

  void Create(const CreateOptions& o,
              const numa::Topology& topology = SystemTopology()) {
    name_ = UniqueName();
    auto c = CreateGrid(name_, o, topology);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Attach();
  }
  void Attach() {
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    grid_.emplace(std::move(*g));
  }

  const std::string& dir() const { return dir_.path(); }
  Grid& g() { return *grid_; }

  // Runs a worker for node 0 until every change so far is journaled.
  void JournalEverything() {
    WorkerThread w(name_);
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w.Stop().ok());
  }

  // Destroys the grid (its journal stays) and rebuilds it from dir().
  RecoveryReport DestroyAndRecover(
      const numa::Topology& topology = SystemTopology()) {
    grid_.reset();
    EXPECT_TRUE(DestroyGrid(name_).ok());
    auto r = RecoverGrid(name_, dir(), topology, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    Attach();
    return *r;
  }

  void ExpectCheckClean() {
    auto c = CheckGrid(name_, false);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_THAT(c->problems, IsEmpty());
  }

  // New writes get versions above every change the journal holds, in every
  // partition (else a later replay would skip them as duplicates).
  void ExpectNewVersionsAbove(const std::vector<JournalRecord>& records) {
    const auto last = LastChanges(records);
    const std::uint32_t n = g().partition_count();
    for (std::uint32_t p = 0; p < n; ++p) {
      const std::string k = KeysOfPartition(p, n, 1, "fresh")[0];
      auto v = g().Put(k, "new");
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      auto it = last.find(p);
      if (it != last.end()) {
        EXPECT_GT(*v, it->second) << "partition " << p;
      }
      ASSERT_TRUE(g().Remove(k).ok());
    }
  }

  // A varied workload: puts and overwrites of small and big values,
  // removes, increments, CAS, entries that never expire, expire in an
  // hour, or have expired by the time it returns.
  void Workload(std::mt19937& rng, int ops, const std::string& prefix) {
    std::vector<std::string> short_lived;
    for (int i = 0; i < ops; ++i) {
      const std::string k =
          prefix + std::to_string(std::uniform_int_distribution<>(0, 39)(rng));
      const int what = std::uniform_int_distribution<>(0, 99)(rng);
      if (what < 45) {
        ASSERT_TRUE(g().Put(k, "v" + std::to_string(i)).ok());
      } else if (what < 50) {
        const std::size_t n =
            std::uniform_int_distribution<std::size_t>(20'000, 300'000)(rng);
        ASSERT_TRUE(
            g().Put(k, std::string(n, static_cast<char>('a' + i % 26))).ok());
      } else if (what < 65) {
        Status s = g().Remove(k);
        ASSERT_TRUE(s.ok() || s.code() == StatusCode::kNotFound)
            << s.ToString();
      } else if (what < 75) {
        auto c = g().Increment(prefix + "ctr" + std::to_string(i % 3), i);
        ASSERT_TRUE(c.ok()) << c.status().ToString();
      } else if (what < 82) {
        ASSERT_TRUE(g().Put(k, "hour", {.ttl_ms = 3'600'000}).ok());
      } else if (what < 88) {
        ASSERT_TRUE(g().Put(k, "gone soon", {.ttl_ms = 1}).ok());
        short_lived.push_back(k);
      } else {
        std::string v;
        std::uint64_t version = 0;
        if (g().Get(k, &v, &version).ok()) {
          ASSERT_TRUE(
              g().CompareAndSet(k, version, "cas" + v.substr(0, 8)).ok());
        }
      }
    }
    // Wait until the short-lived entries have expired (unless overwritten).
    ASSERT_TRUE(PollUntil([&] {
      for (const std::string& k : short_lived) {
        std::string v;
        if (g().Get(k, &v).ok() && v == "gone soon") return false;
      }
      return true;
    }));
  }

  TempDir dir_;
  std::string name_;
  std::optional<Grid> grid_;
};

// --- round trips -----------------------------------------------------------

TEST_F(Recovery, RoundTripRestoresEveryEntryWithItsVersionAndExpiry) {
  CreateOptions o = JournaledOptions(dir());
  o.memory_bytes = 16ULL << 20;
  Create(o);
  std::mt19937 rng(TestSeed());
  {
    WorkerThread w(name_);
    Workload(rng, 400, "a");
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w.Stop().ok());
  }
  const GridState before = ReadGridState(name_);
  ASSERT_GT(before.size(), 10u);
  const JournalRead j = ReadJournal(dir());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();

  const RecoveryReport r = DestroyAndRecover();
  EXPECT_EQ(r.journal_records, j.records.size());
  EXPECT_EQ(r.applied_records, j.records.size());
  EXPECT_EQ(r.skipped_records, 0u);
  EXPECT_EQ(r.snapshot_entries, 0u);
  EXPECT_THAT(r.dropped, IsEmpty());
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
  ExpectNewVersionsAbove(j.records);
  // A recovered version is the one a CAS must name.
  const auto& [key, entry] = *before.begin();
  EXPECT_TRUE(g().CompareAndSet(key, entry.version, "after").ok());

  // The recovered grid journals on where the old one stopped: a second
  // round trip is as exact as the first.
  {
    WorkerThread w(name_);
    Workload(rng, 200, "b");
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w.Stop().ok());
  }
  const GridState second = ReadGridState(name_);
  const JournalRead j2 = ReadJournal(dir());
  ASSERT_TRUE(j2.status.ok()) << j2.status.ToString();
  EXPECT_GT(j2.records.size(), j.records.size());
  for (std::size_t i = 0; i < j2.records.size(); ++i) {
    ASSERT_EQ(j2.records[i].sequence, i + 1) << "journal sequence gap";
  }
  const RecoveryReport r2 = DestroyAndRecover();
  EXPECT_EQ(r2.applied_records, j2.records.size());
  EXPECT_EQ(StateDiff(second, ReadGridState(name_)), "");
  ExpectCheckClean();
}

TEST_F(Recovery, RoundTripThroughSnapshotsTakenByTheWorkerAndWithoutOne) {
  CreateOptions o = JournaledOptions(dir());
  o.memory_bytes = 16ULL << 20;
  Create(o);
  std::mt19937 rng(TestSeed() + 1);
  std::optional<WorkerThread> w;
  w.emplace(name_);
  Workload(rng, 150, "a");
  ASSERT_TRUE(g().Flush().ok());
  Workload(rng, 20, "a");  // maybe not journaled yet: the snapshot holds it
  auto s1 = SnapshotGrid(*GridHandle::Attach(name_).value(), {});
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  ASSERT_EQ(s1->size(), 1u);
  EXPECT_TRUE((*s1)[0].by_worker);
  EXPECT_GT((*s1)[0].entries, 0u);
  Workload(rng, 100, "b");
  ASSERT_TRUE(g().Flush().ok());
  ASSERT_TRUE(w->Stop().ok());
  w.reset();

  // Without a worker: changes not yet journaled are in the snapshot, and
  // journaled after it.
  Workload(rng, 60, "c");
  auto s2 = SnapshotGrid(*GridHandle::Attach(name_).value(), {});
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  ASSERT_EQ(s2->size(), 1u);
  EXPECT_FALSE((*s2)[0].by_worker);
  Workload(rng, 60, "d");
  JournalEverything();

  const GridState before = ReadGridState(name_);
  const JournalRead j = ReadJournal(dir());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  const RecoveryReport r = DestroyAndRecover();
  EXPECT_THAT(r.snapshots_used, ElementsAre((*s2)[0].path));
  EXPECT_THAT(r.snapshots_rejected, IsEmpty());
  EXPECT_GT(r.snapshot_entries, 0u);
  EXPECT_GT(r.skipped_records, 0u)
      << "the changes journaled after the snapshot that holds them";
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
  ExpectNewVersionsAbove(j.records);
}

// Recovery coalesces a node's changes to each key's last one; past
// RecoveryOptions::batch_bytes it applies them in steps, and a key removed
// after a step (in the grid by then) must be removed, not forgotten. From a
// step after every change (the history itself) to one at the end.
TEST_F(Recovery, StepsOfAnyBatchSizeGiveTheSameGrid) {
  CreateOptions o = JournaledOptions(dir());
  o.memory_bytes = 16ULL << 20;
  Create(o);
  std::mt19937 rng(TestSeed() + 7);
  {
    WorkerThread w(name_);
    Workload(rng, 400, "a");
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w.Stop().ok());
  }
  const GridState before = ReadGridState(name_);
  ASSERT_GT(before.size(), 10u);
  for (const std::uint64_t batch :
       {std::uint64_t{1}, std::uint64_t{3000}, std::uint64_t{64} << 20}) {
    SCOPED_TRACE("batch_bytes " + std::to_string(batch));
    grid_.reset();
    ASSERT_TRUE(DestroyGrid(name_).ok());
    RecoveryOptions ro;
    ro.batch_bytes = batch;
    auto r = RecoverGrid(name_, dir(), SystemTopology(), ro);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Attach();
    EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
    ExpectCheckClean();
  }
}

TEST_F(Recovery, CorruptNewestSnapshotFallsBackToTheOlderOne) {
  CreateOptions o = JournaledOptions(dir());
  Create(o);
  std::mt19937 rng(TestSeed() + 2);
  std::vector<NodeSnapshotReport> snaps;
  // Three worker runs (three journal segments), a snapshot after each: the
  // third prunes the first and the segments the second covers.
  for (int round = 0; round < 3; ++round) {
    WorkerThread w(name_);
    Workload(rng, 80, "r" + std::to_string(round));
    ASSERT_TRUE(g().Flush().ok());
    auto s = SnapshotGrid(*GridHandle::Attach(name_).value(), {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    snaps.push_back((*s)[0]);
    ASSERT_TRUE(w.Stop().ok());
  }
  Workload(rng, 80, "tail");
  JournalEverything();
  auto listed = io::ListSnapshots(dir(), 0);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u) << "the two newest are kept";
  EXPECT_EQ((*listed)[1].path, snaps[2].path);
  EXPECT_EQ((*listed)[0].path, snaps[1].path);
  const JournalRead j = ReadJournal(dir());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  ASSERT_FALSE(j.segments.empty());
  EXPECT_GT(j.segments.front().first_seq, 1u)
      << "the segments the older snapshot covers were deleted";
  EXPECT_LE(j.segments.front().first_seq, snaps[1].journal_seq + 1)
      << "the journal after the older snapshot is complete";

  // Flip one byte in the middle of the newest snapshot.
  std::string bytes = ReadFileBytes(snaps[2].path);
  ASSERT_GT(bytes.size(), 200u);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
  WriteFileBytes(snaps[2].path, bytes);

  const GridState before = ReadGridState(name_);
  const RecoveryReport r = DestroyAndRecover();
  ASSERT_EQ(r.snapshots_rejected.size(), 1u);
  EXPECT_THAT(r.snapshots_rejected[0], HasSubstr(snaps[2].path));
  EXPECT_THAT(r.snapshots_used, ElementsAre(snaps[1].path));
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
}

TEST_F(Recovery, WorkerSnapshotsByJournalSizeAndRecoveryStartsThere) {
  CreateOptions o = JournaledOptions(dir());
  o.snapshot_bytes = 8192;
  Create(o);
  {
    WorkerThread w(name_);
    for (int i = 0; i < 150; ++i) {
      ASSERT_TRUE(g().Put("k" + std::to_string(i % 40),
                          std::string(150, static_cast<char>('a' + i % 26)))
                      .ok());
      if (i % 30 == 29) {
        ASSERT_TRUE(g().Flush().ok());
      }
    }
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w.Stop().ok());
  }
  auto listed = io::ListSnapshots(dir(), 0);
  ASSERT_TRUE(listed.ok());
  ASSERT_FALSE(listed->empty())
      << "no snapshot after " << 150 * 150 / 1024 << " KiB of journal";
  EXPECT_LE(listed->size(), 2u) << "only the two newest are kept";
  const GridState before = ReadGridState(name_);
  const RecoveryReport r = DestroyAndRecover();
  EXPECT_THAT(r.snapshots_used, ElementsAre(listed->back().path));
  EXPECT_GT(r.snapshot_entries, 0u);
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
}

// What `numagrid snapshot` prints about pruning must be what happened, also
// when the node's worker took the snapshot.
TEST_F(Recovery, SnapshotByTheWorkerReportsTheJournalSegmentsItDeleted) {
  Create(JournaledOptions(dir()));
  std::uint64_t deleted = 0;
  std::uint64_t reported = 0;
  for (int round = 0; round < 3; ++round) {
    WorkerThread w(name_);
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(g().Put("k" + std::to_string(i), std::to_string(round)).ok());
    }
    ASSERT_TRUE(g().Flush().ok());
    const std::size_t before = ReadJournal(dir()).segments.size();
    auto s = SnapshotGrid(*GridHandle::Attach(name_).value(), {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    const std::size_t after = ReadJournal(dir()).segments.size();
    EXPECT_TRUE((*s)[0].by_worker);
    EXPECT_EQ((*s)[0].segments_deleted, before - after) << "round " << round;
    deleted += before - after;
    reported += (*s)[0].segments_deleted;
    ASSERT_TRUE(w.Stop().ok());
  }
  EXPECT_GE(deleted, 1u) << "the test must make the worker prune";
  EXPECT_EQ(reported, deleted);
}

TEST_F(Recovery, RoundTripOfATwoNodeGridJournalsEachNodeApart) {
  auto topo = numa::Topology::FromSynthetic("pack:2 numa:1 core:2 pu:1");
  ASSERT_TRUE(topo.ok()) << topo.status().ToString();
  CreateOptions o = JournaledOptions(dir());
  o.partitions = 6;
  Create(o, *topo);
  std::mt19937 rng(TestSeed() + 3);
  {
    JournalWorkerOptions n1;
    n1.node = 1;
    WorkerThread w0(name_);
    WorkerThread w1(name_, n1);
    Workload(rng, 200, "a");
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w0.Stop().ok());
    ASSERT_TRUE(w1.Stop().ok());
  }
  auto h = GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok());
  std::uint64_t records = 0;
  for (std::uint32_t node = 0; node < 2; ++node) {
    const JournalRead j = ReadJournal(dir(), node);
    ASSERT_TRUE(j.status.ok()) << j.status.ToString();
    EXPECT_FALSE(j.records.empty());
    for (const JournalRecord& r : j.records) {
      EXPECT_EQ((*h)->node_of(r.partition), node)
          << "partition " << r.partition << " in node " << node << "'s journal";
    }
    records += j.records.size();
  }
  h->reset();
  const GridState before = ReadGridState(name_);
  grid_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  if (SystemTopology().node_count() != 2) {
    auto wrong = RecoverGrid(name_, dir(), SystemTopology(), {});
    EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument)
        << wrong.status().ToString();
    EXPECT_EQ(GridHandle::Attach(name_).status().code(), StatusCode::kNotFound);
  }
  auto r = RecoverGrid(name_, dir(), *topo, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Attach();
  EXPECT_EQ(r->applied_records, records);
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
}

// --- refusals --------------------------------------------------------------

TEST_F(Recovery, RefusesAnExistingGridAnotherGridsJournalAndNoManifest) {
  Create(JournaledOptions(dir()));
  ASSERT_TRUE(g().Put("k", "v").ok());
  JournalEverything();
  const GridState before = ReadGridState(name_);

  auto exists = RecoverGrid(name_, dir(), SystemTopology(), {});
  EXPECT_EQ(exists.status().code(), StatusCode::kAlreadyExists)
      << exists.status().ToString();
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "")
      << "the refused recover touched the grid";

  const std::string other = UniqueName();
  auto foreign = RecoverGrid(other, dir(), SystemTopology(), {});
  EXPECT_EQ(foreign.status().code(), StatusCode::kInvalidArgument)
      << foreign.status().ToString();
  EXPECT_THAT(foreign.status().message(), HasSubstr(name_));
  EXPECT_EQ(GridHandle::Attach(other).status().code(), StatusCode::kNotFound);

  TempDir empty;
  auto none = RecoverGrid(other, empty.path(), SystemTopology(), {});
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound)
      << none.status().ToString();
  auto missing =
      RecoverGrid(other, empty.path() + "/nowhere", SystemTopology(), {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound)
      << missing.status().ToString();
  EXPECT_EQ(GridHandle::Attach(other).status().code(), StatusCode::kNotFound);
}

TEST_F(Recovery, GridMarkedRecoveringRefusesAttachUntilARecoverReplacesIt) {
  Create(JournaledOptions(dir()));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(g().Put("k" + std::to_string(i), "v").ok());
  }
  JournalEverything();
  const GridState before = ReadGridState(name_);
  grid_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());

  // What a recover killed half-way leaves: the grid, marked as recovering.
  auto manifest = ReadManifest(dir());
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  CreateOptions co = OptionsFromManifest(*manifest, dir());
  co.recovering = true;
  ASSERT_TRUE(CreateGrid(name_, co, SystemTopology()).ok());
  EXPECT_EQ(GridHandle::Attach(name_).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(Grid::Attach(name_).status().code(), StatusCode::kUnavailable);
  auto info = InspectGrid(name_, nullptr);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->recovering);

  // Its recoverer (this process) is alive: another recover must not run.
  auto busy = RecoverGrid(name_, dir(), SystemTopology(), {});
  EXPECT_EQ(busy.status().code(), StatusCode::kUnavailable)
      << busy.status().ToString();

  // Once the recoverer is dead, the next recover starts over.
  const pid_t dead = ForkChild([] { return 0; });
  ASSERT_EQ(WaitChild(dead), 0);
  {
    auto h = GridHandle::Attach(name_, /*allow_recovering=*/true);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    (*h)->journal().recovery_pid = static_cast<std::uint32_t>(dead);
  }
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Attach();
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
}

TEST_F(Recovery, LeftoverSegmentsWithoutAControlSegmentAreReplaced) {
  Create(JournaledOptions(dir()));
  ASSERT_TRUE(g().Put("k", "v").ok());
  JournalEverything();
  const GridState before = ReadGridState(name_);
  grid_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  // A create or recover that died before publishing: data segments only.
  auto manifest = ReadManifest(dir());
  ASSERT_TRUE(manifest.ok());
  CreateOptions co = OptionsFromManifest(*manifest, dir());
  co.recovering = true;
  ASSERT_TRUE(CreateGrid(name_, co, SystemTopology()).ok());
  ASSERT_EQ(unlink(("/dev/shm/" + ControlSegmentName(name_)).c_str()), 0);
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Attach();
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
  ExpectCheckClean();
}

// A journal directory moved to a path longer than the grid's configuration
// can hold: recovery must refuse it or keep the whole path, never journal
// somewhere else.
TEST_F(Recovery, JournalDirectoryWithALongPathIsKeptWholeOrRefused) {
  Create(JournaledOptions(dir()));
  ASSERT_TRUE(g().Put("k", "v").ok());
  JournalEverything();
  grid_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  std::string deep = dir();
  while (deep.size() < 300) {
    deep += "/" + std::string(40, 'd');
    ASSERT_EQ(mkdir(deep.c_str(), 0700), 0) << deep;
  }
  for (const auto& [file, bytes] : ReadDirFiles(dir())) {
    WriteFileBytes(deep + "/" + file, bytes);
  }
  auto r = RecoverGrid(name_, deep, SystemTopology(), {});
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument)
        << r.status().ToString();
    return;
  }
  auto info = InspectGrid(name_, nullptr);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->journal_dir, deep)
      << "the recovered grid would journal into another directory";
}

// --- a torn tail -----------------------------------------------------------

// Builds a journal whose last record overwrites an existing key, and
// returns it (the grid is destroyed; dir() keeps the journal).
struct TornFixture {
  std::vector<JournalRecord> records;
  std::string last_segment;
  std::string segment_bytes;      // the last segment as written
  std::uint64_t last_offset = 0;  // where its last record starts
};

class RecoveryTail : public Recovery {
 protected:
  TornFixture BuildJournal() {
    TornFixture f;
    CreateOptions o = JournaledOptions(dir());
    o.memory_bytes = 2ULL << 20;
    Create(o);
    {
      WorkerThread w(name_);
      for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(g().Put("k" + std::to_string(i), "first").ok());
      }
      EXPECT_TRUE(g().Remove("k3").ok());
      EXPECT_TRUE(g().Flush().ok());
      EXPECT_TRUE(w.Stop().ok());
    }
    {
      // A second worker run: the last record shares its segment with
      // others, and earlier segments exist.
      WorkerThread w(name_);
      EXPECT_TRUE(g().Put("k5", "second").ok());
      EXPECT_TRUE(g().Remove("k6").ok());
      EXPECT_TRUE(g().Put("k7", "the last record, to be torn").ok());
      EXPECT_TRUE(g().Flush().ok());
      EXPECT_TRUE(w.Stop().ok());
    }
    const JournalRead j = ReadJournal(dir());
    EXPECT_TRUE(j.status.ok()) << j.status.ToString();
    EXPECT_GE(j.segments.size(), 2u);
    f.records = j.records;
    f.last_segment = j.segments.back().path;
    f.segment_bytes = ReadFileBytes(f.last_segment);
    const JournalRecord& last = j.records.back();
    f.last_offset = f.segment_bytes.size() -
                    io::EncodedRecordBytes(last.key.size(), last.value.size());
    EXPECT_GT(f.last_offset, io::kSegmentHeaderBytes);
    grid_.reset();
    EXPECT_TRUE(DestroyGrid(name_).ok());
    return f;
  }
};

TEST_F(RecoveryTail, CutAtEveryByteOfTheLastRecordRecoversTheStateBeforeIt) {
  const TornFixture f = BuildJournal();
  ASSERT_FALSE(HasFailure());
  const std::vector<JournalRecord> without_last(f.records.begin(),
                                                f.records.end() - 1);
  const GridState before_last = ModelOf(without_last);
  const GridState full = ModelOf(f.records);
  ASSERT_NE(StateDiff(before_last, full), "") << "the last record matters";
  const std::uint64_t size = f.segment_bytes.size();

  for (std::uint64_t cut = f.last_offset; cut <= size; ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " +
                 std::to_string(size));
    WriteFileBytes(f.last_segment,
                   std::string_view(f.segment_bytes).substr(0, cut));
    auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const GridState got = ReadGridState(name_);
    if (cut == size) {
      EXPECT_THAT(r->dropped, IsEmpty());
      EXPECT_EQ(StateDiff(full, got), "");
    } else if (cut == f.last_offset) {
      EXPECT_THAT(r->dropped, IsEmpty()) << "a clean end";
      EXPECT_EQ(StateDiff(before_last, got), "");
    } else {
      ASSERT_EQ(r->dropped.size(), 1u);
      const DroppedTailReport& d = r->dropped[0];
      EXPECT_EQ(d.node, 0u);
      EXPECT_FALSE(d.kind.empty());
      EXPECT_EQ(d.file, f.last_segment);
      EXPECT_EQ(d.offset, f.last_offset);
      EXPECT_EQ(d.bytes, cut - f.last_offset);
      EXPECT_EQ(d.last_good_seq, f.records.back().sequence - 1);
      EXPECT_EQ(StateDiff(before_last, got), "");
      EXPECT_EQ(ReadFileBytes(f.last_segment).size(), f.last_offset)
          << "recovery cuts the torn tail off";
    }
    EXPECT_EQ(r->journal_records,
              cut == size ? f.records.size() : f.records.size() - 1);
    ASSERT_TRUE(DestroyGrid(name_).ok());
  }
}

TEST_F(RecoveryTail, AWorkerOfTheRecoveredGridContinuesAfterTheCut) {
  const TornFixture f = BuildJournal();
  ASSERT_FALSE(HasFailure());
  const std::uint64_t cut = f.last_offset + 13;
  WriteFileBytes(f.last_segment,
                 std::string_view(f.segment_bytes).substr(0, cut));
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Attach();
  ASSERT_TRUE(g().Put("k7", "rewritten after the cut").ok());
  ASSERT_TRUE(g().Put("new", "n").ok());
  JournalEverything();
  const JournalRead j = ReadJournal(dir());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  EXPECT_EQ(j.tail.kind, io::TailKind::kNone);
  ASSERT_EQ(j.records.size(), f.records.size() + 1);
  for (std::size_t i = 0; i < j.records.size(); ++i) {
    EXPECT_EQ(j.records[i].sequence, i + 1);
  }
  const GridState before = ReadGridState(name_);
  EXPECT_EQ(StateDiff(ModelOf(j.records), before), "");
  DestroyAndRecover();
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
}

// RecoveryReport::kind is documented (core/recovery.h) as one of
// "torn_record", "corrupt_record", "torn_header": identifiers that the
// `recover --json` output hands to scripts.
TEST_F(RecoveryTail, DroppedTailKindIsADocumentedIdentifier) {
  const TornFixture f = BuildJournal();
  ASSERT_FALSE(HasFailure());
  WriteFileBytes(
      f.last_segment,
      std::string_view(f.segment_bytes).substr(0, f.last_offset + 9));
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->dropped.size(), 1u);
  EXPECT_EQ(r->dropped[0].kind, "torn_record");
}

// --- damage anywhere -------------------------------------------------------

TEST_F(RecoveryTail, FlippedBytesGiveAPrefixOfTheHistoryOrCorruption) {
  CreateOptions o = JournaledOptions(dir());
  o.memory_bytes = 4ULL << 20;
  Create(o);
  for (int round = 0; round < 3; ++round) {
    WorkerThread w(name_);
    for (int i = 0; i < 12; ++i) {
      const std::string k = "k" + std::to_string((round * 7 + i) % 15);
      if (i % 5 == 4) {
        (void)g().Remove(k);
      } else {
        ASSERT_TRUE(
            g().Put(k, "r" + std::to_string(round) + "v" + std::to_string(i))
                .ok());
      }
    }
    ASSERT_TRUE(g().Flush().ok());
    ASSERT_TRUE(w.Stop().ok());
  }
  const JournalRead j = ReadJournal(dir());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  ASSERT_EQ(j.segments.size(), 3u);
  grid_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  const DirFiles original = ReadDirFiles(dir());
  const std::string last_segment = j.segments.back().path;
  const JournalRecord& last = j.records.back();
  const std::uint64_t last_record_bytes =
      io::EncodedRecordBytes(last.key.size(), last.value.size());

  std::mt19937 rng(TestSeed() + 4);
  int ok_trials = 0;
  int corrupt_trials = 0;
  for (int trial = 0; trial < 60; ++trial) {
    WriteDirFiles(dir(), original);
    // A quarter of the flips go into the last record, where damage is a
    // tail; the rest anywhere in any segment.
    const io::SegmentFile& seg =
        trial % 4 == 0 ? j.segments.back()
                       : j.segments[std::uniform_int_distribution<std::size_t>(
                             0, j.segments.size() - 1)(rng)];
    const std::string name = seg.path.substr(seg.path.rfind('/') + 1);
    std::string bytes = original.at(name);
    const std::uint64_t from =
        trial % 4 == 0 ? bytes.size() - last_record_bytes : 0;
    const std::uint64_t at = std::uniform_int_distribution<std::uint64_t>(
        from, bytes.size() - 1)(rng);
    const int mask = std::uniform_int_distribution<int>(1, 255)(rng);
    bytes[at] = static_cast<char>(bytes[at] ^ mask);
    WriteFileBytes(seg.path, bytes);
    SCOPED_TRACE("trial " + std::to_string(trial) + ": byte " +
                 std::to_string(at) + " of " + name + " ^ " +
                 std::to_string(mask));

    auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
    if (!r.ok()) {
      ++corrupt_trials;
      const bool version_field = at >= 8 && at < 12;  // segment header
      if (version_field) {
        EXPECT_TRUE(r.status().code() == StatusCode::kVersionMismatch ||
                    r.status().code() == StatusCode::kCorruption)
            << r.status().ToString();
      } else {
        EXPECT_EQ(r.status().code(), StatusCode::kCorruption)
            << r.status().ToString();
      }
      EXPECT_EQ(GridHandle::Attach(name_).status().code(),
                StatusCode::kNotFound)
          << "a failed recover leaves no grid behind";
      continue;
    }
    ++ok_trials;
    std::uint64_t upto = j.records.back().sequence;
    if (r->dropped.empty()) {
      ADD_FAILURE() << "a flipped byte went unnoticed";
    } else {
      EXPECT_EQ(r->dropped.size(), 1u);
      EXPECT_EQ(r->dropped[0].file, last_segment)
          << "only the last segment has a tail";
      EXPECT_LE(r->dropped[0].offset, at);
      upto = r->dropped[0].last_good_seq;
    }
    std::vector<JournalRecord> prefix;
    for (const JournalRecord& rec : j.records) {
      if (rec.sequence <= upto) prefix.push_back(rec);
    }
    EXPECT_EQ(StateDiff(ModelOf(prefix), ReadGridState(name_)), "");
    ASSERT_TRUE(DestroyGrid(name_).ok());
  }
  std::printf("[ flips    ] %d recovered a prefix, %d refused\n", ok_trials,
              corrupt_trials);
  EXPECT_GT(ok_trials, 0);
  EXPECT_GT(corrupt_trials, 0);
}

}  // namespace
}  // namespace numagrid::core
