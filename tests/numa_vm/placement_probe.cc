// numagrid_placement_probe: checks, against the kernel, that each NUMA node's
// data segment of a grid lives on that node and that a thread pinned to a
// node runs there. Meant for a machine with real NUMA nodes (the numa-vm
// guest, see docs/numa.md); plain main(), no gtest.
//
//   numagrid_placement_probe --segment-prefix numagrid.vm.node --nodes N
//                            [--min-percent 99]
//
// For each node i it maps /dev/shm/<prefix><i> read-only, checks with
// mincore() that every page already exists (the creator prefaulted it: the
// probe must measure the creator's placement, not its own first touch),
// reads one byte per page, which maps the existing pages and allocates
// nothing, then counts the pages per node with move_pages() in query mode and
// reads the same mapping's N<k>= counts from /proc/self/numa_maps. At least
// --min-percent of the pages must be on node i. Then it pins one thread per
// node with Topology::PinThreadToNode and checks that sched_getcpu() is one of
// that node's CPUs.
//
// Exit codes: 0 everything matched; 1 pages misplaced, missing, or a pinned
// thread on a wrong CPU; 2 bad usage or a setup error (no such segment,
// wrong node count, a failing system call).
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "numa/topology.h"

namespace {

using numagrid::numa::BindOutcome;
using numagrid::numa::NodeInfo;
using numagrid::numa::Topology;

constexpr int kExitOk = 0;
constexpr int kExitMismatch = 1;
constexpr int kExitSetup = 2;

struct Options {
  std::string prefix;
  std::uint32_t nodes = 0;
  double min_percent = 99.0;
};

void Usage() {
  std::fprintf(stderr,
               "usage: numagrid_placement_probe --segment-prefix PREFIX "
               "--nodes N [--min-percent P]\n"
               "  checks that /dev/shm/PREFIX<i> lives on NUMA node i and that "
               "a thread pinned to node i runs there\n");
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      Usage();
      std::exit(kExitOk);
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    char* end = nullptr;
    if (a == "--segment-prefix") {
      o->prefix = v;
    } else if (a == "--nodes") {
      const unsigned long n = std::strtoul(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n == 0 || n > 4096) return false;
      o->nodes = static_cast<std::uint32_t>(n);
    } else if (a == "--min-percent") {
      o->min_percent = std::strtod(v, &end);
      if (*v == '\0' || *end != '\0' || o->min_percent <= 0 ||
          o->min_percent > 100) {
        return false;
      }
    } else {
      return false;
    }
  }
  return !o->prefix.empty() && o->prefix.find('/') == std::string::npos &&
         o->nodes > 0;
}

std::string CountsText(const std::map<int, long>& counts) {
  std::string out;
  for (const auto& [node, n] : counts) {
    if (!out.empty()) out += ' ';
    out += "N" + std::to_string(node) + "=" + std::to_string(n);
  }
  return out.empty() ? "-" : out;
}

// The policy and N<k>=<pages> counts of the /proc/self/numa_maps line for the
// mapping that starts at `start`. False if there is no such line.
bool NumaMapsOf(const void* start, std::string* policy,
                std::map<int, long>* counts) {
  std::ifstream in("/proc/self/numa_maps");
  char want[32];
  std::snprintf(want, sizeof want, "%" PRIxPTR,
                reinterpret_cast<std::uintptr_t>(start));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string addr;
    words >> addr >> *policy;
    if (addr != want) continue;
    std::string w;
    while (words >> w) {
      int node = 0;
      long n = 0;
      if (std::sscanf(w.c_str(), "N%d=%ld", &node, &n) == 2) {
        (*counts)[node] += n;
      }
    }
    return true;
  }
  return false;
}

