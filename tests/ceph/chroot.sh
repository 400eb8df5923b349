#!/usr/bin/env bash
# chroot.sh - newer Ceph releases for the interop tests, each in a Debian chroot on the host:
# Ceph 18 (Reef) from Debian trixie, Ceph 20 (Tentacle) from Debian sid (plus ceph-test and
# libqatzip3).
#
# The chroots live in $MSGR2_CEPH_CHROOTS (default /var/lib/msgr2-rs) as ceph-trixie and
# ceph-sid. A finished chroot holds the marker `.ceph-chroot` (its suite name); `create` then
# only checks its packages and mounts. A half-made one (no marker, or a `.ceph-chroot-partial`
# marker beside or inside it) is removed and rebuilt. cluster.sh sources this file for
# chroot_root / chroot_mounts / chroot_exec. See README.md.
set -Eeuo pipefail

readonly CHROOT_PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly CHROOT_BASE=${MSGR2_CEPH_CHROOTS:-/var/lib/msgr2-rs}

chroot_die() { echo "chroot.sh: error: $*" >&2; exit 1; }
chroot_log() { echo "chroot.sh: $*" >&2; }

# The Debian suite holding Ceph release $1 (18 or 20).
chroot_suite() {
  case $1 in
    18) echo trixie ;;
    20) echo sid ;;
    *) chroot_die "no chroot for Ceph '$1' (18 or 20; 16 is the host's own)" ;;
  esac
}

# The chroot directory of Ceph release $1.
chroot_root() { echo "$CHROOT_BASE/ceph-$(chroot_suite "$1")"; }

# True if the chroot of release $1 is finished (its marker names its suite).
chroot_ready() {
  local root; root=$(chroot_root "$1")
  [[ -f $root/.ceph-chroot && $(<"$root/.ceph-chroot") == "$(chroot_suite "$1")" ]]
}

# The packages a chroot of suite $1 holds.
chroot_packages() {
  local p=(ceph-mon ceph-osd ceph-mgr ceph-common python3-rados procps iproute2)
  # libqatzip3: Ceph 20's zlib/lz4 compressor plugins link it, but Debian's ceph packages do
  # not depend on it; without it a compressed frame crashes the OSD.
  [[ $1 == sid ]] && p+=(ceph-test libqatzip3)
  echo "${p[@]}"
}

# /proc, /sys (read-only) and a private non-recursive bind of /dev inside chroot $1.
chroot_mounts() {
  local root=$1
  mkdir -p "$root"/{proc,sys,dev}
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/sys" || mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
  if ! mountpoint -q "$root/dev"; then
    mount --bind /dev "$root/dev"
    mount --make-private "$root/dev"
  fi
}

# Runs CMD inside chroot $1 with a clean environment plus the NAME=VALUE words before `--`:
# chroot_exec ROOT [NAME=VALUE]... -- CMD [ARG]...   (replaces the current shell)
chroot_exec() {
  local root=$1 vars=(); shift
  while [[ $1 != -- ]]; do vars+=("$1"); shift; done
  shift
  exec chroot "$root" /usr/bin/env -i PATH="$CHROOT_PATH_ENV" HOME=/root LANG=C.UTF-8 TMPDIR=/tmp \
    "${vars[@]}" "$@"
}

# The same without exec: chroot_in ROOT CMD [ARG]...
chroot_in() {
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH="$CHROOT_PATH_ENV" HOME=/root LANG=C.UTF-8 TMPDIR=/tmp "$@"
}

# Pids (not ours, not our ancestors) building chroot $1 right now: an mmdebstrap or a
# `... create` whose arguments name exactly $1 (e.g. another copy of a chroot script).
chroot_builders() {
  local root=$1 p pid arg hit build
  local self=" $$ $BASHPID " a=$$
  while [[ $a -gt 1 ]]; do a=$(awk '{print $4}' "/proc/$a/stat" 2>/dev/null || echo 1); self+="$a "; done
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $self == *" $pid "* ]] && continue
    hit=0 build=0
    while IFS= read -r -d '' arg; do
      [[ $arg == "$root" ]] && hit=1
      [[ $arg == create || $arg == */mmdebstrap || $arg == mmdebstrap ]] && build=1
    done <"$p/cmdline" 2>/dev/null || continue
    ((hit && build)) && echo "$pid"
  done
  return 0
}

