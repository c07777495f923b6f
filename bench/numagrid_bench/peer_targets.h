// Peer targets: stores from outside this project that numagrid-bench
// compares numagrid with in the same run: LMDB (in-process B-tree on a
// memory map, with and without a sync per commit), Redis (hiredis over a
// unix socket) and memcached (libmemcached over a unix socket). Their client
// libraries are optional build dependencies (CMake option
// NUMAGRID_BENCH_PEERS, docs/benchmarks.md); a peer that was not compiled in
// is known by name but refused with a message that says how to build it.
//
// Thread safety: the functions are thread-safe; targets as in target.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "bench/numagrid_bench/target.h"

namespace numagrid::bench {

struct PeerOptions {
  // Unix sockets of the servers (the servers are not started here).
  std::string redis_socket = "/run/redis/redis-server.sock";
  std::string redis_aof_socket = "/run/redis/redis-aof.sock";
  std::string memcached_socket = "/run/memcached/memcached.sock";
  // LMDB environments are created in a new directory under this one and
  // removed at the end.
  std::string lmdb_parent_dir = "/var/tmp";
};

// lmdb, lmdb-sync, redis, redis-aof, memcached.
bool IsPeerTarget(std::string_view name);
// True if `name` was compiled into this binary.
bool PeerCompiledIn(std::string_view name);
// Why `name` is not available and how to build it; empty if it is.
std::string PeerNotBuiltMessage(std::string_view name);
// The peers compiled in, comma-separated ("none" if none), for --help.
std::string CompiledPeers();
// REQUIRES: IsPeerTarget(name) && PeerCompiledIn(name).
std::unique_ptr<Target> MakePeerTarget(std::string_view name,
                                       const PeerOptions& options);

// Defined only when the peer is compiled in (see peer_targets.cc).
//
// LMDB in `parent_dir`, MDB_NOSYNC (no sync at commit; the OS writes the map
// back when it likes) unless `sync`, which keeps LMDB's default: every write
// transaction fsyncs before its commit returns. Workers are processes.
std::unique_ptr<Target> MakeLmdbTarget(bool sync, std::string parent_dir);
// Redis at `socket`. `name` is the target's name ("redis", "redis-aof");
// with `require_aof` the server must have appendonly yes.
std::unique_ptr<Target> MakeRedisTarget(std::string name, std::string socket,
                                        bool require_aof);
// memcached at `socket`.
std::unique_ptr<Target> MakeMemcachedTarget(std::string socket);

}  // namespace numagrid::bench
