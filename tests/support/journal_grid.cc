#include "tests/support/journal_grid.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <utility>

#include <gtest/gtest.h>

#include "core/base/key_hash.h"
#include "core/journal_layout.h"
#include "core/partition.h"
#include "io/uring_probe.h"
#include "shm/futex.h"
#include "tests/io/fault_journal_device.h"
#include "tests/support/test_grid.h"

namespace numagrid::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/numagrid-journal-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    ADD_FAILURE() << "mkdtemp: "
                  << std::strerror(errno);  // NOLINT(concurrency-mt-unsafe)
    return;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (!path_.empty()) RemoveTree(path_);
}

void RemoveTree(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = opendir(path.c_str())) {
      std::vector<std::string> names;
      // readdir: this DIR stream is ours alone.
      while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
        const std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      closedir(d);
      for (const std::string& n : names) RemoveTree(path + "/" + n);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

std::string ReadFileBytes(const std::string& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    ADD_FAILURE() << "cannot open " << path;
    return out;
  }
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

void WriteFileBytes(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    ADD_FAILURE() << "cannot create " << path;
    return;
  }
  if (!bytes.empty() &&
      std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    ADD_FAILURE() << "short write to " << path;
  }
  std::fclose(f);
}

DirFiles ReadDirFiles(const std::string& dir) {
  DirFiles out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  std::vector<std::string> names;
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    names.emplace_back(e->d_name);
  }
  closedir(d);
  for (const std::string& n : names) {
    struct stat st {};
    const std::string path = dir + "/" + n;
    if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      out[n] = ReadFileBytes(path);
    }
  }
  return out;
}

void WriteDirFiles(const std::string& dir, const DirFiles& files) {
  for (const auto& [name, bytes] : ReadDirFiles(dir)) {
    if (files.count(name) == 0) unlink((dir + "/" + name).c_str());
  }
  for (const auto& [name, bytes] : files) {
    WriteFileBytes(dir + "/" + name, bytes);
  }
}

const numa::Topology& SystemTopology() {
  static const numa::Topology* topology = [] {
    Result<numa::Topology> t = numa::Topology::Load();
    if (!t.ok()) {
      ADD_FAILURE() << "Topology::Load: " << t.status().ToString();
      std::abort();
    }
    return new numa::Topology(std::move(*t));
  }();
  return *topology;
}

core::CreateOptions JournaledOptions(const std::string& dir) {
  core::CreateOptions o;
  o.partitions = 4;
  o.memory_bytes = 8ULL << 20;
  o.ring_capacity = 256;
  o.journal_dir = dir;
  o.durability = core::kDurabilityAsync;
  o.flush_interval_us = 1000;
  o.sync_wait_ms = 2000;
  o.snapshot_bytes = 0;
  return o;
}

GridGuard::~GridGuard() { (void)core::DestroyGrid(name_); }

std::uint64_t RunningWorkerPid(const std::string& name, std::uint32_t node) {
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return 0;
  const core::JournalNodeState& n = (*h)->journal_node(node);
  const std::uint64_t pid = n.worker_pid.load();
  if (pid == 0 || n.worker_state.load() != core::kWorkerRunning ||
      kill(static_cast<pid_t>(pid), 0) != 0) {
    return 0;
  }
  return pid;
}

void JournaledGridTest::SetUp() {
  name_ = UniqueName("jg");
  guard_.emplace(name_);
  auto c =
      core::CreateGrid(name_, JournaledOptions(dir_.path()), SystemTopology());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto h = core::GridHandle::Attach(name_);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  h_ = std::move(*h);
}

void JournaledGridTest::TearDown() { h_.reset(); }

void PrintTo(const Entry& e, std::ostream* os) {
  *os << "{value " << e.value.size() << " bytes '" << e.value.substr(0, 24)
      << (e.value.size() > 24 ? "...'" : "'") << ", version " << e.version
      << ", expiry " << e.expiry_ms << "}";
}

GridState ReadGridState(std::string_view name, std::uint64_t now_ms) {
  GridState out;
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) {
    ADD_FAILURE() << "attach " << name << ": " << h.status().ToString();
    return out;
  }
  const std::uint64_t now = now_ms != 0 ? now_ms : core::NowMs();
  for (std::uint32_t p = 0; p < (*h)->partition_count(); ++p) {
    core::GridHandle::EpochGuard pin(**h);
    (*h)->partition(p).Scan(
        [&](const core::RecordView& r) {
          Entry e{std::string(r.value()), r.version(), r.expire_at_ms()};
          const bool fresh =
              out.emplace(std::string(r.key()), std::move(e)).second;
          EXPECT_TRUE(fresh) << "key '" << r.key() << "' visited twice";
          return true;
        },
        now);
  }
  return out;
}

std::string StateDiff(const GridState& want, const GridState& got) {
  std::ostringstream os;
  int shown = 0;
  auto describe = [](const Entry& e) {
    std::ostringstream s;
    PrintTo(e, &s);
    return s.str();
  };
  for (const auto& [k, e] : want) {
    if (shown >= 10) break;
    auto it = got.find(k);
    if (it == got.end()) {
      os << "missing '" << k << "' " << describe(e) << "\n";
      ++shown;
    } else if (!(it->second == e)) {
      os << "'" << k << "': want " << describe(e) << ", got "
         << describe(it->second) << "\n";
      ++shown;
    }
  }
  for (const auto& [k, e] : got) {
    if (shown >= 10) break;
    if (want.count(k) == 0) {
      os << "unexpected '" << k << "' " << describe(e) << "\n";
      ++shown;
    }
  }
  if (shown > 0) {
    os << "(" << want.size() << " entries wanted, " << got.size() << " got)";
  }
  return os.str();
}

