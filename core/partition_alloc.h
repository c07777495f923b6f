// Block allocation inside a partition: size-class free lists and a bump
// pointer in the partition's current chunk for small blocks; runs of whole
// chunks, claimed from the node's chunk table, for large ones. Every change
// goes through the operation's undo log (PartitionTx), so a holder killed
// half-way leaks nothing.
//
// A small block comes from, in this order: a free block of its class; the
// current chunk's tail; a new chunk from the node; a free block of the
// smallest larger class that has one, split: the record takes its own
// class's bytes at the block's start and the rest goes back to the free
// lists as blocks of the classes that tile it exactly (sizes are multiples
// of 16 and the classes up to 512 bytes step by 16, so nothing is wasted).
// A chunk none of whose blocks is handed out (its fill is 0) goes back to
// the node when the partition runs out of room (ReleaseEmptyChunks), so
// that memory freed in one size class, or in one partition, serves any
// other (docs/adr/0006-eviction.md).
//
// Thread safety: only the partition's lock holder calls these. Words this
// partition alone writes (free-list heads, the bump pointer, counters) are
// read relaxed: the lock orders them. Chunk owner words are shared with the
// node's other partitions and change only by CAS.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: logged changes of free-list heads and links, the bump
//     pointer, chunk owner words (a claim, or a kChunkReleasing mark), chunk
//     fill words and counters; in ReleaseEmptyChunks, also committed steps
//     of it: free blocks of an empty chunk taken off the lists and counted
//     as waste, with the chunk still owned.
//   Detected by: the partition's robust lock.
//   Repaired by: the partition repair: the undo log puts back what the
//     operation had not committed; SweepMarked gives back chunks a committed
//     free or release had marked. At once, by the next locker. A chunk left
//     half taken off the lists needs nothing: its fill is still 0, and the
//     next ReleaseEmptyChunks takes the rest off and gives it back.
//   Holds in every reachable state: every chunk has one owner or none, and
//     every block is in exactly one of: a record the index or ring names, a
//     free list, the current chunk's unused tail, or the waste counter; a
//     small chunk's fill is the bytes of the first kind in it.
#pragma once

#include <cstdint>

#include "core/data_layout.h"
#include "core/partition_tx.h"
#include "numagrid/status.h"

namespace numagrid::core {

// Largest value a grid accepts (keeps a large block within 16 chunks, so its
// claims fit the undo log).
inline constexpr std::uint64_t kMaxValueLimit = 16ULL << 20;
inline constexpr std::uint64_t kMaxLargeRun = 16;

// The chunk size a grid uses for records of up to `max_record_bytes`.
std::uint64_t ChunkBytesFor(std::uint64_t max_record_bytes) noexcept;

// The block a record of `record_bytes` occupies: a size class, or whole
// chunks above the node's small limit.
std::uint64_t BlockBytes(const NodeHeader& node,
                         std::uint64_t record_bytes) noexcept;

class PartitionAlloc {
 public:
  PartitionAlloc(std::byte* base, const NodeHeader* node,
                 PartitionState* p) noexcept
      : base_(base), node_(node), p_(p) {}

  // A block for a record of `record_bytes`, or kResourceExhausted.
  Result<std::uint64_t> Allocate(PartitionTx& tx,
                                 std::uint64_t record_bytes) noexcept;
  // Chunks that Free marked kChunkReleasing: the caller stores 0 into their
  // owner words after its commit point (ReleaseMarked).
  struct PendingRelease {
    std::uint64_t first_chunk = 0;
    std::uint64_t run = 0;
  };

  // Returns the block at `off` that held a record of `record_bytes`. False if
  // the undo log is full (nothing changed). A large block's chunks are only
  // marked; `*pending` says which to release once the operation committed.
  bool Free(PartitionTx& tx, std::uint64_t off, std::uint64_t record_bytes,
            PendingRelease* pending) noexcept;
  // Gives marked chunks back to the node. REQUIRES: the freeing operation
  // has committed.
  void ReleaseMarked(const PendingRelease& pending) noexcept;
  // Gives back every chunk of this partition still marked kChunkReleasing
  // (left by a holder that died after committing). Repair only.
  void SweepMarked() noexcept;
  // Gives back to the node up to kMaxReleasePerPass small chunks of this
  // partition whose fill is 0 (none of their blocks is handed out), the
  // current one included (it then stops being current): takes their free
  // blocks off the lists, counting them as waste, then, in one operation,
  // marks the chunks, takes them out of the waste and chunk counters,
  // commits and frees them. Its own operations (several, each within the
  // undo log); O(chunks + free blocks). REQUIRES: the lock held, no
  // operation in progress. Returns how many chunks went back.
  std::uint64_t ReleaseEmptyChunks() noexcept;
  static constexpr std::uint64_t kMaxReleasePerPass = 16;
  // ReleaseEmptyChunks until a pass finds fewer than kMaxReleasePerPass:
  // every empty chunk. REQUIRES: as ReleaseEmptyChunks.
  std::uint64_t ReleaseAllEmptyChunks() noexcept {
    std::uint64_t total = 0;
    for (;;) {
      const std::uint64_t n = ReleaseEmptyChunks();
      total += n;
      if (n < kMaxReleasePerPass) return total;
    }
  }

  std::atomic<std::uint64_t>* owners() const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(
        base_ + node_->chunk_table_off);
  }
  std::uint64_t owner_tag() const noexcept;  // this partition's owner value
  // The chunk fill table (core/partition_layout.h).
  std::atomic<std::uint64_t>* fills() const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(base_ +
                                                         node_->chunk_fill_off);
  }
  std::uint64_t ChunkIndex(std::uint64_t off) const noexcept {
    return (off - node_->arena_off) / node_->chunk_bytes;
  }

 private:
  Result<std::uint64_t> AllocateLarge(PartitionTx& tx,
                                      std::uint64_t run) noexcept;
  // A block of class `cls` split off the free block of the smallest larger
  // class that has one; 0 if there is none.
  std::uint64_t AllocateSplit(PartitionTx& tx, std::uint32_t cls) noexcept;
  // Logs fill(chunk of `off`) += delta (a negative delta wraps, as intended).
  bool AddFill(PartitionTx& tx, std::uint64_t off,
               std::uint64_t delta) noexcept {
    auto& f = fills()[ChunkIndex(off)];
    return tx.Set(f, f.load(std::memory_order_relaxed) + delta);
  }
  std::atomic<std::uint64_t>& Word(std::uint64_t off) const noexcept {
    return *reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + off);
  }

  std::byte* base_;
  const NodeHeader* node_;
  PartitionState* p_;
};

}  // namespace numagrid::core
