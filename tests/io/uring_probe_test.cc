#include "io/uring_probe.h"

#include <gtest/gtest.h>

namespace numagrid::io {
namespace {

TEST(UringProbe, WritesThroughTheRingOrSaysWhyNot) {
  UringSupport s = ProbeUring("/tmp");
  if (!s.available) GTEST_SKIP() << "io_uring unavailable here: " << s.detail;
  EXPECT_EQ(s.detail, "ok");
}

TEST(UringProbe, MissingDirectoryIsReportedNotFatal) {
  UringSupport s = ProbeUring("/nonexistent-dir-for-numagrid-test");
  if (!s.available) GTEST_SKIP() << "io_uring unavailable here: " << s.detail;
  EXPECT_NE(s.detail.find("no temporary file"), std::string::npos) << s.detail;
}

}  // namespace
}  // namespace numagrid::io
