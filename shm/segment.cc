// Segment: create, open, validate, remove and list named POSIX shared-memory
// segments. This file is the one adapter between numagrid and
// Boost.Interprocess for segments: every interprocess_exception is caught
// here and turned into a Status that names the segment.
#include "shm/segment.h"

#include <dirent.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <exception>
#include <new>
#include <system_error>
#include <utility>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

namespace numagrid::shm {
namespace {

namespace bip = boost::interprocess;

static_assert(sizeof(std::size_t) == sizeof(std::uint64_t),
              "segments are mapped whole: a 64-bit address space is assumed");

// Where glibc's shm_open keeps its objects on Linux.
constexpr const char* kShmDir = "/dev/shm";
constexpr std::size_t kMaxNameLength = 200;  // without the leading '/'

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string Hex(std::uint64_t v) {
  std::array<char, 24> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%016" PRIx64, v);
  return buf.data();
}

std::string Octal(std::uint32_t v) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "0%03o", static_cast<unsigned>(v));
  return buf.data();
}

// What the noexcept entry points return when an allocation failed. The
// message fits the small-string buffer, so building it allocates nothing.
Status OutOfMemory() { return ResourceExhausted("out of memory"); }

std::string Quoted(std::string_view name) {
  return "segment '" + std::string(name) + "'";
}

// "/name" for "name" or "/name"; kInvalidArgument for anything that is not a
// single path component of 1..kMaxNameLength characters.
Result<std::string> NormalizeName(std::string_view name) {
  std::string_view bare = name;
  if (!bare.empty() && bare.front() == '/') bare.remove_prefix(1);
  auto bad = [&](std::string_view why) {
    return InvalidArgument("invalid segment name '" + std::string(name) +
                           "': " + std::string(why));
  };
  if (bare.empty()) return bad("it is empty");
  if (bare.size() > kMaxNameLength) {
    return bad("it is longer than " + std::to_string(kMaxNameLength) +
               " characters");
  }
  if (bare.find('/') != std::string_view::npos) {
    return bad("it contains '/' beyond the leading one");
  }
  if (bare.find('\0') != std::string_view::npos) return bad("it contains NUL");
  if (bare == "." || bare == "..") return bad("it names a directory");
  return "/" + std::string(bare);
}

std::string ShmPath(const std::string& normalized_name) {
  return std::string(kShmDir) + normalized_name;
}

std::string_view KindName(std::uint32_t kind) {
  switch (static_cast<SegmentKind>(kind)) {
    case SegmentKind::kControl:
      return "control";
    case SegmentKind::kData:
      return "data";
  }
  return "unknown-kind";
}

// The errno behind a Boost.Interprocess exception, or 0 when Boost raised it
// without a system error (size_error, mode_error, ...).
int NativeError(const bip::interprocess_exception& e) {
  return static_cast<int>(e.get_native_error());
}

// The kPermissionDenied explanation: the segment's mode and owner (from
// /dev/shm, which anybody may stat) and who we are. `action` is "open",
// "create" or "remove".
Status Denied(const std::string& name, std::string_view action, int err) {
  std::string msg = "cannot " + std::string(action) + " " + Quoted(name) +
                    ": " + ErrnoText(err) + "; ";
  struct stat st {};
  if (::stat(ShmPath(name).c_str(), &st) == 0) {
    msg += "it has mode " + Octal(st.st_mode & 07777) + ", owner uid " +
           std::to_string(st.st_uid) + " gid " + std::to_string(st.st_gid);
  } else {
    msg += "its mode and owner are unknown";
  }
  msg += ", and this process runs as uid " + std::to_string(::geteuid()) +
         " gid " + std::to_string(::getegid());
  if (action == "remove") {
    msg += " (" + std::string(kShmDir) +
           " is sticky: only the owner or root may remove it)";
  }
  return PermissionDenied(std::move(msg));
}

