// Physical baselines: clock cost, DRAM pointer chase, cache-line round
// trip, disk bandwidth and fdatasync.
#include "bench/numagrid_bench/baseline.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "bench/numagrid_bench/workload.h"

namespace numagrid::bench {

ClockCost MeasureClock() {
  ClockCost c;
  c.reads = 1'000'000;
  std::uint64_t min_delta = UINT64_MAX;
  std::uint64_t prev = NowNs();
  const std::uint64_t start = prev;
  for (std::uint64_t i = 0; i < c.reads; ++i) {
    const std::uint64_t now = NowNs();
    if (now - prev < min_delta) min_delta = now - prev;
    prev = now;
  }
  c.ns_per_read =
      static_cast<double>(prev - start) / static_cast<double>(c.reads);
  c.min_delta_ns = min_delta;
  return c;
}

namespace {
struct alignas(64) ChaseNode {
  ChaseNode* next;
  char pad[64 - sizeof(ChaseNode*)];
};
static_assert(sizeof(ChaseNode) == 64);
}  // namespace

double MeasureDramChase(std::uint64_t bytes, std::uint64_t seed,
                        const volatile std::sig_atomic_t* interrupted) {
  const std::uint64_t n = bytes / sizeof(ChaseNode);
  if (n < 2) return -1;
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -1;
  auto* nodes = static_cast<ChaseNode*>(mem);
  double result = -1;
  {
    // Sattolo: a random permutation that is one single cycle.
    std::vector<std::uint32_t> order(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      order[i] = static_cast<std::uint32_t>(i);
    }
    Rng rng(seed);
    for (std::uint64_t i = n - 1; i > 0; --i) {
      std::swap(order[i], order[rng.Below(i)]);
      if ((i & 0xfffff) == 0 && *interrupted) break;
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      nodes[order[i]].next = &nodes[order[(i + 1) % n]];
    }
  }
  if (!*interrupted) {
    ChaseNode* p = nodes;
    for (std::uint64_t i = 0; i < n; ++i) {
      p = p->next;  // warm the TLB and caches alike
    }
    const std::uint64_t steps = std::max<std::uint64_t>(n * 2, 8'000'000);
    const std::uint64_t t0 = NowNs();
    for (std::uint64_t i = 0; i < steps; ++i) p = p->next;
    const std::uint64_t t1 = NowNs();
    // The chase must not be optimized away: the final pointer escapes.
    asm volatile("" : : "r"(p) : "memory");
    result = static_cast<double>(t1 - t0) / static_cast<double>(steps);
  }
  ::munmap(mem, bytes);
  return result;
}

std::uint64_t LastLevelCacheBytes() {
  for (int name :
       {_SC_LEVEL4_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long v = ::sysconf(name);
    if (v > 0) return static_cast<std::uint64_t>(v);
  }
  return 0;
}

namespace {

// The value A and B take turns to advance, alone on its cache line.
struct alignas(64) PingLine {
  std::atomic<std::uint64_t> turn{0};
};
static_assert(sizeof(PingLine) == 64);
// Odd, like A's values, so B wakes up for it; never reached by counting.
constexpr std::uint64_t kPingStop = ~0ULL;

bool PinThisThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
}

// The rank rule of the histogram: the smallest value at least q of the
// sorted samples do not exceed.
double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  auto rank =
      static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

}  // namespace

CacheLineRoundTrip MeasureCacheLineRoundTrip(
    double max_seconds, const volatile std::sig_atomic_t* interrupted) {
  CacheLineRoundTrip r;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    r.error = std::string("sched_getaffinity: ") + std::strerror(errno);
    return r;
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) {
    r.error = "needs two CPUs; this process may run on one";
    return r;
  }
  r.cpu_a = cpus[0];
  r.cpu_b = cpus[1];

  PingLine line;
  bool pinned_a = false, pinned_b = false;  // each written by one thread
  constexpr std::uint64_t kPerBatch = 1000;
  std::vector<double> batch_ns;
  // B answers every odd value with the next even one until kPingStop. It
  // runs the loop even if pinning failed, or A would wait forever.
  std::thread b([&] {
    pinned_b = PinThisThread(r.cpu_b);
    for (;;) {
      std::uint64_t v;
      // acquire/release: the turn carries no other data; the orderings only
      // keep each thread's store after the load it answers.
      while (((v = line.turn.load(std::memory_order_acquire)) & 1) == 0) {
      }
      if (v == kPingStop) break;
      line.turn.store(v + 1, std::memory_order_release);
    }
  });
  std::thread a([&] {
    pinned_a = PinThisThread(r.cpu_a);
    std::uint64_t next = 1;
    auto round_trip = [&] {
      line.turn.store(next, std::memory_order_release);
      while (line.turn.load(std::memory_order_acquire) != next + 1) {
      }
      next += 2;
    };
    for (std::uint64_t i = 0; i < kPerBatch; ++i) round_trip();  // warm up
    const std::uint64_t deadline =
        NowNs() + static_cast<std::uint64_t>(max_seconds * 1e9);
    while (batch_ns.size() < 2000 && NowNs() < deadline && !*interrupted) {
      const std::uint64_t t0 = NowNs();
      for (std::uint64_t i = 0; i < kPerBatch; ++i) round_trip();
      batch_ns.push_back(static_cast<double>(NowNs() - t0) / kPerBatch);
    }
    line.turn.store(kPingStop, std::memory_order_release);
  });
  a.join();
  b.join();
  if (!pinned_a || !pinned_b) {
    r.error = "cannot pin a thread to CPU " +
              std::to_string(pinned_a ? r.cpu_b : r.cpu_a);
    return r;
  }
  r.round_trips = batch_ns.size() * kPerBatch;
  // The median batch: a batch during which one thread was descheduled (other
  // work on the host) is an outlier, not the hardware.
  r.round_trip_ns = Quantile(batch_ns, 0.5);
  return r;
}

