// Crash suites for DESIGN invariant 2 (a process SIGKILLed at any instruction
// blocks no other process, corrupts no partition and leaks nothing once
// repaired) and invariant 1 (reads never wait on another process): writers
// and readers are killed, or stopped, at random points while they use a grid.
//
// Randomized: each test prints its seed; set NUMAGRID_TEST_SEED to replay one
// (NUMAGRID_CRASH_ROUNDS scales the kill loop for a longer soak). No test
// asserts a time: every wait is bounded by the grid's own timeouts, and a
// hang is caught by the ctest TIMEOUT.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/key_hash.h"
#include "core/data_layout.h"
#include "core/eviction_layout.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/grid_names.h"
#include "core/partition_layout.h"
#include "core/partition_tx.h"
#include "gtest/gtest.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "shm/robust_mutex.h"
#include "shm/segment.h"
#include "tests/support/shared_block.h"
#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid {
namespace {

using numagrid::testing::ForkChild;
using numagrid::testing::Mix;
using numagrid::testing::SharedBlock;
using numagrid::testing::TestSeed;
using numagrid::testing::UniqueName;
using numagrid::testing::WaitChild;

constexpr int kKilled =
    128 + SIGKILL;  // WaitChild's code for a SIGKILLed child

// ------------------------------------------------------------------ seeds

// ------------------------------------------------------------ grid set-up

std::string MakeGrid(const core::CreateOptions& o) {
  const std::string name = UniqueName("k");
  auto topo = numa::Topology::Load();
  if (!topo.ok()) {
    ADD_FAILURE() << topo.status().ToString();
    return name;
  }
  auto r = core::CreateGrid(name, o, *topo);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return name;
}

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string all;
  for (const auto& p : problems) all += "\n  " + p;
  return all;
}

// CheckGrid with repair: no problems. Returns the report.
core::GridCheckReport CheckRepairClean(const std::string& name,
                                       const std::string& when) {
  auto rep = core::CheckGrid(name, /*repair=*/true);
  EXPECT_TRUE(rep.ok()) << when << ": " << rep.status().ToString();
  if (!rep.ok()) return {};
  EXPECT_TRUE(rep->problems.empty())
      << when << ": CheckGrid found problems:" << JoinProblems(rep->problems);
  EXPECT_EQ(rep->slots_repaired, rep->dead_slots.size()) << when;
  return *rep;
}

// With nobody writing: every partition's write intent is idle.
void ExpectNoActiveIntent(core::GridHandle& h, const std::string& when) {
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    EXPECT_EQ(h.partition(p).state().intent.state, core::kIntentIdle)
        << when << ": partition " << p
        << " is left with an active write intent";
  }
}

// A quiet grid after repair: no problems, no dead slots, nothing to repair.
void ExpectQuietAndClean(const std::string& name, const std::string& when) {
  auto rep = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(rep.ok()) << when << ": " << rep.status().ToString();
  EXPECT_TRUE(rep->problems.empty())
      << when << ": CheckGrid found problems:" << JoinProblems(rep->problems);
  EXPECT_TRUE(rep->dead_slots.empty())
      << when << ": " << rep->dead_slots.size() << " dead process slot(s) left";
  EXPECT_EQ(rep->partitions_repaired, 0U) << when;
}

// Kills and reaps, when it goes out of scope, every child still listed (a
// failed assertion must not leave writers running after the test).
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

// Waits until `*pid` has stopped (after SIGSTOP). If it ended instead, it is
// reaped, and *pid set to -1.
void WaitStopped(pid_t* pid) {
  int st = 0;
  while (waitpid(*pid, &st, WUNTRACED) < 0) {
  }
  if (!WIFSTOPPED(st)) {
    const pid_t gone = *pid;
    *pid = -1;
    FAIL() << "child " << gone << " ended instead of stopping (status " << st
           << ")";
  }
}

// Waits until `*ready` is set by child `*pid`. If the child ends first, it is
// reaped, and *pid set to -1.
void WaitReady(const std::atomic<int>* ready, pid_t* pid,
               const std::string& who) {
  while (ready->load() == 0) {
    int st = 0;
    if (waitpid(*pid, &st, WNOHANG) != 0) {
      *pid = -1;
      FAIL() << who << " ended before it got going (status " << st << ")";
    }
    usleep(50);
  }
}

// The partitions whose lock someone else holds now (probed with a try-lock,
// released at once). Only meaningful while the holder is stopped.
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

// ------------------------------------------------------------- the values

// "<tag>#<id>:" and a pad whose length and bytes follow from (tag, id): a
// reader can tell a whole value from a torn one. `large` makes a value
// bigger than the small-block limit (a block of whole chunks).
std::string MakeValue(std::string_view tag, std::uint64_t id, bool large) {
  std::string v = std::string(tag) + "#" + std::to_string(id) + ":";
  const std::uint64_t h = Mix(id ^ base::KeyHash(tag));
  const std::size_t pad = large ? 20000 + h % 20000 : h % 300;
  for (std::size_t i = 0; i < pad; ++i) {
    v.push_back(static_cast<char>('a' + ((h >> 8) + i * 7) % 26));
  }
  return v;
}

// The id of a value made by MakeValue(tag, id, *), or nullopt if `v` is not
// one.
std::optional<std::uint64_t> ParseValue(std::string_view tag,
                                        std::string_view v) {
  if (v.size() < tag.size() + 3 || v.substr(0, tag.size()) != tag ||
      v[tag.size()] != '#') {
    return std::nullopt;
  }
  std::uint64_t id = 0;
  std::size_t i = tag.size() + 1;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i)
    id = id * 10 + (v[i] - '0');
  if (i == tag.size() + 1 || i >= v.size() || v[i] != ':') return std::nullopt;
  if (v != MakeValue(tag, id, false) && v != MakeValue(tag, id, true))
    return std::nullopt;
  return id;
}

std::int64_t CounterOf(std::string_view v) {
  std::int64_t c = 0;
  std::memcpy(&c, v.data(), 8);
  return c;
}

// ================================================ killed writers: the model
//
// Each writer child works in a lane. A lane's own keys are written only by
// the lane's current child, which therefore knows their exact state, logs
// the one change it is about to make (in shared memory) before making it,
// and records it as done after. When the child is killed, each own key must
// hold either the recorded state or, for the key of the logged change, the
// state that change leaves: nothing lost, nothing torn, nothing half-done.
// Shared keys are written by every lane at once: their values must be whole,
// and the shared counters, incremented by 1 only, must hold at least the
// increments their writers were told about and at most one more per kill.

constexpr int kLanes = 3;
constexpr int kLaneDataKeys = 6;
constexpr int kLaneCounterKeys = 2;
constexpr int kLaneKeys = kLaneDataKeys + kLaneCounterKeys;
constexpr int kSharedDataKeys = 8;
constexpr int kSharedCounters = 4;

std::string LaneKey(int lane, int k) {
  return (k < kLaneDataKeys ? "L" : "N") + std::to_string(lane) + "." +
         std::to_string(k);
}
std::string SharedKey(int j) { return "S" + std::to_string(j); }
std::string SharedCounter(int j) { return "C" + std::to_string(j); }

// The state of a key as the model knows it. For data keys `id` names the
// value (MakeValue(key, id, large)); for counters it is the count.
struct ModelKey {
  std::atomic<std::uint64_t> present{0};
  std::atomic<std::uint64_t> id{0};
  std::atomic<std::uint64_t> large{0};
  std::atomic<std::uint64_t> version{0};  // 0: unknown
};

