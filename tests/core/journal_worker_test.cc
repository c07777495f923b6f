// Tests for the journal worker (core/journal_worker.h) and the durability
// that writers get from it (GridHandle::WaitDurable, Grid::Flush, sync
// writes): every acknowledged change ends up in the node's journal exactly
// as made, in change order per partition; nothing is marked journaled before
// it is durable; a full ring pushes back instead of dropping; one worker per
// node; I/O errors are retried without loss; a worker that died between
// flushing and marking is harmless. Each test has its own grid (UniqueName)
// and journal directory (mkdtemp), both removed at the end. Workers run
// in-process on a thread of their own (tests/support/journal_grid.h).
#include "core/journal_worker.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/event_log.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/recovery.h"
#include "io/journal_writer.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "tests/io/fault_journal_device.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::io::testing::FaultJournalDevice;
using ::numagrid::io::testing::FaultOp;
using ::numagrid::testing::AllJournaled;
using ::numagrid::testing::GridState;
using ::numagrid::testing::JournaledOptions;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::JournalRecord;
using ::numagrid::testing::KeysOfPartition;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WorkerThread;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Counter(std::int64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// A change a test made and expects in the journal.
struct Expected {
  std::uint32_t partition = 0;
  io::RecordOp op = io::RecordOp::kPut;
  std::string key;
  std::string value;
  std::uint64_t version = 0;    // 0: not known to the writer (removes,
                                // increments): the change sequence then
  std::uint64_t expiry_lo = 0;  // the record's expiry lies in [lo, hi]
  std::uint64_t expiry_hi = 0;
};

class JournalWorker : public ::testing::Test {
 protected:
  void TearDown() override {
    grid_.reset();
    h_.reset();
    if (!name_.empty()) (void)DestroyGrid(name_);
  }

  // Creates the test's grid with `o` (journal in the test's directory unless
  // `o` says otherwise), attaches grid_ for writes and h_ to look inside.
  void Create(CreateOptions o) {
    name_ = UniqueName();
    auto c = CreateGrid(name_, o, SystemTopology());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    grid_.emplace(std::move(*g));
    auto h = GridHandle::Attach(name_);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    h_ = std::move(*h);
  }

  const std::string& dir() const { return dir_.path(); }
  Grid& g() { return *grid_; }
  const PartitionState& state(std::uint32_t p) {
    return h_->partition(p).state();
  }
  std::uint64_t AppendAsADeadWorker(bool publish);
  std::uint64_t journaled(std::uint32_t p) {
    return state(p).journaled_seq.load(std::memory_order_acquire);
  }
  std::uint64_t next(std::uint32_t p) {
    return state(p).next_seq.load(std::memory_order_acquire);
  }
  JournalNodeState& node() { return h_->journal_node(0); }

  std::string ValueOf(std::string_view key) {
    std::string v;
    Status s = g().Get(key, &v);
    return s.ok() ? v : "<" + std::string(StatusCodeName(s.code())) + ">";
  }

  // Put through the public API, remembered in expected_.
  void Put(const std::string& key, const std::string& value,
           std::uint64_t ttl_ms = 0) {
    const std::uint64_t before = NowMs();
    auto v = g().Put(key, value, {.ttl_ms = ttl_ms});
    const std::uint64_t after = NowMs();
    ASSERT_TRUE(v.ok()) << key << ": " << v.status().ToString();
    Expected e{g().PartitionOfKey(key), io::RecordOp::kPut, key, value, *v};
    if (ttl_ms != 0) {
      e.expiry_lo = before + ttl_ms;
      e.expiry_hi = after + ttl_ms;
    }
    expected_.push_back(e);
  }
  void Remove(const std::string& key) {
    Status s = g().Remove(key);
    ASSERT_TRUE(s.ok()) << key << ": " << s.ToString();
    expected_.push_back(
        {g().PartitionOfKey(key), io::RecordOp::kRemove, key, "", 0});
  }

  // The journal must hold exactly expected_: per partition in the order
  // made, with consecutive change sequences, and journal sequences 1..N
  // without a gap. Returns what was read.
  JournalRead ExpectJournalHoldsExactlyTheChanges() {
    JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
    EXPECT_TRUE(j.status.ok()) << j.status.ToString();
    EXPECT_EQ(j.tail.kind, io::TailKind::kNone) << j.tail.ToString();
    EXPECT_EQ(j.records.size(), expected_.size());
    for (std::size_t i = 0; i < j.records.size(); ++i) {
      EXPECT_EQ(j.records[i].sequence, j.records[0].sequence + i)
          << "journal sequence gap at record " << i;
    }
    std::map<std::uint32_t, std::vector<const JournalRecord*>> got;
    for (const JournalRecord& r : j.records) got[r.partition].push_back(&r);
    std::map<std::uint32_t, std::vector<const Expected*>> want;
    for (const Expected& e : expected_) want[e.partition].push_back(&e);
    for (auto& [p, recs] : want) {
      const auto& have = got[p];
      EXPECT_EQ(have.size(), recs.size()) << "partition " << p;
      for (std::size_t i = 0; i < std::min(have.size(), recs.size()); ++i) {
        const JournalRecord& r = *have[i];
        const Expected& e = *recs[i];
        SCOPED_TRACE("partition " + std::to_string(p) + ", change " +
                     std::to_string(i) + " (key '" + e.key + "')");
        if (i > 0) {
          EXPECT_EQ(r.change_seq, have[i - 1]->change_seq + 1);
        }
        EXPECT_EQ(r.op, e.op);
        EXPECT_EQ(r.key, e.key);
        EXPECT_EQ(r.value, e.value);
        EXPECT_EQ(r.version, e.version != 0 ? e.version : r.change_seq);
        EXPECT_EQ(r.change_seq, r.version)
            << "a change's sequence is its new version";
        if (e.expiry_hi != 0) {
          EXPECT_GE(r.expiry_ms, e.expiry_lo);
          EXPECT_LE(r.expiry_ms, e.expiry_hi);
        } else {
          EXPECT_EQ(r.expiry_ms, 0u);
        }
      }
    }
    for (auto& [p, recs] : got) {
      EXPECT_EQ(want.count(p), 1u) << "records of untouched partition " << p;
    }
    return j;
  }

  TempDir dir_;
  std::string name_;
  std::optional<Grid> grid_;
  std::unique_ptr<GridHandle> h_;
  std::vector<Expected> expected_;
};

// --- async -----------------------------------------------------------------

TEST_F(JournalWorker, AsyncChangesAreJournaledExactlyAsMadeInChangeOrder) {
  Create(JournaledOptions(dir()));
  WorkerThread worker(name_);
  for (int i = 0; i < 40; ++i) {
    Put("key" + std::to_string(i), "value " + std::to_string(i));
  }
  for (int i = 0; i < 40; i += 4) {
    auto v = g().Replace("key" + std::to_string(i), "replaced");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    const std::string k = "key" + std::to_string(i);
    expected_.push_back(
        {g().PartitionOfKey(k), io::RecordOp::kPut, k, "replaced", *v});
  }
  for (int i = 1; i < 40; i += 4) Remove("key" + std::to_string(i));
  // Refused writes change nothing and are not journaled.
  EXPECT_EQ(g().Remove("key1").code(), StatusCode::kNotFound);
  EXPECT_EQ(g().Insert("key2", "x").status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(g().Replace("absent", "x").status().code(), StatusCode::kNotFound);
  for (int i = 1; i <= 5; ++i) {
    auto c = g().Increment("counter", 3);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_EQ(*c, 3 * i);
    expected_.push_back({g().PartitionOfKey("counter"), io::RecordOp::kPut,
                         "counter", Counter(3 * i), 0});
  }
  for (int i = 0; i < 8; ++i) {
    Put("ttl" + std::to_string(i), "expires later", 3'600'000);
  }
  {
    std::uint64_t version = 0;
    std::string v;
    ASSERT_TRUE(g().Get("key2", &v, &version).ok());
    auto cas = g().CompareAndSet("key2", version, "cas");
    ASSERT_TRUE(cas.ok()) << cas.status().ToString();
    expected_.push_back(
        {g().PartitionOfKey("key2"), io::RecordOp::kPut, "key2", "cas", *cas});
  }
  Put("big", std::string(200'000, 'b'));
  Put(std::string("bin\0key", 7), std::string("\0\xff\x01", 3));

  ASSERT_TRUE(worker.Stop().ok());
  for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
    EXPECT_EQ(journaled(p), next(p)) << "partition " << p;
  }
  const JournalRead j = ExpectJournalHoldsExactlyTheChanges();
  EXPECT_EQ(node().records.load(), expected_.size());
  EXPECT_EQ(node().durable_journal_seq.load(),
            j.records.empty() ? 0 : j.records.back().sequence);
  EXPECT_EQ(node().worker_state.load(), kWorkerStopped);
  EXPECT_EQ(node().worker_pid.load(), static_cast<std::uint64_t>(getpid()));
  EXPECT_GE(node().flushes.load(), 1u);
  EXPECT_EQ(node().io_errors.load(), 0u);
  // And the journal describes what the grid holds.
  EXPECT_EQ(StateDiff(ModelOf(j.records), ReadGridState(name_)), "");
}

TEST_F(JournalWorker, SmallBatchesStillJournalEverythingInOrder) {
  Create(JournaledOptions(dir()));
  for (int i = 0; i < 300; ++i) {
    Put("k" + std::to_string(i % 50), std::string(100 + i, 'a' + i % 26));
  }
  JournalWorkerOptions o;
  o.max_batch_bytes = 2048;  // a few records per flush
  WorkerThread worker(name_, o);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  ASSERT_TRUE(worker.Stop().ok());
  EXPECT_GE(node().flushes.load(), 10u) << "the batch limit split the work";
  ExpectJournalHoldsExactlyTheChanges();
}

TEST_F(JournalWorker, StopDrainsWhatWasWrittenJustBefore) {
  CreateOptions o = JournaledOptions(dir());
  o.flush_interval_us = 10'000'000;  // no timely flush without the stop
  Create(o);
  WorkerThread worker(name_);
  for (int i = 0; i < 30; ++i) Put("k" + std::to_string(i), "v");
  ASSERT_TRUE(worker.Stop().ok());
  EXPECT_TRUE(AllJournaled(*h_));
  ExpectJournalHoldsExactlyTheChanges();
}

TEST_F(JournalWorker, RefusesAGridWithoutJournalAndANodeItDoesNotHave) {
  CreateOptions o = JournaledOptions("");
  o.journal_dir.clear();
  Create(o);
  std::atomic<bool> stop{true};
  JournalWorkerOptions wo;
  wo.stop = &stop;
  Status s = RunJournalWorker(*h_, wo);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("no journal"));
  TearDown();

  Create(JournaledOptions(dir()));
  wo.node = h_->config().node_count;
  s = RunJournalWorker(*h_, wo);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

TEST_F(JournalWorker, ConcurrentWritersAreJournaledInEachPartitionsOrder) {
  CreateOptions o = JournaledOptions(dir());
  o.ring_capacity = 64;  // the worker must keep up, or writers wait
  Create(o);
  WorkerThread worker(name_);
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto g = Grid::Attach(name_);
      if (!g.ok()) {
        ++failures;
        return;
      }
      const WriteOptions sync{.durability = Durability::kSync};
      for (int i = 0; i < 150; ++i) {
        // Shared keys: the journal must keep the order the grid saw.
        const std::string k = "shared" + std::to_string(i % 10);
        const bool use_sync = i % 10 == 0;
        auto v = g->Put(k, "t" + std::to_string(t) + "i" + std::to_string(i),
                        use_sync ? sync : WriteOptions{});
        if (!v.ok()) {
          ++failures;
          continue;
        }
        if (use_sync && journaled(g->PartitionOfKey(k)) <= *v) ++failures;
        if (i % 7 == 0) (void)g->Remove("shared" + std::to_string(t));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(g().Flush().ok());
  ASSERT_TRUE(worker.Stop().ok());
  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  std::map<std::uint32_t, std::uint64_t> last;
  for (const JournalRecord& r : j.records) {
    auto it = last.find(r.partition);
    if (it != last.end()) {
      EXPECT_EQ(r.change_seq, it->second + 1) << "partition " << r.partition;
    }
    last[r.partition] = r.change_seq;
  }
  for (const auto& [p, seq] : last) EXPECT_EQ(seq + 1, next(p));
  EXPECT_EQ(StateDiff(ModelOf(j.records), ReadGridState(name_)), "");
}

// --- sync durability -------------------------------------------------------

TEST_F(JournalWorker, SyncGridWriteIsInTheJournalWhenItReturns) {
  CreateOptions o = JournaledOptions(dir());
  o.durability = kDurabilitySync;
  // Only a writer's wake-up can make a change durable in time.
  o.flush_interval_us = 10'000'000;
  Create(o);
  WorkerThread worker(name_);
  for (int i = 0; i < 12; ++i) {
    const std::string k = "sync" + std::to_string(i);
    auto v = g().Put(k, "value");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    const std::uint32_t p = g().PartitionOfKey(k);
    EXPECT_GT(journaled(p), *v) << k << " returned before it was durable";
    // Durable means: in the journal file already.
    const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
    ASSERT_TRUE(j.status.ok()) << j.status.ToString();
    EXPECT_TRUE(std::any_of(j.records.begin(), j.records.end(),
                            [&](const JournalRecord& r) {
                              return r.partition == p && r.change_seq == *v &&
                                     r.key == k;
                            }))
        << k << " (version " << *v << ") is not in the journal";
  }
  ASSERT_TRUE(g().Remove("sync3").ok());
  EXPECT_EQ(journaled(g().PartitionOfKey("sync3")),
            next(g().PartitionOfKey("sync3")));
  ASSERT_TRUE(g().Increment("ctr", 2).ok());
  EXPECT_EQ(journaled(g().PartitionOfKey("ctr")),
            next(g().PartitionOfKey("ctr")));
  ASSERT_TRUE(worker.Stop().ok());
}

TEST_F(JournalWorker, SyncWriteOnAnAsyncGridIsDurableOnReturnAndFlushDrains) {
  CreateOptions o = JournaledOptions(dir());
  o.flush_interval_us = 10'000'000;
  Create(o);
  WorkerThread worker(name_);
  const WriteOptions sync{.durability = Durability::kSync};
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(g().Put("async" + std::to_string(i), "a").ok());
    const std::string k = "sync" + std::to_string(i);
    auto v = g().Put(k, "s", sync);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_GT(journaled(g().PartitionOfKey(k)), *v);
  }
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(g().Put("more" + std::to_string(i), "m").ok());
  }
  ASSERT_TRUE(g().Flush().ok());
  EXPECT_TRUE(AllJournaled(*h_)) << "Flush returned before every change was "
                                    "durable";
  ASSERT_TRUE(worker.Stop().ok());
}

TEST_F(JournalWorker, SyncWriteWithoutAWorkerFailsUnavailableButStaysVisible) {
  CreateOptions o = JournaledOptions(dir());
  o.durability = kDurabilitySync;
  o.sync_wait_ms = 150;
  Create(o);
  const std::uint32_t p = g().PartitionOfKey("k");
  const std::uint64_t before = journaled(p);
  auto v = g().Put("k", "visible");
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable)
      << v.status().ToString();
  EXPECT_THAT(v.status().message(), HasSubstr("no journal worker is running"));
  EXPECT_THAT(v.status().message(), HasSubstr("150 ms"));
  EXPECT_EQ(ValueOf("k"), "visible") << "the change stays visible";
  EXPECT_EQ(journaled(p), before) << "nothing was journaled";
  EXPECT_EQ(g().Flush().code(), StatusCode::kUnavailable);

  // A worker that starts later journals it, and sync writes succeed again.
  WorkerThread worker(name_);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  EXPECT_TRUE(g().Put("k2", "v2").ok());
  ASSERT_TRUE(worker.Stop().ok());
  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_EQ(j.records.size(), 2u);
  EXPECT_EQ(j.records[0].key, "k");
  EXPECT_EQ(j.records[0].value, "visible");
}

TEST_F(JournalWorker,
       SyncOnAGridWithoutJournalIsInvalidArgumentAndWritesNothing) {
  CreateOptions o = JournaledOptions("");
  o.journal_dir.clear();
  Create(o);
  ASSERT_TRUE(g().Put("present", Counter(5)).ok());
  const std::uint32_t p = g().PartitionOfKey("k");
  const std::uint64_t next_before = next(p);
  const WriteOptions sync{.durability = Durability::kSync};
  auto v = g().Put("k", "v", sync);
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("no journal"));
  EXPECT_EQ(ValueOf("k"), "<not_found>");
  EXPECT_EQ(next(p), next_before) << "a refused write made a change";
  EXPECT_EQ(g().Remove("present", sync).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(g().Increment("present", 1, sync).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValueOf("present"), Counter(5));
  EXPECT_TRUE(g().Flush().ok());
  EXPECT_TRUE(g().Put("k", "async", {}).ok()) << "async is still fine";
}

// --- backpressure ----------------------------------------------------------

TEST_F(JournalWorker, FullRingRefusesWritesWithoutDroppingAnyAndRecovers) {
  CreateOptions o = JournaledOptions(dir());
  o.ring_capacity = 64;
  o.ring_wait_ms = 100;
  Create(o);
  const std::vector<std::string> keys = KeysOfPartition(0, o.partitions, 400);
  std::size_t next_key = 0;
  std::vector<std::pair<std::string, std::string>> acked;
  Status refused;
  while (next_key < keys.size()) {
    const std::string& k = keys[next_key];
    const std::string value = "v" + std::to_string(next_key);
    auto v = g().Put(k, value);
    if (!v.ok()) {
      refused = v.status();
      break;
    }
    acked.emplace_back(k, value);
    ++next_key;
  }
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted)
      << refused.ToString();
  EXPECT_THAT(refused.message(), HasSubstr("ring full"));
  EXPECT_EQ(acked.size(), o.ring_capacity)
      << "without a worker, exactly one ring of changes fits";
  EXPECT_EQ(ValueOf(keys[next_key]), "<not_found>") << "the refused write";
  // Other partitions are not held up.
  EXPECT_TRUE(g().Put(KeysOfPartition(1, o.partitions, 1)[0], "x").ok());
  acked.emplace_back(KeysOfPartition(1, o.partitions, 1)[0], "x");

  // Every acknowledged change of partition 0 is in its ring, in order.
  std::vector<std::pair<std::string, std::string>> in_ring;
  h_->partition(0).ReadChanges(journaled(0), [&](const ChangeView& c) {
    in_ring.emplace_back(std::string(c.key), std::string(c.value));
    return true;
  });
  const std::vector<std::pair<std::string, std::string>> acked_p0(
      acked.begin(), acked.end() - 1);
  EXPECT_EQ(in_ring, acked_p0);

  // With a worker, writes go through again and every one gets journaled.
  WorkerThread worker(name_);
  for (; next_key < keys.size(); ++next_key) {
    const std::string value = "v" + std::to_string(next_key);
    Status last;
    ASSERT_TRUE(PollUntil([&] {
      last = g().Put(keys[next_key], value).status();
      return last.code() != StatusCode::kResourceExhausted;
    })) << last.ToString();
    ASSERT_TRUE(last.ok()) << last.ToString();
    acked.emplace_back(keys[next_key], value);
  }
  ASSERT_TRUE(g().Flush().ok());
  ASSERT_TRUE(worker.Stop().ok());
  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  std::vector<std::pair<std::string, std::string>> journaled_changes;
  for (const JournalRecord& r : j.records) {
    journaled_changes.emplace_back(r.key, r.value);
  }
  std::sort(journaled_changes.begin(), journaled_changes.end());
  std::sort(acked.begin(), acked.end());
  EXPECT_EQ(journaled_changes, acked)
      << "each acknowledged change journaled exactly once, nothing else";
}

