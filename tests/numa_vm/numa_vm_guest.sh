#!/bin/bash
# Runs inside a numa-vm guest with N real NUMA nodes (started by
# numa_vm_test.sh). Creates a grid with the numagrid CLI, checks with the
# placement probe that node i's data segment is on node i and that pinned
# threads run there, then repeats with --no-bind, which must FAIL the probe:
# otherwise the probe cannot tell a bound grid from an unbound one. Then
# checks the journal workers' task arenas: the arena probe must see every
# arena thread of node i on node i's CPUs, and `numagrid worker` must log and
# publish the oneTBB NUMA binding for every node.
#
#   numa_vm_guest.sh NUMAGRID_CLI PROBE N ARENA_PROBE
#
# The creator runs pinned to node 0's CPUs, so first touch alone would put
# every page on node 0: only the binding can put node i's pages on node i.
# Exit 0 when both halves behaved, 1 otherwise.
set -uo pipefail
cli=$1 probe=$2 n=$3 arena_probe=$4
say() { echo "guest($n nodes): $*"; }
fail() { say "FAIL: $*"; exit 1; }

have=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
[ "$have" = "$n" ] || fail "the guest has $have NUMA nodes, expected $n"
for d in /sys/devices/system/node/node[0-9]*; do
  say "${d##*/}: cpus $(cat "$d/cpulist")"
done
cpus0=$(cat /sys/devices/system/node/node0/cpulist)
# The grid's own files (if any) go to the guest's tmpfs, not the 9p share.
work=$(mktemp -d /tmp/numagrid-vm.XXXXXX) && cd "$work" || fail "no work dir"

run_probe() {
  "$probe" --segment-prefix numagrid.vm.node --nodes "$n"
}

say "1. numagrid create vm --partitions 8 --memory 64MiB (creator pinned to cpus $cpus0)"
taskset -c "$cpus0" "$cli" create vm --partitions 8 --memory 64MiB --no-journal ||
  fail "numagrid create exited $?"
run_probe
rc=$?
"$cli" destroy vm || fail "numagrid destroy exited $?"
[ $rc = 0 ] || fail "the bound grid failed the probe (exit $rc)"
say "bound grid: every node's segment on its node, pinned threads on their nodes"

say "2. control: numagrid create vm --partitions 8 --memory 64MiB --no-bind (creator pinned to cpus $cpus0)"
taskset -c "$cpus0" "$cli" create vm --partitions 8 --memory 64MiB --no-bind --no-journal ||
  fail "numagrid create --no-bind exited $?"
run_probe
rc=$?
"$cli" destroy vm || fail "numagrid destroy exited $?"
case $rc in
  1) say "control: the probe rejected the unbound grid, as it must" ;;
  0) fail "the probe passed the unbound grid: the check cannot tell bound from unbound" ;;
  *) fail "the probe could not check the unbound grid (exit $rc)" ;;
esac
say "3. worker task arenas: every thread of node i's arena on node i's cpus"
"$arena_probe" --nodes "$n" || fail "the arena probe failed (exit $?)"

say "4. numagrid worker: each node's arena bound through oneTBB's NUMA constraints"
"$cli" create vmw --partitions 8 --memory 64MiB --journal-dir "$work/journal" ||
  fail "numagrid create (journaled) exited $?"
"$cli" worker vmw >"$work/worker.log" 2>&1 &
worker=$!
for _ in $(seq 600); do
  [ "$(grep -c 'task arena' "$work/worker.log")" -ge "$n" ] && break
  sleep 0.1
done
status=$("$cli" status vmw --json)
for _ in $(seq 600); do
  [ "$(printf '%s' "$status" | grep -o '"worker_arena": *"tbb-numa"' | wc -l)" -ge "$n" ] && break
  sleep 0.1
  status=$("$cli" status vmw --json)
done
kill -TERM "$worker"
wait "$worker"
wrc=$?
grep 'task arena' "$work/worker.log"
"$cli" destroy vmw --purge --journal-dir "$work/journal" >/dev/null ||
  fail "numagrid destroy exited $?"
[ $wrc = 0 ] || fail "numagrid worker exited $wrc: $(tail -n 5 "$work/worker.log")"
arenas=$(grep 'task arena' "$work/worker.log" | grep -c 'tbb-numa')
[ "$arenas" = "$n" ] || fail "$arenas of $n worker arenas logged the tbb-numa binding"
published=$(printf '%s' "$status" | grep -o '"worker_arena": *"tbb-numa"' | wc -l)
[ "$published" = "$n" ] || fail "status --json shows tbb-numa for $published of $n nodes"
say "worker: $n arenas bound through oneTBB NUMA constraints, shown by status --json"

say "5. numagrid start --workers-per-node 2: two worker processes per node, each on its node's cpus"
"$cli" create vmk --partitions 8 --memory 64MiB --workers-per-node 2 \
  --journal-dir "$work/journal-k" || fail "numagrid create --workers-per-node 2 exited $?"
"$cli" start vmk || fail "numagrid start exited $?"
rows=""
for _ in $(seq 600); do
  # "N.S  PID  GEN  running ...": one row per (node, stream).
  rows=$("$cli" status vmk | awk '$1 ~ /^[0-9]+\.[0-9]+$/ && $4 == "running" { print $1, $2 }')
  [ "$(printf '%s\n' "$rows" | grep -c .)" = $((2 * n)) ] && break
  sleep 0.1
done
pinned=0
while read -r ns pid; do
  [ -n "$ns" ] || continue
  node=${ns%%.*}
  want=$(cat "/sys/devices/system/node/node$node/cpulist")
  for task in /proc/"$pid"/task/*; do
    got=$(awk '/^Cpus_allowed_list:/ { print $2 }' "$task/status")
    [ "$got" = "$want" ] || {
      "$cli" stop vmk --destroy >/dev/null 2>&1
      fail "worker $ns (pid $pid) thread ${task##*/} may run on cpus $got, not node $node's $want"
    }
  done
  pinned=$((pinned + 1))
done <<<"$rows"
"$cli" stop vmk --destroy >/dev/null || fail "numagrid stop --destroy exited $?"
[ "$pinned" = $((2 * n)) ] || fail "$pinned of $((2 * n)) stream workers were running"
say "workers: $pinned stream workers, each with every thread on its node's cpus"
say "PASS"
