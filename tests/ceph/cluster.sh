#!/usr/bin/env bash
# cluster.sh - a throw-away Ceph cluster on 127.0.0.1 (or --ip) for msgr2-rs interop tests.
#
# One ceph-mon (mon.a), optionally one memstore ceph-osd (osd.0); no mgr, no systemd, nothing
# outside DIR: conf, keyring, mon store, OSD dir, logs, admin sockets and pid files all live
# under DIR. Daemons are stopped by the pids they recorded, never by name. See README.md.
set -Eeuo pipefail

readonly MARKER=.msgr2-ceph-cluster
readonly LOCK=${MSGR2_CEPH_LOCK:-/tmp/msgr2-ceph-cluster.lock}
readonly PORT_SPAN=100           # mon v2 = base, v1 = base+1, OSD binds within base+2..base+99
readonly AUTO_BASE_MIN=10000     # auto-picked bases stay below the kernel's ephemeral range
readonly AUTO_BASE_MAX=32000

usage() {
  cat >&2 <<'USAGE'
usage: cluster.sh start DIR [--auth cephx|none] [--mode crc|secure|crc,secure|secure,crc]
                            [--osd memstore|none] [--port-base N] [--ip IPV4]
                            [--conf KEY=VALUE]...
       cluster.sh env DIR     # prints `export` lines (CEPH_CONF, MSGR2_CEPH_*)
       cluster.sh stop DIR
Defaults: --auth cephx --mode crc --osd memstore, ports picked free (mon v2 = base,
v1 = base+1, OSD within base+2..base+99), --ip 127.0.0.1 (the address every daemon binds
to, e.g. a network namespace's veth address). --conf appends KEY = VALUE to [global].
Env: MSGR2_CEPH_TIMEOUT (s to wait for the mon / OSD, default 60),
     MSGR2_CEPH_MEMSTORE_BYTES (memstore_device_bytes, default 1073741824).
USAGE
  exit 2
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

cmd_stop() {
  local dir; dir=$(realpath -m "$1")
  if [[ -z $(our_pids "$dir") ]]; then
    rm -f "$dir"/run/*.pid
    log "nothing running in $dir"
    return 0
  fi
  # The OSD first: it tells the mon it is going down, then the mon.
  kill_wait $(our_pids "$dir" 'osd.*')
  kill_wait $(our_pids "$dir" 'mon.*')
  rm -f "$dir"/run/*.pid
  log "stopped $dir"
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
  local dir auth=cephx mode=crc osd=memstore base='' ip=127.0.0.1 extra=()
  local timeout=${MSGR2_CEPH_TIMEOUT:-60} mbytes=${MSGR2_CEPH_MEMSTORE_BYTES:-1073741824}
  dir=$(realpath -m "$1"); shift
  while (($#)); do
    case $1 in
      --auth) auth=${2:?--auth needs a value}; shift 2 ;;
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
  command -v ceph-mon >/dev/null || die "ceph-mon not found (run tests/ceph/install.sh)"
  [[ $osd == none ]] || command -v ceph-osd >/dev/null || die "ceph-osd not found (run tests/ceph/install.sh)"
  # unix sockets (admin sockets) are limited to 107 bytes
  ((${#dir} <= 80)) || die "DIR path too long for the admin sockets (${#dir} > 80 chars): $dir"

  # DIR must be empty, or one of ours with nothing running (it is wiped)
  if [[ -d $dir && -n $(ls -A "$dir") ]]; then
    [[ -f $dir/$MARKER ]] || die "$dir is not empty and was not made by cluster.sh; refusing to touch it"
    [[ -z $(our_pids "$dir") ]] || die "a cluster is still running in $dir; run: $0 stop $dir"
    find "$dir" -mindepth 1 -delete
  fi
  mkdir -p "$dir"/{run,log,crash,mon.a}
  touch "$dir/$MARKER"

  # Port choice. Concurrent auto-picking starts are serialised by a lock held until our
  # daemons have bound their ports (fd 9; every daemon is started with 9>&- so none keeps it).
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
CONF
  } >"$conf"

  # any failure from here on: stop what we started and point at the logs
  trap 'log "start failed; logs are in $dir/log"; cmd_stop "$dir"' ERR

  {
    ceph-authtool "$kr" --create-keyring --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool "$kr" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
      --cap mgr 'allow *' --cap mds 'allow *'
    ceph-authtool "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' \
      --cap mgr 'allow profile osd' --cap osd 'allow *'
  } >>"$dir/log/mkfs.log" 2>&1
  monmaptool --create --fsid "$fsid" --addv a "$monhost" "$dir/monmap" >>"$dir/log/mkfs.log" 2>&1
  ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$kr" >>"$dir/log/mkfs.log" 2>&1
  ceph-mon -c "$conf" -i a >>"$dir/log/daemon-stderr.log" 2>&1 9>&-

  cephq() { timeout 20 ceph -c "$conf" --connect-timeout 5 "$@" 9>&-; }
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
    ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" >>"$dir/log/mkfs.log" 2>&1 9>&-
    ceph-osd -c "$conf" -i 0 >>"$dir/log/daemon-stderr.log" 2>&1 9>&-
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
  trap - ERR
  exec 9>&-

  local key=''
  [[ $auth == cephx ]] && key=$(ceph-authtool "$kr" -n client.admin -p)
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
ENV
  [[ -z $osd_env ]] || echo "$osd_env" >>"$dir/cluster.env"
  log "cluster ready in $(elapsed_ms)ms: mon $monhost fsid $fsid auth=$auth mode=$mode osd=$osd"
  log "use it with: eval \"\$($0 env $dir)\""
}

(($# >= 2)) || usage
cmd=$1; shift
case $cmd in
  start) cmd_start "$@" ;;
  stop) (($# == 1)) || usage; cmd_stop "$1" ;;
  env) (($# == 1)) || usage; cmd_env "$1" ;;
  *) usage ;;
esac
