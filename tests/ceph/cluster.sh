#!/usr/bin/env bash
# cluster.sh - a throw-away Ceph cluster on 127.0.0.1 (or --ip) for msgr2-rs interop tests.
#
# One ceph-mon (mon.a), optionally one memstore ceph-osd (osd.0) and one ceph-mgr (mgr.x); no
# systemd, nothing outside DIR: conf, keyring, mon store, OSD dir, logs, admin sockets and pid
# files all live under DIR. Daemons are stopped by the pids they recorded, never by name.
# --ceph 16 runs the host's Ceph; --ceph 18 / 20 run the daemons and tools from the chroots of
# chroot.sh, in the host's network namespace, with DIR bind-mounted into the chroot at the same
# path. See README.md.
set -Eeuo pipefail

# chroot_root, chroot_ready, chroot_mounts, chroot_in, chroot_exec
# shellcheck source=chroot.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/chroot.sh"

readonly MARKER=.msgr2-ceph-cluster
readonly LOCK=${MSGR2_CEPH_LOCK:-/tmp/msgr2-ceph-cluster.lock}
readonly PORT_SPAN=100           # mon v2 = base, v1 = base+1, OSD binds within base+2..base+99
readonly AUTO_BASE_MIN=10000     # auto-picked bases stay below the kernel's ephemeral range
readonly AUTO_BASE_MAX=32000

