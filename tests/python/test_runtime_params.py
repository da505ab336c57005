"""Run-time op parameters and data-dependent shapes, through the TensorRT-style API, against ONNX Runtime.

Parameters TensorRT needs as build-time constants in older versions (TopK k, Pad pads, Resize scales, Reshape
shape, Reduce/Squeeze/Unsqueeze axes, ...) are fed here as graph inputs: the engine reads them from host
memory at run time (engine.is_shape_inference_io) and output shapes follow their values. Outputs whose sizes
depend on data (NonZero, Unique, Compress, NonMaxSuppression) come back through an IOutputAllocator."""
import os
import sys

import numpy as np
import pytest
from onnx import helper

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import kiln as trt  # noqa: E402
from kiln_helpers import CapturingLogger, assert_close, build_engine, ort_run  # noqa: E402
from test_onnx_import import make_model, rnd  # noqa: E402

import onnxruntime  # noqa: F401,E402 - the reference; scripts/setup.sh installs it
RNG = np.random.default_rng(77)


class NumpyAllocator(trt.IOutputAllocator):
    """A user allocator as TensorRT 10 scripts write them: grows a numpy buffer, records the shape."""

    def __init__(self, dtype):
        trt.IOutputAllocator.__init__(self)
        self.dtype = np.dtype(dtype)
        self.buffer = np.empty(1, self.dtype)
        self.shape = None
        self.sizes = []

    def reallocate_output(self, tensor_name, memory, size, alignment):
        self.sizes.append(size)
        n = max(1, size // self.dtype.itemsize)
        if self.buffer.size < n:
            self.buffer = np.empty(n, self.dtype)
        return self.buffer.ctypes.data

    def notify_shape(self, tensor_name, shape):
        self.shape = tuple(shape)

    def array(self):
        return self.buffer[:int(np.prod(self.shape, dtype=np.int64))].reshape(self.shape)


def run(engine, inputs, context=None):
    """Sets inputs (shape tensors included, from host memory), sizes known outputs up front and gives the
    others an allocator; returns ({name: array}, context)."""
    ctx = context or engine.create_execution_context()
    keep, outs, allocs = [], {}, {}
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    for name in names:
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            a = np.array(inputs[name], dtype=trt.nptype(engine.get_tensor_dtype(name)), order="C")  # keeps 0-d
            assert ctx.set_input_shape(name, a.shape)
            ctx.set_tensor_address(name, a.ctypes.data)
            keep.append(a)
    for name in names:
        if engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
            continue
        shape = tuple(ctx.get_tensor_shape(name))
        dtype = trt.nptype(engine.get_tensor_dtype(name))
        if any(d < 0 for d in shape):
            allocs[name] = NumpyAllocator(dtype)
            assert ctx.set_output_allocator(name, allocs[name])
        else:
            outs[name] = np.full(shape, 0, dtype=dtype)
            ctx.set_tensor_address(name, outs[name].ctypes.data)
    assert ctx.execute_async_v3(0)
    for name, a in allocs.items():
        outs[name] = a.array().copy()
        assert tuple(ctx.get_tensor_shape(name)) == a.shape  # the real shape after execution
    return outs, ctx


def check(model, inputs, shape_inputs=(), rtol=1e-5, atol=1e-5):
    data = model.SerializeToString()
    engine = build_engine(data)
    for name in shape_inputs:
        assert engine.is_shape_inference_io(name), name
    for name in inputs:
        if name not in shape_inputs:
            assert not engine.is_shape_inference_io(name), name
    got, _ = run(engine, inputs)
    ref = ort_run(data, inputs)
    for name, r in ref.items():
        assert_close(got[name], r, rtol=rtol, atol=atol, what=name)
    return engine


# ---- run-time parameters (shape tensors) --------------------------------------------------------------
def test_reshape_shape_input():
    x = rnd(2, 3, 4)
    m = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])], {"x": x, "s": np.array([4, -1, 3], np.int64)}, ["y"])
    check(m, {"x": x, "s": np.array([4, -1, 3], np.int64)}, ["s"])


def test_topk_k_input_changes_between_runs():
    x = rnd(3, 7)
    m = make_model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)], {"x": x, "k": np.array([2], np.int64)},
                   ["v", "i"], opset=11)
    data = m.SerializeToString()
    engine = build_engine(data)
    assert engine.is_shape_inference_io("k") and not engine.is_shape_inference_io("x")
    assert engine.is_shape_binding(engine["k"])
    ctx = None
    for k in (2, 5, 1):  # same input shapes, new k: the context re-plans
        feeds = {"x": x, "k": np.array([k], np.int64)}
        got, ctx = run(engine, feeds, ctx)
        ref = ort_run(data, feeds)
        assert got["v"].shape == (3, k)
        assert_close(got["v"], ref["v"], what="values")
        assert_close(got["i"], ref["i"], what="indices")


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_pads_input(mode):
    x = rnd(2, 5, 6)
    pads = np.array([0, 1, 2, 0, 2, 1], np.int64)
    m = make_model([helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)], {"x": x, "p": pads}, ["y"])
    check(m, {"x": x, "p": pads}, ["p"])


