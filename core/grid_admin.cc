#include "core/grid_admin.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <memory>

#include "core/base/check.h"
#include "core/base/units.h"
#include "core/control_layout.h"
#include "core/data_layout.h"
#include "core/data_segment_init.h"
#include "core/grid_names.h"
#include "core/journal_dir.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "core/partition_alloc.h"
#include "core/record.h"
#include "numa/placement.h"
#include "shm/lock_file.h"
#include "shm/process_table.h"
#include "shm/segment.h"

namespace numagrid::core {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMinMemoryPerNode = 1ULL << 20;

std::uint64_t RoundUp(std::uint64_t v, std::uint64_t align) {
  return (v + align - 1) / align * align;
}

std::uint64_t NewGridId() {
  std::uint64_t id = 0;
  while (id == 0) {
    if (getrandom(&id, sizeof id, 0) != sizeof id) {
      id = static_cast<std::uint64_t>(getpid()) * 0x9E3779B97F4A7C15ULL ^
           static_cast<std::uint64_t>(time(nullptr));
    }
  }
  return id;
}

Status ValidateOptions(const CreateOptions& o, std::uint32_t node_count) {
  if (o.partitions == 0 || o.partitions > kMaxPartitions) {
    return InvalidArgument("--partitions must be in [1, " +
                           std::to_string(kMaxPartitions) + "], got " +
                           std::to_string(o.partitions));
  }
  if (o.max_key_bytes == 0 || o.max_key_bytes > 65535) {
    return InvalidArgument("--max-key must be in [1, 65535] bytes, got " +
                           std::to_string(o.max_key_bytes));
  }
  if (o.max_value_bytes > kMaxValueLimit) {
    return InvalidArgument("--max-value must be at most " +
                           std::to_string(kMaxValueLimit >> 20) + " MiB, got " +
                           std::to_string(o.max_value_bytes));
  }
  if (o.ring_capacity < 16 || o.ring_capacity > (1ULL << 24) ||
      (o.ring_capacity & (o.ring_capacity - 1)) != 0) {
    return InvalidArgument(
        "--ring-capacity must be a power of two in [16, 2^24], got " +
        std::to_string(o.ring_capacity));
  }
  if (o.process_capacity == 0 ||
      o.process_capacity > shm::ProcessTable::kMaxCapacity) {
    return InvalidArgument("--max-processes must be in [1, " +
                           std::to_string(shm::ProcessTable::kMaxCapacity) +
                           "], got " + std::to_string(o.process_capacity));
  }
  if (o.workers_per_node == 0 || o.workers_per_node > kMaxStreamsPerNode) {
    return InvalidArgument("--workers-per-node must be in [1, " +
                           std::to_string(kMaxStreamsPerNode) + "], got " +
                           std::to_string(o.workers_per_node));
  }
  if (o.journal_dir.empty() && o.workers_per_node != 1) {
    return InvalidArgument(
        "--workers-per-node " + std::to_string(o.workers_per_node) +
        " needs a journal: a grid created with --no-journal has no workers");
  }
  if (!o.journal_dir.empty()) {
    if (o.journal_dir[0] != '/') {
      return InvalidArgument("--journal-dir must be an absolute path, got '" +
                             o.journal_dir + "'");
    }
    if (o.journal_dir.size() >= sizeof(JournalConfig::dir)) {
      return InvalidArgument("--journal-dir is longer than " +
                             std::to_string(sizeof(JournalConfig::dir) - 1) +
                             " bytes");
    }
    if (o.durability != kDurabilityAsync && o.durability != kDurabilitySync) {
      return InvalidArgument("--durability must be async or sync");
    }
    if (o.flush_interval_us < 100 || o.flush_interval_us > 10'000'000) {
      return InvalidArgument("--flush-interval must be in [100us, 10s], got " +
                             std::to_string(o.flush_interval_us) + " us");
    }
    if (o.journal_segment_bytes < (1ULL << 20)) {
      return InvalidArgument("--journal-segment-size must be at least 1 MiB");
    }
    if (o.sync_wait_ms == 0) {
      return InvalidArgument("--sync-wait must be at least 1 ms");
    }
  }
  if (o.memory_bytes < kMinMemoryPerNode * node_count) {
    return InvalidArgument(
        "--memory must be at least " + std::to_string(kMinMemoryPerNode >> 20) +
        " MiB per NUMA node (" + std::to_string(node_count) + " nodes), got " +
        std::to_string(o.memory_bytes) + " bytes");
  }
  return Status::Ok();
}

// Makes every page of [base, base+len) resident, through the range's memory
// policy, so that the binding decides where the pages go. MADV_POPULATE_WRITE
// reports a full /dev/shm as an error where touching would raise SIGBUS.
Status Prefault(std::byte* base, std::uint64_t len, const std::string& what) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(base, len, MADV_POPULATE_WRITE) == 0) return Status::Ok();
  if (errno != EINVAL) {
    return ResourceExhausted(
        "cannot make the " + std::to_string(len >> 20) + " MiB of segment '" +
        what + "' resident: " + std::strerror(errno) + " (is /dev/shm full?)");
  }
