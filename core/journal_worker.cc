#include "core/journal_worker.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "core/base/key_hash.h"
#include "core/event_log.h"
#include "core/evictor.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/snapshot.h"
#include "io/errno_status.h"
#include "io/journal_reader.h"
#include "io/journal_writer.h"
#include "io/node_file_name.h"
#include "io/snapshot_file.h"
#include "shm/futex.h"

namespace numagrid::core {
namespace {

void Log(const JournalWorkerOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

bool Stopping(const JournalWorkerOptions& o) {
  // relaxed: a flag; the loop re-reads it every round.
  return o.stop != nullptr && o.stop->load(std::memory_order_relaxed);
}

// How long a waiting worker may take to notice a stop set by a thread.
constexpr std::uint64_t kStopPollNs = 50'000'000;

// The expiry sweep looks at kExpirySlotsPerRound index slots at most every
// kExpiryRoundMs (and once per worker round when the flush interval is
// longer): a node's whole index is swept in about
// index slots / kExpirySlotsPerRound * max(kExpiryRoundMs, flush interval).
constexpr std::uint64_t kExpirySlotsPerRound = 4096;
constexpr std::uint64_t kExpiryRoundMs = 10;
// Evictions per worker round at most: a round then takes a few ms, and the
// worker goes on with the next one at once while the node is above its low
// watermark (docs/eviction.md gives the resulting eviction rate).
constexpr std::uint64_t kEvictionsPerRound = 1024;

io::RecordOp OpOf(std::uint32_t ring_op) {
  return ring_op == kOpPut ? io::RecordOp::kPut : io::RecordOp::kRemove;
}

// The journaling state of one node, process-local.
class NodeJournaler {
 public:
  NodeJournaler(GridHandle& grid, const JournalWorkerOptions& o,
                std::uint64_t generation)
      : grid_(grid),
        o_(o),
        sid_(io::StreamId(o.node, o.stream)),
        node_(grid.journal_node(sid_)),
        // Shared by the node's streams: updated with read-modify-writes.
        stats_(grid.node_stats(o.node)),
        dir_(grid.journal_dir()),
        generation_(generation) {
    std::vector<std::uint32_t> node_parts;
    for (std::uint32_t p = 0; p < grid.partition_count(); ++p) {
      if (grid.stream_of(p) == sid_) parts_.push_back(p);
      if (grid.node_of(p) == o.node) node_parts.push_back(p);
    }
    // Evicts from this stream's partitions when the node's memory (all its
    // streams' partitions) passes the high watermark.
    evictor_.emplace(grid, parts_,
                     static_cast<std::uint64_t>(getpid()) ^ generation,
                     std::move(node_parts));
    pos_.resize(parts_.size());
    upto_.resize(parts_.size());
    batch_bytes_.resize(parts_.size());
    first_visible_ms_.resize(parts_.size());
  }

  Status Run() {
    // relaxed: informational fields, read by `status`.
    node_.worker_pid.store(static_cast<std::uint64_t>(getpid()),
                           std::memory_order_relaxed);
    node_.worker_generation.store(generation_, std::memory_order_relaxed);
    node_.worker_state.store(kWorkerRunning, std::memory_order_relaxed);
    // relaxed: informational, for `status`.
    node_.worker_arena.store(
        static_cast<std::uint32_t>(
            o_.arena != nullptr ? o_.arena->binding() : ArenaBinding::kUnknown),
        std::memory_order_relaxed);
    node_.worker_arena_threads.store(
        o_.arena != nullptr ? o_.arena->max_concurrency() : 1,
        std::memory_order_relaxed);
    ResetCursors();
    // acquire: pairs with the release store of an earlier worker's answer.
    snapshots_handled_ = node_.snapshots_done.load(std::memory_order_acquire);
    const auto interval =
        std::chrono::microseconds(grid_.journal().config.flush_interval_us);
    std::uint32_t backoff_ms = 0;
    for (;;) {
      if (Fenced()) return StepDown();
      const bool stopping = Stopping(o_);
      // acquire: pairs with the writers' release fetch_add, so a bump seen
      // here also shows the change that asked for it. Read before
      // collecting, so that a writer who asks for a flush meanwhile ends
      // the wait below.
      const std::uint32_t wake = node_.wake.load(std::memory_order_acquire);
      const auto round_start = std::chrono::steady_clock::now();
      node_.heartbeat_mono_ms.store(shm::MonotonicNowNs() / 1'000'000,
                                    std::memory_order_relaxed);

      if (writer_ == nullptr) {
        Status s = OpenWriter();
        if (!s.ok()) {
          if (s.code() == StatusCode::kCorruption) return s;
          RefuseSnapshotRequests(s);
          backoff_ms = Backoff(backoff_ms, s);
          if (stopping && backoff_ms >= o_.max_backoff_ms) return s;
          continue;
        }
      }
      bool more = false;
      Result<std::uint64_t> n = JournalBatch(&more);
      if (fenced_) return StepDown();
      if (!n.ok()) {
        writer_.reset();
        device_.reset();
        ResetCursors();  // journal them again from the last durable point
        RefuseSnapshotRequests(n.status());
        backoff_ms = Backoff(backoff_ms, n.status());
        if (stopping && backoff_ms >= o_.max_backoff_ms) return n.status();
        continue;
      }
      if (backoff_ms != 0) {
        Log(o_, io::StreamLabel(sid_) + ": journal writes succeed again");
        IoEvent(EventKind::kJournalIoRecovered,
                std::to_string(io_errors_in_streak_) +
                    " failed attempt(s); the changes are journaled again",
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - io_error_since_)
                    .count());
        backoff_ms = 0;
        // relaxed: a state for `status`, published nothing else.
        node_.worker_state.store(kWorkerRunning, std::memory_order_relaxed);
      }
      ReclaimIdle(*n == 0);
      ReclaimExpired();
      if (Evict()) more = true;  // above the low watermark still
      MaybeSnapshot();
      // A graceful stop drains what was written before it arrived, even
      // while writers go on.
      if (stopping && DrainedForStop()) break;
      if (more || stopping) continue;
      // Async: the next flush one interval after this one began, unless a
      // writer wakes us first. In slices, so that a stop set by another
      // thread (which cannot interrupt the wait as a signal does) is seen
      // within one, and the heartbeat stays fresh however long the
      // interval.
      for (;;) {
        node_.heartbeat_mono_ms.store(shm::MonotonicNowNs() / 1'000'000,
                                      std::memory_order_relaxed);
        const auto elapsed = std::chrono::steady_clock::now() - round_start;
        if (elapsed >= interval || Stopping(o_) ||
            node_.wake.load(std::memory_order_acquire) != wake) {
          break;
        }
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            interval - elapsed);
        shm::FutexWait(
            &node_.wake, wake,
            std::min<std::uint64_t>(static_cast<std::uint64_t>(left.count()),
                                    kStopPollNs));
      }
    }
    if (Fenced()) return StepDown();
    Status s = writer_ != nullptr ? writer_->Close() : Status::Ok();
    // relaxed: a state for `status`.
    node_.worker_state.store(kWorkerStopped, std::memory_order_relaxed);
    Log(o_, io::StreamLabel(sid_) +
                ": stopped, journal durable "
                "through sequence " +
                std::to_string(durable_seq_));
    return s;
  }

