// Tests for core/grid_admin.h (create, inspect, list, destroy), the segment
// permissions a grid gets, the layout checks Attach and InspectGrid make, and
// the pinned layout versions of core/control_layout.h and core/data_layout.h.
// Grid names come from UniqueName(): every /dev/shm entry of a test's grids is
// removed when the binary exits, even when a test fails.
#include "core/grid_admin.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/control_layout.h"
#include "core/data_layout.h"
#include "numa/topology.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "shm/segment_header.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::ForkChild;
using ::numagrid::testing::NobodyUser;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Exit code of a forked child that could not drop its privileges.
constexpr int kCannotDrop = 77;

CreateOptions SmallOptions() {
  CreateOptions o;
  o.partitions = 8;
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

numa::Topology Synthetic(const char* description) {
  Result<numa::Topology> t = numa::Topology::FromSynthetic(description);
  if (!t.ok()) {
    ADD_FAILURE() << description << ": " << t.status().ToString();
    std::abort();
  }
  return std::move(*t);
}

// The /dev/shm entries of grid `name` ("numagrid.<name>.<suffix>"), sorted.
std::vector<std::string> ShmEntriesOf(const std::string& name) {
  std::vector<std::string> out;
  const std::string prefix = "numagrid." + name + ".";
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e =
             ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe): tests only
    const std::string n(e->d_name);
    if (n.rfind(prefix, 0) == 0) out.push_back(n.substr(prefix.size()));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Every /dev/shm entry whose name contains `fragment`.
std::vector<std::string> ShmEntriesContaining(const std::string& fragment) {
  std::vector<std::string> out;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e =
             ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe): tests only
    const std::string n(e->d_name);
    if (n.find(fragment) != std::string::npos) out.push_back(n);
  }
  ::closedir(d);
  return out;
}

// "numagrid.<name>.<suffix>".
std::string EntryName(const std::string& name, const std::string& suffix) {
  std::string s = "numagrid.";
  s += name;
  s += '.';
  s += suffix;
  return s;
}

struct stat StatShm(const std::string& entry) {
  struct stat st {};
  const std::string path = "/dev/shm/" + entry;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

// Overwrites the u32 at `offset` of /dev/shm/<entry>.
void OverwriteU32(const std::string& entry, std::size_t offset,
                  std::uint32_t value) {
  const std::string path = "/dev/shm/" + entry;
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  EXPECT_EQ(::pwrite(fd, &value, sizeof value, static_cast<off_t>(offset)),
            static_cast<ssize_t>(sizeof value));
  ::close(fd);
}

void OverwriteU64(const std::string& entry, std::size_t offset,
                  std::uint64_t value) {
  const std::string path = "/dev/shm/" + entry;
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  EXPECT_EQ(::pwrite(fd, &value, sizeof value, static_cast<off_t>(offset)),
            static_cast<ssize_t>(sizeof value));
  ::close(fd);
}

std::optional<GridListing> Listed(const std::string& name) {
  for (GridListing& g : ListGrids()) {
    if (g.name == name) return g;
  }
  return std::nullopt;
}

std::optional<gid_t> NoGroupGid() {
  if (const group* g =
          ::getgrnam("nogroup")) {  // NOLINT(concurrency-mt-unsafe)
    return g->gr_gid;
  }
  return std::nullopt;
}

// --- create and inspect ----------------------------------------------------

TEST(GridAdmin, CreateThenInspectDescribesTheGrid) {
  const std::string name = UniqueName();
  Result<CreateReport> created =
      CreateGrid(name, SmallOptions(), SystemTopology());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->node_count, SystemTopology().node_count());
  EXPECT_EQ(created->topology_source, "system");

  Result<GridReport> r = InspectGrid(name, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, name);
  EXPECT_NE(r->grid_id, 0u);
  EXPECT_EQ(r->control_layout_version, kControlLayoutVersion);
  EXPECT_EQ(r->data_layout_version, kDataLayoutVersion);
  EXPECT_EQ(r->partition_count, 8u);
  EXPECT_GE(r->memory_bytes, 8ULL << 20);
  EXPECT_EQ(r->max_key_bytes, 250u);
  EXPECT_EQ(r->max_value_bytes, 1u << 20);
  EXPECT_EQ(r->ring_capacity, 1024u);
  EXPECT_EQ(r->process_capacity, 256u);
  EXPECT_TRUE(r->prefaulted);
  EXPECT_EQ(r->owner_uid, ::geteuid());
  EXPECT_EQ(r->mode, 0600u);
  EXPECT_EQ(r->control_segment, "numagrid." + name + ".ctl");
  ASSERT_EQ(r->nodes.size(), SystemTopology().node_count());
  const std::uint32_t n = SystemTopology().node_count();
  for (std::uint32_t node = 0; node < n; ++node) {
    std::vector<std::uint32_t> expected;
    for (std::uint32_t p = node; p < 8; p += n) expected.push_back(p);
    EXPECT_EQ(r->nodes[node].node_id, node);
    EXPECT_EQ(r->nodes[node].partitions, expected) << "node " << node;
    EXPECT_GT(r->nodes[node].segment_bytes, 0u);
    EXPECT_GT(r->nodes[node].arena_bytes, 0u);
  }
}

