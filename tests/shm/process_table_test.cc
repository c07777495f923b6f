// Tests for shm/lock_file.h and shm/process_table.h: byte locks between open
// file descriptions and across fork(), claiming and releasing slots, the
// epoch operations, detection and repair of slots whose owner was killed,
// and stress tests of the reclamation argument (threads, for TSan, and
// forked processes). The table lives in a memfd mapped twice (two addresses,
// as in two processes); lock files are /dev/shm/<UniqueName()>.lock.
//
// Randomized tests print their seed; set NUMAGRID_TEST_SEED to replay one.
#include "shm/process_table.h"

#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <limits>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "numagrid/status.h"
#include "shm/lock_file.h"
#include "tests/support/test_grid.h"

namespace numagrid::shm {
namespace {

using ::numagrid::testing::ForkChild;
using ::numagrid::testing::NobodyUser;
using ::numagrid::testing::UniqueName;
using ::numagrid::testing::WaitChild;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::uint64_t kNoPin = std::numeric_limits<std::uint64_t>::max();
// Exit code of a child that could not drop its privileges.
constexpr int kCannotDrop = 77;

// A memfd mapped twice, at two addresses, shared with forked children.
class TwoMappings {
 public:
  explicit TwoMappings(std::uint64_t bytes) : bytes_(bytes) {
    fd_ = ::memfd_create("process_table_test", MFD_CLOEXEC);
    if (fd_ < 0 || ::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) {
      std::abort();
    }
    a_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    b_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (a_ == MAP_FAILED || b_ == MAP_FAILED) std::abort();
  }
  TwoMappings(const TwoMappings&) = delete;
  TwoMappings& operator=(const TwoMappings&) = delete;
  ~TwoMappings() {
    ::munmap(a_, bytes_);
    ::munmap(b_, bytes_);
    ::close(fd_);
  }
  void* a() const { return a_; }
  void* b() const { return b_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  std::uint64_t bytes_;
  int fd_ = -1;
  void* a_ = nullptr;
  void* b_ = nullptr;
};

// An initialized table of `capacity` slots, viewed through both mappings, and
// its lock file (created; `watch` is a handle that holds no byte, like the
// watchdog's).
struct Grid {
  explicit Grid(std::uint32_t capacity)
      : mem(ProcessTable::BytesFor(capacity)),
        lock_path("/dev/shm/" + UniqueName(".lock")),
        a(InitializeAndView(mem, capacity)),
        b(ProcessTable::View(mem.b(), mem.bytes()).value()),
        watch(LockFile::Create(lock_path, 0600, std::nullopt).value()) {}

  static ProcessTable InitializeAndView(const TwoMappings& m,
                                        std::uint32_t capacity) {
    ProcessTable::Initialize(m.a(), capacity);
    return ProcessTable::View(m.a(), m.bytes()).value();
  }
  // A new open file description of the lock file: "another process".
  LockFile Open() const { return LockFile::Open(lock_path).value(); }
  // The slot, writable, for simulating what a killed process leaves.
  ProcessSlot& Raw(std::uint32_t i) const {
    return reinterpret_cast<ProcessSlot*>(static_cast<std::byte*>(mem.a()) +
                                          sizeof(ProcessTableHeader))[i];
  }

