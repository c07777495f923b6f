#!/usr/bin/env bash
# Runs the commands of docs/runbooks/split-brain.md against a new grid and
# checks that each guard holds: a second watchdog and a second worker exit
# 4, a stopped worker fenced and resumed exits 4 without writing, a new
# watchdog adopts or replaces and nothing acknowledged is lost, a second
# grid cannot claim the journal directory.
#   split_brain_test.sh NUMAGRID_CLI
set -euo pipefail
cli=$1
grid=split$$
other=split$$b
jdir=$(mktemp -d /tmp/numagrid-split-XXXXXX)
hand=
cleanup() {
  [[ -n $hand ]] && kill -9 "$hand" 2>/dev/null || true
  "$cli" stop "$grid" --quiet >/dev/null 2>&1 || true
  "$cli" destroy "$grid" --purge --journal-dir "$jdir" --quiet >/dev/null 2>&1 || true
  "$cli" destroy "$other" --quiet >/dev/null 2>&1 || true
  rm -rf "$jdir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_exit CODE CMD...: runs CMD, fails unless it exits CODE.
expect_exit() {
  local want=$1; shift
  local rc=0
  "$@" >/tmp/split$$.out 2>&1 || rc=$?
  [[ $rc == "$want" ]] || { cat /tmp/split$$.out >&2; fail "'$*' exited $rc, want $want"; }
}
worker_pid() {
  "$cli" status "$grid" --json | python3 -c \
    'import json,sys; n=json.load(sys.stdin)["nodes"][0]; print(n["worker_pid"] if n["worker_alive"] else 0)'
}
field() {  # field NAME: nodes[0][NAME] of status --json
  "$cli" status "$grid" --json | python3 -c \
    "import json,sys; print(json.load(sys.stdin)['nodes'][0]['$1'])"
}

"$cli" create "$grid" --memory 32MiB --partitions 4 --journal-dir "$jdir" >/dev/null

# 1. A second watchdog exits 4 naming the first; so does a second worker.
"$cli" start "$grid" --quiet
wd=$("$cli" status "$grid" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["watchdog_pid"])')
[[ $wd != 0 ]] || fail "no watchdog after start"
expect_exit 4 "$cli" start "$grid" --foreground
grep -q "pid $wd" /tmp/split$$.out || fail "the second start does not name pid $wd"
for _ in $(seq 100); do [[ $(worker_pid) != 0 ]] && break; sleep 0.05; done
expect_exit 4 "$cli" worker "$grid" --node 0 --quiet
"$cli" put "$grid" before split --sync
# The watchdog is wedged: kill it; writes go on, a new start adopts.
first=$(worker_pid)
kill -9 "$wd"
"$cli" put "$grid" while nowatchdog --sync
"$cli" start "$grid" --quiet
"$cli" events "$grid" --last 5 | grep -q worker_adopted || fail "no worker_adopted event"
[[ $(worker_pid) == "$first" ]] || fail "the running worker was not adopted"
"$cli" stop "$grid" --quiet

# 2. A worker started by hand, stopped, fenced, resumed: exits 4, writes nothing.
"$cli" worker "$grid" --node 0 --quiet &
hand=$!
for _ in $(seq 100); do [[ $(worker_pid) == "$hand" ]] && break; sleep 0.05; done
[[ $(worker_pid) == "$hand" ]] || fail "the hand-started worker did not run"
kill -STOP "$hand"
"$cli" put "$grid" pending change   # async: stays in the ring
sizes_before=$(stat -c '%n %s' "$jdir"/journal-0-*.log)
"$cli" fence "$grid" --node 0 --reason "stale worker $hand" --quiet
[[ $(field generation) -gt $(field worker_generation) ]] || fail "status does not show the worker fenced"
"$cli" status "$grid" | grep -q '!' || fail "status table does not mark the fenced worker"
kill -CONT "$hand"
rc=0; wait "$hand" || rc=$?
hand=
[[ $rc == 4 ]] || fail "the fenced worker exited $rc, want 4"
[[ $(stat -c '%n %s' "$jdir"/journal-0-*.log) == "$sizes_before" ]] \
  || fail "the fenced worker wrote to the journal"
"$cli" events "$grid" --last 5 > /tmp/split$$.out
grep -q worker_fenced /tmp/split$$.out || fail "no worker_fenced event"
grep -q worker_stepped_down /tmp/split$$.out || fail "no worker_stepped_down event"
# A new watchdog starts a newer worker, which journals what was pending.
"$cli" start "$grid" --quiet
"$cli" put "$grid" probe ok --sync
# The new watchdog repairs the slots of the processes killed above within a
# second; until then `check` reports them.
ok=
for _ in $(seq 50); do
  if "$cli" check "$grid" --journal 2>&1 | grep -q " 0 difference(s), 0 pending"; then
    ok=1; break
  fi
  sleep 0.1
done
[[ -n $ok ]] || { "$cli" check "$grid" --journal >&2; fail "check --journal did not come clean"; }
for k in before while pending probe; do
  "$cli" get "$grid" "$k" >/dev/null || fail "key $k is missing"
done
"$cli" stop "$grid" --quiet

# 3. A second grid cannot claim the journal directory.
expect_exit 4 "$cli" create "$other" --memory 32MiB --journal-dir "$jdir"
grep -q "$grid" /tmp/split$$.out || fail "the refusal does not name grid $grid"
rm -f /tmp/split$$.out
echo "split-brain runbook: every guard held"