TEST(GridAdmin, BoundDataSegmentPagesResideOnTheirNode) {
  const numa::Topology& system = SystemTopology();
  const std::string name = UniqueName();
  Result<CreateReport> created = CreateGrid(name, SmallOptions(), system);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Result<GridReport> r = InspectGrid(name, &system);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const NodeReport& n : r->nodes) {
    EXPECT_EQ(n.bound, created->all_bound);
    if (!n.bound) continue;
    if (n.resident_nodes.empty()) {
      GTEST_SKIP()
          << "the kernel does not say where pages are (move_pages refused?)";
    }
    EXPECT_THAT(n.resident_nodes, ElementsAre(n.node_id))
        << "node " << n.node_id;
  }
}

TEST(GridAdmin, PartitionPLivesOnNodePModNodeCount) {
  const numa::Topology four = Synthetic("pack:4 numa:1 core:1 pu:1");
  const std::string name = UniqueName();
  CreateOptions o = SmallOptions();
  o.partitions = 10;
  ASSERT_TRUE(CreateGrid(name, o, four).ok());
  Result<GridReport> r = InspectGrid(name, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->nodes.size(), 4u);
  EXPECT_THAT(r->nodes[0].partitions, ElementsAre(0, 4, 8));
  EXPECT_THAT(r->nodes[1].partitions, ElementsAre(1, 5, 9));
  EXPECT_THAT(r->nodes[2].partitions, ElementsAre(2, 6));
  EXPECT_THAT(r->nodes[3].partitions, ElementsAre(3, 7));
}

TEST(GridAdmin,
     SyntheticTwoNodeTopologyGivesTwoDataSegmentsOf32PartitionsUnbound) {
  const numa::Topology two = Synthetic("pack:2 numa:1 core:2 pu:1");
  const std::string name = UniqueName();
  CreateOptions o = SmallOptions();
  o.partitions = 64;
  Result<CreateReport> created = CreateGrid(name, o, two);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->node_count, 2u);
  EXPECT_FALSE(created->all_bound) << "a synthetic topology is not this system";
  EXPECT_THAT(created->topology_source, HasSubstr("synthetic"));
  EXPECT_THAT(ShmEntriesOf(name), ElementsAre("ctl", "lock", "node0", "node1"));

  Result<GridReport> r = InspectGrid(name, &two);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->nodes.size(), 2u);
  for (std::uint32_t node = 0; node < 2; ++node) {
    const NodeReport& nr = r->nodes[node];
    EXPECT_EQ(nr.partitions.size(), 32u) << "node " << node;
    for (std::uint32_t p : nr.partitions) {
      EXPECT_EQ(p % 2, node) << "partition " << p;
    }
    EXPECT_FALSE(nr.bound);
    EXPECT_THAT(nr.resident_nodes, IsEmpty())
        << "no OS to ask for a synthetic topology";
    EXPECT_EQ(nr.segment_name,
              "numagrid." + name + ".node" + std::to_string(node));
  }

  // The grid works like any other: a key in every partition round trips.
  Result<Grid> g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->partition_count(), 64u);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(g->Put("k" + std::to_string(i), "v" + std::to_string(i)).ok());
  }
  for (int i = 0; i < 500; ++i) {
    std::string v;
    ASSERT_TRUE(g->Get("k" + std::to_string(i), &v).ok());
    EXPECT_EQ(v, "v" + std::to_string(i));
  }
}

TEST(GridAdmin, CreateOfAnExistingNameIsAlreadyExistsAndTheGridStillWorks) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  Result<Grid> g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_TRUE(g->Put("before", "1").ok());
  const std::uint64_t grid_id = InspectGrid(name, nullptr)->grid_id;

  Result<CreateReport> again =
      CreateGrid(name, SmallOptions(), SystemTopology());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr(name));

  // Neither the open handle nor a new one notices anything.
  std::string v;
  ASSERT_TRUE(g->Get("before", &v).ok());
  EXPECT_EQ(v, "1");
  Result<Grid> h = Grid::Attach(name);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(h->Put("after", "2").ok());
  ASSERT_TRUE(g->Get("after", &v).ok());
  EXPECT_EQ(v, "2");
  Result<GridReport> r = InspectGrid(name, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->grid_id, grid_id);
  EXPECT_THAT(ShmEntriesOf(name), ElementsAre("ctl", "lock", "node0"));
}

