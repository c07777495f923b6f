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
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_dir.h"
#include "core/recovery.h"
#include "core/watchdog.h"
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

int RunStart(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  if (a.Has("workers-per-node") && a.Get("workers-per-node") != "1") {
    return Fail("start", InvalidArgument(
                             "--workers-per-node: only 1 is supported (each "
                             "node has one journal, written by one worker)"));
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
  // The journal directory: given, or the existing grid's, or the default
  // (where a grid whose shared memory is gone is recovered from).
  std::string dir = a.Get("journal-dir");
  if (dir.empty()) {
    auto info = core::InspectGrid(name, nullptr);
    dir = info.ok() && !info->journal_dir.empty()
              ? info->journal_dir
              : core::DefaultJournalDir(name);
  }
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
  if (const std::uint64_t pid = core::RunningWatchdog(name); pid != 0) {
    return Fail("start", AlreadyExists("grid '" + name +
                                       "' already has a watchdog (pid " +
                                       std::to_string(pid) + ")"));
  }
  struct sigaction sa {};
  sa.sa_handler = OnWatchdogStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  if (a.Has("foreground")) {
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
    if (!a.Has("quiet")) {
      std::printf(
          "stopped grid '%s': workers drained every ring and "
          "flushed\n",
          name.c_str());
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

int RunEvents(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  std::string dir = a.Get("journal-dir");
  if (dir.empty()) {
    auto info = core::InspectGrid(name, nullptr);
    dir = info.ok() && !info->journal_dir.empty()
              ? info->journal_dir
              : core::DefaultJournalDir(name);
  }
  const std::string path = dir + "/events.log";
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    if (errno == ENOENT) {
      return Fail("events",
                  NotFound("no events for grid '" + name + "' (" + path +
                           " does not exist: no watchdog "
                           "has run)"));
    }
    return Fail("events", IoError(path + ": " + strerror(errno)));
  }
  std::vector<std::string> lines;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f) != nullptr) {
    std::string l(buf);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (!l.empty()) lines.push_back(std::move(l));
  }
  std::fclose(f);
  std::size_t first = 0;
  if (a.Has("last")) {
    auto n = base::ParseUint(a.Get("last"), "--last");
    if (!n.ok()) return Fail("events", n.status());
    if (*n < lines.size()) first = lines.size() - *n;
  }
  if (a.Has("json")) {
    std::printf("[");
    for (std::size_t i = first; i < lines.size(); ++i) {
      std::printf("%s\n  %s", i == first ? "" : ",", lines[i].c_str());
    }
    std::printf("%s]\n", lines.size() > first ? "\n" : "");
    return 0;
  }
  std::printf("%-24s %-20s %-5s %-8s %9s  %s\n", "time (UTC)", "event", "node",
              "pid", "ms", "cause");
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
    const std::string node = JsonField(l, "node");
    const std::string pid = JsonField(l, "pid");
    const std::string dur = JsonField(l, "duration_ms");
    std::printf(
        "%-24s %-20s %-5s %-8s %9s  %s\n", when, JsonField(l, "event").c_str(),
        node.empty() ? "-" : node.c_str(), pid.empty() ? "-" : pid.c_str(),
        dur.empty() ? "-" : dur.c_str(), JsonField(l, "cause").c_str());
  }
  return 0;
}

}  // namespace

std::vector<CommandSpec> WatchdogCommands() {
  return {
      {"start",
       "NAME [--foreground] [--heartbeat-timeout T] [--journal-dir DIR]",
       "run the grid's watchdog: a journal worker per node, restarted when "
       "it dies",
       "The watchdog starts one `numagrid worker NAME --node N` process per\n"
       "NUMA node, restarts a worker that exits or whose heartbeat is older\n"
       "than --heartbeat-timeout (killing it first), backs off when a worker\n"
       "keeps dying, and repairs the slots of attached processes that died.\n"
       "A worker left running by a watchdog that died is adopted. Every event\n"
       "goes to its log and, as a JSON line, to events.log in the journal\n"
       "directory. Without --foreground it detaches, logs to numagrid.log in\n"
       "the journal directory, and returns once the workers run. When the\n"
       "grid's segments are gone but DIR (default /var/lib/numagrid/NAME)\n"
       "has its journal, the grid is recovered first. A second watchdog of\n"
       "the same grid exits 4 naming the first.",
       {{"foreground", "", "do not detach (for systemd or a terminal)"},
        {"heartbeat-timeout", "T",
         "replace a worker silent this long "
         "(default 3s)"},
        {"workers-per-node", "K", "only 1 is supported"},
        {"journal-dir", "DIR", "where to recover from if the grid is missing"},
        {"quiet", "", "print nothing on success"}},
       1,
       1,
       RunStart},
      {"stop",
       "NAME [--destroy] [--timeout T]",
       "stop the grid's watchdog gracefully: workers drain and flush",
       "Sends SIGTERM to the watchdog, which asks every worker to drain its\n"
       "rings and flush, waits for them, and exits; waits for that (exit 12\n"
       "after --timeout, default 2m). --destroy then removes the grid's\n"
       "segments (the journal stays: `numagrid recover` rebuilds the grid).",
       {{"destroy", "", "remove the segments afterwards"},
        {"timeout", "T", "how long to wait for the drain (default 2m)"},
        {"quiet", "", "print nothing on success"}},
       1,
       1,
       RunStop},
      {"events",
       "NAME [--last N] [--json] [--journal-dir DIR]",
       "the watchdog's events: starts, exits, restarts, kills, adoptions, "
       "repairs",
       "Read from events.log (JSON lines) in the grid's journal directory,\n"
       "oldest first, with time, event, node, pid, duration and cause.",
       {{"last", "N", "only the last N events"},
        {"json", "", "print as a JSON array"},
        {"journal-dir", "DIR",
         "the journal directory, when the grid's segments are gone"}},
       1,
       1,
       RunEvents},
  };
}

}  // namespace numagrid::cli
