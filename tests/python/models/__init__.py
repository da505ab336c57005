"""ONNX model generators for Kiln's tests: six architectures with random weights, written with the
op patterns torch.onnx.export (opset 17) emits for torchvision / HF transformers models.

Each module has build(batch=1 | "batch", ..., full=True, seed=0, opset=17) -> onnx.ModelProto
and sample_inputs(model_or_config, batch=1, seed=0) -> {input name: np.ndarray}.
"""
from . import bert, efficientnet, gpt2, mobilenet, resnet, vit
from .common import config_of

ARCHITECTURES = dict(resnet=resnet, mobilenet=mobilenet, efficientnet=efficientnet, vit=vit,
                     bert=bert, gpt2=gpt2)

__all__ = ["ARCHITECTURES", "config_of"] + list(ARCHITECTURES)
