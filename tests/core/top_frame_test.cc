// Tests for the frame of `numagrid top` (core/top_frame.h), from synthetic
// readings: rates as exact counter deltas over the elapsed time, hit rates,
// the busiest partitions cut to the terminal's height, the width limit,
// workers and the last failover-type events.
#include "core/top_frame.h"

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/node_file_name.h"

namespace numagrid::core {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct PartitionCounts {
  std::uint32_t node = 0;
  std::uint64_t puts = 0;
  std::uint64_t removes = 0;
  std::uint64_t entries = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;
};

// A memory-only grid of `nodes` nodes with `parts` as its partitions, its
// gets summed per node and for the grid as CollectStats does, read at
// 1'000'000 ms.
TopReading Reading(std::uint32_t nodes,
                   const std::vector<PartitionCounts>& parts) {
  TopReading r;
  r.stats.name = "g1";
  for (std::uint32_t n = 0; n < nodes; ++n) {
    NodeStatsRow row;
    row.node = n;
    r.stats.nodes.push_back(row);
    NodeStatus s;
    s.node = n;
    r.status.nodes.push_back(s);
  }
  for (std::uint32_t p = 0; p < parts.size(); ++p) {
    PartitionStatsRow row;
    row.partition = p;
    row.node = parts[p].node;
    row.puts = parts[p].puts;
    row.removes = parts[p].removes;
    row.entries = parts[p].entries;
    row.hits = parts[p].hits;
    row.misses = parts[p].misses;
    row.evictions = parts[p].evictions;
    r.stats.partitions.push_back(row);
    NodeStatsRow& n = r.stats.nodes[row.node];
    n.entries += row.entries;
    n.hits += row.hits;
    n.misses += row.misses;
    n.evictions += row.evictions;
    r.stats.totals.hits += row.hits;
    r.stats.totals.misses += row.misses;
  }
  r.status.durability = "none";
  r.unix_ms = 1'000'000;
  return r;
}

std::vector<std::string> Lines(const std::string& frame) {
  std::vector<std::string> lines;
  std::istringstream in(frame);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// The first line that starts with `prefix` after the line that starts with
// `header`, or "". Headers: "node entries" (a node's operations and
// memory), "node lag_rec" (its journal and worker), "part " (partitions).
std::string RowOf(const std::string& frame, const std::string& header,
                  const std::string& prefix) {
  bool under = false;
  for (const std::string& l : Lines(frame)) {
    if (l.rfind(header, 0) == 0) {
      under = true;
    } else if (under && l.rfind(prefix, 0) == 0) {
      return l;
    }
  }
  return "";
}

TEST(TopFrame, RatesAreCounterDeltasDividedByTheElapsedTime) {
  const TopReading before =
      Reading(2, {{0, 10, 0, 0, 100, 0, 0}, {1, 0, 0, 0, 0, 0, 4}});
  const TopReading after = Reading(
      2, {{0, 10, 0, 0, 100 + 300, 100, 0}, {1, 1000, 250, 0, 0, 0, 54}});
  const TopView v = ComputeTopView(before, after, 0.5);
  ASSERT_TRUE(v.has_rates);
  EXPECT_EQ(v.puts_per_s, 2000.0);
  EXPECT_EQ(v.removes_per_s, 500.0);
  EXPECT_EQ(v.gets_per_s, 800.0);  // 300 hits + 100 misses in 0.5 s
  EXPECT_EQ(v.hit_rate, 0.75);
  EXPECT_EQ(v.total_hit_rate, 0.8);  // 400 of 500 since create
  ASSERT_EQ(v.nodes.size(), 2u);
  EXPECT_EQ(v.nodes[0].puts_per_s, 0.0);
  EXPECT_EQ(v.nodes[1].puts_per_s, 2000.0);
  EXPECT_EQ(v.nodes[1].removes_per_s, 500.0);
  // Gets, hit rates and evictions per node and partition.
  EXPECT_EQ(v.evictions_per_s, 100.0);
  EXPECT_EQ(v.nodes[0].gets_per_s, 800.0);
  EXPECT_EQ(v.nodes[0].hit_rate, 0.75);
  EXPECT_EQ(v.nodes[1].gets_per_s, 0.0);
  EXPECT_EQ(v.nodes[1].hit_rate, -1);
  EXPECT_EQ(v.nodes[1].evictions_per_s, 100.0);
  ASSERT_EQ(v.partitions.size(), 2u);
  EXPECT_EQ(v.partitions[0].partition, 1u);  // 1250 ops/s against 800
  EXPECT_EQ(v.partitions[1].gets_per_s, 800.0);
  EXPECT_EQ(v.partitions[1].hit_rate, 0.75);
  EXPECT_EQ(v.partitions[0].evictions_per_s, 100.0);

  const std::string frame = RenderTopFrame(before, after, 0.5, {}, 1);
  EXPECT_EQ(frame.substr(0, frame.find('\n')),
            "numagrid top: g1 | every 1s | memory only");
  EXPECT_THAT(frame, HasSubstr("\ngets 800/s  hit rate 75.0% (since create "
                               "80.0%)\nwrites  puts 2000/s  removes 500/s  "
                               "evictions 100/s\n"));
  // node entries used free get/s hit% put/s del/s evi/s ring
  EXPECT_THAT(RowOf(frame, "node entries", "0 "),
              ::testing::MatchesRegex("0 +0 +0 +0 +800 +75.0% +0 +0 +0 +0"));
  EXPECT_THAT(RowOf(frame, "node entries", "1 "),
              ::testing::MatchesRegex("1 +0 +0 +0 +0 +- +2000 +500 +100 +0"));
  // part node entries used free get/s hit% put/s del/s evi/s ...
  EXPECT_THAT(RowOf(frame, "part ", "0 "),
              ::testing::MatchesRegex("0 +0 +0 +0 +0 +800 +75.0% +0 +0 +0 .*"));
}

TEST(TopFrame, GridsThatCountGetsPerNodeShowNoPartitionGets) {
  TopReading before = Reading(1, {{0, 0, 0, 0, 0, 0, 0}});
  TopReading after = Reading(1, {{0, 0, 0, 0, 0, 0, 0}});
  // Per-node read counters: the partition rows carry no gets.
  before.stats.reads_per_partition = false;
  after.stats.reads_per_partition = false;
  after.stats.nodes[0].hits = 90;
  after.stats.nodes[0].misses = 10;
  after.stats.totals.hits = 90;
  after.stats.totals.misses = 10;
  const TopView v = ComputeTopView(before, after, 1);
  EXPECT_EQ(v.nodes[0].gets_per_s, 100.0);
  EXPECT_EQ(v.nodes[0].hit_rate, 0.9);
  EXPECT_EQ(v.partitions[0].gets_per_s, 0.0);
  EXPECT_EQ(v.partitions[0].hit_rate, -1);
  const std::string frame = RenderTopFrame(before, after, 1, {}, 1);
  EXPECT_THAT(RowOf(frame, "node entries", "0 "),
              ::testing::MatchesRegex("0 +0 +0 +0 +100 +90.0% .*"));
  EXPECT_THAT(RowOf(frame, "part ", "0 "),
              ::testing::MatchesRegex("0 +0 +0 +0 +0 +- +- +0 .*"));
}

TEST(TopFrame, TheFirstFrameHasNoRates) {
  const TopReading r = Reading(1, {{0, 5, 1, 0, 3, 1, 0}});
  const TopView v = ComputeTopView(r, r, 0);
  EXPECT_FALSE(v.has_rates);
  EXPECT_EQ(v.hit_rate, -1);
  EXPECT_EQ(v.total_hit_rate, 0.75);
  EXPECT_THAT(RenderTopFrame(r, r, 0, {}, 1),
              HasSubstr("gets -/s  hit rate - (since create 75.0%)\nwrites  "
                        "puts -/s  removes -/s  evictions -/s"));
}

TEST(TopFrame, ACounterThatWentBackIsNoRate) {
  EXPECT_EQ(PerSecond(10, 5, 1), 0.0);
  EXPECT_EQ(PerSecond(10, 10, 1), 0.0);
  EXPECT_EQ(PerSecond(0, 10, 0), 0.0);
  EXPECT_EQ(PerSecond(0, 3, 2), 1.5);
}

TEST(TopFrame, ShowsTheBusiestPartitionsThatFitTheTerminalHeight) {
  const TopReading before = Reading(2, {{0}, {1}, {0}, {1}, {0}, {1}});
  const TopReading after =
      Reading(2, {{0, 10}, {1, 0, 0}, {0, 0, 40}, {1, 30}, {0, 10}, {1, 0, 5}});
  // Everything fits: the busiest first, equal rates in partition order.
  const std::string tall = RenderTopFrame(before, after, 1, {60, 80}, 1);
  std::vector<std::uint32_t> order;
  bool in_table = false;
  for (const std::string& l : Lines(tall)) {
    if (l.rfind("part ", 0) == 0) {
      in_table = true;
    } else if (in_table) {
      order.push_back(static_cast<std::uint32_t>(std::stoul(l)));
    }
  }
  EXPECT_EQ(order, (std::vector<std::uint32_t>{2, 3, 0, 4, 5, 1}));
  EXPECT_THAT(tall,
              HasSubstr("busiest first by get/s + put/s + del/s: 6 of 6"));

  // Two rows of room below the partition header: the two busiest.
  const std::size_t fixed = Lines(tall).size() - 6;
  const TerminalSize small{static_cast<std::uint32_t>(fixed + 2), 80};
  const std::string cut = RenderTopFrame(before, after, 1, small, 1);
  const std::vector<std::string> lines = Lines(cut);
  ASSERT_EQ(lines.size(), small.rows) << cut;
  EXPECT_EQ(lines[lines.size() - 2].substr(0, 2), "2 ");
  EXPECT_EQ(lines[lines.size() - 1].substr(0, 2), "3 ");
  EXPECT_THAT(cut, HasSubstr("busiest first by get/s + put/s + del/s: 2 of 6"));

  // A terminal too short for any partition cuts the frame at its height.
  const std::string tiny = RenderTopFrame(before, after, 1, {3, 80}, 1);
  EXPECT_EQ(Lines(tiny).size(), 3u);
}

TEST(TopFrame, NoLineIsWiderThanTheTerminal) {
  TopReading r = Reading(2, {{0, 1234567, 0, 98765432}, {1}});
  r.stats.name = "a-rather-long-grid-name-for-a-narrow-terminal";
  r.stats.nodes[0].used_bytes = 1536;
  for (std::uint32_t cols : {20u, 40u, 80u}) {
    const std::string frame = RenderTopFrame(r, r, 1, {24, cols}, 1);
    for (const std::string& l : Lines(frame)) {
      EXPECT_LE(l.size(), cols) << l;
    }
  }
  // Large numbers are shortened so that the columns hold them.
  const std::string frame = RenderTopFrame(r, r, 1, {24, 80}, 1);
  EXPECT_THAT(RowOf(frame, "node entries", "0 "),
              ::testing::MatchesRegex("0 +98.8M +1.5K +0 .*"));
}

TEST(TopFrame, ShowsWorkersOfAJournaledGrid) {
  TopReading r = Reading(2, {{0}, {1}});
  r.stats.journaled = true;
  r.status.durability = "async";
  r.status.watchdog_pid = 4242;
  r.stats.nodes[1].lag_records = 17;
  r.stats.nodes[1].lag_bytes = 2048;
  r.stats.nodes[1].lag_last_ms = 12;
  r.stats.nodes[1].generation = 7;
  r.stats.nodes[1].restarts = 3;
  r.status.nodes[0].worker_state = "dead";
  r.status.nodes[1].worker_state = "running";
  r.status.nodes[1].worker_alive = true;
  r.status.nodes[1].generation = 7;
  r.status.nodes[1].worker_generation = 7;
  std::string frame = RenderTopFrame(r, r, 1, {}, 0.5);
  EXPECT_THAT(frame, HasSubstr("numagrid top: g1 | every 0.5s | journal async, "
                               "watchdog pid 4242\n"));
  EXPECT_THAT(RowOf(frame, "node lag_rec", "0 "), HasSubstr(" dead "));
  EXPECT_THAT(RowOf(frame, "node lag_rec", "1 "),
              ::testing::MatchesRegex("1 +17 +2.0K +12 run +7 +3"));
  // A worker that holds an older generation than the node's is fenced.
  r.status.nodes[1].generation = 8;
  frame = RenderTopFrame(r, r, 1, {}, 1);
  EXPECT_THAT(RowOf(frame, "node lag_rec", "1 "), HasSubstr(" fenced "));
}

TEST(TopFrame, ShowsTheLastFailoverEventOfTheGridAndOfEachNode) {
  TopReading r = Reading(2, {{0}, {1}});
  r.stats.journaled = true;  // the per-node column is in the journal table
  auto event = [](EventKind kind, std::int32_t node, std::uint64_t t_ms) {
    GridEvent e;
    e.kind = kind;
    e.node = node;
    e.time_unix_ms = t_ms;
    return e;
  };
  r.events.push_back(event(EventKind::kWorkerRestarted, 0, 900'000));
  r.events.push_back(event(EventKind::kWorkerRestarted, 1, 950'000));
  r.events.back().pid = 77;
  r.events.back().generation = 5;
  r.events.back().cause = "exit 1\033[2J";
  r.events.push_back(event(EventKind::kWorkerStarted, 1, 990'000));
  r.events.push_back(event(EventKind::kWatchdogStopped, -1, 995'000));
  EXPECT_TRUE(IsFailoverEvent(EventKind::kWorkerSteppedDown));
  EXPECT_TRUE(IsFailoverEvent(EventKind::kRecovery));
  EXPECT_FALSE(IsFailoverEvent(EventKind::kWorkerStarted));
  EXPECT_FALSE(IsFailoverEvent(static_cast<EventKind>(999)));

  const std::string frame = RenderTopFrame(r, r, 1, {24, 200}, 1);
  // Control bytes from the shared ring never reach the terminal.
  EXPECT_THAT(frame, HasSubstr("last failover: worker_restarted node 1 pid 77 "
                               "generation 5, 50s ago: exit 1?[2J"));
  EXPECT_THAT(frame, Not(HasSubstr("\033")));
  EXPECT_THAT(RowOf(frame, "node lag_rec", "0 "),
              HasSubstr("worker_restarted 100s ago"));
  EXPECT_THAT(RowOf(frame, "node lag_rec", "1 "),
              HasSubstr("worker_restarted 50s ago"));

  r.events.clear();
  EXPECT_THAT(RenderTopFrame(r, r, 1, {}, 1),
              HasSubstr("last failover: none in the event ring"));
}

TEST(TopFrame, AGridWithTwoWorkersPerNodeShowsEachWorkerAndItsStreamsEvents) {
  TopReading r = Reading(2, {{0}, {1}});
  r.stats.journaled = true;
  r.status.streams_per_node = 2;
  r.status.nodes.resize(4);  // node 0 streams 0, 1; node 1 streams 0, 1
  r.status.nodes[0].worker_state = "running";
  r.status.nodes[0].worker_alive = true;
  r.status.nodes[1].worker_state = "dead";
  r.status.nodes[2].worker_state = "running";
  r.status.nodes[2].worker_alive = true;
  r.status.nodes[3].worker_state = "running";
  r.status.nodes[3].worker_alive = true;
  GridEvent e;
  e.kind = EventKind::kWorkerRestarted;
  e.node = static_cast<std::int32_t>(io::StreamId(1, 1));
  e.time_unix_ms = 950'000;
  r.events.push_back(e);
  const std::string frame = RenderTopFrame(r, r, 1, {24, 200}, 1);
  EXPECT_THAT(RowOf(frame, "node lag_rec", "0 "), HasSubstr(" run/dead "));
  EXPECT_THAT(frame, HasSubstr("last failover: worker_restarted node 1 "
                               "stream 1, "));
  EXPECT_THAT(RowOf(frame, "node lag_rec", "1 "),
              HasSubstr("worker_restarted 50s ago"));
  EXPECT_THAT(RowOf(frame, "node lag_rec", "0 "),
              Not(HasSubstr("worker_restarted")));
}

}  // namespace
}  // namespace numagrid::core
