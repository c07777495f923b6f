// `numagrid topology`: what hwloc sees, and where `create` would put the
// partitions.
#include <cstdio>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "io/uring_probe.h"
#include "numa/placement.h"
#include "numa/topology.h"

namespace numagrid::cli {
namespace {

void PrintIdArray(base::JsonWriter& j, const std::vector<std::uint32_t>& ids) {
  j.BeginArray();
  for (auto id : ids) j.Uint(id);
  j.EndArray();
}

std::string Join(const std::vector<std::uint32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s.empty() ? "-" : s;
}

int RunTopology(const ParsedArgs& a) {
  std::uint32_t partitions = 64;
  if (a.Has("partitions")) {
    auto p = base::ParseUint(a.Get("partitions"), "--partitions", 65536);
    if (!p.ok() || *p == 0) {
      return Fail("topology",
                  InvalidArgument("--partitions must be in [1, 65536]"));
    }
    partitions = static_cast<std::uint32_t>(*p);
  }
  auto topo = numa::Topology::Load();
  if (!topo.ok()) return Fail("topology", topo.status());
  auto placement = numa::PlacePartitions(partitions, topo->node_count());
  if (!placement.ok()) return Fail("topology", placement.status());

  const io::UringSupport uring = io::ProbeUring();
  if (a.Has("json")) {
    base::JsonWriter j;
    j.BeginObject()
        .Field("source", topo->source())
        .Field("this_system", topo->is_this_system())
        .Key("nodes")
        .BeginArray();
    for (const auto& n : topo->nodes()) {
      j.BeginObject()
          .Field("id", n.id)
          .Field("os_index", n.os_index)
          .Field("memory_bytes", n.memory_bytes)
          .Key("cores");
      PrintIdArray(j, n.cores);
      j.Key("cpus");
      PrintIdArray(j, n.cpus);
      j.EndObject();
    }
    j.EndArray().Key("placement").BeginObject().Field("partitions", partitions);
    j.Key("nodes").BeginArray();
    for (std::uint32_t n = 0; n < topo->node_count(); ++n) {
      j.BeginObject().Field("id", n).Key("partitions");
      PrintIdArray(j, placement->partitions_of_node[n]);
      j.EndObject();
    }
    j.EndArray().EndObject();
    j.Key("io_uring")
        .BeginObject()
        .Field("available", uring.available)
        .Field("detail", uring.detail)
        .EndObject();
    j.EndObject();
    std::fputs(j.str().c_str(), stdout);
    return 0;
  }
  std::printf("topology: %s%s\n", topo->source().c_str(),
              topo->is_this_system() ? ""
                                     : " (not this system: binding and "
                                       "pinning are skipped)");
  std::printf("%-5s %-8s %-10s %-20s %s\n", "node", "os node", "memory",
              "cores", "cpus");
  for (const auto& n : topo->nodes()) {
    std::printf("%-5u %-8u %-10s %-20s %s\n", n.id, n.os_index,
                n.memory_bytes ? base::FormatSize(n.memory_bytes).c_str() : "?",
                Join(n.cores).c_str(), Join(n.cpus).c_str());
  }
  std::printf("\nplacement of %u partitions (partition p on node p mod %u):\n",
              partitions, topo->node_count());
  for (std::uint32_t n = 0; n < topo->node_count(); ++n) {
    std::printf("  node %u: %zu partitions\n", n,
                placement->partitions_of_node[n].size());
  }
  std::printf("\nio_uring (for the journal): %s\n",
              uring.available ? uring.detail.c_str()
                              : ("unavailable: " + uring.detail).c_str());
  return 0;
}

}  // namespace

std::vector<CommandSpec> TopologyCommands() {
  return {{"topology",
           "[--partitions P] [--json]",
           "show the NUMA nodes hwloc sees and the placement create would "
           "choose",
           "Honours HWLOC_SYNTHETIC (e.g. \"pack:2 numa:1 core:2 pu:1\") and\n"
           "HWLOC_XMLFILE, to show the layout of another machine.",
           {{"partitions", "P", "partitions to place (default 64)"},
            {"json", "", "print as JSON"}},
           0,
           0,
           RunTopology}};
}

}  // namespace numagrid::cli
