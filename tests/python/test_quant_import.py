"""Quantization ops and the new dtypes through the ONNX importer, compared with ONNX Runtime: QuantizeLinear /
DequantizeLinear (per tensor, per axis, blocked; 8/16-bit integers and float8), DynamicQuantizeLinear,
MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv, Cast to and from int16/uint16/uint32/uint64/float8,
and arithmetic on the wide integer types. Integer outputs must match exactly."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln.onnx_backend as backend

import onnxruntime as ort  # scripts/setup.sh installs it: a missing one is an error, not a skip

RNG = np.random.default_rng(2024)


def make_model(nodes, inputs, outputs, inits=None, opset=13):
    """inputs: {name: (array, onnx elem type)}; outputs: names."""
    vis = [helper.make_tensor_value_info(n, t, list(a.shape)) for n, (a, t) in inputs.items()]
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
    init = [v if isinstance(v, onnx.TensorProto) else numpy_helper.from_array(np.asarray(v), k)
            for k, v in (inits or {}).items()]
    graph = helper.make_graph(nodes, "quant", vis, outs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 17 else (9 if opset <= 19 else 10)
    return onnx.shape_inference.infer_shapes(model)


def run_ort(model, feeds):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _comparable(a):
    """ml_dtypes narrow floats as their codes (exact), everything else as is."""
    a = np.asarray(a)
    if a.dtype.kind == "V" or a.dtype.name.startswith("float8"):
        return a.view(np.uint8)
    return a


def run_onnx_reference(model, feeds):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, feeds)


def check(nodes, inputs, outputs, inits=None, opset=13, rtol=1e-6, atol=1e-6, ref="ort"):
    """Runs Kiln and the reference (`ort`: ONNX Runtime; `onnx`: onnx.reference, for what ONNX Runtime has no
    kernel for) and compares every output."""
    model = make_model(nodes, inputs, outputs, inits, opset)
    feeds = {n: a for n, (a, _) in inputs.items()}
    got = backend.prepare(model).run(feeds)
    ref = run_ort(model, feeds) if ref == "ort" else run_onnx_reference(model, feeds)
    assert len(got) == len(ref)
    for name, g, r in zip(outputs, got, ref):
        g, r = _comparable(g), _comparable(r)
        assert g.shape == r.shape, f"{name}: shape {g.shape} vs ONNX Runtime {r.shape}"
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g.astype(np.float64), r.astype(np.float64), rtol=rtol, atol=atol, err_msg=name)
        else:
            assert g.dtype == r.dtype, f"{name}: dtype {g.dtype} vs ONNX Runtime {r.dtype}"
            np.testing.assert_array_equal(g, r, err_msg=name)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def floats(*shape, lo=-40.0, hi=40.0):
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


def ints(dtype, *shape):
    info = np.iinfo(dtype)
    hi = min(int(info.max), 2**62)  # numpy draws int64: uint64 values stay below 2^62
    return RNG.integers(info.min, hi + 1, size=shape, dtype=np.int64).astype(dtype)


F32 = TensorProto.FLOAT
_ONNX_INT = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16,
             np.uint16: TensorProto.UINT16, np.int32: TensorProto.INT32, np.uint32: TensorProto.UINT32,
             np.uint64: TensorProto.UINT64, np.int64: TensorProto.INT64}


# ==================================================================================================
# QuantizeLinear / DequantizeLinear
# ==================================================================================================
@pytest.mark.parametrize("opset", [10, 13, 19, 21])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_dequantize_per_tensor(opset, dtype):
    x = floats(3, 4, 5)
    x.flat[:4] = [0.5, 1.5, 2.5, -2.5]  # ties: half to even
    inits = {"s": np.float32(0.37), "z": ints(dtype)} if opset > 10 else {"s": np.float32(1.0), "z": ints(dtype)}
    check([node("QuantizeLinear", ["x", "s", "z"], ["q"]), node("DequantizeLinear", ["q", "s", "z"], ["y"])],
          {"x": (x, F32)}, ["q", "y"], inits, opset)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_dequantize_per_axis(axis):
    x = floats(3, 4, 5)
    n = x.shape[axis]
    inits = {"s": RNG.uniform(0.05, 0.5, n).astype(np.float32), "z": ints(np.int8, n)}
    check([node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=axis),
           node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=axis)], {"x": (x, F32)}, ["q", "y"], inits, 13)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8])
def test_quantize_dequantize_blocked_and_16bit(dtype):
    x = floats(4, 6, lo=-3000, hi=3000)
    inits = {"s": RNG.uniform(0.05, 0.5, (4, 2)).astype(np.float32), "z": ints(dtype, 4, 2)}
    check([node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1, block_size=3),
           node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=3)], {"x": (x, F32)}, ["q", "y"],
          inits, 21)


def test_dequantize_int32_input():
    x = ints(np.int32, 3, 4) // 1024
    check([node("DequantizeLinear", ["x", "s", "z"], ["y"])], {"x": (x, TensorProto.INT32)}, ["y"],
          {"s": np.float32(0.25), "z": np.int32(7)}, 13)


_ML_NAME = {TensorProto.FLOAT8E4M3FN: "float8_e4m3fn", TensorProto.FLOAT8E5M2: "float8_e5m2",
            TensorProto.FLOAT8E4M3FNUZ: "float8_e4m3fnuz", TensorProto.FLOAT8E5M2FNUZ: "float8_e5m2fnuz"}


def float8_reference(x, to, saturate):
    """ONNX's conversion rule with ml_dtypes: clip to the format's range first when saturating."""
    import ml_dtypes  # onnx depends on it, so it is always there
    t = getattr(ml_dtypes, _ML_NAME[to])
    if saturate:
        info = ml_dtypes.finfo(t)
        x = np.clip(x, float(info.min), float(info.max))
    return x.astype(t).view(np.uint8)


@pytest.mark.parametrize("to", [TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2])
@pytest.mark.parametrize("saturate", [0, 1])
def test_quantize_float8(to, saturate):
    """ONNX Runtime cannot hand float8 tensors to numpy: it checks the dequantized values, ml_dtypes the codes."""
    x = floats(4, 8, lo=-1000, hi=1000)
    x.flat[:3] = [np.inf, -np.inf, np.nan]
    zp = helper.make_tensor("z", to, [], [0.0])
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["q"], saturate=saturate), node("DequantizeLinear", ["q", "s"], ["y"])]
    model = make_model(nodes, {"x": (x, F32)}, ["q", "y"], {"s": np.float32(0.5), "z": zp}, 19)
    got = backend.prepare(model).run({"x": x})
    np.testing.assert_array_equal(_comparable(got[0]), float8_reference(x / np.float32(0.5), to, saturate))
    ref_model = make_model(nodes, {"x": (x, F32)}, ["y"], {"s": np.float32(0.5), "z": zp}, 19)
    np.testing.assert_array_equal(got[1], run_ort(ref_model, {"x": x})[0])


def test_dynamic_quantize_linear():
    x = floats(5, 7, lo=-3, hi=8)
    check([node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], {"x": (x, F32)}, ["y", "s", "z"], opset=11)


# ==================================================================================================
# Integer products
# ==================================================================================================
# ONNX Runtime's x86 uint8 x int8 kernels add pairs of products in saturating int16 (vpmaddubsw), so against
# it the int8 operands stay within 7 bits; the onnx reference checks the full range.
def test_matmul_integer():
    a, b = ints(np.uint8, 2, 3, 5), ints(np.int8, 5, 4) // 2
    inputs = {"a": (a, TensorProto.UINT8), "b": (b, TensorProto.INT8)}
    nodes = [node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])]
    check(nodes, inputs, ["y"], {"za": np.uint8(17), "zb": ints(np.int8, 4) // 2}, 10)
    inputs["b"] = (ints(np.int8, 5, 4), TensorProto.INT8)
    check(nodes, inputs, ["y"], {"za": np.uint8(17), "zb": ints(np.int8, 4)}, 10, ref="onnx")


@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 0, 2, 1], "strides": [2, 1]}, {"auto_pad": "SAME_UPPER"},
                                   {"dilations": [2, 1], "group": 2}])
def test_conv_integer(attrs):
    x, w = ints(np.uint8, 2, 4, 7, 6), ints(np.uint8, 6, 4 // attrs.get("group", 1), 3, 2)
    check([node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], **attrs)],
          {"x": (x, TensorProto.UINT8), "w": (w, TensorProto.UINT8)}, ["y"],
          {"zx": np.uint8(100), "zw": np.uint8(128)}, 10)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_matmul(dtype):
    a, b = ints(dtype, 2, 4, 6), ints(dtype, 6, 3)
    inits = {"sa": np.float32(0.02), "za": ints(dtype), "sb": np.float32(0.03), "zb": ints(dtype),
             "sy": np.float32(0.1), "zy": ints(dtype)}
    t = _ONNX_INT[dtype]
    check([node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])],
          {"a": (a, t), "b": (b, t)}, ["y"], inits, 10)


@pytest.mark.parametrize("ref", ["ort", "onnx"])
def test_qlinear_conv_per_channel_with_bias(ref):
    x, w = ints(np.uint8, 1, 3, 6, 6), ints(np.int8, 4, 3, 3, 3)
    if ref == "ort":
        w //= 2
    inits = {"sx": np.float32(0.01), "zx": np.uint8(120), "sw": RNG.uniform(0.01, 0.05, 4).astype(np.float32),
             "zw": np.zeros(4, np.int8), "sy": np.float32(0.2), "zy": np.uint8(90),
             "B": RNG.integers(-2000, 2000, 4).astype(np.int32)}
    check([node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "B"], ["y"], pads=[1, 1, 1, 1],
                strides=[2, 1])], {"x": (x, TensorProto.UINT8)}, ["y"], inits | {"w": w}, 10, ref=ref)


# ==================================================================================================
# New dtypes through Cast and arithmetic
# ==================================================================================================
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint32, np.uint64])
def test_cast_wide_integers(dtype):
    x = floats(3, 5, lo=-1000, hi=70000)
    t = _ONNX_INT[dtype]
    x = np.abs(x) if np.dtype(dtype).kind == "u" else np.clip(x, -30000, 30000)
    check([node("Cast", ["x"], ["i"], to=t), node("Cast", ["i"], ["f"], to=F32), node("Cast", ["i"], ["l"], to=TensorProto.INT64)],
          {"x": (x, F32)}, ["i", "f", "l"])


@pytest.mark.parametrize("to", list(_ML_NAME))
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_float8_round_trip(to, saturate):
    x = floats(64, lo=-70000, hi=70000) * RNG.choice(np.array([1e-4, 1e-2, 1, 1], np.float32), 64)
    x[:3] = [np.inf, -np.inf, np.nan]
    nodes = [node("Cast", ["x"], ["c"], to=to, saturate=saturate), node("Cast", ["c"], ["y"], to=F32)]
    got = backend.prepare(make_model(nodes, {"x": (x, F32)}, ["c", "y"], opset=19)).run({"x": x})
    codes = float8_reference(x, to, saturate)
    np.testing.assert_array_equal(_comparable(got[0]), codes)
    import ml_dtypes  # onnx depends on it, so it is always there
    np.testing.assert_array_equal(got[1], codes.view(getattr(ml_dtypes, _ML_NAME[to])).astype(np.float32))
    if saturate:  # (ONNX Runtime turns some E5M2 overflows into NaN rather than Inf without saturation)
        ref = run_ort(make_model(nodes, {"x": (x, F32)}, ["y"], opset=19), {"x": x})[0]
        np.testing.assert_array_equal(got[1], ref)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Max", "Greater", "Equal"])
def test_wide_integer_arithmetic(dtype, op):
    t = _ONNX_INT[dtype]
    a = (ints(dtype, 3, 4) // 4).astype(dtype)
    b = (ints(dtype, 4) // 4).astype(dtype)
    # ONNX Runtime has no int16/uint16 Max kernel
    ref = "onnx" if op == "Max" and dtype in (np.int16, np.uint16) else "ort"
    check([node(op, ["a", "b"], ["y"])], {"a": (a, t), "b": (b, t)}, ["y"], opset=14, ref=ref)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint32, np.uint64])
def test_wide_integer_reduce_argmax_where(dtype):
    t = _ONNX_INT[dtype]
    a = ints(dtype, 3, 4, 5)
    c = RNG.integers(0, 2, (4, 5)).astype(np.bool_)
    check([node("ReduceMax", ["a"], ["m"], axes=[1], keepdims=0), node("ArgMin", ["a"], ["i"], axis=2),
           node("Where", ["c", "a", "a2"], ["w"]), node("Transpose", ["a"], ["tr"], perm=[2, 0, 1])],
          {"a": (a, t), "c": (c, TensorProto.BOOL), "a2": (ints(dtype, 5), t)}, ["m", "i", "w", "tr"], ref="onnx")
