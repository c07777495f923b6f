#!/usr/bin/env bash
# Installs the Debian 12 packages that numagrid's build, tests and demo need.
# Idempotent: when everything is present it only checks, in well under a
# second. Usage: scripts/install-deps.sh [--help]
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,4p' "$0" | sed 's/^# //'; exit 0
fi
PKGS=(build-essential cmake ninja-build pkg-config git
      libboost-dev libtbb-dev libhwloc-dev hwloc-nox liburing-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      clang-format util-linux procps curl python3
      clang libclang-rt-dev)  # libclang-rt-dev: libFuzzer and the sanitizer runtimes for clang
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "install-deps: installing ${missing[*]}"
SUDO=; [[ "$(id -u)" == 0 ]] || SUDO=sudo
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 \
  install -y -qq --no-install-recommends "${missing[@]}"
