"""Kiln's main job, end to end, in TensorRT's own words: parse an ONNX model, build a plan, save it,
load it, run inference, and check the result against ONNX Runtime."""
import os
import sys
import tempfile
import time

import numpy as np

import kiln as trt


def main(model_path):
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    t0 = time.perf_counter()
    if not parser.parse_from_file(model_path):
        for i in range(parser.num_errors):
            print(parser.get_error(i))
        return 1
    print(f"parsed {model_path}: {network.num_layers} layers, inputs "
          f"{[(network.get_input(i).name, tuple(network.get_input(i).shape)) for i in range(network.num_inputs)]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
    inp = network.get_input(0)
    if -1 in tuple(inp.shape):
        profile = builder.create_optimization_profile()
        static = [1 if d == -1 else d for d in inp.shape]
        big = [8 if d == -1 else d for d in inp.shape]
        profile.set_shape(inp.name, static, static, big)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        print("build failed")
        return 1
    t1 = time.perf_counter()
    plan_path = os.path.join(tempfile.gettempdir(), "sample.engine")
    with open(plan_path, "wb") as f:
        f.write(plan)
    print(f"built and saved {plan_path}: {len(plan)} bytes in {(t1 - t0) * 1e3:.1f} ms")

    runtime = trt.Runtime(logger)
    with open(plan_path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    context = engine.create_execution_context()
    in_name, out_name = engine.get_tensor_name(0), engine.get_tensor_name(1)
    shape = [1 if d == -1 else d for d in engine.get_tensor_shape(in_name)]
    context.set_input_shape(in_name, shape)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(trt.nptype(engine.get_tensor_dtype(in_name)))
    y = np.empty(tuple(context.get_tensor_shape(out_name)), dtype=trt.nptype(engine.get_tensor_dtype(out_name)))
    context.set_tensor_address(in_name, x.ctypes.data)
    context.set_tensor_address(out_name, y.ctypes.data)
    context.execute_async_v3(0)  # warm-up
    times = []
    for _ in range(20):
        s = time.perf_counter()
        context.execute_async_v3(0)
        times.append(time.perf_counter() - s)
    print(f"ran {engine.num_layers} layers on {engine.target}: output {out_name} {y.shape}, "
          f"median {np.median(times) * 1e3:.3f} ms over {len(times)} runs")
    print("result:", np.array2string(y.ravel()[:10], precision=4))

    try:
        import onnxruntime as ort
        ref = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]).run(None, {in_name: x})[0]
        err = float(np.max(np.abs(ref - y)))
        print(f"max abs difference vs ONNX Runtime: {err:.2e}")
        if not err < 1e-4:
            return 1
    except ImportError:
        print("onnxruntime not installed: reference check skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "models/lenet.onnx"))
