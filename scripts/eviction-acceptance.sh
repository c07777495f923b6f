#!/usr/bin/env bash
# Eviction acceptance: a grid with a memory limit and an eviction policy
# takes far more distinct values than fit, from one process, while a
# zipfian set of hot keys is read, and stays within its limit. Creates a
# memory-only grid under a unique name (`numagrid create NAME --memory 64MiB
# --eviction lru --no-journal`), writes 1 GiB of distinct values through it
# with `numagrid-eviction-bench --fill`, each write followed by a read of a
# hot key, then reports the peak memory used against the limit (sampled
# with Evictor::Measure during the fill, and `numagrid stats --json` after
# it), the failed writes, the share of hot keys still present, runs
# `numagrid check` and destroys the grid (also on failure or Ctrl-C). Builds
# the two binaries (release preset) if they are missing. Exits 0 only if
# every write succeeded, the memory used stayed within the limit and the
# check passed; 1 otherwise, 2 on bad options.
#   scripts/eviction-acceptance.sh [--memory SIZE] [--fill SIZE]
#     [--policy lru|lfu|random|ttl-first] [--value-size B] [--hot-keys N]
#     [--reads-per-write N] [--build-dir DIR]
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
memory=64MiB fill=1GiB policy=lru value_size=256 hot_keys=10000 reads=1
build_dir=$root/build/release
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || { echo "eviction-acceptance.sh: $1 needs a value (see --help)" >&2; exit 2; }
  case "$1" in
    --memory) memory=$2 ;;
    --fill) fill=$2 ;;
    --policy) policy=$2 ;;
    --value-size) value_size=$2 ;;
    --hot-keys) hot_keys=$2 ;;
    --reads-per-write) reads=$2 ;;
    --build-dir) build_dir=$2 ;;
    *) echo "eviction-acceptance.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift 2
done
say() { echo "acceptance: $*"; }

ng=$build_dir/core/cli/numagrid
bench=$build_dir/bench/eviction/numagrid-eviction-bench
if [[ ! -x "$ng" || ! -x "$bench" ]]; then
  if [[ "$build_dir" != "$root/build/release" ]]; then
    echo "eviction-acceptance.sh: $ng or $bench is missing" >&2; exit 2
  fi
  say "building numagrid and numagrid-eviction-bench (release preset)"
  (cd "$root" && cmake --preset release >/dev/null &&
     cmake --build --preset release -j2 --target numagrid_cli numagrid_eviction_bench >/dev/null)
fi

name=evaccept-$$
created=0
cleanup() {
  if ((created)); then "$ng" destroy "$name" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "grid $name: numagrid create $name --memory $memory --eviction $policy --no-journal (memory-only)"
"$ng" create "$name" --memory "$memory" --eviction "$policy" --no-journal >/dev/null
created=1
limit=$("$ng" info "$name" --json | sed -n 's/.*"memory_bytes": \([0-9]*\).*/\1/p' | head -n1)

start=$SECONDS
status=0
json=$(mktemp)
"$bench" --fill "$fill" --grid "$name" --value-size "$value_size" \
  --hot-keys "$hot_keys" --reads-per-write "$reads" --json "$json" || status=$?
say "fill took $((SECONDS - start)) s (exit $status)"
fails=1
failed_writes=$(sed -n 's/.*"write_failures": \([0-9]*\).*/\1/p' "$json" | head -n1)
peak=$(sed -n 's/.*"peak_used_bytes": \([0-9]*\).*/\1/p' "$json" | head -n1)
rm -f "$json"
if [[ -n "$failed_writes" && -n "$peak" ]]; then fails=0; fi

# After the fill, from the grid's own counters: live and retired bytes of
# every partition (what Evictor::Measure counts) against --memory.
stats=$("$ng" stats "$name" --json)
used_now=$(printf '%s\n' "$stats" | awk '
  /"partitions": \[/ { p = 1 }
  /"processes": \[/ { p = 0 }
  p && /"used_bytes":|"retired_bytes":/ { gsub(/[^0-9]/, "", $2); s += $2 }
  END { print s + 0 }')
say "memory limit: $limit bytes (--memory $memory)"
say "peak used during the fill (Evictor::Measure): ${peak:-?} bytes"
say "used after the fill (numagrid stats: live + retired): $used_now bytes"

result=0
if ((status != 0)); then say "FAIL: the fill exited with $status"; result=1; fi
if ((fails)); then say "FAIL: no result from the fill"; result=1; fi
if [[ -n "$failed_writes" ]] && ((failed_writes != 0)); then
  say "FAIL: $failed_writes writes failed"; result=1
fi
if [[ -n "$peak" ]] && ((peak > limit)); then
  say "FAIL: peak used $peak > limit $limit"; result=1
fi
if ((used_now > limit)); then
  say "FAIL: used $used_now > limit $limit"; result=1
fi
if "$ng" check "$name"; then
  say "numagrid check: passed"
else
  say "FAIL: numagrid check failed"; result=1
fi
"$ng" destroy "$name" >/dev/null && created=0
say "grid $name destroyed"
if ((result == 0)); then say "PASSED"; else say "FAILED"; fi
exit $result
