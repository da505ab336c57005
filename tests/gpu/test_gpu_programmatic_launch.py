"""Programmatic dependent launch (src/backends/cuda/programmatic_launch.h) in a replayed CUDA graph, on three
chains of Kiln's kernels, each run several times on different inputs:
- a classifier's tail: a 3x3 stride-2 convolution on Kiln's split-K kernel, the global average pool on the
  column-split reduce, which lets the next kernel start early, and the fully connected layer on Kiln's small-M
  kernel, which loads its weights before it waits for the pool;
- a stem: space-to-depth, which lets the stem convolution start as it starts; the stem convolution on the
  narrow-input kernel, which copies its filters before it waits; the 3x3 max pool; then two convolutions on
  the split-K kernel, each letting the next start once its own wait is over;
- a transformer's MLP block: LayerNorm (launched programmatically, letting the next start as it starts), GEMMs
  on the split-K kernel with erf-GELU and the residual, LayerNorm, one more GEMM.
A kernel that read its input before the kernel writing it had finished would give the previous run's answer
or a mix: each run must match its own float32 reference, and match bit for bit the same engine's run with
KILN_PDL=0."""
import numpy as np
import pytest

from gpu_helpers import build, rel_l2

C, K, CLASSES = 512, 512, 1000


def _model():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((K, C, 3, 3)) * 0.02).astype(np.float32)
    b = (rng.standard_normal(K) * 0.1).astype(np.float32)
    fw = (rng.standard_normal((CLASSES, K)) * 0.05).astype(np.float32)
    fb = (rng.standard_normal(CLASSES) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fw, "fw"), (fb, "fb"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), (w, b, fw, fb)


def _reference(x, params):
    import torch
    w, b, fw, fb = (torch.from_numpy(a).double() for a in params)
    c = torch.nn.functional.conv2d(torch.from_numpy(x).double(), w, b, stride=2, padding=1).relu()
    return (c.mean(dim=(2, 3)) @ fw.T + fb).numpy()


def _runs(engine, inputs, out_shape):
    """Each input through one context (its first run eager, the rest graph replays): the outputs in order."""
    import torch
    ctx = engine.create_execution_context()
    stream = torch.cuda.Stream()
    x = torch.empty(inputs[0].shape, dtype=torch.float32, device="cuda")
    y = torch.empty(out_shape, dtype=torch.float32, device="cuda")
    assert ctx.set_input_shape("x", tuple(x.shape))
    ctx.set_tensor_address("x", x.data_ptr())
    ctx.set_tensor_address("y", y.data_ptr())
    outs = []
    for a in inputs:
        x.copy_(torch.from_numpy(a))
        y.fill_(float("nan"))
        torch.cuda.synchronize()
        assert ctx.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        outs.append(y.cpu().numpy().copy())
    return outs


def _check(inputs, with_pdl, without, reference):
    """Each run within 1e-2 of its own float32 reference, and bit-identical to the run with KILN_PDL=0."""
    for i, (a, p, q) in enumerate(zip(inputs, with_pdl, without)):
        ref = reference(a)
        assert np.isfinite(p).all(), f"run {i}: unwritten outputs"
        assert rel_l2(p, ref) < 1e-2, f"run {i}: {rel_l2(p, ref):.2e} from float32"
        np.testing.assert_array_equal(p, q, err_msg=f"run {i}: KILN_PDL=0 differs")


def test_classifier_tail_replays_match_with_and_without_programmatic_launch(monkeypatch):
    # Kiln's kernels forced, so the chain is theirs whatever the timings say on this GPU.
    monkeypatch.setenv("KILN_CONV_SPLITK", "force")
    monkeypatch.setenv("KILN_GEMM_SMALL_M", "force")
    model, params = _model()
    engine, _ = build(model, fp16=True)
    rng = np.random.default_rng(11)
    # Inputs far apart (scales 1, 4, 0.25, ...): a stale or half-read input would show.
    inputs = [(rng.standard_normal((1, C, 14, 14)) * s).astype(np.float32) for s in (1, 4, 0.25, 2, 1, 0.5)]
    with_pdl = _runs(engine, inputs, (1, CLASSES))
    monkeypatch.setenv("KILN_PDL", "0")
    without = _runs(engine, inputs, (1, CLASSES))
    _check(inputs, with_pdl, without, lambda a: _reference(a, params))


STEM_IN, STEM_K, STEM_OUT = 3, 64, 128


