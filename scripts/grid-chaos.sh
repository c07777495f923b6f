#!/usr/bin/env bash
# Chaos run against a grid: while numagrid-bench writes to it (YCSB A from
# two processes), every INTERVAL kills something at random: a journal
# worker (SIGKILL, or SIGSTOP and SIGCONT after one interval or, half the
# time, after 3 s, past the 1 s heartbeat timeout, so that the watchdog
# fences and replaces it), the watchdog (SIGKILL, then a new `numagrid
# start`, which adopts the running workers) or one of the writers
# (SIGKILL). Then it lets the watchdog settle, runs `numagrid check NAME
# --journal`, and reports what it did, whether every kill has its event
# (`numagrid events NAME --log`), and what the check found. Exits 0 only if
# the check found the grid consistent and in agreement with its journal and
# every kill was accounted for. The grid must exist with a journal; its
# watchdog is started if it does not run, and left running.
# --start-args ARGS adds ARGS to every `numagrid start` (for example
# "--metrics-listen 127.0.0.1:9464", to watch /metrics through the chaos).
#   scripts/grid-chaos.sh NAME [--seconds S] [--interval SECONDS] [--seed N]
#                         [--start-args ARGS]
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; [[ $# -ge 1 ]] && exit 0 || exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
ng=${NUMAGRID:-numagrid}
command -v "$ng" >/dev/null || ng="$here/../build/release/core/cli/numagrid"
bench=${NUMAGRID_BENCH:-numagrid-bench}
command -v "$bench" >/dev/null ||
  bench="$here/../build/release/bench/numagrid_bench/numagrid-bench"
name=$1; shift
seconds=20 interval=0.5 seed=$RANDOM start_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --start-args) read -r -a start_args <<<"$2"; shift 2 ;;
    *) echo "grid-chaos.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
RANDOM=$seed
say() { echo "chaos: $*"; }
say "grid $name, ${seconds}s, an action every ${interval}s, seed $seed"

json_pids() {  # the worker pids from `status --json`
  "$ng" status "$name" --json | sed -n 's/.*"worker_pid": \([0-9]*\).*/\1/p'
}
watchdog_pid() {
  "$ng" status "$name" --json | sed -n 's/.*"watchdog_pid": \([1-9][0-9]*\).*/\1/p'
}

jdir=$("$ng" info "$name" --json | sed -n 's/.*"journal_dir": "\(.*\)".*/\1/p')
[[ -n "$jdir" ]] || { echo "grid-chaos.sh: grid '$name' has no journal" >&2; exit 2; }
"$ng" start "$name" --heartbeat-timeout 1s --quiet "${start_args[@]}" 2>/dev/null || true

# Small baselines: the load's latencies are not reported, and the default
# ones (a 256 MiB pointer chase, a disk test) would delay the writes.
start_load() {
  "$bench" --grid "$name" --target numagrid --workload A --procs 2 \
    --seconds "$1" --warmup 0 --records 20000 --chase-mib 8 \
    --no-disk-baseline >/dev/null 2>&1 &
  load=$!
}
start_load "$seconds"
# The chaos begins once the load writes (after its setup and baselines),
# so that every action meets writers; at most a minute later.
grid_puts() { "$ng" stats "$name" --json | sed -n 's/.*"puts": \([0-9]*\).*/\1/p' | head -n 1; }
puts0=$(grid_puts)
for _ in $(seq 1 600); do
  [[ "$(grid_puts)" != "$puts0" ]] && break
  kill -0 "$load" 2>/dev/null || break
  sleep 0.1