struct Lane {
  ModelKey keys[kLaneKeys];
  // The change under way: 0 if none, else 1 + its key; and what it leaves.
  std::atomic<std::uint64_t> inflight{0};
  std::atomic<std::uint64_t> inflight_present{0};
  std::atomic<std::uint64_t> inflight_id{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<int> ready{0};
};

struct KillShared {
  Lane lanes[kLanes];
  std::atomic<std::uint64_t> acked_shared_increments{0};
  std::atomic<int> failed{0};
  char message[1024] = {};
};

// A failure inside a child: recorded for the parent, then the child exits.
[[noreturn]] void ChildFail(KillShared* sh, int lane, const std::string& what) {
  if (sh->failed.exchange(1) == 0) {
    std::snprintf(sh->message, sizeof sh->message, "lane %d: %s", lane,
                  what.c_str());
  }
  std::fprintf(stderr, "writer child of lane %d failed: %s\n", lane,
               what.c_str());
  _exit(3);
}

void Expect(KillShared* sh, int lane, const Status& s,
            std::initializer_list<StatusCode> allowed, const char* what,
            std::string_view key) {
  for (StatusCode c : allowed) {
    if (s.code() == c) return;
  }
  ChildFail(sh, lane,
            std::string(what) + " of " + std::string(key) + " returned " +
                s.ToString());
}

// One change to an own key whose outcome the child knows in advance.
class LaneWriter {
 public:
  LaneWriter(Grid& g, KillShared* sh, int lane)
      : g_(g), sh_(sh), lane_(lane), l_(sh->lanes[lane]) {}

  void Step(std::mt19937_64& rng) {
    const int k = static_cast<int>(rng() % kLaneKeys);
    const std::string key = LaneKey(lane_, k);
    ModelKey& m = l_.keys[k];
    const bool present = m.present.load() != 0;
    if (k >= kLaneDataKeys) {  // own counter: +1 (absent: becomes 1)
      const std::uint64_t before = present ? m.id.load() : 0;
      Begin(k, true, before + 1);
      auto r = g_.Increment(key, 1);
      Expect(sh_, lane_, r.status(), {StatusCode::kOk}, "Increment", key);
      if (static_cast<std::uint64_t>(*r) != before + 1) {
        ChildFail(sh_, lane_,
                  "Increment of " + key + " returned " + std::to_string(*r) +
                      ", expected " + std::to_string(before + 1));
      }
      Done(k, true, before + 1, false, 0);
      return;
    }
    const std::uint64_t id = l_.next_id.fetch_add(1);
    const bool large = rng() % 50 == 0;
    const std::string value = MakeValue(key, id, large);
    const unsigned dice = rng() % 8;
    const std::uint64_t version = m.version.load();
    switch (dice) {
      case 0: {  // put
        Begin(k, true, id);
        auto r = g_.Put(key, value);
        Expect(sh_, lane_, r.status(), {StatusCode::kOk}, "Put", key);
        Done(k, true, id, large, *r);
        return;
      }
      case 1: {  // insert
        if (present) {
          auto r = g_.Insert(key, value);
          Expect(sh_, lane_, r.status(), {StatusCode::kAlreadyExists},
                 "Insert of a present key", key);
          return;
        }
        Begin(k, true, id);
        auto r = g_.Insert(key, value);
        Expect(sh_, lane_, r.status(), {StatusCode::kOk}, "Insert", key);
        Done(k, true, id, large, *r);
        return;
      }
      case 2: {  // replace
        if (!present) {
          auto r = g_.Replace(key, value);
          Expect(sh_, lane_, r.status(), {StatusCode::kNotFound},
                 "Replace of an absent key", key);
          return;
        }
        Begin(k, true, id);
        auto r = g_.Replace(key, value);
        Expect(sh_, lane_, r.status(), {StatusCode::kOk}, "Replace", key);
        Done(k, true, id, large, *r);
        return;
      }
      case 3:
      case 4: {  // compare-and-set, right or wrong version
        if (!present || version == 0) break;
        if (dice == 4) {
          auto r = g_.CompareAndSet(key, version + 1 + rng() % 3, value);
          Expect(sh_, lane_, r.status(), {StatusCode::kConflict},
                 "CompareAndSet (wrong version)", key);
          return;
        }
        Begin(k, true, id);
        auto r = g_.CompareAndSet(key, version, value);
        Expect(sh_, lane_, r.status(), {StatusCode::kOk}, "CompareAndSet", key);
        Done(k, true, id, large, *r);
        return;
      }
      case 5: {  // remove-if-version
        if (!present || version == 0) break;
        Begin(k, false, 0);
        Expect(sh_, lane_, g_.RemoveIfVersion(key, version), {StatusCode::kOk},
               "RemoveIfVersion", key);
        Done(k, false, 0, false, 0);
        return;
      }
      default:
        break;
    }
    // remove
    if (!present) {
      Expect(sh_, lane_, g_.Remove(key), {StatusCode::kNotFound},
             "Remove of an absent key", key);
      return;
    }
    Begin(k, false, 0);
    Expect(sh_, lane_, g_.Remove(key), {StatusCode::kOk}, "Remove", key);
    Done(k, false, 0, false, 0);
  }

  // An own key read back: exactly the model's state.
  void Verify(std::mt19937_64& rng) {
    const int k = static_cast<int>(rng() % kLaneKeys);
    const std::string key = LaneKey(lane_, k);
    const ModelKey& m = l_.keys[k];
    std::string v;
    std::uint64_t ver = 0;
    Status s = g_.Get(key, &v, &ver);
    Expect(sh_, lane_, s, {StatusCode::kOk, StatusCode::kNotFound}, "Get", key);
    if (s.ok() != (m.present.load() != 0)) {
      ChildFail(sh_, lane_,
                "Get of " + key + " says " + (s.ok() ? "present" : "absent") +
                    " but this writer left it otherwise");
    }
    if (!s.ok()) return;
    const bool counter = k >= kLaneDataKeys;
    const bool same =
        counter ? v.size() == 8 &&
                      static_cast<std::uint64_t>(CounterOf(v)) == m.id.load()
                : v == MakeValue(key, m.id.load(), m.large.load() != 0);
    if (!same || (m.version.load() != 0 && ver != m.version.load())) {
      ChildFail(
          sh_, lane_,
          "Get of " + key + " returned another value than this writer wrote");
    }
  }

 private:
  void Begin(int k, bool present, std::uint64_t id) {
    l_.inflight_present.store(present ? 1 : 0);
    l_.inflight_id.store(id);
    l_.inflight.store(static_cast<std::uint64_t>(k) + 1);
  }
  void Done(int k, bool present, std::uint64_t id, bool large,
            std::uint64_t version) {
    ModelKey& m = l_.keys[k];
    m.present.store(present ? 1 : 0);
    m.id.store(id);
    m.large.store(large ? 1 : 0);
    m.version.store(version);
    l_.inflight.store(0);
  }

