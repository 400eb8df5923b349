#!/usr/bin/env bash
# netns.sh - three network namespaces on this machine, a server and a client host joined by a
# router that can lose, delay and reorder packets; for the multi-host tests of msgr2-rs
# (bench/tests/netns.rs). See README.md beside this script.
#
#   PREFIX-a  198.18.1.1/24 on veth-r  (server side: bench server, ceph-mon)
#   PREFIX-r  198.18.1.254 on veth-a, 198.18.2.254 on veth-b, forwarding (the impairments)
#   PREFIX-b  198.18.2.1/24 on veth-r  (client side)
#
# 198.18.0.0/15 is the range set aside for network benchmarks (RFC 2544); it exists only
# inside these namespaces. Everything this script creates is named PREFIX-*; `down` deletes
# exactly PREFIX-a, PREFIX-r and PREFIX-b (their veths go with them) and nothing else.
set -Eeuo pipefail

readonly A_IP=198.18.1.1 B_IP=198.18.2.1 RA_IP=198.18.1.254 RB_IP=198.18.2.254
readonly PREFIX_RE='^msgr2nt-[a-z0-9]+-[0-9]+$'   # msgr2nt-TAG-PID

usage() {
  cat >&2 <<'USAGE'
usage: netns.sh install                 # iptables (Debian package) if missing
       netns.sh check                   # can this machine run the tests? (exit 1 + reason if not)
       netns.sh up PREFIX               # PREFIX = msgr2nt-TAG-PID
       netns.sh impair PREFIX [--loss P] [--queue N] [--gso-segs S]
                                        # router FORWARD: drop with probability P (0..1), then
                                        # hand every packet to NFQUEUE N (delay/reorder in
                                        # userspace; accepted as is while nobody listens);
                                        # hosts send packets of at most S segments (default
                                        # 65535: 64 KiB GSO packets; 1: one MTU per packet)
       netns.sh counters PREFIX         # "dropped PKTS queued PKTS accepted PKTS" (queued
                                        # packets leave by the listener's verdict, not ACCEPT)
       netns.sh down PREFIX
       netns.sh gc                      # down every msgr2nt-*-PID whose PID is gone
USAGE
  exit 2
}
die() { echo "netns.sh: error: $*" >&2; exit 1; }
log() { echo "netns.sh: $*" >&2; }

check_prefix() { [[ $1 =~ $PREFIX_RE ]] || die "bad PREFIX '$1' (want msgr2nt-TAG-PID)"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cmd_install() {
  command -v iptables >/dev/null && return 0
  local sudo=''
  if ((EUID != 0)); then
    if sudo -n true 2>/dev/null; then sudo='sudo -n'; else
      [[ ${CI:-} ]] && die "iptables missing and not root"
      log "warning: iptables missing and not root; the loss/delay tests will fail"
      return 0
    fi
  fi
  log "installing iptables (Debian package)"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends iptables; } >/dev/null; then
    [[ ${CI:-} ]] && die "apt-get install iptables failed"
    log "warning: apt-get install iptables failed"
  fi
  command -v iptables >/dev/null || { [[ -z ${CI:-} ]] || die "iptables still missing"; }
}

cmd_check() {
  command -v ip >/dev/null || die "ip (iproute2) not found"
  command -v iptables >/dev/null || die "iptables not found (run: $0 install)"
  ((EUID == 0)) || die "network namespaces need root (euid $EUID)"
  local ns=msgr2nt-check-$$
  ip netns add "$ns" 2>/dev/null || die "'ip netns add' failed (no CAP_SYS_ADMIN or no netns support)"
  local ok=1 why=''
  if ! in_ns "$ns" ip link add veth-x type veth peer name veth-y 2>/dev/null; then
    ok=0 why="no veth support"
  elif ! in_ns "$ns" iptables -A FORWARD -m statistic --mode random --probability 0.5 -j DROP 2>/dev/null; then
    ok=0 why="iptables statistic match unavailable"
  elif ! in_ns "$ns" iptables -A FORWARD -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null; then
    ok=0 why="iptables NFQUEUE target unavailable"
  fi
  ip netns del "$ns"
  ((ok)) || die "$why"
  echo "netns.sh: ok (ip netns, veth, iptables statistic + NFQUEUE)"
}

cmd_down() {
  local p=$1 s
  check_prefix "$p"
  for s in a r b; do
    if ip netns list | awk '{print $1}' | grep -qxF "$p-$s"; then ip netns del "$p-$s"; fi
  done
}

