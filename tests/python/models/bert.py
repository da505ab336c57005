"""HF transformers BertModel as torch.onnx.export writes it (dynamic batch and sequence axes).

Inputs input_ids, attention_mask [, token_type_ids] (int64 [batch, seq]); outputs
last_hidden_state [batch, seq, hidden] and pooler_output [batch, hidden]. Patterns: Gather
embeddings, position ids as a buffer Slice'd to the sequence length, LayerNormalization, extended
attention mask Unsqueeze/Cast/Sub/Mul((1 - mask) * float.min), MatMul+Add projections, Reshape to
heads with Shape -> Gather -> Unsqueeze -> Concat shapes, Transpose, Div by sqrt(d), Softmax, Erf
GELU, post-norm residuals, pooler Gather(index 0) -> Gemm -> Tanh."""
import math

import numpy as np
from onnx import TensorProto

from .common import (ACT_GAIN, FLOAT_MIN, Graph, config_of, gelu_erf, layer_norm, linear,
                     resolve, token_sample)

FULL = dict(num_layers=12, hidden=768, heads=12, intermediate=3072, vocab=30522,
            max_positions=512, type_vocab=2, seq=128)
SMALL = dict(num_layers=2, hidden=64, heads=4, intermediate=128, vocab=1000, max_positions=64,
             type_vocab=2, seq=16)


def split_heads(g, t, heads, d):
    """transpose_for_scores: view(size()[:-1] + (heads, d)).permute(0, 2, 1, 3)."""
    t = g.reshape(t, [g.dim(t, 0), g.dim(t, 1), heads, d])
    return g.op("Transpose", t, perm=[0, 2, 1, 3])


def self_attention(g, x, mask, cfg):
    e, heads = cfg["hidden"], cfg["heads"]
    d = e // heads
    with g.scope("self"):
        q, k, v = (split_heads(g, linear(g, x, e, e, name), heads, d)
                   for name in ("query", "key", "value"))
        scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
        scores = g.op("Add", g.op("Div", scores, g.const(math.sqrt(d))), mask)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Transpose", ctx, perm=[0, 2, 1, 3])
        return g.reshape(ctx, [g.dim(ctx, 0), g.dim(ctx, 1), e])


def build(batch=1, seq=None, num_layers=None, hidden=None, heads=None, intermediate=None,
          vocab=None, max_positions=None, token_type_ids=True, full=True, seed=0, opset=17):
    """batch and seq may be ints or symbolic dim names; token_type_ids=False drops that input
    (the model then slices its all-zero token-type buffer and Expands it)."""
    cfg = resolve(FULL, SMALL, full, seq=seq, num_layers=num_layers, hidden=hidden, heads=heads,
                  intermediate=intermediate, vocab=vocab, max_positions=max_positions)
    g = Graph("bert", opset, seed)
    e, s = cfg["hidden"], cfg["seq"]
    ids = g.input("input_ids", np.int64, [batch, s])
    mask = g.input("attention_mask", np.int64, [batch, s])
    types = g.input("token_type_ids", np.int64, [batch, s]) if token_type_ids else None

    with g.scope("embeddings"):
        seq_len = g.unsqueeze(g.dim(ids, 1), [0])
        zero, one = g.const([0], np.int64), g.const([1], np.int64)
        pos_buf = np.arange(cfg["max_positions"], dtype=np.int64)[None]
        pos_ids = g.op("Slice", g.initializer(g.pname("position_ids"), pos_buf, param=False),
                       zero, seq_len, one, one)
        if types is None:  # buffered_token_type_ids[:, :seq].expand(batch, seq)
            buf = np.zeros((1, cfg["max_positions"]), np.int64)
            types = g.op("Slice", g.initializer(g.pname("token_type_ids"), buf, param=False),
                         zero, seq_len, one, one)
            types = g.op("Expand", types, g.shape_of([g.dim(ids, 0), g.dim(ids, 1)]))
        table = lambda n, rows: g.param(f"{n}.weight", g.randn((rows, e), 0.5))  # noqa: E731
        x = g.op("Gather", table("word_embeddings", cfg["vocab"]), ids)
        x = g.op("Add", x, g.op("Gather", table("token_type_embeddings", cfg["type_vocab"]), types))
        x = g.op("Add", x, g.op("Gather", table("position_embeddings", cfg["max_positions"]),
                                pos_ids))
        x = layer_norm(g, x, e, 1e-12, "LayerNorm")

    # get_extended_attention_mask: mask[:, None, None, :], (1.0 - mask) * finfo.min
    ext = g.unsqueeze(g.unsqueeze(mask, [1]), [2])
    ext = g.op("Cast", ext, to=TensorProto.FLOAT)
    ext = g.op("Mul", g.op("Sub", g.const(1.0), ext), g.const(FLOAT_MIN))

    for i in range(cfg["num_layers"]):
        with g.scope(f"encoder.layer.{i}"):
            with g.scope("attention"):
                a = self_attention(g, x, ext, cfg)
                with g.scope("output"):
                    a = g.op("Add", linear(g, a, e, e, "dense"), x)
                    x = layer_norm(g, a, e, 1e-12, "LayerNorm")
            with g.scope("intermediate"):
                h = gelu_erf(g, linear(g, x, e, cfg["intermediate"], "dense"))
            with g.scope("output"):
                h = linear(g, h, cfg["intermediate"], e, "dense", gain=ACT_GAIN["gelu"])
                x = layer_norm(g, g.op("Add", h, x), e, 1e-12, "LayerNorm")

    with g.scope("pooler"):
        p = g.op("Gather", x, g.const(0, np.int64), axis=1)
        p = g.op("Tanh", linear(g, p, e, e, "dense", gemm=True))
    g.output(x, "last_hidden_state", "float32", [batch, s, e])
    g.output(p, "pooler_output", "float32", [batch, e])
    return g.model(dict(cfg, arch="bert", token_type_ids=token_type_ids))


def sample_inputs(model_or_config, batch=1, seed=0, seq=None):
    """seq: the length to use (default: the config's; min(128, max_positions) if symbolic)."""
    cfg = config_of(model_or_config)
    names = ("input_ids", "attention_mask") + (("token_type_ids",) if cfg["token_type_ids"] else ())
    return token_sample(cfg, batch, seed, seq, names)
