"""The GPU benchmark (issues "CUDA backend" and "Performance"): Kiln FP16 against PyTorch eager FP16 and
torch.compile(mode="reduce-overhead") FP16 on the same models in the same run, batch-1 latency and
large-batch throughput, Kiln's error against PyTorch FP32, and a roofline row per model.

Models come from torchvision/transformers with random weights (no network on the GPU machine), exported
to ONNX by torch.onnx.export. Timing: CUDA events around each call, warm-up first, median of --iters;
Kiln is timed on its own stream with CUDA-graph replay (the default) and without (KILN_CUDA_GRAPHS=0 run
of the same engine is reported as "kiln-nograph"). A table goes to stdout, every figure to --json. Each
model's plan and activation memory (Engine.describe(): the arena against its liveness lower bound, the plan
against its weights) get a table of their own.

--ab "NAME=VALUE;...": per switch, the model run with the environment variable set, timed in rounds against the
default, which of the two goes first alternating (bench_stats.round_order, ab_summary): the A/B of
KILN_SIDE_STREAMS=0 or KILN_GEMM_SPLIT_K=0 in one run, on one GPU state. A switch read when a context prepares
(RUN_TIME_SWITCHES) gets a new context on the same engine; any other gets a second engine, which also carries the
build's timing noise (tactics chosen by timing can differ from build to build), so an unread name
(KILN_REBUILD_CONTROL=1) measures that noise alone; with one in the list, the table reads every switch that
rebuilt against it too (bench_stats.over_rebuild_control: a second engine of the default ran ~1.5% faster than the
first on GPT-2, twentieth session).
One A/B item may set several variables, joined by ',' ("KILN_TIMING_HOLD=0,KILN_REBUILD_CONTROL=2": a second
build without the hold, for that build's noise).

    python3 bench/gpu_bench.py --json out.json [--models resnet50,bert-base] [--iters 50] [--no-compile]
                               [--ab "KILN_GEMM_SPLIT_K=0"]
"""
import argparse
import copy
import io
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

import kiln as trt  # noqa: E402
from bench_stats import (ab_items, ab_summary, memory_figures, over_rebuild_control, rel_l2, round_order,  # noqa: E402
                         switched_env)

# Switches read when a context prepares a shape, not when the engine is built: their A/B shares the engine.
RUN_TIME_SWITCHES = {"KILN_SIDE_STREAMS", "KILN_CUDNN_GRAPH", "KILN_CUDA_GRAPHS", "KILN_GEMM_SMALL_M", "KILN_PDL",
                     "KILN_PDL_TRIGGER", "KILN_GEMM_SPLITK", "KILN_EXPERIMENT_SKIP_NORMALIZATION"}

# name: (GFLOP per sample, large batch, kind)
MODELS = {
    "resnet50": (8.2, 128, "image"),
    "mobilenetv2": (0.6, 128, "image"),
    "vit-b16": (35.1, 128, "image"),
    "bert-base": (22.4, 64, "text"),
    "gpt2": (22.3, 64, "text"),  # 2 x 85M matmul weights x 128 tokens + attention (embeddings are lookups)
}
PEAK_FP16_TFLOPS_DATASHEET = 989.0
HBM_TBPS = 4.8


def make_model(name, torch):
    torch.manual_seed(0)
    if name == "resnet50":
        import torchvision
        return torchvision.models.resnet50(weights=None)
    if name == "mobilenetv2":
        import torchvision
        return torchvision.models.mobilenet_v2(weights=None)
    if name == "vit-b16":
        import torchvision
        return torchvision.models.vit_b_16(weights=None)
    if name == "bert-base":
        from transformers import BertConfig, BertModel
        return BertModel(BertConfig(attn_implementation="eager"))
    if name == "gpt2":
        from transformers import GPT2Config, GPT2Model
        return GPT2Model(GPT2Config(attn_implementation="eager"))
    raise KeyError(name)