  TwoMappings mem;
  std::string lock_path;
  ProcessTable a;  // through mapping a
  ProcessTable b;  // through mapping b, at another address
  LockFile watch;
};

// A pipe for a child to report to its parent, and for the parent to release
// a waiting child (by closing its end).
class Pipe {
 public:
  Pipe() {
    if (::pipe(fds_.data()) != 0) std::abort();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  void CloseRead() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    fds_[0] = -1;
  }
  void CloseWrite() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  bool Send(std::uint64_t v) {
    return ::write(fds_[1], &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v));
  }
  // false on EOF (the other end closed, or the writer died).
  bool Receive(std::uint64_t* v) {
    std::size_t got = 0;
    auto* p = reinterpret_cast<char*>(v);
    while (got < sizeof(*v)) {
      const ssize_t n = ::read(fds_[0], p + got, sizeof(*v) - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Blocks until the other end is closed (or something is sent).
  void WaitForClose() {
    char c;
    while (::read(fds_[0], &c, 1) < 0 && errno == EINTR) {
    }
  }

 private:
  std::array<int, 2> fds_ = {-1, -1};
};

std::uint64_t TestSeed() {
  static const std::uint64_t seed = [] {
    // Read once, before any thread starts.
    const char* env =
        std::getenv("NUMAGRID_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
    const std::uint64_t s = env != nullptr ? std::strtoull(env, nullptr, 0)
                                           : std::random_device{}();
    std::cout << "[ seed     ] NUMAGRID_TEST_SEED=" << s << std::endl;
    return s;
  }();
  return seed;
}

// Busy work standing in for a read of shared data.
void Spin(std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i) {
    asm volatile("" ::: "memory");
  }
}

// ---------------------------------------------------------------------------
// LockFile

TEST(LockFile, CreateIsExclusive) {
  const std::string path = "/dev/shm/" + UniqueName(".lock");
  Result<LockFile> first = LockFile::Create(path, 0600, std::nullopt);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<LockFile> second = LockFile::Create(path, 0600, std::nullopt);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr(path));
}

TEST(LockFile, CreateAppliesModeAndGroupDespiteUmask) {
  const std::string path = "/dev/shm/" + UniqueName(".lock");
  const mode_t old_umask = ::umask(077);
  Result<LockFile> lf = LockFile::Create(path, 0660, ::getegid());
  ::umask(old_umask);
  ASSERT_TRUE(lf.ok()) << lf.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660U);
  EXPECT_EQ(st.st_gid, ::getegid());
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(LockFile, CreateRefusesAModeTheOwnerCannotUse) {
  const std::string path = "/dev/shm/" + UniqueName(".lock");
  for (std::uint32_t mode : {0400U, 04600U, 0200U}) {
    Result<LockFile> lf = LockFile::Create(path, mode, std::nullopt);
    ASSERT_FALSE(lf.ok());
    EXPECT_EQ(lf.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "nothing is left behind";
}

TEST(LockFile, OpenOfAMissingFileIsNotFound) {
  Result<LockFile> lf =
      LockFile::Open("/dev/shm/" + UniqueName(".missing.lock"));
  ASSERT_FALSE(lf.ok());
  EXPECT_EQ(lf.status().code(), StatusCode::kNotFound);
}

TEST(LockFile, OpenWithoutPermissionIsDenied) {
  const std::string path = "/dev/shm/" + UniqueName(".lock");
  ASSERT_TRUE(LockFile::Create(path, 0600, std::nullopt).ok());
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(path.c_str(), 0), 0);
    Result<LockFile> lf = LockFile::Open(path);
    ASSERT_FALSE(lf.ok());
    EXPECT_EQ(lf.status().code(), StatusCode::kPermissionDenied);
    return;
  }
  const auto nobody = NobodyUser();
  const int rc = WaitChild(ForkChild([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(nobody.gid) != 0 ||
        ::setuid(nobody.uid) != 0) {
      return kCannotDrop;
    }
    Result<LockFile> lf = LockFile::Open(path);
    if (lf.ok()) return 1;
    if (lf.status().code() != StatusCode::kPermissionDenied) return 2;
    if (lf.status().message().find("mode 0600") == std::string::npos) return 3;
    return 0;
  }));
  if (rc == kCannotDrop) GTEST_SKIP() << "cannot drop to uid " << nobody.uid;
  EXPECT_EQ(rc, 0);
}

TEST(LockFile, TwoDescriptionsExcludeEachOther) {
  Grid g(4);
  LockFile one = g.Open();
  LockFile two = g.Open();
  EXPECT_TRUE(one.TryLockByte(3));
  EXPECT_FALSE(two.TryLockByte(3));
  EXPECT_TRUE(two.TryLockByte(4)) << "locks are per byte";
  EXPECT_TRUE(two.IsByteLocked(3));
  EXPECT_FALSE(one.IsByteLocked(3)) << "its own lock does not count";
  EXPECT_TRUE(one.HoldsByte(3));
  EXPECT_FALSE(two.HoldsByte(3));
  one.UnlockByte(3);
  EXPECT_FALSE(two.IsByteLocked(3));
  EXPECT_TRUE(two.TryLockByte(3));
}

TEST(LockFile, ABytesIsTakenOnceEvenThroughOneHandle) {
  Grid g(4);
  LockFile one = g.Open();
  EXPECT_TRUE(one.TryLockByte(1));
  EXPECT_FALSE(one.TryLockByte(1));
  one.UnlockByte(1);
  EXPECT_TRUE(one.TryLockByte(1));
  EXPECT_FALSE(one.TryLockByte(LockFile::kMaxBytes));
}

TEST(LockFile, ClosingReleasesEveryByteAndMovingKeepsThem) {
  Grid g(4);
  LockFile other = g.Open();
  {
    LockFile one = g.Open();
    ASSERT_TRUE(one.TryLockByte(0));
    ASSERT_TRUE(one.TryLockByte(2));
    LockFile moved = std::move(one);
    EXPECT_EQ(one.fd(), -1);  // NOLINT(bugprone-use-after-move): tested
    EXPECT_TRUE(moved.HoldsByte(2));
    EXPECT_TRUE(other.IsByteLocked(0));
    EXPECT_TRUE(other.IsByteLocked(2));
  }
  EXPECT_FALSE(other.IsByteLocked(0));
  EXPECT_FALSE(other.IsByteLocked(2));
}

TEST(LockFile, AnEmptyHandleLocksNothingAndCallsEverythingLocked) {
  LockFile empty;
  EXPECT_EQ(empty.fd(), -1);
  EXPECT_FALSE(empty.TryLockByte(0));
  EXPECT_TRUE(empty.IsByteLocked(0));
  EXPECT_FALSE(empty.HoldsByte(0));
  empty.UnlockByte(0);
}

TEST(LockFile, AForkedChildNeitherInheritsNorDropsItsParentsLocks) {
  Grid g(4);
  LockFile parent = g.Open();
  ASSERT_TRUE(parent.TryLockByte(3));
  const int rc = WaitChild(ForkChild([&] {
    if (parent.fd() != -1) return 1;  // closed in the child
    if (parent.HoldsByte(3)) return 2;
    parent.UnlockByte(3);  // must not drop the parent's lock
    if (parent.TryLockByte(3)) return 3;
    Result<LockFile> own = LockFile::Open(g.lock_path);
    if (!own.ok()) return 4;
    if (own->TryLockByte(3)) return 5;  // the parent holds it
    if (!own->IsByteLocked(3)) return 6;
    return 0;
  }));
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(parent.HoldsByte(3));
  EXPECT_TRUE(g.watch.IsByteLocked(3));
}

TEST(LockFile, ALockDiesWithItsProcessEvenIfItForkedAChild) {
  Grid g(4);
  Pipe report;
  const pid_t owner = ForkChild([&] {
    Result<LockFile> own = LockFile::Open(g.lock_path);
    if (!own.ok() || !own->TryLockByte(5)) return 1;
    if (::fork() == 0) {
      // Past fork(), so the fork handler has closed the lock file here; the
      // grandchild lives on with a copy of every other descriptor.
      report.Send(static_cast<std::uint64_t>(::getpid()));
      ::pause();
      ::_exit(0);
    }
    ::pause();
    return 0;
  });
  std::uint64_t grandchild = 0;
  ASSERT_TRUE(report.Receive(&grandchild));
  EXPECT_TRUE(g.watch.IsByteLocked(5));
  ::kill(owner, SIGKILL);
  EXPECT_EQ(WaitChild(owner), 128 + SIGKILL);
  EXPECT_EQ(::kill(static_cast<pid_t>(grandchild), 0), 0) << "still alive";
  EXPECT_FALSE(g.watch.IsByteLocked(5));
  ::kill(static_cast<pid_t>(grandchild), SIGKILL);
}

// ---------------------------------------------------------------------------
// ProcessTable: layout, Initialize and View

TEST(ProcessTable, BytesForIsTheHeaderAndOneCacheLinePerSlot) {
  EXPECT_EQ(ProcessTable::BytesFor(1), 128U);
  EXPECT_EQ(ProcessTable::BytesFor(100), 64U + 6400U);
  EXPECT_NE(kProcessTableLayoutSignature, LayoutSignature().value());
}

TEST(ProcessTable, InitializedTableIsSeenThroughAnotherMapping) {
  Grid g(8);
  EXPECT_NE(g.mem.a(), g.mem.b());
  EXPECT_EQ(g.b.capacity(), 8U);
  EXPECT_EQ(g.b.GlobalEpoch(), 1U);
  EXPECT_EQ(g.b.MinPinnedEpoch(), kNoPin);
  for (std::uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(g.b.slot(i).state.load(), kSlotFree);
    EXPECT_EQ(g.b.slot(i).pid.load(), 0U);
    EXPECT_EQ(g.b.slot(i).generation.load(), 0U);
  }
  LockFile p = g.Open();
  Result<std::uint32_t> s = g.a.Claim(p);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(g.b.slot(*s).state.load(), kSlotClaimed);
  g.a.Pin(*s);
  EXPECT_EQ(g.b.MinPinnedEpoch(), 1U);
  g.a.Unpin(*s);
}

TEST(ProcessTable, ViewRefusesBytesThatCannotHoldTheTable) {
  TwoMappings mem(4096);
  ProcessTable::Initialize(mem.a(), 4);
  EXPECT_TRUE(ProcessTable::View(mem.a(), ProcessTable::BytesFor(4)).ok());
  EXPECT_TRUE(ProcessTable::View(mem.a(), 4096).ok())
      << "room to spare is fine";
  auto code = [&](void* at, std::uint64_t bytes) {
    return ProcessTable::View(at, bytes).status().code();
  };
  EXPECT_EQ(code(mem.a(), 63), StatusCode::kCorruption);
  EXPECT_EQ(code(mem.a(), ProcessTable::BytesFor(4) - 1),
            StatusCode::kCorruption);
  EXPECT_EQ(code(nullptr, 4096), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(static_cast<std::byte*>(mem.a()) + 8, 1024),
            StatusCode::kInvalidArgument);

  auto* header = static_cast<ProcessTableHeader*>(mem.a());
  header->capacity = 0;
  EXPECT_EQ(code(mem.a(), 4096), StatusCode::kCorruption);
  header->capacity = ProcessTable::kMaxCapacity + 1;
  EXPECT_EQ(code(mem.a(), std::uint64_t{1} << 30), StatusCode::kCorruption);
  header->capacity = 1000;  // would need 64064 bytes
  Result<ProcessTable> v = ProcessTable::View(mem.a(), 4096);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(v.status().message(), HasSubstr("1000 slots need 64064 bytes"));
  header->capacity = 4;
  header->global_epoch.store(0);
  EXPECT_EQ(code(mem.a(), 4096), StatusCode::kCorruption);

  TwoMappings zeroed(4096);
  EXPECT_EQ(code(zeroed.a(), 4096), StatusCode::kCorruption);
}

// ---------------------------------------------------------------------------
// Claim and Release

TEST(ProcessTable, ClaimGivesDistinctSlotsUntilFull) {
  Grid g(3);
  std::vector<LockFile> procs;
  std::vector<std::uint32_t> slots;
  for (int i = 0; i < 3; ++i) {
    procs.push_back(g.Open());
    Result<std::uint32_t> s = g.a.Claim(procs.back());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    slots.push_back(*s);
  }
  std::sort(slots.begin(), slots.end());
  EXPECT_THAT(slots, ElementsAre(0U, 1U, 2U));
  LockFile late = g.Open();
  Result<std::uint32_t> full = g.b.Claim(late);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(),
              HasSubstr("all 3 process slots of the grid are in use"));
  // One handle may hold several slots (one per reading thread), still
  // distinct, until the table is full.
  Grid h(2);
  LockFile one = h.Open();
  Result<std::uint32_t> x = h.a.Claim(one);
  Result<std::uint32_t> y = h.a.Claim(one);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_NE(*x, *y);
  EXPECT_EQ(h.a.Claim(one).status().code(), StatusCode::kResourceExhausted);
}

TEST(ProcessTable, ClaimFillsPidStartTimeAndANewGeneration) {
  Grid g(2);
  LockFile p = g.Open();
  Result<std::uint32_t> s = g.a.Claim(p);
  ASSERT_TRUE(s.ok());
  const ProcessSlot& slot = g.b.slot(*s);
  EXPECT_EQ(slot.state.load(), kSlotClaimed);
  EXPECT_EQ(slot.pid.load(), static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(slot.start_time_ticks.load(), ReadProcessStartTicks(::getpid()));
  EXPECT_NE(slot.start_time_ticks.load(), 0U);
  EXPECT_EQ(slot.generation.load(), 1U);
  EXPECT_EQ(slot.pinned_epoch.load(), 0U);
  EXPECT_TRUE(p.HoldsByte(*s));
  EXPECT_TRUE(g.watch.IsByteLocked(*s));
  g.a.Release(*s, p);
  ASSERT_EQ(g.a.Claim(p).value(), *s);
  EXPECT_EQ(slot.generation.load(), 2U);
}

TEST(ProcessTable, ReleaseFreesTheSlotForTheNextClaim) {
  Grid g(1);
  LockFile first = g.Open();
  LockFile second = g.Open();
  Result<std::uint32_t> s = g.a.Claim(first);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(g.b.Claim(second).ok());
  g.a.Release(*s, first);
  EXPECT_EQ(g.b.slot(0).state.load(), kSlotFree);
  EXPECT_EQ(g.b.slot(0).pid.load(), 0U);
  EXPECT_FALSE(first.HoldsByte(0));
  EXPECT_FALSE(g.watch.IsByteLocked(0));
  EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
  Result<std::uint32_t> again = g.b.Claim(second);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0U);
}

TEST(ProcessTable, ReleaseOfASlotTheHandleDoesNotHoldChangesNothing) {
  Grid g(2);
  LockFile owner = g.Open();
  LockFile stranger = g.Open();
  Result<std::uint32_t> s = g.a.Claim(owner);
  ASSERT_TRUE(s.ok());
  g.a.Release(*s, stranger);
  g.a.Release(99, stranger);
  EXPECT_EQ(g.b.slot(*s).state.load(), kSlotClaimed);
  EXPECT_TRUE(g.watch.IsByteLocked(*s));
}

// ---------------------------------------------------------------------------
// Epochs

TEST(ProcessTable, GlobalEpochStartsAtOneAndAdvanceGrowsIt) {
  Grid g(1);
  EXPECT_EQ(g.a.GlobalEpoch(), 1U);
  EXPECT_EQ(g.a.AdvanceEpoch(), 2U);
  EXPECT_EQ(g.b.AdvanceEpoch(), 3U);
  EXPECT_EQ(g.a.GlobalEpoch(), 3U);
  EXPECT_EQ(g.b.GlobalEpoch(), 3U);
}

TEST(ProcessTable, MinPinnedEpochIsTheSmallestPinOrMaxWhenNone) {
  Grid g(4);
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  std::vector<LockFile> procs;
  std::vector<std::uint32_t> slots;
  for (int i = 0; i < 3; ++i) {
    procs.push_back(g.Open());
    slots.push_back(g.a.Claim(procs.back()).value());
  }
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin) << "claimed is not pinned";
  g.a.AdvanceEpoch();  // 2
  g.a.Pin(slots[1]);   // pins 2
  EXPECT_EQ(g.b.slot(slots[1]).pinned_epoch.load(), 2U);
  g.a.AdvanceEpoch();  // 3
  g.b.Pin(slots[0]);   // pins 3
  g.a.AdvanceEpoch();  // 4
  g.a.Pin(slots[2]);   // pins 4
  EXPECT_EQ(g.b.MinPinnedEpoch(), 2U);
  g.a.Unpin(slots[1]);
  EXPECT_EQ(g.b.MinPinnedEpoch(), 3U);
  g.b.Unpin(slots[0]);
  EXPECT_EQ(g.b.MinPinnedEpoch(), 4U);
  g.a.Unpin(slots[2]);
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  EXPECT_EQ(g.b.slot(slots[2]).pinned_epoch.load(), 0U);
}

// ---------------------------------------------------------------------------
// Death, detection and repair

// A child that opens the lock file, claims a slot, pins the current epoch,
// reports (slot, epoch) and then waits for `release` to close (or to be
// killed). If `release` closes, it unpins and releases and exits 0.
pid_t StartPinnedChild(const Grid& g, Pipe& report, Pipe& release) {
  return ForkChild([&] {
    release.CloseWrite();
    Result<LockFile> own = LockFile::Open(g.lock_path);
    if (!own.ok()) return 1;
    Result<ProcessTable> table = ProcessTable::View(g.mem.b(), g.mem.bytes());
    if (!table.ok()) return 2;
    Result<std::uint32_t> slot = table->Claim(*own);
    if (!slot.ok()) return 3;
    table->Pin(*slot);
    report.Send(*slot);
    report.Send(table->slot(*slot).pinned_epoch.load());
    release.WaitForClose();
    table->Unpin(*slot);
    table->Release(*slot, *own);
    return 0;
  });
}

TEST(ProcessTable, KilledPinnedChildIsReportedDeadUntilRepaired) {
  Grid g(1);
  g.a.AdvanceEpoch();
  g.a.AdvanceEpoch();  // 3
  Pipe report;
  Pipe release;
  const pid_t child = StartPinnedChild(g, report, release);
  std::uint64_t slot = 0;
  std::uint64_t pinned = 0;
  ASSERT_TRUE(report.Receive(&slot));
  ASSERT_TRUE(report.Receive(&pinned));
  EXPECT_EQ(pinned, 3U);
  EXPECT_EQ(g.a.slot(0).pid.load(), static_cast<std::uint32_t>(child));

  ::kill(child, SIGKILL);
  ASSERT_EQ(WaitChild(child), 128 + SIGKILL);
  g.a.AdvanceEpoch();
  EXPECT_THAT(g.a.DeadSlots(g.watch), ElementsAre(0U));
  EXPECT_EQ(g.a.MinPinnedEpoch(), 3U)
      << "a dead reader's pin holds until repair";
  EXPECT_EQ(g.a.slot(0).state.load(), kSlotClaimed);

  EXPECT_TRUE(g.a.RepairDeadSlot(0, g.watch));
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
  EXPECT_EQ(g.a.slot(0).state.load(), kSlotFree);
  EXPECT_EQ(g.a.slot(0).pid.load(), 0U);
  EXPECT_FALSE(g.watch.HoldsByte(0)) << "the repairer let the byte go";
  EXPECT_TRUE(g.a.RepairDeadSlot(0, g.watch)) << "idempotent";

  LockFile next = g.Open();
  Result<std::uint32_t> again = g.b.Claim(next);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 0U);
  EXPECT_EQ(g.a.slot(0).generation.load(), 2U);
}

