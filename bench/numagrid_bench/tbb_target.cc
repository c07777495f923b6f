// The oneTBB target: a concurrent_hash_map<std::string, std::string> in this
// process, used by P threads (oneTBB containers hold raw pointers and
// process-local locks, so they cannot be shared between processes). This is
// the in-process baseline DESIGN.md compares numagrid with.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <oneapi/tbb/concurrent_hash_map.h>

#include "bench/numagrid_bench/target.h"

namespace numagrid::bench {
namespace {

using TbbMap = tbb::concurrent_hash_map<std::string, std::string>;

class TbbSession final : public Session {
 public:
  TbbSession(TbbMap* map, std::size_t key_size, std::size_t value_cap)
      : map_(map), keys_(key_size), buf_(value_cap) {
    key_.reserve(KeySpace::kKeyBufferSize);
  }

  // The map's key type is std::string: the key is copied into a reused
  // string (no allocation after the first call).
  Outcome Read(std::string_view key) override {
    key_.assign(key);
    TbbMap::const_accessor acc;
    if (!map_->find(acc, key_)) return Outcome::kNotFound;
    std::memcpy(buf_.data(), acc->second.data(),
                std::min(acc->second.size(), buf_.size()));
    return Outcome::kOk;
  }
  Outcome Update(std::string_view key, std::string_view value) override {
    key_.assign(key);
    TbbMap::accessor acc;
    if (!map_->find(acc, key_)) return Outcome::kNotFound;
    acc->second.assign(value);
    return Outcome::kOk;
  }
  Outcome Insert(std::string_view key, std::string_view value) override {
    key_.assign(key);
    try {
      TbbMap::accessor acc;
      if (!map_->insert(acc, key_)) return Fail("insert: key exists");
      acc->second.assign(value);
    } catch (const std::exception& e) {
      return Fail(std::string("insert: ") + e.what());
    }
    return Outcome::kOk;
  }
  Outcome Scan(std::string_view, std::uint64_t start_id,
               std::uint32_t count) override {
    char kbuf[KeySpace::kKeyBufferSize];
    std::uint32_t found = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
      key_.assign(keys_.Format(start_id + i, kbuf));
      TbbMap::const_accessor acc;
      if (!map_->find(acc, key_)) continue;
      std::memcpy(buf_.data(), acc->second.data(),
                  std::min(acc->second.size(), buf_.size()));
      ++found;
    }
    return found == 0 ? Outcome::kNotFound : Outcome::kOk;
  }

 private:
  TbbMap* map_;
  KeySpace keys_;
  std::string key_;
  std::vector<char> buf_;
};

class TbbTarget final : public Target {
 public:
  std::string_view name() const override { return "tbb"; }
  bool forks() const override { return false; }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    spec_ = spec;
    try {
      map_ =
          std::make_unique<TbbMap>((spec.records + spec.expected_inserts) * 2);
      KeySpace keys(spec.key_size);
      char kbuf[KeySpace::kKeyBufferSize];
      for (std::uint64_t id = 0; id < spec.records; ++id) {
        if ((id & 4095) == 0 && *interrupted) return Status::Ok();
        map_->insert({std::string(keys.Format(id, kbuf)), std::string(value)});
      }
    } catch (const std::exception& e) {
      return ResourceExhausted(std::string("tbb load: ") + e.what());
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Session>> Open() override {
    return std::unique_ptr<Session>(
        new TbbSession(map_.get(), spec_.key_size, spec_.value_size + 64));
  }

  std::string Cleanup() override {
    map_.reset();
    return {};
  }

  std::string Describe() const override {
    return "oneTBB concurrent_hash_map<std::string, std::string>, in-process, "
           "workers are threads";
  }

  std::string Persistence() const override {
    return "none: process memory, gone when the process exits";
  }

 private:
  LoadSpec spec_;
  std::unique_ptr<TbbMap> map_;
};

}  // namespace

std::unique_ptr<Target> MakeTbbTarget() {
  return std::make_unique<TbbTarget>();
}

}  // namespace numagrid::bench
