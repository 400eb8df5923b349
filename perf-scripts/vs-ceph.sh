#!/usr/bin/env bash
# Ceph's own messenger benchmark against ours, in one run: the four pairs
#   ceph→ceph   ceph_perf_msgr_client → ceph_perf_msgr_server
#   ceph→ours   ceph_perf_msgr_client → msgr2 bench server --ceph-perf
#   ours→ceph   msgr2 bench client --ceph-perf → ceph_perf_msgr_server
#   ours→ours   msgr2 bench client --ceph-perf → msgr2 bench server --ceph-perf
# at each size (default 4K, 64K, 4M), 1 job, depth 16, server pinned to SERVER_CPU and client
# to CLIENT_CPU, with CPU seconds per GB of each process. Prints a markdown table (median of
# --runs by messages/s); --write also puts it into bench/RESULTS.md.
#
# Usage: perf-scripts/vs-ceph.sh [--runs N] [--sizes 4K,64K,4M] [--pairs LIST] [--write]
#                                [--slack NS|default] [--quick]
#
# Environment:
#   MSGR2          msgr2 binary (default: cargo build --release, target/release/msgr2)
#   CEPH_TOOL_RUN  command prefix that runs a Ceph tool (default, once the project's Ceph 20
#                  chroot exists: `tests/ceph/chroot.sh run 20`; `tests/ceph/chroot.sh create
#                  20` builds it with Ceph's ceph-test package); otherwise the tools run from
#                  PATH. A missing tool is an error.
#   SERVER_CPU / CLIENT_CPU   cores to pin to (default 0 / 1)
#   PORT           server port (default 3810)
#   IOS_<SIZE>     ops per run, e.g. IOS_4K=100000 IOS_64K=20000 IOS_4M=500 (the defaults)
#
# Timer slack: both Ceph tools call usleep(think_time) in their dispatch paths even for 0,
# which sleeps for the thread's timer slack (50 µs by default) and caps them near 6k msgs/s.
# --slack NS (default 1) writes NS to /proc/self/timerslack_ns before exec (children inherit
# it) for every process of the run, ours included; --slack default leaves the kernel default.
# Ceph's client reports the time to *send* N ops (it shuts down after its last send with up to
# depth+1 unanswered); ours reports the time until every reply arrived.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

runs=3 sizes=4K,64K,4M pairs=ceph-ceph,ceph-ours,ours-ceph,ours-ours write= slack=1 quick=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        --pairs) pairs=$2; shift 2 ;;
        --slack) slack=$2; shift 2 ;;
        --write) write=1; shift ;;
        --quick) quick=1; shift ;;   # short runs (CI): ≥ 2000 ops at 4K/64K, 50 at 4M
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "vs-ceph: unknown option $1" >&2; exit 2 ;;
    esac
done

say() { printf 'vs-ceph: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-3810}
if [ -z "${CEPH_TOOL_RUN:-}" ] && bash "$ROOT/tests/ceph/chroot.sh" check 20; then
    CEPH_TOOL_RUN="bash $ROOT/tests/ceph/chroot.sh run 20"
fi
DEPTH=16

if [ -z "${MSGR2:-}" ]; then
    (cd "$ROOT" && nice -n 10 cargo build --release --locked -q -p msgr2-bench) || die "build failed"
    MSGR2=${CARGO_TARGET_DIR:-$ROOT/target}/release/msgr2
fi
[ -x "$MSGR2" ] || die "no msgr2 binary at $MSGR2"

# ceph_tool CMD ARGS...: runs one of Ceph's tools (exec chain: the pid is the tool's own).
ceph_tool() {
    if [ -n "${CEPH_TOOL_RUN:-}" ]; then
        # shellcheck disable=SC2086
        exec $CEPH_TOOL_RUN "$@"
    elif command -v "$1" >/dev/null; then
        exec "$@"
    else
        die "$1 not found (run tests/ceph/chroot.sh create 20, or set CEPH_TOOL_RUN)"
    fi
}

set_slack() { [ "$slack" = default ] || echo "$slack" >"/proc/$BASHPID/timerslack_ns"; }

# CPU seconds (user + system) of a live process.
proc_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_server() {  # start_server ceph|ours
    local kind=$1
    (
        set_slack
        if [ "$kind" = ceph ]; then
            exec taskset -c "$SERVER_CPU" bash -c "$(declare -f ceph_tool die say); CEPH_TOOL_RUN='${CEPH_TOOL_RUN:-}' ceph_tool ceph_perf_msgr_server v2:127.0.0.1:$PORT 1 0"
        else
            exec taskset -c "$SERVER_CPU" "$MSGR2" bench server --ceph-perf \
                --listen "v2:127.0.0.1:$PORT" --cores "$SERVER_CPU"
        fi
    ) >"$work/server.log" 2>&1 &
    server_pid=$!
    local i
    for i in $(seq 100); do
        ss -ltn "sport = :$PORT" | grep -q LISTEN && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "$kind server exited"; }
        sleep 0.1
    done
    ss -ltn "sport = :$PORT" | grep -q LISTEN || die "$kind server did not listen on $PORT"
    # the pid of the tool itself (chroot and env exec, bash -c execs its last command)
    server_pid=$(pgrep -P "$server_pid" || echo "$server_pid")
    sleep 0.2
}

