#!/bin/bash
# ctest driver for the numa-vm placement check (label numa-vm; see
# docs/numa.md). Boots numa-vm guests with 2 and then 4 real NUMA nodes and
# runs numa_vm_guest.sh in each: a bound grid must pass the placement probe,
# an unbound one (--no-bind) must fail it, and every node's worker task
# arena must keep its threads on that node's CPUs (each node has 2 CPUs, so
# that an arena has a oneTBB worker thread besides its caller).
#
#   numa_vm_test.sh SHARED_DIR NUMAGRID_CLI PROBE GUEST_SCRIPT ARENA_PROBE
#
# SHARED_DIR is the default for the directory holding numa-vm/; the
# environment variable NUMAGRID_SHARED_DIR overrides it. Exits 0 if every
# check passed, 1 if one failed, 77 (a skip, with the reason printed) when the
# VM cannot be used here: no numa-vm scripts, setup.sh failing, no QEMU, a
# guest that does not boot, or no numagrid CLI in this build.
set -uo pipefail
SKIP=77
shared=${NUMAGRID_SHARED_DIR:-$1}
cli=$2 probe=$3 guest=$4 arena_probe=${5:-}
vm=$shared/numa-vm

say() { echo "numa-vm test: $*"; }
skip() { say "SKIP: $*"; exit $SKIP; }

[ -x "$vm/run.sh" ] && [ -x "$vm/setup.sh" ] ||
  skip "no numa-vm scripts in '$vm' (set NUMAGRID_SHARED_DIR to the dir holding numa-vm/)"
[ -n "$cli" ] && [ -x "$cli" ] ||
  skip "the numagrid CLI is not built in this tree ('$cli')"
[ -x "$probe" ] || { say "FAIL: the probe '$probe' is not built"; exit 1; }
[ -r "$guest" ] || { say "FAIL: no guest script '$guest'"; exit 1; }
[ -x "$arena_probe" ] || { say "FAIL: the arena probe '$arena_probe' is not built"; exit 1; }
[ "$(pwd -P)" != / ] || skip "run.sh cannot share / writable: run from a build dir"

if ! setup_out=$("$vm/setup.sh" 2>&1); then
  printf '%s\n' "$setup_out" | tail -n 20
  skip "numa-vm/setup.sh failed (see above)"
fi
say "$(printf '%s\n' "$setup_out" | tail -n 1)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"

# The guest sees the host's / read-only at the same paths, except /tmp, which
# is its own tmpfs: a binary under the host's /tmp needs --rw to be seen.
rw=()
for f in "$cli" "$probe" "$guest" "$arena_probe"; do
  d=$(dirname "$(readlink -f "$f")")
  case "$d" in /tmp | /tmp/*) rw+=(--rw "$d") ;; esac
done

# Does a guest boot at all? (TCG is used when /dev/kvm cannot run it.)
if ! boot_out=$("$vm/run.sh" --nodes 2 --mem-per-node 256 --timeout 180 -- true 2>&1); then
  printf '%s\n' "$boot_out" | tail -n 20
  skip "a numa-vm guest does not boot here (see above)"
fi

failed=()
for n in 2 4; do
  say "=== guest with $n NUMA nodes ==="
  "$vm/run.sh" --nodes "$n" --cpus-per-node 2 --mem-per-node 256 --timeout 400 "${rw[@]}" -- \
    bash "$guest" "$cli" "$probe" "$n" "$arena_probe"
  rc=$?
  case $rc in
    0) say "$n nodes: PASS (bound grid placed and pinned; unbound control caught; worker arenas on their nodes)" ;;
    124) say "$n nodes: FAIL: the guest timed out"; failed+=("$n") ;;
    125) say "$n nodes: FAIL: the VM failed (run.sh exit 125)"; failed+=("$n") ;;
    *) say "$n nodes: FAIL (guest exit $rc)"; failed+=("$n") ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  say "FAIL for ${failed[*]} node(s)"
  exit 1
fi
say "PASS: placement and worker arenas checked against the kernel with 2 and 4 NUMA nodes"
exit 0
