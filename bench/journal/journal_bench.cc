// Micro-benchmarks of the journal, each read as a ratio to a baseline
// measured in the same run (DESIGN.md, "Performance targets";
// docs/benchmarks.md, "Journal"):
//   BM_PlainSequentialWrite/S    baseline: write(2) of 1 MiB buffers into
//                                64 MiB files, one fdatasync per S MiB
//   BM_JournalWriterBandwidth/V/N  io::JournalWriter (io_uring): N records
//                                of a 16-byte key and a V-byte value, then
//                                one Flush (group commit); x_plain64 and
//                                x_plain4 = its bytes/s over the baselines'
//   BM_JournalVsPlainWrite/V/N   one such group, then a plain write +
//                                fdatasync of as many bytes, alternately;
//                                journal_x_plain
//   BM_Fdatasync                 baseline: a 128-byte append + fdatasync
//   BM_JournalWriterFlushLatency one record appended and flushed
//   BM_SyncPutVsFdatasync        an append + fdatasync, then a sync-mode
//                                put, alternately; p50_x_fdatasync
//   BM_SyncPut                   Grid::Put in sync durability, 1/2/4 writer
//                                threads; items/s, puts_per_fdatasync (group
//                                commit at work), p50_x_fdatasync (against
//                                16 fdatasyncs timed just before the loop)
//   BM_Get, BM_AsyncPut          on the same journaled grid; p50_x_get
//   BM_Recovery/C                RecoverGrid of a prepared journal (C = 1:
//                                its page cache dropped first); records
//                                replayed per second, per TBB thread and per
//                                CPU-second of the process
// A ratio counter against another benchmark (x_plain*, p50_x_get,
// p50_x_bm_fdatasync) appears only when that baseline ran earlier in the
// same process, in registration order; with --benchmark_repetitions it uses
// the baseline's last repetition.
//
// Files go to a fresh directory made under --dir=PATH (default /var/tmp,
// because /tmp may be tmpfs, where fdatasync costs nothing) and removed at
// exit; the context names it and its file system type (bench_fs). The grids
// "jb<pid>" (puts and gets) and "jbrec<pid>" (recovery) are destroyed at
// exit, but not after a kill: then `numagrid destroy` them.
//
// The worker of each journaled grid is RunJournalWorker on a thread of this
// process with a GridHandle of its own, one per NUMA node, as `numagrid
// worker` would run it in a process of its own.
//
// Defaults take well under a minute on 2 cores. For steadier numbers run
// longer, e.g. (one command line):
//   journal_bench --benchmark_min_time=3 --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true --recovery-records=10000000
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <oneapi/tbb/info.h>

#include "bench/numagrid_bench/histogram.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_worker.h"
#include "core/recovery.h"
#include "io/journal_record.h"
#include "io/journal_writer.h"
#include "numa/topology.h"
#include "numagrid/grid.h"

namespace numagrid {
namespace {

using bench::LatencyHistogram;

// ------------------------------------------------------------ options

std::string g_parent_dir = "/var/tmp";         // --dir
std::uint64_t g_recovery_records = 1'000'000;  // --recovery-records
std::uint64_t g_recovery_keys = 100'000;       // --recovery-keys
std::string g_root;  // this run's directory, made by main, removed at exit

constexpr std::size_t kKeyCount = 100'000;  // keys of the put/get grid
constexpr std::size_t kValueBytes = 100;
constexpr std::uint32_t kPartitions = 64;
constexpr std::size_t kIndexCount = 1 << 16;  // random key indices, 2^n
constexpr int kMaxThreads = 4;
constexpr std::size_t kChunkBytes = 1 << 20;       // one write(2)
constexpr std::uint64_t kFileBytes = 64ULL << 20;  // plain: one file
// Written files are deleted (outside the timing) once this much piled up,
// so a long run does not fill the disk.
constexpr std::uint64_t kKeepBytes = 1ULL << 30;
// BM_Get and BM_AsyncPut time one operation in 16 for their percentiles, so
// that the clock reads barely touch the mean.
constexpr std::uint64_t kSampleMask = 15;

// --------------------------------------------------------------- helpers

std::uint64_t NowNs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

std::string MakeKey(std::uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "user%012llu",
                static_cast<unsigned long long>(n));
  return buf;
}

// strerror's text, thread-safely.
std::string ErrnoText(int err) { return std::generic_category().message(err); }

void Skip(benchmark::State& state, std::string_view what, const Status& s) {
  const std::string msg = std::string(what) + ": " + s.ToString();
  state.SkipWithError(msg.c_str());
}

void SkipErrno(benchmark::State& state, std::string_view what, int err) {
  const std::string msg = std::string(what) + ": " + ErrnoText(err);
  state.SkipWithError(msg.c_str());
}

// A new empty directory under g_root, for one benchmark call.
std::string NewDir(std::string_view what) {
  static std::atomic<int> seq{0};
  std::string path =
      g_root + "/" + std::string(what) + "-" + std::to_string(seq.fetch_add(1));
  if (mkdir(path.c_str(), 0700) != 0) {
    std::fprintf(stderr, "journal_bench: mkdir %s: %s\n", path.c_str(),
                 ErrnoText(errno).c_str());
    // The run cannot go on without its directory; no thread of ours holds
    // state that exit() could tear.
    std::exit(1);  // NOLINT(concurrency-mt-unsafe)
  }
  return path;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// Commits the file system of `dir` (deletions included, and with `discard`
// mounts their trims), so that the next timed loop does not pay for them.
void SyncFs(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)syncfs(fd);
  close(fd);
}

// Deletes the regular files of `dir` except `keep` (a name).
void RemoveFilesExcept(const std::string& dir, std::string_view keep) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> doomed;
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    if (e->d_type == DT_REG && keep != e->d_name) {
      doomed.emplace_back(e->d_name);
    }
  }
  closedir(d);
  for (const auto& name : doomed) {
    std::string path = dir;
    path += '/';
    path += name;
    unlink(path.c_str());
  }
}

