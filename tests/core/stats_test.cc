// Tests for the monitoring counters (core/stats.h, core/stats_layout.h) and
// their Prometheus exposition (core/prometheus_format.h): exact totals under
// a known workload from two forked processes, also after one of them is
// SIGKILLed and its slot repaired; --no-stats; the journal lag; and the
// exposition checked by a strict parser of the 0.0.4 text format.
#include "core/stats.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/key_hash.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/grid_repair.h"
#include "core/metrics_server.h"
#include "core/prometheus_format.h"
#include "numagrid/grid.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid {
namespace {

using ::numagrid::testing::ForkChild;
using ::numagrid::testing::GridGuard;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;

// The workload each child runs: kPuts puts of its own keys, kHits gets of
// them, kMisses gets of absent keys, kCasFailures compare-and-sets with a
// wrong version, kRemoves removes.
constexpr int kPuts = 50;
constexpr int kHits = 70;
constexpr int kMisses = 30;
constexpr int kCasFailures = 7;
constexpr int kRemoves = 11;

core::CreateOptions MemoryOptions(bool stats = true) {
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 8ULL << 20;
  o.stats = stats;
  return o;
}

// Runs the workload as `tag`; 0 on success, else the step that failed.
// `then`, if given, runs with the grid still attached (its result is
// passed on).
int Workload(const std::string& grid_name, const std::string& tag,
             const std::function<int(int)>& then = nullptr) {
  auto g = Grid::Attach(grid_name);
  if (!g.ok()) return 1;
  for (int i = 0; i < kPuts; ++i) {
    if (!g->Put(tag + std::to_string(i), "value").ok()) return 2;
  }
  std::string v;
  for (int i = 0; i < kHits; ++i) {
    if (!g->Get(tag + std::to_string(i % kPuts), &v).ok()) return 3;
  }
  for (int i = 0; i < kMisses; ++i) {
    if (g->Get(tag + "absent" + std::to_string(i), &v).code() !=
        StatusCode::kNotFound) {
      return 4;
    }
  }
  for (int i = 0; i < kCasFailures; ++i) {
    std::uint64_t version = 0;
    if (!g->Get(tag + "0", &v, &version).ok()) return 5;
    if (g->CompareAndSet(tag + "0", version + 1000, "x").status().code() !=
        StatusCode::kConflict) {
      return 6;
    }
  }
  for (int i = 0; i < kRemoves; ++i) {
    if (!g->Remove(tag + std::to_string(kPuts - 1 - i)).ok()) return 7;
  }
  return then ? then(0) : 0;
}

// Kills and reaps `pid` when it goes out of scope, unless already reaped.
class KillOnExit {
 public:
  explicit KillOnExit(pid_t pid) : pid_(pid) {}
  ~KillOnExit() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      WaitChild(pid_);
    }
  }
  KillOnExit(const KillOnExit&) = delete;
  KillOnExit& operator=(const KillOnExit&) = delete;
  int KillNow() {
    kill(pid_, SIGKILL);
    const int rc = WaitChild(pid_);
    pid_ = -1;
    return rc;
  }

 private:
  pid_t pid_;
};

struct Sums {
  std::uint64_t puts = 0, removes = 0, cas_failures = 0, entries = 0;
};
Sums PartitionSums(const core::GridStatsReport& r) {
  Sums s;
  for (const auto& p : r.partitions) {
    s.puts += p.puts;
    s.removes += p.removes;
    s.cas_failures += p.cas_failures;
    s.entries += p.entries;
  }
  return s;
}

// The totals of `n` complete workloads (gets of the CAS step included).
void ExpectTotals(const core::GridStatsReport& r, int n) {
  const auto u = [n](int v) { return static_cast<std::uint64_t>(v * n); };
  EXPECT_EQ(r.totals.hits, u(kHits + kCasFailures));
  EXPECT_EQ(r.totals.misses, u(kMisses));
  EXPECT_EQ(r.totals.puts, u(kPuts));
  EXPECT_EQ(r.totals.removes, u(kRemoves));
  EXPECT_EQ(r.totals.cas_failures, u(kCasFailures));
  EXPECT_EQ(r.totals.write_errors, 0u);
  const Sums s = PartitionSums(r);
  EXPECT_EQ(s.puts, u(kPuts));
  EXPECT_EQ(s.removes, u(kRemoves));
  EXPECT_EQ(s.cas_failures, u(kCasFailures));
  EXPECT_EQ(s.entries, u(kPuts - kRemoves));
}

