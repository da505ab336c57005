"""com.microsoft ops of ONNX Runtime's transformer optimizer, imported by Kiln as compositions of IR ops,
compared with ONNX Runtime (which implements them) on small random models built with onnx.helper."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln_helpers import CapturingLogger, assert_close, build_engine, run_engine

import onnxruntime as ort  # scripts/setup.sh installs it: a missing one is an error, not a skip

RNG = np.random.default_rng(99)
MS = "com.microsoft"
_T = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
      np.dtype(np.int64): TensorProto.INT64}


def rnd(*shape, scale=1.0):
    return RNG.uniform(-scale, scale, size=shape).astype(np.float32)


def ms_model(op, inputs, outputs, inits=None, opset=17, domain=MS, **attrs):
    """inputs: ordered {name: array or None} (None = omitted); names in `inits` become initializers."""
    inits = inits or {}
    names = [k if v is not None else "" for k, v in inputs.items()]
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(op, names, outputs, domain=domain, **attrs)
    vis = [helper.make_tensor_value_info(k, _T[v.dtype], list(v.shape)) for k, v in inputs.items()
           if v is not None and k not in inits]
    ini = [numpy_helper.from_array(inputs[k], k) for k in inits if inputs.get(k) is not None]
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs if o]
    g = helper.make_graph([node], "ms", vis, outs, ini)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])
    m.ir_version = 8
    return m


def ort_ref(m, feed):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def check(op, inputs, outputs, inits=(), rtol=1e-4, atol=1e-5, **attrs):
    m = ms_model(op, inputs, outputs, inits=set(inits), **attrs)
    feed = {k: v for k, v in inputs.items() if v is not None and k not in inits}
    got = run_engine(build_engine(m.SerializeToString()), feed)
    ref = ort_ref(m, feed)
    for o in outputs:
        if o:
            assert_close(got[o], ref[o], rtol=rtol, atol=atol, what=f"{op} {o}")


# ---- pointwise ----------------------------------------------------------------------------------------------
def test_gelu_family():
    check("Gelu", {"x": rnd(2, 3, 8, scale=3)}, ["y"])
    check("BiasGelu", {"a": rnd(2, 3, 8, scale=3), "b": rnd(8)}, ["y"])
    check("FastGelu", {"x": rnd(2, 3, 8, scale=3)}, ["y"])
    check("FastGelu", {"x": rnd(2, 3, 8, scale=3), "bias": rnd(8)}, ["y"], inits=["bias"])
    check("QuickGelu", {"x": rnd(2, 3, 8, scale=3)}, ["y"])
    check("QuickGelu", {"x": rnd(2, 3, 8, scale=3)}, ["y"], alpha=1.3)


def test_bias_add():
    """ONNX Runtime implements BiasAdd on CUDA only: numpy is the reference."""
    x, bias, skip = rnd(2, 3, 8), rnd(8), rnd(2, 3, 8)
    m = ms_model("BiasAdd", {"x": x, "bias": bias, "skip": skip}, ["y"])
    got = run_engine(build_engine(m.SerializeToString()), {"x": x, "bias": bias, "skip": skip})
    assert_close(got["y"], x + bias + skip, what="BiasAdd")


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_fused_matmul(ta, tb):
    a = rnd(2, 5, 3) if ta else rnd(2, 3, 5)
    b = rnd(4, 5) if tb else rnd(5, 4)
    check("FusedMatMul", {"a": a, "b": b}, ["y"], transA=ta, transB=tb, alpha=0.75)


# ---- normalizations ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta,bias", [(True, True), (False, False), (True, False)])
def test_skip_layer_norm(beta, bias):
    h = 16
    inputs = {"x": rnd(2, 5, h), "skip": rnd(2, 5, h), "gamma": rnd(h), "beta": rnd(h) if beta else None,
              "bias": rnd(h) if bias else None}
    check("SkipLayerNormalization", inputs, ["y", "", "", "sum"], inits=["gamma", "beta", "bias"], epsilon=1e-5)


def test_skip_layer_norm_statistics_outputs():
    h = 8
    inputs = {"x": rnd(2, 3, h), "skip": rnd(2, 3, h), "gamma": rnd(h), "beta": rnd(h)}
    check("SkipLayerNormalization", inputs, ["y", "mean", "inv_std"], inits=["gamma", "beta"])


def test_skip_simplified_layer_norm():
    h = 16
    inputs = {"x": rnd(2, 5, h), "skip": rnd(2, 5, h), "gamma": rnd(h), "bias": rnd(h)}
    check("SkipSimplifiedLayerNormalization", inputs, ["y", "", "inv", "sum"], inits=["gamma", "bias"], epsilon=1e-6)
    inputs["bias"] = None
    check("SkipSimplifiedLayerNormalization", inputs, ["y"], inits=["gamma"])


def test_simplified_layer_norm_default_domain():
    m = ms_model("SimplifiedLayerNormalization", {"x": rnd(2, 3, 8), "scale": rnd(8)}, ["y", "inv"],
                 inits={"scale"}, domain="", axis=-1, epsilon=1e-6)
    feed = {"x": rnd(2, 3, 8)}
    got, ref = run_engine(build_engine(m.SerializeToString()), feed), ort_ref(m, feed)
    for o in ("y", "inv"):
        assert_close(got[o], ref[o], what=o)


@pytest.mark.parametrize("segment,mask,pos_ids", [(True, True, False), (False, False, False), (True, True, True)])
def test_embed_layer_norm(segment, mask, pos_ids):
    b, s, h, vocab = 2, 5, 8, 11
    ids = RNG.integers(0, vocab, size=(b, s)).astype(np.int32)
    inputs = {"ids": ids, "seg_ids": RNG.integers(0, 2, size=(b, s)).astype(np.int32) if segment else None,
              "word": rnd(vocab, h), "pos": rnd(16, h), "seg": rnd(2, h) if segment else None,
              "gamma": rnd(h), "beta": rnd(h),
              "mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32) if mask else None,
              "pos_ids": RNG.integers(0, 16, size=(b, s)).astype(np.int32) if pos_ids else None}
    check("EmbedLayerNormalization", inputs, ["y", "mask_index", "sum"], inits=["word", "pos", "seg", "gamma", "beta"],
          epsilon=1e-5)


# ---- attention -----------------------------------------------------------------------------------------------
def attention_inputs(b=2, s=4, hidden=8, mask=None, past=None, bias=True, attn_bias=False, heads=2):
    inputs = {"x": rnd(b, s, hidden), "w": rnd(hidden, 3 * hidden, scale=0.5),
              "bias": rnd(3 * hidden) if bias else None, "mask": mask,
              "past": past, "attention_bias": rnd(b, heads, s, s + (past.shape[3] if past is not None else 0))
              if attn_bias else None}
    return inputs


@pytest.mark.parametrize("mask_kind", ["none", "end", "end_start", "raw2d", "raw3d"])
def test_attention_mask_index(mask_kind):
    b, s = 2, 4
    mask = {"none": None, "end": np.array([4, 2], np.int32), "end_start": np.array([4, 3, 0, 1], np.int32),
            "raw2d": np.array([[1, 1, 0, 1], [1, 1, 1, 0]], np.int32),
            "raw3d": RNG.integers(0, 2, size=(b, s, s)).astype(np.int32) | np.eye(s, dtype=np.int32)[None]}[mask_kind]
    check("Attention", attention_inputs(b, s, mask=mask), ["y"], inits=["w", "bias"], num_heads=2)


def test_attention_unidirectional_scale_and_bias():
    check("Attention", attention_inputs(mask=np.array([4, 3], np.int32), attn_bias=True), ["y"],
          inits=["w", "bias"], num_heads=2, unidirectional=1, scale=0.3)


def test_attention_past_present():
    past = rnd(2, 2, 2, 3, 4)
    check("Attention", attention_inputs(past=past, bias=False), ["y", "present"], inits=["w"], num_heads=2,
          unidirectional=1)


def test_attention_qkv_hidden_sizes():
    inputs = {"x": rnd(2, 3, 6), "w": rnd(6, 8 + 8 + 12, scale=0.5), "bias": rnd(28)}
    check("Attention", inputs, ["y"], inits=["w", "bias"], num_heads=2, qkv_hidden_sizes=[8, 8, 12])


@pytest.mark.parametrize("mask_kind", ["none", "raw2d", "end"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_multi_head_attention(mask_kind, with_bias):
    b, s, l, d = 2, 3, 5, 8
    mask = {"none": None, "raw2d": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32),
            "end": np.array([3, 5], np.int32)}[mask_kind]
    inputs = {"q": rnd(b, s, d), "k": rnd(b, l, d), "v": rnd(b, l, d), "bias": rnd(3 * d) if with_bias else None,
              "mask": mask}
    check("MultiHeadAttention", inputs, ["y"], inits=["bias"], num_heads=2)


def test_multi_head_attention_attention_bias_and_past():
    b, s, p, d, n = 2, 3, 2, 8, 2
    inputs = {"q": rnd(b, s, d), "k": rnd(b, s, d), "v": rnd(b, s, d), "bias": None, "mask": None,
              "attention_bias": rnd(1, n, s, s + p), "past_key": rnd(b, n, p, d // n), "past_value": rnd(b, n, p, d // n)}
    check("MultiHeadAttention", inputs, ["y", "present_key", "present_value"], num_heads=n)


def test_multi_head_attention_unidirectional():
    b, s, d = 1, 4, 8
    inputs = {"q": rnd(b, s, d), "k": rnd(b, s, d), "v": rnd(b, s, d)}
    check("MultiHeadAttention", inputs, ["y"], num_heads=2, unidirectional=1)


def test_multi_head_attention_4d_key_value():
    b, s, l, n, h = 2, 3, 4, 2, 4
    check("MultiHeadAttention", {"q": rnd(b, s, n * h), "k": rnd(b, n, l, h), "v": rnd(b, n, l, h)}, ["y"], num_heads=n)


def test_multi_head_attention_packed_kv():
    """ONNX Runtime's CPU kernel has no packed key/value: the reference is its run on the unpacked form."""
    b, s, l, n, h = 2, 3, 4, 2, 4
    q, kv = rnd(b, s, n * h), rnd(b, l, n, 2, h)
    packed = ms_model("MultiHeadAttention", {"q": q, "kv": kv}, ["y"], num_heads=n)
    got = run_engine(build_engine(packed.SerializeToString()), {"q": q, "kv": kv})
    k, v = kv[:, :, :, 0].reshape(b, l, n * h), kv[:, :, :, 1].reshape(b, l, n * h)
    plain = ms_model("MultiHeadAttention", {"q": q, "k": k, "v": v}, ["y"], num_heads=n)
    assert_close(got["y"], ort_ref(plain, {"q": q, "k": k, "v": v})["y"], what="packed KV")