stop_server() {  # and wait until the port is free for the next server
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do ss -ltn "sport = :$PORT" | grep -q LISTEN || break; sleep 0.1; done
    server_pid=
}

# run_client ceph|ours SIZE BYTES IOS: prints "msgs_per_s gb_per_s client_cpu_s answered"
# (answered: checked by our client itself; for Ceph's client, by our server below, and "-"
# for ceph→ceph, where only Ceph's own "Total op N" line witnesses the run)
run_client() {
    local kind=$1 bytes=$3 ios=$4 out=$work/client.log
    (
        set_slack
        if [ "$kind" = ceph ]; then
            taskset -c "$CLIENT_CPU" bash -c "$(declare -f ceph_tool die say); CEPH_TOOL_RUN='${CEPH_TOOL_RUN:-}' ceph_tool ceph_perf_msgr_client v2:127.0.0.1:$PORT 1 $DEPTH $ios 0 $bytes"
        else
            taskset -c "$CLIENT_CPU" "$MSGR2" bench client --ceph-perf --connect "v2:127.0.0.1:$PORT" \
                --cores "$CLIENT_CPU" --jobs 1 --depth "$DEPTH" --ios "$ios" --size "$bytes"
        fi
        times >"$work/times.all"  # not in a pipe: a pipe's subshell has no children
        tail -1 "$work/times.all" >"$work/times"
    ) >"$out" 2>&1 || { cat "$out" >&2; die "$kind client failed"; }
    local us
    us=$(grep -o 'Total op [0-9]* run time [0-9]*us' "$out" | grep -o '[0-9]*us' | tr -d us)
    [ -n "$us" ] || { cat "$out" >&2; die "$kind client printed no 'Total op' line"; }
    local answered=-
    if [ "$kind" = ours ]; then
        answered=$(grep -o '"answered":[0-9]*' "$out" | cut -d: -f2)
        [ "$answered" = "$ios" ] || die "ours client: $answered of $ios answered"
    fi
    # `times`: "XmY.YYYs XmY.YYYs" for the children (user, system)
    local cpu
    cpu=$(awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] } print s }' "$work/times")
    awk -v n="$ios" -v b="$bytes" -v us="$us" -v cpu="$cpu" -v ans="$answered" \
        'BEGIN { printf "%.1f %.4f %.4f %s\n", n / (us / 1e6), n * b / (us / 1e6) / 1e9, cpu, ans }'
}

bytes_of() {
    local s=$1
    case $s in
        *K) echo $(( ${s%K} * 1024 )) ;;
        *M) echo $(( ${s%M} * 1024 * 1024 )) ;;
        *) echo "$s" ;;
    esac
}

ios_of() {
    local s=$1 v
    v=$(eval "echo \${IOS_$s:-}")
    [ -n "$v" ] && { echo "$v"; return; }
    if [ -n "$quick" ]; then
        case $s in 4M) echo 50 ;; *) echo 2000 ;; esac
    else
        case $s in 4K) echo 100000 ;; 64K) echo 20000 ;; 4M) echo 500 ;; *) echo 5000 ;; esac
    fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=$work/results.tsv