TEST(Stats, TwoProcessesAddUpExactlyAndAKilledOneStaysCounted) {
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  ASSERT_TRUE(core::CreateGrid(name, MemoryOptions(), SystemTopology()).ok());

  // Child A runs and exits; child B runs, reports, and waits to be killed.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t a = ForkChild([&] { return Workload(name, "a"); });
  const pid_t b = ForkChild([&] {
    close(ready[0]);
    return Workload(name, "b", [&](int rc) {
      const char c = static_cast<char>(rc);
      if (write(ready[1], &c, 1) != 1) return 98;
      for (;;) pause();  // attached, until killed
    });
  });
  KillOnExit kill_b(b);
  close(ready[1]);
  char b_rc = 99;
  ASSERT_EQ(read(ready[0], &b_rc, 1), 1);
  close(ready[0]);
  ASSERT_EQ(b_rc, 0);
  ASSERT_EQ(WaitChild(a), 0);

  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  core::GridStatsReport before = core::CollectStats(**h);
  ExpectTotals(before, 2);
  // B and this handle are attached; B's own numbers are its workload.
  ASSERT_EQ(before.processes.size(), 2u);
  bool saw_b = false;
  for (const auto& p : before.processes) {
    if (p.pid != static_cast<std::uint64_t>(b)) continue;
    saw_b = true;
    EXPECT_EQ(p.since_attach.misses, static_cast<std::uint64_t>(kMisses));
    EXPECT_EQ(p.since_attach.cas_failures,
              static_cast<std::uint64_t>(kCasFailures));
  }
  EXPECT_TRUE(saw_b);

  ASSERT_EQ(kill_b.KillNow(), 128 + SIGKILL);
  const core::RepairReport rep = core::RepairDeadProcesses(**h);
  EXPECT_EQ(rep.slots_repaired, 1u);
  const core::GridStatsReport after = core::CollectStats(**h);
  ExpectTotals(after, 2);  // nothing dropped
  EXPECT_EQ(after.processes.size(), 1u);

  // A new process that takes the dead one's slot counts on from there.
  ASSERT_EQ(WaitChild(ForkChild([&] { return Workload(name, "c"); })), 0);
  ExpectTotals(core::CollectStats(**h), 3);
}

TEST(Stats, NoStatsKeepsNoDataPathCounters) {
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  ASSERT_TRUE(
      core::CreateGrid(name, MemoryOptions(/*stats=*/false), SystemTopology())
          .ok());
  ASSERT_EQ(Workload(name, "a"), 0);
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  const core::GridStatsReport r = core::CollectStats(**h);
  EXPECT_FALSE(r.stats_enabled);
  EXPECT_EQ(r.totals.hits + r.totals.misses + r.totals.puts, 0u);
  const Sums s = PartitionSums(r);
  EXPECT_EQ(s.cas_failures, 0u);
  // The allocation counters are the grid's own, kept regardless.
  EXPECT_EQ(s.puts, static_cast<std::uint64_t>(kPuts));
  EXPECT_EQ(s.entries, static_cast<std::uint64_t>(kPuts - kRemoves));
}

// ----------------------------------------- hits and misses by partition

// Defined with the Prometheus tests below.
std::vector<std::string> CheckExposition(const std::string& text);
std::uint64_t SumOfSamples(const std::string& text, const std::string& family);

numa::Topology TwoNodes() {
  auto t = numa::Topology::FromSynthetic("pack:2 numa:1 core:2 pu:1");
  if (!t.ok()) {
    ADD_FAILURE() << t.status().ToString();
    std::abort();
  }
  return std::move(*t);
}

// `n` keys of tag `tag` that hash to partition `p` of `partitions`.
std::vector<std::string> KeysOf(const std::string& tag, std::uint32_t p,
                                std::uint32_t partitions, int n) {
  std::vector<std::string> keys;
  for (int i = 0; static_cast<int>(keys.size()) < n; ++i) {
    std::string k = tag + "-" + std::to_string(i);
    if (base::PartitionOf(base::KeyHash(k), partitions) == p) {
      keys.push_back(std::move(k));
    }
  }
  return keys;
}

// Child `c`'s gets in partition `p`: different in every partition and
// child, so that a count credited to the wrong one cannot add up.
int HitsOf(int c, std::uint32_t p) { return 3 + 2 * static_cast<int>(p) + c; }
int MissesOf(int c, std::uint32_t p) {
  return 1 + static_cast<int>(p % 3) + 4 * c;
}

