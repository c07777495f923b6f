// Tests for `numagrid copy SRC DST` (core/cli/copy_command.cc), run as a
// child process: every live entry arrives in a grid of another layout with
// its value and what is left of its TTL, and bad input is refused clearly.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "core/partition.h"
#include "numagrid/grid.h"
#include "tests/support/cli_child.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::CliRun;
using ::numagrid::testing::Describe;
using ::numagrid::testing::GridGuard;
using ::numagrid::testing::GridState;
using ::numagrid::testing::JournaledOptions;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WorkerThread;
using ::testing::HasSubstr;

constexpr const char* kCli = NUMAGRID_CLI;

class CopyCli : public ::testing::Test {
 protected:
  CliRun Run(const std::vector<std::string>& args) {
    return ::numagrid::testing::RunCli(kCli, args, scratch_.path());
  }
  // A memory-only grid of `partitions` partitions.
  std::string Create(std::uint32_t partitions, std::uint64_t memory,
                     std::uint32_t max_value = 1U << 20) {
    std::string name = UniqueName();
    CreateOptions o;
    o.partitions = partitions;
    o.memory_bytes = memory;
    o.max_value_bytes = max_value;
    auto created = CreateGrid(name, o, SystemTopology());
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    guards_.push_back(std::make_unique<GridGuard>(name));
    return name;
  }

  TempDir scratch_;
  std::vector<std::unique_ptr<GridGuard>> guards_;
};

TEST_F(CopyCli, CopiesEveryEntryIntoAnotherLayoutKeepingWhatIsLeftOfTtls) {
  const std::string src = Create(4, 8ULL << 20);
  const std::string dst = Create(8, 16ULL << 20);
  {
    auto g = Grid::Attach(src);
    ASSERT_TRUE(g.ok());
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(g->Put("k" + std::to_string(i),
                         std::string(static_cast<std::size_t>(i % 97), 'v') +
                             std::to_string(i))
                      .ok());
    }
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(g->Put("ttl" + std::to_string(i), "expires",
                         {.ttl_ms = 3'600'000ULL + i * 1000ULL})
                      .ok());
    }
  }
  const GridState before = ReadGridState(src);
  ASSERT_EQ(before.size(), 310U);

  const CliRun r = Run({"copy", src, dst, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("\"copied\": 310"));
  EXPECT_THAT(r.out, HasSubstr("\"with_ttl\": 10"));

  EXPECT_EQ(ReadGridState(src), before) << "the source is only read";
  const GridState after = ReadGridState(dst);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [key, e] : before) {
    auto it = after.find(key);
    ASSERT_NE(it, after.end()) << key;
    EXPECT_EQ(it->second.value, e.value) << key;
    if (e.expiry_ms == 0) {
      EXPECT_EQ(it->second.expiry_ms, 0U) << key << " got a TTL";
    } else {
      // The remaining time is carried over; the absolute expiry moves only
      // by clock granularity (generous bound: no timing is asserted).
      EXPECT_NE(it->second.expiry_ms, 0U) << key << " lost its TTL";
      EXPECT_LE(it->second.expiry_ms, e.expiry_ms + 1000) << key;
      EXPECT_GE(it->second.expiry_ms + 1000, e.expiry_ms) << key;
    }
  }
  // Copying again overwrites: the same keys and values, new versions.
  ASSERT_EQ(Run({"copy", src, dst, "--quiet"}).exit_code, 0);
  const GridState again = ReadGridState(dst);
  ASSERT_EQ(again.size(), after.size());
  for (const auto& [key, e] : after) {
    ASSERT_EQ(again.count(key), 1U) << key;
    EXPECT_EQ(again.at(key).value, e.value) << key;
    EXPECT_GT(again.at(key).version, e.version) << key;
  }
}

TEST_F(CopyCli, PrefixCopiesOnlyMatchingKeys) {
  const std::string src = Create(4, 8ULL << 20);
  const std::string dst = Create(2, 8ULL << 20);
  {
    auto g = Grid::Attach(src);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(g->Put("user:1", "a").ok());
    ASSERT_TRUE(g->Put("user:2", "b").ok());
    ASSERT_TRUE(g->Put("order:1", "c").ok());
  }
  const CliRun r = Run({"copy", src, dst, "--prefix", "user:"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("copied 2 entries"));
  const GridState got = ReadGridState(dst);
  EXPECT_EQ(got.size(), 2U);
  EXPECT_EQ(got.count("order:1"), 0U);
}

TEST_F(CopyCli, RefusesBadInputWithClearErrors) {
  const std::string src = Create(4, 8ULL << 20);
  const std::string small = Create(4, 8ULL << 20, /*max_value=*/16);
  {
    auto g = Grid::Attach(src);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(g->Put("big", std::string(100, 'x')).ok());
  }
  CliRun r = Run({"copy", src, src});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("both grid"));

  const std::string missing = UniqueName();
  r = Run({"copy", missing, small});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("source grid"));
  r = Run({"copy", src, missing});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("destination grid"));

  r = Run({"copy", src, small});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("'big'"));

  r = Run({"copy", src});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
}

TEST_F(CopyCli, WaitsUntilTheCopyIsDurableInAJournaledDestination) {
  const std::string src = Create(4, 8ULL << 20);
  TempDir journal;
  const std::string dst = UniqueName();
  ASSERT_TRUE(
      CreateGrid(dst, JournaledOptions(journal.path()), SystemTopology()).ok());
  GridGuard guard(dst);
  {
    auto g = Grid::Attach(src);
    ASSERT_TRUE(g.ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(g->Put("k" + std::to_string(i), "v").ok());
    }
  }
  WorkerThread worker(dst);
  const CliRun r = Run({"copy", src, dst});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto h = GridHandle::Attach(dst);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(::numagrid::testing::AllJournaled(**h))
      << "copy returned before its changes were durable";
  EXPECT_TRUE(worker.Stop().ok());
}

TEST_F(CopyCli, HelpListsTheOptions) {
  const CliRun r = Run({"copy", "--help"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  for (const char* o :
       {"--prefix", "--sync", "--no-flush", "--json", "--quiet"}) {
    EXPECT_THAT(r.out, HasSubstr(o));
  }
}

}  // namespace
}  // namespace numagrid::core
