// Workload: YCSB core workloads, generators and key format.
#include "bench/numagrid_bench/workload.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace numagrid::bench {

std::string_view OpTypeName(OpType op) noexcept {
  switch (op) {
    case OpType::kRead:
      return "read";
    case OpType::kUpdate:
      return "update";
    case OpType::kInsert:
      return "insert";
    case OpType::kScan:
      return "scan";
    case OpType::kReadModifyWrite:
      return "read_modify_write";
  }
  return "?";
}

std::string_view DistributionName(Distribution d) noexcept {
  switch (d) {
    case Distribution::kUniform:
      return "uniform";
    case Distribution::kZipfian:
      return "zipfian";
    case Distribution::kLatest:
      return "latest";
  }
  return "?";
}

std::optional<Distribution> ParseDistribution(std::string_view text) {
  if (text == "uniform") return Distribution::kUniform;
  if (text == "zipfian") return Distribution::kZipfian;
  if (text == "latest") return Distribution::kLatest;
  return std::nullopt;
}

std::optional<WorkloadSpec> ParseWorkload(std::string_view text) {
  if (text.size() != 1) return std::nullopt;
  WorkloadSpec w;
  w.letter =
      static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  switch (w.letter) {
    case 'A':
      w.read = 0.5;
      w.update = 0.5;
      w.description = "50% read, 50% update";
      break;
    case 'B':
      w.read = 0.95;
      w.update = 0.05;
      w.description = "95% read, 5% update";
      break;
    case 'C':
      w.read = 1.0;
      w.description = "100% read";
      break;
    case 'D':
      w.read = 0.95;
      w.insert = 0.05;
      w.default_distribution = Distribution::kLatest;
      w.description = "95% read (latest), 5% insert";
      break;
    case 'E':
      w.scan = 0.95;
      w.insert = 0.05;
      w.description = "95% short scan, 5% insert";
      break;
    case 'F':
      w.read = 0.5;
      w.read_modify_write = 0.5;
      w.description = "50% read, 50% read-modify-write";
      break;
    default:
      return std::nullopt;
  }
  return w;
}

std::string_view KeySpace::Format(std::uint64_t id, char* out) const noexcept {
  const int digits = static_cast<int>(key_size_ - 4);
  const int n = std::snprintf(out, kKeyBufferSize, "user%0*llu", digits,
                              static_cast<unsigned long long>(id));
  return {out, static_cast<std::size_t>(n)};
}

std::uint64_t KeySpace::IdLimit() const noexcept {
  std::uint64_t limit = 1;
  for (std::size_t i = 4; i < key_size_ && limit < 1'000'000'000'000'000'000ULL;
       ++i)
    limit *= 10;
  return limit;
}

namespace {
std::uint64_t SplitMix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
std::uint64_t Rotl(std::uint64_t x, int k) noexcept {
  return (x << k) | (x >> (64 - k));
}

double Zeta(std::uint64_t from, std::uint64_t to, double theta,
            double initial) {
  double sum = initial;
  for (std::uint64_t i = from; i < to; ++i)
    sum += 1.0 / std::pow(static_cast<double>(i + 1), theta);
  return sum;
}

// YCSB ScrambledZipfianGenerator: zipfian over 10^10 items with this zeta.
constexpr std::uint64_t kScrambledItems = 10'000'000'000ULL;
constexpr double kScrambledZetan = 26.46902820178302;
}  // namespace

Rng::Rng(std::uint64_t seed) noexcept {
  for (auto& s : s_) s = SplitMix64(seed);
}

std::uint64_t Rng::Next() noexcept {
  const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

ZipfianGenerator::ZipfianGenerator(std::uint64_t items, double theta)
    : ZipfianGenerator(items, theta, Zeta(0, items, theta, 0.0)) {}

ZipfianGenerator::ZipfianGenerator(std::uint64_t items, double theta,
                                   double zetan)
    : items_(items),
      theta_(theta),
      alpha_(1.0 / (1.0 - theta)),
      zeta2_(Zeta(0, 2, theta, 0.0)),
      zetan_(zetan),
      eta_(0) {
  SetEta();
}

void ZipfianGenerator::SetEta() noexcept {
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(items_), 1.0 - theta_)) /
         (1.0 - zeta2_ / zetan_);
}

std::uint64_t ZipfianGenerator::Next(Rng& rng, std::uint64_t items) noexcept {
  if (items > items_) {  // grew: extend zeta by the new terms only
    zetan_ = Zeta(items_, items, theta_, zetan_);
    items_ = items;
    SetEta();
  }
  const double u = rng.NextDouble();
  const double uz = u * zetan_;
  if (uz < 1.0) return 0;
  if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
  auto v = static_cast<std::uint64_t>(static_cast<double>(items_) *
                                      std::pow(eta_ * u - eta_ + 1.0, alpha_));
  return v < items_ ? v : items_ - 1;
}

std::uint64_t FnvHash64(std::uint64_t v) noexcept {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (int i = 0; i < 8; ++i) {
    h ^= v & 0xff;
    v >>= 8;
    h *= 1099511628211ULL;
  }
  const auto s = static_cast<std::int64_t>(h);
  return s < 0 ? static_cast<std::uint64_t>(0) - h : h;  // Math.abs
}

KeyChooser::KeyChooser(Distribution d, std::uint64_t records)
    : d_(d),
      records_(records),
      zipf_(d == Distribution::kZipfian
                ? ZipfianGenerator(kScrambledItems, ZipfianGenerator::kTheta,
                                   kScrambledZetan)
                : ZipfianGenerator(d == Distribution::kLatest ? records : 2)) {}

std::uint64_t KeyChooser::Next(Rng& rng) noexcept {
  switch (d_) {
    case Distribution::kUniform:
      return rng.Below(records_);
    case Distribution::kZipfian:
      return FnvHash64(zipf_.Next(rng)) % records_;
    case Distribution::kLatest: {
      const std::uint64_t offset = zipf_.Next(rng, records_ + inserts_);
      if (offset < inserts_) return last_insert_ - offset * insert_stride_;
      return records_ - 1 - (offset - inserts_);
    }
  }
  return 0;
}

OpChooser::OpChooser(const WorkloadSpec& w) noexcept {
  const double p[kOpTypeCount] = {w.read, w.update, w.insert, w.scan,
                                  w.read_modify_write};
  double sum = 0;
  int last = 0;
  for (int i = 0; i < kOpTypeCount; ++i) {
    cut_[i] = (sum += p[i]);
    if (p[i] > 0) last = i;
  }
  // Rounding never falls off the end, nor onto an operation of proportion 0.
  for (int i = last; i < kOpTypeCount; ++i) cut_[i] = 2.0;
}

OpType OpChooser::Next(Rng& rng) const noexcept {
  const double u = rng.NextDouble();
  int i = 0;
  while (u >= cut_[i]) ++i;
  return static_cast<OpType>(i);
}

}  // namespace numagrid::bench