// Child `c`'s workload on every partition of a grid of `partitions`: puts
// one key per partition, then HitsOf gets of it (Get and GetInto
// alternately) and MissesOf gets of absent keys. 0 on success.
int ReadWorkload(const std::string& grid_name, int c, std::uint32_t partitions,
                 const std::function<int(int)>& then = nullptr) {
  auto g = Grid::Attach(grid_name);
  if (!g.ok()) return 1;
  const std::string tag = "c" + std::to_string(c);
  std::string v;
  char buf[16];
  for (std::uint32_t p = 0; p < partitions; ++p) {
    const std::vector<std::string> keys = KeysOf(tag, p, partitions, 1 + 8);
    if (!g->Put(keys[0], "value").ok()) return 2;
    for (int i = 0; i < HitsOf(c, p); ++i) {
      const bool ok = i % 2 == 0 ? g->Get(keys[0], &v).ok()
                                 : g->GetInto(keys[0], buf, sizeof buf).ok();
      if (!ok) return 3;
    }
    for (int i = 0; i < MissesOf(c, p); ++i) {
      // keys[1..8] are never written.
      if (g->Get(keys[1 + i % 8], &v).code() != StatusCode::kNotFound) {
        return 4;
      }
    }
  }
  return then ? then(0) : 0;  // `then` runs still attached
}

TEST(Stats, HitsAndMissesAddUpPerPartitionAndPerNode) {
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  core::CreateOptions o = MemoryOptions();
  o.partitions = 6;
  o.bind = false;  // two synthetic nodes on a one-node machine
  ASSERT_TRUE(core::CreateGrid(name, o, TwoNodes()).ok());

  // Child 0 runs and exits; child 1 runs and is killed while attached.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t a =
      ForkChild([&] { return ReadWorkload(name, 0, o.partitions); });
  const pid_t b = ForkChild([&] {
    close(ready[0]);
    return ReadWorkload(name, 1, o.partitions, [&](int rc) {
      const char c = static_cast<char>(rc);
      if (write(ready[1], &c, 1) != 1) return 98;
      for (;;) pause();  // attached, until killed
    });
  });
  KillOnExit kill_b(b);
  close(ready[1]);
  char b_rc = 99;
  ASSERT_EQ(read(ready[0], &b_rc, 1), 1);
  close(ready[0]);
  ASSERT_EQ(b_rc, 0);
  ASSERT_EQ(WaitChild(a), 0);

  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  const auto expect_counts = [&](const core::GridStatsReport& r) {
    ASSERT_TRUE(r.reads_per_partition);
    ASSERT_EQ(r.partitions.size(), 6u);
    ASSERT_EQ(r.nodes.size(), 2u);
    std::uint64_t node_hits[2] = {0, 0}, node_misses[2] = {0, 0};
    std::uint64_t hits = 0, misses = 0;
    for (const auto& p : r.partitions) {
      const auto want_hits = static_cast<std::uint64_t>(HitsOf(0, p.partition) +
                                                        HitsOf(1, p.partition));
      const auto want_misses = static_cast<std::uint64_t>(
          MissesOf(0, p.partition) + MissesOf(1, p.partition));
      EXPECT_EQ(p.hits, want_hits) << "partition " << p.partition;
      EXPECT_EQ(p.misses, want_misses) << "partition " << p.partition;
      node_hits[p.node] += want_hits;
      node_misses[p.node] += want_misses;
      hits += want_hits;
      misses += want_misses;
    }
    for (const auto& n : r.nodes) {
      EXPECT_EQ(n.hits, node_hits[n.node]) << "node " << n.node;
      EXPECT_EQ(n.misses, node_misses[n.node]) << "node " << n.node;
    }
    EXPECT_GT(node_hits[0], 0u);
    EXPECT_GT(node_hits[1], 0u);  // both nodes hold partitions
    EXPECT_EQ(r.totals.hits, hits);
    EXPECT_EQ(r.totals.misses, misses);

    // The exposition carries the same numbers, one sample per partition.
    const std::string text = core::FormatPrometheus(r);
    EXPECT_EQ(SumOfSamples(text, "numagrid_get_hits_total"), hits);
    EXPECT_EQ(SumOfSamples(text, "numagrid_get_misses_total"), misses);
    const auto& p5 = r.partitions[5];
    EXPECT_NE(
        text.find("numagrid_get_hits_total{grid=\"" + name + "\",node=\"" +
                  std::to_string(p5.node) + "\",partition=\"5\"} " +
                  std::to_string(p5.hits) + "\n"),
        std::string::npos)
        << text;
  };
  const core::GridStatsReport before = core::CollectStats(**h);
  expect_counts(before);
  // The attached child's own numbers are its gets alone.
  bool saw_b = false;
  for (const auto& p : before.processes) {
    if (p.pid != static_cast<std::uint64_t>(b)) continue;
    saw_b = true;
    std::uint64_t hits = 0, misses = 0;
    for (std::uint32_t q = 0; q < 6; ++q) {
      hits += static_cast<std::uint64_t>(HitsOf(1, q));
      misses += static_cast<std::uint64_t>(MissesOf(1, q));
    }
    EXPECT_EQ(p.since_attach.hits, hits);
    EXPECT_EQ(p.since_attach.misses, misses);
  }
  EXPECT_TRUE(saw_b);

  // Killed, repaired: its counts stay. A process that takes its slot
  // starts its own numbers at 0 and adds to the partitions'.
  ASSERT_EQ(kill_b.KillNow(), 128 + SIGKILL);
  EXPECT_EQ(core::RepairDeadProcesses(**h).slots_repaired, 1u);
  expect_counts(core::CollectStats(**h));
  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok());
  std::string v;
  const std::string absent = KeysOf("late", 2, 6, 1)[0];
  EXPECT_EQ(g->Get(absent, &v).code(), StatusCode::kNotFound);
  const core::GridStatsReport after = core::CollectStats(**h);
  EXPECT_EQ(after.partitions[2].misses, before.partitions[2].misses + 1);
  EXPECT_EQ(after.totals.misses, before.totals.misses + 1);
  for (const auto& p : after.processes) {
    if (p.pid == static_cast<std::uint64_t>(getpid()) &&
        p.since_attach.misses == 1) {
      EXPECT_EQ(p.since_attach.hits, 0u);
    }
  }
}

