// `numagrid start|stop`: the watchdog that runs a grid's journal workers.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/event_log.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/grid_status.h"
#include "core/journal_dir.h"
#include "core/journal_worker.h"
#include "core/metrics_server.h"
#include "core/recovery.h"
#include "core/snapshot.h"
#include "core/watchdog.h"
#include "io/node_file_name.h"
#include "numa/topology.h"
#include "shm/segment.h"

namespace numagrid::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void OnWatchdogStop(int) {
  // relaxed: a flag the watchdog polls.
  g_stop.store(true, std::memory_order_relaxed);
}

void WatchdogLog(std::string_view line) {
  char ts[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s numagrid watchdog[%d]: %.*s\n", ts, getpid(),
               static_cast<int>(line.size()), line.data());
}

// The path of this executable, for the workers.
std::string SelfExe() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "numagrid";
  return std::string(buf, static_cast<std::size_t>(n));
}

// The journal directory: --journal-dir, or the existing grid's, or the
// default (where a grid whose shared memory is gone is recovered from).
std::string JournalDirOf(const ParsedArgs& a, const std::string& name) {
  std::string dir = a.Get("journal-dir");
  if (dir.empty()) {
    auto info = core::InspectGrid(name, nullptr);
    dir = info.ok() && !info->journal_dir.empty()
              ? info->journal_dir
              : core::DefaultJournalDir(name);
  }
  return dir;
}

