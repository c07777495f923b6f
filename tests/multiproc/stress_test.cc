// Cross-process stress of the data path: forked writers and readers share one
// grid; afterwards the grid is checked against a model rebuilt from what each
// writer was told (every successful write and the version it returned) and
// from what each reader saw. Also a replay of the change rings, and a
// multi-thread stress for ThreadSanitizer.
//
// Randomized: each test prints its seed; set NUMAGRID_TEST_SEED to replay one.
// No test asserts a time: waits are bounded by the grid's own timeouts, and a
// hang is caught by the ctest TIMEOUT.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/base/key_hash.h"
#include "core/data_layout.h"
#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/grid_names.h"
#include "core/partition_layout.h"
#include "core/record.h"
#include "gtest/gtest.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
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

// ------------------------------------------------------------------ seeds

// ------------------------------------------------------------ grid set-up

// Two synthetic NUMA nodes, so that partitions live in two data segments
// (placement itself is tested in tests/numa; binding is skipped here).
numa::Topology TwoNodes() {
  auto t = numa::Topology::FromSynthetic("pack:2 numa:1 core:1 pu:1");
  if (!t.ok()) {
    ADD_FAILURE() << t.status().ToString();
    std::abort();
  }
  return std::move(*t);
}

std::string MakeGrid(const core::CreateOptions& o) {
  const std::string name = UniqueName("s");
  auto r = core::CreateGrid(name, o, TwoNodes());
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return name;
}

// A temporary directory for the children's logs, removed with its files.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/numagrid-stress-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    for (const auto& f : files_) unlink(f.c_str());
    rmdir(path_.c_str());
  }
  std::string File(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// ------------------------------------------------------------ the values

constexpr int kKeys = 200;

std::string KeyName(int k) {
  char b[8];
  std::snprintf(b, sizeof b, "k%03d", k);
  return b;
}
// Parses "k%03d"; -1 if `key` is not one of ours.
int KeyIndex(std::string_view key) {
  if (key.size() != 4 || key[0] != 'k') return -1;
  int k = 0;
  for (char c : key.substr(1)) {
    if (c < '0' || c > '9') return -1;
    k = k * 10 + (c - '0');
  }
  return k < kKeys ? k : -1;
}
// Counter keys take increments (8-byte values), removes, and now and then a
// put, which makes increments fail with kInvalidArgument until a remove.
bool IsCounterKey(int k) { return k % 4 == 0; }

// A put value: "w<writer>:<counter>:<key>:" and a pad whose length and bytes
// follow from (writer, counter), so a reader can tell a whole value from a
// torn one and name the write it came from. Never 8 bytes long.
std::string PutValue(std::uint32_t writer, std::uint64_t counter, int key) {
  std::string v = "w" + std::to_string(writer) + ":" + std::to_string(counter) +
                  ":" + KeyName(key) + ":";
  const std::uint64_t h = Mix((std::uint64_t{writer} << 40) ^ counter);
  const std::size_t pad = h % 97;
  for (std::size_t i = 0; i < pad; ++i) {
    v.push_back(static_cast<char>('a' + (h >> 8 ^ i) % 26));
  }
  return v;
}

std::string CounterValue(std::int64_t c) {
  std::string v(8, '\0');
  std::memcpy(v.data(), &c, 8);
  return v;
}

struct Parsed {
  bool ok = false;
  bool is_counter = false;
  std::uint32_t writer = 0;
  std::uint64_t counter = 0;  // put: the writer's counter
  std::int64_t count = 0;     // counter value
};

Parsed ParseValue(std::string_view v, int key) {
  Parsed p;
  if (v.size() == 8) {
    if (!IsCounterKey(key)) return p;
    p.is_counter = true;
    std::memcpy(&p.count, v.data(), 8);
    p.ok = true;
    return p;
  }
  unsigned long long w = 0, c = 0;
  int used = 0;
  const std::string head(v.substr(0, 40));
  if (std::sscanf(head.c_str(), "w%llu:%llu:%n", &w, &c, &used) != 2 ||
      used == 0)
    return p;
  p.writer = static_cast<std::uint32_t>(w);
  p.counter = c;
  p.ok = v == PutValue(p.writer, p.counter, key);
  return p;
}

// ------------------------------------------------------------- the logs

enum : std::uint8_t { kRecWrite = 1, kRecSeen = 2 };
enum : std::uint8_t {
  kUpsert = 1,
  kInsert,
  kReplace,
  kCas,
  kRemove,
  kRemoveIfVersion,
  kIncrement,
  kSeenPut,
  kSeenCounter,
};

// One line of a child's log. A write: what it did and the version it was
// told. A sighting: a value and version a read returned.
struct LogRec {
  std::uint8_t rec;
  std::uint8_t op;
  std::uint16_t key;
  std::uint32_t writer;   // put values: their writer
  std::uint64_t version;  // returned by the write, or seen by the read
  std::uint64_t value;    // put: writer counter; increment/counter: the count
  std::uint64_t
      arg;  // CAS, RemoveIfVersion: expected version; increment: delta
};
static_assert(sizeof(LogRec) == 32);

bool WriteLog(const std::string& path, const std::vector<LogRec>& log) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok =
      std::fwrite(log.data(), sizeof(LogRec), log.size(), f) == log.size();
  return std::fclose(f) == 0 && ok;
}

