"""Kiln's FP16 error against PyTorch FP32 for one benchmark model, per engine build and per run-time switch:
a wrong result that appears only with one profile (the tactics timed at its opt shape), one switch
(side streams, CUDA graphs, the cuDNN graph API) or after some number of runs shows
which part to look at. Uses gpu_bench's models, weights and inputs.

    python3 bench/switch_accuracy.py [--model resnet50] [--batch 1] [--builds 1,128,1] [--switches "A=1|B=0;C=1"]

--builds: the profile's largest batch (also its opt shape) per engine built, in order; a repeated value is
a rebuild (tactics timed again). Every context runs 1 eager call, then 9 more (captured and replayed);
the table has the relative L2 error after the 1st, 2nd and 10th call, the worst of calls 2-10, and again after
a context with the next switch was made and dropped. --switches: the contexts' switches ('|' between contexts,
';' between one context's switches; an empty item is the default), SWITCHES when not given. Exits 1 when an error of a path that is on by default exceeds
--fail-factor times PyTorch FP16's own (side-branch and KILN_PDL_TRIGGER=all contexts, opt_in, are
reported, not judged).
"""
import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import gpu_bench as gb  # noqa: E402
from bench_stats import parse_switches, switched_env  # noqa: E402

# Each context's switches, as --ab spells them. KILN_SIDE_STREAMS=1: side branches, off by default since this
# script found them wrong in captured graphs.
SWITCHES = ["", "KILN_SIDE_STREAMS=1", "KILN_CUDA_GRAPHS=0", "KILN_CUDNN_GRAPH=0",
            "KILN_SIDE_STREAMS=1;KILN_CUDNN_GRAPH=0"]


def opt_in(switch):
    """A context with side branches in any of their modes (on, plan, serial), or with every kernel of Kiln's
    letting the next start early (KILN_PDL_TRIGGER=all): off by default, so reported only."""
    return any((name == "KILN_SIDE_STREAMS" and value != "0") or (name == "KILN_PDL_TRIGGER" and value == "all")
               for name, value in parse_switches(switch))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--builds", default="1,128,1")
    ap.add_argument("--fail-factor", type=float, default=2.0)
    ap.add_argument("--switches", default=None, help="'|'-separated contexts, each 'NAME=VALUE;...' or empty")
    args = ap.parse_args()
    import torch
    torch.backends.cudnn.benchmark = True
    _, _, kind = gb.MODELS[args.model]
    model = gb.realistic_weights(gb.make_model(args.model, torch).cuda(), kind, torch)
    wrapped = gb.first_output(model, torch).eval()
    x1 = gb.sample(args.model, 2, torch)
    onnx_bytes = gb.export(wrapped, x1, ["x"], torch)
    shape = tuple(x1[0].shape[1:])
    x = gb.sample(args.model, args.batch, torch)[0]
    with torch.no_grad():
        ref = wrapped(x).float()
        half = copy.deepcopy(wrapped).half()
        xh = x.half() if x.is_floating_point() else x
        torch_err = gb.output_rel_l2(half(xh), ref)
        print(f"torch fp16 rel L2 {torch_err:.2e}", flush=True)
    limit = args.fail_factor * torch_err
    wrong = []
    stream = torch.cuda.Stream()
    switches = SWITCHES if args.switches is None else [s.strip() for s in args.switches.split("|")]
    for sw in switches:
        parse_switches(sw)  # a malformed switch fails here, before any build
    print("| build | max batch | switch | call 1 | call 2 | call 10 | worst of 2-10 | default again after it |")
    print("|---|---|---|---|---|---|---|---|")
    for i, top in enumerate(int(b) for b in args.builds.split(",")):
        engine, _, plan_bytes = gb.build_kiln(onnx_bytes, "x", (1,) + shape, (max(top, args.batch),) + shape)
        out = torch.empty_like(ref)
        run_d, _ = gb.kiln_runner(engine, x, out, torch, stream)
        for sw in switches:
            errs = []
            try:
                with switched_env(parse_switches(sw)):  # set while the context is made and runs
                    run, ctx = gb.kiln_runner(engine, x, out, torch, stream)
                    with torch.cuda.stream(stream):
                        later = []
                        for k in range(10):
                            out.fill_(float("nan"))
                            run()
                            torch.cuda.synchronize()
                            e = gb.output_rel_l2(out, ref)
                            if k in (0, 1, 9):
                                errs.append(e)
                            if k >= 1:
                                later.append(e)
                        errs.append(max(later, key=lambda v: v if v == v else float("inf")))  # NaN is worst
                    del run, ctx
            except RuntimeError as e:
                errs = [f"failed: {str(e)[:60]}"]
            with torch.cuda.stream(stream):
                out.fill_(float("nan"))
                run_d()
                torch.cuda.synchronize()
            again = gb.output_rel_l2(out, ref)
            cells = " | ".join(e if isinstance(e, str) else f"{e:.2e}" for e in errs)
            print(f"| {i} ({plan_bytes} B) | {top} | {sw or 'default'} | {cells} | {again:.2e} |", flush=True)
            judged = ([] if opt_in(sw) else errs) + [again]
            if any(isinstance(e, str) or not e <= limit for e in judged):
                wrong.append(f"build {i} {sw or 'default'}")
        del run_d, engine
    if wrong:
        print(f"errors above {limit:.2e} ({args.fail_factor} x torch fp16's) on paths on by default: "
              + "; ".join(wrong))
        sys.exit(1)


if __name__ == "__main__":
    main()
