// Topology: builds the node list from an hwloc topology and wraps hwloc's
// binding calls in Status/Result.
#include "numa/topology.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <hwloc.h>

#include "core/base/check.h"

namespace numagrid::numa {
namespace {

struct BitmapDeleter {
  void operator()(hwloc_bitmap_s* b) const noexcept { hwloc_bitmap_free(b); }
};
using BitmapPtr = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const noexcept {
    hwloc_topology_destroy(t);
  }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r returns the message, maybe not in buf.
  return strerror_r(err, buf, sizeof buf);
}

Result<BitmapPtr> NewBitmap() {
  BitmapPtr b(hwloc_bitmap_alloc());
  if (b == nullptr) return IoError("hwloc_bitmap_alloc: out of memory");
  return b;
}

std::vector<std::uint32_t> BitmapToVector(hwloc_const_bitmap_t b) {
  std::vector<std::uint32_t> out;
  int i = -1;
  while ((i = hwloc_bitmap_next(b, i)) != -1) {
    out.push_back(static_cast<std::uint32_t>(i));
  }
  return out;
}

// The normal (CPU-side) object a memory object hangs from, skipping
// memory-side caches, which sit between a NUMA node and its parent.
hwloc_obj_t AttachPoint(hwloc_obj_t memory_obj) {
  hwloc_obj_t p = memory_obj->parent;
  while (p != nullptr && p->type == HWLOC_OBJ_MEMCACHE) p = p->parent;
  return p;
}

// The nearest ancestor of `pu` that has memory attached: the NUMA nodes hung
// there are the PU's local memory.
hwloc_obj_t LocalMemoryPoint(hwloc_obj_t pu) {
  hwloc_obj_t p = pu->parent;
  while (p != nullptr && p->memory_arity == 0) p = p->parent;
  return p;
}

}  // namespace

namespace detail {

// Everything here is constant after Topology::From*()/Load() returns.
struct TopologyImpl {
  TopologyPtr topo;
  std::string source;
  bool this_system = false;
  std::vector<NodeInfo> nodes;
  std::vector<BitmapPtr> cpusets;   // per node id: its PUs (OS indexes)
  std::vector<BitmapPtr> nodesets;  // per node id: just its os_index
};

}  // namespace detail

namespace {

// Fills impl->nodes, cpusets and nodesets from the loaded impl->topo.
//
// A PU belongs to the NUMA nodes attached at its nearest ancestor that has
// memory: hwloc gives every NUMA node the cpuset of the object it hangs from,
// so a CPU-less node attached to the whole machine would otherwise claim
// every CPU. Nodes no PU is local to are memory-only and get no CPUs.
Status BuildNodes(detail::TopologyImpl* impl) {
  hwloc_topology_t t = impl->topo.get();
  const int numa_count = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  const int pu_count = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  const int core_count = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);

  std::vector<hwloc_obj_t> attach;  // per node id, null for a made-up node
  if (numa_count <= 0) {
    // hwloc 2 always reports at least one NUMA node, but an old XML file may
    // not: then the machine is one node with every CPU.
    impl->nodes.push_back(NodeInfo{0, 0, {}, {}, 0});
    attach.push_back(nullptr);
  } else {
    for (int i = 0; i < numa_count; ++i) {
      hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
      NUMAGRID_CHECK(n != nullptr);
      impl->nodes.push_back(NodeInfo{static_cast<std::uint32_t>(i),
                                     n->os_index,
                                     {},
                                     {},
                                     n->attr->numanode.local_memory});
      attach.push_back(AttachPoint(n));
    }
  }

  for (std::size_t id = 0; id < impl->nodes.size(); ++id) {
    Result<BitmapPtr> cpus = NewBitmap();
    Result<BitmapPtr> mems = NewBitmap();
    if (!cpus.ok()) return cpus.status();
    if (!mems.ok()) return mems.status();
    hwloc_bitmap_set(mems->get(), impl->nodes[id].os_index);
    impl->cpusets.push_back(std::move(cpus).value());
    impl->nodesets.push_back(std::move(mems).value());
  }

  for (int i = 0; i < pu_count; ++i) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, i);
    NUMAGRID_CHECK(pu != nullptr);
    if (numa_count <= 0) {
      hwloc_bitmap_set(impl->cpusets[0].get(), pu->os_index);
      continue;
    }
    hwloc_obj_t local = LocalMemoryPoint(pu);
    for (std::size_t id = 0; id < impl->nodes.size(); ++id) {
      if (attach[id] == local) {
        hwloc_bitmap_set(impl->cpusets[id].get(), pu->os_index);
      }
    }
  }

  for (std::size_t id = 0; id < impl->nodes.size(); ++id) {
    hwloc_const_bitmap_t cpus = impl->cpusets[id].get();
    impl->nodes[id].cpus = BitmapToVector(cpus);
    for (int c = 0; c < core_count; ++c) {
      hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, c);
      NUMAGRID_CHECK(core != nullptr);
      if (!hwloc_bitmap_iszero(core->cpuset) &&
          hwloc_bitmap_isincluded(core->cpuset, cpus)) {
        impl->nodes[id].cores.push_back(core->logical_index);
      }
    }
  }
  return Status::Ok();
}