def test_multi_head_attention_packed_qkv():
    """Packed [B, S, N, 3, h] query/key/value, checked against ONNX Runtime on the unpacked form."""
    b, s, n, h = 2, 3, 2, 4
    qkv = rnd(b, s, n, 3, h)
    packed = ms_model("MultiHeadAttention", {"qkv": qkv}, ["y"], num_heads=n)
    got = run_engine(build_engine(packed.SerializeToString()), {"qkv": qkv})
    q, k, v = (qkv[:, :, :, i].reshape(b, s, n * h) for i in range(3))
    plain = ms_model("MultiHeadAttention", {"q": q, "k": k, "v": v}, ["y"], num_heads=n)
    assert_close(got["y"], ort_ref(plain, {"q": q, "k": k, "v": v})["y"], what="packed QKV")


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rank", [3, 4])
def test_rotary_embedding(interleaved, rank):
    b, s, n, h, max_pos = 2, 5, 2, 8, 16
    x = rnd(b, s, n * h) if rank == 3 else rnd(b, n, s, h)
    angles = np.arange(max_pos)[:, None] * (1.0 / 10000 ** (np.arange(h // 2) * 2 / h))[None]
    inputs = {"x": x, "pos": RNG.integers(0, max_pos, size=(b, s)).astype(np.int64),
              "cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32)}
    attrs = {"interleaved": interleaved}
    if rank == 3:
        attrs["num_heads"] = n
    check("RotaryEmbedding", inputs, ["y"], inits=["cos", "sin"], **attrs)


def test_rotary_embedding_partial_dim():
    b, s, n, h, rd, max_pos = 1, 4, 2, 8, 4, 8
    angles = np.arange(max_pos)[:, None] * (1.0 / 10000 ** (np.arange(rd // 2) * 2 / rd))[None]
    inputs = {"x": rnd(b, s, n * h), "pos": np.arange(s, dtype=np.int64)[None],
              "cos": np.cos(angles).astype(np.float32), "sin": np.sin(angles).astype(np.float32)}
    check("RotaryEmbedding", inputs, ["y"], inits=["cos", "sin"], num_heads=n, rotary_embedding_dim=rd)


def test_unsupported_mask_is_a_clear_error():
    inputs = attention_inputs(mask=np.ones((2, 1, 4, 4), np.int32))
    m = ms_model("Attention", inputs, ["y"], inits={"w", "bias"}, num_heads=2)
    logger = CapturingLogger()
    net = kiln.Builder(logger).create_network(0)
    parser = kiln.OnnxParser(net, logger)
    assert not parser.parse(m.SerializeToString())
    msg = str(parser.get_error(0))
    assert "Attention" in msg and "4-D mask" in msg, msg