// --- one worker per node ---------------------------------------------------

TEST_F(JournalWorker, SecondWorkerIsRefusedAndANewOneContinuesTheSequence) {
  CreateOptions o = JournaledOptions(dir());
  Create(o);
  for (int i = 0; i < 20; ++i) Put("first" + std::to_string(i), "1");
  auto first = std::make_unique<WorkerThread>(name_);
  ASSERT_TRUE(PollUntil([&] {
    return node().worker_state.load() == kWorkerRunning && AllJournaled(*h_);
  }));

  // The second one is refused before it touches anything. Its stop flag is
  // already set, so that a wrongly admitted worker returns instead of
  // running on.
  auto other = GridHandle::Attach(name_);
  ASSERT_TRUE(other.ok());
  std::atomic<bool> stop{true};
  JournalWorkerOptions wo;
  wo.stop = &stop;
  Status s = RunJournalWorker(**other, wo);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("node 0"));
  EXPECT_EQ(LockNodeJournal(dir(), 0).status().code(),
            StatusCode::kAlreadyExists);

  for (int i = 0; i < 20; ++i) Put("second" + std::to_string(i), "2");
  ASSERT_TRUE(g().Flush().ok());
  ASSERT_TRUE(first->Stop().ok());
  first.reset();

  // Changes made while no worker runs wait in the rings.
  for (int i = 0; i < 20; ++i) Put("third" + std::to_string(i), "3");
  EXPECT_FALSE(AllJournaled(*h_));
  WorkerThread second(name_);
  ASSERT_TRUE(g().Flush().ok());
  for (int i = 0; i < 5; ++i) Remove("third" + std::to_string(i));
  ASSERT_TRUE(second.Stop().ok());

  const JournalRead j = ExpectJournalHoldsExactlyTheChanges();
  EXPECT_GE(j.segments.size(), 2u) << "each worker writes its own segment";
  EXPECT_EQ(j.records.front().sequence, 1u);
  EXPECT_EQ(node().durable_journal_seq.load(), j.records.back().sequence);
}

