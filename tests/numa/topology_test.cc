// Tests for numa/topology.h: synthetic and XML topologies of 1, 2, 4 and 8
// nodes (shape only, OS calls skipped), and the real system (binding before
// first touch, pinning, where the pages and the thread really are).
#include "numa/topology.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hwloc.h>

#include "core/base/check.h"
#include "tests/support/test_grid.h"

namespace numagrid::numa {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using U32s = std::vector<std::uint32_t>;

// Sets (or, with nullptr, unsets) an environment variable for one scope and
// puts the old value back afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The real system, whatever the caller's environment says.
struct RealSystemEnv {
  ScopedEnv synthetic{"HWLOC_SYNTHETIC", nullptr};
  ScopedEnv xml{"HWLOC_XMLFILE", nullptr};
};

Topology MustSynthetic(const char* description) {
  Result<Topology> t = Topology::FromSynthetic(description);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

U32s Range(std::uint32_t first, std::uint32_t count) {
  U32s out(count);
  for (std::uint32_t i = 0; i < count; ++i) out[i] = first + i;
  return out;
}

U32s AffinityOfThisThread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  U32s out;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) out.push_back(static_cast<std::uint32_t>(i));
  }
  return out;
}

bool IsSubset(const U32s& small, const U32s& big) {
  return std::all_of(small.begin(), small.end(), [&big](std::uint32_t x) {
    return std::find(big.begin(), big.end(), x) != big.end();
  });
}

