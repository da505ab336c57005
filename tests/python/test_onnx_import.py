"""ONNX importer tests: one small model per op (and per opset where the op's semantics changed), built with
onnx.helper, parsed by Kiln's OnnxParser, built and run through the TensorRT-style API and compared with
ONNX Runtime (CPUExecutionProvider): fp32 within rtol/atol 1e-5, integer and bool outputs exactly."""
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import kiln  # noqa: E402

import onnxruntime as ort  # scripts/setup.sh installs it: a missing one is an error, not a skip

RNG = np.random.default_rng(1234)
_NP2ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.float16): TensorProto.FLOAT16,
}


# ---- data --------------------------------------------------------------------------------------------
def rnd(*shape, lo=0.5, hi=2.0, signed=True):
    """Random float32 values with magnitude in [lo, hi) (never zero), random signs when `signed`."""
    a = RNG.uniform(lo, hi, size=shape).astype(np.float32)
    if signed:
        a *= RNG.choice(np.array([-1.0, 1.0], np.float32), size=shape)
    return a


def rint(*shape, lo=1, hi=10, dtype=np.int64, signed=True):
    a = RNG.integers(lo, hi, size=shape).astype(dtype)
    if signed:
        a *= RNG.choice(np.array([-1, 1], dtype), size=shape)
    return a


# ---- model building ----------------------------------------------------------------------------------
def make_model(nodes, inputs, outputs, inits=None, opset=13, dyn=None, extra_opsets=()):
    """nodes: NodeProtos; inputs: {name: array} (graph inputs, typed from the arrays); outputs: names;
    inits: {name: array} initializers; dyn: {input name: dims with None/str for dynamic dims}."""
    dyn = dyn or {}
    vis = []
    for name, a in inputs.items():
        dims = dyn.get(name, list(a.shape))
        dims = [f"{name}_d{i}" if d is None else d for i, d in enumerate(dims)]
        vis.append(helper.make_tensor_value_info(name, _NP2ONNX[a.dtype], dims))
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
    init = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(nodes, "test", vis, outs, init)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=ops)
    model.ir_version = 8 if opset <= 17 else (9 if opset <= 19 else 10)
    model = shape_inference.infer_shapes(model)
    return model


class Logger(kiln.ILogger):
    def __init__(self):
        kiln.ILogger.__init__(self)
        self.messages = []

    def log(self, severity, msg):
        self.messages.append((severity, msg))


def parse(model_bytes):
    logger = Logger()
    builder = kiln.Builder(logger)
    network = builder.create_network(0)
    parser = kiln.OnnxParser(network, logger)
    ok = parser.parse(model_bytes)
    return ok, parser, network, builder, logger


def parser_errors(parser):
    return [parser.get_error(i) for i in range(parser.num_errors)]


def build(model, profile=None):
    """Parses and builds `model`; profile: {input name: (min, opt, max)}. Returns (engine, logger)."""
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    ok, parser, network, builder, logger = parse(data)
    assert ok, "parse failed:\n" + "\n".join(str(e) for e in parser_errors(parser))
    config = builder.create_builder_config()
    if profile:
        p = builder.create_optimization_profile()
        for name, (mn, opt, mx) in profile.items():
            p.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(p)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "build failed:\n" + "\n".join(m for _, m in logger.messages)
    engine = kiln.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, "\n".join(m for _, m in logger.messages)
    return engine, logger


def run_kiln(engine, inputs, ctx=None):
    """Runs `engine` on {name: array}; returns {output name: array}."""
    ctx = ctx or engine.create_execution_context()
    keep, outs = [], {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == kiln.TensorIOMode.INPUT:
            a = np.array(inputs[name], dtype=kiln.nptype(engine.get_tensor_dtype(name)), order="C")
            assert ctx.set_input_shape(name, a.shape), f"set_input_shape({name}, {a.shape})"
            ctx.set_tensor_address(name, a.ctypes.data)
            keep.append(a)
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == kiln.TensorIOMode.OUTPUT:
            shape = tuple(ctx.get_tensor_shape(name))
            assert all(d >= 0 for d in shape), f"output {name} has unresolved shape {shape}"
            o = np.zeros(shape, dtype=kiln.nptype(engine.get_tensor_dtype(name)))
            if o.dtype.kind == "f":
                o.fill(np.nan)  # every element must be written
            ctx.set_tensor_address(name, o.ctypes.data)
            outs[name] = o
    assert ctx.execute_async_v3(0), "execute_async_v3 failed"
    return outs


def run_ort(model, inputs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs)))


def compare(got, ref, rtol=1e-5, atol=1e-5):
    for name, r in ref.items():
        assert name in got, f"output {name} missing from Kiln's engine (has {sorted(got)})"
        g = got[name]
        r = np.asarray(r)
        assert g.shape == r.shape, f"{name}: shape {g.shape}, ONNX Runtime {r.shape}"
        if r.dtype.kind == "f":
            assert g.dtype.kind == "f", f"{name}: dtype {g.dtype}, ONNX Runtime {r.dtype}"
            assert not np.isnan(g).any() or np.isnan(r).any(), f"{name}: NaN in Kiln's output"
            np.testing.assert_allclose(g.astype(np.float64), r.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=name, equal_nan=True)
        else:
            assert g.dtype == r.dtype, f"{name}: dtype {g.dtype}, ONNX Runtime {r.dtype}"
            np.testing.assert_array_equal(g, r, err_msg=name)


def check(nodes, inputs, outputs, inits=None, opset=13, dyn=None, profile=None, runs=None, rtol=1e-5, atol=1e-5):
    """Builds the model, runs Kiln and ONNX Runtime on `inputs` (and on each dict in `runs`), compares."""
    model = make_model(nodes, inputs, outputs, inits, opset, dyn)
    if dyn and profile is None:
        profile = {k: (v.shape, v.shape, v.shape) for k, v in inputs.items() if k in dyn}
    engine, _ = build(model, profile)
    ctx = engine.create_execution_context()
    for feed in [inputs] + list(runs or []):
        compare(run_kiln(engine, feed, ctx), run_ort(model, feed), rtol, atol)
    return model


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


# ======================================================================================================
# Elementwise
# ======================================================================================================
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("opset", [7, 13])
def test_binary_arith_broadcast(op, opset):
    check([node(op, ["a", "b"], ["y"])], {"a": rnd(2, 3, 4), "b": rnd(3, 1)}, ["y"], opset=opset)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_binary_arith_int(op):
    check([node(op, ["a", "b"], ["y"])], {"a": rint(2, 5, dtype=np.int32), "b": rint(5, dtype=np.int32)}, ["y"])
    check([node(op, ["a", "b"], ["y"])], {"a": rint(2, 5), "b": rint(1, 5)}, ["y"])


def test_binary_with_initializer():
    check([node("Mul", ["a", "w"], ["y"])], {"a": rnd(2, 3)}, ["y"], inits={"w": rnd(3)})


def test_pow():
    check([node("Pow", ["a", "b"], ["y"])], {"a": rnd(2, 3, signed=False), "b": rnd(2, 3)}, ["y"])


def test_pow_int_exponent_opset12():
    check([node("Pow", ["a", "b"], ["y"])], {"a": rnd(2, 3), "b": rint(3, lo=1, hi=4, signed=False)}, ["y"],
          opset=12)


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("opset", [8, 13])
def test_variadic(op, opset):
    check([node(op, ["a", "b", "c"], ["y"])], {"a": rnd(2, 3, 4), "b": rnd(3, 4), "c": rnd(4)}, ["y"], opset=opset)
    check([node(op, ["a"], ["y"])], {"a": rnd(2, 3)}, ["y"], opset=opset)


def test_mod():
    check([node("Mod", ["a", "b"], ["y"])], {"a": rint(3, 4), "b": rint(3, 4)}, ["y"], opset=13)
    check([node("Mod", ["a", "b"], ["y"], fmod=1)], {"a": rint(3, 4, dtype=np.int32), "b": rint(3, 4, dtype=np.int32)},
          ["y"], opset=13)
    check([node("Mod", ["a", "b"], ["y"], fmod=1)], {"a": rnd(3, 4, hi=9), "b": rnd(3, 4)}, ["y"], opset=13)