// kResourceExhausted for a segment /dev/shm cannot hold, with what it has.
Status NoSpace(const std::string& name, std::uint64_t size_bytes,
               std::string_view step, int err) {
  std::string msg = "cannot " + std::string(step) + " " + Quoted(name) +
                    " of " + std::to_string(size_bytes) + " bytes in " +
                    std::string(kShmDir) + " (" + ErrnoText(err) + ")";
  struct statvfs vfs {};
  if (::statvfs(kShmDir, &vfs) == 0) {
    msg += "; it has " +
           std::to_string(std::uint64_t{vfs.f_bavail} * vfs.f_frsize) + " of " +
           std::to_string(std::uint64_t{vfs.f_blocks} * vfs.f_frsize) +
           " bytes available";
  }
  return ResourceExhausted(std::move(msg));
}

Status ValidateSpec(const SegmentSpec& spec) {
  if (spec.size_bytes < sizeof(SegmentHeader)) {
    return InvalidArgument(
        Quoted(spec.name) + " of " + std::to_string(spec.size_bytes) +
        " bytes is smaller than its " + std::to_string(sizeof(SegmentHeader)) +
        "-byte header");
  }
  if (spec.kind != SegmentKind::kControl && spec.kind != SegmentKind::kData) {
    return InvalidArgument(
        Quoted(spec.name) + ": unknown segment kind " +
        std::to_string(static_cast<std::uint32_t>(spec.kind)));
  }
  const std::uint32_t mode = spec.access.mode;
  if ((mode & ~std::uint32_t{0777}) != 0 || (mode & 0600) != 0600) {
    return InvalidArgument(Quoted(spec.name) + ": mode " + Octal(mode) +
                           " must be within 0777 and give the owner read and "
                           "write (at least 0600)");
  }
  return Status::Ok();
}

// Unlinks the named object when destroyed, unless disarmed: Create's
// "nothing is left behind" on every early return and exception.
class UnlinkUnlessDisarmed {
 public:
  explicit UnlinkUnlessDisarmed(const std::string& name) : name_(name) {}
  UnlinkUnlessDisarmed(const UnlinkUnlessDisarmed&) = delete;
  UnlinkUnlessDisarmed& operator=(const UnlinkUnlessDisarmed&) = delete;
  ~UnlinkUnlessDisarmed() {
    if (armed_) bip::shared_memory_object::remove(name_.c_str());
  }
  void Disarm() { armed_ = false; }

 private:
  const std::string& name_;
  bool armed_ = true;
};

// True if /dev/shm has a size limit and less than `size_bytes` left. A tmpfs
// without a limit reports 0 blocks: then anything fits.
bool ExceedsFreeShm(std::uint64_t size_bytes) {
  struct statvfs vfs {};
  if (::statvfs(kShmDir, &vfs) != 0 || vfs.f_blocks == 0) return false;
  return std::uint64_t{vfs.f_bavail} * vfs.f_frsize < size_bytes;
}

std::uint64_t NowUnixNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

