// Eviction and expiry under a multi-process load (docs/eviction.md):
//
// - forked writers fill a small memory-only grid with new keys far past its
//   size while a forked reader reads; every write must succeed (a writer
//   that finds no room evicts), the memory in use, sampled by the parent
//   during the run, never passes the limit, and at the end the grid checks
//   clean and every key written is accounted for: still there, evicted or
//   removed (PartitionCounters).
// - forked readers hammer keys with short TTLs and keys under a max-idle
//   setting while forked writers rewrite them: no reader is ever given an
//   entry whose TTL, or whose idle time, had run out before its read began.
//
// Randomized: each test prints its seed; set NUMAGRID_TEST_SEED to replay one.
// No test asserts a time: every wait is bounded polling, and a hang is caught
// by the ctest TIMEOUT.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/key_hash.h"
#include "core/eviction_config.h"
#include "core/evictor.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/partition.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "tests/support/journal_grid.h"
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

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string all;
  for (const auto& p : problems) all += "\n  " + p;
  return all;
}

std::string CreateMemoryGrid(const core::CreateOptions& o) {
  const std::string name = UniqueName("ev");
  auto topo = numa::Topology::Load();
  if (!topo.ok()) {
    ADD_FAILURE() << topo.status().ToString();
    return name;
  }
  auto r = core::CreateGrid(name, o, *topo);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return name;
}

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

// A failure inside a child: the first one is kept for the parent.
struct ChildFailure {
  std::atomic<int> failed{0};
  char message[1024] = {};

  void Record(const std::string& what) {
    if (failed.exchange(1) == 0) {
      std::snprintf(message, sizeof message, "%s", what.c_str());
    }
    std::fprintf(stderr, "child failed: %s\n", what.c_str());
  }
};

// ================================= the limit under a multi-process write load

constexpr int kMaxWriters = 3;

// The value of `key`: "<key>=" and a pad that follows from the key,
// `min_len` to `max_len` bytes in all, so that a reader can tell the value of
// a key from anything else, and sizes spread over many size classes.
std::string LoadValue(std::string_view key, std::uint32_t min_len,
                      std::uint32_t max_len) {
  const std::uint64_t h = Mix(base::KeyHash(key));
  const std::size_t len = min_len + h % (max_len - min_len + 1);
  std::string v = std::string(key) + "=";
  for (std::size_t i = v.size(); i < len; ++i) {
    v.push_back(static_cast<char>('a' + ((h >> 11) + i * 13) % 26));
  }
  return v;
}

std::string LoadKey(int w, std::uint64_t i) {
  return "w" + std::to_string(w) + "." + std::to_string(i);
}

struct LoadShared {
  // Keys writer w has put (0..written-1 are done, each with an OK or a
  // refused put); the reader reads below it.
  std::atomic<std::uint64_t> written[kMaxWriters] = {};
  std::atomic<std::uint64_t> put_ok{0};
  std::atomic<std::uint64_t> exhausted{0};  // puts refused: kResourceExhausted
  std::atomic<std::uint64_t> removed{0};    // removes that found the key
  std::atomic<std::uint64_t> remove_missed{0};  // ... that found it evicted
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<bool> stop{false};  // set by the parent once the writers ended
  char first_refusal[512] = {};
  ChildFailure failure;
};

struct LoadParams {
  const char* label;
  std::uint32_t policy;
  std::uint64_t memory_bytes;
  std::uint64_t max_entries;  // 0: the default (memory / 128)
  std::uint32_t min_value;
  std::uint32_t max_value;
  std::uint64_t puts_per_writer;
};

void PrintTo(const LoadParams& p, std::ostream* os) { *os << p.label; }