// Drops the page cache of every file in `dir` (they are all synced, so
// their pages are clean and go at once).
void DropCache(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    if (e->d_type != DT_REG) continue;
    const std::string path = dir + "/" + e->d_name;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  closedir(d);
}

bool WriteAll(int fd, const char* data, std::size_t len) {
  while (len > 0) {
    const ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

// Wall time of a benchmark loop without its paused stretches: what the
// baselines divide their bytes by, for the ratio counters of later
// benchmarks.
class ActiveClock {
 public:
  ActiveClock() : start_ns_(NowNs()) {}
  void Pause(benchmark::State& state) {
    state.PauseTiming();
    pause_ns_ = NowNs();
  }
  void Resume(benchmark::State& state) {
    paused_ns_ += NowNs() - pause_ns_;
    state.ResumeTiming();
  }
  double Seconds() const {
    return static_cast<double>(NowNs() - start_ns_ - paused_ns_) * 1e-9;
  }

 private:
  std::uint64_t start_ns_;
  std::uint64_t pause_ns_ = 0;
  std::uint64_t paused_ns_ = 0;
};

// Baselines measured earlier in this run (0: not run). Each benchmark call
// overwrites them; the last call is the one Google Benchmark reports.
double g_plain64_bytes_per_s = 0;
double g_plain4_bytes_per_s = 0;
double g_fdatasync_p50_ns = 0;
double g_get_p50_ns = 0;

const numa::Topology* SystemTopology(Status* error) {
  static auto* topology = new Result<numa::Topology>(numa::Topology::Load());
  if (!topology->ok()) {
    *error = topology->status();
    return nullptr;
  }
  return &**topology;
}

// ------------------------------------------ plain writes, journal groups

// Sequential write(2) of 1 MiB buffers (the last one of a batch shorter)
// into 64 MiB files of one directory, an fdatasync after each batch.
// Thread safety: thread-compatible.
class PlainWriter {
 public:
  explicit PlainWriter(std::string dir) : dir_(std::move(dir)) {
    for (std::size_t i = 0; i < chunk_.size(); ++i) {
      chunk_[i] = static_cast<char>('a' + i % 26);
    }
  }
  ~PlainWriter() {
    if (fd_ >= 0) close(fd_);
  }
  PlainWriter(const PlainWriter&) = delete;
  PlainWriter& operator=(const PlainWriter&) = delete;

  // Writes `bytes` and fdatasyncs them, opening a new file first when the
  // current one reached 64 MiB. 0, or the errno with what failed in *what.
  int WriteAndSync(std::uint64_t bytes, std::string* what) {
    if (fd_ < 0 || file_bytes_ >= kFileBytes) {
      if (fd_ >= 0) close(fd_);
      path_ = dir_ + "/plain-" + std::to_string(files_++) + ".dat";
      fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd_ < 0) {
        *what = "open " + path_;
        return errno;
      }
      file_bytes_ = 0;
    }
    for (std::uint64_t done = 0; done < bytes;) {
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(kChunkBytes, bytes - done));
      if (!WriteAll(fd_, chunk_.data(), n)) {
        *what = "write " + path_;
        return errno;
      }
      done += n;
    }
    if (fdatasync(fd_) != 0) {
      *what = "fdatasync " + path_;
      return errno;
    }
    file_bytes_ += bytes;
    kept_ += bytes;
    return 0;
  }

  // Whether enough piled up that CleanUp() should run (outside the timing).
  bool NeedsCleanUp() const { return kept_ >= kKeepBytes; }
  // Deletes every file but the open one and commits the deletions.
  void CleanUp() {
    RemoveFilesExcept(dir_, path_.substr(path_.rfind('/') + 1));
    SyncFs(dir_);
    kept_ = 0;
  }

 private:
  const std::string dir_;
  std::vector<char> chunk_ = std::vector<char>(kChunkBytes);
  int fd_ = -1;
  int files_ = 0;
  std::string path_;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t kept_ = 0;
};

// An io::JournalWriter over its own io_uring device (64 MiB segments) and
// the records it appends: a 16-byte key and a `value_bytes` value.
// Thread safety: thread-compatible.
class JournalGroups {
 public:
  JournalGroups(std::string dir, std::size_t value_bytes)
      : dir_(std::move(dir)), value_(value_bytes, 'v') {
    keys_.reserve(4096);
    for (std::uint64_t i = 0; i < 4096; ++i) keys_.push_back(MakeKey(i * 24));
    record_.op = io::RecordOp::kPut;
    record_.value = value_;
  }
  JournalGroups(const JournalGroups&) = delete;
  JournalGroups& operator=(const JournalGroups&) = delete;

  Status Open() {
    io::JournalWriterOptions options;
    options.dir = dir_;
    options.grid_id = 1;
    auto w = io::JournalWriter::Open(options);
    if (!w.ok()) return w.status().WithContext("JournalWriter::Open");
    writer_ = std::move(*w);
    return Status::Ok();
  }

  // Appends `records` records, then one Flush: a group commit.
  Status AppendAndFlush(std::size_t records) {
    if (writer_ == nullptr) return InvalidArgument("journal writer not open");
    for (std::size_t i = 0; i < records; ++i) {
      ++seq_;
      record_.partition_id = static_cast<std::uint32_t>(seq_ % kPartitions);
      record_.change_seq = seq_;
      record_.version = seq_;
      record_.key = keys_[seq_ % keys_.size()];
      auto appended = writer_->Append(record_);
      if (!appended.ok()) return appended.status().WithContext("Append");
    }
    Status s = writer_->Flush();
    if (!s.ok()) return s.WithContext("Flush");
    kept_ += records * record_bytes();
    return Status::Ok();
  }

  std::uint64_t record_bytes() const {
    return io::EncodedRecordBytes(keys_[0].size(), value_.size());
  }
  io::JournalWriterStats stats() const {
    return writer_ != nullptr ? writer_->stats() : io::JournalWriterStats{};
  }

  bool NeedsCleanUp() const { return kept_ >= kKeepBytes; }
  // Deletes every segment but the one being written and commits that.
  void CleanUp() {
    const std::string current = stats().segment_path;
    RemoveFilesExcept(dir_, current.substr(current.rfind('/') + 1));
    SyncFs(dir_);
    kept_ = 0;
  }

