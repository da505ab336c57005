"""The seed document's flow verbatim on the GPU: device buffers from PyTorch's data_ptr(), execute_async_v2
on a CUDA stream (TensorRT 8.6 style) and execute_async_v3 with tensor addresses (TensorRT 10 style); the
plan records the GPU; other stream and buffer kinds (CuPy, cuda-python) work as TensorRT's do."""
import os

import numpy as np

import kiln as trt
from gpu_helpers import build, rel_l2
from kiln_helpers import ort_run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "models", "lenet.onnx")


def _lenet_plan():
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(MODEL)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 26)
    config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 1, 28, 28), (4, 1, 28, 28), (8, 1, 28, 28))
    config.add_optimization_profile(profile)
    return builder.build_serialized_network(network, config)


def test_plan_targets_this_gpu():
    plan = _lenet_plan()
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
    assert engine._c.target == trt._kiln.gpu_target()
    assert engine._c.target.startswith("cuda:sm_")


def test_seed_flow_trt8_torch_buffers():
    import torch
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(_lenet_plan())
    context = engine.create_execution_context()
    input_idx = engine["input"]
    output_idx = engine["probs"]
    context.set_binding_shape(input_idx, (3, 1, 28, 28))
    x = torch.randn(3, 1, 28, 28, device="cuda")
    y = torch.full(tuple(context.get_binding_shape(output_idx)), float("nan"), device="cuda")
    buffers = [None] * 2
    buffers[input_idx] = x.data_ptr()
    buffers[output_idx] = y.data_ptr()
    stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    assert context.execute_async_v2(buffers, stream.cuda_stream)
    stream.synchronize()
    ref = ort_run(open(MODEL, "rb").read(), {"input": x.cpu().numpy()})["probs"]
    np.testing.assert_allclose(y.cpu().numpy(), ref, rtol=1e-4, atol=1e-6)


def test_seed_flow_trt10_names_and_replay():
    import torch
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(_lenet_plan())
    context = engine.create_execution_context()
    context.set_input_shape("input", (4, 1, 28, 28))
    stream = torch.cuda.Stream()
    model = open(MODEL, "rb").read()
    for i in range(5):  # first run eager, then captured into a CUDA graph and replayed
        x = torch.randn(4, 1, 28, 28, device="cuda")
        y = torch.full((4, 10), float("nan"), device="cuda")
        context.set_tensor_address("input", x.data_ptr())
        context.set_tensor_address("probs", y.data_ptr())
        torch.cuda.synchronize()
        assert context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        ref = ort_run(model, {"input": x.cpu().numpy()})["probs"]
        np.testing.assert_allclose(y.cpu().numpy(), ref, rtol=1e-4, atol=1e-6, err_msg=f"run {i}")


def test_execute_v2_is_synchronous_and_host_buffers_work():
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(_lenet_plan())
    context = engine.create_execution_context()
    context.set_input_shape("input", (2, 1, 28, 28))
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    y = np.full((2, 10), np.nan, np.float32)
    assert context.execute_v2([x, y])  # numpy arrays: staged through device copies
    ref = ort_run(open(MODEL, "rb").read(), {"input": x})["probs"]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)


def test_cupy_and_cuda_python_buffers_and_streams():
    # The GPU machine has CuPy and cuda-python (the interop this test checks): missing ones are a failure.
    import cupy as cp
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(_lenet_plan())
    context = engine.create_execution_context()
    context.set_input_shape("input", (2, 1, 28, 28))
    x = cp.asarray(np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32))
    y = cp.full((2, 10), cp.nan, dtype=cp.float32)
    s = cp.cuda.Stream(non_blocking=True)
    context.set_tensor_address("input", x.data.ptr)
    context.set_tensor_address("probs", y)  # the array object itself (__cuda_array_interface__)
    assert context.execute_async_v3(s)  # a CuPy stream object
    s.synchronize()
    ref = ort_run(open(MODEL, "rb").read(), {"input": cp.asnumpy(x)})["probs"]
    np.testing.assert_allclose(cp.asnumpy(y), ref, rtol=1e-4, atol=1e-6)

    from cuda.bindings import runtime as cudart
    err, dx = cudart.cudaMalloc(x.nbytes)
    assert err == cudart.cudaError_t.cudaSuccess
    err, dy = cudart.cudaMalloc(y.nbytes)
    err, stream = cudart.cudaStreamCreate()
    cudart.cudaMemcpy(dx, x.data.ptr, x.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice)
    assert context.execute_async_v2([dx, dy], stream)
    cudart.cudaStreamSynchronize(stream)
    out = np.empty((2, 10), np.float32)
    cudart.cudaMemcpy(out.ctypes.data, dy, out.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)
    cudart.cudaFree(dx)
    cudart.cudaFree(dy)
    cudart.cudaStreamDestroy(stream)


def test_cpu_target_still_available_on_gpu_machine():
    engine, _ = build(open(MODEL, "rb").read(), shapes={"input": ((1, 1, 28, 28),) * 3}, device=trt.DeviceType.CPU)
    assert engine._c.target == "cpu"