  Grid& g_;
  KillShared* sh_;
  int lane_;
  Lane& l_;
};

int LaneChild(const std::string& name, KillShared* sh, int lane,
              std::uint64_t seed) {
  auto grid = Grid::Attach(name);
  if (!grid.ok()) ChildFail(sh, lane, "attach: " + grid.status().ToString());
  Grid& g = *grid;
  std::mt19937_64 rng(seed);
  LaneWriter own(g, sh, lane);
  std::uint64_t shared_id = Mix(seed) & 0xFFFFFFFF;
  for (std::uint64_t i = 0;; ++i) {
    if (i == 1) sh->lanes[lane].ready.store(1);
    const unsigned dice = rng() % 100;
    if (dice < 35) {
      own.Step(rng);
    } else if (dice < 45) {
      own.Verify(rng);
    } else if (dice < 65) {
      const std::string key =
          SharedCounter(static_cast<int>(rng() % kSharedCounters));
      auto r = g.Increment(key, 1);
      Expect(sh, lane, r.status(), {StatusCode::kOk}, "Increment", key);
      sh->acked_shared_increments.fetch_add(1);
    } else if (dice < 85) {
      const std::string key =
          SharedKey(static_cast<int>(rng() % kSharedDataKeys));
      if (rng() % 4 == 0) {
        Expect(sh, lane, g.Remove(key),
               {StatusCode::kOk, StatusCode::kNotFound}, "Remove", key);
      } else {
        auto r = g.Put(key, MakeValue(key, ++shared_id, rng() % 50 == 0));
        Expect(sh, lane, r.status(), {StatusCode::kOk}, "Put", key);
      }
    } else if (dice < 97) {
      const std::string key =
          SharedKey(static_cast<int>(rng() % kSharedDataKeys));
      std::string v;
      Status s = g.Get(key, &v);
      Expect(sh, lane, s, {StatusCode::kOk, StatusCode::kNotFound}, "Get", key);
      if (s.ok() && !ParseValue(key, v)) {
        ChildFail(sh, lane,
                  "Get of " + key + " returned a torn or foreign value");
      }
    } else {
      Status s = g.Scan(
          [&](std::string_view key, std::string_view v, std::uint64_t) {
            const bool counter = key[0] == 'C' || key[0] == 'N';
            if (counter ? v.size() != 8 : !ParseValue(key, v)) {
              ChildFail(
                  sh, lane,
                  "Scan saw a torn or foreign value at " + std::string(key));
            }
            return true;
          },
          static_cast<std::int64_t>(rng() % g.partition_count()));
      Expect(sh, lane, s, {StatusCode::kOk}, "Scan", "a partition");
    }
  }
}

// What a key holds now, as the parent reads it.
struct Seen {
  bool present = false;
  std::string value;
  std::uint64_t version = 0;
  bool operator==(const Seen&) const = default;
};

Seen Read(Grid& g, const std::string& key) {
  Seen s;
  Status st = g.Get(key, &s.value, &s.version);
  EXPECT_TRUE(st.ok() || st.code() == StatusCode::kNotFound)
      << key << ": " << st.ToString();
  s.present = st.ok();
  return s;
}

// Checks a dead child's lane against the model (see above). Returns what the
// keys hold, so the caller can compare before and after a repair.
std::vector<Seen> CheckLane(Grid& g, KillShared* sh, int lane,
                            const std::string& when) {
  Lane& l = sh->lanes[lane];
  std::vector<Seen> seen;
  const std::uint64_t inflight = l.inflight.load();
  for (int k = 0; k < kLaneKeys; ++k) {
    const std::string key = LaneKey(lane, k);
    const Seen s = Read(g, key);
    seen.push_back(s);
    const ModelKey& m = l.keys[k];
    const bool counter = k >= kLaneDataKeys;
    auto matches = [&](bool present, std::uint64_t id, std::uint64_t version) {
      if (s.present != present) return false;
      if (!present) return true;
      if (version != 0 && s.version != version) return false;
      if (counter)
        return s.value.size() == 8 &&
               static_cast<std::uint64_t>(CounterOf(s.value)) == id;
      return ParseValue(key, s.value) == id;
    };
    const bool as_recorded =
        matches(m.present.load() != 0, m.id.load(), m.version.load());
    const bool as_inflight =
        inflight == static_cast<std::uint64_t>(k) + 1 &&
        matches(l.inflight_present.load() != 0, l.inflight_id.load(), 0);
    EXPECT_TRUE(as_recorded || as_inflight)
        << when << ": " << key << " is " << (s.present ? "present" : "absent")
        << " (version " << s.version << "), but its writer recorded "
        << (m.present.load() != 0 ? "present, id " + std::to_string(m.id.load())
                                  : "absent")
        << (inflight == static_cast<std::uint64_t>(k) + 1
                ? " with a change to " +
                      (l.inflight_present.load() != 0
                           ? "id " + std::to_string(l.inflight_id.load())
                           : std::string("absent")) +
                      " under way"
                : std::string(" and no change under way"));
  }
  return seen;
}

// After a lane's child died: make the model what the grid holds, for the
// lane's next child.
void ResyncLane(const std::vector<Seen>& seen, KillShared* sh, int lane) {
  Lane& l = sh->lanes[lane];
  for (int k = 0; k < kLaneKeys; ++k) {
    const Seen& s = seen[k];
    ModelKey& m = l.keys[k];
    m.present.store(s.present ? 1 : 0);
    m.version.store(s.present ? s.version : 0);
    if (!s.present) continue;
    if (k >= kLaneDataKeys) {
      m.id.store(static_cast<std::uint64_t>(CounterOf(s.value)));
      m.large.store(0);
    } else {
      m.id.store(ParseValue(LaneKey(lane, k), s.value).value_or(0));
      m.large.store(s.value.size() > 1000 ? 1 : 0);
    }
  }
  l.inflight.store(0);
  l.ready.store(0);
}

std::int64_t SharedCounterSum(Grid& g) {
  std::int64_t sum = 0;
  for (int j = 0; j < kSharedCounters; ++j) {
    const Seen s = Read(g, SharedCounter(j));
    if (!s.present) continue;
    EXPECT_EQ(s.value.size(), 8U) << SharedCounter(j);
    if (s.value.size() == 8) sum += CounterOf(s.value);
  }
  return sum;
}

int RoundsFromEnv(int fallback) {
  const char* env = std::getenv("NUMAGRID_CRASH_ROUNDS");
  if (env == nullptr || *env == '\0') return fallback;
  const int n = std::atoi(env);
  return n > 0 ? n : fallback;
}

TEST(KilledWriters, WritersKilledAtRandomPointsLeaveNoDamage) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 16ULL << 20;
  o.ring_capacity = 16;  // the smallest: writers reclaim all the time
  // Generous: only a bug makes a writer wait this long here.
  o.lock_timeout_ms = 20000;
  o.ring_wait_ms = 20000;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = *grid;
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();

  SharedBlock<KillShared> shared;
  KillShared* sh = shared.get();
  std::mt19937_64 rng(seed);
  const int rounds = RoundsFromEnv(160);
  std::uint64_t kills = 0, kills_before_ready = 0, repaired_partitions = 0,
                dead_slots = 0;
  std::uint64_t targeted_rounds = 0, kills_holding_lock = 0;
  std::vector<pid_t> pids(kLanes, -1);
  ChildGuard guard(&pids);

  auto reap = [&](int lane, const std::string& when) {
    const int code = WaitChild(pids[lane]);
    pids[lane] = -1;
    ++kills;
    EXPECT_EQ(code, kKilled)
        << when << ": lane " << lane << " exited by itself: " << sh->message;
  };

