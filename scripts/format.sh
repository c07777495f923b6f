#!/usr/bin/env bash
# Formats every C++ file with .clang-format, or with --check only reports the
# files that differ (exit 1). Usage: scripts/format.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
command -v clang-format >/dev/null || { echo "format.sh: clang-format is not installed" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.h' '*.cc')
if [[ "${1:-}" == --check ]]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --style=file "$f" | cmp -s - "$f"; then echo "needs formatting: $f"; bad=1; fi
  done
  exit $bad
fi
clang-format --style=file -i "${files[@]}"
