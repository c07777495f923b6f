// The names of a node's numbered files in a journal directory:
// "<kind>-<node>-<sequence, 20 digits><suffix>", zero-padded so that names
// sort in sequence order (journal segments, snapshots).
//
// Thread safety: pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace numagrid::io::detail {

std::string NodeFileName(std::string_view kind, std::uint32_t node_id,
                         std::uint64_t seq, std::string_view suffix);

// The sequence named by `file_name` if it is exactly such a name of
// `node_id`, else nullopt.
std::optional<std::uint64_t> ParseNodeFileName(std::string_view file_name,
                                               std::string_view kind,
                                               std::uint32_t node_id,
                                               std::string_view suffix);

}  // namespace numagrid::io::detail
