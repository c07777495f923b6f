#!/usr/bin/env bash
# docs/runbooks/scaling.md, step by step: the workers per node are the
# grid's own (a start asking for another number exits 2 and says how to
# change it); the watchdog's heartbeat timeout changes online (stop, start:
# attached data stays, nothing is lost); a new partition count, memory size
# and number of workers per node need a new grid: the data moves with
# `numagrid copy` (keeping TTLs) into a new grid created with
# --workers-per-node 2, and back under the old name, with the old journal
# kept aside for a rollback, which is tried last.
#   scaling_test.sh NUMAGRID_CLI
set -euo pipefail
source "$(dirname "$0")/lib.sh"
g=${id}scale jdir=$tmp/journal
new_grid "$g" "$jdir" --memory 8MiB --partitions 4
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "no worker"
for i in $(seq 1 50); do put_sync "$g" "k$i" "value $i"; done
"$ng" put "$g" session-1 token --ttl 3600 --sync

# Workers per node: fixed at create (1 here); another number is refused,
# naming the grid's and the way to change it.
expect_exit 2 "$ng" start "$g" --workers-per-node 2
grep -q "created with 1 journal stream(s) per node" "$tmp/err" || fail "no reason given: $(cat "$tmp/err")"
grep -q "numagrid copy" "$tmp/err" || fail "no way out given: $(cat "$tmp/err")"
expect_exit 2 "$ng" start "$g" --workers-per-node 9
# Every stream's worker runs (status has one row per worker).
all_workers_running() {  # all_workers_running NAME COUNT
  [[ "$("$ng" status "$1" --json | grep -c '"worker_state": "running"')" == "$2" ]]
}
nodes=$("$ng" info "$g" --json | grep -c '"segment":')

# Online: the watchdog's settings (restart it; the grid stays up).
"$ng" stop "$g" --quiet
"$ng" put "$g" while-stopped still-accepted  # async: waits in the ring
"$ng" start "$g" --heartbeat-timeout 5s --quiet
wait_for 10 worker_running "$g" || fail "no worker after the restart"
expect_exit 0 "$ng" check "$g" --journal
[[ "$("$ng" get "$g" while-stopped)" == still-accepted ]] || fail "lost a write"
acked[while-stopped]=still-accepted

# The layout (partitions, memory, workers per node) is fixed at create:
# re-create and copy.
# 1. The new layout under a temporary name, with its own journal.
new="${g}new" ndir=$tmp/journal-new
new_grid "$new" "$ndir" --memory 16MiB --partitions 8 --workers-per-node 2
expect_exit 2 "$ng" start "$new" --workers-per-node 1
grep -q "created with 2 journal stream(s) per node" "$tmp/err" || fail "no reason given: $(cat "$tmp/err")"
"$ng" start "$new" --workers-per-node 2 --quiet
wait_for 10 all_workers_running "$new" $((nodes * 2)) || fail "not two workers per node for $new"
"$ng" info "$new" --json | grep -q '"workers_per_node": 2' || fail "not 2 workers per node"
# 2. Writers stopped; a last snapshot of the old grid; copy.
"$ng" snapshot "$g" --quiet
"$ng" copy "$g" "$new" --json >"$tmp/copy.json"
cat "$tmp/copy.json"
[[ "$(json_field copied <"$tmp/copy.json")" == 52 ]] || fail "not every entry was copied"
expect_exit 0 "$ng" check "$new" --journal
"$ng" scan "$g" | sort >"$tmp/old.scan"
"$ng" scan "$new" | sort >"$tmp/new.scan"
cmp -s "$tmp/old.scan" "$tmp/new.scan" || fail "the copy differs: $(diff "$tmp/old.scan" "$tmp/new.scan" | head)"
"$ng" info "$new" --json | grep -q '"partitions": 8' || fail "not 8 partitions"
# 3. Back under the old name: stop and remove the old grid, keep its
#    journal aside (rollback: `numagrid recover NAME --journal-dir OLD`).
"$ng" stop "$g" --destroy --quiet
mv "$jdir" "$tmp/journal-old"
new_grid "$g" "$jdir" --memory 16MiB --partitions 8 --workers-per-node 2
"$ng" start "$g" --quiet
wait_for 10 all_workers_running "$g" $((nodes * 2)) || fail "no workers for the re-created grid"
"$ng" copy "$new" "$g" --quiet
"$ng" stop "$new" --destroy --quiet
"$ng" destroy "$new" --purge --journal-dir "$ndir" --quiet
# 4. Verify.
expect_exit 0 "$ng" check "$g" --journal
verify_acked "$g"
"$ng" info "$g" --json | grep -q '"partitions": 8' || fail "not 8 partitions"
"$ng" info "$g" --json | grep -q '"workers_per_node": 2' || fail "not 2 workers per node"
[[ "$("$ng" get "$g" session-1)" == token ]] || fail "the TTL entry was not copied"
"$ng" status "$g"
# Rollback, as the runbook says: the old layout from the old journal.
"$ng" stop "$g" --quiet
"$ng" destroy "$g" --purge --quiet
grids+=("$g:$tmp/journal-old")
"$ng" recover "$g" --journal-dir "$tmp/journal-old" --quiet
"$ng" start "$g" --journal-dir "$tmp/journal-old" --quiet
wait_for 10 worker_running "$g" || fail "no worker after the rollback"
"$ng" info "$g" --json | grep -q '"partitions": 4' || fail "not 4 partitions"
"$ng" info "$g" --json | grep -q '"workers_per_node": 1' || fail "not 1 worker per node"
verify_acked "$g"
expect_exit 0 "$ng" check "$g" --journal
say "passed"
