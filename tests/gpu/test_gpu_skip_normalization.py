"""KILN_EXPERIMENT_SKIP_NORMALIZATION=1 (kernels/normalization.cu): a timing experiment in which a context launches
no normalization kernel, so its outputs are wrong by design. Read once per context, on its first run: a context
made with the switch skips, one made without it (on the same engine, before or after) stays right. The bench's
A/B shares the engine on that basis (bench/gpu_bench.py, RUN_TIME_SWITCHES)."""
import numpy as np
from onnx import TensorProto, helper

from gpu_helpers import build, rel_l2, run_torch

TOKENS, HIDDEN = 128, 768


def _layernorm_model():
    rng = np.random.default_rng(5)
    g = (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
    b = (0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5)], "ln",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, TOKENS, HIDDEN])],
        [helper.make_tensor("g", TensorProto.FLOAT, [HIDDEN], g), helper.make_tensor("b", TensorProto.FLOAT, [HIDDEN], b)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), g, b


def _reference(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def test_a_context_made_with_the_switch_skips_and_the_others_stay_right(monkeypatch):
    model, g, b = _layernorm_model()
    engine, _ = build(model, fp16=True)
    x = np.random.default_rng(6).standard_normal((1, TOKENS, HIDDEN)).astype(np.float32)
    ref = _reference(x, g, b)
    monkeypatch.delenv("KILN_EXPERIMENT_SKIP_NORMALIZATION", raising=False)
    right = engine.create_execution_context()
    assert rel_l2(run_torch(engine, {"x": x}, right)["y"], ref) < 1e-2
    monkeypatch.setenv("KILN_EXPERIMENT_SKIP_NORMALIZATION", "1")
    skipping = engine.create_execution_context()
    y = run_torch(engine, {"x": x}, skipping)["y"]
    assert not (np.isfinite(y).all() and rel_l2(y, ref) < 0.5), "the switch launched the normalization anyway"
    assert rel_l2(run_torch(engine, {"x": x}, right)["y"], ref) < 1e-2, "the switch reached a context made before it"
    monkeypatch.delenv("KILN_EXPERIMENT_SKIP_NORMALIZATION")
    y = run_torch(engine, {"x": x}, skipping)["y"]
    assert not (np.isfinite(y).all() and rel_l2(y, ref) < 0.5), "the context read the switch again"