std::vector<LogRec> ReadLog(const std::string& path) {
  std::vector<LogRec> log;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return log;
  LogRec r;
  while (std::fread(&r, sizeof r, 1, f) == 1) log.push_back(r);
  std::fclose(f);
  return log;
}

// A failure inside a child: printed (the parent's gtest cannot see it), and
// the child exits with 2.
struct ChildFailure {
  std::string what;
};

[[noreturn]] void Fail(const std::string& what) { throw ChildFailure{what}; }

// A read's check: the value is whole, and for one reader the versions of a
// key never go back.
class ReadChecker {
 public:
  explicit ReadChecker(std::vector<LogRec>* log) : log_(log), last_(kKeys, 0) {}

  void Saw(std::string_view key, std::string_view value, std::uint64_t version,
           const char* how) {
    const int k = KeyIndex(key);
    if (k < 0)
      Fail(std::string(how) + " returned a key that no writer wrote: '" +
           std::string(key) + "'");
    const Parsed p = ParseValue(value, k);
    if (!p.ok) {
      Fail(std::string(how) + " of " + std::string(key) +
           " returned a value no writer " + "could have written (" +
           std::to_string(value.size()) + " bytes)");
    }
    if (version < last_[k]) {
      Fail(std::string(how) + " of " + std::string(key) +
           " went back from version " + std::to_string(last_[k]) + " to " +
           std::to_string(version));
    }
    if (version != last_[k]) {
      last_[k] = version;
      LogRec r{kRecSeen,
               p.is_counter ? kSeenCounter : kSeenPut,
               static_cast<std::uint16_t>(k),
               p.writer,
               version,
               p.is_counter ? static_cast<std::uint64_t>(p.count) : p.counter,
               0};
      log_->push_back(r);
    }
  }

 private:
  std::vector<LogRec>* log_;
  std::vector<std::uint64_t> last_;
};

void ExpectCode(const Status& s, std::initializer_list<StatusCode> allowed,
                const char* what, std::string_view key) {
  for (StatusCode c : allowed) {
    if (s.code() == c) return;
  }
  Fail(std::string(what) + " of " + std::string(key) + " returned " +
       s.ToString());
}

// A write through core::GridHandle, for the ops whose version the public API
// does not return (removes, increments); the same call numagrid::Grid makes.
Result<core::WriteResult> RawWrite(core::GridHandle& h, core::WriteKind kind,
                                   std::string_view key, std::int64_t delta,
                                   std::uint64_t expected) {
  core::WriteRequest rq;
  rq.kind = kind;
  rq.key = key;
  rq.hash = base::KeyHash(key);
  rq.delta = delta;
  rq.expected_version = expected;
  return h.partition(base::PartitionOf(rq.hash, h.partition_count()))
      .Write(rq, h.limits(), core::NowMs());
}

// ---------------------------------------------------- the forked workload

struct Flags {
  std::atomic<int> stop{0};
};

struct WorkloadSpec {
  int writers = 4;
  int readers = 2;
  int ops_per_writer = 40000;
};

void ReadSome(Grid& g, std::mt19937_64& rng, ReadChecker& check) {
  const int k = static_cast<int>(rng() % kKeys);
  const std::string key = KeyName(k);
  const unsigned dice = rng() % 100;
  if (dice < 60) {
    std::string v;
    std::uint64_t ver = 0;
    Status s = g.Get(key, &v, &ver);
    ExpectCode(s, {StatusCode::kOk, StatusCode::kNotFound}, "Get", key);
    if (s.ok()) check.Saw(key, v, ver, "Get");
  } else if (dice < 75) {
    Status s = g.Visit(key, [&](std::string_view v, std::uint64_t ver) {
      check.Saw(key, v, ver, "Visit");
    });
    ExpectCode(s, {StatusCode::kOk, StatusCode::kNotFound}, "Visit", key);
  } else if (dice < 85) {
    char buf[256];
    auto n = g.GetInto(key, buf, sizeof buf);
    ExpectCode(n.status(), {StatusCode::kOk, StatusCode::kNotFound}, "GetInto",
               key);
    // GetInto reports no version: check the bytes only.
    if (n.ok() && !ParseValue(std::string_view(buf, *n), k).ok) {
      Fail("GetInto of " + key +
           " returned a value no writer could have written");
    }
  } else if (dice < 97) {
    const auto p = static_cast<std::int64_t>(rng() % g.partition_count());
    Status s = g.Scan(
        [&](std::string_view key2, std::string_view v, std::uint64_t ver) {
          check.Saw(key2, v, ver, "Scan");
          if (g.PartitionOfKey(key2) != p) {
            Fail("Scan of partition " + std::to_string(p) + " visited " +
                 std::string(key2));
          }
          return true;
        },
        p);
    ExpectCode(s, {StatusCode::kOk}, "Scan", "a partition");
  } else {
    Status s = g.Scan(
        [&](std::string_view key2, std::string_view v, std::uint64_t ver) {
          check.Saw(key2, v, ver, "Scan");
          return true;
        });
    ExpectCode(s, {StatusCode::kOk}, "Scan", "the grid");
  }
}

