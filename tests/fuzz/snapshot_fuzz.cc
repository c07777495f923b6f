// libFuzzer target for snapshot files (docs/snapshot-format.md): the input,
// saved as `snapshot-<node>-<journal_seq>.snap` (node and sequence taken from
// where the header keeps them, so that reading gets past the name check),
// goes through SnapshotReader::Open and a full iteration. Checks what must
// hold for any bytes: Open fails with kCorruption or kVersionMismatch, or
// the iteration then succeeds with exactly the counts the header and footer
// promise; and an accepted file is canonical: SnapshotWriter, given what
// was read, writes the same bytes (but for the creation time).
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "core/base/crc32c.h"
#include "io/snapshot_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace numagrid::fuzz {
namespace {

std::string ReadAllBytes(const std::string& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  FUZZ_CHECK(f != nullptr);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

void PutLe(std::string& b, std::size_t off, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + i] = static_cast<char>(v >> (8 * i));
}

void Fuzz(std::span<const std::uint8_t> data) {
  const std::string& dir = ScratchDir();
  ClearDir(dir);
  const auto node = LoadOr<std::uint32_t>(data, 24, 0);
  const auto journal_seq = LoadOr<std::uint64_t>(data, 32, 0);
  const std::string path = dir + "/" + io::SnapshotFileName(node, journal_seq);
  WriteFile(path, data);

  auto reader = io::SnapshotReader::Open(path, 0, node);
  if (!reader.ok()) {
    const StatusCode code = reader.status().code();
    FUZZ_CHECK(code == StatusCode::kCorruption ||
               code == StatusCode::kVersionMismatch);
    FUZZ_CHECK(reader.status().message().find(path) != std::string::npos);
    return;
  }
  io::SnapshotReader& r = **reader;
  const io::SnapshotHeader h = r.header();
  FUZZ_CHECK(h.node_id == node && h.journal_seq == journal_seq);
  FUZZ_CHECK(r.file_bytes() == data.size());

  // Read everything, rewriting it as we go.
  const std::string out_dir = dir + "/out";
  std::string out_path;
  {
    (void)mkdir(out_dir.c_str(), 0700);
    ClearDir(out_dir);
    io::SnapshotWriterOptions o;
    o.dir = out_dir;
    o.grid_id = h.grid_id;
    o.node_id = h.node_id;
    o.journal_seq = h.journal_seq;
    auto w = io::SnapshotWriter::Create(o);
    FUZZ_CHECK(w.ok());
    std::uint64_t partitions = 0;
    std::uint64_t entries = 0;
    std::uint64_t section_left = 0;
    bool in_section = false;
    std::uint32_t partition_id = 0;
    for (;;) {
      auto next = r.Next();
      FUZZ_CHECK(next.ok());  // Open verified the whole file
      if (!next->has_value()) break;
      const io::SnapshotItem& it = **next;
      if (it.kind == io::SnapshotItem::Kind::kPartition) {
        FUZZ_CHECK(section_left == 0);
        FUZZ_CHECK(partitions == 0 || it.partition_id > partition_id);
        if (in_section) FUZZ_CHECK((*w)->EndPartition().ok());
        FUZZ_CHECK((*w)->BeginPartition(it.partition_id, it.covered_seq).ok());
        in_section = true;
        partition_id = it.partition_id;
        section_left = it.entry_count;
        ++partitions;
        continue;
      }
      FUZZ_CHECK(section_left > 0);
      --section_left;
      ++entries;
      FUZZ_CHECK(it.partition_id == partition_id);
      FUZZ_CHECK(it.entry.partition_id == partition_id);
      FUZZ_CHECK(it.entry.sequence == entries);
      FUZZ_CHECK(it.entry.op == io::RecordOp::kPut);
      FUZZ_CHECK(it.entry.change_seq == it.entry.version);
      FUZZ_CHECK((*w)->Add(it.entry).ok());
    }
    FUZZ_CHECK(section_left == 0);
    if (in_section) FUZZ_CHECK((*w)->EndPartition().ok());
    FUZZ_CHECK(partitions == h.partition_count);
    FUZZ_CHECK(entries == r.entry_count());
    FUZZ_CHECK(r.Next().ok() && !r.Next()->has_value());  // stays at the end
    FUZZ_CHECK((*w)->Commit().ok());
    out_path = (*w)->path();
  }

  // The rewrite, with the input's creation time, is the input.
  std::string again = ReadAllBytes(out_path);
  FUZZ_CHECK(again.size() == data.size());
  std::memcpy(again.data() + 40, data.data() + 40, 8);
  PutLe(again, 60, base::Crc32c(again.data(), 60), 4);
  const std::size_t footer = again.size() - io::kSnapshotFooterBytes;
  PutLe(again, footer + 32, base::Crc32c(again.data(), footer), 4);
  PutLe(again, footer + 36, base::Crc32c(again.data() + footer, 36), 4);
  FUZZ_CHECK(std::memcmp(again.data(), data.data(), data.size()) == 0);
}

}  // namespace
}  // namespace numagrid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  numagrid::fuzz::Fuzz(std::span<const std::uint8_t>(data, size));
  return 0;
}
