#include "io/uring_journal_device.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "io/uring_probe.h"
#include "tests/io/journal_test_util.h"
#include "tests/support/test_grid.h"

namespace numagrid::io {
namespace {

using testing::TempDir;

#define NUMAGRID_REQUIRE_URING(dir)                                     \
  do {                                                                  \
    const UringSupport support_ = ProbeUring(dir);                      \
    if (!support_.available)                                            \
      GTEST_SKIP() << "io_uring unavailable here: " << support_.detail; \
  } while (0)

std::unique_ptr<JournalDevice> MustOpen(const UringDeviceOptions& o) {
  auto d = OpenUringJournalDevice(o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(*d) : nullptr;
}

std::vector<std::byte> Pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::byte>((i * 131 + seed) >> 3);
  }
  return b;
}

TEST(UringJournalDevice, BadOptionsAreRefused) {
  UringDeviceOptions o;
  o.queue_depth = 1;
  EXPECT_EQ(OpenUringJournalDevice(o).status().code(),
            StatusCode::kInvalidArgument);
  o.queue_depth = 8;
  o.max_write_bytes = 0;
  EXPECT_EQ(OpenUringJournalDevice(o).status().code(),
            StatusCode::kInvalidArgument);
}

// A batch longer than the queue depth allows in one chain is written in
// rounds; every byte lands where it belongs, with and without a registered
// file table.
TEST(UringJournalDevice, LongBatchesAreWrittenInRoundsOfLinkedWrites) {
  TempDir dir;
  NUMAGRID_REQUIRE_URING(dir.path());
  for (bool fixed : {true, false}) {
    SCOPED_TRACE(fixed ? "registered file" : "plain descriptor");
    UringDeviceOptions o;
    o.queue_depth = 4;
    o.max_write_bytes = 4096;
    o.register_files = fixed;
    auto dev = MustOpen(o);
    ASSERT_NE(dev, nullptr);
    const std::string path = dir.path() + (fixed ? "/fixed" : "/plain");
    const int fd = dev->Create(path, 0600, -1);
    ASSERT_GE(fd, 0) << -fd;
    const auto a = Pattern(100000 + 123, 1);  // 25 write SQEs: 9 rounds of 3
    const auto b = Pattern(777, 2);
    ASSERT_EQ(dev->WriteAtAndSync(fd, 0, a), 0);
    ASSERT_EQ(dev->WriteAt(fd, a.size(), b), 0);
    ASSERT_EQ(dev->DataSync(fd), 0);
    ASSERT_EQ(dev->SyncDir(dir.path()), 0);
    ASSERT_EQ(dev->Close(fd), 0);
    const std::string got = testing::ReadFileBytes(path);
    ASSERT_EQ(got.size(), a.size() + b.size());
    EXPECT_EQ(std::memcmp(got.data(), a.data(), a.size()), 0);
    EXPECT_EQ(std::memcmp(got.data() + a.size(), b.data(), b.size()), 0);
  }
}

TEST(UringJournalDevice, CreateIsExclusiveAndSetsTheModeDespiteTheUmask) {
  TempDir dir;
  NUMAGRID_REQUIRE_URING(dir.path());
  auto dev = MustOpen({});
  ASSERT_NE(dev, nullptr);
  const std::string path = dir.path() + "/f";
  const mode_t old = umask(0077);
  const int fd = dev->Create(path, 0660, -1);
  umask(old);
  ASSERT_GE(fd, 0);
  struct stat sb {};
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0660u);
  EXPECT_EQ(dev->Create(path, 0600, -1), -EEXIST);
  EXPECT_EQ(dev->Close(fd), 0);
  EXPECT_EQ(dev->Create(dir.path() + "/no/such/dir", 0600, -1), -ENOENT);
}

// A write the kernel completes only in part (here: the file size limit)
// breaks the chain; the device resumes from where it stopped, and reports
// the error that then stops it, after writing every byte it could.
TEST(UringJournalDevice, AShortWriteIsResumedThenItsErrorReported) {
  TempDir dir;
  NUMAGRID_REQUIRE_URING(dir.path());
  const std::string path = dir.path() + "/limited";
  const pid_t pid = numagrid::testing::ForkChild([&]() -> int {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{10000, 10000};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) return 10;
    UringDeviceOptions o;
    o.max_write_bytes = 8192;
    auto d = OpenUringJournalDevice(o);
    if (!d.ok()) return 11;
    const int fd = (*d)->Create(path, 0600, -1);
    if (fd < 0) return 12;
    const auto data = Pattern(20000, 3);
    const int rc = (*d)->WriteAtAndSync(fd, 0, data);
    (*d)->Close(fd);
    if (rc != -EFBIG) return 13;
    return 0;
  });
  ASSERT_EQ(numagrid::testing::WaitChild(pid), 0);
  const std::string got = testing::ReadFileBytes(path);
  ASSERT_EQ(got.size(), 10000u);
  const auto data = Pattern(20000, 3);
  EXPECT_EQ(std::memcmp(got.data(), data.data(), got.size()), 0);
}

}  // namespace
}  // namespace numagrid::io