int LoadWriter(const std::string& name, const LoadParams& lp, LoadShared* sh,
               int w, std::uint64_t seed) {
  auto g = Grid::Attach(name);
  if (!g.ok()) {
    sh->failure.Record("writer attach: " + g.status().ToString());
    return 2;
  }
  std::uint64_t r = seed;
  for (std::uint64_t i = 0; i < lp.puts_per_writer; ++i) {
    const std::string key = LoadKey(w, i);
    auto v = g->Put(key, LoadValue(key, lp.min_value, lp.max_value));
    if (v.ok()) {
      sh->put_ok.fetch_add(1);
    } else if (v.status().code() == StatusCode::kResourceExhausted) {
      if (sh->exhausted.fetch_add(1) == 0) {
        std::snprintf(sh->first_refusal, sizeof sh->first_refusal,
                      "put %s (%zu-byte value): %s", key.c_str(),
                      LoadValue(key, lp.min_value, lp.max_value).size(),
                      v.status().ToString().c_str());
      }
    } else {
      sh->failure.Record("put " + key + ": " + v.status().ToString());
      return 3;
    }
    sh->written[w].store(i + 1);
    // Now and then remove one of the last keys: present, or evicted already.
    r = Mix(r);
    if (r % 16 == 0 && i > 0) {
      const std::uint64_t back = 1 + (r >> 8) % std::min<std::uint64_t>(i, 64);
      const Status s = g->Remove(LoadKey(w, i - back));
      if (s.ok()) {
        sh->removed.fetch_add(1);
      } else if (s.code() == StatusCode::kNotFound) {
        sh->remove_missed.fetch_add(1);
      } else {
        sh->failure.Record("remove: " + s.ToString());
        return 3;
      }
    }
  }
  return 0;
}

int LoadReader(const std::string& name, const LoadParams& lp, LoadShared* sh,
               int writers, std::uint64_t seed) {
  auto g = Grid::Attach(name);
  if (!g.ok()) {
    sh->failure.Record("reader attach: " + g.status().ToString());
    return 2;
  }
  std::uint64_t r = seed;
  std::string v;
  while (!sh->stop.load(std::memory_order_relaxed)) {
    r = Mix(r);
    const int w = static_cast<int>(r % static_cast<std::uint64_t>(writers));
    const std::uint64_t n = sh->written[w].load();
    if (n == 0) continue;
    // Mostly the newest keys (the ones likely still there), else any.
    const std::uint64_t i =
        (r >> 16) % 4 != 0 ? n - 1 - (r >> 20) % std::min<std::uint64_t>(n, 32)
                           : (r >> 20) % n;
    const std::string key = LoadKey(w, i);
    const Status s = g->Get(key, &v);
    if (s.ok()) {
      sh->hits.fetch_add(1, std::memory_order_relaxed);
      if (v != LoadValue(key, lp.min_value, lp.max_value)) {
        sh->failure.Record("read " + key + ": a value never written to it (" +
                           std::to_string(v.size()) + " bytes, '" +
                           v.substr(0, 24) + "')");
        return 3;
      }
    } else if (s.code() == StatusCode::kNotFound) {
      sh->misses.fetch_add(1, std::memory_order_relaxed);
    } else {
      sh->failure.Record("get " + key + ": " + s.ToString());
      return 3;
    }
  }
  return 0;
}

// What one run of the load saw.
struct LoadOutcome {
  std::uint64_t attempted = 0;
  std::uint64_t put_ok = 0;
  std::uint64_t refused = 0;
  std::string first_refusal;
  std::uint64_t entries = 0;
  std::uint64_t evictions = 0;
};

