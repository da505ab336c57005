"""Importer + CPU kernel tests for the loss, sampling, signal, rearranging, unpooling and Det ops, each on
random inputs against ONNX Runtime (CPUExecutionProvider), through the TensorRT-style API. Parameters that
set output sizes (OneHot depth, AffineGrid size, window sizes, ...) are initializers: Kiln sizes outputs at
build time."""
import os
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
from test_onnx_import import build, check, make_model, node, parse, parser_errors, rint, rnd, run_kiln  # noqa: E402

RNG = np.random.default_rng(4242)


def check_reference(nodes, inputs, outputs, opset, rtol=1e-4, atol=1e-5, extra_opsets=()):
    """Like check(), against onnx's reference evaluator: for ops ONNX Runtime lacks, and for cubic sampling
    with border padding, where the ONNX definition (clamp the location, then take the taps) and ONNX Runtime
    (clamp each tap) differ."""
    from onnx.reference import ReferenceEvaluator
    model = make_model(nodes, inputs, outputs, opset=opset, extra_opsets=extra_opsets)
    engine, _ = build(model)
    got = run_kiln(engine, inputs)
    want = ReferenceEvaluator(model).run(None, inputs)
    for name, w in zip(outputs, want):
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=atol, err_msg=name)


# ======================================================================================================
# Losses
# ======================================================================================================
LOSS_SHAPES = [(5, 4), (3, 4, 6), (2, 3, 4, 5), (2, 3, 2, 2, 3)]


def _targets(shape, classes, ignore=None):
    t = RNG.integers(0, classes, size=(shape[0],) + tuple(shape[2:])).astype(np.int64)
    if ignore is not None:
        t.flat[:: 3] = ignore  # some ignored entries
    return t


@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 1, -3])
def test_nll_loss(shape, reduction, weighted, ignore):
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    ins = ["x", "t"] + (["w"] if weighted else [])
    inits = {"w": rnd(shape[1], signed=False)} if weighted else None
    check([node("NegativeLogLikelihoodLoss", ins, ["y"], **attrs)],
          {"x": rnd(*shape), "t": _targets(shape, shape[1], ignore)}, ["y"], inits=inits, opset=13)


@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("log_prob", [False, True])
def test_softmax_cross_entropy(shape, reduction, weighted, log_prob):
    ins = ["x", "t"] + (["w"] if weighted else [])
    outs = ["y", "lp"] if log_prob else ["y"]
    inputs = {"x": rnd(*shape), "t": _targets(shape, shape[1], ignore=2).astype(np.int32)}
    if weighted:
        inputs["w"] = rnd(shape[1], signed=False)
    check([node("SoftmaxCrossEntropyLoss", ins, outs, reduction=reduction, ignore_index=2)], inputs, outs, opset=13)


def test_softmax_cross_entropy_double():
    inputs = {"x": rnd(3, 5, 2).astype(np.float64), "t": _targets((3, 5, 2), 5)}
    check([node("SoftmaxCrossEntropyLoss", ["x", "t"], ["y", "lp"])], inputs, ["y", "lp"], opset=13, rtol=1e-10)


def test_unknown_op_is_a_parse_error():  # (the same error path as the next test, for any op)
    model = make_model([node("MatMul", ["x", "w"], ["y"])], {"x": rnd(2, 3), "w": rnd(4, 5)}, ["y"], opset=13)
    ok, parser, *_ = parse(model.SerializeToString())
    assert not ok


def test_nll_loss_bad_target_rank_is_a_parse_error():
    model = make_model([node("NegativeLogLikelihoodLoss", ["x", "t"], ["y"])],
                       {"x": rnd(2, 3, 4), "t": rint(2, 5, 1)}, ["y"], opset=13)
    ok, parser, *_ = parse(model.SerializeToString())
    assert not ok
    assert "target" in " ".join(str(e) for e in parser_errors(parser))


