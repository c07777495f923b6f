// Eviction under SIGKILL (DESIGN invariant 2, docs/eviction.md): forked
// writers keep a small grid full, so that they evict all the time, while
// forked readers read; writers (at random instants, or stopped inside their
// changes, where an eviction is half-made), readers and journal workers are
// SIGKILLed at random points. After each round the repair (`numagrid check
// --repair`) must leave a grid with no problem and no leaked byte, and no
// reader may ever have been given a value that was never written, or one
// older than a put that had returned before its read began.
//
// The journaled variant adds a forked journal worker that evicts in the
// background between the watermarks, SIGKILLed and restarted: the journal
// replayed must then give exactly the live grid (DESIGN invariant 4), and
// so must a recovery from it.
//
// Randomized: each test prints its seed; set NUMAGRID_TEST_SEED to replay one
// (NUMAGRID_CRASH_ROUNDS sets the number of rounds, for a longer soak). No
// test asserts a time: every wait is bounded, and a hang is caught by the
// ctest TIMEOUT.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/eviction_config.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/journal_worker.h"
#include "core/partition_layout.h"
#include "core/recovery.h"
#include "io/uring_probe.h"
#include "numagrid/grid.h"
#include "shm/robust_mutex.h"
#include "tests/io/fault_journal_device.h"
#include "tests/support/journal_grid.h"
#include "tests/support/shared_block.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid {
namespace {

using testing::ForkChild;
using testing::Mix;
using testing::SharedBlock;
using testing::TestSeed;
using testing::UniqueName;
using testing::WaitChild;

constexpr int kKilled = 128 + SIGKILL;  // WaitChild's code for a SIGKILL

constexpr int kWriters = 2;
constexpr int kKeys = 700;  // per writer: with 16 B..4 KiB values, ~1.4 MiB
constexpr int kMaxReaders = 2;

int RoundsFromEnv(int fallback) {
  const char* env = std::getenv("NUMAGRID_CRASH_ROUNDS");
  if (env == nullptr || *env == '\0') return fallback;
  const int n = std::atoi(env);
  return n > 0 ? n : fallback;
}

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string all;
  for (const auto& p : problems) all += "\n  " + p;
  return all;
}

// ------------------------------------------------------------- the values

std::string Key(int w, int k) {
  return "w" + std::to_string(w) + "k" + std::to_string(k);
}

// "<key>c<counter>|" and a pad of 0..4000 bytes that follows from them, so
// that records of many size classes replace and evict each other.
std::string Value(int w, int k, std::uint64_t c) {
  std::string v = Key(w, k) + "c" + std::to_string(c) + "|";
  const std::uint64_t h = Mix((static_cast<std::uint64_t>(w) << 40) ^
                              (static_cast<std::uint64_t>(k) << 24) ^ c);
  const std::size_t pad = h % 4000;
  for (std::size_t i = 0; i < pad; ++i) {
    v.push_back(static_cast<char>('a' + ((h >> 13) + i * 7) % 26));
  }
  return v;
}

// The counter of a value of key (w, k); 0 if `v` is not one Value made.
std::uint64_t CounterOf(std::string_view v, int w, int k) {
  const std::string prefix = Key(w, k) + "c";
  if (v.size() <= prefix.size() || v.substr(0, prefix.size()) != prefix) {
    return 0;
  }
  std::uint64_t c = 0;
  std::size_t i = prefix.size();
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    c = c * 10 + static_cast<std::uint64_t>(v[i] - '0');
  }
  return c != 0 && v == Value(w, k, c) ? c : 0;
}

// "w<w>k<k>" back to (w, k); false if `key` is not one of ours.
bool ParseKey(std::string_view key, int* w, int* k) {
  if (key.size() < 4 || key[0] != 'w') return false;
  const std::size_t at = key.find('k');
  if (at == std::string_view::npos || at < 2 || at + 1 >= key.size()) {
    return false;
  }
  *w = std::atoi(std::string(key.substr(1, at - 1)).c_str());
  *k = std::atoi(std::string(key.substr(at + 1)).c_str());
  return *w >= 0 && *w < kWriters && *k >= 0 && *k < kKeys &&
         Key(*w, *k) == key;
}

