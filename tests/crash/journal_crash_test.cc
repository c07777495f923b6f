// Crash consistency of the journal (DESIGN invariant 3): writers in sync
// mode record which changes they were told are durable; the journaling
// process is SIGKILLed at random points and restarted, snapshots are taken
// meanwhile, and at the end the grid's shared memory is thrown away (as a
// host crash would) and rebuilt from the journal. Every change acknowledged
// as durable must be there, and nothing that was never written.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/journal_worker.h"
#include "core/reconcile.h"
#include "core/recovery.h"
#include "core/snapshot.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "tests/support/ack_ledger.h"
#include "tests/support/journal_grid.h"
#include "tests/support/shared_block.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid {
namespace {

using testing::ForkChild;
using testing::Mix;
using testing::SharedBlock;
using testing::TempDir;
using testing::TestSeed;
using testing::UniqueName;
using testing::WaitChild;

constexpr int kWriters = 2;
constexpr int kKeysPerWriter = 40;

std::atomic<bool> g_worker_stop{false};
extern "C" void OnTerm(int) { g_worker_stop.store(true); }

// A child that journals every node until SIGTERM (then drains) or SIGKILL.
pid_t StartWorker(const std::string& name) {
  return ForkChild([name] {
    struct sigaction sa {};
    sa.sa_handler = OnTerm;
    sigaction(SIGTERM, &sa, nullptr);
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) return 2;
    core::JournalWorkerOptions o;
    o.node = 0;
    o.stop = &g_worker_stop;
    // Replacing a killed worker must not wait on long back-offs.
    o.max_backoff_ms = 20;
    Status s = core::RunJournalWorker(**h, o);
    if (!s.ok()) std::fprintf(stderr, "worker: %s\n", s.ToString().c_str());
    return s.ok() ? 0 : 1;
  });
}

TEST(JournalCrash, AcknowledgedDurableChangesSurviveWorkerKillsAndHostCrash) {
  const std::uint64_t seed = TestSeed();
  TempDir dir;
  const std::string name = UniqueName("j");
  core::CreateOptions o;
  o.partitions = 8;
  o.memory_bytes = 32ULL << 20;
  o.ring_capacity = 256;
  o.journal_dir = dir.path();
  o.durability = core::kDurabilitySync;
  o.sync_wait_ms = 300;
  o.ring_wait_ms = 300;
  o.journal_segment_bytes = 1ULL << 20;  // many segments: pruning matters
  o.snapshot_bytes = 0;
  auto topo = numa::Topology::Load();
  ASSERT_TRUE(topo.ok());
  ASSERT_TRUE(core::CreateGrid(name, o, *topo).ok());

  SharedBlock<testing::AckLedger> ledger;
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; ++w) {
    // The grid's default durability, sync: a put returns once durable.
    writers.push_back(testing::StartLedgerWriter(name, w, kKeysPerWriter,
                                                 ledger.get(), Mix(seed + w),
                                                 {}, /*async_too=*/false));
  }
  pid_t worker = StartWorker(name);
  std::uint64_t r = seed;
  int kills = 0;
  int snapshots = 0;
  for (int round = 0; round < 40; ++round) {
    r = Mix(r);
    std::this_thread::sleep_for(std::chrono::microseconds(r % 40000));
    if (round % 10 == 5) {
      auto h = core::GridHandle::Attach(name);
      ASSERT_TRUE(h.ok());
      core::SnapshotOptions so;
      so.worker_timeout_ms = 2000;
      // The worker may die meanwhile; a snapshot that was not taken is
      // fine, a damaged one is not (recovery would reject it).
      if (core::SnapshotGrid(**h, so).ok()) ++snapshots;
    }
    kill(worker, SIGKILL);
    EXPECT_EQ(WaitChild(worker), 128 + SIGKILL);
    ++kills;
    // The kernel released the dead worker's journal lock when it died, so
    // the replacement starts at once.
    worker = StartWorker(name);
  }
  // The host crash: the last worker and the writers die where they are.
  kill(worker, SIGKILL);
  EXPECT_EQ(WaitChild(worker), 128 + SIGKILL);
  ledger->stop.store(true);
  for (pid_t w : writers) EXPECT_EQ(WaitChild(w), 0);
  std::cout << "[ info     ] " << kills << " worker kills, " << snapshots
            << " snapshots, " << ledger->acked_total.load() << " durable acks, "
            << ledger->not_confirmed.load() << " writes not confirmed"
            << std::endl;
  ASSERT_GT(ledger->acked_total.load(), 0U);

  ASSERT_TRUE(core::DestroyGrid(name).ok());
  auto rec = core::RecoverGrid(name, dir.path(), *topo, {});
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->snapshots_rejected.empty());

  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const std::uint64_t keys = testing::ExpectLedgerHeld(
      *g, *ledger.get(), kWriters, kKeysPerWriter, "recovered grid");
  EXPECT_GT(keys, 0U);
  auto check = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->problems.empty());

  // The rebuilt grid journals on, and agrees with its journal.
  worker = StartWorker(name);
  ASSERT_TRUE(g->Put("after", "recovery").ok());
  ASSERT_TRUE(g->Flush().ok());
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  auto recon = core::ReconcileWithJournal(**h, {});
  ASSERT_TRUE(recon.ok()) << recon.status().ToString();
  EXPECT_EQ(recon->differences, 0U);
  EXPECT_EQ(recon->pending_differences, 0U);
  kill(worker, SIGTERM);
  EXPECT_EQ(WaitChild(worker), 0);
  h->reset();
  EXPECT_TRUE(core::DestroyGrid(name).ok());
}

}  // namespace
}  // namespace numagrid