# ======================================================================================================
# Sampling
# ======================================================================================================
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_2d_opset16(mode, padding, align):
    grid = RNG.uniform(-1.3, 1.3, size=(2, 4, 5, 2)).astype(np.float32)  # some points outside
    if mode == "bicubic" and padding == "border":  # (the reference evaluator knows opset 20's mode names)
        return check_reference([node("GridSample", ["x", "g"], ["y"], mode="cubic", padding_mode=padding,
                                     align_corners=align)], {"x": rnd(2, 3, 5, 6), "g": grid}, ["y"], opset=20)
    check([node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=padding, align_corners=align)],
          {"x": rnd(2, 3, 5, 6), "g": grid}, ["y"], opset=16, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_grid_sample_opset20(mode, padding):
    grid = RNG.uniform(-1.2, 1.2, size=(1, 3, 4, 2)).astype(np.float32)
    if mode == "cubic" and padding == "border":
        return check_reference([node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=padding,
                                     align_corners=1)], {"x": rnd(1, 2, 4, 5), "g": grid}, ["y"], opset=20)
    check([node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode=padding, align_corners=1)],
          {"x": rnd(1, 2, 4, 5), "g": grid}, ["y"], opset=20, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_volumetric(mode, align):
    grid = RNG.uniform(-1.1, 1.1, size=(2, 2, 3, 4, 3)).astype(np.float32)
    check([node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode="border", align_corners=align)],
          {"x": rnd(2, 2, 3, 4, 5), "g": grid}, ["y"], opset=20, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dims", [(2, 3, 4, 5), (2, 3, 3, 4, 5)])
@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid(dims, align):
    r = len(dims) - 2
    theta = rnd(dims[0], r, r + 1)
    check([node("AffineGrid", ["theta", "size"], ["g"], align_corners=align)], {"theta": theta}, ["g"],
          inits={"size": np.array(dims, np.int64)}, opset=20)


def test_affine_grid_feeds_grid_sample():
    theta = (np.eye(2, 3, dtype=np.float32)[None] + rnd(1, 2, 3) * 0.1).astype(np.float32)
    nodes = [node("AffineGrid", ["theta", "size"], ["g"]), node("GridSample", ["x", "g"], ["y"])]
    check(nodes, {"theta": theta, "x": rnd(1, 2, 6, 7)}, ["y"], inits={"size": np.array([1, 2, 5, 4], np.int64)},
          opset=20, rtol=1e-4)


def _rois(n, h, w):
    x1 = RNG.uniform(0, w - 2, n)
    y1 = RNG.uniform(0, h - 2, n)
    return np.stack([x1, y1, x1 + RNG.uniform(0.5, w / 2, n), y1 + RNG.uniform(0.5, h / 2, n)], 1).astype(np.float32)


@pytest.mark.parametrize("opset,ctm", [(10, None), (16, "half_pixel"), (16, "output_half_pixel")])
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ratio", [0, 2])
def test_roi_align(opset, ctm, mode, ratio):
    attrs = dict(mode=mode, output_height=3, output_width=4, sampling_ratio=ratio, spatial_scale=0.5)
    if ctm:
        attrs["coordinate_transformation_mode"] = ctm
    inputs = {"x": rnd(2, 3, 8, 9), "rois": _rois(5, 16, 18), "bi": np.array([0, 1, 1, 0, 1], np.int64)}
    check([node("RoiAlign", ["x", "rois", "bi"], ["y"], **attrs)], inputs, ["y"], opset=opset, rtol=1e-4, atol=1e-5)


