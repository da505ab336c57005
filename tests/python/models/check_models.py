"""Build every model generator in small and full form, check it, run it with onnxruntime.

    python3 tests/python/models/check_models.py [--small-only] [--only resnet,vit] [--no-trace]

For each model: onnx.checker (full_check, with shape inference), an onnxruntime CPU run on
sample inputs, output shapes and value ranges (finite, not all ~0, not huge), the RMS of every
intermediate float activation (must stay O(1) through the depth of the net), parameter counts
against the published ones, and the op types used. Exits non-zero on any failure.
"""
import argparse
import collections
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models import ARCHITECTURES  # noqa: E402

# published parameter counts (torchvision / HF), millions; ours must be within 1%
EXPECTED_PARAMS = dict(resnet=25.557, mobilenet=3.505, efficientnet=5.289, vit=86.568,
                       bert=109.482, gpt2=124.440)
# variants: (label, build kwargs)
VARIANTS = {
    "resnet": [("bn", dict(fold_bn=False)), ("folded", dict(fold_bn=True))],
    "mobilenet": [("folded", dict()), ("bn,dropout", dict(fold_bn=False, dropout=True))],
    "efficientnet": [("folded", dict()),
                     ("bn,reducemean-se", dict(se_pool="reducemean", fold_bn=False))],
    "vit": [("", dict()), ("slice-cls", dict(cls_select="slice"))],
    "bert": [("", dict()), ("no-token-types", dict(token_type_ids=False))],
    "gpt2": [("", dict()),
             ("decomposed-ln,no-mask", dict(decomposed_ln=True, attention_mask=False))],
}
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("    FAIL:", what)


def session(model, trace):
    """An onnxruntime session; with trace, every float intermediate is also an output."""
    if trace:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        known = {o.name for o in model.graph.output}
        inferred = onnx.shape_inference.infer_shapes(model)
        for vi in inferred.graph.value_info:
            if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and vi.name not in known:
                model.graph.output.append(vi)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL if trace \
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_one(arch, module, label, kwargs, full, trace):
    title = f"{arch}{' ' + label if label else ''} ({'full' if full else 'small'})"
    print(f"== {title}")
    t0 = time.time()
    model = module.build(batch=2 if full else "batch", full=full, seed=1, **kwargs)
    t_build = time.time() - t0
    t0 = time.time()
    onnx.checker.check_model(model, full_check=True)
    t_check = time.time() - t0
    cfg = module.config_of(model)
    feeds = module.sample_inputs(model, batch=2, seed=3)
    t0 = time.time()
    sess = session(model, False)
    t_load = time.time() - t0
    names = [o.name for o in sess.get_outputs()]
    t0 = time.time()
    values = dict(zip(names, sess.run(None, feeds)))
    t_run = time.time() - t0
    if full:  # a second, warm run
        t0 = time.time()
        sess.run(None, feeds)
        t_run = time.time() - t0
    n = cfg["num_params"]
    print(f"    params {n:,} ({n / 1e6:.3f}M); build {t_build:.2f}s, check {t_check:.2f}s, "
          f"session {t_load:.2f}s, run {t_run:.3f}s; "
          f"{sum(len(i.raw_data) for i in model.graph.initializer) / 2**20:.0f} MiB of weights")
    if full:
        want = EXPECTED_PARAMS[arch]
        check(abs(n / 1e6 - want) / want < 0.01,
              f"{title}: {n / 1e6:.3f}M params, expected ~{want}M")
    for o in model.graph.output:
        v = values[o.name]
        finite = np.isfinite(v).all()
        print(f"    output {o.name}: shape {list(v.shape)} dtype {v.dtype} range "
              f"[{v.min():.3g}, {v.max():.3g}] std {v.std():.3g}")
        check(finite, f"{title}: {o.name} has non-finite values")
        check(0.1 < v.std() < 10 and np.abs(v).max() < 50, f"{title}: {o.name} std {v.std():.3g}, "
              f"max |x| {np.abs(v).max():.3g}: vanishing or exploding")
    if trace:
        sess = session(model, True)
        values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        del sess
        # masked tensors legitimately hold ~float.min (or -inf where two masks add up)
        consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
        rms = {k: float(np.sqrt(np.mean(np.square(v, dtype=np.float64)))) for k, v in values.items()
               if k not in names and k not in consts and v.size and np.isfinite(v).all()
               and np.abs(v).max() < 1e30}
        lo, hi = min(rms, key=rms.get), max(rms, key=rms.get)
        print(f"    {len(rms)} intermediates: rms from {rms[lo]:.3g} ({lo}) "
              f"to {rms[hi]:.3g} ({hi})")
        check(rms[hi] < 20, f"{title}: activation {hi} rms {rms[hi]:.3g} is exploding")
        check(rms[lo] > 1e-3, f"{title}: activation {lo} rms {rms[lo]:.3g} is vanishing")
    ops = collections.Counter(node.op_type for node in model.graph.node)
    print("    ops:", ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    return dict(build=t_build, check=t_check, load=t_load, run=t_run, params=n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small-only", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-trace", action="store_true", help="skip the per-activation RMS check")
    ap.add_argument("--first-variant", action="store_true", help="full models: first variant only")
    args = ap.parse_args()
    only = [a for a in args.only.split(",") if a]
    summary = []
    for arch, module in ARCHITECTURES.items():
        if only and arch not in only:
            continue
        for full in ([False] if args.small_only else [False, True]):
            for label, kwargs in VARIANTS[arch][: 1 if full and args.first_variant else None]:
                summary.append((arch, full, run_one(arch, module, label, kwargs, full,
                                                    not args.no_trace)))
    print("\n== summary (seconds: build / checker / session create / warm run at batch 2)")
    for arch, full, r in summary:
        print(f"    {arch:13s} {'full ' if full else 'small'} params {r['params'] / 1e6:9.3f}M  "
              f"{r['build']:6.2f} / {r['check']:6.2f} / {r['load']:6.2f} / {r['run']:7.3f}")
    if FAILURES:
        print(f"\n{len(FAILURES)} FAILURES:\n  " + "\n  ".join(FAILURES))
        sys.exit(1)
    print("\nall models OK")


if __name__ == "__main__":
    main()
