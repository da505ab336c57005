"""Build-time tactics on the GPU: a build times its cuBLASLt/cuDNN tactics into the plan and into a set
timing cache; a build seeded with that cache reuses the records (it adds none) and its engine gives the
same results."""
import numpy as np

import kiln as trt
from gpu_helpers import rel_l2, run_torch
from kiln_helpers import CapturingLogger
from models import resnet


def _build(data, cache, fp16):
    logger = CapturingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(data)
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "\n".join(m for _, m in logger.messages)
    return trt.Runtime(logger).deserialize_cuda_engine(plan), logger


def test_build_records_tactics_and_a_warm_cache_reuses_them():
    model = resnet.build(full=False, seed=0)
    data = model.SerializeToString()
    inputs = resnet.sample_inputs(model, seed=1)
    config = trt.Builder(CapturingLogger()).create_builder_config()
    cache = config.create_timing_cache(b"")
    cold, log_cold = _build(data, cache, fp16=True)
    recorded = len(cache)
    assert recorded > 0, "\n".join(m for _, m in log_cold.messages)
    assert not any("tactics not timed" in m for _, m in log_cold.messages)
    warm_cache = config.create_timing_cache(bytes(cache.serialize()))
    assert len(warm_cache) == recorded
    warm, _ = _build(data, warm_cache, fp16=True)
    assert len(warm_cache) == recorded  # nothing new to time
    a, b = run_torch(cold, inputs), run_torch(warm, inputs)
    for k in a:
        assert a[k].shape == b[k].shape and not np.isnan(a[k]).any()
        assert rel_l2(b[k], a[k]) <= 1e-2
