"""The model zoo: architectures from torchvision and transformers, built in code with random weights
(no network: weights=None, configurations written here) at small input sizes where the architecture
allows. Each case makes (module, example inputs, input names, output names); `slow` marks the ones a
quick CI run leaves out.

Every factory imports torch/torchvision/transformers itself, so this file imports on any machine."""
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    source: str           # "torchvision" or "transformers": the package the architecture needs
    make: object          # () -> (module in eval mode, tuple of inputs, input names, output names)
    slow: bool = False
    notes: str = ""
    tags: list = field(default_factory=list)


def _image(size, batch=1, channels=3):
    import torch
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, channels, *((size, size) if isinstance(size, int) else size), generator=g)


def _tokens(vocab, batch=1, seq=32, low=0):
    import torch
    g = torch.Generator().manual_seed(2)
    return torch.randint(low, vocab, (batch, seq), generator=g)


def _eval(m):
    # Parameters keep requires_grad: in torch 1.13 an nn.MultiheadAttention without grads takes a fused
    # fast path (aten::_native_multi_head_attention) that the ONNX exporter cannot write.
    return m.eval()


def _randomize_zero_linears(m):
    """Random weights for Linear layers that their architecture initializes to zero (ViT's head): a zero
    layer makes the output 0 whatever Kiln computes before it."""
    import torch
    for x in m.modules():
        if isinstance(x, torch.nn.Linear) and not x.weight.detach().any():
            torch.nn.init.normal_(x.weight, std=x.in_features ** -0.5)
    return m