TEST(GridAdmin, FailedCreateLeavesNoSegmentBehind) {
  struct Case {
    const char* what;
    CreateOptions options;
  };
  std::vector<Case> cases;
  {
    CreateOptions o = SmallOptions();
    o.partitions = 0;
    cases.push_back({"zero partitions", o});
  }
  {
    CreateOptions o = SmallOptions();
    o.group = "no-such-group-numagrid";
    cases.push_back({"unknown group", o});
  }
  {
    CreateOptions o = SmallOptions();
    o.ring_capacity = 1000;  // not a power of two
    cases.push_back({"bad ring capacity", o});
  }
  {
    CreateOptions o = SmallOptions();
    o.memory_bytes = 1 << 19;  // below 1 MiB per node
    cases.push_back({"too little memory", o});
  }
  {
    // Passes the option checks; fails once the lock file exists (a 16 MiB
    // value limit needs 2 MiB chunks, and 1 MiB holds less than two).
    CreateOptions o = SmallOptions();
    o.memory_bytes = 1 << 20;
    o.max_value_bytes = 16 << 20;
    cases.push_back({"memory below two chunks", o});
  }
  for (const Case& c : cases) {
    const std::string name = UniqueName();
    Result<CreateReport> r = CreateGrid(name, c.options, SystemTopology());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(ShmEntriesContaining(name), IsEmpty()) << c.what;
    EXPECT_FALSE(Listed(name).has_value()) << c.what;
  }
}

// Regression: CreateGrid accepted a process_capacity up to 65536, but
// shm::ProcessTable holds at most kMaxCapacity (16384) slots and its
// Initialize CHECK-failed: the creating process aborted and left an
// incomplete grid behind. Runs in a child so that an abort does not take the
// test binary down.
TEST(GridAdmin, ProcessCapacityBeyondTheTableLimitIsInvalidArgument) {
  const std::string name = UniqueName();
  CreateOptions o = SmallOptions();
  o.process_capacity = 16385;
  const int rc = WaitChild(ForkChild([&] {
    return static_cast<int>(
        CreateGrid(name, o, SystemTopology()).status().code());
  }));
  EXPECT_EQ(rc, static_cast<int>(StatusCode::kInvalidArgument))
      << "exit 134 is the abort of a failed CHECK";
  EXPECT_THAT(ShmEntriesContaining(name), IsEmpty());
}

TEST(GridAdmin, BadGridNameIsInvalidArgumentAndCreatesNothing) {
  const std::string base = UniqueName();
  for (const std::string& name : {base + ".x", base + "/x", "-" + base,
                                  std::string(), base + std::string(48, 'a')}) {
    EXPECT_EQ(
        CreateGrid(name, SmallOptions(), SystemTopology()).status().code(),
        StatusCode::kInvalidArgument)
        << "'" << name << "'";
  }
  EXPECT_THAT(ShmEntriesContaining(base), IsEmpty());
}

// --- destroy, inspect and list ---------------------------------------------

TEST(GridAdmin, DestroyRemovesEverySegment) {
  const numa::Topology two = Synthetic("pack:2 numa:1 core:2 pu:1");
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), two).ok());
  ASSERT_THAT(ShmEntriesOf(name), ElementsAre("ctl", "lock", "node0", "node1"));

  Status s = DestroyGrid(name);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_THAT(ShmEntriesContaining(name), IsEmpty());
  EXPECT_EQ(Grid::Attach(name).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(InspectGrid(name, nullptr).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(Listed(name).has_value());
}

TEST(GridAdmin, DestroyedNameCanBeCreatedAgain) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  {
    Result<Grid> g = Grid::Attach(name);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(g->Put("k", "old").ok());
  }
  ASSERT_TRUE(DestroyGrid(name).ok());
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  Result<Grid> g = Grid::Attach(name);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  std::string v;
  EXPECT_EQ(g->Get("k", &v).code(), StatusCode::kNotFound)
      << "a new grid starts empty";
}

TEST(GridAdmin, DestroyOfMissingGridIsNotFound) {
  const std::string name = UniqueName();
  Status s = DestroyGrid(name);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(name));
}