 private:
  // True once the node's generation moved past ours. relaxed: the journal
  // lock is what keeps a second worker from writing (a newer one cannot
  // start while we hold it), so a stale read only delays the step-down by
  // one round; the generation exists to make a superseded worker (paused,
  // then resumed after a newer one was asked for) let go of the lock
  // instead of journaling on.
  bool Fenced() {
    if (!fenced_ &&
        node_.generation.load(std::memory_order_relaxed) != generation_) {
      fenced_ = true;
    }
    return fenced_;
  }

  // Exits fenced: appended records are dropped unflushed (they are above
  // the published durable position; the next worker journals their
  // changes again), nothing else is written.
  Status StepDown() {
    writer_.reset();
    device_.reset();
    // relaxed: a counter and a state for `status`.
    node_.fences.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t now_gen =
        node_.generation.load(std::memory_order_relaxed);
    const std::string why = "generation " + std::to_string(generation_) +
                            " superseded by " + std::to_string(now_gen) +
                            "; exiting without writing";
    Log(o_, io::StreamLabel(sid_) + ": fenced: " + why);
    GridEvent e;
    e.kind = EventKind::kWorkerSteppedDown;
    e.node = static_cast<std::int32_t>(sid_);
    e.pid = static_cast<std::uint64_t>(getpid());
    e.generation = generation_;
    e.cause = why;
    RecordEvent(grid_, e, dir_);
    return AlreadyExists("fenced: " + why);
  }

  // At the first call after the stop, fixes what must be journaled before
  // exiting (each ring up to its next_seq now); then true once it is.
  bool DrainedForStop() {
    if (stop_targets_.empty()) {
      for (std::uint32_t p : parts_) {
        // acquire: the entries below it are complete.
        stop_targets_.push_back(grid_.partition(p).state().next_seq.load(
            std::memory_order_acquire));
      }
    }
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      if (pos_[i] < stop_targets_[i]) return false;
    }
    return true;
  }

