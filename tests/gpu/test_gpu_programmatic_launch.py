"""Programmatic dependent launch (src/backends/cuda/programmatic_launch.h) in a replayed CUDA graph: a
classifier's tail (a 3x3 stride-2 convolution on Kiln's split-K kernel, the global average pool on the
column-split reduce, which lets the next kernel start early, and the fully connected layer on Kiln's small-M
kernel, which loads its weights before it waits for the pool) run several times on different inputs. A kernel
that read its input before the kernel writing it had finished would give the previous run's answer or a mix:
each run must match its own float32 reference, and match bit for bit the same engine's run with KILN_PDL=0."""
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


def _runs(engine, inputs):
    """Each input through one context (its first run eager, the rest graph replays): the outputs in order."""
    import torch
    ctx = engine.create_execution_context()
    stream = torch.cuda.Stream()
    x = torch.empty((1, C, 14, 14), dtype=torch.float32, device="cuda")
    y = torch.empty((1, CLASSES), dtype=torch.float32, device="cuda")
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


def test_classifier_tail_replays_match_with_and_without_programmatic_launch(monkeypatch):
    # Kiln's kernels forced, so the chain is theirs whatever the timings say on this GPU.
    monkeypatch.setenv("KILN_CONV_SPLITK", "force")
    monkeypatch.setenv("KILN_GEMM_SMALL_M", "force")
    model, params = _model()
    engine, _ = build(model, fp16=True)
    rng = np.random.default_rng(11)
    # Inputs far apart (scales 1, 4, 0.25, ...): a stale or half-read input would show.
    inputs = [(rng.standard_normal((1, C, 14, 14)) * s).astype(np.float32) for s in (1, 4, 0.25, 2, 1, 0.5)]
    with_pdl = _runs(engine, inputs)
    monkeypatch.setenv("KILN_PDL", "0")
    without = _runs(engine, inputs)
    for i, (a, p, q) in enumerate(zip(inputs, with_pdl, without)):
        ref = _reference(a, params)
        assert np.isfinite(p).all(), f"run {i}: unwritten outputs"
        assert rel_l2(p, ref) < 1e-2, f"run {i}: {rel_l2(p, ref):.2e} from float32"
        np.testing.assert_array_equal(p, q, err_msg=f"run {i}: KILN_PDL=0 differs")