// Creates the grid of `lp`, runs 3 writers and a reader on it while the
// parent samples the memory in use (which must never pass the limit), checks
// the grid and the accounting of every key put, and destroys the grid.
LoadOutcome RunLoad(const LoadParams& lp, std::uint64_t seed) {
  LoadOutcome out;
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = lp.memory_bytes;
  o.max_entries = lp.max_entries;
  // 4096: 64 KiB chunks, many per partition, values in small blocks.
  o.max_value_bytes = std::max<std::uint32_t>(4096, lp.max_value);
  o.bind = false;
  o.ring_capacity = 64;
  // Generous: only a bug makes a writer wait this long here.
  o.lock_timeout_ms = 20000;
  o.ring_wait_ms = 20000;
  o.eviction.policy = lp.policy;
  const std::string name = CreateMemoryGrid(o);
  if (::testing::Test::HasFailure()) return out;
  testing::GridGuard destroy(name);
  auto h = core::GridHandle::Attach(name);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  if (!h.ok()) return out;
  std::vector<std::uint32_t> all((*h)->partition_count());
  for (std::uint32_t p = 0; p < all.size(); ++p) all[p] = p;
  const core::Evictor probe(**h, all, 1);  // only to measure

  SharedBlock<LoadShared> shared;
  LoadShared* sh = shared.get();
  const int writers = 3;
  std::vector<pid_t> pids;
  ChildGuard guard(&pids);
  for (int w = 0; w < writers; ++w) {
    const std::uint64_t s = Mix(seed + static_cast<std::uint64_t>(w));
    pids.push_back(
        ForkChild([&, w, s] { return LoadWriter(name, lp, sh, w, s); }));
  }
  pids.push_back(ForkChild(
      [&] { return LoadReader(name, lp, sh, writers, Mix(seed ^ 0xEE)); }));

  // Sample the pressure until every child is done. The counters are read
  // racily (a write may be half-way), which skews a sample by one record,
  // or by the chunks one partition is giving back, at most.
  std::uint64_t samples = 0, max_used = 0, over = 0;
  core::MemoryPressure worst;
  std::size_t running = pids.size();
  std::vector<int> codes(pids.size(), -1);
  while (running > 0) {
    // The writers (pids 0..writers-1) ended: the reader stops too.
    if (std::all_of(pids.begin(), pids.begin() + writers,
                    [](pid_t pid) { return pid <= 0; })) {
      sh->stop.store(true);
    }
    const core::MemoryPressure m = probe.Measure();
    std::uint64_t chunks = 0;
    for (std::uint32_t p : all) {
      chunks += (*h)->partition(p).state().counters.chunk_bytes.load();
    }
    ++samples;
    if (m.used_bytes > max_used) {
      max_used = m.used_bytes;
      worst = m;
    }
    if (m.used_bytes > m.limit_bytes || chunks > m.limit_bytes) {
      if (++over <= 3) {
        ADD_FAILURE() << "sample " << samples << ": " << m.used_bytes
                      << " bytes used, chunks of " << chunks
                      << " bytes owned; the limit is " << m.limit_bytes;
      }
    }
    for (std::size_t c = 0; c < pids.size(); ++c) {
      if (pids[c] <= 0) continue;
      int st = 0;
      if (waitpid(pids[c], &st, WNOHANG) == pids[c]) {
        codes[c] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pids[c] = -1;
        --running;
      }
    }
    usleep(500);
  }
  for (std::size_t c = 0; c < codes.size(); ++c) {
    EXPECT_EQ(codes[c], 0) << "child " << c << ": " << sh->failure.message;
  }
  EXPECT_EQ(sh->failure.failed.load(), 0) << sh->failure.message;
  EXPECT_EQ(over, 0U) << "samples over the limit, of " << samples;

  out.attempted = static_cast<std::uint64_t>(writers) * lp.puts_per_writer;
  out.put_ok = sh->put_ok.load();
  out.refused = sh->exhausted.load();
  out.first_refusal = sh->first_refusal;
  std::uint64_t removes = 0;
  for (std::uint32_t p : all) {
    const auto& c = (*h)->partition(p).state().counters;
    out.entries += c.live_entries.load();
    out.evictions += c.evictions.load();
    removes += c.removes.load();
  }
  std::cout << "[ load     ] " << lp.label << ": " << out.put_ok << " of "
            << out.attempted << " puts OK, " << out.refused << " refused; "
            << out.evictions << " evictions, " << removes << " removes ("
            << sh->remove_missed.load() << " found the key evicted), "
            << out.entries << " entries left; " << sh->hits.load()
            << " reads hit, " << sh->misses.load() << " missed; " << samples
            << " samples, the most used " << max_used << " of "
            << worst.limit_bytes << " bytes" << std::endl;
  EXPECT_GT(out.evictions, 0U) << "the load never filled the grid";
  // Each key was put once: it is still there, was evicted, or was removed
  // (a refused put changed nothing).
  EXPECT_EQ(out.entries + out.evictions + removes, out.put_ok);
  EXPECT_EQ(removes, sh->removed.load());

  auto rep = core::CheckGrid(name, /*repair=*/false);
  EXPECT_TRUE(rep.ok()) << rep.status().ToString();
  if (rep.ok()) {
    EXPECT_TRUE(rep->problems.empty())
        << "CheckGrid found problems:" << JoinProblems(rep->problems);
    EXPECT_EQ(rep->live_entries, out.entries);
  }
  return out;
}

