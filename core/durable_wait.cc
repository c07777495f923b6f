// GridHandle::WaitDurable: how a sync-mode writer learns that its change is
// in the journal. The worker publishes durability per partition
// (journaled_seq) and announces each flush on its node's durable_epoch
// futex word; the writer asks for a flush through the node's wake word.
#include <signal.h>
#include <sys/types.h>

#include <chrono>

#include "core/grid_handle.h"
#include "core/watchdog.h"
#include "shm/futex.h"
#include "shm/robust_mutex.h"

namespace numagrid::core {

Status GridHandle::WaitDurable(std::uint32_t p, std::uint64_t upto,
                               std::uint64_t deadline_ns) {
  if (!journaled()) return Status::Ok();
  const PartitionState& st = partitions_[p].state();
  // acquire: pairs with the worker's release store in MarkJournaled.
  if (st.journaled_seq.load(std::memory_order_acquire) >= upto) {
    return Status::Ok();
  }
  // The stream that journals the partition: its worker flushes it and
  // announces each flush on that stream's durable_epoch.
  JournalNodeState& node = journal_node(partition_streams_[p]);
  const std::uint64_t wait_ns =
      std::uint64_t{journal_->config.sync_wait_ms} * 1'000'000;
  const std::uint64_t deadline =
      deadline_ns != 0 ? deadline_ns : shm::MonotonicNowNs() + wait_ns;
  for (;;) {
    // Read the epoch before re-checking the sequence: a flush that lands in
    // between changes the epoch, so the futex wait below returns at once
    // instead of sleeping through it. acquire: as above.
    const std::uint32_t epoch =
        node.durable_epoch.load(std::memory_order_acquire);
    if (st.journaled_seq.load(std::memory_order_acquire) >= upto) {
      return Status::Ok();
    }
    // release: pairs with the worker's acquire load of the word, which
    // then sees our change below next_seq.
    node.wake.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&node.wake, 1);
    const std::uint64_t now = shm::MonotonicNowNs();
    if (now >= deadline) break;
    // Bounded slices so that a flush whose wake-up was missed (a worker that
    // died between its store and its wake) costs at most one slice.
    shm::FutexWait(&node.durable_epoch, epoch,
                   std::min<std::uint64_t>(deadline - now, 50'000'000));
  }
  // relaxed: a diagnosis, not a decision.
  const std::uint64_t pid = node.worker_pid.load(std::memory_order_relaxed);
  const std::uint32_t state = node.worker_state.load(std::memory_order_relaxed);
  const bool alive = ProcessRunning(pid) &&
                     (state == kWorkerRunning || state == kWorkerRetrying);
  std::string why;
  if (!alive) {
    why = "no journal worker is running; start `numagrid worker " + name_ + "`";
  } else if (state == kWorkerRetrying) {
    why = "its journal worker (pid " + std::to_string(pid) +
          ") is retrying after I/O errors; see its log";
  } else {
    why = "its journal worker (pid " + std::to_string(pid) +
          ") is running but behind";
  }
  return Unavailable("change not confirmed durable within " +
                     std::to_string(journal_->config.sync_wait_ms) +
                     " ms (partition " + std::to_string(p) + ", " +
                     io::StreamLabel(partition_streams_[p]) + ": " + why +
                     "); the change is visible and will be journaled");
}

}  // namespace numagrid::core
