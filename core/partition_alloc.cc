#include "core/partition_alloc.h"

#include <bit>

#include "core/record.h"

namespace numagrid::core {

std::uint64_t ChunkBytesFor(std::uint64_t max_record_bytes) noexcept {
  std::uint64_t c = std::bit_ceil(max_record_bytes) / kMaxLargeRun;
  if (c < (64ULL << 10)) c = 64ULL << 10;
  return c;
}

std::uint64_t BlockBytes(const NodeHeader& node,
                         std::uint64_t record_bytes) noexcept {
  if (record_bytes <= node.small_limit)
    return ClassSize(SizeClassOf(record_bytes));
  return (record_bytes + node.chunk_bytes - 1) / node.chunk_bytes *
         node.chunk_bytes;
}

std::uint64_t PartitionAlloc::owner_tag() const noexcept {
  const std::uint64_t first =
      static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(p_) - base_);
  return (first - node_->partitions_off) / sizeof(PartitionState) + 1;
}

namespace {

// The largest class whose size is at most `bytes` (a multiple of 16, >= 16).
std::uint32_t LargestClassAtMost(std::uint64_t bytes) noexcept {
  std::uint32_t c = SizeClassOf(bytes);
  if (ClassSize(c) > bytes) --c;
  return c < kSmallClasses ? c : kSmallClasses - 1;
}

// Undo entries a split needs at most: the block's first word and its list
// head, two per piece of the rest (at most 5: each piece above 512 bytes
// leaves less than an eighth of what it tiles, and one linear class ends
// it), the free-bytes counter and the chunk's fill.
constexpr std::uint32_t kSplitUndo = 2 + 2 * 6 + 2;

}  // namespace

Result<std::uint64_t> PartitionAlloc::Allocate(
    PartitionTx& tx, std::uint64_t record_bytes) noexcept {
  auto& c = p_->counters;
  const std::uint64_t chunk = node_->chunk_bytes;
  if (record_bytes > node_->small_limit) {
    return AllocateLarge(tx, BlockBytes(*node_, record_bytes) / chunk);
  }
  const std::uint32_t cls = SizeClassOf(record_bytes);
  const std::uint64_t size = ClassSize(cls);
  if (tx.room() < 7) return ResourceExhausted("undo log full");

  // 1. A freed block of the same class.
  const std::uint64_t head = p_->free_head[cls].load(std::memory_order_relaxed);
  if (head != 0) {
    const std::uint64_t next = Word(head).load(std::memory_order_relaxed);
    // The block's first word links the free list and becomes the record's
    // version (the change's sequence number): log that change too, so that
    // an undo puts the link back along with the head.
    tx.Set(Word(head), tx.seq());
    tx.Set(p_->free_head[cls], next);
    tx.Set(c.free_bytes, c.free_bytes.load(std::memory_order_relaxed) - size);
    AddFill(tx, head, size);
    return head;
  }
  // 2. The rest of the current chunk.
  const std::uint64_t cur = p_->cur_chunk_off.load(std::memory_order_relaxed);
  const std::uint64_t used = p_->cur_chunk_used.load(std::memory_order_relaxed);
  if (cur != 0 && used + size <= chunk) {
    tx.Set(p_->cur_chunk_used, used + size);
    AddFill(tx, cur, size);
    return cur + used;
  }
  // 3. A new chunk from the node.
  const std::uint64_t tag = owner_tag();
  auto* own = owners();
  const std::uint64_t n = node_->chunk_count;
  const std::uint64_t start = (tag * 0x9E3779B97F4A7C15ULL) % n;
  for (std::uint64_t k = 0; k < n; ++k) {
    const std::uint64_t i = (start + k) % n;
    if (own[i].load(std::memory_order_relaxed) != 0) continue;
    if (!tx.CasClaim(own[i], 0, tag)) continue;
    const std::uint64_t off = node_->arena_off + i * chunk;
    if (cur != 0) {
      tx.Set(c.waste_bytes,
             c.waste_bytes.load(std::memory_order_relaxed) + (chunk - used));
    }
    tx.Set(c.chunk_bytes,
           c.chunk_bytes.load(std::memory_order_relaxed) + chunk);
    tx.Set(p_->cur_chunk_off, off);
    tx.Set(p_->cur_chunk_used, size);
    AddFill(tx, off, size);  // from 0: a free chunk's fill is 0
    return off;
  }
  // 4. A larger free block, split.
  if (const std::uint64_t off = AllocateSplit(tx, cls); off != 0) return off;
  return ResourceExhausted(
      "the memory of NUMA node " + std::to_string(node_->node_id) +
      " is full (" + std::to_string(n) + " chunks of " +
      std::to_string(chunk >> 10) + " KiB in use, and no free block of " +
      std::to_string(size) + " bytes or more)");
}

