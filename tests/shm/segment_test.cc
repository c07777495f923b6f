// Tests for shm/segment.h: the create/open/remove lifecycle, the header
// checks Open makes, permissions, and sharing between mappings and processes.
// Every segment name comes from UniqueName(), so runs never collide and
// everything is removed when the binary exits.
#include "shm/segment.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <ios>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "numagrid/status.h"
#include "shm/segment_header.h"
#include "tests/support/test_grid.h"

namespace numagrid::shm {
namespace {

using ::numagrid::testing::ForkChild;
using ::numagrid::testing::NobodyUser;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::testing::HasSubstr;

constexpr std::uint64_t kSize = std::uint64_t{64} * 1024;
constexpr std::uint32_t kVersion = 4;
constexpr std::uint64_t kSignature = 0x5157a7e5c0ffee01ULL;
// Exit code of a child that could not drop its privileges.
constexpr int kCannotDrop = 77;

SegmentSpec Spec(const std::string& name, std::uint64_t size = kSize,
                 SegmentKind kind = SegmentKind::kControl) {
  SegmentSpec spec;
  spec.name = name;
  spec.size_bytes = size;
  spec.kind = kind;
  spec.node_id = kind == SegmentKind::kData ? 1 : 0;
  spec.grid_id = 0x6121d1d;
  spec.layout_version = kVersion;
  spec.layout_signature = kSignature;
  return spec;
}

SegmentExpect Expect(SegmentKind kind = SegmentKind::kControl) {
  return {kind, kVersion, kSignature};
}

struct stat StatOf(const std::string& name) {
  struct stat st {};
  const std::string path =
      "/dev/shm/" + (name.front() == '/' ? name.substr(1) : name);
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

// Sets the umask for one scope.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

// The gid of the 'nogroup' (Debian) or 'nobody' group.
std::optional<gid_t> NoGroup() {
  for (const char* name : {"nogroup", "nobody"}) {
    Result<gid_t> gid = LookupGroup(name);
    if (gid.ok()) return *gid;
  }
  return std::nullopt;
}

// In a forked child: becomes `uid` with primary group `gid` and the
// supplementary `groups`, then runs Open and exits with its status code.
int OpenAs(const std::string& name, uid_t uid, gid_t gid,
           const std::vector<gid_t>& groups) {
  return WaitChild(ForkChild([&] {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      return kCannotDrop;
    }
    Result<Segment> seg = Segment::Open(name, Expect());
    return static_cast<int>(seg.status().code());
  }));
}

constexpr int CodeOf(StatusCode code) { return static_cast<int>(code); }

// --- lifecycle -------------------------------------------------------------

TEST(Segment, CreateOpenRemoveLifecycle) {
  const std::string name = UniqueName(".ctl");
  {
    Result<Segment> created = Segment::Create(Spec(name));
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_EQ(created->name(), "/" + name);
    EXPECT_EQ(created->size(), kSize);
    EXPECT_NE(created->base(), nullptr);
  }
  EXPECT_TRUE(Segment::Exists(name)) << "the destructor must not remove";

  Result<Segment> opened = Segment::Open(name, Expect());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->size(), kSize);

