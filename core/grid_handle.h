// GridHandle: one process's attachment to a grid: the mapped segments, its
// slot in the process table, and a PartitionRef per partition. The public
// numagrid::Grid and the CLI are built on it.
//
// Thread safety: thread-compatible. One handle owns one process slot, whose
// epoch pin covers one operation at a time: use one handle per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/control_layout.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "io/node_file_name.h"
#include "numagrid/status.h"
#include "shm/lock_file.h"
#include "shm/process_table.h"
#include "shm/segment.h"

namespace numagrid::core {

class GridHandle {
 public:
  // Maps every segment of grid `name`, validates them, and claims a process
  // slot. Errors: kNotFound, kVersionMismatch, kCorruption,
  // kPermissionDenied, kResourceExhausted (no free process slot).
  // kUnavailable while `recover` rebuilds the grid, unless
  // `allow_recovering` (for `recover` itself).
  static Result<std::unique_ptr<GridHandle>> Attach(
      std::string_view name, bool allow_recovering = false);
  ~GridHandle();
  GridHandle(const GridHandle&) = delete;
  GridHandle& operator=(const GridHandle&) = delete;

  const GridConfig& config() const noexcept { return *config_; }
  const WriteLimits& limits() const noexcept { return limits_; }
  std::uint32_t partition_count() const noexcept {
    return config_->partition_count;
  }
  PartitionRef& partition(std::uint32_t p) noexcept { return partitions_[p]; }
  shm::ProcessTable& procs() noexcept { return *procs_; }
  bool journaled() const noexcept {
    return config_->journal_mode == kJournalConsumer;
  }
  JournalBlock& journal() noexcept { return *journal_; }
  // Journal streams per node (JournalConfig::streams_per_node; 1 for a
  // grid without a journal), and the streams of the grid.
  std::uint32_t streams_per_node() const noexcept { return streams_per_node_; }
  std::uint32_t stream_count() const noexcept {
    return config_->node_count * streams_per_node_;
  }
  // The state of journal stream `stream_id` (io::StreamId(node, stream));
  // for stream 0 that is the node number, so `journal_node(n)` is node n's
  // first (with one stream per node, only) stream.
  // REQUIRES: its node < node_count, its stream < streams_per_node().
  JournalNodeState& journal_node(std::uint32_t stream_id) noexcept {
    return journal_nodes_[io::StreamNode(stream_id) * streams_per_node_ +
                          io::StreamIndex(stream_id)];
  }
  // The stream ids of the grid, node by node.
  std::vector<std::uint32_t> stream_ids() const;
  // The journal stream (io::StreamId) that journals partition `p`:
  // StreamOfSlot of its slot in its node.
  std::uint32_t stream_of(std::uint32_t p) const noexcept {
    return partition_streams_[p];
  }
  // The grid's event ring (core/event_log.h reads and writes it).
  EventLog& events() noexcept { return *events_; }
  // Monitoring (core/stats_layout.h). stats_enabled(): false for a grid
  // created with --no-stats, whose data path keeps no counters.
  bool stats_enabled() const noexcept { return limits_.stats; }
  NodeStats& node_stats(std::uint32_t node) noexcept {
    return node_stats_[node];
  }
  const ProcessStats& process_stats(std::uint32_t slot) const noexcept {
    return process_stats_[slot];
  }
  // Slot `slot`'s row of GridConfig::read_buckets read counters.
  ReadCounters* read_row(std::uint32_t slot) noexcept {
    return reinterpret_cast<ReadCounters*>(
        read_counters_ + ReadRowBytes(config_->read_buckets) * slot);
  }
  // Whether read counters are kept per partition (else per node).
  bool reads_per_partition() const noexcept {
    return config_->read_buckets == config_->partition_count;
  }
  // The eviction and expiry settings (core/eviction_layout.h), which
  // `numagrid config` changes while the grid runs.
  EvictionSettings& eviction() noexcept { return *eviction_; }
  // This handle's own counters (its slot's), or null with --no-stats.
  ProcessCounters* counters() noexcept { return counters_; }
  std::string journal_dir() const;
  std::uint64_t grid_id() const noexcept { return control_.header().grid_id; }
  const std::string& name() const noexcept { return name_; }
  // The node whose data segment holds partition `p`.
  std::uint32_t node_of(std::uint32_t p) const noexcept {
    return partition_nodes_[p];
  }
  shm::LockFile& lock_file() noexcept { return lock_file_; }
  std::uint32_t slot() const noexcept { return slot_; }

  // Pins this handle's epoch for the guard's lifetime: records read under it
  // stay valid until it ends. Guards nest (a Get inside a Scan visitor):
  // only the outermost one pins and unpins.
  class EpochGuard {
   public:
    explicit EpochGuard(GridHandle& h) noexcept : h_(h) {
      if (h_.pin_depth_++ == 0) h_.procs_->Pin(h_.slot_);
    }
    ~EpochGuard() {
      if (--h_.pin_depth_ == 0) h_.procs_->Unpin(h_.slot_);
    }
    EpochGuard(const EpochGuard&) = delete;
    EpochGuard& operator=(const EpochGuard&) = delete;

   private:
    GridHandle& h_;
  };

  // False in a child forked after Attach: its lock file was closed at fork
  // (shm::LockFile), so it holds no process slot and must attach anew.
  bool usable() const noexcept { return lock_file_.fd() >= 0; }

  // Waits until every change of partition `p` below `upto` is durable in the
  // journal (its journaled_seq reaches `upto`), waking the node's worker so
  // that it flushes now. OK at once for a memory-only grid. kUnavailable
  // after the grid's sync wait (JournalConfig::sync_wait_ms), naming the
  // node and whether its worker runs: the changes stay visible and will be
  // journaled once a worker runs. (core/durable_wait.cc)
  // `deadline_ns` (shm::MonotonicNowNs), if not 0, replaces the sync wait.
  Status WaitDurable(std::uint32_t p, std::uint64_t upto,
                     std::uint64_t deadline_ns = 0);

  // The limits check every write makes before touching shared memory.
  Status CheckKey(std::string_view key) const;
  Status CheckValue(std::string_view value) const;

 private:
  GridHandle() = default;

  std::string name_;
  shm::Segment control_;
  std::vector<shm::Segment> data_;
  const GridConfig* config_ = nullptr;
  JournalBlock* journal_ = nullptr;
  JournalNodeState* journal_nodes_ = nullptr;
  EventLog* events_ = nullptr;
  NodeStats* node_stats_ = nullptr;
  EvictionSettings* eviction_ = nullptr;
  ProcessStats* process_stats_ = nullptr;
  ProcessCounters* counters_ = nullptr;  // null: --no-stats
  std::byte* read_counters_ = nullptr;   // the first slot's row
  std::vector<std::uint32_t> partition_nodes_;
  std::vector<std::uint32_t> partition_streams_;  // io::StreamId per partition
  std::uint32_t streams_per_node_ = 1;
  shm::LockFile lock_file_;
  std::optional<shm::ProcessTable> procs_;  // set by Attach
  std::uint32_t slot_ = 0;
  bool has_slot_ = false;
  int pin_depth_ = 0;  // EpochGuards alive on this handle
  WriteLimits limits_;
  std::vector<PartitionRef> partitions_;
};

}  // namespace numagrid::core