def test_max_roi_pool():
    rois = np.concatenate([np.array([[0], [1], [1]], np.float32), _rois(3, 20, 20) * 1.0], 1)
    check([node("MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[3, 2], spatial_scale=0.5)],
          {"x": rnd(2, 3, 10, 10), "rois": rois}, ["y"], opset=13)


# ======================================================================================================
# Signal processing
# ======================================================================================================
@pytest.mark.parametrize("n", [8, 10])
@pytest.mark.parametrize("inverse,onesided,comp", [(0, 0, 1), (0, 0, 2), (0, 1, 1), (1, 0, 2), (1, 0, 1)])
@pytest.mark.parametrize("opset", [17, 20])
def test_dft(n, inverse, onesided, comp, opset):
    x = rnd(2, n, 3, comp)
    attrs = dict(inverse=inverse, onesided=onesided)
    if opset < 20:
        check([node("DFT", ["x"], ["y"], axis=1, **attrs)], {"x": x}, ["y"], opset=opset, rtol=1e-4, atol=1e-4)
    else:
        check([node("DFT", ["x", "", "axis"], ["y"], **attrs)], {"x": x}, ["y"],
              inits={"axis": np.array(-3, np.int64)}, opset=opset, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length", [6, 12, 16])
def test_dft_length(length):
    check([node("DFT", ["x", "len"], ["y"], axis=2)], {"x": rnd(2, 3, 10, 2)}, ["y"],
          inits={"len": np.array(length, np.int64)}, opset=17, rtol=1e-4, atol=1e-4)


def test_dft_inverse_onesided_matches_numpy():
    # ONNX Runtime has no inverse onesided DFT; numpy's irfft is the definition the ONNX reference uses.
    spec = np.fft.rfft(RNG.normal(size=(3, 10)), axis=1)
    x = np.stack([spec.real, spec.imag], -1).astype(np.float32)
    model = make_model([node("DFT", ["x"], ["y"], axis=1, inverse=1, onesided=1)], {"x": x}, ["y"], opset=17)
    engine, _ = build(model)
    got = run_kiln(engine, {"x": x})["y"]
    np.testing.assert_allclose(got[..., 0], np.fft.irfft(spec, n=10, axis=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("window", [False, True])
@pytest.mark.parametrize("onesided", [0, 1])
def test_stft(window, onesided):
    inits = {"step": np.array(5, np.int64)}
    ins = ["x", "step"]
    if window:
        inits["win"] = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(12) / 12)).astype(np.float32)
        ins.append("win")
    else:
        inits["len"] = np.array(12, np.int64)
        ins += ["", "len"]
    check([node("STFT", ins, ["y"], onesided=onesided)], {"x": rnd(2, 40, 1)}, ["y"], inits=inits, opset=17,
          rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_windows(op, periodic, dtype):
    nodes = [node(op, ["n"], ["w"], periodic=periodic, output_datatype=dtype), node("Mul", ["w", "x"], ["y"])]
    x = rnd(9).astype(np.float64 if dtype == TensorProto.DOUBLE else np.float32)
    check(nodes, {"x": x}, ["y"], inits={"n": np.array(9, np.int64)}, opset=17, rtol=1e-5, atol=1e-6)


def test_mel_weight_matrix():
    inits = {"bins": np.array(8, np.int64), "len": np.array(64, np.int64), "rate": np.array(8000, np.int64),
             "lo": np.array(50.0, np.float32), "hi": np.array(3500.0, np.float32)}
    nodes = [node("MelWeightMatrix", ["bins", "len", "rate", "lo", "hi"], ["m"]), node("MatMul", ["x", "m"], ["y"])]
    check(nodes, {"x": rnd(3, 33)}, ["y"], inits=inits, opset=17)


# ======================================================================================================
# Rearranging, unpooling, Det
# ======================================================================================================
@pytest.mark.parametrize("axis", [-1, 0, 1, -2])
@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32, np.float32])
def test_one_hot(axis, idx_dtype):
    idx = RNG.integers(-6, 8, size=(3, 4)).astype(idx_dtype)  # some out of range: rows of `off`
    # (ONNX Runtime implements int32 indices only with int32 depth and float values)
    depth_t, values_t = (np.int32, np.float32) if idx_dtype == np.int32 else (np.int64, np.int64)
    check([node("OneHot", ["i", "depth", "v"], ["y"], axis=axis)], {"i": idx}, ["y"],
          inits={"depth": np.array(6, depth_t), "v": np.array([2, 7], values_t)}, opset=11)


def test_one_hot_float_values():
    check([node("OneHot", ["i", "depth", "v"], ["y"])], {"i": rint(5, lo=0, hi=4, signed=False)}, ["y"],
          inits={"depth": np.array(4.0, np.float32), "v": np.array([-1.5, 3.25], np.float32)}, opset=11)


@pytest.mark.parametrize("time_axis", [0, 1])
def test_reverse_sequence(time_axis):
    shape = (5, 3, 2) if time_axis == 0 else (3, 5, 2)
    check([node("ReverseSequence", ["x", "lens"], ["y"], time_axis=time_axis, batch_axis=1 - time_axis)],
          {"x": rnd(*shape), "lens": np.array([5, 1, 3], np.int64)}, ["y"], opset=10)


@pytest.mark.parametrize("target,axes", [((4, 7), (1, 2)), ((5, 2, 3), None), ((6,), (-1,))])
def test_center_crop_pad(target, axes):
    attrs = {"axes": list(axes)} if axes else {}
    check([node("CenterCropPad", ["x", "shape"], ["y"], **attrs)], {"x": rnd(3, 5, 4)}, ["y"],
          inits={"shape": np.array(target, np.int64)}, opset=18)


def _pool_indices(n, c, pooled, out, kernel, stride):
    """Flat indices over [n, c, *out] of one position inside each pooling window (what MaxPool's Indices
    output holds; Kiln's MaxPool does not produce it, so the tests make their own)."""
    idx = np.zeros((n, c) + tuple(pooled), np.int64)
    for pos in np.ndindex(*idx.shape):
        ho, wo = pos[2:]
        h = min(ho * stride[0] + RNG.integers(0, kernel[0]), out[0] - 1)
        w = min(wo * stride[1] + RNG.integers(0, kernel[1]), out[1] - 1)
        idx[pos] = ((pos[0] * c + pos[1]) * out[0] + h) * out[1] + w
    return idx


def test_max_unpool():
    idx = _pool_indices(2, 3, (3, 4), (6, 8), (2, 2), (2, 2))
    check([node("MaxUnpool", ["x", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
          {"x": rnd(2, 3, 3, 4), "i": idx}, ["y"], opset=11)


def test_max_unpool_pads():
    idx = _pool_indices(1, 2, (3, 3), (5, 5), (3, 3), (2, 2))
    check([node("MaxUnpool", ["x", "i"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
          {"x": rnd(1, 2, 3, 3), "i": idx}, ["y"], opset=11)


def test_max_unpool_output_shape():
    idx = _pool_indices(1, 2, (3, 3), (8, 8), (3, 3), (2, 2))
    check([node("MaxUnpool", ["x", "i", "os"], ["y"], kernel_shape=[3, 3], strides=[2, 2])],
          {"x": rnd(1, 2, 3, 3), "i": idx}, ["y"], inits={"os": np.array([1, 2, 8, 8], np.int64)}, opset=11)


@pytest.mark.parametrize("image,block,attrs", [
    ((5, 5), (2, 2), {}),
    ((6, 7), (3, 2), {"strides": [2, 1], "pads": [1, 0, 1, 1], "dilations": [1, 2]}),
    ((4, 3, 5), (2, 1, 2), {"strides": [1, 2, 2]}),
])
def test_col2im(image, block, attrs):
    r = len(image)
    st = attrs.get("strides", [1] * r)
    dil = attrs.get("dilations", [1] * r)
    pads = attrs.get("pads", [0] * 2 * r)
    cols = 1
    for d in range(r):
        cols *= (image[d] + pads[d] + pads[d + r] - dil[d] * (block[d] - 1) - 1) // st[d] + 1
    x = rnd(2, 3 * int(np.prod(block)), cols)
    check([node("Col2Im", ["x", "img", "blk"], ["y"], **attrs)], {"x": x}, ["y"],
          inits={"img": np.array(image, np.int64), "blk": np.array(block, np.int64)}, opset=18)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 2, 5, 5), (1, 1)])
def test_det(shape):
    check([node("Det", ["x"], ["y"])], {"x": rnd(*shape)}, ["y"], opset=11, rtol=1e-4, atol=1e-5)


def test_det_singular():
    x = rnd(2, 3, 3)
    x[0, 2] = x[0, 0] + x[0, 1]  # rank 2
    check([node("Det", ["x"], ["y"])], {"x": x}, ["y"], opset=11, rtol=1e-4, atol=1e-5)


# ======================================================================================================
# Swish, bitwise, TensorScatter, RotaryEmbedding
# ======================================================================================================
@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_swish(alpha):
    check_reference([node("Swish", ["x"], ["y"], alpha=alpha)], {"x": rnd(3, 4)}, ["y"], opset=24)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise_binary(op, dtype):
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, size=(2, 3, 4), endpoint=True).astype(dtype)
    b = RNG.integers(info.min, info.max, size=(3, 1), endpoint=True).astype(dtype)
    check([node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"], opset=18)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise_not(dtype):
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, size=(3, 5), endpoint=True).astype(dtype)
    check([node("BitwiseNot", ["a"], ["y"])], {"a": a}, ["y"], opset=18)


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [-2, 2])
def test_tensor_scatter(mode, axis):
    past = rnd(2, 3, 6, 4)
    upd = rnd(2, 3, 3, 4) if axis == -2 else rnd(2, 3, 6, 4)[:, :, :3].copy()
    wi = np.array([1, 3 if mode == "linear" else 5], np.int64)
    check_reference([node("TensorScatter", ["past", "upd", "wi"], ["y"], mode=mode, axis=axis)],
                    {"past": past, "upd": upd, "wi": wi}, ["y"], opset=24)


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rot", [0, 4])
@pytest.mark.parametrize("layout", ["4d", "3d"])
@pytest.mark.parametrize("positions", [True, False])
def test_rotary_embedding(interleaved, rot, layout, positions):
    b, h, s, d = 2, 3, 5, 8
    half = (rot or d) // 2
    x = rnd(b, h, s, d) if layout == "4d" else rnd(b, s, h * d)
    attrs = dict(interleaved=interleaved, rotary_embedding_dim=rot)
    if layout == "3d":
        attrs["num_heads"] = h
    inputs = {"x": x}
    if positions:
        inputs.update(cos=rnd(10, half), sin=rnd(10, half), pos=RNG.integers(0, 10, size=(b, s)).astype(np.int64))
        ins = ["x", "cos", "sin", "pos"]
    else:
        inputs.update(cos=rnd(b, s, half), sin=rnd(b, s, half))
        ins = ["x", "cos", "sin"]
    check_reference([node("RotaryEmbedding", ins, ["y"], **attrs)], inputs, ["y"], opset=23)


# ======================================================================================================
# BitCast, ai.onnx.ml, training optimizers
# ======================================================================================================
@pytest.mark.parametrize("src,dst,to", [(np.float32, np.int32, TensorProto.INT32), (np.int64, np.float64, TensorProto.DOUBLE),
                                        (np.int8, np.uint8, TensorProto.UINT8), (np.bool_, np.uint8, TensorProto.UINT8)])
def test_bitcast(src, dst, to):
    x = rnd(2, 3).astype(src) if src != np.bool_ else RNG.integers(0, 2, size=(2, 3)).astype(np.bool_)
    if src in (np.int8, np.int64):
        x = RNG.integers(-100, 100, size=(2, 3)).astype(src)
    model = make_model([node("BitCast", ["x"], ["y"], to=to)], {"x": x}, ["y"], opset=26)
    engine, _ = build(model)
    got = run_kiln(engine, {"x": x})["y"]
    np.testing.assert_array_equal(got.view(np.uint8), x.view(dst).view(np.uint8))
    assert got.dtype == dst


def _ml_check(nodes, inputs, outputs):
    from test_onnx_import import compare, run_ort
    model = make_model(nodes, inputs, outputs, opset=13, extra_opsets=[("ai.onnx.ml", 3)])
    engine, _ = build(model)
    compare(run_kiln(engine, inputs), run_ort(model, inputs))


def test_binarizer():
    _ml_check([helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.3)], {"x": rnd(3, 4)}, ["y"])


@pytest.mark.parametrize("xshape,ishape", [((3, 5), (2,)), ((2, 3, 5), (1, 3)), ((6,), (4,))])
def test_array_feature_extractor(xshape, ishape):
    idx = RNG.integers(0, xshape[-1], size=ishape).astype(np.int64)
    _ml_check([helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain="ai.onnx.ml")],
              {"x": rnd(*xshape), "i": idx}, ["y"])


TRAINING = [("ai.onnx.preview.training", 1)]


def _opt_inputs(groups, t):
    """R, T and `groups` groups of two tensors (X0, X1, G0, G1, ...); the last group (a squared-gradient
    accumulator for Adam) is non-negative."""
    inputs = {"r": np.array(0.1, np.float32), "t": np.array(t, np.int64)}
    for g in range(groups):
        for k in range(2):
            inputs[f"s{g}_{k}"] = rnd(2, 3, signed=g < 3)
    return inputs, ["r", "t"] + [f"s{g}_{k}" for g in range(groups) for k in range(2)]


@pytest.mark.parametrize("t", [0, 3])
def test_adagrad(t):
    inputs, names = _opt_inputs(3, t)
    inputs["s2_0"], inputs["s2_1"] = np.abs(inputs["s2_0"]), np.abs(inputs["s2_1"])
    outs = ["x0", "x1", "h0", "h1"]
    check_reference([helper.make_node("Adagrad", names, outs, domain="ai.onnx.preview.training", decay_factor=0.1,
                                      epsilon=1e-5, norm_coefficient=0.01)], inputs, outs, opset=13,
                    extra_opsets=TRAINING)


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("t", [0, 2])
def test_momentum(mode, t):
    inputs, names = _opt_inputs(3, t)
    outs = ["x0", "x1", "v0", "v1"]
    check_reference([helper.make_node("Momentum", names, outs, domain="ai.onnx.preview.training", alpha=0.9, beta=0.5,
                                      mode=mode, norm_coefficient=0.02)], inputs, outs, opset=13,
                    extra_opsets=TRAINING)


@pytest.mark.parametrize("t", [0, 4])
def test_adam(t):
    inputs, names = _opt_inputs(4, t)
    outs = ["x0", "x1", "v0", "v1", "h0", "h1"]
    check_reference([helper.make_node("Adam", names, outs, domain="ai.onnx.preview.training", alpha=0.85, beta=0.95,
                                      epsilon=1e-4, norm_coefficient=0.01, norm_coefficient_post=0.02)],
                    inputs, outs, opset=13, extra_opsets=TRAINING)