  for (int round = 0; round < rounds && !::testing::Test::HasFailure();
       ++round) {
    const std::string when = "round " + std::to_string(round);
    const int n = 2 + static_cast<int>(rng() % 2);  // 2 or 3 writers
    for (int lane = 0; lane < n; ++lane) {
      const std::uint64_t s =
          Mix(seed ^ (static_cast<std::uint64_t>(round) << 8) ^
              static_cast<std::uint64_t>(lane));
      pids[lane] =
          ForkChild([&, lane, s] { return LaneChild(name, sh, lane, s); });
      ASSERT_GT(pids[lane], 0);
    }
    // Most rounds let every writer get going first; some kill them while
    // they may still be attaching.
    const bool early = rng() % 10 == 0;
    if (!early) {
      for (int lane = 0; lane < n; ++lane) {
        WaitReady(
            &sh->lanes[lane].ready, &pids[lane],
            when + ": lane " + std::to_string(lane) + " (" + sh->message + ")");
        ASSERT_FALSE(::testing::Test::HasFatalFailure());
      }
    } else {
      kills_before_ready += static_cast<std::uint64_t>(n);
    }
    usleep(500 + static_cast<useconds_t>(rng() % 4500));

    // Three kinds of rounds: kill one writer (the others keep writing while
    // the parent checks and repairs), kill all at a random instant, or stop
    // them all until one is caught holding a partition lock and kill them
    // there (a random instant rarely falls inside the short critical section).
    const unsigned mode = early ? 1 : static_cast<unsigned>(rng() % 3);
    const std::string round_kind = mode == 0 ? " (kill one)"
                                   : mode == 1
                                       ? " (kill all)"
                                       : " (kill all, stopped in a lock)";
    std::set<std::uint32_t> held;
    if (mode == 2) {
      ++targeted_rounds;
      for (int t = 0;; ++t) {
        for (int lane = 0; lane < n; ++lane) kill(pids[lane], SIGSTOP);
        for (int lane = 0; lane < n; ++lane) WaitStopped(&pids[lane]);
        ASSERT_FALSE(::testing::Test::HasFatalFailure()) << when;
        held = LockedPartitions(**inspect);
        if (!held.empty() || t == 299) break;  // they stay stopped
        for (int lane = 0; lane < n; ++lane) kill(pids[lane], SIGCONT);
        usleep(static_cast<useconds_t>(rng() % 200));
      }
      if (!held.empty()) ++kills_holding_lock;
    }
    if (mode == 0) {
      // Kill one; check its keys, then repair while the others still write,
      // and check again: a repair changes nothing a reader can see.
      const int victim = static_cast<int>(rng() % n);
      kill(pids[victim], SIGKILL);
      reap(victim, when);
      const auto before = CheckLane(g, sh, victim, when + ", before repair");
      const auto rep =
          CheckRepairClean(name, when + round_kind + ", one writer killed");
      repaired_partitions += rep.partitions_repaired;
      dead_slots += rep.dead_slots.size();
      const auto after = CheckLane(g, sh, victim, when + ", after repair");
      EXPECT_TRUE(before == after)
          << when << ": the repair changed lane " << victim << "'s keys";
      ResyncLane(after, sh, victim);
    }
    for (int lane = 0; lane < n; ++lane) {
      if (pids[lane] > 0) kill(pids[lane], SIGKILL);
    }
    for (int lane = 0; lane < n; ++lane) {
      if (pids[lane] > 0) reap(lane, when);
    }
    std::vector<std::vector<Seen>> before(n);
    for (int lane = 0; lane < n; ++lane)
      before[lane] = CheckLane(g, sh, lane, when);
    const auto rep =
        CheckRepairClean(name, when + round_kind + ", all writers killed");
    repaired_partitions += rep.partitions_repaired;
    if (mode == 2) {
      EXPECT_EQ(rep.partitions_repaired, held.size())
          << when << ": writers killed holding " << held.size()
          << " partition lock(s); the check must repair exactly those";
    }
    dead_slots += rep.dead_slots.size();
    ExpectNoActiveIntent(**inspect, when);
    ExpectQuietAndClean(name, when + ", after repair");
    for (int lane = 0; lane < n; ++lane) {
      const auto after = CheckLane(g, sh, lane, when + ", after repair");
      EXPECT_TRUE(before[lane] == after)
          << when << ": the repair changed lane " << lane << "'s keys";
      ResyncLane(after, sh, lane);
    }
    const std::int64_t sum = SharedCounterSum(g);
    const auto acked =
        static_cast<std::int64_t>(sh->acked_shared_increments.load());
    EXPECT_GE(sum, acked) << when
                          << ": an increment its writer was told about is lost";
    EXPECT_LE(sum, acked + static_cast<std::int64_t>(kills))
        << when << ": more increments applied than were made";
  }
  std::cout << "[ kills    ] " << kills << " writers killed ("
            << kills_before_ready << " maybe while attaching); "
            << repaired_partitions
            << " partitions repaired after a dead lock holder; " << dead_slots
            << " dead process slots cleared; " << kills_holding_lock << " of "
            << targeted_rounds
            << " targeted rounds caught a writer holding a lock" << std::endl;
  EXPECT_GE(repaired_partitions, kills_holding_lock);
  if (rounds >= 60) {
    EXPECT_GT(kills_holding_lock, 0U)
        << "no writer was ever killed holding a partition lock";
  }
  EXPECT_EQ(sh->failed.load(), 0) << sh->message;

  // The end: still consistent, and the accounting identity holds (chunks
  // owned = live + retired + free + waste + the current chunk's tail): no
  // byte leaked.
  auto rep = core::CheckGrid(name, /*repair=*/true);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  for (const auto& p : rep->problems) {
    EXPECT_EQ(p.find("memory accounting"), std::string::npos)
        << "leaked bytes: " << p;
  }
  EXPECT_TRUE(rep->problems.empty()) << JoinProblems(rep->problems);
  ExpectNoActiveIntent(**inspect, "at the end");
  // Writing into a damaged grid could store anywhere in its segments.
  if (::testing::Test::HasFailure()) return;
  // And it still works: every lane key can be written and read back.
  for (int lane = 0; lane < kLanes; ++lane) {
    for (int k = 0; k < kLaneDataKeys; ++k) {
      const std::string key = LaneKey(lane, k);
      auto r = g.Put(key, MakeValue(key, 1, false));
      ASSERT_TRUE(r.ok()) << key << ": " << r.status().ToString();
      EXPECT_EQ(Read(g, key).value, MakeValue(key, 1, false));
    }
  }
  ExpectQuietAndClean(name, "at the end");
}

// ============================================ a stopped or killed writer

// Keys "<prefix><i>", `per_partition` of them in every partition.
std::vector<std::vector<std::string>> KeysPerPartition(
    Grid& g, const std::string& prefix, std::size_t per_partition) {
  std::vector<std::vector<std::string>> keys(g.partition_count());
  std::size_t full = 0;
  for (int i = 0; full < keys.size(); ++i) {
    std::string key = prefix + std::to_string(i);
    auto& bucket = keys[g.PartitionOfKey(key)];
    if (bucket.size() < per_partition) {
      bucket.push_back(std::move(key));
      if (bucket.size() == per_partition) ++full;
    }
  }
  return keys;
}