int RunStart(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  std::optional<std::uint64_t> workers_per_node;
  if (a.Has("workers-per-node")) {
    auto k = base::ParseUint(a.Get("workers-per-node"), "--workers-per-node",
                             core::kMaxStreamsPerNode);
    if (!k.ok()) return Fail("start", k.status());
    workers_per_node = *k;
  }
  core::WatchdogOptions o;
  o.worker_exe = SelfExe();
  o.stop = &g_stop;
  o.log = WatchdogLog;
  if (a.Has("heartbeat-timeout")) {
    auto us = base::ParseDurationUs(a.Get("heartbeat-timeout"),
                                    "--heartbeat-timeout");
    if (!us.ok()) return Fail("start", us.status());
    if (*us < 100'000 || *us / 1000 > UINT32_MAX) {
      return Fail("start", InvalidArgument(
                               "--heartbeat-timeout must be at least 100ms"));
    }
    o.heartbeat_timeout_ms = static_cast<std::uint32_t>(*us / 1000);
  }
  const std::string dir = JournalDirOf(a, name);
  if (!shm::Segment::Exists("numagrid." + name + ".ctl") &&
      core::ReadManifest(dir).ok()) {
    auto topo = numa::Topology::Load();
    if (!topo.ok()) return Fail("start", topo.status());
    core::RecoveryOptions ro;
    ro.log = WatchdogLog;
    auto r = core::RecoverGrid(name, dir, *topo, ro);
    if (!r.ok()) return Fail("start", r.status());
    WatchdogLog("recovered grid '" + name + "' from " + dir + ": " +
                std::to_string(r->live_entries) + " entries in " +
                std::to_string(r->seconds) + " s");
  }
  if (workers_per_node) {
    // The streams are part of the grid's layout (its control segment and
    // journal files): `start` runs as many workers as the grid has.
    auto info = core::InspectGrid(name, nullptr);
    if (info.ok() && info->workers_per_node != *workers_per_node) {
      return Fail(
          "start",
          InvalidArgument(
              "--workers-per-node " + std::to_string(*workers_per_node) +
              ": grid '" + name + "' was created with " +
              std::to_string(info->workers_per_node) +
              " journal stream(s) per node, one worker each; changing it "
              "needs a new grid (`numagrid create ... --workers-per-node " +
              std::to_string(*workers_per_node) +
              "`) and `numagrid copy` (docs/runbooks/scaling.md)"));
    }
  }
  if (const std::uint64_t pid = core::RunningWatchdog(name); pid != 0) {
    return Fail("start", AlreadyExists("grid '" + name +
                                       "' already has a watchdog (pid " +
                                       std::to_string(pid) + ")"));
  }
  std::optional<core::MetricsListen> metrics_at;
  if (a.Has("metrics-listen")) {
    auto l = core::ParseMetricsListen(a.Get("metrics-listen"),
                                      a.Has("metrics-listen-any"));
    if (!l.ok()) return Fail("start", l.status());
    metrics_at = *l;
  } else if (a.Has("metrics-listen-any")) {
    return Fail("start", InvalidArgument("--metrics-listen-any needs "
                                         "--metrics-listen ADDRESS:PORT"));
  }
  // Serves /metrics for as long as the watchdog runs (on this process's
  // side of the fork: threads do not survive it).
  auto start_metrics = [&]() -> Result<std::unique_ptr<core::MetricsServer>> {
    if (!metrics_at) return std::unique_ptr<core::MetricsServer>();
    auto srv = core::MetricsServer::Start(name, *metrics_at);
    if (!srv.ok()) return srv.status();
    WatchdogLog("serving /metrics on port " + std::to_string((*srv)->port()));
    return srv;
  };
  struct sigaction sa {};
  sa.sa_handler = OnWatchdogStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  if (a.Has("foreground")) {
    auto metrics = start_metrics();
    if (!metrics.ok()) return Fail("start", metrics.status());
    Status s = core::RunWatchdog(name, o);
    return s.ok() ? 0 : Fail("start", s);
  }
  // Daemon: the child detaches and logs to the journal directory; the
  // parent returns once every worker was started (or the child failed).
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    return Fail("start", IoError("pipe: " + std::string(strerror(errno))));
  }
  const pid_t child = fork();
  if (child < 0) {
    return Fail("start", IoError("fork: " + std::string(strerror(errno))));
  }
  if (child == 0) {
    close(ready[0]);
    setsid();
    const int log =
        core::OpenJournalDirFile(dir, "numagrid.log", O_WRONLY | O_APPEND);
    const int fd = ready[1];
    if (log < 0) {
      // Never keep the caller's terminal or pipe: the caller would wait on
      // it, or a closed pipe would kill us on the next log line.
      const char code = static_cast<char>(StatusCode::kIoError);
      (void)!write(fd, "\0", 1);
      (void)!write(fd, &code, 1);
      _exit(static_cast<int>(StatusCode::kIoError));
    }
    const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) dup2(null, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    auto metrics = start_metrics();
    if (!metrics.ok()) {
      WatchdogLog(metrics.status().ToString());
      const char code = static_cast<char>(metrics.status().code());
      (void)!write(fd, "\0", 1);
      (void)!write(fd, &code, 1);
      _exit(static_cast<int>(metrics.status().code()));
    }
    o.ready = [fd] {
      const char ok = 1;
      (void)!write(fd, &ok, 1);
      close(fd);
    };
    Status s = core::RunWatchdog(name, o);
    if (!s.ok()) {
      WatchdogLog(s.ToString());
      // The parent reads the code from the pipe.
      const char code = static_cast<char>(s.code());
      (void)!write(fd, "\0", 1);
      (void)!write(fd, &code, 1);
    }
    _exit(s.ok() ? 0 : static_cast<int>(s.code()));
  }
  close(ready[1]);
  char buf[2] = {0, 0};
  const ssize_t n = read(ready[0], buf, 2);
  close(ready[0]);
  if (n >= 1 && buf[0] == 1) {
    if (!a.Has("quiet")) {
      std::printf("started the watchdog of grid '%s' (pid %d); log: %s\n",
                  name.c_str(), child, (dir + "/numagrid.log").c_str());
    }
    return 0;
  }
  const int code = n == 2 ? buf[1] : static_cast<int>(StatusCode::kIoError);
  return Fail("start", Status(static_cast<StatusCode>(code),
                              "the watchdog did not start; see " + dir +
                                  "/numagrid.log"));
}

