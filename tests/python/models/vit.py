"""torchvision vit_b_16 as torch.onnx.export writes it: Conv patch embedding, Reshape+Transpose to
tokens, Expand of the class token by a Shape-derived shape, Concat, Add position embedding,
pre-norm encoder layers (LayerNormalization; attention as MatMul+Add qkv, Reshape, Transpose,
Gather q/k/v, MatMul, Mul(scale), Softmax, MatMul; Erf GELU MLP), final LayerNorm, class token
by Gather (or Slice+Squeeze), Gemm head."""
import math

import numpy as np

from .common import (ACT_GAIN, Graph, config_of, gelu_erf, image_input, image_sample,
                     layer_norm, linear, resolve)

FULL = dict(image_size=224, patch=16, num_layers=12, hidden=768, heads=12, mlp=3072,
            num_classes=1000)
SMALL = dict(image_size=32, patch=8, num_layers=2, hidden=64, heads=4, mlp=128, num_classes=10)


def attention(g, x, bdim, seq, hidden, heads, out_gain):
    d = hidden // heads
    with g.scope("self_attention"):
        qkv = linear(g, x, hidden, 3 * hidden, "in_proj")
        qkv = g.op("Transpose", g.reshape(qkv, [bdim(qkv), seq, 3, heads, d]), perm=[2, 0, 3, 1, 4])
        q, k, v = (g.op("Gather", qkv, g.const(i, np.int64), axis=0) for i in range(3))
        scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
        probs = g.op("Softmax", g.op("Mul", scores, g.const(1 / math.sqrt(d))), axis=-1)
        ctx = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
        ctx = g.reshape(ctx, [bdim(ctx), seq, hidden])
        return linear(g, ctx, hidden, hidden, "out_proj", gain=out_gain)


def build(batch=1, image_size=None, patch=None, num_layers=None, hidden=None, heads=None,
          mlp=None, num_classes=None, cls_select="gather", full=True, seed=0, opset=17):
    """cls_select: "gather" (x[:, 0], torchvision) or "slice" (x[:, :1] then Squeeze)."""
    cfg = resolve(FULL, SMALL, full, image_size=image_size, patch=patch, num_layers=num_layers,
                  hidden=hidden, heads=heads, mlp=mlp, num_classes=num_classes)
    g = Graph("vit_b_16", opset, seed)
    p, e, L = cfg["patch"], cfg["hidden"], cfg["num_layers"]
    tokens = (cfg["image_size"] // p) ** 2
    seq = tokens + 1
    # static batch: constant shapes (what constant folding leaves); symbolic: Shape -> Gather
    bdim = (lambda t: g.dim(t, 0)) if isinstance(batch, str) else (lambda t: batch)
    res_gain = 1.0 / (2 * L)  # residual branches scaled so the stream stays O(1) over 2L adds

    x = image_input(g, batch, cfg["image_size"])
    with g.scope("conv_proj"):
        w = g.param("weight", g.weight((e, 3, p, p), 3 * p * p))
        x = g.op("Conv", x, w, g.param("bias", g.randn(e, 0.1)), dilations=[1, 1], group=1,
                 kernel_shape=[p, p], pads=[0, 0, 0, 0], strides=[p, p])
    x = g.op("Transpose", g.reshape(x, [bdim(x), e, tokens]), perm=[0, 2, 1])
    cls = g.param("class_token", g.randn((1, 1, e), 0.5))
    cls = g.op("Expand", cls, g.shape_of([bdim(x), 1, e]))
    x = g.op("Concat", cls, x, axis=1)
    with g.scope("encoder"):
        x = g.op("Add", x, g.param("pos_embedding", g.randn((1, seq, e), 0.5)))
        for i in range(L):
            with g.scope(f"layers.encoder_layer_{i}"):
                h = layer_norm(g, x, e, 1e-6, "ln_1")
                x = g.op("Add", attention(g, h, bdim, seq, e, cfg["heads"], res_gain), x)
                h = layer_norm(g, x, e, 1e-6, "ln_2")
                with g.scope("mlp"):
                    h = gelu_erf(g, linear(g, h, e, cfg["mlp"], "0"))
                    h = linear(g, h, cfg["mlp"], e, "3", gain=ACT_GAIN["gelu"] * res_gain)
                x = g.op("Add", x, h)
        x = layer_norm(g, x, e, 1e-6, "ln")
    if cls_select == "gather":
        x = g.op("Gather", x, g.const(0, np.int64), axis=1)
    else:
        one = g.const([1], np.int64)
        x = g.op("Slice", x, g.const([0], np.int64), one, one, one)
        x = g.op("Squeeze", x, one)
    y = linear(g, x, e, cfg["num_classes"], "heads.head", gemm=True)
    g.output(y, "output", "float32", [batch, cfg["num_classes"]])
    return g.model(dict(cfg, arch="vit_b_16", cls_select=cls_select))


def sample_inputs(model_or_config, batch=1, seed=0):
    return image_sample(config_of(model_or_config), batch, seed)