TEST(GridAdmin, InspectOfMissingGridIsNotFound) {
  const std::string name = UniqueName();
  Result<GridReport> r = InspectGrid(name, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("does not exist"));
  EXPECT_EQ(Grid::Attach(name).status().code(), StatusCode::kNotFound);
}

TEST(GridAdmin, ListGridsShowsACreatedGridAsComplete) {
  const std::string name = UniqueName();
  const std::string other = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  ASSERT_TRUE(CreateGrid(other, SmallOptions(), SystemTopology()).ok());
  std::optional<GridListing> l = Listed(name);
  ASSERT_TRUE(l.has_value());
  EXPECT_TRUE(l->complete) << l->problem;
  EXPECT_TRUE(Listed(other).has_value());
  ASSERT_TRUE(DestroyGrid(other).ok());
  EXPECT_FALSE(Listed(other).has_value());
  EXPECT_TRUE(Listed(name).has_value());
}

TEST(GridAdmin,
     GridWithoutControlSegmentIsListedIncompleteAndDestroyRemovesIt) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  ASSERT_EQ(::unlink(("/dev/shm/numagrid." + name + ".ctl").c_str()), 0);

  std::optional<GridListing> l = Listed(name);
  ASSERT_TRUE(l.has_value());
  EXPECT_FALSE(l->complete);
  EXPECT_FALSE(l->problem.empty());
  Result<GridReport> r = InspectGrid(name, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("incomplete"));
  EXPECT_EQ(Grid::Attach(name).status().code(), StatusCode::kNotFound);
  // The lock file is what makes a second create see a create under way.
  EXPECT_EQ(CreateGrid(name, SmallOptions(), SystemTopology()).status().code(),
            StatusCode::kAlreadyExists);

  ASSERT_TRUE(DestroyGrid(name).ok());
  EXPECT_THAT(ShmEntriesContaining(name), IsEmpty());
  EXPECT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
}

// --- permissions -----------------------------------------------------------

TEST(GridAdmin, SegmentsAreMode0600ByDefault) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  for (const std::string& suffix : ShmEntriesOf(name)) {
    const struct stat st = StatShm(EntryName(name, suffix));
    EXPECT_EQ(st.st_mode & 07777, 0600u) << suffix;
    EXPECT_EQ(st.st_uid, ::geteuid()) << suffix;
  }
  EXPECT_EQ(InspectGrid(name, nullptr)->mode, 0600u);
}

TEST(GridAdmin, GroupGridIsMode0660AndBelongsToTheGroup) {
  const std::optional<gid_t> nogroup = NoGroupGid();
  if (!nogroup) GTEST_SKIP() << "no group 'nogroup' on this host";
  if (::geteuid() != 0) {
    GTEST_SKIP() << "only root may give a grid to a group it is not in";
  }
  const std::string name = UniqueName();
  CreateOptions o = SmallOptions();
  o.group = "nogroup";
  Result<CreateReport> created = CreateGrid(name, o, SystemTopology());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const struct stat ctl = StatShm("numagrid." + name + ".ctl");
  EXPECT_EQ(ctl.st_mode & 07777, 0660u);
  EXPECT_EQ(ctl.st_gid, *nogroup);
  for (const std::string& suffix : ShmEntriesOf(name)) {
    const struct stat st = StatShm(EntryName(name, suffix));
    EXPECT_EQ(st.st_mode & 07777, 0660u) << suffix;
    EXPECT_EQ(st.st_gid, *nogroup) << suffix;
  }
  Result<GridReport> r = InspectGrid(name, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mode, 0660u);
  EXPECT_EQ(r->gid, *nogroup);
}

TEST(GridAdmin, ProcessWithoutRightsIsDeniedAttach) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  const auto nobody = NobodyUser();
  const int rc = WaitChild(ForkChild([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody.gid) != 0 ||
        ::setuid(nobody.uid) != 0) {
      return kCannotDrop;
    }
    return static_cast<int>(Grid::Attach(name).status().code());
  }));
  ASSERT_NE(rc, kCannotDrop) << "the child could not drop to nobody";
  EXPECT_EQ(rc, static_cast<int>(StatusCode::kPermissionDenied));
}

