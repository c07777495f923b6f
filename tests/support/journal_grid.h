// Helpers for the journal, worker and recovery suites: a temporary journal
// directory, a journal worker on a thread of its own, a grid's live entries
// as a map (key, value, version, expiry), a node's journal read back as
// records, and the state those records describe (the model recovery must
// reproduce).
//
// Thread safety: thread-compatible, except WorkerThread, whose Stop() may be
// called from any one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_worker.h"
#include "io/journal_reader.h"
#include "io/journal_record.h"
#include "numa/topology.h"
#include "numagrid/status.h"

namespace numagrid::testing {

// A fresh directory under /tmp (mkdtemp), removed with everything in it when
// the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Removes `path` and everything below it; a missing path is fine.
void RemoveTree(const std::string& path);

// The regular files directly in `dir`, name -> contents.
using DirFiles = std::map<std::string, std::string>;
DirFiles ReadDirFiles(const std::string& dir);
// Makes `dir` hold exactly `files` (removing every other regular file).
void WriteDirFiles(const std::string& dir, const DirFiles& files);
std::string ReadFileBytes(const std::string& path);
void WriteFileBytes(const std::string& path, std::string_view bytes);

// The machine this test runs on (loaded once).
const numa::Topology& SystemTopology();

// A small journaled grid: 4 partitions, 8 MiB, async, flushing every
// millisecond, no automatic snapshots, 2 s sync wait.
core::CreateOptions JournaledOptions(const std::string& dir);

// Destroys grid `name` when it goes out of scope, if it still exists.
class GridGuard {
 public:
  explicit GridGuard(std::string name) : name_(std::move(name)) {}
  ~GridGuard();
  GridGuard(const GridGuard&) = delete;
  GridGuard& operator=(const GridGuard&) = delete;

 private:
  std::string name_;
};

// One live entry as the grid holds it.
struct Entry {
  std::string value;
  std::uint64_t version = 0;
  std::uint64_t expiry_ms = 0;  // 0: never expires
  bool operator==(const Entry&) const = default;
};
void PrintTo(const Entry& e, std::ostream* os);

using GridState = std::map<std::string, Entry>;

// Every entry of grid `name` that is live at `now_ms` (0: now), read
// through a handle of its own. Records an ADD_FAILURE if it cannot attach.
GridState ReadGridState(std::string_view name, std::uint64_t now_ms = 0);

// "" when `want` and `got` are equal; else the first differences, readable.
std::string StateDiff(const GridState& want, const GridState& got);

// One journal record, owning its bytes.
struct JournalRecord {
  std::uint64_t sequence = 0;
  std::uint32_t partition = 0;
  io::RecordOp op = io::RecordOp::kPut;
  std::uint64_t change_seq = 0;
  std::uint64_t version = 0;
  std::uint64_t expiry_ms = 0;
  std::string key;
  std::string value;
  bool operator==(const JournalRecord&) const = default;
};
void PrintTo(const JournalRecord& r, std::ostream* os);

// A node's journal read back with io::JournalReader, leaving the files
// alone.
struct JournalRead {
  Status status;  // of opening or reading; OK at a clean or torn end
  std::vector<JournalRecord> records;
  io::DroppedTail tail;
  std::vector<io::SegmentFile> segments;
};
JournalRead ReadJournal(const std::string& dir, std::uint32_t node = 0,
                        std::uint64_t grid_id = 0);

// The state `records` describe: each partition's changes applied once, in
// change order (a record whose change_seq is not above the last one applied
// to its partition is a re-journaled duplicate and is skipped), entries
// expired at `now_ms` (0: now) left out.
GridState ModelOf(const std::vector<JournalRecord>& records,
                  std::uint64_t now_ms = 0);

// A journal worker for one node of grid `name`, run by RunJournalWorker on a
// thread of its own with a handle of its own. `options.stop` is replaced by
// the object's own flag; `options.log` lines are kept (see log()) and also
// passed on. Without `options.make_device`, the worker uses io_uring, or
// plain files (FaultJournalDevice without faults) where io_uring is refused.
class WorkerThread {
 public:
  WorkerThread(const std::string& name, core::JournalWorkerOptions options);
  explicit WorkerThread(const std::string& name)
      : WorkerThread(name, core::JournalWorkerOptions{}) {}
  ~WorkerThread();
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Sets the stop flag, wakes the worker (so that it need not sleep out its
  // flush interval), joins it, and returns what RunJournalWorker returned.
  // Later calls return the same.
  Status Stop();
  // Whether RunJournalWorker has returned (on its own: an error).
  bool finished() const noexcept {
    return finished_.load(std::memory_order_acquire);
  }
  std::vector<std::string> log() const;

 private:
  std::unique_ptr<core::GridHandle> handle_;
  core::JournalWorkerOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  Status result_;
  bool joined_ = false;
  mutable std::mutex log_mu_;
  std::vector<std::string> log_;
  std::thread thread_;
};

// Polls `done` every millisecond until it returns true or `deadline_ms`
// passes; returns its last answer.
bool PollUntil(const std::function<bool()>& done,
               std::uint32_t deadline_ms = 10000);

// True when every partition's changes are all journaled (journaled_seq ==
// next_seq).
bool AllJournaled(core::GridHandle& h);

// The pid of the journal worker of node `node` of grid `name` if one
// journals (published, state running, the process alive), else 0.
std::uint64_t RunningWorkerPid(const std::string& name, std::uint32_t node = 0);

// A fixture: a journaled grid (JournaledOptions) with a journal directory
// of its own, attached as h_, destroyed with its directory at the end.
class JournaledGridTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  TempDir dir_;
  std::string name_;
  std::optional<GridGuard> guard_;
  std::unique_ptr<core::GridHandle> h_;
};

// Keys, in order, that hash to partition `p` of a grid of `partitions`.
std::vector<std::string> KeysOfPartition(std::uint32_t p,
                                         std::uint32_t partitions,
                                         std::size_t count,
                                         std::string_view prefix = "k");

}  // namespace numagrid::testing
