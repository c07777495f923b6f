#include "core/top_frame.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <string_view>

#include "io/node_file_name.h"

namespace numagrid::core {
namespace {

// Counts and rates in at most 5 characters: "0.5", "2000", "12.3k",
// "1.23M", so that the tables fit 80 columns.
std::string Compact(double v) {
  char buf[32];
  if (v < 9999.5) {
    const bool whole = v >= 10 || v == std::floor(v);
    std::snprintf(buf, sizeof buf, whole ? "%.0f" : "%.1f", v);
    return buf;
  }
  static constexpr char kUnits[] = "kMGTPE";
  int u = -1;
  while (v >= 999.5 && u < 5) {
    v /= 1000;
    ++u;
  }
  const char* f = v < 9.995 ? "%.2f%c" : v < 99.95 ? "%.1f%c" : "%.0f%c";
  std::snprintf(buf, sizeof buf, f, v, kUnits[u]);
  return buf;
}

// Bytes in at most 5 characters, binary units: "512", "1.5K", "64M".
std::string CompactBytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes);
  static constexpr char kUnits[] = "KMGTPE";
  auto v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1023.5 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 9.95 ? "%.1f%c" : "%.0f%c", v, kUnits[u]);
  return buf;
}

std::string Rate(const TopView& v, double per_s) {
  return v.has_rates ? Compact(per_s) : "-";
}

std::string Percent(double ratio) {
  if (ratio < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * ratio);
  return buf;
}

// A hit rate in at most 5 characters: "97.5%", "100%", or "-".
std::string HitPercent(const TopView& v, double ratio) {
  if (!v.has_rates || ratio < 0) return "-";
  if (ratio >= 0.9995) return "100%";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * ratio);
  return buf;
}

// Hits over hits + misses between two readings; -1 without gets.
double IntervalHitRate(std::uint64_t hits_before, std::uint64_t misses_before,
                       std::uint64_t hits_after, std::uint64_t misses_after) {
  const std::uint64_t hits =
      hits_after > hits_before ? hits_after - hits_before : 0;
  const std::uint64_t misses =
      misses_after > misses_before ? misses_after - misses_before : 0;
  if (hits + misses == 0) return -1;
  return static_cast<double>(hits) / static_cast<double>(hits + misses);
}