def _stem_model():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(5)
    w0 = (rng.standard_normal((STEM_K, STEM_IN, 7, 7)) * 0.1).astype(np.float32)
    b0 = (rng.standard_normal(STEM_K) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((STEM_K, STEM_K, 3, 3)) * 0.05).astype(np.float32)
    b1 = (rng.standard_normal(STEM_K) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((STEM_OUT, STEM_K, 1, 1)) * 0.1).astype(np.float32)
    b2 = (rng.standard_normal(STEM_OUT) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[7, 7], pads=[3, 3, 3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("MaxPool", ["r0"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], kernel_shape=[1, 1]),
    ]
    params = (w0, b0, w1, b1, w2, b2)
    graph = helper.make_graph(
        nodes, "stem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, STEM_IN, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, STEM_OUT, 16, 16])],
        [numpy_helper.from_array(a, n) for a, n in zip(params, ("w0", "b0", "w1", "b1", "w2", "b2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), params


def _stem_reference(x, params):
    import torch
    w0, b0, w1, b1, w2, b2 = (torch.from_numpy(a).double() for a in params)
    F = torch.nn.functional
    c = F.conv2d(torch.from_numpy(x).double(), w0, b0, stride=2, padding=3).relu()
    c = F.max_pool2d(c, 3, stride=2, padding=1)
    c = F.conv2d(c, w1, b1, padding=1).relu()
    return F.conv2d(c, w2, b2).numpy()


def test_stem_chain_replays_match_with_and_without_programmatic_launch(monkeypatch, capfd):
    # Kiln's kernels forced; the convolution log says which each convolution took, so the chain is known.
    monkeypatch.setenv("KILN_CONV_NARROW", "force")
    monkeypatch.setenv("KILN_CONV_SPLITK", "force")
    monkeypatch.setenv("KILN_CUDNN_GRAPH_LOG", "1")
    model, params = _stem_model()
    engine, _ = build(model, fp16=True)
    rng = np.random.default_rng(13)
    inputs = [(rng.standard_normal((1, STEM_IN, 64, 64)) * s).astype(np.float32) for s in (1, 4, 0.25, 2, 1, 0.5)]
    capfd.readouterr()
    with_pdl = _runs(engine, inputs, (1, STEM_OUT, 16, 16))
    log = capfd.readouterr().err
    assert log.count("narrow-input kernel (KILN_CONV_NARROW=force)") == 1, log
    assert log.count("split-K kernel x") == 2, log
    monkeypatch.setenv("KILN_PDL", "0")
    without = _runs(engine, inputs, (1, STEM_OUT, 16, 16))
    _check(inputs, with_pdl, without, lambda a: _stem_reference(a, params))


TOKENS, HIDDEN, FF = 197, 256, 1024


def _block_model():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(17)
    g1 = (1 + rng.standard_normal(HIDDEN) * 0.1).astype(np.float32)
    be1 = (rng.standard_normal(HIDDEN) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((HIDDEN, FF)) * 0.05).astype(np.float32)
    b1 = (rng.standard_normal(FF) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((FF, HIDDEN)) * 0.03).astype(np.float32)
    b2 = (rng.standard_normal(HIDDEN) * 0.1).astype(np.float32)
    g2 = (1 + rng.standard_normal(HIDDEN) * 0.1).astype(np.float32)
    be2 = (rng.standard_normal(HIDDEN) * 0.1).astype(np.float32)
    w3 = (rng.standard_normal((HIDDEN, HIDDEN)) * 0.05).astype(np.float32)
    half = np.array(0.5, np.float32)
    one = np.array(1.0, np.float32)
    rsqrt2 = np.array(1 / np.sqrt(2), np.float32)
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g1", "be1"], ["n1"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["n1", "w1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["h"]),
        # erf-GELU as exported models write it (the passes make it one activation the GEMM takes)
        helper.make_node("Mul", ["h", "rsqrt2"], ["hs"]),
        helper.make_node("Erf", ["hs"], ["he"]),
        helper.make_node("Add", ["he", "one"], ["he1"]),
        helper.make_node("Mul", ["h", "he1"], ["hm"]),
        helper.make_node("Mul", ["hm", "half"], ["a"]),
        helper.make_node("MatMul", ["a", "w2"], ["m2"]),
        helper.make_node("Add", ["m2", "b2"], ["o2"]),
        helper.make_node("Add", ["o2", "x"], ["r"]),
        helper.make_node("LayerNormalization", ["r", "g2", "be2"], ["n2"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["n2", "w3"], ["y"]),
    ]
    params = (g1, be1, w1, b1, w2, b2, g2, be2, w3)
    names = ("g1", "be1", "w1", "b1", "w2", "b2", "g2", "be2", "w3")
    inits = [numpy_helper.from_array(a, n) for a, n in zip(params, names)]
    inits += [numpy_helper.from_array(a, n) for a, n in ((half, "half"), (one, "one"), (rsqrt2, "rsqrt2"))]
    graph = helper.make_graph(
        nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, TOKENS, HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), params


def _block_reference(x, params):
    import torch
    g1, be1, w1, b1, w2, b2, g2, be2, w3 = (torch.from_numpy(a).double() for a in params)
    F = torch.nn.functional
    t = torch.from_numpy(x).double()
    h = F.gelu(F.layer_norm(t, (HIDDEN,), g1, be1, 1e-5) @ w1 + b1)
    r = h @ w2 + b2 + t
    return (F.layer_norm(r, (HIDDEN,), g2, be2, 1e-5) @ w3).numpy()


@pytest.mark.parametrize("tile", ["64x32", "64x64", "128x64"])
def test_transformer_block_replays_match_with_and_without_programmatic_launch(monkeypatch, capfd, tile):
    # A transformer's MLP at batch 1 (ViT's 197 tokens: a partial last tile of rows): LayerNorm, which starts
    # beside the kernel before it and lets the next start at once; three GEMMs on Kiln's split-K kernel (forced,
    # on each of its tiles; the first with erf-GELU, the second with the residual), each loading its weights
    # before it waits.
    monkeypatch.setenv("KILN_GEMM_SPLITK", "force")
    monkeypatch.setenv("KILN_GEMM_SPLITK_TILE", tile)
    monkeypatch.setenv("KILN_GEMM_LOG", "1")
    model, params = _block_model()
    engine, _ = build(model, fp16=True)
    rng = np.random.default_rng(19)
    inputs = [(rng.standard_normal((1, TOKENS, HIDDEN)) * s).astype(np.float32) for s in (1, 4, 0.25, 2, 1, 0.5)]
    capfd.readouterr()
    with_pdl = _runs(engine, inputs, (1, TOKENS, HIDDEN))
    log = capfd.readouterr().err
    assert log.count(f"-> split-K kernel {tile} x") == 3 and log.count("KILN_GEMM_SPLITK=force") == 3, log
    monkeypatch.setenv("KILN_PDL", "0")
    without = _runs(engine, inputs, (1, TOKENS, HIDDEN))
    _check(inputs, with_pdl, without, lambda a: _block_reference(a, params))
