#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the release
# preset, shows the NUMA topology, creates a journaled grid and starts its
# watchdog (a journal worker per node), writes and reads it through the CLI, runs a latency benchmark
# against it (numagrid beside oneTBB and a Boost.Interprocess map, 1 and 2
# processes), snapshots it, throws its shared memory away and recovers it
# from the journal, checks it against the journal, and removes it.
# Usage: scripts/demo.sh [GRID]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
grid=${1:-demo}
jdir=/var/tmp/numagrid-$grid
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
ng=build/release/core/cli/numagrid
run() { echo "\$ numagrid $*"; "$ng" "$@"; }
trap '"$ng" stop "$grid" --quiet >/dev/null 2>&1 || true' EXIT
"$ng" stop "$grid" --quiet >/dev/null 2>&1 || true
"$ng" destroy "$grid" --purge --journal-dir "$jdir" --quiet 2>/dev/null || true
run topology
run create "$grid" --partitions 64 --memory 256MiB --journal-dir "$jdir"
run start "$grid" --journal-dir "$jdir"
run info "$grid"
run put "$grid" greeting "hello, numagrid" --sync
run get "$grid" greeting
run put "$grid" session:42 "expires soon" --ttl 60
run scan "$grid"
echo "\$ numagrid-bench --grid $grid --target numagrid,tbb,boost-map --workload B --procs 1,2 --seconds 2"
build/release/bench/numagrid_bench/numagrid-bench --grid "$grid" --target numagrid,tbb,boost-map \
  --workload B --procs 1,2 --seconds 2 --warmup 0.5
run snapshot "$grid"
run status "$grid"
run stop "$grid" --destroy
run recover "$grid" --journal-dir "$jdir"
run get "$grid" greeting
run check "$grid" --journal
run destroy "$grid" --purge
