// `numagrid create|destroy|info|list`: the lifecycle of a grid's segments.
#include <cstdio>
#include <string>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/cli/eviction_options.h"
#include "core/grid_admin.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
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
  if (a.Has("workers-per-node")) {
    // Range-checked by CreateGrid (1..8, and 1 without a journal).
    auto k = base::ParseUint(a.Get("workers-per-node"), "--workers-per-node",
                             UINT32_MAX);
    if (!k.ok()) return Fail("create", k.status());
    o.workers_per_node = static_cast<std::uint32_t>(*k);
  }
  if (a.Has("no-journal")) {
    for (const char* opt :
         {"journal-dir", "durability", "flush-interval", "journal-segment-size",
          "sync-wait", "snapshot-every", "workers-per-node"}) {
      if (a.Has(opt)) {
        return Fail("create", InvalidArgument(std::string("--") + opt +
                                              " contradicts --no-journal"));
      }
    }
  } else {
    o.journal_dir = a.Get("journal-dir", core::DefaultJournalDir(name));
    const std::string d = a.Get("durability", "async");
    if (d == "sync") {
      o.durability = core::kDurabilitySync;
    } else if (d != "async") {
      return Fail("create", InvalidArgument("--durability must be async or "
                                            "sync, got '" +
                                            d + "'"));
    }
    if (a.Has("flush-interval")) {
      auto us =
          base::ParseDurationUs(a.Get("flush-interval"), "--flush-interval");
      if (!us.ok()) return Fail("create", us.status());
      if (*us > UINT32_MAX) {
        return Fail("create", InvalidArgument("--flush-interval too long"));
      }
      o.flush_interval_us = static_cast<std::uint32_t>(*us);
    }
    if (a.Has("journal-segment-size")) {
      auto b = base::ParseSize(a.Get("journal-segment-size"));
      if (!b.ok()) {
        return Fail("create", b.status().WithContext("--journal-segment-size"));
      }
      o.journal_segment_bytes = *b;
    }
    if (a.Has("sync-wait")) {
      auto us = base::ParseDurationUs(a.Get("sync-wait"), "--sync-wait");
      if (!us.ok()) return Fail("create", us.status());
      if (*us / 1000 > UINT32_MAX) {
        return Fail("create", InvalidArgument("--sync-wait too long"));
      }
      o.sync_wait_ms = static_cast<std::uint32_t>(*us / 1000);
    }
    if (a.Has("snapshot-every")) {
      auto b = base::ParseSize(a.Get("snapshot-every"));
      if (!b.ok())
        return Fail("create", b.status().WithContext("--snapshot-every"));
      o.snapshot_bytes = *b;
    }
    if (a.Has("snapshot-interval")) {
      auto us = base::ParseDurationUs(a.Get("snapshot-interval"),
                                      "--snapshot-interval");
      if (!us.ok()) return Fail("create", us.status());
      if (*us / 1'000'000 > UINT32_MAX) {
        return Fail("create", InvalidArgument("--snapshot-interval too long"));
      }
      o.snapshot_interval_s = static_cast<std::uint32_t>(*us / 1'000'000);
    }
  }
  o.bind = !a.Has("no-bind");
  o.prefault = !a.Has("no-prefault");
  o.stats = !a.Has("no-stats");
  if (a.Has("max-entries")) {
    auto n = base::ParseUint(a.Get("max-entries"), "--max-entries");
    if (!n.ok()) return Fail("create", n.status());
    if (*n == 0) {
      return Fail("create",
                  InvalidArgument("--max-entries must be at least 1"));
    }
    o.max_entries = *n;
  }
  if (Status s = ParseEvictionOptions(a, &o.eviction); !s.ok()) {
    return Fail("create", s);
  }

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
        .Field("journal_dir", o.journal_dir)
        .Field("durability",
               o.journal_dir.empty()
                   ? "none"
                   : (o.durability == core::kDurabilitySync ? "sync" : "async"))
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
  if (o.journal_dir.empty()) {
    std::printf("journal: none (memory only: nothing survives the segments)\n");
  } else {
    std::printf(
        "journal: %s, %s durability; `numagrid start %s` runs its journal "
        "workers\n",
        o.journal_dir.c_str(),
        o.durability == core::kDurabilitySync ? "sync" : "async", name.c_str());
  }
  return 0;
}