std::string Age(std::uint64_t now_ms, std::uint64_t then_ms) {
  const std::uint64_t s = now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  if (s < 172800) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

// The cause comes from shared memory that any attached process writes:
// never pass its bytes to the terminal as they are.
std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::string DescribeEvent(const GridEvent& e, std::uint64_t now_ms) {
  std::string s(EventKindName(e.kind));
  // e.node is a stream id: "node N", or "node N stream S" for S > 0.
  if (e.node >= 0) {
    s += " " + io::StreamLabel(static_cast<std::uint32_t>(e.node));
  }
  if (e.pid != 0) s += " pid " + std::to_string(e.pid);
  if (e.generation != 0) s += " generation " + std::to_string(e.generation);
  s += ", " + Age(now_ms, e.time_unix_ms);
  if (!e.cause.empty()) s += ": " + Printable(e.cause);
  return s;
}

std::optional<GridEvent> LastFailover(const std::vector<GridEvent>& events,
                                      std::optional<std::int32_t> node) {
  const auto it =
      std::find_if(events.rbegin(), events.rend(), [&](const GridEvent& e) {
        // Any of the node's streams (e.node is a stream id).
        return IsFailoverEvent(e.kind) &&
               (!node || (e.node >= 0 &&
                          io::StreamNode(static_cast<std::uint32_t>(e.node)) ==
                              static_cast<std::uint32_t>(*node)));
      });
  if (it == events.rend()) return std::nullopt;
  return *it;
}

// The worker column: short, so that the node table fits 80 columns.
std::string WorkerState(const NodeStatus& s) {
  if (s.worker_alive && s.worker_generation < s.generation) return "fenced";
  if (s.worker_state == "running") return "run";
  if (s.worker_state == "retrying") return "retry";
  if (s.worker_state == "stopped") return "stop";
  return s.worker_state;  // "dead", "none"
}

// One line of the frame, printf-formatted; cut at 511 bytes (RenderTopFrame
// cuts it again at the terminal's width).
[[gnu::format(printf, 1, 2)]] std::string Line(const char* format, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  return buf;
}

std::string Title(const TopReading& r, double interval_s) {
  std::string journal = "memory only";
  if (r.stats.journaled) {
    journal = "journal " + r.status.durability + ", " +
              (r.status.watchdog_pid != 0
                   ? "watchdog pid " + std::to_string(r.status.watchdog_pid)
                   : std::string("no watchdog"));
  }
  // The node and partition counts are in the tables below.
  return Line("numagrid top: %s | every %gs | %s", r.stats.name.c_str(),
              interval_s, journal.c_str());
}

std::string GridLine(const TopView& v, const TopReading& r) {
  std::string hits = Percent(v.hit_rate);
  if (!r.stats.stats_enabled) {
    hits += " (created --no-stats: gets are not counted)";
  } else if (v.total_hit_rate >= 0) {
    hits += " (since create " + Percent(v.total_hit_rate) + ")";
  }
  return Line("gets %s/s  hit rate %s", Rate(v, v.gets_per_s).c_str(),
              hits.c_str());
}

std::string WritesLine(const TopView& v) {
  return Line("writes  puts %s/s  removes %s/s  evictions %s/s",
              Rate(v, v.puts_per_s).c_str(), Rate(v, v.removes_per_s).c_str(),
              Rate(v, v.evictions_per_s).c_str());
}

// The node's operations and memory.
std::string NodeRow(const TopView& v, const TopNodeView& nv,
                    const TopReading& r) {
  const NodeStatsRow& n = r.stats.nodes[nv.node];
  return Line(
      "%-4u %7s %5s %5s %5s %5s %5s %5s %5s %5s", n.node,
      Compact(static_cast<double>(n.entries)).c_str(),
      CompactBytes(n.used_bytes).c_str(), CompactBytes(n.free_bytes).c_str(),
      Rate(v, nv.gets_per_s).c_str(), HitPercent(v, nv.hit_rate).c_str(),
      Rate(v, nv.puts_per_s).c_str(), Rate(v, nv.removes_per_s).c_str(),
      Rate(v, nv.evictions_per_s).c_str(),
      Compact(static_cast<double>(n.ring_depth)).c_str());
}

// The node's journal and worker (journaled grids only).
std::string NodeJournalRow(const TopNodeView& nv, const TopReading& r) {
  const NodeStatsRow& n = r.stats.nodes[nv.node];
  // The node's workers, one per journal stream: their states, joined by
  // '/' when the grid has several per node.
  const std::uint32_t k = r.status.streams_per_node;
  std::string state;
  for (std::uint32_t i = 0; i < k; ++i) {
    const std::size_t row = std::size_t{nv.node} * k + i;
    if (row >= r.status.nodes.size()) break;
    if (i > 0) state += "/";
    state += WorkerState(r.status.nodes[row]);
  }
  if (state.empty()) state = "-";
  const std::string last =
      nv.last_failover
          ? std::string(EventKindName(nv.last_failover->kind)) + " " +
                Age(r.unix_ms, nv.last_failover->time_unix_ms)
          : "";
  return Line("%-4u %7s %5s %6s %-6s %4s %3s %s", n.node,
              Compact(static_cast<double>(n.lag_records)).c_str(),
              CompactBytes(n.lag_bytes).c_str(),
              Compact(static_cast<double>(n.lag_last_ms)).c_str(),
              state.c_str(), Compact(static_cast<double>(n.generation)).c_str(),
              Compact(static_cast<double>(n.restarts)).c_str(), last.c_str());
}

std::string PartitionRow(const TopView& v, const TopPartitionView& pv,
                         const TopReading& r) {
  const PartitionStatsRow& p = r.stats.partitions[pv.partition];
  const bool j = r.stats.journaled;
  const bool reads = r.stats.reads_per_partition;
  return Line(
      "%-4u %4u %7s %5s %5s %5s %5s %5s %5s %5s %5s %7s %5s", p.partition,
      p.node, Compact(static_cast<double>(p.entries)).c_str(),
      CompactBytes(p.used_bytes).c_str(), CompactBytes(p.free_bytes).c_str(),
      reads ? Rate(v, pv.gets_per_s).c_str() : "-",
      reads ? HitPercent(v, pv.hit_rate).c_str() : "-",
      Rate(v, pv.puts_per_s).c_str(), Rate(v, pv.removes_per_s).c_str(),
      Rate(v, pv.evictions_per_s).c_str(),
      Compact(static_cast<double>(p.ring_depth)).c_str(),
      j ? Compact(static_cast<double>(p.lag_records)).c_str() : "-",
      j ? CompactBytes(p.lag_bytes).c_str() : "-");
}

}  // namespace

