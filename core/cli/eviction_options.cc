#include "core/cli/eviction_options.h"

#include <string>

#include "core/base/units.h"

namespace numagrid::cli {
namespace {

constexpr std::string_view kNames[] = {
    "eviction",      "high-watermark", "low-watermark", "eviction-samples",
    "entries-limit", "default-ttl",    "max-idle"};

Result<std::uint32_t> Percent(const ParsedArgs& a, std::string_view name) {
  auto v = base::ParseUint(a.Get(name), "--" + std::string(name), 100);
  if (!v.ok()) return v.status();
  return static_cast<std::uint32_t>(*v);
}

// A duration in ms; "0" (or "off"/"none") switches it off.
Result<std::uint64_t> DurationMs(const ParsedArgs& a, std::string_view name) {
  const std::string text = a.Get(name);
  if (text == "off" || text == "none") return 0;
  auto us = base::ParseDurationUs(text, "--" + std::string(name));
  if (!us.ok()) return us.status();
  if (*us != 0 && *us < 1000) {
    return InvalidArgument("--" + std::string(name) +
                           " below a millisecond: '" + text + "'");
  }
  return *us / 1000;
}

}  // namespace

std::vector<OptionSpec> EvictionOptionSpecs() {
  return {
      {"eviction", "POLICY",
       "what a full grid does: none (refuse writes; the default), lru, lfu, "
       "random or ttl-first (docs/eviction.md)"},
      {"high-watermark", "PCT",
       "workers evict once memory or entries pass PCT% of the limit "
       "(default 90)"},
      {"low-watermark", "PCT", "... down to PCT% (default 80)"},
      {"eviction-samples", "N",
       "entries compared per victim, 1..64 (default 16): more is closer to "
       "exact LRU/LFU and slower"},
      {"entries-limit", "N",
       "evict to keep at most N entries (default and maximum: what the index "
       "was sized for, --max-entries)"},
      {"default-ttl", "T",
       "TTL of writes that give none, e.g. 10m (default: never expire; 0 "
       "switches it off)"},
      {"max-idle", "T",
       "an entry not read or written for T expires, e.g. 1h (default: never; "
       "0 switches it off)"},
  };
}

bool HasEvictionOptions(const ParsedArgs& a) {
  for (std::string_view n : kNames) {
    if (a.Has(n)) return true;
  }
  return false;
}

Status ParseEvictionOptions(const ParsedArgs& a, core::EvictionConfig* c) {
  if (a.Has("eviction")) {
    auto p = core::ParseEvictionPolicy(a.Get("eviction"));
    if (!p.ok()) return p.status().WithContext("--eviction");
    c->policy = *p;
  }
  if (a.Has("high-watermark")) {
    auto v = Percent(a, "high-watermark");
    if (!v.ok()) return v.status();
    c->high_watermark_pct = *v;
  }
  if (a.Has("low-watermark")) {
    auto v = Percent(a, "low-watermark");
    if (!v.ok()) return v.status();
    c->low_watermark_pct = *v;
  }
  if (a.Has("eviction-samples")) {
    auto v = base::ParseUint(a.Get("eviction-samples"), "--eviction-samples",
                             core::kMaxEvictionSamples);
    if (!v.ok()) return v.status();
    c->samples = static_cast<std::uint32_t>(*v);
  }
  if (a.Has("entries-limit")) {
    auto v = base::ParseUint(a.Get("entries-limit"), "--entries-limit");
    if (!v.ok()) return v.status();
    c->max_entries = *v;
  }
  if (a.Has("default-ttl")) {
    auto v = DurationMs(a, "default-ttl");
    if (!v.ok()) return v.status();
    c->default_ttl_ms = *v;
  }
  if (a.Has("max-idle")) {
    auto v = DurationMs(a, "max-idle");
    if (!v.ok()) return v.status();
    c->max_idle_ms = *v;
  }
  return Status::Ok();
}

}  // namespace numagrid::cli