// --- I/O errors ------------------------------------------------------------

// What a host crash would leave of the journal files the worker wrote
// through TrackedDevice: synced bytes stay, the rest vanishes, and a file
// whose directory entry was never synced vanishes altogether. Kept by path:
// a later Create of the same path supersedes the earlier file.
class DiskModel {
 public:
  void Created(const std::string& path, int fd) {
    std::lock_guard<std::mutex> l(mu_);
    for (File& f : files_) {
      if (f.path == path) f.superseded = true;
    }
    files_.push_back({path, fd});
  }
  void Wrote(int fd, std::uint64_t end) {
    std::lock_guard<std::mutex> l(mu_);
    if (File* f = Find(fd)) f->written = std::max(f->written, end);
  }
  void Synced(int fd) {
    std::lock_guard<std::mutex> l(mu_);
    if (File* f = Find(fd)) f->synced = f->written;
  }
  void DirSynced(const std::string& dir) {
    std::lock_guard<std::mutex> l(mu_);
    for (File& f : files_) {
      if (f.path.rfind(dir + "/", 0) == 0) f.dir_synced = true;
    }
  }
  void Closed(int fd) {
    std::lock_guard<std::mutex> l(mu_);
    if (File* f = Find(fd)) f->fd = -1;
  }
  // Applies the crash to the files as they are now.
  void PowerLoss() {
    std::lock_guard<std::mutex> l(mu_);
    for (const File& f : files_) {
      if (f.superseded) continue;
      struct stat st {};
      if (stat(f.path.c_str(), &st) != 0) continue;  // removed since
      if (!f.dir_synced) {
        unlink(f.path.c_str());
      } else if (static_cast<std::uint64_t>(st.st_size) > f.synced) {
        ASSERT_EQ(truncate(f.path.c_str(), static_cast<off_t>(f.synced)), 0);
      }
    }
  }

