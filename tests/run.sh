#!/usr/bin/env bash
# Runs every test of msgr2-rs on a fresh machine: installs what the tests need if missing
# (Ceph's Debian packages for the interop tests, iptables for the network-namespace tests,
# cargo-fuzz, Debian chroots with Ceph 18 and 20 built once by tests/ceph/chroot.sh), then
# formatting and lint checks, the unit/integration/property/interop tests of the whole
# workspace (interop against Ceph 16, 18 and 20), a bounded cargo-fuzz smoke run of every
# fuzz target, and one rotating shard of the cargo-mutants campaign (cargo-mutants installed
# if missing). A missing Ceph is a failure, never a skip.
#
# Usage: tests/run.sh            (FUZZ_SECONDS=N to change the per-target fuzz time, default 20;
#                                 MSGR2_CEPH_VERSIONS=16,20 to test only those Ceph versions)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log=$(mktemp -d)/test.log
fuzz_seconds=${FUZZ_SECONDS:-20}

step() { printf '\n=== %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
cargo --version

step "Ceph 16.2 daemons and CLI for the interop tests (Debian packages, installed if missing)"
CI=${CI:-true} bash tests/ceph/install.sh
command -v ceph-mon >/dev/null || { echo "ceph-mon missing after install: the interop tests cannot run" >&2; exit 1; }

ceph_versions=${MSGR2_CEPH_VERSIONS:-16,18,20}
chroots=()
for v in 18 20; do
  [[ ",${ceph_versions// /,}," == *",$v,"* ]] && chroots+=("$v")
done
step "Ceph ${chroots[*]:-(none)} chroots for the interop tests (built once if missing; MSGR2_CEPH_VERSIONS=$ceph_versions)"
if ((${#chroots[@]})); then
  t0=$SECONDS
  if bash tests/ceph/chroot.sh create "${chroots[@]}"; then
    echo "Ceph chroots ready in $((SECONDS - t0)) s"
  elif [[ ${CI:-true} == true ]]; then
    echo "a Ceph chroot could not be built: the interop tests against Ceph ${chroots[*]} cannot run" >&2
    exit 1
  else
    echo "warning: a Ceph chroot could not be built; its interop tests will fail" >&2
  fi
fi

step "iptables for the multi-host tests (Debian package, installed if missing)"
CI=${CI:-true} bash tests/netns/netns.sh install
# Not fatal here: bench/tests/netns.rs fails on its own when CI is set, and skips otherwise.
bash tests/netns/netns.sh check || echo "warning: the network-namespace tests cannot run here"

step "cargo-fuzz (installed from crates.io if missing)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

step "cargo-mutants (installed from crates.io if missing)"
if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi
cargo mutants --version

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "rustdoc (broken intra-doc links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "tests"
test_status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || test_status=$?

step "fuzz smoke (${fuzz_seconds}s per target)"
# No nightly toolchain can be fetched here: RUSTC_BOOTSTRAP lets the stable compiler accept the
# sanitizer flags cargo-fuzz passes. New inputs go to a scratch dir; the checked-in corpus is
# only read.
fuzz_failed=0
fuzz_passed=0
reliability=${MSGR2_RELIABILITY_DIR:-${CARGO_TARGET_DIR:-$root/target}/reliability}
mkdir -p "$reliability"
{
  echo "<!-- written by tests/run.sh (fuzz smoke) -->"
  echo "| target | seconds | executions | result |"
  echo "|---|---|---|---|"
} >"$reliability/fuzz.md"
for fuzzdir in codec/fuzz crypto/fuzz; do
for target in $(cd "$fuzzdir" && RUSTC_BOOTSTRAP=1 cargo fuzz list); do
  scratch=$(mktemp -d)
  if (cd "$fuzzdir" && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$scratch.log" 2>&1); then
    result=ok
    fuzz_passed=$((fuzz_passed + 1))
  else
    result=FAILED
    tail -40 "$scratch.log"
    fuzz_failed=$((fuzz_failed + 1))
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch.log" | grep -o '[0-9]*$' | tail -1)
  echo "fuzz $target: $result (${execs:-?} executions)"
  echo "| $target | $fuzz_seconds | ${execs:-?} | $result |" >>"$reliability/fuzz.md"
done
done

step "mutation testing: one rotating shard of codec, crypto and proto (tests/mutants.sh --shard)"
# Fails when a mutant in the shard survives every test; the full campaign is opt-in
# (bash tests/mutants.sh). The shard's line goes into RELIABILITY.md.
mutants_failed=0
bash tests/mutants.sh --shard 2>&1 | tee "$reliability/mutants-shard.log" || mutants_failed=1
{
  echo "<!-- written by tests/run.sh (mutants shard) -->"
  grep '^mutants shard' "$reliability/mutants-shard.log" || echo "the shard did not finish"
  [ "$mutants_failed" -eq 0 ] || echo "FAILED: see the missed mutants in the test log"
} >"$reliability/mutants.md"

step "RELIABILITY.md (from the tables the suites wrote to $reliability)"
MSGR2_RELIABILITY_DIR="$reliability" bash tests/reliability.sh

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$6} END {print s+0}')
# a test binary that failed to build or crashed reports no "test result" line: count it
if [ "$test_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
step "summary"
mutants_result=$([ "$mutants_failed" -eq 0 ] && echo passed || echo FAILED)
echo "cargo tests: $passed passed, $failed failed; fuzz targets: $fuzz_passed passed, $fuzz_failed failed; mutants shard: $mutants_result"
echo "$((passed + fuzz_passed + 1 - mutants_failed)) passed, $((failed + fuzz_failed + mutants_failed)) failed"
[ "$failed" -eq 0 ] && [ "$fuzz_failed" -eq 0 ] && [ "$mutants_failed" -eq 0 ]
