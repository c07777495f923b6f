// Topology: the NUMA nodes of a machine as hwloc sees them (the real system,
// a synthetic description or an XML file), and the three OS operations the
// grid needs from them: bind a memory range to a node before first touch, pin
// a thread or the process to a node's CPUs, and ask where pages and the
// calling thread actually are.
//
// A topology that is not this system (synthetic, foreign XML) answers every
// question about its shape but skips the OS calls: binding and pinning return
// BindOutcome::kSkippedNotThisSystem, so placement logic for 2, 4 and 8 nodes
// runs unchanged on a one-node development machine. See docs/numa.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "numagrid/status.h"

namespace numagrid::numa {
namespace detail {
struct TopologyImpl;  // hwloc handles; defined in topology.cc
}  // namespace detail

// One NUMA node. Immutable once the Topology is built.
struct NodeInfo {
  // Logical index 0..n-1: what the grid calls node_id.
  std::uint32_t id;
  // The kernel's node number (numactl, /sys/devices/system/node/node<k>).
  std::uint32_t os_index;
  // Logical indexes of the cores whose PUs are all local to this node.
  std::vector<std::uint32_t> cores;
  // OS indexes of the PUs local to this node, ascending: what
  // sched_setaffinity() and sched_getcpu() use. Empty for a memory-only node.
  std::vector<std::uint32_t> cpus;
  // Local memory in bytes; 0 if hwloc does not know.
  std::uint64_t memory_bytes;
};

// What a binding or pinning call did.
enum class BindOutcome {
  kApplied,               // the OS call was made and succeeded
  kSkippedNotThisSystem,  // the topology is synthetic or foreign: no OS call
};

// Thread safety: thread-compatible. After construction nothing mutates it,
// and hwloc documents concurrent reads of one topology as safe, so the const
// methods may be called from several threads at once. Movable, not copyable;
// a moved-from Topology may only be destroyed or assigned to.
class Topology {
 public:
  // The topology hwloc would load for this process, honouring the
  // environment: HWLOC_SYNTHETIC (a synthetic description) wins over
  // HWLOC_XMLFILE (a path), which wins over the real system. A bad value is
  // reported like the matching From*() call, prefixed with the variable name.
  static Result<Topology> Load();

  // A synthetic topology, e.g. "pack:2 numa:1 core:2 pu:1" or
  // "numa:2(memory=1GiB) core:4 pu:1". kInvalidArgument naming the text when
  // hwloc cannot parse it. Never this system.
  static Result<Topology> FromSynthetic(std::string_view description);

  // A topology exported to XML (hwloc_topology_export_xml, lstopo foo.xml).
  // kNotFound if `path` does not exist, kInvalidArgument if it is not a
  // readable hwloc XML file, kIoError if stat() fails otherwise. Not this
  // system unless HWLOC_THISSYSTEM=1 says so (hwloc's own rule).
  static Result<Topology> FromXmlFile(std::string_view path);

  Topology(Topology&& other) noexcept;
  Topology& operator=(Topology&& other) noexcept;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology();

  // True when the OS calls below act on the machine this process runs on.
  bool is_this_system() const noexcept;

  // "system", "synthetic: <description>" or "xml: <path>".
  std::string source() const;

  // Never empty. Ordered by id (hwloc's logical index). A node without CPUs
  // (memory-only, e.g. CXL or a CPU-less node attached to the whole machine)
  // is kept with empty cores and cpus; placement skips it (placement.h).
  const std::vector<NodeInfo>& nodes() const noexcept;
  std::uint32_t node_count() const noexcept;

  // Ids of the nodes that have at least one CPU, ascending: where partitions
  // and workers go.
  std::vector<std::uint32_t> NodesWithCpus() const;

  // Binds the pages of [addr, addr + len) to the memory of node `node_id`
  // (hwloc_set_area_membind, HWLOC_MEMBIND_BIND, by nodeset, strict). Call it
  // before the first touch: pages that already exist stay where they are. On
  // a MAP_SHARED mapping of a /dev/shm file the policy is kept by the file, so
  // pages first touched later through any process's mapping follow it.
  // REQUIRES: addr != nullptr and len > 0 (else kInvalidArgument). hwloc
  // widens the range to whole pages.
  // kInvalidArgument for an unknown node_id, kIoError with errno text when
  // the kernel refuses.
  Result<BindOutcome> BindMemory(void* addr, std::size_t len,
                                 std::uint32_t node_id) const;

  // Restricts the calling thread (PinThreadToNode) or every thread of this
  // process (PinProcessToNode) to the CPUs of node `node_id`. kInvalidArgument
  // for an unknown node or one without CPUs; kIoError when the kernel refuses.
  Result<BindOutcome> PinThreadToNode(std::uint32_t node_id) const;
  Result<BindOutcome> PinProcessToNode(std::uint32_t node_id) const;

  // The ids of the nodes that hold the already-touched pages of
  // [addr, addr + len), ascending (pages never touched are not counted).
  // kInvalidArgument when the topology is not this system (there is no OS to
  // ask) or the range is empty; kIoError when the kernel refuses.
  Result<std::vector<std::uint32_t>> MemoryNodesOf(const void* addr,
                                                   std::size_t len) const;

  // The OS indexes of the CPUs the calling thread may run on, ascending.
  // kInvalidArgument when the topology is not this system.
  Result<std::vector<std::uint32_t>> ThreadCpus() const;

 private:
  explicit Topology(std::unique_ptr<detail::TopologyImpl> impl) noexcept;

  Result<BindOutcome> Pin(std::uint32_t node_id, int hwloc_flags,
                          std::string_view what) const;

  std::unique_ptr<detail::TopologyImpl>
      impl_;  // never null except after a move
};

}  // namespace numagrid::numa
