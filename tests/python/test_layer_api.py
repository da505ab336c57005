"""Networks written layer by layer through the TensorRT network-definition API, checked against numpy."""
import numpy as np
import pytest

import kiln as trt
from kiln_helpers import CapturingLogger

RNG = np.random.default_rng(7)


def _run(network, builder, logger, inputs):
    config = builder.create_builder_config()
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, logger.messages
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    ctx = engine.create_execution_context()
    outs, keep = {}, []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            a = np.ascontiguousarray(inputs[name])
            keep.append(a)
            ctx.set_tensor_address(name, a.ctypes.data)
        else:
            dt = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            o = np.full(tuple(ctx.get_tensor_shape(name)), np.nan if dt.kind == "f" else -7, dt)  # poison
            outs[name] = o
            ctx.set_tensor_address(name, o.ctypes.data)
    assert ctx.execute_async_v3(0), logger.messages
    return outs


def _conv2d(x, w, b, stride=1, pad=0):
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, oh, ow))
    for i in range(r):
        for j in range(s):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += np.einsum("nchw,kc->nkhw", patch, w[:, :, i, j])
    return out + b.reshape(1, -1, 1, 1)


def _maxpool2(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def test_hand_built_lenet():
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    w1 = (RNG.standard_normal((6, 1, 5, 5)) * 0.2).astype(np.float32)
    b1 = RNG.standard_normal(6).astype(np.float32)
    w2 = (RNG.standard_normal((16, 6, 5, 5)) * 0.1).astype(np.float32)
    b2 = RNG.standard_normal(16).astype(np.float32)
    fc1 = (RNG.standard_normal((400, 120)) * 0.05).astype(np.float32)
    fc2 = (RNG.standard_normal((120, 10)) * 0.1).astype(np.float32)
    fcb = RNG.standard_normal((1, 10)).astype(np.float32)

    data = network.add_input("data", trt.float32, (2, 1, 28, 28))
    conv1 = network.add_convolution_nd(input=data, num_output_maps=6, kernel_shape=(5, 5),
                                       kernel=trt.Weights(w1), bias=trt.Weights(b1))
    conv1.stride_nd = (1, 1)
    conv1.padding_nd = (2, 2)
    assert tuple(conv1.get_output(0).shape) == (2, 6, 28, 28)
    relu1 = network.add_activation(input=conv1.get_output(0), type=trt.ActivationType.RELU)
    pool1 = network.add_pooling_nd(input=relu1.get_output(0), type=trt.PoolingType.MAX, window_size=trt.DimsHW(2, 2))
    pool1.stride_nd = (2, 2)
    conv2 = network.add_convolution(pool1.get_output(0), 16, (5, 5), w2, b2)
    relu2 = network.add_activation(conv2.get_output(0), trt.ActivationType.RELU)
    pool2 = network.add_pooling(relu2.get_output(0), trt.PoolingType.MAX, (2, 2))
    shuffle = network.add_shuffle(pool2.get_output(0))
    shuffle.reshape_dims = (2, 400)
    w_fc1 = network.add_constant((400, 120), trt.Weights(fc1))
    mm1 = network.add_matrix_multiply(shuffle.get_output(0), trt.MatrixOperation.NONE, w_fc1.get_output(0),
                                      trt.MatrixOperation.NONE)
    act = network.add_activation(mm1.get_output(0), trt.ActivationType.TANH)
    w_fc2 = network.add_constant((10, 120), fc2.T.copy())
    mm2 = network.add_matrix_multiply(act.get_output(0), trt.MatrixOperation.NONE, w_fc2.get_output(0),
                                      trt.MatrixOperation.TRANSPOSE)
    bias = network.add_constant((1, 10), fcb)
    add = network.add_elementwise(mm2.get_output(0), bias.get_output(0), trt.ElementWiseOperation.SUM)
    softmax = network.add_softmax(add.get_output(0))
    softmax.axes = 1 << 1
    softmax.get_output(0).name = "prob"
    network.mark_output(softmax.get_output(0))
    assert network.num_layers == 15 and network.num_outputs == 1
    assert network[0].type == trt.LayerType.CONVOLUTION and conv1.num_output_maps == 6
    assert pool1.type == trt.PoolingType.MAX
    assert tuple(network.get_output(0).shape) == (2, 10)

    x = RNG.standard_normal((2, 1, 28, 28)).astype(np.float32)
    y = _run(network, builder, logger, {"data": x})["prob"]
    h = _maxpool2(np.maximum(_conv2d(x.astype(np.float64), w1, b1, pad=2), 0))
    h = _maxpool2(np.maximum(_conv2d(h, w2, b2), 0)).reshape(2, 400)
    z = np.tanh(h @ fc1) @ fc2 + fcb
    ref = np.exp(z - z.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)


def test_hand_built_transformer_block():
    """One pre-norm attention block: LayerNorm (normalization layer), QKV matmuls, shuffles to heads,
    scaled softmax attention, output projection, residual, GELU MLP."""
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    S, D, H = 8, 16, 2
    dh = D // H
    x_in = net.add_input("x", trt.float32, (1, S, D))

    def const(a):
        return net.add_constant(a.shape, a.astype(np.float32)).get_output(0)

    gamma, beta = RNG.standard_normal((1, 1, D)), RNG.standard_normal((1, 1, D))
    wq, wk, wv, wo = (RNG.standard_normal((D, D)) / np.sqrt(D) for _ in range(4))
    w1, w2 = RNG.standard_normal((D, 4 * D)) / np.sqrt(D), RNG.standard_normal((4 * D, D)) / np.sqrt(4 * D)
    ln = net.add_normalization(x_in, const(gamma), const(beta), 1 << 2)
    ln.epsilon = 1e-5
    h = ln.get_output(0)

    def proj(t, w):
        return net.add_matrix_multiply(t, trt.MatrixOperation.NONE, const(w[None]), trt.MatrixOperation.NONE).get_output(0)

    def heads(t):
        s = net.add_shuffle(t)
        s.reshape_dims = (1, S, H, dh)
        s.second_transpose = (0, 2, 1, 3)
        return s.get_output(0)

    q, k, v = heads(proj(h, wq)), heads(proj(h, wk)), heads(proj(h, wv))
    scores = net.add_matrix_multiply(q, trt.MatrixOperation.NONE, k, trt.MatrixOperation.TRANSPOSE).get_output(0)
    scaled = net.add_elementwise(scores, const(np.full((1, 1, 1, 1), 1 / np.sqrt(dh))),
                                 trt.ElementWiseOperation.PROD).get_output(0)
    sm = net.add_softmax(scaled)
    sm.axes = 1 << 3
    ctx = net.add_matrix_multiply(sm.get_output(0), trt.MatrixOperation.NONE, v, trt.MatrixOperation.NONE)
    merge = net.add_shuffle(ctx.get_output(0))
    merge.first_transpose = (0, 2, 1, 3)
    merge.reshape_dims = (1, S, D)
    attn = proj(merge.get_output(0), wo)
    res = net.add_elementwise(x_in, attn, trt.ElementWiseOperation.SUM).get_output(0)
    mlp = net.add_activation(proj(res, w1), trt.ActivationType.GELU_ERF).get_output(0)
    out = net.add_elementwise(res, proj(mlp, w2), trt.ElementWiseOperation.SUM).get_output(0)
    out.name = "y"
    net.mark_output(out)

    x = RNG.standard_normal((1, S, D)).astype(np.float32)
    y = _run(net, builder, logger, {"x": x})["y"]

    from math import erf
    xd = x.astype(np.float64)
    mu, var = xd.mean(-1, keepdims=True), xd.var(-1, keepdims=True)
    hd = (xd - mu) / np.sqrt(var + 1e-5) * gamma + beta
    sp = lambda t: t.reshape(1, S, H, dh).transpose(0, 2, 1, 3)
    qd, kd, vd = sp(hd @ wq), sp(hd @ wk), sp(hd @ wv)
    s = qd @ kd.transpose(0, 1, 3, 2) / np.sqrt(dh)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    a = (p @ vd).transpose(0, 2, 1, 3).reshape(1, S, D) @ wo
    r = xd + a
    m = r @ w1
    g = 0.5 * m * (1 + np.vectorize(erf)(m / np.sqrt(2)))
    np.testing.assert_allclose(y, r + g @ w2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["unary", "reduce", "slice", "gather", "concat", "cast", "select", "topk",
                                  "scale", "padding", "einsum", "fill", "identity", "shape", "resize", "deconv"])
def test_single_layers(case):
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    t = net.add_input("x", trt.float32, x.shape)
    inputs = {"x": x}
    if case == "unary":
        layer = net.add_unary(t, trt.UnaryOperation.EXP)
        ref = np.exp(x)
    elif case == "reduce":
        layer = net.add_reduce(t, trt.ReduceOperation.AVG, axes=(1 << 1) | (1 << 3), keep_dims=True)
        ref = x.mean(axis=(1, 3), keepdims=True)
    elif case == "slice":
        layer = net.add_slice(t, start=(0, 1, 0, 1), shape=(2, 2, 2, 2), stride=(1, 1, 2, 2))
        ref = x[:, 1:3, 0:4:2, 1:5:2]
    elif case == "gather":
        idx = np.array([2, 0, 2], np.int32)
        layer = net.add_gather(t, net.add_constant(idx.shape, idx).get_output(0), axis=1)
        ref = x[:, idx]
    elif case == "concat":
        layer = net.add_concatenation([t, t])
        layer.axis = 3
        ref = np.concatenate([x, x], axis=3)
    elif case == "cast":
        layer = net.add_cast(t, trt.int32)
        ref = x.astype(np.int32)
    elif case == "select":
        cond = net.add_elementwise(t, net.add_constant((1, 1, 1, 1), np.zeros((1,), np.float32)).get_output(0),
                                   trt.ElementWiseOperation.GREATER)
        layer = net.add_select(cond.get_output(0), t, net.add_unary(t, trt.UnaryOperation.NEG).get_output(0))
        ref = np.abs(x)
    elif case == "topk":
        layer = net.add_topk(t, trt.TopKOperation.MAX, 2, 1 << 3)
        ref = -np.sort(-x, axis=3)[..., :2]
    elif case == "scale":
        sc, sh = RNG.standard_normal(3).astype(np.float32), RNG.standard_normal(3).astype(np.float32)
        layer = net.add_scale(t, trt.ScaleMode.CHANNEL, shift=sh, scale=sc)
        ref = x * sc.reshape(1, 3, 1, 1) + sh.reshape(1, 3, 1, 1)
    elif case == "padding":
        layer = net.add_padding_nd(t, (1, 0), (0, 2))
        ref = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 2)))
    elif case == "einsum":
        layer = net.add_einsum([t, t], "abcd,abed->abce")
        ref = np.einsum("abcd,abed->abce", x, x)
    elif case == "fill":
        layer = net.add_fill((2, 3), trt.FillOperation.LINSPACE, trt.float32)
        layer.alpha = 1.0
        layer.beta = [10.0, 1.0]
        ref = 1.0 + 10.0 * np.arange(2)[:, None] + np.arange(3)[None, :]
    elif case == "identity":
        layer = net.add_identity(t)
        ref = x
    elif case == "shape":
        layer = net.add_shape(t)
        ref = np.array(x.shape, np.int64)
    elif case == "resize":
        layer = net.add_resize(t)
        layer.shape = (2, 3, 8, 10)
        layer.resize_mode = trt.InterpolationMode.NEAREST
        ref = x.repeat(2, axis=2).repeat(2, axis=3)
    elif case == "deconv":
        w = RNG.standard_normal((3, 2, 2, 2)).astype(np.float32)
        layer = net.add_deconvolution_nd(t, 2, (2, 2), w, None)
        layer.stride_nd = (2, 2)
        ref = np.einsum("nchw,ckij->nkhiwj", x, w).reshape(2, 2, 8, 10)
    out = layer.get_output(0)
    out.name = "out"
    net.mark_output(out)
    y = _run(net, builder, logger, inputs)["out"]
    assert y.shape == ref.shape, (y.shape, ref.shape)
    if y.dtype.kind == "f":
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(y, ref)


def test_bad_layer_inputs_return_none_and_log():
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    a = net.add_input("a", trt.float32, (2, 3))
    b = net.add_input("b", trt.float32, (4, 5))
    assert net.add_elementwise(a, b, trt.ElementWiseOperation.SUM) is None
    assert any("broadcast" in m for m in logger.errors()), logger.messages
    assert net.add_matrix_multiply(a, trt.MatrixOperation.NONE, b, trt.MatrixOperation.NONE) is None
    assert net.num_layers == 0
    with pytest.raises(TypeError):
        net.add_activation(None, trt.ActivationType.RELU)
    assert builder.build_serialized_network(net, builder.create_builder_config()) is None  # no outputs
    assert any("no outputs" in m for m in logger.errors())
