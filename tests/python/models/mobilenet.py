"""torchvision mobilenet_v2 as torch.onnx.export writes it: Conv (depthwise via group), ReLU6 as
Clip(x, 0, 6) with min/max inputs, linear bottlenecks with Add residuals, GlobalAveragePool,
Flatten, [Dropout], Gemm."""
from .common import (HEAD_GAIN, build_cnn, classifier_head, config_of, conv_bn, image_input,
                     image_sample, resolve)

# expansion t, output channels c, repeats n, first stride s
SETTINGS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
            [6, 160, 3, 2], [6, 320, 1, 1]]
FULL = dict(image_size=224, width_mult=1.0, num_classes=1000, settings=SETTINGS)
SMALL = dict(image_size=64, width_mult=0.25, num_classes=10,
             settings=[[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2], [6, 96, 1, 1]])


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def build(batch=1, image_size=None, width_mult=None, num_classes=None, settings=None,
          dropout=False, fold_bn=True, full=True, seed=0, opset=17):
    """dropout=True keeps the classifier's Dropout node (eval-mode exports leave it out)."""
    cfg = resolve(FULL, SMALL, full, image_size=image_size, width_mult=width_mult,
                  num_classes=num_classes, settings=settings)
    g = build_cnn("mobilenet_v2", opset, seed, lambda g, b: _body(g, b, cfg, fold_bn, dropout),
                  batch, cfg["image_size"])
    return g.model(dict(cfg, arch="mobilenet_v2", fold_bn=fold_bn, dropout=dropout))


def _body(g, batch, cfg, fold_bn, dropout):
    wm, kw = cfg["width_mult"], dict(fold_bn=fold_bn)
    x = image_input(g, batch, cfg["image_size"])
    cin = make_divisible(32 * wm)
    x = conv_bn(g, x, 3, cin, 3, "features.0.0", "features.0.1", stride=2, act="relu6", **kw)
    idx = 1
    for t, c, n, s in cfg["settings"]:
        cout = make_divisible(c * wm)
        for i in range(n):
            stride, hidden = (s if i == 0 else 1), int(round(cin * t))
            residual = stride == 1 and cin == cout
            with g.scope(f"features.{idx}.conv"):
                y, j = x, 0
                if t != 1:
                    y = conv_bn(g, y, cin, hidden, 1, "0.0", "0.1", act="relu6", **kw)
                    j = 1
                y = conv_bn(g, y, hidden, hidden, 3, f"{j}.0", f"{j}.1", stride, groups=hidden,
                            act="relu6", **kw)
                y = conv_bn(g, y, hidden, cout, 1, f"{j + 1}", f"{j + 2}",
                            out_scale=0.5 if residual else 1.0, **kw)
            if residual:
                with g.scope(f"features.{idx}"):
                    y = g.op("Add", x, y)
            x, cin, idx = y, cout, idx + 1
    last = make_divisible(1280 * max(1.0, wm))
    x = conv_bn(g, x, cin, last, 1, f"features.{idx}.0", f"features.{idx}.1", act="relu6", **kw)
    y = classifier_head(g, x, last, cfg["num_classes"], "classifier.1", gain=HEAD_GAIN,
                        dropout="classifier.0" if dropout else None)
    g.output(y, "output", "float32", [batch, cfg["num_classes"]])


def sample_inputs(model_or_config, batch=1, seed=0):
    return image_sample(config_of(model_or_config), batch, seed)
