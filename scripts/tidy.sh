#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the project's sources, using the
# compile_commands.json of the release preset. Usage: scripts/tidy.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
command -v clang-tidy >/dev/null || { echo "tidy.sh: clang-tidy is not installed" >&2; exit 2; }
[[ -f build/release/compile_commands.json ]] || cmake --preset release >/dev/null
if [[ $# -gt 0 ]]; then files=("$@"); else mapfile -t files < <(git ls-files 'core/*.cc' 'shm/*.cc' 'numa/*.cc' 'io/*.cc'); fi
clang-tidy -p build/release --quiet "${files[@]}"
