// The numagrid target: each worker process attaches its own numagrid::Grid
// after fork() and works on the grid's shared memory directly. A temporary
// grid is memory-only, or journaled (async or sync) with its journal
// workers running in this process for the run (journal_workers.h).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "bench/numagrid_bench/journal_workers.h"
#include "bench/numagrid_bench/target.h"
#include "core/base/check.h"
#include "core/grid_admin.h"
#include "core/journal_layout.h"
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
  explicit NumagridTarget(NumagridTargetOptions options)
      : o_(std::move(options)),
        name_(o_.grid),
        temporary_(name_.empty()),
        durability_(o_.durability) {
    if (temporary_) {
      name_ = "numagrid-bench-" + std::to_string(::getpid());
      if (!durability_.empty()) name_ += "-" + durability_;
    }
  }

  std::string_view name() const override { return o_.name; }
  bool forks() const override { return true; }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    value_cap_ = spec.value_size + 64;
    if (temporary_) {
      auto topology = numa::Topology::Load();
      if (!topology.ok()) {
        return topology.status().WithContext("Topology::Load");
      }
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
      if (!durability_.empty()) {
        NUMAGRID_RETURN_IF_ERROR(MakeJournalDir());
        options_.journal_dir = journal_dir_;
        options_.durability = durability_ == "sync" ? core::kDurabilitySync
                                                    : core::kDurabilityAsync;
      }
      auto created = core::CreateGrid(name_, options_, *topology);
      if (!created.ok()) {
        return created.status().WithContext("CreateGrid '" + name_ + "'");
      }
      created_ = true;
      topology_source_ = created->topology_source;
      if (!durability_.empty()) {
        // Before the first write, so that no put waits on a worker that
        // does not run.
        NUMAGRID_RETURN_IF_ERROR(workers_.Start(name_, journal_dir_));
      }
    }
    if (!temporary_) {
      auto report = core::InspectGrid(name_, nullptr);
      if (!report.ok()) {
        return report.status().WithContext("InspectGrid '" + name_ + "'");
      }
      journal_dir_ = report->journal_dir;
      durability_ = report->durability;
    }
    auto grid = Grid::Attach(name_);
    if (!grid.ok()) return grid.status().WithContext("Attach '" + name_ + "'");
    // The load does not wait for fdatasyncs (a sync grid would take one per
    // record); the workers journal it behind, and the runs' writes then
    // use the grid's durability.
    WriteOptions load_options;
    if (!journal_dir_.empty()) load_options.durability = Durability::kAsync;
    KeySpace keys(spec.key_size);
    char kbuf[KeySpace::kKeyBufferSize];
    for (std::uint64_t id = 0; id < spec.records; ++id) {
      if ((id & 4095) == 0 && *interrupted) return Status::Ok();
      auto r = grid->Put(keys.Format(id, kbuf), value, load_options);
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

  // The workers drain and stop first (the grid must outlive them), then
  // the grid goes, then its journal directory.
  std::string Cleanup() override {
    std::string message = workers_.Stop();
    auto add = [&](const std::string& m) {
      if (m.empty()) return;
      if (!message.empty()) message += "; ";
      message += m;
    };
    if (created_) {
      created_ = false;
      const Status s = core::DestroyGrid(name_);
      if (!s.ok()) add("DestroyGrid '" + name_ + "': " + s.ToString());
    }
    if (temporary_ && !journal_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(journal_dir_, ec);
      if (ec) add("cannot remove " + journal_dir_ + ": " + ec.message());
      journal_dir_.clear();
    }
    return message;
  }

  std::string Describe() const override {
    if (!temporary_) {
      return "existing grid '" + name_ + "' (records loaded into it stay)";
    }
    return "temporary grid '" + name_ +
           "': " + std::to_string(options_.partitions) + " partitions, " +
           std::to_string(options_.memory_bytes >> 20) + " MiB, max_entries " +
           std::to_string(options_.max_entries) + ", topology " +
           topology_source_ +
           (durability_.empty()
                ? std::string()
                : ", journaled (" + durability_ + ", flush interval " +
                      std::to_string(options_.flush_interval_us / 1000) +
                      " ms) by a journal worker thread per node in "
                      "numagrid-bench") +
           ", destroyed at exit";
  }

  std::string Persistence() const override {
    if (temporary_ && durability_.empty()) {
      return "none: memory-only grid (no journal directory); /dev/shm "
             "segments survive a process, not a reboot";
    }
    if (!temporary_ && journal_dir_.empty()) {
      return "none: memory-only grid (no journal)";
    }
    const std::string dir =
        temporary_ ? (options_.journal_dir.empty()
                          ? "a new directory in " + o_.journal_parent_dir
                          : options_.journal_dir) +
                         " (temporary, removed at exit)"
                   : journal_dir_;
    return "journal in " + dir + ", durability " + durability_ +
           (durability_ == "sync"
                ? " (a put returns after its fdatasync)"
                : " (write-behind: a put returns before its fdatasync, "
                  "which follows within the flush interval)");
  }
  bool SyncsEachWrite() const override { return durability_ == "sync"; }

 private:
  Status MakeJournalDir() {
    std::error_code ec;
    const std::filesystem::path parent =
        std::filesystem::absolute(o_.journal_parent_dir, ec);
    if (ec) {
      return IoError("numagrid: " + o_.journal_parent_dir + ": " +
                     ec.message() + " (--disk-dir)");
    }
    std::string tmpl = (parent / "numagrid-bench-journal.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return IoError("numagrid: cannot create a journal directory in " +
                     parent.string() + ": " +
                     std::generic_category().message(errno) + " (--disk-dir)");
    }
    journal_dir_ = tmpl;
    return Status::Ok();
  }

  NumagridTargetOptions o_;
  std::string name_;  // the grid's
  bool temporary_;
  bool created_ = false;
  core::CreateOptions options_;
  std::string topology_source_;
  // A temporary grid's journal directory until Cleanup removes it, or an
  // existing grid's; "" memory-only.
  std::string journal_dir_;
  // "" (temporary memory-only grid), "async", "sync", or an existing
  // grid's "none".
  std::string durability_;
  JournalWorkers workers_;
  std::size_t value_cap_ = 0;
};

}  // namespace

std::unique_ptr<Target> MakeNumagridTarget(NumagridTargetOptions options) {
  return std::make_unique<NumagridTarget>(std::move(options));
}

}  // namespace numagrid::bench
