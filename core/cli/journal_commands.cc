// `numagrid worker|recover|snapshot`: the journal's side of a grid.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/json_writer.h"
#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/grid_status.h"
#include "core/journal_dir.h"
#include "core/journal_worker.h"
#include "core/recovery.h"
#include "core/snapshot.h"
#include "io/node_file_name.h"
#include "numa/topology.h"
#include "shm/segment.h"

namespace numagrid::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) {
  // relaxed: a flag polled by the loops; the signal also interrupts their
  // futex waits.
  g_stop.store(true, std::memory_order_relaxed);
}

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

// "2026-11-26T21:47:31Z numagrid worker[pid]: line", one write per line.
void LogLine(std::string_view tag, std::string_view line) {
  static std::mutex mu;
  char ts[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::lock_guard<std::mutex> l(mu);
  std::fprintf(stderr, "%s numagrid %.*s[%d]: %.*s\n", ts,
               static_cast<int>(tag.size()), tag.data(), getpid(),
               static_cast<int>(line.size()), line.data());
}

Status RecoverAndReport(const std::string& name, const std::string& dir,
                        bool json, bool quiet) {
  core::RecoveryOptions ro;
  ro.log = [&](std::string_view l) {
    if (!quiet) LogLine("recover", l);
  };
  auto topo = numa::Topology::Load();
  if (!topo.ok()) return topo.status();
  auto r = core::RecoverGrid(name, dir, *topo, ro);
  if (!r.ok()) return r.status();
  if (json) {
    base::JsonWriter j;
    j.BeginObject()
        .Field("name", name)
        .Field("journal_dir", dir)
        .Field("snapshot_entries", r->snapshot_entries)
        .Field("journal_records", r->journal_records)
        .Field("applied_records", r->applied_records)
        .Field("skipped_records", r->skipped_records)
        .Field("live_entries", r->live_entries)
        .Field("seconds", r->seconds)
        .Key("snapshots")
        .BeginArray();
    for (const auto& s : r->snapshots_used) j.String(s);
    j.EndArray().Key("rejected_snapshots").BeginArray();
    for (const auto& s : r->snapshots_rejected) j.String(s);
    j.EndArray().Key("dropped").BeginArray();
    for (const auto& d : r->dropped) {
      j.BeginObject()
          .Field("node", d.node)
          .Field("stream", d.stream)
          .Field("kind", d.kind)
          .Field("file", d.file)
          .Field("offset", d.offset)
          .Field("bytes", d.bytes)
          .Field("last_good_sequence", d.last_good_seq)
          .Field("reason", d.reason)
          .EndObject();
    }
    j.EndArray().EndObject();
    std::fputs(j.str().c_str(), stdout);
  } else if (!quiet) {
    std::printf(
        "recovered grid '%s' from %s: %llu snapshot entries, %llu journal "
        "records (%llu applied, %llu already covered), %llu live entries, "
        "%.3f s\n",
        name.c_str(), dir.c_str(),
        static_cast<unsigned long long>(r->snapshot_entries),
        static_cast<unsigned long long>(r->journal_records),
        static_cast<unsigned long long>(r->applied_records),
        static_cast<unsigned long long>(r->skipped_records),
        static_cast<unsigned long long>(r->live_entries), r->seconds);
    for (const auto& s : r->snapshots_rejected) {
      std::printf("rejected snapshot: %s\n", s.c_str());
    }
    for (const auto& d : r->dropped) {
      std::printf(
          "dropped at the end of %s's journal: %s in %s at offset %llu "
          "(%llu bytes; last good sequence %llu): %s\n",
          io::StreamLabel(io::StreamId(d.node, d.stream)).c_str(),
          d.kind.c_str(), d.file.c_str(),
          static_cast<unsigned long long>(d.offset),
          static_cast<unsigned long long>(d.bytes),
          static_cast<unsigned long long>(d.last_good_seq), d.reason.c_str());
    }
  }
  return Status::Ok();
}

int RunWorker(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  const bool quiet = a.Has("quiet");
  // Shared memory gone (a reboot) but a journal left: rebuild first.
  if (!shm::Segment::Exists("numagrid." + name + ".ctl")) {
    const std::string dir = a.Has("journal-dir")
                                ? a.Get("journal-dir")
                                : core::DefaultJournalDir(name);
    if (core::ReadManifest(dir).ok()) {
      if (!quiet) {
        LogLine("worker", "grid '" + name +
                              "' has no segments; recovering "
                              "it from " +
                              dir);
      }
      Status s = RecoverAndReport(name, dir, false, quiet);
      if (!s.ok()) return Fail("worker", s);
    }
  }
  auto probe = core::GridHandle::Attach(name);
  if (!probe.ok()) return Fail("worker", probe.status());
  const std::uint32_t node_count = (*probe)->config().node_count;
  const std::uint32_t streams = (*probe)->streams_per_node();
  // The journal streams to run, as stream ids (io::StreamId): every stream
  // of every node, or of --node, or only --stream of those.
  std::vector<std::uint32_t> nodes;
  std::optional<std::uint32_t> only_stream;
  if (a.Has("stream")) {
    auto s = base::ParseUint(a.Get("stream"), "--stream", streams - 1);
    if (!s.ok()) return Fail("worker", s.status());
    only_stream = static_cast<std::uint32_t>(*s);
  }
  for (std::uint32_t n = 0; n < node_count; ++n) {
    if (a.Has("node")) {
      auto want = base::ParseUint(a.Get("node"), "--node", node_count - 1);
      if (!want.ok()) return Fail("worker", want.status());
      if (*want != n) continue;
    }
    for (std::uint32_t s = 0; s < streams; ++s) {
      if (!only_stream || *only_stream == s) {
        nodes.push_back(io::StreamId(n, s));
      }
    }
  }
  std::uint64_t generation = 0;
  if (a.Has("generation")) {
    if (nodes.size() != 1) {
      return Fail("worker",
                  InvalidArgument("--generation needs --node (and --stream "
                                  "when the grid has several streams per "
                                  "node): a generation belongs to one "
                                  "journal stream"));
    }
    auto g = base::ParseUint(a.Get("generation"), "--generation");
    if (!g.ok()) return Fail("worker", g.status());
    if (*g == 0) {
      return Fail("worker", InvalidArgument("--generation must be at least 1"));
    }
    generation = *g;
  }
  probe->reset();
  InstallStopHandlers();
  auto topo = numa::Topology::Load();

  // Each node's task arena, built here before any thread is pinned:
  // oneTBB numbers NUMA nodes from the process's CPU binding at its first
  // use (core/worker_arena.h). Without one a node's worker runs its
  // per-partition work in its own thread.
  std::vector<std::unique_ptr<core::WorkerArena>> arenas(nodes.size());
  std::vector<std::string> arena_notes(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (a.Has("no-pin")) {
      arena_notes[i] = "no task arena (--no-pin)";
    } else if (!topo.ok()) {
      arena_notes[i] = "no task arena: " + topo.status().ToString();
    } else if (io::StreamNode(nodes[i]) >= topo->node_count()) {
      arena_notes[i] = "no task arena: the topology (" + topo->source() +
                       ") has no node " +
                       std::to_string(io::StreamNode(nodes[i]));
    } else if (auto arena =
                   core::WorkerArena::Create(*topo, io::StreamNode(nodes[i]));
               arena.ok()) {
      arena_notes[i] = (*arena)->description();
      arenas[i] = std::move(*arena);
    } else {
      arena_notes[i] = "no task arena: " + arena.status().ToString();
    }
  }

  // A worker of one node (the watchdog's: one stream each) is pinned as a
  // whole, from here on, so that every thread it starts from now (the
  // stream's, io_uring's, oneTBB's) starts on the node's cores. Not before
  // the arenas exist: oneTBB reads the NUMA nodes from this binding.
  const bool one_node =
      !nodes.empty() &&
      std::all_of(nodes.begin(), nodes.end(), [&](std::uint32_t id) {
        return io::StreamNode(id) == io::StreamNode(nodes.front());
      });
  if (one_node && topo.ok() && !a.Has("no-pin") && topo->is_this_system() &&
      io::StreamNode(nodes.front()) < topo->node_count()) {
    auto pinned = topo->PinThreadToNode(io::StreamNode(nodes.front()));
    if (!pinned.ok() && !quiet) {
      LogLine("worker", "cannot pin to node: " + pinned.status().ToString());
    }
  }

  // One thread per journal stream, each with its own handle and pinned to
  // its node (the streams of a node share its cores).
  std::vector<Status> results(nodes.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    threads.emplace_back([&, i] {
      const std::uint32_t node = io::StreamNode(nodes[i]);
      auto log = [&](std::string_view l) {
        if (!quiet) LogLine("worker", l);
      };
      if (topo.ok() && !a.Has("no-pin") && topo->is_this_system() &&
          node < topo->node_count()) {
        auto pinned = topo->PinThreadToNode(node);
        if (!pinned.ok())
          log("cannot pin to node: " + pinned.status().ToString());
      }
      auto h = core::GridHandle::Attach(name);
      if (!h.ok()) {
        results[i] = h.status();
        // relaxed: a flag the other threads poll.
        g_stop.store(true, std::memory_order_relaxed);
        return;
      }
      core::JournalWorkerOptions o;
      o.node = node;
      o.stream = io::StreamIndex(nodes[i]);
      o.generation = generation;
      o.stop = &g_stop;
      o.log = log;
      o.arena = arenas[i].get();
      log(io::StreamLabel(nodes[i]) + ": journaling grid '" + name + "' into " +
          (*h)->journal_dir());
      log(io::StreamLabel(nodes[i]) + ": " + arena_notes[i]);
      results[i] = core::RunJournalWorker(**h, o);
      if (!results[i].ok()) {
        // One node failing stops the others: a supervisor restarts the
        // process, and a half-running worker would hide the failure.
        // relaxed: a flag the other threads poll.
        g_stop.store(true, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!results[i].ok()) {
      return Fail("worker", results[i].WithContext(io::StreamLabel(nodes[i])));
    }
  }
  return 0;
}

int RunRecover(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  const std::string dir = a.Has("journal-dir") ? a.Get("journal-dir")
                                               : core::DefaultJournalDir(name);
  Status s = RecoverAndReport(name, dir, a.Has("json"), a.Has("quiet"));
  if (!s.ok()) return Fail("recover", s);
  return 0;
}

int RunSnapshot(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return Fail("snapshot", h.status());
  core::SnapshotOptions so;
  so.log = [&](std::string_view l) {
    if (!a.Has("quiet")) LogLine("snapshot", l);
  };
  auto r = core::SnapshotGrid(**h, so);
  if (!r.ok()) return Fail("snapshot", r.status());
  if (a.Has("json")) {
    base::JsonWriter j;
    j.BeginObject().Key("nodes").BeginArray();
    for (const auto& n : *r) {
      j.BeginObject()
          .Field("node", n.node)
          .Field("stream", n.stream)
          .Field("file", n.path)
          .Field("journal_sequence", n.journal_seq)
          .Field("entries", n.entries)
          .Field("bytes", n.bytes)
          .Field("by_worker", n.by_worker)
          .Field("journal_segments_deleted", n.segments_deleted)
          .EndObject();
    }
    j.EndArray().EndObject();
    std::fputs(j.str().c_str(), stdout);
  } else if (!a.Has("quiet")) {
    for (const auto& n : *r) {
      const std::string stream =
          n.stream == 0 ? std::string() : " stream " + std::to_string(n.stream);
      std::printf(
          "node %u%s: %s (%llu entries, %s, covers journal through %llu;"
          " %llu journal segment(s) deleted)\n",
          n.node, stream.c_str(), n.path.c_str(),
          static_cast<unsigned long long>(n.entries),
          base::FormatSize(n.bytes).c_str(),
          static_cast<unsigned long long>(n.journal_seq),
          static_cast<unsigned long long>(n.segments_deleted));
    }
  }
  return 0;
}

int RunStatus(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return Fail("status", h.status());
  const core::GridStatusReport r = core::GridStatus(**h);
  if (a.Has("json")) {
    base::JsonWriter j;
    j.BeginObject()
        .Field("name", r.name)
        .Field("journal_dir", r.journal_dir)
        .Field("durability", r.durability)
        .Field("watchdog_pid", r.watchdog_pid)
        .Field("workers_per_node", r.streams_per_node)
        .Key("nodes")
        .BeginArray();
    for (const auto& n : r.nodes) {
      j.BeginObject()
          .Field("node", n.node)
          .Field("stream", n.stream)
          .Field("worker_pid", n.worker_pid)
          .Field("worker_alive", n.worker_alive)
          .Field("worker_state", n.worker_state)
          .Field("heartbeat_age_ms", n.heartbeat_age_ms)
          .Field("durable_journal_sequence", n.durable_journal_seq)
          .Field("journaled_records", n.records)
          .Field("journaled_bytes", n.bytes)
          .Field("flushes", n.flushes)
          .Field("io_errors", n.io_errors)
          .Field("pending_changes", n.pending_changes)
          .Field("max_ring_depth", n.max_ring_depth)
          .Field("ring_capacity", n.ring_capacity)
          .Field("snapshots", n.snapshots_done)
          .Field("generation", n.generation)
          .Field("worker_generation", n.worker_generation)
          .Field("restarts", n.restarts)
          .Field("fences", n.fences)
          .Field("expired_reclaimed", n.expired_reclaimed)
          .Field("worker_arena", n.worker_arena)
          .Field("worker_arena_threads", n.worker_arena_threads)
          .EndObject();
    }
    j.EndArray().EndObject();
    std::fputs(j.str().c_str(), stdout);
    return 0;
  }
  std::printf(
      "grid %s: journal %s, %s durability, watchdog %s\n", r.name.c_str(),
      r.journal_dir.empty() ? "none" : r.journal_dir.c_str(),
      r.durability.c_str(),
      r.watchdog_pid == 0 ? "not running"
                          : ("pid " + std::to_string(r.watchdog_pid)).c_str());
  std::printf("%-5s %-8s %-5s %-9s %-10s %10s %12s %9s %8s %8s %10s\n", "node",
              "worker", "gen", "state", "heartbeat", "durable", "records",
              "io_errors", "restarts", "pending", "ring_max");
  for (const auto& n : r.nodes) {
    const std::string pid =
        n.worker_pid == 0
            ? "-"
            : std::to_string(n.worker_pid) + (n.worker_alive ? "" : "(dead)");
    const std::string beat = n.heartbeat_age_ms < 0
                                 ? "-"
                                 : std::to_string(n.heartbeat_age_ms) + " ms";
    // A worker behind the node's generation is fenced: it steps down.
    const std::string gen = n.worker_generation == 0 ? "-"
                            : n.worker_generation == n.generation
                                ? std::to_string(n.worker_generation)
                                : std::to_string(n.worker_generation) + "!";
    // "N", or "N.S" (node N, stream S) when the grid has several streams
    // per node.
    const std::string node =
        std::to_string(n.node) +
        (r.streams_per_node > 1 ? "." + std::to_string(n.stream) : "");
    std::printf(
        "%-5s %-8s %-5s %-9s %-10s %10llu %12llu %9llu %8llu %8llu "
        "%5llu/%llu\n",
        node.c_str(), pid.c_str(), gen.c_str(), n.worker_state.c_str(),
        beat.c_str(), static_cast<unsigned long long>(n.durable_journal_seq),
        static_cast<unsigned long long>(n.records),
        static_cast<unsigned long long>(n.io_errors),
        static_cast<unsigned long long>(n.restarts),
        static_cast<unsigned long long>(n.pending_changes),
        static_cast<unsigned long long>(n.max_ring_depth),
        static_cast<unsigned long long>(n.ring_capacity));
  }
  return 0;
}

}  // namespace

std::vector<CommandSpec> JournalCommands() {
  return {
      {"worker",
       "NAME [--node N [--stream S] [--generation G]] [--journal-dir DIR] "
       "[--quiet]",
       "journal a grid's changes: drain the change rings of each node into "
       "its journal",
       "Runs until SIGTERM or SIGINT, then drains every ring, flushes and\n"
       "exits 0 (a graceful stop loses nothing). Without --node, one thread\n"
       "per journal stream of every NUMA node (a grid created with\n"
       "--workers-per-node K has K per node), each pinned to its node's\n"
       "cores. One worker per stream: a second one exits 4 naming the first. "
       "An I/O error (a full disk) is\n"
       "logged and retried with backoff; no change is dropped, writers wait\n"
       "and then get exit 8 once a ring is full. When the grid's segments\n"
       "are missing but its journal directory has a manifest, the worker\n"
       "recovers the grid first. Each worker holds a generation; when the\n"
       "node's generation moves past it (`numagrid fence`, or the watchdog\n"
       "replacing a silent worker) it exits 4 before its next journal\n"
       "write, without writing. Log lines go to stderr.",
       {{"node", "N", "journal only node N (default: every node)"},
        {"stream", "S",
         "journal only stream S of the node(s), 0..K-1 (default: every "
         "stream)"},
        {"generation", "G",
         "with --node (and --stream): run as generation G, given by the "
         "watchdog; exit 4 (fenced) if the stream has moved past it "
         "(default: take the next)"},
        {"journal-dir", "DIR",
         "where to look for a journal to recover from when the grid is "
         "missing (default /var/lib/numagrid/NAME)"},
        {"no-pin", "", "do not pin the node threads to their nodes' cores"},
        {"quiet", "", "log nothing"}},
       1,
       1,
       RunWorker},
      {"recover",
       "NAME [--journal-dir DIR] [--json] [--quiet]",
       "rebuild a grid from its snapshots and journal",
       "Creates the grid's segments from the manifest in DIR (default\n"
       "/var/lib/numagrid/NAME), loads each node's newest valid snapshot\n"
       "(an older one if the newest is damaged), replays the journal after\n"
       "it, partitions in parallel, and stops at a torn or corrupt tail,\n"
       "which it cuts off and reports exactly (file, offset, bytes, last good\n"
       "sequence). Damage before the tail is refused (exit 7): nothing is\n"
       "skipped silently. The grid exists but refuses attaches until the\n"
       "rebuild is complete; a recover that was killed is simply run again.\n"
       "Fails with exit 4 if the grid's segments exist.",
       {{"journal-dir", "DIR", "the grid's journal directory"},
        {"json", "", "print the report as JSON"},
        {"quiet", "", "print nothing on success"}},
       1,
       1,
       RunRecover},
      {"snapshot",
       "NAME [--json] [--quiet]",
       "snapshot every node's partitions and delete the journal they cover",
       "A node whose worker runs is snapshotted by that worker; otherwise\n"
       "by this command. Each partition is copied under its lock, so its\n"
       "writers pause for the copy. The two newest snapshots of each node\n"
       "are kept (recovery falls back to the older one if the newer is\n"
       "damaged); journal segments that the older one covers are deleted.",
       {{"json", "", "print the result as JSON"},
        {"quiet", "", "print nothing on success"}},
       1,
       1,
       RunSnapshot},
      {"status",
       "NAME [--json]",
       "the journal workers and how far behind the journal is, per node",
       "worker: the pid of the node's last journal worker ('(dead)' if it\n"
       "no longer runs); gen: the generation it holds ('!' after it: the\n"
       "node's generation has moved past it, it is fenced and steps down);\n"
       "state: running, retrying (after I/O errors),\n"
       "stopped, dead (gone without stopping) or none; heartbeat: since its "
       "last loop; durable: the last\n"
       "durable journal sequence; restarts: by the watchdog; pending:\n"
       "changes visible but not yet\n"
       "durable; ring_max: the fullest change ring (entries not yet freed)\n"
       "against its capacity.",
       {{"json", "", "print as JSON"}},
       1,
       1,
       RunStatus},
  };
}

}  // namespace numagrid::cli
