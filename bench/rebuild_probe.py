"""Why does a second build of one model run faster than the first? (bench/NOTES.md, twentieth session: the A/B's
rebuild control read 0.982-0.985 on GPT-2 at batch 1 in three runs, whatever the round order.)

Builds one model --builds times in this process with KILN_GEMM_LOG=1, each engine's choices captured from
stderr, runs each once (the choices a context makes on its first run), then times the engines against each other
in rounds, the order rotating, CUDA-graph replay as the benchmark does. Prints each engine's median against the
first's, and every matrix multiply whose choice differs between the builds, with what was timed.

    python3 bench/rebuild_probe.py [--model gpt2] [--batch 1] [--builds 3] [--iters 30] [--log-dir DIR]
"""
import argparse
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

import gpu_bench as gb  # noqa: E402


def captured_stderr(path, fn):
    """fn() with file descriptor 2 (where Kiln's C++ side logs) written to `path`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            return fn()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


CHOICE = re.compile(r"kiln: matrix multiply '(.*)' (\d+ x \d+ x \d+): (.*) -> (.*)$")


def choices(log_path):
    """{node name: (shape, how, choice)} from a KILN_GEMM_LOG=1 log (the last line per node)."""
    out = {}
    with open(log_path) as f:
        for line in f:
            m = CHOICE.match(line.strip())
            if m:
                out[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--log-dir", default=None)
    args = ap.parse_args()
    import torch

    log_dir = args.log_dir or tempfile.mkdtemp()
    os.environ["KILN_GEMM_LOG"] = "1"
    kind = gb.MODELS[args.model][2]
    model = gb.realistic_weights(gb.make_model(args.model, torch).cuda(), kind, torch)
    wrapped = gb.first_output(model, torch).eval()
    input_name = "x"  # exported and built as gpu_bench.py does (a batch-2 trace, profile 1 .. --batch)
    onnx_bytes = gb.export(wrapped, gb.sample(args.model, 2, torch), [input_name], torch)
    x = gb.sample(args.model, args.batch, torch)[0]
    with torch.no_grad():
        out = wrapped(x).float()
    stream = torch.cuda.Stream()
    lo, hi = (1,) + tuple(x.shape[1:]), tuple(x.shape)
    runs, logs = [], []
    for i in range(args.builds):
        log = os.path.join(log_dir, f"build{i}.log")

        def build_and_run_once():
            engine = gb.build_kiln(onnx_bytes, input_name, lo, hi)[0]
            run, ctx = gb.kiln_runner(engine, x, torch.empty_like(out), torch, stream)
            with torch.cuda.stream(stream):
                for _ in range(3):
                    run()
                torch.cuda.synchronize()
            return engine, run, ctx
        runs.append(captured_stderr(log, build_and_run_once))
        logs.append(choices(log))
    times = [[] for _ in runs]
    with torch.cuda.stream(stream):
        for r in range(args.rounds):
            order = [(r + k) % len(runs) for k in range(len(runs))]  # each engine first once per len(runs) rounds
            for i in order:
                times[i].append(gb.time_cuda(runs[i][1], args.iters, torch, warmup=3))
    med = [statistics.median(t) for t in times]
    print(f"{args.model} batch {args.batch}: {args.builds} builds in one process, {args.rounds} rounds of "
          f"{args.iters} replays")
    print("| build | median ms | / build 0 | rounds (ms) |")
    print("|---|---|---|---|")
    for i, t in enumerate(times):
        print(f"| {i} | {med[i]:.4f} | {med[i] / med[0]:.3f} | {' '.join(f'{v:.4f}' for v in t)} |")
    names = sorted(set().union(*logs), key=lambda n: min(list(log).index(n) for log in logs if n in log))
    differing = [n for n in names if len({log.get(n, (None, None, None))[2] for log in logs}) > 1]
    print(f"\n{len(names)} matrix multiplies chosen; {len(differing)} differ between the builds")
    for n in differing:
        print(f"- {n} ({logs[0].get(n, ('?',))[0]})")
        for i, log in enumerate(logs):
            shape_, how, choice = log.get(n, ("?", "?", "?"))
            print(f"    build {i}: {how} -> {choice}")
    print(f"\nlogs: {log_dir}")


if __name__ == "__main__":
    main()