def test_mod_float_python_style():
    # fmod=0 on floats (the divisor's sign, like numpy.mod); ONNX Runtime supports it only from opset 28.
    a, b = rnd(3, 4, hi=9), rnd(3, 4)
    engine, _ = build(make_model([node("Mod", ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"], opset=13))
    compare(run_kiln(engine, {"a": a, "b": b}), {"y": np.mod(a, b)})


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_compare(op):
    a = rint(3, 4, hi=4).astype(np.float32)
    b = rint(4, hi=4).astype(np.float32)
    check([node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"], opset=16)
    check([node(op, ["a", "b"], ["y"])], {"a": rint(3, 4, hi=4), "b": rint(3, 1, hi=4)}, ["y"], opset=16)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic(op):
    a = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    b = RNG.integers(0, 2, size=(4,)).astype(bool)
    check([node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"])


def test_not():
    check([node("Not", ["a"], ["y"])], {"a": RNG.integers(0, 2, size=(3, 4)).astype(bool)}, ["y"])


UNARY = {
    "Neg": rnd, "Abs": rnd, "Exp": rnd, "Floor": rnd, "Ceil": rnd, "Sign": rnd, "Sin": rnd, "Cos": rnd,
    "Tan": lambda *s: rnd(*s, lo=0.1, hi=1.2), "Atan": rnd, "Sinh": rnd, "Cosh": rnd, "Asinh": rnd, "Erf": rnd,
    "Sqrt": lambda *s: rnd(*s, signed=False), "Log": lambda *s: rnd(*s, signed=False), "Reciprocal": rnd,
    "Asin": lambda *s: rnd(*s, lo=0.05, hi=0.95), "Acos": lambda *s: rnd(*s, lo=0.05, hi=0.95),
    "Atanh": lambda *s: rnd(*s, lo=0.05, hi=0.95), "Acosh": lambda *s: rnd(*s, lo=1.1, hi=3.0, signed=False),
    "Round": lambda *s: (rint(*s, hi=6) + np.float32(0.5) * RNG.choice([-1, 0, 1], size=s)).astype(np.float32)
    + np.float32(0.25) * RNG.choice([0.0, 1.0], size=s).astype(np.float32),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    check([node(op, ["a"], ["y"])], {"a": UNARY[op](3, 5)}, ["y"])


@pytest.mark.parametrize("op", ["Neg", "Abs", "Sign"])
def test_unary_int(op):
    check([node(op, ["a"], ["y"])], {"a": rint(3, 5)}, ["y"])


def special_values():
    a = rnd(3, 4)
    a[0, 0], a[1, 1], a[2, 2], a[0, 3] = np.nan, np.inf, -np.inf, np.inf
    return a


def test_isnan():
    check([node("IsNaN", ["a"], ["y"])], {"a": special_values()}, ["y"])


@pytest.mark.parametrize("neg,pos", [(1, 1), (0, 1), (1, 0), (0, 0)])
def test_isinf(neg, pos):
    check([node("IsInf", ["a"], ["y"], detect_negative=neg, detect_positive=pos)], {"a": special_values()}, ["y"],
          opset=10)


def test_where():
    c = RNG.integers(0, 2, size=(3, 1)).astype(bool)
    check([node("Where", ["c", "a", "b"], ["y"])], {"c": c, "a": rnd(3, 4), "b": rnd(4)}, ["y"], opset=9)
    check([node("Where", ["c", "a", "b"], ["y"])], {"c": c, "a": rint(3, 4), "b": rint(1, 4)}, ["y"], opset=16)


# ======================================================================================================
# Activations
# ======================================================================================================
@pytest.mark.parametrize("op,attrs,opset", [
    ("Relu", {}, 13), ("Relu", {}, 7), ("Sigmoid", {}, 13), ("Tanh", {}, 13), ("Softsign", {}, 13),
    ("Softplus", {}, 13), ("LeakyRelu", {}, 13), ("LeakyRelu", {"alpha": 0.3}, 7), ("Elu", {}, 13),
    ("Elu", {"alpha": 0.7}, 7), ("Selu", {}, 13), ("Selu", {"alpha": 1.5, "gamma": 0.9}, 7),
    ("HardSigmoid", {}, 13), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 7), ("HardSwish", {}, 14),
    ("ThresholdedRelu", {"alpha": 0.9}, 10), ("ThresholdedRelu", {}, 10), ("Celu", {"alpha": 1.3}, 12),
    ("Mish", {}, 18), ("Shrink", {"bias": 0.2, "lambd": 1.0}, 9), ("Gelu", {}, 20),
    ("Gelu", {"approximate": "tanh"}, 20), ("Erf", {}, 13),
])
def test_activation(op, attrs, opset):
    check([node(op, ["a"], ["y"], **attrs)], {"a": rnd(2, 3, 5, lo=0.1, hi=3.0)}, ["y"], opset=opset)


def test_prelu_initializer_slope():
    check([node("PRelu", ["a", "s"], ["y"])], {"a": rnd(2, 3, 4, 4)}, ["y"], inits={"s": rnd(3, 1, 1)})


def test_prelu_runtime_slope():
    check([node("PRelu", ["a", "s"], ["y"])], {"a": rnd(2, 3, 4), "s": rnd(4)}, ["y"], opset=9)


def test_clip_opset7_attrs():
    check([node("Clip", ["a"], ["y"], min=-0.8, max=1.1)], {"a": rnd(3, 4)}, ["y"], opset=7)
    check([node("Clip", ["a"], ["y"], max=1.1)], {"a": rnd(3, 4)}, ["y"], opset=10)


def test_clip_constant_bounds():
    check([node("Clip", ["a", "lo", "hi"], ["y"])], {"a": rnd(3, 4)}, ["y"],
          inits={"lo": np.array(-0.9, np.float32), "hi": np.array(1.2, np.float32)}, opset=11)
    check([node("Clip", ["a", "", "hi"], ["y"])], {"a": rnd(3, 4)}, ["y"], inits={"hi": np.array(1.2, np.float32)},
          opset=13)
    check([node("Clip", ["a", "lo"], ["y"])], {"a": rnd(3, 4)}, ["y"], inits={"lo": np.array(-1.0, np.float32)},
          opset=13)
    check([node("Clip", ["a"], ["y"])], {"a": rnd(3, 4)}, ["y"], opset=13)


def test_clip_runtime_bounds():
    check([node("Clip", ["a", "lo", "hi"], ["y"])],
          {"a": rnd(3, 4), "lo": np.array(-0.9, np.float32), "hi": np.array(1.2, np.float32)}, ["y"], opset=13)


def test_clip_int():
    check([node("Clip", ["a", "lo", "hi"], ["y"])], {"a": rint(3, 4, dtype=np.int32)}, ["y"],
          inits={"lo": np.array(-3, np.int32), "hi": np.array(5, np.int32)}, opset=13)


# ======================================================================================================
# Convolution and pooling
# ======================================================================================================
@pytest.mark.parametrize("attrs", [
    {}, {"pads": [1, 1, 1, 1]}, {"strides": [2, 2], "pads": [1, 0, 2, 1]}, {"dilations": [2, 1], "pads": [2, 1, 2, 1]},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"auto_pad": "VALID", "strides": [2, 1]}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
])
def test_conv2d(attrs):
    check([node("Conv", ["x", "w", "b"], ["y"], **attrs)], {"x": rnd(2, 4, 7, 8)}, ["y"],
          inits={"w": rnd(6, 4, 3, 3), "b": rnd(6)}, opset=11)


def test_conv_group_no_bias():
    check([node("Conv", ["x", "w"], ["y"], group=2, pads=[1, 1, 1, 1])], {"x": rnd(1, 4, 6, 6)}, ["y"],
          inits={"w": rnd(6, 2, 3, 3)})


def test_conv_depthwise():
    check([node("Conv", ["x", "w", "b"], ["y"], group=4, strides=[2, 2], pads=[1, 1, 1, 1])], {"x": rnd(1, 4, 9, 9)},
          ["y"], inits={"w": rnd(4, 1, 3, 3), "b": rnd(4)})


def test_conv1d_and_3d():
    check([node("Conv", ["x", "w", "b"], ["y"], pads=[1, 2], strides=[2])], {"x": rnd(2, 3, 11)}, ["y"],
          inits={"w": rnd(5, 3, 4), "b": rnd(5)})
    check([node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1, 1, 1])], {"x": rnd(1, 2, 4, 5, 6)}, ["y"],
          inits={"w": rnd(3, 2, 3, 3, 3)})


def test_conv_runtime_weights():
    check([node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], {"x": rnd(1, 2, 5, 5), "w": rnd(3, 2, 3, 3)}, ["y"])


@pytest.mark.parametrize("attrs", [
    {}, {"strides": [2, 2]}, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, {"strides": [2, 2], "output_padding": [1, 1]},
    {"strides": [2, 3], "pads": [0, 1, 1, 0], "output_padding": [1, 0]}, {"dilations": [2, 2]},
    {"strides": [2, 2], "output_shape": [10, 12]}, {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"}, {"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_padding": [1, 1]},
])
def test_conv_transpose(attrs):
    check([node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)], {"x": rnd(2, 4, 5, 6)}, ["y"],
          inits={"w": rnd(4, 3, 3, 3), "b": rnd(3)}, opset=11)


def test_conv_transpose_group_1d():
    check([node("ConvTranspose", ["x", "w"], ["y"], group=2, strides=[2])], {"x": rnd(1, 4, 7)}, ["y"],
          inits={"w": rnd(4, 3, 4)})


@pytest.mark.parametrize("attrs,opset", [
    ({"kernel_shape": [2, 2]}, 7), ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 11),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 11),
    ({"kernel_shape": [3, 2], "dilations": [2, 1], "pads": [1, 0, 1, 1]}, 12),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, 11),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}, 11),
    ({"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "VALID"}, 11),
])
def test_max_pool(attrs, opset):
    check([node("MaxPool", ["x"], ["y"], **attrs)], {"x": rnd(2, 3, 7, 8)}, ["y"], opset=opset)


def test_max_pool_1d_3d():
    check([node("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2])], {"x": rnd(2, 3, 9)}, ["y"])
    check([node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2, 2])], {"x": rnd(1, 2, 4, 4, 6)}, ["y"])


def test_max_pool_unused_indices_output_is_fine():
    check([node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2])], {"x": rnd(1, 2, 4, 4)}, ["y"], opset=12)


@pytest.mark.parametrize("attrs,opset", [
    ({"kernel_shape": [2, 2]}, 7), ({"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, 11),
    ({"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, 11),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 11),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1}, 11),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, 11),
    ({"kernel_shape": [2, 3], "dilations": [2, 1]}, 19),
])
def test_average_pool(attrs, opset):
    check([node("AveragePool", ["x"], ["y"], **attrs)], {"x": rnd(2, 3, 7, 8)}, ["y"], opset=opset)


def test_lp_pool():
    check([node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], p=2)], {"x": rnd(1, 3, 6, 6)}, ["y"],
          opset=11)
    check([node("LpPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], p=1)], {"x": rnd(1, 3, 5, 5)}, ["y"],
          opset=18)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pool(op):
    check([node(op, ["x"], ["y"])], {"x": rnd(2, 3, 5, 6)}, ["y"])
    check([node(op, ["x"], ["y"])], {"x": rnd(2, 3, 7)}, ["y"])


# ======================================================================================================
# Normalization
# ======================================================================================================
@pytest.mark.parametrize("opset", [7, 9, 15])
def test_batch_norm_constant(opset):
    c = 4
    check([node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)], {"x": rnd(2, c, 3, 5)}, ["y"],
          inits={"s": rnd(c), "b": rnd(c), "m": rnd(c), "v": rnd(c, signed=False)}, opset=opset)


def test_batch_norm_2d_input():
    check([node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], {"x": rnd(3, 5)}, ["y"],
          inits={"s": rnd(5), "b": rnd(5), "m": rnd(5), "v": rnd(5, signed=False)})


def test_batch_norm_runtime_stats():
    c = 3
    check([node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
          {"x": rnd(2, c, 4, 4), "s": rnd(c), "b": rnd(c), "m": rnd(c), "v": rnd(c, signed=False)}, ["y"])


def test_layer_norm():
    check([node("LayerNormalization", ["x", "s", "b"], ["y"])], {"x": rnd(2, 3, 8)}, ["y"],
          inits={"s": rnd(8), "b": rnd(8)}, opset=17)
    check([node("LayerNormalization", ["x", "s", "b"], ["y"], axis=1, epsilon=1e-3)], {"x": rnd(2, 3, 4)}, ["y"],
          inits={"s": rnd(3, 4), "b": rnd(3, 4)}, opset=17)
    check([node("LayerNormalization", ["x", "s"], ["y"], axis=-2)], {"x": rnd(2, 3, 4)}, ["y"],
          inits={"s": rnd(3, 4)}, opset=17)


def test_layer_norm_statistics_outputs():
    check([node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"], axis=1)], {"x": rnd(2, 3, 4)},
          ["y", "mean", "inv"], inits={"s": rnd(3, 4), "b": rnd(3, 4)}, opset=17)
    check([node("LayerNormalization", ["x", "s"], ["y", "", "inv"], epsilon=1e-3)], {"x": rnd(2, 5)}, ["y", "inv"],
          inits={"s": rnd(5)}, opset=17)


def test_instance_norm():
    check([node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-4)], {"x": rnd(2, 3, 4, 5)}, ["y"],
          inits={"s": rnd(3), "b": rnd(3)})
    check([node("InstanceNormalization", ["x", "s", "b"], ["y"])], {"x": rnd(2, 3, 7)}, ["y"],
          inits={"s": rnd(3), "b": rnd(3)}, opset=7)


def test_group_norm_opset21():
    check([node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)], {"x": rnd(2, 6, 3, 4)}, ["y"],
          inits={"s": rnd(6), "b": rnd(6)}, opset=21)
    check([node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=1)], {"x": rnd(2, 6, 5)}, ["y"],
          inits={"s": rnd(6), "b": rnd(6)}, opset=21)


def test_group_norm_opset18():
    check([node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)], {"x": rnd(2, 6, 3, 4)}, ["y"],
          inits={"s": rnd(3), "b": rnd(3)}, opset=18)


def test_mean_variance_normalization():
    check([node("MeanVarianceNormalization", ["x"], ["y"])], {"x": rnd(2, 3, 4, 5)}, ["y"], rtol=1e-4, atol=1e-5)
    check([node("MeanVarianceNormalization", ["x"], ["y"], axes=[1, 2])], {"x": rnd(2, 3, 4)}, ["y"], rtol=1e-4,
          atol=1e-5)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size):
    check([node("LRN", ["x"], ["y"], size=size, alpha=0.01, beta=0.6, bias=1.5)], {"x": rnd(2, 6, 3, 4)}, ["y"],
          rtol=1e-4, atol=1e-5)


def lrn_reference(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    """ONNX's definition (ONNX Runtime takes only 4-D inputs and odd sizes)."""
    c = x.shape[1]
    sq = np.zeros_like(x, dtype=np.float64)
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c - 1, i + (size - 1) - (size - 1) // 2)
        sq[:, i] = np.sum(x[:, lo:hi + 1].astype(np.float64) ** 2, axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


@pytest.mark.parametrize("size,shape", [(4, (2, 6, 3, 4)), (2, (1, 5, 7)), (3, (1, 4, 2, 2, 3))])
def test_lrn_even_size_and_other_ranks(size, shape):
    x = rnd(*shape)
    engine, _ = build(make_model([node("LRN", ["x"], ["y"], size=size, alpha=0.02)], {"x": x}, ["y"]))
    compare(run_kiln(engine, {"x": x}), {"y": lrn_reference(x, size, alpha=0.02)}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k,dtype", [(0, None), (1, TensorProto.INT64), (-2, TensorProto.FLOAT)])
def test_eye_like(k, dtype):
    attrs = {"k": k} if dtype is None else {"k": k, "dtype": dtype}
    check([node("EyeLike", ["x"], ["e"], **attrs), node("Identity", ["e"], ["y"])], {"x": rnd(3, 5)}, ["y"])


@pytest.mark.parametrize("p,axis", [(2, -1), (1, 1)])
def test_lp_normalization(p, axis):
    check([node("LpNormalization", ["x"], ["y"], p=p, axis=axis)], {"x": rnd(2, 3, 4)}, ["y"])
    x = rnd(2, 3, 4)
    x[1, :, 2] = 0.0  # an all-zero slice along axis 1 stays zero (no 0/0)
    x[0, 1, :] = 0.0
    check([node("LpNormalization", ["x"], ["y"], p=p, axis=axis)], {"x": x}, ["y"])


# ======================================================================================================
# MatMul / Gemm
# ======================================================================================================
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((4,), (4, 5)),
                                   ((3, 4), (4,)), ((2, 1, 3, 4), (3, 4, 2)), ((4,), (4,))])
def test_matmul(sa, sb):
    check([node("MatMul", ["a", "b"], ["y"])], {"a": rnd(*sa), "b": rnd(*sb)}, ["y"])


def test_matmul_initializer():
    check([node("MatMul", ["a", "w"], ["y"])], {"a": rnd(2, 3, 6)}, ["y"], inits={"w": rnd(6, 7)})


@pytest.mark.parametrize("attrs,cshape", [
    ({}, (5,)), ({"transA": 1}, (3, 5)), ({"transB": 1}, (1, 5)), ({"transA": 1, "transB": 1}, (3, 1)),
    ({"alpha": 0.5, "beta": 2.0}, (5,)), ({"alpha": 1.5}, ()), ({"beta": 0.0}, (5,)),
])
def test_gemm(attrs, cshape):
    a = rnd(4, 3) if attrs.get("transA") else rnd(3, 4)
    b = rnd(5, 4) if attrs.get("transB") else rnd(4, 5)
    check([node("Gemm", ["a", "b", "c"], ["y"], **attrs)], {"a": a}, ["y"], inits={"b": b, "c": rnd(*cshape)},
          opset=11)


def test_gemm_no_c_runtime_b():
    check([node("Gemm", ["a", "b"], ["y"], transB=1, alpha=2.0)], {"a": rnd(3, 4), "b": rnd(5, 4)}, ["y"])


def test_gemm_opset7():
    check([node("Gemm", ["a", "b", "c"], ["y"], transB=1)], {"a": rnd(3, 4)}, ["y"],
          inits={"b": rnd(5, 4), "c": rnd(3, 5)}, opset=7)


# ======================================================================================================
# Shape manipulation
# ======================================================================================================
@pytest.mark.parametrize("shape", [[4, -1], [0, 24], [2, 0, -1], [-1], [2, 3, 2, 4]])
def test_reshape(shape):
    check([node("Reshape", ["x", "s"], ["y"])], {"x": rnd(2, 3, 8)}, ["y"], inits={"s": np.array(shape, np.int64)})


def test_reshape_allowzero():
    check([node("Reshape", ["x", "s"], ["y"], allowzero=1)], {"x": rnd(2, 3, 4)}, ["y"],
          inits={"s": np.array([4, 6], np.int64)}, opset=14)


def test_reshape_from_shape_arithmetic_static():
    # Shape -> Gather -> Concat -> Reshape, all known at build time (static input).
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "i0"], ["n"], axis=0),
             node("Unsqueeze", ["n", "ax"], ["n1"]), node("Concat", ["n1", "m1"], ["shape"], axis=0),
             node("Reshape", ["x", "shape"], ["y"])]
    check(nodes, {"x": rnd(3, 4, 5)}, ["y"],
          inits={"i0": np.array(0, np.int64), "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64)})


@pytest.mark.parametrize("axis,opset", [(0, 11), (1, 9), (2, 11), (3, 11), (-1, 11), (-3, 13)])
def test_flatten(axis, opset):
    check([node("Flatten", ["x"], ["y"], axis=axis)], {"x": rnd(2, 3, 4, 5)}, ["y"], opset=opset)


@pytest.mark.parametrize("perm", [None, [0, 2, 1], [2, 0, 1]])
def test_transpose(perm):
    attrs = {} if perm is None else {"perm": perm}
    check([node("Transpose", ["x"], ["y"], **attrs)], {"x": rnd(2, 3, 4)}, ["y"])


def test_squeeze():
    x = rnd(1, 3, 1, 4)
    check([node("Squeeze", ["x"], ["y"], axes=[0, -2])], {"x": x}, ["y"], opset=11)
    check([node("Squeeze", ["x"], ["y"])], {"x": x}, ["y"], opset=11)
    check([node("Squeeze", ["x", "a"], ["y"])], {"x": x}, ["y"], inits={"a": np.array([2], np.int64)}, opset=13)
    check([node("Squeeze", ["x"], ["y"])], {"x": x}, ["y"], opset=13)


def test_unsqueeze():
    x = rnd(3, 4)
    check([node("Unsqueeze", ["x"], ["y"], axes=[0, 3])], {"x": x}, ["y"], opset=11)
    check([node("Unsqueeze", ["x"], ["y"], axes=[-1])], {"x": x}, ["y"], opset=11)
    check([node("Unsqueeze", ["x", "a"], ["y"])], {"x": x}, ["y"], inits={"a": np.array([1, -1], np.int64)}, opset=13)


def test_concat():
    check([node("Concat", ["a", "b", "c"], ["y"], axis=1)], {"a": rnd(2, 3, 4), "b": rnd(2, 1, 4), "c": rnd(2, 2, 4)},
          ["y"])
    check([node("Concat", ["a", "b"], ["y"], axis=-1)], {"a": rint(2, 3), "b": rint(2, 2)}, ["y"], opset=11)
    check([node("Concat", ["a", "w"], ["y"], axis=0)], {"a": rnd(2, 3)}, ["y"], inits={"w": rnd(1, 3)}, opset=7)


def test_split():
    x = rnd(6, 4)
    check([node("Split", ["x"], ["a", "b", "c"], axis=0)], {"x": x}, ["a", "b", "c"], opset=11)
    check([node("Split", ["x"], ["a", "b"], axis=0, split=[2, 4])], {"x": x}, ["a", "b"], opset=11)
    check([node("Split", ["x", "s"], ["a", "b"], axis=1)], {"x": x}, ["a", "b"],
          inits={"s": np.array([3, 1], np.int64)}, opset=13)
    check([node("Split", ["x"], ["a", "b"], axis=-1)], {"x": x}, ["a", "b"], opset=13)
    check([node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2)], {"x": rnd(5, 2)}, ["a", "b"], opset=18)


def test_slice_opset9_attrs():
    check([node("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, -1], axes=[0, 2])], {"x": rnd(4, 3, 5)}, ["y"], opset=9)
    check([node("Slice", ["x"], ["y"], starts=[1], ends=[100])], {"x": rnd(4, 3)}, ["y"], opset=7)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [3], None, None), ([0, 1], [2, 100], [0, 2], None), ([-1], [-100], [1], [-1]), ([4, 0], [0, 5], [2, 1], [-2, 2]),
    ([-3], [2**63 - 1], [-1], [1]), ([0], [5], [2], [3]),
])
def test_slice(starts, ends, axes, steps):
    inits = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64)}
    ins = ["x", "s", "e"]
    if axes is not None:
        inits["a"] = np.array(axes, np.int64)
        ins.append("a")
    if steps is not None:
        if axes is None:
            ins.append("")
        inits["t"] = np.array(steps, np.int64)
        ins.append("t")
    check([node("Slice", ins, ["y"])], {"x": rnd(3, 4, 5)}, ["y"], inits=inits)