double PerSecond(std::uint64_t before, std::uint64_t after, double elapsed_s) {
  if (after <= before || elapsed_s <= 0) return 0;
  return static_cast<double>(after - before) / elapsed_s;
}

bool IsFailoverEvent(EventKind kind) {
  switch (kind) {
    case EventKind::kWorkerRestarted:
    case EventKind::kWorkerAdopted:
    case EventKind::kWorkerExited:
    case EventKind::kWorkerKilled:
    case EventKind::kWorkerFenced:
    case EventKind::kWorkerStartFailed:
    case EventKind::kCrashLoopBackoff:
    case EventKind::kRepair:
    case EventKind::kRecovery:
    case EventKind::kWorkerSteppedDown:
      return true;
    case EventKind::kWatchdogStarted:
    case EventKind::kWatchdogStopped:
    case EventKind::kWorkerStarted:
    case EventKind::kWorkerStoppedByWatchdog:
    case EventKind::kConfigChanged:
    case EventKind::kJournalIoError:
    case EventKind::kJournalIoRecovered:
    case EventKind::kBackpressure:
      return false;
  }
  return false;  // a kind from a newer writer
}

TopView ComputeTopView(const TopReading& before, const TopReading& after,
                       double elapsed_s) {
  TopView v;
  v.has_rates = elapsed_s > 0;
  const OpCounts& b = before.stats.totals;
  const OpCounts& a = after.stats.totals;
  v.gets_per_s = PerSecond(b.hits + b.misses, a.hits + a.misses, elapsed_s);
  const std::uint64_t hits = a.hits > b.hits ? a.hits - b.hits : 0;
  const std::uint64_t misses = a.misses > b.misses ? a.misses - b.misses : 0;
  if (v.has_rates && hits + misses != 0) {
    v.hit_rate = static_cast<double>(hits) / static_cast<double>(hits + misses);
  }
  if (a.hits + a.misses != 0) {
    v.total_hit_rate =
        static_cast<double>(a.hits) / static_cast<double>(a.hits + a.misses);
  }

  for (std::size_t i = 0; i < after.stats.nodes.size(); ++i) {
    const NodeStatsRow& n = after.stats.nodes[i];
    const NodeStatsRow& old =
        i < before.stats.nodes.size() ? before.stats.nodes[i] : n;
    TopNodeView nv;
    nv.node = n.node;
    nv.gets_per_s =
        PerSecond(old.hits + old.misses, n.hits + n.misses, elapsed_s);
    nv.hit_rate = IntervalHitRate(old.hits, old.misses, n.hits, n.misses);
    nv.last_failover =
        LastFailover(after.events, static_cast<std::int32_t>(n.node));
    v.nodes.push_back(nv);
  }
  for (std::size_t i = 0; i < after.stats.partitions.size(); ++i) {
    const PartitionStatsRow& p = after.stats.partitions[i];
    const PartitionStatsRow* old = i < before.stats.partitions.size()
                                       ? &before.stats.partitions[i]
                                       : nullptr;
    TopPartitionView pv;
    pv.partition = p.partition;
    pv.puts_per_s = PerSecond(old ? old->puts : p.puts, p.puts, elapsed_s);
    pv.removes_per_s =
        PerSecond(old ? old->removes : p.removes, p.removes, elapsed_s);
    pv.evictions_per_s =
        PerSecond(old ? old->evictions : p.evictions, p.evictions, elapsed_s);
    if (after.stats.reads_per_partition) {
      const PartitionStatsRow& o = old ? *old : p;
      pv.gets_per_s =
          PerSecond(o.hits + o.misses, p.hits + p.misses, elapsed_s);
      pv.hit_rate = IntervalHitRate(o.hits, o.misses, p.hits, p.misses);
    }
    v.puts_per_s += pv.puts_per_s;
    v.removes_per_s += pv.removes_per_s;
    v.evictions_per_s += pv.evictions_per_s;
    if (p.node < v.nodes.size()) {
      v.nodes[p.node].puts_per_s += pv.puts_per_s;
      v.nodes[p.node].removes_per_s += pv.removes_per_s;
      v.nodes[p.node].evictions_per_s += pv.evictions_per_s;
    }
    v.partitions.push_back(pv);
  }
  std::stable_sort(v.partitions.begin(), v.partitions.end(),
                   [](const TopPartitionView& x, const TopPartitionView& y) {
                     return x.ops_per_s() > y.ops_per_s();
                   });
  v.last_failover = LastFailover(after.events, std::nullopt);
  return v;
}