# Unmounts everything below chroot $1 (deepest first); refuses while a process runs in it.
chroot_umount_all() {
  local root=$1 p m
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && chroot_die "pid ${p#/proc/} runs inside $root; not touching it"
  done
  while read -r m; do
    [[ $m == "$root"/* ]] && { umount "$m" 2>/dev/null || umount -l "$m"; }
  done < <(findmnt -rn -o TARGET | sort -r)
  return 0
}

# Makes sure the chroot of release $1 exists, is complete and mounted; builds it otherwise.
chroot_create() {
  local ver=$1 suite root t0=$SECONDS
  suite=$(chroot_suite "$ver")
  root=$(chroot_root "$ver")
  ((EUID == 0)) || chroot_die "building a chroot needs root (mmdebstrap, mount)"
  mkdir -p "$CHROOT_BASE"
  # one create per chroot at a time (fd 8); a build by someone else's script is waited for
  exec 8>"$CHROOT_BASE/.ceph-$suite.lock"
  flock -w 3600 8 || chroot_die "could not lock $CHROOT_BASE/.ceph-$suite.lock"
  local waited=0 builders
  while builders=$(chroot_builders "$root") && [[ -n $builders ]]; do
    ((waited % 60 == 0)) && chroot_log "waiting for the build of $root already running (pids: $(echo $builders))"
    ((waited < 3600)) || chroot_die "the build of $root by pids $(echo $builders) takes over an hour"
    sleep 5
    waited=$((waited + 5))
  done

  if chroot_ready "$ver"; then
    chroot_mounts "$root"
    local missing=() p
    for p in $(chroot_packages "$suite"); do
      [[ $(chroot_in "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] || missing+=("$p")
    done
    if ((${#missing[@]})); then
      chroot_log "$root lacks ${missing[*]}; installing"
      cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
      chroot_in "$root" apt-get -o Acquire::Check-Valid-Until=false update -q >&2
      chroot_in "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
  else
    if [[ -e $root || -e $root.ceph-chroot-partial ]]; then
      if [[ -f $root.ceph-chroot-partial || -f $root/.ceph-chroot-partial || -d $root/var/lib/dpkg || -z $(ls -A "$root" 2>/dev/null) ]]; then
        chroot_log "removing the half-made chroot $root"
        if [[ -d $root ]]; then
          chroot_umount_all "$root"
          rm -rf --one-file-system "$root"
        fi
        rm -f "$root.ceph-chroot-partial"
      else
        chroot_die "$root exists, is not empty and does not look like a Debian chroot; refusing to touch it"
      fi
    fi
    if ! command -v mmdebstrap >/dev/null; then
      chroot_log "installing mmdebstrap on the host"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >&2 || {
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >&2
      } || chroot_die "could not install mmdebstrap"
    fi
    local mirror
    mirror=${MSGR2_CEPH_CHROOT_MIRROR:-$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)}
    mirror=${mirror:-http://deb.debian.org/debian}
    local pkgs; pkgs=$(chroot_packages "$suite")
    chroot_log "building Ceph $ver (Debian $suite) in $root from $mirror: $pkgs"
    # mmdebstrap wants the directory absent or empty: the partial marker sits beside it
    touch "$root.ceph-chroot-partial"
    # Check-Valid-Until off: a clock ahead of the archive would make apt call sid "expired"
    mmdebstrap --variant=apt --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
      --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Retries "3"' \
      --aptopt='Acquire::Check-Valid-Until "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --include="${pkgs// /,}" --skip=cleanup/apt/lists \
      "$suite" "$root" "deb $mirror $suite main" >&2 ||
      chroot_die "mmdebstrap of $suite into $root failed (the half-made chroot is rebuilt next time)"
    echo "$suite" >"$root/.ceph-chroot"
    rm -f "$root.ceph-chroot-partial"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    chroot_mounts "$root"
  fi
  exec 8>&-
  chroot_log "Ceph $ver ready in $((SECONDS - t0))s: $root, $(chroot_in "$root" ceph --version)"
}

chroot_usage() {
  cat >&2 <<'USAGE'
usage: chroot.sh create [18|20]...    # build the missing ones (default: 18 20), idempotent
       chroot.sh check 18|20          # exit 0 if that chroot is finished
       chroot.sh path 18|20           # its directory
       chroot.sh run 18|20 CMD [ARG]...   # CMD inside it, clean environment
Chroots in $MSGR2_CEPH_CHROOTS (default /var/lib/msgr2-rs): ceph-trixie (Ceph 18.2),
ceph-sid (Ceph 20.2, with ceph-test). Mirror: $MSGR2_CEPH_CHROOT_MIRROR (default: the
host's apt mirror). Needs root; installs mmdebstrap on the host when missing.
USAGE
  exit 2
}

chroot_main() {
  (($#)) || chroot_usage
  local cmd=$1; shift
  case $cmd in
    create)
      (($# == 0)) && set -- 18 20
      local v; for v in "$@"; do chroot_create "$v"; done ;;
    check) (($# == 1)) || chroot_usage; chroot_ready "$1" ;;
    path) (($# == 1)) || chroot_usage; chroot_root "$1" ;;
    run)
      (($# >= 2)) || chroot_usage
      chroot_ready "$1" || chroot_die "the Ceph $1 chroot is not built (run: $0 create $1)"
      ((EUID == 0)) || chroot_die "running in a chroot needs root"
      local root; root=$(chroot_root "$1"); shift
      chroot_mounts "$root"
      chroot_exec "$root" -- "$@" ;;
    *) chroot_usage ;;
  esac
}

# run as a command; when sourced (by cluster.sh) only the functions are defined
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then chroot_main "$@"; fi
