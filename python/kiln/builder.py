"""Builder, IBuilderConfig, IOptimizationProfile and IHostMemory."""
from . import _kiln
from .dims import Dims, as_dims
from .enums import BuilderFlag, DeviceType, MemoryPoolType, NetworkDefinitionCreationFlag
from .logger import bridge_of


class IHostMemory(bytes):
    """Serialized plan bytes. A bytes subclass, so f.write(plan), memoryview(plan) and
    deserialize_cuda_engine(plan) all work on every Python version."""

    @property
    def nbytes(self):
        return len(self)

    @property
    def dtype(self):
        from .enums import DataType
        return DataType.UINT8

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class IOptimizationProfile:
    def __init__(self):
        self._c = _kiln.OptimizationProfile()
        self._shape_inputs = {}  # name -> [min, opt, max] value tuples (set_shape_input)

    def set_shape(self, input, min, opt, max):
        if not self._c.set_shape(str(input), as_dims(min), as_dims(opt), as_dims(max)):
            raise ValueError(self._c.last_error)

    def get_shape(self, input):
        return [Dims(d) for d in self._c.get_shape(str(input))]

    def set_shape_input(self, input, min, opt, max):
        """TensorRT's value ranges for a shape-tensor input (engine.is_shape_inference_io). Kiln reads the
        values themselves at run time (from host memory, each execution) and plans from them then, so the
        ranges are checked and kept (get_shape_input) but not needed to build."""
        vals = [tuple(int(v) for v in x) for x in (min, opt, max)]
        if not (len(vals[0]) == len(vals[1]) == len(vals[2])):
            raise ValueError(f"set_shape_input('{input}'): min, opt and max must have one length, got "
                             f"{len(vals[0])}, {len(vals[1])}, {len(vals[2])}")
        if any(not (lo <= o <= hi) for lo, o, hi in zip(*vals)):
            raise ValueError(f"set_shape_input('{input}'): min <= opt <= max must hold element by element, got "
                             f"{vals[0]}, {vals[1]}, {vals[2]}")
        self._shape_inputs[str(input)] = vals

    def get_shape_input(self, input):
        return [list(v) for v in self._shape_inputs.get(str(input), [])]

    def __bool__(self):
        return self._c.is_valid()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ITimingCache:
    """TensorRT's timing cache: the tactics (cuBLASLt and cuDNN algorithms) GPU builds timed, keyed by the
    exact problem, GPU model and library version. A build with the cache set reuses its records instead of
    timing again and adds the ones it times; serialize() gives bytes that create_timing_cache() reads back.
    CPU builds time nothing, so they leave it unchanged."""

    def __init__(self, data=b""):
        try:
            self._c = _kiln.TimingCache(bytes(data))
        except _kiln.KilnError as e:
            raise ValueError(f"cannot read the timing cache: {e}") from None

    def serialize(self):
        return IHostMemory(self._c.serialize())

    def combine(self, other, ignore_mismatch):
        """Adds the other cache's records that this one lacks (records of other GPUs never match a key
        here, so they are harmless: ignore_mismatch changes nothing)."""
        self._c.combine(other._c)
        return True

    def reset(self):
        self._c.reset()
        return True

    def __len__(self):
        return self._c.size()


def _tensor_core_gpu():
    if not _kiln.gpu_available():
        return False
    target = _kiln.gpu_target()  # "cuda:sm_90"
    try:
        return int(target.rsplit("sm_", 1)[1].rstrip("a")) >= 80
    except (IndexError, ValueError):
        return False


class IProgressMonitor:
    """TensorRT 10's build progress monitor: set one as config.progress_monitor and the builder reports its
    phases ("Building engine", and inside it "Optimizing graph", "Planning memory") and their steps.
    Return False from step_complete to cancel the build (build_serialized_network then returns None)."""

    def __init__(self):
        pass

    def phase_start(self, phase_name, parent_phase, num_steps):
        pass

    def step_complete(self, phase_name, step):
        return True

    def phase_finish(self, phase_name):
        pass


