// The names of a journal stream's files (io/node_file_name.h): stream 0 of
// a node keeps the names a one-stream grid has always had; each later
// stream gets names of its own that no other stream's listing matches.
#include "io/node_file_name.h"

#include <cstdint>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "io/journal_record.h"
#include "io/snapshot_file.h"

namespace numagrid::io {
namespace {

TEST(StreamId, StreamZeroIsTheNodeNumber) {
  EXPECT_EQ(StreamId(0, 0), 0U);
  EXPECT_EQ(StreamId(5, 0), 5U);
  EXPECT_EQ(StreamId(3, 2), 3U | (2U << kStreamShift));
  for (std::uint32_t node : {0U, 1U, 7U, 1023U}) {
    for (std::uint32_t s = 0; s < 8; ++s) {
      const std::uint32_t id = StreamId(node, s);
      EXPECT_EQ(StreamNode(id), node);
      EXPECT_EQ(StreamIndex(id), s);
    }
  }
}

TEST(StreamId, TagAndLabelNameTheStreamOnlyAfterTheFirst) {
  EXPECT_EQ(StreamTag(StreamId(1, 0)), "1");
  EXPECT_EQ(StreamTag(StreamId(1, 3)), "1.3");
  EXPECT_EQ(StreamLabel(StreamId(2, 0)), "node 2");
  EXPECT_EQ(StreamLabel(StreamId(2, 1)), "node 2 stream 1");
}

TEST(StreamFileNames, StreamZeroKeepsTheOneStreamNames) {
  EXPECT_EQ(SegmentFileName(StreamId(1, 0), 7),
            "journal-1-00000000000000000007.log");
  EXPECT_EQ(SnapshotFileName(StreamId(0, 0), 42),
            "snapshot-0-00000000000000000042.snap");
}

TEST(StreamFileNames, LaterStreamsGetNamesOfTheirOwn) {
  const std::string seg = SegmentFileName(StreamId(1, 2), 7);
  EXPECT_EQ(seg, "journal-1.2-00000000000000000007.log");
  EXPECT_EQ(ParseSegmentFileName(seg, StreamId(1, 2)),
            std::optional<std::uint64_t>(7));
  // No other stream, of this node or another, claims it.
  EXPECT_FALSE(ParseSegmentFileName(seg, StreamId(1, 0)).has_value());
  EXPECT_FALSE(ParseSegmentFileName(seg, StreamId(1, 1)).has_value());
  EXPECT_FALSE(ParseSegmentFileName(seg, StreamId(2, 1)).has_value());
  // And stream 0's files are not stream 2's.
  EXPECT_FALSE(
      ParseSegmentFileName(SegmentFileName(StreamId(1, 0), 7), StreamId(1, 2))
          .has_value());
  const std::string snap = SnapshotFileName(StreamId(0, 1), 9);
  EXPECT_EQ(snap, "snapshot-0.1-00000000000000000009.snap");
  EXPECT_EQ(ParseSnapshotFileName(snap, StreamId(0, 1)),
            std::optional<std::uint64_t>(9));
  EXPECT_FALSE(ParseSnapshotFileName(snap, StreamId(0, 0)).has_value());
}

}  // namespace
}  // namespace numagrid::io