// ------------------------------------------------------- shared with children

// Per key, the counter of the last put its writer began (stored before the
// put) and of the last one that returned OK (stored after). Counters of a
// key only grow, across the writers that follow each other in its lane.
struct Ledger {
  std::atomic<std::uint64_t> attempted[kWriters][kKeys] = {};
  std::atomic<std::uint64_t> acked[kWriters][kKeys] = {};
  std::atomic<int> writer_ready[kWriters] = {};
  std::atomic<int> reader_ready[kMaxReaders] = {};
  std::atomic<bool> readers_stop{false};
  std::atomic<bool> writers_stop{false};
  std::atomic<std::uint64_t> puts_ok{0};
  std::atomic<std::uint64_t> refused{0};  // kResourceExhausted
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<int> failed{0};
  char message[1024] = {};
  char first_refusal[512] = {};

  void Fail(const std::string& what) {
    if (failed.exchange(1) == 0) {
      std::snprintf(message, sizeof message, "%s", what.c_str());
    }
    std::fprintf(stderr, "child failed: %s\n", what.c_str());
  }
};

// A writer: puts (and now and then removes) keys of lane w until killed or
// told to stop (exit 0). Exits 3 on an unexpected error, 2 if it cannot
// attach.
int WriterChild(const std::string& name, Ledger* l, int w, std::uint64_t seed) {
  auto g = Grid::Attach(name);
  if (!g.ok()) {
    l->Fail("writer attach: " + g.status().ToString());
    return 2;
  }
  std::uint64_t r = seed;
  for (std::uint64_t i = 0; !l->writers_stop.load(std::memory_order_relaxed);
       ++i) {
    if (i == 1) l->writer_ready[w].store(1);
    r = Mix(r);
    const int k = static_cast<int>(r % kKeys);
    const std::string key = Key(w, k);
    if ((r >> 32) % 20 == 0) {
      const Status s = g->Remove(key);
      if (!s.ok() && s.code() != StatusCode::kNotFound &&
          s.code() != StatusCode::kResourceExhausted) {
        l->Fail("remove " + key + ": " + s.ToString());
        return 3;
      }
      continue;
    }
    const std::uint64_t c = l->attempted[w][k].load() + 1;
    l->attempted[w][k].store(c);
    auto v = g->Put(key, Value(w, k, c));
    if (v.ok()) {
      l->acked[w][k].store(c);
      l->puts_ok.fetch_add(1, std::memory_order_relaxed);
    } else if (v.status().code() == StatusCode::kResourceExhausted) {
      if (l->refused.fetch_add(1) == 0) {
        std::snprintf(l->first_refusal, sizeof l->first_refusal, "%s",
                      v.status().ToString().c_str());
      }
    } else {
      l->Fail("put " + key + ": " + v.status().ToString());
      return 3;
    }
  }
  return 0;
}

// A reader: reads keys until told to stop (exit 0) or killed. A value must
// be one its writer began, and no older than the last put that had returned
// before the read began. Exits 3 otherwise.
int ReaderChild(const std::string& name, Ledger* l, int reader,
                std::uint64_t seed) {
  auto g = Grid::Attach(name);
  if (!g.ok()) {
    l->Fail("reader attach: " + g.status().ToString());
    return 2;
  }
  std::uint64_t r = seed;
  std::string v;
  for (std::uint64_t i = 0; !l->readers_stop.load(std::memory_order_relaxed);
       ++i) {
    if (i == 1) l->reader_ready[reader].store(1);
    r = Mix(r);
    const int w = static_cast<int>(r % kWriters);
    const int k = static_cast<int>((r >> 8) % kKeys);
    const std::uint64_t acked = l->acked[w][k].load();
    const Status s = g->Get(Key(w, k), &v);
    if (s.code() == StatusCode::kNotFound) {
      l->misses.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!s.ok()) {
      l->Fail("get " + Key(w, k) + ": " + s.ToString());
      return 3;
    }
    l->hits.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t c = CounterOf(v, w, k);
    const std::uint64_t attempted = l->attempted[w][k].load();
    if (c == 0 || c > attempted) {
      l->Fail("read " + Key(w, k) + ": a value never written ('" +
              v.substr(0, 32) + "', " + std::to_string(v.size()) + " bytes)");
      return 3;
    }
    if (c < acked) {
      l->Fail("read " + Key(w, k) + ": counter " + std::to_string(c) +
              ", older than put " + std::to_string(acked) +
              ", which had returned before the read began");
      return 3;
    }
  }
  return 0;
}