  void Close() {
    if (writer_ != nullptr) (void)writer_->Close();
    writer_.reset();
  }

 private:
  const std::string dir_;
  const std::string value_;
  std::vector<std::string> keys_;
  io::RecordView record_;
  std::unique_ptr<io::JournalWriter> writer_;
  std::uint64_t seq_ = 0;
  std::uint64_t kept_ = 0;
};

// ------------------------------------------------- write bandwidth

// Baseline: one iteration writes range(0) MiB and fdatasyncs it. Arg 64 is
// the DESIGN baseline; Arg 4 syncs as often as the journal writer's
// 4096 x 1000-byte groups do.
void BM_PlainSequentialWrite(benchmark::State& state) {
  const std::uint64_t sync_bytes = static_cast<std::uint64_t>(state.range(0))
                                   << 20;
  const std::string dir = NewDir("plain");
  std::uint64_t written = 0;
  {
    PlainWriter plain(dir);
    ActiveClock clock;
    for (auto _ : state) {
      std::string what;
      if (const int err = plain.WriteAndSync(sync_bytes, &what); err != 0) {
        SkipErrno(state, what, err);
        break;
      }
      written += sync_bytes;
      if (plain.NeedsCleanUp()) {
        clock.Pause(state);
        plain.CleanUp();
        clock.Resume(state);
      }
    }
    const double seconds = clock.Seconds();
    state.SetBytesProcessed(static_cast<std::int64_t>(written));
    if (seconds > 0) {
      const auto rate = static_cast<double>(written) / seconds;
      if (state.range(0) == 64) g_plain64_bytes_per_s = rate;
      if (state.range(0) == 4) g_plain4_bytes_per_s = rate;
    }
  }
  RemoveTree(dir);
  SyncFs(g_root);
}

// io::JournalWriter: one iteration appends range(1) records of a 16-byte
// key and a range(0)-byte value, then Flushes them (write and fdatasync as
// one linked io_uring submission).
void BM_JournalWriterBandwidth(benchmark::State& state) {
  const auto per_flush = static_cast<std::size_t>(state.range(1));
  const std::string dir = NewDir("journal");
  {
    JournalGroups journal(dir, static_cast<std::size_t>(state.range(0)));
    if (Status s = journal.Open(); !s.ok()) {
      Skip(state, "journal", s);
    }
    ActiveClock clock;
    for (auto _ : state) {
      if (Status s = journal.AppendAndFlush(per_flush); !s.ok()) {
        Skip(state, "journal", s);
        break;
      }
      if (journal.NeedsCleanUp()) {
        clock.Pause(state);
        journal.CleanUp();
        clock.Resume(state);
      }
    }
    const double seconds = clock.Seconds();
    const io::JournalWriterStats st = journal.stats();
    state.SetBytesProcessed(static_cast<std::int64_t>(st.durable_bytes));
    state.SetItemsProcessed(static_cast<std::int64_t>(st.durable_records));
    state.counters["record_bytes"] =
        static_cast<double>(journal.record_bytes());
    if (st.flushes > 0) {
      state.counters["MiB_per_flush"] = static_cast<double>(st.durable_bytes) /
                                        static_cast<double>(st.flushes) /
                                        (1 << 20);
    }
    const double rate =
        seconds > 0 ? static_cast<double>(st.durable_bytes) / seconds : 0;
    if (g_plain64_bytes_per_s > 0) {
      state.counters["x_plain64"] = rate / g_plain64_bytes_per_s;
    }
    if (g_plain4_bytes_per_s > 0) {
      state.counters["x_plain4"] = rate / g_plain4_bytes_per_s;
    }
    journal.Close();
  }
  RemoveTree(dir);
  SyncFs(g_root);
}

// The two above interleaved, so that both see the same disk: one iteration
// is a journal group (range(1) records of a range(0)-byte value, one Flush)
// and then a plain write + fdatasync of as many bytes. journal_x_plain is
// the ratio of their bandwidths, each over its own time.
void BM_JournalVsPlainWrite(benchmark::State& state) {
  const auto per_flush = static_cast<std::size_t>(state.range(1));
  const std::string dir = NewDir("paired");
  const std::string journal_dir = dir + "/journal";
  const std::string plain_dir = dir + "/plain";
  mkdir(journal_dir.c_str(), 0700);
  mkdir(plain_dir.c_str(), 0700);
  {
    JournalGroups journal(journal_dir,
                          static_cast<std::size_t>(state.range(0)));
    PlainWriter plain(plain_dir);
    if (Status s = journal.Open(); !s.ok()) {
      Skip(state, "journal", s);
    }
    const std::uint64_t group_bytes = per_flush * journal.record_bytes();
    std::uint64_t journal_ns = 0;
    std::uint64_t plain_ns = 0;
    std::uint64_t plain_bytes = 0;
    for (auto _ : state) {
      const std::uint64_t t0 = NowNs();
      if (Status s = journal.AppendAndFlush(per_flush); !s.ok()) {
        Skip(state, "journal", s);
        break;
      }
      const std::uint64_t t1 = NowNs();
      std::string what;
      if (const int err = plain.WriteAndSync(group_bytes, &what); err != 0) {
        SkipErrno(state, what, err);
        break;
      }
      const std::uint64_t t2 = NowNs();
      journal_ns += t1 - t0;
      plain_ns += t2 - t1;
      plain_bytes += group_bytes;
      if (journal.NeedsCleanUp() || plain.NeedsCleanUp()) {
        state.PauseTiming();
        journal.CleanUp();
        plain.CleanUp();
        state.ResumeTiming();
      }
    }
    const io::JournalWriterStats st = journal.stats();
    if (journal_ns > 0 && plain_ns > 0) {
      const auto journal_rate = static_cast<double>(st.durable_bytes) /
                                (static_cast<double>(journal_ns) * 1e-9);
      const auto plain_rate = static_cast<double>(plain_bytes) /
                              (static_cast<double>(plain_ns) * 1e-9);
      // Binary units, like Google Benchmark's own bytes_per_second.
      state.counters["journal_bytes_per_s"] =
          benchmark::Counter(journal_rate, benchmark::Counter::kDefaults,
                             benchmark::Counter::kIs1024);
      state.counters["plain_bytes_per_s"] =
          benchmark::Counter(plain_rate, benchmark::Counter::kDefaults,
                             benchmark::Counter::kIs1024);
      state.counters["journal_x_plain"] = journal_rate / plain_rate;
    }
    state.counters["MiB_per_sync"] =
        static_cast<double>(group_bytes) / (1 << 20);
    journal.Close();
  }
  RemoveTree(dir);
  SyncFs(g_root);
}