TEST(GridAdmin, MemberOfTheGridsGroupCanAttachReadAndWrite) {
  const std::optional<gid_t> nogroup = NoGroupGid();
  if (!nogroup) GTEST_SKIP() << "no group 'nogroup' on this host";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  const std::string name = UniqueName();
  CreateOptions o = SmallOptions();
  o.group = "nogroup";
  ASSERT_TRUE(CreateGrid(name, o, SystemTopology()).ok());
  {
    Result<Grid> g = Grid::Attach(name);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(g->Put("from-root", "r").ok());
  }
  const auto nobody = NobodyUser();
  const gid_t gid = *nogroup;
  const int rc = WaitChild(ForkChild([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 ||
        ::setuid(nobody.uid) != 0) {
      return kCannotDrop;
    }
    Result<Grid> g = Grid::Attach(name);
    if (!g.ok()) return 10 + static_cast<int>(g.status().code());
    std::string v;
    if (!g->Get("from-root", &v).ok() || v != "r") return 40;
    if (!g->Put("from-member", "m").ok()) return 41;
    return 0;
  }));
  ASSERT_NE(rc, kCannotDrop) << "the child could not drop to nobody:nogroup";
  ASSERT_EQ(rc, 0) << "10 + code: Attach failed; 40: read, 41: write failed";
  Result<Grid> g = Grid::Attach(name);
  ASSERT_TRUE(g.ok());
  std::string v;
  ASSERT_TRUE(g->Get("from-member", &v).ok());
  EXPECT_EQ(v, "m");
}

// --- layout versions -------------------------------------------------------

TEST(GridAdmin,
     ControlSegmentOfAnotherLayoutVersionIsRefusedNamingBothVersions) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  const std::uint32_t other = kControlLayoutVersion + 7;
  OverwriteU32("numagrid." + name + ".ctl",
               offsetof(shm::SegmentHeader, layout_version), other);

  Result<Grid> g = Grid::Attach(name);
  EXPECT_EQ(g.status().code(), StatusCode::kVersionMismatch);
  EXPECT_THAT(g.status().message(),
              HasSubstr("version " + std::to_string(other)));
  EXPECT_THAT(g.status().message(),
              HasSubstr(std::to_string(kControlLayoutVersion)));

  Result<GridReport> r = InspectGrid(name, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kVersionMismatch);
  EXPECT_THAT(r.status().message(),
              HasSubstr("version " + std::to_string(other)));
  EXPECT_THAT(r.status().message(),
              HasSubstr(std::to_string(kControlLayoutVersion)));

  std::optional<GridListing> l = Listed(name);
  ASSERT_TRUE(l.has_value());
  EXPECT_FALSE(l->complete);
  EXPECT_THAT(l->problem, HasSubstr("version"));
  // Destroy still removes it.
  ASSERT_TRUE(DestroyGrid(name).ok());
  EXPECT_THAT(ShmEntriesContaining(name), IsEmpty());
}

TEST(GridAdmin, DataSegmentOfAnotherLayoutVersionIsRefusedNamingBothVersions) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  const std::uint32_t other = kDataLayoutVersion + 1;
  OverwriteU32("numagrid." + name + ".node0",
               offsetof(shm::SegmentHeader, layout_version), other);
  for (const Status& s :
       {Grid::Attach(name).status(), InspectGrid(name, nullptr).status()}) {
    EXPECT_EQ(s.code(), StatusCode::kVersionMismatch);
    EXPECT_THAT(s.message(), HasSubstr("version " + std::to_string(other)));
    EXPECT_THAT(s.message(), HasSubstr(std::to_string(kDataLayoutVersion)));
  }
}

TEST(GridAdmin, ControlSegmentWithAnotherLayoutSignatureIsRefused) {
  const std::string name = UniqueName();
  ASSERT_TRUE(CreateGrid(name, SmallOptions(), SystemTopology()).ok());
  OverwriteU64("numagrid." + name + ".ctl",
               offsetof(shm::SegmentHeader, layout_signature),
               kControlLayoutSignature ^ 1);
  for (const Status& s :
       {Grid::Attach(name).status(), InspectGrid(name, nullptr).status()}) {
    EXPECT_EQ(s.code(), StatusCode::kVersionMismatch);
    EXPECT_THAT(s.message(), HasSubstr("signature"));
  }
}

// A change to a shared struct changes its signature, and this test fails
// until the layout version is bumped and the new values are pinned here.
TEST(GridLayout, VersionsAndSignaturesArePinned) {
  EXPECT_EQ(kControlLayoutVersion, 9u);
  EXPECT_EQ(kControlLayoutSignature, 0xcb652bb1e0170695ULL)
      << std::hex << "control signature is now 0x" << kControlLayoutSignature
      << ": bump kControlLayoutVersion and pin the new value";
  EXPECT_EQ(kDataLayoutVersion, 9u);
  EXPECT_EQ(kDataLayoutSignature, 0x4108dc31609ba35bULL)
      << std::hex << "data signature is now 0x" << kDataLayoutSignature
      << ": bump kDataLayoutVersion and pin the new value";
}

}  // namespace
}  // namespace numagrid::core
