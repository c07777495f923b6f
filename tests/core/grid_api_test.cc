// Tests for numagrid::Grid (core/include/numagrid/grid.h): every operation,
// every error it documents, and that a failed write changes nothing; then
// long mixed workloads checked against a model and by CheckGrid
// (core/grid_check.h). Each test gets its own small grid, named by
// UniqueName() and removed at exit.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "core/grid_check.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "tests/support/test_grid.h"

namespace numagrid {
namespace {

using ::numagrid::testing::ForkChild;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::uint32_t kPartitions = 8;

core::CreateOptions SmallOptions() {
  core::CreateOptions o;
  o.partitions = kPartitions;
  o.memory_bytes = 8ULL << 20;
  return o;
}

const numa::Topology& SystemTopology() {
  static const numa::Topology* topology = [] {
    Result<numa::Topology> t = numa::Topology::Load();
    if (!t.ok()) {
      ADD_FAILURE() << "Topology::Load: " << t.status().ToString();
      std::abort();
    }
    return new numa::Topology(std::move(*t));
  }();
  return *topology;
}

// The seed of the randomized tests: NUMAGRID_TEST_SEED if set, else a random
// one. Printed, so that a failing run can be replayed.
std::uint32_t TestSeed() {
  static const std::uint32_t seed = [] {
    const char* s =
        std::getenv("NUMAGRID_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
    const std::uint32_t v =
        s != nullptr ? static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10))
                     : static_cast<std::uint32_t>(std::random_device{}());
    std::printf("[ seed     ] NUMAGRID_TEST_SEED=%u\n", v);
    return v;
  }();
  return seed;
}

std::string Counter(std::int64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// Every live entry of the grid, by key.
std::map<std::string, std::string> Contents(Grid& g,
                                            std::int64_t partition = -1) {
  std::map<std::string, std::string> out;
  Status s = g.Scan(
      [&](std::string_view k, std::string_view v, std::uint64_t) {
        const bool fresh = out.emplace(std::string(k), std::string(v)).second;
        EXPECT_TRUE(fresh) << "key '" << k << "' visited twice";
        return true;
      },
      partition);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

class GridApi : public ::testing::Test {
 protected:
  void SetUp() override { Open(SmallOptions()); }

  void TearDown() override {
    grid_.reset();
    if (!name_.empty()) (void)core::DestroyGrid(name_);
  }

  // Replaces the fixture's grid with a new one made with `o`.
  void Open(const core::CreateOptions& o) {
    TearDown();
    name_ = UniqueName();
    Result<core::CreateReport> c = core::CreateGrid(name_, o, SystemTopology());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Result<Grid> g = Grid::Attach(name_);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    grid_.emplace(std::move(*g));
  }

  Grid& g() { return *grid_; }

  // The value at `key`, or the error's code name.
  std::string ValueOf(std::string_view key) {
    std::string v;
    Status s = g().Get(key, &v);
    return s.ok() ? v : "<" + std::string(StatusCodeName(s.code())) + ">";
  }

  // CheckGrid(name, false), which must report no problem.
  core::GridCheckReport CheckClean() {
    Result<core::GridCheckReport> r = core::CheckGrid(name_, false);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_THAT(r->problems, IsEmpty());
    EXPECT_EQ(r->partitions_checked, g().partition_count());
    return *r;
  }

  std::string name_;
  std::optional<Grid> grid_;
};

// --- attach ----------------------------------------------------------------

TEST(GridAttach, MissingGridIsNotFoundAndBadNameIsInvalidArgument) {
  const std::string name = UniqueName();
  Result<Grid> g = Grid::Attach(name);
  EXPECT_EQ(g.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(g.status().message(), HasSubstr(name));
  EXPECT_EQ(Grid::Attach("no/such").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Grid::Attach("").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(GridApi, PartitionCountAndPartitionOfKeyFollowTheGrid) {
  EXPECT_EQ(g().partition_count(), kPartitions);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string k = "key" + std::to_string(i);
    const std::uint32_t p = g().PartitionOfKey(k);
    EXPECT_LT(p, kPartitions);
    EXPECT_EQ(g().PartitionOfKey(k), p) << "stable for one key";
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), kPartitions)
      << "200 keys reach every one of 8 partitions";
}

// --- put and get -----------------------------------------------------------

TEST_F(GridApi, PutThenGetReturnsTheValueAndItsVersion) {
  Result<std::uint64_t> v = g().Put("k", "hello");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_GT(*v, 0u) << "version 0 means no version";
  std::string value;
  std::uint64_t version = 0;
  ASSERT_TRUE(g().Get("k", &value, &version).ok());
  EXPECT_EQ(value, "hello");
  EXPECT_EQ(version, *v);
}

TEST_F(GridApi, PutOverwritesAndTheNewVersionIsHigher) {
  Result<std::uint64_t> v1 = g().Put("k", "one");
  Result<std::uint64_t> v2 = g().Put("k", "two, longer than one");
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_GT(*v2, *v1);
  EXPECT_EQ(ValueOf("k"), "two, longer than one");
  EXPECT_EQ(CheckClean().live_entries, 1u);
}

TEST_F(GridApi, BinaryKeysAndValuesWithNulBytesRoundTrip) {
  const std::string value("\0a\0\xff\x01\0", 6);
  const std::string key1("k\0x", 3);
  const std::string key2("k\0y", 3);
  ASSERT_TRUE(g().Put(key1, value).ok());
  ASSERT_TRUE(g().Put(key2, "other").ok());
  ASSERT_TRUE(g().Put("k", "prefix").ok());
  EXPECT_EQ(ValueOf(key1), value);
  EXPECT_EQ(ValueOf(key1).size(), 6u);
  EXPECT_EQ(ValueOf(key2), "other");
  EXPECT_EQ(ValueOf("k"), "prefix");
  EXPECT_EQ(ValueOf(std::string("k\0z", 3)), "<not_found>");
}

TEST_F(GridApi, EmptyValueRoundTripsAndIsNotAbsence) {
  ASSERT_TRUE(g().Put("empty", "").ok());
  std::string v = "not cleared";
  ASSERT_TRUE(g().Get("empty", &v).ok());
  EXPECT_EQ(v, "");
  EXPECT_EQ(g().Insert("empty", "x").status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Contents(g()), (std::map<std::string, std::string>{{"empty", ""}}));
}

// Regression (UBSan): WriteRecord (core/record.h) called memcpy with the
// null data() of a default-constructed string_view, undefined even for 0
// bytes.
TEST_F(GridApi, EmptyValueFromADefaultStringViewRoundTrips) {
  ASSERT_TRUE(g().Put("null-view", std::string_view()).ok());
  std::string v = "not cleared";
  ASSERT_TRUE(g().Get("null-view", &v).ok());
  EXPECT_EQ(v, "");
}

TEST_F(GridApi, ValueOfExactlyTheLimitRoundTrips) {
  const std::string big(1u << 20, 'b');  // the default --max-value
  ASSERT_TRUE(g().Put("big", big).ok());
  EXPECT_EQ(ValueOf("big"), big);
  CheckClean();
}

TEST_F(GridApi, GetOfMissingKeyIsNotFound) {
  std::string v = "untouched";
  std::uint64_t version = 42;
  EXPECT_EQ(g().Get("missing", &v, &version).code(), StatusCode::kNotFound);
  EXPECT_EQ(v, "untouched");
  EXPECT_EQ(version, 42u);
}

// --- conditional writes ----------------------------------------------------

TEST_F(GridApi, InsertOfAbsentKeyWritesIt) {
  Result<std::uint64_t> v = g().Insert("k", "first");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(ValueOf("k"), "first");
}

TEST_F(GridApi, InsertOnExistingKeyIsAlreadyExistsAndKeepsTheValue) {
  Result<std::uint64_t> v = g().Put("k", "first");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(g().Insert("k", "second").status().code(),
            StatusCode::kAlreadyExists);
  std::string value;
  std::uint64_t version = 0;
  ASSERT_TRUE(g().Get("k", &value, &version).ok());
  EXPECT_EQ(value, "first");
  EXPECT_EQ(version, *v);
}

TEST_F(GridApi, ReplaceOnMissingKeyIsNotFoundAndCreatesNothing) {
  EXPECT_EQ(g().Replace("k", "v").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ValueOf("k"), "<not_found>");
  EXPECT_EQ(CheckClean().live_entries, 0u);
}

TEST_F(GridApi, ReplaceOnExistingKeyWritesANewVersion) {
  Result<std::uint64_t> v1 = g().Put("k", "old");
  Result<std::uint64_t> v2 = g().Replace("k", "new");
  ASSERT_TRUE(v1.ok() && v2.ok()) << v2.status().ToString();
  EXPECT_GT(*v2, *v1);
  EXPECT_EQ(ValueOf("k"), "new");
}

TEST_F(GridApi, CompareAndSetWithTheCurrentVersionSucceedsWithAHigherVersion) {
  Result<std::uint64_t> v1 = g().Put("k", "old");
  ASSERT_TRUE(v1.ok());
  Result<std::uint64_t> v2 = g().CompareAndSet("k", *v1, "new");
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_GT(*v2, *v1);
  std::string value;
  std::uint64_t version = 0;
  ASSERT_TRUE(g().Get("k", &value, &version).ok());
  EXPECT_EQ(value, "new");
  EXPECT_EQ(version, *v2);
}

TEST_F(GridApi, CompareAndSetWithAStaleVersionIsConflictAndKeepsTheValue) {
  Result<std::uint64_t> v1 = g().Put("k", "one");
  Result<std::uint64_t> v2 = g().Put("k", "two");
  ASSERT_TRUE(v1.ok() && v2.ok());
  Result<std::uint64_t> cas = g().CompareAndSet("k", *v1, "three");
  EXPECT_EQ(cas.status().code(), StatusCode::kConflict);
  EXPECT_THAT(cas.status().message(), HasSubstr(std::to_string(*v2)));
  std::string value;
  std::uint64_t version = 0;
  ASSERT_TRUE(g().Get("k", &value, &version).ok());
  EXPECT_EQ(value, "two");
  EXPECT_EQ(version, *v2);
}

TEST_F(GridApi, CompareAndSetOnMissingKeyIsNotFound) {
  EXPECT_EQ(g().CompareAndSet("k", 1, "v").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ValueOf("k"), "<not_found>");
}

// --- removes ---------------------------------------------------------------

TEST_F(GridApi, RemoveDeletesTheKeyAndASecondRemoveIsNotFound) {
  ASSERT_TRUE(g().Put("k", "v").ok());
  ASSERT_TRUE(g().Put("other", "v").ok());
  Status s = g().Remove("k");
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ValueOf("k"), "<not_found>");
  EXPECT_EQ(ValueOf("other"), "v");
  EXPECT_EQ(g().Remove("k").code(), StatusCode::kNotFound);
  EXPECT_EQ(CheckClean().live_entries, 1u);
}

TEST_F(GridApi, RemoveOfMissingKeyIsNotFound) {
  EXPECT_EQ(g().Remove("never-written").code(), StatusCode::kNotFound);
}

TEST_F(GridApi, RemovedKeyCanBeInsertedAgain) {
  ASSERT_TRUE(g().Put("k", "one").ok());
  ASSERT_TRUE(g().Remove("k").ok());
  ASSERT_TRUE(g().Insert("k", "two").ok());
  EXPECT_EQ(ValueOf("k"), "two");
  EXPECT_EQ(CheckClean().live_entries, 1u);
}

TEST_F(GridApi, RemoveIfVersionWithTheCurrentVersionRemoves) {
  Result<std::uint64_t> v = g().Put("k", "v");
  ASSERT_TRUE(v.ok());
  Status s = g().RemoveIfVersion("k", *v);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ValueOf("k"), "<not_found>");
}

TEST_F(GridApi, RemoveIfVersionWithAStaleVersionIsConflictAndKeepsTheKey) {
  Result<std::uint64_t> v1 = g().Put("k", "one");
  Result<std::uint64_t> v2 = g().Put("k", "two");
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(g().RemoveIfVersion("k", *v1).code(), StatusCode::kConflict);
  EXPECT_EQ(ValueOf("k"), "two");
  EXPECT_EQ(g().RemoveIfVersion("missing", *v2).code(), StatusCode::kNotFound);
}

// --- counters --------------------------------------------------------------

TEST_F(GridApi, IncrementOfAbsentKeyStartsFromZero) {
  Result<std::int64_t> r = g().Increment("c");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(ValueOf("c"), Counter(1)) << "an 8-byte little-endian counter";
}

TEST_F(GridApi, IncrementAddsPositiveAndNegativeDeltas) {
  EXPECT_EQ(*g().Increment("c", 5), 5);
  EXPECT_EQ(*g().Increment("c", -12), -7);
  EXPECT_EQ(*g().Increment("c", 0), -7);
  EXPECT_EQ(*g().Increment("c"), -6);
  EXPECT_EQ(ValueOf("c"), Counter(-6));
  // A counter written by Put counts on.
  ASSERT_TRUE(g().Put("d", Counter(1000)).ok());
  EXPECT_EQ(*g().Increment("d", 1), 1001);
}

TEST_F(GridApi, IncrementOfAValueThatIsNot8BytesIsInvalidArgumentAndKeepsIt) {
  ASSERT_TRUE(g().Put("s", "seven b").ok());
  ASSERT_TRUE(g().Put("e", "").ok());
  for (const char* key : {"s", "e"}) {
    Result<std::int64_t> r = g().Increment(key, 1);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(r.status().message(), HasSubstr("8-byte")) << key;
  }
  EXPECT_EQ(ValueOf("s"), "seven b");
  EXPECT_EQ(ValueOf("e"), "");
}

// --- limits ----------------------------------------------------------------

TEST_F(GridApi, KeyOfExactlyTheLimitIsAccepted) {
  const std::string key(250, 'k');
  ASSERT_TRUE(g().Put(key, "v").ok());
  EXPECT_EQ(ValueOf(key), "v");
}

TEST_F(GridApi, OversizeKeyIsInvalidArgumentNamingTheLimitAndChangesNothing) {
  ASSERT_TRUE(g().Put("keep", "v").ok());
  const std::string key(251, 'k');
  std::vector<Status> results = {
      g().Put(key, "v").status(),
      g().Insert(key, "v").status(),
      g().Replace(key, "v").status(),
      g().CompareAndSet(key, 1, "v").status(),
      g().Remove(key),
      g().RemoveIfVersion(key, 1),
      g().Increment(key).status(),
  };
  std::string v;
  results.push_back(g().Get(key, &v));
  char buf[8];
  results.push_back(g().GetInto(key, buf, sizeof buf).status());
  results.push_back(g().Visit(key, [](std::string_view, std::uint64_t) {}));
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].code(), StatusCode::kInvalidArgument)
        << "operation " << i;
    EXPECT_THAT(results[i].message(), HasSubstr("251")) << "operation " << i;
    EXPECT_THAT(results[i].message(), HasSubstr("250")) << "operation " << i;
  }
  EXPECT_EQ(Contents(g()), (std::map<std::string, std::string>{{"keep", "v"}}));
  EXPECT_EQ(CheckClean().live_entries, 1u);
}