int RunStop(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  std::uint64_t timeout_ms = 120000;
  if (a.Has("timeout")) {
    auto us = base::ParseDurationUs(a.Get("timeout"), "--timeout");
    if (!us.ok()) return Fail("stop", us.status());
    timeout_ms = *us / 1000;
  }
  const std::uint64_t pid = core::RunningWatchdog(name);
  if (pid == 0) {
    // Is there a grid at all?
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) return Fail("stop", h.status());
    if (!a.Has("quiet")) {
      std::printf("grid '%s' has no running watchdog\n", name.c_str());
    }
  } else {
    kill(static_cast<pid_t>(pid), SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(timeout_ms);
    while (core::ProcessRunning(pid)) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Fail("stop",
                    Unavailable("the watchdog (pid " + std::to_string(pid) +
                                ") is still draining after " +
                                std::to_string(timeout_ms) + " ms"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // Say what the drain achieved: a worker that was not running (a crash
    // loop, a failing disk) drained nothing.
    std::uint64_t pending = 0;
    if (auto h = core::GridHandle::Attach(name); h.ok()) {
      for (const auto& n : core::GridStatus(**h).nodes) {
        pending += n.pending_changes;
      }
    }
    if (pending != 0) {
      std::fprintf(stderr,
                   "numagrid stop: grid '%s' stopped, but %llu change(s) are "
                   "not yet durable: no worker journaled them (see `numagrid "
                   "events %s`); they are still in shared memory, and the "
                   "next `numagrid start` journals them\n",
                   name.c_str(), static_cast<unsigned long long>(pending),
                   name.c_str());
    } else if (!a.Has("quiet")) {
      std::printf(
          "stopped grid '%s': workers drained every ring and "
          "flushed\n",
          name.c_str());
    }
  }
  if (a.Has("snapshot")) {
    // The workers are gone: the snapshot is written here, and it prunes
    // the journal segments the older snapshot covers.
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) return Fail("stop", h.status());
    core::SnapshotOptions so;
    auto r = core::SnapshotGrid(**h, so);
    if (!r.ok()) return Fail("stop", r.status().WithContext("final snapshot"));
    if (!a.Has("quiet")) {
      std::uint64_t entries = 0;
      for (const auto& n : *r) entries += n.entries;
      std::printf("took a final snapshot of grid '%s': %llu entries\n",
                  name.c_str(), static_cast<unsigned long long>(entries));
    }
  }
  if (a.Has("destroy")) {
    Status s = core::DestroyGrid(name);
    if (!s.ok()) return Fail("stop", s);
    if (!a.Has("quiet")) std::printf("destroyed grid '%s'\n", name.c_str());
  }
  return 0;
}

// The value of "key" in one events.log line ("" if absent): the lines are
// written by the watchdog, flat objects of strings and integers.
std::string JsonField(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const auto at = line.find(k);
  if (at == std::string::npos) return "";
  std::size_t i = at + k.size();
  if (i < line.size() && line[i] == '"') {
    std::string v;
    for (++i; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) ++i;
      v += line[i];
    }
    return v;
  }
  std::size_t j = i;
  while (j < line.size() && line[j] != ',' && line[j] != '}') ++j;
  return line.substr(i, j - i);
}

// The lines of events.log, oldest first, or an error naming the file.
Result<std::vector<std::string>> ReadEventsLog(const std::string& name,
                                               const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    if (errno == ENOENT) {
      return NotFound("no events for grid '" + name + "' (" + path +
                      " does not exist: no watchdog has run)");
    }
    return IoError(path + ": " + strerror(errno));
  }
  std::vector<std::string> lines;
  std::string line;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f) != nullptr) {
    line += buf;
    if (line.back() != '\n') continue;  // a longer line: read on
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
      line.pop_back();
    }
    // A recorder killed mid-write leaves a partial line: skip it.
    if (line.size() > 2 && line.front() == '{' && line.back() == '}') {
      lines.push_back(line);
    }
    line.clear();
  }
  std::fclose(f);
  return lines;
}

