#!/usr/bin/env bash
# install.sh - makes sure the Ceph packages the interop tests need are installed.
#
# Idempotent: when everything is installed it only asks dpkg and exits (well under a second).
# Otherwise it runs `apt-get update` once and installs the missing packages without
# recommends (root, or sudo without a password). If that fails, it is an error under CI
# (CI=true, exit 1); elsewhere a warning (exit 0) and the interop tests skip themselves.
set -euo pipefail

readonly PACKAGES=(ceph-mon ceph-osd ceph-common python3-rados)

missing() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qx 'install ok installed' || echo "$p"
  done
}

fail() {
  if [[ ${CI:-} == true ]]; then
    echo "install.sh: error: $*" >&2
    exit 1
  fi
  echo "install.sh: warning: $* (the Ceph interop tests will be skipped)" >&2
  exit 0
}

todo=$(missing)
if [[ -z $todo ]]; then
  echo "install.sh: present: $(dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}" | paste -sd, - | sed 's/,/, /g')" >&2
  exit 0
fi
command -v apt-get >/dev/null || fail "missing: $(echo $todo); apt-get not available"

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null && sudo -n true 2>/dev/null || fail "missing: $(echo $todo); need root or passwordless sudo"
  sudo=(sudo -n)
fi

echo "install.sh: installing: $(echo $todo)" >&2
# Wait for another apt/dpkg run (e.g. a provisioning job) instead of failing on its lock.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
"${apt[@]}" update || fail "apt-get update failed"
# shellcheck disable=SC2086 # one word per package
"${apt[@]}" install -y --no-install-recommends $todo || fail "apt-get install $(echo $todo) failed"
todo=$(missing)
[[ -z $todo ]] || fail "still missing after apt-get install: $(echo $todo)"
echo "install.sh: done" >&2