#endif
  // A kernel older than 5.14: touch each page.
  for (std::uint64_t off = 0; off < len; off += kPage) {
    reinterpret_cast<volatile char*>(base)[off] = 0;
  }
  return Status::Ok();
}

// Removes, on destruction, the segments created so far unless Commit() ran.
class CreatedSegments {
 public:
  ~CreatedSegments() {
    if (committed_) return;
    for (const auto& n : names_) (void)shm::Segment::Remove(n);
  }
  void Add(std::string name) { names_.push_back(std::move(name)); }
  void Commit() { committed_ = true; }

 private:
  std::vector<std::string> names_;
  bool committed_ = false;
};

}  // namespace

Result<CreateReport> CreateGrid(std::string_view name,
                                const CreateOptions& options,
                                const numa::Topology& topology) {
  NUMAGRID_RETURN_IF_ERROR(ValidateGridName(name));
  const std::uint32_t node_count = topology.node_count();
  NUMAGRID_RETURN_IF_ERROR(ValidateOptions(options, node_count));
  auto placement = numa::PlacePartitions(options.partitions, node_count);
  if (!placement.ok()) return placement.status();

  shm::Access access;
  if (options.group) {
    auto gid = shm::LookupGroup(*options.group);
    if (!gid.ok()) return gid.status();
    access.mode = 0660;
    access.group = *gid;
  }
  const std::string ctl_name = ControlSegmentName(name);
  if (shm::Segment::Exists(ctl_name)) {
    return AlreadyExists("grid '" + std::string(name) + "' already exists");
  }

  const std::uint64_t max_entries = options.max_entries != 0
                                        ? options.max_entries
                                        : options.memory_bytes / 128;
  EvictionConfig eviction = options.eviction;
  if (eviction.max_entries == 0) eviction.max_entries = max_entries;
  NUMAGRID_RETURN_IF_ERROR(ValidateEvictionConfig(eviction, max_entries));
  const std::uint64_t grid_id =
      options.grid_id != 0 ? options.grid_id : NewGridId();
  const bool journaled = !options.journal_dir.empty();
  if (journaled && !options.recovering) {
    NUMAGRID_RETURN_IF_ERROR(
        ClaimJournalDir(options.journal_dir, access.group));
  }
  const std::uint64_t per_node =
      (options.memory_bytes + node_count - 1) / node_count;
  const std::uint64_t per_partition =
      (max_entries + options.partitions - 1) / options.partitions;
  const std::uint64_t index_slots =
      std::bit_ceil(std::max<std::uint64_t>(16, per_partition * 4 / 3 + 1));
  const std::uint64_t chunk_bytes = ChunkBytesFor(
      RecordBytes(options.max_key_bytes, options.max_value_bytes, true));

  CreateReport report;
  report.node_count = node_count;
  report.topology_source = topology.source();
  report.all_bound = true;
  CreatedSegments created;
  std::vector<NodeEntry> node_entries(node_count);

  // The lock file first: attached processes lock their slot's byte in it.
  const std::string lock_name = LockFileName(name);
  {
    auto lock = shm::LockFile::Create("/dev/shm/" + lock_name, access.mode,
                                      access.group);
    if (!lock.ok()) {
      if (lock.status().code() == StatusCode::kAlreadyExists) {
        return AlreadyExists("grid '" + std::string(name) +
                             "' already exists (or is being created)");
      }
      return lock.status().WithContext("create grid '" + std::string(name) +
                                       "'");
    }
    created.Add(lock_name);
  }

  for (std::uint32_t node = 0; node < node_count; ++node) {
    DataSegmentPlan plan;
    plan.node_id = node;
    plan.partitions = placement->partitions_of_node[node];
    plan.index_slots = index_slots;
    plan.ring_capacity = options.ring_capacity;
    plan.chunk_bytes = chunk_bytes;
    plan.arena_bytes = per_node;
    plan.Compute();
    if (plan.chunk_count < 2) {
      return InvalidArgument(
          "--memory gives node " + std::to_string(node) + " " +
          base::FormatSize(per_node) + ", less than two chunks of " +
          base::FormatSize(chunk_bytes) + " (chunks grow with --max-value)");
    }
    shm::SegmentSpec spec{DataSegmentName(name, node),
                          plan.segment_bytes,
                          shm::SegmentKind::kData,
                          node,
                          grid_id,
                          kDataLayoutVersion,
                          kDataLayoutSignature,
                          access};
    bool bound = false;
    auto prepare = [&](void* base, std::size_t size) -> Status {
      if (options.bind) {
        auto outcome = topology.BindMemory(base, size, node);
        if (!outcome.ok()) return outcome.status();
        bound = *outcome == numa::BindOutcome::kApplied;
      }
      // The first touch happens here, after the binding.
      return InitializeDataSegment(base, plan);
    };
    auto seg = shm::Segment::Create(spec, prepare);
    if (!seg.ok()) {
      if (seg.status().code() == StatusCode::kAlreadyExists) {
        return AlreadyExists("grid '" + std::string(name) +
                             "' already exists (or is being created): " +
                             seg.status().message());
      }
      return seg.status().WithContext("create grid '" + std::string(name) +
                                      "'");
    }
    created.Add(spec.name);
    // After Create, which has reserved the pages (fallocate), so a full
    // /dev/shm was reported there rather than as SIGBUS here.
    if (options.prefault) {
      NUMAGRID_RETURN_IF_ERROR(Prefault(seg->base(), seg->size(), spec.name));
    }

    NodeEntry& e = node_entries[node];
    e.node_id = node;
    e.os_index = topology.nodes()[node].os_index;
    e.segment_bytes = plan.segment_bytes;
    e.partition_count = static_cast<std::uint32_t>(plan.partitions.size());
    e.flags = bound ? kNodeBound : 0;
    report.all_bound = report.all_bound && bound;
  }

  // The control segment comes last: its presence means the grid exists.
  const std::uint64_t nodes_off = RoundUp(sizeof(ControlBlock), 64);
  const std::uint64_t parts_off =
      RoundUp(nodes_off + sizeof(NodeEntry) * node_count, 64);
  const std::uint64_t procs_off =
      RoundUp(parts_off + sizeof(PartitionEntry) * options.partitions, 64);
  const std::uint64_t procs_bytes =
      shm::ProcessTable::BytesFor(options.process_capacity);
  const std::uint64_t journal_off = RoundUp(procs_off + procs_bytes, 64);
  const std::uint32_t stream_count = node_count * options.workers_per_node;
  const std::uint64_t stats_off =
      RoundUp(journal_off + JournalBlockBytes(stream_count), 64);
  const std::uint32_t read_buckets = ReadCounterBuckets(
      options.partitions, node_count, options.process_capacity);
  const std::uint64_t stats_bytes =
      StatsBytes(node_count, options.process_capacity, read_buckets);
  const std::uint64_t eviction_off = RoundUp(stats_off + stats_bytes, 64);
  const std::uint64_t ctl_bytes =
      RoundUp(eviction_off + sizeof(EvictionSettings), kPage);

  shm::SegmentSpec ctl_spec{ctl_name,
                            ctl_bytes,
                            shm::SegmentKind::kControl,
                            0,
                            grid_id,
                            kControlLayoutVersion,
                            kControlLayoutSignature,
                            access};
  auto fill = [&](void* base, std::size_t) -> Status {
    // Runs before the header (and its magic) is written, so no process can
    // see a half-filled configuration.
    auto* block = static_cast<ControlBlock*>(base);
    GridConfig& c = block->config;
    std::memcpy(c.name, name.data(), name.size());
    c.partition_count = options.partitions;
    c.node_count = node_count;
    c.memory_bytes = per_node * node_count;
    c.journal_mode = journaled ? kJournalConsumer : kJournalNone;
    c.journal_off = journal_off;
    // The stats area starts zeroed, as the segment does.
    c.stats_off = stats_off;
    c.stats_bytes = stats_bytes;
    c.read_buckets = read_buckets;
    c.eviction_off = eviction_off;
    StoreEvictionConfig(*reinterpret_cast<EvictionSettings*>(
                            static_cast<std::byte*>(base) + eviction_off),
                        eviction);
    auto* jb = reinterpret_cast<JournalBlock*>(static_cast<std::byte*>(base) +
                                               journal_off);
    JournalConfig& jc = jb->config;
    std::strncpy(jc.dir, options.journal_dir.c_str(), sizeof jc.dir - 1);
    jc.durability = options.durability;
    jc.flush_interval_us = options.flush_interval_us;
    jc.segment_bytes = options.journal_segment_bytes;
    jc.sync_wait_ms = options.sync_wait_ms;
    jc.snapshot_bytes = options.snapshot_bytes;
    jc.snapshot_interval_s = options.snapshot_interval_s;
    jc.streams_per_node = options.workers_per_node;
    // relaxed: the segment is published (magic, release) after this fill.
    jb->recovery_state.store(
        options.recovering ? kRecoveryRunning : kRecoveryNone,
        std::memory_order_relaxed);
    jb->recovery_pid =
        options.recovering ? static_cast<std::uint32_t>(getpid()) : 0;
    // The segment starts zeroed: only the ring's capacity needs setting.
    reinterpret_cast<EventLog*>(static_cast<std::byte*>(base) + journal_off +
                                EventLogOffset(stream_count))
        ->capacity = kEventLogCapacity;
    c.process_capacity = options.process_capacity;
    c.procs_off = procs_off;
    c.procs_bytes = procs_bytes;
    c.ring_capacity = options.ring_capacity;
    c.index_slots = index_slots;
    c.max_entries = max_entries;
    c.lock_timeout_ms = options.lock_timeout_ms;
    c.ring_wait_ms = options.ring_wait_ms;
    shm::ProcessTable::Initialize(static_cast<std::byte*>(base) + procs_off,
                                  options.process_capacity);
    c.max_key_bytes = options.max_key_bytes;
    c.max_value_bytes = options.max_value_bytes;
    c.flags = (report.all_bound ? kConfigMemoryBound : 0) |
              (options.prefault ? kConfigPrefaulted : 0) |
              (options.stats ? 0 : kConfigNoStats);
    c.mode = access.mode;
    c.gid = access.group ? *access.group : getgid();
    c.nodes_off = nodes_off;
    c.partitions_off = parts_off;
    std::strncpy(c.topology_source, report.topology_source.c_str(),
                 sizeof c.topology_source - 1);
    auto* bytes = static_cast<std::byte*>(base);
    std::memcpy(bytes + nodes_off, node_entries.data(),
                sizeof(NodeEntry) * node_count);
    auto* parts = reinterpret_cast<PartitionEntry*>(bytes + parts_off);
    std::vector<std::uint32_t> next_slot(node_count, 0);
    for (std::uint32_t p = 0; p < options.partitions; ++p) {
      const std::uint32_t n = placement->node_of_partition[p];
      parts[p] = PartitionEntry{n, next_slot[n]++};
    }
    return Status::Ok();
  };
  // The manifest goes before the control segment, so that a grid that
  // exists always has one; a create that fails from here removes it.
  bool wrote_manifest = false;
  if (journaled && !options.recovering) {
    GridManifest m;
    m.name = std::string(name);
    m.grid_id = grid_id;
    m.node_count = node_count;
    m.partitions = options.partitions;
    m.memory_bytes = options.memory_bytes;
    m.max_key_bytes = options.max_key_bytes;
    m.max_value_bytes = options.max_value_bytes;
    m.max_entries = options.max_entries;
    m.ring_capacity = options.ring_capacity;
    m.process_capacity = options.process_capacity;
    m.lock_timeout_ms = options.lock_timeout_ms;
    m.ring_wait_ms = options.ring_wait_ms;
    m.group = options.group.value_or("");
    m.durability = options.durability == kDurabilitySync ? "sync" : "async";
    m.flush_interval_us = options.flush_interval_us;
    m.segment_bytes = options.journal_segment_bytes;
    m.sync_wait_ms = options.sync_wait_ms;
    m.snapshot_bytes = options.snapshot_bytes;
    m.snapshot_interval_s = options.snapshot_interval_s;
    m.streams_per_node = options.workers_per_node;
    m.eviction = options.eviction;
    NUMAGRID_RETURN_IF_ERROR(
        WriteManifest(options.journal_dir, m, access.mode, access.group));
    wrote_manifest = true;
  }
  auto ctl = shm::Segment::Create(ctl_spec, fill);
  if (!ctl.ok()) {
    if (wrote_manifest) RemoveManifest(options.journal_dir);
    if (ctl.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("grid '" + std::string(name) + "' already exists");
    }
    return ctl.status().WithContext("create grid '" + std::string(name) + "'");
  }
  created.Commit();
  return report;
}

