"""Shared test helpers: build an engine from ONNX bytes through the TensorRT-style API and run it."""
import numpy as np

import kiln as trt


class CapturingLogger(trt.ILogger):
    """A user logger subclass, as scripts write them; keeps every message."""

    def __init__(self):
        trt.ILogger.__init__(self)
        self.messages = []

    def log(self, severity, msg):
        self.messages.append((severity, msg))

    def errors(self):
        return [m for s, m in self.messages if s <= trt.ILogger.ERROR]


def tiny_matmul_network(builder):
    """x [2, 4] @ ones [4, 3]: a network that builds in milliseconds on the CPU, for tests of the build itself."""
    net = builder.create_network(0)
    x = net.add_input("x", trt.float32, (2, 4))
    w = net.add_constant((4, 3), np.ones((4, 3), np.float32))
    mm = net.add_matrix_multiply(x, trt.MatrixOperation.NONE, w.get_output(0), trt.MatrixOperation.NONE)
    net.mark_output(mm.get_output(0))
    return net


def build_engine(model_bytes, shapes=None, logger=None):
    """Parses and builds; `shapes` maps dynamic input names to (min, opt, max)."""
    logger = logger or CapturingLogger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse(model_bytes)
    assert ok, "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
    config = builder.create_builder_config()
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (mn, opt, mx) in shapes.items():
            profile.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "build failed: " + "\n".join(m for _, m in logger.messages)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None
    return engine


def run_engine(engine, inputs, context=None):
    """Runs with numpy inputs by name (v3 API); returns {output name: array}."""
    ctx = context or engine.create_execution_context()
    keep = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            a = np.ascontiguousarray(inputs[name], dtype=trt.nptype(engine.get_tensor_dtype(name)))
            assert ctx.set_input_shape(name, a.shape)
            ctx.set_tensor_address(name, a.ctypes.data)
            keep.append(a)
    outs = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            o = np.full(tuple(ctx.get_tensor_shape(name)), 0, dtype=trt.nptype(engine.get_tensor_dtype(name)))
            if o.dtype.kind == "f":
                o.fill(np.nan)  # poison: every element must be written
            ctx.set_tensor_address(name, o.ctypes.data)
            outs[name] = o
    assert ctx.execute_async_v3(0)
    return outs


def ort_run(model_bytes, inputs):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs)))


def assert_close(got, ref, rtol=1e-4, atol=1e-5, what=""):
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert not np.isnan(got).any() if got.dtype.kind == "f" else True, f"{what}: NaN in output"
    if got.dtype.kind in "fc":
        err = np.max(np.abs(got.astype(np.float64) - ref)) if got.size else 0.0
        tol = atol + rtol * np.max(np.abs(ref)) if ref.size else atol
        assert err <= tol, f"{what}: max abs error {err:.3e} > {tol:.3e}"
    else:
        np.testing.assert_array_equal(got, ref, err_msg=what)
