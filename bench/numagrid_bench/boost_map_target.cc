// The boost-map target: the hand-rolled alternative DESIGN.md measures
// numagrid against. A boost::unordered_map of interprocess strings lives in a
// Boost.Interprocess managed_shared_memory segment, guarded by one
// interprocess_sharable_mutex: reads take it sharable, writes exclusive.
// Worker processes open the segment by name after fork().
//
// Not crash-safe, on purpose (it is a baseline): Boost 1.74's
// interprocess_sharable_mutex is not robust, so a process killed while
// holding it blocks every other one (STYLE.md 5).
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/string.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/interprocess/sync/sharable_lock.hpp>
#include <boost/unordered_map.hpp>

#include "bench/numagrid_bench/target.h"

namespace numagrid::bench {
namespace {

namespace bip = boost::interprocess;

using SegmentManager = bip::managed_shared_memory::segment_manager;
using CharAlloc = bip::allocator<char, SegmentManager>;
using ShmString = bip::basic_string<char, std::char_traits<char>, CharAlloc>;

std::string_view View(const ShmString& s) { return {s.data(), s.size()}; }

// Hash and equality that also take a std::string_view, so lookups build no
// ShmString (that would allocate in the segment).
struct KeyHash {
  std::size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>{}(s);
  }
  std::size_t operator()(const ShmString& s) const { return (*this)(View(s)); }
};
struct KeyEq {
  bool operator()(const ShmString& a, const ShmString& b) const {
    return View(a) == View(b);
  }
  bool operator()(std::string_view a, const ShmString& b) const {
    return a == View(b);
  }
  bool operator()(const ShmString& a, std::string_view b) const {
    return View(a) == b;
  }
};

using Entry = std::pair<const ShmString, ShmString>;
using MapAlloc = bip::allocator<Entry, SegmentManager>;
using ShmMap =
    boost::unordered_map<ShmString, ShmString, KeyHash, KeyEq, MapAlloc>;

// Lives in the segment under kRootName.
struct Root {
  explicit Root(SegmentManager* sm)
      : map(0, KeyHash(), KeyEq(), MapAlloc(sm)) {}
  bip::interprocess_sharable_mutex mu;
  ShmMap map;
};
constexpr const char* kRootName = "numagrid-bench-root";

class BoostMapSession final : public Session {
 public:
  BoostMapSession(std::unique_ptr<bip::managed_shared_memory> segment,
                  Root* root, std::size_t key_size, std::size_t value_cap)
      : segment_(std::move(segment)),
        root_(root),
        keys_(key_size),
        buf_(value_cap) {}

  Outcome Read(std::string_view key) override {
    bip::sharable_lock<bip::interprocess_sharable_mutex> lock(root_->mu);
    return CopyOut(key);
  }
  Outcome Update(std::string_view key, std::string_view value) override {
    try {
      bip::scoped_lock<bip::interprocess_sharable_mutex> lock(root_->mu);
      auto it = root_->map.find(key, KeyHash(), KeyEq());
      if (it == root_->map.end()) return Outcome::kNotFound;
      it->second.assign(value.begin(),
                        value.end());  // same size: no allocation
    } catch (const std::exception& e) {
      return Fail(std::string("update: ") + e.what());
    }
    return Outcome::kOk;
  }
  Outcome Insert(std::string_view key, std::string_view value) override {
    try {
      const CharAlloc alloc(segment_->get_segment_manager());
      ShmString k(key.begin(), key.end(), alloc);
      ShmString v(value.begin(), value.end(), alloc);
      bip::scoped_lock<bip::interprocess_sharable_mutex> lock(root_->mu);
      if (!root_->map.emplace(std::move(k), std::move(v)).second) {
        return Fail("insert: key exists");
      }
    } catch (const std::exception& e) {
      return Fail(std::string("insert: ") + e.what());
    }
    return Outcome::kOk;
  }
  Outcome Scan(std::string_view, std::uint64_t start_id,
               std::uint32_t count) override {
    char kbuf[KeySpace::kKeyBufferSize];
    std::uint32_t found = 0;
    bip::sharable_lock<bip::interprocess_sharable_mutex> lock(root_->mu);
    for (std::uint32_t i = 0; i < count; ++i) {
      if (CopyOut(keys_.Format(start_id + i, kbuf)) == Outcome::kOk) ++found;
    }
    return found == 0 ? Outcome::kNotFound : Outcome::kOk;
  }