class EvictionUnderLoad : public ::testing::TestWithParam<LoadParams> {};

TEST_P(EvictionUnderLoad, UsedBytesStayUnderTheLimitAndEveryKeyIsAccounted) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  RunLoad(GetParam(), seed);
}

// Every put finds room: a writer that finds none evicts until it does.
//
// lru_memory, lfu_memory: about 2.5% of the puts were refused with "the
// memory of NUMA node 0 is full" (with one writer as well) while a free
// block served only its own size class and small-block chunks never went
// back to the node: a partition that held no block of the class a put
// needed could never get one by evicting. Now a larger free block is split,
// empty chunks go back to the node, and the writer evicts entries whose
// blocks are large enough or empties a chunk (docs/adr/0006-eviction.md,
// "Room for every write").
//
// random_index: it failed (about 0.3% "index full") until evictions under
// index pressure took entries that end a run of slots, each of which frees
// a slot (docs/adr/0006-eviction.md).
//
// lru_memory under AddressSanitizer on a loaded machine: 2 of 24000 puts
// were refused ("no free block of 4096 bytes or more") while a writer whose
// partition held nothing found only records of other partitions that the
// reader's pinned epoch kept from being freed, and gave up at once. Now it
// waits for them (MemoryOnlyEviction.
// AWriterWaitsForRoomAReaderHoldsInAnotherPartition is that case alone).
TEST_P(EvictionUnderLoad, EveryWriteFindsRoom) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  const LoadOutcome out = RunLoad(GetParam(), seed);
  // A writer that finds no room evicts: no put is refused.
  EXPECT_EQ(out.refused, 0U)
      << out.refused << " of " << out.attempted
      << " puts refused although the grid evicts; the first: "
      << out.first_refusal;
}

INSTANTIATE_TEST_SUITE_P(
    Policies, EvictionUnderLoad,
    ::testing::Values(
        // Memory bound: values of 16 bytes to 4 KiB (about 55 size classes)
        // through 3 MiB, about 15 times over.
        LoadParams{"lru_memory", core::kEvictLru, 3ULL << 20, 0, 16, 4096,
                   8000},
        LoadParams{"lfu_memory", core::kEvictLfu, 3ULL << 20, 0, 16, 4096,
                   8000},
        // Values of up to 256 KiB, most of them runs of 1 to 5 whole
        // chunks, through 8 MiB about 20 times over: a writer needs a run
        // of free neighbouring chunks.
        LoadParams{"lru_large", core::kEvictLru, 8ULL << 20, 0, 16, 256U << 10,
                   400},
        // Index bound: small values, an index of 512 entries a partition.
        LoadParams{"random_index", core::kEvictRandom, 4ULL << 20, 2048, 16,
                   200, 8000}),
    [](const ::testing::TestParamInfo<LoadParams>& i) {
      return std::string(i.param.label);
    });

// =========================================== expired entries are never given

constexpr int kExpiryWriters = 2;
constexpr int kExpiryReaders = 3;
constexpr int kTtlKeys = 48;
constexpr int kIdleKeys = 12;  // per reader: only that reader reads them
constexpr std::uint64_t kWritesPerWriter = 6000;
constexpr std::uint64_t kMaxIdleMs = 25;
constexpr std::uint64_t kMaxDeferred = 4096;

// A TTL key's value: "<key>|<writer>|<counter>|<ms before the put>|<ttl>|"
// and a pad that follows from them.
std::string ExpiryValue(std::string_view key, std::uint64_t w, std::uint64_t c,
                        std::uint64_t before_ms, std::uint64_t ttl_ms) {
  std::string v = std::string(key) + "|" + std::to_string(w) + "|" +
                  std::to_string(c) + "|" + std::to_string(before_ms) + "|" +
                  std::to_string(ttl_ms) + "|";
  const std::uint64_t h = Mix(w * 1'000'003 + c);
  v.append(static_cast<std::size_t>(h % 300),
           static_cast<char>('a' + (h >> 20) % 26));
  return v;
}

