// `numagrid stats`: a grid's monitoring counters as a table, JSON or
// Prometheus text (docs/monitoring.md), once or every --watch seconds.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/grid_handle.h"
#include "core/prometheus_format.h"
#include "core/stats.h"

namespace numagrid::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStatsStop(int) {
  // relaxed: a flag polled by the --watch loop.
  g_stop.store(true, std::memory_order_relaxed);
}

using core::GridStatsReport;
using core::HistogramReading;

double HitRate(std::uint64_t hits, std::uint64_t misses) {
  return hits + misses == 0
             ? 0.0
             : static_cast<double>(hits) / static_cast<double>(hits + misses);
}

// "97.5%", or "-" without gets.
std::string Percent(std::uint64_t hits, std::uint64_t misses) {
  if (hits + misses == 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * HitRate(hits, misses));
  return buf;
}

void JsonOps(base::JsonWriter& j, const core::OpCounts& o) {
  j.Field("get_hits", o.hits)
      .Field("get_misses", o.misses)
      .Field("puts", o.puts)
      .Field("removes", o.removes)
      .Field("cas_failures", o.cas_failures)
      .Field("write_errors", o.write_errors)
      .Field("backpressure_waits", o.backpressure_waits)
      .Field("backpressure_wait_ns", o.backpressure_wait_ns);
}

void JsonHistogram(base::JsonWriter& j, std::string_view key,
                   const HistogramReading& h) {
  j.Key(key).BeginObject().Field("count", h.count).Field("sum", h.sum);
  j.Field("unit_seconds", h.unit_seconds).Key("buckets").BeginArray();
  for (std::uint64_t b : h.buckets) j.Uint(b);
  j.EndArray().EndObject();
}

std::string Json(const GridStatsReport& r) {
  base::JsonWriter j;
  j.BeginObject()
      .Field("name", r.name)
      .Field("stats_enabled", r.stats_enabled)
      .Field("ring_capacity", r.ring_capacity)
      .Field("hit_rate", HitRate(r.totals.hits, r.totals.misses))
      .Field("reads_per_partition", r.reads_per_partition)
      .Key("totals")
      .BeginObject();
  JsonOps(j, r.totals);
  j.EndObject().Key("nodes").BeginArray();
  for (const auto& n : r.nodes) {
    j.BeginObject()
        .Field("node", n.node)
        .Field("entries", n.entries)
        .Field("get_hits", n.hits)
        .Field("get_misses", n.misses)
        .Field("hit_rate", HitRate(n.hits, n.misses))
        .Field("used_bytes", n.used_bytes)
        .Field("free_bytes", n.free_bytes)
        .Field("ring_depth", n.ring_depth)
        .Field("ring_high_water", n.ring_high_water)
        .Field("journal_lag_records", n.lag_records)
        .Field("journal_lag_bytes", n.lag_bytes)
        .Field("journal_lag_last_ms", n.lag_last_ms)
        .Field("journal_lag_max_ms", n.lag_max_ms)
        .Field("journal_records", n.journal_records)
        .Field("journal_bytes", n.journal_bytes)
        .Field("flushes", n.flushes)
        .Field("io_errors", n.io_errors)
        .Field("worker_up", n.worker_up)
        .Field("restarts", n.restarts)
        .Field("fences", n.fences)
        .Field("expirations", n.expirations)
        .Field("evictions", n.evictions)
        .Field("generation", n.generation)
        .Field("worker_generation", n.worker_generation)
        .Field("snapshot_age_s", n.snapshot_age_s);
    JsonHistogram(j, "journal_lag_ms", n.lag);
    JsonHistogram(j, "flush_us", n.flush);
    j.EndObject();
  }
  // One row per journal worker (stream); the node rows sum them.
  j.EndArray()
      .Field("workers_per_node", r.streams_per_node)
      .Key("workers")
      .BeginArray();
  for (const auto& w : r.workers) {
    j.BeginObject()
        .Field("node", w.node)
        .Field("stream", w.stream)
        .Field("journal_records", w.journal_records)
        .Field("journal_bytes", w.journal_bytes)
        .Field("flushes", w.flushes)
        .Field("io_errors", w.io_errors)
        .Field("worker_up", w.worker_up)
        .Field("restarts", w.restarts)
        .Field("fences", w.fences)
        .Field("generation", w.generation)
        .Field("worker_generation", w.worker_generation)
        .Field("snapshot_age_s", w.snapshot_age_s)
        .EndObject();
  }
  j.EndArray().Key("partitions").BeginArray();
  for (const auto& p : r.partitions) {
    j.BeginObject()
        .Field("partition", p.partition)
        .Field("node", p.node)
        .Field("entries", p.entries)
        .Field("used_bytes", p.used_bytes)
        .Field("retired_bytes", p.retired_bytes)
        .Field("free_bytes", p.free_bytes)
        .Field("chunk_bytes", p.chunk_bytes);
    if (r.reads_per_partition) {
      j.Field("get_hits", p.hits)
          .Field("get_misses", p.misses)
          .Field("hit_rate", HitRate(p.hits, p.misses));
    }
    j.Field("puts", p.puts)
        .Field("removes", p.removes)
        .Field("cas_failures", p.cas_failures)
        .Field("evictions", p.evictions)
        .Field("expirations", p.expirations)
        .Field("ring_depth", p.ring_depth)
        .Field("ring_high_water", p.ring_high_water)
        .Field("journal_lag_records", p.lag_records)
        .Field("journal_lag_bytes", p.lag_bytes)
        .EndObject();
  }
  j.EndArray().Key("processes").BeginArray();
  for (const auto& p : r.processes) {
    j.BeginObject().Field("slot", p.slot).Field("pid", p.pid);
    JsonOps(j, p.since_attach);
    j.EndObject();
  }
  j.EndArray().EndObject();
  return j.str();
}

