#!/usr/bin/env bash
# Shared by the runbook tests (docs/runbooks/): sourced after `set -euo
# pipefail` with the numagrid executable as $1. Gives each test a unique
# grid name prefix and a temporary directory, and removes everything the
# test made (watchdogs, grids, journals, mounts) on exit, whatever happens.
#   ng: the numagrid executable   tmp: a fresh directory   id: unique suffix
ng=$1
[[ -x "$ng" ]] || { echo "usage: $0 NUMAGRID_CLI" >&2; exit 2; }
id=rb$$x$RANDOM
tmp=$(mktemp -d /tmp/numagrid-runbook-XXXXXX)
grids=()   # grid NAME:JOURNAL_DIR pairs to stop and purge
mounts=()  # mount points to unmount
pids=()    # processes to kill

cleanup() {
  local rc=$? g
  set +e
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for g in "${grids[@]}"; do
    "$ng" stop "${g%%:*}" --quiet --timeout 10s >/dev/null 2>&1
    # Workers left behind by a killed watchdog (their pids are in status).
    for p in $("$ng" status "${g%%:*}" --json 2>/dev/null |
               sed -n 's/.*"worker_pid": \([1-9][0-9]*\).*/\1/p'); do
      kill -KILL "$p" 2>/dev/null
    done
    "$ng" destroy "${g%%:*}" --purge --journal-dir "${g#*:}" --quiet >/dev/null 2>&1
    rm -f /dev/shm/numagrid."${g%%:*}".* 2>/dev/null
  done
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT

say() { echo "runbook: $*"; }
fail() { echo "runbook test FAILED: $*" >&2; exit 1; }

# new_grid NAME DIR [create options...]: creates a grid to be cleaned up.
new_grid() {
  local name=$1 dir=$2; shift 2
  grids+=("$name:$dir")
  "$ng" create "$name" --journal-dir "$dir" "$@" >/dev/null
}

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# expect_exit CODE COMMAND...: runs COMMAND and fails unless it exits CODE.
expect_exit() {
  local want=$1 rc=0; shift
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  ((rc == want)) || fail "'$*' exited $rc, expected $want: $(cat "$tmp/out" "$tmp/err")"
}

json_field() {  # json_field FIELD: the first numeric or string value of FIELD on stdin
  sed -n "s/.*\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -n 1
}
worker_pid() { "$ng" status "$1" --json | json_field worker_pid; }
worker_state() { "$ng" status "$1" --json | json_field worker_state; }
worker_running() {  # a live worker journals node 0
  [[ "$(worker_state "$1")" == running ]] &&
    "$ng" status "$1" --json | grep -q '"worker_alive": true'
}
event_count() {  # event_count DIR EVENT
  grep -c "\"event\":\"$2\"" "$1/events.log" 2>/dev/null || true
}

# The acknowledgement ledger: put_sync records a key as durable only when
# `put --sync` exited 0; verify_acked checks every recorded key.
declare -A acked=()
put_sync() {  # put_sync GRID KEY VALUE
  "$ng" put "$1" "$2" "$3" --sync && acked[$2]=$3
}
verify_acked() {  # verify_acked GRID
  local k v n=0
  for k in "${!acked[@]}"; do
    v=$("$ng" get "$1" "$k") || fail "acknowledged key '$k' is gone from $1"
    [[ "$v" == "${acked[$k]}" ]] || fail "key '$k': got '$v', acknowledged '${acked[$k]}'"
    n=$((n + 1))
  done
  say "all $n acknowledged-durable values are in $1"
}