struct ParsedExpiryValue {
  std::uint64_t w = 0, c = 0, before_ms = 0, ttl_ms = 0;
};

// The fields of a value of `key`; nullopt if it is not one ExpiryValue made.
std::optional<ParsedExpiryValue> ParseExpiryValue(std::string_view key,
                                                  const std::string& v) {
  if (v.size() <= key.size() || v.compare(0, key.size(), key) != 0 ||
      v[key.size()] != '|') {
    return std::nullopt;
  }
  ParsedExpiryValue p;
  std::uint64_t* fields[4] = {&p.w, &p.c, &p.before_ms, &p.ttl_ms};
  std::size_t i = key.size() + 1;
  for (std::uint64_t* f : fields) {
    const std::size_t start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
      *f = *f * 10 + static_cast<std::uint64_t>(v[i] - '0');
      ++i;
    }
    if (i == start || i >= v.size() || v[i] != '|') return std::nullopt;
    ++i;
  }
  if (p.w >= kExpiryWriters || p.c >= kWritesPerWriter ||
      v != ExpiryValue(key, p.w, p.c, p.before_ms, p.ttl_ms)) {
    return std::nullopt;
  }
  return p;
}

std::string TtlKey(int j) { return "t" + std::to_string(j); }
std::string IdleKey(int reader, int k) {
  return "i" + std::to_string(reader) + "." + std::to_string(k);
}

struct DeferredRead {
  std::uint64_t w, c, t0;
};

struct ExpiryShared {
  // Per write (writer, counter) of a TTL key: NowMs() after its put returned
  // plus its TTL, which is at or after the expiry the grid gave the entry
  // (the grid reads NowMs() inside the put); 0 until the put returned.
  std::atomic<std::uint64_t> expiry_bound[kExpiryWriters][kWritesPerWriter] =
      {};
  // Per idle key: puts begun and ended, and the largest NowMs() taken after
  // one ended (at or after the access time the put gave the entry).
  std::atomic<std::uint64_t> idle_begun[kExpiryReaders][kIdleKeys] = {};
  std::atomic<std::uint64_t> idle_ended[kExpiryReaders][kIdleKeys] = {};
  std::atomic<std::uint64_t> idle_written_ms[kExpiryReaders][kIdleKeys] = {};
  // Reads of a TTL value at or past its nominal expiry made before its put
  // returned: checked by the parent once the bound is known.
  std::atomic<std::uint64_t> deferred_count{0};
  DeferredRead deferred[kMaxDeferred] = {};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ttl_hits{0}, ttl_misses{0}, ttl_late_hits{0};
  std::atomic<std::uint64_t> idle_hits{0}, idle_misses{0}, idle_due{0};
  ChildFailure failure;
};

int ExpiryWriter(const std::string& name, ExpiryShared* sh, int w,
                 std::uint64_t seed) {
  auto g = Grid::Attach(name);
  if (!g.ok()) {
    sh->failure.Record("writer attach: " + g.status().ToString());
    return 2;
  }
  std::uint64_t r = seed;
  for (std::uint64_t c = 0; c < kWritesPerWriter; ++c) {
    r = Mix(r);
    if (r % 40 == 0) {  // an idle key, now and then
      const int reader = static_cast<int>((r >> 8) % kExpiryReaders);
      const int k = static_cast<int>((r >> 16) % kIdleKeys);
      const std::string key = IdleKey(reader, k);
      sh->idle_begun[reader][k].fetch_add(1);
      auto v = g->Put(key, ExpiryValue(key, static_cast<std::uint64_t>(w), c,
                                       core::NowMs(), 0));
      if (!v.ok()) {
        sh->failure.Record("put " + key + ": " + v.status().ToString());
        return 3;
      }
      const std::uint64_t after = core::NowMs();
      std::atomic<std::uint64_t>& last = sh->idle_written_ms[reader][k];
      std::uint64_t seen = last.load();
      while (seen < after && !last.compare_exchange_weak(seen, after)) {
      }
      sh->idle_ended[reader][k].fetch_add(1);
    } else {
      const std::string key = TtlKey(
          static_cast<int>((r >> 8) % static_cast<std::uint64_t>(kTtlKeys)));
      // 1 to 20 ms, and now and then none.
      const std::uint64_t ttl = (r >> 24) % 16 == 0 ? 0 : 1 + (r >> 32) % 20;
      const std::uint64_t before = core::NowMs();
      auto v = g->Put(
          key, ExpiryValue(key, static_cast<std::uint64_t>(w), c, before, ttl),
          {.ttl_ms = ttl});
      if (!v.ok()) {
        sh->failure.Record("put " + key + ": " + v.status().ToString());
        return 3;
      }
      sh->expiry_bound[w][c].store(ttl == 0 ? UINT64_MAX : core::NowMs() + ttl);
    }
    if ((r >> 40) % 4 == 0) usleep(static_cast<useconds_t>((r >> 44) % 500));
  }
  return 0;
}