int WriterMain(const std::string& name, std::uint32_t writer,
               std::uint64_t seed, int ops, const std::string& log_path) {
  std::vector<LogRec> log;
  try {
    auto grid = Grid::Attach(name);
    if (!grid.ok()) Fail("attach: " + grid.status().ToString());
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) Fail("attach (core): " + h.status().ToString());
    Grid& g = *grid;
    core::GridHandle& raw = **h;
    std::mt19937_64 rng(seed);
    ReadChecker check(&log);
    std::uint64_t counter = 0;
    auto wrote = [&](std::uint8_t op, int k, std::uint64_t version,
                     std::uint64_t value, std::uint64_t arg) {
      log.push_back(LogRec{kRecWrite, op, static_cast<std::uint16_t>(k), writer,
                           version, value, arg});
    };
    for (int i = 0; i < ops; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      const std::string key = KeyName(k);
      const unsigned dice = rng() % 100;
      if (IsCounterKey(k)) {
        if (dice < 50) {
          std::int64_t delta = static_cast<std::int64_t>(rng() % 19) - 9;
          if (delta == 0) delta = 10;
          auto r = RawWrite(raw, core::WriteKind::kIncrement, key, delta, 0);
          ExpectCode(r.status(),
                     {StatusCode::kOk, StatusCode::kInvalidArgument},
                     "Increment", key);
          if (r.ok()) {
            wrote(kIncrement, k, r->version,
                  static_cast<std::uint64_t>(r->counter),
                  static_cast<std::uint64_t>(delta));
          }
          continue;
        }
        if (dice < 62) {
          auto r = RawWrite(raw, core::WriteKind::kRemove, key, 0, 0);
          ExpectCode(r.status(), {StatusCode::kOk, StatusCode::kNotFound},
                     "Remove", key);
          if (r.ok()) wrote(kRemove, k, r->version, 0, 0);
          continue;
        }
        if (dice < 66) {
          const std::uint64_t c = ++counter;
          auto r = g.Put(key, PutValue(writer, c, k));
          ExpectCode(r.status(), {StatusCode::kOk}, "Put", key);
          wrote(kUpsert, k, *r, c, 0);
          continue;
        }
        ReadSome(g, rng, check);
        continue;
      }
      if (dice < 35) {
        const std::uint64_t c = ++counter;
        auto r = g.Put(key, PutValue(writer, c, k));
        ExpectCode(r.status(), {StatusCode::kOk}, "Put", key);
        wrote(kUpsert, k, *r, c, 0);
      } else if (dice < 45) {
        const std::uint64_t c = ++counter;
        auto r = g.Insert(key, PutValue(writer, c, k));
        ExpectCode(r.status(), {StatusCode::kOk, StatusCode::kAlreadyExists},
                   "Insert", key);
        if (r.ok()) wrote(kInsert, k, *r, c, 0);
      } else if (dice < 55) {
        const std::uint64_t c = ++counter;
        auto r = g.Replace(key, PutValue(writer, c, k));
        ExpectCode(r.status(), {StatusCode::kOk, StatusCode::kNotFound},
                   "Replace", key);
        if (r.ok()) wrote(kReplace, k, *r, c, 0);
      } else if (dice < 70) {
        std::string v;
        std::uint64_t ver = 0;
        Status s = g.Get(key, &v, &ver);
        ExpectCode(s, {StatusCode::kOk, StatusCode::kNotFound}, "Get", key);
        if (s.ok()) check.Saw(key, v, ver, "Get");
        // Now and then an expected version that is certainly stale: versions
        // of a key only grow, so it must conflict.
        const bool stale = s.ok() && rng() % 8 == 0;
        const std::uint64_t expected =
            s.ok() ? (stale ? ver - 1 : ver) : 1 + rng() % 1000;
        const std::uint64_t c = ++counter;
        auto r = g.CompareAndSet(key, expected, PutValue(writer, c, k));
        if (stale) {
          ExpectCode(r.status(), {StatusCode::kConflict, StatusCode::kNotFound},
                     "CompareAndSet with a stale version", key);
        } else {
          ExpectCode(
              r.status(),
              {StatusCode::kOk, StatusCode::kConflict, StatusCode::kNotFound},
              "CompareAndSet", key);
        }
        if (r.ok()) wrote(kCas, k, *r, c, expected);
      } else if (dice < 80) {
        auto r = RawWrite(raw, core::WriteKind::kRemove, key, 0, 0);
        ExpectCode(r.status(), {StatusCode::kOk, StatusCode::kNotFound},
                   "Remove", key);
        if (r.ok()) wrote(kRemove, k, r->version, 0, 0);
      } else if (dice < 86) {
        std::string v;
        std::uint64_t ver = 0;
        Status s = g.Get(key, &v, &ver);
        ExpectCode(s, {StatusCode::kOk, StatusCode::kNotFound}, "Get", key);
        if (s.ok()) check.Saw(key, v, ver, "Get");
        const std::uint64_t expected = s.ok() ? ver : 1 + rng() % 1000;
        auto r =
            RawWrite(raw, core::WriteKind::kRemoveIfVersion, key, 0, expected);
        ExpectCode(
            r.status(),
            {StatusCode::kOk, StatusCode::kConflict, StatusCode::kNotFound},
            "RemoveIfVersion", key);
        if (r.ok()) wrote(kRemoveIfVersion, k, r->version, 0, expected);
      } else {
        ReadSome(g, rng, check);
      }
    }
  } catch (const ChildFailure& f) {
    std::fprintf(stderr, "writer %u (seed %llu) failed: %s\n", writer,
                 static_cast<unsigned long long>(seed), f.what.c_str());
    WriteLog(log_path, log);
    return 2;
  }
  return WriteLog(log_path, log) ? 0 : 3;
}