// ------------------------------------------------- fdatasync baseline

// One 128-byte append (write(2) on O_APPEND) and fdatasync per iteration:
// the cost a sync-mode put is compared with.
void BM_Fdatasync(benchmark::State& state) {
  const std::string dir = NewDir("fdatasync");
  const std::string path = dir + "/append.dat";
  const int fd = open(path.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    SkipErrno(state, "open " + path, errno);
    RemoveTree(dir);
    return;
  }
  char record[128];
  std::memset(record, 'r', sizeof record);
  auto hist = std::make_unique<LatencyHistogram>();
  for (auto _ : state) {
    const std::uint64_t t0 = NowNs();
    if (!WriteAll(fd, record, sizeof record) || fdatasync(fd) != 0) {
      SkipErrno(state, "append + fdatasync " + path, errno);
      break;
    }
    hist->Record(NowNs() - t0);
  }
  close(fd);
  state.SetItemsProcessed(state.iterations());
  const auto p50 = static_cast<double>(hist->ValueAtQuantile(0.5));
  state.counters["p50_us"] = p50 / 1e3;
  state.counters["p99_us"] =
      static_cast<double>(hist->ValueAtQuantile(0.99)) / 1e3;
  g_fdatasync_p50_ns = p50;
  RemoveTree(dir);
}