def test_slice_int32_params():
    check([node("Slice", ["x", "s", "e", "a"], ["y"])], {"x": rnd(3, 4, 5)}, ["y"],
          inits={"s": np.array([1], np.int32), "e": np.array([-1], np.int32), "a": np.array([1], np.int32)}, opset=10)


def test_gather():
    check([node("Gather", ["x", "i"], ["y"], axis=0)], {"x": rnd(5, 3)}, ["y"],
          inits={"i": np.array([[0, 4], [-1, 2]], np.int64)})
    check([node("Gather", ["x", "i"], ["y"], axis=1)], {"x": rnd(2, 5, 3)}, ["y"], inits={"i": np.array(3, np.int64)})
    check([node("Gather", ["x", "i"], ["y"], axis=-1)], {"x": rint(2, 5), "i": np.array([1, 0, 4], np.int32)}, ["y"],
          opset=11)


def test_gather_elements():
    idx = RNG.integers(-3, 3, size=(2, 4)).astype(np.int64)
    check([node("GatherElements", ["x", "i"], ["y"], axis=0)], {"x": rnd(3, 4), "i": idx}, ["y"], opset=13)
    idx = RNG.integers(0, 4, size=(3, 2)).astype(np.int64)
    check([node("GatherElements", ["x", "i"], ["y"], axis=1)], {"x": rnd(3, 4), "i": idx}, ["y"], opset=11)