int ReaderMain(const std::string& name, std::uint32_t reader,
               std::uint64_t seed, const Flags* flags,
               const std::string& log_path) {
  std::vector<LogRec> log;
  try {
    auto grid = Grid::Attach(name);
    if (!grid.ok()) Fail("attach: " + grid.status().ToString());
    std::mt19937_64 rng(seed);
    ReadChecker check(&log);
    // At least some reads even if the writers are done before we start.
    for (int i = 0; i < 1000 || flags->stop.load() == 0; ++i) {
      if (rng() % 10 == 0) {
        std::vector<std::string> keys;
        for (int j = 0; j < 5; ++j)
          keys.push_back(KeyName(static_cast<int>(rng() % kKeys)));
        auto got = grid->MultiGet(keys);
        for (std::size_t j = 0; j < keys.size(); ++j) {
          ExpectCode(got[j].status(), {StatusCode::kOk, StatusCode::kNotFound},
                     "MultiGet", keys[j]);
          // MultiGet reports no version: check the bytes only.
          if (got[j].ok() && !ParseValue(*got[j], KeyIndex(keys[j])).ok) {
            Fail("MultiGet of " + keys[j] +
                 " returned a value no writer could have written");
          }
        }
        continue;
      }
      ReadSome(*grid, rng, check);
    }
  } catch (const ChildFailure& f) {
    std::fprintf(stderr, "reader %u (seed %llu) failed: %s\n", reader,
                 static_cast<unsigned long long>(seed), f.what.c_str());
    WriteLog(log_path, log);
    return 2;
  }
  return WriteLog(log_path, log) ? 0 : 3;
}

struct WorkloadLogs {
  std::vector<LogRec> writes;
  std::vector<LogRec> seen;
};

// Forks the writers and readers, waits for them, and returns their logs.
WorkloadLogs RunForkedWorkload(const std::string& name,
                               const WorkloadSpec& spec, std::uint64_t seed) {
  TempDir dir;
  SharedBlock<Flags> flags;
  std::vector<pid_t> writers, readers;
  std::vector<std::string> paths;
  for (int w = 0; w < spec.writers; ++w) {
    const std::string path = dir.File("writer" + std::to_string(w));
    paths.push_back(path);
    const std::uint64_t s = Mix(seed ^ (0x100 + static_cast<std::uint64_t>(w)));
    writers.push_back(ForkChild([&, w, s, path] {
      return WriterMain(name, static_cast<std::uint32_t>(w), s,
                        spec.ops_per_writer, path);
    }));
  }
  for (int r = 0; r < spec.readers; ++r) {
    const std::string path = dir.File("reader" + std::to_string(r));
    paths.push_back(path);
    const std::uint64_t s = Mix(seed ^ (0x200 + static_cast<std::uint64_t>(r)));
    const Flags* f = flags.get();
    readers.push_back(ForkChild([&, r, s, path, f] {
      return ReaderMain(name, static_cast<std::uint32_t>(r), s, f, path);
    }));
  }
  for (std::size_t i = 0; i < writers.size(); ++i) {
    EXPECT_EQ(WaitChild(writers[i]), 0)
        << "writer " << i << " failed (see its stderr)";
  }
  flags->stop.store(1);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    EXPECT_EQ(WaitChild(readers[i]), 0)
        << "reader " << i << " failed (see its stderr)";
  }
  WorkloadLogs logs;
  for (const auto& p : paths) {
    for (const LogRec& r : ReadLog(p)) {
      (r.rec == kRecWrite ? logs.writes : logs.seen).push_back(r);
    }
  }
  return logs;
}