  void ResetCursors() {
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      // acquire: pairs with MarkJournaled (ours or a previous worker's).
      pos_[i] = grid_.partition(parts_[i]).state().journaled_seq.load(
          std::memory_order_acquire);
    }
  }

  // An event about this worker's journal I/O.
  void IoEvent(EventKind kind, const std::string& cause,
               std::int64_t duration_ms) {
    GridEvent e;
    e.kind = kind;
    e.node = static_cast<std::int32_t>(sid_);
    e.pid = static_cast<std::uint64_t>(getpid());
    e.generation = generation_;
    e.cause = cause;
    e.duration_ms = duration_ms;
    // events.log may be on the failing disk: the ring keeps the event.
    RecordEvent(grid_, e, dir_);
  }

  // Logs `s`, counts it, sleeps, and returns the next back-off. The first
  // failure of a streak is an event (journal_io_error); the streak's end is
  // another (journal_io_recovered), so that a disk failing every few ms
  // does not flood the event ring.
  std::uint32_t Backoff(std::uint32_t backoff_ms, const Status& s) {
    if (backoff_ms == 0) {
      io_error_since_ = std::chrono::steady_clock::now();
      io_errors_in_streak_ = 0;
      IoEvent(EventKind::kJournalIoError, s.ToString(), -1);
    }
    ++io_errors_in_streak_;
    // relaxed: a counter and a state for `status`.
    node_.io_errors.fetch_add(1, std::memory_order_relaxed);
    node_.worker_state.store(kWorkerRetrying, std::memory_order_relaxed);
    const std::uint32_t next =
        std::min(o_.max_backoff_ms, backoff_ms == 0 ? 10 : backoff_ms * 2);
    Log(o_, io::StreamLabel(sid_) + ": " + s.ToString() +
                "; nothing is dropped, retrying in " + std::to_string(next) +
                " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(next));
    return next;
  }

  Status OpenWriter() {
    // Only what a writer confirmed durable is kept: records after it were
    // written by a worker that died or failed before its fdatasync
    // returned, and may not be on disk (a host crash would cut them under a
    // later segment). Their changes are not marked, so they are journaled
    // again.
    auto first = PrepareJournalTail(
        dir_, sid_, grid_.grid_id(),
        node_.durable_journal_seq.load(std::memory_order_acquire) + 1, o_.log,
        node_.durable_journal_seq.load(std::memory_order_acquire));
    if (!first.ok()) return first.status();
    io::JournalWriterOptions wo;
    wo.dir = dir_;
    wo.node_id = sid_;
    wo.grid_id = grid_.grid_id();
    wo.first_seq = *first;
    wo.segment_bytes = grid_.journal().config.segment_bytes;
    wo.file_mode = grid_.config().mode;
    wo.group_id = static_cast<int>(grid_.config().gid);
    Result<std::unique_ptr<io::JournalWriter>> w =
        Status(StatusCode::kIoError, "no device");
    if (o_.make_device) {
      auto dev = o_.make_device();
      if (!dev.ok()) return dev.status();
      device_ = std::move(*dev);
      w = io::JournalWriter::Open(wo, device_.get());
    } else {
      w = io::JournalWriter::Open(wo);
    }
    if (!w.ok()) return w.status();
    writer_ = std::move(*w);
    durable_seq_ = *first - 1;
    return Status::Ok();
  }

  // Appends every change not yet journaled (up to the batch limit), makes
  // them durable, and marks them. Returns how many; *more when the batch
  // limit cut it short.
  Result<std::uint64_t> JournalBatch(bool* more) {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    Status append_error;
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      const std::uint32_t p = parts_[i];
      batch_bytes_[i] = 0;
      first_visible_ms_[i] = 0;
      upto_[i] =
          grid_.partition(p).ReadChanges(pos_[i], [&](const ChangeView& c) {
            if (bytes >= o_.max_batch_bytes) {
              *more = true;
              return false;
            }
            io::RecordView r;
            r.partition_id = p;
            r.op = OpOf(c.op);
            r.change_seq = c.seq;
            r.version = c.version;
            r.expiry_ms = c.op == kOpPut ? c.expire_at_ms : 0;
            r.key = c.key;
            r.value = c.op == kOpPut ? c.value : std::string_view();
            auto seq = writer_->Append(r);
            if (!seq.ok()) {
              append_error = seq.status();
              return false;
            }
            ++records;
            bytes += io::EncodedRecordBytes(r.key.size(), r.value.size());
            // For the lag measurement: the payload (as the writer counted
            // it in change_bytes) and the first (oldest) change's time.
            batch_bytes_[i] += r.key.size() + r.value.size();
            if (first_visible_ms_[i] == 0) first_visible_ms_[i] = c.visible_ms;
            return true;
          });
      if (!append_error.ok()) return append_error;
    }
    if (records == 0) return std::uint64_t{0};
    // The last look before the batch reaches the disk: a fenced worker
    // drops it unwritten.
    if (Fenced()) return AlreadyExists("fenced");
    const std::uint64_t flush_start_ns = shm::MonotonicNowNs();
    NUMAGRID_RETURN_IF_ERROR(writer_->Flush());
    stats_.flush_us.Record((shm::MonotonicNowNs() - flush_start_ns) / 1000);
    // Durable. First the journal position, then the marks: a worker that
    // starts after us keeps the records up to the published position and
    // cuts the rest (they may never have reached the disk); a change is
    // marked only once its record is below that position, so no marked
    // change is ever cut. release: a snapshot that loads it with acquire
    // reads next_seq afterwards, and every record up to it was appended
    // from ring entries below the next_seq of that time.
    durable_seq_ = writer_->durable_seq();
    node_.durable_journal_seq.store(durable_seq_, std::memory_order_release);
    // MarkJournaled stores with release, after the fdatasync returned.
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      if (upto_[i] != pos_[i]) {
        grid_.partition(parts_[i]).MarkJournaled(upto_[i], batch_bytes_[i]);
      }
      pos_[i] = upto_[i];
    }
    RecordLag();
    node_.records.fetch_add(records, std::memory_order_relaxed);
    node_.bytes.fetch_add(bytes, std::memory_order_relaxed);
    node_.flushes.fetch_add(1, std::memory_order_relaxed);
    bytes_since_snapshot_ += bytes;
    // release: a writer that sees the new epoch (acquire) and then loads its
    // partition's journaled_seq sees the marks above.
    node_.durable_epoch.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&node_.durable_epoch);
    return records;
  }

  // The batch just marked: how long ago its oldest change became visible.
  // Ring entries carry the low 32 bits of the writer's coarse wall clock
  // (0: unknown); an age above 2^31 ms means the clock stepped back, and is
  // left out. relaxed: reports; only this worker writes them.
  void RecordLag() {
    const auto now = static_cast<std::uint32_t>(NowMs());
    std::uint64_t lag = 0;
    bool known = false;
    for (const std::uint32_t v : first_visible_ms_) {
      if (v == 0) continue;
      const std::uint32_t age = now - v;  // modulo 2^32
      if (age > (1U << 31)) continue;
      lag = std::max<std::uint64_t>(lag, age);
      known = true;
    }
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    if (!known) return;
    stats_.lag_ms.Record(lag);
    stats_.lag_last_ms.store(lag, std::memory_order_relaxed);
    // The node's other streams' workers update it too: a compare-exchange
    // loop, so that no larger value is overwritten by a smaller one.
    // relaxed: a report; it publishes nothing else.
    std::uint64_t max = stats_.lag_max_ms.load(std::memory_order_relaxed);
    while (lag > max && !stats_.lag_max_ms.compare_exchange_weak(
                            max, lag, std::memory_order_relaxed)) {
    }
  }

  // Takes a snapshot when `numagrid snapshot` asked for one or the journal
  // grew by the configured size since the last one, and answers requests.
  void MaybeSnapshot() {
    // relaxed: the ticket counter carries no data.
    const std::uint64_t requested =
        node_.snapshot_requests.load(std::memory_order_relaxed);
    const JournalConfig& jc = grid_.journal().config;
    const std::uint64_t every = jc.snapshot_bytes;
    const bool by_size = every != 0 && bytes_since_snapshot_ >= every;
    const auto now = std::chrono::steady_clock::now();
    const bool by_time =
        jc.snapshot_interval_s != 0 && bytes_since_snapshot_ != 0 &&
        now - last_snapshot_ >= std::chrono::seconds(jc.snapshot_interval_s);
    if (requested <= snapshots_handled_ && !by_size && !by_time) return;
    if (Fenced()) return;  // the caller's loop steps down
    last_snapshot_ = now;
    Result<NodeSnapshotReport> r = Status(StatusCode::kIoError, "");
    // Not waiting: a snapshot by `numagrid snapshot` holds it; retry on a
    // later round rather than stall the journal.
    auto lock =
        LockNodeJournal(dir_, sid_, JournalLock::kSnapshot, /*wait=*/false);
    if (!lock.ok() && lock.status().code() == StatusCode::kAlreadyExists) {
      return;
    }
    if (lock.ok()) {
      r = WriteNodeSnapshot(
          grid_, sid_, o_.log,
          [this] {
            // relaxed: a heartbeat, read with a generous timeout.
            node_.heartbeat_mono_ms.store(shm::MonotonicNowNs() / 1'000'000,
                                          std::memory_order_relaxed);
          },
          o_.arena);
      close(*lock);
    } else {
      r = lock.status();
    }
    if (r.ok()) {
      bytes_since_snapshot_ = 0;
      // relaxed: published by the release store of snapshots_done below.
      node_.last_snapshot_seq.store(r->journal_seq, std::memory_order_relaxed);
      node_.last_snapshot_entries.store(r->entries, std::memory_order_relaxed);
      node_.last_snapshot_segments_deleted.store(r->segments_deleted,
                                                 std::memory_order_relaxed);
      node_.last_snapshot_code.store(0, std::memory_order_relaxed);
    } else {
      Log(o_, io::StreamLabel(sid_) +
                  ": snapshot failed: " + r.status().ToString());
      // Retry a size-triggered snapshot after half as much journal again.
      bytes_since_snapshot_ = every / 2;
      // relaxed: published by the release store of snapshots_done below.
      node_.last_snapshot_code.store(
          static_cast<std::uint32_t>(r.status().code()),
          std::memory_order_relaxed);
    }
    if (requested > snapshots_handled_) {
      snapshots_handled_ = requested;
      // release: the last_snapshot_* fields above are visible to the
      // requester that loads this with acquire.
      node_.snapshots_done.store(requested, std::memory_order_release);
    }
  }

  // While the journal fails, answers snapshot requests at once with the
  // failure instead of leaving `numagrid snapshot` to wait out its timeout
  // (a snapshot needs the same disk, and its coverage needs the journal).
  void RefuseSnapshotRequests(const Status& why) {
    // relaxed: the ticket counter carries no data.
    const std::uint64_t requested =
        node_.snapshot_requests.load(std::memory_order_relaxed);
    if (requested <= snapshots_handled_) return;
    Log(o_,
        io::StreamLabel(sid_) +
            ": snapshot refused while the journal fails: " + why.ToString());
    // relaxed: published by the release store of snapshots_done below.
    node_.last_snapshot_code.store(static_cast<std::uint32_t>(why.code()),
                                   std::memory_order_relaxed);
    snapshots_handled_ = requested;
    // release: the code above is visible to the requester that loads this
    // with acquire.
    node_.snapshots_done.store(requested, std::memory_order_release);
  }

  // Removes expired entries in the background, at a bounded rate: each
  // round looks at up to kExpirySlotsPerRound index slots, continuing where
  // the last round stopped (partition after partition), and removes what
  // expired there as an ordinary change (kRemoveExpired), so that the
  // journal records it and its memory is freed once journaled. Readers do
  // not see expired entries in the meantime (Find checks the expiry). Never
  // waits: a partition whose lock is held or whose ring is more than half
  // full is left for a later round.
  void ReclaimExpired() {
    // Not while draining for a stop: its removes would land after the
    // stop point (harmless, but they would keep the drain going).
    if (parts_.empty() || Stopping(o_)) return;
    // At most one round per kExpiryRoundMs, however busy the journal: each
    // live slot costs a read of its record's header (a cache miss).
    const auto t = std::chrono::steady_clock::now();
    if (t - last_expiry_round_ < std::chrono::milliseconds(kExpiryRoundMs)) {
      return;
    }
    last_expiry_round_ = t;
    const std::uint64_t now = NowMs();
    // relaxed: a setting (core/eviction_layout.h).
    const std::uint64_t max_idle =
        grid_.eviction().max_idle_ms.load(std::memory_order_relaxed);
    WriteLimits limits = grid_.limits();
    limits.lock_timeout_ns = 0;
    limits.ring_wait_ns = 0;
    std::uint64_t budget = kExpirySlotsPerRound;
    std::vector<std::pair<std::string, std::uint64_t>> expired;
    for (std::size_t visited = 0; budget > 0 && visited < parts_.size();
         ++visited) {
      PartitionRef& part = grid_.partition(parts_[expiry_part_]);
      const PartitionState& st = part.state();
      // relaxed: a heuristic for skipping a busy ring; Write re-checks.
      const bool ring_busy =
          st.next_seq.load(std::memory_order_relaxed) -
              st.reclaimed_seq.load(std::memory_order_relaxed) >=
          st.ring_capacity / 2;
      const std::uint64_t slots = part.index_slots();
      const std::uint64_t step = std::min(budget, slots - expiry_slot_);
      if (!ring_busy) {
        expired.clear();
        {
          // The records stay allocated while pinned; keys are copied.
          GridHandle::EpochGuard pin(grid_);
          part.ScanExpired(
              expiry_slot_, step, now, max_idle, [&](const RecordView& r) {
                expired.emplace_back(std::string(r.key()), r.version());
              });
        }
        for (const auto& [key, version] : expired) {
          WriteRequest rq;
          rq.kind = WriteKind::kRemoveExpired;
          rq.key = key;
          rq.hash = base::KeyHash(key);
          rq.expected_version = version;
          rq.max_idle_ms = max_idle;
          if (part.Write(rq, limits, now).ok()) {
            // relaxed: a counter for `status`.
            node_.expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
      budget -= step;
      expiry_slot_ += step;
      if (expiry_slot_ >= slots || ring_busy) {
        expiry_slot_ = 0;
        expiry_part_ = (expiry_part_ + 1) % parts_.size();
      }
    }
  }

  // Background eviction (core/evictor.h): keeps the node below its high
  // watermark. Never waits for a lock or ring space (a busy partition is
  // left for the next round), and not while draining for a stop. Returns
  // true while the node is still above its low watermark.
  bool Evict() {
    if (parts_.empty() || Stopping(o_)) return false;
    WriteLimits limits = grid_.limits();
    limits.lock_timeout_ns = 0;
    limits.ring_wait_ns = 0;
    bool still_above = false;
    evictor_->Run(kEvictionsPerRound, limits, &still_above);
    return still_above;
  }

  // Frees what journaled changes replaced when writers have gone quiet
  // (writers reclaim for themselves while they write) or a ring is half
  // full of journaled entries. The partitions that need it are reclaimed in
  // parallel in the node's arena: each Reclaim holds only its partition's
  // lock (as writers of different partitions do) and uses no state of this
  // handle, so two partitions' reclaims are independent.
  void ReclaimIdle(bool idle) {
    reclaim_.clear();
    for (std::uint32_t p : parts_) {
      const PartitionState& st = grid_.partition(p).state();
      // relaxed: a heuristic; Reclaim re-reads under the lock.
      const std::uint64_t journaled =
          st.journaled_seq.load(std::memory_order_relaxed);
      const std::uint64_t reclaimed =
          st.reclaimed_seq.load(std::memory_order_relaxed);
      if (journaled == reclaimed) continue;
      if (idle || journaled - reclaimed >= st.ring_capacity / 2) {
        reclaim_.push_back(p);
      }
    }
    // Never wait: a writer stopped while holding the lock must not stall
    // the journal.
    const auto reclaim_one = [this](std::size_t i) {
      (void)grid_.partition(reclaim_[i])
          .Reclaim(grid_.limits(),
                   /*wait=*/false);
    };
    if (o_.arena != nullptr && reclaim_.size() > 1) {
      // A failing arena reclaims nothing this round; writers reclaim for
      // themselves, and the next round tries again.
      Status s = o_.arena->ForEach(reclaim_.size(), reclaim_one);
      if (!s.ok()) Log(o_, s.ToString());
    } else {
      for (std::size_t i = 0; i < reclaim_.size(); ++i) reclaim_one(i);
    }
  }

  GridHandle& grid_;
  const JournalWorkerOptions& o_;
  const std::uint32_t sid_;  // io::StreamId of the stream this worker writes
  JournalNodeState& node_;
  NodeStats& stats_;
  const std::string dir_;
  std::vector<std::uint32_t> parts_;    // this stream's partitions
  std::vector<std::uint32_t> reclaim_;  // ReclaimIdle's partitions to do
  std::vector<std::uint64_t> pos_;      // next change to journal, per partition
  std::vector<std::uint64_t> upto_;     // end of the batch being flushed
  // Per partition, of the batch being flushed: key + value bytes, and the
  // first change's RingEntry::visible_ms.
  std::vector<std::uint64_t> batch_bytes_;
  std::vector<std::uint32_t> first_visible_ms_;
  std::unique_ptr<io::JournalDevice> device_;
  std::unique_ptr<io::JournalWriter> writer_;
  std::uint64_t durable_seq_ = 0;
  const std::uint64_t generation_;
  bool fenced_ = false;
  // The current streak of failed journal writes: when it began, and how
  // many attempts failed.
  std::chrono::steady_clock::time_point io_error_since_{};
  std::uint64_t io_errors_in_streak_ = 0;
  std::size_t expiry_part_ = 0;    // index into parts_ of the sweep
  std::uint64_t expiry_slot_ = 0;  // next index slot the sweep looks at
  std::chrono::steady_clock::time_point last_expiry_round_{};
  std::optional<Evictor> evictor_;           // over parts_
  std::vector<std::uint64_t> stop_targets_;  // set when a stop arrives
  std::uint64_t bytes_since_snapshot_ = 0;
  std::uint64_t snapshots_handled_ = 0;
  std::chrono::steady_clock::time_point last_snapshot_ =
      std::chrono::steady_clock::now();
};

}  // namespace

namespace {

std::string LockPath(const std::string& dir, std::uint32_t node) {
  return dir + "/journal-" + io::StreamTag(node) + ".lock";
}

}  // namespace

Result<int> LockNodeJournal(const std::string& dir, std::uint32_t node,
                            JournalLock which, bool wait) {
  const std::string path = LockPath(dir, node);
  const int fd = OpenJournalDirFile(
      dir, "journal-" + io::StreamTag(node) + ".lock", O_RDWR);
  if (fd < 0) return io::detail::ErrnoStatus(errno, "open " + path);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(which);
  fl.l_len = 1;
  int rc;
  do {
    rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
  } while (rc != 0 && errno == EINTR && wait);
  if (rc != 0) {
    const int err = errno;
    close(fd);
    if (err == EAGAIN || err == EACCES) {
      // OFD locks do not name their holder (F_GETLK reports pid -1);
      // RunJournalWorker names it from the node's published worker pid.
      return AlreadyExists("another worker journals " + io::StreamLabel(node) +
                           " in " + dir);
    }
    return io::detail::ErrnoStatus(err, "lock " + path);
  }
  return fd;
}

bool NodeJournalLocked(const std::string& dir, std::uint32_t node) {
  const std::string path = LockPath(dir, node);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(JournalLock::kJournal);
  fl.l_len = 1;
  const bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  close(fd);
  return held;
}

namespace {

// Cuts `path` at `offset` (removing it when nothing but its header would be
// left) and makes the cut durable.
Status CutSegment(const std::string& dir, const std::string& path,
                  std::uint64_t offset) {
  if (offset <= io::kSegmentHeaderBytes) {
    if (unlink(path.c_str()) != 0) {
      return io::detail::ErrnoStatus(errno, "remove " + path);
    }
  } else {
    const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return io::detail::ErrnoStatus(errno, "open " + path);
    const bool ok =
        ftruncate(fd, static_cast<off_t>(offset)) == 0 && fsync(fd) == 0;
    const int err = errno;
    close(fd);
    if (!ok) return io::detail::ErrnoIoError(err, "truncate " + path);
  }
  const int d = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) return io::detail::ErrnoStatus(errno, "open " + dir);
  const int rc = fsync(d);
  const int err = errno;
  close(d);
  if (rc != 0) return io::detail::ErrnoIoError(err, "fsync " + dir);
  return Status::Ok();
}

}  // namespace

