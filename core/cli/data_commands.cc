// `numagrid put|get|del|scan|check`: data access and verification from a
// shell. Values may come from stdin ("-") for binary data.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/grid_check.h"
#include "core/grid_handle.h"
#include "core/reconcile.h"
#include "numagrid/grid.h"

namespace numagrid::cli {
namespace {

Result<Grid> AttachOrFail(const std::string& name) {
  return Grid::Attach(name);
}

int RunPut(const ParsedArgs& a) {
  auto g = AttachOrFail(a.positional()[0]);
  if (!g.ok()) return Fail("put", g.status());
  std::string value = a.positional()[2];
  if (value == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin),
                 std::istreambuf_iterator<char>());
  }
  WriteOptions o;
  if (a.Has("sync")) o.durability = Durability::kSync;
  if (a.Has("ttl")) {
    auto t = base::ParseUint(a.Get("ttl"), "--ttl", 100ULL * 365 * 86400);
    if (!t.ok()) return Fail("put", t.status());
    o.ttl_ms = *t * 1000;
  }
  auto v = g->Put(a.positional()[1], value, o);
  if (!v.ok()) return Fail("put", v.status());
  if (a.Has("json")) {
    base::JsonWriter j(false);
    j.BeginObject().Field("version", *v).EndObject();
    std::fputs(j.str().c_str(), stdout);
  }
  return 0;
}

int RunGet(const ParsedArgs& a) {
  auto g = AttachOrFail(a.positional()[0]);
  if (!g.ok()) return Fail("get", g.status());
  const std::string& key = a.positional()[1];
  std::string value;
  std::uint64_t version = 0;
  Status s = g->Get(key, &value, &version);
  if (s.code() == StatusCode::kNotFound) {
    return Fail("get", NotFound("key '" + key + "' not found in grid '" +
                                a.positional()[0] + "'"));
  }
  if (!s.ok()) return Fail("get", s);
  if (a.Has("json")) {
    base::JsonWriter j(false);
    j.BeginObject()
        .Field("key", key)
        .Field("value", value)
        .Field("version", version)
        .EndObject();
    std::fputs(j.str().c_str(), stdout);
  } else {
    std::fwrite(value.data(), 1, value.size(), stdout);
    if (!a.Has("raw")) std::fputc('\n', stdout);
  }
  return 0;
}

int RunDel(const ParsedArgs& a) {
  auto g = AttachOrFail(a.positional()[0]);
  if (!g.ok()) return Fail("del", g.status());
  const std::string& key = a.positional()[1];
  WriteOptions o;
  if (a.Has("sync")) o.durability = Durability::kSync;
  Status s = g->Remove(key, o);
  if (s.code() == StatusCode::kNotFound) {
    return Fail("del", NotFound("key '" + key + "' not found in grid '" +
                                a.positional()[0] + "'"));
  }
  return s.ok() ? 0 : Fail("del", s);
}

int RunScan(const ParsedArgs& a) {
  auto g = AttachOrFail(a.positional()[0]);
  if (!g.ok()) return Fail("scan", g.status());
  const std::string prefix = a.Get("prefix");
  std::uint64_t limit = UINT64_MAX;
  if (a.Has("limit")) {
    auto l = base::ParseUint(a.Get("limit"), "--limit");
    if (!l.ok()) return Fail("scan", l.status());
    limit = *l;
  }
  const bool json = a.Has("json");
  base::JsonWriter j;
  if (json) j.BeginObject().Key("entries").BeginArray();
  std::uint64_t n = 0;
  Status s =
      g->Scan([&](std::string_view k, std::string_view v, std::uint64_t ver) {
        if (n >= limit) return false;
        if (k.substr(0, prefix.size()) != prefix) return true;
        ++n;
        if (json) {
          j.BeginObject()
              .Field("key", k)
              .Field("value", v)
              .Field("version", ver)
              .EndObject();
        } else {
          std::fwrite(k.data(), 1, k.size(), stdout);
          std::fputc('\t', stdout);
          std::fwrite(v.data(), 1, v.size(), stdout);
          std::fputc('\n', stdout);
        }
        return true;
      });
  if (!s.ok()) return Fail("scan", s);
  if (json) {
    j.EndArray().Field("count", n).EndObject();
    std::fputs(j.str().c_str(), stdout);
  }
  return 0;
}

// --journal: live shared memory against snapshot plus journal.
Result<core::ReconcileReport> Reconcile(const std::string& name) {
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return h.status();
  return core::ReconcileWithJournal(**h, core::ReconcileOptions{});
}

void PrintReconcileText(const core::ReconcileReport& r) {
  std::printf(
      "journal: %llu live keys, %llu durable keys, %llu difference(s), %llu "
      "pending in %u partition(s) with changes not yet journaled\n",
      static_cast<unsigned long long>(r.live_keys),
      static_cast<unsigned long long>(r.journal_keys),
      static_cast<unsigned long long>(r.differences),
      static_cast<unsigned long long>(r.pending_differences),
      r.pending_partitions);
  for (const auto& d : r.listed) {
    std::printf("%s: partition %u key '%s': live %s, journal %s\n",
                d.pending ? "pending" : "difference", d.partition,
                d.key.c_str(), d.live.c_str(), d.journal.c_str());
  }
  for (const auto& t : r.dropped_tails) {
    std::printf("journal tail not replayed: %s\n", t.c_str());
  }
  for (const auto& s : r.snapshots_rejected) {
    std::printf("snapshot rejected: %s\n", s.c_str());
  }
}