// ------------------------------------------------------------- the model

// A key's state: absent, a put value, or a counter.
struct KeyState {
  bool present = false;
  bool is_counter = false;
  std::uint32_t writer = 0;
  std::uint64_t counter = 0;
  std::int64_t count = 0;
  std::uint64_t version = 0;

  std::string Value(int k) const {
    return is_counter ? CounterValue(count) : PutValue(writer, counter, k);
  }
};

std::string Describe(const LogRec& r) {
  static const char* const kNames[] = {
      "?",       "Put",        "Insert",          "Replace",
      "CAS",     "Remove",     "RemoveIfVersion", "Increment",
      "SeenPut", "SeenCounter"};
  return std::string(kNames[r.op < 10 ? r.op : 0]) + " of " + KeyName(r.key) +
         " by writer " + std::to_string(r.writer) + " at version " +
         std::to_string(r.version);
}

class Model {
 public:
  // Orders every successful write by version and replays it; each write's
  // precondition must hold in the state it was applied to.
  Model(const std::vector<LogRec>& writes, Grid& g)
      : by_key_(kKeys), final_(kKeys) {
    for (const LogRec& r : writes) {
      if (!by_key_[r.key].emplace(r.version, r).second) {
        Error("two writes of " + KeyName(r.key) + " were told version " +
              std::to_string(r.version));
      }
      per_partition_[g.PartitionOfKey(KeyName(r.key))].push_back(r.version);
    }
    for (int k = 0; k < kKeys; ++k) {
      KeyState s;
      for (const auto& [version, r] : by_key_[k]) {
        Apply(k, r, &s);
      }
      final_[k] = s;
    }
  }

  const KeyState& Final(int k) const { return final_[k]; }
  const std::map<std::uint64_t, LogRec>& Writes(int k) const {
    return by_key_[k];
  }
  const std::map<std::uint32_t, std::vector<std::uint64_t>>& PerPartition()
      const {
    return per_partition_;
  }
  std::vector<std::string>& errors() { return errors_; }

  void Error(std::string e) {
    if (errors_.size() < 30) errors_.push_back(std::move(e));
  }

 private:
  void Apply(int k, const LogRec& r, KeyState* s) {
    const std::string what = Describe(r);
    switch (r.op) {
      case kInsert:
        if (s->present) Error(what + " succeeded but the key was present");
        break;
      case kReplace:
        if (!s->present) Error(what + " succeeded but the key was absent");
        break;
      case kCas:
      case kRemoveIfVersion:
        if (!s->present || s->version != r.arg) {
          Error(what + " succeeded expecting version " + std::to_string(r.arg) +
                " but the key was " +
                (s->present ? "at version " + std::to_string(s->version)
                            : "absent"));
        }
        break;
      case kRemove:
        if (!s->present) Error(what + " succeeded but the key was absent");
        break;
      case kIncrement: {
        const auto delta = static_cast<std::int64_t>(r.arg);
        const auto got = static_cast<std::int64_t>(r.value);
        if (s->present && !s->is_counter) {
          Error(what + " succeeded on a value that is not a counter");
        } else if (got != (s->present ? s->count : 0) + delta) {
          Error(what + " returned " + std::to_string(got) +
                " but the counter was " +
                std::to_string(s->present ? s->count : 0) + " and delta " +
                std::to_string(delta));
        }
        break;
      }
      default:
        break;
    }
    (void)k;
    if (r.op == kRemove || r.op == kRemoveIfVersion) {
      *s = KeyState{};
      return;
    }
    s->present = true;
    s->version = r.version;
    s->is_counter = r.op == kIncrement;
    if (s->is_counter) {
      s->count = static_cast<std::int64_t>(r.value);
    } else {
      s->writer = r.writer;
      s->counter = r.value;
    }
  }

  std::vector<std::map<std::uint64_t, LogRec>> by_key_;
  std::vector<KeyState> final_;
  std::map<std::uint32_t, std::vector<std::uint64_t>> per_partition_;
  std::vector<std::string> errors_;
};

// key -> (value, version), as a Scan sees it.
using Snapshot = std::map<std::string, std::pair<std::string, std::uint64_t>>;