// Creates an hwloc topology, lets `configure` choose where it comes from,
// loads it and builds the node list. `source` is what source() reports.
template <typename Configure>
Result<std::unique_ptr<detail::TopologyImpl>> LoadImpl(std::string source,
                                                       Configure configure) {
  auto impl = std::make_unique<detail::TopologyImpl>();
  impl->source = std::move(source);
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    return IoError("hwloc_topology_init: " + ErrnoText(errno));
  }
  impl->topo.reset(raw);
  NUMAGRID_RETURN_IF_ERROR(configure(raw));
  if (hwloc_topology_load(raw) != 0) {
    const int err = errno;
    return InvalidArgument("hwloc cannot load the topology (" + impl->source +
                           "): " + ErrnoText(err));
  }
  impl->this_system = hwloc_topology_is_thissystem(raw) != 0;
  NUMAGRID_RETURN_IF_ERROR(BuildNodes(impl.get()));
  return impl;
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  });
}

}  // namespace

Topology::Topology(std::unique_ptr<detail::TopologyImpl> impl) noexcept
    : impl_(std::move(impl)) {}
Topology::Topology(Topology&& other) noexcept = default;
Topology& Topology::operator=(Topology&& other) noexcept = default;
Topology::~Topology() = default;

Result<Topology> Topology::Load() {
  const char* synthetic = std::getenv("HWLOC_SYNTHETIC");
  if (synthetic != nullptr && *synthetic != '\0') {
    Result<Topology> t = FromSynthetic(synthetic);
    if (!t.ok()) return t.status().WithContext("HWLOC_SYNTHETIC");
    return t;
  }
  const char* xml = std::getenv("HWLOC_XMLFILE");
  if (xml != nullptr && *xml != '\0') {
    Result<Topology> t = FromXmlFile(xml);
    if (!t.ok()) return t.status().WithContext("HWLOC_XMLFILE");
    return t;
  }
  Result<std::unique_ptr<detail::TopologyImpl>> impl =
      LoadImpl("system", [](hwloc_topology_t) { return Status::Ok(); });
  if (!impl.ok()) return impl.status();
  return Topology(std::move(impl).value());
}

Result<Topology> Topology::FromSynthetic(std::string_view description) {
  std::string desc(description);
  if (IsBlank(desc)) {
    return InvalidArgument("empty synthetic topology description");
  }
  if (desc.find('\0') != std::string::npos) {
    return InvalidArgument("synthetic topology description contains a NUL");
  }
  Result<std::unique_ptr<detail::TopologyImpl>> impl =
      LoadImpl("synthetic: " + desc, [&desc](hwloc_topology_t t) {
        if (hwloc_topology_set_synthetic(t, desc.c_str()) != 0) {
          return InvalidArgument("bad synthetic topology description '" + desc +
                                 "'");
        }
        return Status::Ok();
      });
  if (!impl.ok()) return impl.status();
  return Topology(std::move(impl).value());
}

Result<Topology> Topology::FromXmlFile(std::string_view path) {
  std::string p(path);
  if (p.empty() || p.find('\0') != std::string::npos) {
    return InvalidArgument("bad topology XML path '" + p + "'");
  }
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return NotFound("topology XML file '" + p + "' does not exist");
    }
    return IoError("stat '" + p + "': " + ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument("topology XML path '" + p + "' is not a file");
  }
  Result<std::unique_ptr<detail::TopologyImpl>> impl =
      LoadImpl("xml: " + p, [&p](hwloc_topology_t t) {
        if (hwloc_topology_set_xml(t, p.c_str()) != 0) {
          return InvalidArgument("'" + p +
                                 "' is not a readable hwloc XML file");
        }
        return Status::Ok();
      });
  if (!impl.ok()) return impl.status();
  return Topology(std::move(impl).value());
}

bool Topology::is_this_system() const noexcept { return impl_->this_system; }

std::string Topology::source() const { return impl_->source; }

const std::vector<NodeInfo>& Topology::nodes() const noexcept {
  return impl_->nodes;
}

std::uint32_t Topology::node_count() const noexcept {
  return static_cast<std::uint32_t>(impl_->nodes.size());
}

std::vector<std::uint32_t> Topology::NodesWithCpus() const {
  std::vector<std::uint32_t> out;
  for (const NodeInfo& n : impl_->nodes) {
    if (!n.cpus.empty()) out.push_back(n.id);
  }
  return out;
}

