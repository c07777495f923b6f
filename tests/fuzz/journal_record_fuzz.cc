// libFuzzer target for the journal framing (docs/journal-format.md): the
// input goes through DecodeRecord and DecodeSegmentHeader, and then, split
// at each 8-aligned segment magic into files `journal-0-<first_seq>.log`
// (named for the first_seq their header bytes hold, so that reading gets
// past the name check), through JournalReader to the end of the journal,
// TruncateTornTail, and a second reading. Checks what must hold for any
// bytes: decoded records re-encode, the reader returns only intact records
// in sequence order, a dropped tail is exactly the rest of the last file,
// and after cutting it the journal reads cleanly with the same records.
#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/journal_reader.h"
#include "io/journal_record.h"
#include "tests/fuzz/fuzz_util.h"

namespace numagrid::fuzz {
namespace {

using io::DecodedRecord;
using io::DecodeOutcome;
using io::RecordView;

constexpr std::size_t kMaxSegments = 8;

std::span<const std::byte> AsBytes(std::span<const std::uint8_t> s) {
  return std::as_bytes(s);
}

bool SameRecord(const RecordView& a, const RecordView& b) {
  return a.sequence == b.sequence && a.partition_id == b.partition_id &&
         a.op == b.op && a.flags == b.flags && a.change_seq == b.change_seq &&
         a.version == b.version && a.expiry_ms == b.expiry_ms &&
         a.key == b.key && a.value == b.value;
}

// A decoded record re-encodes to exactly the bytes it came from (the
// decoder requires the padding and reserved fields to be zero).
void CheckRecordRoundTrip(std::span<const std::byte> bytes,
                          const DecodedRecord& d) {
  FUZZ_CHECK(d.size_bytes >= io::kRecordHeaderBytes);
  FUZZ_CHECK(d.size_bytes <= bytes.size());
  FUZZ_CHECK(d.size_bytes % io::kRecordAlignBytes == 0);
  FUZZ_CHECK(io::CheckRecord(d.record).ok());
  std::vector<std::byte> again;
  FUZZ_CHECK(io::EncodeRecord(d.record, &again).ok());
  FUZZ_CHECK(again.size() == d.size_bytes);
  FUZZ_CHECK(std::memcmp(again.data(), bytes.data(), again.size()) == 0);
  const DecodedRecord back = io::DecodeRecord(again, 0);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(SameRecord(back.record, d.record));
}

void FuzzDecodeRecord(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const DecodedRecord d = io::DecodeRecord(bytes, 40);
  FUZZ_CHECK(d.offset == 40);
  if (!d.ok()) {
    FUZZ_CHECK(d.status().code() == StatusCode::kCorruption);
    FUZZ_CHECK(!d.reason.empty());
    // A torn record promises more bytes than there are, or none at all.
    FUZZ_CHECK(d.outcome != DecodeOutcome::kTorn || d.size_bytes == 0 ||
               d.size_bytes > bytes.size());
    return;
  }
  CheckRecordRoundTrip(bytes, d);
}

void FuzzDecodeSegmentHeader(std::span<const std::byte> bytes) {
  const io::DecodedSegmentHeader h = io::DecodeSegmentHeader(bytes);
  if (h.outcome != DecodeOutcome::kOk) {
    FUZZ_CHECK(h.error.code() == StatusCode::kCorruption ||
               h.error.code() == StatusCode::kVersionMismatch);
    return;
  }
  FUZZ_CHECK(h.error.ok());
  FUZZ_CHECK(bytes.size() >= io::kSegmentHeaderBytes);
  const auto again = io::EncodeSegmentHeader(h.header);
  const io::DecodedSegmentHeader back = io::DecodeSegmentHeader(again);
  FUZZ_CHECK(back.outcome == DecodeOutcome::kOk);
  FUZZ_CHECK(back.header.grid_id == h.header.grid_id &&
             back.header.node_id == h.header.node_id &&
             back.header.first_seq == h.header.first_seq &&
             back.header.created_unix_ns == h.header.created_unix_ns);
  // The decoder requires the reserved bytes to be zero, so the encoding of
  // what it accepted is the input.
  FUZZ_CHECK(std::memcmp(again.data(), bytes.data(), again.size()) == 0);
}

// An owned copy of what the reader returned.
struct Got {
  std::vector<RecordView> records;  // views into `bytes`
  std::vector<std::string> bytes;   // key + value of each record
  Status status;
  io::DroppedTail tail;
  std::uint64_t last_good_seq = 0;
  bool truncate_ok = false;
};

Got ReadAll(const std::string& dir, std::uint32_t chunk, std::size_t input_size,
            bool truncate) {
  Got got;
  io::JournalReaderOptions o;
  o.dir = dir;
  o.node_id = 0;
  o.read_chunk_bytes = chunk;
  auto reader = io::JournalReader::Open(o);
  FUZZ_CHECK(reader.ok());
  // Every record is at least a record header long: more than this many
  // would mean the reader repeats itself.
  const std::size_t max_records = input_size / io::kRecordHeaderBytes + 1;
  std::uint64_t prev_seq = 0;
  for (;;) {
    auto next = (*reader)->Next();
    if (!next.ok()) {
      got.status = next.status();
      FUZZ_CHECK(got.status.code() == StatusCode::kCorruption ||
                 got.status.code() == StatusCode::kVersionMismatch);
      // The error is sticky.
      FUZZ_CHECK((*reader)->Next().status().code() == got.status.code());
      FUZZ_CHECK(!(*reader)->TruncateTornTail().ok());
      break;
    }
    if (!next->has_value()) break;
    const RecordView& r = **next;
    FUZZ_CHECK(got.records.size() < max_records);
    if (!got.records.empty()) FUZZ_CHECK(r.sequence == prev_seq + 1);
    prev_seq = r.sequence;
    FUZZ_CHECK((*reader)->last_good_seq() == r.sequence);
    // An intact record: it re-encodes to one that decodes.
    std::vector<std::byte> enc;
    FUZZ_CHECK(io::EncodeRecord(r, &enc).ok());
    const DecodedRecord back = io::DecodeRecord(enc, 0);
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(SameRecord(back.record, r));
    got.bytes.push_back(std::string(r.key) + std::string(r.value));
    RecordView copy = r;
    copy.key = {};
    copy.value = {};
    got.records.push_back(copy);
  }
  got.tail = (*reader)->tail();
  got.last_good_seq = (*reader)->last_good_seq();
  if (got.status.ok() && got.tail.kind != io::TailKind::kNone) {
    struct stat st {};
    FUZZ_CHECK(stat(got.tail.file.c_str(), &st) == 0);
    FUZZ_CHECK(got.tail.offset + got.tail.dropped_bytes ==
               static_cast<std::uint64_t>(st.st_size));
    FUZZ_CHECK(got.tail.last_good_seq == got.last_good_seq);
    FUZZ_CHECK(!got.tail.reason.empty());
    FUZZ_CHECK(got.tail.file == (*reader)->segments().back().path);
  }
  if (truncate && got.status.ok()) {
    got.truncate_ok = (*reader)->TruncateTornTail().ok();
    FUZZ_CHECK(got.truncate_ok);
    FUZZ_CHECK((*reader)->TruncateTornTail().ok());  // a second call: no-op
  }
  return got;
}

bool SameRecords(const Got& a, const Got& b) {
  if (a.records.size() != b.records.size() || a.bytes != b.bytes) return false;
  for (std::size_t i = 0; i < a.records.size(); ++i) {
    if (!SameRecord(a.records[i], b.records[i])) return false;
  }
  return true;
}

void FuzzReader(std::span<const std::uint8_t> data) {
  const std::string& dir = ScratchDir();
  ClearDir(dir);
  // Split at every 8-aligned occurrence of the segment magic.
  std::vector<std::size_t> starts = {0};
  for (std::size_t off = 8;
       off + 8 <= data.size() && starts.size() < kMaxSegments; off += 8) {
    if (LoadOr<std::uint64_t>(data, off, 0) == io::kSegmentMagic) {
      starts.push_back(off);
    }
  }
  std::map<std::string, std::vector<std::uint8_t>> files;
  std::string last_name;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : data.size();
    const auto piece = data.subspan(starts[i], end - starts[i]);
    const auto first_seq = LoadOr<std::uint64_t>(piece, 32, 1);
    std::string name = io::SegmentFileName(0, first_seq);
    // Two pieces of one name: the second one stays in the first's file.
    if (files.count(name) != 0) name = last_name;
    files[name].insert(files[name].end(), piece.begin(), piece.end());
    last_name = name;
  }
  for (const auto& [name, bytes] : files) {
    std::string path = dir;
    path += '/';
    path += name;
    WriteFile(path, bytes);
  }

  const auto chunk =
      static_cast<std::uint32_t>(io::kRecordHeaderBytes + data.size() % 512);
  const Got first = ReadAll(dir, chunk, data.size(), /*truncate=*/true);
  if (!first.status.ok()) return;
  // With the tail cut, the journal reads to a clean end with the same
  // records: what recovery relies on before it starts a new writer.
  const Got second = ReadAll(dir, chunk, data.size(), /*truncate=*/false);
  FUZZ_CHECK(second.status.ok());
  FUZZ_CHECK(second.tail.kind == io::TailKind::kNone);
  FUZZ_CHECK(SameRecords(first, second));
  FUZZ_CHECK(second.last_good_seq == first.last_good_seq);
}

}  // namespace
}  // namespace numagrid::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  numagrid::fuzz::FuzzDecodeRecord(numagrid::fuzz::AsBytes(input));
  numagrid::fuzz::FuzzDecodeSegmentHeader(numagrid::fuzz::AsBytes(input));
  numagrid::fuzz::FuzzReader(input);
  return 0;
}
