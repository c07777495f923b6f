// LockFile: open/create the grid's lock file and lock single bytes of it with
// OFD locks; a pthread_atfork handler closes every LockFile in a forked child.
#include "shm/lock_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>

namespace numagrid::shm {
namespace detail {

// What a LockFile owns. Lives on the heap so that the fork handler's list can
// point at it while the LockFile handle is moved around.
struct LockFileState {
  LockFileState(std::string p, int f) : path(std::move(p)), fd(f) {}

  const std::string path;
  // The descriptor; -1 once closed in a forked child. relaxed everywhere: it
  // changes only in the fork handler of a child, where a single thread runs,
  // and is otherwise constant after construction.
  std::atomic<int> fd;
  // Bit i set: this handle holds (or one of its threads is taking) byte i. A
  // process-local lock on each byte, so that two threads of this process
  // never both "take" a byte through the one description.
  std::array<std::atomic<std::uint64_t>, LockFile::kMaxBytes / 64> held{};
  // The fork handler's list; guarded by Registry::mu.
  LockFileState* prev = nullptr;
  LockFileState* next = nullptr;
};

}  // namespace detail

namespace {

using detail::LockFileState;

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string Octal(std::uint32_t v) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "0%03o", static_cast<unsigned>(v));
  return buf.data();
}

std::string Quoted(std::string_view path) {
  return "lock file '" + std::string(path) + "'";
}

// Every live LockFileState of this process, for the fork handler. Leaked on
// purpose: fork() may run during static destruction.
struct Registry {
  std::mutex mu;
  LockFileState* head = nullptr;
};

Registry& GetRegistry() {
  static auto* registry = new Registry;
  return *registry;
}

// pthread_atfork handlers. Prepare takes the registry lock so that the child
// inherits a consistent list; Child closes every LockFile's descriptor there,
// so that the parent's locks live only in the parent (its death releases
// them) and nothing in the child can unlock them.
void ForkPrepare() { GetRegistry().mu.lock(); }
void ForkParent() { GetRegistry().mu.unlock(); }
void ForkChild() {
  Registry& registry = GetRegistry();
  for (LockFileState* s = registry.head; s != nullptr; s = s->next) {
    // relaxed: one thread runs in the child (see LockFileState::fd).
    const int fd = s->fd.exchange(-1, std::memory_order_relaxed);
    if (fd >= 0) ::close(fd);
    // relaxed: as above; the child holds no byte.
    for (auto& word : s->held) word.store(0, std::memory_order_relaxed);
  }
  registry.mu.unlock();
}

// Installs the fork handlers (once) and returns the registry lock, held.
// Create/Open hold it from open(2) until the new state is on the list, and
// the destructor from unlisting until close(2), so that a fork() in another
// thread never copies a descriptor the child handler does not know about.
std::unique_lock<std::mutex> LockRegistry() {
  static std::once_flag once;
  std::call_once(
      once, [] { ::pthread_atfork(&ForkPrepare, &ForkParent, &ForkChild); });
  return std::unique_lock<std::mutex>(GetRegistry().mu);
}

// REQUIRES: the registry lock is held.
void Register(LockFileState* s) noexcept {
  Registry& registry = GetRegistry();
  s->next = registry.head;
  if (registry.head != nullptr) registry.head->prev = s;
  registry.head = s;
}

// REQUIRES: the registry lock is held.
void Unregister(LockFileState* s) noexcept {
  Registry& registry = GetRegistry();
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    registry.head = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
}

// kPermissionDenied naming the file's mode and owner and who we are.
Status Denied(const std::string& path, std::string_view action, int err) {
  std::string msg = "permission denied " + std::string(action) + " " +
                    Quoted(path) + " (" + ErrnoText(err) + "): ";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    msg += "it has mode " + Octal(st.st_mode & 07777) + ", owner uid " +
           std::to_string(st.st_uid) + " gid " + std::to_string(st.st_gid);
  } else {
    msg += "its mode and owner are unknown";
  }
  msg += "; this process runs as uid " + std::to_string(::geteuid()) + " gid " +
         std::to_string(::getegid());
  return PermissionDenied(std::move(msg));
}

// The Status for a failed open(2) of `path`.
Status OpenError(const std::string& path, std::string_view action, int err) {
  switch (err) {
    case EEXIST:
      return AlreadyExists(Quoted(path) + " already exists");
    case ENOENT:
      return NotFound(
          Quoted(path) + " does not exist" +
          (action == "creating" ? " (nor does its directory)" : ""));
    case EACCES:
    case EPERM:
    case EROFS:
      return Denied(path, action, err);
    case ELOOP:
      return InvalidArgument(Quoted(path) +
                             " is a symbolic link; it must be a regular file");
    default:
      return IoError(std::string(action) + " " + Quoted(path) + ": " +
                     ErrnoText(err));
  }
}

int Fcntl(int fd, int cmd, struct flock* fl) noexcept {
  for (;;) {
    const int rc = ::fcntl(fd, cmd, fl);
    if (rc == 0 || errno != EINTR) return rc;
  }
}

struct flock ByteLock(short type, std::uint32_t index) noexcept {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(index);
  fl.l_len = 1;
  fl.l_pid = 0;  // F_OFD_* require 0
  return fl;
}

}  // namespace

LockFile::LockFile() noexcept = default;
LockFile::LockFile(std::unique_ptr<LockFileState> state) noexcept
    : state_(std::move(state)) {}
