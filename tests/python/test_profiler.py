"""TensorRT's IProfiler on Kiln: with context.profiler set, every execution reports each layer once, in
execution order, and context.last_profile() gives Kiln's richer rows (op, ms, estimated flops/bytes)."""
import numpy as np
import pytest

import kiln as trt


def _engine(device=trt.DeviceType.CPU):
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (2, 8))
    w = net.add_constant((8, 4), np.arange(32, dtype=np.float32).reshape(8, 4) / 32)
    mm = net.add_matrix_multiply(x, trt.MatrixOperation.NONE, w.get_output(0), trt.MatrixOperation.NONE)
    mm.name = "project"
    sm = net.add_softmax(mm.get_output(0))
    sm.axes = 1 << 1
    sm.name = "softmax"
    net.mark_output(sm.get_output(0))
    config = builder.create_builder_config()
    config.default_device_type = device
    plan = builder.build_serialized_network(net, config)
    return trt.Runtime(logger).deserialize_cuda_engine(plan)


class Recorder(trt.IProfiler):
    def __init__(self):
        super().__init__()
        self.rows = []

    def report_layer_time(self, layer_name, ms):
        self.rows.append((layer_name, ms))


def test_profiler_reports_every_layer_in_order():
    engine = _engine()
    ctx = engine.create_execution_context()
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    y = np.empty((2, 4), np.float32)
    rec = Recorder()
    ctx.profiler = rec
    assert ctx.profiler is rec
    assert ctx.execute_v2([x.ctypes.data, y.ctypes.data])
    names = [n for n, _ in rec.rows]
    assert names.index("project") < names.index("softmax")
    assert all(ms >= 0 for _, ms in rec.rows)
    z = x @ (np.arange(32, dtype=np.float32).reshape(8, 4) / 32)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, z / z.sum(axis=1, keepdims=True), rtol=1e-5)
    rows = {r["name"]: r for r in ctx.last_profile()}
    assert rows["project"]["op"] == "MatrixMultiply"
    assert rows["project"]["flops"] == 2 * 2 * 4 * 8  # 2 x M x N x K
    assert rows["project"]["bytes"] == 4 * (2 * 8 + 8 * 4 + 2 * 4)
    # A second run reports again; clearing the profiler stops reporting.
    assert ctx.execute_v2([x.ctypes.data, y.ctypes.data])
    assert len(rec.rows) == 2 * len(names)
    ctx.profiler = None
    assert ctx.execute_v2([x.ctypes.data, y.ctypes.data])
    assert len(rec.rows) == 2 * len(names)


def test_profiler_must_have_report_layer_time():
    ctx = _engine().create_execution_context()
    with pytest.raises(TypeError, match="report_layer_time"):
        ctx.profiler = object()