void PrintTo(const JournalRecord& r, std::ostream* os) {
  *os << "{seq " << r.sequence << ", p" << r.partition << ", "
      << io::RecordOpName(r.op) << ", change " << r.change_seq << ", version "
      << r.version << ", expiry " << r.expiry_ms << ", key '" << r.key
      << "', value " << r.value.size() << " bytes}";
}

JournalRead ReadJournal(const std::string& dir, std::uint32_t node,
                        std::uint64_t grid_id) {
  JournalRead out;
  io::JournalReaderOptions ro;
  ro.dir = dir;
  ro.node_id = node;
  ro.grid_id = grid_id;
  auto reader = io::JournalReader::Open(ro);
  if (!reader.ok()) {
    out.status = reader.status();
    return out;
  }
  out.segments = (*reader)->segments();
  for (;;) {
    auto rec = (*reader)->Next();
    if (!rec.ok()) {
      out.status = rec.status();
      return out;
    }
    if (!rec->has_value()) break;
    const io::RecordView& r = **rec;
    out.records.push_back({r.sequence, r.partition_id, r.op, r.change_seq,
                           r.version, r.expiry_ms, std::string(r.key),
                           std::string(r.value)});
  }
  out.tail = (*reader)->tail();
  return out;
}

GridState ModelOf(const std::vector<JournalRecord>& records,
                  std::uint64_t now_ms) {
  GridState state;
  std::map<std::uint32_t, std::uint64_t> last_applied;
  for (const JournalRecord& r : records) {
    auto it = last_applied.find(r.partition);
    if (it != last_applied.end() && r.change_seq <= it->second) continue;
    last_applied[r.partition] = r.change_seq;
    if (r.op == io::RecordOp::kPut) {
      state[r.key] = Entry{r.value, r.version, r.expiry_ms};
    } else {
      state.erase(r.key);
    }
  }
  const std::uint64_t now = now_ms != 0 ? now_ms : core::NowMs();
  for (auto it = state.begin(); it != state.end();) {
    const std::uint64_t e = it->second.expiry_ms;
    if (e != 0 && now >= e) {
      it = state.erase(it);
    } else {
      ++it;
    }
  }
  return state;
}

WorkerThread::WorkerThread(const std::string& name,
                           core::JournalWorkerOptions options)
    : options_(std::move(options)) {
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) {
    result_ = h.status();
    ADD_FAILURE() << "worker attach " << name << ": " << h.status().ToString();
    finished_.store(true, std::memory_order_release);
    joined_ = true;
    return;
  }
  handle_ = std::move(*h);
  options_.stop = &stop_;
  static const bool uring = io::ProbeUring("/tmp").available;
  if (!options_.make_device && !uring) {
    // io_uring is refused here: journal to plain files instead (the
    // worker's logic is what the suites check; tests/io checks the device).
    options_.make_device = []() -> Result<std::unique_ptr<io::JournalDevice>> {
      return std::unique_ptr<io::JournalDevice>(
          std::make_unique<io::testing::FaultJournalDevice>());
    };
  }
  auto passed_on = options_.log;
  options_.log = [this, passed_on](std::string_view line) {
    {
      std::lock_guard<std::mutex> l(log_mu_);
      log_.emplace_back(line);
    }
    if (passed_on) passed_on(line);
  };
  thread_ = std::thread([this] {
    result_ = core::RunJournalWorker(*handle_, options_);
    // release: publishes result_ to finished()'s acquire load.
    finished_.store(true, std::memory_order_release);
  });
}

WorkerThread::~WorkerThread() { (void)Stop(); }

Status WorkerThread::Stop() {
  if (joined_) return result_;
  stop_.store(true, std::memory_order_relaxed);
  if (options_.node < handle_->config().node_count) {
    // The worker sleeps on its node's wake word between flushes: wake it, as
    // a signal does for `numagrid worker`.
    std::atomic<std::uint32_t>& wake =
        handle_->journal_node(options_.node).wake;
    while (!finished()) {
      wake.fetch_add(1, std::memory_order_relaxed);
      shm::FutexWake(&wake);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  thread_.join();
  joined_ = true;
  handle_.reset();
  return result_;
}

std::vector<std::string> WorkerThread::log() const {
  std::lock_guard<std::mutex> l(log_mu_);
  return log_;
}

bool PollUntil(const std::function<bool()>& done, std::uint32_t deadline_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool AllJournaled(core::GridHandle& h) {
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    const core::PartitionState& st = h.partition(p).state();
    if (st.journaled_seq.load(std::memory_order_acquire) !=
        st.next_seq.load(std::memory_order_acquire)) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> KeysOfPartition(std::uint32_t p,
                                         std::uint32_t partitions,
                                         std::size_t count,
                                         std::string_view prefix) {
  std::vector<std::string> out;
  for (std::uint64_t i = 0; out.size() < count; ++i) {
    std::string k = std::string(prefix) + std::to_string(i);
    if (base::PartitionOf(base::KeyHash(k), partitions) == p) {
      out.push_back(std::move(k));
    }
  }
  return out;
}

}  // namespace numagrid::testing
