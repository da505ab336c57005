"""Block views on CPU engines: ONNX Gather/Split/Slice layers that take a contiguous, 256-byte aligned block
of a tensor (ViT's q, k, v from one packed projection) run no kernel, their outputs alias the block, and the
results match numpy, for views of views, views that are network outputs and views of network inputs; picks
that are not such a block keep their kernels and give the same results. (The builder folds picks of
constants into constants; tests/unit/runtime/test_static_plan_block_views.cpp covers views of constants.)"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import kiln as trt
from kiln_helpers import build_engine, run_engine


class _Profile(trt.IProfiler):
    def __init__(self):
        super().__init__()

    def report_layer_time(self, layer_name, ms):
        pass


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(
        nodes, "block_views",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _i64(name, values, scalar=False):
    a = np.array(values, dtype=np.int64)
    return numpy_helper.from_array(a.reshape(()) if scalar else a, name)


def _run(model, inputs):
    """Outputs by name and the ops of the layers that ran (the profile lists steps, never views)."""
    engine = build_engine(model)
    ctx = engine.create_execution_context()
    ctx.profiler = _Profile()
    outs = run_engine(engine, inputs, context=ctx)
    return outs, [row["op"] for row in ctx.last_profile()]


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


B, S, H, D = 2, 4, 2, 32  # each of q, k, v: B*H*S*D floats = 2 KiB


def _packed_attention(pick):
    """x [B, S, 3*H*D] -> [3, B, H, S, D] (Reshape, Transpose) -> q, k, v by `pick` -> softmax(q k^T) v."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape5"], ["x5"]),
        helper.make_node("Transpose", ["x5"], ["qkv"], perm=[2, 0, 3, 1, 4]),
        *pick,
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["y"]),
    ]
    return nodes, [_i64("shape5", [B, S, 3, H, D])]


def _packed_reference(x):
    qkv = x.reshape(B, S, 3, H, D).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    return _softmax(q @ k.transpose(0, 1, 3, 2)) @ v


def test_gathers_of_a_packed_projection_run_no_kernel():
    pick = [helper.make_node("Gather", ["qkv", f"i{j}"], [name], axis=0) for j, name in enumerate("qkv")]
    nodes, inits = _packed_attention(pick)
    inits += [_i64("i0", 0, scalar=True), _i64("i1", 1, scalar=True), _i64("i2", -1, scalar=True)]
    x = np.random.default_rng(0).standard_normal((B, S, 3 * H * D)).astype(np.float32)
    outs, ops = _run(_model(nodes, [("x", [B, S, 3 * H * D])], ["y"], inits), {"x": x})
    np.testing.assert_allclose(outs["y"], _packed_reference(x), rtol=1e-5, atol=1e-6)
    assert "Gather" not in ops, ops


def test_split_and_onnx_slices_of_a_packed_projection_run_no_kernel():
    # Split into three [1, B, H, S, D] then Squeeze (a reshape view of a block view) for q and k; v by Slice
    # of the last slab then Squeeze.
    pick = [
        helper.make_node("Split", ["qkv"], ["q1", "k1", "unused"], axis=0),
        helper.make_node("Squeeze", ["q1", "axis0"], ["q"]),
        helper.make_node("Squeeze", ["k1", "axis0"], ["k"]),
        helper.make_node("Slice", ["qkv", "start2", "end3", "axis0"], ["v1"]),
        helper.make_node("Squeeze", ["v1", "axis0"], ["v"]),
    ]
    nodes, inits = _packed_attention(pick)
    inits += [_i64("axis0", [0]), _i64("start2", [2]), _i64("end3", [3])]
    x = np.random.default_rng(1).standard_normal((B, S, 3 * H * D)).astype(np.float32)
    outs, ops = _run(_model(nodes, [("x", [B, S, 3 * H * D])], ["y"], inits), {"x": x})
    np.testing.assert_allclose(outs["y"], _packed_reference(x), rtol=1e-5, atol=1e-6)
    assert "Split" not in ops and "DynamicSlice" not in ops, ops


def test_views_of_inputs_constants_views_and_outputs_match_numpy():
    rng = np.random.default_rng(2)
    c = rng.standard_normal((4, 3, 128)).astype(np.float32)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        # A view of a view: rows 1..3 of a (byte 1536), then entry 1 of those (1536 more): a's row 2.
        helper.make_node("Slice", ["a", "start1", "end4", "axis0"], ["a13"]),
        helper.make_node("Gather", ["a13", "one"], ["a2"], axis=0),
        helper.make_node("Neg", ["a2"], ["neg_a2"]),
        # A block view that is itself a network output (copied out of a's storage).
        helper.make_node("Gather", ["a", "three"], ["a3"], axis=0),
        # A view of the network input, read by a layer and a network output too.
        helper.make_node("Gather", ["x", "zero"], ["x0"], axis=0),
        helper.make_node("Add", ["x0", "a2"], ["x0_plus_a2"]),
        # A pick of a constant: folded by the builder, read by a layer and a network output.
        helper.make_node("Gather", ["c", "minus_one"], ["c3"], axis=0),
        helper.make_node("Mul", ["c3", "a3"], ["c3_times_a3"]),
        # Picks that are not aligned blocks keep their kernels: a column range, a strided slice.
        helper.make_node("Slice", ["a", "start1", "end4", "axis2"], ["cols"]),
        helper.make_node("Slice", ["a", "zero1", "end4", "axis0", "two"], ["every_other"]),
    ]
    inits = [_i64("start1", [1]), _i64("end4", [4]), _i64("axis0", [0]), _i64("axis2", [2]),
             _i64("zero1", [0]), _i64("two", [2]), _i64("one", 1, scalar=True), _i64("three", 3, scalar=True),
             _i64("zero", 0, scalar=True), _i64("minus_one", -1, scalar=True), numpy_helper.from_array(c, "c")]
    outputs = ["neg_a2", "a3", "x0", "x0_plus_a2", "c3", "c3_times_a3", "cols", "every_other"]
    x = rng.standard_normal((4, 3, 128)).astype(np.float32)
    x_before = x.copy()
    outs, ops = _run(_model(nodes, [("x", [4, 3, 128])], outputs, inits), {"x": x})
    a = np.maximum(x, 0)
    expected = {
        "neg_a2": -a[2], "a3": a[3], "x0": x[0], "x0_plus_a2": x[0] + a[2], "c3": c[3], "c3_times_a3": c[3] * a[3],
        "cols": a[:, :, 1:4], "every_other": a[0:4:2],
    }
    for name, ref in expected.items():
        np.testing.assert_array_equal(outs[name], ref, err_msg=name)
    np.testing.assert_array_equal(x, x_before)  # views of the input only read it
    assert "Gather" not in ops, ops
    assert ops.count("DynamicSlice") == 2, ops  # the column range and the strided slice