// The flush latency below which half of the flushes fell, as a bucket
// bound ("<= 2 ms"), or "-".
std::string Median(const HistogramReading& h) {
  if (h.count == 0) return "-";
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    seen += h.buckets[i];
    if (seen * 2 >= h.count) {
      if (i + 1 == h.buckets.size()) return "inf";
      const double s = static_cast<double>(1ULL << i) * h.unit_seconds;
      char buf[32];
      if (s < 1e-3) {
        std::snprintf(buf, sizeof buf, "<=%.0fus", s * 1e6);
      } else if (s < 1) {
        std::snprintf(buf, sizeof buf, "<=%.0fms", s * 1e3);
      } else {
        std::snprintf(buf, sizeof buf, "<=%.0fs", s);
      }
      return buf;
    }
  }
  return "-";
}

std::string Table(const GridStatsReport& r) {
  std::string out;
  char line[512];
  const auto& t = r.totals;
  std::snprintf(
      line, sizeof line,
      "grid %s%s: gets %llu (hit rate %.1f%%), puts %llu, removes %llu, cas "
      "failures %llu, write errors %llu, backpressure %llu waits / %.3f s\n",
      r.name.c_str(), r.stats_enabled ? "" : " (created --no-stats)",
      static_cast<unsigned long long>(t.hits) +
          static_cast<unsigned long long>(t.misses),
      100 * HitRate(t.hits, t.misses), static_cast<unsigned long long>(t.puts),
      static_cast<unsigned long long>(t.removes),
      static_cast<unsigned long long>(t.cas_failures),
      static_cast<unsigned long long>(t.write_errors),
      static_cast<unsigned long long>(t.backpressure_waits),
      static_cast<double>(t.backpressure_wait_ns) / 1e9);
  out += line;
  std::snprintf(line, sizeof line,
                "\n%-5s %10s %10s %7s %10s %10s %11s %9s %9s %8s %8s %9s %9s "
                "%8s %6s\n",
                "node", "entries", "gets", "hit%", "used", "free", "ring",
                "lag_recs", "lag_bytes", "lag_ms", "lag_max", "flush_p50",
                "snapshot", "restarts", "worker");
  out += line;
  for (const auto& n : r.nodes) {
    const std::string ring =
        std::to_string(n.ring_depth) + "/" + std::to_string(n.ring_high_water);
    const std::string snap =
        n.snapshot_age_s < 0
            ? "-"
            : std::to_string(static_cast<long long>(n.snapshot_age_s)) + "s";
    std::snprintf(
        line, sizeof line,
        "%-5u %10llu %10llu %7s %10s %10s %11s %9llu %9s %8llu %8llu %9s %9s "
        "%8llu %6s\n",
        n.node, static_cast<unsigned long long>(n.entries),
        static_cast<unsigned long long>(n.hits + n.misses),
        Percent(n.hits, n.misses).c_str(),
        base::FormatSize(n.used_bytes).c_str(),
        base::FormatSize(n.free_bytes).c_str(), ring.c_str(),
        static_cast<unsigned long long>(n.lag_records),
        base::FormatSize(n.lag_bytes).c_str(),
        static_cast<unsigned long long>(n.lag_last_ms),
        static_cast<unsigned long long>(n.lag_max_ms), Median(n.flush).c_str(),
        snap.c_str(), static_cast<unsigned long long>(n.restarts),
        r.journaled ? (n.worker_up ? "up" : "down") : "-");
    out += line;
  }
  if (r.streams_per_node > 1) {
    // Several workers per node: each journal stream's own numbers.
    std::snprintf(line, sizeof line, "\n%-7s %12s %10s %9s %9s %8s %6s %6s\n",
                  "worker", "records", "bytes", "flushes", "io_errors",
                  "restarts", "gen", "state");
    out += line;
    for (const auto& w : r.workers) {
      const std::string id =
          std::to_string(w.node) + "." + std::to_string(w.stream);
      std::snprintf(
          line, sizeof line, "%-7s %12llu %10s %9llu %9llu %8llu %6llu %6s\n",
          id.c_str(), static_cast<unsigned long long>(w.journal_records),
          base::FormatSize(w.journal_bytes).c_str(),
          static_cast<unsigned long long>(w.flushes),
          static_cast<unsigned long long>(w.io_errors),
          static_cast<unsigned long long>(w.restarts),
          static_cast<unsigned long long>(w.generation),
          w.worker_up ? "up" : "down");
      out += line;
    }
  }
  std::snprintf(line, sizeof line,
                "\n%-9s %-4s %10s %10s %7s %10s %10s %10s %8s %10s %11s\n",
                "partition", "node", "entries", "gets", "hit%", "used", "puts",
                "removes", "cas_fail", "evictions", "ring");
  out += line;
  for (const auto& p : r.partitions) {
    const std::string ring =
        std::to_string(p.ring_depth) + "/" + std::to_string(p.ring_high_water);
    std::snprintf(
        line, sizeof line,
        "%-9u %-4u %10llu %10s %7s %10s %10llu %10llu %8llu %10llu "
        "%11s\n",
        p.partition, p.node, static_cast<unsigned long long>(p.entries),
        r.reads_per_partition ? std::to_string(p.hits + p.misses).c_str() : "-",
        r.reads_per_partition ? Percent(p.hits, p.misses).c_str() : "-",
        base::FormatSize(p.used_bytes).c_str(),
        static_cast<unsigned long long>(p.puts),
        static_cast<unsigned long long>(p.removes),
        static_cast<unsigned long long>(p.cas_failures),
        static_cast<unsigned long long>(p.evictions), ring.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "\n%-5s %-8s %10s %10s %10s %10s %8s %9s\n",
                "slot", "pid", "hits", "misses", "puts", "removes", "cas_fail",
                "bp_wait");
  out += line;
  for (const auto& p : r.processes) {
    const auto& o = p.since_attach;
    std::snprintf(line, sizeof line,
                  "%-5u %-8llu %10llu %10llu %10llu %10llu %8llu %8.3fs\n",
                  p.slot, static_cast<unsigned long long>(p.pid),
                  static_cast<unsigned long long>(o.hits),
                  static_cast<unsigned long long>(o.misses),
                  static_cast<unsigned long long>(o.puts),
                  static_cast<unsigned long long>(o.removes),
                  static_cast<unsigned long long>(o.cas_failures),
                  static_cast<double>(o.backpressure_wait_ns) / 1e9);
    out += line;
  }
  return out;
}

int RunStats(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  const int formats = (a.Has("json") ? 1 : 0) + (a.Has("prometheus") ? 1 : 0);
  if (formats > 1) {
    return Fail("stats",
                InvalidArgument("--json and --prometheus exclude each other"));
  }
  std::uint64_t watch_s = 0;
  if (a.Has("watch")) {
    auto w = base::ParseUint(a.Get("watch"), "--watch", 86400);
    if (!w.ok()) return Fail("stats", w.status());
    if (*w == 0) {
      return Fail("stats", InvalidArgument("--watch needs at least 1 second"));
    }
    watch_s = *w;
  }
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return Fail("stats", h.status());
  if (watch_s != 0) {
    struct sigaction sa {};
    sa.sa_handler = OnStatsStop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }
  for (;;) {
    const GridStatsReport r = core::CollectStats(**h);
    std::string text = a.Has("json")         ? Json(r)
                       : a.Has("prometheus") ? core::FormatPrometheus(r)
                                             : Table(r);
    if (watch_s != 0) text.insert(0, "\033[H\033[2J");  // clear the screen
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    if (watch_s == 0) return 0;
    // Sleep in slices, so that Ctrl-C ends the loop at once.
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(watch_s);
    while (std::chrono::steady_clock::now() < until) {
      // relaxed: a flag set by the signal handler.
      if (g_stop.load(std::memory_order_relaxed)) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (g_stop.load(std::memory_order_relaxed)) return 0;
  }
}

}  // namespace

std::vector<CommandSpec> StatsCommands() {
  return {
      {"stats",
       "NAME [--json | --prometheus] [--watch SECONDS]",
       "monitoring counters: operations, hit rate, memory, rings, journal lag",
       "Per grid: gets (hit rate), puts, removes, CAS failures, failed\n"
       "writes and backpressure, summed over every process that ever\n"
       "attached. Per node: entries, gets and hit rate, memory, change-ring\n"
       "depth/high-water mark, journal lag (records, bytes, ms of the last "
       "batch and the\n"
       "largest), median flush time, snapshot age, worker restarts. Per\n"
       "partition (gets and hit rate, entries, memory, writes, evictions,\n"
       "ring) and per attached process (since it attached): the counters\n"
       "that belong to them. A grid whose per-partition read counters would\n"
       "exceed 16 MiB (partitions x process slots x 16 bytes) counts gets\n"
       "per node only (\"-\" in the partition rows). Every number is defined "
       "in\n"
       "docs/monitoring.md. A grid created with --no-stats keeps no\n"
       "data-path counters (they stay 0).",
       {{"json", "", "print as JSON"},
        {"prometheus", "",
         "print the Prometheus text exposition format (0.0.4)"},
        {"watch", "SECONDS",
         "print again every SECONDS seconds, clearing the screen, until "
         "Ctrl-C"}},
       1,
       1,
       RunStats},
  };
}

}  // namespace numagrid::cli