  ASSERT_TRUE(Segment::Remove(name).ok());
  EXPECT_FALSE(Segment::Exists(name));
  EXPECT_EQ(Segment::Open(name, Expect()).status().code(),
            StatusCode::kNotFound);
}

TEST(Segment, CreateWritesEveryHeaderField) {
  const std::string name = UniqueName(".data");
  SegmentSpec spec = Spec(name, kSize, SegmentKind::kData);
  spec.node_id = 3;
  spec.grid_id = 0xabcdef0123456789ULL;
  timespec before{};
  ::clock_gettime(CLOCK_REALTIME, &before);
  ASSERT_TRUE(Segment::Create(spec).ok());

  Result<Segment> seg = Segment::Open(name, Expect(SegmentKind::kData));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  const SegmentHeader& h = seg->header();
  EXPECT_EQ(h.magic.load(), kSegmentMagic);
  EXPECT_EQ(std::memcmp(seg->base(), "NUMAGRID", 8), 0);
  EXPECT_EQ(h.layout_version, kVersion);
  EXPECT_EQ(h.header_size, 256U);
  EXPECT_EQ(h.kind, static_cast<std::uint32_t>(SegmentKind::kData));
  EXPECT_EQ(h.node_id, 3U);
  EXPECT_EQ(h.grid_id, 0xabcdef0123456789ULL);
  EXPECT_GE(h.created_unix_ns,
            static_cast<std::uint64_t>(before.tv_sec) * 1'000'000'000U);
  EXPECT_EQ(h.owner_uid, ::geteuid());
  EXPECT_EQ(h.owner_gid, ::getegid());
  EXPECT_EQ(h.mode, 0600U);
  EXPECT_EQ(h.reserved0, 0U);
  EXPECT_EQ(h.size_bytes, kSize);
  EXPECT_EQ(h.layout_signature, kSignature);
  for (std::uint64_t r : h.reserved) EXPECT_EQ(r, 0U);
}

TEST(Segment, NamesWithAndWithoutLeadingSlashAreTheSameSegment) {
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  Result<Segment> seg = Segment::Open("/" + name, Expect());
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_EQ(seg->name(), "/" + name);
  EXPECT_TRUE(Segment::Exists("/" + name));
  EXPECT_EQ(Segment::Create(Spec("/" + name)).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(Segment::Remove("/" + name).ok());
  EXPECT_FALSE(Segment::Exists(name));
}

TEST(Segment, InvalidNamesAreRejected) {
  const std::string base = UniqueName();
  const std::string too_long = base + std::string(201 - base.size(), 'n');
  for (const std::string& bad :
       {std::string(), std::string("/"), base + "/x", "/" + base + "/x",
        "//" + base, too_long, std::string("."), std::string("/..")}) {
    Result<Segment> created = Segment::Create(Spec(bad));
    EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(Segment::Open(bad, Expect()).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(Segment::Remove(bad).code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(Segment::Exists(bad)) << bad;
  }
  EXPECT_TRUE(Segment::List(base).empty());
}

TEST(Segment, NameOfExactly200CharactersIsAccepted) {
  std::string name = UniqueName();
  name += std::string(200 - name.size(), 'n');
  Result<Segment> seg = Segment::Create(Spec("/" + name));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_TRUE(Segment::Remove(name).ok());
}

TEST(Segment, InvalidSpecIsRejectedAndLeavesNothing) {
  const std::string name = UniqueName();
  SegmentSpec too_small = Spec(name, 255);
  SegmentSpec setuid_mode = Spec(name);
  setuid_mode.access.mode = 04600;
  SegmentSpec owner_cannot_write = Spec(name);
  owner_cannot_write.access.mode = 0440;
  SegmentSpec bad_kind = Spec(name);
  bad_kind.kind = static_cast<SegmentKind>(7);
  for (const SegmentSpec& spec :
       {too_small, setuid_mode, owner_cannot_write, bad_kind}) {
    EXPECT_EQ(Segment::Create(spec).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_FALSE(Segment::Exists(name));
  }
}

TEST(Segment, CreateOfAnExistingNameFailsAndLeavesItIntact) {
  const std::string name = UniqueName();
  {
    Result<Segment> first = Segment::Create(Spec(name));
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    *first->At<std::uint64_t>(1024) = 0x600d;
  }
  SegmentSpec second = Spec(name, 2 * kSize);
  second.grid_id = 0xbad;
  bool touched = false;
  Result<Segment> again = Segment::Create(second, [&](void*, std::size_t) {
    touched = true;
    return Status::Ok();
  });
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("/" + name));
  EXPECT_FALSE(touched);

  Result<Segment> seg = Segment::Open(name, Expect());
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_EQ(seg->size(), kSize);
  EXPECT_EQ(seg->header().grid_id, Spec(name).grid_id);
  EXPECT_EQ(*seg->At<std::uint64_t>(1024), 0x600dU);
}

TEST(Segment, OpenOfAMissingSegmentIsNotFound) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Open(name, Expect());
  EXPECT_EQ(seg.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(seg.status().message(), HasSubstr("/" + name));
}

TEST(Segment, RemoveOfAMissingSegmentIsNotFound) {
  const std::string name = UniqueName();
  Status s = Segment::Remove(name);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("/" + name));
}

TEST(Segment, MappingStaysUsableAfterRemove) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(Spec(name));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  ASSERT_TRUE(Segment::Remove(name).ok());
  *seg->At<std::uint64_t>(512) = 7;
  EXPECT_EQ(*seg->At<std::uint64_t>(512), 7U);
  EXPECT_EQ(seg->header().magic.load(), kSegmentMagic);
}

TEST(Segment, MovedFromHandleIsEmptyAndTheMappingMoves) {
  const std::string name = UniqueName();
  Result<Segment> created = Segment::Create(Spec(name));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::byte* base = created->base();
  Segment moved = std::move(*created);
  EXPECT_EQ(created->base(), nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(created->size(), 0U);
  EXPECT_EQ(moved.base(), base);
  EXPECT_EQ(moved.header().magic.load(), kSegmentMagic);

  Segment assigned;
  EXPECT_EQ(assigned.base(), nullptr);
  assigned = std::move(moved);
  EXPECT_EQ(assigned.base(), base);
  EXPECT_EQ(assigned.name(), "/" + name);
}

TEST(Segment, AtPastTheEndIsABugCaughtByDebugChecks) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(Spec(name));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_NE(seg->At<std::uint64_t>(kSize - 8), nullptr);
  // Only forms the pointer; never dereferences it.
  EXPECT_DEBUG_DEATH((void)seg->At<std::uint64_t>(kSize - 4), "check failed");
  EXPECT_DEBUG_DEATH((void)seg->At<std::uint64_t>(4), "check failed");
}

TEST(Segment, ListReturnsTheNamesWithThePrefixSorted) {
  const std::string prefix = UniqueName(".");
  for (const char* suffix : {"b", "a", "c"}) {
    ASSERT_TRUE(Segment::Create(Spec(prefix + suffix)).ok());
  }
  ASSERT_TRUE(Segment::Create(Spec(UniqueName(".other"))).ok());
  const std::vector<std::string> want = {prefix + "a", prefix + "b",
                                         prefix + "c"};
  EXPECT_EQ(Segment::List(prefix), want);
  EXPECT_EQ(Segment::List("/" + prefix), want);
}

// --- before_first_touch ----------------------------------------------------

TEST(Segment, BeforeFirstTouchSeesTheWholeUnwrittenMapping) {
  const std::string name = UniqueName();
  bool called = false;
  Result<Segment> seg =
      Segment::Create(Spec(name), [&](void* base, std::size_t size) {
        called = true;
        EXPECT_NE(base, nullptr);
        EXPECT_EQ(size, kSize);
        const auto* bytes = static_cast<const unsigned char*>(base);
        for (std::size_t i = 0; i < sizeof(SegmentHeader); ++i) {
          EXPECT_EQ(bytes[i], 0) << "byte " << i << " written too early";
        }
        // An opener racing with the creator is refused: magic is still 0.
        EXPECT_EQ(Segment::Open(name, Expect()).status().code(),
                  StatusCode::kCorruption);
        return Status::Ok();
      });
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  EXPECT_TRUE(called);
  EXPECT_TRUE(Segment::Open(name, Expect()).ok());
}

TEST(Segment, BeforeFirstTouchMayFillTheBodyThatOpenThenSees) {
  const std::string name = UniqueName();
  Result<Segment> seg =
      Segment::Create(Spec(name), [](void* base, std::size_t) {
        auto* bytes = static_cast<std::byte*>(base);
        *reinterpret_cast<std::uint64_t*>(bytes + sizeof(SegmentHeader)) =
            0xb0d1;
        return Status::Ok();
      });
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  Result<Segment> opened = Segment::Open(name, Expect());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened->At<std::uint64_t>(sizeof(SegmentHeader)), 0xb0d1U);
  EXPECT_EQ(opened->header().magic.load(), kSegmentMagic);
}

TEST(Segment, BeforeFirstTouchErrorFailsCreateAndLeavesNothing) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(Spec(name), [](void*, std::size_t) {
    return IoError("cannot bind to node 1");
  });
  EXPECT_EQ(seg.status().code(), StatusCode::kIoError);
  EXPECT_THAT(seg.status().message(), HasSubstr("cannot bind to node 1"));
  EXPECT_THAT(seg.status().message(), HasSubstr("/" + name));
  EXPECT_FALSE(Segment::Exists(name));
  EXPECT_TRUE(Segment::List(name).empty());
}

TEST(Segment, BeforeFirstTouchExceptionFailsCreateAndLeavesNothing) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(
      Spec(name),
      [](void*, std::size_t) -> Status { throw std::runtime_error("boom"); });
  EXPECT_FALSE(seg.ok());
  EXPECT_THAT(seg.status().message(), HasSubstr("boom"));
  EXPECT_FALSE(Segment::Exists(name));
}

