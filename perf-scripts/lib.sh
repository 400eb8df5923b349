# Shared helpers of the perf scripts (sourced, not run).
#
# Environment:
#   MSGR2      msgr2 binary to use (default: build it with `cargo build --release`)
#   OUT        output directory (default: target/perf/ in the repository, git-ignored)
#   BENCH_ARGS default bench arguments when a script is given none

set -euo pipefail

PERF_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PERF_SCRIPTS/.." && pwd)
OUT=${OUT:-$ROOT/target/perf}
mkdir -p "$OUT"

say() { printf '%s\n' "perf-scripts: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root to run: $*"; fi
}

apt_updated=
# need COMMAND DEBIAN-PACKAGE: installs the package if the command is missing.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    command -v apt-get >/dev/null || die "$1 missing and no apt-get to install $2"
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq >/dev/null; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    command -v "$1" >/dev/null 2>&1 || die "installing $2 did not provide $1"
}

need_perf() {
    need perf linux-perf
    # Debian's /usr/bin/perf is a wrapper that wants the running kernel's perf; fall back to
    # whichever versioned binary is installed.
    if ! perf version >/dev/null 2>&1; then
        local p
        p=$(ls /usr/bin/perf_* 2>/dev/null | sort -V | tail -1 || true)
        [ -n "$p" ] || die "perf does not run here"
        perf() { "$p" "$@"; }
    fi
    local paranoid
    paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
    if [ "$(id -u)" != 0 ] && [ "$paranoid" -gt 1 ]; then
        say "note: perf_event_paranoid=$paranoid: as non-root only user-space events of your own"
        say "      processes; 'sysctl kernel.perf_event_paranoid=-1' for kernel stacks and tracepoints"
    fi
}

# Whether the CPU exposes hardware counters to perf (VMs often do not).
HW_COUNTERS=
detect_hw_counters() {
    if perf stat -e cycles -x, -- true 2>&1 >/dev/null | grep -qE '^[0-9]+,'; then
        HW_COUNTERS=1
    else
        HW_COUNTERS=
        say "no hardware counters here ('cycles' is not supported, e.g. in this VM):"
        say "  using software events only (task-clock, cpu-clock, context switches, faults)"
    fi
}

# Whether syscall tracepoints can be counted.
have_syscall_tracepoint() {
    perf stat -e raw_syscalls:sys_enter -x, -- true 2>&1 >/dev/null | grep -qE '^[0-9]+,'
}

# The msgr2 binary: $MSGR2, or a fresh release build.
msgr2_bin() {
    if [ -n "${MSGR2:-}" ]; then
        [ -x "$MSGR2" ] || die "MSGR2=$MSGR2 is not executable"
        echo "$MSGR2"
        return
    fi
    command -v cargo >/dev/null || die "cargo not found (or set MSGR2=/path/to/msgr2)"
    say "building msgr2 (release)"
    (cd "$ROOT" && cargo build --release --quiet -p msgr2-bench --bin msgr2) >&2
    echo "${CARGO_TARGET_DIR:-$ROOT/target}/release/msgr2"
}

# Bench arguments: the script's own, or a short default run.
bench_args() {
    if [ "$#" -gt 0 ]; then
        printf '%s\n' "$@"
    else
        # shellcheck disable=SC2086
        printf '%s\n' ${BENCH_ARGS:---sizes 4K,4M --modes raw,crc,secure --duration 2}
    fi
}
