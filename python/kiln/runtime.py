"""Runtime, ICudaEngine and IExecutionContext. Pointers are ints (host addresses for a CPU engine,
device addresses for a GPU engine); array objects (numpy, torch, CuPy, DLPack) are accepted too."""
from . import _kiln
from .dims import Dims
from .enums import DataType, TensorIOMode, TensorLocation
from .logger import bridge_of


def as_stream(s):
    """A cudaStream_t as an int from: an int, torch.cuda.Stream (.cuda_stream), CuPy streams (.ptr), PyCUDA
    streams (.handle), cuda-python's stream objects (getPtr() / int()), or None (the default stream)."""
    if s is None:
        return 0
    if isinstance(s, int):
        return s
    for attr in ("cuda_stream", "ptr", "handle"):
        v = getattr(s, attr, None)
        if isinstance(v, int):
            return v
    # cuda-python's cudaStream_t / CUstream: int() is the handle (getPtr() is the address of the handle's
    # storage, not the stream).
    try:
        return int(s)
    except TypeError:
        raise TypeError(f"cannot use {type(s).__name__} as a CUDA stream: pass an int handle, a torch/CuPy/"
                        "cuda-python stream, or None") from None


def as_pointer(x):
    """An address from an int, an object with __int__, or an array object."""
    if x is None:
        return 0
    if isinstance(x, int):
        return x

    if hasattr(x, "data_ptr"):  # torch
        return int(x.data_ptr())
    if hasattr(x, "__cuda_array_interface__"):
        return int(x.__cuda_array_interface__["data"][0])
    if hasattr(x, "__array_interface__"):
        return int(x.__array_interface__["data"][0])
    if hasattr(x, "ctypes"):
        return int(x.ctypes.data)
    return int(x)


class IOutputAllocator:
    """TensorRT 10's output allocator: gives an output its memory once its size is known, which for outputs
    whose shape depends on input values (NonZero, Unique, NonMaxSuppression, ...) is only while the network
    runs. Subclass it, override reallocate_output (or reallocate_output_async) and notify_shape, and set it
    with context.set_output_allocator(name, allocator)."""

    def __init__(self):
        pass

    def reallocate_output(self, tensor_name, memory, size, alignment):
        """Returns the address (or an array object) of at least `size` bytes for `tensor_name`; `memory` is
        its current address. Returning None/0 fails the execution."""
        return None

    def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
        return self.reallocate_output(tensor_name, memory, size, alignment)

    def notify_shape(self, tensor_name, shape):
        """Called with the output's actual shape (a Dims) once its contents are written."""


class IProfiler:
    """TensorRT's per-layer profiler: set one as context.profiler and each execution calls
    report_layer_time(layer_name, ms) once per layer, in execution order. Subclass it and override that."""

    def __init__(self):
        pass

    def report_layer_time(self, layer_name, ms):
        pass


class Profiler(IProfiler):
    """TensorRT's default profiler: prints each layer's time."""

    def report_layer_time(self, layer_name, ms):
        print(f"{layer_name}: {ms:.3f}ms")


class _AllocatorAdapter:
    """What the C++ bridge calls: forwards to the user's allocator, converting addresses and shapes."""

    def __init__(self, user):
        self.user = user

    def _kiln_reallocate(self, name, memory, size, alignment):
        if hasattr(self.user, "reallocate_output_async"):
            r = self.user.reallocate_output_async(name, memory, size, alignment, 0)
        else:
            r = self.user.reallocate_output(name, memory, size, alignment)
        return as_pointer(r)

    def _kiln_notify_shape(self, name, shape):
        self.user.notify_shape(name, Dims(shape))