TEST(KilledWriters, StoppedWriterBlocksNoReaderAndKilledWriterBlocksNoWriter) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 8;
  o.memory_bytes =
      64ULL << 20;  // never full: only the stopped writer may fail a put
  // Short: a write to a partition whose holder is stopped gives up soon.
  o.lock_timeout_ms = 20;
  o.ring_wait_ms = 20;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = *grid;
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();
  std::mt19937_64 rng(seed);

  const auto mine = KeysPerPartition(g, "p", 4);
  const auto theirs = KeysPerPartition(g, "c", 4);
  std::map<std::string, std::string> expect;  // what each of our keys holds
  for (const auto& keys : mine) {
    for (const auto& key : keys) {
      expect[key] = MakeValue(key, 0, false);
      ASSERT_TRUE(g.Put(key, expect[key]).ok());
    }
  }

  // A writer in a tight loop over keys of every partition (no reads, so it
  // never holds back reclamation: only its partition lock can block us).
  SharedBlock<std::atomic<int>> ready;
  std::atomic<int>* ready_flag = ready.get();
  std::vector<pid_t> pids{ForkChild([&] {
    auto cg = Grid::Attach(name);
    if (!cg.ok()) return 2;
    std::mt19937_64 crng(Mix(seed));
    for (std::uint64_t i = 1;; ++i) {
      const auto& keys = theirs[crng() % theirs.size()];
      const std::string& key = keys[crng() % keys.size()];
      // kResourceExhausted: the parent, preempted, held a lock past the
      // (short) timeout; that is allowed, nothing else is.
      const Status put =
          cg->Put(key, MakeValue(key, i, crng() % 100 == 0)).status();
      if (!put.ok() && put.code() != StatusCode::kResourceExhausted) return 3;
      if (crng() % 4 == 0) {
        const Status rm = cg->Remove(key);
        if (!rm.ok() && rm.code() != StatusCode::kResourceExhausted &&
            rm.code() != StatusCode::kNotFound) {
          return 4;
        }
      }
      if (i == 100) ready_flag->store(1);
    }
  })};
  ChildGuard guard(&pids);
  const pid_t child = pids[0];
  ASSERT_GT(child, 0);
  WaitReady(ready_flag, &pids[0], "the writer child");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  // Stop it, ideally while it holds a partition lock.
  std::set<std::uint32_t> held;
  int tries = 0;
  for (;; ++tries) {
    kill(child, SIGSTOP);
    WaitStopped(&pids[0]);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    held = LockedPartitions(**inspect);
    if (!held.empty() || tries == 1999) break;  // stays stopped
    kill(child, SIGCONT);
    usleep(static_cast<useconds_t>(rng() % 300));
  }
  std::cout << "[ stopped  ] after " << tries + 1 << " tries, holding "
            << (held.empty()
                    ? std::string("no lock")
                    : "the lock of partition " + std::to_string(*held.begin()))
            << std::endl;
  EXPECT_LE(held.size(), 1U);

  // 1000 puts over every partition: each one succeeds, or, in the stopped
  // writer's partition, fails with kResourceExhausted after the bounded lock
  // wait. Reads of every partition succeed all the while (invariant 1).
  int exhausted = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::uint32_t p = static_cast<std::uint32_t>(i) % g.partition_count();
    const std::string& key = mine[p][rng() % mine[p].size()];
    const std::string value =
        MakeValue(key, static_cast<std::uint64_t>(i) + 1, rng() % 100 == 0);
    auto r = g.Put(key, value);
    if (held.count(p) != 0) {
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted)
          << "put " << i << " to partition " << p
          << ", whose lock a stopped writer holds: " << r.status().ToString();
      ++exhausted;
    } else {
      EXPECT_TRUE(r.ok()) << "put " << i << " to partition " << p << ": "
                          << r.status().ToString();
      if (r.ok()) expect[key] = value;
    }
    const std::uint32_t q =
        static_cast<std::uint32_t>(rng() % g.partition_count());
    const std::string& rkey = mine[q][rng() % mine[q].size()];
    std::string v;
    Status s = g.Get(rkey, &v);
    EXPECT_TRUE(s.ok()) << "read " << i << " of partition " << q << ": "
                        << s.ToString();
    EXPECT_EQ(v, expect[rkey]) << "read " << i << " of " << rkey;
    if (::testing::Test::HasFailure()) break;
  }
  std::cout << "[ puts     ] " << exhausted
            << " of 1000 gave up on the stopped writer's lock" << std::endl;

  // Killed (while stopped): the next writer of each partition takes over.
  kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), kKilled);
  pids[0] = -1;
  for (std::uint32_t p = 0; p < g.partition_count(); ++p) {
    for (const auto& key : mine[p]) {
      const std::string value = MakeValue(key, 5000, false);
      auto r = g.Put(key, value);
      ASSERT_TRUE(r.ok()) << "partition " << p
                          << " after the kill: " << r.status().ToString();
      expect[key] = value;
    }
    for (const auto& key : theirs[p]) {
      EXPECT_TRUE(g.Put(key, "after").ok()) << key;
    }
  }
  const auto rep = CheckRepairClean(name, "after the kill");
  EXPECT_EQ(rep.dead_slots.size(), 1U) << "the killed writer's slot";
  ExpectNoActiveIntent(**inspect, "after the kill");
  ExpectQuietAndClean(name, "after the repair");
  for (const auto& [key, value] : expect) {
    std::string v;
    EXPECT_TRUE(g.Get(key, &v).ok()) << key;
    EXPECT_EQ(v, value) << key;
  }
}

// ============================== writers killed inside a chosen window
//
// A random instant rarely falls inside a given few instructions of the write
// protocol. These tests stop a writer again and again until its partition's
// write intent shows it inside the window they aim at, then kill it there.

// A partition's shared state, read straight from its node's data segment
// (to tell from a stopped writer's intent where exactly it stopped).
struct PartitionView {
  shm::Segment segment;
  const core::NodeHeader* node = nullptr;
  const core::PartitionState* state = nullptr;

  const std::byte* base() const { return segment.base(); }
  std::uint64_t OffsetOf(const void* p) const {
    return static_cast<std::uint64_t>(static_cast<const std::byte*>(p) -
                                      base());
  }
  std::uint64_t Word(std::uint64_t off) const {
    return reinterpret_cast<const std::atomic<std::uint64_t>*>(base() + off)
        ->load();
  }
};

PartitionView ViewPartition(const std::string& name, core::GridHandle& h,
                            std::uint32_t p) {
  PartitionView v;
  const std::uint32_t node_id = h.partition(p).state().node_id;
  auto seg =
      shm::Segment::Open(core::DataSegmentName(name, node_id),
                         {shm::SegmentKind::kData, core::kDataLayoutVersion,
                          core::kDataLayoutSignature});
  EXPECT_TRUE(seg.ok()) << seg.status().ToString();
  if (!seg.ok()) return v;
  v.segment = std::move(*seg);
  v.node = &v.segment.At<core::DataBlock>(0)->node;
  for (std::uint32_t i = 0; i < v.node->partition_count; ++i) {
    const auto* st = v.segment.At<core::PartitionState>(
        v.node->partitions_off + i * sizeof(core::PartitionState));
    if (st->partition_id == p) v.state = st;
  }
  EXPECT_NE(v.state, nullptr)
      << "partition " << p << " not found in its node's segment";
  return v;
}

// Forks `body`, waits for it to set its ready flag, then stops it until
// `in_window` (called while it is stopped) says it is where the test wants
// it, and kills it there. Returns whether it was caught in the window within
// `max_tries` stops; it is dead and reaped either way.
bool KillInWindow(const std::function<int(std::atomic<int>*)>& body,
                  const std::function<bool()>& in_window, int max_tries,
                  std::mt19937_64& rng, int* tries_out) {
  SharedBlock<std::atomic<int>> ready;
  std::atomic<int>* ready_flag = ready.get();
  std::vector<pid_t> pids{ForkChild([&] { return body(ready_flag); })};
  ChildGuard guard(&pids);
  EXPECT_GT(pids[0], 0);
  if (pids[0] <= 0) return false;
  WaitReady(ready_flag, &pids[0], "the writer child");
  if (::testing::Test::HasFatalFailure()) return false;
  bool caught = false;
  int tries = 0;
  for (; tries < max_tries && !caught; ++tries) {
    kill(pids[0], SIGSTOP);
    WaitStopped(&pids[0]);
    if (::testing::Test::HasFatalFailure()) return false;
    caught = in_window();
    if (!caught) {
      kill(pids[0], SIGCONT);
      usleep(static_cast<useconds_t>(rng() % 100));
    }
  }
  *tries_out = tries;
  kill(pids[0], SIGKILL);
  EXPECT_EQ(WaitChild(pids[0]), kKilled);
  pids[0] = -1;
  return caught;
}

// `n` keys of partition `p`.
std::vector<std::string> KeysOf(Grid& g, std::uint32_t p,
                                const std::string& prefix, std::size_t n) {
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < n; ++i) {
    std::string key = prefix + std::to_string(i);
    if (g.PartitionOfKey(key) == p) keys.push_back(std::move(key));
  }
  return keys;
}

