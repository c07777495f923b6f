// JournalReplay: the durable state of a grid as its journal directory holds
// it, as an ordered stream of changes. For each node: the newest snapshot
// that verifies (older ones if it does not), then the journal records after
// it, each partition's changes once and in change order (a change the
// snapshot holds, or one that a restarted worker journaled twice, is
// skipped). Recovery applies the stream to fresh segments; reconciliation
// (`check --journal`) builds a model from it.
//
// Thread safety: thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/recovery.h"
#include "io/journal_record.h"
#include "numagrid/status.h"

namespace numagrid::core {

// Receives the changes. `change` points into the reader's buffers: copy
// what is kept. A snapshot entry arrives as a kPut.
class ReplaySink {
 public:
  virtual ~ReplaySink() = default;
  virtual Status Add(const io::RecordView& change) = 0;
  // Called at the end of each node's journal (its snapshot's entries come
  // first, then its records): the changes so far must be applied. A sink
  // may apply earlier, or coalesce them first (recovery keeps only each
  // key's last change).
  virtual Status Flush() = 0;
};

class JournalReplay {
 public:
  // `report` collects counts, the snapshots used and rejected, and the
  // dropped tails.
  JournalReplay(std::string dir, std::uint64_t grid_id,
                std::uint32_t partitions,
                std::function<void(std::string_view)> log,
                RecoveryReport* report);

  // Streams journal stream `node`'s (a stream id, io::StreamId; for stream
  // 0 the node number) snapshot and journal into `sink`. The streams of a
  // node hold disjoint partitions, so they may come in any order. With
  // `truncate_tail`, cuts a torn or corrupt tail off the journal file
  // (recovery); without, leaves the files alone (reconciliation).
  // kCorruption for damage before the tail or missing segments.
  Status Node(std::uint32_t node, ReplaySink& sink, bool truncate_tail);

  // After every node: the next change sequence of partition `p` (above every
  // change replayed or covered), and the last journal sequence of `node`.
  std::uint64_t next_seq(std::uint32_t p) const;
  std::uint64_t last_journal_seq(std::uint32_t node) const;

 private:
  Status LoadSnapshot(std::uint32_t node, ReplaySink& sink,
                      std::uint64_t* covered_journal);
  Status ReplayJournal(std::uint32_t node, ReplaySink& sink,
                       std::uint64_t covered_journal, bool truncate_tail);
  void Log(const std::string& line) const;

  const std::string dir_;
  const std::uint64_t grid_id_;
  const std::uint32_t partitions_;
  const std::function<void(std::string_view)> log_;
  RecoveryReport* report_;
  std::vector<std::uint64_t> next_apply_;                // per partition
  std::vector<std::uint64_t> max_version_;               // per partition
  std::map<std::uint32_t, std::uint64_t> last_journal_;  // per stream id
};

}  // namespace numagrid::core
