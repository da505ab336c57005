"""CPU latency of ResNet-50 (and optionally other models) at batch 1: Kiln against ONNX Runtime in the
same run, interleaved, median of N timed runs after warm-up. Usage:
    PYTHONPATH=python:tests/python python3 bench/cpu_resnet50.py [--iters 20] [--models resnet50,bert]"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path[:0] = [os.path.join(os.path.dirname(__file__), "..", "python"),
                os.path.join(os.path.dirname(__file__), "..", "tests", "python")]

import onnxruntime as ort  # noqa: E402

import kiln as trt  # noqa: E402
from kiln_helpers import build_engine  # noqa: E402
from models import bert, mobilenet, resnet, vit  # noqa: E402

MODELS = {"resnet50": (resnet, {}), "mobilenetv2": (mobilenet, {}), "vit-b16": (vit, {}), "bert-base": (bert, {})}


def time_runs(fn, iters):
    fn()
    fn()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench(name, iters):
    mod, kw = MODELS[name]
    model = mod.build(full=True, seed=0, **kw)
    data = model.SerializeToString()
    inputs = mod.sample_inputs(model, seed=1)
    engine = build_engine(data)
    ctx = engine.create_execution_context()
    keep, outs = [], []
    for i in range(engine.num_io_tensors):
        n = engine.get_tensor_name(i)
        if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT:
            a = np.ascontiguousarray(inputs[n])
            keep.append(a)
            ctx.set_input_shape(n, a.shape)
            ctx.set_tensor_address(n, a.ctypes.data)
        else:
            o = np.empty(tuple(ctx.get_tensor_shape(n)), trt.nptype(engine.get_tensor_dtype(n)))
            outs.append(o)
            ctx.set_tensor_address(n, o.ctypes.data)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count()
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    kiln_t, ort_t = [], []
    for _ in range(2):  # interleave so drift hits both
        kiln_t += time_runs(lambda: ctx.execute_async_v3(0), iters // 2)
        ort_t += time_runs(lambda: sess.run(None, inputs), iters // 2)
    k, o = statistics.median(kiln_t), statistics.median(ort_t)
    return dict(model=name, kiln_ms=k * 1e3, ort_ms=o * 1e3, ratio=k / o, iters=len(kiln_t), threads=os.cpu_count())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--models", default="resnet50")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    rows = [bench(m, args.iters) for m in args.models.split(",")]
    print(f"{'model':12s} {'kiln ms':>9s} {'onnxruntime ms':>15s} {'kiln/ort':>9s}  (median of {rows[0]['iters']}, "
          f"{rows[0]['threads']} threads, batch 1, fp32 CPU)")
    for r in rows:
        print(f"{r['model']:12s} {r['kiln_ms']:9.2f} {r['ort_ms']:15.2f} {r['ratio']:9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
