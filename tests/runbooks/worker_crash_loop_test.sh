#!/usr/bin/env bash
# docs/runbooks/worker-crash-loop.md, step by step: a journal segment is
# damaged in the middle (an intact record follows the bad one), so every
# new worker refuses the journal at start (exit 7) and the watchdog backs
# off; the events show it; the fix (stop, snapshot, move the damaged
# segment aside, start) brings the worker back with every acknowledged
# value, and recovery from the journal alone agrees.
#   worker_crash_loop_test.sh NUMAGRID_CLI
set -euo pipefail
source "$(dirname "$0")/lib.sh"
g=${id}loop jdir=$tmp/journal
new_grid "$g" "$jdir" --memory 8MiB --partitions 4 --sync-wait 500ms
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "no worker"
for i in $(seq 1 20); do put_sync "$g" "k$i" "v$i"; done

# The damage: flip a byte of the first record's key in the newest segment.
seg=$(ls "$jdir"/journal-0-*.log | tail -n 1)
printf '\xff' | dd of="$seg" bs=1 seek=$((64 + 56)) conv=notrunc status=none
old=$(worker_pid "$g")
kill -KILL "$old"
say "damaged $seg and killed worker $old"

# Symptom: the worker keeps exiting, the watchdog backs off.
backoffs() { (($(event_count "$jdir" crash_loop_backoff) >= $1)); }
wait_for 20 backoffs 3 ||
  fail "no crash-loop backoff: $("$ng" events "$g")"
"$ng" events "$g" --last 8
"$ng" events "$g" | grep -q 'exited with status 7' || fail "exit 7 not in events"
"$ng" events "$g" | grep -q 'next start in [0-9]* ms' || fail "no backoff delay"
# The backoff grows: the delays of the first backoffs are increasing.
delays=$(grep '"crash_loop_backoff"' "$jdir/events.log" |
         sed -n 's/.*next start in \([0-9]*\) ms.*/\1/p' | head -n 3 | tr '\n' ' ')
read -r d1 d2 d3 <<<"$delays"
((d1 < d2 && d2 < d3)) || fail "backoff does not grow: $delays"
grep -q "damage inside the journal" "$jdir/numagrid.log" ||
  fail "the log does not say why"
"$ng" status "$g"
# Meanwhile: a sync write is not confirmed (12), an async one is accepted.
expect_exit 12 "$ng" put "$g" during sync-write --sync
expect_exit 0 "$ng" put "$g" during-async async-write
# The worker is down, so the next async write is journaled after the fix.

# The fix, as the runbook says.
"$ng" stop "$g"
"$ng" snapshot "$g"
mkdir -p "$jdir/damaged"
mv "$seg" "$jdir/damaged/"
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "the worker did not come back"
put_sync "$g" after-fix yes
expect_exit 0 "$ng" check "$g" --journal
verify_acked "$g"
[[ "$("$ng" get "$g" during-async)" == async-write ]] || fail "async write lost"
# The worker stays up: no exit after the fix.
exits_before=$(event_count "$jdir" worker_exited)
sleep 2.5
[[ "$(event_count "$jdir" worker_exited)" == "$exits_before" ]] ||
  fail "the worker still exits: $("$ng" events "$g" --last 4)"

# The snapshot plus the journal alone rebuild the same grid.
"$ng" stop "$g" --destroy --quiet
"$ng" recover "$g" --journal-dir "$jdir" --quiet
verify_acked "$g"
[[ "$("$ng" get "$g" during-async)" == async-write ]] || fail "async write lost"
expect_exit 0 "$ng" check "$g" --journal
say "passed"