TEST_F(GridApi, OversizeValueIsInvalidArgumentNamingTheLimitAndChangesNothing) {
  ASSERT_TRUE(g().Put("k", "old").ok());
  const std::string value((1u << 20) + 1, 'v');
  for (const Status& s :
       {g().Put("k", value).status(), g().Put("new", value).status(),
        g().Insert("new", value).status(), g().Replace("k", value).status(),
        g().CompareAndSet("k", 1, value).status()}) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(std::to_string(1u << 20)));
  }
  EXPECT_EQ(ValueOf("k"), "old");
  EXPECT_EQ(ValueOf("new"), "<not_found>");
  EXPECT_EQ(CheckClean().live_entries, 1u);
}

TEST_F(GridApi, SmallerLimitsOfAGridAreEnforced) {
  core::CreateOptions o = SmallOptions();
  o.max_key_bytes = 8;
  o.max_value_bytes = 100;
  Open(o);
  EXPECT_TRUE(g().Put("12345678", std::string(100, 'v')).ok());
  Status key = g().Put("123456789", "v").status();
  EXPECT_EQ(key.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(key.message(), HasSubstr("limit of 8"));
  Status value = g().Put("k", std::string(101, 'v')).status();
  EXPECT_EQ(value.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(value.message(), HasSubstr("limit of 100"));
}

TEST_F(GridApi, EmptyKeyIsRejected) {
  EXPECT_EQ(g().Put("", "v").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(g().Insert("", "v").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(g().Increment("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(g().Remove("").code(), StatusCode::kInvalidArgument);
  std::string v;
  EXPECT_EQ(g().Get("", &v).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckClean().live_entries, 0u);
}

// --- TTL -------------------------------------------------------------------

TEST_F(GridApi, ExpiredEntryIsInvisibleToGetVisitAndScan) {
  ASSERT_TRUE(g().Put("short", "v", WriteOptions{.ttl_ms = 1}).ok());
  ASSERT_TRUE(g().Put("forever", "v").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ValueOf("short"), "<not_found>");
  bool visited = false;
  EXPECT_EQ(g().Visit("short",
                      [&](std::string_view, std::uint64_t) { visited = true; })
                .code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(visited);
  EXPECT_EQ(Contents(g()),
            (std::map<std::string, std::string>{{"forever", "v"}}));
  std::vector<Result<std::string>> got = g().MultiGet({"short", "forever"});
  EXPECT_EQ(got[0].status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(got[1].ok());
}

TEST_F(GridApi, ExpiredEntryCountsAsAbsentForConditionalWrites) {
  ASSERT_TRUE(g().Put("a", "v", WriteOptions{.ttl_ms = 1}).ok());
  ASSERT_TRUE(g().Put("b", "v", WriteOptions{.ttl_ms = 1}).ok());
  ASSERT_TRUE(g().Put("c", Counter(41), WriteOptions{.ttl_ms = 1}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(g().Replace("a", "w").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(g().Remove("a").code(), StatusCode::kNotFound);
  EXPECT_TRUE(g().Insert("b", "fresh").ok());
  EXPECT_EQ(ValueOf("b"), "fresh");
  EXPECT_EQ(*g().Increment("c"), 1) << "an expired counter starts from zero";
  CheckClean();
}

TEST_F(GridApi, EntryWithALongTtlIsVisible) {
  ASSERT_TRUE(g().Put("k", "v", WriteOptions{.ttl_ms = 3'600'000}).ok());
  EXPECT_EQ(ValueOf("k"), "v");
  EXPECT_EQ(Contents(g()).size(), 1u);
}

// Regression: the expiry time was NowMs() + ttl_ms without a bound, so a
// TTL within NowMs() of 2^64 wrapped to a time in the past and the put,
// which reported success, was never visible.
TEST_F(GridApi, HugeTtlDoesNotWrapIntoThePast) {
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max() - 1000;
  Result<std::uint64_t> v = g().Put("k", "v", WriteOptions{.ttl_ms = huge});
  if (v.ok()) {
    EXPECT_EQ(ValueOf("k"), "v") << "a put that succeeded must be visible";
  } else {
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  }
}

// --- GetInto, Visit, MultiGet, MultiPut ------------------------------------

TEST_F(GridApi, GetIntoCopiesTheValueAndReturnsItsLength) {
  ASSERT_TRUE(g().Put("k", std::string("ab\0cd", 5)).ok());
  char buf[16];
  std::memset(buf, '#', sizeof buf);
  Result<std::size_t> n = g().GetInto("k", buf, sizeof buf);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(std::string(buf, 5), std::string("ab\0cd", 5));
  EXPECT_EQ(buf[5], '#');
  // A buffer of exactly the value's size is enough.
  n = g().GetInto("k", buf, 5);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(g().GetInto("missing", buf, sizeof buf).status().code(),
            StatusCode::kNotFound);
}

TEST_F(GridApi, GetIntoWithTooSmallBufferIsInvalidArgumentNamingTheSize) {
  ASSERT_TRUE(g().Put("k", "0123456789").ok());
  char buf[16];
  std::memset(buf, '#', sizeof buf);
  Result<std::size_t> n = g().GetInto("k", buf, 4);
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(n.status().message(), HasSubstr("10 bytes"));
  EXPECT_EQ(std::string(buf, sizeof buf), std::string(16, '#'))
      << "nothing written";
}

// Regression (UBSan): GetInto (core/grid.cc) called memcpy(buf, data, 0)
// with buf == nullptr.
TEST_F(GridApi, GetIntoOfAnEmptyValueNeedsNoBuffer) {
  ASSERT_TRUE(g().Put("k", "").ok());
  Result<std::size_t> n = g().GetInto("k", nullptr, 0);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 0u);
}

TEST_F(GridApi, VisitSeesTheValueAndVersion) {
  Result<std::uint64_t> v = g().Put("k", "visited");
  ASSERT_TRUE(v.ok());
  int calls = 0;
  Status s = g().Visit("k", [&](std::string_view value, std::uint64_t version) {
    ++calls;
    EXPECT_EQ(value, "visited");
    EXPECT_EQ(version, *v);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(
      g().Visit("missing", [&](std::string_view, std::uint64_t) { ++calls; })
          .code(),
      StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);
}

TEST_F(GridApi, MultiPutThenMultiGetGiveOneResultPerKeyInOrder) {
  const std::string oversize(251, 'k');
  std::vector<Status> put =
      g().MultiPut({{"a", "1"}, {oversize, "x"}, {"b", "2"}, {"a", "3"}});
  ASSERT_EQ(put.size(), 4u);
  EXPECT_TRUE(put[0].ok());
  EXPECT_EQ(put[1].code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(put[2].ok());
  EXPECT_TRUE(put[3].ok());

  std::vector<Result<std::string>> got =
      g().MultiGet({"b", "missing", "a", "b"});
  ASSERT_EQ(got.size(), 4u);
  ASSERT_TRUE(got[0].ok());
  EXPECT_EQ(*got[0], "2");
  EXPECT_EQ(got[1].status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(got[2].ok());
  EXPECT_EQ(*got[2], "3") << "the later of two puts of one key wins";
  ASSERT_TRUE(got[3].ok());
  EXPECT_EQ(*got[3], "2");
  EXPECT_TRUE(g().MultiGet({}).empty());
}

TEST_F(GridApi, MultiPutWithTtlAppliesItToEveryEntry) {
  std::vector<Status> put =
      g().MultiPut({{"a", "1"}, {"b", "2"}}, WriteOptions{.ttl_ms = 1});
  ASSERT_TRUE(put[0].ok() && put[1].ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(Contents(g()).empty());
}

// --- scans and versions ----------------------------------------------------

TEST_F(GridApi, ScanVisitsEachOf1000KeysExactlyOnce) {
  std::map<std::string, std::string> model;
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "key-" + std::to_string(i);
    model[k] = "value-" + std::to_string(i * 7);
    ASSERT_TRUE(g().Put(k, model[k]).ok());
  }
  EXPECT_EQ(Contents(g()), model);  // Contents fails on a key seen twice
}

TEST_F(GridApi, ScanReportsEachEntrysCurrentVersion) {
  std::map<std::string, std::uint64_t> versions;
  for (int i = 0; i < 100; ++i) {
    const std::string k = "k" + std::to_string(i);
    versions[k] = *g().Put(k, "v");
  }
  for (int i = 0; i < 100; i += 3) {
    const std::string k = "k" + std::to_string(i);
    versions[k] = *g().Put(k, "w");
  }
  std::map<std::string, std::uint64_t> scanned;
  ASSERT_TRUE(
      g().Scan([&](std::string_view k, std::string_view, std::uint64_t v) {
           scanned[std::string(k)] = v;
           return true;
         })
          .ok());
  EXPECT_EQ(scanned, versions);
}

TEST_F(GridApi, ScanOfOnePartitionVisitsExactlyThatPartitionsKeys) {
  std::map<std::uint32_t, std::map<std::string, std::string>> by_partition;
  for (int i = 0; i < 400; ++i) {
    const std::string k = "key-" + std::to_string(i);
    ASSERT_TRUE(g().Put(k, "v").ok());
    by_partition[g().PartitionOfKey(k)][k] = "v";
  }
  for (std::uint32_t p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(Contents(g(), p), by_partition[p]) << "partition " << p;
  }
}

TEST_F(GridApi, ScanOfAPartitionBeyondTheCountIsInvalidArgument) {
  Status s = g().Scan(
      [](std::string_view, std::string_view, std::uint64_t) { return true; },
      kPartitions);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST_F(GridApi, ScanStopsWhenTheVisitorReturnsFalse) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(g().Put("k" + std::to_string(i), "v").ok());
  }
  int calls = 0;
  ASSERT_TRUE(g().Scan([&](std::string_view, std::string_view, std::uint64_t) {
                   ++calls;
                   return calls < 5;
                 })
                  .ok());
  EXPECT_EQ(calls, 5);
}

TEST_F(GridApi, VersionsGrowWithEveryWriteToAPartition) {
  std::map<std::uint32_t, std::uint64_t> last_of_partition;
  std::map<std::string, std::uint64_t> version_of_key;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "key-" + std::to_string(i % 50);
    auto it = version_of_key.find(k);
    Result<std::uint64_t> v =
        it == version_of_key.end() ? g().Insert(k, "first")
        : i % 2 == 0               ? g().Replace(k, "replaced")
                                   : g().CompareAndSet(k, it->second, "cas");
    ASSERT_TRUE(v.ok()) << "write " << i << ": " << v.status().ToString();
    const std::uint32_t p = g().PartitionOfKey(k);
    EXPECT_GT(*v, last_of_partition[p])
        << "write " << i << " to partition " << p;
    last_of_partition[p] = *v;
    version_of_key[k] = *v;
    if (i % 10 == 0) {
      ASSERT_TRUE(g().Increment("n" + k).ok());  // other keys' writes
    }
  }
}

// --- full grids ------------------------------------------------------------

// Puts "k<i>" = `value` for i = 0, 1, ... until a put fails; returns how many
// succeeded and that failure.
std::pair<int, Status> FillUntilFailure(Grid& g, const std::string& value,
                                        int limit) {
  for (int i = 0; i < limit; ++i) {
    Result<std::uint64_t> v = g.Put("k" + std::to_string(i), value);
    if (!v.ok()) return {i, v.status()};
  }
  return {limit, Status::Ok()};
}

TEST_F(GridApi, FullMemoryIsResourceExhaustedAndTheFailedWriteChangesNothing) {
  core::CreateOptions o;
  o.partitions = 2;
  o.memory_bytes = 1 << 20;
  o.max_value_bytes = 16 << 10;
  Open(o);
  const std::string value(4000, 'v');
  const auto [stored, failure] = FillUntilFailure(g(), value, 10000);
  ASSERT_LT(stored, 10000) << "1 MiB cannot hold 10000 values of 4000 bytes";
  EXPECT_EQ(failure.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(failure.message(), HasSubstr("full"));
  const std::string failed_key = "k" + std::to_string(stored);

  // Nothing of the failed write is visible, everything before it is.
  EXPECT_EQ(ValueOf(failed_key), "<not_found>");
  for (int i = 0; i < stored; ++i) {
    ASSERT_EQ(ValueOf("k" + std::to_string(i)), value) << i;
  }
  core::GridCheckReport rep = CheckClean();
  EXPECT_EQ(rep.live_entries, static_cast<std::uint64_t>(stored));

  // An overwrite in the full partition fails too, and keeps the old value.
  const std::uint32_t full = g().PartitionOfKey(failed_key);
  std::string victim;
  for (int i = 0; i < stored && victim.empty(); ++i) {
    if (g().PartitionOfKey("k" + std::to_string(i)) == full) {
      victim = "k" + std::to_string(i);
    }
  }
  ASSERT_FALSE(victim.empty());
  EXPECT_EQ(g().Put(victim, std::string(4000, 'w')).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(ValueOf(victim), value);
  // Removes need no memory.
  EXPECT_TRUE(g().Remove(victim).ok());
  rep = CheckClean();
  EXPECT_EQ(rep.live_entries, static_cast<std::uint64_t>(stored - 1));
}

TEST_F(GridApi, FullIndexIsResourceExhaustedAndTheFailedWriteChangesNothing) {
  core::CreateOptions o = SmallOptions();
  o.partitions = 1;
  o.max_entries = 12;  // 32 index slots, at most 7/8 of them used
  Open(o);
  const auto [stored, failure] = FillUntilFailure(g(), "v", 1000);
  ASSERT_LT(stored, 1000);
  EXPECT_GE(stored, 12) << "the index holds at least max_entries";
  EXPECT_EQ(failure.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(failure.message(), HasSubstr("index full"));
  EXPECT_EQ(ValueOf("k" + std::to_string(stored)), "<not_found>");
  EXPECT_EQ(CheckClean().live_entries, static_cast<std::uint64_t>(stored));
  EXPECT_EQ(g().Insert("another", "v").status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(g().Increment("counter").status().code(),
            StatusCode::kResourceExhausted);

  // Existing keys can still be overwritten, and a remove makes room.
  EXPECT_TRUE(g().Put("k0", "new").ok());
  EXPECT_EQ(ValueOf("k0"), "new");
  ASSERT_TRUE(g().Remove("k1").ok());
  EXPECT_TRUE(g().Put("another", "v").ok());
  EXPECT_EQ(CheckClean().live_entries, static_cast<std::uint64_t>(stored));
}

// Overwriting one large value again and again keeps one value live; the
// replaced ones must be reclaimed when memory runs short.
// Regression: replaced records were reclaimed only once half the change
// ring was in use, not when the allocator ran out, so the 65th put of one
// 20 KB value (a whole 128 KiB chunk each) in an 8 MiB grid (64 chunks) was
// kResourceExhausted.
TEST_F(GridApi, OverwritingOneLargeValueNeverFillsTheGrid) {
  const std::string a(20000, 'a');
  const std::string b(20000, 'b');
  for (int i = 0; i < 1000; ++i) {
    Result<std::uint64_t> v = g().Put("big", (i % 2) != 0 ? a : b);
    ASSERT_TRUE(v.ok()) << "overwrite " << i << ": " << v.status().ToString();
  }
  CheckClean();
}

// With a 16-entry ring, reclamation runs every few writes, so replaced large
// records (whole chunks) go back to the node and are reused.
TEST_F(GridApi, OverwritingALargeValueReusesItsChunksWhenTheRingIsSmall) {
  core::CreateOptions o = SmallOptions();
  o.ring_capacity = 16;
  Open(o);
  const std::string a(20000, 'a');
  const std::string b(20000, 'b');
  for (int i = 0; i < 1000; ++i) {
    Result<std::uint64_t> v = g().Put("big", (i % 2) != 0 ? a : b);
    ASSERT_TRUE(v.ok()) << "overwrite " << i << ": " << v.status().ToString();
    if (i % 100 == 0) {
      ASSERT_TRUE(g().Put("small" + std::to_string(i), "s").ok());
    }
  }
  EXPECT_EQ(ValueOf("big"), a);
  EXPECT_EQ(CheckClean().live_entries, 11u);
}

// Regression, for the same reason: a key removed from a full grid left its
// memory retired but unreclaimed, so a put of the same size right after was
// still kResourceExhausted.
TEST_F(GridApi, RemovingFromAFullGridMakesRoom) {
  core::CreateOptions o;
  o.partitions = 1;
  o.memory_bytes = 1 << 20;
  o.max_value_bytes = 16 << 10;
  Open(o);
  const std::string value(4000, 'v');
  const auto [stored, failure] = FillUntilFailure(g(), value, 10000);
  ASSERT_EQ(failure.code(), StatusCode::kResourceExhausted);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(g().Remove("k" + std::to_string(i)).ok());
  }
  Result<std::uint64_t> v = g().Put("after-remove", value);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
}

// --- long workloads --------------------------------------------------------

// Random puts, removes and increments over a small key set against a model,
// wrapping each partition's change ring (1024 entries) about ten times.
TEST_F(GridApi, ManyPutsAndRemovesLeaveTheGridConsistent) {
  core::CreateOptions o = SmallOptions();
  o.partitions = 2;
  Open(o);
  const std::uint32_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  std::map<std::string, std::string> model;
  for (int op = 0; op < 20000; ++op) {
    const std::string k = "key" + std::to_string(rng() % 500);
    const unsigned what = rng() % 10;
    if (what < 6) {
      const std::string v(rng() % 300, static_cast<char>('a' + rng() % 26));
      Result<std::uint64_t> r = g().Put(k, v);
      ASSERT_TRUE(r.ok()) << "op " << op << ": " << r.status().ToString();
      model[k] = v;
    } else if (what < 9) {
      Status s = g().Remove(k);
      ASSERT_EQ(s.code(),
                model.count(k) != 0 ? StatusCode::kOk : StatusCode::kNotFound)
          << "op " << op << ": " << s.ToString();
      model.erase(k);
    } else {
      const std::string ck = "counter" + std::to_string(rng() % 20);
      Result<std::int64_t> r = g().Increment(ck, 3);
      ASSERT_TRUE(r.ok()) << "op " << op << ": " << r.status().ToString();
      std::int64_t prev = 0;
      if (auto it = model.find(ck); it != model.end()) {
        std::memcpy(&prev, it->second.data(), 8);
      }
      EXPECT_EQ(*r, prev + 3);
      model[ck] = Counter(prev + 3);
    }
  }
  core::GridCheckReport rep = CheckClean();
  EXPECT_EQ(rep.live_entries, model.size());
  EXPECT_EQ(rep.expired_entries, 0u);
  EXPECT_EQ(Contents(g()), model);
}

TEST_F(GridApi, ManyChangesWithASmallRingLeaveTheGridConsistent) {
  core::CreateOptions o = SmallOptions();
  o.partitions = 4;
  o.ring_capacity = 16;
  Open(o);
  std::map<std::string, std::string> model;
  for (int op = 0; op < 5000; ++op) {
    const std::string k = "k" + std::to_string((op * 7919) % 97);
    if (op % 4 == 3) {
      EXPECT_EQ(g().Remove(k).ok(), model.erase(k) == 1) << op;
    } else {
      const std::string v = std::to_string(op) +
                            std::string(static_cast<std::size_t>(op % 50), '.');
      ASSERT_TRUE(g().Put(k, v).ok()) << op;
      model[k] = v;
    }
  }
  core::GridCheckReport rep = CheckClean();
  EXPECT_EQ(rep.live_entries, model.size());
  EXPECT_LE(rep.ring_entries, 4u * 16);
  EXPECT_EQ(Contents(g()), model);
}

// Many puts and removes on a nearly full index: long probe sequences, many
// deleted slots, runs that wrap around slot 0.
TEST_F(GridApi, DenseIndexWithManyRemovesStaysConsistent) {
  core::CreateOptions o = SmallOptions();
  o.partitions = 1;
  o.max_entries = 48;  // 128 index slots, at most 112 live
  Open(o);
  const std::uint32_t seed = TestSeed();
  SCOPED_TRACE("NUMAGRID_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  std::map<std::string, std::string> model;
  for (int op = 0; op < 20000; ++op) {
    const std::string k = "k" + std::to_string(rng() % 110);
    if (rng() % 2 == 0) {
      const std::string v = std::to_string(op);
      Result<std::uint64_t> r = g().Put(k, v);
      ASSERT_TRUE(r.ok()) << "op " << op << ": " << r.status().ToString();
      model[k] = v;
    } else {
      Status s = g().Remove(k);
      ASSERT_EQ(s.ok(), model.erase(k) == 1)
          << "op " << op << ": " << s.ToString();
    }
    if (op % 1000 == 0) {
      for (const auto& [key, value] : model) {
        ASSERT_EQ(ValueOf(key), value) << "op " << op;
      }
    }
  }
  core::GridCheckReport rep = CheckClean();
  EXPECT_EQ(rep.live_entries, model.size());
  EXPECT_EQ(Contents(g()), model);
}

// --- several handles and processes -----------------------------------------

TEST_F(GridApi, ASecondHandleSeesTheFirstsWrites) {
  Result<Grid> other = Grid::Attach(name_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  ASSERT_TRUE(g().Put("from-first", "1").ok());
  std::string v;
  ASSERT_TRUE(other->Get("from-first", &v).ok());
  EXPECT_EQ(v, "1");
  ASSERT_TRUE(other->Put("from-second", "2").ok());
  EXPECT_EQ(ValueOf("from-second"), "2");
  ASSERT_TRUE(other->Remove("from-first").ok());
  EXPECT_EQ(ValueOf("from-first"), "<not_found>");
  // Versions are the partition's, whichever handle wrote.
  Result<std::uint64_t> v1 = g().Put("shared", "a");
  Result<std::uint64_t> v2 = other->Put("shared", "b");
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_GT(*v2, *v1);
  EXPECT_EQ(g().CompareAndSet("shared", *v1, "c").status().code(),
            StatusCode::kConflict);
}

TEST_F(GridApi, AttachBeyondTheProcessCapacityIsResourceExhausted) {
  core::CreateOptions o = SmallOptions();
  o.process_capacity = 2;
  Open(o);  // the fixture's handle holds one slot
  std::optional<Result<Grid>> second(Grid::Attach(name_));
  ASSERT_TRUE(second->ok()) << second->status().ToString();
  Result<Grid> third = Grid::Attach(name_);
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("2 process slots"));
  second.reset();  // detaching frees its slot
  Result<Grid> again = Grid::Attach(name_);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(GridApi, MovedHandleKeepsWorking) {
  ASSERT_TRUE(g().Put("k", "v").ok());
  Grid moved = std::move(*grid_);
  grid_.reset();
  std::string v;
  ASSERT_TRUE(moved.Get("k", &v).ok());
  EXPECT_EQ(v, "v");
  grid_.emplace(std::move(moved));
  EXPECT_EQ(ValueOf("k"), "v");
}

TEST_F(GridApi, AForkedChildThatAttachesAnewSeesAndMakesChanges) {
  ASSERT_TRUE(g().Put("parent", "p").ok());
  const std::string name = name_;
  const int rc = WaitChild(ForkChild([&] {
    Result<Grid> child = Grid::Attach(name);
    if (!child.ok()) return 10 + static_cast<int>(child.status().code());
    std::string v;
    if (!child->Get("parent", &v).ok() || v != "p") return 40;
    if (!child->Put("child", "c").ok()) return 41;
    return 0;
  }));
  ASSERT_EQ(rc, 0) << "10 + code: Attach failed; 40: read, 41: write failed";
  EXPECT_EQ(ValueOf("child"), "c");
  CheckClean();
}

}  // namespace
}  // namespace numagrid
