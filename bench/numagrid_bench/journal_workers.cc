#include "bench/numagrid_bench/journal_workers.h"

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <string_view>
#include <utility>

#include "core/journal_worker.h"

namespace numagrid::bench {

Status JournalWorkers::Start(const std::string& name,
                             const std::string& journal_dir) {
  auto probe = core::GridHandle::Attach(name);
  if (!probe.ok()) return probe.status().WithContext("Attach '" + name + "'");
  const std::uint32_t node_count = (*probe)->config().node_count;
  probe->reset();
  // relaxed: the threads that read it are started below, which orders it.
  stop_.store(false, std::memory_order_relaxed);
  for (std::uint32_t node = 0; node < node_count; ++node) {
    auto h = core::GridHandle::Attach(name);
    if (!h.ok()) {
      (void)Stop();
      return h.status().WithContext("Attach '" + name + "' for node " +
                                    std::to_string(node) + "'s worker");
    }
    nodes_.push_back(std::make_unique<Node>());
    nodes_.back()->handle = std::move(*h);
  }
  for (std::uint32_t node = 0; node < node_count; ++node) {
    Node* n = nodes_[node].get();
    threads_.emplace_back([this, n, node] {
      // Ctrl-C and SIGTERM go to the bench's main thread, which stops the
      // run and then these workers through Stop().
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
      core::JournalWorkerOptions o;
      o.node = node;
      o.stop = &stop_;
      o.log = [this, node](std::string_view line) {
        const std::lock_guard<std::mutex> lock(log_mu_);
        log_.push_back("node " + std::to_string(node) + ": " +
                       std::string(line));
      };
      n->result = core::RunJournalWorker(*n->handle, o);
      n->done.store(true, std::memory_order_release);
    });
  }
  // Ready when every node's journal is locked by its worker; a worker that
  // returned before that failed to start.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (std::uint32_t node = 0; node < node_count; ++node) {
    for (;;) {
      Node& n = *nodes_[node];
      if (n.done.load(std::memory_order_acquire)) {
        const Status s = n.result;
        (void)Stop();
        return s.ok() ? IoError("journal worker of node " +
                                std::to_string(node) + " stopped at its start")
                      : s.WithContext("journal worker of node " +
                                      std::to_string(node));
      }
      if (core::NodeJournalLocked(journal_dir, node)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        (void)Stop();
        return IoError("journal worker of node " + std::to_string(node) +
                       " did not lock its journal in " + journal_dir +
                       " within 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return Status::Ok();
}

std::string JournalWorkers::Stop() {
  // relaxed: RunJournalWorker polls the flag; join() below waits for it.
  stop_.store(true, std::memory_order_relaxed);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  std::string error;
  for (std::size_t node = 0; node < nodes_.size(); ++node) {
    const Status& s = nodes_[node]->result;
    if (!s.ok() && error.empty()) {
      error = "journal worker of node " + std::to_string(node) + ": " +
              s.ToString();
    }
  }
  nodes_.clear();
  const std::lock_guard<std::mutex> lock(log_mu_);
  if (!error.empty()) {
    for (const std::string& line : log_) error += "\n  worker: " + line;
  }
  log_.clear();
  return error;
}

}  // namespace numagrid::bench