 private:
  struct File {
    std::string path;
    int fd = -1;
    std::uint64_t written = 0;
    std::uint64_t synced = 0;
    bool dir_synced = false;
    bool superseded = false;
  };
  File* Find(int fd) {
    for (File& f : files_) {
      if (f.fd == fd && !f.superseded) return &f;
    }
    return nullptr;
  }
  std::mutex mu_;
  std::vector<File> files_;
};

// A FaultJournalDevice (which injects the faults) whose effects DiskModel
// records.
class TrackedDevice final : public io::JournalDevice {
 public:
  TrackedDevice(std::unique_ptr<FaultJournalDevice> d, DiskModel* disk)
      : d_(std::move(d)), disk_(disk) {}
  int Create(const std::string& path, std::uint32_t mode, int gid) override {
    const int fd = d_->Create(path, mode, gid);
    if (fd >= 0) disk_->Created(path, fd);
    return fd;
  }
  int WriteAt(int file, std::uint64_t offset,
              std::span<const std::byte> data) override {
    const int rc = d_->WriteAt(file, offset, data);
    if (rc == 0) disk_->Wrote(file, offset + data.size());
    return rc;
  }
  int DataSync(int file) override {
    const int rc = d_->DataSync(file);
    if (rc == 0) disk_->Synced(file);
    return rc;
  }
  int SyncDir(const std::string& dir) override {
    const int rc = d_->SyncDir(dir);
    if (rc == 0) disk_->DirSynced(dir);
    return rc;
  }
  int Close(int file) override {
    disk_->Closed(file);
    return d_->Close(file);
  }