TEST(Stats, AGridTooLargeForPartitionReadCountersCountsGetsPerNode) {
  // 512 partitions x 4096 process slots x 16 bytes is 32 MiB, above
  // kMaxReadCounterBytes: gets are counted per node.
  EXPECT_EQ(core::ReadCounterBuckets(64, 1, 256), 64u);
  EXPECT_EQ(core::ReadCounterBuckets(512, 2, 4096), 2u);
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  core::CreateOptions o = MemoryOptions();
  o.partitions = 512;
  o.process_capacity = 4096;
  o.memory_bytes = 64ULL << 20;
  o.bind = false;
  const auto created = core::CreateGrid(name, o, TwoNodes());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_EQ(WaitChild(ForkChild([&] { return ReadWorkload(name, 0, 8); })), 0);

  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  const core::GridStatsReport r = core::CollectStats(**h);
  EXPECT_FALSE(r.reads_per_partition);
  // ReadWorkload(.., 8) wrote keys of partitions 0..7 of 8, i.e. chose
  // them by PartitionOf(hash, 8): count per node from the real mapping.
  std::uint64_t node_hits[2] = {0, 0}, node_misses[2] = {0, 0};
  for (std::uint32_t p = 0; p < 8; ++p) {
    std::string v;
    const std::vector<std::string> keys = KeysOf("c0", p, 8, 1 + 8);
    const std::uint32_t node =
        (**h).node_of(base::PartitionOf(base::KeyHash(keys[0]), 512));
    node_hits[node] += static_cast<std::uint64_t>(HitsOf(0, p));
    for (int i = 0; i < MissesOf(0, p); ++i) {
      const std::string& k = keys[1 + i % 8];
      ++node_misses[(**h).node_of(base::PartitionOf(base::KeyHash(k), 512))];
    }
  }
  for (const auto& n : r.nodes) {
    EXPECT_EQ(n.hits, node_hits[n.node]) << "node " << n.node;
    EXPECT_EQ(n.misses, node_misses[n.node]) << "node " << n.node;
  }
  for (const auto& p : r.partitions) EXPECT_EQ(p.hits + p.misses, 0u);
  const std::string text = core::FormatPrometheus(r);
  for (const auto& b : CheckExposition(text)) ADD_FAILURE() << b;
  EXPECT_NE(text.find("numagrid_get_hits_total{grid=\"" + name +
                      "\",node=\"0\"} " + std::to_string(node_hits[0]) + "\n"),
            std::string::npos);
  EXPECT_EQ(text.find("numagrid_get_hits_total{grid=\"" + name +
                      "\",node=\"0\",partition="),
            std::string::npos);
}