TEST(ProcessTable, ClaimTakesOverAKilledChildsSlotAndClearsItsPin) {
  Grid g(1);
  Pipe report;
  Pipe release;
  const pid_t child = StartPinnedChild(g, report, release);
  std::uint64_t slot = 0;
  ASSERT_TRUE(report.Receive(&slot));
  ::kill(child, SIGKILL);
  ASSERT_EQ(WaitChild(child), 128 + SIGKILL);
  LockFile next = g.Open();
  Result<std::uint32_t> s = g.a.Claim(next);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  EXPECT_EQ(g.a.slot(0).pid.load(), static_cast<std::uint32_t>(::getpid()));
  EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
}

TEST(ProcessTable, LiveChildsSlotIsNeverReportedDeadNorRepaired) {
  Grid g(2);
  Pipe report;
  Pipe release;
  const pid_t child = StartPinnedChild(g, report, release);
  release.CloseRead();
  std::uint64_t slot = 0;
  std::uint64_t pinned = 0;
  ASSERT_TRUE(report.Receive(&slot));
  ASSERT_TRUE(report.Receive(&pinned));
  const auto s = static_cast<std::uint32_t>(slot);
  for (int i = 0; i < 100; ++i) {
    EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
    EXPECT_FALSE(g.b.RepairDeadSlot(s, g.watch));
  }
  EXPECT_EQ(g.a.slot(s).state.load(), kSlotClaimed);
  EXPECT_EQ(g.a.MinPinnedEpoch(), pinned);
  LockFile other = g.Open();
  Result<std::uint32_t> mine = g.a.Claim(other);
  ASSERT_TRUE(mine.ok());
  EXPECT_NE(*mine, s);
  release.CloseWrite();
  EXPECT_EQ(WaitChild(child), 0);
  EXPECT_EQ(g.a.slot(s).state.load(), kSlotFree);
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
}

