#include "core/recovery.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include <tbb/parallel_for.h>

#include "core/base/key_hash.h"
#include "core/event_log.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/grid_names.h"
#include "core/journal_dir.h"
#include "core/journal_replay.h"
#include "core/partition.h"
#include "shm/segment.h"

namespace numagrid::core {
namespace {

// One change to apply, its bytes in the batch's arena.
struct Item {
  std::uint32_t partition;
  io::RecordOp op;
  std::uint64_t version;
  std::uint64_t expiry_ms;
  std::uint64_t off;  // key, then value, in Batch::arena
  std::uint32_t key_len;
  std::uint32_t value_len;
};

// Changes read in file order, applied split by partition: each partition's
// changes keep their order, and partitions are independent (each has its own
// lock and allocator state), so they are applied in parallel.
class Batch {
 public:
  explicit Batch(std::uint32_t partitions) : by_partition_(partitions) {}

  void Add(const io::RecordView& r) {
    Item it{r.partition_id,
            r.op,
            r.version,
            r.expiry_ms,
            arena_.size(),
            static_cast<std::uint32_t>(r.key.size()),
            static_cast<std::uint32_t>(r.value.size())};
    arena_.insert(arena_.end(), r.key.begin(), r.key.end());
    arena_.insert(arena_.end(), r.value.begin(), r.value.end());
    by_partition_[r.partition_id].push_back(items_++);
    all_.push_back(it);
  }
  std::uint64_t bytes() const { return arena_.size() + all_.size() * 48; }
  bool empty() const { return all_.empty(); }

  // Applies every change; the first error wins.
  Status Apply(GridHandle& h) {
    WriteLimits limits = h.limits();
    // Restores mark their own changes journaled: they came from the journal.
    limits.journal_mode = kJournalNone;
    std::vector<Status> errors(by_partition_.size());
    auto apply_partition = [&](std::size_t p) {
      PartitionRef& part = h.partition(static_cast<std::uint32_t>(p));
      for (std::uint64_t i : by_partition_[p]) {
        const Item& it = all_[i];
        WriteRequest rq;
        rq.key = std::string_view(arena_.data() + it.off, it.key_len);
        rq.hash = base::KeyHash(rq.key);
        rq.restore_version = it.version;
        if (it.op == io::RecordOp::kPut) {
          rq.kind = WriteKind::kUpsert;
          rq.value = std::string_view(arena_.data() + it.off + it.key_len,
                                      it.value_len);
          rq.expire_at_ms = it.expiry_ms;
        } else {
          rq.kind = WriteKind::kRemove;
        }
        // now 0: nothing counts as expired, so a record restored with a
        // past expiry is still replaced or removed as it was.
        auto r = part.Write(rq, limits, /*now_ms=*/0);
        if (!r.ok() && !(rq.kind == WriteKind::kRemove &&
                         r.status().code() == StatusCode::kNotFound)) {
          errors[p] = r.status().WithContext("restoring partition " +
                                             std::to_string(p));
          return;
        }
      }
    };
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer cannot see oneTBB's own synchronization (the system
    // library is not instrumented) and reports its internals as races; the
    // partitions, which share nothing but atomics, go one after another.
    for (std::size_t p = 0; p < by_partition_.size(); ++p) apply_partition(p);
#else
    tbb::parallel_for(std::size_t{0}, by_partition_.size(), apply_partition);
#endif
    for (auto& e : errors) {
      if (!e.ok()) return e;
    }
    arena_.clear();
    all_.clear();
    items_ = 0;
    for (auto& v : by_partition_) v.clear();
    return Status::Ok();
  }

 private:
  std::vector<char> arena_;
  std::vector<Item> all_;
  std::uint64_t items_ = 0;
  std::vector<std::vector<std::uint64_t>> by_partition_;
};

// Applies replayed changes to the grid being rebuilt: read in file order,
// applied split by partition.
class BatchSink : public ReplaySink {
 public:
  BatchSink(GridHandle& h, std::uint32_t partitions, std::uint64_t limit)
      : h_(h), batch_(partitions), limit_(limit) {}
  Status Add(const io::RecordView& r) override {
    batch_.Add(r);
    return batch_.bytes() >= limit_ ? Flush() : Status::Ok();
  }
  Status Flush() override {
    if (batch_.empty()) return Status::Ok();
    return batch_.Apply(h_);
  }

