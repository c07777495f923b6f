#!/usr/bin/env bash
# docs/runbooks/host-reboot.md, step by step: a host reboot is simulated by
# SIGKILLing the watchdog and the workers and removing the grid's shared
# memory (/dev/shm/numagrid.NAME.*). `numagrid start NAME` rebuilds the grid
# from snapshot plus journal and runs it again; a second reboot is then
# handled the way the systemd unit does it (`start --foreground`, stopped
# with SIGTERM), and a third with `numagrid recover`. Every value
# acknowledged by `put --sync` must come back each time.
#   host_reboot_test.sh NUMAGRID_CLI
set -euo pipefail
source "$(dirname "$0")/lib.sh"
g=${id}boot jdir=$tmp/journal
new_grid "$g" "$jdir" --memory 8MiB --partitions 4
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "no worker"
for i in $(seq 1 30); do put_sync "$g" "k$i" "v$i"; done
"$ng" snapshot "$g" --quiet  # some of it from a snapshot, the rest from the journal
for i in $(seq 31 40); do put_sync "$g" "k$i" "v$i"; done
put_sync "$g" k5 v5-overwritten
"$ng" del "$g" k6 --sync && unset 'acked[k6]'
"$ng" put "$g" ttl-key lives --ttl 3600 --sync

reboot() {  # what a reboot does to the grid: processes and /dev/shm gone
  local w p
  w=$("$ng" status "$g" --json | json_field watchdog_pid)
  p=$(worker_pid "$g")
  kill -KILL "$w" "$p" 2>/dev/null || true
  while kill -0 "$w" 2>/dev/null || kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  rm -f /dev/shm/numagrid."$g".*
  expect_exit 3 "$ng" info "$g"
  say "rebooted: watchdog $w and worker $p killed, shared memory removed"
}

# 1. `numagrid start` after the reboot: recovers, then runs the workers.
reboot
"$ng" start "$g" --journal-dir "$jdir" --quiet 2>"$tmp/start.log"
cat "$tmp/start.log"
grep -q "recovered grid '$g'" "$tmp/start.log" || fail "start did not recover"
wait_for 10 worker_running "$g" || fail "no worker after start"
verify_acked "$g"
expect_exit 3 "$ng" get "$g" k6
[[ "$("$ng" get "$g" ttl-key)" == lives ]] || fail "ttl-key lost"
expect_exit 0 "$ng" check "$g" --journal
"$ng" status "$g"
put_sync "$g" after-first-reboot yes

# 2. The systemd unit's way: `start --foreground`, stopped with SIGTERM.
reboot
"$ng" start "$g" --foreground --journal-dir "$jdir" 2>"$tmp/fg.log" &
fg=$!
pids+=("$fg")
wait_for 10 worker_running "$g" || fail "no worker under start --foreground"
verify_acked "$g"
expect_exit 0 "$ng" check "$g" --journal
put_sync "$g" after-second-reboot yes
kill -TERM "$fg"
rc=0; wait "$fg" || rc=$?
((rc == 0)) || fail "start --foreground exited $rc on SIGTERM: $(cat "$tmp/fg.log")"

# 3. `numagrid recover` by hand (e.g. to inspect before starting).
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "no worker"
reboot
"$ng" recover "$g" --journal-dir "$jdir"
verify_acked "$g"
expect_exit 0 "$ng" check "$g" --journal
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "no worker after recover"
put_sync "$g" after-third-reboot yes
verify_acked "$g"
say "passed"