TEST(Stats, JournalLagCountsUnjournaledChangesAndTheWorkerClearsIt) {
  TempDir dir;
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  ASSERT_TRUE(core::CreateGrid(name, testing::JournaledOptions(dir.path()),
                               SystemTopology())
                  .ok());
  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok());
  std::uint64_t payload = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string k = "key" + std::to_string(i);
    const std::string v(i, 'v');
    ASSERT_TRUE(g->Put(k, v).ok());
    payload += k.size() + v.size();
  }
  ASSERT_TRUE(g->Remove("key3").ok());
  payload += 4;
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  core::GridStatsReport r = core::CollectStats(**h);
  EXPECT_EQ(r.nodes[0].lag_records, 21u);  // no worker yet
  EXPECT_EQ(r.nodes[0].lag_bytes, payload);
  EXPECT_EQ(r.nodes[0].flush.count, 0u);
  {
    testing::WorkerThread worker(name);
    ASSERT_TRUE(g->Flush().ok());
  }
  r = core::CollectStats(**h);
  EXPECT_EQ(r.nodes[0].lag_records, 0u);
  EXPECT_EQ(r.nodes[0].lag_bytes, 0u);
  EXPECT_GE(r.nodes[0].flush.count, 1u);
  EXPECT_GE(r.nodes[0].lag.count, 1u);
  // No reclamation ran before the worker: each ring held all its changes.
  std::uint64_t high_water = 0;
  for (const auto& p : r.partitions) high_water += p.ring_high_water;
  EXPECT_EQ(high_water, 21u);
}

// Writers SIGKILLed at random points of their puts and removes (no journal
// worker runs, so every change stays in its ring): after the repair, each
// partition's lag in bytes is exactly the key + value bytes of the changes
// in its ring, whether a killed write was undone or rolled forward.
TEST(Stats, LagBytesMatchTheRingAfterWritersAreKilledMidWrite) {
  const std::uint64_t seed = testing::TestSeed();
  TempDir dir;
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  core::CreateOptions o = testing::JournaledOptions(dir.path());
  o.memory_bytes = 64ULL << 20;
  o.ring_capacity = 65536;  // room for every change of the test
  ASSERT_TRUE(core::CreateGrid(name, o, SystemTopology()).ok());
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 12; ++round) {
    std::vector<pid_t> writers;
    for (int w = 0; w < 2; ++w) {
      const std::uint64_t child_seed = rng();
      writers.push_back(ForkChild([&] {
        auto g = Grid::Attach(name);
        if (!g.ok()) return 1;
        std::mt19937_64 r(child_seed);
        for (;;) {
          const std::string k = "k" + std::to_string(r() % 500);
          if (r() % 4 == 0) {
            (void)g->Remove(k);
          } else {
            (void)g->Put(k, std::string(r() % 64, 'v'));
          }
        }
      }));
    }
    usleep(static_cast<useconds_t>(2000 + rng() % 8000));
    for (pid_t w : writers) {
      kill(w, SIGKILL);
      EXPECT_EQ(WaitChild(w), 128 + SIGKILL);
    }
    auto h = core::GridHandle::Attach(name);
    ASSERT_TRUE(h.ok());
    (void)core::RepairDeadProcesses(**h);
    for (std::uint32_t p = 0; p < (*h)->partition_count(); ++p) {
      (void)(*h)->partition(p).RepairIfOwnerDied();
    }
    const core::GridStatsReport r = core::CollectStats(**h);
    for (std::uint32_t p = 0; p < (*h)->partition_count(); ++p) {
      core::PartitionRef& part = (*h)->partition(p);
      std::uint64_t bytes = 0;
      std::uint64_t changes = 0;
      part.ReadChanges(part.state().journaled_seq.load(),
                       [&](const core::ChangeView& c) {
                         bytes += c.key.size() + c.value.size();
                         ++changes;
                         return true;
                       });
      EXPECT_EQ(r.partitions[p].lag_bytes, bytes)
          << "partition " << p << ", round " << round << ", seed " << seed;
      EXPECT_EQ(r.partitions[p].lag_records, changes);
    }
  }
}

TEST(Stats, HistogramBucketsAreLog2) {
  EXPECT_EQ(core::HistogramBucket(0), 0u);
  EXPECT_EQ(core::HistogramBucket(1), 0u);
  EXPECT_EQ(core::HistogramBucket(2), 1u);
  EXPECT_EQ(core::HistogramBucket(3), 2u);
  EXPECT_EQ(core::HistogramBucket(4), 2u);
  EXPECT_EQ(core::HistogramBucket(5), 3u);
  EXPECT_EQ(core::HistogramBucket(1ULL << 22), 22u);
  EXPECT_EQ(core::HistogramBucket((1ULL << 22) + 1), 23u);
  EXPECT_EQ(core::HistogramBucket(UINT64_MAX), 23u);
}