namespace {

std::string FsName(const struct statfs& sf) {
  switch (static_cast<unsigned long>(sf.f_type)) {
    case EXT4_SUPER_MAGIC:
      return "ext4";  // also ext2/ext3: one magic
    case XFS_SUPER_MAGIC:
      return "xfs";
    case BTRFS_SUPER_MAGIC:
      return "btrfs";
    case TMPFS_MAGIC:
      return "tmpfs";
    case RAMFS_MAGIC:
      return "ramfs";
    case OVERLAYFS_SUPER_MAGIC:
      return "overlayfs";
    case NFS_SUPER_MAGIC:
      return "nfs";
    default: {
      char b[32];
      std::snprintf(b, sizeof b, "magic 0x%lx",
                    static_cast<unsigned long>(sf.f_type));
      return b;
    }
  }
}

// A new file in a directory, closed and removed when this goes.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& dir)
      : path_(dir + "/numagrid-bench-disk-XXXXXX") {
    fd_ = ::mkstemp(path_.data());
  }
  ~ScratchFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(path_.c_str());
    }
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

bool WriteAll(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

DiskBaseline MeasureDisk(const std::string& dir, std::uint64_t write_bytes,
                         std::uint32_t samples,
                         const volatile std::sig_atomic_t* interrupted) {
  DiskBaseline d;
  d.dir = dir;
  struct statfs sf {};
  if (::statfs(dir.c_str(), &sf) != 0) {
    d.error = "statfs " + dir + ": " + std::strerror(errno);
    return d;
  }
  d.fs_type = FsName(sf);
  {
    ScratchFile f(dir);
    if (f.fd() < 0) {
      d.error = "cannot create a file in " + dir + ": " + std::strerror(errno);
      return d;
    }
    std::vector<char> buf(1U << 20);
    for (std::size_t i = 0; i < buf.size(); ++i) {
      buf[i] = static_cast<char>('a' + i % 26);  // no zero pages
    }
    const std::uint64_t t0 = NowNs();
    std::uint64_t done = 0;
    while (done < write_bytes && !*interrupted) {
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(buf.size(), write_bytes - done));
      if (!WriteAll(f.fd(), buf.data(), n)) {
        d.error = "write in " + dir + ": " + std::strerror(errno);
        return d;
      }
      done += n;
    }
    if (::fdatasync(f.fd()) != 0) {
      d.error = "fdatasync in " + dir + ": " + std::strerror(errno);
      return d;
    }
    const std::uint64_t t1 = NowNs();
    if (*interrupted) return d;
    d.write_bytes = done;
    d.seq_write_mib_per_s = static_cast<double>(done) / (1 << 20) /
                            (static_cast<double>(t1 - t0) / 1e9);
  }
  ScratchFile f(dir);
  if (f.fd() < 0) {
    d.error = "cannot create a file in " + dir + ": " + std::strerror(errno);
    return d;
  }
  char block[4096];
  std::memset(block, 'j', sizeof block);
  std::vector<double> ns;
  for (std::uint32_t i = 0; i < samples && !*interrupted; ++i) {
    if (!WriteAll(f.fd(), block, sizeof block)) {
      d.error = "write in " + dir + ": " + std::strerror(errno);
      return d;
    }
    const std::uint64_t t0 = NowNs();
    if (::fdatasync(f.fd()) != 0) {
      d.error = "fdatasync in " + dir + ": " + std::strerror(errno);
      return d;
    }
    ns.push_back(static_cast<double>(NowNs() - t0));
  }
  d.samples = static_cast<std::uint32_t>(ns.size());
  d.fdatasync_p50_ns = Quantile(ns, 0.5);
  d.fdatasync_max_ns =
      ns.empty() ? -1 : *std::max_element(ns.begin(), ns.end());
  return d;
}

}  // namespace numagrid::bench
