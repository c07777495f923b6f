#include "core/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "core/journal_worker.h"
#include "core/partition.h"
#include "io/errno_status.h"
#include "io/journal_record.h"
#include "io/snapshot_file.h"
#include "shm/futex.h"

namespace numagrid::core {
namespace {

struct CopiedEntry {
  std::uint64_t off;  // key then value in the copy buffer
  std::uint32_t key_len;
  std::uint32_t value_len;
  std::uint64_t version;
  std::uint64_t expiry_ms;
};

struct JournalSegment {
  std::string path;
  std::uint64_t first_seq;
};

std::vector<JournalSegment> ListJournalSegments(const std::string& dir,
                                                std::uint32_t node) {
  std::vector<JournalSegment> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    auto seq = io::ParseSegmentFileName(e->d_name, node);
    if (seq) out.push_back({dir + "/" + e->d_name, *seq});
  }
  closedir(d);
  std::sort(out.begin(), out.end(),
            [](const JournalSegment& a, const JournalSegment& b) {
              return a.first_seq < b.first_seq;
            });
  return out;
}

// Keeps the two newest snapshots; removes older ones and every journal
// segment whose records the older kept snapshot covers (all of a segment is
// covered when the next segment starts at or below its J + 1). The newest
// segment is never removed: it tells a new writer where to continue.
Result<std::uint64_t> Prune(const std::string& dir, std::uint32_t node) {
  auto snaps = io::ListSnapshots(dir, node);
  if (!snaps.ok()) return snaps.status();
  if (snaps->size() < 2) return std::uint64_t{0};
  const std::uint64_t covered = (*snaps)[snaps->size() - 2].journal_seq;
  for (std::size_t i = 0; i + 2 < snaps->size(); ++i) {
    (void)unlink((*snaps)[i].path.c_str());
  }
  const auto segs = ListJournalSegments(dir, node);
  std::uint64_t deleted = 0;
  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
    if (segs[i + 1].first_seq > covered + 1) break;
    if (unlink(segs[i].path.c_str()) != 0) {
      return io::detail::ErrnoStatus(errno, "delete " + segs[i].path);
    }
    ++deleted;
  }
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  return deleted;
}

// Removes the `.tmp` files that snapshot writers killed midway left (the
// caller holds the snapshot lock, so none is being written).
void RemoveStaleTemporaries(const std::string& dir, std::uint32_t node) {
  const std::string prefix = "snapshot-" + io::StreamTag(node) + "-";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = readdir(d)) {
    const std::string_view n = e->d_name;
    if (n.starts_with(prefix) && n.ends_with(".snap.tmp")) {
      stale.emplace_back(n);
    }
  }
  closedir(d);
  for (const auto& n : stale) (void)unlink((dir + "/" + n).c_str());
}

}  // namespace

Result<NodeSnapshotReport> WriteNodeSnapshot(
    GridHandle& grid, std::uint32_t node,
    const std::function<void(std::string_view)>& log,
    const std::function<void()>& tick, WorkerArena* arena) {
  const std::string dir = grid.journal_dir();
  JournalNodeState& ns = grid.journal_node(node);
  // acquire: pairs with the worker's release store after its marks; every
  // record <= J is below its partition's journaled_seq from here on.
  const std::uint64_t journal_seq =
      ns.durable_journal_seq.load(std::memory_order_acquire);
  NodeSnapshotReport report;
  report.node = io::StreamNode(node);
  report.stream = io::StreamIndex(node);
  report.journal_seq = journal_seq;
  report.path = dir + "/" + io::SnapshotFileName(node, journal_seq);

  io::SnapshotWriterOptions wo;
  wo.dir = dir;
  wo.grid_id = grid.grid_id();
  wo.node_id = node;
  wo.journal_seq = journal_seq;
  wo.file_mode = grid.config().mode;
  wo.group_id = static_cast<int>(grid.config().gid);
  RemoveStaleTemporaries(dir, node);
  auto writer = io::SnapshotWriter::Create(wo);
  if (!writer.ok()) {
    if (writer.status().code() != StatusCode::kAlreadyExists) {
      return writer.status();
    }
    // A snapshot at this journal position exists: nothing was journaled
    // since, and the changes not yet journaled will follow it in the
    // journal. It stands.
    if (log) log(io::StreamLabel(node) + ": " + report.path + " is current");
    auto pruned = Prune(dir, node);
    if (!pruned.ok()) return pruned.status();
    report.segments_deleted = *pruned;
    return report;
  }

  // The node's partitions are copied in groups of the arena's concurrency,
  // in parallel (each copy holds only its own partition's lock, as writers
  // of different partitions do), then written to the file one after the
  // other in partition order. A group bounds the process memory a snapshot
  // holds to that many partitions' live data.
  std::vector<std::uint32_t> parts;
  for (std::uint32_t p = 0; p < grid.partition_count(); ++p) {
    if (grid.stream_of(p) == node) parts.push_back(p);
  }
  const std::size_t group =
      arena != nullptr ? std::max<std::size_t>(1, arena->max_concurrency()) : 1;
  struct Copy {
    std::vector<char> buf;
    std::vector<CopiedEntry> entries;
    std::uint64_t covered = 0;
    Status status;
  };
  std::vector<Copy> copies(std::min(group, parts.size()));
  const std::uint64_t now = NowMs();
  for (std::size_t first = 0; first < parts.size(); first += group) {
    const std::size_t count = std::min(group, parts.size() - first);
    const auto copy_one = [&](std::size_t i) {
      Copy& c = copies[i];
      const std::uint32_t p = parts[first + i];
      c.buf.clear();
      c.entries.clear();
      c.covered = 0;
      c.status = grid.partition(p).CopyLive(
          grid.limits(), now, [&](std::uint64_t seq) { c.covered = seq; },
          [&](const RecordView& r) {
            const std::string_view k = r.key();
            const std::string_view v = r.value();
            c.entries.push_back({c.buf.size(),
                                 static_cast<std::uint32_t>(k.size()),
                                 static_cast<std::uint32_t>(v.size()),
                                 r.version(), r.expire_at_ms()});
            c.buf.insert(c.buf.end(), k.begin(), k.end());
            c.buf.insert(c.buf.end(), v.begin(), v.end());
          });
    };
    if (arena != nullptr && count > 1) {
      NUMAGRID_RETURN_IF_ERROR(arena->ForEach(count, copy_one));
    } else {
      for (std::size_t i = 0; i < count; ++i) copy_one(i);
    }
    for (std::size_t i = 0; i < count; ++i) {
      const Copy& c = copies[i];
      const std::uint32_t p = parts[first + i];
      NUMAGRID_RETURN_IF_ERROR(c.status);
      NUMAGRID_RETURN_IF_ERROR((*writer)->BeginPartition(p, c.covered));
      for (const CopiedEntry& e : c.entries) {
        io::RecordView r;
        r.partition_id = p;
        r.op = io::RecordOp::kPut;
        r.version = e.version;
        r.expiry_ms = e.expiry_ms;
        r.key = std::string_view(c.buf.data() + e.off, e.key_len);
        r.value =
            std::string_view(c.buf.data() + e.off + e.key_len, e.value_len);
        NUMAGRID_RETURN_IF_ERROR((*writer)->Add(r));
      }
      NUMAGRID_RETURN_IF_ERROR((*writer)->EndPartition());
      if (tick) tick();
    }
  }
  NUMAGRID_RETURN_IF_ERROR((*writer)->Commit());
  report.entries = (*writer)->entry_count();
  report.bytes = (*writer)->file_bytes();
  auto pruned = Prune(dir, node);
  if (!pruned.ok()) return pruned.status();
  report.segments_deleted = *pruned;
  if (log) {
    log(io::StreamLabel(node) + ": snapshot " + report.path + " (" +
        std::to_string(report.entries) + " entries); " +
        std::to_string(report.segments_deleted) +
        " journal segment(s) deleted");
  }
  return report;
}