TEST(KilledWriters,
     WriterKilledAfterFillingAReusedBlockLeavesTheFreeListIntact) {
  // The window: a put has taken a block off a free list (undo-logged: the
  // list head) and has begun writing its record into it, over the word that
  // linked the block to the rest of the list, but has not committed. Undoing
  // the put must leave a free list whose every link is a free block.
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 2;
  o.memory_bytes = 16ULL << 20;
  o.ring_capacity = 16;  // every put's old record is soon freed, and reused
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = *grid;
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();
  std::mt19937_64 rng(seed);
  const std::uint32_t p = 0;
  const PartitionView view = ViewPartition(name, **inspect, p);
  ASSERT_NE(view.state, nullptr);
  const std::vector<std::string> keys = KeysOf(g, p, "f", 8);
  // Values of one size: each put reuses the block of an earlier one.
  std::vector<std::string> values;
  for (int i = 0; i < 16; ++i)
    values.push_back(std::string(200, static_cast<char>('a' + i)));

  const core::PartitionState& st = *view.state;
  const std::uint64_t free_heads = view.OffsetOf(&st.free_head[0]);
  auto in_window = [&] {
    const core::WriteIntent& in = st.intent;
    if (in.state != core::kIntentActive || in.slot_index != core::kNoSlot)
      return false;
    const std::uint64_t n =
        std::min<std::uint64_t>(in.undo_len, core::kMaxUndo);
    for (std::uint64_t i = 0; i < n; ++i) {
      const core::UndoEntry& pop = in.undo[i];  // free_head[cls]: block -> next
      if (pop.off < free_heads ||
          pop.off >= free_heads + 8 * core::kSmallClasses)
        continue;
      // The block is off the list and the record's first word (its version,
      // the change's seq) is written over the block's link to the next one.
      if (pop.old_value != 0 && view.Word(pop.old_value) == in.seq) return true;
    }
    return false;
  };
  int tries = 0;
  const bool caught = KillInWindow(
      [&](std::atomic<int>* ready) {
        auto cg = Grid::Attach(name);
        if (!cg.ok()) return 2;
        for (std::uint64_t i = 0;; ++i) {
          if (!cg->Put(keys[i % keys.size()], values[i % values.size()]).ok())
            return 3;
          if (i == 100) ready->store(1);
        }
      },
      in_window, 20000, rng, &tries);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  if (!caught) {
    GTEST_SKIP() << "could not stop the writer inside the window in " << tries
                 << " tries (seed " << seed << ")";
  }
  std::cout << "[ window   ] writer killed after filling a reused block, after "
            << tries << " tries" << std::endl;

  const auto rep = CheckRepairClean(name, "after the kill");
  EXPECT_EQ(rep.partitions_repaired, 1U);
  ExpectNoActiveIntent(**inspect, "after the repair");
  // Writing into a damaged partition could store anywhere in the segment.
  if (::testing::Test::HasFailure()) return;
  // And the partition keeps working: many more puts reuse the free lists.
  for (int i = 0; i < 2000; ++i) {
    auto r = g.Put(keys[static_cast<std::size_t>(i) % keys.size()],
                   values[static_cast<std::size_t>(i) % values.size()]);
    ASSERT_TRUE(r.ok()) << "put " << i << ": " << r.status().ToString();
  }
  ExpectQuietAndClean(name, "after more puts");
}

TEST(KilledWriters, ReclaimKilledAfterReleasingAChunkLeavesNoChunkOwnedTwice) {
  // The window: reclamation frees a large record (whole chunks) and has
  // changed the chunks' owner words (undo-logged) but has not finished.
  // Owner words are shared by the node's partitions, which claim a chunk
  // whose word is 0 under their own locks, so until the dead writer's
  // partition is repaired the others go on claiming. The repair must not
  // leave the dead writer's partition counting, or its ring naming, chunks
  // that another partition now owns.
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 2;
  o.memory_bytes = 16ULL << 20;
  o.ring_capacity = 16;
  o.ring_wait_ms = 20;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = *grid;
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();
  std::mt19937_64 rng(seed);
  const std::uint32_t a = 0;
  std::uint32_t b = 1;
  for (; b < g.partition_count(); ++b) {
    if ((*inspect)->partition(b).state().node_id ==
        (*inspect)->partition(a).state().node_id) {
      break;
    }
  }
  if (b == g.partition_count())
    GTEST_SKIP() << "no two partitions share a NUMA node";
  const PartitionView view = ViewPartition(name, **inspect, a);
  ASSERT_NE(view.state, nullptr);
  const core::NodeHeader& node = *view.node;
  // Values just above the small-block limit: each takes one whole chunk.
  const std::size_t large = node.small_limit + 64;
  ASSERT_LT(large + 300, node.chunk_bytes);
  const std::vector<std::string> keys = KeysOf(g, a, "g", 4);
  std::vector<std::string> values;
  for (int i = 0; i < 4; ++i)
    values.push_back(std::string(large, static_cast<char>('A' + i)));

  const core::PartitionState& st = *view.state;
  auto in_window = [&] {
    const core::WriteIntent& in = st.intent;
    if (in.state != core::kIntentActive || in.slot_index != core::kNoSlot)
      return false;
    const std::uint64_t n =
        std::min<std::uint64_t>(in.undo_len, core::kMaxUndo);
    for (std::uint64_t i = 0; i < n; ++i) {
      const core::UndoEntry& u = in.undo[i];
      const bool owner_word =
          u.off >= node.chunk_table_off &&
          u.off < node.chunk_table_off + 8 * node.chunk_count;
      // A chunk this operation owned and has begun to give back (its owner
      // word changed from an owner's value, and still holds the change).
      if (owner_word && u.old_value != 0 && u.new_value != u.old_value &&
          view.Word(u.off) == u.new_value) {
        return true;
      }
    }
    return false;
  };
  int tries = 0;
  const bool caught = KillInWindow(
      [&](std::atomic<int>* ready) {
        auto cg = Grid::Attach(name);
        if (!cg.ok()) return 2;
        for (std::uint64_t i = 0;; ++i) {
          if (!cg->Put(keys[i % keys.size()], values[i % values.size()]).ok())
            return 3;
          if (i == 100) ready->store(1);
        }
      },
      in_window, 20000, rng, &tries);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  if (!caught) {
    GTEST_SKIP() << "could not stop the writer inside the window in " << tries
                 << " tries (seed " << seed << ")";
  }
  std::cout << "[ window   ] writer killed while releasing a chunk, after "
            << tries << " tries" << std::endl;

  // Before anyone locks partition a again: partition b claims every free
  // chunk of the node, the released one included.
  const std::vector<std::string> fill = KeysOf(g, b, "h", 4 * node.chunk_count);
  const std::string big(node.chunk_bytes / 2, 'z');
  std::size_t claimed = 0;
  for (; claimed < fill.size(); ++claimed) {
    auto r = g.Put(fill[claimed], big);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted)
          << r.status().ToString();
      break;
    }
  }
  ASSERT_LT(claimed, fill.size()) << "the node's memory never filled up";
  std::cout << "[ fill     ] partition " << b << " took " << claimed
            << " chunks" << std::endl;

  const auto rep = CheckRepairClean(name, "after the kill and the fill");
  EXPECT_EQ(rep.partitions_repaired, 1U);
  ExpectNoActiveIntent(**inspect, "after the repair");
  // Writing into a damaged partition could store anywhere in the segment.
  if (::testing::Test::HasFailure()) return;
  // Both partitions keep working, and stay consistent, as memory is given
  // back and taken again.
  for (std::size_t i = 0; i < claimed; ++i)
    ASSERT_TRUE(g.Remove(fill[i]).ok()) << fill[i];
  for (int i = 0; i < 200; ++i) {
    auto r = g.Put(keys[static_cast<std::size_t>(i) % keys.size()],
                   values[static_cast<std::size_t>(i) % values.size()]);
    ASSERT_TRUE(r.ok()) << "put " << i << ": " << r.status().ToString();
  }
  ExpectQuietAndClean(name, "after more puts");
}

