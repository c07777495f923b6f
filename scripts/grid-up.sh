#!/usr/bin/env bash
# Brings a grid up: creates it if it has neither segments nor a journal
# (passing the create options given after the name), then starts its
# watchdog, which recovers the grid from its journal first when the
# segments are gone (after a reboot). Idempotent: a grid whose watchdog
# runs is left alone. Exit codes are numagrid's (docs/cli.md).
#   scripts/grid-up.sh NAME [create options, e.g. --memory 1GiB --journal-dir DIR]
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; [[ $# -ge 1 ]] && exit 0 || exit 2
fi
ng=${NUMAGRID:-numagrid}
command -v "$ng" >/dev/null || ng="$(dirname "$0")/../build/release/core/cli/numagrid"
name=$1; shift
jdir=/var/lib/numagrid/$name
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[i]}" == --journal-dir ]] && jdir=${args[i+1]}
  [[ "${args[i]}" == --journal-dir=* ]] && jdir=${args[i]#--journal-dir=}
done
if ! "$ng" info "$name" >/dev/null 2>&1 && [[ ! -e "$jdir/grid.conf" ]]; then
  "$ng" create "$name" "$@"
fi
rc=0
"$ng" start "$name" --journal-dir "$jdir" || rc=$?
# 4: a watchdog already runs it, which is what "up" means.
[[ $rc -eq 0 || $rc -eq 4 ]] || exit $rc
"$ng" status "$name"
