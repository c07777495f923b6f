// TopFrame: one screen of `numagrid top`, computed from two readings of a
// grid taken `elapsed_s` apart and laid out for a terminal of a given size.
// Pure: no terminal, clock or grid access, so that every number and the
// layout can be tested from synthetic readings (core/cli/top_command.cc does
// the reading and core/cli/terminal.h the drawing).
//
// Rates are counter deltas divided by the elapsed time. Every counter is
// read per partition and summed per node and for the grid, except gets on a
// grid that keeps its read counters per node (GridStatsReport::
// reads_per_partition false): those have no partition figures.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/event_log.h"
#include "core/grid_status.h"
#include "core/stats.h"

namespace numagrid::core {

// Everything one frame shows of a grid at one moment.
struct TopReading {
  GridStatsReport stats;
  GridStatusReport status;        // worker state and watchdog
  std::vector<GridEvent> events;  // the event ring, oldest first
  std::uint64_t unix_ms = 0;      // when read: the age of events
};

struct TerminalSize {
  std::uint32_t rows = 24;
  std::uint32_t cols = 80;
};

struct TopNodeView {
  std::uint32_t node = 0;
  double gets_per_s = 0;
  double hit_rate = -1;  // over the interval; -1: no gets in it
  double puts_per_s = 0;
  double removes_per_s = 0;
  double evictions_per_s = 0;
  std::optional<GridEvent> last_failover;  // of this node
};

struct TopPartitionView {
  std::uint32_t partition = 0;
  double gets_per_s = 0;  // 0 when gets are counted per node only
  double hit_rate = -1;   // over the interval; -1: no gets in it (or none kept)
  double puts_per_s = 0;
  double removes_per_s = 0;
  double evictions_per_s = 0;
  double ops_per_s() const { return gets_per_s + puts_per_s + removes_per_s; }
};

// The numbers of one frame.
struct TopView {
  bool has_rates = false;  // false: elapsed_s <= 0 (the first frame)
  double gets_per_s = 0;
  double puts_per_s = 0;
  double removes_per_s = 0;
  double evictions_per_s = 0;
  double hit_rate = -1;        // over the interval; -1: no gets in it
  double total_hit_rate = -1;  // since create; -1: no gets ever
  std::vector<TopNodeView> nodes;
  // Busiest first (gets + puts + removes per second), ties by partition
  // number.
  std::vector<TopPartitionView> partitions;
  std::optional<GridEvent> last_failover;  // of the whole grid
};

// `after - before` per second, 0 when the counter went back (a grid
// recreated under the same name) or no time passed.
double PerSecond(std::uint64_t before, std::uint64_t after, double elapsed_s);

// Worker restarts, exits, kills, adoptions, fencing, failed starts,
// crash-loop backoff, slot repairs and recoveries: the events that say the
// grid's journaling moved or was repaired, as opposed to planned starts and
// stops.
bool IsFailoverEvent(EventKind kind);

// REQUIRES: `before` and `after` read from the same grid (same partition
// and node count); elapsed_s >= 0.
TopView ComputeTopView(const TopReading& before, const TopReading& after,
                       double elapsed_s);

// The frame's lines joined by '\n' (no trailing newline): at most
// `size.rows` lines of at most `size.cols` bytes, plain printable ASCII
// (bytes from the shared event ring that are not are shown as '?').
// `interval_s` is only shown in the title.
std::string RenderTopFrame(const TopReading& before, const TopReading& after,
                           double elapsed_s, TerminalSize size,
                           double interval_s);

}  // namespace numagrid::core
