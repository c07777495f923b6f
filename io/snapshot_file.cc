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
#include "io/node_file_name.h"

namespace numagrid::io {

std::string SnapshotFileName(std::uint32_t node_id, std::uint64_t journal_seq) {
  return detail::NodeFileName("snapshot", node_id, journal_seq, ".snap");
}

std::optional<std::uint64_t> ParseSnapshotFileName(std::string_view file_name,
                                                   std::uint32_t node_id) {
  return detail::ParseNodeFileName(file_name, "snapshot", node_id, ".snap");
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