cmd_up() {
  local p=$1 s
  check_prefix "$p"
  for s in a r b; do
    ! ip netns list | awk '{print $1}' | grep -qxF "$p-$s" || die "namespace $p-$s exists"
  done
  trap 'log "up failed, tearing down $p"; cmd_down "$p"' ERR
  for s in a r b; do ip netns add "$p-$s"; done
  # Each veth end is created directly in its namespace: no name ever lives in the host's.
  ip link add veth-r netns "$p-a" type veth peer name veth-a netns "$p-r"
  ip link add veth-r netns "$p-b" type veth peer name veth-b netns "$p-r"
  ip -n "$p-a" addr add "$A_IP/24" dev veth-r
  ip -n "$p-b" addr add "$B_IP/24" dev veth-r
  ip -n "$p-r" addr add "$RA_IP/24" dev veth-a
  ip -n "$p-r" addr add "$RB_IP/24" dev veth-b
  for s in a r b; do ip -n "$p-$s" link set lo up; done
  ip -n "$p-a" link set veth-r up
  ip -n "$p-b" link set veth-r up
  ip -n "$p-r" link set veth-a up
  ip -n "$p-r" link set veth-b up
  ip -n "$p-a" route add default via "$RA_IP"
  ip -n "$p-b" route add default via "$RB_IP"
  in_ns "$p-r" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
  trap - ERR
  log "up: $p-a $A_IP <-> $p-r <-> $p-b $B_IP"
}

cmd_impair() {
  local p=$1 loss='' queue='' segs=65535 s
  check_prefix "$p"; shift
  while (($#)); do
    case $1 in
      --loss) loss=${2:?--loss needs a probability}; shift 2 ;;
      --queue) queue=${2:?--queue needs a queue number}; shift 2 ;;
      --gso-segs) segs=${2:?--gso-segs needs a count}; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ $segs =~ ^[0-9]+$ ]] && ((segs >= 1 && segs <= 65535)) || die "--gso-segs wants 1..65535"
  # veth passes TCP's GSO packets (up to 64 KiB) through whole, and a rule sees one packet;
  # gso_max_segs 1 makes the senders emit one MTU-sized packet per skb, as on a real wire.
  for s in a b; do ip -n "$p-$s" link set veth-r gso_max_segs "$segs"; done
  in_ns "$p-r" iptables -F FORWARD
  in_ns "$p-r" iptables -Z FORWARD
  if [[ -n $loss ]]; then
    [[ $loss =~ ^0?\.[0-9]+$|^0$ ]] || die "--loss wants a probability like 0.02"
    in_ns "$p-r" iptables -A FORWARD -m statistic --mode random --probability "$loss" -j DROP
  fi
  if [[ -n $queue ]]; then
    [[ $queue =~ ^[0-9]+$ ]] || die "--queue wants a number"
    in_ns "$p-r" iptables -A FORWARD -j NFQUEUE --queue-num "$queue" --queue-bypass
  fi
  in_ns "$p-r" iptables -A FORWARD -j ACCEPT
}

# Packet counters of the router's FORWARD rules since the last `impair`.
cmd_counters() {
  local p=$1
  check_prefix "$p"
  in_ns "$p-r" iptables -L FORWARD -v -n -x | awk '
    $3 == "DROP" {d += $1} $3 == "NFQUEUE" {q += $1} $3 == "ACCEPT" {a += $1}
    END {printf "dropped %d queued %d accepted %d\n", d, q, a}'
}

cmd_gc() {
  local ns pid p
  for ns in $(ip netns list | awk '{print $1}'); do
    [[ $ns =~ ^(msgr2nt-[a-z0-9]+-([0-9]+))-[arb]$ ]] || continue
    p=${BASH_REMATCH[1]} pid=${BASH_REMATCH[2]}
    [[ -d /proc/$pid ]] && continue
    log "removing stale $ns (pid $pid is gone)"
    ip netns del "$ns" || true
  done
}

(($# >= 1)) || usage
cmd=$1; shift
case $cmd in
  install) cmd_install ;;
  check) cmd_check ;;
  up) (($# == 1)) || usage; cmd_up "$1" ;;
  down) (($# == 1)) || usage; cmd_down "$1" ;;
  impair) (($# >= 1)) || usage; cmd_impair "$@" ;;
  counters) (($# == 1)) || usage; cmd_counters "$1" ;;
  gc) cmd_gc ;;
  *) usage ;;
esac
