#!/usr/bin/env bash
# Syscalls per message, client and server side apart: for each (size, mode) cell a
# `msgr2 bench server` and a `msgr2 bench client` run as two processes, each under
# `perf stat -e raw_syscalls:sys_enter` (or `strace -f -c` where the tracepoint cannot be
# used), and the counts are divided by the messages the client saw acknowledged. Then a
# per-syscall breakdown of one loopback run per mode under `strace -f -c`.
#
#   perf-scripts/syscalls.sh [extra msgr2 bench options…]
#
# Environment: SIZES (default 4K,4M), MODES (default raw,crc,secure), DURATION (default 2).
# Counts include each connection's handshake and the two CPU-stats round trips: noise next
# to the thousands of messages of a cell. One message = one request + its reply.
# Output: $OUT/syscalls.txt, $OUT/syscalls-breakdown.txt
source "$(dirname "$0")/lib.sh"
SIZES=${SIZES:-4K,4M}
MODES=${MODES:-raw,crc,secure}
DURATION=${DURATION:-2}
BIN=$(msgr2_bin)
need strace strace
TRACER=strace
if command -v perf >/dev/null 2>&1 || need_perf; then
    if have_syscall_tracepoint; then TRACER=perf; fi
fi
[ "$TRACER" = perf ] || say "syscall tracepoints unavailable: counting with strace -f -c (slower)"

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then SCORES=0; CCORES=1; else SCORES=0; CCORES=0; fi

# "${TRACE[@]}" FILE -- CMD…: runs CMD with its syscalls counted into FILE. A plain command
# (not a function), so that `… &` leaves the tracer's own pid in $!.
if [ "$TRACER" = perf ]; then
    TRACE=("$(command -v perf || echo perf)" stat -x, -e raw_syscalls:sys_enter -o)
else
    TRACE=(strace -f -c -o)
fi
# count FILE: the total from traced's output.
count() {
    if [ "$TRACER" = perf ]; then
        grep raw_syscalls "$1" | cut -d, -f1
    else
        awk '$NF == "total" { print $4 }' "$1"
    fi
}

T=$(mktemp -d)
TRACER_PID=
# stop_server: ends the bench server we started (the tracer's child), then the tracer.
stop_server() {
    [ -n "$TRACER_PID" ] || return 0
    local srv
    srv=$(pgrep -P "$TRACER_PID" | head -1 || true)
    [ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$TRACER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$TRACER_PID" 2>/dev/null; then
        [ -n "$srv" ] && kill -KILL "$srv" 2>/dev/null
    fi
    wait "$TRACER_PID" 2>/dev/null || true
    TRACER_PID=
}
cleanup() { stop_server; rm -rf "$T"; }
trap cleanup EXIT

{
    printf '# syscalls per message (request + reply), %s, %s s per cell, tracer %s\n' \
        "$(date -u +%FT%TZ)" "$DURATION" "$TRACER"
    printf '%8s %-7s %10s %12s %12s %12s\n' size mode msgs "client/msg" "server/msg" "GB/s"
} | tee "$OUT/syscalls.txt"
for size in ${SIZES//,/ }; do
    for mode in ${MODES//,/ }; do
        "${TRACE[@]}" "$T/srv.cnt" -- "$BIN" bench server --listen '[v2:127.0.0.1:0/0]' \
            --cores "$SCORES" > "$T/srv.out" 2>&1 &
        TRACER_PID=$!
        for _ in $(seq 100); do grep -q '^client:' "$T/srv.out" 2>/dev/null && break; sleep 0.1; done
        read -r -a CONNECT < <(sed -n 's/^client: msgr2 bench client //p' "$T/srv.out" | tr -d "'")
        [ "${#CONNECT[@]}" -eq 4 ] || die "server did not start: $(cat "$T/srv.out")"
        "${TRACE[@]}" "$T/cli.cnt" -- "$BIN" bench client "${CONNECT[@]}" --sizes "$size" --modes "$mode" \
            --duration "$DURATION" --cores "$CCORES" --json "$T/cell.json" "$@" > "$T/cli.out"
        stop_server
        msgs=$(grep -o '"msgs": [0-9]*' "$T/cell.json" | head -1 | grep -o '[0-9]*$')
        gbps=$(grep -o '"gbps": [0-9.e+-]*' "$T/cell.json" | head -1 | awk '{print $2}')
        c=$(count "$T/cli.cnt"); s=$(count "$T/srv.cnt")
        awk -v size="$size" -v mode="$mode" -v m="$msgs" -v c="$c" -v s="$s" -v g="$gbps" \
            'BEGIN { printf "%8s %-7s %10d %12.2f %12.2f %12s\n", size, mode, m, c/m, s/m, g }' \
            | tee -a "$OUT/syscalls.txt"
    done
done

# Which syscalls: one loopback run per mode (both sides in one process) under strace.
first_size=${SIZES%%,*}
: > "$OUT/syscalls-breakdown.txt"
for mode in ${MODES//,/ }; do
    strace -f -c -o "$T/bd.txt" -- "$BIN" bench --sizes "$first_size" --modes "$mode" \
        --duration 1 --json "$T/bd.json" "$@" > /dev/null
    msgs=$(grep -o '"msgs": [0-9]*' "$T/bd.json" | head -1 | grep -o '[0-9]*$')
    {
        echo "== $mode $first_size loopback (both sides), $msgs messages, per message:"
        awk -v m="$msgs" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { printf "  %-22s %8.2f\n", $NF, $4/m }' \
            "$T/bd.txt" | sort -k2 -nr | head -8
    } | tee -a "$OUT/syscalls-breakdown.txt"
done
say "wrote $OUT/syscalls.txt, $OUT/syscalls-breakdown.txt"
