"""Building Kiln engines for the GPU and running them on torch CUDA tensors."""
import numpy as np

import kiln as trt
from kiln_helpers import CapturingLogger


def build(model_bytes, shapes=None, fp16=False, bf16=False, tf32=False, logger=None, device=trt.DeviceType.GPU):
    logger = logger or CapturingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model_bytes), "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
    config = builder.create_builder_config()
    config.default_device_type = device
    if not tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if bf16:
        config.set_flag(trt.BuilderFlag.BF16)
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (mn, opt, mx) in shapes.items():
            profile.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "build failed: " + "\n".join(m for _, m in logger.messages)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None, "\n".join(m for _, m in logger.messages)
    return engine, logger


def run_torch(engine, inputs, context=None, stream=None):
    """Runs with torch CUDA tensors (v3 API, name-based) on `stream`; returns {name: numpy array}."""
    import torch
    ctx = context or engine.create_execution_context()
    stream = stream or torch.cuda.current_stream()
    keep = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            a = np.ascontiguousarray(inputs[name], dtype=trt.nptype(engine.get_tensor_dtype(name)))
            t = torch.from_numpy(a).cuda()
            assert ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
            keep[name] = t
    outs = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            dt = torch.from_numpy(np.zeros(1, trt.nptype(engine.get_tensor_dtype(name)))).dtype
            o = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=dt, device="cuda")
            if o.is_floating_point():
                o.fill_(float("nan"))  # poison: every element must be written
            ctx.set_tensor_address(name, o.data_ptr())
            outs[name] = o
    torch.cuda.synchronize()
    assert ctx.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return {k: v.cpu().numpy() for k, v in outs.items()}


def rel_l2(got, ref):
    got = got.astype(np.float64)
    ref = ref.astype(np.float64)
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