TEST(ProcessTable, DeadSlotsSkipsTheCheckersOwnSlotAndRepairRefusesIt) {
  Grid g(2);
  Result<std::uint32_t> s = g.a.Claim(g.watch);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
  EXPECT_FALSE(g.a.RepairDeadSlot(*s, g.watch));
  EXPECT_EQ(g.a.slot(*s).state.load(), kSlotClaimed);
  EXPECT_FALSE(g.a.RepairDeadSlot(7, g.watch)) << "out of range";
}

// The owner dies after taking the byte but before (or while) filling the
// slot: the kernel drops the lock, and nothing is left that blocks anyone.
TEST(ProcessTable, ChildDyingBetweenLockAndFillLeavesNothingBlocking) {
  enum Leftover { kNothing, kPidOnly, kClaimedWithoutPid };
  for (Leftover leftover : {kNothing, kPidOnly, kClaimedWithoutPid}) {
    SCOPED_TRACE(leftover);
    Grid g(1);
    const int rc = WaitChild(ForkChild([&] {
      Result<LockFile> own = LockFile::Open(g.lock_path);
      if (!own.ok() || !own->TryLockByte(0)) return 1;
      ProcessSlot& s = g.Raw(0);
      if (leftover == kPidOnly) {
        s.generation.fetch_add(1);
        s.pid.store(static_cast<std::uint32_t>(::getpid()));
      } else if (leftover == kClaimedWithoutPid) {
        s.state.store(kSlotClaimed);
      }
      ::_exit(0);  // exits holding the byte
      return 0;
    }));
    ASSERT_EQ(rc, 0);
    EXPECT_FALSE(g.watch.IsByteLocked(0));
    EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
    if (leftover == kClaimedWithoutPid) {
      EXPECT_THAT(g.a.DeadSlots(g.watch), ElementsAre(0U));
    } else {
      EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
    }
    LockFile next = g.Open();
    Result<std::uint32_t> s = g.b.Claim(next);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(*s, 0U);
    EXPECT_EQ(g.a.slot(0).pid.load(), static_cast<std::uint32_t>(::getpid()));
    EXPECT_EQ(g.a.slot(0).state.load(), kSlotClaimed);
    EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
  }
}