Result<std::uint64_t> PrepareJournalTail(
    const std::string& dir, std::uint32_t node, std::uint64_t grid_id,
    std::uint64_t floor, const std::function<void(std::string_view)>& log,
    std::uint64_t keep_upto) {
  // Only the last segment matters. If its header was torn, or it holds
  // nothing to keep, it goes and the one before becomes the last: read
  // again.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    io::JournalReaderOptions ro;
    ro.dir = dir;
    ro.node_id = node;
    ro.grid_id = grid_id;
    ro.from_seq = UINT64_MAX;
    auto reader = io::JournalReader::Open(ro);
    if (!reader.ok()) return reader.status();
    if ((*reader)->segments().empty()) {
      // No segment: continue after the newest snapshot, if any.
      auto snaps = io::ListSnapshots(dir, node);
      if (snaps.ok() && !snaps->empty()) {
        floor = std::max(floor, snaps->back().journal_seq + 1);
      }
      return std::max<std::uint64_t>(floor, 1);
    }
    const io::SegmentFile last_segment = (*reader)->segments().back();
    // Records follow the header back to back, so the offset of each is the
    // sum of the sizes before it.
    std::uint64_t offset = io::kSegmentHeaderBytes;
    std::uint64_t last_kept = 0;
    bool beyond = false;
    for (;;) {
      auto rec = (*reader)->Next();
      if (!rec.ok()) return rec.status();
      if (!rec->has_value()) break;
      if ((*rec)->sequence > keep_upto) {
        beyond = true;
        break;
      }
      last_kept = (*rec)->sequence;
      offset +=
          io::EncodedRecordBytes((*rec)->key.size(), (*rec)->value.size());
    }
    if (beyond) {
      // Records whose fdatasync failed: the page cache may still show them,
      // but nothing says they reached the disk, so they must not be counted
      // durable (the worker journals the same changes again).
      if (log) {
        log(io::StreamLabel(node) + ": cutting " + last_segment.path +
            " at offset " + std::to_string(offset) +
            ": its records after sequence " + std::to_string(keep_upto) +
            " were never confirmed durable");
      }
      NUMAGRID_RETURN_IF_ERROR(CutSegment(dir, last_segment.path, offset));
      if (offset <= io::kSegmentHeaderBytes) continue;
      return std::max(last_kept + 1, floor);
    }
    const io::DroppedTail& tail = (*reader)->tail();
    if (tail.kind != io::TailKind::kNone) {
      if (log) log(io::StreamLabel(node) + ": cutting " + tail.ToString());
      NUMAGRID_RETURN_IF_ERROR((*reader)->TruncateTornTail());
      if (tail.removes_file) continue;
    }
    const std::uint64_t last = (*reader)->last_good_seq();
    return std::max(last + 1, floor);
  }
  return Corruption("journal of " + io::StreamLabel(node) + " in " + dir +
                    ": could not find its end");
}

