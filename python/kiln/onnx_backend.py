"""Kiln as a backend for ONNX's own test runner (`onnx.backend.base.Backend`).

    import kiln.onnx_backend as backend
    rep = backend.prepare(model_proto, "CPU")
    outputs = rep.run([x])                      # a list, in the model's output order

`prepare` parses the model once; engines are built lazily on the first `run` for each distinct set of
input shapes and dtypes (an optimization profile with min = opt = max = the run's shapes where the
model leaves dimensions open) and cached. Errors from the C++ core (parser errors, build or run
failures) come back as `KilnBackendError` with the messages the core logged.
"""
import numpy as np

from . import _kiln
from .builder import Builder
from .enums import (BuilderFlag, DataType, DeviceType, NetworkDefinitionCreationFlag, TensorIOMode, ml_dtypes_name,
                    storage_nptype)
from .logger import ILogger, Severity
from .parser import OnnxParser
from .runtime import IOutputAllocator, Runtime

try:  # onnx is needed only by this module, not by Kiln itself
    import onnx
    from onnx.backend.base import Backend, BackendRep
except ImportError as e:  # pragma: no cover
    raise ImportError("kiln.onnx_backend needs the `onnx` package") from e

DEFAULT_OPSET = 17  # run_node's opset when the caller names none
# ml_dtypes types an input array may have (numpy has no float8/float4/4-bit/2-bit types of its own).
_ML_DTYPE_NAMES = frozenset(ml_dtypes_name(t) for t in DataType if ml_dtypes_name(t))


class KilnBackendError(Exception):
    """A model Kiln could not parse, build or run; the message says which stage and why."""


class _CapturingLogger(ILogger):
    """Keeps warnings and errors so a failure can say what the core reported."""

    def __init__(self):
        ILogger.__init__(self)
        self.messages = []

    def log(self, severity, msg):
        if int(severity) <= int(Severity.WARNING):
            self.messages.append((Severity(int(severity)), str(msg)))

    def take(self, min_severity=Severity.ERROR):
        lines = [f"[{s.name}] {m}" for s, m in self.messages if int(s) <= int(min_severity)]
        self.messages.clear()
        return "\n".join(lines)


def cuda_available():
    """True when the loaded Kiln core has a CUDA backend (the binding exposes `cuda_available()` then)."""
    probe = getattr(_kiln, "gpu_available", None)
    try:
        return bool(probe()) if callable(probe) else False
    except Exception:  # noqa: BLE001 - a probe that fails means no usable CUDA backend
        return False


def _ml_dtype(name):
    """numpy dtype `name` from ml_dtypes ("bfloat16", "float8_e4m3fn", "int4", ...); None without ml_dtypes
    (installed with onnx >= 1.15; Debian's onnx 1.12 has none)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    t = getattr(ml_dtypes, name, None)
    return None if t is None else np.dtype(t)


def _is_bf16(kiln_dtype):
    return DataType(int(kiln_dtype)) == DataType.BF16


def _is_sub_byte_int(kiln_dtype):
    return DataType(int(kiln_dtype)) in (DataType.INT4, DataType.UINT4, DataType.INT2, DataType.UINT2)


def _np_dtype(kiln_dtype):
    """The numpy dtype that holds an engine tensor's bytes (uint16 for bfloat16, uint8 for float8 codes, ...)."""
    return np.dtype(storage_nptype(kiln_dtype))


