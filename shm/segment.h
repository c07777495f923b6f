// Segment: one named POSIX shared-memory object (/dev/shm/<name>) mapped
// read-write and shared, with its SegmentHeader. Create makes one completely
// or not at all; Open maps an existing one and refuses it unless its header
// says it is a complete numagrid segment of the expected kind and layout.
//
// Names are POSIX shm names, given with or without the leading '/'
// ("numagrid.orders.ctl" and "/numagrid.orders.ctl" are the same segment);
// name() always has the leading '/'. A name is 1 to 200 characters after the
// '/', contains no other '/' and no NUL, and is not "." or "..".
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/interprocess/mapped_region.hpp>

#include "core/base/check.h"
#include "numagrid/status.h"
#include "shm/segment_header.h"

namespace numagrid::shm {

// Who may map a segment. The mode is applied with fchmod after creation, so
// the process umask does not narrow it.
struct Access {
  // Permission bits; the owner needs read and write (0600 is the minimum),
  // and nothing beyond 0777 (no setuid, setgid or sticky bits).
  std::uint32_t mode = 0600;
  // The group the segment is given to (fchown), e.g. with mode 0660 for the
  // CLI's --group. Unset: the creator's effective gid.
  std::optional<gid_t> group;
};

// The gid of group `name` (getgrnam_r). kInvalidArgument "no such group 'x'"
// when there is none.
Result<gid_t> LookupGroup(std::string_view name) noexcept;

// What Segment::Create writes.
struct SegmentSpec {
  std::string name;
  std::uint64_t size_bytes = 0;  // whole segment; >= sizeof(SegmentHeader)
  SegmentKind kind = SegmentKind::kControl;
  std::uint32_t node_id = 0;
  std::uint64_t grid_id = 0;
  std::uint32_t layout_version = 0;
  std::uint64_t layout_signature = 0;
  Access access;
};

// What Segment::Open requires of the header it finds.
struct SegmentExpect {
  SegmentKind kind = SegmentKind::kControl;
  std::uint32_t layout_version = 0;
  std::uint64_t layout_signature = 0;
};

// A mapping of one segment, unmapped by the destructor. Destroying a Segment
// never removes the named object: only Remove does.
//
// Thread safety: thread-compatible (the handle); the mapped bytes are shared
// with every other mapping, in this and other processes, and their safety is
// that of the structures placed in them.
// Process safety: the header is constant once Create has published it.
class Segment {
 public:
  // Called by Create after mapping and before any byte is written; core binds
  // the memory to a NUMA node here. A non-OK Status aborts the create.
  using BeforeFirstTouch = std::function<Status(void* base, std::size_t size)>;

  // An empty handle: base() is null, size() is 0.
  Segment() noexcept = default;
  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&& other) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // Creates the named segment exclusively and returns it mapped:
  //   1. shm_open(O_CREAT|O_EXCL); kAlreadyExists if the name is taken (the
  //      existing segment is not touched);
  //   2. fchown to spec.access.group (if set), fchmod spec.access.mode;
  //   3. refuses a size larger than /dev/shm has free (kResourceExhausted),
  //      ftruncate to spec.size_bytes, mmap MAP_SHARED read-write;
  //   4. before_first_touch(base, size) (if set), before any byte is written.
  //      It binds the memory and may then fill the body (bytes from offset
  //      sizeof(SegmentHeader) on); it must not write the header;
  //   5. writes the header, then publishes `magic` with a release store,
  //      which also publishes what before_first_touch wrote.
  // Create does not prefault: pages are allocated on first touch (core
  // prefaults after Create).
  // On any failure it removes what it created: nothing is left behind (a
  // crash of this process half-way is the one exception: see
  // docs/segment-format.md). Errors: kInvalidArgument (bad name, size < 256,
  // bad mode or kind), kAlreadyExists, kPermissionDenied, kResourceExhausted
  // (names the size and /dev/shm), kIoError, or before_first_touch's error
  // (its code, with the segment's name added as context).
  static Result<Segment> Create(
      const SegmentSpec& spec,
      const BeforeFirstTouch& before_first_touch = {}) noexcept;

  // Maps an existing segment read-write and validates its header. Errors,
  // each naming the segment: kNotFound; kPermissionDenied (with its mode and
  // owner and the caller's uid); kCorruption (bad magic, a file smaller than
  // the header, size_bytes different from the file size); kVersionMismatch
  // (header size, layout version or signature differs; names both values);
  // kInvalidArgument (bad name, kind differs).
  static Result<Segment> Open(std::string_view name,
                              const SegmentExpect& expect) noexcept;

  // Removes the named segment (existing mappings stay valid until unmapped).
  // kNotFound if absent, kPermissionDenied if not ours to remove.
  static Status Remove(std::string_view name) noexcept;

  // True if the named segment exists (complete or not); false also for an
  // invalid name.
  static bool Exists(std::string_view name) noexcept;

  // The names of the /dev/shm entries that start with `prefix` (given with
  // or without the leading '/'), sorted, as they appear in /dev/shm: without
  // the leading '/' ("numagrid.orders.ctl"). Lists any entry, numagrid
  // segment or not (lock files too).
  static std::vector<std::string> List(std::string_view prefix) noexcept;

  // The first byte of the mapping (the header); valid until this Segment is
  // destroyed or moved from. Null for an empty handle.
  std::byte* base() const noexcept { return base_; }
  // The size of the mapping, header included.
  std::uint64_t size() const noexcept { return size_; }
  // The normalised name, with the leading '/'.
  const std::string& name() const noexcept { return name_; }

  // REQUIRES: this handle is not empty.
  const SegmentHeader& header() const noexcept {
    NUMAGRID_DCHECK(base_ != nullptr);
    return *reinterpret_cast<const SegmentHeader*>(base_);
  }

  // The T at byte `offset` of the segment; valid as long as base() is.
  // REQUIRES: offset + sizeof(T) <= size(), offset % alignof(T) == 0.
  template <typename T>
  T* At(std::uint64_t offset) const noexcept {
    NUMAGRID_DCHECK(offset <= size_ && sizeof(T) <= size_ - offset);
    NUMAGRID_DCHECK(offset % alignof(T) == 0);
    return reinterpret_cast<T*>(base_ + offset);
  }

 private:
  Segment(std::string name, boost::interprocess::mapped_region region) noexcept;

  std::string name_;
  boost::interprocess::mapped_region region_;
  std::byte* base_ = nullptr;  // region_.get_address(), cached
  std::uint64_t size_ = 0;     // region_.get_size(), cached
};

}  // namespace numagrid::shm