class Runtime:
    def __init__(self, logger):
        self.logger = logger
        self._c = _kiln.Runtime(bridge_of(logger))
        self.DLA_core = -1
        self.max_threads = 0

    def deserialize_cuda_engine(self, serialized_engine):
        if serialized_engine is None:
            bridge_of(self.logger)
            self.logger._kiln_log(1, "deserialize_cuda_engine: plan is None")
            return None
        data = serialized_engine
        if not isinstance(data, (bytes, bytearray, memoryview)):
            try:
                data = memoryview(data)
            except TypeError:
                self.logger._kiln_log(1, f"deserialize_cuda_engine: expected bytes, got {type(data).__name__}")
                return None
        e = self._c.deserialize(data)
        return None if e is None else ICudaEngine(e, self.logger)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ICudaEngine:
    def __init__(self, c, logger):
        self._c = c
        self._logger = logger
        self._bridge = bridge_of(logger)  # the C++ engine logs through it

    # -- name-based I/O (TensorRT 10) ------------------------------------------------------------
    num_io_tensors = property(lambda s: s._c.num_io_tensors)
    num_layers = property(lambda s: s._c.num_layers)
    name = property(lambda s: s._c.name)
    device_memory_size = property(lambda s: s._c.device_memory_size)
    device_memory_size_v2 = device_memory_size
    num_optimization_profiles = property(lambda s: s._c.num_optimization_profiles)
    has_implicit_batch_dimension = property(lambda s: False)
    max_batch_size = property(lambda s: 1)
    refittable = property(lambda s: False)
    target = property(lambda s: s._c.target)

    def get_tensor_name(self, index):
        return self._c.io_name(int(index))

    def get_tensor_mode(self, name):
        return TensorIOMode(self._c.io_mode(str(name)))

    def get_tensor_shape(self, name):
        return Dims(self._c.io_shape(str(name)))

    def get_tensor_dtype(self, name):
        return DataType(self._c.io_dtype(str(name)))

    def get_tensor_location(self, name):
        return TensorLocation.HOST if self.target == "cpu" else TensorLocation.DEVICE

    def get_tensor_profile_shape(self, name, profile_index):
        return [Dims(d) for d in self._c.profile_shapes(str(name), int(profile_index))]

    def is_shape_inference_io(self, name):
        """True for inputs whose contents shape inference reads (shape tensors: host memory, read at run time)."""
        return bool(self._c.is_shape_inference_io(str(name)))

    def is_shape_binding(self, index):
        name = index if isinstance(index, str) else self._c.io_name(int(index))
        return self.is_shape_inference_io(name)

    # -- bindings (TensorRT 8.6) -----------------------------------------------------------------
    num_bindings = property(lambda s: s._c.num_io_tensors)

    def __getitem__(self, key):
        if isinstance(key, str):
            i = self._c.io_index(key)
            if i < 0:
                raise KeyError(f"no binding named {key!r}")
            return i
        return self._c.io_name(int(key))

    def __len__(self):
        return self.num_bindings

    def get_binding_index(self, name):
        return self._c.io_index(str(name))

    def get_binding_name(self, index):
        return self._c.io_name(int(index))

    def binding_is_input(self, index):
        name = index if isinstance(index, str) else self._c.io_name(int(index))
        return self._c.io_mode(name) == int(TensorIOMode.INPUT)

    def get_binding_shape(self, index):
        name = index if isinstance(index, str) else self._c.io_name(int(index))
        return self.get_tensor_shape(name)

    def get_binding_dtype(self, index):
        name = index if isinstance(index, str) else self._c.io_name(int(index))
        return self.get_tensor_dtype(name)

    def get_profile_shape(self, profile_index, binding):
        name = binding if isinstance(binding, str) else self._c.io_name(int(binding))
        return self.get_tensor_profile_shape(name, profile_index)

    # -- the rest --------------------------------------------------------------------------------
    def create_execution_context(self):
        return IExecutionContext(self, self._c.create_execution_context())

    def create_execution_context_without_device_memory(self):
        return self.create_execution_context()

    def serialize(self):
        from .builder import IHostMemory
        return IHostMemory(self._c.serialize())

    def describe(self):
        return self._c.describe()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class IExecutionContext:
    def __init__(self, engine, c):
        self.engine = engine
        self._c = c
        self._profiler = None
        self.error_recorder = None
        self._allocators = {}  # output name -> (user allocator, C++ bridge): kept alive while set

    name = property(lambda s: s._c.name, lambda s, v: setattr(s._c, "name", str(v)))

    @property
    def profiler(self):
        return self._profiler

    @profiler.setter
    def profiler(self, p):
        # TensorRT's IProfiler: with one set, each execution times every layer (GPU engines then run without
        # CUDA graphs and wait for the work) and reports them through p.report_layer_time(name, ms).
        if p is not None and not callable(getattr(p, "report_layer_time", None)):
            raise TypeError("profiler: expected an object with report_layer_time(layer_name, ms), like trt.IProfiler")
        self._profiler = p
        self._c.profiling = p is not None

    def _report_profile(self, ok):
        if ok and self._profiler is not None:
            for layer in self._c.last_profile():
                self._profiler.report_layer_time(layer["name"], layer["ms"])
        return ok

    def last_profile(self):
        """Kiln: the last profiled execution's layers as dicts (name, op, ms, flops, bytes, on_host)."""
        return self._c.last_profile()

    debug_sync = property(lambda s: s._c.debug_sync, lambda s, v: setattr(s._c, "debug_sync", bool(v)))
    active_optimization_profile = property(lambda s: s._c.active_optimization_profile)
    all_binding_shapes_specified = property(lambda s: s._c.all_input_shapes_specified())
    all_shape_inputs_specified = property(lambda s: all(
        s._c.get_tensor_address(n) != 0 for n in (s.engine.get_tensor_name(i) for i in range(s.engine.num_io_tensors))
        if s.engine.is_shape_inference_io(n)))

    def set_optimization_profile_async(self, profile_index, stream_handle):
        return self._c.set_optimization_profile(int(profile_index))

    @active_optimization_profile.setter
    def active_optimization_profile(self, v):
        self._c.set_optimization_profile(int(v))

    def set_tensor_address(self, name, memory):
        return self._c.set_tensor_address(str(name), as_pointer(memory))

    def get_tensor_address(self, name):
        return self._c.get_tensor_address(str(name))

    def set_input_shape(self, name, shape):
        return self._c.set_input_shape(str(name), [int(d) for d in shape])

    def get_tensor_shape(self, name):
        """Inputs: the shape set. Outputs: inferred from the input shapes and shape-tensor contents; -1 dims for
        data-dependent shapes until an execution has computed them."""
        return Dims(self._c.get_tensor_shape(str(name)))

    def set_output_allocator(self, name, output_allocator):
        name = str(name)
        bridge = None if output_allocator is None else _kiln.OutputAllocatorBridge(_AllocatorAdapter(output_allocator))
        if not self._c.set_output_allocator(name, bridge):
            return False
        if bridge is None:
            self._allocators.pop(name, None)
        else:
            self._allocators[name] = (output_allocator, bridge)
        return True

    def get_output_allocator(self, name):
        entry = self._allocators.get(str(name))
        return None if entry is None else entry[0]

    def set_binding_shape(self, binding, shape):
        return self.set_input_shape(self.engine.get_binding_name(binding), shape)

    def get_binding_shape(self, binding):
        return self.get_tensor_shape(self.engine.get_binding_name(binding))

    def infer_shapes(self):
        return []

    def execute_v2(self, bindings):
        return self._report_profile(self._c.execute_bindings([as_pointer(b) for b in bindings]))

    def execute_async_v2(self, bindings, stream_handle=0, input_consumed=None):
        # GPU engines enqueue on the stream and return; CPU engines run on the caller's thread.
        return self._report_profile(
            self._c.execute_bindings_async([as_pointer(b) for b in bindings], as_stream(stream_handle)))

    def execute_async_v3(self, stream_handle=0):
        return self._report_profile(self._c.execute_async(as_stream(stream_handle)))

    def execute_async(self, batch_size=1, bindings=None, stream_handle=0, input_consumed=None):
        return self.execute_async_v2(bindings, stream_handle)

    def execute(self, batch_size=1, bindings=None):
        return self.execute_v2(bindings)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
