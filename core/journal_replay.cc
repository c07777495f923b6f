#include "core/journal_replay.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/base/check.h"
#include "io/errno_status.h"
#include "io/journal_reader.h"
#include "io/node_file_name.h"
#include "io/snapshot_file.h"

namespace numagrid::core {
namespace {

// The identifiers of RecoveryReport's dropped tails (JSON, scripts).
std::string TailKindId(io::TailKind kind) {
  switch (kind) {
    case io::TailKind::kTornRecord:
      return "torn_record";
    case io::TailKind::kCorruptRecord:
      return "corrupt_record";
    case io::TailKind::kTornHeader:
      return "torn_header";
    case io::TailKind::kNone:
      break;
  }
  return "none";
}

}  // namespace

JournalReplay::JournalReplay(std::string dir, std::uint64_t grid_id,
                             std::uint32_t partitions,
                             std::function<void(std::string_view)> log,
                             RecoveryReport* report)
    : dir_(std::move(dir)),
      grid_id_(grid_id),
      partitions_(partitions),
      log_(std::move(log)),
      report_(report),
      next_apply_(partitions, 0),
      max_version_(partitions, 0) {}

Status JournalReplay::Node(std::uint32_t node, ReplaySink& sink,
                           bool truncate_tail) {
  std::uint64_t covered_journal = 0;
  NUMAGRID_RETURN_IF_ERROR(LoadSnapshot(node, sink, &covered_journal));
  return ReplayJournal(node, sink, covered_journal, truncate_tail);
}

std::uint64_t JournalReplay::next_seq(std::uint32_t p) const {
  return std::max(next_apply_[p], max_version_[p] + 1);
}

std::uint64_t JournalReplay::last_journal_seq(std::uint32_t node) const {
  const auto it = last_journal_.find(node);
  return it != last_journal_.end() ? it->second : 0;
}

void JournalReplay::Log(const std::string& line) const {
  if (log_) log_(line);
}

// The newest snapshot that verifies; older ones when it does not.
Status JournalReplay::LoadSnapshot(std::uint32_t node, ReplaySink& sink,
                                   std::uint64_t* covered_journal) {
  auto list = io::ListSnapshots(dir_, node);
  if (!list.ok()) return list.status();
  for (auto it = list->rbegin(); it != list->rend(); ++it) {
    auto reader = io::SnapshotReader::Open(it->path, grid_id_, node);
    if (!reader.ok()) {
      report_->snapshots_rejected.push_back(it->path + ": " +
                                            reader.status().message());
      Log("snapshot rejected: " + it->path + ": " + reader.status().ToString());
      continue;
    }
    for (;;) {
      auto item = (*reader)->Next();
      if (!item.ok()) return item.status();
      if (!item->has_value()) break;
      const io::SnapshotItem& si = **item;
      if (si.partition_id >= partitions_) {
        return Corruption(
            it->path + ": partition " + std::to_string(si.partition_id) +
            " does not exist in a grid of " + std::to_string(partitions_));
      }
      if (si.kind == io::SnapshotItem::Kind::kPartition) {
        next_apply_[si.partition_id] =
            std::max(next_apply_[si.partition_id], si.covered_seq);
        continue;
      }
      max_version_[si.partition_id] =
          std::max(max_version_[si.partition_id], si.entry.version);
      NUMAGRID_RETURN_IF_ERROR(sink.Add(si.entry));
      ++report_->snapshot_entries;
    }
    *covered_journal = (*reader)->header().journal_seq;
    report_->snapshots_used.push_back(it->path);
    Log(io::StreamLabel(node) + ": loaded " + it->path + " (" +
        std::to_string((*reader)->entry_count()) + " entries)");
    return Status::Ok();
  }
  return Status::Ok();
}

Status JournalReplay::ReplayJournal(std::uint32_t node, ReplaySink& sink,
                                    std::uint64_t covered_journal,
                                    bool truncate_tail) {
  io::JournalReaderOptions ro;
  ro.dir = dir_;
  ro.node_id = node;
  ro.grid_id = grid_id_;
  ro.from_seq = covered_journal + 1;
  auto reader = io::JournalReader::Open(ro);
  if (!reader.ok()) return reader.status();
  const auto& segs = (*reader)->segments();
  if (!segs.empty() && segs.front().first_seq > covered_journal + 1) {
    return Corruption(
        "journal of " + io::StreamLabel(node) + " in " + dir_ +
        " starts at sequence " + std::to_string(segs.front().first_seq) +
        " but " +
        (covered_journal == 0
             ? std::string("no valid snapshot covers the ones before it")
             : "the newest valid snapshot covers only up to " +
                   std::to_string(covered_journal)) +
        ": journal segments are missing");
  }
  std::uint64_t last = covered_journal;
  for (;;) {
    auto rec = (*reader)->Next();
    if (!rec.ok()) return rec.status();
    if (!rec->has_value()) break;
    const io::RecordView& r = **rec;
    last = r.sequence;
    if (r.sequence <= covered_journal) continue;
    ++report_->journal_records;
    if (r.partition_id >= partitions_) {
      return Corruption("journal of " + io::StreamLabel(node) + ": record " +
                        std::to_string(r.sequence) + " names partition " +
                        std::to_string(r.partition_id) + " of " +
                        std::to_string(partitions_));
    }
    // Each partition's changes apply once, in change order: a record the
    // snapshot holds, or one a restarted worker journaled again, is
    // skipped.
    if (r.change_seq < next_apply_[r.partition_id]) {
      ++report_->skipped_records;
      continue;
    }
    next_apply_[r.partition_id] = r.change_seq + 1;
    max_version_[r.partition_id] =
        std::max(max_version_[r.partition_id], r.version);
    if (r.op == io::RecordOp::kPut || r.op == io::RecordOp::kRemove ||
        r.op == io::RecordOp::kExpire || r.op == io::RecordOp::kEvict) {
      NUMAGRID_RETURN_IF_ERROR(sink.Add(r));
      ++report_->applied_records;
    }
  }
  NUMAGRID_RETURN_IF_ERROR(sink.Flush());
  const io::DroppedTail& tail = (*reader)->tail();
  if (tail.kind != io::TailKind::kNone) {
    DroppedTailReport d;
    d.node = io::StreamNode(node);
    d.stream = io::StreamIndex(node);
    d.kind = TailKindId(tail.kind);
    d.file = tail.file;
    d.offset = tail.offset;
    d.bytes = tail.dropped_bytes;
    d.last_good_seq = tail.last_good_seq;
    d.reason = tail.reason;
    report_->dropped.push_back(d);
    Log(io::StreamLabel(node) + ": dropped " + tail.ToString());
    if (truncate_tail) NUMAGRID_RETURN_IF_ERROR((*reader)->TruncateTornTail());
  }
  if (truncate_tail && !(*reader)->segments().empty()) {
    // What a killed worker wrote may sit in the page cache only; the rebuilt
    // grid counts it durable, so make it so.
    const std::string& path = (*reader)->segments().back().path;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      const int rc = fdatasync(fd);
      const int err = errno;
      close(fd);
      if (rc != 0) return io::detail::ErrnoIoError(err, "fdatasync " + path);
    } else if (errno != ENOENT) {
      return io::detail::ErrnoStatus(errno, "open " + path);
    }
  }
  last_journal_[node] = std::max(last, covered_journal);
  return Status::Ok();
}

}  // namespace numagrid::core
