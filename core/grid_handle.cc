#include "core/grid_handle.h"

#include <cstring>

#include "core/data_layout.h"
#include "core/grid_names.h"

namespace numagrid::core {

Result<std::unique_ptr<GridHandle>> GridHandle::Attach(std::string_view name,
                                                       bool allow_recovering) {
  NUMAGRID_RETURN_IF_ERROR(ValidateGridName(name));
  std::unique_ptr<GridHandle> h(new GridHandle());
  h->name_ = std::string(name);
  auto ctl =
      shm::Segment::Open(ControlSegmentName(name),
                         {shm::SegmentKind::kControl, kControlLayoutVersion,
                          kControlLayoutSignature});
  if (!ctl.ok()) {
    if (ctl.status().code() == StatusCode::kNotFound) {
      return NotFound("grid '" + std::string(name) + "' does not exist");
    }
    return ctl.status();
  }
  h->control_ = std::move(*ctl);
  h->config_ = &h->control_.At<ControlBlock>(0)->config;
  const GridConfig& c = *h->config_;
  if (c.node_count == 0 || c.node_count > kMaxNodes || c.partition_count == 0 ||
      c.partition_count > kMaxPartitions ||
      c.partitions_off + sizeof(PartitionEntry) * c.partition_count >
          h->control_.size() ||
      c.procs_off + c.procs_bytes > h->control_.size() ||
      c.journal_off % 64 != 0 ||
      c.journal_off + JournalBlockBytes(c.node_count) > h->control_.size() ||
      StreamsPerNode(h->control_.At<JournalBlock>(c.journal_off)->config) >
          kMaxStreamsPerNode ||
      c.journal_off +
              JournalBlockBytes(
                  c.node_count *
                  StreamsPerNode(
                      h->control_.At<JournalBlock>(c.journal_off)->config)) >
          h->control_.size() ||
      c.stats_off % 64 != 0 ||
      c.read_buckets != ReadCounterBuckets(c.partition_count, c.node_count,
                                           c.process_capacity) ||
      c.stats_bytes !=
          StatsBytes(c.node_count, c.process_capacity, c.read_buckets) ||
      c.stats_off + c.stats_bytes > h->control_.size() ||
      c.eviction_off % 64 != 0 ||
      c.eviction_off + sizeof(EvictionSettings) > h->control_.size()) {
    return Corruption("control segment of grid '" + std::string(name) +
                      "' has an impossible configuration");
  }
  h->journal_ = h->control_.At<JournalBlock>(c.journal_off);
  h->streams_per_node_ = StreamsPerNode(h->journal_->config);
  h->journal_nodes_ =
      h->control_.At<JournalNodeState>(c.journal_off + sizeof(JournalBlock));
  h->events_ = h->control_.At<EventLog>(
      c.journal_off + EventLogOffset(c.node_count * h->streams_per_node_));
  h->node_stats_ = h->control_.At<NodeStats>(c.stats_off);
  h->eviction_ = h->control_.At<EvictionSettings>(c.eviction_off);
  h->process_stats_ = h->control_.At<ProcessStats>(
      c.stats_off + sizeof(NodeStats) * c.node_count);
  h->read_counters_ = h->control_.At<std::byte>(
      c.stats_off + ReadCountersOffset(c.node_count, c.process_capacity));
  // acquire: pairs with the release store that ends a recovery; the rebuilt
  // partitions are complete before it.
  if (!allow_recovering && h->journal_->recovery_state.load(
                               std::memory_order_acquire) != kRecoveryNone) {
    return Unavailable("grid '" + std::string(name) +
                       "' is being recovered from its journal (by pid " +
                       std::to_string(h->journal_->recovery_pid) +
                       "); if no `numagrid recover " + std::string(name) +
                       "` is running, run it again");
  }
  auto procs =
      shm::ProcessTable::View(h->control_.base() + c.procs_off, c.procs_bytes);
  if (!procs.ok()) return procs.status();
  h->procs_.emplace(*procs);

  for (std::uint32_t n = 0; n < c.node_count; ++n) {
    auto seg = shm::Segment::Open(
        DataSegmentName(name, n),
        {shm::SegmentKind::kData, kDataLayoutVersion, kDataLayoutSignature});
    if (!seg.ok()) return seg.status();
    if (seg->header().grid_id != h->control_.header().grid_id) {
      return Corruption("data segment '" + seg->name() +
                        "' belongs to another grid");
    }
    h->data_.push_back(std::move(*seg));
  }
  const auto* entries = h->control_.At<PartitionEntry>(c.partitions_off);
  h->partitions_.reserve(c.partition_count);
  h->partition_nodes_.reserve(c.partition_count);
  h->partition_streams_.reserve(c.partition_count);
  for (std::uint32_t p = 0; p < c.partition_count; ++p) {
    const PartitionEntry& e = entries[p];
    if (e.node_id >= c.node_count) {
      return Corruption("partition map of grid '" + std::string(name) +
                        "' is corrupt");
    }
    shm::Segment& seg = h->data_[e.node_id];
    const auto* node = &seg.At<DataBlock>(0)->node;
    if (e.slot_in_node >= node->partition_count) {
      return Corruption("partition map of grid '" + std::string(name) +
                        "' is corrupt");
    }
    auto* state = seg.At<PartitionState>(
        node->partitions_off + e.slot_in_node * sizeof(PartitionState));
    if (state->partition_id != p) {
      return Corruption("data segment '" + seg.name() + "' holds partition " +
                        std::to_string(state->partition_id) + " where " +
                        std::to_string(p) + " belongs");
    }
    h->partitions_.emplace_back(seg.base(), node, state, &*h->procs_);
    const std::uint32_t stream_id = io::StreamId(
        e.node_id, StreamOfSlot(e.slot_in_node, h->streams_per_node_));
    h->partition_nodes_.push_back(e.node_id);
    h->partition_streams_.push_back(stream_id);
    if (c.journal_mode == kJournalConsumer) {
      h->partitions_.back().set_journal_wake(&h->journal_node(stream_id).wake);
    }
  }
  h->limits_.max_key_bytes = c.max_key_bytes;
  h->limits_.max_value_bytes = c.max_value_bytes;
  h->limits_.lock_timeout_ns = std::uint64_t{c.lock_timeout_ms} * 1000000;
  h->limits_.ring_wait_ns = std::uint64_t{c.ring_wait_ms} * 1000000;
  h->limits_.journal_mode = c.journal_mode;
  h->limits_.stats = (c.flags & kConfigNoStats) == 0;

  auto lock = shm::LockFile::Open("/dev/shm/" + LockFileName(name));
  if (!lock.ok()) return lock.status();
  h->lock_file_ = std::move(*lock);
  auto slot = h->procs_->Claim(h->lock_file_);
  if (!slot.ok())
    return slot.status().WithContext("attach to grid '" + std::string(name) +
                                     "'");
  h->slot_ = *slot;
  h->has_slot_ = true;
  if (*slot >= c.process_capacity) {
    return Corruption("process table of grid '" + std::string(name) +
                      "' is larger than its configuration says");
  }
  if (h->limits_.stats) {
    ProcessStats& ps = h->process_stats_[*slot];
    // The slot's counters go on from its last owner's (never zeroed, so
    // totals never drop); remember where this owner began. relaxed: we own
    // the slot (its lock-file byte); readers take any value.
    auto copy = [](std::atomic<std::uint64_t>& to,
                   const std::atomic<std::uint64_t>& from) {
      to.store(from.load(std::memory_order_relaxed), std::memory_order_relaxed);
    };
    copy(ps.at_claim.puts, ps.total.puts);
    copy(ps.at_claim.removes, ps.total.removes);
    copy(ps.at_claim.cas_failures, ps.total.cas_failures);
    copy(ps.at_claim.write_errors, ps.total.write_errors);
    copy(ps.at_claim.backpressure_waits, ps.total.backpressure_waits);
    copy(ps.at_claim.backpressure_wait_ns, ps.total.backpressure_wait_ns);
    ReadCounters* row = h->read_row(*slot);
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    for (std::uint32_t b = 0; b < c.read_buckets; ++b) {
      hits += row[b].hits.load(std::memory_order_relaxed);
      misses += row[b].misses.load(std::memory_order_relaxed);
    }
    ps.reads_at_claim.hits.store(hits, std::memory_order_relaxed);
    ps.reads_at_claim.misses.store(misses, std::memory_order_relaxed);
    h->counters_ = &ps.total;
    const bool per_partition = c.read_buckets == c.partition_count;
    for (std::uint32_t p = 0; p < c.partition_count; ++p) {
      PartitionRef& part = h->partitions_[p];
      part.set_process_counters(h->counters_);
      part.set_read_counters(&row[per_partition ? p : h->node_of(p)]);
    }
  }
  return h;
}

std::string GridHandle::journal_dir() const {
  const JournalConfig& jc = journal_->config;
  return std::string(jc.dir, strnlen(jc.dir, sizeof jc.dir));
}

GridHandle::~GridHandle() {
  if (has_slot_) procs_->Release(slot_, lock_file_);
}

Status GridHandle::CheckKey(std::string_view key) const {
  if (key.empty()) return InvalidArgument("empty key");
  if (key.size() > config_->max_key_bytes) {
    return InvalidArgument("key of " + std::to_string(key.size()) +
                           " bytes exceeds the grid's limit of " +
                           std::to_string(config_->max_key_bytes) +
                           " bytes (--max-key)");
  }
  return Status::Ok();
}

Status GridHandle::CheckValue(std::string_view value) const {
  if (value.size() > config_->max_value_bytes) {
    return InvalidArgument("value of " + std::to_string(value.size()) +
                           " bytes exceeds the grid's limit of " +
                           std::to_string(config_->max_value_bytes) +
                           " bytes (--max-value)");
  }
  return Status::Ok();
}

std::vector<std::uint32_t> GridHandle::stream_ids() const {
  std::vector<std::uint32_t> ids;
  ids.reserve(stream_count());
  for (std::uint32_t n = 0; n < config_->node_count; ++n) {
    for (std::uint32_t s = 0; s < streams_per_node_; ++s) {
      ids.push_back(io::StreamId(n, s));
    }
  }
  return ids;
}

}  // namespace numagrid::core