Result<Segment> CreateImpl(const SegmentSpec& spec,
                           const Segment::BeforeFirstTouch& before_first_touch,
                           Segment (*make)(std::string, bip::mapped_region)) {
  Result<std::string> normalized = NormalizeName(spec.name);
  if (!normalized.ok()) return normalized.status();
  const std::string& name = *normalized;
  NUMAGRID_RETURN_IF_ERROR(ValidateSpec(spec));
  const std::uint64_t size = spec.size_bytes;
  if (size > static_cast<std::uint64_t>(INT64_MAX)) {
    return NoSpace(name, size, "size", EFBIG);
  }

  // O_CREAT|O_EXCL: never touches an existing object. Boost fchmods the new
  // one to `perm` (umask does not apply); we fchmod again below after the
  // fchown and check the result, which Boost ignores.
  bip::shared_memory_object shm;
  try {
    shm = bip::shared_memory_object(
        bip::create_only, name.c_str(), bip::read_write,
        bip::permissions(static_cast<int>(spec.access.mode)));
  } catch (const bip::interprocess_exception& e) {
    const int err = NativeError(e);
    switch (err) {
      case EEXIST:
        return AlreadyExists(Quoted(name) + " already exists");
      case EACCES:
      case EPERM:
        return Denied(name, "create", err);
      case ENOSPC:
      case ENFILE:
      case EMFILE:
      case ENOMEM:
        return NoSpace(name, size, "create", err);
      default:
        return IoError("cannot create " + Quoted(name) + ": " +
                       (err != 0 ? ErrnoText(err) : std::string(e.what())));
    }
  }
  UnlinkUnlessDisarmed unlink_on_failure(name);
  const int fd = shm.get_mapping_handle().handle;

  if (spec.access.group.has_value()) {
    if (::fchown(fd, static_cast<uid_t>(-1), *spec.access.group) != 0) {
      const int err = errno;
      std::string msg = "cannot give " + Quoted(name) + " to group gid " +
                        std::to_string(*spec.access.group) + " (" +
                        ErrnoText(err) + ")";
      if (err == EPERM) {
        return PermissionDenied(
            msg + ": the creator must be root or a member of that group");
      }
      return IoError(std::move(msg));
    }
  }
  // After the fchown, which may clear mode bits, and not subject to umask.
  if (::fchmod(fd, static_cast<mode_t>(spec.access.mode)) != 0) {
    const int err = errno;
    return IoError("cannot set mode " + Octal(spec.access.mode) + " on " +
                   Quoted(name) + ": " + ErrnoText(err));
  }

  // tmpfs allocates on first touch, so ftruncate succeeds for any size; a
  // segment larger than what /dev/shm has left is refused here instead of
  // failing page by page later. Prefaulting (and so the final word on space)
  // is the caller's: core does it after Create unless --no-prefault.
  if (ExceedsFreeShm(size)) return NoSpace(name, size, "create", ENOSPC);
  try {
    shm.truncate(static_cast<bip::offset_t>(size));
  } catch (const bip::interprocess_exception& e) {
    const int err = NativeError(e);
    return NoSpace(name, size, "size", err != 0 ? err : EFBIG);
  }

  bip::mapped_region region;
  try {
    // read_write maps MAP_SHARED, PROT_READ|PROT_WRITE.
    region = bip::mapped_region(shm, bip::read_write, 0,
                                static_cast<std::size_t>(size));
  } catch (const bip::interprocess_exception& e) {
    const int err = NativeError(e);
    if (err == ENOMEM || err == EOVERFLOW) {
      return NoSpace(name, size, "map", err);
    }
    return IoError("cannot map " + Quoted(name) + ": " +
                   (err != 0 ? ErrnoText(err) : std::string(e.what())));
  }

  // Not one byte of the segment has been written yet: its pages do not
  // exist, so a memory policy set now decides where every one of them lives.
  // The callback may then fill the body (offset >= sizeof(SegmentHeader)):
  // nobody can use the segment before the magic below is published.
  if (before_first_touch) {
    Status s = before_first_touch(region.get_address(), region.get_size());
    if (!s.ok()) return s.WithContext("creating " + Quoted(name));
  }

  // The object is ours alone (O_EXCL) and nobody reads it before the magic
  // is published, so plain stores suffice for everything but the magic.
  auto* header = ::new (region.get_address()) SegmentHeader();
  header->layout_version = spec.layout_version;
  header->header_size = kSegmentHeaderSize;
  header->kind = static_cast<std::uint32_t>(spec.kind);
  header->node_id = spec.node_id;
  header->grid_id = spec.grid_id;
  header->created_unix_ns = NowUnixNs();
  header->owner_uid = static_cast<std::uint32_t>(::geteuid());
  header->owner_gid =
      static_cast<std::uint32_t>(spec.access.group.value_or(::getegid()));
  header->mode = spec.access.mode;
  header->size_bytes = size;
  header->layout_signature = spec.layout_signature;
  // release: publishes every header field above and whatever
  // before_first_touch wrote into the body; pairs with the acquire load of
  // magic in Segment::Open, which then reads them.
  header->magic.store(kSegmentMagic, std::memory_order_release);

  unlink_on_failure.Disarm();
  return make(name, std::move(region));
}