 private:
  std::unique_ptr<FaultJournalDevice> d_;
  DiskModel* disk_;
};

// Makes the worker's devices: while `failing`, each one fails its first
// flush, in turn by a failed fdatasync, a torn write and a failed write.
struct FaultyDevices {
  DiskModel disk;
  std::atomic<bool> failing{true};
  // The kinds of fault to cycle through while failing.
  std::vector<int> kinds = {0, 1, 2};
  std::atomic<int> made{0};

  std::function<Result<std::unique_ptr<io::JournalDevice>>()> Factory() {
    return [this]() -> Result<std::unique_ptr<io::JournalDevice>> {
      auto d = std::make_unique<FaultJournalDevice>();
      const int n = made.fetch_add(1);
      if (failing.load()) {
        switch (kinds[static_cast<std::size_t>(n) % kinds.size()]) {
          case 0:
            d->FailAfter(FaultOp::kDataSync, 0, EIO);
            break;
          case 1:
            d->TearWriteAfter(0, 100);
            break;
          default:
            d->FailAfter(FaultOp::kWrite, 0, EIO);
            break;
        }
      }
      return std::unique_ptr<io::JournalDevice>(
          std::make_unique<TrackedDevice>(std::move(d), &disk));
    };
  }
};

// Checks that `j` holds every change of the grid behind `h` at least once,
// copies only with the same change sequence and the same contents, and that
// the journal's sequence has no gap. Returns the number of copies.
std::uint64_t ExpectEveryChangeOnceUpToCopies(GridHandle& h,
                                              const JournalRead& j) {
  std::map<std::pair<std::uint32_t, std::uint64_t>, const JournalRecord*> seen;
  std::uint64_t copies = 0;
  for (std::size_t i = 0; i < j.records.size(); ++i) {
    const JournalRecord& r = j.records[i];
    EXPECT_EQ(r.sequence, j.records[0].sequence + i) << "sequence gap";
    auto [it, fresh] =
        seen.emplace(std::make_pair(r.partition, r.change_seq), &r);
    if (!fresh) {
      ++copies;
      JournalRecord a = *it->second;
      JournalRecord b = r;
      a.sequence = b.sequence = 0;
      EXPECT_EQ(a, b) << "two records of one change differ";
    }
  }
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    const PartitionState& st = h.partition(p).state();
    std::uint64_t first = UINT64_MAX;
    std::uint64_t count = 0;
    for (const auto& [pc, r] : seen) {
      if (pc.first != p) continue;
      first = std::min(first, pc.second);
      ++count;
    }
    if (count == 0) continue;
    EXPECT_EQ(first + count, st.next_seq.load())
        << "partition " << p << ": a change is missing from the journal";
  }
  return copies;
}

