#include "tests/io/journal_test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace numagrid::io::testing {

std::uint32_t TestSeed() {
  static const std::uint32_t seed = [] {
    const char* s =
        std::getenv("NUMAGRID_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
    const std::uint32_t v =
        s != nullptr ? static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10))
                     : static_cast<std::uint32_t>(std::random_device{}());
    std::printf("[ seed     ] NUMAGRID_TEST_SEED=%u\n", v);
    return v;
  }();
  return seed;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/ngjournal-XXXXXX";
  const char* p = mkdtemp(tmpl);
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

RecordView OwnedRecord::view() const {
  RecordView v;
  v.partition_id = partition_id;
  v.op = op;
  v.change_seq = change_seq;
  v.version = version;
  v.expiry_ms = expiry_ms;
  v.key = key;
  v.value = value;
  return v;
}

OwnedRecord OwnedRecord::From(const RecordView& v) {
  OwnedRecord r;
  r.partition_id = v.partition_id;
  r.op = v.op;
  r.change_seq = v.change_seq;
  r.version = v.version;
  r.expiry_ms = v.expiry_ms;
  r.key = std::string(v.key);
  r.value = std::string(v.value);
  return r;
}

OwnedRecord VariedRecord(std::mt19937_64& rng, std::uint64_t i) {
  OwnedRecord r;
  r.partition_id = static_cast<std::uint32_t>(rng() % 271);
  r.change_seq = i * 3 + 1;
  r.version = rng();
  r.expiry_ms = i % 5 == 0 ? 1700000000000ULL + i : 0;
  if (i % 101 == 7) {
    r.key.assign(kMaxJournalKeyBytes, static_cast<char>('a' + i % 26));
  } else {
    r.key = "key:" + std::to_string(i) + ":" + std::string(rng() % 40, 'k');
  }
  if (i % 29 == 3) {
    r.op = static_cast<RecordOp>(2 + i % 3);  // remove, expire, evict
    return r;
  }
  std::size_t len = 0;
  if (i % 13 != 0) len = i % 47 == 5 ? 8192 + rng() % 40000 : rng() % 300;
  r.value.resize(len);
  for (char& c : r.value) c = static_cast<char>(rng());
  return r;
}

OwnedRecord PutOf(std::uint64_t i, std::size_t value_bytes) {
  OwnedRecord r;
  r.partition_id = static_cast<std::uint32_t>(i % 7);
  r.change_seq = i;
  r.version = i * 10;
  r.key = "k" + std::to_string(i);
  r.value.assign(value_bytes, static_cast<char>('A' + i % 26));
  return r;
}

ReadBack ReadJournal(const std::string& dir, std::uint32_t node_id) {
  ReadBack out;
  JournalReaderOptions o;
  o.dir = dir;
  o.node_id = node_id;
  o.read_chunk_bytes = 4096;  // small, so that records straddle refills
  auto reader = JournalReader::Open(o);
  if (!reader.ok()) {
    out.status = reader.status();
    return out;
  }
  for (;;) {
    auto next = (*reader)->Next();
    if (!next.ok()) {
      out.status = next.status();
      break;
    }
    if (!next->has_value()) break;
    out.records.push_back(OwnedRecord::From(**next));
    out.seqs.push_back((*next)->sequence);
  }
  out.tail = (*reader)->tail();
  out.last_good_seq = (*reader)->last_good_seq();
  return out;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> SegmentPaths(const std::string& dir,
                                      std::uint32_t node_id) {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (auto seq = ParseSegmentFileName(name, node_id)) {
      found.emplace_back(*seq, e.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(f.second);
  return out;
}

}  // namespace numagrid::io::testing