// One record (16-byte key, 100-byte value) appended and flushed per
// iteration: the journal writer's own cost of making one small change
// durable (io_uring write linked to an fdatasync), between the fdatasync
// baseline and a sync-mode put, which adds the worker's wake-up, ring scan
// and marking.
void BM_JournalWriterFlushLatency(benchmark::State& state) {
  const std::string dir = NewDir("journal-sync");
  io::JournalWriterOptions options;
  options.dir = dir;
  options.grid_id = 1;
  auto writer = io::JournalWriter::Open(options);
  if (!writer.ok()) {
    Skip(state, "JournalWriter::Open", writer.status());
    RemoveTree(dir);
    return;
  }
  const std::string key = MakeKey(7);
  const std::string value(kValueBytes, 'v');
  io::RecordView r;
  r.op = io::RecordOp::kPut;
  r.key = key;
  r.value = value;
  auto hist = std::make_unique<LatencyHistogram>();
  std::uint64_t seq = 0;
  for (auto _ : state) {
    ++seq;
    r.change_seq = seq;
    r.version = seq;
    const std::uint64_t t0 = NowNs();
    auto appended = (*writer)->Append(r);
    Status s = appended.ok() ? (*writer)->Flush() : appended.status();
    hist->Record(NowNs() - t0);
    if (!s.ok()) {
      Skip(state, "Append + Flush", s);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  const auto p50 = static_cast<double>(hist->ValueAtQuantile(0.5));
  state.counters["p50_us"] = p50 / 1e3;
  state.counters["p99_us"] =
      static_cast<double>(hist->ValueAtQuantile(0.99)) / 1e3;
  if (g_fdatasync_p50_ns > 0) {
    state.counters["p50_x_fdatasync"] = p50 / g_fdatasync_p50_ns;
  }
  (void)(*writer)->Close();
  writer->reset();
  RemoveTree(dir);
}

// The median of `samples` 128-byte appends + fdatasync on a new file, for a
// baseline taken right before a timed loop: on a shared machine the cost of
// an fdatasync drifts between benchmarks. 0 if the file cannot be written.
double FdatasyncP50Ns(int samples) {
  const std::string dir = NewDir("fdatasync-local");
  const std::string path = dir + "/append.dat";
  const int fd = open(path.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  std::vector<std::uint64_t> ns;
  char record[128];
  std::memset(record, 'r', sizeof record);
  for (int i = 0; fd >= 0 && i < samples; ++i) {
    const std::uint64_t t0 = NowNs();
    if (!WriteAll(fd, record, sizeof record) || fdatasync(fd) != 0) break;
    ns.push_back(NowNs() - t0);
  }
  if (fd >= 0) close(fd);
  RemoveTree(dir);
  if (ns.size() != static_cast<std::size_t>(samples)) return 0;
  std::nth_element(ns.begin(), ns.begin() + samples / 2, ns.end());
  return static_cast<double>(ns[samples / 2]);
}

// ------------------------------------------------- journaled grids

// A journaled grid and its journal workers: one per NUMA node, each
// RunJournalWorker on a thread of its own with a GridHandle of its own.
// Thread safety: thread-compatible; Flushes() may be called from any
// thread while the workers run.
class WorkedGrid {
 public:
  WorkedGrid() = default;
  WorkedGrid(const WorkedGrid&) = delete;
  WorkedGrid& operator=(const WorkedGrid&) = delete;
  ~WorkedGrid() { Destroy(); }

  // Creates grid `name` with `options` and starts its workers.
  Status Create(std::string name, const core::CreateOptions& options) {
    Status error;
    const numa::Topology* topology = SystemTopology(&error);
    if (topology == nullptr) return error;
    auto created = core::CreateGrid(name, options, *topology);
    if (!created.ok()) return created.status();
    name_ = std::move(name);
    created_ = true;
    return StartWorkers();
  }

  Status StartWorkers() {
    stop_.store(false);
    auto probe = core::GridHandle::Attach(name_);
    if (!probe.ok()) return probe.status();
    const std::uint32_t nodes = (*probe)->config().node_count;
    stats_ = std::move(*probe);
    results_.assign(nodes, Status());
    for (std::uint32_t node = 0; node < nodes; ++node) {
      auto h = core::GridHandle::Attach(name_);
      if (!h.ok()) return h.status();
      core::JournalWorkerOptions o;
      o.node = node;
      o.stop = &stop_;
      o.log = [this](std::string_view line) {
        const std::lock_guard<std::mutex> lock(log_mu_);
        log_.emplace_back(line);
      };
      core::GridHandle* raw = h->get();
      handles_.push_back(std::move(*h));
      threads_.emplace_back([this, raw, o, node] {
        results_[node] = core::RunJournalWorker(*raw, o);
      });
    }
    return Status::Ok();
  }

  // Stops the workers after they drained every ring; the first error.
  Status StopWorkers() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
    handles_.clear();
    Status first;
    for (const Status& s : results_) {
      if (!s.ok() && first.ok()) first = s;
    }
    if (!first.ok()) {
      const std::lock_guard<std::mutex> lock(log_mu_);
      for (const auto& line : log_) {
        std::fprintf(stderr, "journal_bench: worker: %s\n", line.c_str());
      }
    }
    results_.clear();
    return first;
  }

  void Destroy() {
    if (!threads_.empty()) (void)StopWorkers();
    stats_.reset();
    if (created_) {
      (void)core::DestroyGrid(name_);
      created_ = false;
    }
  }

  // Flushes (one fdatasync each, per file touched) of every node's worker
  // since the grid was created.
  std::uint64_t Flushes() {
    std::uint64_t n = 0;
    for (std::uint32_t node = 0; node < stats_->config().node_count; ++node) {
      // relaxed: a statistic.
      n += stats_->journal_node(node).flushes.load(std::memory_order_relaxed);
    }
    return n;
  }
  // Journal records and bytes of every node since the grid was created.
  std::uint64_t Records() {
    std::uint64_t n = 0;
    for (std::uint32_t node = 0; node < stats_->config().node_count; ++node) {
      n += stats_->journal_node(node).records.load(std::memory_order_relaxed);
    }
    return n;
  }
  std::uint64_t Bytes() {
    std::uint64_t n = 0;
    for (std::uint32_t node = 0; node < stats_->config().node_count; ++node) {
      n += stats_->journal_node(node).bytes.load(std::memory_order_relaxed);
    }
    return n;
  }

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool created_ = false;
  std::atomic<bool> stop_{false};
  std::unique_ptr<core::GridHandle> stats_;  // reads the worker counters
  std::vector<std::unique_ptr<core::GridHandle>> handles_;  // one per worker
  std::vector<std::thread> threads_;
  std::vector<Status> results_;  // element i written only by worker i
  std::mutex log_mu_;
  std::vector<std::string> log_;  // guarded by log_mu_
};

// The options both grids share: 64 partitions, 100-byte values, async by
// default, snapshots only on request (so none lands in a timed loop).
core::CreateOptions JournaledOptions(const std::string& journal_dir,
                                     std::uint64_t keys) {
  core::CreateOptions o;
  o.partitions = kPartitions;
  o.memory_bytes = std::max<std::uint64_t>(256ULL << 20, keys * 640);
  o.max_entries = keys * 2 + 4096;
  o.journal_dir = journal_dir;
  o.durability = core::kDurabilityAsync;
  o.snapshot_bytes = 0;
  return o;
}

// Keys and random indices for the put/get grid.
struct KeyData {
  std::vector<std::string> keys;
  std::vector<std::uint32_t> index;
  std::string value = std::string(kValueBytes, 'v');
  std::string value2 = std::string(kValueBytes, 'w');

  KeyData() {
    keys.reserve(kKeyCount);
    for (std::size_t i = 0; i < kKeyCount; ++i) keys.push_back(MakeKey(i));
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::uint32_t> pick(0, kKeyCount - 1);
    index.resize(kIndexCount);
    for (auto& i : index) i = pick(rng);
  }
};

const KeyData& Keys() {
  static const KeyData* data = new KeyData();
  return *data;
}

// Start each thread at a different place in the shared index array.
std::size_t StartOf(const benchmark::State& state) {
  return static_cast<std::size_t>(state.thread_index()) *
         (kIndexCount / kMaxThreads);
}

WorkedGrid* g_grid = nullptr;  // the put/get grid; set once under its flag
Status* g_grid_status = nullptr;

// Creates "jb<pid>", starts its workers, loads every key and waits until it
// is all journaled. Thread-safe; returns the outcome of the first call.
const Status& BenchGrid() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_grid = new WorkedGrid();
    g_grid_status = new Status(
        g_grid->Create("jb" + std::to_string(getpid()),
                       JournaledOptions(g_root + "/grid-journal", kKeyCount)));
    if (!g_grid_status->ok()) return;
    auto grid = Grid::Attach(g_grid->name());
    if (!grid.ok()) {
      *g_grid_status = grid.status();
      return;
    }
    for (const std::string& k : Keys().keys) {
      auto r = grid->Put(k, Keys().value);
      if (!r.ok()) {
        *g_grid_status = r.status().WithContext("loading");
        return;
      }
    }
    *g_grid_status = grid->Flush();
  });
  return *g_grid_status;
}

// Attaches a Grid to the put/get grid, or skips the benchmark.
std::optional<Grid> AttachBenchGrid(benchmark::State& state) {
  const Status& s = BenchGrid();
  if (!s.ok()) {
    Skip(state, "journaled grid", s);
    return std::nullopt;
  }
  auto grid = Grid::Attach(g_grid->name());
  if (!grid.ok()) {
    Skip(state, "Attach", grid.status());
    return std::nullopt;
  }
  return std::move(*grid);
}

