"""Digest of an Nsight Compute CSV of one inference's kernels (scripts/gpu_check.sh's timeline phase).

ncu, started with collection off, profiles each kernel of the one CUDA-graph replay that gpu_bench.py's
--profiler-range brackets, one kernel at a time: each duration is that kernel alone, with no launch gap and
nothing overlapping it. They rank the kernels of an inference. Their sum is set against the replay's time (the
benchmark's Kiln ms): where the replay is longer, the rest lies between kernels (launch latency, dependency
waits); at ResNet-50 batch 1 the replay is shorter (each kernel alone pays its whole launch and ramp, which
neighbours overlap in a replay), and the line says so.

Usage: python3 bench/kernel_timeline.py TIMELINE.csv [--model-ms MS]
"""
import argparse
import collections
import csv
import io
import sys

US_PER = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}  # ncu's time units


def read_rows(path):
    """(kernel name, grid, block, duration us) for each profiled kernel, in launch order."""
    text = open(path, encoding="utf-8", errors="replace").read()
    start = text.find('"ID"')
    if start < 0:
        raise SystemExit(f"{path}: no CSV header (\"ID\",...) in the ncu output")
    kernels = collections.OrderedDict()
    for rec in csv.DictReader(io.StringIO(text[start:])):
        if rec.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(rec["Metric Value"].replace(",", ""))
        unit = rec.get("Metric Unit", "nsecond")
        if unit not in US_PER:
            raise SystemExit(f"{path}: unknown duration unit '{unit}'")
        kernels[rec["ID"]] = (rec["Kernel Name"], rec.get("Grid Size", ""), rec.get("Block Size", ""),
                              value * US_PER[unit])
    return list(kernels.values())


def short(name, width=70):
    name = name.split("(")[0] if not name.startswith("void ") else name[5:].split("(")[0]
    return name if len(name) <= width else name[: width - 3] + "..."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--model-ms", type=float, default=None, help="the replay's time, for the gap line")
    args = ap.parse_args()
    rows = read_rows(args.csv)
    if not rows:
        raise SystemExit(f"{args.csv}: no gpu__time_duration rows: did the profiled range run any kernel?")
    print(f"| # | kernel | grid | block | us |")
    print("|---|---|---|---|---|")
    for i, (name, grid, block, us) in enumerate(rows):
        print(f"| {i} | {short(name)} | {grid} | {block} | {us:.2f} |")
    total = sum(r[3] for r in rows)
    by_kind = collections.Counter()
    count = collections.Counter()
    for name, _, _, us in rows:
        by_kind[short(name, 40)] += us
        count[short(name, 40)] += 1
    print(f"\n{len(rows)} kernels, {total:.1f} us of kernel time (each alone)")
    for k, us in by_kind.most_common(12):
        print(f"  {k:42s} x{count[k]:<3d} {us:7.1f} us")
    if args.model_ms:
        replay = args.model_ms * 1000
        gap = replay - total
        if gap >= 0:
            print(f"replay {replay:.1f} us: {gap:.1f} us between or around kernels ({gap / len(rows):.2f} us a kernel)")
        else:
            # Seen on ResNet-50 at batch 1 (fourteenth session): 353 us alone against a 315 us replay. Alone, each
            # kernel pays its whole launch and ramp and nothing overlaps it; in a replay neighbours overlap.
            print(f"replay {replay:.1f} us: {-gap:.1f} us less than the kernels alone: their alone-times rank them, "
                  "they do not split the replay into kernels and gaps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
