#!/usr/bin/env bash
# perf stat around a `msgr2 bench` run.
#
#   perf-scripts/perf-stat.sh [msgr2 bench options…]
#
# Hardware events (cycles, instructions, IPC, cache and branch misses) when the CPU exposes
# them; software events only otherwise (this VM: 'cycles' is not supported), and it says so.
# Output: $OUT/perf-stat.txt (counters), $OUT/perf-stat-bench.txt (the bench table) and
# $OUT/perf-stat-bench.json.
source "$(dirname "$0")/lib.sh"
need_perf
detect_hw_counters
BIN=$(msgr2_bin)
mapfile -t ARGS < <(bench_args "$@")

SW=task-clock,context-switches,cpu-migrations,page-faults
if [ -n "$HW_COUNTERS" ]; then
    EVENTS=cycles,instructions,branches,branch-misses,cache-references,cache-misses,$SW
else
    EVENTS=$SW
fi
if have_syscall_tracepoint; then EVENTS=$EVENTS,raw_syscalls:sys_enter; fi

say "perf stat -e $EVENTS -- msgr2 bench ${ARGS[*]}"
perf stat -e "$EVENTS" -o "$OUT/perf-stat.txt" -- \
    "$BIN" bench "${ARGS[@]}" --json "$OUT/perf-stat-bench.json" | tee "$OUT/perf-stat-bench.txt"
{
    [ -n "$HW_COUNTERS" ] || echo "# software events only: no hardware counters on this machine"
} >> "$OUT/perf-stat.txt"
cat "$OUT/perf-stat.txt"
say "wrote $OUT/perf-stat.txt, $OUT/perf-stat-bench.txt, $OUT/perf-stat-bench.json"