int RunCheck(const ParsedArgs& a) {
  auto r = core::CheckGrid(a.positional()[0], a.Has("repair"));
  if (!r.ok()) return Fail("check", r.status());
  std::optional<core::ReconcileReport> rec;
  if (a.Has("journal")) {
    auto rr = Reconcile(a.positional()[0]);
    if (!rr.ok()) return Fail("check", rr.status().WithContext("--journal"));
    rec = std::move(*rr);
    if (rec->differences != 0) {
      r->problems.push_back(std::to_string(rec->differences) +
                            " key(s) differ from the journal");
    }
  }
  if (a.Has("json")) {
    base::JsonWriter j;
    j.BeginObject()
        .Field("grid", a.positional()[0])
        .Field("ok", r->problems.empty())
        .Field("partitions_checked", r->partitions_checked)
        .Field("partitions_repaired", r->partitions_repaired)
        .Field("live_entries", r->live_entries)
        .Field("expired_entries", r->expired_entries)
        .Field("ring_entries", r->ring_entries)
        .Field("dead_process_slots",
               static_cast<std::uint64_t>(r->dead_slots.size()))
        .Field("process_slots_repaired", r->slots_repaired)
        .Key("problems")
        .BeginArray();
    for (const auto& p : r->problems) j.String(p);
    j.EndArray();
    if (rec) {
      j.Key("journal")
          .BeginObject()
          .Field("live_keys", rec->live_keys)
          .Field("journal_keys", rec->journal_keys)
          .Field("differences", rec->differences)
          .Field("pending_differences", rec->pending_differences)
          .Field("pending_partitions", rec->pending_partitions)
          .Key("listed")
          .BeginArray();
      for (const auto& d : rec->listed) {
        j.BeginObject()
            .Field("partition", d.partition)
            .Field("key", d.key)
            .Field("live", d.live)
            .Field("journal", d.journal)
            .Field("pending", d.pending)
            .EndObject();
      }
      j.EndArray().Key("dropped_tails").BeginArray();
      for (const auto& t : rec->dropped_tails) j.String(t);
      j.EndArray().EndObject();
    }
    j.EndObject();
    std::fputs(j.str().c_str(), stdout);
  } else {
    std::printf(
        "checked %u partitions: %llu live entries (%llu expired), %llu ring "
        "entries\n",
        r->partitions_checked, static_cast<unsigned long long>(r->live_entries),
        static_cast<unsigned long long>(r->expired_entries),
        static_cast<unsigned long long>(r->ring_entries));
    std::printf("repaired %u partition(s) and %u of %zu dead process slot(s)\n",
                r->partitions_repaired, r->slots_repaired,
                r->dead_slots.size());
    if (rec) PrintReconcileText(*rec);
    for (const auto& p : r->problems) std::printf("problem: %s\n", p.c_str());
    std::printf("%s\n", r->problems.empty() ? "ok" : "FAILED");
  }
  return r->problems.empty() ? 0 : static_cast<int>(StatusCode::kCorruption);
}

}  // namespace

std::vector<CommandSpec> DataCommands() {
  return {
      {"put",
       "NAME KEY VALUE [--ttl SECONDS] [--sync]",
       "write VALUE at KEY (VALUE '-' reads it from stdin)",
       "Keys longer than the grid's --max-key and values longer than its\n"
       "--max-value are refused (exit 2) and change nothing. With --sync (or\n"
       "on a grid created with --durability sync) it returns once the change\n"
       "is on disk; if the worker does not confirm that in time it exits 12,\n"
       "and the change stays visible and is journaled later.",
       {{"ttl", "SECONDS", "the entry expires after this many seconds"},
        {"sync", "", "return once the change is durable in the journal"},
        {"json", "", "print the new version as JSON"}},
       3,
       3,
       RunPut},
      {"get",
       "NAME KEY [--json] [--raw]",
       "print the value at KEY (exit 3 if absent)",
       "",
       {{"json", "", "print key, value and version as JSON"},
        {"raw", "", "no newline after the value"}},
       2,
       2,
       RunGet},
      {"del",
       "NAME KEY [--sync]",
       "remove KEY (exit 3 if absent)",
       "",
       {{"sync", "", "return once the removal is durable in the journal"}},
       2,
       2,
       RunDel},
      {"scan",
       "NAME [--prefix P] [--limit N] [--json]",
       "list the live entries (key TAB value per line)",
       "An entry that stays live during the scan is listed exactly once.",
       {{"prefix", "P", "only keys that start with P"},
        {"limit", "N", "at most N entries"},
        {"json", "", "print as JSON"}},
       1,
       1,
       RunScan},
      {"check",
       "NAME [--repair] [--journal] [--json]",
       "verify every shared structure of a grid (exit 7 on any problem)",
       "Checks that every index slot names a valid record of its partition,\n"
       "that no record is reachable twice, that the ring entries are\n"
       "consistent, and that each partition's memory accounting adds up.\n"
       "A partition whose lock holder died is repaired on the way (any next\n"
       "writer would do the same). --repair also clears the process slots of\n"
       "attached processes that died.\n"
       "--journal also rebuilds the durable state from the snapshots and the\n"
       "journal (touching no file) and compares it key by key with what\n"
       "readers see. It waits up to 2 s for the workers to drain the rings;\n"
       "differences in a partition with changes not yet journaled are listed\n"
       "as pending and do not fail the check.",
       {{"repair", "", "clear the slots of dead processes"},
        {"journal", "", "compare the live grid with snapshot plus journal"},
        {"json", "", "print as JSON"}},
       1,
       1,
       RunCheck},
  };
}

}  // namespace numagrid::cli
