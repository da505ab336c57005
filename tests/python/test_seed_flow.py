"""The seed document's flow, verbatim in TensorRT's words, on the shipped LeNet model: TensorRT 8.6
binding style and TensorRT 10 name-based style; plus the error paths of the same calls."""
import os
import threading

import numpy as np
import pytest

import kiln as trt
from kiln_helpers import CapturingLogger, ort_run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "models", "lenet.onnx")


def _build(tmp_path, logger, batch=(1, 1, 4)):
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    success = parser.parse_from_file(MODEL)
    for idx in range(parser.num_errors):
        print(parser.get_error(idx))
    assert success
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (batch[0], 1, 28, 28), (batch[1], 1, 28, 28), (batch[2], 1, 28, 28))
    config.add_optimization_profile(profile)
    serialized_engine = builder.build_serialized_network(network, config)
    assert serialized_engine is not None
    path = tmp_path / "sample.engine"
    with open(path, "wb") as f:
        f.write(serialized_engine)
    return serialized_engine, path


def test_trt8_binding_flow(tmp_path):
    logger = trt.Logger(trt.Logger.WARNING)
    serialized_engine, path = _build(tmp_path, logger)
    runtime = trt.Runtime(logger)
    with open(path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    assert engine is not None and engine.num_bindings == 2
    context = engine.create_execution_context()
    input_idx = engine["input"]
    output_idx = engine["probs"]
    assert engine[input_idx] == "input" and engine.binding_is_input(input_idx)
    assert not engine.binding_is_input(output_idx)
    assert tuple(engine.get_binding_shape(input_idx)) == (-1, 1, 28, 28)
    assert engine.get_binding_dtype(output_idx) == trt.float32
    context.set_binding_shape(input_idx, (3, 1, 28, 28))
    assert context.all_binding_shapes_specified
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    y = np.empty(tuple(context.get_binding_shape(output_idx)), np.float32)
    buffers = [None] * 2
    buffers[input_idx] = x.ctypes.data
    buffers[output_idx] = y.ctypes.data
    assert context.execute_async_v2(buffers, 0)
    ref = ort_run(open(MODEL, "rb").read(), {"input": x})["probs"]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)
    y2 = np.empty_like(y)
    buffers[output_idx] = y2.ctypes.data
    assert context.execute_v2(buffers)
    np.testing.assert_array_equal(y, y2)


def test_trt10_name_based_flow(tmp_path):
    logger = CapturingLogger()
    serialized_engine, _ = _build(tmp_path, logger)
    with trt.Runtime(logger) as runtime, runtime.deserialize_cuda_engine(serialized_engine) as engine, \
            engine.create_execution_context() as context:
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        assert names == ["input", "probs"]
        assert engine.get_tensor_mode("input") == trt.TensorIOMode.INPUT
        assert engine.get_tensor_mode("probs") == trt.TensorIOMode.OUTPUT
        assert [tuple(s) for s in engine.get_tensor_profile_shape("input", 0)] == [
            (1, 1, 28, 28), (1, 1, 28, 28), (4, 1, 28, 28)]
        assert engine.device_memory_size > 0
        for batch in (1, 4, 2):
            context.set_input_shape("input", (batch, 1, 28, 28))
            assert tuple(context.get_tensor_shape("probs")) == (batch, 10)
            x = np.random.default_rng(batch).standard_normal((batch, 1, 28, 28)).astype(np.float32)
            y = np.full((batch, 10), np.nan, np.float32)
            context.set_tensor_address("input", x.ctypes.data)
            context.set_tensor_address("probs", y.ctypes.data)
            assert context.execute_async_v3(0)
            ref = ort_run(open(MODEL, "rb").read(), {"input": x})["probs"]
            np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
        assert trt.volume(context.get_tensor_shape("probs")) == 20
        assert logger.errors() == []


