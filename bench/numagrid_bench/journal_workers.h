// JournalWorkers: the journal workers of a journaled grid that
// numagrid-bench created, run inside numagrid-bench for the length of the
// run: one thread per NUMA node, each with a GridHandle of its own, calling
// core::RunJournalWorker (what `numagrid worker` runs in a process of its
// own), so that a sync put waits for a real fdatasync and an async put's
// change is journaled behind it.
//
// Worker processes the bench forks inherit the threads' descriptors but not
// the threads: they only attach the grid and write to it.
//
// Thread safety: thread-compatible; used by the parent thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/grid_handle.h"
#include "numagrid/status.h"

namespace numagrid::bench {

class JournalWorkers {
 public:
  JournalWorkers() = default;
  JournalWorkers(const JournalWorkers&) = delete;
  JournalWorkers& operator=(const JournalWorkers&) = delete;
  ~JournalWorkers() { (void)Stop(); }

  // Starts a worker per node of grid `name` (journaled) and returns once
  // each holds its node's journal lock in `journal_dir`. An error if a
  // worker cannot attach or returns before it holds the lock (the workers
  // already started are stopped again).
  // REQUIRES: not running.
  Status Start(const std::string& name, const std::string& journal_dir);

  // Stops the workers: each drains its node's rings, flushes and returns
  // (RunJournalWorker's graceful stop). Returns the first worker error and
  // the workers' log lines that came with it. Idempotent.
  std::string Stop();

  bool running() const { return !threads_.empty(); }

 private:
  struct Node {
    std::unique_ptr<core::GridHandle> handle;
    Status result;
    // release: publishes `result`; pairs with the acquire load in Start().
    std::atomic<bool> done{false};
  };

  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Node>> nodes_;  // constant while running
  std::vector<std::thread> threads_;
  std::mutex log_mu_;
  std::vector<std::string> log_;  // guarded by log_mu_
};

}  // namespace numagrid::bench