LockFile::LockFile(LockFile&& other) noexcept = default;

LockFile& LockFile::operator=(LockFile&& other) noexcept {
  if (this != &other) {
    LockFile old(std::move(*this));  // closes what we had
    state_ = std::move(other.state_);
  }
  return *this;
}

LockFile::~LockFile() {
  if (state_ == nullptr) return;
  std::lock_guard<std::mutex> lock(GetRegistry().mu);
  Unregister(state_.get());
  // relaxed: see LockFileState::fd.
  const int fd = state_->fd.load(std::memory_order_relaxed);
  if (fd >= 0) ::close(fd);
}

Result<LockFile> LockFile::Create(const std::string& path, std::uint32_t mode,
                                  std::optional<gid_t> group) {
  if ((mode & ~std::uint32_t{0777}) != 0 || (mode & 0600) != 0600) {
    return InvalidArgument(Quoted(path) + ": mode " + Octal(mode) +
                           " must be within 0777 and give the owner read and "
                           "write (at least 0600)");
  }
  // Allocated first, so that nothing can fail between open and return but
  // the syscalls whose failure we undo.
  auto state = std::make_unique<LockFileState>(path, -1);
  std::unique_lock<std::mutex> registry_lock = LockRegistry();
  const int fd = ::open(
      path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return OpenError(path, "creating", errno);
  auto undo = [&](Status s) -> Result<LockFile> {
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  };
  if (group.has_value() && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
    const int err = errno;
    const std::string what =
        "giving " + Quoted(path) + " to group " + std::to_string(*group);
    if (err == EPERM) {
      return undo(PermissionDenied(what + ": " + ErrnoText(err)));
    }
    return undo(IoError(what + ": " + ErrnoText(err)));
  }
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return undo(IoError("setting mode " + Octal(mode) + " on " + Quoted(path) +
                        ": " + ErrnoText(errno)));
  }
  // relaxed: not yet shared with any other thread.
  state->fd.store(fd, std::memory_order_relaxed);
  Register(state.get());
  return LockFile(std::move(state));
}

Result<LockFile> LockFile::Open(const std::string& path) {
  auto state = std::make_unique<LockFileState>(path, -1);
  std::unique_lock<std::mutex> registry_lock = LockRegistry();
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return OpenError(path, "opening", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("fstat of " + Quoted(path) + ": " + ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(Quoted(path) + " is not a regular file");
  }
  // relaxed: not yet shared with any other thread.
  state->fd.store(fd, std::memory_order_relaxed);
  Register(state.get());
  return LockFile(std::move(state));
}

bool LockFile::TryLockByte(std::uint32_t index) noexcept {
  if (state_ == nullptr || index >= kMaxBytes) return false;
  std::atomic<std::uint64_t>& word = state_->held[index / 64];
  const std::uint64_t bit = std::uint64_t{1} << (index % 64);
  // acquire: the bit is a process-local lock on the byte; pairs with the
  // release in UnlockByte, so our F_OFD_SETLK comes after its F_UNLCK.
  if ((word.fetch_or(bit, std::memory_order_acquire) & bit) != 0) return false;
  // relaxed: see LockFileState::fd.
  const int fd = state_->fd.load(std::memory_order_relaxed);
  struct flock fl = ByteLock(F_WRLCK, index);
  if (fd >= 0 && Fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
  // release: gives the bit back (nothing was published under it).
  word.fetch_and(~bit, std::memory_order_release);
  return false;
}

void LockFile::UnlockByte(std::uint32_t index) noexcept {
  if (!HoldsByte(index)) return;
  // relaxed: see LockFileState::fd.
  const int fd = state_->fd.load(std::memory_order_relaxed);
  struct flock fl = ByteLock(F_UNLCK, index);
  if (fd >= 0) Fcntl(fd, F_OFD_SETLK, &fl);
  // release: clears the bit only after F_UNLCK, so that another thread of
  // ours that takes the bit (acquire in TryLockByte) locks afresh instead of
  // having its lock removed by our F_UNLCK.
  state_->held[index / 64].fetch_and(~(std::uint64_t{1} << (index % 64)),
                                     std::memory_order_release);
}

bool LockFile::IsByteLocked(std::uint32_t index) const noexcept {
  if (state_ == nullptr || index >= kMaxBytes) return true;
  // relaxed: see LockFileState::fd.
  const int fd = state_->fd.load(std::memory_order_relaxed);
  if (fd < 0) return true;
  struct flock fl = ByteLock(F_WRLCK, index);
  if (Fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

bool LockFile::HoldsByte(std::uint32_t index) const noexcept {
  if (state_ == nullptr || index >= kMaxBytes) return false;
  // acquire: pairs with the fetch_or/fetch_and of the thread that set or
  // cleared the bit; a stale answer is possible only for a byte another
  // thread of this process is locking or unlocking right now.
  return (state_->held[index / 64].load(std::memory_order_acquire) &
          (std::uint64_t{1} << (index % 64))) != 0;
}

int LockFile::fd() const noexcept {
  // relaxed: see LockFileState::fd.
  return state_ == nullptr ? -1 : state_->fd.load(std::memory_order_relaxed);
}

const std::string& LockFile::path() const noexcept {
  static const std::string empty_path;
  return state_ == nullptr ? empty_path : state_->path;
}

}  // namespace numagrid::shm
