// Block allocation inside a partition: size-class free lists and a bump
// pointer in the partition's current chunk for small blocks; runs of whole
// chunks, claimed from the node's chunk table, for large ones. Every change
// goes through the operation's undo log (PartitionTx), so a holder killed
// half-way leaks nothing.
//
// Thread safety: only the partition's lock holder calls these. Words this
// partition alone writes (free-list heads, the bump pointer, counters) are
// read relaxed: the lock orders them. Chunk owner words are shared with the
// node's other partitions and change only by CAS.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: logged changes of free-list heads and links, the bump
//     pointer, chunk owner words (a claim, or a kChunkReleasing mark) and
//     counters.
//   Detected by: the partition's robust lock.
//   Repaired by: the partition repair: the undo log puts back what the
//     operation had not committed; SweepMarked gives back chunks a committed
//     free had marked. At once, by the next locker.
//   Holds in every reachable state: every chunk has one owner or none, and
//     every block is in exactly one of: a record the index or ring names, a
//     free list, the current chunk's unused tail, or the waste counter.
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

  std::atomic<std::uint64_t>* owners() const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(
        base_ + node_->chunk_table_off);
  }
  std::uint64_t owner_tag() const noexcept;  // this partition's owner value

 private:
  Result<std::uint64_t> AllocateLarge(PartitionTx& tx,
                                      std::uint64_t run) noexcept;
  std::atomic<std::uint64_t>& Word(std::uint64_t off) const noexcept {
    return *reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + off);
  }

  std::byte* base_;
  const NodeHeader* node_;
  PartitionState* p_;
};

}  // namespace numagrid::core