// What a process killed inside Release or RepairDeadSlot leaves (a prefix of
// ClearSlot: pin, pid, state), and values no code writes (INV1 broken, a
// corrupt state), are all reported and repaired.
TEST(ProcessTable, HalfClearedAndCorruptSlotsAreReportedAndRepaired) {
  Grid g(4);
  g.Raw(0).state.store(kSlotClaimed);  // pin and pid cleared, state not yet
  g.Raw(1).state.store(kSlotFree);     // unreachable: free but pinned
  g.Raw(1).pinned_epoch.store(1);
  g.Raw(2).state.store(7);    // corrupt
  g.Raw(3).pid.store(12345);  // stale pid only: blocks nothing
  EXPECT_EQ(g.a.MinPinnedEpoch(), 1U);
  EXPECT_THAT(g.a.DeadSlots(g.watch), ElementsAre(0U, 1U, 2U));
  for (std::uint32_t i : g.a.DeadSlots(g.watch)) {
    EXPECT_TRUE(g.a.RepairDeadSlot(i, g.watch));
  }
  EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(g.a.slot(i).state.load(), kSlotFree);
  }
}

TEST(ProcessTable, ForkedChildCannotReleaseItsParentsSlot) {
  Grid g(2);
  LockFile mine = g.Open();
  Result<std::uint32_t> s = g.a.Claim(mine);
  ASSERT_TRUE(s.ok());
  // E.g. an RAII handle destroyed in a child that exits normally.
  ASSERT_EQ(WaitChild(ForkChild([&] {
              g.a.Release(*s, mine);
              return 0;
            })),
            0);
  EXPECT_EQ(g.a.slot(*s).state.load(), kSlotClaimed);
  EXPECT_TRUE(g.watch.IsByteLocked(*s));
  EXPECT_THAT(g.a.DeadSlots(g.watch), IsEmpty());
}