// One 128-byte append + fdatasync on a file of its own, then one sync-mode
// put, per iteration, each timed: the two medians come from the same
// stretch of time, so their ratio survives a disk whose fdatasync cost
// drifts. One writer.
void BM_SyncPutVsFdatasync(benchmark::State& state) {
  std::optional<Grid> grid = AttachBenchGrid(state);
  if (!grid) return;
  const KeyData& d = Keys();
  WriteOptions wo;
  wo.durability = Durability::kSync;
  const std::string dir = NewDir("paired-sync");
  const std::string path = dir + "/append.dat";
  const int fd = open(path.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) SkipErrno(state, "open " + path, errno);
  char record[128];
  std::memset(record, 'r', sizeof record);
  auto sync_hist = std::make_unique<LatencyHistogram>();
  auto put_hist = std::make_unique<LatencyHistogram>();
  std::size_t i = 0;
  for (auto _ : state) {
    const std::uint64_t t0 = NowNs();
    if (!WriteAll(fd, record, sizeof record) || fdatasync(fd) != 0) {
      SkipErrno(state, "append + fdatasync " + path, errno);
      break;
    }
    const std::uint64_t t1 = NowNs();
    const std::string& v = (i & 1) ? d.value : d.value2;
    auto r = grid->Put(d.keys[d.index[i++ & (kIndexCount - 1)]], v, wo);
    const std::uint64_t t2 = NowNs();
    if (!r.ok()) {
      Skip(state, "sync Put", r.status());
      break;
    }
    sync_hist->Record(t1 - t0);
    put_hist->Record(t2 - t1);
  }
  if (fd >= 0) close(fd);
  RemoveTree(dir);
  state.SetItemsProcessed(state.iterations());
  const auto sync_p50 = static_cast<double>(sync_hist->ValueAtQuantile(0.5));
  const auto put_p50 = static_cast<double>(put_hist->ValueAtQuantile(0.5));
  state.counters["fdatasync_p50_us"] = sync_p50 / 1e3;
  state.counters["put_p50_us"] = put_p50 / 1e3;
  state.counters["put_p99_us"] =
      static_cast<double>(put_hist->ValueAtQuantile(0.99)) / 1e3;
  if (sync_p50 > 0) state.counters["p50_x_fdatasync"] = put_p50 / sync_p50;
}