// --------------------------------------------------------------- the parent

// Kills and reaps, when it goes out of scope, every child still listed (a
// failed assertion must not leave children running after the test).
class ChildGuard {
 public:
  explicit ChildGuard(std::vector<pid_t>* pids) : pids_(pids) {}
  ~ChildGuard() {
    for (pid_t& pid : *pids_) {
      if (pid <= 0) continue;
      kill(pid, SIGKILL);
      (void)WaitChild(pid);
      pid = -1;
    }
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;

 private:
  std::vector<pid_t>* pids_;
};

// Waits until `*ready` is set by child `*pid`; false (and the child reaped,
// *pid = -1) if it ended first.
bool WaitReady(const std::atomic<int>* ready, pid_t* pid) {
  while (ready->load() == 0) {
    int st = 0;
    if (waitpid(*pid, &st, WNOHANG) != 0) {
      *pid = -1;
      return false;
    }
    usleep(50);
  }
  return true;
}

// Stops every listed child (SIGSTOP) and waits until it has stopped.
void StopAll(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) kill(pid, SIGSTOP);
  for (pid_t pid : pids) {
    int st = 0;
    while (waitpid(pid, &st, WUNTRACED) < 0) {
    }
    ASSERT_TRUE(WIFSTOPPED(st)) << "child " << pid << " ended (status " << st
                                << ") instead of stopping";
  }
}

// The partitions whose lock someone else holds now (probed with a try-lock,
// released at once). Only meaningful while the holders are stopped.
std::set<std::uint32_t> LockedPartitions(core::GridHandle& h) {
  std::set<std::uint32_t> held;
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    auto& lock = const_cast<shm::RobustMutex&>(h.partition(p).state().lock);
    switch (lock.TryLock()) {
      case shm::LockResult::kAcquired:
        lock.Unlock();
        break;
      case shm::LockResult::kAcquiredOwnerDied:
        ADD_FAILURE() << "partition " << p << ": lock holder died unexpectedly";
        lock.MarkConsistent();
        lock.Unlock();
        break;
      default:
        held.insert(p);
    }
  }
  return held;
}

// CheckGrid with repair, then without: no problem (the accounting identity,
// live + retired + free + waste + tail = chunks owned, is one: no leaked
// byte), no dead process slot left, no write intent left active.
void ExpectRepairedClean(const std::string& name, const std::string& when,
                         std::uint64_t* partitions_repaired) {
  auto rep = core::CheckGrid(name, /*repair=*/true);
  ASSERT_TRUE(rep.ok()) << when << ": " << rep.status().ToString();
  EXPECT_TRUE(rep->problems.empty())
      << when
      << ": CheckGrid --repair found problems:" << JoinProblems(rep->problems);
  EXPECT_EQ(rep->slots_repaired, rep->dead_slots.size()) << when;
  *partitions_repaired += rep->partitions_repaired;
  auto quiet = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(quiet.ok()) << when << ": " << quiet.status().ToString();
  EXPECT_TRUE(quiet->problems.empty())
      << when << ", after repair: CheckGrid found problems:"
      << JoinProblems(quiet->problems);
  EXPECT_TRUE(quiet->dead_slots.empty()) << when;
  EXPECT_EQ(quiet->partitions_repaired, 0U) << when;
}

