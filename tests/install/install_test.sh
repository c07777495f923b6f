#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the consumer project
# against it with find_package(numagrid), and runs it on a grid made by the
# installed CLI. Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
grid="install$$"
trap 'LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/prefix/bin/numagrid" destroy "$grid" --quiet 2>/dev/null || true; rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in include/numagrid/grid.h include/numagrid/status.h bin/numagrid; do
  [[ -e "$tmp/prefix/$f" ]] || { echo "not installed: $f"; exit 1; }
done
libdir=$(dirname "$(find "$tmp/prefix" -name 'libnumagrid.so*' | head -1)")
cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/prefix/bin/numagrid" create "$grid" --memory 8MiB --partitions 4 --no-journal >/dev/null
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer/consumer" "$grid")
[[ "$out" == works ]] || { echo "consumer printed '$out', expected 'works'"; exit 1; }
echo "install test: find_package(numagrid) consumer built and ran against grid $grid"
