#!/usr/bin/env bash
# perf record -e cpu-clock (a software clock: works with or without hardware counters)
# around a `msgr2 bench` run, with call graphs, and a text report of the hottest symbols.
#
#   perf-scripts/perf-record.sh [msgr2 bench options…]
#
# Environment: FREQ (samples/s per CPU, default 499), CALLGRAPH (default dwarf,16384; use
# `fp` with a frame-pointer build: RUSTFLAGS="-C force-frame-pointers=yes").
# Output: $OUT/perf.data, $OUT/perf-report.txt (flat, by symbol), $OUT/perf-report-comm.txt
# (by thread name: bench-cli-* / msgr2-client.b* are the client side, bench-srv-* /
# msgr2-mon.bench the server side).
source "$(dirname "$0")/lib.sh"
need_perf
detect_hw_counters
BIN=$(msgr2_bin)
mapfile -t ARGS < <(bench_args "$@")
FREQ=${FREQ:-499}
CALLGRAPH=${CALLGRAPH:-dwarf,16384}

record() {
    say "perf record -e cpu-clock -F $FREQ --call-graph $CALLGRAPH -- msgr2 bench ${ARGS[*]}"
    perf record -e cpu-clock -F "$FREQ" --call-graph "$CALLGRAPH" -o "$OUT/perf.data" -- \
        "$BIN" bench "${ARGS[@]}" | tee "$OUT/perf-record-bench.txt"
}
record
[ -n "$HW_COUNTERS" ] || say "(sampled on cpu-clock; on bare metal also try: perf record -e cycles:pp)"
perf report -i "$OUT/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0.5 \
    2>/dev/null | grep -v "^$" | sed "s/[ -]*$//" > "$OUT/perf-report.txt" || true
perf report -i "$OUT/perf.data" --stdio --no-children --sort comm --percent-limit 0.1 -g none \
    2>/dev/null | grep -v '^$' > "$OUT/perf-report-comm.txt" || true
echo "== by thread (bench-cli-*, msgr2-client.b*: client; bench-srv-*, msgr2-mon.bench: server)"
grep -v '^#' "$OUT/perf-report-comm.txt" | head -20
echo "== hottest symbols (self time)"
grep -E '^ +[0-9.]+%' "$OUT/perf-report.txt" | head -40
say "wrote $OUT/perf.data, $OUT/perf-report.txt, $OUT/perf-report-comm.txt"
