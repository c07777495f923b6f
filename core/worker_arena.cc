#include "core/worker_arena.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <new>
#include <utility>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

namespace numagrid::core {
namespace {

// Pins every thread that enters the arena (a oneTBB worker thread, or the
// caller of execute) to the node's cpuset. A thread keeps that binding when
// it leaves: oneTBB's worker threads are shared by every arena of the
// process, and each worker arena pins again on entry; the worker process
// runs no other arena after its arenas exist.
class PinningObserver final : public tbb::task_scheduler_observer {
 public:
  PinningObserver(tbb::task_arena& arena, const numa::Topology& topology,
                  std::uint32_t node)
      : tbb::task_scheduler_observer(arena), topology_(topology), node_(node) {
    observe(true);
  }
  ~PinningObserver() override { observe(false); }
  PinningObserver(const PinningObserver&) = delete;
  PinningObserver& operator=(const PinningObserver&) = delete;

  void on_scheduler_entry(bool /*is_worker*/) override {
    // Topology's const methods may be called from several threads at once
    // (topology.h).
    if (!topology_.PinThreadToNode(node_).ok()) {
      // relaxed: a counter for diagnosis, read after the work returned.
      failures_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  std::uint64_t failures() const noexcept {
    // relaxed: see above.
    return failures_.load(std::memory_order_relaxed);
  }

 private:
  const numa::Topology& topology_;
  const std::uint32_t node_;
  std::atomic<std::uint64_t> failures_{0};
};

// The OS indexes of the CPUs this process may run on (the calling thread's
// binding, which is the process's before any thread is pinned).
std::vector<std::uint32_t> AllowedCpus() {
  std::vector<std::uint32_t> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(static_cast<std::uint32_t>(c));
  }
  return out;
}

std::size_t CommonCount(const std::vector<std::uint32_t>& a,
                        const std::vector<std::uint32_t>& b) {
  std::size_t n = 0;
  for (std::uint32_t x : a) {
    if (std::binary_search(b.begin(), b.end(), x)) ++n;
  }
  return n;
}

struct TbbNumaChoice {
  int id = -1;         // the oneTBB NUMA id of the node; -1: none
  std::string reason;  // why none, for the log
};

// oneTBB numbers NUMA nodes by their logical index in its own hwloc
// topology, which it loads once, restricted to the process's CPU binding,
// and lists them in ascending OS index. So the k-th node of ours that has
// CPUs in that binding, in OS-index order, is oneTBB's k-th id; the count of
// CPUs oneTBB gives that id must then be ours.
TbbNumaChoice MapToTbbNuma(const numa::Topology& topology,
                           std::uint32_t node_id) {
  TbbNumaChoice c;
  if (!TbbNumaQueriesAllowed()) {
    c.reason =
        "oneTBB's NUMA support is not loaded in a sanitizer build (its "
        "dlopen with RTLD_DEEPBIND aborts under the sanitizer)";
    return c;
  }
  std::vector<tbb::numa_node_id> ids;
  try {
    ids = tbb::info::numa_nodes();
  } catch (const std::exception& e) {
    c.reason = std::string("tbb::info::numa_nodes failed: ") + e.what();
    return c;
  }
  if (ids.size() < 2 || ids[0] < 0) {
    c.reason = "oneTBB reports " +
               std::string(ids.size() == 1 && ids[0] < 0
                               ? "no NUMA information (libtbbbind not loaded)"
                               : "one NUMA node");
    return c;
  }
  const std::vector<std::uint32_t> allowed = AllowedCpus();
  std::vector<const numa::NodeInfo*> seen;
  for (const numa::NodeInfo& n : topology.nodes()) {
    if (CommonCount(n.cpus, allowed) != 0) seen.push_back(&n);
  }
  std::sort(seen.begin(), seen.end(), [](const auto* a, const auto* b) {
    return a->os_index < b->os_index;
  });
  if (seen.size() != ids.size()) {
    c.reason = "oneTBB reports " + std::to_string(ids.size()) +
               " NUMA nodes where hwloc has " + std::to_string(seen.size());
    return c;
  }
  const numa::NodeInfo& mine = topology.nodes()[node_id];
  for (std::size_t k = 0; k < seen.size(); ++k) {
    if (seen[k]->id != node_id) continue;
    const int cpus = tbb::info::default_concurrency(ids[k]);
    const auto want = static_cast<int>(CommonCount(mine.cpus, allowed));
    if (cpus != want) {
      c.reason = "oneTBB's NUMA node " + std::to_string(ids[k]) + " has " +
                 std::to_string(cpus) + " CPUs, hwloc's node (os index " +
                 std::to_string(mine.os_index) + ") " + std::to_string(want);
      return c;
    }
    c.id = ids[k];
    return c;
  }
  c.reason = "node " + std::to_string(node_id) + " (os index " +
             std::to_string(mine.os_index) +
             ") has no CPU this process may use";
  return c;
}

}  // namespace

struct WorkerArena::Impl {
  tbb::task_arena arena;
  std::unique_ptr<PinningObserver> observer;  // kHwlocObserver only
};

bool ArenaRunsOnTbbThreads() noexcept {
#if defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

bool TbbNumaQueriesAllowed() noexcept {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

std::string_view ArenaBindingName(std::uint32_t binding) noexcept {
  switch (static_cast<ArenaBinding>(binding)) {
    case ArenaBinding::kTbbNuma:
      return "tbb-numa";
    case ArenaBinding::kHwlocObserver:
      return "hwloc-observer";
    case ArenaBinding::kUnpinned:
      return "unpinned";
    case ArenaBinding::kUnknown:
      break;
  }
  return "unknown";
}

WorkerArena::WorkerArena(std::uint32_t node, ArenaBinding binding,
                         std::uint32_t max_concurrency, int tbb_numa_id,
                         std::string description)
    : node_(node),
      binding_(binding),
      max_concurrency_(max_concurrency),
      tbb_numa_id_(tbb_numa_id),
      description_(std::move(description)),
      impl_(std::make_unique<Impl>()) {}

WorkerArena::~WorkerArena() {
  // The observer first: it refers to the arena.
  if (impl_ != nullptr) impl_->observer.reset();
}

Result<std::unique_ptr<WorkerArena>> WorkerArena::Create(
    const numa::Topology& topology, std::uint32_t node_id,
    const WorkerArenaOptions& options) {
  if (node_id >= topology.node_count()) {
    return InvalidArgument("no NUMA node " + std::to_string(node_id) + " in " +
                           topology.source());
  }
  const numa::NodeInfo& node = topology.nodes()[node_id];
  if (node.cpus.empty()) {
    return InvalidArgument("NUMA node " + std::to_string(node_id) +
                           " has no CPUs: no worker arena can run there");
  }
  const std::uint32_t concurrency =
      options.max_concurrency != 0
          ? options.max_concurrency
          : std::max<std::uint32_t>(
                1, static_cast<std::uint32_t>(node.cores.size()));
  ArenaBinding binding = ArenaBinding::kUnpinned;
  int tbb_id = -1;
  std::string why;
  if (!topology.is_this_system()) {
    why = "the topology is not this system (" + topology.source() + ")";
  } else if (options.force_observer) {
    binding = ArenaBinding::kHwlocObserver;
    why = "the hwloc observer was asked for";
  } else {
    const TbbNumaChoice c = MapToTbbNuma(topology, node_id);
    if (c.id >= 0) {
      binding = ArenaBinding::kTbbNuma;
      tbb_id = c.id;
    } else {
      binding = ArenaBinding::kHwlocObserver;
      why = c.reason;
    }
  }
  std::string description =
      "task arena of " + std::to_string(concurrency) + " thread(s), " +
      std::string(ArenaBindingName(static_cast<std::uint32_t>(binding)));
  switch (binding) {
    case ArenaBinding::kTbbNuma:
      description += ": oneTBB NUMA id " + std::to_string(tbb_id) +
                     " (os index " + std::to_string(node.os_index) +
                     "), pinned by tbbbind";
      break;
    case ArenaBinding::kHwlocObserver:
      description +=
          ": threads pinned with hwloc to the node's cpuset on "
          "entry, because " +
          why;
      break;
    default:
      description += ": " + why;
      break;
  }
  std::unique_ptr<WorkerArena> a(new WorkerArena(
      node_id, binding, concurrency, tbb_id, std::move(description)));
  try {
    if (binding == ArenaBinding::kTbbNuma) {
      tbb::task_arena::constraints c;
      c.numa_id = tbb_id;
      c.max_concurrency = static_cast<int>(concurrency);
      a->impl_->arena.initialize(c);
    } else {
      a->impl_->arena.initialize(static_cast<int>(concurrency));
      if (binding == ArenaBinding::kHwlocObserver) {
        a->impl_->observer = std::make_unique<PinningObserver>(
            a->impl_->arena, topology, node_id);
      }
    }
  } catch (const std::exception& e) {
    return ResourceExhausted("node " + std::to_string(node_id) +
                             ": cannot build its task arena: " + e.what());
  }
  return a;
}

std::uint64_t WorkerArena::pin_failures() const noexcept {
  return impl_->observer != nullptr ? impl_->observer->failures() : 0;
}

Status WorkerArena::ForEach(std::size_t n,
                            const std::function<void(std::size_t)>& body) {
  if (n == 0) return Status::Ok();
  if (!ArenaRunsOnTbbThreads()) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return Status::Ok();
  }
  try {
    impl_->arena.execute([&] {
      // One task per index: the work items (whole partitions) are few and
      // large.
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(0, n, 1),
          [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t i = r.begin(); i != r.end(); ++i) body(i);
          },
          tbb::simple_partitioner());
    });
  } catch (const std::exception& e) {
    return ResourceExhausted("node " + std::to_string(node_) +
                             ": task arena failed: " + e.what());
  }
  return Status::Ok();
}

}  // namespace numagrid::core
