"""Why does a second build of one model run faster than the first? (bench/NOTES.md, twentieth session: the A/B's
rebuild control read 0.982-0.985 on GPT-2 at batch 1 in three runs, whatever the round order.)

Builds one model --builds times in this process with KILN_GEMM_LOG=1, each engine's choices captured from
stderr, runs each once (the choices a context makes on its first run), then times the engines against each other
in rounds, the order rotating, CUDA-graph replay as the benchmark does. Prints each engine's median against the
first's, every matrix multiply whose choice of Kiln's kernels differs between the builds, with what was timed,
and every cuBLASLt setup whose algorithm differs. --env builds some engines with switches set (which choice the
model's chain prefers), --discard-first builds one untimed engine first (whether the first build is the slow one).

    python3 bench/rebuild_probe.py [--model gpt2] [--batch 1] [--builds 3] [--iters 30] [--log-dir DIR]
                                   [--env ';KILN_GEMM_SPLITK_TILE=64x64'] [--discard-first]
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
LT_CHOICE = re.compile(r"kiln: cuBLASLt (.*): (.*) -> (algo .*)$")


def matches(log_path, pattern):
    """The groups of every line of a KILN_GEMM_LOG=1 log that `pattern` matches, in order."""
    with open(log_path) as f:
        return [m.groups() for m in map(pattern.match, (line.strip() for line in f)) if m]


def choices(log_path):
    """{node name: (shape, how, choice)}: Kiln's kernel choice per matrix multiply (the last line per node)."""
    return {g[0]: g[1:] for g in matches(log_path, CHOICE)}


def lt_choices(log_path):
    """[(problem, how, algorithm)]: cuBLASLt's choice per GEMM setup, in the order they were set up (cuBLASLt's
    lines carry no layer name)."""
    return matches(log_path, LT_CHOICE)


def lt_choices_per_problem(lines):
    """{problem: (how it was first timed, the algorithm its last setup ran)} from lt_choices: the last setup is the
    context's own first run after the build (the chain timing's executions set up other algorithms before it)."""
    out = {}
    for problem, how, algo in lines:
        first_how = out.get(problem, (None,))[0]
        out[problem] = (first_how if first_how and first_how != "recorded" else how, algo)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--log-dir", default=None)
    ap.add_argument("--env", default="",
                    help="'NAME=VALUE,...;...': build i is made with item i (mod their count) set, '' the default; "
                         "e.g. ';KILN_GEMM_SPLITK_TILE=64x64' alternates the default and one tile")
    ap.add_argument("--discard-first", action="store_true",
                    help="build and run one engine first that is not timed: whether the first engine a process "
                         "builds is the slow one")
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
    runs, logs, lt_logs = [], [], []
    env_items = [[kv.split("=", 1) for kv in item.split(",") if kv] for item in args.env.split(";")]
    if args.discard_first:
        captured_stderr(os.path.join(log_dir, "discarded.log"),
                        lambda: gb.kiln_runner(gb.build_kiln(onnx_bytes, input_name, lo, hi)[0], x,
                                               torch.empty_like(out), torch, stream)[0]())
        torch.cuda.synchronize()
    for i in range(args.builds):
        log = os.path.join(log_dir, f"build{i}.log")
        switch = env_items[i % len(env_items)]

        def build_and_run_once():
            engine, build_s, _ = gb.build_kiln(onnx_bytes, input_name, lo, hi)
            run, ctx = gb.kiln_runner(engine, x, torch.empty_like(out), torch, stream)
            with torch.cuda.stream(stream):
                for _ in range(3):
                    run()
                torch.cuda.synchronize()
            return engine, run, ctx, build_s
        with gb.switched_env(switch):
            runs.append(captured_stderr(log, build_and_run_once))
        print(f"build {i}: {','.join('='.join(kv) for kv in switch) or 'default'} ({runs[-1][3]:.1f} s)")
        logs.append(choices(log))
        lt_logs.append(lt_choices(log))
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
    names = list(dict.fromkeys(n for log in logs for n in log))  # in the order the builds first chose them
    differing = [n for n in names if len({log.get(n, (None, None, None))[2] for log in logs}) > 1]
    print(f"\n{len(names)} matrix multiplies chosen; {len(differing)} differ between the builds")
    for n in differing:
        print(f"- {n} ({logs[0].get(n, ('?',))[0]})")
        for i, log in enumerate(logs):
            shape_, how, choice = log.get(n, ("?", "?", "?"))
            print(f"    build {i}: {how} -> {choice}")
    # cuBLASLt's own algorithm per problem: the same Kiln choices can still run other cuBLASLt kernels.
    lt_final = [lt_choices_per_problem(log) for log in lt_logs]
    problems = list(dict.fromkeys(p for log in lt_final for p in log))
    lt_differing = [p for p in problems if len({log.get(p, ("-", "-"))[1] for log in lt_final}) > 1]
    print(f"\ncuBLASLt: {len(problems)} problems; {len(lt_differing)} run another algorithm in some build")
    for p in lt_differing:
        print(f"- {p}")
        for i, log in enumerate(lt_final):
            how, algo = log.get(p, ("-", "-"))
            print(f"    build {i}: {how} -> {algo}")
    print(f"\nlogs: {log_dir}")


if __name__ == "__main__":
    main()