// Sync-mode puts (updates of random keys, 100-byte values), every one timed.
void BM_SyncPut(benchmark::State& state) {
  std::optional<Grid> grid = AttachBenchGrid(state);
  if (!grid) return;
  const KeyData& d = Keys();
  WriteOptions wo;
  wo.durability = Durability::kSync;
  auto hist = std::make_unique<LatencyHistogram>();
  // Thread 0 takes the fdatasync baseline while the others wait at the
  // start barrier; they read it after the end barrier.
  static std::atomic<double> local_fdatasync_ns{0};
  std::uint64_t flushes0 = 0;
  if (state.thread_index() == 0) {
    local_fdatasync_ns.store(FdatasyncP50Ns(16));
    flushes0 = g_grid->Flushes();
  }
  std::size_t i = StartOf(state);
  for (auto _ : state) {
    const std::string& v = (i & 1) ? d.value : d.value2;
    const std::uint64_t t0 = NowNs();
    auto r = grid->Put(d.keys[d.index[i++ & (kIndexCount - 1)]], v, wo);
    hist->Record(NowNs() - t0);
    if (!r.ok()) {
      Skip(state, "sync Put", r.status());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  // Per-thread percentiles, averaged over the threads.
  const auto p50 = static_cast<double>(hist->ValueAtQuantile(0.5));
  state.counters["p50_us"] =
      benchmark::Counter(p50 / 1e3, benchmark::Counter::kAvgThreads);
  state.counters["p99_us"] =
      benchmark::Counter(static_cast<double>(hist->ValueAtQuantile(0.99)) / 1e3,
                         benchmark::Counter::kAvgThreads);
  const double baseline = local_fdatasync_ns.load();
  if (baseline > 0) {
    state.counters["p50_x_fdatasync"] =
        benchmark::Counter(p50 / baseline, benchmark::Counter::kAvgThreads);
  }
  if (state.thread_index() == 0) {
    // Every thread has left the loop (Google Benchmark's end barrier), and
    // each ran the same number of iterations, so this covers all the puts.
    const std::uint64_t flushes = g_grid->Flushes() - flushes0;
    state.counters["fdatasync_local_us"] = baseline / 1e3;
    state.counters["fdatasyncs_per_s"] = benchmark::Counter(
        static_cast<double>(flushes), benchmark::Counter::kIsRate);
    if (flushes > 0) {
      state.counters["puts_per_fdatasync"] =
          static_cast<double>(state.iterations()) * state.threads() /
          static_cast<double>(flushes);
    }
  }
}

// Runs `op` (returning Status) per iteration, timing one in 16 into `hist`.
template <typename Op>
void SampledLoop(benchmark::State& state, LatencyHistogram& hist,
                 std::string_view what, Op op) {
  std::uint64_t n = 0;
  for (auto _ : state) {
    Status s;
    if ((n++ & kSampleMask) == 0) {
      const std::uint64_t t0 = NowNs();
      s = op();
      hist.Record(NowNs() - t0);
    } else {
      s = op();
    }
    if (!s.ok()) {
      Skip(state, what, s);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Get(benchmark::State& state) {
  std::optional<Grid> grid = AttachBenchGrid(state);
  if (!grid) return;
  const KeyData& d = Keys();
  auto hist = std::make_unique<LatencyHistogram>();
  char buf[kValueBytes * 2];
  std::size_t i = StartOf(state);
  SampledLoop(state, *hist, "GetInto", [&] {
    auto r = grid->GetInto(d.keys[d.index[i++ & (kIndexCount - 1)]], buf,
                           sizeof buf);
    benchmark::DoNotOptimize(buf);
    return r.status();
  });
  const auto p50 = static_cast<double>(hist->ValueAtQuantile(0.5));
  state.counters["p50_ns"] = p50;
  state.counters["p99_ns"] = static_cast<double>(hist->ValueAtQuantile(0.99));
  g_get_p50_ns = p50;
}

// Async-mode puts (updates of random keys) while the worker journals them.
void BM_AsyncPut(benchmark::State& state) {
  std::optional<Grid> grid = AttachBenchGrid(state);
  if (!grid) return;
  const KeyData& d = Keys();
  WriteOptions wo;
  wo.durability = Durability::kAsync;
  auto hist = std::make_unique<LatencyHistogram>();
  const std::uint64_t flushes0 = g_grid->Flushes();
  std::size_t i = StartOf(state);
  SampledLoop(state, *hist, "async Put", [&] {
    const std::string& v = (i & 1) ? d.value : d.value2;
    return grid->Put(d.keys[d.index[i++ & (kIndexCount - 1)]], v, wo).status();
  });
  const auto p50 = static_cast<double>(hist->ValueAtQuantile(0.5));
  state.counters["p50_ns"] = p50;
  state.counters["p99_ns"] = static_cast<double>(hist->ValueAtQuantile(0.99));
  state.counters["fdatasyncs_per_s"] =
      benchmark::Counter(static_cast<double>(g_grid->Flushes() - flushes0),
                         benchmark::Counter::kIsRate);
  if (g_get_p50_ns > 0) state.counters["p50_x_get"] = p50 / g_get_p50_ns;
}

// --------------------------------------------------------- recovery

struct RecoveryJournal {
  Status status;
  std::string name;
  std::string dir;
  std::uint64_t records = 0;  // journal records the worker wrote
  std::uint64_t bytes = 0;
  double create_s = 0;  // CreateGrid + nothing else, same shape
};

// Writes g_recovery_records puts (100-byte values, cycling over
// g_recovery_keys keys) through grid "jbrec<pid>" and its worker, waits
// until they are durable, stops the worker and destroys the grid: what is
// left is a journal directory for RecoverGrid. Also times a CreateGrid of
// the same shape, the part of a recovery that replays nothing.
const RecoveryJournal& PrepareRecovery() {
  static RecoveryJournal* j = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    j = new RecoveryJournal();
    j->name = "jbrec" + std::to_string(getpid());
    j->dir = g_root + "/recovery-journal";
    const core::CreateOptions options =
        JournaledOptions(j->dir, g_recovery_keys);
    WorkedGrid wg;
    j->status = wg.Create(j->name, options);
    if (!j->status.ok()) return;
    {
      auto grid = Grid::Attach(j->name);
      if (!grid.ok()) {
        j->status = grid.status();
        return;
      }
      std::vector<std::string> keys;
      keys.reserve(g_recovery_keys);
      for (std::uint64_t k = 0; k < g_recovery_keys; ++k) {
        keys.push_back(MakeKey(k));
      }
      std::string value(kValueBytes, 'v');
      char stamp[24];
      for (std::uint64_t n = 0; n < g_recovery_records; ++n) {
        // Values differ between rounds, as updates do.
        std::snprintf(stamp, sizeof stamp, "%011llu",
                      static_cast<unsigned long long>(n));
        std::memcpy(value.data(), stamp, 11);
        auto r = grid->Put(keys[n % g_recovery_keys], value);
        if (!r.ok()) {
          j->status = r.status().WithContext("writing the recovery journal");
          return;
        }
      }
      j->status = grid->Flush();
      if (!j->status.ok()) return;
    }
    j->records = wg.Records();
    j->bytes = wg.Bytes();
    j->status = wg.StopWorkers();
    if (!j->status.ok()) return;
    wg.Destroy();

    Status error;
    const numa::Topology* topology = SystemTopology(&error);
    if (topology == nullptr) {
      j->status = error;
      return;
    }
    core::CreateOptions bare = options;
    bare.journal_dir.clear();
    const std::string bare_name = j->name + "c";
    double best = 0;
    for (int round = 0; round < 3; ++round) {
      const std::uint64_t t0 = NowNs();
      auto created = core::CreateGrid(bare_name, bare, *topology);
      const auto s = static_cast<double>(NowNs() - t0) * 1e-9;
      if (!created.ok()) {
        j->status = created.status().WithContext("timing CreateGrid");
        return;
      }
      (void)core::DestroyGrid(bare_name);
      if (round == 0 || s < best) best = s;
    }
    j->create_s = best;
  });
  return *j;
}

// User + system CPU time of the whole process.
double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Per iteration: RecoverGrid of the prepared journal (timed; range(0) = 1
// drops the journal's page cache first, outside the timing), then
// DestroyGrid (not timed).
void BM_Recovery(benchmark::State& state) {
  const bool cold = state.range(0) != 0;
  const RecoveryJournal& j = PrepareRecovery();
  if (!j.status.ok()) {
    Skip(state, "preparing the journal", j.status);
    return;
  }
  Status error;
  const numa::Topology* topology = SystemTopology(&error);
  if (topology == nullptr) {
    Skip(state, "Topology::Load", error);
    return;
  }
  std::uint64_t records = 0;
  double recover_s = 0;
  double cpu_s = 0;  // of every thread of this process, TBB's included
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      DropCache(j.dir);
      state.ResumeTiming();
    }
    const double cpu0 = ProcessCpuSeconds();
    const std::uint64_t t0 = NowNs();
    auto report = core::RecoverGrid(j.name, j.dir, *topology, {});
    recover_s += static_cast<double>(NowNs() - t0) * 1e-9;
    cpu_s += ProcessCpuSeconds() - cpu0;
    state.PauseTiming();
    if (!report.ok()) {
      Skip(state, "RecoverGrid", report.status());
      break;
    }
    if (report->journal_records != j.records ||
        report->live_entries != g_recovery_keys) {
      const std::string msg =
          "RecoverGrid replayed " + std::to_string(report->journal_records) +
          " records into " + std::to_string(report->live_entries) +
          " entries; the journal holds " + std::to_string(j.records) +
          " records of " + std::to_string(g_recovery_keys) + " keys";
      state.SkipWithError(msg.c_str());
      (void)core::DestroyGrid(j.name);
      break;
    }
    records += report->journal_records;
    Status s = core::DestroyGrid(j.name);
    if (!s.ok()) {
      Skip(state, "DestroyGrid", s);
      break;
    }
    state.ResumeTiming();
  }
  const int threads = tbb::info::default_concurrency();
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  state.counters["tbb_threads"] = threads;
  state.counters["per_thread_per_s"] = benchmark::Counter(
      static_cast<double>(records) / threads, benchmark::Counter::kIsRate);
  if (cpu_s > 0) {
    state.counters["per_cpu_s"] = static_cast<double>(records) / cpu_s;
  }
  state.counters["journal_MiB"] = static_cast<double>(j.bytes) / (1 << 20);
  state.counters["create_ms"] = j.create_s * 1e3;
  const double replay_s =
      recover_s - static_cast<double>(state.iterations()) * j.create_s;
  if (records > 0 && replay_s > 0) {
    state.counters["replay_only_per_s"] =
        static_cast<double>(records) / replay_s;
  }
}

BENCHMARK(BM_PlainSequentialWrite)
    ->Arg(64)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_JournalWriterBandwidth)
    ->Args({1000, 4096})
    ->Args({100, 4096})
    ->Args({1000, 16384})
    ->Args({100, 65536})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_JournalVsPlainWrite)
    ->Args({1000, 4096})
    ->Args({100, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Fdatasync)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_JournalWriterFlushLatency)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_SyncPutVsFdatasync)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SyncPut)
    ->Threads(1)
    ->Threads(2)
    ->Threads(4)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_Get)->UseRealTime();
