// Target: one store numagrid-bench drives (numagrid, oneTBB, Boost
// managed_shared_memory, and the peers of peer_targets.h), split into what the
// parent does once (Prepare: create and load; Cleanup: remove) and what each
// worker does (a Session: one per worker process or thread, opened in that
// worker).
//
// Thread safety: a Target is used by the parent thread only; Open() is
// called from worker threads concurrently only for targets whose forks() is
// false (they say so). A Session is thread-compatible: one worker uses it.
#pragma once

#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bench/numagrid_bench/workload.h"
#include "numagrid/status.h"

namespace numagrid::bench {

enum class Outcome : std::uint8_t { kOk, kNotFound, kFailed };

// What every target needs to size and fill its store.
struct LoadSpec {
  std::uint64_t records = 0;
  std::size_t key_size = 0;
  std::size_t value_size = 0;
  // Inserts the runs may make at most (all workers, all runs); stores are
  // sized for records + expected_inserts.
  std::uint64_t expected_inserts = 0;
  std::uint32_t max_procs = 1;
};

class Session {
 public:
  virtual ~Session() = default;
  // Copies the value of `key` out (every target copies: same work).
  virtual Outcome Read(std::string_view key) = 0;
  // Replaces the value of an existing key.
  virtual Outcome Update(std::string_view key, std::string_view value) = 0;
  // Adds a key that must not exist yet.
  virtual Outcome Insert(std::string_view key, std::string_view value) = 0;
  // Reads up to `count` entries starting at key id `start_id` (`start_key`
  // is its key) and copies their values out. numagrid: the first `count`
  // entries of the partition that holds start_key; the others: the keys
  // with ids start_id .. start_id + count - 1 that exist.
  virtual Outcome Scan(std::string_view start_key, std::uint64_t start_id,
                       std::uint32_t count) = 0;
  // The first failure's message, empty if none.
  const std::string& first_error() const { return first_error_; }

 protected:
  Outcome Fail(std::string_view what) {
    if (first_error_.empty()) first_error_ = std::string(what);
    return Outcome::kFailed;
  }
  std::string first_error_;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string_view name() const = 0;
  // True: workers are forked processes that Open() after fork; false:
  // workers are threads of this process.
  virtual bool forks() const = 0;
  // In the parent, before any target is prepared: checks what would make
  // Prepare fail for a reason outside the bench (a peer server that is not
  // running or is configured otherwise), so a long run fails at its start.
  virtual Status Preflight() { return Status::Ok(); }
  // In the parent, before any worker: create the store and load records
  // 0..records-1 with `value`. May poll *interrupted and stop early.
  virtual Status Prepare(const LoadSpec& spec, std::string_view value,
                         const volatile std::sig_atomic_t* interrupted) = 0;
  // In the worker. Errors say why the store cannot be opened.
  virtual Result<std::unique_ptr<Session>> Open() = 0;
  // In the parent: remove what Prepare created (idempotent, also after a
  // failed or interrupted Prepare). Returns a message on failure.
  virtual std::string Cleanup() = 0;
  // A line describing the store (sizes, name), for the report.
  virtual std::string Describe() const = 0;
  // What survives a crash and when a write is durable, for the report
  // (e.g. "none: process memory", "fsync at every commit").
  virtual std::string Persistence() const = 0;
  // True if every acknowledged write has been fdatasync'ed (or fsync'ed):
  // the report sets its update p50 against one fdatasync.
  virtual bool SyncsEachWrite() const { return false; }
  // Empty if the store can run Session::Scan, else why not: the runner then
  // skips scan workloads (E) for it and the report says so.
  virtual std::string ScanUnsupported() const { return {}; }
};

struct NumagridTargetOptions {
  // The target's name in the report: "numagrid", "numagrid-async",
  // "numagrid-sync".
  std::string name = "numagrid";
  // An existing grid to attach to (records are loaded into it and left
  // there); empty: a temporary grid, destroyed in Cleanup.
  std::string grid;
  // The temporary grid's durability: "" memory-only (no journal), "async"
  // or "sync": journaled into a new directory under journal_parent_dir,
  // with the journal workers run by the target itself from Prepare to
  // Cleanup, which removes the directory. REQUIRES: empty with `grid`.
  std::string durability;
  std::string journal_parent_dir = "/var/tmp";
};

// numagrid, as `options` says.
std::unique_ptr<Target> MakeNumagridTarget(NumagridTargetOptions options);
// oneTBB concurrent_hash_map<std::string, std::string> in this process.
std::unique_ptr<Target> MakeTbbTarget();
// boost::unordered_map in a Boost.Interprocess managed_shared_memory segment
// under one interprocess_sharable_mutex.
std::unique_ptr<Target> MakeBoostMapTarget();

}  // namespace numagrid::bench