Snapshot ScanAll(Grid& g) {
  Snapshot s;
  Status st = g.Scan([&](std::string_view k, std::string_view v,
                         std::uint64_t ver) {
    EXPECT_TRUE(
        s.emplace(std::string(k), std::make_pair(std::string(v), ver)).second)
        << "a quiet Scan visited " << k << " twice";
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

void ExpectNoErrors(const std::vector<std::string>& errors, const char* what) {
  std::string all;
  for (const auto& e : errors) all += "\n  " + e;
  EXPECT_TRUE(errors.empty()) << what << ":" << all;
}

void ExpectCleanCheck(const std::string& name) {
  auto rep = core::CheckGrid(name, /*repair=*/false);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ExpectNoErrors(rep->problems, "CheckGrid found problems");
  EXPECT_TRUE(rep->dead_slots.empty())
      << rep->dead_slots.size() << " dead process slots";
  EXPECT_EQ(rep->partitions_repaired, 0U);
}

// The checks every workload run ends with: versions, the model against the
// final state, and every sighting against the writes.
void CheckAgainstModel(const std::string& name, const WorkloadLogs& logs,
                       Model& model, const Snapshot& final_state) {
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  // (a) Versions are per-partition sequence numbers with no gaps: the
  // successful writes of partition p got exactly 1 .. next_seq - 1.
  for (std::uint32_t p = 0; p < (*h)->partition_count(); ++p) {
    const std::uint64_t next = (*h)->partition(p).state().next_seq.load();
    auto it = model.PerPartition().find(p);
    std::vector<std::uint64_t> v = it == model.PerPartition().end()
                                       ? std::vector<std::uint64_t>{}
                                       : it->second;
    std::sort(v.begin(), v.end());
    bool dense = v.size() == next - 1;
    for (std::size_t i = 0; dense && i < v.size(); ++i) dense = v[i] == i + 1;
    if (!dense) {
      model.Error("partition " + std::to_string(p) + ": next_seq is " +
                  std::to_string(next) + " but writers were told " +
                  std::to_string(v.size()) + " versions, not exactly 1.." +
                  std::to_string(next - 1));
    }
  }
  // (b) The final state is the state after the write with the highest
  // version, for every key.
  for (int k = 0; k < kKeys; ++k) {
    const KeyState& m = model.Final(k);
    auto it = final_state.find(KeyName(k));
    const bool present = it != final_state.end();
    if (present != m.present) {
      model.Error(KeyName(k) + " is " + (present ? "present" : "absent") +
                  " but its last write (" +
                  (model.Writes(k).empty()
                       ? std::string("none")
                       : Describe(model.Writes(k).rbegin()->second)) +
                  ") left it " + (m.present ? "present" : "absent"));
      continue;
    }
    if (!present) continue;
    if (it->second.second != m.version || it->second.first != m.Value(k)) {
      model.Error(KeyName(k) + " holds version " +
                  std::to_string(it->second.second) +
                  " but the last write was " +
                  Describe(model.Writes(k).rbegin()->second));
    }
  }
  for (const auto& [key, vv] : final_state) {
    if (KeyIndex(key) < 0)
      model.Error("the grid holds a key no writer wrote: " + key);
  }
  // (c) Every value a read returned was written, with that version.
  for (const LogRec& s : logs.seen) {
    const auto& w = model.Writes(s.key);
    auto it = w.find(s.version);
    const std::string what = "a read of " + KeyName(s.key) + " at version " +
                             std::to_string(s.version);
    if (it == w.end()) {
      model.Error(what + " saw a version no write of this key was told");
      continue;
    }
    const LogRec& r = it->second;
    const bool counter = s.op == kSeenCounter;
    if (counter != (r.op == kIncrement) || s.value != r.value ||
        (!counter && s.writer != r.writer)) {
      model.Error(what + " saw another value than " + Describe(r) + " wrote");
    }
  }
  ExpectNoErrors(model.errors(), "the grid disagrees with its writers");
}

// ------------------------------------------------------------------ tests

TEST(MultiProcessGrid, ForkedWritersAndReadersAgreeWithModel) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 8;
  o.memory_bytes = 16ULL << 20;
  o.max_value_bytes = 4096;
  // Generous: a wait this long means a bug, not a busy machine.
  o.lock_timeout_ms = 20000;
  o.ring_wait_ms = 20000;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());

  WorkloadSpec spec;
  const WorkloadLogs logs = RunForkedWorkload(name, spec, seed);
  ASSERT_FALSE(::testing::Test::HasFailure());
  std::cout << "[ workload ] " << logs.writes.size() << " successful writes, "
            << logs.seen.size() << " distinct sightings" << std::endl;
  EXPECT_GT(logs.writes.size(),
            static_cast<std::size_t>(spec.writers * spec.ops_per_writer / 4));
  EXPECT_GT(logs.seen.size(), 0U);

  ExpectCleanCheck(name);
  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  Model model(logs.writes, *g);
  CheckAgainstModel(name, logs, model, ScanAll(*g));
}

// Copies of the ring entries and records of one partition, read straight
// from its data segment.
struct RingReplay {
  Snapshot state;
  std::vector<std::string> errors;
};

TEST(MultiProcessGrid, ChangeRingReplayRebuildsFinalState) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 8;
  o.memory_bytes = 32ULL << 20;
  o.max_value_bytes = 4096;
  // Writers reclaim their own ring (journal_mode none) once it is half full:
  // with this capacity and these few changes per partition they never do,
  // so every change since create is still in the ring, with its records.
  o.ring_capacity = 1ULL << 16;
  o.lock_timeout_ms = 20000;
  o.ring_wait_ms = 20000;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());

  WorkloadSpec spec;
  spec.readers = 1;
  spec.ops_per_writer = 20000;
  const WorkloadLogs logs = RunForkedWorkload(name, spec, seed);
  ASSERT_FALSE(::testing::Test::HasFailure());
  ExpectCleanCheck(name);

  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto h = core::GridHandle::Attach(name);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  Model model(logs.writes, *g);

  // Read every partition's ring from its node's data segment.
  Snapshot replayed;
  std::vector<std::string> errors;
  auto error = [&](std::string e) {
    if (errors.size() < 30) errors.push_back(std::move(e));
  };
  std::uint32_t partitions_seen = 0;
  std::uint64_t entries = 0;
  for (std::uint32_t n = 0; n < (*h)->config().node_count; ++n) {
    auto seg =
        shm::Segment::Open(core::DataSegmentName(name, n),
                           {shm::SegmentKind::kData, core::kDataLayoutVersion,
                            core::kDataLayoutSignature});
    ASSERT_TRUE(seg.ok()) << seg.status().ToString();
    const std::byte* base = seg->base();
    const core::NodeHeader& node = seg->At<core::DataBlock>(0)->node;
    for (std::uint32_t i = 0; i < node.partition_count; ++i) {
      const auto* st = seg->At<core::PartitionState>(
          node.partitions_off + i * sizeof(core::PartitionState));
      ++partitions_seen;
      const std::uint32_t p = st->partition_id;
      const std::uint64_t next = st->next_seq.load();
      const std::uint64_t reclaimed = st->reclaimed_seq.load();
      ASSERT_EQ(reclaimed, 1U)
          << "partition " << p << " reclaimed entries: the test's "
          << "premise (a ring too large to reclaim) does not hold";
      ASSERT_LT(next - reclaimed, st->ring_capacity / 2) << "partition " << p;
      EXPECT_EQ(st->journaled_seq.load(), next) << "partition " << p;
      const auto* ring =
          reinterpret_cast<const core::RingEntry*>(base + st->ring_off);
      // Per partition, in sequence order: each entry's old record must be the
      // key's state before it (nothing was freed, so old records are intact).
      for (std::uint64_t q = reclaimed; q < next; ++q, ++entries) {
        const core::RingEntry& e = ring[q & (st->ring_capacity - 1)];
        const std::string where =
            "partition " + std::to_string(p) + " entry " + std::to_string(q);
        if (e.seq != q || (e.op != core::kOpPut && e.op != core::kOpRemove)) {
          error(where + " is inconsistent (seq " + std::to_string(e.seq) +
                ", op " + std::to_string(e.op) + ")");
          continue;
        }
        std::string key;
        if (e.op == core::kOpPut) {
          const core::RecordView r(base + e.new_record_off);
          key = std::string(r.key());
          if (r.version() != q) {
            error(where + ": its record has version " +
                  std::to_string(r.version()));
          }
        } else if (e.old_record_off == 0) {
          error(where + ": a remove without an old record");
          continue;
        } else {
          key = std::string(core::RecordView(base + e.old_record_off).key());
        }
        if (g->PartitionOfKey(key) != p)
          error(where + ": key " + key + " of another partition");
        auto cur = replayed.find(key);
        if (e.old_record_off == 0) {
          if (cur != replayed.end())
            error(where + ": no old record, but " + key + " was present");
        } else {
          const core::RecordView old(base + e.old_record_off);
          if (cur == replayed.end() || old.key() != key ||
              old.version() != cur->second.second ||
              old.value() != cur->second.first) {
            error(where + ": its old record is not " + key +
                  "'s state before it");
          }
        }
        // The writer that was told version q made this very change.
        const int k = KeyIndex(key);
        const LogRec* w = nullptr;
        if (k >= 0) {
          auto it = model.Writes(k).find(q);
          if (it != model.Writes(k).end()) w = &it->second;
        }
        if (w == nullptr) {
          error(where + ": no writer was told version " + std::to_string(q) +
                " for " + key);
        } else if ((e.op == core::kOpRemove) !=
                   (w->op == kRemove || w->op == kRemoveIfVersion)) {
          error(where + " is a " +
                (e.op == core::kOpRemove ? "remove" : "put") + " but " +
                Describe(*w));
        }
        if (e.op == core::kOpPut) {
          const core::RecordView r(base + e.new_record_off);
          if (w != nullptr && w->op != kRemove && w->op != kRemoveIfVersion) {
            KeyState s;
            s.is_counter = w->op == kIncrement;
            s.count = static_cast<std::int64_t>(w->value);
            s.writer = w->writer;
            s.counter = w->value;
            if (r.value() != s.Value(k))
              error(where + ": its value is not what " + Describe(*w) +
                    " wrote");
          }
          replayed[key] = {std::string(r.value()), q};
        } else {
          replayed.erase(key);
        }
      }
    }
  }
  EXPECT_EQ(partitions_seen, o.partitions);
  EXPECT_EQ(entries, logs.writes.size()) << "ring entries vs successful writes";
  ExpectNoErrors(errors, "the change rings disagree with the grid");

  const Snapshot final_state = ScanAll(*g);
  EXPECT_EQ(replayed.size(), final_state.size());
  EXPECT_TRUE(replayed == final_state)
      << "replaying the rings does not rebuild the state a Scan sees";
  CheckAgainstModel(name, logs, model, final_state);
}