// Every entry of the grid is a value its writer began, no older than the
// last put of its key that returned.
void ExpectOnlyWrittenValues(const std::string& name, const Ledger& l,
                             const std::string& when) {
  for (const auto& [key, e] : testing::ReadGridState(name)) {
    int w = 0, k = 0;
    if (!ParseKey(key, &w, &k)) {
      ADD_FAILURE() << when << ": a key never written: '" << key << "'";
      continue;
    }
    const std::uint64_t c = CounterOf(e.value, w, k);
    EXPECT_TRUE(c != 0 && c <= l.attempted[w][k].load())
        << when << ": " << key << " holds a value never written ('"
        << e.value.substr(0, 32) << "')";
    EXPECT_GE(c, l.acked[w][k].load())
        << when << ": " << key
        << " holds a value older than a put that returned";
  }
}

std::uint64_t Evictions(core::GridHandle& h) {
  std::uint64_t n = 0;
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    n += h.partition(p).state().counters.evictions.load();
  }
  return n;
}

// What the kill rounds did, for the summary line.
struct RoundStats {
  std::uint64_t rounds = 0, writer_kills = 0, reader_kills = 0,
                kills_holding_lock = 0, kills_in_change = 0, targeted = 0,
                partitions_repaired = 0;
};

// One round's children: writers and readers, killed or stopped at the end.
class Round {
 public:
  Round(const std::string& name, Ledger* l, std::uint64_t seed, int readers)
      : guard_(&pids_) {
    for (int w = 0; w < kWriters; ++w) {
      const std::uint64_t s = Mix(seed ^ static_cast<std::uint64_t>(w));
      pids_.push_back(
          ForkChild([name, l, w, s] { return WriterChild(name, l, w, s); }));
    }
    for (int i = 0; i < readers; ++i) {
      const std::uint64_t s =
          Mix(seed ^ (0x100 + static_cast<std::uint64_t>(i)));
      pids_.push_back(
          ForkChild([name, l, i, s] { return ReaderChild(name, l, i, s); }));
    }
    readers_ = readers;
    l_ = l;
  }

  // Waits until every child got going; false if one ended first.
  bool WaitAllReady() {
    for (int w = 0; w < kWriters; ++w) {
      if (!WaitReady(&l_->writer_ready[w], &pids_[w])) return false;
    }
    for (int i = 0; i < readers_; ++i) {
      if (!WaitReady(&l_->reader_ready[i], &pids_[kWriters + i])) return false;
    }
    return true;
  }

  // Stops the writers until one is caught holding a partition lock (with
  // `inside_change`: inside an undo-logged change too, the lock held and
  // its write intent active, where a change, an eviction among them, is
  // half-made), for at most `tries` attempts; they stay stopped. Returns
  // the locks held; *in_change: one was caught inside a change.
  std::set<std::uint32_t> StopWritersInALock(core::GridHandle& h,
                                             std::uint64_t* r, int tries,
                                             bool inside_change,
                                             bool* in_change) {
    std::vector<pid_t> writers(pids_.begin(), pids_.begin() + kWriters);
    std::set<std::uint32_t> held;
    *in_change = false;
    for (int t = 0; t < tries; ++t) {
      StopAll(writers);
      if (::testing::Test::HasFatalFailure()) return held;
      // A journal worker killed mid-round may have died holding a lock
      // that nobody took since: repair it first, as its next locker would.
      for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
        (void)h.partition(p).RepairIfOwnerDied();
      }
      held = LockedPartitions(h);
      for (std::uint32_t p : held) {
        // The holder is stopped: its intent stays as it is while we look.
        if (h.partition(p).state().intent.state == core::kIntentActive) {
          *in_change = true;
        }
      }
      if ((inside_change ? *in_change : !held.empty()) || t + 1 == tries) {
        break;
      }
      for (pid_t pid : writers) kill(pid, SIGCONT);
      *r = Mix(*r);
      usleep(static_cast<useconds_t>(*r % 300));
    }
    return held;
  }

  // Kills the first reader now (it may die pinned: then reclamation waits
  // for the repair).
  void KillAReader(const std::string& when, RoundStats* st) {
    pid_t& pid = pids_[kWriters];
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    EXPECT_EQ(WaitChild(pid), kKilled)
        << when << ": reader 0 ended by itself: " << l_->message;
    pid = -1;
    ++st->reader_kills;
  }

  // Kills the writers if `kill_writers` and the readers if `kill_readers`,
  // else tells them to stop; the writers first (a writer told to stop
  // should not wait for reclamation behind a reader killed just then).
  // Every child must end as told.
  void End(bool kill_writers, bool kill_readers, const std::string& when,
           RoundStats* st) {
    EndSome(0, kWriters, kill_writers, &l_->writers_stop, when,
            &st->writer_kills);
    EndSome(kWriters, pids_.size(), kill_readers, &l_->readers_stop, when,
            &st->reader_kills);
    l_->readers_stop.store(false);
    l_->writers_stop.store(false);
    for (auto& w : l_->writer_ready) w.store(0);
    for (auto& r : l_->reader_ready) r.store(0);
  }

 private:
  // Ends children [from, to): SIGKILL, or `*stop` and exit 0.
  void EndSome(std::size_t from, std::size_t to, bool kill_them,
               std::atomic<bool>* stop, const std::string& when,
               std::uint64_t* kills) {
    for (std::size_t c = from; c < to; ++c) {
      if (kill_them && pids_[c] > 0) kill(pids_[c], SIGKILL);
    }
    if (!kill_them) stop->store(true);
    for (std::size_t c = from; c < to; ++c) {
      if (pids_[c] <= 0) continue;
      const int code = WaitChild(pids_[c]);
      pids_[c] = -1;
      if (kill_them) {
        EXPECT_EQ(code, kKilled)
            << when << ": child " << c << " ended by itself: " << l_->message;
        ++*kills;
      } else {
        EXPECT_EQ(code, 0) << when << ": child " << c << ": " << l_->message;
      }
    }
  }

  std::vector<pid_t> pids_;
  ChildGuard guard_;
  int readers_ = 0;
  Ledger* l_ = nullptr;
};

