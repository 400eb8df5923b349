#!/usr/bin/env bash
# The opt-in long fuzz campaign (issue 6): every cargo-fuzz target for FUZZ_SECONDS (default
# 1800 s = 30 min) each, one after the other, at low priority. Prints one summary line per
# target (executions, seconds, corpus size, crashes) and writes them to tests/fuzz-long.txt.
# New inputs go to a scratch dir; crashes land in <crate>/fuzz/artifacts/<target>/.
# Usage: bash tests/fuzz-long.sh [target ...]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-1800}
out=${FUZZ_LONG_OUT:-tests/fuzz-long.txt}
export RUSTC_BOOTSTRAP=1
want=("$@")
: >"$out.tmp"
echo "# cargo fuzz run, ${secs}s per target, started $(date -u +%FT%TZ) on $(nproc) cores" >>"$out.tmp"
for fuzzdir in codec/fuzz crypto/fuzz; do
  for target in $(cd "$fuzzdir" && cargo fuzz list); do
    if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $target " ]]; then continue; fi
    scratch=$(mktemp -d)
    log="$scratch.log"
    start=$(date +%s)
    (cd "$fuzzdir" && nice -n 19 cargo fuzz run "$target" "$scratch" "corpus/$target" -- \
       -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1)
    rc=$?
    end=$(date +%s)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    crashes=$(find "$fuzzdir/artifacts/$target" -type f -newer "$scratch" 2>/dev/null | wc -l)
    line="$target execs=${execs:-?} seconds=$((end - start)) new_inputs=$(ls "$scratch" | wc -l) crashes=$crashes exit=$rc"
    echo "$line" | tee -a "$out.tmp"
    rm -rf "$scratch" "$log"
  done
done
mv "$out.tmp" "$out"