Result<std::vector<NodeSnapshotReport>> SnapshotGrid(GridHandle& grid,
                                                     const SnapshotOptions& o) {
  if (!grid.journaled()) {
    return InvalidArgument("grid '" + grid.name() +
                           "' has no journal (created with --no-journal)");
  }
  std::vector<NodeSnapshotReport> out;
  // Every journal stream of every node: each covers its own partitions.
  for (const std::uint32_t node : grid.stream_ids()) {
    if (!NodeJournalLocked(grid.journal_dir(), node)) {
      // No worker: write it here. (A worker that starts meanwhile waits
      // for the snapshot lock before its own snapshots.)
      auto lock =
          LockNodeJournal(grid.journal_dir(), node, JournalLock::kSnapshot,
                          /*wait=*/true);
      if (!lock.ok()) return lock.status();
      auto r = WriteNodeSnapshot(grid, node, o.log);
      close(*lock);
      if (!r.ok()) return r.status();
      out.push_back(*r);
      continue;
    }
    // A worker holds the journal: ask it.
    JournalNodeState& ns = grid.journal_node(node);
    // relaxed: a ticket number; the answer is published by snapshots_done.
    const std::uint64_t ticket =
        ns.snapshot_requests.fetch_add(1, std::memory_order_relaxed) + 1;
    // release: pairs with the worker's acquire load of the word.
    ns.wake.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&ns.wake, 1);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(o.worker_timeout_ms);
    // acquire: pairs with the worker's release store of snapshots_done,
    // after it filled in the last_snapshot_* fields.
    while (ns.snapshots_done.load(std::memory_order_acquire) < ticket) {
      if (!NodeJournalLocked(grid.journal_dir(), node)) {
        return Unavailable(io::StreamLabel(node) +
                           "'s worker stopped before it took the snapshot; "
                           "run `numagrid snapshot` again");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return Unavailable(io::StreamLabel(node) +
                           "'s worker did not take the snapshot within " +
                           std::to_string(o.worker_timeout_ms) + " ms");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // relaxed: these fields were published by the worker's release store
    // of snapshots_done, which we loaded with acquire.
    const auto code = static_cast<StatusCode>(
        ns.last_snapshot_code.load(std::memory_order_relaxed));
    if (code != StatusCode::kOk) {
      return Status(code, io::StreamLabel(node) +
                              "'s worker failed to take the snapshot (its "
                              "log says why)");
    }
    NodeSnapshotReport r;
    r.node = io::StreamNode(node);
    r.stream = io::StreamIndex(node);
    r.by_worker = true;
    r.journal_seq = ns.last_snapshot_seq.load(std::memory_order_relaxed);
    r.entries = ns.last_snapshot_entries.load(std::memory_order_relaxed);
    r.segments_deleted =
        ns.last_snapshot_segments_deleted.load(std::memory_order_relaxed);
    r.path =
        grid.journal_dir() + "/" + io::SnapshotFileName(node, r.journal_seq);
    struct stat st {};
    if (stat(r.path.c_str(), &st) == 0) {
      r.bytes = static_cast<std::uint64_t>(st.st_size);
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace numagrid::core
