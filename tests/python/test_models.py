"""The six architectures of the foundation issue, built at test time with random weights the way
PyTorch's exporter writes them (tests/python/models), run through Kiln's TensorRT-style API on the CPU
and compared with ONNX Runtime. Full-size models; a table is printed at the end (pytest -s)."""
import time

import numpy as np
import pytest

from kiln_helpers import build_engine, ort_run, run_engine
from models import bert, efficientnet, gpt2, mobilenet, resnet, vit

RESULTS = []

CASES = {
    # name: (builder, kwargs, dynamic-shape profile or None, inputs kwargs)
    "resnet50": (resnet.build, dict(fold_bn=False), None, {}),
    "resnet50-folded-bn-dynamic-batch": (resnet.build, dict(batch="batch"),
                                         {"input": ((1, 3, 224, 224), (2, 3, 224, 224), (2, 3, 224, 224))},
                                         dict(batch=2)),
    "mobilenetv2": (mobilenet.build, {}, None, {}),
    "efficientnet-b0": (efficientnet.build, {}, None, {}),
    "vit-b16": (vit.build, {}, None, {}),
    "bert-base": (bert.build, dict(batch="batch", seq="seq"), "tokens", dict(batch=2, seq=128)),
    "gpt2": (gpt2.build, {}, None, {}),
}

SAMPLERS = {"resnet50": resnet, "resnet50-folded-bn-dynamic-batch": resnet, "mobilenetv2": mobilenet,
            "efficientnet-b0": efficientnet, "vit-b16": vit, "bert-base": bert, "gpt2": gpt2}


@pytest.mark.parametrize("name", list(CASES))
def test_model_matches_onnxruntime(name):
    build, kwargs, profile, in_kwargs = CASES[name]
    model = build(full=True, seed=0, **kwargs)
    data = model.SerializeToString()
    inputs = SAMPLERS[name].sample_inputs(model, seed=1, **in_kwargs)
    if profile == "tokens":
        profile = {k: ((1, 1), v.shape, (4, 128)) for k, v in inputs.items()}
    t0 = time.perf_counter()
    engine = build_engine(data, shapes=profile)
    t1 = time.perf_counter()
    got = run_engine(engine, inputs)
    t2 = time.perf_counter()
    ref = ort_run(data, inputs)
    worst = 0.0
    for out_name, r in ref.items():
        g = got[out_name]
        assert g.shape == r.shape, f"{out_name}: {g.shape} vs {r.shape}"
        assert np.isfinite(g).all(), f"{out_name}: non-finite values"
        scale = max(float(np.max(np.abs(r))), 1e-6)
        err = float(np.max(np.abs(g.astype(np.float64) - r))) / scale
        l2 = float(np.linalg.norm(g.astype(np.float64) - r) / max(np.linalg.norm(r), 1e-12))
        worst = max(worst, err)
        assert l2 < 1e-4 and err < 1e-3, f"{name}/{out_name}: relative L2 {l2:.2e}, max error / max|ref| {err:.2e}"
    RESULTS.append((name, engine.num_layers, t1 - t0, t2 - t1, worst))


def teardown_module(module):
    if RESULTS:
        print("\nmodel                              layers  build s  run s  max err/max|ref|")
        for name, layers, tb, tr, err in RESULTS:
            print(f"{name:34s} {layers:6d} {tb:8.2f} {tr:6.2f}  {err:.2e}")
