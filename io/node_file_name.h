// The names of a journal stream's numbered files in a journal directory:
// "<kind>-<node>-<sequence, 20 digits><suffix>" for stream 0 of a node (the
// only stream of a one-worker-per-node grid, named as before streams
// existed), "<kind>-<node>.<stream>-<sequence><suffix>" for stream 1 and up;
// zero-padded so that names sort in sequence order (journal segments,
// snapshots). docs/journal-format.md, docs/adr/0008-journal-streams.md.
//
// Thread safety: pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace numagrid::io {

// A journal stream id: node + (stream << 16). It is what the `node_id`
// fields of journal segment and snapshot headers hold and what the file
// names are made from. Stream 0's id is the node number itself, so a grid
// with one stream per node is unchanged on disk.
inline constexpr std::uint32_t kStreamShift = 16;
inline constexpr std::uint32_t kMaxStreamNodes = 1U << kStreamShift;
constexpr std::uint32_t StreamId(std::uint32_t node,
                                 std::uint32_t stream) noexcept {
  return node | (stream << kStreamShift);
}
constexpr std::uint32_t StreamNode(std::uint32_t stream_id) noexcept {
  return stream_id & (kMaxStreamNodes - 1);
}
constexpr std::uint32_t StreamIndex(std::uint32_t stream_id) noexcept {
  return stream_id >> kStreamShift;
}
// "<node>" for stream 0, "<node>.<stream>" otherwise: the part of a file
// name that says which stream it belongs to.
std::string StreamTag(std::uint32_t stream_id);
// "node N" for stream 0, "node N stream S" otherwise: for messages.
std::string StreamLabel(std::uint32_t stream_id);

}  // namespace numagrid::io

namespace numagrid::io::detail {

// `node_id` is a stream id (StreamId above).
std::string NodeFileName(std::string_view kind, std::uint32_t node_id,
                         std::uint64_t seq, std::string_view suffix);

// The sequence named by `file_name` if it is exactly such a name of
// `node_id`, else nullopt.
std::optional<std::uint64_t> ParseNodeFileName(std::string_view file_name,
                                               std::string_view kind,
                                               std::uint32_t node_id,
                                               std::string_view suffix);

}  // namespace numagrid::io::detail