// How a kill round goes (KillRound).
struct RoundOptions {
  // No other process takes partition locks (no worker), so the partitions
  // the check repairs are exactly those whose locks the killed writers held.
  bool exact_repairs = true;
  // Writers are SIGKILLed at the end of a round (else told to stop).
  bool kill_writers = true;
  // Three rounds in four are targeted (else none): they stop the writers
  // until one is caught holding a lock (with `inside_change`, inside a
  // change: see StopWritersInALock), at most `tries` times, and kill them
  // there; the others kill them at a random instant.
  bool targeted = true;
  bool inside_change = false;
  int tries = 1000;
  // Half of the rounds kill a reader in the middle of the round, while the
  // writers go on.
  bool kill_a_reader = false;
  // If set, runs in the middle of the round (the journaled test kills its
  // worker there).
  std::function<void(std::uint64_t*)> between;
};

// One kill round on grid `name`: writers and readers, a random delay, then
// the writers die (at a random instant, or stopped inside a lock), the
// readers too now and then; then the repair must leave a clean grid that
// holds only values that were written.
void KillRound(const std::string& name, core::GridHandle& h, Ledger* l,
               std::uint64_t seed, int round, const RoundOptions& ro,
               RoundStats* st) {
  const std::string when = "round " + std::to_string(round);
  std::uint64_t r = Mix(seed ^ (static_cast<std::uint64_t>(round) << 20));
  const int readers = 1 + static_cast<int>(r % kMaxReaders);
  Round children(name, l, r, readers);
  r = Mix(r);
  // Most rounds let every child get going; some kill them while they may
  // still be attaching.
  if (r % 8 != 0) {
    ASSERT_TRUE(children.WaitAllReady())
        << when << ": a child ended before it got going: " << l->message;
  }
  r = Mix(r);
  usleep(static_cast<useconds_t>(1000 + r % 20000));
  if (ro.between) ro.between(&r);
  if (ro.kill_a_reader && (r >> 32) % 2 == 0) children.KillAReader(when, st);
  r = Mix(r);
  usleep(static_cast<useconds_t>(r % 10000));
  r = Mix(r);
  std::set<std::uint32_t> held;
  const bool targeted = ro.kill_writers && ro.targeted && r % 4 != 0;
  if (targeted) {
    ++st->targeted;
    bool in_change = false;
    held = children.StopWritersInALock(h, &r, ro.tries, ro.inside_change,
                                       &in_change);
    if (!held.empty()) ++st->kills_holding_lock;
    if (in_change) ++st->kills_in_change;
  }
  r = Mix(r);
  children.End(ro.kill_writers, /*kill_readers=*/r % 2 == 0, when, st);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ++st->rounds;
  std::uint64_t repaired = 0;
  ExpectRepairedClean(name, when, &repaired);
  if (targeted && ro.exact_repairs) {
    EXPECT_EQ(repaired, held.size())
        << when << ": writers killed holding " << held.size()
        << " partition lock(s); the check must repair exactly those";
  }
  st->partitions_repaired += repaired;
  ExpectOnlyWrittenValues(name, *l, when);
}