done
declare -A did=()
killed_workers=() killed_watchdogs=()
stopped=()
resume_at=0
end=$((SECONDS + seconds))
while ((SECONDS < end)); do
  sleep "$interval"
  # A killed writer ends its load run: start another for the time left.
  if ! kill -0 "$load" 2>/dev/null && ((end - SECONDS > 1)); then
    did[load_restart]=$((${did[load_restart]:-0} + 1))
    start_load $((end - SECONDS))
  fi
  if ((SECONDS >= resume_at)); then
    for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    stopped=()
  fi
  case $((RANDOM % 4)) in
    0) for p in $(json_pids); do
         # A stopped worker stays stopped until it is due to resume.
         [[ " ${stopped[*]} " == *" $p "* ]] && continue
         kill -KILL "$p" 2>/dev/null && { did[worker_kill]=$((${did[worker_kill]:-0} + 1)); killed_workers+=("$p"); say "SIGKILL worker $p"; }
       done ;;
    1) ((${#stopped[@]} == 0)) || continue
       for p in $(json_pids); do
         if kill -STOP "$p" 2>/dev/null; then
           stopped+=("$p"); did[worker_stop]=$((${did[worker_stop]:-0} + 1))
           if ((RANDOM % 2)); then
             resume_at=$((SECONDS + 3)); say "SIGSTOP worker $p for 3 s (past the heartbeat timeout)"
           else
             resume_at=0; say "SIGSTOP worker $p"
           fi
         fi
       done ;;
    2) w=$(watchdog_pid)
       if [[ -n "$w" ]] && kill -KILL "$w" 2>/dev/null; then
         did[watchdog_kill]=$((${did[watchdog_kill]:-0} + 1)); killed_watchdogs+=("$w"); say "SIGKILL watchdog $w, start a new one"
         sleep 0.1
         "$ng" start "$name" --heartbeat-timeout 1s --quiet "${start_args[@]}" || say "start failed: $?"
       fi ;;
    3) writers=$(pgrep -P "$load" || true)
       w=$(echo "$writers" | shuf -n 1 --random-source=<(yes "$seed") 2>/dev/null || true)
       if [[ -n "$w" ]] && kill -KILL "$w" 2>/dev/null; then
         did[writer_kill]=$((${did[writer_kill]:-0} + 1)); say "SIGKILL writer $w"
       fi ;;
  esac
done
for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
wait "$load" 2>/dev/null || true
# Let the watchdog replace what died and repair the dead writers' slots.
"$ng" start "$name" --heartbeat-timeout 1s --quiet "${start_args[@]}" 2>/dev/null || true
for _ in $(seq 1 100); do
  "$ng" status "$name" --json | grep -q '"worker_state": "running"' && break
  sleep 0.1
done
sleep 1
summary=""
for k in "${!did[@]}"; do summary+="$k=${did[$k]} "; done
say "did: ${summary:-nothing}"
say "watchdog events: $(grep -c '"event"' "$jdir/events.log" 2>/dev/null || echo 0)" \
    "(restarts $(grep -c worker_restarted "$jdir/events.log" || true)," \
    "adoptions $(grep -c worker_adopted "$jdir/events.log" || true)," \
    "repairs $(grep -c '"event":"repair"' "$jdir/events.log" || true))"
# Every kill must have its event: a killed worker its worker_exited (from
# the watchdog that saw it die, or the next one, which finds it dead), a
# killed watchdog the next one's watchdog_started naming it.
events=$("$ng" events "$name" --log --json)
missing=()
for p in "${killed_workers[@]}"; do
  grep -q "\"event\":\"worker_exited\".*\"pid\":$p," <<<"$events" || missing+=("worker $p")
done
for p in "${killed_watchdogs[@]}"; do
  grep -q "previous watchdog (pid $p)" <<<"$events" || missing+=("watchdog $p")
done
say "events: $(grep -c worker_fenced <<<"$events" || true) fenced," \
    "$(grep -c worker_killed <<<"$events" || true) killed by the watchdog;" \
    "kills without their event: ${#missing[@]}${missing:+ (${missing[*]})}"
rc=0
"$ng" check "$name" --journal || rc=$?
if ((rc == 0)); then say "found: consistent, and in agreement with the journal"; else say "found problems (exit $rc)"; fi
((rc != 0)) || ((${#missing[@]} == 0)) || rc=1
exit $rc