def test_gather_nd():
    check([node("GatherND", ["x", "i"], ["y"])], {"x": rnd(3, 4, 5)}, ["y"],
          inits={"i": np.array([[0, 1], [2, 3]], np.int64)}, opset=11)
    check([node("GatherND", ["x", "i"], ["y"], batch_dims=1)], {"x": rnd(2, 4, 5)}, ["y"],
          inits={"i": np.array([[1], [3]], np.int64)}, opset=12)


def test_expand():
    check([node("Expand", ["x", "s"], ["y"])], {"x": rnd(3, 1)}, ["y"], inits={"s": np.array([2, 3, 4], np.int64)},
          opset=8)
    check([node("Expand", ["x", "s"], ["y"])], {"x": rint(1, 4)}, ["y"], inits={"s": np.array([3, 1], np.int64)})


def test_tile():
    check([node("Tile", ["x", "r"], ["y"])], {"x": rnd(2, 3)}, ["y"], inits={"r": np.array([2, 3], np.int64)})
    check([node("Tile", ["x", "r"], ["y"])], {"x": rint(2, 1, 3)}, ["y"], inits={"r": np.array([1, 4, 1], np.int64)},
          opset=7)


@pytest.mark.parametrize("opset,attrs", [(13, {}), (15, {"start": 1}), (15, {"start": -2, "end": -1}),
                                         (15, {"end": 2})])