def _to_engine(a, kiln_dtype, name):
    """A C-contiguous array with the bytes the engine reads for input `name`.

    bfloat16 inputs: an ml_dtypes.bfloat16 array, a uint16 array of bfloat16 bit patterns (onnx < 1.15's
    numpy_helper convention), or float values that bfloat16 holds exactly. float8/float4/E8M0 inputs: the
    ml_dtypes array or uint8 codes. 4- and 2-bit integers: the ml_dtypes array or integer values in range."""
    storage = _np_dtype(kiln_dtype)
    ml_name = ml_dtypes_name(kiln_dtype)
    if _is_bf16(kiln_dtype):
        if a.dtype.name == "bfloat16" or a.dtype == np.uint16:
            a = a.view(np.uint16)
        else:  # float32 bits whose low half is zero are exactly a bfloat16
            bits = _lossless_cast(a, np.dtype(np.float32), name).view(np.uint32)
            nan = np.isnan(bits.view(np.float32))
            if np.any((bits & 0xFFFF)[~nan]):
                raise KilnBackendError(f"input '{name}' is {a.dtype} but the Kiln engine takes bfloat16, and casting "
                                       f"would change its values")
            a = np.where(nan, np.uint32(0x7FC0), bits >> 16).astype(np.uint16)
    elif _is_sub_byte_int(kiln_dtype):
        if a.dtype.name == ml_name:
            a = a.astype(storage)  # by value: Kiln sign-extends, ml_dtypes keeps only the low bits
        else:
            a = _lossless_cast(a, storage, name)
        info = {"int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3)}[ml_name]
        if a.size and (a.min() < info[0] or a.max() > info[1]):
            raise KilnBackendError(f"input '{name}' holds values outside {ml_name}'s range {info}")
    elif ml_name is not None:  # float8 / float4 / E8M0: the codes themselves
        if a.dtype.name != ml_name and a.dtype != np.uint8:
            raise KilnBackendError(f"input '{name}' is {a.dtype} but the Kiln engine takes {ml_name} (pass an "
                                   f"ml_dtypes.{ml_name} array or its uint8 codes)")
        a = a.view(np.uint8)
    else:
        a = _lossless_cast(a, storage, name)
    if not a.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
        a = a.copy(order="C")
    return a


def _from_engine(buf, kiln_dtype):
    """An output buffer as the user sees it: the ml_dtypes type (bfloat16, float8_*, int4, ...) where
    ml_dtypes is installed, else the raw storage (uint16 bfloat16 bits, uint8 codes, int8/uint8 values)."""
    name = ml_dtypes_name(kiln_dtype)
    if name is None:
        return buf
    t = _ml_dtype(name)
    if t is None:
        return buf
    return buf.astype(t) if _is_sub_byte_int(kiln_dtype) else buf.view(t)


def _device_kind(device):
    d = str(device).upper().split(":")[0]
    if d not in ("CPU", "CUDA"):
        raise ValueError(f"unknown device {device!r} (Kiln knows CPU and CUDA)")
    return d


def _lossless_cast(a, want, name):
    """`a` as dtype `want` when every value survives the round trip; KilnBackendError otherwise."""
    if a.dtype == want:
        return a
    b = a.astype(want)
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        same = np.array_equal(b.astype(a.dtype), a, equal_nan=True)
    else:
        same = np.array_equal(b.astype(a.dtype), a)
    if not same:
        raise KilnBackendError(f"input '{name}' is {a.dtype} but the Kiln engine takes {np.dtype(want)}, and casting "
                               f"would change its values")
    return b


class _NumpyOutputAllocator(IOutputAllocator):
    """Gives a data-dependent output numpy memory when the engine knows its size, and keeps the shape."""

    def __init__(self, dtype):
        IOutputAllocator.__init__(self)
        self.dtype = dtype
        self.buffer = None
        self.shape = None

    def reallocate_output(self, tensor_name, memory, size, alignment):
        # One spare element keeps the address valid (and distinct) for empty outputs.
        n = max(1, -(-int(size) // self.dtype.itemsize) + 1)
        if self.buffer is None or self.buffer.size < n:
            self.buffer = np.empty(n, dtype=self.dtype)
        return self.buffer.ctypes.data

    def notify_shape(self, tensor_name, shape):
        self.shape = tuple(int(d) for d in shape)

    def result(self):
        if self.shape is None or self.buffer is None:
            raise KilnBackendError("the engine never reported the shape of a data-dependent output")
        n = int(np.prod(self.shape, dtype=np.int64))
        return self.buffer[:n].reshape(self.shape).copy()


class KilnBackendRep(BackendRep):
    """A parsed model; `run` builds (once per input-shape set) and executes it on the Kiln CPU engine."""

    def __init__(self, model, device="CPU", **kwargs):
        self.device = _device_kind(device)
        if not isinstance(model, (bytes, bytearray)):
            model = model.SerializeToString()
        self._model_bytes = bytes(model)
        proto = onnx.ModelProto()
        proto.ParseFromString(self._model_bytes)
        inits = {t.name for t in proto.graph.initializer}
        self.input_names = [i.name for i in proto.graph.input if i.name not in inits]
        self.output_names = [o.name for o in proto.graph.output]
        self._engines = {}  # (input shapes and dtypes) -> (engine, context)
        self._logger = _CapturingLogger()
        # Parse now, so an unsupported model fails in prepare as in other backends. The first build uses
        # this network; each later input-shape set parses again and builds its own engine.
        self._parsed = self._parse()

    # -- parse and build --------------------------------------------------------------------------
    def _parse(self):
        builder = Builder(self._logger)
        network = builder.create_network(1 << int(NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        parser = OnnxParser(network, self._logger)
        try:
            ok = parser.parse(self._model_bytes)
        except Exception as e:  # noqa: BLE001 - the binding raises KilnError on internal failures
            raise KilnBackendError(f"Kiln's ONNX parser raised {type(e).__name__}: {e}") from e
        if not ok:
            errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise KilnBackendError("Kiln's ONNX parser failed:\n" + "\n".join(errs or [self._logger.take()]))
        self._logger.take()
        net_inputs = {h.name: tuple(int(d) for d in h.shape) for h in network._c.inputs()}
        return builder, network, net_inputs

    def _build(self, arrays):
        parsed, self._parsed = self._parsed, None
        builder, network, net_inputs = parsed or self._parse()
        config = builder.create_builder_config()
        # The device the runner asked for, not the builder's default (a GPU wherever one is present). ONNX
        # semantics are float32: no TF32 products on the GPU.
        config.default_device_type = DeviceType.GPU if self.device == "CUDA" else DeviceType.CPU
        config.clear_flag(BuilderFlag.TF32)
        dynamic = {n: a.shape for n, a in arrays.items() if n in net_inputs and any(d < 0 for d in net_inputs[n])}
        if dynamic:
            profile = builder.create_optimization_profile()
            for name, shape in dynamic.items():
                try:
                    profile.set_shape(name, shape, shape, shape)
                except ValueError as e:
                    raise KilnBackendError(f"input '{name}': shape {shape} rejected by the profile: {e}") from e
            config.add_optimization_profile(profile)
        try:
            plan = builder.build_serialized_network(network, config)
        except Exception as e:  # noqa: BLE001
            raise KilnBackendError(f"Kiln's builder raised {type(e).__name__}: {e}") from e
        if plan is None:
            raise KilnBackendError("Kiln's builder failed:\n" + self._logger.take())
        try:
            engine = Runtime(self._logger).deserialize_cuda_engine(plan)
        except Exception as e:  # noqa: BLE001
            raise KilnBackendError(f"Kiln's runtime raised {type(e).__name__} loading the plan: {e}") from e
        if engine is None:
            raise KilnBackendError("Kiln's runtime could not load the plan:\n" + self._logger.take())
        self._logger.take()
        return engine, engine.create_execution_context()

    # -- run ----------------------------------------------------------------------------------------
    def _named_inputs(self, inputs):
        if isinstance(inputs, dict):
            named = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray) or np.isscalar(inputs):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self.input_names):
                raise KilnBackendError(f"{len(inputs)} inputs given; the model has {len(self.input_names)}")
            named = dict(zip(self.input_names, inputs))
        out = {}
        for name, v in named.items():
            if not isinstance(v, np.ndarray):
                v = np.asarray(v)
            if v.dtype.kind not in "biuf" and v.dtype.name not in _ML_DTYPE_NAMES:
                raise KilnBackendError(f"input '{name}' has dtype {v.dtype}, which Kiln does not support")
            out[name] = v
        return out

    def run(self, inputs, **kwargs):
        if self.device != "CPU" and not cuda_available():
            raise KilnBackendError("Kiln's CUDA backend is not available: " + _kiln.gpu_unavailable_reason())
        arrays = self._named_inputs(inputs)
        key = tuple(sorted((n, a.shape, a.dtype.str) for n, a in arrays.items()))
        if key not in self._engines:
            self._engines[key] = self._build(arrays)
        engine, ctx = self._engines[key]

        keep = []
        outputs = {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        for name in names:
            if engine.get_tensor_mode(name) != TensorIOMode.INPUT:
                continue
            if name not in arrays:
                raise KilnBackendError(f"the engine needs input '{name}', which was not given")
            try:
                a = _to_engine(arrays[name], engine.get_tensor_dtype(name), name)
            except TypeError as e:
                raise KilnBackendError(f"input '{name}': {e}") from e
            if not ctx.set_input_shape(name, a.shape):
                raise KilnBackendError(f"input '{name}': shape {a.shape} rejected:\n" + self._logger.take())
            ctx.set_tensor_address(name, a.ctypes.data)
            keep.append(a)
        grown = {}  # outputs whose shapes are known only while running: name -> _NumpyOutputAllocator
        for name in names:
            if engine.get_tensor_mode(name) != TensorIOMode.OUTPUT:
                continue
            # After the inputs' addresses are set, shape-tensor inputs are readable: shapes they define are known.
            shape = tuple(ctx.get_tensor_shape(name))
            dtype = engine.get_tensor_dtype(name)
            if any(d < 0 for d in shape):
                grown[name] = _NumpyOutputAllocator(_np_dtype(dtype))
                ctx.set_output_allocator(name, grown[name])
                continue
            ctx.set_output_allocator(name, None)
            try:
                o = np.empty(shape, dtype=_np_dtype(dtype))
            except TypeError as e:
                raise KilnBackendError(f"output '{name}': {e}") from e
            ctx.set_tensor_address(name, o.ctypes.data)
            outputs[name] = (o, dtype)
        try:
            ok = ctx.execute_async_v3(0)
        except Exception as e:  # noqa: BLE001
            raise KilnBackendError(f"Kiln's execution raised {type(e).__name__}: {e}") from e
        if not ok:
            raise KilnBackendError("Kiln's execution failed:\n" + self._logger.take())
        for name, alloc in grown.items():
            outputs[name] = (alloc.result(), engine.get_tensor_dtype(name))
        missing = [n for n in self.output_names if n not in outputs]
        if missing:
            raise KilnBackendError(f"the engine has no output named {missing}")
        del keep
        return [_from_engine(*outputs[n]) for n in self.output_names]


class KilnBackend(Backend):
    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs):
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        super().prepare(model, device, **kwargs)
        return KilnBackendRep(model, device, **kwargs)

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Runs one NodeProto on numpy inputs (listed in node.input order, or by name)."""
        from onnx import helper

        if isinstance(inputs, dict):
            arrays = [np.asarray(inputs[n]) if n else None for n in node.input]
        else:
            inputs = list(inputs)
            arrays = []
            it = iter(inputs)
            for n in node.input:
                arrays.append(next(it, None) if n else None)
            arrays = [None if a is None else np.asarray(a) for a in arrays]
        graph_inputs, feeds, seen = [], [], set()
        for n, a in zip(node.input, arrays):
            if not n or n in seen:
                continue
            if a is None:
                raise KilnBackendError(f"run_node: no value given for input '{n}'")
            seen.add(n)
            graph_inputs.append(helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype)
                                                              if hasattr(helper, "np_dtype_to_tensor_dtype")
                                                              else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype],
                                                              list(a.shape)))
            feeds.append(a)
        graph_outputs = []
        for i, n in enumerate(node.output):
            if not n:
                continue
            if outputs_info and i < len(outputs_info) and outputs_info[i] is not None:
                dt, shape = outputs_info[i]
                elem = (helper.np_dtype_to_tensor_dtype(np.dtype(dt)) if hasattr(helper, "np_dtype_to_tensor_dtype")
                        else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dt)])
                graph_outputs.append(helper.make_tensor_value_info(n, elem, shape))
            else:
                graph_outputs.append(helper.make_empty_tensor_value_info(n))
        domain = node.domain or ""
        opset = int(kwargs.pop("opset_version", DEFAULT_OPSET))
        opsets = [helper.make_opsetid("", opset)]
        if domain not in ("", "ai.onnx"):
            opsets.append(helper.make_opsetid(domain, int(kwargs.pop("domain_opset_version", 1))))
        graph = helper.make_graph([node], "kiln_run_node", graph_inputs, graph_outputs)
        model = helper.make_model(graph, opset_imports=opsets, producer_name="kiln.onnx_backend")
        try:
            model = onnx.shape_inference.infer_shapes(model)
            # Inferred output types replace the empty ones where inference found them.
            inferred = {v.name: v for v in model.graph.value_info}
            for o in model.graph.output:
                if o.type.tensor_type.elem_type == 0 and o.name in inferred:
                    o.CopyFrom(inferred[o.name])
        except Exception:  # noqa: BLE001 - inference is a convenience; Kiln infers shapes itself
            pass
        return KilnBackendRep(model, device, **kwargs).run(feeds)

    @classmethod
    def supports_device(cls, device):
        try:
            kind = _device_kind(device)
        except ValueError:
            return False
        return kind == "CPU" or (kind == "CUDA" and cuda_available())


# Module-level functions: the runner takes the module itself as the backend
# (`onnx.backend.test.BackendTest(kiln.onnx_backend, __name__)`).
is_compatible = KilnBackend.is_compatible
prepare = KilnBackend.prepare
run_model = KilnBackend.run_model
run_node = KilnBackend.run_node
supports_device = KilnBackend.supports_device