std::uint64_t PartitionAlloc::AllocateSplit(PartitionTx& tx,
                                            std::uint32_t cls) noexcept {
  if (tx.room() < kSplitUndo) return 0;
  std::uint32_t from = cls + 1;
  while (from < kSmallClasses &&
         p_->free_head[from].load(std::memory_order_relaxed) == 0) {
    ++from;
  }
  if (from >= kSmallClasses) return 0;
  auto& c = p_->counters;
  const std::uint64_t off = p_->free_head[from].load(std::memory_order_relaxed);
  const std::uint64_t size = ClassSize(cls);
  // As in Allocate's step 1: the first word becomes the record's version.
  tx.Set(p_->free_head[from], Word(off).load(std::memory_order_relaxed));
  tx.Set(Word(off), tx.seq());
  // The rest, in address order, onto the lists of the classes that tile it.
  std::uint64_t piece = off + size;
  std::uint64_t rest = ClassSize(from) - size;
  while (rest != 0) {
    const std::uint32_t pc = LargestClassAtMost(rest);
    const std::uint64_t ps = ClassSize(pc);
    tx.Set(Word(piece), p_->free_head[pc].load(std::memory_order_relaxed));
    tx.Set(p_->free_head[pc], piece);
    piece += ps;
    rest -= ps;
  }
  tx.Set(c.free_bytes, c.free_bytes.load(std::memory_order_relaxed) - size);
  AddFill(tx, off, size);
  return off;
}

Result<std::uint64_t> PartitionAlloc::AllocateLarge(
    PartitionTx& tx, std::uint64_t run) noexcept {
  auto& c = p_->counters;
  const std::uint64_t chunk = node_->chunk_bytes;
  const std::uint64_t tag = owner_tag();
  auto* own = owners();
  const std::uint64_t n = node_->chunk_count;
  if (tx.room() < 2 * run + 2) return ResourceExhausted("undo log full");
  for (std::uint64_t i = 0; i + run <= n;) {
    std::uint64_t j = 0;
    while (j < run && own[i + j].load(std::memory_order_relaxed) == 0) ++j;
    if (j < run) {
      i += j + 1;
      continue;
    }
    std::uint64_t claimed = 0;
    for (; claimed < run; ++claimed) {
      const std::uint64_t v = claimed == 0 ? (tag | kChunkLarge | (run << 32))
                                           : (tag | kChunkLargeTail);
      if (!tx.CasClaim(own[i + claimed], 0, v)) break;
    }
    if (claimed == run) {
      tx.Set(c.chunk_bytes,
             c.chunk_bytes.load(std::memory_order_relaxed) + run * chunk);
      return node_->arena_off + i * chunk;
    }
    // Another partition took one of them meanwhile: give ours back.
    for (std::uint64_t k = 0; k < claimed; ++k) tx.Set(own[i + k], 0);
    if (tx.room() < 2 * run + 2) break;
    i += claimed + 1;
  }
  return ResourceExhausted("no run of " + std::to_string(run) +
                           " free chunks of " + std::to_string(chunk >> 10) +
                           " KiB on NUMA node " +
                           std::to_string(node_->node_id));
}

bool PartitionAlloc::Free(PartitionTx& tx, std::uint64_t off,
                          std::uint64_t record_bytes,
                          PendingRelease* pending) noexcept {
  auto& c = p_->counters;
  if (record_bytes > node_->small_limit) {
    const std::uint64_t chunk = node_->chunk_bytes;
    const std::uint64_t run = BlockBytes(*node_, record_bytes) / chunk;
    if (tx.room() < run + 2) return false;
    const std::uint64_t first = (off - node_->arena_off) / chunk;
    // Marked, not freed: storing 0 now would let another partition claim a
    // chunk that an undo of this operation would then want back.
    for (std::uint64_t k = 0; k < run; ++k) {
      tx.Set(owners()[first + k], owner_tag() | kChunkReleasing);
    }
    tx.Set(c.chunk_bytes,
           c.chunk_bytes.load(std::memory_order_relaxed) - run * chunk);
    *pending = PendingRelease{first, run};
    return true;
  }
  if (tx.room() < 4) return false;
  const std::uint32_t cls = SizeClassOf(record_bytes);
  tx.Set(Word(off), p_->free_head[cls].load(std::memory_order_relaxed));
  tx.Set(p_->free_head[cls], off);
  tx.Set(c.free_bytes,
         c.free_bytes.load(std::memory_order_relaxed) + ClassSize(cls));
  AddFill(tx, off, 0 - ClassSize(cls));
  return true;
}