int RunEvents(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  std::size_t last = SIZE_MAX;
  if (a.Has("last")) {
    auto n = base::ParseUint(a.Get("last"), "--last");
    if (!n.ok()) return Fail("events", n.status());
    last = static_cast<std::size_t>(*n);
  }
  // A running grid: its ring in the control segment. Else, or with --log,
  // the journal directory's events.log (the whole history).
  std::vector<std::string> lines;
  auto h = a.Has("log") || a.Has("journal-dir")
               ? Result<std::unique_ptr<core::GridHandle>>(NotFound(""))
               : core::GridHandle::Attach(name);
  if (h.ok() && (*h)->journaled()) {
    for (const core::GridEvent& e : core::ReadEvents(**h)) {
      lines.push_back(core::EventJson(e, name));
    }
  } else {
    const std::string dir = JournalDirOf(a, name);
    auto read = ReadEventsLog(name, dir + "/events.log");
    if (!read.ok()) return Fail("events", read.status());
    lines = std::move(*read);
  }
  const std::size_t first = last < lines.size() ? lines.size() - last : 0;
  if (a.Has("json")) {
    std::printf("[");
    for (std::size_t i = first; i < lines.size(); ++i) {
      std::printf("%s\n  %s", i == first ? "" : ",", lines[i].c_str());
    }
    std::printf("%s]\n", lines.size() > first ? "\n" : "");
    return 0;
  }
  std::printf("%-24s %-20s %-5s %-8s %-4s %9s  %s\n", "time (UTC)", "event",
              "node", "pid", "gen", "ms", "cause");
  for (std::size_t i = first; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    const std::string ms = JsonField(l, "time_unix_ms");
    char when[32] = "-";
    if (!ms.empty()) {
      const std::time_t t = static_cast<std::time_t>(std::stoull(ms) / 1000);
      std::tm tm{};
      gmtime_r(&t, &tm);
      std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
      std::snprintf(when + std::strlen(when), sizeof when - std::strlen(when),
                    ".%03lluZ",
                    static_cast<unsigned long long>(std::stoull(ms) % 1000));
    }
    const auto or_dash = [](const std::string& v) {
      return v.empty() ? std::string("-") : v;
    };
    // "N", or "N.S" for stream S > 0 of node N.
    std::string node = JsonField(l, "node");
    if (const std::string stream = JsonField(l, "stream"); !stream.empty()) {
      node += "." + stream;
    }
    std::printf("%-24s %-20s %-5s %-8s %-4s %9s  %s\n", when,
                JsonField(l, "event").c_str(), or_dash(node).c_str(),
                or_dash(JsonField(l, "pid")).c_str(),
                or_dash(JsonField(l, "generation")).c_str(),
                or_dash(JsonField(l, "duration_ms")).c_str(),
                JsonField(l, "cause").c_str());
  }
  return 0;
}

int RunFence(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return Fail("fence", h.status());
  if (!(*h)->journaled()) {
    return Fail("fence", InvalidArgument("grid '" + name +
                                         "' has no journal: it has no "
                                         "workers to fence"));
  }
  const std::uint32_t node_count = (*h)->config().node_count;
  const std::uint32_t streams = (*h)->streams_per_node();
  std::optional<std::uint64_t> only_node;
  std::optional<std::uint64_t> only_stream;
  if (a.Has("node")) {
    auto n = base::ParseUint(a.Get("node"), "--node", node_count - 1);
    if (!n.ok()) return Fail("fence", n.status());
    only_node = *n;
  }
  if (a.Has("stream")) {
    auto s = base::ParseUint(a.Get("stream"), "--stream", streams - 1);
    if (!s.ok()) return Fail("fence", s.status());
    only_stream = *s;
  }
  // Stream ids (io::StreamId) of the workers to fence.
  std::vector<std::uint32_t> nodes;
  for (const std::uint32_t id : (*h)->stream_ids()) {
    if ((!only_node || *only_node == io::StreamNode(id)) &&
        (!only_stream || *only_stream == io::StreamIndex(id))) {
      nodes.push_back(id);
    }
  }
  const std::string reason =
      a.Has("reason") ? a.Get("reason") : std::string("by `numagrid fence`");
  for (std::uint32_t n : nodes) {
    // relaxed: for the message only.
    const std::uint64_t pid =
        (*h)->journal_node(n).worker_pid.load(std::memory_order_relaxed);
    const std::uint64_t old_gen =
        (*h)->journal_node(n).worker_generation.load(std::memory_order_relaxed);
    const std::uint64_t gen = core::FenceNodeWorker(**h, n, reason);
    if (!a.Has("quiet")) {
      std::printf(
          "%s: generation is now %llu; the worker of generation %llu "
          "(pid %llu) steps down before its next journal write\n",
          io::StreamLabel(n).c_str(), static_cast<unsigned long long>(gen),
          static_cast<unsigned long long>(old_gen),
          static_cast<unsigned long long>(pid));
    }
  }
  return 0;
}

}  // namespace

