// `numagrid top`: a live view of a grid's counters in the terminal, redrawn
// every --interval seconds until q or Ctrl-C. The frame is laid out by
// core/top_frame.h; the screen, keys and signals are core/cli/terminal.h.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "core/base/units.h"
#include "core/cli/command.h"
#include "core/cli/commands.h"
#include "core/cli/terminal.h"
#include "core/event_log.h"
#include "core/grid_handle.h"
#include "core/grid_status.h"
#include "core/stats.h"
#include "core/top_frame.h"

namespace numagrid::cli {
namespace {

constexpr double kMaxIntervalS = 86400;

// A positive decimal number of seconds ("1", "0.2", "2.5"): no sign, no
// exponent, no hex, inf or nan, which strtod alone would take.
Result<double> ParseInterval(const std::string& text) {
  bool digits = false;
  bool point = false;
  bool ok = !text.empty();
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      ok = false;
    }
  }
  const double s = ok && digits ? std::strtod(text.c_str(), nullptr) : 0;
  if (!(s > 0) || s > kMaxIntervalS) {
    return InvalidArgument(
        "--interval needs a number of seconds above 0 and "
        "at most 86400, such as 1 or 0.5 (got '" +
        text + "')");
  }
  return s;
}

core::TopReading Read(core::GridHandle& h) {
  core::TopReading r;
  r.stats = core::CollectStats(h);
  r.status = core::GridStatus(h);
  r.events = core::ReadEvents(h);
  r.unix_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  return r;
}

int RunTop(const ParsedArgs& a) {
  const std::string& name = a.positional()[0];
  auto interval_s = ParseInterval(a.Get("interval", "1"));
  if (!interval_s.ok()) return Fail("top", interval_s.status());
  std::uint64_t iterations = 0;  // 0: until q or a signal
  if (a.Has("iterations")) {
    auto n = base::ParseUint(a.Get("iterations"), "--iterations");
    if (!n.ok()) return Fail("top", n.status());
    if (*n == 0) {
      return Fail("top", InvalidArgument("--iterations needs at least 1"));
    }
    iterations = *n;
  }
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return Fail("top", h.status());

  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(*interval_s));
  Terminal term;
  // The first frame has no previous reading: it shows the counters with
  // "-" for every rate.
  core::TopReading before = Read(**h);
  Clock::time_point before_t = Clock::now();
  core::TopReading after = before;
  Clock::time_point after_t = before_t;
  Clock::time_point next = before_t;
  for (std::uint64_t frames = 0;;) {
    const double elapsed_s =
        std::chrono::duration<double>(after_t - before_t).count();
    if (!term.Draw(core::RenderTopFrame(before, after, elapsed_s, term.Size(),
                                        *interval_s))) {
      return 0;  // the terminal or pipe is gone: nobody to show more to
    }
    if (iterations != 0 && ++frames >= iterations) return 0;
    // Frames keep to the interval's schedule however long reading and
    // drawing took.
    next += interval;
    Terminal::Wake wake = Terminal::Wake::kResize;
    while (wake == Terminal::Wake::kResize) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - Clock::now());
      wake = term.Wait(std::max<std::int64_t>(left.count(), 0));
      if (wake == Terminal::Wake::kQuit) return 0;
      if (wake == Terminal::Wake::kResize) {
        // The same readings at the new size, at once.
        (void)term.Draw(core::RenderTopFrame(before, after, elapsed_s,
                                             term.Size(), *interval_s));
      }
    }
    if (Clock::now() > next + interval) next = Clock::now();  // fell behind
    before = std::move(after);
    before_t = after_t;
    after = Read(**h);
    after_t = Clock::now();
  }
}

}  // namespace

std::vector<CommandSpec> TopCommands() {
  return {
      {"top",
       "NAME [--interval SECONDS] [--iterations N]",
       "a live view of a grid: operations per second, hit rate, memory, "
       "rings, journal lag, workers",
       "Redraws the grid's counters every --interval seconds, in place\n"
       "(plain ANSI escape sequences: works over ssh), until q or Ctrl-C,\n"
       "then restores the terminal. Rates are the difference between two\n"
       "readings divided by the time between them; the first frame shows\n"
       "'-' for them.\n"
       "\n"
       "Grid: gets/s and the hit rate (of the interval, and since create),\n"
       "puts/s, removes/s, and the last failover-type event of the event\n"
       "ring (worker restarted, exited, killed, adopted, fenced or stepped\n"
       "down, failed start, crash-loop backoff, repair, recovery).\n"
       "Per node: entries, used and free memory, put/s and del/s, the\n"
       "fullest change ring's depth, journal lag (records, bytes, ms of the\n"
       "last batch), worker state, generation and restarts, and the node's\n"
       "last failover-type event. Per partition: entries, used and free\n"
       "memory, put/s, del/s, ring depth and journal lag; the busiest\n"
       "partitions (put/s + del/s) that fit the terminal's height are shown.\n"
       "Gets and hits are counted per process, not per partition or node:\n"
       "the get rate and hit rate are the grid's only. A grid created\n"
       "with --no-stats counts no gets. Numbers: docs/monitoring.md.\n"
       "\n"
       "Keys: q quits (so does Ctrl-C). Without a terminal on stdin no key\n"
       "is read: it runs until SIGINT or SIGTERM, or --iterations frames.\n"
       "Without a terminal on stdout the frames are printed one after the\n"
       "other (80x24), with no escape sequences.",
       {{"interval", "SECONDS",
         "seconds between frames, above 0, such as 0.5 (default 1)"},
        {"iterations", "N",
         "exit 0 after N frames (default: until q, Ctrl-C or SIGTERM)"}},
       1,
       1,
       RunTop},
  };
}

}  // namespace numagrid::cli
