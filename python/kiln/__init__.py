"""Kiln: an inference optimizer and runtime with TensorRT's Python API (`import kiln as trt`)."""
import os as _os

# A developer build can put the extension elsewhere (cmake -DKILN_PYTHON_OUTPUT_DIR=...): KILN_EXT_DIR
# names that folder, so several build trees can test the same package sources side by side.
if _os.environ.get("KILN_EXT_DIR"):
    __path__.insert(0, _os.environ["KILN_EXT_DIR"])
from . import _kiln  # noqa: E402
from .builder import Builder, IBuilderConfig, IHostMemory, IOptimizationProfile, IProgressMonitor, ITimingCache
from .dims import Dims, Dims2, Dims3, Dims4, DimsHW, Weights, volume
from .enums import *  # noqa: F401,F403 - the TensorRT enums and dtype aliases
from .enums import nptype
from .logger import ILogger, Logger, Severity
from .network import (IActivationLayer, ICastLayer, IConcatenationLayer, IConstantLayer, IConvolutionLayer,
                      IDeconvolutionLayer, IEinsumLayer, IElementWiseLayer, IFillLayer, IFullyConnectedLayer,
                      IGatherLayer, IIdentityLayer, ILayer, IMatrixMultiplyLayer, INetworkDefinition,
                      INormalizationLayer, IPaddingLayer, IPoolingLayer, IReduceLayer, IResizeLayer, IScaleLayer,
                      ISelectLayer, IShapeLayer, IShuffleLayer, ISliceLayer, ISoftMaxLayer, ITensor, ITopKLayer,
                      IUnaryLayer)
from .parser import OnnxParser, ParserError
from .runtime import ICudaEngine, IExecutionContext, IOutputAllocator, IProfiler, Profiler, Runtime

__version__ = _kiln.__version__

Logger.Severity = Severity
ILogger.Severity = Severity


def init_libnvinfer_plugins(logger, namespace=""):
    return True


def get_plugin_registry():
    return None