std::vector<CommandSpec> WatchdogCommands() {
  return {
      {"start",
       "NAME [--foreground] [--heartbeat-timeout T] [--workers-per-node K] "
       "[--journal-dir DIR] [--metrics-listen ADDRESS:PORT "
       "[--metrics-listen-any]]",
       "run the grid's watchdog: a journal worker per node, restarted when "
       "it dies",
       "The watchdog starts one `numagrid worker NAME --node N --stream S`\n"
       "process per journal stream (K per node, fixed at create) of each\n"
       "NUMA node, restarts a worker that exits or whose heartbeat is older\n"
       "than --heartbeat-timeout (fencing it, then killing it), backs off\n"
       "when a worker keeps dying, and repairs the slots of attached\n"
       "processes that died. Each worker it starts gets its stream's next\n"
       "generation; an older worker steps down before its next journal\n"
       "write. A worker left running by a watchdog that died is adopted.\n"
       "Every event goes to its log, to the control segment (`numagrid\n"
       "events`) and, as a JSON line, to events.log in the journal\n"
       "directory. Without --foreground it detaches, logs to numagrid.log in\n"
       "the journal directory, and returns once the workers run. When the\n"
       "grid's segments are gone but DIR (default /var/lib/numagrid/NAME)\n"
       "has its journal, the grid is recovered first. A second watchdog of\n"
       "the same grid exits 4 naming the first. With --metrics-listen it\n"
       "serves the grid's Prometheus metrics at http://ADDRESS:PORT/metrics\n"
       "(docs/monitoring.md); only on a loopback address unless\n"
       "--metrics-listen-any (there is no authentication).",
       {{"foreground", "", "do not detach (for systemd or a terminal)"},
        {"metrics-listen", "ADDRESS:PORT",
         "serve /metrics there, e.g. 127.0.0.1:9464"},
        {"metrics-listen-any", "",
         "allow a non-loopback --metrics-listen address"},
        {"heartbeat-timeout", "T",
         "replace a worker silent this long "
         "(default 3s)"},
        {"workers-per-node", "K",
         "must be the grid's own (`create --workers-per-node`; default: "
         "the grid's); another value exits 2"},
        {"journal-dir", "DIR", "where to recover from if the grid is missing"},
        {"quiet", "", "print nothing on success"}},
       1,
       1,
       RunStart},
      {"stop",
       "NAME [--snapshot] [--destroy] [--timeout T]",
       "stop the grid's watchdog gracefully: workers drain and flush",
       "Sends SIGTERM to the watchdog, which asks every worker to drain its\n"
       "rings and flush, waits for them, and exits; waits for that (exit 12\n"
       "after --timeout, default 2m). --snapshot then takes a final snapshot\n"
       "(a later recovery replays no journal). --destroy then removes the\n"
       "grid's segments (the journal stays: `numagrid recover` or `numagrid\n"
       "start` rebuilds the grid).",
       {{"snapshot", "", "take a final snapshot after the drain"},
        {"destroy", "", "remove the segments afterwards"},
        {"timeout", "T", "how long to wait for the drain (default 2m)"},
        {"quiet", "", "print nothing on success"}},
       1,
       1,
       RunStop},
      {"events",
       "NAME [--last N] [--json] [--log] [--journal-dir DIR]",
       "the grid's events: worker starts, exits, restarts, kills, adoptions, "
       "fencing, repairs, recoveries",
       "Oldest first, with time, event, node, pid, worker generation,\n"
       "duration and cause. Of a running grid: the last 256 events, kept in\n"
       "its control segment. With --log, or when the grid's segments are\n"
       "gone: the whole history, events.log (JSON lines) in the journal\n"
       "directory.",
       {{"last", "N", "only the last N events"},
        {"json", "", "print as a JSON array"},
        {"log", "", "read events.log instead of the control segment"},
        {"journal-dir", "DIR",
         "read events.log in DIR (when the grid's segments are gone)"}},
       1,
       1,
       RunEvents},
      {"fence",
       "NAME [--node N] [--stream S] [--reason TEXT] [--quiet]",
       "make a node's journal worker step down: bump the node's generation",
       "The worker holding the old generation exits (status 4) before its\n"
       "next journal write, without writing: at once if it runs, when it is\n"
       "resumed if it is stopped (SIGSTOP). A running watchdog starts a\n"
       "worker of a newer generation once it has gone. For a worker you\n"
       "cannot kill (another user's, another pid namespace's) or suspect of\n"
       "being stale; see docs/runbooks/split-brain.md. Recorded as a\n"
       "worker_fenced event.",
       {{"node", "N", "only node N (default: every node)"},
        {"stream", "S",
         "only journal stream S of the node(s) (default: every stream)"},
        {"reason", "TEXT", "the cause recorded in the event"},
        {"quiet", "", "print nothing"}},
       1,
       1,
       RunFence},
  };
}

}  // namespace numagrid::cli