// ---------------------------------------------------------------------------
// Stress: the reclamation argument under concurrency

// Readers pin and unpin in a loop and publish their pinned epoch (in a
// process-local atomic) before their "read"; a checker advances the epoch and
// checks that MinPinnedEpoch never exceeds the epoch of a reader that stayed
// inside one read across the whole scan.
TEST(ProcessTable, MinPinnedEpochNeverExceedsAPinnedReadersEpoch) {
  const std::uint64_t seed = TestSeed();
  constexpr int kReaders = 3;
  constexpr int kIterations = 20000;
  Grid g(kReaders + 1);
  struct Reader {
    std::atomic<std::uint64_t> pinned{0};  // 0 outside a read
    std::atomic<std::uint64_t> reads{0};   // completed reads
  };
  std::vector<Reader> readers(kReaders);
  std::atomic<int> running{kReaders};
  std::vector<std::thread> threads;
  threads.reserve(kReaders);
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(r));
      LockFile own = g.Open();
      const std::uint32_t slot = g.a.Claim(own).value();
      for (int i = 0; i < kIterations; ++i) {
        g.a.Pin(slot);
        readers[r].pinned.store(g.a.slot(slot).pinned_epoch.load());
        Spin(static_cast<std::uint32_t>(rng() % 64));
        readers[r].pinned.store(0);
        readers[r].reads.fetch_add(1);
        g.a.Unpin(slot);
      }
      g.a.Release(slot, own);
      running.fetch_sub(1);
    });
  }
  // The checker uses the other mapping (g.b): it checks values only, so
  // TSan, which cannot see that two mappings alias, has nothing to miss.
  std::uint64_t checks = 0;
  std::uint64_t violations = 0;
  std::uint64_t last_epoch = g.b.GlobalEpoch();
  std::mt19937_64 rng(seed);
  while (running.load() > 0) {
    const std::uint64_t e = g.b.AdvanceEpoch();
    if (e <= last_epoch) ++violations;
    last_epoch = e;
    const int r = static_cast<int>(rng() % kReaders);
    const std::uint64_t reads_before = readers[r].reads.load();
    const std::uint64_t pinned = readers[r].pinned.load();
    const std::uint64_t min = g.b.MinPinnedEpoch();
    const std::uint64_t reads_after = readers[r].reads.load();
    if (pinned != 0 && reads_before == reads_after) {
      ++checks;
      if (min > pinned) ++violations;
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations, 0U) << "seed " << seed;
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  std::cout << "[ info     ] " << checks << " checks, epoch " << last_epoch
            << std::endl;
}

