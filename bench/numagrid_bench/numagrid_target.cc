// The numagrid target: each worker process attaches its own numagrid::Grid
// after fork() and works on the grid's shared memory directly.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bench/numagrid_bench/target.h"
#include "core/grid_admin.h"
#include "numa/topology.h"
#include "numagrid/grid.h"

namespace numagrid::bench {
namespace {

class NumagridSession final : public Session {
 public:
  NumagridSession(Grid grid, std::size_t value_cap)
      : grid_(std::move(grid)), buf_(value_cap) {}

  Outcome Read(std::string_view key) override {
    auto r = grid_.GetInto(key, buf_.data(), buf_.size());
    if (r.ok()) return Outcome::kOk;
    if (r.status().code() == StatusCode::kNotFound) return Outcome::kNotFound;
    return Fail("GetInto: " + r.status().ToString());
  }
  Outcome Update(std::string_view key, std::string_view value) override {
    auto r = grid_.Put(key, value);
    return r.ok() ? Outcome::kOk : Fail("Put: " + r.status().ToString());
  }
  Outcome Insert(std::string_view key, std::string_view value) override {
    auto r = grid_.Insert(key, value);
    return r.ok() ? Outcome::kOk : Fail("Insert: " + r.status().ToString());
  }
  Outcome Scan(std::string_view start_key, std::uint64_t,
               std::uint32_t count) override {
    std::uint32_t seen = 0;
    const Status s = grid_.Scan(
        [&](std::string_view, std::string_view value, std::uint64_t) {
          std::memcpy(buf_.data(), value.data(),
                      std::min(value.size(), buf_.size()));
          return ++seen < count;
        },
        grid_.PartitionOfKey(start_key));
    if (!s.ok()) return Fail("Scan: " + s.ToString());
    return seen == 0 ? Outcome::kNotFound : Outcome::kOk;
  }

 private:
  Grid grid_;
  std::vector<char> buf_;
};

class NumagridTarget final : public Target {
 public:
  explicit NumagridTarget(std::string grid_name)
      : name_(std::move(grid_name)), temporary_(name_.empty()) {
    if (temporary_) name_ = "numagrid-bench-" + std::to_string(::getpid());
  }

  std::string_view name() const override { return "numagrid"; }
  bool forks() const override { return true; }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    value_cap_ = spec.value_size + 64;
    if (temporary_) {
      auto topology = numa::Topology::Load();
      if (!topology.ok())
        return topology.status().WithContext("Topology::Load");
      const std::uint64_t entries = spec.records + spec.expected_inserts;
      // Records are header (16) + key + value, in size classes; twice that
      // leaves room for replaced records awaiting reuse.
      const std::uint64_t bytes =
          entries * (spec.key_size + spec.value_size + 64) * 2;
      options_.memory_bytes = std::max<std::uint64_t>(256ULL << 20, bytes);
      options_.max_entries =
          std::max<std::uint64_t>(entries + entries / 4, 1024);
      options_.process_capacity =
          std::max<std::uint32_t>(256, spec.max_procs + 8);
      auto created = core::CreateGrid(name_, options_, *topology);
      if (!created.ok())
        return created.status().WithContext("CreateGrid '" + name_ + "'");
      created_ = true;
      topology_source_ = created->topology_source;
    }
    if (!temporary_) {
      auto report = core::InspectGrid(name_, nullptr);
      if (!report.ok())
        return report.status().WithContext("InspectGrid '" + name_ + "'");
      journal_dir_ = report->journal_dir;
      durability_ = report->durability;
    }
    auto grid = Grid::Attach(name_);
    if (!grid.ok()) return grid.status().WithContext("Attach '" + name_ + "'");
    KeySpace keys(spec.key_size);
    char kbuf[KeySpace::kKeyBufferSize];
    for (std::uint64_t id = 0; id < spec.records; ++id) {
      if ((id & 4095) == 0 && *interrupted) return Status::Ok();
      auto r = grid->Put(keys.Format(id, kbuf), value);
      if (!r.ok()) return r.status().WithContext("load Put");
    }
    return Status::Ok();  // the parent's Grid detaches here, before any fork
  }

  Result<std::unique_ptr<Session>> Open() override {
    auto grid = Grid::Attach(name_);
    if (!grid.ok()) return grid.status().WithContext("Attach '" + name_ + "'");
    return std::unique_ptr<Session>(
        new NumagridSession(std::move(*grid), value_cap_));
  }

  std::string Cleanup() override {
    if (!created_) return {};
    created_ = false;
    const Status s = core::DestroyGrid(name_);
    return s.ok() ? std::string()
                  : "DestroyGrid '" + name_ + "': " + s.ToString();
  }

  std::string Describe() const override {
    if (!temporary_)
      return "existing grid '" + name_ + "' (records loaded into it stay)";
    return "temporary grid '" + name_ +
           "': " + std::to_string(options_.partitions) + " partitions, " +
           std::to_string(options_.memory_bytes >> 20) + " MiB, max_entries " +
           std::to_string(options_.max_entries) + ", topology " +
           topology_source_ + ", destroyed at exit";
  }

  std::string Persistence() const override {
    if (temporary_) {
      return "none: memory-only grid (no journal directory); /dev/shm "
             "segments survive a process, not a reboot";
    }
    if (journal_dir_.empty()) return "none: memory-only grid (no journal)";
    return "journal in " + journal_dir_ + ", durability " + durability_ +
           (durability_ == "sync"
                ? " (a put returns after its fdatasync)"
                : " (write-behind: a put returns before its fdatasync)");
  }
  bool SyncsEachWrite() const override { return durability_ == "sync"; }

 private:
  std::string name_;
  bool temporary_;
  bool created_ = false;
  core::CreateOptions options_;
  std::string topology_source_;
  std::string journal_dir_;  // of an existing grid; "" memory-only
  std::string durability_;   // of an existing grid: "async", "sync", "none"
  std::size_t value_cap_ = 0;
};

}  // namespace

std::unique_ptr<Target> MakeNumagridTarget(std::string grid_name) {
  return std::make_unique<NumagridTarget>(std::move(grid_name));
}

}  // namespace numagrid::bench
