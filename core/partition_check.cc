// PartitionRef::Check: verifies every shared structure of a partition and
// that its counters match what is reachable (`numagrid check`).
#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/base/key_hash.h"
#include "core/partition.h"
#include "core/partition_alloc.h"

namespace numagrid::core {

PartitionCheckReport PartitionRef::Check(const WriteLimits& limits,
                                         std::uint32_t partition_count,
                                         std::uint64_t now_ms) {
  PartitionCheckReport rep;
  auto problem = [&](std::string what) {
    rep.problems.push_back("partition " + std::to_string(p_->partition_id) +
                           ": " + std::move(what));
  };
  switch (p_->lock.TryLock()) {
    case shm::LockResult::kAcquired:
      break;
    case shm::LockResult::kAcquiredOwnerDied:
      RepairLocked();
      p_->lock.MarkConsistent();
      rep.repaired = true;
      break;
    default:
      if (Status st = LockForWrite(limits); !st.ok()) {
        problem(st.message());
        return rep;
      }
  }
  // Locked from here on.
  PartitionAlloc alloc(base_, node_, p_);
  const std::uint64_t tag = alloc.owner_tag();
  const std::uint64_t chunk = node_->chunk_bytes;
  auto* own = alloc.owners();
  std::unordered_set<std::uint64_t> blocks;
  std::unordered_set<std::string_view> keys;
  // Every block reachable (offset, bytes), to find overlaps; the bytes of
  // records in each small chunk, against its fill.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;
  std::unordered_map<std::uint64_t, std::uint64_t> record_fill;
  auto count_record = [&](std::uint64_t off, std::uint64_t size) {
    if (size <= node_->small_limit) record_fill[alloc.ChunkIndex(off)] += size;
  };

  // A block at `off` of `size` bytes must lie in chunks this partition owns.
  auto block_ok = [&](std::uint64_t off, std::uint64_t size, const char* what) {
    if (!InArena(off, size)) {
      problem(std::string(what) + " at " + std::to_string(off) +
              " outside the arena");
      return false;
    }
    const std::uint64_t i = (off - node_->arena_off) / chunk;
    const std::uint64_t o = own[i].load(std::memory_order_relaxed);
    const bool large = size > node_->small_limit;
    const bool owned =
        large ? (o == (tag | kChunkLarge | ((size / chunk) << 32)) &&
                 (off - node_->arena_off) % chunk == 0)
              : o == tag;
    if (!owned) {
      problem(std::string(what) + " at " + std::to_string(off) +
              " is in chunk " + std::to_string(i) +
              " not owned by this partition");
      return false;
    }
    if (!blocks.insert(off).second) {
      problem(std::string(what) + " at " + std::to_string(off) +
              " is reachable twice");
      return false;
    }
    extents.emplace_back(off, size);
    return true;
  };
  // A record at `off` must be complete and inside the arena.
  auto record_ok = [&](std::uint64_t off, const char* what) -> std::uint64_t {
    if (!InArena(off, sizeof(RecordHeader))) {
      problem(std::string(what) + " at " + std::to_string(off) +
              " outside the arena");
      return 0;
    }
    RecordView r(base_ + off);
    if (r.header().key_len > limits.max_key_bytes ||
        r.header().value_len > limits.max_value_bytes ||
        !InArena(off, r.bytes())) {
      problem(std::string(what) + " at " + std::to_string(off) +
              " has impossible lengths");
      return 0;
    }
    return BlockBytes(*node_, r.bytes());
  };

  // 1. The index.
  std::uint64_t live = 0, deleted = 0, live_bytes = 0;
  const std::atomic<std::uint64_t>* s = slots();
  for (std::uint64_t i = 0; i <= p_->index_mask; ++i) {
    const std::uint64_t v = s[i].load(std::memory_order_relaxed);
    if (v == kSlotDeleted) ++deleted;
    if (!SlotHoldsRecord(v)) continue;
    const std::uint64_t off = SlotOffset(v);
    const std::uint64_t size = record_ok(off, "index record");
    if (size == 0 || !block_ok(off, size, "index record")) continue;
    RecordView r(base_ + off);
    const std::uint64_t h = base::KeyHash(r.key());
    if (base::PartitionOf(h, partition_count) != p_->partition_id) {
      problem("key of slot " + std::to_string(i) + " hashes to partition " +
              std::to_string(base::PartitionOf(h, partition_count)));
    }
    if (SlotTag(h) != SlotTagOf(v))
      problem("slot " + std::to_string(i) + " has a wrong tag");
    if (!keys.insert(r.key()).second) {
      problem("key in slot " + std::to_string(i) + " is in the index twice");
    }
    auto found = Find(r.key(), h, 1);  // now_ms = 1: ignore expiry here
    if (!found.ok() || found->key().data() != r.key().data()) {
      problem("key in slot " + std::to_string(i) +
              " is not reachable from its home slot");
    }
    ++live;
    live_bytes += size;
    count_record(off, size);
    if (r.ExpiredAt(now_ms)) ++rep.expired_entries;
  }
  rep.live_entries = live;

  // 2. The change ring: entries not yet reclaimed hold their old records.
  std::uint64_t retired_bytes = 0;
  const std::uint64_t next = p_->next_seq.load(std::memory_order_relaxed);
  const std::uint64_t reclaimed =
      p_->reclaimed_seq.load(std::memory_order_relaxed);
  const std::uint64_t journaled =
      p_->journaled_seq.load(std::memory_order_relaxed);
  if (!(reclaimed <= journaled && journaled <= next &&
        next - reclaimed <= p_->ring_capacity)) {
    problem("ring cursors out of order: reclaimed " +
            std::to_string(reclaimed) + ", journaled " +
            std::to_string(journaled) + ", next " + std::to_string(next));
  } else {
    // Ring against index: a put's record is either still in the index or
    // was replaced by a later change, whose entry names it as old; a record
    // named as old is in no index slot.
    std::unordered_set<std::uint64_t> replaced;
    for (std::uint64_t q = next; q-- > reclaimed;) {
      const RingEntry& e = ring()[q & (p_->ring_capacity - 1)];
      if (e.op == kOpPut && e.new_record_off != 0 &&
          blocks.count(e.new_record_off) == 0 &&
          replaced.count(e.new_record_off) == 0) {
        problem(
            "ring entry " + std::to_string(q) +
            " put a record that is neither in the index nor replaced later");
      }
      if (e.old_record_off != 0) {
        if (blocks.count(e.old_record_off) != 0) {
          problem("ring entry " + std::to_string(q) +
                  " replaced a record that is still in the index");
        }
        replaced.insert(e.old_record_off);
      }
    }
    for (std::uint64_t q = reclaimed; q < next; ++q) {
      const RingEntry& e = ring()[q & (p_->ring_capacity - 1)];
      ++rep.ring_entries;
      if (e.seq != q || (e.op != kOpPut && e.op != kOpRemove)) {
        problem("ring entry " + std::to_string(q) + " is inconsistent");
        continue;
      }
      if (e.op == kOpPut && record_ok(e.new_record_off, "ring record") == 0)
        continue;
      if (e.old_record_off == 0) continue;
      const std::uint64_t size = record_ok(e.old_record_off, "retired record");
      if (size != 0 && block_ok(e.old_record_off, size, "retired record")) {
        retired_bytes += size;
        count_record(e.old_record_off, size);
      }
    }
  }

  // 3. The free lists.
  std::uint64_t free_bytes = 0;
  for (std::uint32_t cls = 0; cls < kSmallClasses; ++cls) {
    std::uint64_t off = p_->free_head[cls].load(std::memory_order_relaxed);
    std::uint64_t guard = node_->arena_bytes / 16 + 1;
    while (off != 0 && guard-- > 0) {
      if (!block_ok(off, ClassSize(cls), "free block")) break;
      free_bytes += ClassSize(cls);
      ++rep.free_blocks;
      off = reinterpret_cast<const std::atomic<std::uint64_t>*>(base_ + off)
                ->load(std::memory_order_relaxed);
    }
  }

  // 4. Chunks owned, and the accounting identity.
  std::uint64_t owned = 0;
  for (std::uint64_t i = 0; i < node_->chunk_count; ++i) {
    const std::uint64_t o = own[i].load(std::memory_order_relaxed);
    if ((o & kChunkOwnerMask) == tag) owned += chunk;
  }
  const auto& c = p_->counters;
  auto expect = [&](const char* name, std::uint64_t counter,
                    std::uint64_t actual) {
    if (counter != actual) {
      problem(std::string(name) + " counter is " + std::to_string(counter) +
              " but " + std::to_string(actual) + " are reachable");
    }
  };
  expect("live_entries", c.live_entries.load(std::memory_order_relaxed), live);
  expect("deleted_slots", c.deleted_slots.load(std::memory_order_relaxed),
         deleted);
  expect("live_bytes", c.live_bytes.load(std::memory_order_relaxed),
         live_bytes);
  expect("retired_bytes", c.retired_bytes.load(std::memory_order_relaxed),
         retired_bytes);
  expect("free_bytes", c.free_bytes.load(std::memory_order_relaxed),
         free_bytes);
  expect("chunk_bytes", c.chunk_bytes.load(std::memory_order_relaxed), owned);
  const std::uint64_t cur = p_->cur_chunk_off.load(std::memory_order_relaxed);
  const std::uint64_t tail =
      cur == 0 ? 0 : chunk - p_->cur_chunk_used.load(std::memory_order_relaxed);
  const std::uint64_t accounted =
      live_bytes + retired_bytes + free_bytes +
      c.waste_bytes.load(std::memory_order_relaxed) + tail;
  if (accounted != owned) {
    problem("memory accounting: " + std::to_string(owned) +
            " bytes of chunks owned, " + std::to_string(accounted) +
            " accounted (live + retired + free + waste + " +
            "current chunk tail); " +
            (accounted < owned ? "leaked " : "over-counted ") +
            std::to_string(accounted < owned ? owned - accounted
                                             : accounted - owned));
  }
  // 5. No two blocks overlap (a split's pieces, a chunk given back while a
  // block of it was still listed), and none reaches into the current
  // chunk's unused tail.
  if (cur != 0) extents.emplace_back(cur + chunk - tail, tail);
  std::sort(extents.begin(), extents.end());
  for (std::size_t k = 1; k < extents.size(); ++k) {
    if (extents[k - 1].first + extents[k - 1].second > extents[k].first) {
      problem("block at " + std::to_string(extents[k - 1].first) + " (" +
              std::to_string(extents[k - 1].second) +
              " bytes) overlaps the block or chunk tail at " +
              std::to_string(extents[k].first));
    }
  }
  // 6. Each small chunk's fill is the bytes of the records in it; a free
  // chunk, or a large block's, has none.
  const auto* fill = alloc.fills();
  for (std::uint64_t i = 0; i < node_->chunk_count; ++i) {
    const std::uint64_t o = own[i].load(std::memory_order_relaxed);
    if ((o & kChunkOwnerMask) != tag) continue;
    const std::uint64_t f = fill[i].load(std::memory_order_relaxed);
    const auto it = record_fill.find(i);
    const std::uint64_t want =
        o == tag && it != record_fill.end() ? it->second : 0;
    if (f != want) {
      problem("chunk " + std::to_string(i) + " has a fill of " +
              std::to_string(f) + " bytes but " + std::to_string(want) +
              " bytes of records in it");
    }
  }
  if (p_->intent.state != kIntentIdle) problem("write intent left active");
  p_->lock.Unlock();
  return rep;
}

}  // namespace numagrid::core
