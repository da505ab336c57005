"""ResNet's stem (7x7 stride-2 convolution on RGB, ReLU, 3x3 stride-2 max pooling) and MobileNet's (the same
with a 3x3 stride-2 convolution) in a float16 engine: by default (and with KILN_STEM_SPACE_TO_DEPTH=1) the
convolution runs as SpaceToDepthNhwc + a 4x4 (2x2) stride-1 convolution (passes/channels_last.h), with
KILN_STEM_SPACE_TO_DEPTH=0 as it is; the outputs match ONNX Runtime's either way.

Without a GPU the engines are CPU engines built with the GPU target's passes (KILN_CPU_RUNS_GPU_PIPELINE). The
CPU backend's convolution and pooling take float32 only, so there the convolution and the pooling are pinned to
float32 (OBEY_PRECISION_CONSTRAINTS): the rewrite still happens (it depends on the engine's FP16 flag), and
SpaceToDepthNhwc writes float16, in front of a Cast back to float32. Either way the op reads the float32
network input itself and converts it (passes/fold_space_to_depth_cast.h): no Cast to float16 in front of it.
The unpinned engine runs where a GPU is present."""
import numpy as np
import pytest
from onnx import helper

from test_onnx_import import make_model, parse, parser_errors, run_kiln
from kiln_helpers import ort_run
import kiln

RNG = np.random.default_rng(11)
HAS_GPU = kiln._kiln.gpu_available()


@pytest.fixture(autouse=True)
def gpu_passes(monkeypatch):
    monkeypatch.setenv("KILN_CPU_RUNS_GPU_PIPELINE", "1")


def stem_model(n, h, w, k=16, kernel=7):
    """x [n, 3, h, w] -> Conv kernel x kernel /2 pad kernel // 2 (+bias) -> Relu -> MaxPool 3x3/2 pad 1 -> y."""
    x = RNG.standard_normal((n, 3, h, w)).astype(np.float32)
    inits = {"W": (RNG.standard_normal((k, 3, kernel, kernel)) * 0.1).astype(np.float32),
             "B": (RNG.standard_normal(k) * 0.1).astype(np.float32)}
    p = kernel // 2
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[kernel, kernel], strides=[2, 2],
                              pads=[p, p, p, p]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]
    return make_model(nodes, {"x": x}, ["y"], inits), x


def build(model, fp16=True, pin_float32=False):
    """Builds `model`; pin_float32 keeps its Conv and MaxPool layers in float32 (the CPU has no float16 ones)."""
    ok, parser, network, builder, logger = parse(model.SerializeToString())
    assert ok, "parse failed:\n" + "\n".join(str(e) for e in parser_errors(parser))
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(kiln.BuilderFlag.FP16)
    if pin_float32:
        config.set_flag(kiln.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type in (kiln.LayerType.CONVOLUTION, kiln.LayerType.POOLING, kiln.LayerType.ACTIVATION):
                layer.precision = kiln.float32
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "build failed:\n" + "\n".join(m for _, m in logger.messages)
    engine = kiln.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine is not None
    return engine


def layers(engine):
    """(op, output dtype) of each layer describe() lists ("  Op 'name' -> float16[...]")."""
    lines = engine.describe().split("layers:", 1)[1].splitlines()[1:]
    return [(l.split()[0], l.rsplit("-> ", 1)[1].split("[")[0]) for l in lines if l.startswith("  ") and "->" in l]


def check(model, x, switch, monkeypatch, pin_float32, rtol):
    if switch is None:
        monkeypatch.delenv("KILN_STEM_SPACE_TO_DEPTH", raising=False)
    else:
        monkeypatch.setenv("KILN_STEM_SPACE_TO_DEPTH", switch)
    engine = build(model, pin_float32=pin_float32)
    listed = layers(engine)
    s2d = [dt for op, dt in listed if op == "SpaceToDepthNhwc"]
    assert s2d == ([] if switch == "0" else ["float16"]), engine.describe()
    if s2d:
        # Layers are listed in topological order and the op reads only x: a Cast of x to float16 would come
        # first. Nothing does, so the op reads x's float32 and writes float16 itself.
        assert listed[0] == ("SpaceToDepthNhwc", "float16"), engine.describe()
    ref = ort_run(model.SerializeToString(), {"x": x})["y"]
    got = run_kiln(engine, {"x": x})["y"]
    assert got.shape == ref.shape
    assert not np.isnan(got).any()
    err = np.max(np.abs(got.astype(np.float64) - ref))
    assert err <= rtol * np.max(np.abs(ref)), f"switch {switch}: max error {err}"


@pytest.mark.parametrize("kernel", [7, 3])
@pytest.mark.parametrize("switch", [None, "1", "0"])
@pytest.mark.parametrize("n,h,w", [(2, 32, 32), (1, 33, 31)])
def test_stem_with_float32_convolution(monkeypatch, switch, n, h, w, kernel):
    model, x = stem_model(n, h, w, kernel=kernel)
    check(model, x, switch, monkeypatch, pin_float32=True, rtol=5e-3)  # x rounded to float16 only


@pytest.mark.skipif(not HAS_GPU, reason="float16 convolutions run on the GPU only")
@pytest.mark.parametrize("kernel", [7, 3])
@pytest.mark.parametrize("switch", [None, "0"])
@pytest.mark.parametrize("n,h,w", [(2, 32, 32), (4, 224, 224)])
def test_stem_in_float16(monkeypatch, switch, n, h, w, kernel):
    model, x = stem_model(n, h, w, kernel=kernel)
    check(model, x, switch, monkeypatch, pin_float32=False, rtol=2e-2)


@pytest.mark.parametrize("kernel", [7, 3])
def test_stem_with_its_own_padding(monkeypatch, kernel):
    """KILN_S2D_VECTOR=0: the rewrite keeps the convolution's odd begin padding (no zero taps in front)."""
    monkeypatch.setenv("KILN_S2D_VECTOR", "0")
    model, x = stem_model(2, 32, 32, kernel=kernel)
    check(model, x, None, monkeypatch, pin_float32=True, rtol=5e-3)


def test_float32_engines_keep_the_strided_stem(monkeypatch):
    """The rewrite applies to float16/bfloat16 engines only (where it was measured)."""
    monkeypatch.setenv("KILN_STEM_SPACE_TO_DEPTH", "1")
    model, x = stem_model(1, 32, 32)
    engine = build(model, fp16=False)
    assert "SpaceToDepthNhwc" not in [op for op, _ in layers(engine)], engine.describe()
    ref = ort_run(model.SerializeToString(), {"x": x})["y"]
    got = run_kiln(engine, {"x": x})["y"]
    assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(np.abs(ref))
