// `numagrid config NAME`: shows or changes a grid's eviction and expiry
// settings while it runs.
#include <cstdio>
#include <string>

#include "core/base/json_writer.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/cli/eviction_options.h"
#include "core/grid_config.h"

namespace numagrid::cli {
namespace {

std::string Ms(std::uint64_t ms) {
  return ms == 0 ? "off" : std::to_string(ms) + "ms";
}

int RunConfig(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  auto current = core::ReadEvictionConfig(name);
  if (!current.ok()) return Fail("config", current.status());
  core::EvictionConfig c = *current;
  if (HasEvictionOptions(a)) {
    if (Status s = ParseEvictionOptions(a, &c); !s.ok()) {
      return Fail("config", s);
    }
    if (Status s = core::ChangeEvictionConfig(name, c); !s.ok()) {
      return Fail("config", s);
    }
    auto now = core::ReadEvictionConfig(name);
    if (!now.ok()) return Fail("config", now.status());
    c = *now;
  }
  if (a.Has("json")) {
    base::JsonWriter j;
    j.BeginObject()
        .Field("name", name)
        .Field("eviction", core::EvictionPolicyName(c.policy))
        .Field("high_watermark_pct", c.high_watermark_pct)
        .Field("low_watermark_pct", c.low_watermark_pct)
        .Field("eviction_samples", c.samples)
        .Field("entries_limit", c.max_entries)
        .Field("default_ttl_ms", c.default_ttl_ms)
        .Field("max_idle_ms", c.max_idle_ms)
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf(
      "grid %s\n"
      "  eviction          %s\n"
      "  watermarks        %u%% high, %u%% low\n"
      "  eviction samples  %u\n"
      "  entries limit     %llu\n"
      "  default ttl       %s\n"
      "  max idle          %s\n",
      name.c_str(), std::string(core::EvictionPolicyName(c.policy)).c_str(),
      c.high_watermark_pct, c.low_watermark_pct, c.samples,
      static_cast<unsigned long long>(c.max_entries),
      Ms(c.default_ttl_ms).c_str(), Ms(c.max_idle_ms).c_str());
  return 0;
}

}  // namespace

std::vector<CommandSpec> ConfigCommands() {
  std::vector<CommandSpec> commands = {
      {"config",
       "NAME [--eviction POLICY] [--high-watermark PCT] [--low-watermark PCT] "
       "[--eviction-samples N] [--entries-limit N] [--default-ttl T] "
       "[--max-idle T] [--json]",
       "show or change a grid's eviction and expiry settings",
       "Without options, prints the settings in force. With options, changes\n"
       "those given, while the grid runs: every process uses them from its\n"
       "next operation. A journaled grid's manifest is updated first, so a\n"
       "recovered grid keeps them. Bad values change nothing (exit 2).\n"
       "Policies (docs/eviction.md): none refuses writes to a full grid;\n"
       "lru and lfu evict the least recently / frequently used of a sample;\n"
       "random any entry; ttl-first expired entries, then the soonest to\n"
       "expire, then the least recently used of those without a TTL.",
       {},
       1,
       1,
       RunConfig},
  };
  commands[0].options = EvictionOptionSpecs();
  commands[0].options.push_back({"json", "", "print the settings as JSON"});
  return commands;
}

}  // namespace numagrid::cli