int ExpiryReader(const std::string& name, ExpiryShared* sh, int reader,
                 std::uint64_t seed) {
  auto g = Grid::Attach(name);
  if (!g.ok()) {
    sh->failure.Record("reader attach: " + g.status().ToString());
    return 2;
  }
  std::uint64_t r = seed;
  std::string v;
  // Per idle key: NowMs() after this reader's last hit (its read stored an
  // access time at or before it), 0 if none.
  std::vector<std::uint64_t> hit_ms(kIdleKeys, 0);
  std::uint64_t next_idle_probe = 0;
  while (!sh->stop.load(std::memory_order_relaxed)) {
    r = Mix(r);
    const std::uint64_t t0 = core::NowMs();
    if (t0 >= next_idle_probe) {
      // An idle key, every few ms: long enough between two reads of one
      // key for it to go idle now and then.
      next_idle_probe = t0 + 1 + r % 4;
      const int k = static_cast<int>((r >> 8) % kIdleKeys);
      const std::string key = IdleKey(reader, k);
      const std::uint64_t begun = sh->idle_begun[reader][k].load();
      const std::uint64_t ended = sh->idle_ended[reader][k].load();
      const std::uint64_t written = sh->idle_written_ms[reader][k].load();
      const std::uint64_t t = core::NowMs();
      const Status s = g->Get(key, &v);
      const std::uint64_t after = core::NowMs();
      // No put was under way or began during the read: the entry's access
      // time is at or before the later of the last put's end and this
      // reader's last hit (nobody else reads the key).
      const bool quiet =
          begun == ended && sh->idle_begun[reader][k].load() == begun;
      const bool due = quiet && (begun == 0 ||
                                 t > std::max(written, hit_ms[k]) + kMaxIdleMs);
      if (due) sh->idle_due.fetch_add(1, std::memory_order_relaxed);
      if (s.ok()) {
        sh->idle_hits.fetch_add(1, std::memory_order_relaxed);
        if (!ParseExpiryValue(key, v).has_value()) {
          sh->failure.Record("read " + key + ": a value never written ('" +
                             v.substr(0, 40) + "')");
          return 3;
        }
        if (due) {
          sh->failure.Record("read " + key + " at " + std::to_string(t) +
                             " returned an entry idle since at most " +
                             std::to_string(std::max(written, hit_ms[k])) +
                             " (max-idle " + std::to_string(kMaxIdleMs) +
                             " ms; " + std::to_string(begun) + " puts)");
          return 4;
        }
        hit_ms[k] = after;
      } else if (s.code() == StatusCode::kNotFound) {
        sh->idle_misses.fetch_add(1, std::memory_order_relaxed);
      } else {
        sh->failure.Record("get " + key + ": " + s.ToString());
        return 3;
      }
      continue;
    }
    const std::string key = TtlKey(
        static_cast<int>((r >> 8) % static_cast<std::uint64_t>(kTtlKeys)));
    const Status s = g->Get(key, &v);
    if (s.code() == StatusCode::kNotFound) {
      sh->ttl_misses.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!s.ok()) {
      sh->failure.Record("get " + key + ": " + s.ToString());
      return 3;
    }
    sh->ttl_hits.fetch_add(1, std::memory_order_relaxed);
    const auto p = ParseExpiryValue(key, v);
    if (!p.has_value()) {
      sh->failure.Record("read " + key + ": a value never written ('" +
                         v.substr(0, 40) + "')");
      return 3;
    }
    if (p->ttl_ms == 0 || t0 < p->before_ms + p->ttl_ms) continue;
    // At or past its nominal expiry: a fault unless the put itself read
    // the clock later than its writer did before it.
    sh->ttl_late_hits.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t bound = sh->expiry_bound[p->w][p->c].load();
    if (bound == 0) {
      const std::uint64_t i = sh->deferred_count.fetch_add(1);
      if (i < kMaxDeferred) sh->deferred[i] = {p->w, p->c, t0};
    } else if (t0 >= bound) {
      sh->failure.Record("read " + key + " began at " + std::to_string(t0) +
                         " and returned a value that expired at or before " +
                         std::to_string(bound) + " (TTL " +
                         std::to_string(p->ttl_ms) + " ms, put at " +
                         std::to_string(p->before_ms) + ")");
      return 4;
    }
  }
  return 0;
}

