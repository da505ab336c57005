"""ITimingCache: creation from bytes, serialization round trip, corrupt input, and a CPU build (which times
nothing) leaving a set cache unchanged. The GPU side (records made and reused) is tests/gpu/test_gpu_timing_cache.py."""
import numpy as np
import pytest

import kiln as trt
from kiln_helpers import CapturingLogger


def _network(builder):
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    x = network.add_input("x", trt.float32, (2, 8))
    w = network.add_constant((8, 4), np.ones((8, 4), np.float32))
    y = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w.get_output(0), trt.MatrixOperation.NONE)
    network.mark_output(y.get_output(0))
    return network


def test_empty_cache_round_trips():
    builder = trt.Builder(CapturingLogger())
    config = builder.create_builder_config()
    cache = config.create_timing_cache(b"")
    assert len(cache) == 0
    data = cache.serialize()
    assert bytes(data[:4]) == b"KLTC"
    again = config.create_timing_cache(bytes(data))
    assert len(again) == 0 and bytes(again.serialize()) == bytes(data)
    assert cache.combine(again, False) and cache.reset()


@pytest.mark.parametrize("data,message", [(b"nope", "not a Kiln timing cache"),
                                          (b"KLTC\x09\x00\x00\x00\x00\x00\x00\x00", "format version 9"),
                                          (b"KLTC\x01\x00\x00\x00\x01\x00\x00\x00", "truncated")])
def test_corrupt_bytes_are_refused_with_a_reason(data, message):
    config = trt.Builder(CapturingLogger()).create_builder_config()
    with pytest.raises(ValueError, match=message):
        config.create_timing_cache(data)


def test_set_timing_cache_checks_its_argument():
    config = trt.Builder(CapturingLogger()).create_builder_config()
    with pytest.raises(TypeError, match="ITimingCache"):
        config.set_timing_cache(b"KLTC", False)
    cache = config.create_timing_cache(b"")
    assert config.set_timing_cache(cache, False)
    assert config.get_timing_cache() is cache
    assert config.set_timing_cache(None, False) and config.get_timing_cache() is None


def test_cpu_build_leaves_the_cache_unchanged():
    builder = trt.Builder(CapturingLogger())
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.CPU
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(_network(builder), config)
    assert plan is not None
    assert len(cache) == 0