Result<Segment> OpenImpl(std::string_view raw_name, const SegmentExpect& expect,
                         Segment (*make)(std::string, bip::mapped_region)) {
  Result<std::string> normalized = NormalizeName(raw_name);
  if (!normalized.ok()) return normalized.status();
  const std::string& name = *normalized;

  bip::shared_memory_object shm;
  try {
    shm = bip::shared_memory_object(bip::open_only, name.c_str(),
                                    bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    const int err = NativeError(e);
    switch (err) {
      case ENOENT:
        return NotFound("no " + Quoted(name) + " in " + std::string(kShmDir));
      case EACCES:
      case EPERM:
        return Denied(name, "open", err);
      default:
        return IoError("cannot open " + Quoted(name) + ": " +
                       (err != 0 ? ErrnoText(err) : std::string(e.what())));
    }
  }

  bip::offset_t file_size = 0;
  if (!shm.get_size(file_size)) {
    const int err = errno;
    return IoError("cannot stat " + Quoted(name) + ": " + ErrnoText(err));
  }
  if (file_size < static_cast<bip::offset_t>(sizeof(SegmentHeader))) {
    return Corruption(Quoted(name) + " is " + std::to_string(file_size) +
                      " bytes, smaller than its " +
                      std::to_string(sizeof(SegmentHeader)) +
                      "-byte header: not a numagrid segment, or its creator "
                      "died while creating it");
  }

  bip::mapped_region region;
  try {
    region = bip::mapped_region(shm, bip::read_write, 0,
                                static_cast<std::size_t>(file_size));
  } catch (const bip::interprocess_exception& e) {
    const int err = NativeError(e);
    if (err == ENOMEM) {
      return ResourceExhausted("cannot map " + Quoted(name) + " of " +
                               std::to_string(file_size) +
                               " bytes: " + ErrnoText(err));
    }
    return IoError("cannot map " + Quoted(name) + ": " +
                   (err != 0 ? ErrnoText(err) : std::string(e.what())));
  }

  const auto* header = static_cast<const SegmentHeader*>(region.get_address());
  // acquire: pairs with the release store of magic in Create; once it reads
  // kSegmentMagic, every other header field below holds its final value.
  const std::uint64_t magic = header->magic.load(std::memory_order_acquire);
  if (magic != kSegmentMagic) {
    return Corruption(Quoted(name) + " has magic " + Hex(magic) + ", not " +
                      Hex(kSegmentMagic) +
                      " (\"NUMAGRID\"): not a numagrid segment, or its "
                      "creator died while creating it; `numagrid destroy` "
                      "removes it");
  }
  if (header->header_size != kSegmentHeaderSize) {
    return VersionMismatch(
        Quoted(name) + " has a " + std::to_string(header->header_size) +
        "-byte header, this build reads " + std::to_string(kSegmentHeaderSize) +
        "-byte headers");
  }
  if (header->size_bytes != static_cast<std::uint64_t>(file_size)) {
    return Corruption(
        Quoted(name) + " says it is " + std::to_string(header->size_bytes) +
        " bytes, but its file is " + std::to_string(file_size) + " bytes");
  }
  const auto expected_kind = static_cast<std::uint32_t>(expect.kind);
  if (header->kind != expected_kind) {
    return InvalidArgument(
        Quoted(name) + " is a " + std::string(KindName(header->kind)) +
        " segment (kind " + std::to_string(header->kind) + "), expected a " +
        std::string(KindName(expected_kind)) + " segment");
  }
  if (header->layout_version != expect.layout_version) {
    return VersionMismatch(Quoted(name) + " has layout version " +
                           std::to_string(header->layout_version) +
                           ", this build reads " +
                           std::to_string(expect.layout_version));
  }
  if (header->layout_signature != expect.layout_signature) {
    return VersionMismatch(
        Quoted(name) + " has layout signature " +
        Hex(header->layout_signature) + ", this build expects " +
        Hex(expect.layout_signature) + " (both layout version " +
        std::to_string(expect.layout_version) +
        "): its shared types differ, from another compiler or ABI or a "
        "layout change without a version bump");
  }
  return make(name, std::move(region));
}

}  // namespace

