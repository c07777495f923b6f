// `numagrid copy SRC DST`: copies every live entry of one grid into another,
// the way to move data into a grid re-created with another number of
// partitions or another memory size (docs/runbooks/scaling.md). Entries are
// read from SRC with their absolute expiry and written to DST through the
// public API with the time they have left, so a copy keeps what remains of
// each TTL (never extends it).
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/grid_handle.h"
#include "core/partition.h"
#include "numagrid/grid.h"

namespace numagrid::cli {
namespace {

struct CopyReport {
  std::uint64_t copied = 0;
  std::uint64_t bytes = 0;  // key and value bytes written to DST
  std::uint64_t with_ttl = 0;
  std::uint64_t expired = 0;  // expired between the scan and the write
};

int RunCopy(const ParsedArgs& a) {
  const std::string& src_name = a.positional()[0];
  const std::string& dst_name = a.positional()[1];
  if (src_name == dst_name) {
    return Fail("copy", InvalidArgument("SRC and DST are both grid '" +
                                        src_name + "': nothing to copy"));
  }
  const std::string prefix = a.Get("prefix");
  auto src = core::GridHandle::Attach(src_name);
  if (!src.ok()) {
    return Fail("copy",
                src.status().WithContext("source grid '" + src_name + "'"));
  }
  auto dst = Grid::Attach(dst_name);
  if (!dst.ok()) {
    return Fail("copy", dst.status().WithContext("destination grid '" +
                                                 dst_name + "'"));
  }
  WriteOptions wo;
  if (a.Has("sync")) wo.durability = Durability::kSync;

  CopyReport r;
  Status error;
  std::string failed_key;
  for (std::uint32_t p = 0; p < (*src)->partition_count() && error.ok(); ++p) {
    // The pin keeps every record the scan visits allocated until it ends.
    core::GridHandle::EpochGuard pin(**src);
    (*src)->partition(p).Scan(
        [&](const core::RecordView& rec) {
          if (!rec.key().starts_with(prefix)) return true;
          WriteOptions o = wo;
          if (const std::uint64_t at = rec.expire_at_ms(); at != 0) {
            const std::uint64_t now = core::NowMs();
            if (at <= now) {
              ++r.expired;
              return true;
            }
            o.ttl_ms = at - now;
            ++r.with_ttl;
          }
          auto v = dst->Put(rec.key(), rec.value(), o);
          if (!v.ok()) {
            error = v.status();
            failed_key = std::string(rec.key());
            return false;
          }
          ++r.copied;
          r.bytes += rec.key().size() + rec.value().size();
          return true;
        },
        core::NowMs());
  }
  if (!error.ok()) {
    return Fail("copy", error.WithContext(
                            "writing key '" + failed_key + "' to grid '" +
                            dst_name + "' after " + std::to_string(r.copied) +
                            " entries (those stay in DST)"));
  }
  // Every entry copied is durable in DST's journal before we say so.
  if (!a.Has("no-flush")) {
    Status s = dst->Flush();
    if (!s.ok()) {
      return Fail("copy",
                  s.WithContext("copied " + std::to_string(r.copied) +
                                " entries, but DST did not confirm them "
                                "durable (does its watchdog run?)"));
    }
  }
  if (a.Has("json")) {
    base::JsonWriter j;
    j.BeginObject()
        .Field("source", src_name)
        .Field("destination", dst_name)
        .Field("copied", r.copied)
        .Field("bytes", r.bytes)
        .Field("with_ttl", r.with_ttl)
        .Field("expired_skipped", r.expired)
        .EndObject();
    std::fputs(j.str().c_str(), stdout);
  } else if (!a.Has("quiet")) {
    std::printf(
        "copied %llu entries (%s, %llu with a TTL) from grid '%s' to grid "
        "'%s'; %llu expired meanwhile and were skipped\n",
        static_cast<unsigned long long>(r.copied),
        base::FormatSize(r.bytes).c_str(),
        static_cast<unsigned long long>(r.with_ttl), src_name.c_str(),
        dst_name.c_str(), static_cast<unsigned long long>(r.expired));
  }
  return 0;
}

}  // namespace

std::vector<CommandSpec> CopyCommands() {
  return {
      {"copy",
       "SRC DST [--prefix P] [--sync] [--no-flush] [--json] [--quiet]",
       "copy every live entry of grid SRC into grid DST (which must exist)",
       "For moving data into a grid re-created with other partitions or\n"
       "memory: create DST, start its watchdog, stop the writers of SRC,\n"
       "then copy. Each entry is written to DST as a put (an existing key is\n"
       "overwritten) and keeps the time its TTL has left; an entry that\n"
       "expires meanwhile is skipped. Versions are DST's own. SRC is only\n"
       "read; an entry that stays live during the copy is copied once.\n"
       "Then waits until everything copied is durable in DST's journal\n"
       "(exit 12 if DST's worker does not confirm it; the entries stay).\n"
       "A key or value too large for DST exits 2 and a full DST exits 8,\n"
       "naming the key; what was copied before stays in DST.",
       {{"prefix", "P", "only keys that start with P"},
        {"sync", "", "write each entry with sync durability"},
        {"no-flush", "", "do not wait until the copy is durable"},
        {"json", "", "print the result as JSON"},
        {"quiet", "", "print nothing on success"}},
       2,
       2,
       RunCopy},
  };
}

}  // namespace numagrid::cli