def test_resize_scales_input():
    x = rnd(1, 2, 4, 5)
    scales = np.array([1, 1, 2, 1.5], np.float32)
    node = helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="linear")
    check(make_model([node], {"x": x, "sc": scales}, ["y"]), {"x": x, "sc": scales}, ["sc"])


def test_resize_sizes_input_with_axes():
    x = rnd(1, 2, 4, 5)
    sizes = np.array([7, 3], np.int64)
    node = helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="nearest", axes=[3, 2])
    check(make_model([node], {"x": x, "sz": sizes}, ["y"], opset=18), {"x": x, "sz": sizes}, ["sz"])


def test_tile_expand_range_constant_of_shape():
    x = rnd(2, 3)
    feeds = {"x": x, "reps": np.array([2, 3], np.int64), "shape": np.array([4, 2, 3], np.int64),
             "lim": np.array(7.5, np.float32), "cs": np.array([3, 2], np.int64)}
    nodes = [helper.make_node("Tile", ["x", "reps"], ["t"]),
             helper.make_node("Expand", ["x", "shape"], ["e"]),
             helper.make_node("Range", ["start", "lim", "delta"], ["r"]),
             helper.make_node("ConstantOfShape", ["cs"], ["c"],
                              value=helper.make_tensor("v", 1, [1], [2.5]))]
    m = make_model(nodes, feeds, ["t", "e", "r", "c"],
                   inits={"start": np.array(0.5, np.float32), "delta": np.array(1.5, np.float32)})
    check(m, feeds, ["reps", "shape", "lim", "cs"])


def test_slice_and_split_inputs():
    x = rnd(6, 8)
    feeds = {"x": x, "st": np.array([1, -7], np.int64), "en": np.array([5, 100], np.int64),
             "ax": np.array([0, 1], np.int64), "sp": np.array([2, 3], np.int64), "parts": np.array([1, 5], np.int64)}
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
             helper.make_node("Split", ["x", "parts"], ["a", "b"], axis=0)]
    check(make_model(nodes, feeds, ["s", "a", "b"]), feeds, ["st", "en", "ax", "sp", "parts"])


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2", "ReduceLogSumExp"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_input(op, keepdims):
    x = rnd(3, 4, 5)
    axes = np.array([0, -1], np.int64)
    m = make_model([helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)], {"x": x, "axes": axes}, ["y"],
                   opset=18)
    check(m, {"x": x, "axes": axes}, ["axes"])


def test_reduce_empty_axes_input_noop():
    x = rnd(3, 4)
    axes = np.array([], np.int64)
    node = helper.make_node("ReduceSumSquare", ["x", "axes"], ["y"], noop_with_empty_axes=1)
    check(make_model([node], {"x": x, "axes": axes}, ["y"], opset=18), {"x": x, "axes": axes}, ["axes"])


def test_squeeze_unsqueeze_axes_inputs():
    x = rnd(3, 1, 4, 1)
    feeds = {"x": x, "sq": np.array([1, -1], np.int64), "un": np.array([0, 3], np.int64)}
    nodes = [helper.make_node("Squeeze", ["x", "sq"], ["s"]), helper.make_node("Unsqueeze", ["s", "un"], ["u"])]
    check(make_model(nodes, feeds, ["u"]), feeds, ["sq", "un"])


def test_shape_input_errors_are_reported_not_crashes():
    x = rnd(2, 3)
    m = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])], {"x": x, "s": np.array([3, 2], np.int64)}, ["y"])
    logger = CapturingLogger()
    engine = build_engine(m.SerializeToString(), logger=logger)
    ctx = engine.create_execution_context()
    s = np.array([4, 2], np.int64)  # 6 elements cannot become [4, 2]
    ctx.set_input_shape("x", x.shape)
    ctx.set_input_shape("s", s.shape)
    ctx.set_tensor_address("x", x.ctypes.data)
    ctx.set_tensor_address("s", s.ctypes.data)
    y = np.empty(8, np.float32)
    ctx.set_tensor_address("y", y.ctypes.data)
    assert not ctx.execute_async_v3(0)
    assert any("cannot reshape" in m for m in logger.errors())