std::string RenderTopFrame(const TopReading& before, const TopReading& after,
                           double elapsed_s, TerminalSize size,
                           double interval_s) {
  const TopView v = ComputeTopView(before, after, elapsed_s);
  std::vector<std::string> lines;
  lines.push_back(Title(after, interval_s));
  lines.push_back(GridLine(v, after));
  lines.push_back(WritesLine(v));
  lines.push_back("last failover: " +
                  (v.last_failover
                       ? DescribeEvent(*v.last_failover, after.unix_ms)
                       : std::string("none in the event ring")));
  lines.emplace_back();
  lines.push_back(Line("%-4s %7s %5s %5s %5s %5s %5s %5s %5s %5s", "node",
                       "entries", "used", "free", "get/s", "hit%", "put/s",
                       "del/s", "evi/s", "ring"));
  for (const TopNodeView& nv : v.nodes) {
    lines.push_back(NodeRow(v, nv, after));
  }
  lines.emplace_back();
  if (after.stats.journaled) {
    lines.push_back(Line("%-4s %7s %5s %6s %-6s %4s %3s %s", "node", "lag_rec",
                         "lag_B", "lag_ms", "worker", "gen", "rst",
                         "last failover"));
    for (const TopNodeView& nv : v.nodes) {
      lines.push_back(NodeJournalRow(nv, after));
    }
    lines.emplace_back();
  }
  // What is left below the partition title and header, the busiest first.
  const std::size_t fixed = lines.size() + 2;
  const std::size_t room = size.rows > fixed ? size.rows - fixed : 0;
  const std::size_t shown = std::min(room, v.partitions.size());
  lines.push_back(
      Line("partitions, busiest first by get/s + put/s + del/s: %zu of %zu",
           shown, v.partitions.size()));
  lines.push_back(Line("%-4s %4s %7s %5s %5s %5s %5s %5s %5s %5s %5s %7s %5s",
                       "part", "node", "entries", "used", "free", "get/s",
                       "hit%", "put/s", "del/s", "evi/s", "ring", "lag_rec",
                       "lag_B"));
  for (std::size_t i = 0; i < shown; ++i) {
    lines.push_back(PartitionRow(v, v.partitions[i], after));
  }

  std::string frame;
  const std::size_t rows = std::min<std::size_t>(lines.size(), size.rows);
  for (std::size_t i = 0; i < rows; ++i) {
    std::string& l = lines[i];
    if (l.size() > size.cols) l.resize(size.cols);
    while (!l.empty() && l.back() == ' ') l.pop_back();
    if (i != 0) frame += '\n';
    frame += l;
  }
  return frame;
}

}  // namespace numagrid::core
