// Peer targets: which were compiled in, and the factory.
#include "bench/numagrid_bench/peer_targets.h"

namespace numagrid::bench {
namespace {

// The CMake option sets NUMAGRID_BENCH_HAVE_<PEER> to 1 for each peer whose
// client library it found (bench/numagrid_bench/CMakeLists.txt).
#ifndef NUMAGRID_BENCH_HAVE_LMDB
#define NUMAGRID_BENCH_HAVE_LMDB 0
#endif
#ifndef NUMAGRID_BENCH_HAVE_REDIS
#define NUMAGRID_BENCH_HAVE_REDIS 0
#endif
#ifndef NUMAGRID_BENCH_HAVE_MEMCACHED
#define NUMAGRID_BENCH_HAVE_MEMCACHED 0
#endif

struct PeerInfo {
  std::string_view name;
  bool compiled_in;
  std::string_view library;      // pkg-config module
  std::string_view dev_package;  // Debian package with its headers
};

constexpr PeerInfo kPeers[] = {
    {"lmdb", NUMAGRID_BENCH_HAVE_LMDB != 0, "lmdb", "liblmdb-dev"},
    {"lmdb-sync", NUMAGRID_BENCH_HAVE_LMDB != 0, "lmdb", "liblmdb-dev"},
    {"redis", NUMAGRID_BENCH_HAVE_REDIS != 0, "hiredis", "libhiredis-dev"},
    {"redis-aof", NUMAGRID_BENCH_HAVE_REDIS != 0, "hiredis", "libhiredis-dev"},
    {"memcached", NUMAGRID_BENCH_HAVE_MEMCACHED != 0, "libmemcached",
     "libmemcached-dev"},
};

const PeerInfo* Find(std::string_view name) {
  for (const PeerInfo& p : kPeers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace

bool IsPeerTarget(std::string_view name) { return Find(name) != nullptr; }

bool PeerCompiledIn(std::string_view name) {
  const PeerInfo* p = Find(name);
  return p != nullptr && p->compiled_in;
}

std::string PeerNotBuiltMessage(std::string_view name) {
  const PeerInfo* p = Find(name);
  if (p == nullptr || p->compiled_in) return {};
  return "target '" + std::string(name) +
         "' was not compiled into this numagrid-bench: its client library (" +
         std::string(p->library) +
         ") was not found when the build was configured. Install " +
         std::string(p->dev_package) +
         " and configure with -DNUMAGRID_BENCH_PEERS=ON (or AUTO), or run "
         "scripts/bench-peers.sh, which installs the peers and builds "
         "build/bench-peers";
}

std::string CompiledPeers() {
  std::string out;
  for (const PeerInfo& p : kPeers) {
    if (!p.compiled_in) continue;
    if (!out.empty()) out += ", ";
    out += p.name;
  }
  return out.empty() ? "none" : out;
}

std::unique_ptr<Target> MakePeerTarget(std::string_view name,
                                       const PeerOptions& o) {
#if NUMAGRID_BENCH_HAVE_LMDB
  if (name == "lmdb") return MakeLmdbTarget(false, o.lmdb_parent_dir);
  if (name == "lmdb-sync") return MakeLmdbTarget(true, o.lmdb_parent_dir);
#endif
#if NUMAGRID_BENCH_HAVE_REDIS
  if (name == "redis") return MakeRedisTarget("redis", o.redis_socket, false);
  if (name == "redis-aof") {
    return MakeRedisTarget("redis-aof", o.redis_aof_socket, true);
  }
#endif
#if NUMAGRID_BENCH_HAVE_MEMCACHED
  if (name == "memcached") return MakeMemcachedTarget(o.memcached_socket);
#endif
  static_cast<void>(name);
  static_cast<void>(o);
  return nullptr;
}

}  // namespace numagrid::bench
