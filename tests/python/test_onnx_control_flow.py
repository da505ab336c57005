"""If, Loop and Scan imported from ONNX (lowered at import time: inlined, selected or unrolled) and run by
Kiln, compared with ONNX Runtime; and the clear import errors where lowering is not exact."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln
from kiln_helpers import CapturingLogger, assert_close, build_engine, ort_run, run_engine

import onnxruntime  # noqa: F401,E402 - the reference; scripts/setup.sh installs it

RNG = np.random.default_rng(5)
F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
_T = {np.dtype(np.float32): F, np.dtype(np.int64): I64, np.dtype(np.bool_): B}


def rnd(*shape):
    return RNG.uniform(-2, 2, size=shape).astype(np.float32)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def make(nodes, inputs, outputs, inits=None, opset=13):
    g = helper.make_graph(nodes, "cf", [vi(k, _T[v.dtype], list(v.shape)) for k, v in inputs.items()],
                          [helper.make_empty_tensor_value_info(o) for o in outputs],
                          [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def check(m, *feeds):
    """Builds once, runs every feed (1-element conditions are fed as [1]: the helpers make arrays 1-D+)."""
    data = m.SerializeToString()
    engine = build_engine(data)
    for feed in feeds:
        got, ref = run_engine(engine, feed), ort_run(data, feed)
        for k, r in ref.items():
            assert_close(got[k], r, what=k)


def parse_errors(m):
    logger = CapturingLogger()
    net = kiln.Builder(logger).create_network(0)
    parser = kiln.OnnxParser(net, logger)
    ok = parser.parse(m.SerializeToString())
    return ok, [str(parser.get_error(i)) for i in range(parser.num_errors)]


def branch(name, nodes, outputs):
    return helper.make_graph(nodes, name, [], outputs)


def add_mul_branches(out_shape=None):
    """then: x + 1, else: x * y (outer-scope names read from inside the branches)."""
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    then_g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["t"])], "then", [],
                               [vi("t", F, out_shape)], [one])
    else_g = branch("else", [helper.make_node("Mul", ["x", "y"], ["e"])], [vi("e", F, out_shape)])
    return then_g, else_g


# ---- If ---------------------------------------------------------------------------------------------------
def test_if_runtime_condition_selects():
    then_g, else_g = add_mul_branches()
    m = make([helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)],
             {"c": np.array([True]), "x": rnd(2, 3), "y": rnd(2, 3)}, ["out"])
    x, y = rnd(2, 3), rnd(2, 3)
    check(m, {"c": np.array([True]), "x": x, "y": y}, {"c": np.array([False]), "x": x, "y": y})


def test_if_constant_condition_inlines_the_taken_branch():
    then_g, else_g = add_mul_branches()
    for c in (True, False):
        m = make([helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)],
                 {"x": rnd(2, 3), "y": rnd(2, 3)}, ["out"], inits={"c": np.array(c)})
        check(m, {"x": rnd(2, 3), "y": rnd(2, 3)})
        logger = CapturingLogger()
        net = kiln.Builder(logger).create_network(0)
        assert kiln.OnnxParser(net, logger).parse(m.SerializeToString())
        names = [net.get_layer(i).name for i in range(net.num_layers)]
        taken, other = ("/then/", "/else/") if c else ("/else/", "/then/")
        assert any(taken in n for n in names) and not any(other in n for n in names), names


def test_if_condition_computed_from_shapes():
    """Shape -> Gather -> Equal is known at build time: only the taken branch is imported, so the other may
    even produce a different shape."""
    then_g = branch("then", [helper.make_node("Relu", ["x"], ["t"])], [vi("t", F, None)])
    else_g = branch("else", [helper.make_node("ReduceSum", ["x"], ["e"], keepdims=0)], [vi("e", F, None)])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
             helper.make_node("Equal", ["d0", "four"], ["c"]),
             helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)]
    inits = {"i0": np.array(0, np.int64), "four": np.array(4, np.int64)}
    check(make(nodes, {"x": rnd(4, 3)}, ["out"], inits), {"x": rnd(4, 3)})
    check(make(nodes, {"x": rnd(5, 3)}, ["out"], inits), {"x": rnd(5, 3)})


def test_if_runtime_condition_with_different_shapes_is_a_clear_error():
    then_g = branch("then", [helper.make_node("Relu", ["x"], ["t"])], [vi("t", F, None)])
    else_g = branch("else", [helper.make_node("ReduceSum", ["x"], ["e"], keepdims=0)], [vi("e", F, None)])
    m = make([helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)],
             {"c": np.array(True), "x": rnd(4, 3)}, ["out"])
    ok, errors = parse_errors(m)
    assert not ok
    assert "If" in errors[0] and "shape" in errors[0] and "run time" in errors[0], errors


def test_nested_if_multiple_outputs():
    inner_then = branch("it", [helper.make_node("Sub", ["x", "y"], ["a"])], [vi("a", F, None)])
    inner_else = branch("ie", [helper.make_node("Add", ["x", "y"], ["b"])], [vi("b", F, None)])
    outer_then = branch("ot", [helper.make_node("If", ["c2"], ["r"], then_branch=inner_then, else_branch=inner_else),
                               helper.make_node("Neg", ["r"], ["r2"])], [vi("r", F, None), vi("r2", F, None)])
    outer_else = branch("oe", [helper.make_node("Abs", ["x"], ["q"]), helper.make_node("Exp", ["y"], ["q2"])],
                        [vi("q", F, None), vi("q2", F, None)])
    m = make([helper.make_node("If", ["c1"], ["o1", "o2"], then_branch=outer_then, else_branch=outer_else)],
             {"c1": np.array([True]), "c2": np.array([True]), "x": rnd(3), "y": rnd(3)}, ["o1", "o2"])
    x, y = rnd(3), rnd(3)
    feeds = [{"c1": np.array([a]), "c2": np.array([b]), "x": x, "y": y} for a in (True, False) for b in (True, False)]
    check(m, *feeds)


# ---- Loop -------------------------------------------------------------------------------------------------
def loop_body(extra_nodes=(), cond_node=None):
    """Carried s: s = s * 0.5 + x[i] (x is an outer-scope [N, 3] tensor); scan output: s + i."""
    nodes = [helper.make_node("Gather", ["x", "i"], ["xi"], axis=0),
             helper.make_node("Mul", ["s_in", "half"], ["sh"]),
             helper.make_node("Add", ["sh", "xi"], ["s_out"]),
             helper.make_node("Cast", ["i"], ["fi"], to=F),
             helper.make_node("Add", ["s_out", "fi"], ["scan"])]
    nodes += list(extra_nodes)
    nodes.append(cond_node or helper.make_node("Identity", ["c_in"], ["c_out"]))
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    return helper.make_graph(nodes, "body", [vi("i", I64, []), vi("c_in", B, []), vi("s_in", F, [3])],
                             [vi("c_out", B, []), vi("s_out", F, [3]), vi("scan", F, [3])], [half])


def test_loop_constant_trip_count():
    m = make([helper.make_node("Loop", ["M", "", "s0"], ["s", "ys"], body=loop_body())],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"], inits={"M": np.array(4, np.int64)})
    check(m, {"x": rnd(6, 3), "s0": rnd(3)})


def test_loop_condition_computed_in_the_body_ends_early():
    cond = helper.make_node("Less", ["i", "two"], ["c_out"])  # stops after i = 2
    body = loop_body([helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2, np.int64)))],
                     cond)
    m = make([helper.make_node("Loop", ["M", "c", "s0"], ["s", "ys"], body=body)],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"],
             inits={"M": np.array(100, np.int64), "c": np.array(True)})
    check(m, {"x": rnd(6, 3), "s0": rnd(3)})


def test_loop_without_trip_count():
    cond = helper.make_node("Less", ["i", "three"], ["c_out"])
    body = loop_body([helper.make_node("Constant", [], ["three"],
                                       value=numpy_helper.from_array(np.array(3, np.int64)))], cond)
    m = make([helper.make_node("Loop", ["", "c", "s0"], ["s", "ys"], body=body)],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"], inits={"c": np.array(True)})
    check(m, {"x": rnd(6, 3), "s0": rnd(3)})


def test_loop_zero_iterations():
    m = make([helper.make_node("Loop", ["M", "", "s0"], ["s", "ys"], body=loop_body())],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"], inits={"M": np.array(0, np.int64)})
    data = m.SerializeToString()
    feed = {"x": rnd(6, 3), "s0": rnd(3)}
    got = run_engine(build_engine(data), feed)
    assert_close(got["s"], feed["s0"], what="s")
    assert got["ys"].shape == (0, 3)


def test_loop_runtime_trip_count_is_a_clear_error():
    m = make([helper.make_node("Loop", ["M", "", "s0"], ["s", "ys"], body=loop_body())],
             {"M": np.array(3, np.int64), "x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"])
    ok, errors = parse_errors(m)
    assert not ok and "trip count" in errors[0] and "build time" in errors[0], errors


def runtime_cond_body():
    return loop_body([helper.make_node("ReduceSum", ["s_out"], ["tot"], keepdims=0)],
                     helper.make_node("Greater", ["tot", "half"], ["c_out"]))


def test_loop_runtime_condition_is_a_clear_error():
    m = make([helper.make_node("Loop", ["M", "c", "s0"], ["s", "ys"], body=runtime_cond_body())],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"], inits={"M": np.array(3, np.int64), "c": np.array(True)})
    ok, errors = parse_errors(m)
    assert not ok and "condition" in errors[0] and "run-time" in errors[0], errors


def test_loop_without_cond_input_still_stops_on_the_body_condition():
    """M given, cond empty: ONNX Runtime (and ONNX's reference) still stop when the body's cond turns false,
    so a run-time body condition is refused there too."""
    m = make([helper.make_node("Loop", ["M", "", "s0"], ["s", "ys"], body=runtime_cond_body())],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"], inits={"M": np.array(3, np.int64)})
    ok, errors = parse_errors(m)
    assert not ok and "condition" in errors[0] and "run-time" in errors[0], errors


def test_loop_too_long_is_a_clear_error():
    m = make([helper.make_node("Loop", ["M", "", "s0"], ["s", "ys"], body=loop_body())],
             {"x": rnd(6, 3), "s0": rnd(3)}, ["s", "ys"], inits={"M": np.array(5000, np.int64)})
    ok, errors = parse_errors(m)
    assert not ok and "1024" in errors[0], errors


def test_if_inside_loop():
    """The branch taken depends on the iteration number, known at each unrolled step."""
    then_g = branch("t", [helper.make_node("Add", ["s_in", "xi"], ["a"])], [vi("a", F, None)])
    else_g = branch("e", [helper.make_node("Sub", ["s_in", "xi"], ["b"])], [vi("b", F, None)])
    nodes = [helper.make_node("Gather", ["x", "i"], ["xi"], axis=0),
             helper.make_node("Mod", ["i", "two"], ["im"]),
             helper.make_node("Equal", ["im", "zero"], ["even"]),
             helper.make_node("If", ["even"], ["s_out"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Identity", ["c_in"], ["c_out"])]
    inits = [numpy_helper.from_array(np.array(2, np.int64), "two"), numpy_helper.from_array(np.array(0, np.int64), "zero")]
    body = helper.make_graph(nodes, "body", [vi("i", I64, []), vi("c_in", B, []), vi("s_in", F, [3])],
                             [vi("c_out", B, []), vi("s_out", F, [3])], inits)
    m = make([helper.make_node("Loop", ["M", "", "s0"], ["s"], body=body)],
             {"x": rnd(5, 3), "s0": rnd(3)}, ["s"], inits={"M": np.array(5, np.int64)})
    check(m, {"x": rnd(5, 3), "s0": rnd(3)})


# ---- Scan -------------------------------------------------------------------------------------------------
def scan_body():
    """state s [2]; scan inputs a [2], b [2]; outputs s' = s + a * b and the scan outputs s' and a - b."""
    nodes = [helper.make_node("Mul", ["a", "b"], ["ab"]), helper.make_node("Add", ["s", "ab"], ["s2"]),
             helper.make_node("Identity", ["s2"], ["o1"]), helper.make_node("Sub", ["a", "b"], ["o2"])]
    return helper.make_graph(nodes, "sb", [vi("s", F, [2]), vi("a", F, [2]), vi("b", F, [2])],
                             [vi("s2", F, [2]), vi("o1", F, [2]), vi("o2", F, [2])])


@pytest.mark.parametrize("in_dirs,out_dirs,out_axes", [([0, 0], [0, 0], [0, 0]), ([1, 0], [0, 1], [1, -1]),
                                                       ([0, 1], [1, 1], [0, 1])])
def test_scan_directions_and_axes(in_dirs, out_dirs, out_axes):
    node = helper.make_node("Scan", ["s0", "A", "Bt"], ["s", "y1", "y2"], body=scan_body(), num_scan_inputs=2,
                            scan_input_directions=in_dirs, scan_output_directions=out_dirs,
                            scan_output_axes=out_axes, scan_input_axes=[0, 1])
    feed = {"s0": rnd(2), "A": rnd(4, 2), "Bt": rnd(2, 4)}
    check(make([node], feed, ["s", "y1", "y2"], opset=11), feed)


def test_scan_opset8_batched():
    body = helper.make_graph([helper.make_node("Add", ["s", "a"], ["s2"]), helper.make_node("Relu", ["s2"], ["o"])],
                             "sb", [vi("s", F, [2]), vi("a", F, [2])], [vi("s2", F, [2]), vi("o", F, [2])])
    node = helper.make_node("Scan", ["", "s0", "A"], ["s", "y"], body=body, num_scan_inputs=1, directions=[1])
    feed = {"s0": rnd(3, 2), "A": rnd(3, 4, 2)}
    check(make([node], feed, ["s", "y"], opset=8), feed)


def test_scan_dynamic_length_is_a_clear_error():
    node = helper.make_node("Scan", ["s0", "A", "Bt"], ["s", "y1", "y2"], body=scan_body(), num_scan_inputs=2)
    g = helper.make_graph([node], "cf", [vi("s0", F, [2]), vi("A", F, ["n", 2]), vi("Bt", F, ["n", 2])],
                          [vi("s", F, None), vi("y1", F, None), vi("y2", F, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    ok, errors = parse_errors(m)
    assert not ok and "static length" in errors[0], errors
