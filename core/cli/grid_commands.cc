// `numagrid create|destroy|info|list`: the lifecycle of a grid's segments.
#include <cstdio>
#include <string>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/grid_admin.h"
#include "numa/topology.h"

namespace numagrid::cli {
namespace {

using base::JsonWriter;

std::string JoinIds(const std::vector<std::uint32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

// Turns runs such as 0,2,4,6 into "0,2,4,6" and 0..31 into "0-31".
std::string CompactIds(const std::vector<std::uint32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ',';
    s += std::to_string(ids[i]);
    if (j > i) s += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return s;
}

int RunCreate(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  core::CreateOptions o;
  if (a.Has("partitions")) {
    auto p = base::ParseUint(a.Get("partitions"), "--partitions", UINT32_MAX);
    if (!p.ok()) return Fail("create", p.status());
    o.partitions = static_cast<std::uint32_t>(*p);
  }
  if (a.Has("memory")) {
    auto m = base::ParseSize(a.Get("memory"));
    if (!m.ok()) return Fail("create", m.status().WithContext("--memory"));
    o.memory_bytes = *m;
  }
  if (a.Has("max-key")) {
    auto k = base::ParseSize(a.Get("max-key"));
    if (!k.ok() || *k > UINT32_MAX) {
      return Fail("create",
                  InvalidArgument("bad --max-key '" + a.Get("max-key") + "'"));
    }
    o.max_key_bytes = static_cast<std::uint32_t>(*k);
  }
  if (a.Has("max-value")) {
    auto v = base::ParseSize(a.Get("max-value"));
    if (!v.ok() || *v > UINT32_MAX) {
      return Fail("create", InvalidArgument("bad --max-value '" +
                                            a.Get("max-value") + "'"));
    }
    o.max_value_bytes = static_cast<std::uint32_t>(*v);
  }
  if (a.Has("group")) o.group = a.Get("group");
  o.bind = !a.Has("no-bind");
  o.prefault = !a.Has("no-prefault");

  auto topo = numa::Topology::Load();
  if (!topo.ok()) return Fail("create", topo.status());
  auto r = core::CreateGrid(name, o, *topo);
  if (!r.ok()) return Fail("create", r.status());
  if (a.Has("json")) {
    JsonWriter j;
    j.BeginObject()
        .Field("name", name)
        .Field("nodes", r->node_count)
        .Field("partitions", o.partitions)
        .Field("bound", r->all_bound)
        .Field("topology", r->topology_source)
        .EndObject();
    std::fputs(j.str().c_str(), stdout);
    return 0;
  }
  std::printf("created grid '%s': %u partitions on %u NUMA node(s), %s\n",
              name.c_str(), o.partitions, r->node_count,
              base::FormatSize(o.memory_bytes).c_str());
  if (!r->all_bound) {
    std::printf("note: data segments are not bound to their nodes (%s)\n",
                !o.bind ? "--no-bind"
                        : ("topology is " + r->topology_source +
                           ", not this system: binding skipped")
                              .c_str());
  }
  return 0;
}

int RunDestroy(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  Status s = core::DestroyGrid(name);
  if (!s.ok()) return Fail("destroy", s);
  if (!a.Has("quiet")) std::printf("destroyed grid '%s'\n", name.c_str());
  return 0;
}

void PrintInfoJson(const core::GridReport& r) {
  JsonWriter j;
  j.BeginObject()
      .Field("name", r.name)
      .Field("grid_id", r.grid_id)
      .Field("control_segment", r.control_segment)
      .Field("control_layout_version", r.control_layout_version)
      .Field("data_layout_version", r.data_layout_version)
      .Field("created_unix_ns", r.created_unix_ns)
      .Field("owner_uid", r.owner_uid)
      .Field("gid", r.gid)
      .Field("mode", "0" + std::to_string((r.mode >> 6) & 7) +
                         std::to_string((r.mode >> 3) & 7) +
                         std::to_string(r.mode & 7))
      .Field("partitions", r.partition_count)
      .Field("memory_bytes", r.memory_bytes)
      .Field("max_key_bytes", r.max_key_bytes)
      .Field("max_value_bytes", r.max_value_bytes)
      .Field("prefaulted", r.prefaulted)
      .Field("topology", r.topology_source)
      .Key("nodes")
      .BeginArray();
  for (const auto& n : r.nodes) {
    j.BeginObject()
        .Field("id", n.node_id)
        .Field("os_index", n.os_index)
        .Field("segment", n.segment_name)
        .Field("segment_bytes", n.segment_bytes)
        .Field("bound", n.bound)
        .Key("resident_nodes")
        .BeginArray();
    for (auto id : n.resident_nodes) j.Uint(id);
    j.EndArray().Key("partitions").BeginArray();
    for (auto p : n.partitions) j.Uint(p);
    j.EndArray().EndObject();
  }
  j.EndArray().EndObject();
  std::fputs(j.str().c_str(), stdout);
}

int RunInfo(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  auto topo = numa::Topology::Load();
  auto r = core::InspectGrid(name, topo.ok() ? &*topo : nullptr);
  if (!r.ok()) return Fail("info", r.status());
  if (a.Has("json")) {
    PrintInfoJson(*r);
    return 0;
  }
  std::printf("grid        %s (id %016llx)\n", r->name.c_str(),
              static_cast<unsigned long long>(r->grid_id));
  std::printf("control     /dev/shm/%s (layout v%u)\n",
              r->control_segment.c_str(), r->control_layout_version);
  std::printf(
      "partitions  %u\nmemory      %s\nlimits      key %u B, value %s\n",
      r->partition_count, base::FormatSize(r->memory_bytes).c_str(),
      r->max_key_bytes, base::FormatSize(r->max_value_bytes).c_str());
  std::printf("access      mode %03o, owner uid %u, gid %u\n", r->mode,
              r->owner_uid, r->gid);
  std::printf("topology    %s\n\n", r->topology_source.c_str());
  std::printf("%-5s %-28s %10s %-6s %-9s %s\n", "node", "segment", "size",
              "bound", "pages on", "partitions");
  for (const auto& n : r->nodes) {
    std::printf(
        "%-5u %-28s %10s %-6s %-9s %s\n", n.node_id, n.segment_name.c_str(),
        base::FormatSize(n.segment_bytes).c_str(), n.bound ? "yes" : "no",
        n.resident_nodes.empty() ? "-" : JoinIds(n.resident_nodes).c_str(),
        CompactIds(n.partitions).c_str());
  }
  return 0;
}

int RunList(const ParsedArgs& a) {
  auto grids = core::ListGrids();
  if (a.Has("json")) {
    JsonWriter j;
    j.BeginObject().Key("grids").BeginArray();
    for (const auto& g : grids) {
      j.BeginObject().Field("name", g.name).Field("complete", g.complete);
      if (!g.complete) j.Field("problem", g.problem);
      j.EndObject();
    }
    j.EndArray().EndObject();
    std::fputs(j.str().c_str(), stdout);
    return 0;
  }
  for (const auto& g : grids) {
    if (g.complete) {
      std::printf("%s\n", g.name.c_str());
    } else {
      std::printf("%s\tincomplete: %s\n", g.name.c_str(), g.problem.c_str());
    }
  }
  return 0;
}

}  // namespace

std::vector<CommandSpec> GridCommands() {
  return {
      {"create",
       "NAME [--partitions P] [--memory SIZE] [--group G] [--max-key N] "
       "[--max-value SIZE] [--json]",
       "create a grid: a control segment and one data segment per NUMA node",
       "Partitions are spread evenly over the NUMA nodes (partition p on node\n"
       "p mod nodes). Each data segment is bound to its node's memory before\n"
       "its first byte is touched, then prefaulted. Segments are mode 0600,\n"
       "or 0660 owned by group G with --group. Fails, leaving nothing behind,\n"
       "if the grid exists (exit 4) or an option is bad (exit 2).\n"
       "HWLOC_SYNTHETIC / HWLOC_XMLFILE describe another machine: the layout\n"
       "follows it and binding is skipped.",
       {{"partitions", "P", "number of partitions, 1..65536 (default 64)"},
        {"memory", "SIZE",
         "data memory of all nodes together, e.g. 1GiB "
         "(default 256MiB)"},
        {"group", "G", "let group G read and write the grid (mode 0660)"},
        {"max-key", "N", "largest key in bytes (default 250)"},
        {"max-value", "SIZE", "largest value (default 1MiB)"},
        {"no-prefault", "", "do not touch the pages at create"},
        {"no-bind", "", "testing only: do not bind segments to their nodes",
         true},
        {"json", "", "print the result as JSON"}},
       1,
       1,
       RunCreate},
      {"destroy",
       "NAME",
       "remove every segment of a grid, complete or not",
       "Processes still attached keep their mappings until they detach.",
       {{"quiet", "", "print nothing on success"}},
       1,
       1,
       RunDestroy},
      {"info",
       "NAME [--json]",
       "describe a grid: nodes, partitions, segments, sizes and binding",
       "'pages on' lists the nodes that hold each data segment's pages now,\n"
       "as the kernel reports them.",
       {{"json", "", "print as JSON"}},
       1,
       1,
       RunInfo},
      {"list",
       "[--json]",
       "list the grids on this host",
       "",
       {{"json", "", "print as JSON"}},
       0,
       0,
       RunList},
  };
}

}  // namespace numagrid::cli