TEST_F(JournalWorker, IoErrorsAreRetriedWithoutMarkingOrLosingAnything) {
  CreateOptions o = JournaledOptions(dir());
  o.sync_wait_ms = 100;
  Create(o);
  for (int i = 0; i < 60; ++i) {
    Put("k" + std::to_string(i % 25), "value " + std::to_string(i));
  }
  for (int i = 0; i < 5; ++i) Remove("k" + std::to_string(i));
  std::vector<std::uint64_t> journaled_before;
  for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
    journaled_before.push_back(journaled(p));
  }
  const std::uint32_t epoch_before = node().durable_epoch.load();

  FaultyDevices devices;
  JournalWorkerOptions wo;
  wo.make_device = devices.Factory();
  wo.max_backoff_ms = 20;
  WorkerThread worker(name_, wo);
  ASSERT_TRUE(PollUntil([&] {
    return node().io_errors.load() >= 4 &&
           node().worker_state.load() == kWorkerRetrying;
  })) << "io_errors "
      << node().io_errors.load();
  // Nothing that failed to become durable is marked.
  for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
    EXPECT_EQ(journaled(p), journaled_before[p]) << "partition " << p;
  }
  EXPECT_EQ(node().durable_epoch.load(), epoch_before);
  EXPECT_FALSE(worker.finished()) << "an I/O error must not end the worker";
  // A sync write cannot be confirmed meanwhile, and stays visible.
  auto v = g().Put("during", "faults", {.durability = Durability::kSync});
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ValueOf("during"), "faults");

  devices.failing.store(false);
  // The worker marks the batch, then says it runs again: poll for both.
  ASSERT_TRUE(PollUntil([&] {
    return AllJournaled(*h_) && node().worker_state.load() == kWorkerRunning;
  })) << "state "
      << node().worker_state.load();
  for (int i = 0; i < 10; ++i) Put("after" + std::to_string(i), "ok");
  ASSERT_TRUE(g().Flush().ok());
  ASSERT_TRUE(worker.Stop().ok());
  EXPECT_THAT(worker.log(), ::testing::Contains(HasSubstr("retrying")));
  // One event when the errors began and one when they ended, not one per
  // failed attempt.
  std::vector<GridEvent> io_events;
  for (const GridEvent& e : ReadEvents(*h_)) {
    if (e.kind == EventKind::kJournalIoError ||
        e.kind == EventKind::kJournalIoRecovered) {
      io_events.push_back(e);
    }
  }
  ASSERT_EQ(io_events.size(), 2u);
  EXPECT_EQ(io_events[0].kind, EventKind::kJournalIoError);
  EXPECT_EQ(io_events[0].node, 0);
  EXPECT_THAT(io_events[0].cause, HasSubstr("io_error: writing"));
  EXPECT_EQ(io_events[1].kind, EventKind::kJournalIoRecovered);
  EXPECT_GE(io_events[1].duration_ms, 0);
  const std::uint64_t attempts = std::stoull(io_events[1].cause);
  EXPECT_GE(attempts, 4u);
  EXPECT_EQ(attempts, node().io_errors.load());

  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  EXPECT_EQ(j.tail.kind, io::TailKind::kNone) << j.tail.ToString();
  const std::uint64_t copies = ExpectEveryChangeOnceUpToCopies(*h_, j);
  // What a failed flush wrote was cut before the changes were journaled
  // again (it may never have reached the disk), so no change is there twice.
  EXPECT_EQ(copies, 0u);
  const GridState before = ReadGridState(name_);
  EXPECT_EQ(StateDiff(before, ModelOf(j.records)), "");

  // Recovery applies each change once.
  grid_.reset();
  h_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->skipped_records, copies);
  EXPECT_EQ(r->applied_records, j.records.size() - copies);
  EXPECT_TRUE(r->dropped.empty());
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
}