def test_numpy_arrays_accepted_as_pointers(tmp_path):
    logger = CapturingLogger()
    plan, _ = _build(tmp_path, logger)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    ctx = engine.create_execution_context()
    x = np.ones((1, 1, 28, 28), np.float32)
    y = np.zeros((1, 10), np.float32)
    ctx.set_input_shape("input", x.shape)
    ctx.set_tensor_address("input", x)
    ctx.set_tensor_address("probs", y)
    assert ctx.execute_async_v3(0)
    assert abs(float(y.sum()) - 1.0) < 1e-5


def test_build_engine_8x_and_max_workspace(tmp_path):
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    assert trt.OnnxParser(network, logger).parse(open(MODEL, "rb").read())
    config = builder.create_builder_config()
    config.max_workspace_size = 1 << 22
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 22
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (2, 1, 28, 28), (2, 1, 28, 28), (2, 1, 28, 28))
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    assert engine is not None and engine.num_io_tensors == 2
    assert len(engine.serialize()) > 1000


def test_dynamic_network_without_profile_fails_with_clear_error():
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger).parse(open(MODEL, "rb").read())
    assert builder.build_serialized_network(network, builder.create_builder_config()) is None
    assert any("optimization profile" in m and "input" in m for m in logger.errors()), logger.messages


def test_shape_outside_profile_and_missing_address(tmp_path):
    logger = CapturingLogger()
    plan, _ = _build(tmp_path, logger)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    ctx = engine.create_execution_context()
    assert not ctx.set_input_shape("input", (9, 1, 28, 28))
    assert any("outside optimization profile" in m for m in logger.errors())
    assert not ctx.set_input_shape("nope", (1, 1, 28, 28))
    assert ctx.set_input_shape("input", (1, 1, 28, 28))
    assert not ctx.execute_async_v3(0)  # no addresses
    assert any("no address" in m for m in logger.errors())


@pytest.mark.parametrize("damage", ["empty", "truncated", "flipped", "foreign", "none"])
def test_bad_plans_return_none(tmp_path, damage):
    logger = CapturingLogger()
    plan, _ = _build(tmp_path, logger)
    data = bytes(plan)
    if damage == "empty":
        data = b""
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        b = bytearray(data)
        b[len(b) // 3] ^= 0x40
        data = bytes(b)
    elif damage == "foreign":
        data = open(MODEL, "rb").read()
    elif damage == "none":
        data = None
    assert trt.Runtime(logger).deserialize_cuda_engine(data) is None
    assert logger.errors(), "the reason must be logged"


def test_contexts_on_threads_share_one_engine(tmp_path):
    logger = CapturingLogger()
    plan, _ = _build(tmp_path, logger, batch=(1, 2, 4))
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    model = open(MODEL, "rb").read()
    failures = []

    def worker(seed):
        try:
            ctx = engine.create_execution_context()
            rng = np.random.default_rng(seed)
            for it in range(8):
                batch = 1 + (seed + it) % 4
                x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
                y = np.full((batch, 10), np.nan, np.float32)
                ctx.set_input_shape("input", x.shape)
                ctx.set_tensor_address("input", x.ctypes.data)
                ctx.set_tensor_address("probs", y.ctypes.data)
                assert ctx.execute_async_v3(0)
                np.testing.assert_allclose(y, ort_run(model, {"input": x})["probs"], rtol=1e-4, atol=1e-6)
        except Exception as e:  # collected and reported by the main thread
            failures.append(repr(e))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_module_helpers():
    assert trt.volume(()) == 1 and trt.volume((2, 3, 4)) == 24
    assert trt.nptype(trt.float32) == np.float32 and trt.nptype(trt.int64) == np.int64
    with pytest.raises(TypeError):
        trt.nptype(trt.bfloat16)
    assert trt.DataType.HALF.itemsize == 2
    assert trt.Logger.WARNING == trt.ILogger.Severity.WARNING
    assert isinstance(trt.__version__, str)
