#!/usr/bin/env python3
"""Markdown tables for bench/RESULTS.md.

  results.py bench [--runs N] [--msgr2 PATH] [-- msgr2 bench options...]
      runs `msgr2 bench --json` N times (default 3) and prints the median of every figure
      per cell (ratios are taken within each run, then the median of those).
  results.py criterion [CRITERION_DIR]
      summarises criterion's estimates (default target/criterion): time per iteration and
      throughput of every bench that declared one.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def size_label(n):
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n}B"


def bench(args):
    runs, binary, rest = 3, os.environ.get("MSGR2"), []
    i = 0
    while i < len(args):
        if args[i] == "--runs":
            runs = int(args[i + 1])
            i += 2
        elif args[i] == "--msgr2":
            binary = args[i + 1]
            i += 2
        elif args[i] == "--":
            rest = args[i + 1:]
            break
        else:
            rest = args[i:]
            break
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "msgr2-bench",
                        "--bin", "msgr2"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        binary = str(Path(target) / "release" / "msgr2")
    docs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            out = Path(tmp) / f"run{r}.json"
            print(f"results.py: run {r + 1}/{runs}: msgr2 bench {' '.join(rest)}",
                  file=sys.stderr)
            subprocess.run([binary, "bench", *rest, "--json", str(out)], check=True,
                           stdout=sys.stderr)
            docs.append(json.loads(out.read_text()))
    cells = {}
    for d in docs:
        for c in d["cells"]:
            cells.setdefault((c["size"], c["mode"]), []).append(c)
    order = {"tcp": 0, "raw": 1, "crc": 2, "secure": 3}
    m = docs[0]["machine"]
    print(f"- command: `msgr2 bench {' '.join(rest)}`, median of {runs} runs")
    print(f"- date: {m.get('date')}, commit: {m.get('commit')}, transport: {m.get('transport')}, "
          f"{m.get('conns')} conn × depth {m.get('depth')} ({m.get('workload')}), "
          f"{m.get('duration_s')} s per cell")
    print(f"- machine: {m.get('cpu_model')}, {m.get('logical_cpus')} CPUs, "
          f"kernel {m.get('kernel')}; server cores {m.get('server_cores')}, "
          f"client cores {m.get('client_cores')}")
    other = [c.get("other_cpus_busy") for d in docs for c in d["cells"]]
    other = [x for x in other if x is not None]
    if other:
        print(f"- other processes kept {statistics.median(other):.2f} CPUs busy during the median "
              f"cell, {max(other):.2f} at most (0 = the machine to itself)")
    print()
    print("| size | mode | GB/s | msgs/s | p50 µs | p99 µs | p99.9 µs | CPU s/GB client | "
          "CPU s/GB server | × tcp | × raw | p50 × raw | × raw, each run |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def med(cs, k):
        v = [c[k] for c in cs if c.get(k) is not None]
        return statistics.median(v) if v else None

    def fmt(v, spec):
        return "–" if v is None else format(v, spec)

    for (size, mode), cs in sorted(cells.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
        print(f"| {size_label(size)} | {mode} | {fmt(med(cs, 'gbps'), '.3f')} | "
              f"{fmt(med(cs, 'msgs_per_s'), ',.0f')} | {fmt(med(cs, 'p50_us'), '.1f')} | "
              f"{fmt(med(cs, 'p99_us'), '.1f')} | {fmt(med(cs, 'p999_us'), '.1f')} | "
              f"{fmt(med(cs, 'cpu_s_per_gb_client'), '.3f')} | "
              f"{fmt(med(cs, 'cpu_s_per_gb_server'), '.3f')} | "
              f"{fmt(med(cs, 'ratio_to_tcp'), '.2f')} | "
              f"{fmt(med(cs, 'ratio_to_raw'), '.2f')} | {fmt(med(cs, 'p50_ratio_to_raw'), '.2f')} | "
              f"{' '.join(fmt(c.get('ratio_to_raw'), '.2f') for c in cs)} |")


def criterion(args):
    base = Path(args[0]) if args else Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"
    rows = []
    for est in sorted(base.glob("**/new/estimates.json")):
        bdir = est.parent
        meta = json.loads((bdir / "benchmark.json").read_text())
        e = json.loads(est.read_text())
        ns = e["mean"]["point_estimate"]
        tp = meta.get("throughput") or {}
        nbytes = tp.get("Bytes") or tp.get("BytesDecimal")
        rows.append((meta["full_id"], ns, nbytes))
    def key(row):
        parts = []
        for p in row[0].replace("_", "/").split("/"):
            n = None
            for unit, shift in (("KiB", 10), ("MiB", 20), ("GiB", 30)):
                if p.endswith(unit) and p[: -len(unit)].isdigit():
                    n = int(p[: -len(unit)]) << shift
            parts.append((1, n, "") if n is not None else (0, 0, p))
        return parts

    rows.sort(key=key)
    print("| bench | time per iteration | GB/s | ns/byte |")
    print("|---|---:|---:|---:|")
    for name, ns, nbytes in rows:
        t = f"{ns / 1e6:.3f} ms" if ns >= 1e6 else f"{ns / 1e3:.2f} µs" if ns >= 1e3 else f"{ns:.0f} ns"
        if nbytes:
            print(f"| {name} | {t} | {nbytes / ns:.2f} | {ns / nbytes:.4f} |")
        else:
            print(f"| {name} | {t} | | |")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("bench", "criterion"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    (bench if sys.argv[1] == "bench" else criterion)(sys.argv[2:])


if __name__ == "__main__":
    main()