// ============================================ splitting blocks, releasing
// chunks

// Where in the allocator's newer steps (core/partition_alloc.h) a stopped
// writer of a partition is, from its write intent.
enum class AllocStep {
  kNone,
  kSplit,         // taking a larger free block and splitting it
  kUnlinkEmpty,   // taking an empty chunk's free blocks off the lists
  kReleaseChunk,  // giving empty chunks back (owner words marked)
};

AllocStep StepOf(const PartitionView& view) {
  const core::WriteIntent& in = view.state->intent;
  const core::NodeHeader& node = *view.node;
  if (in.state != core::kIntentActive || in.slot_index != core::kNoSlot) {
    return AllocStep::kNone;
  }
  const std::uint64_t n = std::min<std::uint64_t>(in.undo_len, core::kMaxUndo);
  if (n == 0) return AllocStep::kNone;
  const std::uint64_t heads = view.OffsetOf(&view.state->free_head[0]);
  const std::uint64_t heads_end = heads + 8 * core::kSmallClasses;
  const auto is_head = [&](std::uint64_t off) {
    return off >= heads && off < heads_end;
  };
  const auto in_arena = [&](std::uint64_t off) {
    return off >= node.arena_off && off < node.arena_off + node.arena_bytes;
  };
  const auto fill_of = [&](std::uint64_t off) {
    return view.Word(node.chunk_fill_off +
                     8 * ((off - node.arena_off) / node.chunk_bytes));
  };
  std::set<std::uint64_t> head_words;
  bool version_stored = false, all_lists = true, all_from_empty = true;
  for (std::uint64_t i = 0; i < n; ++i) {
    const core::UndoEntry& u = in.undo[i];
    const bool owner_word = u.off >= node.chunk_table_off &&
                            u.off < node.chunk_table_off + 8 * node.chunk_count;
    if (owner_word && u.old_value != 0 &&
        (u.old_value & (core::kChunkLarge | core::kChunkReleasing)) == 0 &&
        u.new_value == (u.old_value | core::kChunkReleasing) &&
        view.Word(u.off) == u.new_value) {
      return AllocStep::kReleaseChunk;  // a small chunk being given back
    }
    if (is_head(u.off)) head_words.insert(u.off);
    if (in_arena(u.off) && u.new_value == in.seq) version_stored = true;
    if (!is_head(u.off) && !in_arena(u.off)) all_lists = false;
    // An unlink's old value is the block it took off, in an empty chunk.
    if (!in_arena(u.old_value) || fill_of(u.old_value) != 0) {
      all_from_empty = false;
    }
  }
  if (version_stored && head_words.size() >= 2) return AllocStep::kSplit;
  if (!version_stored && all_lists && all_from_empty) {
    return AllocStep::kUnlinkEmpty;
  }
  return AllocStep::kNone;
}

// A writer killed inside a split of a larger free block, inside taking an
// empty chunk's free blocks off the lists, or inside giving empty chunks
// back to the node, leaves a grid that the repair makes clean (`check`:
// counters, chunk fills, no block on two lists or overlapping another), and
// in which every write still finds room.
class KilledAllocSteps : public ::testing::TestWithParam<AllocStep> {};

TEST_P(KilledAllocSteps, RepairLeavesACleanGridWhereEveryWriteFindsRoom) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  const AllocStep want = GetParam();
  core::CreateOptions o;
  o.partitions = 2;
  o.memory_bytes = 1ULL << 20;  // 16 chunks of 64 KiB
  o.max_value_bytes = 4096;
  o.ring_capacity = 64;
  o.eviction.policy = core::kEvictLru;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = *grid;
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();
  std::mt19937_64 rng(seed);
  const PartitionView view = ViewPartition(name, **inspect, 0);
  ASSERT_NE(view.state, nullptr);
  // Values of 16 bytes to 4 KiB, by key: many size classes, so that a
  // class runs dry while larger ones hold free blocks, and chunks empty.
  const auto value_of = [](const std::string& key, std::uint64_t i) {
    const std::uint64_t h = Mix(std::hash<std::string>()(key) + i / 7);
    return std::string(16 + h % 4081, static_cast<char>('a' + h % 26));
  };
  const std::vector<std::string> keys = KeysOf(g, 0, "s", 3000);
  // Partition 1 holds chunks of the node too.
  const std::vector<std::string> others = KeysOf(g, 1, "o", 60);
  for (std::size_t i = 0; i < others.size(); ++i) {
    ASSERT_TRUE(g.Put(others[i], value_of(others[i], i)).ok());
  }
  int tries = 0;
  const bool caught = KillInWindow(
      [&](std::atomic<int>* ready) {
        auto cg = Grid::Attach(name);
        if (!cg.ok()) return 2;
        std::uint64_t r = 1;
        for (std::uint64_t i = 0;; ++i) {
          r = Mix(r + i);
          const std::string& k = keys[r % keys.size()];
          auto w = cg->Put(k, value_of(k, i));
          if (!w.ok()) return 3;
          if (i == 2000) ready->store(1);
        }
      },
      [&] { return StepOf(view) == want; }, 300000, rng, &tries);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_TRUE(caught) << "could not stop the writer inside the step in "
                      << tries << " tries (seed " << seed << ")";
  std::cout << "[ window   ] writer killed inside the step after " << tries
            << " tries" << std::endl;
  const auto rep = CheckRepairClean(name, "after the kill");
  EXPECT_EQ(rep.partitions_repaired, 1U);
  ExpectNoActiveIntent(**inspect, "after the repair");
  if (::testing::Test::HasFailure()) return;
  // Both partitions go on: every write finds room.
  for (std::uint64_t i = 0; i < 4000; ++i) {
    const std::string& k =
        i % 4 == 0 ? others[i % others.size()] : keys[(i * 7919) % keys.size()];
    auto r = g.Put(k, value_of(k, i + 1));
    ASSERT_TRUE(r.ok()) << "put " << i << ": " << r.status().ToString();
  }
  ExpectQuietAndClean(name, "after more puts");
}

INSTANTIATE_TEST_SUITE_P(Steps, KilledAllocSteps,
                         ::testing::Values(AllocStep::kSplit,
                                           AllocStep::kUnlinkEmpty,
                                           AllocStep::kReleaseChunk),
                         [](const ::testing::TestParamInfo<AllocStep>& i) {
                           switch (i.param) {
                             case AllocStep::kSplit:
                               return std::string("Split");
                             case AllocStep::kUnlinkEmpty:
                               return std::string("UnlinkEmptyChunk");
                             case AllocStep::kReleaseChunk:
                               return std::string("ReleaseChunk");
                             case AllocStep::kNone:
                               break;
                           }
                           return std::string("None");
                         });

// ===================================================== a killed reader

