"""The two sides of `kiln compare`: Kiln (parse, build, run through the TensorRT-style API) and the
reference, ONNX Runtime's CPU provider or Kiln's own CPU backend.

A runner takes the model (a path and, for a modified model, its bytes) and the input arrays, and returns
{output name: numpy array}. It raises CompareError with the stage (parse, build, run) and what the
library reported."""
import sys
import time

import numpy as np

from ..builder import Builder
from ..enums import BuilderFlag, DataType, DeviceType, NetworkDefinitionCreationFlag, TensorIOMode, nptype
from ..logger import ILogger, Severity
from ..onnx_backend import _to_engine

try:  # data-dependent output shapes, where this Kiln supports them
    from ..onnx_backend import _NumpyOutputAllocator
except ImportError:  # pragma: no cover
    _NumpyOutputAllocator = None
from ..parser import OnnxParser
from ..runtime import Runtime
from . import CompareError


class ModelSource:
    """A model as runners take it: a file, or serialized bytes (a model modified in memory) whose
    external data, if any, lies beside `path`."""

    def __init__(self, path, data=None):
        self.path = path
        self.data = data

    def bytes(self):
        if self.data is None:
            with open(self.path, "rb") as f:
                self.data = f.read()
        return self.data


# ---- ONNX Runtime -----------------------------------------------------------------------------------
class OnnxRuntimeRunner:
    label = "onnxruntime"

    def __init__(self):
        try:
            import onnxruntime
        except ImportError as e:
            raise CompareError(f"the onnxruntime reference needs the onnxruntime package ({e}); install it "
                               f"(pip install onnxruntime) or compare with --ref kiln-cpu") from None
        self._ort = onnxruntime
        self.label = f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)"
        self.times = {}

    def run(self, model, inputs, output_names):
        ort = self._ort
        t0 = time.perf_counter()
        try:
            what = model.path if model.data is None else model.bytes()
            sess = ort.InferenceSession(what, ort.SessionOptions(), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise CompareError(f"onnxruntime could not load the model: {e}") from None
        wanted = {i.name for i in sess.get_inputs()}
        feeds = {n: a for n, a in inputs.items() if n in wanted}
        missing = wanted - set(feeds)
        if missing:
            raise CompareError(f"onnxruntime needs inputs {sorted(missing)}, which were not prepared")
        t1 = time.perf_counter()
        try:
            values = sess.run(list(output_names), feeds)
        except Exception as e:  # noqa: BLE001
            raise CompareError(f"onnxruntime failed to run the model: {e}") from None
        self.times = {"load": t1 - t0, "run": time.perf_counter() - t1}
        return dict(zip(output_names, values))


# ---- Kiln ---------------------------------------------------------------------------------------------
class _Logger(ILogger):
    """Keeps Kiln's warnings and errors for failure reports; echoes every message to stderr when verbose."""

    def __init__(self, verbose):
        ILogger.__init__(self)
        self.verbose = verbose
        self.messages = []

    def log(self, severity, msg):
        severity = Severity(int(severity))
        if self.verbose:
            print(f"[kiln {severity.name}] {msg}", flush=True, file=sys.stderr)
        if int(severity) <= int(Severity.WARNING):
            self.messages.append(f"[{severity.name}] {msg}")

    def take(self):
        text = "\n".join(self.messages)
        self.messages.clear()
        return text


def _bf16_to_float32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


class KilnRunner:
    """device: 'auto' (the builder's default target: a CUDA GPU where this Kiln has one, else the CPU)
    or 'cpu' (Kiln's CPU backend, BuilderConfig.default_device_type = DeviceType.CPU). tf32/fp16: the
    builder flags; TF32 is cleared unless asked for, so that fp32 is compared with fp32 (as Polygraphy does)."""

    def __init__(self, device="auto", verbose=False, tf32=False, fp16=False):
        self.device = device
        self.tf32, self.fp16 = tf32, fp16
        self.verbose = verbose
        self.times = {}
        self.target = None
        self.label = "kiln" if device == "auto" else "kiln-cpu"
        # The last stage reached: parse, build, run, done (the model zoo reports where a model stopped).
        self.stage = None

    def _fail(self, stage, logger, detail=""):
        log = logger.take()
        text = f"Kiln failed to {stage} the model"
        if detail:
            text += f": {detail}"
        if log:
            text += "\n" + log
        raise CompareError(text)

    def _build(self, model, inputs, logger):
        self.stage = "parse"
        builder = Builder(logger)
        network = builder.create_network(1 << int(NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        parser = OnnxParser(network, logger)
        try:
            if model.data is None:
                ok = parser.parse_from_file(model.path)
            else:
                ok = parser.parse(model.data, model.path)
        except Exception as e:  # noqa: BLE001 - the binding raises on internal failures
            self._fail("parse", logger, f"{type(e).__name__}: {e}")
        if not ok:
            errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            self._fail("parse", logger, errors)
        self.stage = "build"
        config = builder.create_builder_config()
        if self.device == "cpu":
            config.default_device_type = DeviceType.CPU
        (config.set_flag if self.tf32 else config.clear_flag)(BuilderFlag.TF32)
        if self.fp16:
            config.set_flag(BuilderFlag.FP16)
        declared = {h.name: tuple(int(d) for d in h.shape) for h in network._c.inputs()}
        dynamic = {n: inputs[n].shape for n, dims in declared.items() if n in inputs and any(d < 0 for d in dims)}
        if dynamic:  # one profile: exactly the shapes being compared
            profile = builder.create_optimization_profile()
            for name, shape in dynamic.items():
                try:
                    profile.set_shape(name, shape, shape, shape)
                except ValueError as e:
                    raise CompareError(f"Kiln rejects shape {shape} for input '{name}': {e}") from None
            config.add_optimization_profile(profile)
        try:
            plan = builder.build_serialized_network(network, config)
        except Exception as e:  # noqa: BLE001
            self._fail("build", logger, f"{type(e).__name__}: {e}")
        if plan is None:
            self._fail("build", logger)
        engine = Runtime(logger).deserialize_cuda_engine(plan)
        if engine is None:
            self._fail("load the plan of", logger)
        return engine

    def run(self, model, inputs, output_names):
        logger = _Logger(self.verbose)
        t0 = time.perf_counter()
        engine = self._build(model, inputs, logger)
        self.target = engine.target
        t1 = time.perf_counter()
        self.stage = "run"
        ctx = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        # Host memory for every target: a GPU engine stages host tensors through device buffers itself.
        io = _HostIO()
        for name in names:
            if engine.get_tensor_mode(name) != TensorIOMode.INPUT:
                continue
            if name not in inputs:
                raise CompareError(f"the Kiln engine needs input '{name}', which the model does not list")
            try:
                a = _to_engine(inputs[name], engine.get_tensor_dtype(name), name)
            except Exception as e:  # noqa: BLE001 - KilnBackendError or TypeError, both say why
                raise CompareError(f"input '{name}': {e}") from None
            if not ctx.set_input_shape(name, a.shape):
                self._fail("accept the shape of input '" + name + "' of", logger, str(a.shape))
            ctx.set_tensor_address(name, io.input(a))
        outputs = {}
        for name in names:
            if engine.get_tensor_mode(name) != TensorIOMode.OUTPUT:
                continue
            shape = tuple(ctx.get_tensor_shape(name))
            dtype = DataType(int(engine.get_tensor_dtype(name)))
            np_dtype = np.dtype(np.uint16 if dtype == DataType.BF16 else nptype(dtype))
            outputs[name] = dtype
            if any(d < 0 for d in shape):  # data-dependent (NonZero, NMS): the engine asks for memory
                if _NumpyOutputAllocator is None:
                    self._fail("size output '" + name + "' of", logger, f"shape {shape} is data-dependent")
                ctx.set_output_allocator(name, io.grown(name, _NumpyOutputAllocator(np_dtype)))
                continue
            ctx.set_tensor_address(name, io.output(name, shape, np_dtype))
        try:
            ok = ctx.execute_async_v3(0)
        except Exception as e:  # noqa: BLE001
            self._fail("run", logger, f"{type(e).__name__}: {e}")
        if not ok:
            self._fail("run", logger)
        values = io.fetch()
        self.times = {"build": t1 - t0, "run": time.perf_counter() - t1}
        out = {}
        for name in output_names:
            if name not in outputs:
                raise CompareError(f"the Kiln engine has no output '{name}' (its outputs: {', '.join(outputs)})")
            v = values[name]
            out[name] = _bf16_to_float32(v) if outputs[name] == DataType.BF16 else v
        self.stage = "done"
        return out


def _poison(dtype):
    """What output buffers hold before Kiln writes them: an element left unwritten then shows as a
    deterministic mismatch (NaN, or the largest integer), never as stale memory."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "iu" and dtype != np.uint16:  # uint16 holds bfloat16 bits: 0xFFFF is a NaN there
        return np.iinfo(dtype).max
    return 0xFFFF if dtype == np.uint16 else 0


class _HostIO:
    """Tensor memory: numpy arrays kept alive until fetched (a GPU engine stages host memory itself)."""

    def __init__(self):
        self._keep, self._outs, self._grown = [], {}, {}

    def input(self, a):
        self._keep.append(a)
        return a.ctypes.data

    def output(self, name, shape, dtype):
        o = np.full(shape, _poison(dtype), dtype=dtype)
        self._outs[name] = o
        return o.ctypes.data

    def grown(self, name, allocator):
        self._grown[name] = allocator
        return allocator

    def fetch(self):
        return {**self._outs, **{n: a.result() for n, a in self._grown.items()}}


def make_reference(kind, verbose=False):
    if kind == "onnxruntime":
        return OnnxRuntimeRunner()
    if kind == "kiln-cpu":
        return KilnRunner("cpu", verbose)
    raise CompareError(f"unknown reference '{kind}'")