TEST(ExpiryUnderLoad, NoReaderIsGivenAnEntryPastItsTtlOrMaxIdle) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 8ULL << 20;
  o.bind = false;
  o.eviction.policy = core::kEvictLru;
  o.eviction.max_idle_ms = kMaxIdleMs;
  const std::string name = CreateMemoryGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());

  SharedBlock<ExpiryShared> shared;
  ExpiryShared* sh = shared.get();
  std::vector<pid_t> writers, readers;
  ChildGuard guard_w(&writers);
  ChildGuard guard_r(&readers);
  for (int w = 0; w < kExpiryWriters; ++w) {
    const std::uint64_t s = Mix(seed + static_cast<std::uint64_t>(w));
    writers.push_back(
        ForkChild([&, w, s] { return ExpiryWriter(name, sh, w, s); }));
  }
  for (int i = 0; i < kExpiryReaders; ++i) {
    const std::uint64_t s = Mix(seed ^ (0x100 + static_cast<std::uint64_t>(i)));
    readers.push_back(
        ForkChild([&, i, s] { return ExpiryReader(name, sh, i, s); }));
  }
  for (pid_t& pid : writers) {
    EXPECT_EQ(WaitChild(pid), 0) << sh->failure.message;
    pid = -1;
  }
  sh->stop.store(true);
  for (pid_t& pid : readers) {
    EXPECT_EQ(WaitChild(pid), 0) << sh->failure.message;
    pid = -1;
  }
  EXPECT_EQ(sh->failure.failed.load(), 0) << sh->failure.message;

  // The late reads made before their put returned, now that it has.
  const std::uint64_t deferred =
      std::min<std::uint64_t>(sh->deferred_count.load(), kMaxDeferred);
  for (std::uint64_t i = 0; i < deferred; ++i) {
    const DeferredRead& d = sh->deferred[i];
    const std::uint64_t bound = sh->expiry_bound[d.w][d.c].load();
    EXPECT_LT(d.t0, bound) << "a read that began at " << d.t0
                           << " returned write " << d.w << "." << d.c
                           << ", which expired at or before " << bound;
  }
  std::cout << "[ expiry   ] TTL keys: " << sh->ttl_hits.load() << " hits, "
            << sh->ttl_misses.load() << " misses, " << sh->ttl_late_hits.load()
            << " hits at or past the nominal expiry (" << deferred
            << " checked after the put); idle keys: " << sh->idle_hits.load()
            << " hits, " << sh->idle_misses.load() << " misses, "
            << sh->idle_due.load() << " reads that had to miss" << std::endl;
  // The load did what it is for: entries expired under the readers, and
  // some idle reads came due.
  EXPECT_GT(sh->ttl_misses.load(), 0U);
  EXPECT_GT(sh->idle_due.load(), 0U);

  auto rep = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->problems.empty())
      << "CheckGrid found problems:" << JoinProblems(rep->problems);
  EXPECT_TRUE(core::DestroyGrid(name).ok());
}

}  // namespace
}  // namespace numagrid
