// WorkerArena: the oneTBB task_arena in which a node's journal worker runs
// its per-partition background work (the copies of a snapshot, the
// reclamation of journaled changes), kept on that node's CPUs.
// docs/adr/0007-worker-arena.md explains the choice of work and the two ways
// the arena is kept on its node:
//   kTbbNuma: oneTBB knows the machine's NUMA nodes (libtbbbind is loaded
//     and reports more than one): a task_arena built with
//     task_arena::constraints{numa_id}, which tbbbind pins to the node.
//   kHwlocObserver: oneTBB reports no NUMA information (tbbbind missing, a
//     one-node machine): a plain task_arena whose threads a
//     task_scheduler_observer pins with hwloc to the node's cpuset each time
//     one enters the arena.
// Both have max_concurrency = the node's core count.
//
// The arena is process-local (oneTBB keeps raw pointers and locks): it never
// touches shared memory itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "numa/topology.h"
#include "numagrid/status.h"

namespace numagrid::core {

// How an arena's threads are kept on their node. The values are stored in
// JournalNodeState::worker_arena (shared memory): never renumber them.
enum class ArenaBinding : std::uint32_t {
  kUnknown = 0,  // no worker published one (none ran, or one without arena)
  kTbbNuma = 1,
  kHwlocObserver = 2,
  // The topology is not this system (synthetic or foreign XML): the arena
  // runs, nothing is pinned.
  kUnpinned = 3,
};

// "tbb-numa", "hwloc-observer", "unpinned" or "unknown" (also for a value
// this build does not know).
std::string_view ArenaBindingName(std::uint32_t binding) noexcept;

// False in a build with AddressSanitizer or ThreadSanitizer: oneTBB loads
// libtbbbind (its NUMA support) with dlopen(RTLD_DEEPBIND), which their
// runtimes refuse by aborting the process, so such a build never asks
// oneTBB about NUMA nodes and always pins with the hwloc observer.
bool TbbNumaQueriesAllowed() noexcept;

// False in a build with ThreadSanitizer: oneTBB is not instrumented, so
// TSan cannot see its synchronization and reports every hand-off between
// its threads as a race. Such a build runs ForEach on the calling thread
// (every index, in order) and no oneTBB thread enters the arena.
bool ArenaRunsOnTbbThreads() noexcept;

struct WorkerArenaOptions {
  // The arena's concurrency; 0: the node's core count (at least 1).
  std::uint32_t max_concurrency = 0;
  // Pin with the hwloc observer even when oneTBB reports NUMA nodes: to
  // check the fallback on a machine that has several.
  bool force_observer = false;
};

// Thread safety: ForEach is called by one thread at a time (the worker's);
// the accessors are constant after Create and may be read from any thread.
class WorkerArena {
 public:
  // The arena of node `node_id` of `topology`. REQUIRES: `topology`
  // outlives the arena (the observer pins through it). Call it before the
  // process pins any thread: oneTBB reads the process's CPU binding once, at
  // its first use, and numbers the NUMA nodes it sees then.
  // kInvalidArgument for an unknown node or one without CPUs;
  // kResourceExhausted when oneTBB cannot build the arena.
  static Result<std::unique_ptr<WorkerArena>> Create(
      const numa::Topology& topology, std::uint32_t node_id,
      const WorkerArenaOptions& options = {});
  ~WorkerArena();
  WorkerArena(const WorkerArena&) = delete;
  WorkerArena& operator=(const WorkerArena&) = delete;

  std::uint32_t node() const noexcept { return node_; }
  ArenaBinding binding() const noexcept { return binding_; }
  std::uint32_t max_concurrency() const noexcept { return max_concurrency_; }
  // The oneTBB NUMA id the arena is constrained to; -1 unless kTbbNuma.
  int tbb_numa_id() const noexcept { return tbb_numa_id_; }
  // One line for the worker's log: which binding, why, the concurrency.
  const std::string& description() const noexcept { return description_; }
  // Threads the observer could not pin (kHwlocObserver only): each one
  // ran its share of the work unpinned.
  std::uint64_t pin_failures() const noexcept;

  // Calls body(i) once for every i in [0, n), in parallel on the arena's
  // threads (the caller takes part, and is moved into the arena for the
  // duration), and returns when every call has returned. `body` must not
  // throw; it may run on any of the arena's threads. kResourceExhausted if
  // oneTBB fails (it cannot allocate or start a thread): some calls may
  // then not have been made.
  Status ForEach(std::size_t n, const std::function<void(std::size_t)>& body);

 private:
  struct Impl;
  WorkerArena(std::uint32_t node, ArenaBinding binding,
              std::uint32_t max_concurrency, int tbb_numa_id,
              std::string description);

  const std::uint32_t node_;
  const ArenaBinding binding_;
  const std::uint32_t max_concurrency_;
  const int tbb_numa_id_;
  const std::string description_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace numagrid::core