CreateOptions OptionsFromManifest(const GridManifest& m,
                                  const std::string& dir) {
  CreateOptions o;
  o.partitions = m.partitions;
  o.memory_bytes = m.memory_bytes;
  if (!m.group.empty()) o.group = m.group;
  o.max_key_bytes = m.max_key_bytes;
  o.max_value_bytes = m.max_value_bytes;
  o.max_entries = m.max_entries;
  o.ring_capacity = m.ring_capacity;
  o.process_capacity = m.process_capacity;
  o.lock_timeout_ms = m.lock_timeout_ms;
  o.ring_wait_ms = m.ring_wait_ms;
  o.journal_dir = dir;
  o.durability = m.durability == "sync" ? kDurabilitySync : kDurabilityAsync;
  o.flush_interval_us = m.flush_interval_us;
  o.journal_segment_bytes = m.segment_bytes;
  o.sync_wait_ms = m.sync_wait_ms;
  o.snapshot_bytes = m.snapshot_bytes;
  o.snapshot_interval_s = m.snapshot_interval_s;
  o.workers_per_node = m.streams_per_node;
  o.eviction = m.eviction;
  o.grid_id = m.grid_id;
  return o;
}

Status DestroyGrid(std::string_view name) {
  NUMAGRID_RETURN_IF_ERROR(ValidateGridName(name));
  auto names = shm::Segment::List(GridSegmentPrefix(name));
  if (names.empty()) {
    return NotFound("grid '" + std::string(name) + "' does not exist");
  }
  // Control first: from here on nobody can attach to a half-removed grid.
  const std::string ctl = ControlSegmentName(name);
  std::stable_partition(names.begin(), names.end(),
                        [&](const std::string& n) { return n == ctl; });
  for (const auto& n : names) {
    Status s = shm::Segment::Remove(n);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  return Status::Ok();
}

Result<GridReport> InspectGrid(std::string_view name,
                               const numa::Topology* readback) {
  NUMAGRID_RETURN_IF_ERROR(ValidateGridName(name));
  const std::string ctl_name = ControlSegmentName(name);
  if (!shm::Segment::Exists(ctl_name)) {
    if (!shm::Segment::List(GridSegmentPrefix(name)).empty()) {
      return NotFound("grid '" + std::string(name) +
                      "' is incomplete (no control segment): a create failed "
                      "or is under way; `numagrid destroy " +
                      std::string(name) + "` removes what is left");
    }
    return NotFound("grid '" + std::string(name) + "' does not exist");
  }
  auto ctl = shm::Segment::Open(
      ctl_name, {shm::SegmentKind::kControl, kControlLayoutVersion,
                 kControlLayoutSignature});
  if (!ctl.ok()) return ctl.status();
  const GridConfig& c = ctl->At<ControlBlock>(0)->config;
  if (c.node_count == 0 || c.node_count > kMaxNodes || c.partition_count == 0 ||
      c.partition_count > kMaxPartitions ||
      c.partitions_off + sizeof(PartitionEntry) * c.partition_count >
          ctl->size() ||
      c.nodes_off + sizeof(NodeEntry) * c.node_count > ctl->size()) {
    return Corruption("control segment '" + ctl_name +
                      "' has an impossible configuration");
  }

  GridReport r;
  r.name = std::string(name);
  r.grid_id = ctl->header().grid_id;
  r.control_layout_version = ctl->header().layout_version;
  r.created_unix_ns = ctl->header().created_unix_ns;
  r.owner_uid = ctl->header().owner_uid;
  r.gid = c.gid;
  r.mode = c.mode;
  r.partition_count = c.partition_count;
  r.memory_bytes = c.memory_bytes;
  r.max_key_bytes = c.max_key_bytes;
  r.max_value_bytes = c.max_value_bytes;
  r.prefaulted = (c.flags & kConfigPrefaulted) != 0;
  r.max_entries = c.max_entries;
  r.index_slots = c.index_slots;
  r.ring_capacity = c.ring_capacity;
  r.process_capacity = c.process_capacity;
  if (c.journal_off + JournalBlockBytes(c.node_count) > ctl->size()) {
    return Corruption("control segment '" + ctl_name +
                      "' has an impossible configuration");
  }
  const auto* jb = ctl->At<JournalBlock>(c.journal_off);
  r.workers_per_node = StreamsPerNode(jb->config);
  if (r.workers_per_node > kMaxStreamsPerNode ||
      c.journal_off + JournalBlockBytes(c.node_count * r.workers_per_node) >
          ctl->size()) {
    return Corruption("control segment '" + ctl_name +
                      "' has an impossible configuration");
  }
  if (c.journal_mode == kJournalConsumer) {
    r.journal_dir.assign(jb->config.dir,
                         strnlen(jb->config.dir, sizeof jb->config.dir));
    r.durability = jb->config.durability == kDurabilitySync ? "sync" : "async";
    r.flush_interval_us = jb->config.flush_interval_us;
  } else {
    r.durability = "none";
  }
  // acquire: pairs with the release store that ends a recovery.
  r.recovering =
      jb->recovery_state.load(std::memory_order_acquire) == kRecoveryRunning;
  r.topology_source.assign(
      c.topology_source, strnlen(c.topology_source, sizeof c.topology_source));
  r.control_segment = ctl_name;

  const auto* nodes = ctl->At<NodeEntry>(c.nodes_off);
  const auto* parts = ctl->At<PartitionEntry>(c.partitions_off);
  r.nodes.resize(c.node_count);
  for (std::uint32_t p = 0; p < c.partition_count; ++p) {
    if (parts[p].node_id >= c.node_count) {
      return Corruption("control segment '" + ctl_name + "': partition " +
                        std::to_string(p) + " names node " +
                        std::to_string(parts[p].node_id) + " of " +
                        std::to_string(c.node_count));
    }
    r.nodes[parts[p].node_id].partitions.push_back(p);
  }
  for (std::uint32_t n = 0; n < c.node_count; ++n) {
    NodeReport& nr = r.nodes[n];
    nr.node_id = nodes[n].node_id;
    nr.os_index = nodes[n].os_index;
    nr.segment_name = DataSegmentName(name, n);
    nr.segment_bytes = nodes[n].segment_bytes;
    nr.bound = (nodes[n].flags & kNodeBound) != 0;
    auto seg = shm::Segment::Open(
        nr.segment_name,
        {shm::SegmentKind::kData, kDataLayoutVersion, kDataLayoutSignature});
    if (!seg.ok()) return seg.status();
    r.data_layout_version = seg->header().layout_version;
    if (seg->header().grid_id != r.grid_id) {
      return Corruption("data segment '" + nr.segment_name +
                        "' belongs to another grid (id mismatch)");
    }
    const auto* block = seg->At<DataBlock>(0);
    nr.arena_bytes = block->node.arena_bytes;
    nr.chunk_bytes = block->node.chunk_bytes;
    if (readback != nullptr && readback->is_this_system() && r.prefaulted) {
      // The kernel reports only pages mapped into this process: map them
      // (they exist already, prefaulted at create, so nothing is allocated).
      std::byte* arena = seg->base() + block->node.arena_off;
#ifdef MADV_POPULATE_READ
      if (madvise(arena, block->node.arena_bytes, MADV_POPULATE_READ) != 0)
#endif
      {
        for (std::uint64_t off = 0; off < block->node.arena_bytes;
             off += kPage) {
          (void)reinterpret_cast<volatile const char*>(arena)[off];
        }
      }
      auto where = readback->MemoryNodesOf(seg->base() + block->node.arena_off,
                                           block->node.arena_bytes);
      if (where.ok()) nr.resident_nodes = *where;
    }
  }
  return r;
}

std::vector<GridListing> ListGrids() {
  std::map<std::string, GridListing> grids;
  for (const auto& seg : shm::Segment::List(kSegmentPrefix)) {
    std::string_view rest(seg);
    rest.remove_prefix(kSegmentPrefix.size());
    const auto dot = rest.rfind('.');
    if (dot == std::string_view::npos || dot == 0) continue;
    std::string grid(rest.substr(0, dot));
    if (!ValidateGridName(grid).ok()) continue;
    grids[grid].name = grid;
  }
  std::vector<GridListing> out;
  for (auto& [grid, listing] : grids) {
    auto ctl =
        shm::Segment::Open(ControlSegmentName(grid),
                           {shm::SegmentKind::kControl, kControlLayoutVersion,
                            kControlLayoutSignature});
    listing.complete = ctl.ok();
    if (!ctl.ok()) listing.problem = ctl.status().ToString();
    out.push_back(std::move(listing));
  }
  return out;
}

}  // namespace numagrid::core
