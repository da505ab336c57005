"""RNN, GRU and LSTM imported from ONNX and run by Kiln, compared with ONNX Runtime on random weights:
directions, activations with alpha/beta, clip, linear_before_reset, input_forget, peepholes, sequence_lens,
initial states, layout 0/1, all outputs, opsets 7/14/22 and float64 inputs."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from kiln_helpers import CapturingLogger, assert_close, build_engine, ort_run, run_engine

import onnxruntime  # noqa: F401,E402 - the reference; scripts/setup.sh installs it

RNG = np.random.default_rng(77)
_T = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
      np.dtype(np.int32): TensorProto.INT32}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def rnd(*shape, scale=0.5, dtype=np.float32):
    return RNG.uniform(-scale, scale, size=shape).astype(dtype)


def model(op, inputs, inits, outputs, attrs, opset):
    """inputs/inits: ordered {name: array or None} in the op's input order; None = omitted."""
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    given = {**inputs, **inits}
    node_inputs = [n if given.get(n) is not None else "" for n in order if n in given]
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()
    node = helper.make_node(op, node_inputs, outputs, **attrs)
    vis = [helper.make_tensor_value_info(k, _T[v.dtype], list(v.shape)) for k, v in inputs.items() if v is not None]
    inis = [numpy_helper.from_array(v, k) for k, v in inits.items() if v is not None]
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs if o]
    g = helper.make_graph([node], "rec", vis, outs, inis)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7 if opset < 15 else 10
    return m


def run(op, T=5, B=3, I=4, H=6, direction="forward", layout=0, opset=14, bias=True, lens=None, init=False,
        peep=False, attrs=None, outputs=("Y", "Y_h", "Y_c"), dtype=np.float32, weights_as_inputs=False):
    D = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    x = rnd(T, B, I, scale=1.0, dtype=dtype) if layout == 0 else rnd(B, T, I, scale=1.0, dtype=dtype)
    w, r = rnd(D, G * H, I, dtype=dtype), rnd(D, G * H, H, dtype=dtype)
    b = rnd(D, 2 * G * H, dtype=dtype) if bias else None
    sl = np.array(lens, np.int32) if lens is not None else None
    st = (D, B, H) if layout == 0 else (B, D, H)
    h0 = rnd(*st, dtype=dtype) if init else None
    c0 = rnd(*st, dtype=dtype) if init and op == "LSTM" else None
    p = rnd(D, 3 * H, dtype=dtype) if peep else None
    a = {"hidden_size": H, "direction": direction}
    if layout:
        a["layout"] = layout
    a.update(attrs or {})
    outs = list(outputs if op == "LSTM" else [o for o in outputs if o != "Y_c"])
    inputs = {"X": x}
    weights = {"W": w, "R": r, "B": b}
    if weights_as_inputs:
        inputs.update(weights)
        weights = {}
    inits = {**weights, "sequence_lens": sl, "initial_h": h0}
    if op == "LSTM":
        inits.update({"initial_c": c0, "P": p})
    m = model(op, inputs, inits, outs, a, opset)
    feed = {k: v for k, v in inputs.items() if v is not None}
    got = run_engine(build_engine(m.SerializeToString()), feed)
    if dtype != np.float32:  # ONNX Runtime's recurrent kernels are float32 only: the same data in float32
        f32 = {k: v.astype(np.float32) if v is not None and v.dtype == dtype else v for k, v in inits.items()}
        ref = ort_run(model(op, {"X": x.astype(np.float32)}, f32, outs, a, opset).SerializeToString(),
                      {"X": x.astype(np.float32)})
    elif layout == 0:
        ref = ort_run(m.SerializeToString(), feed)
    else:  # ONNX Runtime has no batch-major layout: run the same weights sequence-major, transpose back
        a.pop("layout")
        t_inits = {k: (np.ascontiguousarray(v.transpose(1, 0, 2)) if k in ("initial_h", "initial_c") and v is not None
                       else v) for k, v in inits.items()}
        t_feed = {"X": np.ascontiguousarray(x.transpose(1, 0, 2))}
        ref = ort_run(model(op, {"X": t_feed["X"]}, t_inits, outs, a, opset).SerializeToString(), t_feed)
        ref = {k: v.transpose(2, 0, 1, 3) if v.ndim == 4 else v.transpose(1, 0, 2) for k, v in ref.items()}
    tol = 1e-5
    for o in outs:
        if o:
            assert_close(got[o], ref[o], rtol=10 * tol, atol=tol, what=f"{op} {o}")


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_directions(op, direction):
    run(op, direction=direction, init=True)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_sequence_lens(op, direction):
    run(op, direction=direction, lens=[5, 2, 4], init=True)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_no_bias_no_state(op):
    run(op, bias=False)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_layout_1(op, direction):
    run(op, layout=1, direction=direction, init=True, lens=[3, 5, 1])


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("opset", [7, 14, 22])
def test_opsets(op, opset):
    run(op, opset=opset, direction="bidirectional")


def test_gru_linear_before_reset():
    run("GRU", attrs={"linear_before_reset": 1}, direction="bidirectional", init=True, lens=[5, 3, 5])


def test_lstm_peepholes_input_forget():
    run("LSTM", peep=True, init=True)
    run("LSTM", peep=True, attrs={"input_forget": 1}, direction="bidirectional")


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_clip(op):
    run(op, attrs={"clip": 0.4}, direction="bidirectional", init=True)


def test_activations_alpha_beta():
    run("RNN", attrs={"activations": ["LeakyRelu", "ScaledTanh"], "activation_alpha": [0.2, 0.7],
                      "activation_beta": [1.4]}, direction="bidirectional")
    run("GRU", attrs={"activations": ["HardSigmoid", "Softsign"], "activation_alpha": [0.3],
                      "activation_beta": [0.45]})
    run("LSTM", attrs={"activations": ["Sigmoid", "Elu", "Relu"], "activation_alpha": [0.8]})


def test_only_final_state_outputs():
    run("LSTM", outputs=("", "Y_h"))
    run("GRU", outputs=("", "Y_h"))


def test_weights_as_graph_inputs():
    run("LSTM", weights_as_inputs=True, direction="bidirectional")


def test_double_inputs():
    run("LSTM", dtype=np.float64, direction="bidirectional", init=True)  # ORT runs LSTM, not GRU, in double


def test_bad_hidden_size_is_a_clear_error():
    import kiln

    x = rnd(2, 1, 3)
    m = model("GRU", {"X": x}, {"W": rnd(1, 12, 3), "R": rnd(1, 12, 4)}, ["Y"], {"hidden_size": 5}, 14)
    logger = CapturingLogger()
    net = kiln.Builder(logger).create_network(0)
    parser = kiln.OnnxParser(net, logger)
    assert not parser.parse(m.SerializeToString())
    msg = str(parser.get_error(0))
    assert "GRU" in msg and "hidden_size" in msg, msg