Result<gid_t> LookupGroup(std::string_view name) noexcept {
  try {
    const std::string group_name(name);
    if (group_name.empty() || group_name.find('\0') != std::string::npos) {
      return InvalidArgument("no such group '" + group_name + "'");
    }
    const long hint = ::sysconf(_SC_GETGR_R_SIZE_MAX);
    std::vector<char> buf(hint > 0 ? static_cast<std::size_t>(hint) : 1024);
    for (;;) {
      group grp{};
      group* found = nullptr;
      const int rc = ::getgrnam_r(group_name.c_str(), &grp, buf.data(),
                                  buf.size(), &found);
      if (rc == ERANGE) {
        buf.resize(buf.size() * 2);
        continue;
      }
      if (rc == 0 && found != nullptr) return found->gr_gid;
      if (rc == 0 || rc == ENOENT || rc == ESRCH) {
        return InvalidArgument("no such group '" + group_name + "'");
      }
      return IoError("cannot look up group '" + group_name +
                     "': " + ErrnoText(rc));
    }
  } catch (...) {  // only building a string or the buffer can throw here
    return OutOfMemory();
  }
}

Segment::Segment(std::string name,
                 boost::interprocess::mapped_region region) noexcept
    : name_(std::move(name)),
      region_(std::move(region)),
      base_(static_cast<std::byte*>(region_.get_address())),
      size_(region_.get_size()) {}

Segment::Segment(Segment&& other) noexcept
    : name_(std::move(other.name_)),
      region_(std::move(other.region_)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    // The move assignment of mapped_region unmaps our old mapping.
    name_ = std::move(other.name_);
    region_ = std::move(other.region_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Segment::~Segment() = default;

Result<Segment> Segment::Create(
    const SegmentSpec& spec,
    const BeforeFirstTouch& before_first_touch) noexcept {
  try {
    return CreateImpl(spec, before_first_touch,
                      [](std::string n, bip::mapped_region r) {
                        return Segment(std::move(n), std::move(r));
                      });
  } catch (const std::bad_alloc&) {
    return OutOfMemory();
  } catch (const std::exception& e) {
    // Only before_first_touch can get here (CreateImpl catches Boost's
    // exceptions); the unwinding removed the half-made segment.
    return IoError("creating " + Quoted(spec.name) +
                   ": before_first_touch threw: " + e.what());
  } catch (...) {
    return IoError("creating " + Quoted(spec.name) +
                   ": before_first_touch threw");
  }
}

Result<Segment> Segment::Open(std::string_view name,
                              const SegmentExpect& expect) noexcept {
  try {
    return OpenImpl(name, expect, [](std::string n, bip::mapped_region r) {
      return Segment(std::move(n), std::move(r));
    });
  } catch (...) {  // only building a string can throw here
    return OutOfMemory();
  }
}

Status Segment::Remove(std::string_view raw_name) noexcept {
  try {
    Result<std::string> normalized = NormalizeName(raw_name);
    if (!normalized.ok()) return normalized.status();
    const std::string& name = *normalized;
    if (bip::shared_memory_object::remove(name.c_str())) return Status::Ok();
    const int err = errno;  // shm_unlink's; remove() calls nothing after it
    switch (err) {
      case ENOENT:
        return NotFound("no " + Quoted(name) + " in " + std::string(kShmDir));
      case EACCES:
      case EPERM:
        return Denied(name, "remove", err);
      default:
        return IoError("cannot remove " + Quoted(name) + ": " + ErrnoText(err));
    }
  } catch (...) {  // only building a string can throw here
    return OutOfMemory();
  }
}

bool Segment::Exists(std::string_view raw_name) noexcept {
  try {
    Result<std::string> normalized = NormalizeName(raw_name);
    if (!normalized.ok()) return false;
    struct stat st {};
    return ::stat(ShmPath(*normalized).c_str(), &st) == 0;
  } catch (...) {  // only building a string can throw here
    return false;
  }
}

std::vector<std::string> Segment::List(std::string_view prefix) noexcept {
  std::vector<std::string> names;
  if (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  DIR* dir = ::opendir(kShmDir);
  if (dir == nullptr) return names;
  try {
    // readdir is safe here: this DIR stream is ours alone.
    while (const dirent* entry =
               ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe)
      const std::string_view entry_name(entry->d_name);
      if (entry_name == "." || entry_name == "..") continue;
      if (entry_name.substr(0, prefix.size()) != prefix) continue;
      names.emplace_back(entry_name);
    }
  } catch (...) {  // only allocation can throw here: return what fits
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace numagrid::shm