BENCHMARK(BM_AsyncPut)->UseRealTime();
BENCHMARK(BM_Recovery)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// "ext2/ext3/ext4", "tmpfs", ... or the magic number in hex.
std::string FileSystemType(const std::string& path) {
  struct statfs sfs {};
  if (statfs(path.c_str(), &sfs) != 0) {
    return "unknown (statfs: " + ErrnoText(errno) + ")";
  }
  struct Known {
    unsigned long magic;
    const char* name;
  };
  static constexpr Known kKnown[] = {
      {EXT4_SUPER_MAGIC, "ext2/ext3/ext4"},
      {XFS_SUPER_MAGIC, "xfs"},
      {BTRFS_SUPER_MAGIC, "btrfs"},
      {TMPFS_MAGIC, "tmpfs"},
      {RAMFS_MAGIC, "ramfs"},
      {OVERLAYFS_SUPER_MAGIC, "overlayfs"},
      {NFS_SUPER_MAGIC, "nfs"},
      {F2FS_SUPER_MAGIC, "f2fs"},
      {0x2FC12FC1UL, "zfs"},
      {FUSE_SUPER_MAGIC, "fuse"},
      {V9FS_MAGIC, "9p"},
  };
  const auto type = static_cast<unsigned long>(sfs.f_type);
  for (const Known& k : kKnown) {
    if (k.magic == type) return k.name;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%lx", type);
  return buf;
}

// Median cost of one steady_clock::now(), which every timed sample pays.
double ClockReadNs() {
  std::vector<std::uint64_t> d(1001);
  std::uint64_t prev = NowNs();
  for (auto& x : d) {
    const std::uint64_t now = NowNs();
    x = now - prev;
    prev = now;
  }
  std::nth_element(d.begin(), d.begin() + 500, d.end());
  return static_cast<double>(d[500]);
}

void CleanUp() {
  if (g_grid != nullptr) g_grid->Destroy();
  if (!g_root.empty()) RemoveTree(g_root);
}

bool ParseCount(const char* text, std::uint64_t min, std::uint64_t max,
                std::uint64_t* out) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || n < min || n > max) return false;
  *out = n;
  return true;
}

}  // namespace
}  // namespace numagrid

int main(int argc, char** argv) {
  using namespace numagrid;  // NOLINT(google-build-using-namespace)
  // --dir, --recovery-records and --recovery-keys are ours; the rest
  // belongs to Google Benchmark.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--dir=")) {
      g_parent_dir = std::string(arg.substr(6));
    } else if (arg.starts_with("--recovery-records=")) {
      if (!ParseCount(argv[i] + 19, 1000, 1'000'000'000, &g_recovery_records)) {
        std::fprintf(stderr,
                     "journal_bench: --recovery-records must be in [1000, "
                     "1000000000]\n");
        return 2;
      }
    } else if (arg.starts_with("--recovery-keys=")) {
      if (!ParseCount(argv[i] + 16, 100, 100'000'000, &g_recovery_keys)) {
        std::fprintf(stderr,
                     "journal_bench: --recovery-keys must be in [100, "
                     "100000000]\n");
        return 2;
      }
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (g_recovery_keys > g_recovery_records) {
    std::fprintf(stderr,
                 "journal_bench: --recovery-keys must not exceed "
                 "--recovery-records\n");
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  std::error_code ec;
  const std::filesystem::path parent =
      std::filesystem::absolute(g_parent_dir, ec);
  if (ec) {
    std::fprintf(stderr, "journal_bench: --dir=%s: %s\n", g_parent_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  std::string pattern = (parent / "numagrid-journal-bench-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "journal_bench: mkdtemp %s: %s\n", pattern.c_str(),
                 ErrnoText(errno).c_str());
    return 1;
  }
  g_root = pattern;
  const std::string fs = FileSystemType(g_root);
  if (fs == "tmpfs" || fs == "ramfs") {
    std::fprintf(stderr,
                 "journal_bench: warning: %s is on %s, where fdatasync "
                 "writes nothing; point --dir at a disk\n",
                 g_root.c_str(), fs.c_str());
  }
  benchmark::AddCustomContext("bench_dir", g_root);
  benchmark::AddCustomContext("bench_fs", fs);
  benchmark::AddCustomContext("recovery_records",
                              std::to_string(g_recovery_records));
  benchmark::AddCustomContext("recovery_keys", std::to_string(g_recovery_keys));
  benchmark::AddCustomContext("tbb_default_concurrency",
                              std::to_string(tbb::info::default_concurrency()));
  char clock_ns[32];
  std::snprintf(clock_ns, sizeof clock_ns, "%.0f", ClockReadNs());
  benchmark::AddCustomContext("clock_read_ns", clock_ns);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  CleanUp();
  return 0;
}
