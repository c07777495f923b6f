#include "io/node_file_name.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace numagrid::io {

std::string StreamTag(std::uint32_t stream_id) {
  std::string tag = std::to_string(StreamNode(stream_id));
  if (StreamIndex(stream_id) != 0) {
    tag += "." + std::to_string(StreamIndex(stream_id));
  }
  return tag;
}

std::string StreamLabel(std::uint32_t stream_id) {
  std::string label = "node " + std::to_string(StreamNode(stream_id));
  if (StreamIndex(stream_id) != 0) {
    label += " stream " + std::to_string(StreamIndex(stream_id));
  }
  return label;
}

}  // namespace numagrid::io

namespace numagrid::io::detail {

std::string NodeFileName(std::string_view kind, std::uint32_t node_id,
                         std::uint64_t seq, std::string_view suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu",
                static_cast<unsigned long long>(seq));
  return std::string(kind) + "-" + StreamTag(node_id) + "-" + buf +
         std::string(suffix);
}

std::optional<std::uint64_t> ParseNodeFileName(std::string_view file_name,
                                               std::string_view kind,
                                               std::uint32_t node_id,
                                               std::string_view suffix) {
  const std::string prefix = std::string(kind) + "-" + StreamTag(node_id) + "-";
  constexpr std::size_t kDigits = 20;
  if (file_name.size() != prefix.size() + kDigits + suffix.size() ||
      file_name.substr(0, prefix.size()) != prefix ||
      file_name.substr(prefix.size() + kDigits) != suffix) {
    return std::nullopt;
  }
  const std::string_view digits = file_name.substr(prefix.size(), kDigits);
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t seq = 0;
  const auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return seq;
}

}  // namespace numagrid::io::detail