def test_shape(opset, attrs):
    check([node("Shape", ["x"], ["y"], **attrs)], {"x": rnd(2, 3, 4)}, ["y"], opset=opset)


def test_size():
    check([node("Size", ["x"], ["y"])], {"x": rnd(2, 3, 4)}, ["y"])


def test_shape_of_dynamic_input():
    x = rnd(2, 3, 4)
    check([node("Shape", ["x"], ["y"]), node("Size", ["x"], ["z"])], {"x": x}, ["y", "z"], dyn={"x": [None, 3, None]},
          profile={"x": ((1, 3, 1), (2, 3, 4), (4, 3, 8))}, runs=[{"x": rnd(4, 3, 7)}])


def test_constant():
    t = numpy_helper.from_array(rnd(2, 3), "c")
    check([node("Constant", [], ["c"], value=t), node("Add", ["x", "c"], ["y"])], {"x": rnd(2, 3)}, ["y"])
    check([node("Constant", [], ["c"], value_float=2.5), node("Mul", ["x", "c"], ["y"])], {"x": rnd(2, 3)}, ["y"],
          opset=12)
    check([node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0]), node("Mul", ["x", "c"], ["y"])],
          {"x": rnd(2, 3)}, ["y"], opset=12)
    check([node("Constant", [], ["c"], value_ints=[3, 2]), node("Reshape", ["x", "c"], ["y"])], {"x": rnd(2, 3)},
          ["y"], opset=12)
    check([node("Constant", [], ["c"], value_int=7), node("Add", ["x", "c"], ["y"])], {"x": rint(3)}, ["y"],
          opset=12)


def test_constant_as_output():
    t = numpy_helper.from_array(rint(2, 3), "c")
    check([node("Constant", [], ["c"], value=t), node("Relu", ["x"], ["y"])], {"x": rnd(2)}, ["y", "c"])


def test_constant_of_shape():
    check([node("ConstantOfShape", ["s"], ["c"]), node("Add", ["x", "c"], ["y"])], {"x": rnd(2, 3)}, ["y"],
          inits={"s": np.array([2, 3], np.int64)}, opset=9)
    v = numpy_helper.from_array(np.array([5], np.int64), "v")
    check([node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["y"], value=v)], {"x": rnd(2, 3)}, ["y"])
    v = numpy_helper.from_array(np.array([1.5], np.float32), "v")
    check([node("ConstantOfShape", ["s"], ["y"], value=v)], {}, ["y"], inits={"s": np.array([4], np.int64)})


def test_range():
    check([node("Range", ["a", "b", "c"], ["r"]), node("Add", ["x", "r"], ["y"])], {"x": rnd(5)}, ["y"],
          inits={"a": np.array(1.0, np.float32), "b": np.array(3.5, np.float32), "c": np.array(0.5, np.float32)},
          opset=11)
    check([node("Range", ["a", "b", "c"], ["y"])], {}, ["y"],
          inits={"a": np.array(10, np.int64), "b": np.array(1, np.int64), "c": np.array(-3, np.int64)}, opset=11)


@pytest.mark.parametrize("src,to", [
    (np.float32, TensorProto.INT32), (np.float32, TensorProto.INT64), (np.int64, TensorProto.FLOAT),
    (np.float32, TensorProto.BOOL), (np.int32, TensorProto.INT64), (np.bool_, TensorProto.FLOAT),
    (np.float32, TensorProto.DOUBLE), (np.int64, TensorProto.INT32), (np.float32, TensorProto.FLOAT),
])
def test_cast(src, to):
    if src == np.bool_:
        x = RNG.integers(0, 2, size=(3, 4)).astype(bool)
    elif np.dtype(src).kind == "f":
        x = rnd(3, 4, hi=9.0)
    else:
        x = rint(3, 4, dtype=src)
    check([node("Cast", ["x"], ["y"], to=to)], {"x": x}, ["y"])
    check([node("Cast", ["x"], ["y"], to=to)], {"x": x}, ["y"], opset=7)


def test_cast_half_round_trip_and_small_ints():
    check([node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16), node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)],
          {"x": rnd(3, 4)}, ["y"])
    check([node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], {"x": rint(3, 4, dtype=np.uint8, signed=False)}, ["y"])
    check([node("Cast", ["x"], ["y"], to=TensorProto.INT8)], {"x": rnd(3, 4, hi=9.0)}, ["y"])


def test_double_inputs():
    check([node("Add", ["a", "b"], ["s"]), node("Mul", ["s", "a"], ["y"])],
          {"a": rnd(2, 3).astype(np.float64), "b": rnd(3).astype(np.float64)}, ["y"])


def test_cast_like():
    check([node("CastLike", ["x", "t"], ["y"])], {"x": rnd(3, 4, hi=9.0), "t": rint(1)}, ["y"], opset=15)


# ======================================================================================================
# Reductions, softmax
# ======================================================================================================
REDUCE_OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]


def reduce_input(op):
    return rnd(2, 3, 4, signed=False) if op == "ReduceLogSum" else rnd(2, 3, 4, lo=0.5, hi=1.5)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_attribute(op, keepdims):
    opset = 11 if op == "ReduceSum" else 13
    check([node(op, ["x"], ["y"], axes=[0, -1], keepdims=keepdims)], {"x": reduce_input(op)}, ["y"], opset=opset)
    check([node(op, ["x"], ["y"], keepdims=keepdims)], {"x": reduce_input(op)}, ["y"], opset=opset)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_axes_input(op):
    opset = 13 if op == "ReduceSum" else 18
    check([node(op, ["x", "a"], ["y"], keepdims=0)], {"x": reduce_input(op)}, ["y"],
          inits={"a": np.array([1], np.int64)}, opset=opset)
    check([node(op, ["x"], ["y"])], {"x": reduce_input(op)}, ["y"], opset=opset)
    check([node(op, ["x"], ["y"], noop_with_empty_axes=1)], {"x": reduce_input(op)}, ["y"], opset=opset)