# ---- data-dependent output shapes ---------------------------------------------------------------------
def test_nonzero_output_allocator_flow():
    x = rnd(4, 5) * (RNG.random((4, 5)) > 0.4)
    m = make_model([helper.make_node("NonZero", ["x"], ["y"])], {"x": x}, ["y"])
    engine = build_engine(m.SerializeToString())
    assert tuple(engine.get_tensor_shape("y")) == (2, -1)
    ctx = engine.create_execution_context()
    ctx.set_input_shape("x", x.shape)
    ctx.set_tensor_address("x", x.ctypes.data)
    assert tuple(ctx.get_tensor_shape("y")) == (2, -1)  # unknown before running
    alloc = NumpyAllocator(np.int64)
    assert ctx.set_output_allocator("y", alloc)
    assert ctx.get_output_allocator("y") is alloc
    assert ctx.execute_async_v3(0)
    want = np.array(np.nonzero(x), np.int64)
    assert alloc.shape == want.shape and alloc.sizes[-1] == want.nbytes
    assert tuple(ctx.get_tensor_shape("y")) == want.shape
    np.testing.assert_array_equal(alloc.array(), want)
    assert ctx.set_output_allocator("y", None) and ctx.get_output_allocator("y") is None
    assert not ctx.execute_async_v3(0)  # a data-dependent output needs an allocator


def test_nonzero_feeds_later_layers():
    x = rnd(3, 6) * (RNG.random((3, 6)) > 0.5)
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]),
             helper.make_node("Transpose", ["nz"], ["t"], perm=[1, 0]),
             helper.make_node("GatherND", ["x", "t"], ["vals"]),
             helper.make_node("ReduceSum", ["vals"], ["total"], keepdims=0)]
    check(make_model(nodes, {"x": x}, ["vals", "total"]), {"x": x})


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_unique_vs_onnxruntime(axis):
    x = RNG.integers(-2, 3, size=(4, 3)).astype(np.float32)
    x[2] = x[0]  # a repeated row
    kw = {} if axis is None else {"axis": axis}
    node = helper.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], sorted=1, **kw)
    check(make_model([node], {"x": x}, ["y", "idx", "inv", "cnt"], opset=11), {"x": x})


def test_compress_vs_onnxruntime():
    x = rnd(3, 4)
    cond = np.array([True, False, True], np.bool_)
    nodes = [helper.make_node("Compress", ["x", "c"], ["y"], axis=0), helper.make_node("Compress", ["x", "c"], ["z"])]
    check(make_model(nodes, {"x": x, "c": cond}, ["y", "z"], opset=11), {"x": x, "c": cond})


def test_nms_vs_onnxruntime():
    boxes = RNG.uniform(0, 4, size=(2, 10, 4)).astype(np.float32)
    scores = RNG.uniform(0, 1, size=(2, 3, 10)).astype(np.float32)
    inits = {"mo": np.array([3], np.int64), "iou": np.array([0.4], np.float32), "st": np.array([0.2], np.float32)}
    node = helper.make_node("NonMaxSuppression", ["b", "s", "mo", "iou", "st"], ["sel"])
    check(make_model([node], {"b": boxes, "s": scores}, ["sel"], inits=inits, opset=11), {"b": boxes, "s": scores})


def test_profile_shape_input_ranges_are_checked_and_kept():
    """TensorRT scripts give shape-tensor inputs value ranges with set_shape_input; Kiln checks and keeps them
    (the values are read at run time) and the engine runs with values inside them."""
    x = rnd(2, 3, 4)
    m = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])], {"x": x, "s": np.array([4, -1, 3], np.int64)}, ["y"])
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    net = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    assert trt.OnnxParser(net, logger).parse(m.SerializeToString())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (2, 3, 4), (2, 3, 4), (2, 3, 4))
    profile.set_shape("s", (3,), (3,), (3,))
    profile.set_shape_input("s", (1, -1, 1), (4, -1, 3), (24, -1, 12))
    assert profile.get_shape_input("s") == [[1, -1, 1], [4, -1, 3], [24, -1, 12]]
    assert profile.get_shape_input("x") == []
    with pytest.raises(ValueError, match="min <= opt <= max"):
        profile.set_shape_input("s", (4, -1, 3), (1, -1, 1), (24, -1, 12))
    with pytest.raises(ValueError, match="one length"):
        profile.set_shape_input("s", (1,), (1, 2), (1, 2, 3))
    config.add_optimization_profile(profile)
    engine = trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(net, config))
    assert engine.is_shape_inference_io("s")
    got, _ = run(engine, {"x": x, "s": np.array([4, -1, 3], np.int64)})
    np.testing.assert_array_equal(got["y"], x.reshape(4, -1, 3))