// A private temporary directory, removed with its files at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "numa_test.XXXXXX";
    NUMAGRID_CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    for (const std::string& f : files_) unlink(f.c_str());
    rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // A path inside the directory, removed at scope exit.
  std::string File(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// Writes `description` to an XML file with hwloc's own exporter.
void ExportSyntheticToXml(const char* description, const std::string& path) {
  hwloc_topology_t t = nullptr;
  ASSERT_EQ(hwloc_topology_init(&t), 0);
  ASSERT_EQ(hwloc_topology_set_synthetic(t, description), 0);
  ASSERT_EQ(hwloc_topology_load(t), 0);
  ASSERT_EQ(hwloc_topology_export_xml(t, path.c_str(), 0), 0);
  hwloc_topology_destroy(t);
}

// --- synthetic topologies: shape -------------------------------------------

TEST(SyntheticTopology, TwoPackagesAreTwoNodesWithTheirCoresAndCpus) {
  Topology t = MustSynthetic("pack:2 numa:1 core:2 pu:1");
  EXPECT_FALSE(t.is_this_system());
  EXPECT_EQ(t.source(), "synthetic: pack:2 numa:1 core:2 pu:1");
  ASSERT_EQ(t.node_count(), 2u);
  ASSERT_EQ(t.nodes().size(), 2u);
  for (std::uint32_t i = 0; i < 2; ++i) {
    const NodeInfo& n = t.nodes()[i];
    EXPECT_EQ(n.id, i);
    EXPECT_EQ(n.os_index, i);
    EXPECT_EQ(n.cores, Range(2 * i, 2));
    EXPECT_EQ(n.cpus, Range(2 * i, 2));
  }
  EXPECT_EQ(t.NodesWithCpus(), Range(0, 2));
}

TEST(SyntheticTopology, FourNodesWithTwoThreadsPerCore) {
  Topology t = MustSynthetic("pack:4 numa:1 core:2 pu:2");
  ASSERT_EQ(t.node_count(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) {
    const NodeInfo& n = t.nodes()[i];
    EXPECT_EQ(n.id, i);
    EXPECT_EQ(n.os_index, i);
    EXPECT_EQ(n.cores, Range(2 * i, 2)) << "node " << i;
    EXPECT_EQ(n.cpus, Range(4 * i, 4)) << "node " << i;
  }
}

TEST(SyntheticTopology, EightSingleCoreNodes) {
  Topology t = MustSynthetic("pack:8 numa:1 core:1 pu:1");
  ASSERT_EQ(t.node_count(), 8u);
  for (std::uint32_t i = 0; i < 8; ++i) {
    EXPECT_THAT(t.nodes()[i].cores, ElementsAre(i));
    EXPECT_THAT(t.nodes()[i].cpus, ElementsAre(i));
  }
  EXPECT_EQ(t.NodesWithCpus(), Range(0, 8));
}

TEST(SyntheticTopology, NumaLevelWithoutPackages) {
  Topology t = MustSynthetic("numa:2 core:4 pu:1");
  ASSERT_EQ(t.node_count(), 2u);
  EXPECT_EQ(t.nodes()[0].cores, Range(0, 4));
  EXPECT_EQ(t.nodes()[0].cpus, Range(0, 4));
  EXPECT_EQ(t.nodes()[1].cores, Range(4, 4));
  EXPECT_EQ(t.nodes()[1].cpus, Range(4, 4));
}

TEST(SyntheticTopology, NoNumaLevelIsOneNodeWithEveryCore) {
  Topology t = MustSynthetic("core:4 pu:2");
  ASSERT_EQ(t.node_count(), 1u);
  EXPECT_EQ(t.nodes()[0].id, 0u);
  EXPECT_EQ(t.nodes()[0].cores, Range(0, 4));
  EXPECT_EQ(t.nodes()[0].cpus, Range(0, 8));
}

TEST(SyntheticTopology, ReportsTheMemoryGivenInTheDescription) {
  Topology t = MustSynthetic("numa:2(memory=1GiB) core:4 pu:1");
  ASSERT_EQ(t.node_count(), 2u);
  EXPECT_EQ(t.nodes()[0].memory_bytes, std::uint64_t{1} << 30);
  EXPECT_EQ(t.nodes()[1].memory_bytes, std::uint64_t{1} << 30);

  Topology decimal = MustSynthetic("pack:2 numa:1(memory=3GB) core:1 pu:1");
  EXPECT_EQ(decimal.nodes()[1].memory_bytes, std::uint64_t{3000000000});
}

TEST(SyntheticTopology, MemoryOnlyNodeIsKeptWithoutCpus) {
  // Node L#2 hangs from the whole machine, the other two from one package
  // each: every PU has closer memory, so node 2 is memory-only.
  Topology t = MustSynthetic(
      "[numa(memory=1GiB)] pack:2 [numa(memory=2GiB)] core:2 pu:1");
  ASSERT_EQ(t.node_count(), 3u);
  EXPECT_EQ(t.nodes()[0].cpus, Range(0, 2));
  EXPECT_EQ(t.nodes()[0].cores, Range(0, 2));
  EXPECT_EQ(t.nodes()[1].cpus, Range(2, 2));
  EXPECT_EQ(t.nodes()[1].memory_bytes, std::uint64_t{2} << 30);
  EXPECT_TRUE(t.nodes()[2].cpus.empty());
  EXPECT_TRUE(t.nodes()[2].cores.empty());
  EXPECT_EQ(t.nodes()[2].memory_bytes, std::uint64_t{1} << 30);
  EXPECT_EQ(t.NodesWithCpus(), Range(0, 2));

  // Memory can be bound there; no thread can run there.
  char buf[64];
  Result<BindOutcome> bound = t.BindMemory(buf, sizeof buf, 2);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  Result<BindOutcome> pinned = t.PinThreadToNode(2);
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(pinned.status().message(), HasSubstr("no CPUs"));
}

TEST(SyntheticTopology, BadDescriptionIsInvalidArgumentNamingIt) {
  for (const char* bad : {"bogus:3", "pack:2 numa:x core:1", "pack:-1 pu:1"}) {
    Result<Topology> t = Topology::FromSynthetic(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr(bad));
  }
  for (const char* blank : {"", "   "}) {
    Result<Topology> t = Topology::FromSynthetic(blank);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(SyntheticTopology, BindingAndPinningAreSkippedNotFailed) {
  Topology t = MustSynthetic("pack:4 numa:1 core:2 pu:2");
  const U32s affinity_before = AffinityOfThisThread();
  std::vector<char> buf(1 << 16);
  for (std::uint32_t node = 0; node < t.node_count(); ++node) {
    Result<BindOutcome> b = t.BindMemory(buf.data(), buf.size(), node);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(*b, BindOutcome::kSkippedNotThisSystem);
    Result<BindOutcome> th = t.PinThreadToNode(node);
    ASSERT_TRUE(th.ok()) << th.status().ToString();
    EXPECT_EQ(*th, BindOutcome::kSkippedNotThisSystem);
    Result<BindOutcome> pr = t.PinProcessToNode(node);
    ASSERT_TRUE(pr.ok()) << pr.status().ToString();
    EXPECT_EQ(*pr, BindOutcome::kSkippedNotThisSystem);
  }
  // Nothing was pinned: the synthetic CPUs 8..15 may not even exist.
  EXPECT_EQ(AffinityOfThisThread(), affinity_before);
}

TEST(SyntheticTopology, WhereQueriesNeedTheRealSystem) {
  Topology t = MustSynthetic("pack:2 numa:1 core:2 pu:1");
  char buf[64] = {};
  Result<U32s> where = t.MemoryNodesOf(buf, sizeof buf);
  ASSERT_FALSE(where.ok());
  EXPECT_EQ(where.status().code(), StatusCode::kInvalidArgument);
  Result<U32s> cpus = t.ThreadCpus();
  ASSERT_FALSE(cpus.ok());
  EXPECT_EQ(cpus.status().code(), StatusCode::kInvalidArgument);
}

TEST(SyntheticTopology, NodeOutOfRangeIsInvalidArgument) {
  Topology t = MustSynthetic("pack:2 numa:1 core:2 pu:1");
  char buf[64];
  for (std::uint32_t bad : {2u, 3u, 1000u, UINT32_MAX}) {
    Result<BindOutcome> b = t.BindMemory(buf, sizeof buf, bad);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(b.status().message(), HasSubstr(std::to_string(bad)));
    EXPECT_EQ(t.PinThreadToNode(bad).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(t.PinProcessToNode(bad).status().code(),
              StatusCode::kInvalidArgument);
  }
}

TEST(SyntheticTopology, EmptyRangeIsInvalidArgument) {
  Topology t = MustSynthetic("pack:2 numa:1 core:2 pu:1");
  char buf[8];
  EXPECT_EQ(t.BindMemory(nullptr, 4096, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(t.BindMemory(buf, 0, 0).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SyntheticTopology, MovedTopologyKeepsItsNodes) {
  Topology a = MustSynthetic("pack:8 numa:1 core:1 pu:1");
  Topology b(std::move(a));
  EXPECT_EQ(b.node_count(), 8u);
  Topology c = MustSynthetic("pack:2 numa:1 core:2 pu:1");
  c = std::move(b);
  EXPECT_EQ(c.node_count(), 8u);
  EXPECT_EQ(c.source(), "synthetic: pack:8 numa:1 core:1 pu:1");
}

// --- the environment --------------------------------------------------------

TEST(TopologyLoad, HonoursHwlocSynthetic) {
  ScopedEnv xml("HWLOC_XMLFILE", nullptr);
  {
    ScopedEnv env("HWLOC_SYNTHETIC", "pack:4 numa:1 core:2 pu:1");
    Result<Topology> t = Topology::Load();
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->node_count(), 4u);
    EXPECT_FALSE(t->is_this_system());
    EXPECT_EQ(t->source(), "synthetic: pack:4 numa:1 core:2 pu:1");
  }
  EXPECT_EQ(std::getenv("HWLOC_SYNTHETIC"), nullptr);
}

TEST(TopologyLoad, BadHwlocSyntheticIsInvalidArgumentNamingTheVariable) {
  ScopedEnv xml("HWLOC_XMLFILE", nullptr);
  ScopedEnv env("HWLOC_SYNTHETIC", "pack:2 wibble:3");
  Result<Topology> t = Topology::Load();
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("HWLOC_SYNTHETIC"));
  EXPECT_THAT(t.status().message(), HasSubstr("wibble"));
}

// --- XML ---------------------------------------------------------------------

TEST(XmlTopology, ExportedSyntheticTopologyLoadsBackTheSame) {
  TempDir dir;
  const std::string path = dir.File("four.xml");
  const char* desc = "pack:4 numa:1(memory=2GiB) core:2 pu:2";
  ExportSyntheticToXml(desc, path);
  Topology synthetic = MustSynthetic(desc);

  Result<Topology> t = Topology::FromXmlFile(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_FALSE(t->is_this_system());
  EXPECT_EQ(t->source(), "xml: " + path);
  ASSERT_EQ(t->node_count(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) {
    const NodeInfo& x = t->nodes()[i];
    const NodeInfo& s = synthetic.nodes()[i];
    EXPECT_EQ(x.id, i);
    EXPECT_EQ(x.os_index, s.os_index);
    EXPECT_EQ(x.cores, s.cores);
    EXPECT_EQ(x.cpus, s.cpus);
    EXPECT_EQ(x.cpus, Range(4 * i, 4));
    EXPECT_EQ(x.memory_bytes, std::uint64_t{2} << 30);
  }
  char buf[64];
  Result<BindOutcome> b = t->BindMemory(buf, sizeof buf, 3);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*b, BindOutcome::kSkippedNotThisSystem);
}

TEST(XmlTopology, LoadHonoursHwlocXmlFile) {
  TempDir dir;
  const std::string path = dir.File("two.xml");
  ExportSyntheticToXml("pack:2 numa:1 core:2 pu:1", path);
  ScopedEnv syn("HWLOC_SYNTHETIC", nullptr);
  ScopedEnv env("HWLOC_XMLFILE", path.c_str());
  Result<Topology> t = Topology::Load();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->node_count(), 2u);
  EXPECT_EQ(t->source(), "xml: " + path);
}

TEST(XmlTopology, MissingFileIsNotFound) {
  TempDir dir;
  Result<Topology> t = Topology::FromXmlFile(dir.File("absent.xml"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("absent.xml"));
}

TEST(XmlTopology, GarbageOrDirectoryIsInvalidArgument) {
  TempDir dir;
  const std::string path = dir.File("garbage.xml");
  {
    std::ofstream out(path);
    out << "this is not <topology> xml\n";
  }
  Result<Topology> t = Topology::FromXmlFile(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("garbage.xml"));

  Result<Topology> d = Topology::FromXmlFile(::testing::TempDir());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

// --- the real system
// -----------------------------------------------------------

Topology MustLoadRealSystem() {
  RealSystemEnv env;
  Result<Topology> t = Topology::Load();
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

TEST(RealTopology, LoadsThisSystem) {
  Topology t = MustLoadRealSystem();
  EXPECT_TRUE(t.is_this_system());
  EXPECT_EQ(t.source(), "system");
  ASSERT_GE(t.node_count(), 1u);
  U32s all_cpus;
  for (std::uint32_t i = 0; i < t.node_count(); ++i) {
    EXPECT_EQ(t.nodes()[i].id, i);
    all_cpus.insert(all_cpus.end(), t.nodes()[i].cpus.begin(),
                    t.nodes()[i].cpus.end());
  }
  EXPECT_FALSE(t.NodesWithCpus().empty());
  // Every CPU this thread may use belongs to some node.
  EXPECT_TRUE(IsSubset(AffinityOfThisThread(), all_cpus));
}

class MappedPages {
 public:
  explicit MappedPages(std::size_t pages)
      : len_(pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE))) {
    addr_ = mmap(nullptr, len_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr_ == MAP_FAILED) std::abort();
  }
  ~MappedPages() { munmap(addr_, len_); }
  MappedPages(const MappedPages&) = delete;
  MappedPages& operator=(const MappedPages&) = delete;
  void* addr() const { return addr_; }
  std::size_t len() const { return len_; }
  void Touch() { std::memset(addr_, 0x5a, len_); }

 private:
  std::size_t len_;
  void* addr_;
};

TEST(RealTopology, BindBeforeFirstTouchPutsThePagesOnTheNode) {
  Topology t = MustLoadRealSystem();
  for (std::uint32_t node = 0; node < t.node_count(); ++node) {
    MappedPages m(64);
    Result<BindOutcome> b = t.BindMemory(m.addr(), m.len(), node);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(*b, BindOutcome::kApplied);
    m.Touch();
    Result<U32s> where = t.MemoryNodesOf(m.addr(), m.len());
    ASSERT_TRUE(where.ok()) << where.status().ToString();
    EXPECT_THAT(*where, ElementsAre(node));
  }
}

TEST(RealTopology, UntouchedPagesAreOnNoNode) {
  Topology t = MustLoadRealSystem();
  MappedPages m(16);
  Result<U32s> where = t.MemoryNodesOf(m.addr(), m.len());
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  EXPECT_TRUE(where->empty());
}

TEST(RealTopology, PinnedThreadRunsOnlyOnItsNodesCpus) {
  Topology t = MustLoadRealSystem();
  for (std::uint32_t node : t.NodesWithCpus()) {
    // A fresh thread, so the test's own thread keeps its affinity.
    std::thread worker([&t, node] {
      Result<BindOutcome> p = t.PinThreadToNode(node);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      EXPECT_EQ(*p, BindOutcome::kApplied);
      Result<U32s> cpus = t.ThreadCpus();
      ASSERT_TRUE(cpus.ok()) << cpus.status().ToString();
      EXPECT_FALSE(cpus->empty());
      EXPECT_TRUE(IsSubset(*cpus, t.nodes()[node].cpus))
          << "node " << node << ": " << ::testing::PrintToString(*cpus);
      EXPECT_EQ(*cpus, AffinityOfThisThread());
      const int cpu = sched_getcpu();
      ASSERT_GE(cpu, 0);
      EXPECT_TRUE(
          IsSubset({static_cast<std::uint32_t>(cpu)}, t.nodes()[node].cpus));
    });
    worker.join();
  }
}

TEST(RealTopology, PinnedProcessRunsOnlyOnItsNodesCpus) {
  Topology t = MustLoadRealSystem();
  const std::uint32_t node = t.NodesWithCpus().back();
  // In a child, so the test process keeps its affinity.
  pid_t pid = testing::ForkChild([&t, node] {
    Result<BindOutcome> p = t.PinProcessToNode(node);
    if (!p.ok() || *p != BindOutcome::kApplied) return 1;
    Result<U32s> cpus = t.ThreadCpus();
    if (!cpus.ok() || cpus->empty()) return 2;
    if (!IsSubset(*cpus, t.nodes()[node].cpus)) return 3;
    return 0;
  });
  EXPECT_EQ(testing::WaitChild(pid), 0);
}

TEST(RealTopology, NodeOutOfRangeIsInvalidArgument) {
  Topology t = MustLoadRealSystem();
  MappedPages m(1);
  const std::uint32_t bad = t.node_count();
  EXPECT_EQ(t.BindMemory(m.addr(), m.len(), bad).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(t.PinThreadToNode(bad).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(t.PinProcessToNode(bad).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace numagrid::numa