int RunDestroy(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  // Where the journal is: given, or the grid's, or the default.
  std::string dir = a.Get("journal-dir");
  if (dir.empty()) {
    auto info = core::InspectGrid(name, nullptr);
    if (info.ok()) {
      dir = info->journal_dir;
    } else {
      dir = core::DefaultJournalDir(name);
    }
  }
  const bool has_journal = !dir.empty() && core::ReadManifest(dir).ok();
  Status s = core::DestroyGrid(name);
  if (!s.ok() &&
      !(a.Has("purge") && s.code() == StatusCode::kNotFound && has_journal)) {
    return Fail("destroy", s);
  }
  if (s.ok() && !a.Has("quiet")) {
    std::printf("destroyed grid '%s'\n", name.c_str());
  }
  if (a.Has("purge")) {
    if (has_journal) {
      Status p = core::PurgeJournalDir(dir, name);
      if (!p.ok()) return Fail("destroy", p);
      if (!a.Has("quiet")) std::printf("deleted journal %s\n", dir.c_str());
    }
  } else if (has_journal && !a.Has("quiet")) {
    std::printf(
        "journal kept in %s: `numagrid recover %s` rebuilds the grid, "
        "`numagrid destroy %s --purge` deletes it\n",
        dir.c_str(), name.c_str(), name.c_str());
  }
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
      .Field("journal_dir", r.journal_dir)
      .Field("durability", r.durability)
      .Field("flush_interval_us", r.flush_interval_us)
      .Field("workers_per_node", r.workers_per_node)
      .Field("recovering", r.recovering)
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
  std::printf("topology    %s\n", r->topology_source.c_str());
  if (r->journal_dir.empty()) {
    std::printf("journal     none (memory only)\n");
  } else {
    std::printf("journal     %s, %s, flush every %.3g ms%s\n",
                r->journal_dir.c_str(), r->durability.c_str(),
                r->flush_interval_us / 1000.0,
                r->recovering ? " (being recovered)" : "");
    if (r->workers_per_node != 1) {
      std::printf("workers     %u per node, each with its own journal stream\n",
                  r->workers_per_node);
    }
  }
  std::printf("\n");
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
  std::vector<CommandSpec> commands = {
      {"create",
       "NAME [--partitions P] [--memory SIZE] [--group G] [--max-key N] "
       "[--max-value SIZE] [--journal-dir DIR | --no-journal] "
       "[--durability async|sync] [--flush-interval T] [--eviction POLICY] "
       "[--json]",
       "create a grid: a control segment and one data segment per NUMA node",
       "Partitions are spread evenly over the NUMA nodes (partition p on node\n"
       "p mod nodes). Each data segment is bound to its node's memory before\n"
       "its first byte is touched, then prefaulted. Segments are mode 0600,\n"
       "or 0660 owned by group G with --group. Fails, leaving nothing behind,\n"
       "if the grid exists (exit 4) or an option is bad (exit 2).\n"
       "HWLOC_SYNTHETIC / HWLOC_XMLFILE describe another machine: the layout\n"
       "follows it and binding is skipped.\n"
       "Every change is journaled by a worker per node (`numagrid worker\n"
       "NAME`) into DIR (default /var/lib/numagrid/NAME), which also gets\n"
       "the manifest `recover` rebuilds the grid from. async: a write returns\n"
       "once visible and is durable within the flush interval (the most a\n"
       "host crash can lose); sync: a write returns once its journal record\n"
       "is on disk. A directory that holds another grid's journal is\n"
       "refused (exit 4).\n"
       "--memory bounds the records' memory; the index and change rings come\n"
       "on top (`info` shows each segment's size). With --eviction other\n"
       "than none, the workers evict between the watermarks and a writer\n"
       "that still finds no room evicts a few entries of its partition\n"
       "itself (docs/eviction.md); `numagrid config` changes these later.",
       {{"partitions", "P", "number of partitions, 1..65536 (default 64)"},
        {"memory", "SIZE",
         "data memory of all nodes together, e.g. 1GiB "
         "(default 256MiB)"},
        {"group", "G", "let group G read and write the grid (mode 0660)"},
        {"max-key", "N", "largest key in bytes (default 250)"},
        {"max-value", "SIZE", "largest value (default 1MiB)"},
        {"journal-dir", "DIR",
         "journal directory (default /var/lib/numagrid/NAME)"},
        {"no-journal", "", "memory only: no journal, nothing is durable"},
        {"durability", "MODE",
         "async (default: durable within the flush interval) or sync "
         "(durable on return); a write may override it"},
        {"flush-interval", "T",
         "async: how often the worker makes changes durable (default 10ms)"},
        {"journal-segment-size", "SIZE",
         "journal files roll over at this size (default 64MiB)"},
        {"sync-wait", "T",
         "a sync write waits this long for durability, then exits 12 "
         "(default 5s)"},
        {"snapshot-every", "SIZE",
         "the worker snapshots its node after this much journal (default "
         "256MiB; 0: not by size)"},
        {"snapshot-interval", "T",
         "the worker also snapshots its node this often when anything was "
         "journaled, e.g. 15m (default: not by time)"},
        {"workers-per-node", "K",
         "journal streams per node, each written by a worker of its own, "
         "1..8 (default 1); fixed for the grid's life (docs/runbooks/"
         "scaling.md)"},
        {"no-prefault", "", "do not touch the pages at create"},
        {"no-stats", "",
         "keep no monitoring counters on the data path (docs/monitoring.md)"},
        {"no-bind", "", "testing only: do not bind segments to their nodes",
         true},
        {"max-entries", "N",
         "size the index for N entries (default: --memory / 128 bytes); a "
         "full index refuses new keys, or evicts with --eviction"},
        {"json", "", "print the result as JSON"}},
       1,
       1,
       RunCreate},
      {"destroy",
       "NAME [--purge] [--journal-dir DIR] [--quiet]",
       "remove every segment of a grid, complete or not",
       "Processes still attached keep their mappings until they detach.\n"
       "The journal directory stays, so `numagrid recover NAME` can rebuild\n"
       "the grid, unless --purge deletes it too (also when the segments are\n"
       "already gone). Stop the grid's workers first.",
       {{"purge", "", "also delete the grid's journal, snapshots and manifest"},
        {"journal-dir", "DIR",
         "the journal directory, when the grid's segments are gone and it "
         "is not the default /var/lib/numagrid/NAME"},
        {"quiet", "", "print nothing on success"}},
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
  // create's eviction options, shared with `config`, before its --json.
  std::vector<OptionSpec>& create = commands[0].options;
  const std::vector<OptionSpec> eviction = EvictionOptionSpecs();
  create.insert(create.end() - 1, eviction.begin(), eviction.end());
  return commands;
}

}  // namespace numagrid::cli