TEST(KilledReaders,
     ReaderKilledWhilePinnedHoldsBackReclamationOnlyUntilRepair) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 16ULL << 20;
  o.ring_capacity = 16;
  o.lock_timeout_ms = 1000;
  o.ring_wait_ms = 20;  // a full ring gives up soon
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = *grid;
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();
  shm::ProcessTable& procs = (*inspect)->procs();
  std::mt19937_64 rng(seed);

  std::vector<std::string> keys;
  for (int i = 0; i < 64; ++i) {
    keys.push_back("r" + std::to_string(i));
    ASSERT_TRUE(g.Put(keys.back(), MakeValue(keys.back(), 0, false)).ok());
  }

  // A reader in a tight loop of Gets: nearly always pinned. Stop it until it
  // is caught pinned, then kill it there.
  SharedBlock<std::atomic<int>> ready;
  std::atomic<int>* ready_flag = ready.get();
  std::vector<pid_t> pids{ForkChild([&] {
    auto cg = Grid::Attach(name);
    if (!cg.ok()) return 2;
    std::mt19937_64 crng(Mix(seed));
    std::string v;
    for (std::uint64_t i = 1;; ++i) {
      const std::string& key = keys[crng() % keys.size()];
      if (!cg->Get(key, &v).ok() || !ParseValue(key, v)) return 3;
      if (i == 100) ready_flag->store(1);
    }
  })};
  ChildGuard guard(&pids);
  const pid_t child = pids[0];
  ASSERT_GT(child, 0);
  WaitReady(ready_flag, &pids[0], "the reader child");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  usleep(500 + static_cast<useconds_t>(rng() % 4500));
  std::uint32_t pinned_slot = ~0U;
  std::uint64_t pinned_epoch = 0;
  int tries = 0;
  for (; tries < 2000 && pinned_slot == ~0U; ++tries) {
    kill(child, SIGSTOP);
    WaitStopped(&pids[0]);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    for (std::uint32_t s = 0; s < procs.capacity(); ++s) {
      const std::uint64_t e = procs.slot(s).pinned_epoch.load();
      if (e != 0) {
        pinned_slot = s;
        pinned_epoch = e;
      }
    }
    if (pinned_slot == ~0U) {
      kill(child, SIGCONT);
      usleep(static_cast<useconds_t>(rng() % 300));
    }
  }
  kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), kKilled);
  pids[0] = -1;
  ASSERT_NE(pinned_slot, ~0U)
      << "could not stop the reader while it was pinned in " << tries
      << " tries";
  std::cout << "[ pinned   ] reader killed pinned at epoch " << pinned_epoch
            << " in slot " << pinned_slot << " after " << tries << " tries"
            << std::endl;
  ASSERT_EQ(procs.slot(pinned_slot).pinned_epoch.load(), pinned_epoch)
      << "a dead reader's pin stays until its slot is repaired";
  {
    auto rep = core::CheckGrid(name, /*repair=*/false);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    EXPECT_EQ(rep->dead_slots, std::vector<std::uint32_t>{pinned_slot});
  }

  // Before the repair: writes to one key work until the ring is full of
  // changes the dead pin might still see, then fail with kResourceExhausted
  // after the bounded wait; they never hang. Reads keep working.
  const std::string& key = keys[rng() % keys.size()];
  const std::uint64_t cap = o.ring_capacity;
  std::uint64_t ok_before = 0, failed = 0;
  std::string last = MakeValue(key, 0, false);
  for (std::uint64_t i = 0; i < 20 * cap && failed < 3; ++i) {
    const std::string value = MakeValue(key, 1 + i, false);
    auto r = g.Put(key, value);
    if (r.ok()) {
      EXPECT_EQ(failed, 0U)
          << "a put succeeded after one failed for want of ring space";
      ++ok_before;
      last = value;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted)
          << r.status().ToString();
      ++failed;
    }
    std::string v;
    ASSERT_TRUE(g.Get(key, &v).ok());
    EXPECT_EQ(v, last);
  }
  EXPECT_GT(failed, 0U)
      << ok_before << " puts fit in a ring of " << cap
      << " while a dead reader was pinned: was anything reclaimed that "
      << "the pin protects?";
  EXPECT_LE(ok_before, cap)
      << "more changes than the ring holds outlived the dead pin";
  std::cout << "[ ring     ] " << ok_before << " puts before the ring was full"
            << std::endl;

  // The repair clears the dead slot; reclamation resumes.
  auto rep = CheckRepairClean(name, "repairing the dead reader");
  EXPECT_EQ(rep.dead_slots, std::vector<std::uint32_t>{pinned_slot});
  EXPECT_EQ(rep.slots_repaired, 1U);
  EXPECT_EQ(procs.slot(pinned_slot).pinned_epoch.load(), 0U);
  for (std::uint64_t i = 0; i < 20 * cap; ++i) {
    const std::string value = MakeValue(key, 1000 + i, i % 7 == 0);
    auto r = g.Put(key, value);
    ASSERT_TRUE(r.ok()) << "put " << i
                        << " after the repair: " << r.status().ToString();
    last = value;
  }
  std::string v;
  ASSERT_TRUE(g.Get(key, &v).ok());
  EXPECT_EQ(v, last);
  ExpectNoActiveIntent(**inspect, "at the end");
  ExpectQuietAndClean(name, "at the end");
}

// ==================================== a writer killed inside its commit

// PartitionTx::PrepareCommit (core/partition_tx.h) stores intent.slot_index,
// then intent.new_slot, as two plain stores. When PartitionTx::Restart left
// new_slot at 0 (kSlotEmpty), a writer of a new key that took an empty
// index slot and was killed between those two stores left an active intent
// whose slot_index named a slot holding 0 == new_slot, so
// PartitionRef::RepairIntent (core/partition_repair.cc) took the change as
// published and rolled it forward: next_seq moved past a ring entry whose
// record was in no index slot, and the undo log of the counters and the
// allocator was dropped (one record leaked, live_entries and live_bytes
// one record high; a journal worker would journal a put no reader saw).
// Restart now sets new_slot to kNoSlot, which no slot holds.
//
// This test puts a partition in that state by hand (what Write has done of
// a put of a new key when it dies there: a logged counter change, and
// slot_index naming an empty slot), dies holding the lock, and expects the
// repair to undo it. It pins the current store order: were new_slot stored
// first, this state would be unreachable (drop the test then).
TEST(KilledWriters, WriterKilledInsideItsCommitPointIsUndone) {
  core::CreateOptions o;
  o.partitions = 1;
  o.memory_bytes = 4ULL << 20;
  o.bind = false;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  for (int i = 0; i < 10; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(grid->Put(key, MakeValue(key, 1, false)).ok());
  }
  auto inspect = core::GridHandle::Attach(name);
  ASSERT_TRUE(inspect.ok()) << inspect.status().ToString();
  const core::PartitionState& st = (*inspect)->partition(0).state();
  const std::uint64_t live = st.counters.live_entries.load();
  const std::uint64_t next = st.next_seq.load();

  const pid_t pid = ForkChild([&name] {
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) return 2;
    core::PartitionRef& part = (*h)->partition(0);
    auto* p = const_cast<core::PartitionState*>(&part.state());
    std::byte* base = const_cast<std::byte*>(
        reinterpret_cast<const std::byte*>(&part.node()) -
        offsetof(core::DataBlock, node));
    if (p->lock.TryLock() != shm::LockResult::kAcquired) return 3;
    auto* slots =
        reinterpret_cast<std::atomic<std::uint64_t>*>(base + p->index_off);
    std::uint64_t empty = 0;
    while (slots[empty].load() != core::kSlotEmpty) ++empty;
    core::PartitionTx tx(base, p);
    if (!tx.Set(p->counters.live_entries,
                p->counters.live_entries.load() + 1)) {
      return 4;
    }
    // PrepareCommit's first store; its second (new_slot) and the commit
    // store never happen.
    p->intent.slot_index = empty;
    raise(SIGKILL);
    return 5;
  });
  ASSERT_GT(pid, 0);
  ASSERT_EQ(WaitChild(pid), kKilled);
  const core::GridCheckReport rep = CheckRepairClean(name, "after the kill");
  EXPECT_EQ(rep.partitions_repaired, 1U);
  EXPECT_EQ(st.counters.live_entries.load(), live) << "not undone";
  EXPECT_EQ(st.next_seq.load(), next) << "rolled forward";
  ExpectQuietAndClean(name, "after the repair");
  EXPECT_TRUE(core::DestroyGrid(name).ok());
}

}  // namespace
}  // namespace numagrid
