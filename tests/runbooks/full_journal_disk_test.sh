#!/usr/bin/env bash
# docs/runbooks/full-journal-disk.md, step by step, on a small tmpfs mounted
# as the journal directory: another file fills the disk, the worker's
# journal writes fail (state retrying, io_errors counted, nothing dropped),
# sync writes are refused with 12 while async writes stay visible; freeing
# space lets the worker resume by itself, `numagrid snapshot` then prunes
# the journal, and every acknowledged value survives a rebuild from disk.
# Skipped (77) where mounting a tmpfs is not permitted.
#   full_journal_disk_test.sh NUMAGRID_CLI
set -euo pipefail
source "$(dirname "$0")/lib.sh"
g=${id}full jdir=$tmp/journal
mkdir -p "$jdir"
if ! mount -t tmpfs -o size=8m,mode=0700 tmpfs "$jdir" 2>"$tmp/mount.err"; then
  echo "SKIP: cannot mount a tmpfs ($(cat "$tmp/mount.err")); needs root" >&2
  exit 77
fi
mounts+=("$jdir")
# One partition, so one change ring (1024 entries) to fill.
new_grid "$g" "$jdir" --memory 16MiB --partitions 1 --sync-wait 500ms \
  --journal-segment-size 1MiB
"$ng" start "$g" --quiet
wait_for 10 worker_running "$g" || fail "no worker"
for i in $(seq 1 20); do put_sync "$g" "k$i" "v$i"; done

# Something else fills the disk.
dd if=/dev/zero of="$jdir/filler" bs=64k status=none 2>/dev/null || true
df -h "$jdir" | tail -n 1
big=$(head -c 2000 /dev/zero | tr '\0' x)
# Symptom: durable writes are refused with 12 (once the last partly
# written page of the segment is full too); the change stays visible.
refused=0
for i in $(seq 1 10); do
  rc=0
  "$ng" put "$g" refused "$big" --sync 2>"$tmp/err" || rc=$?
  if ((rc == 0)); then acked[refused]=$big; continue; fi
  ((rc == 12)) || fail "put --sync on a full disk exited $rc: $(cat "$tmp/err")"
  refused=1; unset 'acked[refused]'; cat "$tmp/err"; break
done
((refused)) || fail "no sync write was refused on a full disk"
[[ "$("$ng" get "$g" refused)" == "$big" ]] || fail "the refused write is not visible"
retrying() { [[ "$(worker_state "$g")" == retrying ]]; }
wait_for 10 retrying || fail "worker not retrying: $("$ng" status "$g")"
"$ng" status "$g"
errors=$("$ng" status "$g" --json | json_field io_errors)
((errors > 0)) || fail "no I/O errors counted"
# Async writes are accepted (until the change rings are full: then 8).
for i in $(seq 1 20); do "$ng" put "$g" "async$i" "$big"; done
pending=$("$ng" status "$g" --json | json_field pending_changes)
((pending > 0)) || fail "no pending changes while the disk is full"
say "$pending changes wait for the journal"
# Backpressure: once the change ring is full, writes wait and exit 8.
accepted=0 rc=0
while ((accepted < 1200)); do
  "$ng" put "$g" "fill$accepted" f 2>"$tmp/err" || { rc=$?; break; }
  accepted=$((accepted + 1))
done
((rc == 8)) || fail "a full ring did not refuse with 8 (rc $rc after $accepted puts)"
say "ring full after $accepted more writes: $(cat "$tmp/err")"

# A snapshot cannot free the space now: the worker refuses it at once
# while its journal writes fail (and the file would need space itself).
rc=0; timeout 10 "$ng" snapshot "$g" >"$tmp/out" 2>&1 || rc=$?
say "snapshot on the full disk: exit $rc: $(cat "$tmp/out")"
((rc == 10)) || fail "a snapshot on the full disk exited $rc, want 10 (I/O error, at once)"

# The fix: free space; the worker resumes by itself within its backoff.
rm -f "$jdir/filler"
wait_for 10 worker_running "$g" || fail "journaling did not resume"
drained() { [[ "$("$ng" status "$g" --json | json_field pending_changes)" == 0 ]]; }
wait_for 10 drained || fail "pending changes not journaled"
put_sync "$g" after-fix yes
"$ng" status "$g"
# Two snapshots: the older kept one covers the journal, which is deleted
# (the newest segment always stays).
segments() { ls "$jdir"/journal-0-*.log | wc -l; }
before=$(segments)
"$ng" snapshot "$g"
put_sync "$g" between-snapshots yes
"$ng" snapshot "$g"
after=$(segments)
say "journal segments: $before before the snapshots, $after after"
((before > 1 && after < before)) || fail "the journal was not pruned"
expect_exit 0 "$ng" check "$g" --journal

# Nothing acknowledged was lost: rebuild from the disk alone.
"$ng" stop "$g" --destroy --quiet
"$ng" recover "$g" --journal-dir "$jdir" --quiet
verify_acked "$g"
for i in $(seq 1 20); do
  [[ "$("$ng" get "$g" "async$i")" == "$big" ]] || fail "async$i lost"
done
n=$("$ng" scan "$g" --prefix fill | wc -l)
((n == accepted)) || fail "$n of the $accepted accepted fill writes are back"
expect_exit 0 "$ng" check "$g" --journal
say "passed"