Status RunJournalWorker(GridHandle& grid, const JournalWorkerOptions& o) {
  if (!grid.journaled()) {
    return InvalidArgument("grid '" + grid.name() +
                           "' has no journal (created with --no-journal)");
  }
  if (o.node >= grid.config().node_count) {
    return InvalidArgument("grid '" + grid.name() + "' has nodes 0.." +
                           std::to_string(grid.config().node_count - 1) +
                           ", not " + std::to_string(o.node));
  }
  if (o.stream >= grid.streams_per_node()) {
    return InvalidArgument("grid '" + grid.name() + "' has " +
                           std::to_string(grid.streams_per_node()) +
                           " journal stream(s) per node (streams 0.." +
                           std::to_string(grid.streams_per_node() - 1) +
                           "), not stream " + std::to_string(o.stream));
  }
  const std::uint32_t sid = io::StreamId(o.node, o.stream);
  auto lock = LockNodeJournal(grid.journal_dir(), sid);
  if (!lock.ok()) {
    if (lock.status().code() != StatusCode::kAlreadyExists) {
      return lock.status();
    }
    // OFD locks do not name their holder; the running worker published
    // its pid. relaxed: a diagnosis.
    const std::uint64_t pid =
        grid.journal_node(sid).worker_pid.load(std::memory_order_relaxed);
    return AlreadyExists("another worker (pid " + std::to_string(pid) +
                         ") journals " + io::StreamLabel(sid) + " of grid '" +
                         grid.name() + "' in " + grid.journal_dir());
  }
  JournalNodeState& node = grid.journal_node(sid);
  std::uint64_t generation = o.generation;
  if (generation == 0) {
    generation = TakeWorkerGeneration(grid, sid);
  } else if (const std::uint64_t now =
                 node.generation.load(std::memory_order_acquire);
             now != generation) {
    // acquire: pairs with the release of TakeWorkerGeneration in the
    // process that gave us `generation`, so we see at least that value.
    close(*lock);
    return AlreadyExists("fenced: generation " + std::to_string(generation) +
                         " superseded by " + std::to_string(now) +
                         " before it started; exiting without writing");
  }
  NodeJournaler j(grid, o, generation);
  Status s = j.Run();
  close(*lock);
  return s;
}

std::uint64_t TakeWorkerGeneration(GridHandle& grid, std::uint32_t node) {
  // acq_rel: the release half lets the worker given this value see it (its
  // acquire load at start); each caller gets a distinct, larger value.
  return grid.journal_node(node).generation.fetch_add(
             1, std::memory_order_acq_rel) +
         1;
}

std::uint64_t FenceNodeWorker(GridHandle& grid, std::uint32_t node,
                              const std::string& cause) {
  JournalNodeState& ns = grid.journal_node(node);
  const std::uint64_t generation = TakeWorkerGeneration(grid, node);
  GridEvent e;
  e.kind = EventKind::kWorkerFenced;
  e.node = static_cast<std::int32_t>(node);
  // relaxed: the pid and generation of the worker being fenced, for the
  // event only.
  e.pid = ns.worker_pid.load(std::memory_order_relaxed);
  e.generation = ns.worker_generation.load(std::memory_order_relaxed);
  e.cause = cause + "; new generation " + std::to_string(generation);
  RecordEvent(grid, e, grid.journal_dir());
  return generation;
}

}  // namespace numagrid::core