usage() {
  cat >&2 <<'USAGE'
usage: cluster.sh start DIR [--ceph 16|18|20] [--auth cephx|none]
                            [--mode crc|secure|crc,secure|secure,crc] [--osd memstore|none]
                            [--mgr] [--key-type aes|aes256k] [--ciphers C1[,C2]]
                            [--port-base N] [--ip IPV4] [--conf KEY=VALUE]...
       cluster.sh env DIR     # prints `export` lines (CEPH_CONF, MSGR2_CEPH_*)
       cluster.sh run DIR CMD [ARG]...   # CMD with DIR's Ceph (host or chroot), CEPH_CONF set
       cluster.sh stop DIR
--ceph: 16 = the host's packages (default); 18 / 20 = the chroots of tests/ceph/chroot.sh.
--key-type, --ciphers (Ceph 20 only): the cephx key type of every generated key (20 defaults
to aes256k) and the monmap's auth_allowed_ciphers (first = preferred and service cipher);
--key-type aes alone implies --ciphers aes.
Defaults: --auth cephx --mode crc --osd memstore, ports picked free (mon v2 = base,
v1 = base+1, OSD within base+2..base+99), --ip 127.0.0.1 (the address every daemon binds
to, e.g. a network namespace's veth address). --conf appends KEY = VALUE to [global].
Env: MSGR2_CEPH_TIMEOUT (s to wait for the mon / OSD, default 60),
     MSGR2_CEPH_MEMSTORE_BYTES (memstore_device_bytes, default 1073741824).
USAGE
  exit 2
}
# start_failed DIR: say where the logs are, show their last errors, stop what started
start_failed() {
  local dir=$1
  log "start failed; logs are in $dir/log"
  grep -h -i -E 'error|fail|abort' "$dir"/log/*.log 2>/dev/null | tail -n 15 >&2 || true
  cmd_stop "$dir" >/dev/null 2>&1 || true
}
die() { echo "cluster.sh: error: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

# --- pids -----------------------------------------------------------------------------------

# True if pid $1 is a ceph daemon whose argv holds "-c" followed by exactly $2 (our conf).
owns() {
  local pid=$1 conf=$2 prev='' arg
  [[ -r /proc/$pid/cmdline ]] || return 1
  while IFS= read -r -d '' arg; do
    if [[ $prev == -c && $arg == "$conf" ]]; then return 0; fi
    prev=$arg
  done <"/proc/$pid/cmdline"
  return 1
}

# Pids from DIR/run/NAME.pid (NAME glob $2) that still belong to DIR's cluster.
our_pids() {
  local dir=$1 f pid
  for f in "$dir"/run/${2:-*}.pid; do
    [[ -e $f ]] || continue
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] && owns "$pid" "$dir/ceph.conf" && echo "$pid"
  done
  return 0
}

# A zombie (exited, not yet reaped by PID 1) counts as gone: its ports are already closed.
alive() { [[ -r /proc/$1/stat ]] && awk '$3 == "Z" {exit 1}' "/proc/$1/stat" 2>/dev/null; }

# SIGTERM the pids, wait up to 10 s, SIGKILL leftovers, wait until they are gone.
kill_wait() {
  local pid i pids=$*
  [[ -n $pids ]] || return 0
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 100); do
    pids=$(for pid in $pids; do if alive "$pid"; then echo "$pid"; fi; done)
    [[ -z $pids ]] && return 0
    sleep 0.1
  done
  for pid in $pids; do log "pid $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; done
  for i in $(seq 50); do
    pids=$(for pid in $pids; do if alive "$pid"; then echo "$pid"; fi; done)
    [[ -z $pids ]] && return 0
    sleep 0.1
  done
  die "pids still alive after SIGKILL: $pids"
}

# The chroot DIR's cluster runs in (from its marker), empty for the host's Ceph.
cluster_root() { sed -n 's/^root=//p' "$1/$MARKER" 2>/dev/null || true; }

# DIR visible inside chroot ROOT at the same path.
bind_dir() {
  local root=$1 dir=$2
  {
    # parallel starts: one mounts /proc, /sys, /dev at a time (fd 7, never inherited)
    flock -w 60 7 || die "could not lock ${MSGR2_CEPH_LOCK:-/tmp/msgr2-ceph-cluster.lock}.mount"
    chroot_mounts "$root"
    mkdir -p "$root$dir"
    mountpoint -q "$root$dir" || mount --bind "$dir" "$root$dir"
  } 7>"${MSGR2_CEPH_LOCK:-/tmp/msgr2-ceph-cluster.lock}.mount"
}

# Undoes bind_dir once nothing uses the mount (lazily after 5 s of EBUSY).
unbind_dir() {
  local root=$1 dir=$2 i
  [[ -n $root ]] && mountpoint -q "$root$dir" || return 0
  for i in $(seq 25); do
    umount "$root$dir" 2>/dev/null && { rmdir "$root$dir" 2>/dev/null || true; return 0; }
    sleep 0.2
  done
  umount -l "$root$dir" && rmdir "$root$dir" 2>/dev/null || true
}

# Binds left in chroot ROOT by clusters whose DIR is gone (a test killed before its stop).
sweep_binds() {
  local root=$1 m
  while read -r m; do
    [[ $m == "$root"/* && ! -e ${m#"$root"} ]] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
  done < <(findmnt -rn -o TARGET | sort -r)
  return 0
}

cmd_stop() {
  local dir root; dir=$(realpath -m "$1")
  root=$(cluster_root "$dir")
  if [[ -z $(our_pids "$dir") ]]; then
    rm -f "$dir"/run/*.pid
    unbind_dir "$root" "$dir"
    log "nothing running in $dir"
    return 0
  fi
  # The OSD and mgr first (an OSD tells the mon it is going down), then the mon.
  kill_wait $(our_pids "$dir" 'osd.*') $(our_pids "$dir" 'mgr.*')
  kill_wait $(our_pids "$dir" 'mon.*')
  rm -f "$dir"/run/*.pid
  unbind_dir "$root" "$dir"
  log "stopped $dir"
}

# Runs CMD with DIR's Ceph: in its chroot (clean environment plus CEPH_CONF) or on the host
# (the caller's environment plus CEPH_CONF). Replaces this shell, so CMD keeps our pid.
cmd_run() {
  local dir root; dir=$(realpath -m "$1"); shift
  [[ -f $dir/$MARKER ]] || die "$dir is not a cluster of cluster.sh"
  root=$(cluster_root "$dir")
  if [[ -z $root ]]; then
    # python3-rados belongs to the system python3, which a pyenv/venv on PATH may shadow
    [[ $1 == python3 && -x /usr/bin/python3 ]] && set -- /usr/bin/python3 "${@:2}"
    CEPH_CONF=$dir/ceph.conf exec "$@"
  fi
  bind_dir "$root" "$dir"
  chroot_exec "$root" CEPH_CONF="$dir/ceph.conf" -- "$@"
}

cmd_env() {
  local dir; dir=$(realpath -m "$1")
  [[ -f $dir/cluster.env ]] || die "$dir/cluster.env not found (was the cluster started with cluster.sh?)"
  cat "$dir/cluster.env"
}

# --- ports ----------------------------------------------------------------------------------

# Every local TCP port in use (any state, so TIME_WAIT ports are avoided too), one per line.
used_ports() { ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -un; }

# First base B (a multiple of 100, from a random start) with B..B+99 all unused.
pick_base() {
  local used b i n=$(((AUTO_BASE_MAX - AUTO_BASE_MIN) / PORT_SPAN))
  used=$(used_ports)
  local start=$((RANDOM % n))
  for ((i = 0; i < n; i++)); do
    b=$((AUTO_BASE_MIN + ((start + i) % n) * PORT_SPAN))
    if ! awk -v lo="$b" -v hi="$((b + PORT_SPAN - 1))" '$1 >= lo && $1 <= hi {found = 1} END {exit !found}' <<<"$used"; then
      echo "$b"
      return 0
    fi
  done
  die "no free block of $PORT_SPAN ports in $AUTO_BASE_MIN..$AUTO_BASE_MAX"
}

# Whole seconds / milliseconds since t0 (an $EPOCHREALTIME value).
elapsed() { echo $(((${EPOCHREALTIME/./} - ${t0/./}) / 1000000)); }
elapsed_ms() { echo $(((${EPOCHREALTIME/./} - ${t0/./}) / 1000)); }

# --- start ----------------------------------------------------------------------------------

cmd_start() {
  local dir auth=cephx mode=crc osd=memstore base='' ip=127.0.0.1 extra=() ceph=16 mgr=0
  local ktype='' ciphers=''
  local timeout=${MSGR2_CEPH_TIMEOUT:-60} mbytes=${MSGR2_CEPH_MEMSTORE_BYTES:-1073741824}
  dir=$(realpath -m "$1"); shift
  while (($#)); do
    case $1 in
      --ceph) ceph=${2:?--ceph needs 16, 18 or 20}; shift 2 ;;
      --auth) auth=${2:?--auth needs a value}; shift 2 ;;
      --mgr) mgr=1; shift ;;
      --key-type) ktype=${2:?--key-type needs aes or aes256k}; shift 2 ;;
      --ciphers) ciphers=${2:?--ciphers needs C1[,C2]}; shift 2 ;;
      --mode) mode=${2:?--mode needs a value}; shift 2 ;;
      --osd) osd=${2:?--osd needs a value}; shift 2 ;;
      --port-base) base=${2:?--port-base needs a value}; shift 2 ;;
      --ip) ip=${2:?--ip needs an IPv4 address}; shift 2 ;;
      --conf) extra+=("${2:?--conf needs KEY=VALUE}"); shift 2 ;;
      *) usage ;;
    esac
  done
  [[ $auth == cephx || $auth == none ]] || die "--auth must be cephx or none"
  [[ $mode =~ ^(crc|secure|crc,secure|secure,crc)$ ]] || die "--mode must be crc, secure, crc,secure or secure,crc"
  [[ $osd == memstore || $osd == none ]] || die "--osd must be memstore or none"
  [[ $ip =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "--ip must be an IPv4 address, got '$ip'"
  [[ $auth == none && $mode == secure ]] &&
    die "--mode secure needs --auth cephx (auth none has no session key; Ceph clients fail with EACCES)"
  local kv
  for kv in "${extra[@]}"; do
    [[ $kv == *=* && $kv != *$'\n'* && ${kv%%=*} =~ ^[A-Za-z][A-Za-z0-9_\ ]*$ ]] ||
      die "bad --conf '$kv' (want KEY=VALUE on one line)"
  done
  [[ $ceph =~ ^(16|18|20)$ ]] || die "--ceph must be 16, 18 or 20"
  [[ -z $ktype || $ktype =~ ^(aes|aes256k)$ ]] || die "--key-type must be aes or aes256k"
  [[ -z $ciphers || $ciphers =~ ^(aes|aes256k)(,(aes|aes256k))?$ ]] || die "--ciphers takes aes, aes256k or both (comma separated)"
  [[ -z $ktype$ciphers || $ceph == 20 ]] || die "--key-type and --ciphers need --ceph 20 (older Ceph only knows aes)"
  [[ $ktype == aes && -z $ciphers ]] && ciphers=aes
  # every Ceph tool and daemon runs through `cx` (on the host, or in the chroot)
  local root=''
  if [[ $ceph == 16 ]]; then
    command -v ceph-mon >/dev/null || die "ceph-mon not found (run tests/ceph/install.sh)"
    [[ $osd == none ]] || command -v ceph-osd >/dev/null || die "ceph-osd not found (run tests/ceph/install.sh)"
    ((!mgr)) || command -v ceph-mgr >/dev/null || die "ceph-mgr not found (apt-get install ceph-mgr)"
    cx() { "$@"; }
  else
    root=$(chroot_root "$ceph")
    ((EUID == 0)) || die "--ceph $ceph needs root (chroot, bind mounts)"
    chroot_ready "$ceph" || die "the Ceph $ceph chroot $root is not built (run: tests/ceph/chroot.sh create $ceph)"
    cx() { chroot_in "$root" "$@"; }
  fi
  [[ $dir == "$root" || $dir == "$root"/* ]] && [[ -n $root ]] && die "DIR must be outside the chroot $root"
  # unix sockets (admin sockets) are limited to 107 bytes
  ((${#dir} <= 80)) || die "DIR path too long for the admin sockets (${#dir} > 80 chars): $dir"

  # DIR must be empty, or one of ours with nothing running (it is wiped)
  if [[ -d $dir && -n $(ls -A "$dir") ]]; then
    [[ -f $dir/$MARKER ]] || die "$dir is not empty and was not made by cluster.sh; refusing to touch it"
    [[ -z $(our_pids "$dir") ]] || die "a cluster is still running in $dir; run: $0 stop $dir"
    unbind_dir "$(cluster_root "$dir")" "$dir"
    find "$dir" -mindepth 1 -delete
  fi
  mkdir -p "$dir"/{run,log,crash,mon.a}
  printf 'ceph=%s\nroot=%s\n' "$ceph" "$root" >"$dir/$MARKER"
  local release
  release=$(cx ceph-mon --version | awk '{print $3}')
  [[ ${release%%.*} == "$ceph" ]] || die "--ceph $ceph, but ceph-mon is $release"
  if [[ -n $root ]]; then
    sweep_binds "$root"
    bind_dir "$root" "$dir"
  fi

  # Port choice. Concurrent auto-picking starts are serialised by a lock held until our
  # daemons have bound their ports (fd 9; every daemon is started with 8>&- 9>&- so none keeps it).
  local t0=$EPOCHREALTIME
  if [[ -z $base ]]; then
    exec 9>"$LOCK"
    flock -w 300 9 || die "could not take $LOCK"
    base=$(pick_base)
  fi
  [[ $base =~ ^[0-9]+$ ]] && ((base > 1023 && base + PORT_SPAN <= 65536)) || die "bad --port-base '$base'"
  local v2=$base v1=$((base + 1)) pmin=$((base + 2)) pmax=$((base + PORT_SPAN - 1)) p
  for p in $v2 $v1; do
    [[ -z $(ss -Htln "sport = :$p") ]] || die "port $p already in use (pick another --port-base)"
  done

  local conf=$dir/ceph.conf kr=$dir/keyring fsid monhost cmode
  fsid=$(</proc/sys/kernel/random/uuid)
  monhost="[v2:$ip:$v2,v1:$ip:$v1]"
  cmode=${mode//,/ }
  paths() { printf 'log_file = %s/log/$name.log\nadmin_socket = %s/run/$name.asok\npid_file = %s/run/$name.pid\n' "$dir" "$dir" "$dir"; }
  {
    cat <<CONF
[global]
fsid = $fsid
mon_host = $monhost
keyring = $kr
run_dir = $dir/run
crash_dir = $dir/crash
auth_cluster_required = $auth
auth_service_required = $auth
auth_client_required = $auth
auth_allow_insecure_global_id_reclaim = false
ms_cluster_mode = $cmode
ms_service_mode = $cmode
ms_client_mode = $cmode
ms_mon_cluster_mode = $cmode
ms_mon_service_mode = $cmode
ms_mon_client_mode = $cmode
ms_bind_ipv4 = true
ms_bind_ipv6 = false
ms_bind_port_min = $pmin
ms_bind_port_max = $pmax
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
# a test cluster must start on a nearly full disk too (the default 5% makes ceph-mon exit 28)
mon_data_avail_crit = 1
CONF
    for kv in "${extra[@]}"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
    cat <<CONF

[mon]
mon_data = $dir/mon.\$id
mon_cluster_log_file = $dir/log/cluster.log
$(paths)

[osd]
osd_data = $dir/osd.\$id
osd_objectstore = memstore
memstore_device_bytes = $mbytes
public_addr = $ip
cluster_addr = $ip
$(paths)

[mgr]
mgr_data = $dir/mgr.\$id
public_addr = $ip
$(paths)
CONF
  } >"$conf"

  # any failure from here on: stop what we started and point at the logs
  # (fd 8 keeps our stderr: the trap may fire inside a command whose output goes to a log)
  exec 8>&2
  trap 'start_failed "$dir" >&8 2>&8' ERR

  local kt=() mm=()
  [[ -n $ktype ]] && kt=(--key-type "$ktype")
  [[ -n $ciphers ]] && mm=(--auth-allowed-ciphers "$ciphers" --auth-preferred-cipher "${ciphers%%,*}"
    --auth-service-cipher "${ciphers%%,*}")
  {
    cx ceph-authtool "$kr" --create-keyring "${kt[@]}" --gen-key -n mon. --cap mon 'allow *'
    cx ceph-authtool "$kr" "${kt[@]}" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
      --cap mgr 'allow *' --cap mds 'allow *'
    cx ceph-authtool "$kr" "${kt[@]}" --gen-key -n osd.0 --cap mon 'allow profile osd' \
      --cap mgr 'allow profile osd' --cap osd 'allow *'
    cx ceph-authtool "$kr" "${kt[@]}" --gen-key -n mgr.x --cap mon 'allow profile mgr' \
      --cap osd 'allow *' --cap mds 'allow *'
  } >>"$dir/log/mkfs.log" 2>&1
  cx monmaptool --create --fsid "$fsid" "${mm[@]}" --addv a "$monhost" "$dir/monmap" >>"$dir/log/mkfs.log" 2>&1
  cx ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$kr" >>"$dir/log/mkfs.log" 2>&1
  cx ceph-mon -c "$conf" -i a >>"$dir/log/daemon-stderr.log" 2>&1 8>&- 9>&-

  cephq() { cx timeout 20 ceph -c "$conf" --connect-timeout 5 "$@" 8>&- 9>&-; }
  wait_for() {  # wait_for WHAT CMD...: retry CMD until it succeeds or the timeout expires
    local what=$1; shift
    until "$@" >/dev/null 2>&1; do
      if (($(elapsed) > timeout)); then
        log "timed out after ${timeout}s waiting for $what; last log lines:"
        tail -n 5 "$dir"/log/*.log >&2 || true
        return 1
      fi
      sleep 0.2
    done
  }
  wait_for "mon.a to form a quorum on $monhost" cephq mon stat

  local osd_env=''
  if [[ $osd == memstore ]]; then
    local uuid; uuid=$(</proc/sys/kernel/random/uuid)
    cephq osd new "$uuid" 0 >/dev/null
    mkdir -p "$dir/osd.0"
    cx ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" >>"$dir/log/mkfs.log" 2>&1 8>&- 9>&-
    cx ceph-osd -c "$conf" -i 0 >>"$dir/log/daemon-stderr.log" 2>&1 8>&- 9>&-
    osd_up() {
      cephq osd dump -f json | python3 -c '
import json, sys
o = [o for o in json.load(sys.stdin)["osds"] if o["osd"] == 0]
sys.exit(not (o and o[0]["up"] == 1 and o[0]["in"] == 1))'
    }
    wait_for "osd.0 to be up and in" osd_up
    # osd.0's v2 public address as `ceph osd dump` prints it: v2:IP:PORT/NONCE
    osd_env=$(cephq osd dump -f json | python3 -c '
import json, sys
o = [o for o in json.load(sys.stdin)["osds"] if o["osd"] == 0][0]
a = [a for a in o["public_addrs"]["addrvec"] if a["type"] == "v2"][0]
print("export MSGR2_CEPH_OSD_ADDR=v2:%s/%d" % (a["addr"], a["nonce"]))
print("export MSGR2_CEPH_OSD_V2=%s" % a["addr"])
print("export MSGR2_CEPH_OSD_NONCE=%d" % a["nonce"])')
  fi
  if ((mgr)); then
    mkdir -p "$dir/mgr.x"
    cx ceph-mgr -c "$conf" -i x >>"$dir/log/daemon-stderr.log" 2>&1 8>&- 9>&-
    mgr_up() { cephq mgr stat -f json | python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin)["available"])'; }
    wait_for "mgr.x to become active" mgr_up
  fi
  trap - ERR
  exec 8>&- 9>&-

  local key=''
  [[ $auth == cephx ]] && key=$(cx ceph-authtool "$kr" -n client.admin -p)
  # what the keys and the monmap really are (Ceph < 20: aes only; 20: aes256k by default)
  local ktype_env=${ktype:-aes} ciphers_env=${ciphers:-aes}
  if [[ $ceph == 20 ]]; then ktype_env=${ktype:-aes256k} ciphers_env=${ciphers:-aes256k}; fi
  cat >"$dir/cluster.env" <<ENV
export CEPH_CONF=$conf
export MSGR2_CEPH_DIR=$dir
export MSGR2_CEPH_KEYRING=$kr
export MSGR2_CEPH_ADMIN_KEY=$key
export MSGR2_CEPH_MON_HOST='$monhost'
export MSGR2_CEPH_MON_V2=$ip:$v2
export MSGR2_CEPH_MON_V1=$ip:$v1
export MSGR2_CEPH_FSID=$fsid
export MSGR2_CEPH_AUTH=$auth
export MSGR2_CEPH_MODE=$mode
export MSGR2_CEPH_VERSION=$ceph
export MSGR2_CEPH_RELEASE=$release
export MSGR2_CEPH_ROOT=$root
export MSGR2_CEPH_KEY_TYPE=$ktype_env
export MSGR2_CEPH_CIPHERS=$ciphers_env
ENV
  [[ -z $osd_env ]] || echo "$osd_env" >>"$dir/cluster.env"
  log "cluster ready in $(elapsed_ms)ms: ceph $release${root:+ (chroot $root)}, mon $monhost fsid $fsid auth=$auth mode=$mode osd=$osd mgr=$mgr key-type=$ktype_env ciphers=$ciphers_env"
  log "use it with: eval \"\$($0 env $dir)\""
}

(($# >= 2)) || usage
cmd=$1; shift
case $cmd in
  start) cmd_start "$@" ;;
  stop) (($# == 1)) || usage; cmd_stop "$1" ;;
  env) (($# == 1)) || usage; cmd_env "$1" ;;
  run) (($# >= 2)) || usage; cmd_run "$@" ;;
  *) usage ;;
esac