def test_reduce_int():
    check([node("ReduceSum", ["x"], ["y"], axes=[1])], {"x": rint(3, 4)}, ["y"], opset=11)
    check([node("ReduceMax", ["x"], ["y"], axes=[0], keepdims=0)], {"x": rint(3, 4, dtype=np.int32)}, ["y"])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_argminmax(op):
    x = rint(3, 4, 5, hi=4).astype(np.float32)  # ties
    check([node(op, ["x"], ["y"], axis=1)], {"x": x}, ["y"], opset=11)
    check([node(op, ["x"], ["y"], axis=-1, keepdims=0)], {"x": x}, ["y"], opset=11)
    check([node(op, ["x"], ["y"], axis=2, select_last_index=1)], {"x": x}, ["y"], opset=12)
    check([node(op, ["x"], ["y"])], {"x": x}, ["y"], opset=7)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, None), (11, 1), (11, 0), (11, -1), (13, None), (13, 1), (13, 0), (9, 2)])
def test_softmax(op, opset, axis):
    attrs = {} if axis is None else {"axis": axis}
    check([node(op, ["x"], ["y"], **attrs)], {"x": rnd(2, 3, 4)}, ["y"], opset=opset)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_opset11_dynamic(op):
    # dynamic batch (static trailing dims) and dynamic trailing dims
    check([node(op, ["x"], ["y"], axis=1)], {"x": rnd(2, 3, 4)}, ["y"], opset=11, dyn={"x": [None, 3, 4]},
          profile={"x": ((1, 3, 4), (2, 3, 4), (6, 3, 4))}, runs=[{"x": rnd(5, 3, 4)}])
    check([node(op, ["x"], ["y"], axis=1)], {"x": rnd(2, 3, 4)}, ["y"], opset=11, dyn={"x": [None, 3, None]},
          profile={"x": ((1, 3, 1), (2, 3, 4), (6, 3, 8))}, runs=[{"x": rnd(5, 3, 7)}])


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, -1), (13, 1), (13, None)])
def test_hardmax(opset, axis):
    attrs = {} if axis is None else {"axis": axis}
    x = rint(2, 3, 4, hi=3).astype(np.float32)  # ties pick the first index
    check([node("Hardmax", ["x"], ["y"], **attrs)], {"x": x}, ["y"], opset=opset)


# ======================================================================================================
# Pad / Resize / Upsample
# ======================================================================================================
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset10_attrs(mode):
    check([node("Pad", ["x"], ["y"], mode=mode, pads=[0, 1, 2, 0, 2, 1], value=1.5)], {"x": rnd(2, 4, 5)}, ["y"],
          opset=10)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset11(mode):
    check([node("Pad", ["x", "p", "v"], ["y"], mode=mode)], {"x": rnd(2, 4, 5)}, ["y"],
          inits={"p": np.array([0, 2, 1, 1, 0, 3], np.int64), "v": np.array(-2.0, np.float32)}, opset=11)
    check([node("Pad", ["x", "p"], ["y"], mode=mode)], {"x": rnd(2, 4, 5)}, ["y"],
          inits={"p": np.array([1, 1, 0, 0, 2, 1], np.int64)}, opset=13)


def test_pad_negative_and_int():
    check([node("Pad", ["x", "p"], ["y"])], {"x": rnd(3, 5)}, ["y"], inits={"p": np.array([1, -1, -1, 2], np.int64)},
          opset=13)
    check([node("Pad", ["x", "p", "v"], ["y"])], {"x": rint(3, 5)}, ["y"],
          inits={"p": np.array([1, 0, 0, 2], np.int64), "v": np.array(7, np.int64)}, opset=13)


def test_pad_wrap_and_axes():
    check([node("Pad", ["x", "p"], ["y"], mode="wrap")], {"x": rnd(3, 5)}, ["y"],
          inits={"p": np.array([1, 2, 2, 1], np.int64)}, opset=19)
    check([node("Pad", ["x", "p", "", "a"], ["y"])], {"x": rnd(2, 3, 5)}, ["y"],
          inits={"p": np.array([1, 2, 0, 1], np.int64), "a": np.array([2, 0], np.int64)}, opset=18)


def test_pad_runtime_value():
    check([node("Pad", ["x", "p", "v"], ["y"])], {"x": rnd(3, 5), "v": np.array(3.0, np.float32)}, ["y"],
          inits={"p": np.array([1, 0, 0, 2], np.int64)}, opset=13)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.6, 0.75], [1, 1, 0.5, 2.5], [1, 1, 1.7, 0.4]])
def test_resize_opset10(mode, scales):
    check([node("Resize", ["x", "s"], ["y"], mode=mode)], {"x": rnd(1, 2, 5, 8)}, ["y"],
          inits={"s": np.array(scales, np.float32)}, opset=10)


RESIZE_CASES = [
    ("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "half_pixel", "round_prefer_ceil"), ("nearest", "align_corners", "round_prefer_floor"),
    ("nearest", "tf_half_pixel_for_nn", "ceil"), ("nearest", "pytorch_half_pixel", "floor"),
    ("linear", "half_pixel", None), ("linear", "align_corners", None), ("linear", "asymmetric", None),
    ("linear", "pytorch_half_pixel", None), ("cubic", "half_pixel", None), ("cubic", "align_corners", None),
]


@pytest.mark.parametrize("mode,ct,nm", RESIZE_CASES)
@pytest.mark.parametrize("opset", [11, 13])
def test_resize_scales(mode, ct, nm, opset):
    attrs = {"mode": mode, "coordinate_transformation_mode": ct}
    if nm:
        attrs["nearest_mode"] = nm
    roi = "r" if opset == 11 else ""
    inits = {"s": np.array([1, 1, 2.0, 1.5], np.float32)}
    if opset == 11:
        inits["r"] = np.array([], np.float32)
    check([node("Resize", ["x", roi, "s"], ["y"], **attrs)], {"x": rnd(1, 2, 4, 5)}, ["y"], inits=inits, opset=opset,
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode,ct", [("nearest", "asymmetric"), ("linear", "half_pixel"),
                                     ("linear", "pytorch_half_pixel"), ("cubic", "half_pixel")])
def test_resize_sizes(mode, ct):
    check([node("Resize", ["x", "", "", "sz"], ["y"], mode=mode, coordinate_transformation_mode=ct)],
          {"x": rnd(1, 2, 4, 6)}, ["y"], inits={"sz": np.array([1, 2, 7, 3], np.int64)}, opset=13, rtol=1e-4)


def test_resize_downsample_and_exclude_outside():
    check([node("Resize", ["x", "", "s"], ["y"], mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5)],
          {"x": rnd(1, 1, 6, 8)}, ["y"], inits={"s": np.array([1, 1, 0.5, 0.75], np.float32)}, opset=13, rtol=1e-4)
    check([node("Resize", ["x", "", "s"], ["y"], mode="linear")], {"x": rnd(1, 1, 6, 8)}, ["y"],
          inits={"s": np.array([1, 1, 0.5, 0.5], np.float32)}, opset=13)