void PrintStats(const RoundStats& st, const Ledger& l, core::GridHandle& h) {
  std::cout << "[ kills    ] " << st.rounds << " rounds, " << st.writer_kills
            << " writers and " << st.reader_kills << " readers killed, "
            << st.kills_holding_lock << " of " << st.targeted
            << " targeted rounds caught a writer holding a lock ("
            << st.kills_in_change << " inside a change), "
            << st.partitions_repaired << " partitions repaired; "
            << l.puts_ok.load() << " puts OK, " << l.refused.load()
            << " refused (first: '" << l.first_refusal << "'), " << Evictions(h)
            << " evictions; reads: " << l.hits.load() << " hits, "
            << l.misses.load() << " misses" << std::endl;
}

// Kill rounds on a small memory-only grid whose writers evict all the time.
void RunMemoryKills(const RoundOptions& ro, int rounds,
                    std::uint32_t ring_wait_ms) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  const std::string name = UniqueName("ek");
  testing::GridGuard destroy(name);
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 2ULL << 20;
  o.max_value_bytes = 4096;
  o.ring_capacity = 32;
  o.bind = false;
  // Generous: only a bug makes a writer wait this long for a lock.
  o.lock_timeout_ms = 20000;
  o.ring_wait_ms = ring_wait_ms;
  o.eviction.policy = core::kEvictLru;
  auto c = core::CreateGrid(name, o, testing::SystemTopology());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok()) << h.status().ToString();

  SharedBlock<Ledger> ledger;
  RoundStats st;
  for (int round = 0; round < rounds && !::testing::Test::HasFailure();
       ++round) {
    KillRound(name, **h, ledger.get(), seed, round, ro, &st);
  }
  PrintStats(st, *ledger.get(), **h);
  EXPECT_EQ(ledger->failed.load(), 0) << ledger->message;
  EXPECT_GT(Evictions(**h), 0U) << "the writers never filled the grid";
  EXPECT_GE(st.partitions_repaired, st.kills_holding_lock);
  auto rep = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->problems.empty()) << JoinProblems(rep->problems);
}

// Readers killed at random points (a dead reader's pinned epoch holds back
// the reclamation that eviction needs until the repair), writers evicting
// all the time; the writers stop at the end of each round.
TEST(EvictionKills, ReadersKilledWhileWritersEvictLeaveACleanGrid) {
  RoundOptions ro;
  ro.kill_writers = false;
  ro.kill_a_reader = true;
  // A writer that finds the ring full behind a dead reader's pin gives up
  // soon (a refused put; the repair after the round frees the ring).
  RunMemoryKills(ro, RoundsFromEnv(150), /*ring_wait_ms=*/10);
}

// Writers stopped inside their changes while they evict. This test found
// that a writer killed between the two stores of PartitionTx::PrepareCommit
// was rolled forward instead of undone (KilledWriters.
// WriterKilledInsideItsCommitPointIsUndone in tests/crash/kill_test.cc):
// "ring entry N put a record that is neither in the index nor replaced
// later", about one run in ten. Catching writers inside their changes, it
// also finds a change that skips its undo log within a few rounds.
TEST(EvictionKills, WritersKilledWhileEvictingLeaveACleanGrid) {
  RoundOptions ro;
  ro.inside_change = true;
  // Generous: only a bug makes a writer wait this long here.
  RunMemoryKills(ro, RoundsFromEnv(80), /*ring_wait_ms=*/20000);
}

