#!/usr/bin/env bash
# Takes a grid down gracefully: its watchdog asks every worker to drain its
# rings and flush, then exits. With --destroy the segments are removed
# afterwards (the journal stays, so scripts/grid-up.sh or `numagrid
# recover` brings the grid back); with --purge the journal goes too.
#   scripts/grid-down.sh NAME [--destroy | --purge]
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; [[ $# -ge 1 ]] && exit 0 || exit 2
fi
ng=${NUMAGRID:-numagrid}
command -v "$ng" >/dev/null || ng="$(dirname "$0")/../build/release/core/cli/numagrid"
name=$1
case "${2:-}" in
  "") "$ng" stop "$name" ;;
  --destroy) "$ng" stop "$name" --destroy ;;
  --purge) "$ng" stop "$name" && "$ng" destroy "$name" --purge ;;
  *) echo "grid-down.sh: unknown option '$2' (see --help)" >&2; exit 2 ;;
esac
