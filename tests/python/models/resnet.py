"""torchvision resnet50 (v1.5: stride on the 3x3 conv) as torch.onnx.export writes it."""
import math

from .common import (HEAD_GAIN, build_cnn, classifier_head, config_of, conv_bn, image_input,
                     image_sample, resolve)

FULL = dict(image_size=224, layers=[3, 4, 6, 3], width=64, num_classes=1000)
SMALL = dict(image_size=64, layers=[1, 2, 1, 1], width=8, num_classes=10)


def build(batch=1, image_size=None, layers=None, width=None, num_classes=None, fold_bn=True,
          full=True, seed=0, opset=17):
    """fold_bn=True: Conv with bias (the exporter folds BN in eval mode); False: bias-less Conv
    followed by BatchNormalization. The same seed gives the same function either way."""
    cfg = resolve(FULL, SMALL, full, image_size=image_size, layers=layers, width=width,
                  num_classes=num_classes)
    g = build_cnn("resnet50", opset, seed, lambda g, b: _body(g, b, cfg, fold_bn), batch,
                  cfg["image_size"])
    return g.model(dict(cfg, arch="resnet50", fold_bn=fold_bn))


def _body(g, batch, cfg, fold_bn):
    kw = dict(fold_bn=fold_bn)
    x = image_input(g, batch, cfg["image_size"])
    w = cfg["width"]
    x = conv_bn(g, x, 3, w, 7, "conv1", "bn1", stride=2, act="relu", **kw)
    with g.scope("maxpool"):
        x = g.op("MaxPool", x, ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3],
                 pads=[1, 1, 1, 1], strides=[2, 2])
    cin = w
    res_scale = 1 / math.sqrt(sum(cfg["layers"]))
    for stage, blocks in enumerate(cfg["layers"]):
        width = w * 2 ** stage
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            with g.scope(f"layer{stage + 1}.{i}"):
                y = conv_bn(g, x, cin, width, 1, "conv1", "bn1", act="relu", **kw)
                y = conv_bn(g, y, width, width, 3, "conv2", "bn2", stride, act="relu", **kw)
                y = conv_bn(g, y, width, width * 4, 1, "conv3", "bn3", out_scale=res_scale, **kw)
                if i == 0:
                    x = conv_bn(g, x, cin, width * 4, 1, "downsample.0", "downsample.1", stride,
                                **kw)
                x = g.op("Relu", g.op("Add", y, x))
            cin = width * 4
    y = classifier_head(g, x, cin, cfg["num_classes"], "fc", gain=HEAD_GAIN)
    g.output(y, "output", "float32", [batch, cfg["num_classes"]])


def sample_inputs(model_or_config, batch=1, seed=0):
    return image_sample(config_of(model_or_config), batch, seed)