// Threads of one process, each with its own Grid, on shared keys; built for
// ThreadSanitizer (the shared structures' orderings are what it checks).
TEST(MultiThreadGrid, ThreadStressIsRaceFree) {
  const std::uint64_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 8ULL << 20;
  o.max_value_bytes = 4096;
  o.ring_capacity = 64;  // small: reclamation runs all the time
  o.lock_timeout_ms = 20000;
  o.ring_wait_ms = 20000;
  const std::string name = MakeGrid(o);
  ASSERT_FALSE(::testing::Test::HasFailure());

  constexpr int kThreads = 3;
  constexpr int kOps = 20000;
  constexpr int kSharedKeys =
      48;  // "k000".."k047"; counter keys only increment
  std::atomic<std::int64_t> increments{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto g = Grid::Attach(name);
        if (!g.ok()) Fail("attach: " + g.status().ToString());
        std::mt19937_64 rng(
            Mix(seed ^ (0x300 + static_cast<std::uint64_t>(t))));
        std::vector<LogRec> unused;
        ReadChecker check(&unused);
        std::uint64_t counter = 0;
        for (int i = 0; i < kOps; ++i) {
          const int k = static_cast<int>(rng() % kSharedKeys);
          const std::string key = KeyName(k);
          const unsigned dice = rng() % 100;
          if (IsCounterKey(k) && dice < 50) {
            auto r = g->Increment(key, 1);
            ExpectCode(r.status(), {StatusCode::kOk}, "Increment", key);
            increments.fetch_add(1, std::memory_order_relaxed);
          } else if (!IsCounterKey(k) && dice < 40) {
            auto r = g->Put(
                key, PutValue(static_cast<std::uint32_t>(t), ++counter, k));
            ExpectCode(r.status(), {StatusCode::kOk}, "Put", key);
          } else if (!IsCounterKey(k) && dice < 55) {
            ExpectCode(g->Remove(key), {StatusCode::kOk, StatusCode::kNotFound},
                       "Remove", key);
          } else if (dice < 95) {
            std::string v;
            std::uint64_t ver = 0;
            Status s = g->Get(key, &v, &ver);
            ExpectCode(s, {StatusCode::kOk, StatusCode::kNotFound}, "Get", key);
            if (s.ok()) check.Saw(key, v, ver, "Get");
          } else {
            Status s = g->Scan(
                [&](std::string_view k2, std::string_view v,
                    std::uint64_t ver) {
                  check.Saw(k2, v, ver, "Scan");
                  return true;
                },
                static_cast<std::int64_t>(rng() % g->partition_count()));
            ExpectCode(s, {StatusCode::kOk}, "Scan", "a partition");
          }
        }
      } catch (const ChildFailure& f) {
        failures[t] = f.what;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(failures[t], "") << "thread " << t;

  auto g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  std::int64_t sum = 0;
  for (int k = 0; k < kSharedKeys; k += 4) {
    std::string v;
    Status s = g->Get(KeyName(k), &v);
    ASSERT_TRUE(s.ok()) << KeyName(k) << ": " << s.ToString();
    ASSERT_EQ(v.size(), 8U);
    std::int64_t c = 0;
    std::memcpy(&c, v.data(), 8);
    sum += c;
  }
  EXPECT_EQ(sum, increments.load()) << "an increment was lost or applied twice";
  ExpectCleanCheck(name);
}

}  // namespace
}  // namespace numagrid