: >"$results"
IFS=, read -r -a size_list <<<"$sizes"
IFS=, read -r -a pair_list <<<"$pairs"
for pair in "${pair_list[@]}"; do
    client=${pair%-*} server=${pair#*-}
    for size in "${size_list[@]}"; do
        bytes=$(bytes_of "$size") ios=$(ios_of "$size")
        for run in $(seq "$runs"); do
            start_server "$server"
            s0=$(proc_cpu "$server_pid")
            read -r mps gbps ccpu answered < <(run_client "$client" "$size" "$bytes" "$ios")
            s1=$(proc_cpu "$server_pid")
            if [ "$server" = ours ]; then
                # our server prints one line per ended connection: every op answered?
                for _ in $(seq 50); do grep -q '"event":"closed"' "$work/server.log" && break; sleep 0.1; done
                closed=$(grep '"event":"closed"' "$work/server.log" | head -1)
                got=$(grep -o '"ops":[0-9]*' <<<"$closed" | cut -d: -f2)
                replied=$(grep -o '"replied":[0-9]*' <<<"$closed" | cut -d: -f2)
                [ -n "$got" ] || die "$pair $size: our server saw no connection end: $(cat "$work/server.log")"
                [ "$replied" = "$got" ] || die "$pair $size: our server received $got ops but answered $replied"
                if [ "$client" = ours ]; then
                    [ "$got" = "$ios" ] || die "$pair $size: our server received $got of $ios ops"
                else
                    # Ceph's client shuts its messenger down right after queueing its last op,
                    # which drops what is still queued: up to depth + 1 ops never arrive.
                    [ "$got" -ge $((ios - DEPTH - 1)) ] ||
                        die "$pair $size: our server received only $got of $ios ops"
                fi
                answered=$got
            fi
            stop_server
            scpu=$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')
            gb=$(awk -v n="$ios" -v b="$bytes" 'BEGIN { print n * b / 1e9 }')
            line="$pair $size $run $ios $mps $gbps $(awk -v c="$scpu" -v g="$gb" 'BEGIN { printf "%.2f", c / g }') $(awk -v c="$ccpu" -v g="$gb" 'BEGIN { printf "%.2f", c / g }') $answered"
            echo "$line" >>"$results"
            say "$line"
        done
    done
done

ceph_version=$(bash -c "$(declare -f ceph_tool die say); CEPH_TOOL_RUN='${CEPH_TOOL_RUN:-}' ceph_tool ceph --version" 2>/dev/null | head -1 || echo unknown)
table=$work/table.md
{
    echo "## Ceph's messenger benchmark vs ours (\`ceph_perf_msgr_*\`, MOSDOp writes)"
    echo
    echo "- command: \`perf-scripts/vs-ceph.sh --runs $runs --sizes $sizes --slack $slack\`, median of $runs runs by msgs/s"
    echo "- date: $(date -u +%FT%TZ), commit: $(cd "$ROOT" && git rev-parse --short=12 HEAD 2>/dev/null || echo -)"
    echo "- Ceph: $ceph_version; timer slack: $slack$( [ "$slack" = default ] || echo ' ns') for every process"
    echo "- 1 job, depth 16, crc mode, auth none; server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- CPU s/GB: user + system seconds of the whole process (client: including start-up) per GB of write data"
    echo "- answered: replies our client counted, or MOSDOps our server received and answered when"
    echo "  Ceph's client drives it (Ceph's client shuts down right after queueing its last op and"
    echo "  drops what is still queued, so up to depth + 1 ops never arrive; its time covers only"
    echo "  the queueing); \`-\`: Ceph→Ceph, witnessed only by Ceph's own \`Total op N\` line"
    echo
    echo "| pair (client→server) | size | ops | answered | msgs/s | GB/s | server CPU s/GB | client CPU s/GB |"
    echo "|---|---|---|---|---|---|---|---|"
    for pair in "${pair_list[@]}"; do
        for size in "${size_list[@]}"; do
            awk -v p="$pair" -v s="$size" '$1 == p && $2 == s' "$results" | sort -k5,5n |
                awk -v n="$runs" 'NR == int((n + 1) / 2) {
                    sub("-", "→", $1); printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $4, $9, $5, $6, $7, $8 }'
        done
    done
} >"$table"
cat "$table"

if [ -n "$write" ]; then
    res=$ROOT/bench/RESULTS.md
    begin='<!-- vs-ceph:begin -->' end='<!-- vs-ceph:end -->'
    if grep -q "$begin" "$res"; then
        awk -v b="$begin" -v e="$end" -v f="$table" '
            $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
            $0 == e { skip = 0 } !skip' "$res" >"$work/res" && cp "$work/res" "$res"
    else
        { echo; echo "$begin"; cat "$table"; echo "$end"; } >>"$res"
    fi
    say "wrote $res"
fi