// ------------------------------------------------------ the journaled variant

std::atomic<bool> g_worker_stop{false};
extern "C" void OnTerm(int) { g_worker_stop.store(true); }

// A child that journals node `node` until SIGTERM (then drains; exit 0) or
// SIGKILL; it evicts in the background as every journal worker does.
pid_t StartWorker(const std::string& name, std::uint32_t node) {
  return ForkChild([name, node] {
    struct sigaction sa {};
    sa.sa_handler = OnTerm;
    sigaction(SIGTERM, &sa, nullptr);
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) return 2;
    core::JournalWorkerOptions o;
    o.node = node;
    o.stop = &g_worker_stop;
    // Replacing a killed worker must not wait on long back-offs.
    o.max_backoff_ms = 20;
    if (!io::ProbeUring("/tmp").available) {
      // io_uring is refused here: plain files (the worker's logic is what
      // this test is about; tests/io checks the device).
      o.make_device = []() -> Result<std::unique_ptr<io::JournalDevice>> {
        return std::unique_ptr<io::JournalDevice>(
            std::make_unique<io::testing::FaultJournalDevice>());
      };
    }
    Status s = core::RunJournalWorker(**h, o);
    if (!s.ok()) std::fprintf(stderr, "worker: %s\n", s.ToString().c_str());
    return s.ok() ? 0 : 1;
  });
}

// The records of every node's journal, node after node (each partition's
// records are in one node's journal, which ModelOf needs in order).
std::vector<testing::JournalRecord> ReadAllJournals(const std::string& dir,
                                                    std::uint32_t nodes,
                                                    std::uint64_t grid_id) {
  std::vector<testing::JournalRecord> all;
  for (std::uint32_t n = 0; n < nodes; ++n) {
    testing::JournalRead j = testing::ReadJournal(dir, n, grid_id);
    EXPECT_TRUE(j.status.ok()) << "node " << n << ": " << j.status.ToString();
    all.insert(all.end(), j.records.begin(), j.records.end());
  }
  return all;
}