void PartitionAlloc::ReleaseMarked(const PendingRelease& pending) noexcept {
  for (std::uint64_t k = 0; k < pending.run; ++k) {
    // release: our last accesses to the chunk (none after the free, but the
    // record was read before) happen before another partition's claim,
    // whose CAS reads this value.
    owners()[pending.first_chunk + k].store(0, std::memory_order_release);
  }
}

void PartitionAlloc::SweepMarked() noexcept {
  const std::uint64_t marked = owner_tag() | kChunkReleasing;
  for (std::uint64_t i = 0; i < node_->chunk_count; ++i) {
    if (owners()[i].load(std::memory_order_relaxed) == marked) {
      owners()[i].store(0, std::memory_order_release);  // as in ReleaseMarked
    }
  }
}

std::uint64_t PartitionAlloc::ReleaseEmptyChunks() noexcept {
  const std::uint64_t tag = owner_tag();
  const std::uint64_t chunk = node_->chunk_bytes;
  const std::uint64_t cur = p_->cur_chunk_off.load(std::memory_order_relaxed);
  auto* own = owners();
  std::uint64_t empty[kMaxReleasePerPass];
  std::uint64_t count = 0;
  // relaxed: the owner words equal to our tag and the fill words of our
  // chunks change only under the lock we hold.
  for (std::uint64_t i = 0;
       i < node_->chunk_count && count < kMaxReleasePerPass; ++i) {
    if (own[i].load(std::memory_order_relaxed) != tag) continue;
    if (fills()[i].load(std::memory_order_relaxed) != 0) continue;
    // The current chunk too: a writer that needs a run of whole chunks
    // may have emptied it (Evictor::EvictRun); the next small block then
    // comes from another chunk.
    empty[count++] = i;
  }
  if (count == 0) return 0;
  const auto is_empty = [&](std::uint64_t off) {
    const std::uint64_t i = ChunkIndex(off);
    for (std::uint64_t k = 0; k < count; ++k) {
      if (empty[k] == i) return true;
    }
    return false;
  };
  auto& c = p_->counters;
  // 1. Their free blocks off the lists, into the waste counter: operations
  // of at most the undo log's size, each committed whole.
  PartitionTx tx(base_, p_);
  std::uint64_t moved = 0;
  const auto commit = [&] {
    if (moved != 0) {
      tx.Set(c.free_bytes,
             c.free_bytes.load(std::memory_order_relaxed) - moved);
      tx.Set(c.waste_bytes,
             c.waste_bytes.load(std::memory_order_relaxed) + moved);
    }
    tx.Finish();
    moved = 0;
  };
  for (std::uint32_t cls = 0; cls < kSmallClasses; ++cls) {
    std::atomic<std::uint64_t>* link = &p_->free_head[cls];
    std::uint64_t off = link->load(std::memory_order_relaxed);
    while (off != 0) {
      const std::uint64_t next = Word(off).load(std::memory_order_relaxed);
      if (!is_empty(off)) {
        link = &Word(off);
      } else {
        if (tx.room() < 3) {  // this unlink and the two counters
          commit();
          tx.Restart();
        }
        tx.Set(*link, next);
        moved += ClassSize(cls);
      }
      off = next;
    }
  }
  commit();
  // 2. The chunks back to the node. Each is now whole in the waste counter:
  // its tail went there when it stopped being current, its free blocks just
  // now, and none of its blocks is handed out.
  tx.Restart();
  for (std::uint64_t k = 0; k < count; ++k) {
    // Marked, not freed, before the commit: as in Free.
    tx.Set(own[empty[k]], tag | kChunkReleasing);
  }
  std::uint64_t waste = c.waste_bytes.load(std::memory_order_relaxed);
  if (cur != 0 && is_empty(cur)) {
    // The current chunk stops being current: its tail goes to the waste
    // counter, as when a new chunk replaces it, and so the chunk is whole
    // there like the others.
    waste += chunk - p_->cur_chunk_used.load(std::memory_order_relaxed);
    tx.Set(p_->cur_chunk_off, 0);
    tx.Set(p_->cur_chunk_used, 0);
  }
  tx.Set(c.waste_bytes, waste - count * chunk);
  tx.Set(c.chunk_bytes,
         c.chunk_bytes.load(std::memory_order_relaxed) - count * chunk);
  tx.Finish();  // committed: from here on the release must complete
  for (std::uint64_t k = 0; k < count; ++k) {
    ReleaseMarked(PendingRelease{empty[k], 1});
  }
  return count;
}

}  // namespace numagrid::core