def test_resize_axes_opset18():
    check([node("Resize", ["x", "", "s"], ["y"], mode="nearest", axes=[2, 3])], {"x": rnd(1, 2, 3, 4)}, ["y"],
          inits={"s": np.array([2.0, 2.0], np.float32)}, opset=18)
    check([node("Resize", ["x", "", "", "sz"], ["y"], mode="linear", axes=[3])], {"x": rnd(1, 2, 3, 4)}, ["y"],
          inits={"sz": np.array([7], np.int64)}, opset=18)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(mode):
    check([node("Upsample", ["x", "s"], ["y"], mode=mode)], {"x": rnd(1, 2, 3, 4)}, ["y"],
          inits={"s": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    check([node("Upsample", ["x"], ["y"], mode=mode, scales=[1.0, 1.0, 3.0, 2.0])], {"x": rnd(1, 2, 3, 4)}, ["y"],
          opset=7)


# ======================================================================================================
# Misc
# ======================================================================================================
def test_identity_and_dropout():
    check([node("Identity", ["x"], ["y"])], {"x": rnd(2, 3)}, ["y"])
    check([node("Dropout", ["x"], ["y"], ratio=0.3)], {"x": rnd(2, 3)}, ["y"], opset=7)
    check([node("Dropout", ["x", "r"], ["y"])], {"x": rnd(2, 3)}, ["y"], inits={"r": np.array(0.2, np.float32)},
          opset=12)
    check([node("Dropout", ["x"], ["y", "mask"])], {"x": rnd(2, 3)}, ["y"], opset=13)
    check([node("Dropout", ["x"], ["y", "mask"])], {"x": rnd(2, 3)}, ["y", "mask"], opset=13)
    check([node("Dropout", ["x", "r", "t"], ["y", "mask"])], {"x": rnd(2, 3)}, ["y", "mask"],
          inits={"r": np.array(0.5, np.float32), "t": np.array(False)}, opset=12)


def test_topk():
    x = rnd(3, 6)
    check([node("TopK", ["x"], ["v", "i"], k=3)], {"x": x}, ["v", "i"], opset=9)
    check([node("TopK", ["x", "k"], ["v", "i"], axis=0)], {"x": x}, ["v", "i"], inits={"k": np.array([2], np.int64)},
          opset=10)
    check([node("TopK", ["x", "k"], ["v", "i"], largest=0)], {"x": x}, ["v", "i"],
          inits={"k": np.array([4], np.int64)}, opset=11)
    check([node("TopK", ["x", "k"], ["v", "i"])], {"x": rint(3, 6)}, ["v", "i"], inits={"k": np.array([2], np.int64)},
          opset=11)


@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]), ("ij,ij->", [(3, 4), (3, 4)]), ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]), ("i,j->ij", [(3,), (4,)]),
    ("ij, jk -> ik", [(3, 4), (4, 5)]),
])
def test_einsum(eq, shapes):
    names = [f"x{i}" for i in range(len(shapes))]
    check([node("Einsum", names, ["y"], equation=eq)], {n: rnd(*s) for n, s in zip(names, shapes)}, ["y"], opset=12,
          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(exclusive, reverse):
    check([node("CumSum", ["x", "a"], ["y"], exclusive=exclusive, reverse=reverse)], {"x": rnd(3, 4)}, ["y"],
          inits={"a": np.array(1, np.int64)}, opset=11)
    check([node("CumSum", ["x", "a"], ["y"], exclusive=exclusive, reverse=reverse)], {"x": rint(3, 4)}, ["y"],
          inits={"a": np.array(-2, np.int32)}, opset=14)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode):
    check([node("DepthToSpace", ["x"], ["y"], blocksize=2, mode=mode)], {"x": rnd(2, 8, 3, 4)}, ["y"], opset=11)


def test_depth_to_space_opset1_default():
    check([node("DepthToSpace", ["x"], ["y"], blocksize=3)], {"x": rnd(1, 9, 2, 2)}, ["y"], opset=7)


def test_space_to_depth():
    check([node("SpaceToDepth", ["x"], ["y"], blocksize=2)], {"x": rnd(2, 3, 4, 6)}, ["y"])


def test_depth_to_space_dynamic_batch():
    check([node("DepthToSpace", ["x"], ["y"], blocksize=2)], {"x": rnd(2, 8, 3, 4)}, ["y"], dyn={"x": [None, 8, 3, 4]},
          profile={"x": ((1, 8, 3, 4), (2, 8, 3, 4), (4, 8, 3, 4))}, runs=[{"x": rnd(3, 8, 3, 4)}])


@pytest.mark.parametrize("upper,k", [(1, None), (0, None), (1, 1), (0, -1), (1, -2), (0, 2)])
def test_trilu(upper, k):
    ins, inits = ["x"], {}
    if k is not None:
        ins.append("k")
        inits["k"] = np.array(k, np.int64)
    check([node("Trilu", ins, ["y"], upper=upper)], {"x": rnd(2, 4, 5)}, ["y"], inits=inits, opset=14)


# ======================================================================================================
# Graph-level behaviour
# ======================================================================================================
def test_output_is_graph_input_and_initializer():
    model = make_model([node("Relu", ["x"], ["y"])], {"x": rnd(2, 3)}, ["y", "x", "w"], inits={"w": rnd(2)})
    engine, _ = build(model)
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert "y" in names and "x" in names and "w" in names
    assert engine.get_tensor_mode("x") == kiln.TensorIOMode.OUTPUT  # the output takes the ONNX name


def test_output_names_match_onnx():
    model = make_model([node("Relu", ["x"], ["/relu/Relu_output_0"], name="/relu/Relu"),
                        node("Neg", ["/relu/Relu_output_0"], ["out"], name="/neg/Neg")], {"x": rnd(2, 3)},
                       ["out", "/relu/Relu_output_0"])
    engine, _ = build(model)
    names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
    assert names == {"x", "out", "/relu/Relu_output_0"}
    x = rnd(2, 3)
    compare(run_kiln(engine, {"x": x}), run_ort(model, {"x": x}))


def test_unnamed_nodes_and_multi_output():
    check([node("Split", ["x"], ["a", "b"], axis=1), node("Add", ["a", "b"], ["y"])], {"x": rnd(2, 6)}, ["y", "a"])


def test_unsupported_op_error():
    model = make_model([node("Relu", ["x"], ["r"], name="r0"), node("FancyOp", ["r"], ["y"], name="fancy")],
                       {"x": rnd(2)}, [])
    model.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]))
    ok, parser, *_ = parse(model.SerializeToString())
    assert not ok
    errs = parser_errors(parser)
    assert len(errs) == 1
    e = errs[0]
    assert e.code() == kiln.ErrorCode.UNSUPPORTED_NODE
    assert e.node() == 1 and e.node_name() == "fancy" and e.node_operator() == "FancyOp"
    assert "no importer for op 'FancyOp' (domain '')" in e.desc()
    assert str(e).startswith("In node 1 (fancy, FancyOp): UNSUPPORTED_NODE")


def test_malformed_bytes():
    ok, parser, *_ = parse(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert not ok
    assert parser.get_error(0).code() == kiln.ErrorCode.MODEL_DESERIALIZE_FAILED


def test_supports_operator():
    _, parser, *_ = parse(make_model([node("Relu", ["x"], ["y"])], {"x": rnd(2)}, ["y"]).SerializeToString())
    for op in ["Conv", "Relu", "Resize", "LayerNormalization", "Einsum", "Trilu"]:
        assert parser.supports_operator(op)
    assert not parser.supports_operator("KilnNoSuchOp")


def test_max_pool_indices_used_is_an_error():
    model = make_model([node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])], {"x": rnd(1, 1, 4, 4)}, ["y", "i"],
                       opset=12)
    ok, parser, *_ = parse(model.SerializeToString())
    assert not ok
    assert parser.get_error(0).code() == kiln.ErrorCode.UNSUPPORTED_NODE
    assert "Indices" in parser.get_error(0).desc()


def test_parse_from_file_with_external_data(tmp_path):
    w = rnd(64, 32)
    model = make_model([node("MatMul", ["x", "w"], ["y"])], {"x": rnd(3, 64)}, ["y"], inits={"w": w})
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                    size_threshold=0)
    logger = Logger()
    builder = kiln.Builder(logger)
    network = builder.create_network(0)
    parser = kiln.OnnxParser(network, logger)
    assert parser.parse_from_file(str(path)), [str(e) for e in parser_errors(parser)]
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    engine = kiln.Runtime(logger).deserialize_cuda_engine(plan)
    x = rnd(3, 64)
    compare(run_kiln(engine, {"x": x}), {"y": x @ w}, rtol=1e-4, atol=1e-4)
    # parse(bytes, path) finds the external data relative to the model file as well
    logger2 = Logger()
    net2 = kiln.Builder(logger2).create_network(0)
    p2 = kiln.OnnxParser(net2, logger2)
    assert p2.parse(path.read_bytes(), str(path)), [str(e) for e in parser_errors(p2)]


# ======================================================================================================
# Dynamic shapes with optimization profiles
# ======================================================================================================
def test_dynamic_batch_cnn_classifier():
    c = 4
    nodes = [node("Conv", ["x", "w", "b"], ["c1"], pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c1", "s", "bb", "m", "v"], ["bn"]), node("Relu", ["bn"], ["r"]),
             node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), node("Flatten", ["p"], ["f"]),
             node("Gemm", ["f", "fw", "fb"], ["g"], transB=1), node("Softmax", ["g"], ["y"], axis=1)]
    inits = {"w": rnd(c, 3, 3, 3), "b": rnd(c), "s": rnd(c), "bb": rnd(c), "m": rnd(c), "v": rnd(c, signed=False),
             "fw": rnd(5, c * 4 * 4) * np.float32(0.1), "fb": rnd(5)}
    check(nodes, {"x": rnd(2, 3, 8, 8)}, ["y"], inits=inits, opset=11, dyn={"x": [None, 3, 8, 8]},
          profile={"x": ((1, 3, 8, 8), (2, 3, 8, 8), (8, 3, 8, 8))}, runs=[{"x": rnd(5, 3, 8, 8)}, {"x": rnd(1, 3, 8, 8)}],
          rtol=1e-4, atol=1e-5)


