#!/usr/bin/env bash
# Installs what is missing, checks the formatting, then configures, builds
# and runs every test suite in the release (including the numa-vm placement
# check, the multi-process and crash suites) and asan (AddressSanitizer + UBSan)
# presets, the unit and thread-stress suites under tsan, and the libFuzzer
# targets of the journal and snapshot parsers for 45 s each. Exits non-zero
# on the first failure.
#   scripts/test.sh [--quick]   --quick: release only
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
scripts/install-deps.sh
echo "== format check"
scripts/format.sh --check

presets=(release asan tsan)
[[ "${1:-}" == --quick ]] && presets=(release)
for preset in "${presets[@]}"; do
  echo "== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -- -k 0
  echo "== $preset: test"
  case "$preset" in
    # TSan: the unit suites and the multi-threaded stress (TSan cannot see
    # that two processes share memory, so the cross-process suites add
    # nothing under it; they run in release and asan).
    # Two commands, not an `&&` list: set -e ignores a failure on the left
    # of `&&`, which once let a failing TSan suite pass CI.
    tsan)
      ctest --preset tsan -L unit
      ctest --preset tsan -R MultiThreadGrid
      ;;
    *) ctest --preset "$preset" ;;
  esac
done
[[ "${1:-}" == --quick ]] && exit 0
scripts/fuzz.sh --seconds 45