struct SegmentReport {
  std::uint64_t pages = 0;
  std::uint64_t resident_before = 0;      // pages that existed before we read
  std::uint64_t on_node = 0;              // pages move_pages puts on node i
  std::map<int, long> move_pages_counts;  // OS node (or -errno) -> pages
  std::map<int, long> numa_maps_counts;   // OS node -> pages
  std::string numa_maps_policy;
  bool ok = false;
};

// Maps and measures one segment. Returns false (after printing why) on a
// setup error.
bool ProbeSegment(const std::string& path, const NodeInfo& node,
                  double min_percent, SegmentReport* r) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "probe: open %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    std::fprintf(stderr, "probe: %s is empty or cannot be stat'ed\n",
                 path.c_str());
    close(fd);
    return false;
  }
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t len = static_cast<std::size_t>(st.st_size);
  void* map = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    std::fprintf(stderr, "probe: mmap %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  const auto* bytes = static_cast<const volatile unsigned char*>(map);
  r->pages = (len + page - 1) / page;

  // Before touching anything: which pages does the file already have?
  std::vector<unsigned char> incore(r->pages);
  if (mincore(map, len, incore.data()) != 0) {
    std::fprintf(stderr, "probe: mincore %s: %s\n", path.c_str(),
                 std::strerror(errno));
    munmap(map, len);
    return false;
  }
  for (unsigned char c : incore) r->resident_before += (c & 1u);

  // Volatile reads: each one happens, and maps the page that exists.
  for (std::uint64_t p = 0; p < r->pages; ++p) (void)bytes[p * page];

  // move_pages in query mode (nodes == NULL): status[i] is the page's node.
  constexpr std::uint64_t kChunk = 8192;
  std::vector<void*> addrs(kChunk);
  std::vector<int> status(kChunk);
  for (std::uint64_t first = 0; first < r->pages; first += kChunk) {
    const std::uint64_t n = std::min(kChunk, r->pages - first);
    for (std::uint64_t k = 0; k < n; ++k) {
      addrs[k] = static_cast<char*>(map) + (first + k) * page;
    }
    if (syscall(SYS_move_pages, 0, static_cast<unsigned long>(n), addrs.data(),
                nullptr, status.data(), 0) != 0) {
      std::fprintf(stderr, "probe: move_pages %s: %s\n", path.c_str(),
                   std::strerror(errno));
      munmap(map, len);
      return false;
    }
    for (std::uint64_t k = 0; k < n; ++k) {
      r->move_pages_counts[status[k]] += 1;
      if (status[k] >= 0 &&
          static_cast<std::uint32_t>(status[k]) == node.os_index) {
        ++r->on_node;
      }
    }
  }
  if (!NumaMapsOf(map, &r->numa_maps_policy, &r->numa_maps_counts)) {
    r->numa_maps_policy = "(mapping not in numa_maps)";
  }
  munmap(map, len);
  r->ok = r->resident_before == r->pages &&
          static_cast<double>(r->on_node) * 100.0 >=
              min_percent * static_cast<double>(r->pages);
  return true;
}

