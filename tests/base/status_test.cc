#include "numagrid/status.h"

#include <gtest/gtest.h>

namespace numagrid {
namespace {

TEST(Status, DefaultIsOkAndHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(Status, ErrorCarriesCodeNameAndContext) {
  Status s = NotFound("grid 'x' does not exist").WithContext("info");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "not_found: info: grid 'x' does not exist");
}

TEST(Status, CodesAreStableExitCodes) {
  // The CLI exits with these numbers; scripts depend on them.
  EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), 2);
  EXPECT_EQ(static_cast<int>(StatusCode::kNotFound), 3);
  EXPECT_EQ(static_cast<int>(StatusCode::kAlreadyExists), 4);
  EXPECT_EQ(static_cast<int>(StatusCode::kConflict), 5);
  EXPECT_EQ(static_cast<int>(StatusCode::kVersionMismatch), 6);
  EXPECT_EQ(static_cast<int>(StatusCode::kCorruption), 7);
  EXPECT_EQ(static_cast<int>(StatusCode::kResourceExhausted), 8);
  EXPECT_EQ(static_cast<int>(StatusCode::kPermissionDenied), 9);
  EXPECT_EQ(static_cast<int>(StatusCode::kIoError), 10);
  EXPECT_EQ(static_cast<int>(StatusCode::kPanic), 11);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnavailable), 12);
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());
  Result<int> bad(Corruption("bad crc"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace numagrid
