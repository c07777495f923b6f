// SegmentHeader: the first 256 bytes of every numagrid shared-memory segment.
// It says what the segment is (kind, node, grid), who made it and with which
// layout, and, through `magic`, whether it was completely created.
// docs/segment-format.md is the spec of these bytes; change both together.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace numagrid::shm {

// What a segment holds. Stored as a u32 in SegmentHeader::kind.
enum class SegmentKind : std::uint32_t {
  kControl = 1,  // one per grid: configuration, partition map, tables, log
  kData = 2,     // one per NUMA node: the partitions placed on that node
};

// The header and the magic are defined on a little-endian host; the value
// below makes the first 8 bytes of a segment read "NUMAGRID" in a hex dump.
static_assert(std::endian::native == std::endian::little,
              "the segment format is little-endian");

// "NUMAGRID" as a little-endian u64: byte 0 is 'N', byte 7 is 'D'.
inline constexpr std::uint64_t kSegmentMagic =
    std::uint64_t{'N'} | std::uint64_t{'U'} << 8 | std::uint64_t{'M'} << 16 |
    std::uint64_t{'A'} << 24 | std::uint64_t{'G'} << 32 |
    std::uint64_t{'R'} << 40 | std::uint64_t{'I'} << 48 |
    std::uint64_t{'D'} << 56;
static_assert(kSegmentMagic == 0x44495247414d554eULL);

// sizeof(SegmentHeader); also stored in SegmentHeader::header_size so a reader
// can tell a header of another format from a corrupt one.
inline constexpr std::uint32_t kSegmentHeaderSize = 256;

// Lives at offset 0 of every segment. Every field except `magic` is written
// once by Segment::Create before it publishes `magic`, and is constant after
// that: readers that saw the magic with an acquire load read them without
// synchronization. Nothing in the header changes during the segment's life.
//
// Process safety: written by the creating process only, before publication;
// read by any number of processes afterwards.
//
// Crash safety (a process may die at any instruction):
//   Leaves behind: a creator killed before the release store of `magic`
//     leaves a named segment whose magic is 0 (or a file shorter than the
//     header, if it died before ftruncate). Readers never die holding
//     anything here: they only read.
//   Detected by: Segment::Open, which refuses magic != kSegmentMagic (0 means
//     "its creator died while creating it") and a file shorter than the
//     header, with kCorruption naming the segment.
//   Repaired by: nobody in place: `numagrid destroy` (Segment::Remove)
//     removes the incomplete segment and the next `numagrid create` makes
//     it anew; within: the operator's next destroy. (The shm layer cannot
//     tell a dead creator from a slow one, so it never removes on its own.)
//   Holds in every reachable state: magic is either 0 or kSegmentMagic; when
//     it is kSegmentMagic, every other field, and whatever the creator wrote
//     into the body before, holds its final value (release store of magic
//     after all of them, acquire load in Open).
struct alignas(64) SegmentHeader {
  // kSegmentMagic once the segment is complete; 0 while it is being created.
  // Written last, with release, by Segment::Create.
  std::atomic<std::uint64_t> magic;
  // The caller's (core's) layout version for this kind of segment.
  std::uint32_t layout_version;
  // sizeof(SegmentHeader) == kSegmentHeaderSize.
  std::uint32_t header_size;
  // A SegmentKind.
  std::uint32_t kind;
  // Data segments: the NUMA node whose memory holds the segment; control: 0.
  std::uint32_t node_id;
  // Random, shared by all segments of one grid, so a data segment left over
  // from another incarnation of the grid is recognised.
  std::uint64_t grid_id;
  // CLOCK_REALTIME at creation, in nanoseconds since the Unix epoch.
  std::uint64_t created_unix_ns;
  // The creator's effective uid, and the segment's group (the --group one,
  // else the creator's effective gid).
  std::uint32_t owner_uid;
  std::uint32_t owner_gid;
  // The permission bits given at creation (0600, 0660, ...).
  std::uint32_t mode;
  std::uint32_t reserved0;  // zero
  // The whole segment, header included; equals the file's size.
  std::uint64_t size_bytes;
  // The caller's hash of the shared types' sizes, alignments and offsets
  // (see shm/layout_signature.h).
  std::uint64_t layout_signature;
  // Zero-filled room for later fields; a reader of this format ignores it.
  std::uint64_t reserved[23];
};

static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(sizeof(SegmentHeader) == kSegmentHeaderSize);
static_assert(alignof(SegmentHeader) == 64);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "only lock-free atomics are address-free between processes");
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);
static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, layout_version) == 8);
static_assert(offsetof(SegmentHeader, header_size) == 12);
static_assert(offsetof(SegmentHeader, kind) == 16);
static_assert(offsetof(SegmentHeader, node_id) == 20);
static_assert(offsetof(SegmentHeader, grid_id) == 24);
static_assert(offsetof(SegmentHeader, created_unix_ns) == 32);
static_assert(offsetof(SegmentHeader, owner_uid) == 40);
static_assert(offsetof(SegmentHeader, owner_gid) == 44);
static_assert(offsetof(SegmentHeader, mode) == 48);
static_assert(offsetof(SegmentHeader, reserved0) == 52);
static_assert(offsetof(SegmentHeader, size_bytes) == 56);
static_assert(offsetof(SegmentHeader, layout_signature) == 64);
static_assert(offsetof(SegmentHeader, reserved) == 72);

}  // namespace numagrid::shm