std::string CpusText(const std::vector<std::uint32_t>& cpus) {
  std::string out;
  for (std::uint32_t c : cpus) {
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return "{" + out + "}";
}

// Pins a fresh thread to `node` and reports where it runs. True if it ran
// only on the node's CPUs.
bool ProbePinning(const Topology& topo, const NodeInfo& node) {
  bool ok = false;
  std::string detail;
  std::thread t([&] {
    numagrid::Result<BindOutcome> p = topo.PinThreadToNode(node.id);
    if (!p.ok()) {
      detail = p.status().ToString();
      return;
    }
    if (*p != BindOutcome::kApplied) {
      detail = "pinning was skipped: the topology is not this system";
      return;
    }
    // sched_setaffinity on oneself migrates before it returns; yield anyway
    // so the check also covers the next scheduling decision.
    sched_yield();
    const int cpu = sched_getcpu();
    numagrid::Result<std::vector<std::uint32_t>> allowed = topo.ThreadCpus();
    const bool cpu_ok =
        cpu >= 0 &&
        std::find(node.cpus.begin(), node.cpus.end(),
                  static_cast<std::uint32_t>(cpu)) != node.cpus.end();
    const bool mask_ok = allowed.ok() && *allowed == node.cpus;
    detail = "sched_getcpu=" + std::to_string(cpu) + " allowed=" +
             (allowed.ok() ? CpusText(*allowed) : allowed.status().ToString());
    ok = cpu_ok && mask_ok;
  });
  t.join();
  std::printf("pin   node %u cpus %s: %s -> %s\n", node.id,
              CpusText(node.cpus).c_str(), detail.c_str(), ok ? "ok" : "WRONG");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!ParseOptions(argc, argv, &opt)) {
    Usage();
    return kExitSetup;
  }
  numagrid::Result<Topology> loaded = Topology::Load();
  if (!loaded.ok()) {
    std::fprintf(stderr, "probe: %s\n", loaded.status().ToString().c_str());
    return kExitSetup;
  }
  const Topology& topo = *loaded;
  if (!topo.is_this_system()) {
    std::fprintf(stderr, "probe: the topology (%s) is not this system\n",
                 topo.source().c_str());
    return kExitSetup;
  }
  if (topo.node_count() != opt.nodes) {
    std::fprintf(stderr,
                 "probe: this machine has %u NUMA node(s), --nodes "
                 "says %u\n",
                 topo.node_count(), opt.nodes);
    return kExitSetup;
  }

  std::printf(
      "probe: %u NUMA nodes; segment i = /dev/shm/%s<i> must have "
      "every page present and >= %.1f%% of them on node i\n",
      opt.nodes, opt.prefix.c_str(), opt.min_percent);
  std::printf("%-4s %-3s %-36s %8s %10s %8s %7s  %-22s %-22s %s\n", "node",
              "os", "segment", "pages", "prefaulted", "on-node", "pct",
              "move_pages", "numa_maps", "result");
  int misplaced = 0;
  for (const NodeInfo& node : topo.nodes()) {
    const std::string path = "/dev/shm/" + opt.prefix + std::to_string(node.id);
    SegmentReport r;
    if (!ProbeSegment(path, node, opt.min_percent, &r)) return kExitSetup;
    const double pct =
        100.0 * static_cast<double>(r.on_node) / static_cast<double>(r.pages);
    const char* verdict = r.ok                           ? "ok"
                          : r.resident_before != r.pages ? "NOT PREFAULTED"
                                                         : "MISPLACED";
    std::printf("%-4u %-3u %-36s %8" PRIu64 " %10" PRIu64 " %8" PRIu64
                " %6.1f%%  %-22s %-22s %s  [numa_maps policy: %s]\n",
                node.id, node.os_index, path.c_str(), r.pages,
                r.resident_before, r.on_node, pct,
                CountsText(r.move_pages_counts).c_str(),
                CountsText(r.numa_maps_counts).c_str(), verdict,
                r.numa_maps_policy.c_str());
    if (!r.ok) ++misplaced;
  }

  int wrong_cpu = 0;
  for (const NodeInfo& node : topo.nodes()) {
    if (node.cpus.empty()) {
      std::printf("pin   node %u: no CPUs (memory-only), skipped\n", node.id);
      continue;
    }
    if (!ProbePinning(topo, node)) ++wrong_cpu;
  }

  if (misplaced == 0 && wrong_cpu == 0) {
    std::printf(
        "probe: PASS: %u segment(s) on their nodes, pinned threads "
        "ran on their nodes\n",
        opt.nodes);
    std::fflush(stdout);
    return kExitOk;
  }
  std::printf(
      "probe: FAIL: %d segment(s) misplaced or not prefaulted, %d "
      "pinned thread(s) on a wrong CPU\n",
      misplaced, wrong_cpu);
  std::fflush(stdout);
  return kExitMismatch;
}