def realistic_weights(model, kind, torch):
    """Random-weight models as a trained one would behave numerically: Linear layers their architecture
    zero-initializes (ViT's head) get random weights, and BatchNorm statistics are measured on random images,
    else activations shrink to ~1e-9 through the depth (MobileNetV2) and the accuracy column measures fp16
    underflow, not Kiln."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
            torch.nn.init.normal_(m.weight, std=m.in_features ** -0.5)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if kind == "image" and bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        g = torch.Generator(device="cpu").manual_seed(4)
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(8, 3, 224, 224, generator=g).cuda())
    return model.eval()


def sample(name, batch, torch, device="cuda"):
    g = torch.Generator(device="cpu").manual_seed(1)
    if MODELS[name][2] == "image":
        return (torch.randn(batch, 3, 224, 224, generator=g).to(device),)
    vocab = 30522 if name == "bert-base" else 50257
    return (torch.randint(0, vocab, (batch, 128), generator=g).to(device),)


def export(model, args, names, torch):
    f = io.BytesIO()
    dyn = {n: {0: "batch"} for n in names}
    kw = dict(input_names=names, output_names=["out"], dynamic_axes=dyn, opset_version=17)
    try:
        torch.onnx.export(model, args, f, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(model, args, f, **kw)
    return f.getvalue()


def first_output(model, torch):
    """The model with its first output only (transformers return ModelOutput objects)."""
    class FirstOutput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            y = self.m(x)
            return y.last_hidden_state if hasattr(y, "last_hidden_state") else y
    return FirstOutput()


def time_cuda(fn, iters, torch, warmup=10):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return float(np.median(times))


class BuildLogger(trt.ILogger):
    """Warnings and errors to stderr, as trt.Logger(WARNING) prints them; keeps the build's chain timing line."""

    def __init__(self):
        trt.ILogger.__init__(self)
        self.chain = ""

    def log(self, severity, msg):
        if "chain timing:" in msg:
            self.chain = msg
        if severity <= trt.ILogger.WARNING:
            print(f"[{str(severity).split('.')[-1][0]}] {msg}", file=sys.stderr)