// The whole protocol: a writer replaces the current object, retires the old
// one at GlobalEpoch(), and frees (poisons, then reuses) retired objects once
// MinPinnedEpoch() is past their epoch; pinned readers must never see a
// poisoned or changing object. The payload is not atomic, so TSan also
// checks that every free happens after the reads of that object.
TEST(ProcessTable, ReclaimedObjectsAreNeverReadByPinnedReaders) {
  const std::uint64_t seed = TestSeed();
  constexpr int kReaders = 2;
  constexpr int kWrites = 20000;
  // Enough objects that a reader preempted while pinned (3 threads, 2
  // cores) rarely stalls the writer, few enough that each is reused.
  constexpr std::uint32_t kObjects = 2048;
  constexpr std::uint64_t kPoison = 0xdeaddeaddeaddeadULL;
  Grid g(kReaders + 1);
  // One mapping (g.a) for every thread: TSan keys synchronization by
  // address and would miss the release/acquire pairs between two mappings
  // of one page. Two mappings are exercised by the multi-process test.
  std::vector<std::uint64_t> payload(kObjects, kPoison);
  std::atomic<std::uint32_t> current{0};
  payload[0] = 1;
  std::atomic<bool> done{false};
  std::atomic<int> started{0};
  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> threads;
  threads.reserve(kReaders);
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(seed + 100 + static_cast<std::uint64_t>(r));
      LockFile own = g.Open();
      const std::uint32_t slot = g.a.Claim(own).value();
      started.fetch_add(1);
      while (!done.load(std::memory_order_relaxed)) {
        g.a.Pin(slot);
        // acquire: pairs with the writer's exchange, which published the
        // payload written before it.
        const std::uint32_t k = current.load(std::memory_order_acquire);
        const std::uint64_t v1 = payload[k];
        Spin(static_cast<std::uint32_t>(rng() % 128));
        const std::uint64_t v2 = payload[k];
        g.a.Unpin(slot);
        if (v1 == kPoison || v1 != v2) bad.fetch_add(1);
      }
      g.a.Release(slot, own);
    });
  }
  while (started.load() < kReaders) std::this_thread::yield();
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> free_list;
  for (std::uint32_t i = 1; i < kObjects; ++i) free_list.push_back(i);
  struct Retired {
    std::uint32_t object;
    std::uint64_t epoch;
  };
  std::deque<Retired> retired;
  std::uint64_t freed = 0;
  for (int w = 0; w < kWrites;) {
    if (rng() % 2 == 0 || free_list.empty()) {
      g.a.AdvanceEpoch();
      const std::uint64_t min = g.a.MinPinnedEpoch();
      while (!retired.empty() && retired.front().epoch < min) {
        payload[retired.front().object] = kPoison;  // "free"
        free_list.push_back(retired.front().object);
        retired.pop_front();
        ++freed;
      }
    }
    if (free_list.empty()) {
      std::this_thread::yield();  // a reader was preempted while pinned
      continue;
    }
    const std::uint32_t j = free_list.back();
    free_list.pop_back();
    payload[j] = 2 + static_cast<std::uint64_t>(w++);
    // acq_rel: publishes payload[j] to readers (release); the unlink of the
    // old object is then ordered before GlobalEpoch's fence.
    const std::uint32_t old = current.exchange(j, std::memory_order_acq_rel);
    retired.push_back({old, g.a.GlobalEpoch()});
  }
  done.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0U) << "seed " << seed;
  EXPECT_GT(freed, 0U);
}