namespace {

Status CheckNode(std::uint32_t node_id, std::uint32_t node_count) {
  if (node_id >= node_count) {
    return InvalidArgument("node " + std::to_string(node_id) +
                           " out of range: the topology has " +
                           std::to_string(node_count) + " node(s)");
  }
  return Status::Ok();
}

std::string NodeName(const NodeInfo& n) {
  return "node " + std::to_string(n.id) + " (os node " +
         std::to_string(n.os_index) + ")";
}

}  // namespace

Result<BindOutcome> Topology::BindMemory(void* addr, std::size_t len,
                                         std::uint32_t node_id) const {
  NUMAGRID_RETURN_IF_ERROR(CheckNode(node_id, node_count()));
  if (addr == nullptr || len == 0) {
    return InvalidArgument("BindMemory: empty range");
  }
  if (!impl_->this_system) return BindOutcome::kSkippedNotThisSystem;
  // No HWLOC_MEMBIND_MIGRATE: it would make the kernel move (or, with
  // STRICT, refuse) pages that other processes have mapped, and the grid
  // binds before the first touch anyway.
  if (hwloc_set_area_membind(impl_->topo.get(), addr, len,
                             impl_->nodesets[node_id].get(), HWLOC_MEMBIND_BIND,
                             HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_STRICT) !=
      0) {
    const int err = errno;
    char where[64];
    std::snprintf(where, sizeof where, "%zu bytes at %p", len, addr);
    return IoError("binding " + std::string(where) + " to " +
                   NodeName(impl_->nodes[node_id]) +
                   ": hwloc_set_area_membind: " + ErrnoText(err));
  }
  return BindOutcome::kApplied;
}

Result<BindOutcome> Topology::Pin(std::uint32_t node_id, int hwloc_flags,
                                  std::string_view what) const {
  NUMAGRID_RETURN_IF_ERROR(CheckNode(node_id, node_count()));
  const NodeInfo& node = impl_->nodes[node_id];
  if (node.cpus.empty()) {
    return InvalidArgument("cannot pin " + std::string(what) + " to " +
                           NodeName(node) + ": it has no CPUs (memory-only)");
  }
  if (!impl_->this_system) return BindOutcome::kSkippedNotThisSystem;
  if (hwloc_set_cpubind(impl_->topo.get(), impl_->cpusets[node_id].get(),
                        hwloc_flags) != 0) {
    const int err = errno;
    return IoError("pinning " + std::string(what) + " to " + NodeName(node) +
                   ": hwloc_set_cpubind: " + ErrnoText(err));
  }
  return BindOutcome::kApplied;
}

Result<BindOutcome> Topology::PinThreadToNode(std::uint32_t node_id) const {
  return Pin(node_id, HWLOC_CPUBIND_THREAD, "the calling thread");
}

Result<BindOutcome> Topology::PinProcessToNode(std::uint32_t node_id) const {
  return Pin(node_id, HWLOC_CPUBIND_PROCESS, "the process");
}

Result<std::vector<std::uint32_t>> Topology::MemoryNodesOf(
    const void* addr, std::size_t len) const {
  if (!impl_->this_system) {
    return InvalidArgument(
        "MemoryNodesOf needs the real system's topology, "
        "not " +
        impl_->source);
  }
  if (addr == nullptr || len == 0) {
    return InvalidArgument("MemoryNodesOf: empty range");
  }
  Result<BitmapPtr> set = NewBitmap();
  if (!set.ok()) return set.status();
  if (hwloc_get_area_memlocation(impl_->topo.get(), addr, len, set->get(),
                                 HWLOC_MEMBIND_BYNODESET) != 0) {
    const int err = errno;
    return IoError("hwloc_get_area_memlocation: " + ErrnoText(err));
  }
  std::vector<std::uint32_t> ids;
  for (std::uint32_t os : BitmapToVector(set->get())) {
    auto it =
        std::find_if(impl_->nodes.begin(), impl_->nodes.end(),
                     [os](const NodeInfo& n) { return n.os_index == os; });
    if (it == impl_->nodes.end()) {
      return IoError("the kernel reports pages on os node " +
                     std::to_string(os) + ", which the topology lacks");
    }
    ids.push_back(it->id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::vector<std::uint32_t>> Topology::ThreadCpus() const {
  if (!impl_->this_system) {
    return InvalidArgument("ThreadCpus needs the real system's topology, not " +
                           impl_->source);
  }
  Result<BitmapPtr> set = NewBitmap();
  if (!set.ok()) return set.status();
  if (hwloc_get_cpubind(impl_->topo.get(), set->get(), HWLOC_CPUBIND_THREAD) !=
      0) {
    const int err = errno;
    return IoError("hwloc_get_cpubind: " + ErrnoText(err));
  }
  return BitmapToVector(set->get());
}

}  // namespace numagrid::numa