def _calibrate_bn(m, size, batch=4):
    """BatchNorm running statistics measured on random images (as a trained network's would be), so that
    activations stay O(1) through the depth of a randomly initialized network; with the default mean 0 /
    var 1 they shrink to ~1e-14 or blow up to ~1e11 and whole feature maps die in ReLUs, which makes the
    comparison weak."""
    import torch
    bns = [x for x in m.modules() if isinstance(x, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return m
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the calibration batches
    m.train()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for _ in range(2):
            m(torch.randn(batch, 3, size, size, generator=g))
    return m.eval()


def _Select(module, keys, arg_names=None, **call_kwargs):
    """`module` whose forward returns a dict/ModelOutput, wrapped to return the named entries as a tuple of
    tensors (what the ONNX exporter and the comparison both need). With `arg_names`, the inputs are passed
    by those keyword names (for forwards whose positional order differs)."""
    import torch

    class Select(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *args):
            if arg_names:
                out = self.inner(**dict(zip(arg_names, args)), **call_kwargs)
            else:
                out = self.inner(*args, **call_kwargs)
            picked = tuple(out[k] for k in keys)
            return picked if len(picked) > 1 else picked[0]

    return _eval(Select())


# ---- torchvision ------------------------------------------------------------------------------------------
def _tv(builder_name, size=128, **kwargs):
    def make():
        import torch
        import torchvision
        torch.manual_seed(0)
        m = _randomize_zero_linears(getattr(torchvision.models, builder_name)(weights=None, **kwargs))
        return _eval(_calibrate_bn(m, size)), (_image(size),), ["image"], ["logits"]
    return make


def _segmentation(builder_name, size=128, **kwargs):
    def make():
        import torch
        import torchvision
        torch.manual_seed(0)
        m = getattr(torchvision.models.segmentation, builder_name)(weights=None, weights_backbone=None,
                                                                    aux_loss=False, **kwargs)
        return _Select(_calibrate_bn(m, size), ["out"]), (_image(size),), ["image"], ["out"]
    return make


def _retinanet_head(size=128):
    """RetinaNet's ResNet-50 FPN backbone and its classification/box heads, without the anchor decoding and
    NMS of the postprocessing (data-dependent output shapes)."""
    def make():
        import torch
        import torchvision
        torch.manual_seed(0)
        det = torchvision.models.detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None)

        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone, self.head = det.backbone, det.head

            def forward(self, x):
                out = self.head(list(self.backbone(x).values()))
                return out["cls_logits"], out["bbox_regression"]

        return _eval(_calibrate_bn(Head(), size)), (_image(size),), ["image"], ["cls_logits", "bbox_regression"]
    return make


TORCHVISION = [
    Case("resnet18", "torchvision", _tv("resnet18")),
    Case("resnet50", "torchvision", _tv("resnet50")),
    Case("resnext50_32x4d", "torchvision", _tv("resnext50_32x4d"), slow=True),
    Case("wide_resnet50_2", "torchvision", _tv("wide_resnet50_2"), slow=True),
    Case("mobilenet_v2", "torchvision", _tv("mobilenet_v2")),
    Case("mobilenet_v3_large", "torchvision", _tv("mobilenet_v3_large")),
    Case("efficientnet_b0", "torchvision", _tv("efficientnet_b0")),
    Case("regnet_y_400mf", "torchvision", _tv("regnet_y_400mf")),
    Case("convnext_tiny", "torchvision", _tv("convnext_tiny"), slow=True),
    Case("densenet121", "torchvision", _tv("densenet121")),
    Case("inception_v3", "torchvision", _tv("inception_v3", size=160, aux_logits=False, init_weights=True), slow=True),
    Case("googlenet", "torchvision", _tv("googlenet", aux_logits=False, init_weights=True)),
    Case("shufflenet_v2_x1_0", "torchvision", _tv("shufflenet_v2_x1_0")),
    Case("squeezenet1_1", "torchvision", _tv("squeezenet1_1")),
    Case("vgg11", "torchvision", _tv("vgg11", size=224), slow=True, notes="224: the classifier wants 7x7 features"),
    Case("mnasnet1_0", "torchvision", _tv("mnasnet1_0")),
    Case("vit_b_16", "torchvision", _tv("vit_b_16", size=112, image_size=112), slow=True),
    Case("swin_t", "torchvision", _tv("swin_t", size=224), slow=True),
    Case("retinanet_r50_fpn_head", "torchvision", _retinanet_head(), slow=True),
    Case("fcn_resnet50", "torchvision", _segmentation("fcn_resnet50"), slow=True),
    Case("deeplabv3_mobilenet_v3", "torchvision", _segmentation("deeplabv3_mobilenet_v3_large")),
]


# ---- transformers -----------------------------------------------------------------------------------------
def _eager(config):
    """Plain attention (matmul/softmax), which every exporter writes the same way."""
    try:
        config._attn_implementation = "eager"
    except Exception:  # noqa: BLE001 - older configs have no such attribute setter
        pass
    return config


def _bert():
    import torch
    import transformers as tf
    torch.manual_seed(0)
    cfg = _eager(tf.BertConfig())  # bert-base sizes
    ids = _tokens(cfg.vocab_size)
    mask = torch.ones_like(ids)
    mask[:, -4:] = 0  # padding at the end exercises the attention mask
    types = torch.zeros_like(ids)
    m = _Select(tf.BertModel(cfg), ["last_hidden_state", "pooler_output"], return_dict=True)
    return m, (ids, mask, types), ["input_ids", "attention_mask", "token_type_ids"], ["last_hidden_state", "pooler"]


def _distilbert():
    import torch
    import transformers as tf
    torch.manual_seed(0)
    cfg = _eager(tf.DistilBertConfig())
    ids = _tokens(cfg.vocab_size)
    mask = torch.ones_like(ids)
    mask[:, -4:] = 0
    m = _Select(tf.DistilBertModel(cfg), ["last_hidden_state"], return_dict=True)
    return m, (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state"]


def _roberta():
    import torch
    import transformers as tf
    torch.manual_seed(0)
    cfg = _eager(tf.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1))
    ids = _tokens(cfg.vocab_size, low=3)  # above the special tokens: position ids count non-padding tokens
    mask = torch.ones_like(ids)
    m = _Select(tf.RobertaModel(cfg), ["last_hidden_state", "pooler_output"], return_dict=True)
    return m, (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state", "pooler"]


def _gpt2():
    import transformers as tf
    import torch
    torch.manual_seed(0)
    cfg = _eager(tf.GPT2Config(use_cache=False))  # gpt2 (124M) sizes
    ids = _tokens(cfg.vocab_size)
    # With an attention mask (all ones: no padding): without one, newer transformers look for packed
    # sequences in the position ids with torch.diff, which the TorchScript exporter cannot export.
    mask = torch.ones_like(ids)
    m = _Select(tf.GPT2Model(cfg), ["last_hidden_state"], arg_names=["input_ids", "attention_mask"], return_dict=True,
                use_cache=False)
    return m, (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state"]


def _t5_encoder():
    import torch
    import transformers as tf
    torch.manual_seed(0)
    cfg = _eager(tf.T5Config(d_model=512, d_ff=2048, num_layers=6, num_heads=8, vocab_size=32128,
                             use_cache=False))  # t5-small sizes
    ids = _tokens(cfg.vocab_size)
    mask = torch.ones_like(ids)
    m = _Select(tf.T5EncoderModel(cfg), ["last_hidden_state"], return_dict=True)
    return m, (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state"]


def _whisper_encoder():
    import torch
    import transformers as tf
    torch.manual_seed(0)
    # whisper-tiny's encoder over 4 s of audio (max_source_positions 200 -> 400 mel frames).
    cfg = _eager(tf.WhisperConfig(d_model=384, encoder_layers=4, encoder_attention_heads=6, decoder_layers=4,
                                  decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                                  num_mel_bins=80, max_source_positions=200))
    enc = tf.WhisperModel(cfg).get_encoder()
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(1, cfg.num_mel_bins, 2 * cfg.max_source_positions, generator=g)
    m = _Select(enc, ["last_hidden_state"], return_dict=True)
    return m, (feats,), ["input_features"], ["last_hidden_state"]


def _detr():
    import torch
    import transformers as tf
    torch.manual_seed(0)
    backbone = tf.ResNetConfig(out_features=["stage4"])  # ResNet-50, built here: no timm, no download
    cfg = tf.DetrConfig(use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False,
                        num_queries=100)
    m = _Select(tf.DetrForObjectDetection(cfg), ["logits", "pred_boxes"], return_dict=True)
    return m, (_image(256),), ["pixel_values"], ["logits", "pred_boxes"]


TRANSFORMERS = [
    Case("bert-base", "transformers", _bert),
    Case("distilbert", "transformers", _distilbert),
    Case("roberta-base", "transformers", _roberta),
    Case("gpt2", "transformers", _gpt2),
    Case("t5-small-encoder", "transformers", _t5_encoder),
    Case("whisper-tiny-encoder", "transformers", _whisper_encoder),
    Case("detr-r50", "transformers", _detr, slow=True),
]

CASES = TORCHVISION + TRANSFORMERS
