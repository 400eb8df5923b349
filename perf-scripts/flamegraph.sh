#!/usr/bin/env bash
# A flame graph of a `msgr2 bench` run: perf record -e cpu-clock with call graphs, folded
# and drawn by the `inferno` crate (installed with `cargo install inferno` if missing; Debian
# has no packaged flamegraph scripts).
#
#   perf-scripts/flamegraph.sh [msgr2 bench options…]
#
# Output: $OUT/flame.svg (open in a browser: click to zoom, ctrl-F to search), $OUT/stacks.folded
source "$(dirname "$0")/lib.sh"
need_perf
detect_hw_counters
if ! command -v inferno-flamegraph >/dev/null || ! command -v inferno-collapse-perf >/dev/null; then
    command -v cargo >/dev/null || die "cargo needed to install inferno"
    say "installing inferno (cargo install inferno)"
    cargo install --quiet --locked inferno >&2
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
BIN=$(msgr2_bin)
mapfile -t ARGS < <(bench_args "$@")
FREQ=${FREQ:-499}
CALLGRAPH=${CALLGRAPH:-dwarf,16384}

say "perf record -e cpu-clock -F $FREQ --call-graph $CALLGRAPH -- msgr2 bench ${ARGS[*]}"
perf record -e cpu-clock -F "$FREQ" --call-graph "$CALLGRAPH" -o "$OUT/flame.data" -- \
    "$BIN" bench "${ARGS[@]}" | tee "$OUT/flame-bench.txt"
perf script -i "$OUT/flame.data" 2>/dev/null | inferno-collapse-perf > "$OUT/stacks.folded"
[ -s "$OUT/stacks.folded" ] || die "no stacks collected"
TITLE="msgr2 bench ${ARGS[*]} (cpu-clock$([ -n "$HW_COUNTERS" ] || echo ', no hw counters'))"
inferno-flamegraph --title "$TITLE" --countname samples < "$OUT/stacks.folded" > "$OUT/flame.svg"
say "wrote $OUT/flame.svg ($(wc -l < "$OUT/stacks.folded") distinct stacks)"
