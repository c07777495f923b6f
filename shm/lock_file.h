// LockFile: the grid's lock file (e.g. /dev/shm/numagrid.<grid>.lock), a
// regular file whose bytes are locked with open-file-description (OFD) locks,
// fcntl(F_OFD_SETLK). The kernel drops every such lock when the last file
// descriptor of the description is closed, which happens when its process
// dies, however it dies: holding byte i is how the owner of process slot i
// says "I am alive" (see shm/process_table.h, docs/process-table.md).
//
// OFD locks belong to the open file description, not to the process:
//   - two LockFile objects opened separately, even in one process, are two
//     descriptions and exclude each other (tests use this to play two
//     processes in one);
//   - a forked child would share its parent's descriptions, so that the
//     parent's locks would live on in the child, and an unlock in the child
//     would drop the parent's lock. A LockFile therefore does not survive
//     fork(): in the child every LockFile is closed at once (pthread_atfork
//     handler) and answers as an empty handle (fd() == -1, TryLockByte false,
//     IsByteLocked true, HoldsByte false). The parent is unaffected. A child
//     that wants a slot of its own opens the lock file anew. exec() closes the
//     descriptor too (O_CLOEXEC). One window remains: from the kernel's copy
//     of the descriptors until the child's handler runs (before fork()
//     returns in the child), the child holds the description too, so a
//     parent that dies right then is seen dead only once the child has been
//     scheduled that far. (A child made by a raw clone() or vfork() that
//     neither execs nor exits would keep it; posix_spawn execs.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "numagrid/status.h"

namespace numagrid::shm {

namespace detail {
struct LockFileState;
}  // namespace detail

// Thread safety: thread-safe. Any number of threads may lock, unlock and
// query bytes of one LockFile; a byte is taken by at most one of them (this
// handle keeps a process-local bitmap of the bytes it holds, so that a second
// TryLockByte of a byte it already holds fails instead of silently
// succeeding, which is what the kernel would do for the same description).
// Process safety: the file is shared with every process of the grid; the
// handle itself belongs to the process (and the thread-safe object) that
// opened it, and is closed in a forked child.
class LockFile {
 public:
  // Bytes [0, kMaxBytes) may be locked. The process table uses bytes
  // [0, capacity); the rest is free for other tables.
  static constexpr std::uint32_t kMaxBytes = 1U << 16;

  // An empty handle: fd() == -1; locks nothing.
  LockFile() noexcept;
  LockFile(LockFile&& other) noexcept;
  LockFile& operator=(LockFile&& other) noexcept;
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  // Closes the descriptor: the kernel releases every byte this handle holds.
  ~LockFile();

  // Creates the lock file exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, O_CLOEXEC),
  // gives it to `group` (fchown) if set and applies `mode` (fchmod, so the
  // umask does not narrow it). On failure nothing is left behind.
  // Errors, each naming the path: kInvalidArgument (mode beyond 0777 or
  // without owner read+write), kAlreadyExists, kNotFound (no such directory),
  // kPermissionDenied, kIoError.
  static Result<LockFile> Create(const std::string& path, std::uint32_t mode,
                                 std::optional<gid_t> group);

  // Opens an existing lock file read-write (a write lock needs a writable
  // descriptor). Errors: kNotFound, kPermissionDenied (with the file's mode
  // and owner and the caller's uid), kInvalidArgument (not a regular file),
  // kIoError.
  static Result<LockFile> Open(const std::string& path);

  // Takes a write lock on byte [index, index + 1) without waiting. Returns
  // false if another open file description holds it, if this handle holds it
  // already (each byte is owned once), or if the handle is empty or index >=
  // kMaxBytes.
  bool TryLockByte(std::uint32_t index) noexcept;

  // Releases byte `index`. No-op unless this handle holds it.
  void UnlockByte(std::uint32_t index) noexcept;

  // True if some OTHER open file description holds a lock on byte `index`
  // (F_OFD_GETLK; a lock of this handle does not count). Conservative: true
  // also when the question cannot be asked (empty handle, fcntl error), so
  // that a live owner is never taken for dead.
  bool IsByteLocked(std::uint32_t index) const noexcept;

  // True if this handle holds byte `index` (process-local; no syscall).
  bool HoldsByte(std::uint32_t index) const noexcept;

  // The descriptor, or -1 for an empty (or moved-from, or forked) handle.
  int fd() const noexcept;
  // The path given to Create/Open ("" for an empty handle).
  const std::string& path() const noexcept;

 private:
  explicit LockFile(std::unique_ptr<detail::LockFileState> state) noexcept;

  // Heap-allocated so that its address, registered for the fork handler,
  // survives moves of the handle.
  std::unique_ptr<detail::LockFileState> state_;
};

}  // namespace numagrid::shm
