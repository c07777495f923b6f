#!/usr/bin/env bash
# Installs what is missing, then configures and builds the fuzz preset
# (clang, ASan + UBSan, build/fuzz) and runs each libFuzzer target over its
# seed corpus for a bounded time. Exits non-zero on a build failure, a crash
# or a sanitizer finding; the input that caused it is in
# build/fuzz/tests/fuzz/artifacts/.
#   scripts/fuzz.sh [--seconds N]   N: seconds per target (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
seconds=60
if [[ "${1:-}" == --seconds ]]; then
  seconds="${2:-}"
  [[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds needs a positive number" >&2; exit 2; }
elif [[ $# -gt 0 ]]; then
  echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2
fi
scripts/install-deps.sh

echo "== fuzz: configure and build"
# Always passed, so that a value from an earlier run does not stick.
cmake --preset fuzz -DNUMAGRID_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build --preset fuzz
echo "== fuzz: run each target for ${seconds}s"
ctest --preset fuzz -j "$(nproc)"
