"""torchvision efficientnet_b0 as torch.onnx.export writes it: Conv, depthwise Conv, SiLU as
Sigmoid+Mul, squeeze-excitation (GlobalAveragePool or ReduceMean(keepdims), 1x1 Conv, SiLU,
1x1 Conv, Sigmoid, broadcast Mul), Add residuals, GlobalAveragePool, Flatten, [Dropout], Gemm."""
import math

from .common import (ACT_GAIN, HEAD_GAIN, activation, build_cnn, classifier_head, config_of,
                     conv_bn, image_input, image_sample, resolve)

# expand ratio, kernel, stride, input channels, output channels, layers (b0 before scaling)
STAGES = [[1, 3, 1, 32, 16, 1], [6, 3, 2, 16, 24, 2], [6, 5, 2, 24, 40, 2], [6, 3, 2, 40, 80, 3],
          [6, 5, 1, 80, 112, 3], [6, 5, 2, 112, 192, 4], [6, 3, 1, 192, 320, 1]]
FULL = dict(image_size=224, width_mult=1.0, depth_mult=1.0, num_classes=1000)
SMALL = dict(image_size=64, width_mult=0.25, depth_mult=0.5, num_classes=10)
SE_GAIN_IN = 6.0  # pooled SiLU outputs: second moment between ~0.04 (large maps) and ~0.36


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv1x1_bias(g, x, cin, cout, module, gain, bias_std):
    with g.scope(module):
        w = g.param("weight", g.weight((cout, cin, 1, 1), cin, gain))
        b = g.param("bias", g.randn(cout, bias_std))
        return g.op("Conv", x, w, b, dilations=[1, 1], group=1, kernel_shape=[1, 1],
                    pads=[0, 0, 0, 0], strides=[1, 1])


def squeeze_excitation(g, x, channels, squeeze, se_pool):
    if se_pool == "gap":
        with g.scope("avgpool"):
            s = g.op("GlobalAveragePool", x)
    else:  # x.mean((2, 3), keepdim=True), the timm / TF-port style
        s = g.reduce_mean(x, [2, 3], keepdims=1)
    s = conv1x1_bias(g, s, channels, squeeze, "fc1", SE_GAIN_IN, 0.3)
    with g.scope("activation"):
        s = activation(g, s, "silu")
    s = conv1x1_bias(g, s, squeeze, channels, "fc2", ACT_GAIN["silu"], 1.0)
    with g.scope("scale_activation"):
        s = g.op("Sigmoid", s)
    return g.op("Mul", s, x)


def build(batch=1, image_size=None, width_mult=None, depth_mult=None, num_classes=None,
          se_pool="gap", dropout=False, fold_bn=True, full=True, seed=0, opset=17):
    """se_pool: "gap" (GlobalAveragePool, torchvision) or "reducemean" (ReduceMean keepdims)."""
    assert se_pool in ("gap", "reducemean"), se_pool
    cfg = resolve(FULL, SMALL, full, image_size=image_size, width_mult=width_mult,
                  depth_mult=depth_mult, num_classes=num_classes)
    body = lambda g, b: _body(g, b, cfg, se_pool, dropout, fold_bn)  # noqa: E731
    g = build_cnn("efficientnet_b0", opset, seed, body, batch, cfg["image_size"])
    return g.model(dict(cfg, arch="efficientnet_b0", se_pool=se_pool, fold_bn=fold_bn,
                        dropout=dropout))


def _body(g, batch, cfg, se_pool, dropout, fold_bn):
    wm, kw = cfg["width_mult"], dict(fold_bn=fold_bn)
    x = image_input(g, batch, cfg["image_size"])
    cin = make_divisible(32 * wm)
    x = conv_bn(g, x, 3, cin, 3, "features.0.0", "features.0.1", stride=2, act="silu", **kw)
    for stage, (t, k, s, _, c, n) in enumerate(STAGES):
        cout = make_divisible(c * wm)
        for i in range(int(math.ceil(n * cfg["depth_mult"]))):
            stride = s if i == 0 else 1
            residual = stride == 1 and cin == cout
            hidden = make_divisible(cin * t)
            with g.scope(f"features.{stage + 1}.{i}.block"):
                y, j = x, 0
                if t != 1:
                    y = conv_bn(g, y, cin, hidden, 1, "0.0", "0.1", act="silu", **kw)
                    j = 1
                y = conv_bn(g, y, hidden, hidden, k, f"{j}.0", f"{j}.1", stride, groups=hidden,
                            act="silu", **kw)
                with g.scope(str(j + 1)):
                    y = squeeze_excitation(g, y, hidden, max(1, cin // 4), se_pool)
                y = conv_bn(g, y, hidden, cout, 1, f"{j + 2}.0", f"{j + 2}.1",
                            out_scale=0.5 if residual else 1.0, **kw)
            if residual:  # StochasticDepth is the identity in eval mode
                with g.scope(f"features.{stage + 1}.{i}"):
                    y = g.op("Add", y, x)
            x, cin = y, cout
    last = 4 * cin
    x = conv_bn(g, x, cin, last, 1, "features.8.0", "features.8.1", act="silu", **kw)
    y = classifier_head(g, x, last, cfg["num_classes"], "classifier.1", gain=HEAD_GAIN,
                        dropout="classifier.0" if dropout else None)
    g.output(y, "output", "float32", [batch, cfg["num_classes"]])


def sample_inputs(model_or_config, batch=1, seed=0):
    return image_sample(config_of(model_or_config), batch, seed)
