"""HF transformers GPT2LMHeadModel (eager attention, no cache) as torch.onnx.export writes it.

Inputs input_ids [, attention_mask] (int64 [batch, seq]); output logits [batch, seq, vocab].
Patterns: Gather token and position embeddings (position ids = Range over Shape), pre-norm
LayerNormalization (or the decomposed ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div form), Conv1D as
MatMul+Add, Split of qkv with a `split` input, heads via Shape-built Reshape + Transpose, Div by
sqrt(d), causal mask by Slice of a lower-triangular bool buffer then Where(mask, w, float.min),
padding mask (1 - mask) * float.min, Softmax, gelu_new (tanh form), final LayerNorm, lm_head as
MatMul with a Transpose of the tied token embedding."""
import math

import numpy as np
from onnx import TensorProto

from .common import (ACT_GAIN, FLOAT_MIN, Graph, config_of, gelu_tanh, layer_norm, resolve,
                     token_sample)

FULL = dict(num_layers=12, hidden=768, heads=12, vocab=50257, n_positions=1024, seq=128)
SMALL = dict(num_layers=2, hidden=64, heads=4, vocab=1000, n_positions=64, seq=16)


def conv1d(g, x, cin, cout, module, gain=1.0):
    """HF Conv1D: weight stored [in, out], x @ W + b."""
    with g.scope(module):
        w = g.param("weight", g.weight((cin, cout), cin, gain))
        return g.op("Add", g.op("MatMul", x, w), g.param("bias", g.randn(cout, 0.1)))


def attention(g, x, causal_buf, pad_mask, cfg, out_gain):
    e, heads = cfg["hidden"], cfg["heads"]
    d = e // heads
    with g.scope("attn"):
        qkv = conv1d(g, x, e, 3 * e, "c_attn")
        q, k, v = g.op("Split", qkv, g.const([e, e, e], np.int64), axis=2, outputs=3)
        q, k, v = (g.op("Transpose", g.reshape(t, [g.dim(t, 0), g.dim(t, 1), heads, d]),
                        perm=[0, 2, 1, 3]) for t in (q, k, v))
        w = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
        w = g.op("Div", w, g.const(math.sqrt(d)))
        # causal_mask = bias[:, :, key_len - query_len : key_len, :key_len]
        q_len, k_len = g.dim(q, -2), g.dim(k, -2)
        end = g.unsqueeze(k_len, [0])
        m = g.op("Slice", causal_buf, g.unsqueeze(g.op("Sub", k_len, q_len), [0]), end,
                 g.const([2], np.int64), g.const([1], np.int64))
        m = g.op("Slice", m, g.const([0], np.int64), end, g.const([3], np.int64),
                 g.const([1], np.int64))
        w = g.op("Where", m, w, g.const(FLOAT_MIN))
        if pad_mask is not None:
            w = g.op("Add", w, pad_mask)
        ctx = g.op("MatMul", g.op("Softmax", w, axis=-1), v)
        ctx = g.op("Transpose", ctx, perm=[0, 2, 1, 3])
        ctx = g.reshape(ctx, [g.dim(ctx, 0), g.dim(ctx, 1), e])
        return conv1d(g, ctx, e, e, "c_proj", gain=out_gain)


def build(batch=1, seq=None, num_layers=None, hidden=None, heads=None, vocab=None,
          n_positions=None, attention_mask=True, decomposed_ln=False, full=True, seed=0,
          opset=17):
    """batch and seq may be ints or symbolic dim names. attention_mask adds that input (HF's
    padding mask); decomposed_ln writes LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div
    (what opset < 17 exports look like; used automatically below opset 17)."""
    cfg = resolve(FULL, SMALL, full, seq=seq, num_layers=num_layers, hidden=hidden, heads=heads,
                  vocab=vocab, n_positions=n_positions)
    g = Graph("gpt2", opset, seed)
    e, s, L = cfg["hidden"], cfg["seq"], cfg["num_layers"]
    res_gain = 1.0 / (2 * L)
    ln = lambda x, name: layer_norm(g, x, e, 1e-5, name, decomposed_ln)  # noqa: E731
    ids = g.input("input_ids", np.int64, [batch, s])
    mask = g.input("attention_mask", np.int64, [batch, s]) if attention_mask else None

    with g.scope("transformer"):
        seq_len = g.dim(ids, 1)
        ids2 = g.reshape(ids, [-1, seq_len])  # input_ids.view(-1, input_shape[-1])
        pos = g.op("Range", g.const(0, np.int64), seq_len, g.const(1, np.int64))
        pos = g.reshape(g.unsqueeze(pos, [0]), [-1, seq_len])
        pad = None
        if mask is not None:  # mask.view(batch, -1)[:, None, None, :]; (1.0 - m) * finfo.min
            pad = g.reshape(mask, [g.dim(ids, 0), -1])
            pad = g.op("Cast", g.unsqueeze(g.unsqueeze(pad, [1]), [2]), to=TensorProto.FLOAT)
            pad = g.op("Mul", g.op("Sub", g.const(1.0), pad), g.const(FLOAT_MIN))
        wte = g.param("wte.weight", g.randn((cfg["vocab"], e), 1 / math.sqrt(e)))
        wpe = g.param("wpe.weight", g.randn((cfg["n_positions"], e), 0.02))
        x = g.op("Add", g.op("Gather", wte, ids2), g.op("Gather", wpe, pos))
        n = cfg["n_positions"]
        causal = np.tril(np.ones((n, n), np.bool_))[None, None]
        causal = g.initializer("transformer.h.0.attn.bias", causal, param=False)  # shared buffer
        for i in range(L):
            with g.scope(f"h.{i}"):
                x = g.op("Add", attention(g, ln(x, "ln_1"), causal, pad, cfg, res_gain), x)
                with g.scope("mlp"):
                    h = gelu_tanh(g, conv1d(g, ln(x, "ln_2"), e, 4 * e, "c_fc"))
                    h = conv1d(g, h, 4 * e, e, "c_proj", gain=ACT_GAIN["gelu"] * res_gain)
                x = g.op("Add", x, h)
        x = ln(x, "ln_f")
    with g.scope("lm_head"):  # tied: lm_head.weight is transformer.wte.weight
        logits = g.op("MatMul", x, g.op("Transpose", wte, perm=[1, 0]))
    g.output(logits, "logits", "float32", [batch, s, cfg["vocab"]])
    return g.model(dict(cfg, arch="gpt2", attention_mask=attention_mask,
                        decomposed_ln=decomposed_ln))


def sample_inputs(model_or_config, batch=1, seed=0, seq=None):
    """seq: the length to use (default: the config's; min(128, n_positions) if symbolic)."""
    cfg = config_of(model_or_config)
    cfg = dict(cfg, max_positions=cfg["n_positions"])
    names = ("input_ids",) + (("attention_mask",) if cfg["attention_mask"] else ())
    return token_sample(cfg, batch, seed, seq, names)
