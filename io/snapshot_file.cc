// Snapshot file names (docs/snapshot-format.md, "Files") and the listing of
// a directory's snapshots. The writer is in snapshot_writer.cc, the reader in
// snapshot_reader.cc.
#include "io/snapshot_file.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <utility>

#include "io/errno_status.h"

namespace numagrid::io {

std::string SnapshotFileName(std::uint32_t node_id, std::uint64_t journal_seq) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "snapshot-%u-%020llu.snap", node_id,
                static_cast<unsigned long long>(journal_seq));
  return buf;
}

std::optional<std::uint64_t> ParseSnapshotFileName(std::string_view file_name,
                                                   std::uint32_t node_id) {
  const std::string prefix = "snapshot-" + std::to_string(node_id) + "-";
  constexpr std::string_view kSuffix = ".snap";
  constexpr std::size_t kDigits = 20;
  if (file_name.size() != prefix.size() + kDigits + kSuffix.size() ||
      file_name.substr(0, prefix.size()) != prefix ||
      file_name.substr(prefix.size() + kDigits) != kSuffix) {
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

Result<std::vector<SnapshotFile>> ListSnapshots(const std::string& dir,
                                                std::uint32_t node_id) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return detail::ErrnoStatus(errno, "snapshot directory " + dir);
  }
  std::vector<SnapshotFile> out;
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    const auto seq = ParseSnapshotFileName(e->d_name, node_id);
    if (seq) out.push_back({dir + "/" + e->d_name, *seq, 0});
  }
  closedir(d);
  std::vector<SnapshotFile> present;
  present.reserve(out.size());
  for (SnapshotFile& f : out) {
    struct stat st {};
    if (stat(f.path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile (an older one)
      return detail::ErrnoStatus(errno, "snapshot " + f.path);
    }
    f.size_bytes = static_cast<std::uint64_t>(st.st_size);
    present.push_back(std::move(f));
  }
  std::sort(present.begin(), present.end(),
            [](const SnapshotFile& a, const SnapshotFile& b) {
              return a.journal_seq < b.journal_seq;
            });
  return present;
}

}  // namespace numagrid::io