// The same protocol across processes: readers are forked children, each
// with its own lock file description and its own mapping of the table; the
// objects live in shared memory too.
TEST(ProcessTable, ReclaimedObjectsAreNeverReadByPinnedReaderProcesses) {
  const std::uint64_t seed = TestSeed();
  constexpr int kReaders = 2;
  constexpr std::uint64_t kWrites = 5000;
  // Many objects: a reader preempted while pinned (3 processes, 2 cores)
  // holds every free back for a time slice.
  constexpr std::uint32_t kObjects = 2048;
  constexpr std::uint64_t kPoison = 0xdeaddeaddeaddeadULL;
  Grid g(kReaders + 1);
  struct Shared {
    std::atomic<std::uint32_t> current;
    std::atomic<std::uint32_t> started;
    std::atomic<std::uint32_t> stop;
    std::array<std::atomic<std::uint64_t>, kObjects> payload;
  };
  static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared{};
  for (auto& p : shared->payload) p.store(kPoison);
  shared->payload[0].store(1);
  std::vector<pid_t> children;
  children.reserve(kReaders);
  for (int r = 0; r < kReaders; ++r) {
    children.push_back(ForkChild([&, r] {
      shared->started.fetch_add(1);  // first, so the parent never waits long
      std::mt19937_64 rng(seed + 200 + static_cast<std::uint64_t>(r));
      Result<LockFile> own = LockFile::Open(g.lock_path);
      Result<ProcessTable> table = ProcessTable::View(g.mem.b(), g.mem.bytes());
      if (!own.ok() || !table.ok()) return 2;
      Result<std::uint32_t> slot = table->Claim(*own);
      if (!slot.ok()) return 3;
      int bad = 0;
      while (shared->stop.load(std::memory_order_relaxed) == 0) {
        table->Pin(*slot);
        // acquire: pairs with the writer's exchange (payload published).
        const std::uint32_t k = shared->current.load(std::memory_order_acquire);
        // relaxed: the payload's value is what is checked; the epoch
        // protocol, not this load, must keep it from being freed.
        const std::uint64_t v1 =
            shared->payload[k].load(std::memory_order_relaxed);
        Spin(static_cast<std::uint32_t>(rng() % 128));
        const std::uint64_t v2 =
            shared->payload[k].load(std::memory_order_relaxed);
        table->Unpin(*slot);
        if (v1 == kPoison || v1 != v2) bad = 1;
      }
      table->Release(*slot, *own);
      return bad;
    }));
  }
  while (shared->started.load() < kReaders) std::this_thread::yield();
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> free_list;
  for (std::uint32_t i = 1; i < kObjects; ++i) free_list.push_back(i);
  std::deque<std::pair<std::uint32_t, std::uint64_t>> retired;
  std::uint64_t freed = 0;
  for (std::uint64_t w = 0; w < kWrites;) {
    if (rng() % 2 == 0 || free_list.empty()) {
      g.a.AdvanceEpoch();
      const std::uint64_t min = g.a.MinPinnedEpoch();
      while (!retired.empty() && retired.front().second < min) {
        shared->payload[retired.front().first].store(
            kPoison, std::memory_order_relaxed);  // "free"
        free_list.push_back(retired.front().first);
        retired.pop_front();
        ++freed;
      }
    }
    if (free_list.empty()) continue;
    const std::uint32_t j = free_list.back();
    free_list.pop_back();
    // relaxed: published by the release exchange below.
    shared->payload[j].store(2 + w++, std::memory_order_relaxed);
    // acq_rel: publishes payload[j]; the unlink of `old` is then ordered
    // before GlobalEpoch's fence.
    const std::uint32_t old =
        shared->current.exchange(j, std::memory_order_acq_rel);
    retired.emplace_back(old, g.a.GlobalEpoch());
  }
  shared->stop.store(1);
  for (pid_t c : children) EXPECT_EQ(WaitChild(c), 0) << "seed " << seed;
  EXPECT_GT(freed, 0U);
  EXPECT_EQ(g.a.MinPinnedEpoch(), kNoPin);
  ::munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace numagrid::shm