def test_dynamic_batch_flatten_axes():
    for axis in (1, 2):
        check([node("Flatten", ["x"], ["y"], axis=axis)], {"x": rnd(2, 3, 4)}, ["y"], dyn={"x": [None, 3, 4]},
              profile={"x": ((1, 3, 4), (2, 3, 4), (6, 3, 4))}, runs=[{"x": rnd(5, 3, 4)}])


@pytest.mark.parametrize("axis", [1, 2])
def test_dynamic_flatten_all_dims_dynamic(axis):
    check([node("Flatten", ["x"], ["y"], axis=axis)], {"x": rnd(2, 3, 4)}, ["y"], dyn={"x": [None, 3, None]},
          profile={"x": ((1, 3, 1), (2, 3, 4), (6, 3, 8))}, runs=[{"x": rnd(5, 3, 7)}])


def test_dynamic_transformer_block():
    d = 8
    nodes = [node("LayerNormalization", ["x", "ls", "lb"], ["ln"], axis=-1),
             node("MatMul", ["ln", "wq"], ["q"]), node("MatMul", ["ln", "wk"], ["k"]),
             node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), node("MatMul", ["q", "kt"], ["att"]),
             node("Mul", ["att", "scale"], ["atts"]), node("Softmax", ["atts"], ["p"], axis=-1),
             node("MatMul", ["p", "ln"], ["ctx"]), node("Add", ["ctx", "x"], ["res"]),
             node("Gelu", ["res"], ["y"])]
    inits = {"ls": rnd(d), "lb": rnd(d), "wq": rnd(d, d) * np.float32(0.3), "wk": rnd(d, d) * np.float32(0.3),
             "scale": np.array(1 / np.sqrt(d), np.float32)}
    check(nodes, {"x": rnd(2, 5, d)}, ["y"], inits=inits, opset=20, dyn={"x": [None, None, d]},
          profile={"x": ((1, 1, d), (2, 5, d), (4, 16, d))}, runs=[{"x": rnd(3, 11, d)}], rtol=1e-4, atol=1e-5)


def test_dynamic_reshape_from_shape_arithmetic():
    # torch-style: y = x.reshape(x.shape[0], -1) through Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "i0"], ["n"], axis=0),
             node("Unsqueeze", ["n", "ax"], ["n1"]), node("Concat", ["n1", "m1"], ["shape"], axis=0),
             node("Reshape", ["x", "shape"], ["y"])]
    check(nodes, {"x": rnd(2, 3, 4)}, ["y"],
          inits={"i0": np.array(0, np.int64), "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64)},
          dyn={"x": [None, 3, 4]}, profile={"x": ((1, 3, 4), (2, 3, 4), (8, 3, 4))}, runs=[{"x": rnd(7, 3, 4)}])


def test_dynamic_squeeze_unsqueeze_concat_slice():
    nodes = [node("Unsqueeze", ["x", "a"], ["u"]), node("Concat", ["u", "u"], ["c"], axis=1),
             node("Slice", ["c", "st", "en", "ax"], ["s"]), node("Squeeze", ["s", "a"], ["y"])]
    check(nodes, {"x": rnd(2, 5)}, ["y"],
          inits={"a": np.array([1], np.int64), "st": np.array([1, 1], np.int64), "en": np.array([2, -1], np.int64),
                 "ax": np.array([1, 2], np.int64)},
          dyn={"x": [None, None]}, profile={"x": ((1, 2), (2, 5), (4, 9))}, runs=[{"x": rnd(4, 9)}])


def test_dynamic_resize_and_pool():
    nodes = [node("Resize", ["x", "", "s"], ["r"], mode="nearest"),
             node("AveragePool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    check(nodes, {"x": rnd(1, 2, 3, 4)}, ["y"], inits={"s": np.array([1, 1, 2, 2], np.float32)}, opset=13,
          dyn={"x": [None, 2, None, None]}, profile={"x": ((1, 2, 2, 2), (1, 2, 3, 4), (3, 2, 8, 8))},
          runs=[{"x": rnd(3, 2, 5, 7)}])


# ======================================================================================================
# Scatter (ScatterElements, ScatterND, deprecated Scatter)
# ======================================================================================================
@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scatter_elements(reduction, axis):
    data = rnd(3, 4)
    ax = axis % 2
    idx_shape = (2, 3)
    if reduction == "none":  # distinct destinations along the axis, so the result does not depend on order
        idx = np.stack([RNG.permutation(data.shape[ax])[:idx_shape[ax]] for _ in range(idx_shape[1 - ax])],
                       axis=1 - ax).astype(np.int64)
    else:
        idx = RNG.integers(0, data.shape[ax], size=idx_shape).astype(np.int64)
    idx = idx - data.shape[ax] * (RNG.integers(0, 2, size=idx_shape) if reduction != "none" else 0)
    check([node("ScatterElements", ["d", "i", "u"], ["y"], axis=axis, reduction=reduction)],
          {"d": data, "i": idx, "u": rnd(*idx_shape)}, ["y"], opset=18)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    idx = np.array([[0, 1], [2, -1]] if reduction == "none" else [[0, 1], [2, -1], [0, 1]], np.int64)
    check([node("ScatterND", ["d", "i", "u"], ["y"], reduction=reduction)],
          {"d": rnd(3, 4, 5), "i": idx, "u": rnd(idx.shape[0], 5)}, ["y"], opset=18)


def test_scatter_deprecated_opset9():
    idx = np.array([[1, 0, 2], [0, 2, 1]], np.int64)
    check([node("Scatter", ["d", "i", "u"], ["y"], axis=1)], {"d": rnd(2, 3), "i": idx, "u": rnd(2, 3)}, ["y"], opset=9)


# ======================================================================================================
# Opsets before 7: legacy broadcast/axis of the binary ops, consumed_inputs
# ======================================================================================================
def run_legacy(nodes, inputs, opset):
    engine, _ = build(make_model(nodes, inputs, ["y"], opset=opset))
    return run_kiln(engine, inputs)["y"]


def test_legacy_binary_broadcast_axis():
    a, b = rnd(2, 3, 4, 5), rnd(3, 4)
    y = run_legacy([node("Add", ["a", "b"], ["y"], broadcast=1, axis=1)], {"a": a, "b": b}, 6)
    np.testing.assert_allclose(y, a + b[None, :, :, None], rtol=1e-6)
    b1 = rnd(5)
    y = run_legacy([node("Mul", ["a", "b"], ["y"], broadcast=1, consumed_inputs=[0, 0])], {"a": a, "b": b1}, 1)
    np.testing.assert_allclose(y, a * b1, rtol=1e-6)


def test_legacy_unchanged_ops():
    a = rnd(2, 3)
    y = run_legacy([node("Relu", ["a"], ["y"], consumed_inputs=[0])], {"a": a}, 1)
    np.testing.assert_array_equal(y, np.maximum(a, 0))


def test_legacy_changed_op_is_unsupported_node():
    model = make_model([node("Reshape", ["a"], ["y"], shape=[6])], {"a": rnd(2, 3)}, ["y"], opset=4)
    ok, parser, *_ = parse(model.SerializeToString())
    assert not ok
    msg = str(parser_errors(parser)[0])
    assert "UNSUPPORTED_NODE" in msg and "opset 4" in msg, msg


def test_legacy_prelu_per_channel_slope():
    x, s = rnd(2, 3, 4, 5), rnd(3, signed=False)
    y = run_legacy([node("PRelu", ["x", "s"], ["y"])], {"x": x, "s": s}, 6)
    sb = s[None, :, None, None]
    np.testing.assert_allclose(y, np.where(x < 0, x * sb, x), rtol=1e-6)