TEST(Segment, SegmentLargerThanDevShmIsResourceExhaustedAndLeavesNothing) {
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs("/dev/shm", &vfs), 0);
  const std::uint64_t capacity = std::uint64_t{vfs.f_blocks} * vfs.f_frsize;
  if (capacity == 0 || capacity > (std::uint64_t{1} << 44)) {
    GTEST_SKIP() << "/dev/shm has no size limit below 16 TiB (" << capacity
                 << " bytes), so it cannot be overfilled cheaply";
  }
  const std::string name = UniqueName();
  const std::uint64_t size = 2 * capacity;
  Result<Segment> seg = Segment::Create(Spec(name, size));
  EXPECT_EQ(seg.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(seg.status().message(), HasSubstr("/dev/shm"));
  EXPECT_THAT(seg.status().message(), HasSubstr(std::to_string(size)));
  EXPECT_FALSE(Segment::Exists(name));
}

// --- sharing ---------------------------------------------------------------

TEST(Segment, TwoMappingsInOneProcessSeeEachOthersWrites) {
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  Result<Segment> a = Segment::Open(name, Expect());
  Result<Segment> b = Segment::Open(name, Expect());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_NE(a->base(), b->base());

  std::atomic_ref<std::uint64_t>(*a->At<std::uint64_t>(4096))
      .store(0xa11ce, std::memory_order_release);
  EXPECT_EQ(std::atomic_ref<std::uint64_t>(*b->At<std::uint64_t>(4096))
                .load(std::memory_order_acquire),
            0xa11ceU);
  std::atomic_ref<std::uint64_t>(*b->At<std::uint64_t>(kSize - 8))
      .store(0xb0b, std::memory_order_release);
  EXPECT_EQ(std::atomic_ref<std::uint64_t>(*a->At<std::uint64_t>(kSize - 8))
                .load(std::memory_order_acquire),
            0xb0bU);
}

