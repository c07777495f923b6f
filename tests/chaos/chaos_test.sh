#!/usr/bin/env bash
# Runs scripts/grid-chaos.sh for NUMAGRID_CHAOS_SECONDS (default 30) against
# a new grid with its own journal directory, then removes both.
#   chaos_test.sh NUMAGRID_CLI NUMAGRID_BENCH GRID_CHAOS_SH
set -euo pipefail
cli=$1 bench=$2 chaos=$3
grid=chaos$$
jdir=$(mktemp -d /tmp/numagrid-chaos-XXXXXX)
cleanup() {
  "$cli" stop "$grid" --quiet >/dev/null 2>&1 || true
  "$cli" destroy "$grid" --purge --journal-dir "$jdir" --quiet >/dev/null 2>&1 || true
  rm -rf "$jdir"
}
trap cleanup EXIT
"$cli" create "$grid" --memory 64MiB --partitions 8 --journal-dir "$jdir" >/dev/null
NUMAGRID=$cli NUMAGRID_BENCH=$bench "$chaos" "$grid" \
  --seconds "${NUMAGRID_CHAOS_SECONDS:-30}" --interval 0.4 --seed "${NUMAGRID_TEST_SEED:-$RANDOM}"
