#include "core/recovery.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

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

// A key's last change so far: a put (value, version, expiry) or a remove.
struct Final {
  bool remove = false;
  std::uint64_t version = 0;
  std::uint64_t expiry_ms = 0;
  std::string value;
};

// Changes read in file order, coalesced per partition and key: only each
// key's last put or remove is kept, and applied, partitions in parallel
// (each has its own lock and allocator state).
//
// Why coalesce: the journal's history fits the grid at every point in time,
// but the partitions of a node share its chunks, and a partition's history
// replayed on its own, ahead of the others, can need chunks that, in the
// live grid, other partitions held then and it got only after they gave
// them back (or never: the live grid evicted instead). The final state per
// key is a state the live grid held, so it fits; the order in which
// partitions reach it no longer matters. A recovered grid equals the last
// durable state: a key whose last change is a remove (an eviction, an
// expiry) stays absent, and every other key has its last put's value,
// version and expiry.
//
// Bounded: when the coalesced key + value bytes pass `limit_bytes`, they
// are applied (removes first, then puts), and from then on that
// partition's removes are kept as tombstones, since the key may be in the
// grid. Each such step leaves every partition in a state it had.
class Batch {
 public:
  Batch(std::uint32_t partitions, std::uint64_t limit_bytes)
      : by_partition_(partitions),
        applied_(partitions, false),
        limit_(limit_bytes) {}

  void Add(const io::RecordView& r) {
    auto& m = by_partition_[r.partition_id];
    const bool remove = r.op != io::RecordOp::kPut;
    auto it = m.find(std::string_view(r.key));
    if (it != m.end()) {
      bytes_ -= it->first.size() + it->second.value.size();
      if (remove && !applied_[r.partition_id]) {
        // Never applied: the grid does not hold the key, so nothing to do.
        m.erase(it);
        return;
      }
    } else {
      if (remove && !applied_[r.partition_id]) return;
      it = m.emplace(std::string(r.key), Final{}).first;
    }
    Final& f = it->second;
    f.remove = remove;
    f.version = r.version;
    f.expiry_ms = remove ? 0 : r.expiry_ms;
    f.value.assign(remove ? std::string_view() : std::string_view(r.value));
    bytes_ += it->first.size() + f.value.size();
  }
  bool full() const { return bytes_ >= limit_; }
  bool empty() const {
    return std::all_of(by_partition_.begin(), by_partition_.end(),
                       [](const auto& m) { return m.empty(); });
  }

  // Applies every change; the first error wins.
  Status Apply(GridHandle& h) {
    WriteLimits limits = h.limits();
    // Restores mark their own changes journaled: they came from the journal.
    limits.journal_mode = kJournalNone;
    std::vector<Status> errors(by_partition_.size());
    auto apply_partition = [&](std::size_t p) {
      PartitionRef& part = h.partition(static_cast<std::uint32_t>(p));
      // Removes first, so that the puts find the memory they free.
      for (int pass = 0; pass < 2; ++pass) {
        for (const auto& [key, f] : by_partition_[p]) {
          if (f.remove != (pass == 0)) continue;
          WriteRequest rq;
          rq.key = key;
          rq.hash = base::KeyHash(rq.key);
          rq.restore_version = f.version;
          if (f.remove) {
            rq.kind = WriteKind::kRemove;
          } else {
            rq.kind = WriteKind::kUpsert;
            rq.value = f.value;
            rq.expire_at_ms = f.expiry_ms;
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
    for (std::size_t p = 0; p < by_partition_.size(); ++p) {
      if (!by_partition_[p].empty()) applied_[p] = true;
      by_partition_[p].clear();
    }
    bytes_ = 0;
    return Status::Ok();
  }

 private:
  // Heterogeneous lookup by string_view (C++20).
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>()(s);
    }
  };
  std::vector<std::unordered_map<std::string, Final, Hash, std::equal_to<>>>
      by_partition_;
  std::vector<bool> applied_;  // the grid may hold entries of the partition
  const std::uint64_t limit_;
  std::uint64_t bytes_ = 0;  // keys and values held
};

// Applies replayed changes to the grid being rebuilt: read in file order,
// applied split by partition.
class BatchSink : public ReplaySink {
 public:
  BatchSink(GridHandle& h, std::uint32_t partitions, std::uint64_t limit)
      : h_(h), batch_(partitions, limit) {}
  Status Add(const io::RecordView& r) override {
    batch_.Add(r);
    return batch_.full() ? Apply() : Status::Ok();
  }
  // The end of a node's journal: its snapshot's entries and journal
  // records, coalesced, are applied.
  Status Flush() override { return Apply(); }

 private:
  Status Apply() {
    if (batch_.empty()) return Status::Ok();
    return batch_.Apply(h_);
  }
  GridHandle& h_;
  Batch batch_;
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
  // Every journal stream of every node: the streams of a node journal
  // disjoint partitions, so each partition's changes come from one stream.
  for (const std::uint32_t stream : (*h)->stream_ids()) {
    if (!s.ok()) break;
    s = replay.Node(stream, sink, /*truncate_tail=*/true);
    if (s.ok()) {
      // The stream's journal continues after what was read: a worker of
      // the rebuilt grid starts there. relaxed: published by the release
      // store that ends the recovery.
      (*h)->journal_node(stream).durable_journal_seq.store(
          replay.last_journal_seq(stream), std::memory_order_relaxed);
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