TEST_F(JournalWorker, StopDuringPersistentIoErrorsFailsAndMarksNothing) {
  Create(JournaledOptions(dir()));
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), "v");
  std::vector<std::uint64_t> journaled_before;
  for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
    journaled_before.push_back(journaled(p));
  }
  FaultyDevices devices;
  JournalWorkerOptions wo;
  wo.make_device = devices.Factory();
  wo.max_backoff_ms = 20;
  {
    WorkerThread worker(name_, wo);
    ASSERT_TRUE(PollUntil([&] { return node().io_errors.load() >= 2; }));
    Status s = worker.Stop();
    EXPECT_FALSE(s.ok()) << "a stop that could not drain is not a clean one";
  }
  for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
    EXPECT_EQ(journaled(p), journaled_before[p]) << "partition " << p;
  }
  // The next worker, on a healthy disk, journals all of it.
  WorkerThread healthy(name_);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  ASSERT_TRUE(healthy.Stop().ok());
  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  ExpectEveryChangeOnceUpToCopies(*h_, j);
  EXPECT_EQ(StateDiff(ModelOf(j.records), ReadGridState(name_)), "");
}

// A flush whose fdatasync failed proved nothing: its records may be gone
// after a crash even though the file still shows them now. The worker
// journals those changes again; a crash after that must still recover every
// change the worker marked journaled.
TEST_F(JournalWorker, ChangesRejournaledAfterAFailedSyncSurviveAPowerLoss) {
  Create(JournaledOptions(dir()));
  for (int i = 0; i < 40; ++i) Put("k" + std::to_string(i), "v");
  FaultyDevices devices;
  devices.kinds = {0};  // a failed fdatasync
  JournalWorkerOptions wo;
  wo.make_device = devices.Factory();
  wo.max_backoff_ms = 20;
  WorkerThread worker(name_, wo);
  ASSERT_TRUE(PollUntil([&] { return node().io_errors.load() >= 1; }));
  devices.failing.store(false);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  ASSERT_TRUE(worker.Stop().ok());
  const GridState before = ReadGridState(name_);
  ASSERT_EQ(before.size(), 40u);

  // Every change is marked journaled: the host now loses power.
  devices.disk.PowerLoss();
  grid_.reset();
  h_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << "changes marked journaled were lost: "
                      << r.status().ToString();
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
}

TEST_F(JournalWorker, SyncWaitDuringIoErrorsSaysTheWorkerIsRetrying) {
  CreateOptions o = JournaledOptions(dir());
  o.sync_wait_ms = 100;
  Create(o);
  Put("k", "v");
  FaultyDevices devices;
  JournalWorkerOptions wo;
  wo.make_device = devices.Factory();
  wo.max_backoff_ms = 20;
  WorkerThread worker(name_, wo);
  ASSERT_TRUE(PollUntil([&] { return node().io_errors.load() >= 2; }));
  auto v = g().Put("during", "faults", {.durability = Durability::kSync});
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable);
  // The worker runs (it is retrying), so telling the operator to start one
  // misleads.
  EXPECT_THAT(v.status().message(), Not(HasSubstr("no journal worker")))
      << v.status().ToString();
  devices.failing.store(false);
  ASSERT_TRUE(worker.Stop().ok());
}