 private:
  GridHandle& h_;
  Batch batch_;
  const std::uint64_t limit_;
};

// Removes what a recover that died left behind; refuses a live grid.
Status ClearLeftovers(std::string_view name) {
  if (!shm::Segment::Exists(ControlSegmentName(name))) {
    if (!shm::Segment::List(GridSegmentPrefix(name)).empty()) {
      // Segments without a control segment: a create or recover that died
      // before publishing; never attachable.
      return DestroyGrid(name);
    }
    return Status::Ok();
  }
  auto h = GridHandle::Attach(name, /*allow_recovering=*/true);
  if (!h.ok())
    return h.status().WithContext("grid '" + std::string(name) + "'");
  JournalBlock& jb = (*h)->journal();
  // acquire: pairs with the release store that ends a recovery.
  if (jb.recovery_state.load(std::memory_order_acquire) != kRecoveryRunning) {
    return AlreadyExists("grid '" + std::string(name) +
                         "' exists; `numagrid destroy " + std::string(name) +
                         "` first to rebuild it from its journal");
  }
  if (jb.recovery_pid != 0 &&
      kill(static_cast<pid_t>(jb.recovery_pid), 0) == 0) {
    return Unavailable("grid '" + std::string(name) +
                       "' is being recovered by pid " +
                       std::to_string(jb.recovery_pid));
  }
  h->reset();
  return DestroyGrid(name);
}

}  // namespace

Result<RecoveryReport> RecoverGrid(std::string_view name,
                                   const std::string& dir,
                                   const numa::Topology& topology,
                                   const RecoveryOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  NUMAGRID_RETURN_IF_ERROR(ValidateGridName(name));
  auto manifest = ReadManifest(dir);
  if (!manifest.ok()) {
    if (manifest.status().code() == StatusCode::kNotFound) {
      return NotFound("no journal of grid '" + std::string(name) + "' in " +
                      dir + " (" + manifest.status().message() + ")");
    }
    return manifest.status();
  }
  if (manifest->name != name) {
    return InvalidArgument(dir + " holds the journal of grid '" +
                           manifest->name + "', not '" + std::string(name) +
                           "'");
  }
  if (topology.node_count() != manifest->node_count) {
    return InvalidArgument(
        "grid '" + std::string(name) + "' was created on " +
        std::to_string(manifest->node_count) +
        " NUMA node(s); this machine "
        "has " +
        std::to_string(topology.node_count()) +
        ": its journals are per node, so it cannot be rebuilt here");
  }
  NUMAGRID_RETURN_IF_ERROR(ClearLeftovers(name));

  CreateOptions co = OptionsFromManifest(*manifest, dir);
  co.recovering = true;
  auto created = CreateGrid(name, co, topology);
  if (!created.ok()) return created.status();
  auto h = GridHandle::Attach(name, /*allow_recovering=*/true);
  if (!h.ok()) {
    (void)DestroyGrid(name);
    return h.status();
  }

  RecoveryReport report;
  JournalReplay replay(dir, manifest->grid_id, manifest->partitions,
                       options.log, &report);
  BatchSink sink(**h, manifest->partitions, options.batch_bytes);
  Status s;
  for (std::uint32_t node = 0; node < manifest->node_count && s.ok(); ++node) {
    s = replay.Node(node, sink, /*truncate_tail=*/true);
    if (s.ok()) {
      // The node's journal continues after what was read: a worker of the
      // rebuilt grid starts there. relaxed: published by the release store
      // that ends the recovery.
      (*h)->journal_node(node).durable_journal_seq.store(
          replay.last_journal_seq(node), std::memory_order_relaxed);
    }
  }
  for (std::uint32_t p = 0; p < manifest->partitions && s.ok(); ++p) {
    PartitionRef& part = (*h)->partition(p);
    // relaxed: nobody else is attached.
    s = part.ResetSequence(
        std::max(replay.next_seq(p),
                 part.state().next_seq.load(std::memory_order_relaxed)));
    report.live_entries +=
        part.state().counters.live_entries.load(std::memory_order_relaxed);
  }
  const auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - start)
        .count();
  };
  GridEvent event;
  event.kind = EventKind::kRecovery;
  event.pid = static_cast<std::uint64_t>(getpid());
  if (!s.ok()) {
    h->reset();
    (void)DestroyGrid(name);
    s = s.WithContext("recover grid '" + std::string(name) + "'");
    event.duration_ms = elapsed_ms();
    event.cause = "failed: " + s.ToString();
    AppendEventLine(dir, name, event);
    return s;
  }
  event.duration_ms = elapsed_ms();
  event.cause = std::to_string(report.live_entries) + " entries; " +
                std::to_string(report.snapshot_entries) + " from snapshots, " +
                std::to_string(report.applied_records) + " journal records" +
                (report.dropped.empty() ? std::string() : ", torn tail cut");
  RecordEvent(**h, event, dir);
  // release: every restored partition is complete before a process can
  // attach (Attach loads this with acquire).
  (*h)->journal().recovery_state.store(kRecoveryNone,
                                       std::memory_order_release);
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return report;
}

}  // namespace numagrid::core