 private:
  // REQUIRES: root_->mu held, sharable or exclusive.
  Outcome CopyOut(std::string_view key) {
    auto it = root_->map.find(key, KeyHash(), KeyEq());
    if (it == root_->map.end()) return Outcome::kNotFound;
    std::memcpy(buf_.data(), it->second.data(),
                std::min(it->second.size(), buf_.size()));
    return Outcome::kOk;
  }

  std::unique_ptr<bip::managed_shared_memory> segment_;
  Root* root_;
  KeySpace keys_;
  std::vector<char> buf_;
};

class BoostMapTarget final : public Target {
 public:
  BoostMapTarget()
      : segment_name_("numagrid-bench-boost-" + std::to_string(::getpid())) {}
  ~BoostMapTarget() override { Cleanup(); }

  std::string_view name() const override { return "boost-map"; }
  bool forks() const override { return true; }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    spec_ = spec;
    const std::uint64_t entries = spec.records + spec.expected_inserts;
    // Per entry: a node (pair of two strings, next pointer, hash), a bucket,
    // and key and value blocks with the allocator's headers; twice that for
    // fragmentation. The file is sparse: untouched pages cost nothing.
    segment_bytes_ = std::max<std::uint64_t>(
        64ULL << 20, entries * (spec.key_size + spec.value_size + 160) * 2);
    try {
      bip::shared_memory_object::remove(segment_name_.c_str());
      segment_ = std::make_unique<bip::managed_shared_memory>(
          bip::create_only, segment_name_.c_str(), segment_bytes_);
      created_ = true;
      Root* root =
          segment_->construct<Root>(kRootName)(segment_->get_segment_manager());
      root->map.reserve(entries);
      KeySpace keys(spec.key_size);
      char kbuf[KeySpace::kKeyBufferSize];
      const CharAlloc alloc(segment_->get_segment_manager());
      for (std::uint64_t id = 0; id < spec.records; ++id) {
        if ((id & 4095) == 0 && *interrupted) return Status::Ok();
        const std::string_view k = keys.Format(id, kbuf);
        root->map.emplace(ShmString(k.begin(), k.end(), alloc),
                          ShmString(value.begin(), value.end(), alloc));
      }
    } catch (const std::exception& e) {
      return ResourceExhausted("boost-map segment '" + segment_name_ +
                               "': " + e.what());
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Session>> Open() override {
    try {
      auto segment = std::make_unique<bip::managed_shared_memory>(
          bip::open_only, segment_name_.c_str());
      Root* root = segment->find<Root>(kRootName).first;
      if (root == nullptr)
        return NotFound("no map in segment '" + segment_name_ + "'");
      return std::unique_ptr<Session>(new BoostMapSession(
          std::move(segment), root, spec_.key_size, spec_.value_size + 64));
    } catch (const std::exception& e) {
      return IoError("open boost-map segment '" + segment_name_ +
                     "': " + e.what());
    }
  }

  std::string Cleanup() override {
    segment_.reset();
    if (!created_) return {};
    created_ = false;
    if (!bip::shared_memory_object::remove(segment_name_.c_str())) {
      return "cannot remove /dev/shm/" + segment_name_;
    }
    return {};
  }

  std::string Describe() const override {
    return "boost::unordered_map in managed_shared_memory '" + segment_name_ +
           "' (" + std::to_string(segment_bytes_ >> 20) +
           " MiB, sparse) under one interprocess_sharable_mutex; workers are "
           "processes";
  }

  std::string Persistence() const override {
    return "none: a /dev/shm segment (survives a process, not a reboot; not "
           "crash-safe: a process killed under the lock blocks the others)";
  }

 private:
  std::string segment_name_;
  LoadSpec spec_;
  std::uint64_t segment_bytes_ = 0;
  bool created_ = false;
  std::unique_ptr<bip::managed_shared_memory> segment_;
};

}  // namespace

std::unique_ptr<Target> MakeBoostMapTarget() {
  return std::make_unique<BoostMapTarget>();
}

}  // namespace numagrid::bench
