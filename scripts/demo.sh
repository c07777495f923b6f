#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the release
# preset, shows the NUMA topology, creates a grid, writes and reads it through
# the CLI, runs a latency benchmark against it (numagrid beside oneTBB and a
# Boost.Interprocess map, 1 and 2 processes), checks it, and destroys it.
# Usage: scripts/demo.sh [GRID]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
grid=${1:-demo}
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
ng=build/release/core/cli/numagrid
run() { echo "\$ numagrid $*"; "$ng" "$@"; }
"$ng" info "$grid" >/dev/null 2>&1 && "$ng" destroy "$grid" --quiet
run topology
run create "$grid" --partitions 64 --memory 256MiB
run info "$grid"
run put "$grid" greeting "hello, numagrid"
run get "$grid" greeting
run put "$grid" session:42 "expires soon" --ttl 60
run scan "$grid"
echo "\$ numagrid-bench --grid $grid --target numagrid,tbb,boost-map --workload B --procs 1,2 --seconds 2"
build/release/bench/numagrid_bench/numagrid-bench --grid "$grid" --target numagrid,tbb,boost-map \
  --workload B --procs 1,2 --seconds 2 --warmup 0.5
run check "$grid"
run destroy "$grid"