TEST(Segment, ForkedChildOpensAndWritesAndTheParentSeesIt) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(Spec(name));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  const int rc = WaitChild(ForkChild([&] {
    Result<Segment> child = Segment::Open(name, Expect());
    if (!child.ok()) return 10 + static_cast<int>(child.status().code());
    std::atomic_ref<std::uint64_t>(*child->At<std::uint64_t>(8192))
        .store(0xc41d, std::memory_order_release);
    return 0;
  }));
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(std::atomic_ref<std::uint64_t>(*seg->At<std::uint64_t>(8192))
                .load(std::memory_order_acquire),
            0xc41dU);
}

// --- header validation -----------------------------------------------------

TEST(Segment, BadMagicIsCorruptionNamingTheSegment) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(Spec(name));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  seg->At<std::atomic<std::uint64_t>>(0)->store(0x1234);
  Result<Segment> opened = Segment::Open(name, Expect());
  EXPECT_EQ(opened.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(opened.status().message(), HasSubstr("'/" + name + "'"));
  EXPECT_THAT(opened.status().message(),
              HasSubstr("not a numagrid segment, or its creator died while "
                        "creating it"));
}

TEST(Segment, ZeroMagicOfADeadCreatorIsCorruption) {
  const std::string name = UniqueName();
  Result<Segment> seg = Segment::Create(Spec(name));
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  // What a creator killed before publishing the magic leaves behind.
  seg->At<std::atomic<std::uint64_t>>(0)->store(0);
  Result<Segment> opened = Segment::Open(name, Expect());
  EXPECT_EQ(opened.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(opened.status().message(), HasSubstr("creator died"));
  // And destroy (Remove) cleans it up.
  EXPECT_TRUE(Segment::Remove(name).ok());
  EXPECT_FALSE(Segment::Exists(name));
}

TEST(Segment, CreatorKilledBeforePublishingLeavesASegmentOpenRefuses) {
  const std::string name = UniqueName();
  const int rc = WaitChild(ForkChild([&] {
    // SIGKILL half-way: after the body is written, before the header.
    (void)Segment::Create(Spec(name), [](void* base, std::size_t size) {
      std::memset(base, 0xee, size);
      ::raise(SIGKILL);
      return Status::Ok();
    });
    return 0;
  }));
  ASSERT_EQ(rc, 128 + SIGKILL);
  EXPECT_TRUE(Segment::Exists(name));
  Result<Segment> seg = Segment::Open(name, Expect());
  EXPECT_EQ(seg.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(seg.status().message(), HasSubstr("creator died"));
  EXPECT_TRUE(Segment::Remove(name).ok());
  EXPECT_TRUE(Segment::Create(Spec(name)).ok());
}

// Makes a /dev/shm object by hand, of `size` bytes filled with `fill`.
void MakeForeignObject(const std::string& name, std::size_t size, char fill) {
  const int fd =
      ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  const std::string bytes(size, fill);
  ASSERT_EQ(::pwrite(fd, bytes.data(), size, 0), static_cast<ssize_t>(size));
  ::close(fd);
}

TEST(Segment, ForeignObjectIsCorruption) {
  const std::string name = UniqueName();
  MakeForeignObject(name, 4096, 'x');
  Result<Segment> seg = Segment::Open(name, Expect());
  EXPECT_EQ(seg.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(seg.status().message(), HasSubstr("/" + name));
}

TEST(Segment, ObjectSmallerThanTheHeaderIsCorruption) {
  const std::string name = UniqueName();
  MakeForeignObject(name, 100, '\0');
  Result<Segment> seg = Segment::Open(name, Expect());
  EXPECT_EQ(seg.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(seg.status().message(), HasSubstr("/" + name));
  EXPECT_THAT(seg.status().message(), HasSubstr("100 bytes"));

  const std::string empty = UniqueName();
  MakeForeignObject(empty, 0, '\0');
  EXPECT_EQ(Segment::Open(empty, Expect()).status().code(),
            StatusCode::kCorruption);
}

TEST(Segment, SizeDifferentFromTheFileIsCorruption) {
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  const int fd = ::shm_open(("/" + name).c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 2 * kSize), 0);
  ::close(fd);
  Result<Segment> seg = Segment::Open(name, Expect());
  EXPECT_EQ(seg.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(seg.status().message(), HasSubstr(std::to_string(kSize)));
  EXPECT_THAT(seg.status().message(), HasSubstr(std::to_string(2 * kSize)));
}

TEST(Segment, OtherLayoutVersionIsVersionMismatchNamingBoth) {
  const std::string name = UniqueName(".ctl");
  SegmentSpec spec = Spec(name);
  spec.layout_version = 3;
  ASSERT_TRUE(Segment::Create(spec).ok());
  Result<Segment> seg =
      Segment::Open(name, {SegmentKind::kControl, 4, kSignature});
  EXPECT_EQ(seg.status().code(), StatusCode::kVersionMismatch);
  EXPECT_THAT(seg.status().message(),
              HasSubstr("segment '/" + name +
                        "' has layout version 3, this build reads 4"));
}

TEST(Segment, OtherLayoutSignatureIsVersionMismatch) {
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  Result<Segment> seg =
      Segment::Open(name, {SegmentKind::kControl, kVersion, kSignature + 1});
  EXPECT_EQ(seg.status().code(), StatusCode::kVersionMismatch);
  EXPECT_THAT(seg.status().message(), HasSubstr("/" + name));
  EXPECT_THAT(seg.status().message(), HasSubstr("0x5157a7e5c0ffee01"));
  EXPECT_THAT(seg.status().message(), HasSubstr("0x5157a7e5c0ffee02"));
}

TEST(Segment, OtherHeaderSizeIsVersionMismatch) {
  const std::string name = UniqueName();
  Result<Segment> created = Segment::Create(Spec(name));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  *created->At<std::uint32_t>(offsetof(SegmentHeader, header_size)) = 512;
  EXPECT_EQ(Segment::Open(name, Expect()).status().code(),
            StatusCode::kVersionMismatch);
}

TEST(Segment, KindMismatchIsInvalidArgument) {
  const std::string name = UniqueName(".data");
  ASSERT_TRUE(Segment::Create(Spec(name, kSize, SegmentKind::kData)).ok());
  Result<Segment> seg = Segment::Open(name, Expect(SegmentKind::kControl));
  EXPECT_EQ(seg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(seg.status().message(), HasSubstr("/" + name));
  EXPECT_THAT(seg.status().message(), HasSubstr("data"));
  EXPECT_THAT(seg.status().message(), HasSubstr("control"));
  EXPECT_TRUE(Segment::Open(name, Expect(SegmentKind::kData)).ok());
}

// --- permissions -----------------------------------------------------------

TEST(Segment, ModeIs0600RegardlessOfUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{077}, mode_t{0777}}) {
    ScopedUmask umask(mask);
    const std::string name = UniqueName();
    ASSERT_TRUE(Segment::Create(Spec(name)).ok());
    const struct stat st = StatOf(name);
    EXPECT_EQ(st.st_mode & 07777, 0600U) << "umask " << std::oct << mask;
    EXPECT_EQ(st.st_uid, ::geteuid());
  }
}

TEST(Segment, GroupSegmentIs0660AndBelongsToTheGroup) {
  const std::optional<gid_t> group = NoGroup();
  if (!group) GTEST_SKIP() << "no 'nogroup' or 'nobody' group";
  if (::geteuid() != 0) {
    GTEST_SKIP() << "only root may give a segment to a group it is not in";
  }
  ScopedUmask umask(077);  // would turn 0660 into 0600 if it applied
  const std::string name = UniqueName();
  SegmentSpec spec = Spec(name);
  spec.access = {0660, *group};
  Result<Segment> seg = Segment::Create(spec);
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  const struct stat st = StatOf(name);
  EXPECT_EQ(st.st_mode & 07777, 0660U);
  EXPECT_EQ(st.st_gid, *group);
  EXPECT_EQ(seg->header().mode, 0660U);
  EXPECT_EQ(seg->header().owner_gid, *group);
}

TEST(Segment, LookupGroupFindsRootAndRejectsUnknownNames) {
  Result<gid_t> root = LookupGroup("root");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(*root, 0U);
  Result<gid_t> missing = LookupGroup("numagrid-no-such-group");
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "no such group 'numagrid-no-such-group'");
  EXPECT_EQ(LookupGroup("").status().code(), StatusCode::kInvalidArgument);
}

TEST(Segment, ProcessOfAnotherUserIsDeniedA0600Segment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  const auto nobody = NobodyUser();
  const int rc = OpenAs(name, nobody.uid, nobody.gid, {});
  if (rc == kCannotDrop) GTEST_SKIP() << "cannot drop to uid " << nobody.uid;
  EXPECT_EQ(rc, CodeOf(StatusCode::kPermissionDenied));
}

TEST(Segment, PermissionDeniedMessageNamesModeOwnerAndCaller) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  const auto nobody = NobodyUser();
  // The child checks the message and reports through its exit code.
  const int rc = WaitChild(ForkChild([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody.gid) != 0 ||
        ::setuid(nobody.uid) != 0) {
      return kCannotDrop;
    }
    Result<Segment> seg = Segment::Open(name, Expect());
    const Status status = seg.status();
    const std::string& m = status.message();
    const bool good =
        status.code() == StatusCode::kPermissionDenied &&
        m.find("'/" + name + "'") != std::string::npos &&
        m.find("mode 0600") != std::string::npos &&
        m.find("owner uid 0") != std::string::npos &&
        m.find("uid " + std::to_string(nobody.uid)) != std::string::npos;
    if (!good) std::fprintf(stderr, "message: %s\n", m.c_str());
    return good ? 0 : 1;
  }));
  if (rc == kCannotDrop) GTEST_SKIP() << "cannot drop to uid " << nobody.uid;
  EXPECT_EQ(rc, 0);
}