// Runs `rounds` kill rounds on a journaled grid with a worker per node that
// is killed and restarted too; every few rounds, and at the end, drains the
// rings, stops the workers cleanly and expects the journal replayed to be
// the live grid. Returns the live grid's state at the end (workers stopped).
testing::GridState RunJournaledKills(const std::string& name,
                                     const std::string& dir, std::uint64_t seed,
                                     int rounds) {
  testing::GridState live;
  core::CreateOptions o = testing::JournaledOptions(dir);
  o.memory_bytes = 4ULL << 20;
  o.max_value_bytes = 4096;
  o.bind = false;
  // A writer waits this long for a dead worker's ring or durability.
  o.ring_wait_ms = 300;
  o.sync_wait_ms = 300;
  o.eviction.policy = core::kEvictLru;
  // The worker evicts from 60% down to 40%, well before writers run out.
  o.eviction.high_watermark_pct = 60;
  o.eviction.low_watermark_pct = 40;
  auto created = core::CreateGrid(name, o, testing::SystemTopology());
  EXPECT_TRUE(created.ok()) << created.status().ToString();
  if (!created.ok()) return live;
  auto h = core::GridHandle::Attach(name);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  if (!h.ok()) return live;
  const std::uint32_t nodes = (*h)->config().node_count;
  const std::uint64_t grid_id = (*h)->grid_id();

  std::vector<pid_t> workers(nodes, -1);
  ChildGuard worker_guard(&workers);
  auto start_workers = [&] {
    for (std::uint32_t n = 0; n < nodes; ++n) {
      if (workers[n] <= 0) workers[n] = StartWorker(name, n);
    }
  };
  std::uint64_t worker_kills = 0;
  // Drains the rings with running workers, stops them cleanly, and compares
  // the journal replayed with the live grid.
  auto expect_journal_equals_grid = [&](const std::string& when) {
    start_workers();
    EXPECT_TRUE(
        testing::PollUntil([&] { return testing::AllJournaled(**h); }, 20000))
        << when << ": the workers did not journal every change";
    for (std::uint32_t n = 0; n < nodes; ++n) {
      // A worker forked a moment ago may not have its SIGTERM handler yet.
      EXPECT_TRUE(testing::PollUntil([&] {
        return testing::RunningWorkerPid(name, n) ==
               static_cast<std::uint64_t>(workers[n]);
      })) << when
          << ": the worker of node " << n << " does not run";
    }
    for (pid_t& pid : workers) {
      kill(pid, SIGTERM);
      EXPECT_EQ(WaitChild(pid), 0) << when << ": a worker failed to stop";
      pid = -1;
    }
    testing::GridState state = testing::ReadGridState(name);
    const auto records = ReadAllJournals(dir, nodes, grid_id);
    EXPECT_EQ(testing::StateDiff(testing::ModelOf(records), state), "")
        << when << ": the journal replayed is not the live grid";
    return state;
  };

  SharedBlock<Ledger> ledger;
  RoundStats st;
  start_workers();
  for (int round = 0; round < rounds && !::testing::Test::HasFailure();
       ++round) {
    // Mid-round, the worker dies at a random point half of the time and a
    // new one takes over (it cuts a torn tail and journals again what the
    // dead one had not marked). Writers stop at the end of each round
    // (WritersKilledWhileEvictingLeaveACleanGrid kills them); the worker's
    // own changes, evictions among them, are all removes.
    RoundOptions ro;
    ro.exact_repairs = false;
    ro.kill_writers = false;
    ro.between = [&](std::uint64_t* r) {
      *r = Mix(*r);
      if (*r % 2 != 0) return;
      for (pid_t& pid : workers) {
        kill(pid, SIGKILL);
        EXPECT_EQ(WaitChild(pid), kKilled);
        pid = -1;
        ++worker_kills;
      }
      usleep(static_cast<useconds_t>((*r >> 8) % 5000));
      start_workers();
    };
    KillRound(name, **h, ledger.get(), seed, round, ro, &st);
    if (round % 6 == 5) {
      expect_journal_equals_grid("round " + std::to_string(round));
      start_workers();
    }
  }
  PrintStats(st, *ledger.get(), **h);
  std::cout << "[ workers  ] " << worker_kills << " journal workers killed"
            << std::endl;
  EXPECT_EQ(ledger->failed.load(), 0) << ledger->message;
  EXPECT_GT(Evictions(**h), 0U) << "the writers never filled the grid";
  if (::testing::Test::HasFailure()) return live;
  live = expect_journal_equals_grid("at the end");
  EXPECT_GT(live.size(), 0U);
  return live;
}

TEST(EvictionKills, KilledWorkersAndReadersLeaveTheJournalEqualToTheGrid) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  testing::TempDir dir;
  const std::string name = UniqueName("ej");
  testing::GridGuard destroy(name);
  RunJournaledKills(name, dir.path(), seed, RoundsFromEnv(80));
}

// The grid rebuilt from that journal after a host crash is the live grid:
// no evicted entry comes back, none is lost. It failed (4 runs in 5 with
// these 90 rounds, rarely with 30: "restoring partition N: the memory of
// NUMA node 0 is full") while recovery replayed each partition's whole
// history, partitions in parallel: a partition replayed early claimed
// chunks that, in the live grid, other partitions held at that time.
// Recovery now applies each key's last change (core/recovery.cc, Batch).
TEST(EvictionKills, AGridRecoveredFromThatJournalIsTheLiveGrid) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  testing::TempDir dir;
  const std::string name = UniqueName("er");
  testing::GridGuard destroy(name);
  const testing::GridState before =
      RunJournaledKills(name, dir.path(), seed, RoundsFromEnv(90));
  ASSERT_FALSE(::testing::Test::HasFailure());
  // A host crash: the shared memory is gone; the journal rebuilds the grid
  // as it was, evictions included.
  ASSERT_TRUE(core::DestroyGrid(name).ok());
  auto rec = core::RecoverGrid(name, dir.path(), testing::SystemTopology(), {});
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(testing::StateDiff(before, testing::ReadGridState(name)), "");
  auto rep = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->problems.empty()) << JoinProblems(rep->problems);
}

}  // namespace
}  // namespace numagrid
