#!/usr/bin/env bash
# Runs numagrid-bench against numagrid (memory-only, and journaled async as
# numagrid-async) and every peer (tbb, boost-map, lmdb, lmdb-sync, redis,
# redis-aof, memcached) in one run per workload, and writes
# DIR/results.json, DIR/results.md and DIR/plots/*.png (docs/benchmarks.md).
# Installs what is missing, builds build/bench-peers, starts its own Redis
# and memcached servers on unix sockets and stops them on exit or Ctrl-C.
#
# Usage: scripts/bench-peers.sh [--out DIR] [--quick] [--disk-dir DIR] [--help]
#   --out DIR       results directory (default build/bench-peers/results)
#   --quick         20k records, 1.25 s runs, workloads A B C (about 2 minutes
#                   once built); default: 100k records, 4 s runs, A to F
#                   (about 10 minutes on 2 cores)
#   --disk-dir DIR  where LMDB, Redis's append-only file, numagrid-async's
#                   journal and the disk baseline write (default /var/tmp:
#                   /tmp may be tmpfs)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
OUT=build/bench-peers/results
QUICK=0
DISK_DIR=/var/tmp
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --quick) QUICK=1 ;;
    --out) [[ $# -ge 2 ]] || { echo "bench-peers: --out needs a directory" >&2; exit 2; }
           OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --disk-dir) [[ $# -ge 2 ]] || { echo "bench-peers: --disk-dir needs a directory" >&2; exit 2; }
                DISK_DIR=$2; shift ;;
    --disk-dir=*) DISK_DIR=${1#--disk-dir=} ;;
    *) echo "bench-peers: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -d "$DISK_DIR" ]] || { echo "bench-peers: --disk-dir $DISK_DIR is not a directory" >&2; exit 2; }

if [[ $QUICK == 1 ]]; then
  MODE=quick; WORKLOADS=(A B C); RECORDS=20000; SECONDS_PER_RUN=1.25; WARMUP=0.25
else
  MODE=full; WORKLOADS=(A B C D E F); RECORDS=100000; SECONDS_PER_RUN=4; WARMUP=1
fi
PROCS=1,2
# numagrid twice: memory-only, and journaled with async durability (its
# journal workers run inside numagrid-bench), the match for redis-aof
# (appendfsync everysec) and lmdb (MDB_NOSYNC).
TARGETS=numagrid,numagrid-async,tbb,boost-map,lmdb,lmdb-sync,redis,redis-aof,memcached

# 1. Packages: the grid's own (install-deps.sh), then the peers'.
scripts/install-deps.sh
PEER_PKGS=(liblmdb-dev libhiredis-dev libmemcached-dev redis-server memcached gnuplot-nox)
missing=()
for p in "${PEER_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bench-peers: installing ${missing[*]}"
  SUDO=; [[ "$(id -u)" == 0 ]] || SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Build numagrid-bench with every peer compiled in (fails if one is
# missing), in a build directory of its own.
BUILD=build/bench-peers
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNUMAGRID_WERROR=ON -DNUMAGRID_BUILD_TESTS=OFF -DNUMAGRID_BENCH_PEERS=ON >/dev/null
fi
cmake --build "$BUILD" -j2 --target numagrid_bench
BIN=$BUILD/bench/numagrid_bench/numagrid-bench

# 3. Servers, on unix sockets in a temporary directory, stopped on exit.
TMP=$(mktemp -d /tmp/numagrid-bench-peers.XXXXXX)
AOF_DIR=$(mktemp -d "$DISK_DIR/numagrid-bench-redis-aof.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP" "$AOF_DIR"
}
BENCH_PID=
on_signal() {
  echo "bench-peers: interrupted" >&2
  # numagrid-bench removes its grids, journal, segment and LMDB directories
  # on SIGTERM.
  if [[ -n $BENCH_PID ]]; then
    kill -TERM "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
  fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

REDIS_ARGS=(--port 0 --unixsocketperm 700 --daemonize no --save "")
REDIS_PLAIN=(--appendonly no)
REDIS_AOF=(--appendonly yes --appendfsync everysec)
mkdir -p "$TMP/redis"
redis-server "${REDIS_ARGS[@]}" "${REDIS_PLAIN[@]}" --unixsocket "$TMP/redis.sock" \
  --dir "$TMP/redis" --logfile "$TMP/redis.log" &
PIDS+=($!)
redis-server "${REDIS_ARGS[@]}" "${REDIS_AOF[@]}" --unixsocket "$TMP/redis-aof.sock" \
  --dir "$AOF_DIR" --logfile "$TMP/redis-aof.log" &
PIDS+=($!)
MEMCACHED_ARGS=(-a 0700 -m 1024 -t 2)
[[ "$(id -u)" == 0 ]] && MEMCACHED_ARGS+=(-u root)  # memcached refuses root without it
memcached "${MEMCACHED_ARGS[@]}" -s "$TMP/memcached.sock" 2>"$TMP/memcached.log" &
PIDS+=($!)
for _ in $(seq 100); do
  [[ -S $TMP/redis.sock && -S $TMP/redis-aof.sock && -S $TMP/memcached.sock ]] && break
  sleep 0.05
done
for s in redis.sock redis-aof.sock; do
  [[ "$(redis-cli -s "$TMP/$s" ping 2>/dev/null)" == PONG ]] \
    || { echo "bench-peers: redis on $TMP/$s did not start:" >&2; cat "$TMP"/redis*.log >&2; exit 1; }
done
[[ -S $TMP/memcached.sock ]] \
  || { echo "bench-peers: memcached did not start:" >&2; cat "$TMP/memcached.log" >&2; exit 1; }
SERVERS="redis: redis-server ${REDIS_ARGS[*]} ${REDIS_PLAIN[*]} (save \"\": no RDB snapshots); \
redis-aof: redis-server ${REDIS_ARGS[*]} ${REDIS_AOF[*]}, AOF in $DISK_DIR; \
memcached: memcached ${MEMCACHED_ARGS[*]}"

# 4. One numagrid-bench invocation per workload, every target in it.
mkdir -p "$OUT/raw"
reports=()
status=0
COMMAND="numagrid-bench --target $TARGETS --workload W --procs $PROCS --records $RECORDS \
--seconds $SECONDS_PER_RUN --warmup $WARMUP --disk-dir $DISK_DIR"
for w in "${WORKLOADS[@]}"; do
  echo "bench-peers: workload $w ($MODE)..."
  # In the background, so that a signal to this script runs its trap now,
  # not when the invocation ends.
  "$BIN" --target "$TARGETS" --workload "$w" --procs "$PROCS" --records "$RECORDS" \
    --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --disk-dir "$DISK_DIR" \
    --redis-socket "$TMP/redis.sock" --redis-aof-socket "$TMP/redis-aof.sock" \
    --memcached-socket "$TMP/memcached.sock" --json "$OUT/raw/$w.json" \
    >"$OUT/raw/$w.txt" 2>"$OUT/raw/$w.log" &
  BENCH_PID=$!
  rc=0
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=
  if [[ $rc == 130 ]]; then exit 130; fi
  if [[ $rc != 0 ]]; then
    echo "bench-peers: workload $w: numagrid-bench exited $rc:" >&2
    tail -n 5 "$OUT/raw/$w.log" >&2
    status=1
  fi
  [[ -s $OUT/raw/$w.json ]] && reports+=("$OUT/raw/$w.json")
done
[[ ${#reports[@]} -gt 0 ]] || { echo "bench-peers: no results" >&2; exit 1; }

# 5. Merge, table, plots.
python3 scripts/bench_peers_report.py --out "$OUT" --mode "$MODE" \
  --servers "$SERVERS" --command "$COMMAND" "${reports[@]}"
echo "bench-peers: wrote $OUT/results.json, $OUT/results.md, $OUT/plots/"
exit $status