TEST(Segment, MemberOfTheGroupCanOpenAGroupSegment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const std::optional<gid_t> group = NoGroup();
  if (!group) GTEST_SKIP() << "no 'nogroup' or 'nobody' group";
  const std::string name = UniqueName();
  SegmentSpec spec = Spec(name);
  spec.access = {0660, *group};
  ASSERT_TRUE(Segment::Create(spec).ok());
  const auto nobody = NobodyUser();

  // As a supplementary group, and as the primary group.
  int rc = OpenAs(name, nobody.uid, 4242, {*group});
  if (rc == kCannotDrop) GTEST_SKIP() << "cannot drop to uid " << nobody.uid;
  EXPECT_EQ(rc, CodeOf(StatusCode::kOk));
  EXPECT_EQ(OpenAs(name, nobody.uid, *group, {}), CodeOf(StatusCode::kOk));
}

TEST(Segment, NonMemberIsDeniedAGroupSegment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const std::optional<gid_t> group = NoGroup();
  if (!group) GTEST_SKIP() << "no 'nogroup' or 'nobody' group";
  const std::string name = UniqueName();
  SegmentSpec spec = Spec(name);
  spec.access = {0660, *group};
  ASSERT_TRUE(Segment::Create(spec).ok());
  const auto nobody = NobodyUser();
  const int rc = OpenAs(name, nobody.uid, 4242, {});
  if (rc == kCannotDrop) GTEST_SKIP() << "cannot drop to uid " << nobody.uid;
  EXPECT_EQ(rc, CodeOf(StatusCode::kPermissionDenied));
}

TEST(Segment, ProcessOfAnotherUserCannotRemoveTheSegment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const std::string name = UniqueName();
  ASSERT_TRUE(Segment::Create(Spec(name)).ok());
  const auto nobody = NobodyUser();
  const int rc = WaitChild(ForkChild([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody.gid) != 0 ||
        ::setuid(nobody.uid) != 0) {
      return kCannotDrop;
    }
    return static_cast<int>(Segment::Remove(name).code());
  }));
  if (rc == kCannotDrop) GTEST_SKIP() << "cannot drop to uid " << nobody.uid;
  EXPECT_EQ(rc, CodeOf(StatusCode::kPermissionDenied));
  EXPECT_TRUE(Segment::Exists(name));
}

}  // namespace
}  // namespace numagrid::shm