def build_kiln(onnx_bytes, input_name, shape_min, shape_max, fp16=True, warm_rebuild=None):
    """Builds with an empty timing cache; with a dict `warm_rebuild`, builds once more with the cache the first
    build filled and puts that build's seconds (deserialization included, as for the first) under "seconds"."""
    logger = BuildLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        raise RuntimeError("parse failed: " + "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, shape_min, shape_max, shape_max)
    config.add_optimization_profile(profile)
    config.set_timing_cache(config.create_timing_cache(b""), False)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("build failed")
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    seconds = time.perf_counter() - t0
    # What of the build's time the chain timing of near ties took (its budget: 20 s a profile by default).
    print(f"Kiln build of {shape_max}: {seconds:.1f} s; {logger.chain or 'no chain timing'}", flush=True)
    if warm_rebuild is not None:
        # The build target has two halves: an empty timing cache (above) and a warm one (this).
        logger.chain = ""
        t1 = time.perf_counter()
        plan_warm = builder.build_serialized_network(network, config)
        if plan_warm is None:
            raise RuntimeError("the rebuild with the warm timing cache failed")
        trt.Runtime(logger).deserialize_cuda_engine(plan_warm)
        warm_rebuild["seconds"] = time.perf_counter() - t1
        print(f"Kiln rebuild of {shape_max} with the warm timing cache: {warm_rebuild['seconds']:.1f} s; "
              f"{logger.chain or 'no chain timing'}", flush=True)
    return engine, seconds, len(plan)


def kiln_runner(engine, x, out, torch, stream):
    ctx = engine.create_execution_context()
    ctx.set_input_shape(engine.get_tensor_name(0), tuple(x.shape))
    ctx.set_tensor_address(engine.get_tensor_name(0), x.data_ptr())
    ctx.set_tensor_address(engine.get_tensor_name(1), out.data_ptr())
    handle = stream.cuda_stream

    def run():
        if not ctx.execute_async_v3(handle):
            raise RuntimeError("Kiln's execute_async_v3 failed (the log above says why)")
    return run, ctx


def kiln_profile(ctx, run, torch, stream, runs=5):
    """Per-layer times (median over `runs` profiled executions) as context.last_profile() rows."""
    class Keep(trt.IProfiler):
        def report_layer_time(self, layer_name, ms):
            pass
    ctx.profiler = Keep()
    profiles = []
    with torch.cuda.stream(stream):
        for _ in range(runs):
            run()
            profiles.append(ctx.last_profile())
    ctx.profiler = None
    rows = profiles[0]
    for i, r in enumerate(rows):
        r["ms"] = float(np.median([p[i]["ms"] for p in profiles]))
    return rows


def output_rel_l2(out, ref):
    """bench_stats.rel_l2 of two torch tensors (on any device)."""
    return rel_l2(out.detach().float().cpu().numpy(), ref.detach().float().cpu().numpy())


def kiln_ab(engine, onnx_bytes, input_name, shape_min, shape_max, switch, x, out, ref32, run_a, iters, torch, stream,
            rounds=6):
    """The default (run_a) against a context first run with the environment variables `switch` (a list of
    (NAME, VALUE)) set, in rounds of iters // 2 calls of each, which of the two goes first alternating from round
    to round (bench_stats.round_order; an even number of rounds, so each goes first as often). Run-time switches
    take effect when the context prepares, so their context shares `engine`; any other needs an engine built with
    the switch set. Also the switched context's error against float32 (b_rel_l2), from one more of its replays: a switch that is
    faster and wrong must not read as a gain."""
    with switched_env(switch):
        run_time = all(name in RUN_TIME_SWITCHES for name, _ in switch)
        build_s = None
        if run_time:
            engine_b = engine
        else:
            engine_b, build_s, _ = build_kiln(onnx_bytes, input_name, shape_min, shape_max)
        run_b, _ = kiln_runner(engine_b, x, out, torch, stream)
        with torch.cuda.stream(stream):
            for _ in range(3):  # the eager run and the capture happen with the switch set
                run_b()
            torch.cuda.synchronize()
    times = {"a": [], "b": []}
    runs = {"a": run_a, "b": run_b}
    with torch.cuda.stream(stream):
        for r in range(rounds):
            for which in round_order(r):  # A first in even rounds, B first in odd ones
                times[which].append(time_cuda(runs[which], max(10, iters // 2), torch, warmup=3))
    a_ms, b_ms = times["a"], times["b"]
    with torch.cuda.stream(stream):
        out.fill_(float("nan"))
        run_b()
        torch.cuda.synchronize()
    summary = ab_summary(a_ms, b_ms)
    summary["rebuilt"] = not run_time
    summary["b_build_s"] = build_s  # the switched engine's build (None: it shares the default's)
    summary["b_rel_l2"] = output_rel_l2(out, ref32)
    return summary


def build_seconds(s):
    """A build's seconds for the table: '-' where there was none (an A/B switch that shared the default's engine)."""
    return "-" if s is None else f"{s:.1f}"


def print_profile(name, batch, rows, top=15):
    total = sum(r["ms"] for r in rows)
    print(f"\n-- Kiln per-layer profile: {name} batch {batch}: {len(rows)} layers, {total:.3f} ms eager sum")
    for r in sorted(rows, key=lambda r: -r["ms"])[:top]:
        s = r["ms"] * 1e-3
        print(f"   {r['name'][:50]:50s} {r['op'][:16]:16s} {r['ms']:8.4f} ms {100 * r['ms'] / total:5.1f}% "
              f"{r['flops'] / s / 1e12 if s else 0:7.1f} TFLOP/s {r['bytes'] / s / 1e9 if s else 0:7.0f} GB/s"
              + ("  CPU FALLBACK" if r.get("on_host") else ""))
    by_op = {}
    for r in rows:
        t = by_op.setdefault(r["op"], [0, 0.0])
        t[0] += 1
        t[1] += r["ms"]
    print("   by op: " + ", ".join(f"{op} x{n} {ms:.3f} ms ({100 * ms / total:.0f}%)"
                                  for op, (n, ms) in sorted(by_op.items(), key=lambda kv: -kv[1][1])))


def peak_gemm_tflops(torch):
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    ms = time_cuda(lambda: a @ b, 20, torch, warmup=5)
    return 2 * n ** 3 / (ms * 1e-3) / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (it takes minutes)")
    ap.add_argument("--batches", default="1,large")
    ap.add_argument("--profile", action="store_true", help="print Kiln's per-layer profile for each row")
    ap.add_argument("--profile-top", type=int, default=15,
                    help="how many of the slowest layers --profile lists (the by-op line always sums all)")
    ap.add_argument("--ab", default="", help="'NAME=VALUE;...': time each switch against the default")
    ap.add_argument("--profiler-range", action="store_true",
                    help="run one timed-path execution of each row between cudaProfilerStart and Stop, for a "
                         "profiler started with its collection off (ncu --profile-from-start off): it then sees "
                         "the CUDA graph's kernels and none of the build's tactic timings")
    args = ap.parse_args()
    switches = ab_items(args.ab)
    import torch
    torch.backends.cudnn.benchmark = True
    results = {"device": torch.cuda.get_device_name(), "peak_fp16_gemm_tflops": peak_gemm_tflops(torch), "rows": []}
    print(f"device {results['device']}; measured fp16 GEMM peak {results['peak_fp16_gemm_tflops']:.0f} TFLOP/s",
          flush=True)
    for name in args.models.split(","):
        gflop, large, kind = MODELS[name]
        model = realistic_weights(make_model(name, torch).cuda(), kind, torch)
        params = sum(p.numel() for p in model.parameters())
        wrapped = first_output(model, torch).eval()
        input_name = "x"
        x1 = sample(name, 2, torch)
        onnx_bytes = export(wrapped, x1, [input_name], torch)
        batches = [1 if b == "1" else large for b in args.batches.split(",")]
        shape = tuple(x1[0].shape[1:])
        try:
            warm = {}
            engine, build_s, plan_bytes = build_kiln(onnx_bytes, input_name, (1,) + shape, (max(batches),) + shape,
                                                     warm_rebuild=warm)
        except Exception as e:  # noqa: BLE001 - reported in the table
            print(f"{name}: Kiln failed: {e}", flush=True)
            results["rows"].append({"model": name, "error": str(e)})
            continue
        try:
            memory = memory_figures(engine.describe())
        except Exception as e:  # noqa: BLE001 - the benchmark goes on without the figures
            memory = {"memory_error": str(e)[:200]}
        # The PyTorch peer: the same weights in FP16 (channels-last for CNNs), made once per model.
        half = copy.deepcopy(wrapped).half()
        if kind == "image":
            half = half.to(memory_format=torch.channels_last)
        with torch.no_grad():
            for b in batches:
                x = sample(name, b, torch)[0]
                ref32 = wrapped(x).float()
                row = {"model": name, "batch": b, "build_s": build_s, "warm_build_s": warm.get("seconds"),
                       "plan_bytes": plan_bytes, "params": params,
                       **memory}
                out = torch.empty_like(ref32)
                stream = torch.cuda.Stream()
                run, ctx = kiln_runner(engine, x, out, torch, stream)
                try:
                    with torch.cuda.stream(stream):
                        row["kiln_ms"] = time_cuda(run, args.iters, torch)
                        torch.cuda.synchronize()
                        out.fill_(float("nan"))
                        run()
                        torch.cuda.synchronize()
                        if args.profiler_range:
                            torch.cuda.profiler.start()
                            run()
                            torch.cuda.synchronize()
                            torch.cuda.profiler.stop()
                except RuntimeError as e:
                    print(f"{name} batch {b}: Kiln failed: {e}", flush=True)
                    results["rows"].append({"model": name, "batch": b, "error": str(e)})
                    continue
                for key, sw in switches:
                    try:
                        row.setdefault("ab", {})[key] = kiln_ab(engine, onnx_bytes, input_name, (1,) + shape,
                                                                (max(batches),) + shape, sw, x, out, ref32,
                                                                run, args.iters, torch, stream)
                    except Exception as e:  # noqa: BLE001 - reported in the A/B table
                        row.setdefault("ab", {})[key] = {"error": str(e)[:200]}
                if args.profile:
                    prof = kiln_profile(ctx, run, torch, stream)
                    print_profile(name, b, prof, args.profile_top)
                    row["profile"] = prof
                if kind == "image":
                    # Convolutions take cuDNN's graph API by default wherever it times faster, each choice
                    # recorded in the plan at build time: a fresh context's first run then finalizes only the
                    # recorded plans (its time is the first-run cost). The A/B: the legacy cuDNN API alone
                    # (KILN_CUDNN_GRAPH=0, read when a context first runs a shape) in another fresh context.
                    try:
                        t0 = time.perf_counter()
                        run_f, _ = kiln_runner(engine, x, out, torch, stream)
                        with torch.cuda.stream(stream):
                            run_f()
                            torch.cuda.synchronize()
                        row["kiln_first_run_s"] = time.perf_counter() - t0
                        with switched_env([("KILN_CUDNN_GRAPH", "0")]):
                            run_l, _ = kiln_runner(engine, x, out, torch, stream)
                            with torch.cuda.stream(stream):
                                row["kiln_legacy_conv_ms"] = time_cuda(run_l, args.iters, torch)
                                torch.cuda.synchronize()
                    except RuntimeError as e:
                        row["kiln_legacy_conv_error"] = str(e)[:200]
                # The accuracy is the default engine's: the A/B engines and the legacy-cuDNN context above wrote
                # `out` last, so the default context runs once more.
                with torch.cuda.stream(stream):
                    out.fill_(float("nan"))
                    run()
                    torch.cuda.synchronize()
                diff = (out.double() - ref32.double())
                row["kiln_max_abs"] = float(diff.abs().max())
                row["kiln_rel_l2"] = output_rel_l2(out, ref32)
                xh = x.half() if x.is_floating_point() else x
                if kind == "image":
                    xh = xh.contiguous(memory_format=torch.channels_last)
                row["eager_ms"] = time_cuda(lambda: half(xh), args.iters, torch)
                # PyTorch's own FP16 error: the yardstick for Kiln's (a deep net's FP16 error depends on its weights).
                row["torch_fp16_rel_l2"] = output_rel_l2(half(xh), ref32)
                if not args.no_compile:
                    try:
                        # A fresh compile per (model, batch): dynamo's guards would otherwise count every model's
                        # wrapper class as a recompile of one function and fall back to eager past its limit.
                        torch._dynamo.reset()
                        comp = torch.compile(half, mode="reduce-overhead")
                        for _ in range(3):
                            comp(xh)
                        row["compile_ms"] = time_cuda(lambda: comp(xh), args.iters, torch)
                    except Exception as e:  # noqa: BLE001
                        row["compile_error"] = str(e)[:200]
                best = min(v for k, v in row.items() if k in ("eager_ms", "compile_ms"))
                row["speedup_vs_best_torch"] = best / row["kiln_ms"]
                row["kiln_per_s"] = b / (row["kiln_ms"] * 1e-3)
                row["kiln_tflops"] = gflop * b / (row["kiln_ms"] * 1e-3) / 1e3
                row["fraction_of_peak"] = row["kiln_tflops"] / results["peak_fp16_gemm_tflops"]
                # Roofline: the least work and traffic one inference of this batch needs (FLOPs; fp16 weights read
                # once, input and output once), the floor time they imply on this GPU (measured GEMM peak, HBM
                # 4.8 TB/s), and the fraction of that floor Kiln reaches.
                row["flops"] = gflop * 1e9 * b
                row["min_bytes"] = 2 * params + x.element_size() * x.numel() + out.element_size() * out.numel()
                floor_s = max(row["flops"] / (results["peak_fp16_gemm_tflops"] * 1e12), row["min_bytes"] / (HBM_TBPS * 1e12))
                row["floor_ms"] = floor_s * 1e3
                row["roofline_fraction"] = row["floor_ms"] / row["kiln_ms"]
                results["rows"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
        del model, wrapped, half
        torch.cuda.empty_cache()
    print("\n| model | batch | Kiln ms | eager ms | compile ms | Kiln/best torch | samples/s | TFLOP/s | % peak "
          "| rel L2 vs fp32 | torch fp16 rel L2 | build s | warm-cache build s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        if "error" in r:
            print(f"| {r['model']} | - | failed: {r['error'][:60]} | | | | | | | | | | |")
            continue
        print(f"| {r['model']} | {r['batch']} | {r['kiln_ms']:.3f} | {r['eager_ms']:.3f} | "
              f"{r.get('compile_ms', float('nan')):.3f} | {r['speedup_vs_best_torch']:.2f}x | {r['kiln_per_s']:.0f} | "
              f"{r['kiln_tflops']:.1f} | {100 * r['fraction_of_peak']:.1f} | {r['kiln_rel_l2']:.2e} | "
              f"{r['torch_fp16_rel_l2']:.2e} | {r['build_s']:.1f} | {build_seconds(r.get('warm_build_s'))} |")
    print("\n| model | batch | Kiln ms (cuDNN graph API, default) | Kiln ms (legacy cuDNN, KILN_CUDNN_GRAPH=0) "
          "| fresh context first run s |")
    print("|---|---|---|---|---|")
    for r in results["rows"]:
        if "kiln_legacy_conv_ms" in r or "kiln_legacy_conv_error" in r:
            g = f"{r['kiln_legacy_conv_ms']:.3f}" if "kiln_legacy_conv_ms" in r else r["kiln_legacy_conv_error"][:60]
            print(f"| {r['model']} | {r['batch']} | {r['kiln_ms']:.3f} | {g} | {r.get('kiln_first_run_s', float('nan')):.1f} |")
    print("\n| model | batch | GFLOP | min MB | floor ms | Kiln ms | fraction of the floor |")
    print("|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        if "floor_ms" in r:
            print(f"| {r['model']} | {r['batch']} | {r['flops'] / 1e9:.1f} | {r['min_bytes'] / 1e6:.1f} | "
                  f"{r['floor_ms']:.3f} | {r['kiln_ms']:.3f} | {100 * r['roofline_fraction']:.1f}% |")
    if args.json:  # before the tables below, which read optional figures
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("\n| model | arena / liveness bound (largest batch) | plan MB | plan / weights |")
    print("|---|---|---|---|")
    seen = set()
    for r in results["rows"]:
        if r.get("model") in seen or not r.get("arena_over_bound"):
            continue
        seen.add(r["model"])
        print(f"| {r['model']} | {r['arena_bytes'] / 1e6:.1f} / {r['liveness_bound_bytes'] / 1e6:.1f} MB = "
              f"{r['arena_over_bound']:.3f} | {r['plan_bytes'] / 1e6:.1f} | {r.get('plan_over_weights', float('nan')):.3f} |")
    if switches:
        print("\n| model | batch | switch | default ms | with switch ms | switch / default (median of rounds) | range "
              "| / rebuild control | with switch rel L2 vs fp32 (default's: above) | with switch build s (default's: above) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in results["rows"]:
            for key, ab in r.get("ab", {}).items():
                if "error" in ab:
                    print(f"| {r['model']} | {r['batch']} | {key} | failed: {ab['error'][:60]} | | | | | | |")
                    continue
                control = over_rebuild_control(r["ab"], key)
                print(f"| {r['model']} | {r['batch']} | {key} | {ab['a_ms']:.3f} | {ab['b_ms']:.3f} | "
                      f"{ab['b_over_a']:.3f} | {ab['b_over_a_min']:.3f}-{ab['b_over_a_max']:.3f} | "
                      f"{'-' if control is None else f'{control:.3f}'} | {ab.get('b_rel_l2', float('nan')):.2e} | "
                      f"{build_seconds(ab.get('b_build_s'))} |")


if __name__ == "__main__":
    main()