// --- a worker that died between flushing and marking -----------------------

// What a worker does before it dies: reads every ring, appends the changes
// and flushes them (through a plain-file device), and with `publish` also
// publishes the journal position, but marks nothing. Returns the records.
std::uint64_t JournalWorker::AppendAsADeadWorker(bool publish) {
  std::uint64_t records = 0;
  auto first = PrepareJournalTail(dir(), 0, h_->grid_id(), 1, nullptr);
  EXPECT_TRUE(first.ok()) << first.status().ToString();
  if (!first.ok()) return 0;
  FaultJournalDevice device;
  io::JournalWriterOptions jo;
  jo.dir = dir();
  jo.grid_id = h_->grid_id();
  jo.first_seq = *first;
  auto w = io::JournalWriter::Open(jo, &device);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return 0;
  for (std::uint32_t p = 0; p < h_->partition_count(); ++p) {
    h_->partition(p).ReadChanges(journaled(p), [&](const ChangeView& c) {
      io::RecordView r;
      r.partition_id = p;
      r.op = c.op == kOpPut ? io::RecordOp::kPut : io::RecordOp::kRemove;
      r.change_seq = c.seq;
      r.version = c.version;
      r.expiry_ms = c.op == kOpPut ? c.expire_at_ms : 0;
      r.key = c.key;
      r.value = c.op == kOpPut ? c.value : std::string_view();
      EXPECT_TRUE((*w)->Append(r).ok());
      ++records;
      return true;
    });
  }
  EXPECT_TRUE((*w)->Close().ok());
  if (publish) node().durable_journal_seq.store((*w)->durable_seq());
  return records;
}

TEST_F(JournalWorker,
       WorkerThatDiedBeforeMarkingIsJournaledAgainAndAppliedOnce) {
  Create(JournaledOptions(dir()));
  for (int i = 0; i < 30; ++i) {
    Put("k" + std::to_string(i % 12), "v" + std::to_string(i));
  }
  Remove("k3");
  // The dead worker: it read every ring, appended and flushed the changes
  // and published the journal position as RunJournalWorker does, and died
  // before MarkJournaled.
  const std::uint64_t dead_records = AppendAsADeadWorker(/*publish=*/true);
  ASSERT_EQ(dead_records, expected_.size());
  EXPECT_FALSE(AllJournaled(*h_)) << "nothing was marked";

  WorkerThread worker(name_);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  ASSERT_TRUE(worker.Stop().ok());
  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  ASSERT_EQ(j.records.size(), 2 * dead_records)
      << "the new worker journals every unmarked change again";
  EXPECT_EQ(ExpectEveryChangeOnceUpToCopies(*h_, j), dead_records);
  EXPECT_EQ(j.records[dead_records].sequence, dead_records + 1)
      << "the new worker continues after the dead one's records";

  const GridState before = ReadGridState(name_);
  grid_.reset();
  h_.reset();
  ASSERT_TRUE(DestroyGrid(name_).ok());
  auto r = RecoverGrid(name_, dir(), SystemTopology(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->journal_records, 2 * dead_records);
  EXPECT_EQ(r->applied_records, dead_records);
  EXPECT_EQ(r->skipped_records, dead_records);
  EXPECT_EQ(StateDiff(before, ReadGridState(name_)), "");
}

TEST_F(JournalWorker, RecordsAWorkerNeverConfirmedAreCutAndJournaledOnce) {
  Create(JournaledOptions(dir()));
  for (int i = 0; i < 30; ++i) {
    Put("k" + std::to_string(i % 12), "v" + std::to_string(i));
  }
  Remove("k3");
  // The dead worker: it appended the changes and its write reached the
  // file, but it died before its fdatasync returned, so it published no
  // journal position: nothing says those bytes are on disk.
  const std::uint64_t dead_records = AppendAsADeadWorker(/*publish=*/false);
  ASSERT_EQ(dead_records, expected_.size());
  EXPECT_FALSE(AllJournaled(*h_)) << "nothing was marked";

  WorkerThread worker(name_);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  ASSERT_TRUE(worker.Stop().ok());
  const JournalRead j = ReadJournal(dir(), 0, h_->grid_id());
  ASSERT_TRUE(j.status.ok()) << j.status.ToString();
  ASSERT_EQ(j.records.size(), dead_records)
      << "the unconfirmed records were cut, then journaled once";
  EXPECT_EQ(ExpectEveryChangeOnceUpToCopies(*h_, j), 0u);
  EXPECT_EQ(j.records.front().sequence, 1u);
  EXPECT_THAT(worker.log(), ::testing::Contains(HasSubstr("never confirmed")));
}

}  // namespace
}  // namespace numagrid::core