class IBuilderConfig:
    def __init__(self):
        self._c = _kiln.BuilderConfig()
        self._profiles = []
        self._timing_cache = None
        self.int8_calibrator = None
        self._progress_monitor = None
        self._progress_bridge = None  # keeps the C++ bridge alive while the monitor is set
        self.algorithm_selector = None
        self.profile_stream = 0

    @property
    def progress_monitor(self):
        return self._progress_monitor

    @progress_monitor.setter
    def progress_monitor(self, monitor):
        if monitor is not None and not all(callable(getattr(monitor, m, None))
                                           for m in ("phase_start", "step_complete", "phase_finish")):
            raise TypeError("progress_monitor: expected an object with phase_start, step_complete and phase_finish, "
                            "like trt.IProgressMonitor")
        bridge = None if monitor is None else _kiln.ProgressMonitorBridge(monitor)
        self._c.set_progress_monitor(bridge)
        self._progress_monitor, self._progress_bridge = monitor, bridge

    def set_memory_pool_limit(self, pool, pool_size):
        self._c.set_memory_pool_limit(int(pool), int(pool_size))

    def get_memory_pool_limit(self, pool):
        return self._c.get_memory_pool_limit(int(pool))

    max_workspace_size = property(lambda s: s.get_memory_pool_limit(MemoryPoolType.WORKSPACE),
                                  lambda s, v: s.set_memory_pool_limit(MemoryPoolType.WORKSPACE, v))

    def set_flag(self, flag):
        self._c.flags = self._c.flags | (1 << int(flag))

    def clear_flag(self, flag):
        self._c.flags = self._c.flags & ~(1 << int(flag))

    def get_flag(self, flag):
        return bool(self._c.flags & (1 << int(flag)))

    flags = property(lambda s: s._c.flags, lambda s, v: setattr(s._c, "flags", int(v)))

    def add_optimization_profile(self, profile):
        idx = self._c.add_optimization_profile(profile._c)
        if idx >= 0:
            self._profiles.append(profile)
        return idx

    num_optimization_profiles = property(lambda s: s._c.num_optimization_profiles)
    default_device_type = property(lambda s: DeviceType(s._c.default_device_type),
                                   lambda s, v: setattr(s._c, "default_device_type", int(v)))
    builder_optimization_level = property(lambda s: s._c.builder_optimization_level,
                                          lambda s, v: setattr(s._c, "builder_optimization_level", int(v)))
    avg_timing_iterations = property(lambda s: s._c.avg_timing_iterations,
                                     lambda s, v: setattr(s._c, "avg_timing_iterations", int(v)))
    profiling_verbosity = property(lambda s: s._c.profiling_verbosity,
                                   lambda s, v: setattr(s._c, "profiling_verbosity", int(v)))

    def create_timing_cache(self, serialized_timing_cache=b""):
        return ITimingCache(serialized_timing_cache)

    def set_timing_cache(self, cache, ignore_mismatch=False):
        if cache is not None and not isinstance(cache, ITimingCache):
            raise TypeError(f"set_timing_cache expects an ITimingCache (from create_timing_cache), got {type(cache).__name__}")
        self._timing_cache = cache
        self._c.timing_cache = cache._c if cache is not None else None
        return True

    def get_timing_cache(self):
        return self._timing_cache

    def set_device_type(self, layer, device_type):
        pass

    def can_run_on_DLA(self, layer):
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Builder:
    def __init__(self, logger):
        self.logger = logger
        self._c = _kiln.Builder(bridge_of(logger))
        self.max_threads = 0
        self.max_batch_size = 1
        self.max_DLA_batch_size = 1
        self.num_DLA_cores = 0

    def create_network(self, flags=0):
        from .network import INetworkDefinition
        return INetworkDefinition(self, flags)

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def build_serialized_network(self, network, config):
        plan = self._c.build_serialized_network(network._c, config._c)
        return None if plan is None else IHostMemory(plan)

    def build_engine(self, network, config):
        """TensorRT 8's build_engine: builds and deserializes in one call."""
        from .runtime import Runtime
        plan = self.build_serialized_network(network, config)
        if plan is None:
            return None
        return Runtime(self.logger).deserialize_cuda_engine(plan)

    def is_network_supported(self, network, config):
        return True

    # Tensor-core FP16/BF16/TF32 (and INT8) arithmetic: a usable GPU of compute capability 8.0 or newer
    # (the CUDA backend builds for sm_80 and sm_90); the CPU backend has none of them.
    platform_has_fast_fp16 = property(lambda s: _tensor_core_gpu())
    platform_has_fast_int8 = property(lambda s: _tensor_core_gpu())
    platform_has_tf32 = property(lambda s: _tensor_core_gpu())

    def reset(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
