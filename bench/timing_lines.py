"""The convolutions' timing lines (KILN_CUDNN_GRAPH_LOG=1) as a same-run yardstick for Kiln's own kernels.

A build with KILN_CUDNN_GRAPH_LOG=1 logs, for each convolution it times, every candidate's time: cuDNN's graph
engines and legacy call, the cuBLASLt GEMM, and Kiln's split-K and narrow-input kernels. Each candidate is
timed alone, in the same build, on the same GPU. So the ratio of Kiln's best to the libraries' best, layer by
layer, says how a change to Kiln's kernels moved them against a yardstick that did not move, whatever the
machine's speed that day: two runs on different machines compare by their ratios, not by their times.

    python3 bench/timing_lines.py [--layers REGEX] LOG [LOG2]

LOG: a log with such lines (gpu_check.sh's bench.log or timeline.log). With LOG2 (a later run), each layer's
ratio in both, and the median of each. --layers keeps the layers whose name matches REGEX (a log of several
models: '^/m/layer|^/m/conv1/' is ResNet-50's)."""
import argparse
import re
import statistics
import sys

LINE = re.compile(r"^kiln: convolution '([^']+)' x (\[[^\]]*\]): (.*)$")
KILN = re.compile(r"(split-K kernel x\d+|narrow-input kernel) (\d+\.\d+) ms")
LIBRARY = re.compile(r"(legacy|engine \d+ knobs \S+ [^\[\],]*?|cuBLASLt GEMM) (\d+\.\d+) ms")


def read(path):
    """{(layer, input shape): (Kiln's best (name, ms) or None, the libraries' best (name, ms) or None)} for
    each convolution timed in the log (its first timing: later builds of the same shapes read their record).
    A line without a timing (read from the timing cache) is skipped."""
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m or "timed and recorded" not in m.group(3):
                continue
            key = (m.group(1), m.group(2))
            if key in out:
                continue
            text = m.group(3)
            kiln = [(n, float(ms)) for n, ms in KILN.findall(text)]
            lib = [(n.strip(), float(ms)) for n, ms in LIBRARY.findall(text)]
            out[key] = (min(kiln, key=lambda c: c[1]) if kiln else None, min(lib, key=lambda c: c[1]) if lib else None)
    return out


def ratio(entry):
    """Kiln's best over the libraries' best, or None when either is missing."""
    kiln, lib = entry
    return kiln[1] / lib[1] if kiln and lib else None


def table(runs):
    """Rows (layer, per run: (Kiln us, library us, ratio)) for the layers every run timed with both kinds of
    candidate, in the first run's order; and each run's median ratio over those layers."""
    first = runs[0]
    rows = []
    for key in first:
        entries = [r.get(key) for r in runs]
        if any(e is None or ratio(e) is None for e in entries):
            continue
        rows.append((key, [(e[0][1] * 1e3, e[1][1] * 1e3, ratio(e)) for e in entries]))
    medians = [statistics.median(row[1][i][2] for row in rows) if rows else None for i in range(len(runs))]
    return rows, medians


def main(argv=None):
    ap = argparse.ArgumentParser(description="Kiln's convolution kernels against the libraries', from timing lines")
    ap.add_argument("logs", nargs="+", metavar="LOG", help="one log, or two (an earlier and a later run)")
    ap.add_argument("--layers", type=re.compile, default=None, help="only layers whose name matches this regex")
    args = ap.parse_args(argv)
    if len(args.logs) > 2:
        ap.error("at most two logs")
    runs = [read(p) for p in args.logs]
    if args.layers:
        runs = [{k: v for k, v in r.items() if args.layers.search(k[0])} for r in runs]
    rows, medians = table(runs)
    if not rows:
        print("no convolution was timed with both a Kiln kernel and a library candidate in every log "
              "(was the build run with KILN_CUDNN_GRAPH_LOG=1 and an empty timing cache?)", file=sys.stderr)
        return 1
    head = " | ".join(f"run {i + 1}: Kiln us | library us | Kiln / library" for i in range(len(runs)))
    print(f"| layer | input | {head} |")
    print("|---|---|" + "---|---|---|" * len(runs))
    for (layer, shape), cells in rows:
        print(f"| {layer} | {shape} | " + " | ".join(f"{k:.2f} | {l:.2f} | {r:.3f}" for k, l, r in cells) + " |")
    print(f"\n{len(rows)} layers; median Kiln / library: " + ", ".join(f"run {i + 1} {m:.3f}" for i, m in enumerate(medians)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
