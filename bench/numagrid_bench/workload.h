// Workload: the YCSB core workloads A-F as numagrid-bench runs them: the
// operation mix, the key-choice distributions (uniform, YCSB's scrambled
// zipfian with theta 0.99, and YCSB's skewed-latest), the key format and the
// random number generator each worker process or thread owns.
//
// Thread safety: WorkloadSpec and KeySpace are immutable values; an
// OpChooser (with its generators and RNG) belongs to one worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace numagrid::bench {

enum class OpType : std::uint8_t {
  kRead = 0,
  kUpdate,
  kInsert,
  kScan,
  kReadModifyWrite
};
inline constexpr int kOpTypeCount = 5;
// "read", "update", "insert", "scan", "read_modify_write".
std::string_view OpTypeName(OpType op) noexcept;

enum class Distribution : std::uint8_t { kUniform, kZipfian, kLatest };
std::string_view DistributionName(Distribution d) noexcept;
std::optional<Distribution> ParseDistribution(std::string_view text);

// The proportions of one YCSB core workload (they sum to 1).
struct WorkloadSpec {
  char letter = 'B';
  double read = 0, update = 0, insert = 0, scan = 0, read_modify_write = 0;
  Distribution default_distribution = Distribution::kZipfian;
  std::string description;
};
// A..F (either case); nullopt otherwise.
std::optional<WorkloadSpec> ParseWorkload(std::string_view text);

// Scan lengths are uniform in [1, kMaxScanLength], YCSB's default for E.
inline constexpr std::uint32_t kMaxScanLength = 100;

// Keys are "user" followed by the decimal key id, zero-padded to key_size
// bytes: id 42 with key_size 16 is "user000000000042". Ids 0..records-1 are
// loaded before the run; inserted ids come after them.
class KeySpace {
 public:
  static constexpr std::size_t kMinKeySize = 12;  // "user" + 8 digits
  static constexpr std::size_t kMaxKeySize = 250;
  static constexpr std::size_t kKeyBufferSize = 256;
  explicit KeySpace(std::size_t key_size) : key_size_(key_size) {}
  std::size_t key_size() const { return key_size_; }
  // Writes the key of `id` into `out` (capacity kKeyBufferSize; an id that
  // needs more digits than key_size - 4 makes a longer key) and returns a
  // view of it.
  std::string_view Format(std::uint64_t id, char* out) const noexcept;
  // How many ids fit the key size exactly.
  std::uint64_t IdLimit() const noexcept;

 private:
  std::size_t key_size_;
};

// xoshiro256**, seeded through splitmix64: fast, and good enough for choosing
// keys. Not for anything secret.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept;
  std::uint64_t Next() noexcept;
  // Uniform in [0, 1).
  double NextDouble() noexcept {
    return static_cast<double>(Next() >> 11) * 0x1.0p-53;
  }
  // Uniform in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64).
  std::uint64_t Below(std::uint64_t n) noexcept {
    __extension__ using U128 =
        unsigned __int128;  // GCC/Clang; -Wpedantic-clean
    return static_cast<std::uint64_t>((static_cast<U128>(Next()) * n) >> 64);
  }

 private:
  std::uint64_t s_[4];
};

// YCSB's ZipfianGenerator: values in [0, items), 0 the most popular, with
// the item count allowed to grow (zeta is extended incrementally, as YCSB
// does for the latest distribution).
class ZipfianGenerator {
 public:
  static constexpr double kTheta = 0.99;
  explicit ZipfianGenerator(std::uint64_t items, double theta = kTheta);
  // For a precomputed zeta(items) (YCSB's scrambled zipfian uses 10^10 items).
  ZipfianGenerator(std::uint64_t items, double theta, double zetan);
  std::uint64_t Next(Rng& rng, std::uint64_t items) noexcept;
  std::uint64_t Next(Rng& rng) noexcept { return Next(rng, items_); }

 private:
  void SetEta() noexcept;
  std::uint64_t items_;
  double theta_, alpha_, zeta2_, zetan_, eta_;
};

// The key-id chooser of one worker.
class KeyChooser {
 public:
  // `records`: ids 0..records-1 exist. Inserted ids are reported through
  // NoteInsert(), most recent last.
  KeyChooser(Distribution d, std::uint64_t records);
  // For kLatest: the worker's recency order is its own inserts, newest
  // first, then the loaded records from the highest id down. YCSB's
  // skewed-latest picks a zipfian offset from the newest key.
  std::uint64_t Next(Rng& rng) noexcept;
  void NoteInsert(std::uint64_t id) noexcept {
    last_insert_ = id;
    ++inserts_;
  }

 private:
  Distribution d_;
  std::uint64_t records_;
  std::uint64_t inserts_ = 0;
  std::uint64_t last_insert_ = 0;
  std::uint64_t insert_stride_ = 1;  // set by the worker (ids step by procs)
  ZipfianGenerator zipf_;

 public:
  void set_insert_stride(std::uint64_t s) noexcept { insert_stride_ = s; }
};

// YCSB's FNV-1a 64 over the 8 bytes of `v`, made non-negative as Java's
// Math.abs does.
std::uint64_t FnvHash64(std::uint64_t v) noexcept;

// Chooses the next operation of a workload.
class OpChooser {
 public:
  explicit OpChooser(const WorkloadSpec& w) noexcept;
  OpType Next(Rng& rng) const noexcept;

 private:
  double cut_[kOpTypeCount];  // cumulative proportions in OpType order
};

}  // namespace numagrid::bench