// ------------------------------------------------- the exposition format

// A strict reader of the text format 0.0.4, as numagrid emits it (no
// timestamps). Returns the problems found; empty when the text is valid.
std::vector<std::string> CheckExposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
  static const std::regex kType(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
  static const std::regex kLabel(
      R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\[\\"n]|[^"\\\n])*)\"(,|$))");
  static const std::regex kValue(
      R"([+-]?(Inf|NaN|[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?))");
  std::vector<std::string> bad;
  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helped;
  std::set<std::string> series;
  std::string family;  // the family whose samples may follow
  // histogram series (labels without le) -> (le, cumulative count) in order
  std::map<std::string, std::vector<std::pair<std::string, double>>> buckets;
  std::map<std::string, double> counts;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  if (text.empty() || text.back() != '\n') bad.push_back("no final newline");
  while (std::getline(in, line)) {
    ++n;
    const std::string where = "line " + std::to_string(n) + ": " + line;
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      if (!helped.insert(m[1]).second) bad.push_back("second HELP: " + where);
      family = m[1];
      continue;
    }
    if (std::regex_match(line, m, kType)) {
      if (m[1] != family) bad.push_back("TYPE without HELP first: " + where);
      if (!types.emplace(m[1], m[2]).second) {
        bad.push_back("second TYPE: " + where);
      }
      continue;
    }
    if (!line.empty() && line[0] == '#') {
      bad.push_back("unknown comment: " + where);
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      bad.push_back("not a sample: " + where);
      continue;
    }
    const std::string name = m[1];
    const std::string value = m[4];
    if (!std::regex_match(value, kValue)) bad.push_back("bad value: " + where);
    if (name.rfind("numagrid_", 0) != 0) bad.push_back("prefix: " + where);
    // Labels, in order; `le` kept apart.
    std::string labels_body = m[3];
    std::vector<std::pair<std::string, std::string>> labels;
    std::string le;
    bool le_seen = false;
    for (std::size_t pos = 0; pos < labels_body.size();) {
      std::smatch lm;
      const std::string rest = labels_body.substr(pos);
      if (!std::regex_search(rest, lm, kLabel,
                             std::regex_constants::match_continuous)) {
        bad.push_back("bad labels: " + where);
        break;
      }
      if (lm[1] == "le") {
        le = lm[2];
        le_seen = true;
      } else {
        labels.emplace_back(lm[1], lm[2]);
      }
      pos += static_cast<std::size_t>(lm.length(0));
    }
    std::set<std::string> label_names;
    std::string key;
    for (const auto& [k, v] : labels) {
      if (!label_names.insert(k).second) bad.push_back("dup label: " + where);
      key += k + "=" + v + ",";
    }
    if (label_names.count("grid") == 0)
      bad.push_back("no grid label: " + where);
    if (!series.insert(name + "{" + key + (le_seen ? "le=" + le : "") + "}")
             .second) {
      bad.push_back("duplicate series: " + where);
    }
    // The sample must belong to the family announced last.
    const auto t = types.find(family);
    if (t == types.end()) {
      bad.push_back("sample before HELP/TYPE: " + where);
      continue;
    }
    const std::string& type = t->second;
    if (type == "histogram") {
      if (name == family + "_bucket") {
        if (!le_seen) bad.push_back("bucket without le: " + where);
        buckets[family + "{" + key].emplace_back(le, std::stod(value));
      } else if (name == family + "_count") {
        counts[family + "{" + key] = std::stod(value);
      } else if (name != family + "_sum") {
        bad.push_back("not of family " + family + ": " + where);
      }
    } else {
      if (name != family)
        bad.push_back("not of family " + family + ": " + where);
      if (le_seen) bad.push_back("le outside a histogram: " + where);
      const bool total =
          name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
      if ((type == "counter") != total) {
        bad.push_back("counter iff _total: " + where);
      }
    }
  }
  for (const auto& [key, bs] : buckets) {
    double prev_le = -1;
    double prev = 0;
    for (const auto& [le, v] : bs) {
      const double bound = le == "+Inf" ? HUGE_VAL : std::stod(le);
      if (bound <= prev_le) bad.push_back("le not increasing: " + key);
      if (v < prev) bad.push_back("buckets not cumulative: " + key);
      prev_le = bound;
      prev = v;
    }
    if (bs.empty() || bs.back().first != "+Inf") {
      bad.push_back("no +Inf bucket: " + key);
    } else if (counts.count(key) == 0 || counts[key] != bs.back().second) {
      bad.push_back("+Inf bucket != _count: " + key);
    }
  }
  return bad;
}

