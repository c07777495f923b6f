#include "core/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/json_writer.h"
#include "core/event_log_layout.h"
#include "core/journal_dir.h"
#include "io/node_file_name.h"

namespace numagrid::core {
namespace {

constexpr std::string_view kKindNames[] = {
    "unknown",
    "watchdog_started",
    "watchdog_stopped",
    "worker_started",
    "worker_restarted",
    "worker_adopted",
    "worker_exited",
    "worker_killed",
    "worker_fenced",
    "worker_start_failed",
    "worker_stopped",
    "crash_loop_backoff",
    "repair",
    "recovery",
    "worker_stepped_down",
    "config_changed",
    "journal_io_error",
    "journal_io_recovered",
    "backpressure",
};

std::uint64_t UnixNowMs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

void WriteSlot(EventSlot& s, std::uint64_t n, const GridEvent& e) {
  // relaxed: ordered before every payload word by their release stores; a
  // reader that sees a payload word of this event sees this stamp too.
  s.stamp.store(2 * n + 1, std::memory_order_relaxed);
  // release (each word): publishes the odd stamp above to a reader that
  // loads the word with acquire (see EventSlot).
  s.time_unix_ms.store(e.time_unix_ms, std::memory_order_release);
  s.duration_ms.store(e.duration_ms < 0
                          ? UINT64_MAX
                          : static_cast<std::uint64_t>(e.duration_ms),
                      std::memory_order_release);
  s.kind_node.store(static_cast<std::uint64_t>(e.kind) << 32 |
                        static_cast<std::uint32_t>(e.node + 1),
                    std::memory_order_release);
  s.pid.store(e.pid, std::memory_order_release);
  s.generation.store(e.generation, std::memory_order_release);
  char text[kEventCauseWords * 8] = {};
  std::memcpy(text, e.cause.data(), std::min(e.cause.size(), sizeof text - 1));
  for (std::uint32_t i = 0; i < kEventCauseWords; ++i) {
    std::uint64_t w;
    std::memcpy(&w, text + 8 * i, 8);
    s.cause[i].store(w, std::memory_order_release);
  }
  // release: the payload is complete before a reader sees the even stamp.
  s.stamp.store(2 * n + 2, std::memory_order_release);
}

// The event in `s` if it holds event n whole.
bool ReadSlot(const EventSlot& s, std::uint64_t n, GridEvent* e) {
  // acquire: pairs with the final release store of the writer of n.
  if (s.stamp.load(std::memory_order_acquire) != 2 * n + 2) return false;
  // acquire (each word): the stamp check below cannot move before these
  // loads, and a word of a later writer implies its odd stamp is visible.
  e->seq = n;
  e->time_unix_ms = s.time_unix_ms.load(std::memory_order_acquire);
  const std::uint64_t d = s.duration_ms.load(std::memory_order_acquire);
  e->duration_ms = d == UINT64_MAX ? -1 : static_cast<std::int64_t>(d);
  const std::uint64_t kn = s.kind_node.load(std::memory_order_acquire);
  e->kind = static_cast<EventKind>(kn >> 32);
  e->node = static_cast<std::int32_t>(static_cast<std::uint32_t>(kn)) - 1;
  e->pid = s.pid.load(std::memory_order_acquire);
  e->generation = s.generation.load(std::memory_order_acquire);
  char text[kEventCauseWords * 8 + 1] = {};
  for (std::uint32_t i = 0; i < kEventCauseWords; ++i) {
    const std::uint64_t w = s.cause[i].load(std::memory_order_acquire);
    std::memcpy(text + 8 * i, &w, 8);
  }
  e->cause = text;  // NUL-bounded: text has one more byte than the words
  // relaxed: ordered after the acquire loads above.
  return s.stamp.load(std::memory_order_relaxed) == 2 * n + 2;
}

}  // namespace

std::string_view EventKindName(EventKind kind) noexcept {
  const auto i = static_cast<std::uint32_t>(kind);
  return i < std::size(kKindNames) ? kKindNames[i] : kKindNames[0];
}

std::string EventJson(const GridEvent& e, std::string_view grid_name) {
  base::JsonWriter j(/*pretty=*/false);
  j.BeginObject()
      .Field("time_unix_ms", e.time_unix_ms)
      .Field("seq", e.seq)
      .Field("event", EventKindName(e.kind))
      .Field("grid", grid_name);
  if (e.node >= 0) {
    // The node, and the journal stream when it is not the node's first
    // (e.node holds io::StreamId(node, stream)).
    const auto id = static_cast<std::uint32_t>(e.node);
    j.Field("node", io::StreamNode(id));
    if (io::StreamIndex(id) != 0) j.Field("stream", io::StreamIndex(id));
  }
  if (e.pid != 0) j.Field("pid", e.pid);
  if (e.generation != 0) j.Field("generation", e.generation);
  if (e.duration_ms >= 0) j.Field("duration_ms", e.duration_ms);
  if (!e.cause.empty()) j.Field("cause", e.cause);
  j.EndObject();
  std::string json = j.str();
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

void AppendEventLine(const std::string& journal_dir, std::string_view grid_name,
                     const GridEvent& e) {
  if (journal_dir.empty()) return;
  const int fd =
      OpenJournalDirFile(journal_dir, "events.log", O_WRONLY | O_APPEND);
  if (fd < 0) return;
  const std::string line = EventJson(e, grid_name) + "\n";
  // One write with O_APPEND: lines of concurrent recorders do not
  // interleave. A short write leaves a partial line that `events` skips.
  (void)!write(fd, line.data(), line.size());
  close(fd);
}

GridEvent RecordEvent(GridHandle& grid, GridEvent e,
                      const std::string& journal_dir) {
  if (e.time_unix_ms == 0) e.time_unix_ms = UnixNowMs();
  EventLog& log = grid.events();
  // relaxed: the claim only has to be unique; the slot's stamps publish.
  e.seq = log.next.fetch_add(1, std::memory_order_relaxed);
  WriteSlot(log.slots[e.seq % kEventLogCapacity], e.seq, e);
  AppendEventLine(journal_dir, grid.name(), e);
  return e;
}

std::vector<GridEvent> ReadEvents(GridHandle& grid) {
  const EventLog& log = grid.events();
  // relaxed: an upper bound; slots not yet whole are skipped by their stamp.
  const std::uint64_t next = log.next.load(std::memory_order_relaxed);
  const std::uint64_t first =
      next > kEventLogCapacity ? next - kEventLogCapacity : 0;
  std::vector<GridEvent> out;
  for (std::uint64_t n = first; n < next; ++n) {
    GridEvent e;
    if (ReadSlot(log.slots[n % kEventLogCapacity], n, &e)) {
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace numagrid::core
