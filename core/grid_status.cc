#include "core/grid_status.h"

#include <signal.h>

#include <algorithm>

#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/watchdog.h"
#include "core/worker_arena.h"
#include "shm/robust_mutex.h"

namespace numagrid::core {
namespace {

std::string StateName(std::uint32_t s) {
  switch (s) {
    case kWorkerRunning:
      return "running";
    case kWorkerRetrying:
      return "retrying";
    case kWorkerStopped:
      return "stopped";
    default:
      return "none";
  }
}

}  // namespace

GridStatusReport GridStatus(GridHandle& h) {
  GridStatusReport r;
  r.name = h.name();
  if (h.journaled()) {
    r.journal_dir = h.journal_dir();
    r.durability =
        h.journal().config.durability == kDurabilitySync ? "sync" : "async";
    // relaxed: a report.
    const std::uint64_t wd =
        h.journal().watchdog_pid.load(std::memory_order_relaxed);
    r.watchdog_pid = ProcessRunning(wd) ? wd : 0;
  } else {
    r.durability = "none";
  }
  r.streams_per_node = h.streams_per_node();
  const std::vector<std::uint32_t> ids = h.stream_ids();
  r.nodes.resize(ids.size());
  const std::uint64_t mono_ms = shm::MonotonicNowNs() / 1'000'000;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    NodeStatus& s = r.nodes[i];
    s.node = io::StreamNode(ids[i]);
    s.stream = io::StreamIndex(ids[i]);
    s.ring_capacity = h.config().ring_capacity;
    if (!h.journaled()) continue;
    // relaxed throughout: a report of independent numbers.
    const JournalNodeState& j = h.journal_node(ids[i]);
    s.worker_pid = j.worker_pid.load(std::memory_order_relaxed);
    s.worker_alive = ProcessRunning(s.worker_pid);
    s.worker_state = StateName(j.worker_state.load(std::memory_order_relaxed));
    // A worker that died (or exited on an error) left its last state.
    if (!s.worker_alive && s.worker_state != "stopped" &&
        s.worker_state != "none") {
      s.worker_state = "dead";
    }
    const std::uint64_t beat =
        j.heartbeat_mono_ms.load(std::memory_order_relaxed);
    s.heartbeat_age_ms =
        beat == 0
            ? -1
            : static_cast<std::int64_t>(mono_ms > beat ? mono_ms - beat : 0);
    s.durable_journal_seq =
        j.durable_journal_seq.load(std::memory_order_relaxed);
    s.records = j.records.load(std::memory_order_relaxed);
    s.bytes = j.bytes.load(std::memory_order_relaxed);
    s.flushes = j.flushes.load(std::memory_order_relaxed);
    s.io_errors = j.io_errors.load(std::memory_order_relaxed);
    s.snapshots_done = j.snapshots_done.load(std::memory_order_relaxed);
    s.generation = j.generation.load(std::memory_order_relaxed);
    s.worker_generation = j.worker_generation.load(std::memory_order_relaxed);
    s.restarts = j.restarts.load(std::memory_order_relaxed);
    s.fences = j.fences.load(std::memory_order_relaxed);
    s.expired_reclaimed = j.expired_reclaimed.load(std::memory_order_relaxed);
    s.worker_arena = std::string(
        ArenaBindingName(j.worker_arena.load(std::memory_order_relaxed)));
    s.worker_arena_threads =
        j.worker_arena_threads.load(std::memory_order_relaxed);
  }
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    const PartitionState& st = h.partition(p).state();
    const std::uint64_t next = st.next_seq.load(std::memory_order_relaxed);
    const std::uint64_t journaled =
        st.journaled_seq.load(std::memory_order_relaxed);
    const std::uint64_t reclaimed =
        st.reclaimed_seq.load(std::memory_order_relaxed);
    const std::uint32_t id = h.stream_of(p);
    NodeStatus& s =
        r.nodes[io::StreamNode(id) * r.streams_per_node + io::StreamIndex(id)];
    if (h.journaled() && next > journaled)
      s.pending_changes += next - journaled;
    if (next > reclaimed) {
      s.max_ring_depth = std::max(s.max_ring_depth, next - reclaimed);
    }
  }
  return r;
}

}  // namespace numagrid::core