TEST(Prometheus, ParserRejectsBrokenExpositions) {
  const std::string ok =
      "# HELP numagrid_x_total X.\n# TYPE numagrid_x_total counter\n"
      "numagrid_x_total{grid=\"g\"} 1\n";
  EXPECT_TRUE(CheckExposition(ok).empty());
  // Each of these must be caught.
  const std::string broken[] = {
      "numagrid_x_total{grid=\"g\"} 1\n",       // no HELP/TYPE
      ok + "numagrid_x_total{grid=\"g\"} 2\n",  // duplicate series
      "# HELP numagrid_x X.\n# TYPE numagrid_x counter\n"
      "numagrid_x{grid=\"g\"} 1\n",  // counter without _total
      "# HELP numagrid_h H.\n# TYPE numagrid_h histogram\n"
      "numagrid_h_bucket{grid=\"g\",le=\"1\"} 3\n"
      "numagrid_h_bucket{grid=\"g\",le=\"+Inf\"} 2\n"
      "numagrid_h_sum{grid=\"g\"} 1\nnumagrid_h_count{grid=\"g\"} 2\n",
      "# HELP numagrid_h H.\n# TYPE numagrid_h histogram\n"
      "numagrid_h_bucket{grid=\"g\",le=\"1\"} 3\n"
      "numagrid_h_sum{grid=\"g\"} 1\nnumagrid_h_count{grid=\"g\"} 3\n",
      "# HELP numagrid_g G.\n# TYPE numagrid_g gauge\nnumagrid_g{grid=g} 1\n",
      "# HELP numagrid_g G.\n# TYPE numagrid_g gauge\n"
      "numagrid_g{grid=\"g\"} one\n",
  };
  for (const auto& b : broken) EXPECT_FALSE(CheckExposition(b).empty()) << b;
}

// The sum of the values of every sample of `family` (exactly that name,
// not its _bucket/_sum/_count lines) in exposition `text`.
std::uint64_t SumOfSamples(const std::string& text, const std::string& family) {
  std::istringstream in(text);
  std::string line;
  std::uint64_t sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(family + "{", 0) != 0) continue;
    sum += std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

TEST(Prometheus, ExpositionOfALiveJournaledGridIsStrictlyValid) {
  TempDir dir;
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  ASSERT_TRUE(core::CreateGrid(name, testing::JournaledOptions(dir.path()),
                               SystemTopology())
                  .ok());
  ASSERT_EQ(Workload(name, "a"), 0);
  {
    testing::WorkerThread worker(name);
    auto g = Grid::Attach(name);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(g->Put("more", "x").ok());
    ASSERT_TRUE(g->Flush().ok());
  }
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  const std::string text = core::FormatPrometheus(core::CollectStats(**h));
  const std::vector<std::string> bad = CheckExposition(text);
  for (const auto& b : bad) ADD_FAILURE() << b;
  EXPECT_NE(text.find("numagrid_journal_flush_duration_seconds_bucket{grid=\"" +
                      name + "\",node=\"0\",le=\"+Inf\"}"),
            std::string::npos)
      << text;
  EXPECT_EQ(SumOfSamples(text, "numagrid_get_misses_total"),
            static_cast<std::uint64_t>(kMisses))
      << text;

  // promtool, where installed, must agree.
  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    const std::string file = dir.path() + "/metrics.txt";
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    EXPECT_EQ(std::system(("promtool check metrics < " + file).c_str()), 0);
  }
}

// ---------------------------------- dashboard and alert rules in docs/

// The repository root, from this file's path (tests/core/stats_test.cc).
std::string SourceRoot() {
  std::string f = __FILE__;
  for (int i = 0; i < 3; ++i) f = f.substr(0, f.rfind('/'));
  return f;
}

std::string ReadAll(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

// Every numagrid_* name in `text` that is not a family of `exposition`
// (nor a histogram family's _bucket, _sum or _count).
std::set<std::string> UnknownMetricNames(const std::string& text,
                                         const std::string& exposition) {
  std::set<std::string> families;
  static const std::regex kHelp(R"(# HELP (numagrid_[a-z_]+) )");
  for (auto it =
           std::sregex_iterator(exposition.begin(), exposition.end(), kHelp);
       it != std::sregex_iterator(); ++it) {
    families.insert((*it)[1]);
  }
  std::set<std::string> unknown;
  static const std::regex kName(R"(numagrid_[a-z_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kName);
       it != std::sregex_iterator(); ++it) {
    std::string n = (*it)[0];
    if (families.count(n) != 0) continue;
    bool found = false;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::size_t len = std::strlen(suffix);
      if (n.size() > len && n.compare(n.size() - len, len, suffix) == 0 &&
          families.count(n.substr(0, n.size() - len)) != 0) {
        found = true;
      }
    }
    if (!found) unknown.insert(n);
  }
  return unknown;
}

TEST(Prometheus, DashboardAndAlertRulesUseOnlyExportedMetrics) {
  TempDir dir;
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  ASSERT_TRUE(core::CreateGrid(name, testing::JournaledOptions(dir.path()),
                               SystemTopology())
                  .ok());
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok());
  const std::string exposition =
      core::FormatPrometheus(core::CollectStats(**h));
  for (const char* doc :
       {"/docs/grafana/numagrid.json", "/docs/prometheus/numagrid-rules.yml",
        "/docs/monitoring.md"}) {
    const std::string text = ReadAll(SourceRoot() + doc);
    ASSERT_FALSE(text.empty()) << SourceRoot() + doc;
    for (const auto& n : UnknownMetricNames(text, exposition)) {
      ADD_FAILURE() << doc << " names " << n << ", which is not exported";
    }
  }
  // And the test can see a wrong name.
  EXPECT_EQ(
      UnknownMetricNames("rate(numagrid_get_hit_total[5m])", exposition).size(),
      1u);
  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    EXPECT_EQ(std::system(("promtool check rules " + SourceRoot() +
                           "/docs/prometheus/numagrid-rules.yml >/dev/null")
                              .c_str()),
              0);
  }
}

// ------------------------------------------------------------ /metrics

// Runs `command` and returns its standard output.
std::string Capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

bool HaveCurl() { return std::system("command -v curl >/dev/null 2>&1") == 0; }

TEST(MetricsServer, ServesTheExpositionAndNothingElse) {
  if (!HaveCurl()) GTEST_SKIP() << "curl is not installed";
  TempDir dir;
  const std::string name = UniqueName("st");
  GridGuard guard(name);
  ASSERT_TRUE(core::CreateGrid(name, testing::JournaledOptions(dir.path()),
                               SystemTopology())
                  .ok());
  ASSERT_EQ(Workload(name, "a"), 0);
  auto listen = core::ParseMetricsListen("127.0.0.1:0", false);
  ASSERT_TRUE(listen.ok());
  auto srv = core::MetricsServer::Start(name, *listen);
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  const std::string base = "http://127.0.0.1:" + std::to_string((*srv)->port());

  const std::string body =
      Capture("curl -sS --max-time 10 " + base + "/metrics");
  for (const auto& b : CheckExposition(body)) ADD_FAILURE() << b;
  EXPECT_EQ(SumOfSamples(body, "numagrid_get_misses_total"),
            static_cast<std::uint64_t>(kMisses))
      << body;
  EXPECT_EQ(Capture("curl -sS --max-time 10 -o /dev/null -w '%{http_code} "
                    "%{content_type}' " +
                    base + "/metrics"),
            "200 text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(Capture("curl -sS --max-time 10 -o /dev/null -w '%{http_code}' " +
                    base + "/"),
            "404");
  EXPECT_EQ(Capture("curl -sS --max-time 10 -o /dev/null -w '%{http_code}' " +
                    base + "/metricsx"),
            "404");
  EXPECT_EQ(Capture("curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "
                    "-X POST " +
                    base + "/metrics"),
            "405");
  // Fresh numbers on every request.
  ASSERT_EQ(Workload(name, "b"), 0);
  EXPECT_EQ(SumOfSamples(Capture("curl -sS --max-time 10 " + base + "/metrics"),
                         "numagrid_get_misses_total"),
            static_cast<std::uint64_t>(2 * kMisses));
}

TEST(MetricsServer, RefusesANonLoopbackAddressUnlessAllowed) {
  EXPECT_TRUE(core::ParseMetricsListen("127.0.0.1:9464", false).ok());
  EXPECT_TRUE(core::ParseMetricsListen("127.3.2.1:9464", false).ok());
  EXPECT_TRUE(core::ParseMetricsListen("localhost:9464", false).ok());
  EXPECT_EQ(core::ParseMetricsListen("0.0.0.0:9464", false).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(core::ParseMetricsListen("10.1.2.3:9464", false).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(core::ParseMetricsListen("0.0.0.0:9464", true).ok());
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:9x", "nohost:1", ":80"}) {
    EXPECT_FALSE(core::ParseMetricsListen(bad, true).ok()) << bad;
  }
}

}  // namespace
}  // namespace numagrid
